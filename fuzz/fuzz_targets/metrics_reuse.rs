//! `PlayerMetrics` records as the archiver decodes them, into one reused message
//! (`sideline_wire::reuse::MetricsDecoder`): for any bytes, the reused decode must agree with
//! a fresh `PlayerMetrics::decode` (both refuse, or both give the same message, compared by
//! re-encoding so that a NaN equals itself), whatever record came before. The skipping decoder (terms' `block` and `label` left out) must give
//! the fresh message with those emptied whenever the fresh decode succeeds.
//!
//! Input: 3-byte edits (big-endian position modulo the record's length, new byte value) to a
//! real record; a trailing single byte, if any, cuts it to that share of its length. The
//! decoders see the real record, the edited one, the real one again and the edited one again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sideline_wire::pb;
use sideline_wire::reuse::MetricsDecoder;

fn record() -> Vec<u8> {
    let term = |id: &str, points: f64| pb::Term {
        id: id.into(),
        block: "B".into(),
        points,
        state: 1,
        value: Some(points * 2.0),
        threshold: Some(1.0),
        label: format!("what {id} means"),
    };
    pb::PlayerMetrics {
        player_id: "home-07".into(),
        team_id: "home".into(),
        session_id: "match".into(),
        t_us: 1_768_057_200_000_000,
        params_version: "v1".into(),
        totals: Some(pb::Totals {
            distance_m: 4321.0,
            vmax_exposures: vec![3, 1],
            load_axes: vec![0.2, 0.3, 0.5],
            hr: Some(pb::HeartRateTotals {
                zone_s: vec![10.0, 20.0],
                ..Default::default()
            }),
            ..Default::default()
        }),
        windows: vec![pb::WindowValues {
            length_s: 300,
            hsr_m: 50.0,
            ..Default::default()
        }],
        fatigue: Some(pb::Fatigue {
            blocks: vec![pb::Block {
                index: 1,
                ..Default::default()
            }],
            ..Default::default()
        }),
        risk: Some(pb::Risk {
            score: 2.0,
            blocks: vec![1.0, 1.0],
            terms: vec![term("a_age", 0.5), term("b_hsr_z", 1.5)],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn without_text(mut m: pb::PlayerMetrics) -> pb::PlayerMetrics {
    for t in m.risk.iter_mut().flat_map(|r| r.terms.iter_mut()) {
        t.block.clear();
        t.label.clear();
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let good = record();
    let mut bytes = good.clone();
    let edits = data.chunks_exact(3);
    let cut = edits.remainder().first().copied();
    for e in edits {
        let at = usize::from(u16::from_be_bytes([e[0], e[1]])) % bytes.len();
        bytes[at] = e[2];
    }
    if let Some(c) = cut {
        bytes.truncate(bytes.len() * usize::from(c) / 255);
    }
    let mut exact = MetricsDecoder::default();
    let mut skipping = MetricsDecoder::skipping_term_text();
    for input in [&good, &bytes, &good, &bytes] {
        let fresh = pb::PlayerMetrics::decode(input.as_slice());
        match (&fresh, exact.decode(input)) {
            (Ok(f), Ok(r)) => assert_eq!(f.encode_to_vec(), r.encode_to_vec()),
            (Err(_), Err(_)) => {}
            (f, r) => panic!("fresh {f:?} but reused {r:?}"),
        }
        if let (Ok(f), Ok(r)) = (fresh, skipping.decode(input)) {
            assert_eq!(without_text(f).encode_to_vec(), r.encode_to_vec());
        }
    }
});
