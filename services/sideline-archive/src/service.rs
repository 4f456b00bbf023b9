//! `sideline archive`: a consumer group on the samples, metrics and alerts topics feeding the
//! [`Archiver`], and the HTTP server (`/healthz`, `/readyz`, `/metrics`, and `POST /api/sql`:
//! [`crate::sql_api`]).
//!
//! Exactly once: the archive's manifests, not Kafka, say what is archived. Records at or below
//! a partition's archived offset are skipped, so what Kafka redelivers after a crash is never
//! written twice. Kafka's committed offsets follow each commit (they only save re-reading).
//! Before partitions are revoked the buffer is committed (inside the rebalance callback, so the
//! next owner starts after it); after an assignment the manifests are re-read.
//!
//! Commits run on the archiver's commit thread while reading goes on (one at a time; before a
//! revocation, at a rejoin and at shutdown the buffer is committed on the spot instead).
//!
//! Limits: when a commit fails (disk full) the rows stay buffered and the loop retries every
//! `flush_interval_s` (at most 10 s); once `max_rows` or `max_buffer_mb` are buffered it stops
//! reading (the backlog waits in Kafka, within its retention) and `/readyz` reports `archive`
//! not ready.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use sideline_common::Health;
use sideline_common::service::Service;
use sideline_kafka::watchdog::Watchdog;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::archiver::{Archiver, FlushPolicy, Topics};
use crate::config::ArchiveConfig;
use crate::metrics::ArchiveMetrics;
use crate::sql_api;
use crate::store::{ArchiveError, Store};
use crate::{pg, query};

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Metrics registration (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Kafka client creation or subscription (fatal: configuration).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Reading a file failed (TLS material named in the Kafka settings).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The archive failed for good (unreadable manifest, a bug).
    #[error("archive: {0}")]
    Archive(#[from] ArchiveError),
}

type Shared = Arc<Mutex<Archiver>>;

fn lock(a: &Shared) -> std::sync::MutexGuard<'_, Archiver> {
    a.lock().unwrap_or_else(|p| p.into_inner())
}

struct Context {
    archiver: Shared,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = r {
            let mut a = lock(&self.archiver);
            match a.flush() {
                Ok(f) => {
                    tracing::info!(message = "Committed before revocation.", rows = f.rows);
                    let _ = commit_offsets(c, &a, CommitMode::Sync);
                }
                Err(error) => {
                    tracing::error!(message = "Commit before revocation failed; the next owner re-reads those records.", %error)
                }
            }
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            if let Err(error) = lock(&self.archiver).refresh() {
                tracing::error!(message = "Re-reading the archive's manifests failed.", %error);
            }
            tracing::info!(message = "Partitions assigned.", count = tpl.count());
        }
    }
}

/// Commit to Kafka, for the partitions we own, the offsets after the archived ones.
fn commit_offsets<C: Consumer<X>, X: ConsumerContext>(
    c: &C,
    a: &Archiver,
    mode: CommitMode,
) -> Result<(), rdkafka::error::KafkaError> {
    let owned = c.assignment()?;
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, last) in a.archived() {
        if owned.find_partition(topic, partition).is_some() {
            tpl.add_partition_offset(topic, partition, Offset::Offset(last + 1))?;
        }
    }
    if tpl.count() > 0 {
        c.commit(&tpl, mode)?;
    }
    Ok(())
}

/// A commit failed: a fatal error stops the service; otherwise the rows stay buffered, the
/// archive is reported not ready, and the next try is at the returned instant.
fn commit_failed(
    e: ArchiveError,
    a: &Archiver,
    health: &Health,
    now: Instant,
    retry: Duration,
) -> Result<Instant, ServiceError> {
    if !e.retryable() {
        return Err(e.into());
    }
    health.set("archive", false);
    tracing::error!(message = "Archive commit failed; rows kept, retrying.", error = %e, buffered = a.buffered());
    Ok(now + retry)
}

/// Run until `shutdown`.
pub async fn run(
    cfg: ArchiveConfig,
    http: TcpListener,
    pg: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let svc = Service::new(&["kafka", "archive"]);
    let metrics = ArchiveMetrics::new(&svc.registry)?;
    let config_error = |e: String| ServiceError::Io(std::io::Error::other(e));
    let token = cfg.archive.sql.token().map_err(config_error)?;
    let runtime = sql_api::QueryRuntime::start(svc.server_token())?;
    if let (Some(listener), Some(settings)) =
        (pg, cfg.archive.sql.pg_settings().map_err(config_error)?)
    {
        let ctx = query::context_limited(
            &cfg.archive.dir,
            &cfg.archive.object_store,
            Some(cfg.archive.sql.memory_mb.saturating_mul(1024 * 1024)),
        )
        .await
        .map_err(|e| config_error(format!("archive.dir: {e}")))?;
        pg::add_catalog(&ctx).map_err(|e| config_error(e.to_string()))?;
        let pg_metrics =
            pg::PgMetrics::new(Some(&svc.registry)).map_err(|e| config_error(e.to_string()))?;
        runtime.spawn(pg::serve(
            listener,
            Arc::new(ctx),
            settings,
            pg_metrics,
            svc.server_token(),
        ));
    }
    let sql = sql_api::router(sql_api::SqlState {
        root: cfg.archive.dir.clone(),
        opts: cfg.archive.object_store.clone(),
        token,
        limits: cfg.archive.sql.clone(),
        metrics: metrics.clone(),
        runtime,
    });
    let server = svc.serve(http, sql);
    let result = consume(&cfg, metrics, &svc.health, &shutdown).await;
    server.stop().await;
    result
}

async fn consume(
    cfg: &ArchiveConfig,
    metrics: ArchiveMetrics,
    health: &Health,
    stop: &CancellationToken,
) -> Result<(), ServiceError> {
    let a = &cfg.archive;
    let store = Store::open_with(&a.dir, &a.object_store)?;
    let t = &cfg.kafka.topics;
    let topics = Topics {
        samples: t.samples.clone(),
        metrics: t.metrics.clone(),
        alerts: t.alerts.clone(),
        acks: t.acks.clone(),
    };
    let archiver: Shared = Arc::new(Mutex::new(Archiver::new(
        store,
        topics.clone(),
        FlushPolicy {
            max_rows: a.max_rows,
            max_bytes: a.max_buffer_mb.saturating_mul(1024 * 1024),
            max_age: Duration::from_secs(a.flush_interval_s),
        },
        metrics,
    )));
    health.set("archive", true);
    if !sideline_kafka::topics::ensure_contract_until_ready(
        &cfg.kafka,
        "sideline-archive-admin",
        stop,
    )
    .await?
    {
        return Ok(());
    }
    let consumer: StreamConsumer<Context> = cfg
        .kafka
        .client_config(
            &format!("sideline-archive-{}", std::process::id()),
            &[
                ("group.id", a.group_id.as_str()),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "1000"),
            ],
        )?
        .create_with_context(Context {
            archiver: archiver.clone(),
        })?;
    let mut subscribe: Vec<&str> = Vec::new();
    for (on, topic) in [
        (a.samples, &topics.samples),
        (a.metrics, &topics.metrics),
        (a.alerts, &topics.alerts),
        (a.alerts, &topics.acks),
    ] {
        if on {
            subscribe.push(topic);
        }
    }
    consumer.subscribe(&subscribe)?;
    health.set("kafka", true);
    // Safety net against coordinators that orphan a dead member's partitions.
    let mut watchdog = Watchdog::spawn(
        &cfg.kafka,
        &a.group_id,
        &subscribe,
        Duration::from_secs(a.orphan_grace_s),
        stop,
    );
    let mut stream = consumer.stream();
    // Often enough that a finished background commit is followed at once by the next when the
    // buffer is full (reading waits meanwhile).
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut next_try = Instant::now();
    let retry = Duration::from_secs(cfg.archive.flush_interval_s.min(10));
    loop {
        let full = lock(&archiver).full();
        tokio::select! {
            _ = stop.cancelled() => break,
            m = stream.next(), if !full => match m {
                Some(Ok(m)) => {
                    let key = m.key().map(String::from_utf8_lossy).unwrap_or_default();
                    lock(&archiver).offer(
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        &key,
                        m.payload().unwrap_or_default(),
                        Instant::now(),
                    );
                }
                Some(Err(e)) => {
                    tracing::warn!(message = "Kafka consumer error.", error = %e);
                    health.set("kafka", false);
                }
                None => break,
            },
            () = watchdog.rejoin() => {
                let mut g = lock(&archiver);
                if g.flush().is_ok() {
                    let _ = commit_offsets(&consumer, &g, CommitMode::Sync);
                }
                drop(g);
                consumer.unsubscribe();
                consumer.subscribe(&subscribe)?;
                tracing::warn!(message = "Rejoined the consumer group (a partition was orphaned).");
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let mut g = lock(&archiver);
                // A commit finished on the commit thread: Kafka's offsets follow it.
                if let Some(outcome) = g.poll() {
                    match outcome {
                        Ok(f) => {
                            health.set("archive", true);
                            if f.rows > 0 {
                                tracing::debug!(message = "Committed.", rows = f.rows, files = f.files, bytes = f.bytes);
                            }
                            match commit_offsets(&consumer, &g, CommitMode::Async) {
                                Ok(()) => health.set("kafka", true),
                                Err(e) => tracing::warn!(message = "Kafka offset commit failed (the archive's own offsets stand).", error = %e),
                            }
                        }
                        Err(e) => next_try = commit_failed(e, &g, health, now, retry)?,
                    }
                }
                // The next commit starts on the commit thread while reading goes on.
                if !g.flushing()
                    && g.due(now)
                    && now >= next_try
                    && let Err(e) = g.flush_behind()
                {
                    next_try = commit_failed(e, &g, health, now, retry)?;
                }
            }
        }
    }
    let mut g = lock(&archiver);
    match g.flush() {
        Ok(_) => {
            let _ = commit_offsets(&consumer, &g, CommitMode::Sync);
        }
        Err(e) => {
            tracing::error!(message = "Final commit failed; Kafka still holds those records.", error = %e)
        }
    }
    Ok(())
}
