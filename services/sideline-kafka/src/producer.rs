//! Producers configured for at-least-once delivery without broker-side duplicates.
//!
//! Settings (each overridable through `[kafka.client]`): `enable.idempotence=true` (which
//! implies `acks=all` and in-order delivery with up to 5 requests in flight),
//! `compression.type=lz4`, `linger.ms=5` (batches without adding noticeable latency),
//! `message.timeout.ms=0` for the ingest path (a record is retried until Kafka takes it; the
//! service stops taking new input instead of dropping), and a bounded local queue.

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

/// A producer for `client_id`.
pub fn producer(
    cfg: &KafkaConfig,
    client_id: &str,
    timeout: DeliveryTimeout,
) -> Result<FutureProducer, KafkaError> {
    let timeout_ms = match timeout {
        DeliveryTimeout::Never => "0".to_string(),
        DeliveryTimeout::Millis(ms) => ms.to_string(),
    };
    let defaults = [
        ("enable.idempotence", "true"),
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
