//! # sideline-bench
//!
//! The staff's live view at the bench, as one crate served from two sources: `sideline bench`
//! follows the metrics, alerts, roster and acks topics on Kafka; `sideline demo` feeds the same
//! view from its in-process pipeline. Players are shown by name, squad number and position;
//! each score with the terms behind it and its completeness; a forecast only where it means
//! something; the data age loudly when the feed stalls; the session's summary after full time.
//! Staff sign in (a staff file with Argon2 hashes, or an authenticating proxy's header), so an
//! acknowledgement carries a verified name; it goes to the acks topic, where the alerter reads
//! it and stops escalating in chat.
//!
//! # Layout
//!
//! - [`model`]: a snapshot and an alert as the bench shows them, from engine values or records.
//! - [`view`]: per (team, session) state behind the page, bounded.
//! - [`auth`]: staff sign-in.
//! - [`http`]: the page, JSON API and server-sent events.
//! - [`source`]: the Kafka side (follow the topics, write acknowledgements).
//! - [`config`], [`metrics`], [`service`]: `sideline bench` itself.

pub mod auth;
pub mod config;
pub mod http;
pub mod metrics;
pub mod model;
pub mod service;
pub mod source;
pub mod view;

pub use config::BenchConfig;
pub use service::run;
