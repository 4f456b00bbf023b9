//! Running the synthetic match through the engine offline (no brokers): the reference that
//! `sideline analyze --sim`, the benchmarks and the processor tests compare with.

use std::collections::BTreeMap;

use crate::{MatchConfig, MatchSim};
use sideline_engine::{AlertEvent, Engine, Outputs, Params, PlayerMetrics, WindowStore};

/// An engine set up with the simulated roster: devices, profiles, baselines.
pub fn engine_for<W: WindowStore>(sim: &MatchSim, params: Params) -> Engine<W> {
    let mut e = Engine::new(params, false);
    for p in sim.players() {
        e.assign(&p.device, &p.player, &p.team);
        e.set_profile(p.profile.clone());
        e.set_baseline(&p.player, p.baseline.clone());
    }
    for (player, at, on) in sim.lineup() {
        e.set_pitch(&sim.config().session, &player, at, Some(on));
    }
    e
}

/// The outputs of a whole match run offline.
#[derive(Debug, Default)]
pub struct MatchRun {
    /// The last snapshot of each player, by player id.
    pub last: BTreeMap<String, PlayerMetrics>,
    /// Every alert lifecycle event, in order.
    pub alerts: Vec<AlertEvent>,
    /// Path length each player actually ran while streaming, m, by player id (the truth).
    pub true_distance_m: BTreeMap<String, f64>,
}

/// Run a whole simulated match through the engine; `on_snapshot` sees every snapshot.
pub fn run_match(
    cfg: MatchConfig,
    params: Params,
    on_snapshot: impl FnMut(&PlayerMetrics),
) -> MatchRun {
    let sim = MatchSim::new(cfg);
    let engine: Engine = engine_for(&sim, params);
    run_engine(sim, engine, on_snapshot)
}

/// Run a whole simulated match through an engine set up by the caller (e.g. [`engine_for`]
/// with other baselines); `on_snapshot` sees every snapshot.
pub fn run_engine(
    mut sim: MatchSim,
    mut engine: Engine,
    mut on_snapshot: impl FnMut(&PlayerMetrics),
) -> MatchRun {
    let mut run = MatchRun::default();
    let mut out = Outputs::default();
    let mut keep = |out: &mut Outputs, run: &mut MatchRun| {
        run.alerts.append(&mut out.alerts);
        for m in out.metrics.drain(..) {
            on_snapshot(&m);
            run.last.insert(m.player.to_string(), m);
        }
    };
    while let Some(batches) = sim.next_batches() {
        for b in &batches {
            engine.ingest_batch(b, &mut out);
        }
        engine.tick(sim.now(), &mut out);
        keep(&mut out, &mut run);
    }
    engine.finish(&mut out);
    keep(&mut out, &mut run);
    run.true_distance_m = sim.true_distances().into_iter().collect();
    run
}
