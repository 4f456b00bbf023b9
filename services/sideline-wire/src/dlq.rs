//! The dead-letter topic's record headers (`sideline.dlq.v1`): ingest and the processor write
//! them, tools and tests read them. A dead letter keeps its original payload (ingest: the first
//! 64 KiB) and says why in these headers.

/// Why it was refused: a short stable reason (`malformed`, `unknown_device`, `late`, …).
pub const REASON: &str = "sideline.reason";
/// The located problems, for people (at most 4,000 characters).
pub const DETAIL: &str = "sideline.detail";
/// When it was received, µs since the Unix epoch.
pub const RECEIVED_AT_US: &str = "sideline.received_at_us";
/// Ingest: the MQTT topic it came on.
pub const MQTT_TOPIC: &str = "sideline.mqtt_topic";
/// Ingest: `json` or `protobuf`.
pub const FORMAT: &str = "sideline.format";
/// Ingest: the original payload's size, bytes.
pub const PAYLOAD_BYTES: &str = "sideline.payload_bytes";
/// Ingest: `true` if the payload kept is cut short.
pub const TRUNCATED: &str = "sideline.truncated";
/// Processor: the samples topic partition of the refused record.
pub const SOURCE_PARTITION: &str = "sideline.source_partition";
/// Processor: its offset there.
pub const SOURCE_OFFSET: &str = "sideline.source_offset";
