//! `sideline alert`: a consumer group on `sideline.alerts.v1` feeding the [`Alerter`], the
//! HTTP server (`/healthz`, `/readyz`, `/metrics`, `GET`/`POST /ack/<token>`: [`crate::ack_page`]), and the delivery tasks.
//!
//! Offsets are committed only after the router state covering them has been saved (and the
//! messages it formed stored in the outbox), so a crash re-reads at most the events since the
//! last save; the router recognises them (closed ids) and the outbox refuses keys it has seen,
//! so nothing is sent twice.
//!
//! Acknowledgements made on the bench page arrive on `sideline.acks.v1` and are applied like a
//! tapped link ([`crate::acks_in`]). Acknowledgements made here go to the same topic (the
//! bench's and the archive's `acks` table): each is kept in the
//! saved router state until Kafka has acknowledged its record, so a crash or an outage delays
//! it and never loses it (at least once: a crash between the two may write it twice).
//!
//! A partition watchdog (`sideline_kafka::watchdog`, `alerter.orphan_grace_s`) rejoins the group
//! when a partition has alerts waiting and its committed offset does not move: brokers such as
//! tansu leave a killed member's partitions assigned to it.

use std::time::Duration;

use futures::StreamExt;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use sideline_common::Health;
use sideline_common::service::Service;
use sideline_kafka::watchdog::Watchdog;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::{Links, Signer};
use crate::alerter::{Alerter, Setup};
use crate::config::AlerterConfig;
use crate::delivery::{Target, Timing};
use crate::item::Item;
use crate::metrics::AlerterMetrics;
use crate::policy::Policy;

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Metrics registration (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Kafka client creation or subscription (fatal: configuration).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The outbox cannot be opened (fatal: fix the directory).
    #[error("{0}")]
    Outbox(#[from] crate::outbox::OutboxError),
    /// A secret could not be read.
    #[error("{0}")]
    Secret(String),
    /// Reading a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub use crate::ack_page::{AckRequest, ack_router, evidence_router};

/// The core's settings from the configuration (URLs and the ack secret resolved).
pub fn setup(cfg: &AlerterConfig) -> Result<Setup, ServiceError> {
    let a = &cfg.alerter;
    let mut targets = Vec::new();
    for d in &a.destinations {
        targets.push(Target {
            name: d.name.clone(),
            format: d.format,
            url: d.resolve_url().map_err(ServiceError::Secret)?,
            rate_per_s: d.rate_per_s,
            burst: d.burst,
        });
    }
    let secret = match sideline_common::config::secret(
        a.ack_secret.as_deref(),
        a.ack_secret_file.as_deref(),
    )
    .map_err(ServiceError::Secret)?
    {
        Some(s) => s.into_bytes(),
        None => {
            tracing::warn!(
                message = "No ack_secret configured: acknowledge links stop working on restart."
            );
            let mut k = vec![0u8; 32];
            rand::Rng::fill(&mut rand::rng(), &mut k[..]);
            k
        }
    };
    Ok(Setup {
        policy: Policy {
            timing: a.timing.clone(),
            routes: a.routes.clone(),
            send_resolved: a
                .destinations
                .iter()
                .map(|d| (d.name.clone(), d.send_resolved))
                .collect(),
        },
        targets,
        timing: Timing {
            timeout: Duration::from_secs(a.request_timeout_s),
            max_retry_after: Duration::from_secs(a.max_retry_after_s),
            backoff_base: Duration::from_millis(a.backoff_base_ms),
            backoff_max: Duration::from_secs(a.backoff_max_s),
            max_age: Duration::from_secs(a.max_age_s),
        },
        outbox_dir: a.outbox_dir.clone(),
        links: Some(Links {
            base: a.public_url.clone(),
            signer: Signer::new(&secret),
            ttl_s: a.ack_ttl_s,
        }),
    })
}

/// Run until `shutdown`.
pub async fn run(
    cfg: AlerterConfig,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let svc = Service::new(&["kafka", "outbox"]);
    let metrics = AlerterMetrics::new(&svc.registry)?;
    for d in &cfg.alerter.destinations {
        metrics.init_destination(&d.name);
    }
    let health = svc.health.clone();
    let (ack_tx, mut ack_rx) = mpsc::channel::<AckRequest>(64);
    let server = svc.serve(
        http,
        ack_router(ack_tx, cfg.alerter.identity_header.clone()).merge(evidence_router()),
    );

    let deliver_stop = CancellationToken::new();
    let (mut alerter, tasks) = Alerter::start(setup(&cfg)?, metrics.clone(), deliver_stop.clone())?;
    health.set("outbox", true);
    let result = consume(
        &cfg,
        &mut alerter,
        &metrics,
        &health,
        &mut ack_rx,
        &shutdown,
    )
    .await;
    alerter.tick();
    deliver_stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    server.stop().await;
    result
}

async fn consume(
    cfg: &AlerterConfig,
    alerter: &mut Alerter,
    metrics: &AlerterMetrics,
    health: &Health,
    acks: &mut mpsc::Receiver<AckRequest>,
    stop: &CancellationToken,
) -> Result<(), ServiceError> {
    if !sideline_kafka::topics::ensure_contract_until_ready(
        &cfg.kafka,
        "sideline-alerter-admin",
        stop,
    )
    .await?
    {
        return Ok(());
    }
    let consumer: StreamConsumer = cfg
        .kafka
        .client_config(
            &format!("sideline-alerter-{}", std::process::id()),
            &[
                ("group.id", cfg.alerter.group_id.as_str()),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "1000"),
            ],
        )?
        .create()?;
    let topic = cfg.kafka.topics.alerts.as_str();
    consumer.subscribe(&[topic])?;
    health.set("kafka", true);
    // Safety net against coordinators that orphan a dead member's partitions (tansu keeps a
    // killed alerter's partitions assigned to it; a restarted one would read nothing).
    let mut watchdog = Watchdog::spawn(
        &cfg.kafka,
        &cfg.alerter.group_id,
        &[topic],
        Duration::from_secs(cfg.alerter.orphan_grace_s),
        stop,
    );
    let producer = sideline_kafka::producer::producer(
        &cfg.kafka,
        "sideline-alerter-acks",
        sideline_kafka::producer::DeliveryTimeout::Millis(30_000),
        sideline_kafka::producer::Ordering::Idempotent,
    )?;
    let mut archiving: Option<tokio::task::JoinHandle<usize>> = None;
    let mut stream = consumer.stream();
    // Acknowledgements made elsewhere (the bench page) stop the escalation here too.
    let acks_in = crate::acks_in::consumer(&cfg.kafka)?;
    let mut acks_stream = acks_in.stream();
    let mut inbox = crate::acks_in::AckInbox::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut uncommitted = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(done) = async { match archiving.as_mut() { Some(h) => Some(h.await), None => None } }, if archiving.is_some() => {
                archiving = None;
                alerter.acks_archived(done.unwrap_or(0));
            }
            m = stream.next() => match m {
                Some(Ok(m)) => match m.payload().map(Item::decode) {
                    Some(Ok(item)) => { alerter.offer(item); uncommitted = true; }
                    Some(Err(e)) => {
                        metrics.consumed.with_label_values(&[&format!("bad_{}", e.reason())]).inc();
                        tracing::warn!(message = "Alert record skipped.", partition = m.partition(), offset = m.offset(), error = %e);
                        uncommitted = true;
                    }
                    None => uncommitted = true,
                },
                Some(Err(e)) => {
                    tracing::warn!(message = "Kafka consumer error.", error = %e);
                    health.set("kafka", false);
                }
                None => break,
            },
            Some(req) = acks.recv() => req.answer(alerter),
            Some(m) = acks_stream.next() => match m {
                Ok(m) => match m.payload().map(<sideline_wire::pb::AlertAck as prost::Message>::decode) {
                    Some(Ok(a)) => inbox.offer(a, std::time::Instant::now(), |a| alerter.ack_recorded(a)),
                    Some(Err(e)) => tracing::warn!(message = "Acknowledgement record skipped: it does not decode.", offset = m.offset(), error = %e),
                    None => {}
                },
                Err(e) => tracing::warn!(message = "Kafka consumer error (acks).", error = %e),
            },
            () = watchdog.rejoin() => {
                if alerter.tick() && uncommitted
                    && consumer.commit_consumer_state(CommitMode::Sync).is_ok() {
                    uncommitted = false;
                }
                metrics.rejoins.inc();
                consumer.unsubscribe();
                consumer.subscribe(&[topic])?;
                tracing::warn!(message = "Rejoined the consumer group (a partition was orphaned).");
            }
            _ = tick.tick() => {
                if !inbox.is_empty() {
                    inbox.retry(std::time::Instant::now(), |a| alerter.ack_recorded(a));
                }
                if archiving.is_none() {
                    let records = alerter.unarchived_acks();
                    if !records.is_empty() {
                        archiving = Some(tokio::spawn(archive_acks(
                            producer.clone(),
                            cfg.kafka.topics.acks.clone(),
                            records,
                            metrics.clone(),
                        )));
                    }
                }
                let saved = alerter.tick();
                health.set("outbox", saved);
                if saved && uncommitted {
                    match consumer.commit_consumer_state(CommitMode::Async) {
                        Ok(()) => { uncommitted = false; health.set("kafka", true); }
                        Err(e) => tracing::warn!(message = "Offset commit failed; retrying.", error = %e),
                    }
                }
            }
        }
    }
    if let Some(h) = archiving {
        alerter.acks_archived(h.await.unwrap_or(0));
    }
    if alerter.tick() && uncommitted {
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
    }
    Ok(())
}

/// Produce `records` to `topic` in order, stopping at the first failure (the rest are
/// retried at a later tick); how many Kafka acknowledged.
async fn archive_acks(
    producer: rdkafka::producer::FutureProducer,
    topic: String,
    records: Vec<sideline_wire::pb::AlertAck>,
    metrics: AlerterMetrics,
) -> usize {
    use prost::Message as _;
    let mut done = 0;
    for r in &records {
        let value = r.encode_to_vec();
        let rec = rdkafka::producer::FutureRecord::to(&topic)
            .key(&r.alert_id)
            .payload(&value);
        match producer.send(rec, Duration::from_secs(5)).await {
            Ok(_) => {
                done += 1;
                metrics.acks_archived.with_label_values(&["ok"]).inc();
            }
            Err((error, _)) => {
                metrics.acks_archived.with_label_values(&["failed"]).inc();
                tracing::warn!(message = "Acknowledgement not written to the acks topic; retrying.", %error);
                break;
            }
        }
    }
    done
}
