//! A player's engine read back from a snapshot is checked before it replaces a player
//! (`Engine::restore`): a window index outside its arrays, or an open second far from the
//! player's clock (closing the seconds in between would take hours), is refused. The
//! `snapshot_decode` fuzz target (fuzz/) edits real snapshots at random for the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sideline_engine::{Params, PlayerEngine, Sample};

const T0: i64 = 1_768_057_200_000_000;

fn engine(p: &Params) -> PlayerEngine {
    let mut pe: PlayerEngine =
        PlayerEngine::new(p, p.version_tag().into(), "home-07", "home", "match");
    let mut out = Vec::new();
    for k in 0..300i64 {
        pe.ingest(
            p,
            Sample::xy(T0 + k * 100_000, k as f64 * 0.4, 0.0, Some(4.0)),
            &mut out,
        )
        .unwrap();
    }
    pe
}

fn edited(pe: &PlayerEngine, edit: impl FnOnce(&mut serde_json::Value)) -> PlayerEngine {
    let mut v = serde_json::to_value(pe).unwrap();
    // JSON has no infinities: the detectors' "no peak yet" (−∞) comes back as null.
    for d in v["det"].as_object_mut().unwrap().values_mut() {
        for k in ["peak", "held_peak"] {
            if d[k].is_null() {
                d[k] = f64::MIN.into();
            }
        }
    }
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_snapshot_laid_out_otherwise_or_with_clocks_far_apart_is_refused() {
    let p = Params::default();
    let pe = engine(&p);
    pe.check(&p).unwrap();
    // Read back as written: accepted.
    let back: PlayerEngine = postcard::from_bytes(&postcard::to_stdvec(&pe).unwrap()).unwrap();
    back.check(&p).unwrap();

    let bad_index = edited(&pe, |v| v["idx"]["trend"] = 39.into());
    assert!(bad_index.check(&p).is_err());
    let years_back = edited(&pe, |v| v["cur_sec"] = 425_879_957i64.into());
    assert!(years_back.check(&p).unwrap_err().contains("a day"));
    // Parameters with other windows: the snapshot's layout is not theirs.
    let mut other = p.clone();
    other.windows.lengths_s.push(900);
    assert!(pe.check(&other).is_err());
}
