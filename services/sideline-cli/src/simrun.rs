//! Running the synthetic match through the engine offline (no brokers): used by
//! `sideline analyze --sim`, the benchmark and the tests.

use std::collections::BTreeMap;

use sideline_engine::{Engine, Params, PlayerMetrics, WindowStore};
use sideline_sim::{MatchConfig, MatchSim};

/// An engine set up with the simulated roster: devices, profiles, baselines.
pub fn engine_for<W: WindowStore>(sim: &MatchSim, params: Params) -> Engine<W> {
    let mut e = Engine::new(params, false);
    for p in sim.players() {
        e.assign(&p.device, &p.player, &p.team);
        e.set_profile(p.profile.clone());
        e.set_baseline(&p.player, p.baseline.clone());
    }
    e
}

/// Every snapshot of a whole simulated match, passed to `on_snapshot` as it is produced;
/// returns the last snapshot of each player, by player id.
pub fn run_match(
    cfg: MatchConfig,
    params: Params,
    mut on_snapshot: impl FnMut(&PlayerMetrics),
) -> BTreeMap<String, PlayerMetrics> {
    let mut sim = MatchSim::new(cfg);
    let mut engine: Engine = engine_for(&sim, params);
    let mut last = BTreeMap::new();
    let mut out = Vec::new();
    let mut keep = |out: &mut Vec<PlayerMetrics>| {
        for m in out.drain(..) {
            on_snapshot(&m);
            last.insert(m.player.to_string(), m);
        }
    };
    while let Some(batches) = sim.next_batches() {
        for b in &batches {
            engine.ingest_batch(b, &mut out);
        }
        engine.tick(sim.now(), &mut out);
        keep(&mut out);
    }
    engine.finish(&mut out);
    keep(&mut out);
    last
}
