//! # sideline-bus
//!
//! The seam between Sideline's services and the log that carries their records. In production
//! that log is Kafka (the implementation lives with each service's producer, in
//! `sideline-ingest`); in `sideline demo` it is [`MemoryBus`], an in-process bus with the same
//! contract, so one process runs the whole pipeline with no broker.
//!
//! The contract of [`RecordSink::send`]: it returns `Ok` only once the record is durable in the
//! log (Kafka: acknowledged with `acks=all`; memory: handed to every subscriber's queue), so a
//! caller may then acknowledge its own input; an error says whether trying again can help.
//!
//! # Layout
//!
//! - this file: [`Record`], [`RecordSink`], [`SinkError`].
//! - [`memory`]: the in-process [`MemoryBus`].

pub mod memory;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

pub use memory::MemoryBus;

/// One record: topic, key (the player for player-keyed topics), value, headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic.
    pub topic: String,
    /// Key.
    pub key: String,
    /// Value.
    pub value: Bytes,
    /// Headers, in order.
    pub headers: Vec<(String, Bytes)>,
}

/// Why a record was not put on the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Temporary (log unreachable, queue full, no consumer yet): send it again later. `class`
    /// is a bounded label for metrics (`retry`, `recreate`, ...).
    #[error("{detail} (retryable)")]
    Retry {
        /// Metric label.
        class: &'static str,
        /// What happened.
        detail: String,
    },
    /// The log refuses this record for good (too large, unknown topic, ...).
    #[error("{0} (refused)")]
    Reject(String),
}

/// A future returned by [`RecordSink::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Where a service puts its records.
pub trait RecordSink: Send + Sync + std::fmt::Debug {
    /// Put `record` on the log; `Ok` once it is durable there (see the crate docs).
    fn send(&self, record: Record) -> SendFuture<'_>;

    /// Whether the log is reachable now (for `/readyz`); blocking implementations must not be
    /// called from async code.
    fn reachable(&self) -> bool;
}
