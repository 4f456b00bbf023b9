//! # sideline-demo
//!
//! `sideline demo`: the whole pipeline in one process with no external service, for a laptop
//! at the bench or an evaluation. Pods (the simulator, real devices, scripts) publish to an
//! embedded MQTT broker; ingest's pump (the same code as `sideline ingest`) validates and maps
//! their batches and puts them on the in-process [`MemoryBus`] in place of Kafka; the same
//! engine as `sideline process` turns them into per-second metrics and alerts; alerts are
//! printed on the console and, if a webhook is given, sent to team chat through the alerter's
//! core; an HTTP server serves `/metrics`, the JSON API, the live page and `/ack/<token>`.
//!
//! # Layout
//!
//! - [`broker`]: the embedded MQTT broker (rumqttd).
//! - [`chat`]: alerts to a chat webhook (the alerter's core).
//! - [`processor`]: the production processor's core (`sideline_processor::core`) fed from the
//!   bus.
//! - the page, its API and the squad state behind them: the `sideline-bench` crate, the same
//!   view `sideline bench` serves from Kafka (here fed in process, sign-in open on loopback,
//!   acknowledgements by typed name).
//! - this file: [`Demo`], which starts and stops all of it.

pub mod broker;
pub mod chat;
pub mod processor;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use sideline_bus::MemoryBus;
use sideline_common::CancellationToken;
use sideline_common::service::{Running, Service};
use sideline_engine::{Baseline, Engine, Lifecycle, Params, PlayerMetrics};
use sideline_ingest::IngestConfig;
use sideline_ingest::metrics::IngestMetrics;
use sideline_ingest::pipeline::Pipeline;
use sideline_processor::metrics::ProcessorMetrics;
use sideline_sim::MatchSim;
use sideline_wire::roster::Roster;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use broker::EmbeddedBroker;
use processor::{DemoProcessor, Update};
use sideline_bench::auth::Auth;
use sideline_bench::http::{ApiState, PageSettings};
use sideline_bench::view::{Person, SquadView};

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The embedded broker did not start.
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    /// Metric registration failed (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The built-in configuration was refused (a bug).
    #[error("configuration: {0}")]
    Config(String),
    /// Ingest's subscription was not granted by the embedded broker in time.
    #[error("ingest not subscribed to the embedded broker after {0:?}")]
    NotSubscribed(std::time::Duration),
}

/// How long [`Demo::start`] waits for ingest's subscription to be granted.
const SUBSCRIBE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// MQTT 3.1.1 listener of the embedded broker.
    pub mqtt_v4: SocketAddr,
    /// MQTT 5 listener of the embedded broker.
    pub mqtt_v5: SocketAddr,
    /// The squads (devices, profiles, baselines) come from this simulated match.
    pub sim: sideline_sim::MatchConfig,
    /// Simulator speed-up (event time advances this much faster than the wall clock).
    pub speed: f64,
    /// Print alert events on stdout.
    pub console: bool,
    /// Send alerts to a chat webhook too.
    pub chat: Option<chat::ChatConfig>,
    /// Load-history baselines by player in place of the simulated squads' per-role ones
    /// (e.g. computed from an archive's history); players not in it keep theirs.
    pub baselines: BTreeMap<String, Baseline>,
}

/// A running demo.
pub struct Demo {
    /// The embedded broker's listeners.
    pub broker: EmbeddedBroker,
    /// The HTTP server's address.
    pub http: SocketAddr,
    /// The squad state behind the page.
    pub view: Arc<RwLock<SquadView>>,
    /// Each player's latest snapshot as the engine gave it.
    pub latest: Arc<RwLock<HashMap<String, PlayerMetrics>>>,
    /// Live updates.
    pub updates: broadcast::Sender<Update>,
    stop: CancellationToken,
    tasks: CancellationToken,
    ingest: JoinHandle<Result<(), sideline_ingest::IngestError>>,
    processor: JoinHandle<DemoProcessor>,
    chat: Option<chat::Chat>,
    server: Running,
    others: Vec<JoinHandle<()>>,
}

impl Demo {
    /// Start everything; `http` is the already-bound listener for the API and page. Returns
    /// once ingest is subscribed to the embedded broker, so pods may publish straight away.
    pub async fn start(cfg: DemoConfig, http: TcpListener) -> Result<Self, DemoError> {
        let broker = EmbeddedBroker::start(cfg.mqtt_v4, cfg.mqtt_v5)?;
        let svc = Service::new(&["mqtt"]);
        let (registry, health) = (svc.registry.clone(), svc.health.clone());
        let (stop, tasks) = (CancellationToken::new(), CancellationToken::new());
        let mut others = Vec::new();

        // The bus, with its consumers in place before anything is produced.
        let bus = MemoryBus::new(10_000);
        let mut icfg: IngestConfig =
            sideline_common::config::load(sideline_ingest::config::DEFAULTS, None)
                .map_err(|e| DemoError::Config(e.to_string()))?;
        icfg.mqtt.host = cfg.mqtt_v5.ip().to_string();
        icfg.mqtt.port = cfg.mqtt_v5.port();
        let samples = bus.subscribe(&icfg.kafka.topics.samples);
        let mut dlq = bus.subscribe(&icfg.kafka.topics.dlq);
        others.push(tokio::spawn(async move {
            while let Some(r) = dlq.recv().await {
                let reason = r
                    .headers
                    .iter()
                    .find(|(k, _)| k == sideline_wire::dlq::REASON)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                tracing::warn!(message = "Message refused by ingest.", %reason, key = %r.key);
            }
        }));

        // The squads of the simulated match: roster for ingest, profiles and baselines for
        // the engine.
        let sim = MatchSim::new(cfg.sim.clone());
        let roster =
            Roster::from_toml(&roster_toml(&sim)).map_err(|e| DemoError::Config(e.to_string()))?;
        let mut engine: Engine = sideline_sim::offline::engine_for(&sim, Params::default());
        for (player, b) in &cfg.baselines {
            engine.set_baseline(player, b.clone());
        }

        let imetrics = IngestMetrics::new(&registry)?;
        let pmetrics = ProcessorMetrics::new(&registry)?;
        let pipeline = Pipeline::from_config(
            &icfg,
            Arc::new(bus.clone()),
            Arc::new(RwLock::new(roster)),
            &imetrics,
        );
        let ingest = {
            let (stop, tasks, health) = (stop.clone(), tasks.clone(), health.clone());
            tokio::spawn(async move {
                sideline_ingest::pump(
                    &icfg,
                    "sideline-demo-ingest",
                    pipeline,
                    &imetrics,
                    &health,
                    &stop,
                    &tasks,
                )
                .await
            })
        };

        let mut squad_view = SquadView::default();
        for p in sim.players() {
            squad_view.set_person(
                &p.player,
                Person {
                    name: p.profile.display_name.clone(),
                    number: p.profile.squad_number,
                    position: p.profile.position.clone(),
                },
            );
        }
        let view = Arc::new(RwLock::new(squad_view));
        let (updates, _) = broadcast::channel(1024);
        let (page_alerts, _) = broadcast::channel(1024);
        // Subscribed before the processor starts, so the chat sees every alert.
        let chat_rx = cfg.chat.as_ref().map(|_| updates.subscribe());
        let p = DemoProcessor::new(
            engine,
            view.clone(),
            page_alerts.clone(),
            pmetrics,
            updates.clone(),
            cfg.speed,
        );
        let latest = p.latest();
        let processor = tokio::spawn(processor::run(p, samples, tasks.clone()));

        if cfg.console {
            let mut rx = updates.subscribe();
            others.push(tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(Update::Alert(a)) => println!("{}", console_line(&a)),
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }));
        }

        let addr = http
            .local_addr()
            .map_err(|e| DemoError::Config(e.to_string()))?;
        let chat = match (&cfg.chat, chat_rx) {
            (Some(c), Some(rx)) => Some(chat::Chat::start(
                c,
                format!("http://{addr}"),
                &registry,
                rx,
                view.clone(),
                tasks.clone(),
            )?),
            _ => None,
        };
        let mut app = sideline_bench::http::router(ApiState {
            view: view.clone(),
            alerts: page_alerts,
            // Loopback, a laptop at the bench: nobody signs in, a typed name goes with an
            // acknowledgement.
            auth: Arc::new(Auth::Open { named_acks: true }),
            page: PageSettings {
                time_zone: "UTC".into(),
                theme: "dark".into(),
                title: "Sideline demo — bench view".into(),
            },
            acks: None,
            lineup: None,
            refused: None,
        });
        if let Some(c) = &chat {
            app = app.merge(c.routes.clone());
        }
        let server = svc.serve(http, app);
        // Return only once ingest's subscription is granted: the broker drops whatever is
        // published before (nothing matches it), so a simulator started right after `start`
        // lost its first round of batches — one per device stream — without this wait.
        let t0 = tokio::time::Instant::now();
        while !health.get("mqtt") {
            if t0.elapsed() > SUBSCRIBE_WAIT {
                stop.cancel();
                tasks.cancel();
                server.stop().await;
                return Err(DemoError::NotSubscribed(SUBSCRIBE_WAIT));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(Demo {
            broker,
            http: addr,
            view,
            latest,
            updates,
            stop,
            tasks,
            ingest,
            processor,
            chat,
            server,
            others,
        })
    }

    /// Drain ingest, stop the processor and the server; returns the processor (its engine holds
    /// the final state).
    pub async fn shutdown(self) -> Option<DemoProcessor> {
        self.stop.cancel();
        let _ = self.ingest.await;
        self.tasks.cancel();
        let p = self.processor.await.ok();
        if let Some(c) = self.chat {
            c.join().await;
        }
        self.server.stop().await;
        for t in self.others {
            t.abort();
        }
        p
    }
}

/// The roster of the simulated squads as TOML.
pub fn roster_toml(sim: &MatchSim) -> String {
    let mut out = String::new();
    for p in sim.players() {
        out.push_str(&format!(
            "[[devices]]\ndevice = \"{}\"\nplayer = \"{}\"\nteam = \"{}\"\n",
            p.device, p.player, p.team
        ));
    }
    out.push_str(&sideline_wire::schedule::open_sessions_toml(
        sim.players().iter().map(|p| p.team.as_str()),
        &sim.config().session,
    ));
    out
}

/// One alert event as a console line.
pub fn console_line(a: &sideline_engine::AlertEvent) -> String {
    let what = match a.state {
        Lifecycle::Firing => "FIRING  ",
        Lifecycle::Updated => "UPDATED ",
        Lifecycle::Resolved => "RESOLVED",
    };
    let terms: Vec<String> = a
        .terms
        .iter()
        .filter(|t| t.points != 0.0)
        .map(|t| format!("{} {:+.1}", t.id.as_str(), t.points))
        .collect();
    format!(
        "{what} {:?} {} {} {:<18} value {:.2} (threshold {:.2}) {}",
        a.severity,
        a.team,
        a.player,
        a.kind.as_str(),
        a.value,
        a.threshold,
        terms.join(", ")
    )
}
