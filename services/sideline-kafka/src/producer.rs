//! Producers configured for at-least-once delivery in per-partition order.
//!
//! Settings (each overridable through `[kafka.client]`): `acks=all`, retries without limit,
//! `compression.type=lz4`, `linger.ms=5` (batches without adding noticeable latency),
//! `message.timeout.ms=0` for the ingest path (a record is retried until Kafka takes it; the
//! service stops taking new input instead of dropping), a bounded local queue, and one of two
//! ways of keeping order through retries ([`Ordering`]):
//!
//! - [`Ordering::Idempotent`] (ingest, the alerter): librdkafka's idempotent producer, no
//!   duplicates from retries;
//! - [`Ordering::OneInFlight`] (the processor's outputs): one produce request in flight per
//!   broker connection, so a retried request is re-sent before anything queued after it.
//!
//! Why the processor does not use the idempotent producer (issue 31, BENCHMARKS.md): librdkafka
//! (2.12) counts an idempotent partition's in-flight *messages* against its limit of 5 in-flight
//! *requests*, and it schedules its next wake-up from `linger.ms` before it checks that limit.
//! So while a request of five or more records is unacknowledged and newer records have waited
//! longer than `linger.ms`, its broker thread wakes again at once, over and over, until the
//! acknowledgement comes (`rd_kafka_toppar_producer_serve`; the in-flight count is librdkafka
//! pull request 4989's subject). The processor's outputs (a snapshot per player-second, tens
//! per partition per request) made that 80 % of its CPU. Without idempotence a retry after a
//! lost acknowledgement can write a batch twice, in place; the processor's consumers already
//! de-duplicate by (player, second) and alert id, because a processor restart re-produces its
//! outputs since the last checkpoint.

use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

use crate::config::KafkaConfig;

/// How long a record may wait for Kafka before its delivery fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryTimeout {
    /// Forever (ingest: never drop, apply backpressure instead).
    Never,
    /// This many milliseconds.
    Millis(u32),
}

/// How a producer keeps each partition's records in order when it retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// `enable.idempotence=true` (up to 5 requests in flight per partition, no duplicates).
    Idempotent,
    /// `enable.idempotence=false`, `max.in.flight.requests.per.connection=1`: in order; a
    /// retry after a lost acknowledgement may write a request's records twice.
    OneInFlight,
}

/// A producer for `client_id`.
pub fn producer(
    cfg: &KafkaConfig,
    client_id: &str,
    timeout: DeliveryTimeout,
    ordering: Ordering,
) -> Result<FutureProducer, KafkaError> {
    let timeout_ms = match timeout {
        DeliveryTimeout::Never => "0".to_string(),
        DeliveryTimeout::Millis(ms) => ms.to_string(),
    };
    let (idempotence, in_flight) = match ordering {
        Ordering::Idempotent => ("true", "5"),
        Ordering::OneInFlight => ("false", "1"),
    };
    let defaults = [
        ("enable.idempotence", idempotence),
        ("max.in.flight.requests.per.connection", in_flight),
        ("message.send.max.retries", "2147483647"),
        ("acks", "all"),
        ("compression.type", "lz4"),
        ("linger.ms", "5"),
        ("queue.buffering.max.messages", "100000"),
        ("queue.buffering.max.kbytes", "262144"),
        ("message.timeout.ms", timeout_ms.as_str()),
        ("socket.keepalive.enable", "true"),
    ];
    cfg.client_config(client_id, &defaults)
        .map_err(|e| KafkaError::ClientCreation(e.to_string()))?
        .create()
}
