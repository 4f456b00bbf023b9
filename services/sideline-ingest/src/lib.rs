//! # sideline-ingest
//!
//! MQTT in, Kafka out. Devices (or gateways) publish `SampleBatch`es (protobuf or JSON) on
//! `sideline/v1/{team}/{device}/{stream}`; every valid batch goes to `sideline.samples.v1`
//! keyed by the player wearing the device, every invalid one to `sideline.dlq.v1` with its
//! original payload, MQTT topic, reason and time. N instances share the load through one
//! shared subscription.
//!
//! No loss: a QoS 1 message is acknowledged to the broker only after Kafka has acknowledged its
//! record, and acknowledgements go back in the order messages arrived (MQTT requires it). At
//! most `ingest.max_inflight` messages are being handled at once. When Kafka is unreachable,
//! messages wait unacknowledged and the broker should stop sending (MQTT 5 Receive Maximum;
//! Mosquitto's `max_inflight_messages` for 3.1.1 clients). A broker that sends more anyway
//! (Mosquitto 2.0 once acknowledgements flow) fills the polling task's backlog: 4 ×
//! `max_inflight` messages and `max_backlog_mb` in memory (as many bytes again may be being
//! handled), then the disk spool (`ingest.spool_max_mb`), so that
//! reading, and with it the keep-alive, goes on; only a full or failing spool pauses reading.
//!
//! # Layout
//!
//! - [`config`]: configuration (`default.toml` documents every key).
//! - [`pipeline`]: one message → Kafka, and what happens at every limit.
//! - [`sources`]: feeds in other systems' shapes (MQTT topics, WebSockets, UDP) and
//!   [`adapted`]: their messages → one record per device, the same way.
//! - [`roster`]: following the roster topic.
//! - [`coalesce`]: a player's batches within a short linger as one Kafka record.
//! - [`pump`]: the MQTT side: subscribe, hand each message to the pipeline, acknowledge in
//!   receive order, drain.
//! - [`metrics`]: every exported metric.
//! - this file: [`run`]: readiness, the roster, the Kafka sink, then [`pump`].

pub mod adapted;
pub mod coalesce;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod pump;
pub mod roster;
pub mod sources;

pub use pump::pump;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sideline_bus::RecordSink as _;
use sideline_common::service::Service;
use sideline_common::{CancellationToken, Health};
use sideline_wire::roster::Roster;
use tokio::net::TcpListener;

pub use config::IngestConfig;
use sideline_kafka::sink::ProducerSlot;

use metrics::IngestMetrics;
use pipeline::Pipeline;

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Metric registration failed (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A Kafka client could not be created (bad settings: fatal).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The MQTT client could not be set up (bad settings: fatal).
    #[error("{0}")]
    Mqtt(#[from] sideline_mqtt::MqttError),
    /// The roster file is invalid (fatal).
    #[error("{0}")]
    Roster(#[from] sideline_wire::roster::RosterError),
    /// Reading a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Run the ingest service until `shutdown` is cancelled, then drain and return.
/// `http` is the already-bound admin listener.
pub async fn run(
    cfg: IngestConfig,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let svc = Service::new(&["mqtt", "kafka", "roster"]);
    let metrics = IngestMetrics::new(&svc.registry)?;
    let admin_port = http.local_addr()?.port();
    let server = svc.serve_admin(http);
    let client_id = cfg.mqtt.client_id_for("ingest", admin_port);
    let result = serve(&cfg, &client_id, &metrics, &svc.health, &shutdown).await;
    server.stop().await;
    result
}

async fn serve(
    cfg: &IngestConfig,
    client_id: &str,
    metrics: &IngestMetrics,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<(), IngestError> {
    if !sideline_kafka::topics::ensure_contract_until_ready(
        &cfg.kafka,
        "sideline-ingest-admin",
        shutdown,
    )
    .await?
    {
        return Ok(());
    }
    health.set("kafka", true);
    let tasks = CancellationToken::new();

    // The roster: the file, then the topic, read to its end before subscribing.
    let roster = if cfg.ingest.roster_file.as_os_str().is_empty() {
        Roster::default()
    } else {
        Roster::from_toml(&std::fs::read_to_string(&cfg.ingest.roster_file)?)?
    };
    metrics.roster_devices.set(roster.devices().count() as i64);
    let roster = Arc::new(RwLock::new(roster));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    if cfg.ingest.roster_topic {
        let (k, t, r, m, stop) = (
            cfg.kafka.clone(),
            cfg.kafka.topics.roster.clone(),
            Arc::clone(&roster),
            metrics.clone(),
            tasks.clone(),
        );
        tokio::spawn(async move {
            if let Err(error) = roster::follow(
                k,
                t,
                r,
                m,
                move || {
                    let _ = ready_tx.send(());
                },
                stop,
            )
            .await
            {
                tracing::error!(message = "Roster topic cannot be followed.", %error);
            }
        });
        tokio::select! {
            _ = shutdown.cancelled() => { tasks.cancel(); return Ok(()); }
            _ = ready_rx => {}
        }
    }
    health.set("roster", true);

    let kafka = Arc::new(ProducerSlot::new(
        &cfg.kafka,
        client_id,
        &cfg.kafka.topics.samples,
        sideline_kafka::producer::Ordering::Idempotent,
    )?);
    let sink: Arc<dyn sideline_bus::RecordSink> = if cfg.ingest.coalesce_linger_ms > 0 {
        Arc::new(coalesce::Coalescer::new(
            kafka.clone(),
            &cfg.kafka.topics.samples,
            Duration::from_millis(cfg.ingest.coalesce_linger_ms),
            cfg.ingest.coalesce_max_kb * 1024,
            metrics.clone(),
        ))
    } else {
        kafka.clone()
    };
    let pipeline = Pipeline::from_config(cfg, sink, roster, metrics);
    let state_dir = cfg.ingest.state_dir();
    let source_tasks = sources::spawn(&pipeline.sources, &pipeline, &state_dir, &tasks)?;

    // Kafka reachability, for /readyz and the gauge.
    {
        let (sink, health, metrics) = (kafka.clone(), health.clone(), metrics.clone());
        sideline_kafka::probe::spawn(
            move || sink.reachable(),
            move |ok| {
                health.set("kafka", ok);
                metrics.kafka_connected.set(i64::from(ok));
            },
            tasks.clone(),
        );
    }

    let result = pump(cfg, client_id, pipeline, metrics, health, shutdown, &tasks).await;
    tasks.cancel();
    // The sources finish what they took (their records on Kafka, a watermark saved).
    let drain = Duration::from_secs(cfg.ingest.drain_timeout_s);
    let _ = tokio::time::timeout(drain, futures::future::join_all(source_tasks)).await;
    let _ = tokio::task::spawn_blocking(move || kafka.flush(Duration::from_secs(5))).await;
    tracing::info!(message = "Ingest stopped.");
    result
}
