//! Alerts to a team-chat webhook from the demo: the alerter's core (the same router,
//! renderers, outbox, rate limits and retries as `sideline alert`) fed with the demo engine's
//! alert events instead of `sideline.alerts.v1`.
//!
//! One destination, one route (every team, warning and above, no escalation); acknowledge
//! links point at the demo's own HTTP server (`/ack/<token>`). An acknowledgement on the bench
//! page and one through a chat link are the same thing: each is mirrored to the other every
//! [`TICK`], so a red acknowledged on the page is not repeated in chat, and a link tapped in
//! chat shows as acknowledged on the page.
//!
//! The outbox lives in a fresh directory per run unless one is given; it is removed at a
//! clean stop when nothing is left to deliver (otherwise its path is logged). If the alert
//! broadcast overruns this task (it holds 1024 events; a match raises a few dozen) the lost
//! events are counted in `sideline_alerter_alerts_consumed_total{outcome="lagged"}` and
//! logged.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use prometheus::Registry;
use sideline_alerter::alerter::{Alerter, Setup};
use sideline_alerter::config::{AlerterConfig, DEFAULTS, DestinationConfig};
use sideline_alerter::item::Item;
use sideline_alerter::metrics::AlerterMetrics;
use sideline_alerter::policy::{Route, SendResolved};
use sideline_alerter::render::Format;
use sideline_alerter::service::{AckRequest, ack_router, setup};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::DemoError;
use crate::processor::Update;
use sideline_bench::view::SquadView;

/// How often messages are formed and acknowledgements mirrored.
pub const TICK: Duration = Duration::from_millis(500);
/// The destination's name in metrics.
pub const DESTINATION: &str = "chat";

/// Where the demo's alerts go.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Webhook URL (Slack, Teams Workflows, Discord or any JSON receiver).
    pub url: String,
    /// Body format.
    pub format: Format,
    /// Outbox directory (None: a fresh one under the system's temporary directory).
    pub outbox_dir: Option<PathBuf>,
}

/// The running chat path.
pub struct Chat {
    /// `/ack/<token>` for the demo's HTTP server.
    pub routes: Router,
    /// The outbox directory.
    pub outbox_dir: PathBuf,
    task: JoinHandle<()>,
}

impl Chat {
    /// Start delivery and the task feeding the alerter from `updates`. `public_url` is the
    /// demo's HTTP base URL, for acknowledge links.
    pub fn start(
        cfg: &ChatConfig,
        public_url: String,
        registry: &Registry,
        updates: broadcast::Receiver<Update>,
        view: Arc<RwLock<SquadView>>,
        stop: CancellationToken,
    ) -> Result<Chat, DemoError> {
        let outbox_dir = cfg.outbox_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "sideline-demo-outbox-{}-{}",
                std::process::id(),
                sideline_alerter::delivery::now_us()
            ))
        });
        let mut acfg: AlerterConfig =
            toml::from_str(DEFAULTS).map_err(|e| DemoError::Config(e.to_string()))?;
        acfg.alerter.outbox_dir = outbox_dir.clone();
        acfg.alerter.public_url = public_url;
        acfg.alerter.destinations = vec![DestinationConfig {
            name: DESTINATION.into(),
            format: cfg.format,
            url: Some(cfg.url.clone()),
            url_file: None,
            url_env: None,
            rate_per_s: 1.0,
            burst: 3.0,
            send_resolved: if cfg.format == Format::Webhook {
                SendResolved::All
            } else {
                SendResolved::Critical
            },
        }];
        acfg.alerter.routes = vec![Route {
            teams: vec![],
            kinds: vec![],
            min_severity: sideline_engine::Severity::Warning,
            destinations: vec![DESTINATION.into()],
            escalate_to: None,
            escalate_after_s: 300,
        }];
        // A fresh secret per run: the demo's links need not outlive it.
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut key[..]);
        acfg.alerter.ack_secret = Some(key.iter().map(|b| format!("{b:02x}")).collect());
        let s: Setup = setup(&acfg).map_err(|e| DemoError::Config(e.to_string()))?;
        let metrics = AlerterMetrics::new(registry)?;
        let deliver_stop = CancellationToken::new();
        let (alerter, tasks) = Alerter::start(s, metrics.clone(), deliver_stop.clone())
            .map_err(|e| DemoError::Config(e.to_string()))?;
        let (ack_tx, ack_rx) = mpsc::channel::<AckRequest>(64);
        let dir = outbox_dir.clone();
        let task = tokio::spawn(async move {
            let mut a = alerter;
            feed(&mut a, &metrics, updates, ack_rx, &view, &stop).await;
            a.tick();
            deliver_stop.cancel();
            for t in tasks {
                let _ = t.await;
            }
            if a.pending() == 0 {
                let _ = std::fs::remove_dir_all(&dir);
            } else {
                tracing::warn!(message = "Chat messages left undelivered.", pending = a.pending(), outbox = %dir.display());
            }
        });
        Ok(Chat {
            routes: ack_router(ack_tx, None),
            outbox_dir,
            task,
        })
    }

    /// Wait for the task to end (after the stop token given to [`Chat::start`] is cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

async fn feed(
    a: &mut Alerter,
    metrics: &AlerterMetrics,
    mut updates: broadcast::Receiver<Update>,
    mut acks: mpsc::Receiver<AckRequest>,
    view: &RwLock<SquadView>,
    stop: &CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    let mut mirrored: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            u = updates.recv() => match u {
                Ok(Update::Alert(e)) => match Item::from_pb(&sideline_wire::convert::alert(&e)) {
                    Ok(item) => a.offer(item),
                    Err(error) => tracing::error!(message = "Alert not convertible (a bug).", %error),
                },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    metrics.consumed.with_label_values(&["lagged"]).inc_by(n);
                    tracing::error!(message = "Chat fell behind the alert stream; events lost.", lost = n);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Some(req) = acks.recv() => req.answer(a),
            _ = tick.tick() => {
                mirror(a, view, &mut mirrored);
                a.tick();
            }
        }
    }
}

/// Acknowledgements both ways between the page (view) and the router.
fn mirror(a: &mut Alerter, view: &RwLock<SquadView>, mirrored: &mut HashSet<String>) {
    let mut v = view.write().unwrap_or_else(|p| p.into_inner());
    let from_page: Vec<(String, String)> = v
        .acknowledged()
        .filter(|(id, _)| !mirrored.contains(*id))
        .map(|(id, by)| (id.to_string(), by.to_string()))
        .collect();
    for (id, by) in from_page {
        a.ack_id(&id, &by);
        mirrored.insert(id);
    }
    for id in a.acked_ids() {
        if v.ack(&id).is_none() {
            let by = a
                .acknowledgement(&id)
                .map_or_else(|| "chat link".to_string(), |k| k.by.clone());
            v.record_ack(&id, &by, sideline_bench::http::now_us());
        }
        mirrored.insert(id);
    }
}
