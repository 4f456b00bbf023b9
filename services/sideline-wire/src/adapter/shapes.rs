//! Samples written in the built-in profiles' shapes, as each vendor's documentation shows them
//! (see `profiles/*.toml` for the pages), for `sideline replay --as <profile>` and for tests.
//! Precision is the vendors' own: times to the millisecond, Sewio's and the league feed's
//! positions to the centimetre (text / two decimals), RTLOC's to the millimetre, speeds to
//! mm/s.

use serde_json::{Map, Value, json};

use super::time::to_iso_ms;

/// One player's fix in a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix<'a> {
    /// The vendor's id of the tag or player.
    pub id: &'a str,
    /// Pitch x, y, m.
    pub x: f64,
    /// See `x`.
    pub y: f64,
    /// Speed, m/s.
    pub speed: Option<f32>,
}

fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

/// An RTLOC "tag-data" frame: every tag's fix at `t_us`, frame number `frame`.
pub fn rtloc(t_us: i64, frame: u64, fixes: &[Fix]) -> Vec<u8> {
    let mut tags = Map::new();
    for f in fixes {
        let mut tag = json!({"pos": [round(f.x, 3), round(f.y, 3), 0.0]});
        if let Some(v) = f.speed {
            tag["speed"] = json!(round(f64::from(v), 3));
        }
        tags.insert(f.id.to_string(), tag);
    }
    json!({
        "time": to_iso_ms(t_us),
        "meta": {"msg_type": "tag-data", "data_source": "replay-sideline"},
        "value": {"frame": frame, "tags": tags},
    })
    .to_string()
    .into_bytes()
}

/// A Sewio datastream change for one tag (posX, posY and clr, as text, UTC times).
pub fn sewio(t_us: i64, f: &Fix) -> Vec<u8> {
    let at = to_iso_ms(t_us).replace('T', " ").replace('Z', "");
    let ds = |id: &str, v: f64| json!({"id": id, "current_value": format!("{v:5.2}"), "at": at});
    json!({
        "body": {"id": f.id, "datastreams": [ds("posX", f.x), ds("posY", f.y), ds("clr", 0.1)]},
        "resource": format!("/feeds/{}", f.id),
    })
    .to_string()
    .into_bytes()
}

/// A league low-latency tracking frame: `home` and `away` fixes (metres from the pitch
/// centre), index `ix`, UTC time `t_us`.
pub fn league(fixture: &str, ix: u64, t_us: i64, home: &[Fix], away: &[Fix]) -> Vec<u8> {
    let team = |fixes: &[Fix]| -> Value {
        fixes
            .iter()
            .map(|f| {
                json!({"ro": 2, "jn": -1, "pl": f.id, "v": f.speed.map(|v| round(f64::from(v), 3)),
                       "pn": [round(f.x, 2), round(f.y, 2)]})
            })
            .collect()
    };
    json!({
        "id": fixture, "ix": ix, "ph": 1, "st": "running", "ut": t_us.div_euclid(1000),
        "ba": {"jn": -1}, "hm": team(home), "aw": team(away), "rf": [],
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::{Context, Shape, decode};
    use super::*;
    use crate::pb;

    fn xy(b: &pb::SampleBatch) -> (f64, f64, Option<f32>, i64) {
        match &b.samples[0].reading {
            Some(pb::sample::Reading::Position(p)) => match p.coord {
                Some(pb::position::Coord::Xy(c)) => (c.x_m, c.y_m, p.speed_mps, b.samples[0].t_us),
                _ => panic!("{b:?}"),
            },
            _ => panic!("{b:?}"),
        }
    }

    /// What a replay writes, each profile reads back: ids, times to the ms, positions to the
    /// shape's precision, speeds, and sequence numbers that repeat when the message does.
    #[test]
    fn each_shape_reads_back_through_its_profile() {
        let t = 1_765_000_000_123_456;
        let a = Fix {
            id: "7",
            x: 12.3456,
            y: -3.2109,
            speed: Some(5.4321),
        };
        let b = Fix {
            id: "9",
            x: 50.0,
            y: 20.0,
            speed: None,
        };
        let ctx = Context {
            source: "s",
            device_prefix: "p-",
            ..Context::default()
        };
        let r = decode(
            &Shape::profile("rtloc").unwrap(),
            &ctx,
            &rtloc(t, 42, &[a.clone(), b.clone()]),
        )
        .unwrap();
        assert_eq!(r.batches.len(), 2);
        assert_eq!(r.batches[0].device_id, "p-7");
        assert_eq!(r.batches[0].seq, 42);
        assert_eq!(
            xy(&r.batches[0]),
            (12.346, -3.211, Some(5.432), t / 1000 * 1000)
        );
        assert_eq!(xy(&r.batches[1]).2, None);

        let s = decode(&Shape::profile("sewio").unwrap(), &ctx, &sewio(t, &a)).unwrap();
        assert_eq!(xy(&s.batches[0]), (12.35, -3.21, None, t / 1000 * 1000));
        assert_eq!(s.batches[0].seq, (t / 1000 * 1000) as u64 / 10_000);

        let l = decode(
            &Shape::profile("league").unwrap(),
            &ctx,
            &league("f", 5, t, &[a], &[b]),
        )
        .unwrap();
        assert_eq!(
            l.batches
                .iter()
                .map(|b| b.device_id.as_str())
                .collect::<Vec<_>>(),
            ["p-7", "p-9"]
        );
        assert_eq!(
            xy(&l.batches[0]),
            (12.35, -3.21, Some(5.432), t / 1000 * 1000)
        );
        assert!(l.batches.iter().all(|b| b.seq == 5 && b.session_id == "s"));
    }
}
