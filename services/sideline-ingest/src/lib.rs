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
//! - [`roster`]: following the roster topic.
//! - [`metrics`]: every exported metric.
//! - this file: [`run`], the service's `select!` loop.

pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod roster;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use sideline_bus::RecordSink as _;
use sideline_common::service::Service;
use sideline_common::{CancellationToken, Health};
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, QoS, connect, run_event_loop};
use sideline_wire::roster::Roster;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use config::IngestConfig;
use sideline_kafka::sink::ProducerSlot;

/// How long after the broker gave our MQTT session to another client (same client id) the
/// service stays not ready: longer than the longest reconnect back-off, so two instances that
/// share an id and keep taking the session from each other are never ready.
const TAKEN_OVER_WINDOW: Duration = Duration::from_secs(60);
use metrics::IngestMetrics;
use pipeline::{Outcome, Pipeline};

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
    )?);
    let pipeline = Pipeline::from_config(cfg, kafka.clone(), roster, metrics);

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
    let _ = tokio::task::spawn_blocking(move || kafka.flush(Duration::from_secs(5))).await;
    tracing::info!(message = "Ingest stopped.");
    result
}

/// Messages in the hand-off channel between the MQTT polling task and the loop.
const HANDOFF: usize = 16;

/// Mirror the MQTT polling task's connection status into readiness and metrics every 250 ms,
/// until `stop`.
fn mirror_status(
    status: Arc<ConnectionStatus>,
    health: Health,
    metrics: IngestMetrics,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let (mut connects, mut errors, mut full, mut refused) = (0, 0, 0, 0);
        let mut taken_over = 0;
        let (mut spilled, mut spool_errors) = (0, 0);
        loop {
            let connected = status.connected.load(Ordering::Relaxed);
            // Ready only once the subscription is granted: until then the broker drops
            // what devices publish (nothing matches it), so a caller that waits for
            // readiness before starting devices loses nothing.
            let subscribed = connected && status.subscribed.load(Ordering::Relaxed);
            // Not ready while another instance with our client id keeps taking the session.
            health.set(
                "mqtt",
                subscribed && !status.taken_over_within(TAKEN_OVER_WINDOW),
            );
            metrics.mqtt_connected.set(i64::from(connected));
            metrics.mqtt_subscribed.set(i64::from(subscribed));
            let (c, e, f, r) = (
                status.connects.load(Ordering::Relaxed),
                status.errors.load(Ordering::Relaxed),
                status.channel_full.load(Ordering::Relaxed),
                status.refused.load(Ordering::Relaxed),
            );
            metrics.mqtt_connects.inc_by(c - connects);
            metrics.mqtt_errors.inc_by(e - errors);
            metrics.mqtt_channel_full.inc_by(f - full);
            metrics.mqtt_refused.inc_by(r - refused);
            (connects, errors, full, refused) = (c, e, f, r);
            let t = status.taken_over.load(Ordering::Relaxed);
            metrics.mqtt_taken_over.inc_by(t - taken_over);
            taken_over = t;
            let (s, se) = (
                status.spilled.load(Ordering::Relaxed),
                status.spool_errors.load(Ordering::Relaxed),
            );
            metrics.spilled.inc_by(s - spilled);
            metrics.spool_errors.inc_by(se - spool_errors);
            (spilled, spool_errors) = (s, se);
            metrics
                .spool_bytes
                .set(status.spool_bytes.load(Ordering::Relaxed) as i64);
            metrics
                .memory_bytes
                .with_label_values(&["backlog"])
                .set(status.backlog_bytes.load(Ordering::Relaxed) as i64);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    });
}

/// The transport-independent part of ingest: subscribe, hand each MQTT message to `pipeline`
/// (whose sink is Kafka, or the demo's in-process bus), acknowledge in receive order once its
/// record is on the log, and drain on `shutdown`. Background tasks stop with `tasks`.
pub async fn pump(
    cfg: &IngestConfig,
    client_id: &str,
    pipeline: Pipeline,
    metrics: &IngestMetrics,
    health: &Health,
    shutdown: &CancellationToken,
    tasks: &CancellationToken,
) -> Result<(), IngestError> {
    // MQTT: a dedicated polling task hands messages over a bounded channel.
    let max_inflight = cfg.ingest.max_inflight;
    let (client, el) = connect(
        &cfg.mqtt,
        client_id,
        ConnectOptions {
            manual_acks: true,
            request_capacity: 2 * max_inflight + 64,
            receive_maximum: Some(max_inflight.min(65_535) as u16),
        },
    )?;
    // A short hand-off: what waits beyond it is in the polling task's backlog, bounded in
    // messages and bytes (then the spool).
    let (tx, mut rx) = mpsc::channel(max_inflight.min(HANDOFF));
    let max_inflight_bytes = cfg.ingest.max_backlog_bytes();
    let status = Arc::new(ConnectionStatus::default());
    let qos = if cfg.subscribe.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let filter = cfg.subscribe.filter();
    let mqtt_stop = CancellationToken::new();
    let el_task = tokio::spawn(run_event_loop(
        el,
        client.clone(),
        vec![(filter.clone(), qos)],
        Some(tx),
        Arc::clone(&status),
        (
            Duration::from_millis(cfg.mqtt.reconnect_min_ms),
            Duration::from_millis(cfg.mqtt.reconnect_max_ms),
        ),
        cfg.ingest.backlog(),
        mqtt_stop.clone(),
    ));
    mirror_status(
        Arc::clone(&status),
        health.clone(),
        metrics.clone(),
        tasks.clone(),
    );
    tracing::info!(message = "Ingest running.", subscription = %filter, samples_topic = %pipeline.samples_topic);

    // The loop: start work while under the in-flight limit; acknowledge in arrival order.
    let mut pending = FuturesOrdered::new();
    // Acknowledgements waiting for room in the client's request channel, in arrival order.
    // Never wait for that room here: the polling task may itself be waiting for us. Those of
    // messages delivered on an earlier connection are dropped: the broker has re-sent them
    // (see `ConnectionStatus::may_ack`); while disconnected they wait.
    let mut acks: VecDeque<(u64, sideline_mqtt::AckHandle)> = VecDeque::new();
    let flush = |acks: &mut VecDeque<(u64, sideline_mqtt::AckHandle)>| {
        while let Some((connection, a)) = acks.front() {
            if !status.may_ack(*connection) {
                if status.connects.load(Ordering::Relaxed) == *connection {
                    break; // disconnected: wait for the next connection
                }
                metrics.stale_acks.inc();
            } else if !client.try_ack(a) {
                break;
            }
            acks.pop_front();
        }
    };
    let mut draining = false;
    let mut inflight_bytes = 0usize;
    let drain_deadline = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(drain_deadline);
    loop {
        tokio::select! {
            biased;
            Some((m, outcome)) = pending.next(), if !pending.is_empty() => {
                let m: sideline_mqtt::Message = m;
                metrics.inflight.dec();
                inflight_bytes -= sideline_mqtt::message_bytes(&m);
                metrics.memory_bytes.with_label_values(&["inflight"]).set(inflight_bytes as i64);
                if outcome != Outcome::Abandoned && m.needs_ack {
                    acks.push_back((m.connection, m.ack));
                    flush(&mut acks);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(5)), if !acks.is_empty() => flush(&mut acks),
            // Draining takes nothing new: what is not handled stays unacknowledged in the
            // broker's session and is sent again on the next connection.
            // Under the limits in messages and bytes (one message is always let in).
            m = rx.recv(), if pending.len() < max_inflight
                && (pending.is_empty() || inflight_bytes < max_inflight_bytes)
                && !draining => match m {
                Some(m) => {
                    metrics.inflight.inc();
                    inflight_bytes += sideline_mqtt::message_bytes(&m);
                    metrics.memory_bytes.with_label_values(&["inflight"]).set(inflight_bytes as i64);
                    let p = &pipeline;
                    pending.push_back(async move {
                        let outcome = p.handle(&m).await;
                        (m, outcome)
                    });
                }
                None => break,
            },
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                // No unsubscribe: the session (subscription and all) outlives this process,
                // so the broker queues what devices publish until the next instance connects
                // with the same client id.
                tracing::info!(message = "Draining in-flight messages.", inflight = pending.len());
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(cfg.ingest.drain_timeout_s));
            }
            _ = &mut drain_deadline, if draining => {
                tracing::warn!(message = "Drain timeout: abandoning in-flight messages (the broker redelivers them).", inflight = pending.len());
                pipeline.abort.cancel();
                while pending.next().await.is_some() {
                    metrics.inflight.dec();
                }
                metrics.memory_bytes.with_label_values(&["inflight"]).set(0);
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)), if draining => {
                if pending.is_empty() && acks.is_empty() {
                    break;
                }
            }
        }
    }
    // Let the last acknowledgements reach the broker, then leave.
    tokio::time::sleep(Duration::from_millis(200)).await;
    status.closing.store(true, Ordering::Relaxed);
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    mqtt_stop.cancel();
    let _ = el_task.await;
    Ok(())
}
