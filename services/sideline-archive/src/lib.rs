//! # sideline-archive
//!
//! History for sports scientists: `sideline archive` reads samples, metrics and alerts from
//! Kafka (a consumer group) and writes them as Parquet, partitioned by team / date / session,
//! each file committed atomically together with the Kafka offsets it covers, so a crash or a
//! restart neither loses nor duplicates a row. `sideline sql` queries it with DataFusion.
//!
//! # Layout
//!
//! - [`schema`]: the tables, their Arrow schemas and the sample row builder.
//! - [`metric_rows`]: the metrics and alerts row builders.
//! - [`resolution`]: the precision the metrics table keeps (the compact layout).
//! - [`store`]: the commit protocol; [`backend`]: a local directory or an object store under it.
//! - [`archiver`]: the core: records in, rows buffered, flushes committed with offsets;
//!   `commit`: one commit, on the caller's thread or on the archiver's commit thread.
//! - [`service`]: the Kafka consumer group around the core; [`sql_api`]: its `POST /api/sql`
//!   (read-only, bounded, authenticated).
//! - [`query`]: DataFusion over the archive; [`pg`]: the same over the PostgreSQL wire protocol
//!   (psql, psycopg, Grafana), read-only, password and TLS.
//! - [`baselines`]: daily loads, trends against the player's own history, the engine's
//!   baseline as of a day.
//! - [`report`]: post-session and trend reports (CSV, self-contained HTML with SVG charts).
//! - [`reprocess`]: a stored session through the engine again (other parameters, zero-phase
//!   filtering), written beside the live figures.
//! - [`config`], [`metrics`]: configuration and Prometheus metrics.

pub mod ack_rows;
pub mod archiver;
pub mod backend;
pub mod baselines;
mod commit;
pub mod config;
pub mod metric_rows;
pub mod metrics;
pub mod pg;
pub mod query;
pub mod report;
pub mod reprocess;
pub mod resolution;
pub mod schema;
pub mod service;
pub mod sql_api;
pub mod store;

pub use archiver::{Archiver, FlushPolicy, Topics};
pub use store::{ArchiveError, Store};
