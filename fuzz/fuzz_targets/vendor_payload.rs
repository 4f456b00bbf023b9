//! A message from a source in another system's shape (RTLOC, Sewio, a league feed, a
//! Bluetooth 0x2A37 notification): the first byte picks the built-in profile, the rest is the
//! payload. Decoded as ingest decodes it, each batch validated against the default limits, and
//! what passes run through the engine twice (the second time as a duplicate delivery).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sideline_wire::Limits;
use sideline_wire::adapter::{Context, PROFILES, Shape, decode};

/// A fixed "now" for the clock-skew checks (2026-01-10T15:00:00Z).
const NOW: i64 = 1_768_057_200_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let (name, _) = PROFILES[usize::from(pick) % PROFILES.len()];
    let Some(shape) = Shape::profile(name) else {
        return;
    };
    let ctx = Context {
        source: "fuzz",
        device_prefix: "f-",
        topic_device: Some("strap"),
        received_us: NOW,
    };
    if let Ok(d) = decode(&shape, &ctx, payload) {
        let mut batches = Vec::new();
        for mut pb in d.batches {
            pb.team_id = "home".into();
            if let Ok(b) = sideline_wire::validate::validate(&pb, &Limits::default(), Some(NOW)) {
                batches.push(b);
            }
        }
        let twice: Vec<_> = batches.iter().chain(&batches).cloned().collect();
        common::run_batches(&twice);
    }
});
