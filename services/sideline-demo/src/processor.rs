//! The demo's processor: the production processor's sans-I/O [`Core`] — the same decoding,
//! validation, engines, silence policy and alert rules as `sideline process` — fed from the
//! in-process bus instead of Kafka. One process holds every player, so the bus is one
//! partition whose offsets are the records' order; nothing survives a restart, so there are
//! no snapshots or commits. What differs from production is configuration, not code:
//!
//! - [`Timing::pace`] is the simulator's speed-up, so a silent player's seconds and an idle
//!   stream follow the recording's clock;
//! - the stream counts as idle after [`IDLE_ADVANCE`] of quiet at its end (production waits
//!   `idle_advance_s`, 30 s, to ride out a broker stall; an in-process bus has none), so at
//!   full time the last seconds close promptly.
//!
//! Outputs go to the squad view (the page), the page's alert stream and the console/chat
//! updates; dead letters are counted (`sideline_processor_dlq_records_total`) and logged.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sideline_bus::Record;
use sideline_engine::{AlertEvent, Engine, PlayerMetrics};
use sideline_processor::core::{Core, Timing};
use sideline_processor::metrics::ProcessorMetrics;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use sideline_bench::model::{AlertItem, Snapshot};
use sideline_bench::view::SquadView;

/// Quiet at the end of the bus this long and the stream advances with the wall clock (× pace).
pub const IDLE_ADVANCE: Duration = Duration::from_secs(2);
/// Time between two ticks.
pub const TICK: Duration = Duration::from_millis(200);
/// The bus's one partition.
const PARTITION: i32 = 0;

/// The demo's timing: production's session limits, [`IDLE_ADVANCE`], and `speed` as pace.
pub fn timing(speed: f64) -> Timing {
    Timing {
        idle_advance: IDLE_ADVANCE,
        session_idle: Duration::from_secs(600),
        forget_after: Duration::from_secs(43_200),
        pace: speed,
    }
}

/// What the processor publishes as it goes (for the console and the chat). Snapshots are not
/// broadcast (the view holds them; the page polls it every second), so a slow listener lags
/// only on alerts, and the feed in the view keeps every alert anyway.
#[derive(Debug, Clone)]
pub enum Update {
    /// An alert lifecycle event.
    Alert(Arc<AlertEvent>),
}

/// The core and where its outputs go.
pub struct DemoProcessor {
    core: Core,
    view: Arc<RwLock<SquadView>>,
    /// Each player's latest snapshot as the engine gave it (for checks against offline runs).
    latest: Arc<RwLock<HashMap<String, PlayerMetrics>>>,
    /// Alert events for the page's stream.
    page: broadcast::Sender<AlertItem>,
    updates: broadcast::Sender<Update>,
    /// The next record's offset on the bus.
    offset: i64,
}

impl DemoProcessor {
    /// A processor around `engine` (roster, profiles and baselines already set), its event
    /// time running `speed` times the wall clock.
    pub fn new(
        engine: Engine,
        view: Arc<RwLock<SquadView>>,
        page: broadcast::Sender<AlertItem>,
        metrics: ProcessorMetrics,
        updates: broadcast::Sender<Update>,
        speed: f64,
    ) -> Self {
        DemoProcessor {
            core: Core::new(engine, metrics, true, timing(speed)),
            view,
            latest: Arc::default(),
            page,
            updates,
            offset: 0,
        }
    }

    /// One record of the samples topic, read at `now`.
    pub fn record(&mut self, r: &Record, now: Instant) {
        self.core
            .record(PARTITION, self.offset, r.key.as_bytes(), &r.value, now);
        self.offset += 1;
        self.publish();
    }

    /// Nothing more is waiting on the bus at `now` (the end of the log, as Kafka says it).
    pub fn at_end(&mut self, now: Instant) {
        self.core.at_end(PARTITION, now);
    }

    /// Advance event time at `now` (see [`Core::tick`]).
    pub fn tick(&mut self, now: Instant) {
        self.core.tick(now);
        self.publish();
    }

    fn publish(&mut self) {
        let (out, dead) = self.core.take();
        for d in &dead {
            tracing::warn!(message = "Sample record refused.", reason = d.reason, detail = %d.detail, key = %d.key);
        }
        if out.is_empty() {
            return;
        }
        let now = sideline_bench::http::now_us();
        {
            let mut v = self.view.write().unwrap_or_else(|p| p.into_inner());
            let mut latest = self.latest.write().unwrap_or_else(|p| p.into_inner());
            for m in &out.metrics {
                v.snapshot(Snapshot::from_engine(m), now);
            }
            for m in out.metrics {
                latest.insert(m.player.to_string(), m);
            }
            for a in &out.alerts {
                let item = AlertItem::from_engine(a);
                v.alert(item.clone());
                let _ = self.page.send(item);
            }
        }
        for a in out.alerts {
            let _ = self.updates.send(Update::Alert(Arc::new(a)));
        }
    }

    /// Each player's latest snapshot as the engine gave it.
    pub fn latest(&self) -> Arc<RwLock<HashMap<String, PlayerMetrics>>> {
        self.latest.clone()
    }

    /// The engine (for tests and shutdown).
    pub fn engine(&self) -> &Engine {
        &self.core.engine
    }
}

/// Run until `stop`: records from `rx` (the end of the log whenever none is waiting), a tick
/// every [`TICK`].
pub async fn run(
    mut p: DemoProcessor,
    mut rx: mpsc::Receiver<Record>,
    stop: CancellationToken,
) -> DemoProcessor {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return p,
            r = rx.recv() => match r {
                Some(r) => {
                    p.record(&r, Instant::now());
                    if rx.is_empty() {
                        p.at_end(Instant::now());
                    }
                }
                None => return p,
            },
            _ = tick.tick() => p.tick(Instant::now()),
        }
    }
}

#[cfg(test)]
#[path = "processor_tests.rs"]
mod tests;
