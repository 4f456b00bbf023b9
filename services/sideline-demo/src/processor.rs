//! The demo's processor: the same [`Engine`] as `sideline process`, fed from the in-process
//! bus instead of Kafka (one process holds every player, so there are no partitions, offsets or
//! snapshots to manage; nothing survives a restart).
//!
//! Event time: each player's seconds close as his own samples pass them (the engine's allowed
//! lateness). A player who has sent nothing for [`QUIET_WALL`] of wall time while others play
//! (bench, dead pod) is advanced to [`IDLE_S`] behind the newest sample of anyone, so his "no
//! signal" seconds and device alerts come out (judging silence by the wall clock keeps a player
//! whose batches merely arrive a little later than others' from being advanced past them at
//! high `--speed`); when the whole stream stops (full time, simulator ended) everyone advances
//! with the wall clock (× `speed`). Records that do not decode or validate are
//! counted (`sideline_processor_dlq_records_total`) and logged, never fatal.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use prost::Message as _;
use sideline_bus::Record;
use sideline_engine::{AlertEvent, Engine, Micros, PlayerMetrics};
use sideline_processor::metrics::ProcessorMetrics;
use sideline_wire::pb;
use sideline_wire::validate::{Limits, validate};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use sideline_bench::model::{AlertItem, Snapshot};
use sideline_bench::view::SquadView;

/// A silent player is advanced to this far behind the newest sample of anyone, s.
pub const IDLE_S: i64 = 10;
/// With no record at all for this long, everyone advances with the wall clock.
pub const QUIET_WALL: Duration = Duration::from_secs(2);

/// What the processor publishes as it goes (for the console and the page). Snapshots are not
/// broadcast (the view holds them; the page polls it every second), so a slow listener lags
/// only on alerts, and the feed in the view keeps every alert anyway.
#[derive(Debug, Clone)]
pub enum Update {
    /// An alert lifecycle event.
    Alert(Arc<AlertEvent>),
}

/// The processor's state.
pub struct DemoProcessor {
    engine: Engine,
    view: Arc<RwLock<SquadView>>,
    /// Each player's latest snapshot as the engine gave it (for checks against offline runs).
    latest: Arc<RwLock<HashMap<String, PlayerMetrics>>>,
    /// Alert events for the page's stream.
    page: broadcast::Sender<AlertItem>,
    metrics: ProcessorMetrics,
    updates: broadcast::Sender<Update>,
    limits: Limits,
    newest: Option<Micros>,
    heard: HashMap<String, Instant>,
    out: Vec<PlayerMetrics>,
    alerts: Vec<AlertEvent>,
}

impl DemoProcessor {
    /// A processor around `engine` (roster, profiles and baselines already set).
    pub fn new(
        engine: Engine,
        view: Arc<RwLock<SquadView>>,
        page: broadcast::Sender<AlertItem>,
        metrics: ProcessorMetrics,
        updates: broadcast::Sender<Update>,
    ) -> Self {
        DemoProcessor {
            engine,
            view,
            latest: Arc::default(),
            page,
            metrics,
            updates,
            limits: Limits {
                max_past_s: None,
                max_future_s: 1e12,
                ..Limits::default()
            },
            newest: None,
            heard: HashMap::new(),
            out: Vec::new(),
            alerts: Vec::new(),
        }
    }

    /// One record of the samples topic.
    pub fn record(&mut self, r: &Record) {
        self.metrics.records.inc();
        let b = match pb::SampleBatch::decode(r.value.as_ref()) {
            Ok(b) => b,
            Err(error) => return self.refuse("undecodable", &error.to_string()),
        };
        let batch = match validate(&b, &self.limits, None) {
            Ok(x) => x,
            Err(error) => return self.refuse("invalid", &error.to_string()),
        };
        let player = if b.player_id.is_empty() {
            &r.key
        } else {
            &b.player_id
        };
        if let Some(t) = batch.samples.iter().map(|s| s.t).max() {
            self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
        }
        match self.heard.get_mut(player.as_str()) {
            Some(at) => *at = Instant::now(),
            None => {
                self.heard.insert(player.clone(), Instant::now());
            }
        }
        let o = self.engine.ingest_routed(
            player,
            &b.team_id,
            &b.device_session_id,
            &batch,
            &mut self.out,
        );
        if o.duplicate_batch {
            self.metrics.duplicate_batches.inc();
        }
        self.metrics.samples.inc_by(u64::from(o.accepted));
        if !o.late.is_empty() {
            self.metrics.late_samples.inc_by(o.late.len() as u64);
        }
        if !o.time_jumps.is_empty() {
            let n = o.time_jumps.len();
            self.metrics.time_jump_samples.inc_by(n as u64);
            self.refuse(
                "time_jump",
                &format!("{n} sample(s) far ahead of {player}'s clock, not confirmed"),
            );
        }
        self.emit();
    }

    fn refuse(&self, reason: &str, detail: &str) {
        self.metrics.dlq.with_label_values(&[reason]).inc();
        tracing::warn!(message = "Sample record refused.", reason, detail);
    }

    /// Advance silent players (see the module docs); `quiet_for` is the wall time since the
    /// last record, `speed` the simulator's speed-up.
    pub fn tick(&mut self, quiet_for: Duration, speed: f64) {
        let Some(newest) = self.newest else { return };
        let idle = IDLE_S * 1_000_000;
        let now = if quiet_for >= QUIET_WALL {
            newest + (quiet_for.as_secs_f64() * speed.max(1.0) * 1e6) as Micros
        } else {
            newest - idle
        };
        let heard = &self.heard;
        self.engine.tick_each(
            |pe| {
                let silent = heard
                    .get(pe.player())
                    .is_none_or(|at| at.elapsed() >= QUIET_WALL);
                match pe.newest() {
                    Some(n) if n >= now || !silent => None,
                    _ => Some(now),
                }
            },
            &mut self.out,
        );
        self.emit();
    }

    fn emit(&mut self) {
        if self.out.is_empty() {
            return;
        }
        self.engine.observe_alerts(&self.out, &mut self.alerts);
        let snapshots = std::mem::take(&mut self.out);
        let now = sideline_bench::http::now_us();
        {
            let mut v = self.view.write().unwrap_or_else(|p| p.into_inner());
            let mut latest = self.latest.write().unwrap_or_else(|p| p.into_inner());
            for m in &snapshots {
                v.snapshot(Snapshot::from_engine(m), now);
                self.metrics.player.set(m, self.engine.baseline(&m.player));
                latest.insert(m.player.to_string(), m.clone());
            }
            for a in &self.alerts {
                let item = AlertItem::from_engine(a);
                v.alert(item.clone());
                let _ = self.page.send(item);
            }
            self.metrics.players.set(latest.len() as i64);
        }
        self.metrics.metrics_out.inc_by(snapshots.len() as u64);
        for a in self.alerts.drain(..) {
            self.metrics
                .alerts_out
                .with_label_values(&[a.kind.as_str()])
                .inc();
            let _ = self.updates.send(Update::Alert(Arc::new(a)));
        }
    }

    /// Each player's latest snapshot as the engine gave it.
    pub fn latest(&self) -> Arc<RwLock<HashMap<String, PlayerMetrics>>> {
        self.latest.clone()
    }

    /// The engine (for tests and shutdown).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Run until `stop`: records from `rx`, ticks every 200 ms.
pub async fn run(
    mut p: DemoProcessor,
    mut rx: mpsc::Receiver<Record>,
    speed: f64,
    stop: CancellationToken,
) -> DemoProcessor {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return p,
            r = rx.recv() => match r {
                Some(r) => { p.record(&r); last = Instant::now(); }
                None => return p,
            },
            _ = tick.tick() => p.tick(last.elapsed(), speed),
        }
    }
}
