//! Records as the services read them from Kafka: the first byte picks the topic (samples,
//! metrics, alerts, roster, baselines), the rest is the record's value. Decoding and the
//! conversions to engine types must refuse garbage with an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use sideline_wire::{pb, roster::Roster};

fuzz_target!(|data: &[u8]| {
    let Some((&topic, value)) = data.split_first() else {
        return;
    };
    match topic % 5 {
        0 => {
            if let Ok(b) = pb::SampleBatch::decode(value) {
                let _ =
                    sideline_wire::validate::validate(&b, &sideline_wire::Limits::default(), None);
            }
        }
        1 => {
            let _ = pb::PlayerMetrics::decode(value);
        }
        2 => {
            let _ = pb::Alert::decode(value);
        }
        3 => {
            // Roster records: "device:<id>" / "player:<id>" keys; the key is the value's
            // first line here.
            let (key, v) = match value.iter().position(|&b| b == b'\n') {
                Some(i) => (&value[..i], Some(&value[i + 1..])),
                None => (value, None),
            };
            let mut r = Roster::default();
            let _ = r.apply(key, v);
            let _ = r.records();
        }
        _ => {
            if let Ok(b) = pb::Baseline::decode(value) {
                let _ = sideline_wire::convert::baseline_from_pb(&b);
            }
        }
    }
});
