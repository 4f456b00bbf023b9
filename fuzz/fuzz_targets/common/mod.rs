//! Shared by the fuzz targets: run whatever an importer or decoder accepted through the engine,
//! as `sideline analyze` and the processor would, so that odd but accepted values (huge times,
//! extreme coordinates) are fuzzed through the metrics too.

#![allow(dead_code)] // each target uses part of it

use sideline_engine::{Batch, Engine, Params};
use sideline_import::Dataset;

/// At most this many samples go through the engine per input, so that one large input cannot
/// make a run slow (the importers themselves see every byte).
const MAX_SAMPLES: usize = 20_000;

/// Feed an imported dataset to an auto-enrolling engine and close every second.
pub fn run_dataset(data: &Dataset) {
    let mut engine: Engine = Engine::new(Params::default(), true);
    let mut out = sideline_engine::Outputs::default();
    let mut n = 0;
    for track in &data.tracks {
        for s in &track.samples {
            if n == MAX_SAMPLES {
                break;
            }
            n += 1;
            let _ = engine.ingest(&track.player, &track.team, &data.session, *s, &mut out);
            out.clear();
        }
    }
    engine.finish(&mut out);
}

/// Feed validated device batches to an engine that knows their device.
pub fn run_batches(batches: &[Batch]) {
    let mut engine: Engine = Engine::new(Params::default(), true);
    let mut out = sideline_engine::Outputs::default();
    for b in batches {
        engine.ingest_batch(b, &mut out);
        out.clear();
    }
    engine.finish(&mut out);
}
