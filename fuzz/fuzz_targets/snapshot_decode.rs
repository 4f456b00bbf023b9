//! Player snapshots as the processor reads them back from `sideline.state.v1`: a real
//! snapshot (postcard of a player's engine, as `sideline_processor::state` writes it) with the
//! input's edits applied must either be refused at decode or give an engine that then runs
//! (more samples, a tick, the end of the session) without panicking once it has passed the
//! checks `Engine::restore` makes: one bad record must not
//! crash-loop the processor. Input: 3-byte edits (big-endian position modulo the snapshot's
//! length, new byte value); a trailing single byte, if any, cuts the snapshot to that share
//! of its length.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sideline_engine::{Params, PlayerEngine, Sample};

const T0: i64 = 1_768_057_200_000_000;

fn snapshot() -> &'static [u8] {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        let p = Params::default();
        let mut pe: PlayerEngine =
            PlayerEngine::new(&p, p.version_tag().into(), "home-07", "home", "match");
        let mut out = Vec::new();
        // 40 s at 10 Hz with a sprint in the middle, then a heart rate.
        for k in 0..400i64 {
            let v = if (150..200).contains(&k) { 8.5 } else { 3.0 };
            let _ = pe.ingest(
                &p,
                Sample::xy(T0 + k * 100_000, k as f64 * v / 10.0, 0.0, Some(v as f32)),
                &mut out,
            );
        }
        postcard::to_stdvec(&pe).unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = snapshot().to_vec();
    if bytes.is_empty() {
        return;
    }
    let edits = data.chunks_exact(3);
    let cut = edits.remainder().first().copied();
    for e in edits {
        let at = usize::from(u16::from_be_bytes([e[0], e[1]])) % bytes.len();
        bytes[at] = e[2];
    }
    if let Some(c) = cut {
        bytes.truncate(bytes.len() * usize::from(c) / 255);
    }
    let Ok(mut pe) = postcard::from_bytes::<PlayerEngine>(&bytes) else {
        return;
    };
    let p = Params::default();
    // What `Engine::restore` checks before a snapshot replaces a player.
    if pe.check(&p).is_err() {
        return;
    }
    let mut out = Vec::new();
    for k in 400..430i64 {
        let _ = pe.ingest(
            &p,
            Sample::xy(T0 + k * 100_000, k as f64 * 0.3, 0.0, Some(3.0)),
            &mut out,
        );
    }
    pe.tick(&p, T0 + 120_000_000, &mut out);
    pe.finish(&p, &mut out);
});
