//! A pod's MQTT payload (JSON or protobuf, detected as ingest does), decoded and validated
//! against the default limits, and what passes run through the engine twice (the second time
//! as a duplicate delivery).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sideline_wire::{Limits, decode_batch};

/// A fixed "now" for the clock-skew checks (2026-01-10T15:00:00Z).
const NOW: i64 = 1_768_057_200_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = sideline_wire::validate::decode_pb(data);
    if let Ok((_, batch)) = decode_batch(data, &Limits::default(), Some(NOW)) {
        common::run_batches(&[batch.clone(), batch]);
    }
});
