//! One vendor message → one `SampleBatch` per record (device), or a located reason.
//!
//! Each record gives at most one position (x/y or lat/lon, with its speed), one accelerometer
//! reading and one heart rate, all at the record's time. A field whose pointer finds nothing
//! (or `null`) is simply absent; a field that is there but unreadable is an error naming the
//! record and the pointer. Records without a device id or without any reading are skipped and
//! counted, never errors (a feed's ball, referees, unknown tracks and status messages).

use serde_json::Value;

use super::pointer::{number, resolve};
use super::time::{self, TimeFormat};
use super::{AccUnit, Encoding, RecordsKind, SeqFrom, Shape, SpeedUnit};
use crate::ErrorKind;
use crate::pb;

/// What the message does not say, from where it came.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The source's name (the devices' "boot" id downstream: stable across reconnects).
    pub source: &'a str,
    /// Put in front of every device id (to keep two systems' ids apart).
    pub device_prefix: &'a str,
    /// The `{device}` captured from the MQTT topic.
    pub topic_device: Option<&'a str>,
    /// When ingest received the message, µs since the Unix epoch.
    pub received_us: i64,
}

/// A message's batches, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// One per record with a device and a reading (team and player are left to ingest).
    pub batches: Vec<pb::SampleBatch>,
    /// Records without a device id.
    pub no_device: usize,
    /// Records without any reading.
    pub no_reading: usize,
}

/// Why a message cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct AdapterError {
    /// Dead-letter reason.
    pub kind: ErrorKind,
    /// Where and what.
    pub detail: String,
}

fn err(kind: ErrorKind, detail: String) -> AdapterError {
    AdapterError { kind, detail }
}

/// Decode `payload` in `shape`.
pub fn decode(shape: &Shape, ctx: &Context, payload: &[u8]) -> Result<Decoded, AdapterError> {
    if shape.encoding == Encoding::BleHrm {
        return ble(shape, ctx, payload);
    }
    let root: Value = serde_json::from_slice(payload)
        .map_err(|e| err(ErrorKind::Malformed, format!("not JSON: {e}")))?;
    let mut out = Decoded::default();
    let records: Vec<(String, Option<String>, &Value)> = if shape.records.is_empty() {
        vec![(String::new(), None, &root)]
    } else {
        let mut v = Vec::new();
        for at in &shape.records {
            let Some(r) = resolve(&root, &root, at) else {
                continue; // this message has none here (a heartbeat, another message type)
            };
            match (shape.records_kind, r) {
                (RecordsKind::One, r) => v.push((at.clone(), None, r)),
                (RecordsKind::List, Value::Array(a)) => {
                    v.extend(
                        a.iter()
                            .enumerate()
                            .map(|(i, r)| (format!("{at}/{i}"), None, r)),
                    );
                }
                (RecordsKind::Map, Value::Object(m)) => {
                    v.extend(
                        m.iter()
                            .map(|(k, r)| (format!("{at}/{k}"), Some(k.clone()), r)),
                    );
                }
                (_, Value::Null) => {}
                (kind, _) => {
                    return Err(err(
                        ErrorKind::Malformed,
                        format!("{at}: not the {kind:?} the shape expects"),
                    ));
                }
            }
        }
        v
    };
    for (at, key, rec) in records {
        let located = |e: AdapterError| err(e.kind, format!("record {at}: {}", e.detail));
        match record(shape, ctx, &root, rec, key.as_deref()).map_err(located)? {
            Rec::Batch(b) => out.batches.push(b),
            Rec::NoDevice => out.no_device += 1,
            Rec::NoReading => out.no_reading += 1,
        }
    }
    Ok(out)
}

enum Rec {
    Batch(pb::SampleBatch),
    NoDevice,
    NoReading,
}

/// The value at `ptr` unless the pointer is empty, the value absent or null.
fn field<'a>(root: &'a Value, rec: &'a Value, ptr: &str) -> Option<&'a Value> {
    if ptr.is_empty() {
        return None;
    }
    resolve(root, rec, ptr).filter(|v| !v.is_null())
}

fn num(root: &Value, rec: &Value, ptr: &str) -> Result<Option<f64>, AdapterError> {
    match field(root, rec, ptr) {
        None => Ok(None),
        Some(v) => number(v)
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or_else(|| err(ErrorKind::OutOfRange, format!("{ptr}: {v} is not a number"))),
    }
}

fn record(
    shape: &Shape,
    ctx: &Context,
    root: &Value,
    rec: &Value,
    key: Option<&str>,
) -> Result<Rec, AdapterError> {
    let device = match shape.device.as_str() {
        "@key" => key.map(str::to_string),
        "" => ctx.topic_device.map(str::to_string),
        p => field(root, rec, p).and_then(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
    };
    let Some(device) = device else {
        return Ok(Rec::NoDevice);
    };
    let mut readings = Vec::new();
    let position = match (num(root, rec, &shape.x)?, num(root, rec, &shape.y)?) {
        (Some(x), Some(y)) => Some(pb::position::Coord::Xy(pb::PitchXy {
            x_m: x * shape.xy_scale + shape.x_offset_m,
            y_m: y * shape.xy_scale + shape.y_offset_m,
        })),
        (None, None) => match (num(root, rec, &shape.lat)?, num(root, rec, &shape.lon)?) {
            (Some(lat), Some(lon)) => Some(pb::position::Coord::Latlon(pb::LatLon {
                lat_deg: lat,
                lon_deg: lon,
            })),
            (None, None) => None,
            _ => {
                return Err(err(
                    ErrorKind::Missing,
                    "lat without lon, or lon without lat".into(),
                ));
            }
        },
        _ => {
            return Err(err(
                ErrorKind::Missing,
                format!("{} without {}, or the reverse", shape.x, shape.y),
            ));
        }
    };
    if let Some(coord) = position {
        let speed = num(root, rec, &shape.speed)?.map(|v| match shape.speed_unit {
            SpeedUnit::Mps => v as f32,
            SpeedUnit::Kmh => (v / 3.6) as f32,
        });
        readings.push(pb::sample::Reading::Position(pb::Position {
            coord: Some(coord),
            speed_mps: speed,
            satellites: None,
            hdop: None,
        }));
    }
    if shape.acc.len() == 3 {
        let a: Vec<Option<f64>> = shape
            .acc
            .iter()
            .map(|p| num(root, rec, p))
            .collect::<Result<_, _>>()?;
        if let [Some(ax), Some(ay), Some(az)] = a[..] {
            let k = match shape.acc_unit {
                AccUnit::G => 1.0,
                AccUnit::Mg => 1e-3,
                AccUnit::Mps2 => 1.0 / 9.806_65,
            };
            readings.push(pb::sample::Reading::Imu(pb::Imu {
                ax_g: (ax * k) as f32,
                ay_g: (ay * k) as f32,
                az_g: (az * k) as f32,
                gyro: None,
            }));
        }
    }
    if let Some(bpm) = num(root, rec, &shape.heart_rate)? {
        let rr_ms = match field(root, rec, &shape.rr_ms) {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    number(v)
                        .filter(|n| (0.0..65_536.0).contains(n))
                        .map(|n| n.round() as u32)
                })
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| {
                    err(
                        ErrorKind::OutOfRange,
                        format!("{}: not an array of ms", shape.rr_ms),
                    )
                })?,
            Some(v) => {
                return Err(err(
                    ErrorKind::OutOfRange,
                    format!("{}: {v} is not an array", shape.rr_ms),
                ));
            }
        };
        readings.push(pb::sample::Reading::HeartRate(pb::HeartRate {
            bpm: bpm as f32,
            rr_ms,
        }));
    }
    if readings.is_empty() {
        return Ok(Rec::NoReading);
    }
    let frame = num(root, rec, &shape.frame)?;
    let t = match shape.time_format {
        TimeFormat::Received => ctx.received_us,
        TimeFormat::Frame => {
            let f = frame.ok_or_else(|| {
                err(
                    ErrorKind::Missing,
                    format!("{}: no frame number", shape.frame),
                )
            })?;
            shape.frame_epoch_us + (f * shape.frame_period_ms * 1e3).round() as i64
        }
        f => {
            let v = field(root, rec, &shape.time)
                .ok_or_else(|| err(ErrorKind::Missing, format!("{}: no time", shape.time)))?;
            time::parse(v, f)
                .map_err(|e| err(ErrorKind::BadTimestamp, format!("{}: {e}", shape.time)))?
        }
    };
    let samples = readings.into_iter().map(|r| sample(t, r)).collect();
    let seq = match shape.seq {
        SeqFrom::Frame => match frame {
            Some(f) if f >= 0.0 && f.fract() == 0.0 => f as u64,
            other => {
                return Err(err(
                    ErrorKind::OutOfRange,
                    format!("{}: {other:?} is not a frame number", shape.frame),
                ));
            }
        },
        SeqFrom::Time => time_seq(shape, t),
    };
    Ok(Rec::Batch(batch(ctx, &device, seq, samples)))
}

/// A sequence number from the event time: `frame_period_ms` steps, or, for the receive time
/// (which a redelivered message does not repeat, so nothing to de-duplicate), the µs itself, so
/// that notifications a gateway forwards in one burst stay distinct.
fn time_seq(shape: &Shape, t: i64) -> u64 {
    if shape.time_format == TimeFormat::Received {
        t.max(0) as u64
    } else {
        (t.max(0) as f64 / (shape.frame_period_ms * 1e3)).round() as u64
    }
}

fn sample(t: i64, r: pb::sample::Reading) -> pb::Sample {
    pb::Sample {
        t_us: t,
        reading: Some(r),
    }
}

fn batch(ctx: &Context, device: &str, seq: u64, samples: Vec<pb::Sample>) -> pb::SampleBatch {
    pb::SampleBatch {
        device_id: format!("{}{device}", ctx.device_prefix),
        session_id: ctx.source.to_string(),
        seq,
        samples,
        ..Default::default()
    }
}

fn ble(shape: &Shape, ctx: &Context, payload: &[u8]) -> Result<Decoded, AdapterError> {
    let hr = super::ble::decode(payload)
        .map_err(|e| err(ErrorKind::Malformed, format!("0x2A37: {e}")))?;
    let Some(device) = ctx.topic_device else {
        return Ok(Decoded {
            no_device: 1,
            ..Decoded::default()
        });
    };
    let t = ctx.received_us;
    let seq = time_seq(shape, t);
    let s = sample(
        t,
        pb::sample::Reading::HeartRate(pb::HeartRate {
            bpm: f32::from(hr.bpm),
            rr_ms: hr.rr_ms,
        }),
    );
    Ok(Decoded {
        batches: vec![batch(ctx, device, seq, vec![s])],
        ..Decoded::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/adapters/");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
    }

    fn ctx() -> Context<'static> {
        Context {
            source: "lps",
            device_prefix: "",
            topic_device: Some("strap-4"),
            received_us: 1_700_000_000_000_000,
        }
    }

    fn reading(b: &pb::SampleBatch, i: usize) -> &pb::sample::Reading {
        b.samples[i].reading.as_ref().unwrap()
    }

    #[test]
    fn the_documented_rtloc_frame_gives_each_tag_its_fix_speed_and_accelerometer() {
        let d = decode(
            &Shape::profile("rtloc").unwrap(),
            &ctx(),
            fixture("rtloc-tag-data.json").as_bytes(),
        )
        .unwrap();
        assert_eq!((d.batches.len(), d.no_reading, d.no_device), (2, 1, 0));
        let b = &d.batches[0];
        assert_eq!(
            (b.device_id.as_str(), b.seq, b.session_id.as_str()),
            ("2012", 658_885, "lps")
        );
        assert_eq!(b.samples[0].t_us, 1_645_870_039_128_000);
        let pb::sample::Reading::Position(p) = reading(b, 0) else {
            panic!()
        };
        assert_eq!(
            p.coord,
            Some(pb::position::Coord::Xy(pb::PitchXy {
                x_m: 12.41,
                y_m: 30.87
            }))
        );
        assert_eq!(p.speed_mps, Some(6.71));
        assert!(matches!(reading(b, 1), pb::sample::Reading::Imu(i) if i.az_g == 1.04));
        assert_eq!(d.batches[1].samples.len(), 1);
    }

    #[test]
    fn sewio_positions_come_from_their_datastreams_and_other_changes_are_skipped() {
        let shape = Shape::profile("sewio").unwrap();
        let got: Vec<Decoded> = fixture("sewio-websocket.jsonl")
            .lines()
            .map(|l| decode(&shape, &ctx(), l.as_bytes()).unwrap())
            .collect();
        let pb::sample::Reading::Position(p) = reading(&got[0].batches[0], 0) else {
            panic!()
        };
        assert_eq!(
            p.coord,
            Some(pb::position::Coord::Xy(pb::PitchXy {
                x_m: 6.34,
                y_m: 2.27
            }))
        );
        assert_eq!(got[0].batches[0].samples[0].t_us, 1_476_800_216_365_000);
        assert_eq!((got[1].batches.len(), got[1].no_reading), (0, 1));
        assert_eq!(got[2].batches[0].device_id, "18");
    }

    #[test]
    fn league_frames_split_per_player_and_unidentified_tracks_are_counted_not_sent() {
        let shape = Shape::profile("league").unwrap();
        let lines: Vec<String> = fixture("league-low-latency.jsonl")
            .lines()
            .map(String::from)
            .collect();
        // Control messages carry no records.
        for l in &lines[..2] {
            assert_eq!(
                decode(&shape, &ctx(), l.as_bytes()).unwrap(),
                Decoded::default()
            );
        }
        // The documented frame names tracks, not players.
        let d = decode(&shape, &ctx(), lines[2].as_bytes()).unwrap();
        assert_eq!((d.batches.len(), d.no_device), (0, 3));
        let by_track: toml::Table = "device = \"/tr\"".parse().unwrap();
        let d = decode(
            &Shape::resolve("league", &by_track).unwrap(),
            &ctx(),
            lines[2].as_bytes(),
        )
        .unwrap();
        assert_eq!(
            d.batches
                .iter()
                .map(|b| b.device_id.as_str())
                .collect::<Vec<_>>(),
            ["12", "13", "15"]
        );
        let d = decode(&shape, &ctx(), lines[3].as_bytes()).unwrap();
        let ids: Vec<&str> = d.batches.iter().map(|b| b.device_id.as_str()).collect();
        assert_eq!((ids, d.no_device), (vec!["p-0001", "p-0007", "a-0009"], 1));
        let b = &d.batches[1];
        assert_eq!((b.seq, b.samples[0].t_us), (1, 1_682_899_391_862_000));
        let pb::sample::Reading::Position(p) = reading(b, 0) else {
            panic!()
        };
        assert_eq!(
            (p.speed_mps, p.coord),
            (
                Some(7.91),
                Some(pb::position::Coord::Xy(pb::PitchXy {
                    x_m: 10.5,
                    y_m: -20.25
                }))
            )
        );
    }

    #[test]
    fn ble_notifications_become_heart_rate_with_rr_intervals_at_the_receive_time() {
        let shape = Shape::profile("ble-hrm").unwrap();
        let mut got = Vec::new();
        for line in fixture("ble-hrm.hex")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let bytes: Vec<u8> = (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
                .collect();
            let d = decode(&shape, &ctx(), &bytes).unwrap();
            let b = &d.batches[0];
            assert_eq!(
                (b.device_id.as_str(), b.samples[0].t_us),
                ("strap-4", 1_700_000_000_000_000)
            );
            let pb::sample::Reading::HeartRate(h) = reading(b, 0) else {
                panic!()
            };
            got.push((h.bpm, h.rr_ms.clone()));
        }
        assert_eq!(
            got,
            [(72.0, vec![]), (150.0, vec![400]), (172.0, vec![349, 350])]
        );
        let e = decode(&shape, &ctx(), &[0x01, 0x50]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed);
    }

    #[test]
    fn unreadable_fields_are_located_and_absent_ones_are_not_errors() {
        let shape = Shape::profile("league").unwrap();
        let bad = br#"{"ix":3,"ut":1682899391862,"hm":[{"pl":"p1","pn":[1,2]},{"pl":"p2","pn":[1,"x"]}]}"#;
        let e = decode(&shape, &ctx(), bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::OutOfRange);
        assert!(
            e.detail.contains("record /hm/1") && e.detail.contains("/pn/1"),
            "{}",
            e.detail
        );
        let e = decode(&shape, &ctx(), br#"{"ix":3,"hm":[{"pl":"p1","pn":[1,2]}]}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Missing);
        let e = decode(
            &shape,
            &ctx(),
            br#"{"ix":3,"ut":"soon","hm":[{"pl":"p1","pn":[1,2]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadTimestamp);
        assert_eq!(
            decode(&shape, &ctx(), b"{not json").unwrap_err().kind,
            ErrorKind::Malformed
        );
        let e = decode(&shape, &ctx(), br#"{"ix":3,"ut":1,"hm":{"pl":"p1"}}"#).unwrap_err();
        assert!(e.detail.contains("/hm"), "{}", e.detail);
        // Units: km/h, mm with an offset, mg.
        let o: toml::Table = "speed_unit = \"kmh\"\nxy_scale = 0.001\nx_offset_m = 52.5\nacc = [\"/a/0\", \"/a/1\", \"/a/2\"]\nacc_unit = \"mg\"".parse().unwrap();
        let s = Shape::resolve("league", &o).unwrap();
        let d = decode(
            &s,
            &ctx(),
            br#"{"ix":3,"ut":1,"hm":[{"pl":"p1","v":36,"pn":[1000,-2000],"a":[0,0,1000]}]}"#,
        )
        .unwrap();
        let pb::sample::Reading::Position(p) = reading(&d.batches[0], 0) else {
            panic!()
        };
        assert_eq!(
            (p.speed_mps, p.coord),
            (
                Some(10.0),
                Some(pb::position::Coord::Xy(pb::PitchXy {
                    x_m: 53.5,
                    y_m: -2.0
                }))
            )
        );
        assert!(matches!(reading(&d.batches[0], 1), pb::sample::Reading::Imu(i) if i.az_g == 1.0));
    }
}
