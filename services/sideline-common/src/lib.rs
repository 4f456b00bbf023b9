//! # sideline-common
//!
//! What every Sideline service shares, so that each service is a thin loop around its own work.
//!
//! # Layout
//!
//! - [`config`]: configuration from embedded defaults, an optional file and
//!   `SIDELINE__SECTION__KEY` environment variables, with every error reported at once.
//! - [`telemetry`]: structured logging (`tracing`), text or JSON.
//! - [`shutdown`]: SIGINT/SIGTERM → a cancellation token.
//! - [`health`]: readiness of a service's components.
//! - [`admin`]: the admin HTTP server (`/healthz`, `/readyz`, `/metrics`) on an already-bound
//!   listener, stopped by a token.
//! - [`service`]: the frame every service runs in (registry, readiness, admin server),
//!   written once.

pub mod admin;
pub mod config;
pub mod health;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use health::Health;
pub use tokio_util::sync::CancellationToken;
