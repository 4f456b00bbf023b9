//! `make bench`: the engine over the full synthetic match (22 players × 90 min, 10 Hz position,
//! 100 Hz IMU, 1 Hz HR ≈ 13 M samples) on one core, next to a naive baseline that recomputes
//! every rolling window from its buckets each second, in the same run.
//!
//! The match is generated into memory first (not timed). Each variant runs `RUNS` times; the
//! median is reported. Figures go to stdout; record them in BENCHMARKS.md.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use sideline_engine::{Batch, Engine, IncrementalWindows, NaiveWindows, Params, WindowStore};
use sideline_sim::offline::engine_for;
use sideline_sim::{MatchConfig, MatchSim};

const RUNS: usize = 3;

struct Outcome {
    elapsed: Duration,
    snapshots: usize,
    state_max: usize,
    state_mean: usize,
}

fn run<W: WindowStore>(sim: &MatchSim, chunks: &[(i64, Vec<Batch>)]) -> Outcome {
    let mut engine: Engine<W> = engine_for(sim, Params::default());
    let mut out = sideline_engine::Outputs::default();
    let mut snapshots = 0;
    let start = Instant::now();
    for (now, batches) in chunks {
        for b in batches {
            engine.ingest_batch(b, &mut out);
        }
        engine.tick(*now, &mut out);
        snapshots += out.metrics.len();
        out.clear();
    }
    engine.finish(&mut out);
    snapshots += out.metrics.len();
    let elapsed = start.elapsed();
    let sizes: Vec<usize> = engine.players().map(|p| p.state_bytes()).collect();
    Outcome {
        elapsed,
        snapshots,
        state_max: sizes.iter().copied().max().unwrap_or(0),
        state_mean: sizes.iter().sum::<usize>() / sizes.len().max(1),
    }
}

fn median<W: WindowStore>(sim: &MatchSim, chunks: &[(i64, Vec<Batch>)]) -> Outcome {
    let mut runs: Vec<Outcome> = (0..RUNS).map(|_| run::<W>(sim, chunks)).collect();
    runs.sort_by_key(|o| o.elapsed);
    runs.swap_remove(RUNS / 2)
}

fn main() {
    let t = Instant::now();
    let mut sim = MatchSim::new(MatchConfig::default());
    let mut chunks = Vec::new();
    while let Some(b) = sim.next_batches() {
        chunks.push((sim.now(), b));
    }
    let samples: usize = chunks
        .iter()
        .flat_map(|(_, b)| b.iter())
        .map(|b| b.samples.len())
        .sum();
    let batches: usize = chunks.iter().map(|(_, b)| b.len()).sum();
    println!(
        "synthetic match: {} players, {:.0} min, {samples} samples in {batches} batches (generated in {:.2} s, not timed below)",
        sim.players().len(),
        sim.total_minutes(),
        t.elapsed().as_secs_f64()
    );
    println!("runs per variant: {RUNS}, median shown; one thread\n");
    println!(
        "{:<34} {:>9} {:>14} {:>12} {:>16} {:>16}",
        "variant", "time s", "samples/s", "snapshots", "state/player max", "state/player mean"
    );
    let inc = median::<IncrementalWindows>(&sim, &chunks);
    if std::env::var("SIDELINE_BENCH_ONLY").is_ok_and(|v| v == "engine") {
        // Profiling aid: `SIDELINE_BENCH_ONLY=engine perf record …` skips the baseline.
        println!("engine only: {:.3} s", inc.elapsed.as_secs_f64());
        return;
    }
    let naive = median::<NaiveWindows>(&sim, &chunks);
    for (name, o) in [
        ("engine (incremental windows)", &inc),
        ("baseline (naive window recompute)", &naive),
    ] {
        println!(
            "{:<34} {:>9.3} {:>14.0} {:>12} {:>13} B {:>14} B",
            name,
            o.elapsed.as_secs_f64(),
            samples as f64 / o.elapsed.as_secs_f64(),
            o.snapshots,
            o.state_max,
            o.state_mean
        );
    }
    println!(
        "\nengine vs baseline: {:.2}x faster; target ≤ 1 s for the match: {}; state target ≤ 64 KiB/player: {}",
        naive.elapsed.as_secs_f64() / inc.elapsed.as_secs_f64(),
        if inc.elapsed.as_secs_f64() <= 1.0 {
            "met"
        } else {
            "NOT met"
        },
        if inc.state_max <= 64 * 1024 {
            "met"
        } else {
            "NOT met"
        },
    );
}
