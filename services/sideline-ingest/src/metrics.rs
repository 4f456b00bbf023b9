//! Every metric the ingest service exports (`sideline_ingest_*`), in one place. Labels are
//! bounded: `reason` takes the dead-letter reason codes below, `topic` is `samples` or `dlq`.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Dead-letter reasons (the wire validation kinds plus ingest's own).
pub const REASONS: [&str; 14] = [
    "malformed",
    "missing_field",
    "not_finite",
    "out_of_range",
    "bad_timestamp",
    "bad_id",
    "too_large",
    "ambiguous",
    "unknown_device",
    "topic_mismatch",
    "team_mismatch",
    "bad_topic",
    "payload_too_large",
    "kafka_rejected",
];

/// Ingest metrics.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    /// MQTT messages received.
    pub received: IntCounter,
    /// Payload bytes received.
    pub received_bytes: IntCounter,
    /// Messages put on the samples topic.
    pub accepted: IntCounter,
    /// Samples put on the samples topic.
    pub accepted_samples: IntCounter,
    /// Messages sent to the DLQ, by reason.
    pub rejected: IntCounterVec,
    /// Records acknowledged by Kafka, by topic.
    pub produced: IntCounterVec,
    /// Produce attempts repeated, by class (`retry`, `recreate`).
    pub produce_retries: IntCounterVec,
    /// Kafka records on the samples topic, by shape (`one` batch, `coalesced` batches).
    pub sample_records: IntCounterVec,
    /// Batches sent inside coalesced records.
    pub coalesced_batches: IntCounter,
    /// Messages that could not be put anywhere (the DLQ refused them too), by reason.
    pub dropped: IntCounterVec,
    /// Messages received and not yet acknowledged.
    pub inflight: IntGauge,
    /// MQTT receive → Kafka acknowledgement, s.
    pub ack_latency: Histogram,
    /// Newest sample's event time → Kafka acknowledgement, s (includes device batching).
    pub event_latency: Histogram,
    /// 1 while connected to the MQTT broker.
    pub mqtt_connected: IntGauge,
    /// MQTT (re)connections.
    pub mqtt_connects: IntCounter,
    /// MQTT connection errors.
    pub mqtt_errors: IntCounter,
    /// Times the MQTT hand-off channel was full (backpressure reached the socket).
    pub mqtt_channel_full: IntCounter,
    /// 1 while every subscription is granted on the current connection.
    pub mqtt_subscribed: IntGauge,
    /// Subscriptions the broker refused.
    pub mqtt_refused: IntCounter,
    /// Times the broker gave our MQTT session to another client with the same id.
    pub mqtt_taken_over: IntCounter,
    /// Messages written to the disk spool (a backlog beyond memory).
    pub spilled: IntCounter,
    /// Size of the disk spool now, bytes.
    pub spool_bytes: IntGauge,
    /// Bytes of MQTT messages held in memory: the backlog waiting to be handled, and the
    /// messages being handled.
    pub memory_bytes: IntGaugeVec,
    /// Disk spool writes or reads that failed.
    pub spool_errors: IntCounter,
    /// Acknowledgements not sent because the message came on an earlier connection (the broker
    /// re-sent it on the current one).
    pub stale_acks: IntCounter,
    /// 1 while Kafka answers metadata requests.
    pub kafka_connected: IntGauge,
    /// Devices on the roster.
    pub roster_devices: IntGauge,
    /// Roster topic records that could not be applied.
    pub roster_bad_records: IntCounter,
    /// Roster topic records read (applied or not).
    pub roster_records: IntCounter,
    /// Messages from sources in other shapes, by source.
    pub source_messages: IntCounterVec,
    /// Records put on the samples topic from sources in other shapes, by source.
    pub source_records: IntCounterVec,
    /// Records (or frames) of sources skipped, by source and reason (`no_device`,
    /// `no_reading`, `unknown_device`, `duplicate`).
    pub source_skipped: IntCounterVec,
    /// 1 while a WebSocket source is connected (and, for a league feed, authenticated).
    pub source_connected: IntGaugeVec,
    /// WebSocket source connections lost or refused, by source.
    pub source_reconnects: IntCounterVec,
}

fn vec_of(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(r: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
    r.register(Box::new(c.clone()))?;
    // Pre-register every label value so dashboards see zeros, not gaps.
    for v in values {
        c.with_label_values(&[v]);
    }
    Ok(c)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, prometheus::Error> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

impl IngestMetrics {
    /// Register every metric in `r`.
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let lat = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        Ok(IngestMetrics {
            received: counter(
                r,
                "sideline_ingest_messages_received_total",
                "MQTT messages received.",
            )?,
            received_bytes: counter(
                r,
                "sideline_ingest_received_bytes_total",
                "MQTT payload bytes received.",
            )?,
            accepted: counter(
                r,
                "sideline_ingest_messages_accepted_total",
                "Messages put on the samples topic.",
            )?,
            accepted_samples: counter(
                r,
                "sideline_ingest_samples_accepted_total",
                "Samples put on the samples topic.",
            )?,
            rejected: counter_vec(
                r,
                "sideline_ingest_messages_rejected_total",
                "Messages sent to the dead-letter topic, by reason.",
                "reason",
                &REASONS,
            )?,
            produced: counter_vec(
                r,
                "sideline_ingest_records_produced_total",
                "Records acknowledged by Kafka, by topic.",
                "topic",
                &["samples", "dlq"],
            )?,
            produce_retries: counter_vec(
                r,
                "sideline_ingest_produce_retries_total",
                "Produce attempts repeated, by class.",
                "class",
                &["retry", "recreate"],
            )?,
            sample_records: counter_vec(
                r,
                "sideline_ingest_sample_records_total",
                "Records produced to the samples topic, by shape (one batch, or coalesced).",
                "shape",
                &["one", "coalesced"],
            )?,
            coalesced_batches: counter(
                r,
                "sideline_ingest_coalesced_batches_total",
                "Batches produced inside coalesced records.",
            )?,
            dropped: counter_vec(
                r,
                "sideline_ingest_messages_dropped_total",
                "Messages neither produced nor dead-lettered (the DLQ refused them), by reason.",
                "reason",
                &REASONS,
            )?,
            inflight: gauge(
                r,
                "sideline_ingest_inflight_messages",
                "MQTT messages received and not yet acknowledged.",
            )?,
            ack_latency: histogram(
                r,
                "sideline_ingest_ack_latency_seconds",
                "MQTT receive to Kafka acknowledgement.",
                lat.clone(),
            )?,
            event_latency: histogram(
                r,
                "sideline_ingest_event_latency_seconds",
                "Newest sample event time to Kafka acknowledgement.",
                lat,
            )?,
            mqtt_connected: gauge(
                r,
                "sideline_ingest_mqtt_connected",
                "1 while connected to the MQTT broker.",
            )?,
            mqtt_connects: counter(
                r,
                "sideline_ingest_mqtt_connects_total",
                "MQTT (re)connections.",
            )?,
            mqtt_errors: counter(
                r,
                "sideline_ingest_mqtt_errors_total",
                "MQTT connection errors.",
            )?,
            mqtt_channel_full: counter(
                r,
                "sideline_ingest_mqtt_channel_full_total",
                "Times the hand-off from the MQTT task was full.",
            )?,
            mqtt_subscribed: gauge(
                r,
                "sideline_ingest_mqtt_subscribed",
                "1 while the MQTT subscription is granted (ingest is ready only then).",
            )?,
            mqtt_refused: counter(
                r,
                "sideline_ingest_mqtt_subscriptions_refused_total",
                "Subscriptions the MQTT broker refused (ACL, bad filter); see the error log.",
            )?,
            mqtt_taken_over: counter(
                r,
                "sideline_ingest_mqtt_session_taken_over_total",
                "Times the MQTT broker gave this instance's session to another client with the same client id (MQTT 5); not ready meanwhile.",
            )?,
            spilled: counter(
                r,
                "sideline_ingest_mqtt_spilled_messages_total",
                "Messages received beyond the in-memory backlog and written to the disk spool.",
            )?,
            spool_bytes: gauge(
                r,
                "sideline_ingest_mqtt_spool_bytes",
                "Size of the disk spool now.",
            )?,
            memory_bytes: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "sideline_ingest_mqtt_memory_bytes",
                        "Bytes of MQTT messages held in memory, by where: backlog (waiting) or inflight (being handled).",
                    ),
                    &["where"],
                )?;
                r.register(Box::new(g.clone()))?;
                for w in ["backlog", "inflight"] {
                    g.with_label_values(&[w]).set(0);
                }
                g
            },
            spool_errors: counter(
                r,
                "sideline_ingest_mqtt_spool_errors_total",
                "Disk spool writes or reads that failed (a full disk?); see the error log.",
            )?,
            stale_acks: counter(
                r,
                "sideline_ingest_mqtt_stale_acks_skipped_total",
                "Acknowledgements skipped: the message came on an earlier connection.",
            )?,
            kafka_connected: gauge(
                r,
                "sideline_ingest_kafka_connected",
                "1 while Kafka answers metadata requests.",
            )?,
            roster_devices: gauge(
                r,
                "sideline_ingest_roster_devices",
                "Devices on the roster.",
            )?,
            roster_bad_records: counter(
                r,
                "sideline_ingest_roster_bad_records_total",
                "Roster topic records that could not be applied.",
            )?,
            roster_records: counter(
                r,
                "sideline_ingest_roster_records_total",
                "Roster topic records read, applied or not.",
            )?,
            source_messages: vec_of(
                r,
                "sideline_ingest_source_messages_total",
                "Messages from sources in other shapes, by source.",
                &["source"],
            )?,
            source_records: vec_of(
                r,
                "sideline_ingest_source_records_total",
                "Records put on the samples topic from sources in other shapes, by source.",
                &["source"],
            )?,
            source_skipped: vec_of(
                r,
                "sideline_ingest_source_skipped_total",
                "Source records skipped (no_device, no_reading, unknown_device) or frames already forwarded (duplicate), by source and reason.",
                &["source", "reason"],
            )?,
            source_connected: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "sideline_ingest_source_connected",
                        "1 while a WebSocket source is connected (a league feed: authenticated), by source.",
                    ),
                    &["source"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            source_reconnects: vec_of(
                r,
                "sideline_ingest_source_reconnects_total",
                "WebSocket source connections lost or refused, by source.",
                &["source"],
            )?,
        })
    }
}
