//! `sideline bench`: the view fed from Kafka ([`crate::source`]), the page and API
//! ([`crate::http`]) behind the staff sign-in ([`crate::auth`]), and the admin routes, until
//! shutdown.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sideline_common::service::Service;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::auth::{Auth, StaffFileError};
use crate::config::BenchConfig;
use crate::http::{ApiState, PageSettings};
use crate::metrics::BenchMetrics;
use crate::view::SquadView;

/// Why the bench stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Metrics registration (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Kafka client creation (fatal: configuration).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The staff file cannot be used (fatal: fix it).
    #[error(transparent)]
    Staff(#[from] StaffFileError),
    /// Serving failed.
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
}

/// The sign-in the configuration asks for.
pub fn auth(cfg: &BenchConfig) -> Result<Auth, StaffFileError> {
    let b = &cfg.bench;
    Ok(match (&b.staff_file, &b.identity_header) {
        (Some(f), _) => Auth::staff_file(f)?,
        (None, Some(h)) => Auth::Header { header: h.clone() },
        (None, None) => Auth::Open { named_acks: false },
    })
}

/// Run until `shutdown`.
pub async fn run(
    cfg: BenchConfig,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BenchError> {
    let auth = auth(&cfg)?;
    if !auth.signs_in() {
        tracing::warn!(
            message = "No staff sign-in configured: the bench page is read-only (nobody can acknowledge)."
        );
    }
    let svc = Service::new(&["kafka"]);
    let metrics = BenchMetrics::new(&svc.registry)?;
    let health = svc.health.clone();
    let view = Arc::new(RwLock::new(SquadView::default()));
    let (alerts, _) = broadcast::channel(256);
    let (ack_tx, ack_rx) = mpsc::channel(256);
    let (lineup_tx, lineup_rx) = mpsc::channel(64);
    let tasks = CancellationToken::new();
    let producer = sideline_kafka::producer::producer(
        &cfg.kafka,
        "sideline-bench-acks",
        sideline_kafka::producer::DeliveryTimeout::Millis(30_000),
        sideline_kafka::producer::Ordering::Idempotent,
    )?;
    let writer = tokio::spawn(crate::source::write_acks(
        producer.clone(),
        cfg.kafka.topics.acks.clone(),
        ack_rx,
        metrics.clone(),
        tasks.clone(),
    ));
    let lineup_writer = tokio::spawn(crate::source::write_lineup(
        producer,
        cfg.kafka.topics.roster.clone(),
        lineup_rx,
        metrics.clone(),
        tasks.clone(),
    ));
    let routes = crate::http::router(ApiState {
        view: view.clone(),
        alerts: alerts.clone(),
        auth: Arc::new(auth),
        page: PageSettings {
            time_zone: cfg.bench.time_zone.clone(),
            theme: cfg.bench.theme.clone(),
            title: cfg.bench.title.clone(),
        },
        acks: Some(ack_tx),
        lineup: Some(lineup_tx),
        refused: Some(metrics.sign_in_refused.clone()),
    });
    tracing::info!(message = "Bench serving.", addr = %http.local_addr()?);
    let server = svc.serve(http, routes);
    let h = health.clone();
    let result = crate::source::follow(
        cfg.kafka.clone(),
        Duration::from_secs(u64::from(cfg.bench.history_h) * 3600),
        view,
        alerts,
        metrics,
        move |ok| h.set("kafka", ok),
        shutdown.clone(),
    )
    .await;
    tasks.cancel();
    let _ = writer.await;
    let _ = lineup_writer.await;
    server.stop().await;
    tracing::info!(message = "Bench stopped.");
    Ok(result?)
}
