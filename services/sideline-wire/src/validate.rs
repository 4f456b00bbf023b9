//! Decoding and validation: a payload from MQTT (protobuf or JSON) becomes an engine
//! [`Batch`], or a list of precise errors — which field, what kind of problem, and the value —
//! so bad input is dead-lettered with a reason instead of crashing anything or vanishing.
//!
//! Limits (defaults in [`Limits`]): ids 1–64 chars of `[A-Za-z0-9._-]` (they go into MQTT
//! topics, Kafka keys and metric labels); at most 10 000 samples per batch; every number
//! finite; event times between 2000-01-01 and 2100-01-01, not more than 5 min ahead of the
//! receiver's clock and not more than 7 days behind it; speed 0–50 m/s; acceleration ±64 g;
//! heart rate 20–250 bpm; latitude ±90°, longitude ±180°; pitch coordinates within ±10 km.

use prost::Message;
use sideline_engine::sample::{Coord, Imu, Position};
use sideline_engine::{Batch, Micros, Reading, Sample};

use crate::json::JsonBatch;
use crate::pb;

/// What is accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most samples in one batch.
    pub max_samples: usize,
    /// Longest id.
    pub max_id_len: usize,
    /// Furthest a sample may be ahead of the receiver's clock, s.
    pub max_future_s: f64,
    /// Furthest a sample may be behind the receiver's clock, s (`None`: no limit, e.g. when
    /// importing history).
    pub max_past_s: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_samples: 10_000,
            max_id_len: 64,
            max_future_s: 300.0,
            max_past_s: Some(7.0 * 86_400.0),
        }
    }
}

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in µs.
const MIN_T: Micros = 946_684_800_000_000;
const MAX_T: Micros = 4_102_444_800_000_000;

/// Kinds of problem, a small fixed set usable as a metric label and a dead-letter reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Not decodable as protobuf or JSON of the expected shape.
    Malformed,
    /// A required field is absent.
    Missing,
    /// NaN or infinite.
    NotFinite,
    /// Outside the physically plausible range.
    OutOfRange,
    /// Outside the accepted time window.
    BadTimestamp,
    /// An id that is empty, too long, or has characters outside `[A-Za-z0-9._-]`.
    BadId,
    /// Too many samples.
    TooLarge,
    /// Contradictory content (two readings in one sample, mixed coordinates).
    Ambiguous,
}

impl ErrorKind {
    /// Stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::Missing => "missing_field",
            ErrorKind::NotFinite => "not_finite",
            ErrorKind::OutOfRange => "out_of_range",
            ErrorKind::BadTimestamp => "bad_timestamp",
            ErrorKind::BadId => "bad_id",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Ambiguous => "ambiguous",
        }
    }

    /// Every kind, for pre-registering metric label values.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Malformed,
        ErrorKind::Missing,
        ErrorKind::NotFinite,
        ErrorKind::OutOfRange,
        ErrorKind::BadTimestamp,
        ErrorKind::BadId,
        ErrorKind::TooLarge,
        ErrorKind::Ambiguous,
    ];
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {} ({detail})", kind.as_str())]
pub struct ValidationError {
    /// Path of the field, e.g. `samples[3].imu.ax_g`.
    pub field: String,
    /// Kind of problem.
    pub kind: ErrorKind,
    /// The value or what was expected.
    pub detail: String,
}

/// A payload that cannot become a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not decodable.
    #[error("malformed {format} payload: {detail}")]
    Malformed {
        /// "protobuf" or "JSON".
        format: &'static str,
        /// What the decoder said (JSON errors include line and column).
        detail: String,
    },
    /// Decoded, but invalid (the first few problems; `total` counts all).
    #[error("invalid batch ({total} problem(s)): {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// Up to 20 problems.
        errors: Vec<ValidationError>,
        /// Number of problems found.
        total: usize,
    },
}

impl DecodeError {
    /// The dead-letter reason: the kind of the first problem.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::Malformed { .. } => ErrorKind::Malformed,
            DecodeError::Invalid { errors, .. } => {
                errors.first().map_or(ErrorKind::Malformed, |e| e.kind)
            }
        }
    }
}

/// Payload encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `sideline.v1.SampleBatch` protobuf.
    Protobuf,
    /// The JSON form ([`crate::json`]).
    Json,
}

/// JSON when the first non-blank byte is `{`, else protobuf (a protobuf `SampleBatch` starts
/// with a field tag, never with `{`).
pub fn detect(payload: &[u8]) -> PayloadFormat {
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => PayloadFormat::Json,
        _ => PayloadFormat::Protobuf,
    }
}

struct Collector {
    errors: Vec<ValidationError>,
    total: usize,
}

impl Collector {
    fn push(
        &mut self,
        field: impl FnOnce() -> String,
        kind: ErrorKind,
        detail: impl std::fmt::Display,
    ) {
        self.total += 1;
        if self.errors.len() < 20 {
            self.errors.push(ValidationError {
                field: field(),
                kind,
                detail: detail.to_string(),
            });
        }
    }

    fn range(&mut self, field: impl FnOnce() -> String, v: f64, lo: f64, hi: f64) -> bool {
        if !v.is_finite() {
            self.push(field, ErrorKind::NotFinite, v);
            false
        } else if v < lo || v > hi {
            self.push(
                field,
                ErrorKind::OutOfRange,
                format!("{v} not in [{lo}, {hi}]"),
            );
            false
        } else {
            true
        }
    }
}

fn check_id(c: &mut Collector, name: &'static str, v: &str, max: usize) {
    if v.is_empty() {
        c.push(|| name.into(), ErrorKind::Missing, "empty");
    } else if v.len() > max
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        c.push(
            || name.into(),
            ErrorKind::BadId,
            format!("{v:?}: 1–{max} chars of [A-Za-z0-9._-]"),
        );
    }
}

/// Validate a decoded batch against `limits`; `now` is the receiver's clock (µs), if any.
pub fn validate(
    b: &pb::SampleBatch,
    limits: &Limits,
    now: Option<Micros>,
) -> Result<Batch, DecodeError> {
    let mut c = Collector {
        errors: Vec::new(),
        total: 0,
    };
    check_id(&mut c, "device_id", &b.device_id, limits.max_id_len);
    check_id(&mut c, "team_id", &b.team_id, limits.max_id_len);
    check_id(&mut c, "session_id", &b.session_id, limits.max_id_len);
    if b.samples.is_empty() {
        c.push(|| "samples".into(), ErrorKind::Missing, "no samples");
    }
    if !b.coalesced.is_empty() {
        c.push(
            || "coalesced".into(),
            ErrorKind::Ambiguous,
            "a batch that holds other batches (set by ingest around batches, never inside one)",
        );
    }
    if b.samples.len() > limits.max_samples {
        c.push(
            || "samples".into(),
            ErrorKind::TooLarge,
            format!("{} > {}", b.samples.len(), limits.max_samples),
        );
    }
    let lo = now
        .and_then(|n| limits.max_past_s.map(|p| n - (p * 1e6) as Micros))
        .unwrap_or(MIN_T)
        .max(MIN_T);
    let hi = now
        .map_or(MAX_T, |n| n + (limits.max_future_s * 1e6) as Micros)
        .min(MAX_T);
    let mut samples = Vec::with_capacity(b.samples.len().min(limits.max_samples));
    for (i, s) in b.samples.iter().enumerate().take(limits.max_samples) {
        let at = |f: &str| format!("samples[{i}].{f}");
        let mut ok = true;
        if s.t_us < lo || s.t_us > hi {
            let why = if s.t_us < MIN_T || s.t_us > MAX_T {
                "outside 2000–2100".to_string()
            } else if s.t_us > hi {
                format!(
                    "{:.0} s ahead of the receiver's clock",
                    (s.t_us - now.unwrap_or(0)) as f64 / 1e6
                )
            } else {
                format!(
                    "{:.0} s behind the receiver's clock",
                    (now.unwrap_or(0) - s.t_us) as f64 / 1e6
                )
            };
            c.push(
                || at("t_us"),
                ErrorKind::BadTimestamp,
                format!("{}: {why}", s.t_us),
            );
            ok = false;
        }
        let reading = match &s.reading {
            None => {
                c.push(
                    || format!("samples[{i}]"),
                    ErrorKind::Missing,
                    "one of position, imu, heart_rate",
                );
                None
            }
            Some(pb::sample::Reading::Position(p)) => {
                let coord = match &p.coord {
                    Some(pb::position::Coord::Xy(xy)) => {
                        let a = c.range(|| at("position.x_m"), xy.x_m, -10_000.0, 10_000.0);
                        let b = c.range(|| at("position.y_m"), xy.y_m, -10_000.0, 10_000.0);
                        (a && b).then_some(Coord::Xy {
                            x: xy.x_m,
                            y: xy.y_m,
                        })
                    }
                    Some(pb::position::Coord::Latlon(ll)) => {
                        let a = c.range(|| at("position.lat_deg"), ll.lat_deg, -90.0, 90.0);
                        let b = c.range(|| at("position.lon_deg"), ll.lon_deg, -180.0, 180.0);
                        (a && b).then_some(Coord::LatLon {
                            lat: ll.lat_deg,
                            lon: ll.lon_deg,
                        })
                    }
                    None => {
                        c.push(
                            || at("position"),
                            ErrorKind::Missing,
                            "x_m+y_m or lat_deg+lon_deg",
                        );
                        None
                    }
                };
                let speed_ok = p
                    .speed_mps
                    .is_none_or(|v| c.range(|| at("position.speed_mps"), f64::from(v), 0.0, 50.0));
                let hdop_ok = p
                    .hdop
                    .is_none_or(|v| c.range(|| at("position.hdop"), f64::from(v), 0.0, 100.0));
                let sats_ok = p
                    .satellites
                    .is_none_or(|v| c.range(|| at("position.satellites"), f64::from(v), 0.0, 64.0));
                coord
                    .filter(|_| speed_ok && hdop_ok && sats_ok)
                    .map(|coord| {
                        Reading::Position(Position {
                            coord,
                            speed: p.speed_mps,
                            satellites: p.satellites.map(|s| s as u8),
                            hdop: p.hdop,
                        })
                    })
            }
            Some(pb::sample::Reading::Imu(m)) => {
                let a = c.range(|| at("imu.ax_g"), f64::from(m.ax_g), -64.0, 64.0);
                let b = c.range(|| at("imu.ay_g"), f64::from(m.ay_g), -64.0, 64.0);
                let z = c.range(|| at("imu.az_g"), f64::from(m.az_g), -64.0, 64.0);
                let g = m.gyro.as_ref().is_none_or(|g| {
                    let x = c.range(|| at("imu.gyro.x_dps"), f64::from(g.x_dps), -5000.0, 5000.0);
                    let y = c.range(|| at("imu.gyro.y_dps"), f64::from(g.y_dps), -5000.0, 5000.0);
                    let z = c.range(|| at("imu.gyro.z_dps"), f64::from(g.z_dps), -5000.0, 5000.0);
                    x && y && z
                });
                (a && b && z && g).then_some(Reading::Imu(Imu {
                    ax: m.ax_g,
                    ay: m.ay_g,
                    az: m.az_g,
                }))
            }
            Some(pb::sample::Reading::HeartRate(h)) => {
                let bpm_ok = c.range(|| at("heart_rate.bpm"), f64::from(h.bpm), 20.0, 250.0);
                let mut rr_ok = true;
                if h.rr_ms.len() > 16 {
                    c.push(
                        || at("heart_rate.rr_ms"),
                        ErrorKind::TooLarge,
                        format!("{} > 16 intervals", h.rr_ms.len()),
                    );
                    rr_ok = false;
                }
                for (k, rr) in h.rr_ms.iter().enumerate() {
                    rr_ok &= c.range(
                        || at(&format!("heart_rate.rr_ms[{k}]")),
                        f64::from(*rr),
                        200.0,
                        3000.0,
                    );
                }
                (bpm_ok && rr_ok).then_some(Reading::HeartRate(h.bpm))
            }
        };
        if let (true, Some(reading)) = (ok, reading) {
            samples.push(Sample { t: s.t_us, reading });
        }
    }
    if c.total > 0 {
        return Err(DecodeError::Invalid {
            errors: c.errors,
            total: c.total,
        });
    }
    Ok(Batch {
        device: b.device_id.clone(),
        team: b.team_id.clone(),
        session: b.session_id.clone(),
        seq: b.seq,
        samples,
    })
}

/// Decode a payload without validating it.
pub fn decode_pb(payload: &[u8]) -> Result<pb::SampleBatch, DecodeError> {
    match detect(payload) {
        PayloadFormat::Protobuf => {
            let b = pb::SampleBatch::decode(payload).map_err(|e| DecodeError::Malformed {
                format: "protobuf",
                detail: e.to_string(),
            })?;
            if b.coalesced.is_empty() {
                Ok(b)
            } else {
                Err(DecodeError::Malformed {
                    format: "protobuf",
                    detail: "field 16 (coalesced) is set by ingest only".into(),
                })
            }
        }
        PayloadFormat::Json => {
            let j: JsonBatch =
                serde_json::from_slice(payload).map_err(|e| DecodeError::Malformed {
                    format: "JSON",
                    detail: e.to_string(),
                })?;
            let (batch, problems) = j.into_pb();
            if problems.is_empty() {
                Ok(batch)
            } else {
                let errors: Vec<_> = problems
                    .into_iter()
                    .map(|(i, why)| ValidationError {
                        field: format!("samples[{i}]"),
                        kind: ErrorKind::Ambiguous,
                        detail: why.into(),
                    })
                    .collect();
                let total = errors.len();
                Err(DecodeError::Invalid { errors, total })
            }
        }
    }
}

/// Decode and validate: the protobuf form (for re-publishing) and the engine batch.
pub fn decode_batch(
    payload: &[u8],
    limits: &Limits,
    now: Option<Micros>,
) -> Result<(pb::SampleBatch, Batch), DecodeError> {
    let pb = decode_pb(payload)?;
    let batch = validate(&pb, limits, now)?;
    Ok((pb, batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_768_057_200_000_000;

    fn json(samples: &str) -> String {
        format!(
            r#"{{"device_id":"pod-1","team_id":"home","session_id":"m1","seq":7,"samples":[{samples}]}}"#
        )
    }

    fn errors(payload: &str) -> Vec<ValidationError> {
        match decode_batch(payload.as_bytes(), &Limits::default(), Some(NOW)) {
            Err(DecodeError::Invalid { errors, .. }) => errors,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    /// `coalesced` is ingest's, around batches: a device sending it is refused as malformed,
    /// and a batch holding one inside a coalesced record is invalid.
    #[test]
    fn coalesced_batches_are_refused_from_devices_and_when_nested() {
        let inner = pb::SampleBatch {
            device_id: "pod-1".into(),
            team_id: "home".into(),
            session_id: "m1".into(),
            seq: 1,
            samples: vec![pb::Sample {
                t_us: NOW,
                reading: Some(pb::sample::Reading::HeartRate(pb::HeartRate {
                    bpm: 150.0,
                    rr_ms: vec![],
                })),
            }],
            ..Default::default()
        };
        assert!(validate(&inner, &Limits::default(), Some(NOW)).is_ok());
        let outer = pb::SampleBatch {
            coalesced: vec![inner.clone()],
            ..inner.clone()
        };
        let sent = prost::Message::encode_to_vec(&outer);
        assert!(matches!(
            decode_batch(&sent, &Limits::default(), Some(NOW)),
            Err(DecodeError::Malformed { ref detail, .. }) if detail.contains("coalesced")
        ));
        let Err(DecodeError::Invalid { errors, .. }) =
            validate(&outer, &Limits::default(), Some(NOW))
        else {
            panic!("a nested coalesced batch was accepted");
        };
        assert_eq!(errors[0].field, "coalesced");
    }

    #[test]
    fn a_good_json_batch_becomes_an_engine_batch() {
        let p = json(&format!(
            r#"{{"t_us":{NOW},"position":{{"x_m":1.5,"y_m":-2,"speed_mps":3.2,"hdop":0.8}}}},
               {{"t_us":{NOW},"imu":{{"ax_g":0.1,"ay_g":0,"az_g":1.2}}}},
               {{"t_us":{NOW},"heart_rate":{{"bpm":150,"rr_ms":[400]}}}},
               {{"t_us":{NOW},"position":{{"lat_deg":53.3,"lon_deg":-6.2}}}}"#
        ));
        let (_, b) = decode_batch(p.as_bytes(), &Limits::default(), Some(NOW)).unwrap();
        assert_eq!(b.samples.len(), 4);
        assert_eq!(b.seq, 7);
        assert!(matches!(b.samples[2].reading, Reading::HeartRate(150.0)));
    }

    #[test]
    fn protobuf_and_json_of_the_same_batch_decode_alike() {
        let p = json(&format!(
            r#"{{"t_us":{NOW},"imu":{{"ax_g":0.5,"ay_g":0.25,"az_g":1.0}}}}"#
        ));
        let (pb, from_json) = decode_batch(p.as_bytes(), &Limits::default(), Some(NOW)).unwrap();
        let bytes = pb.encode_to_vec();
        assert_eq!(detect(&bytes), PayloadFormat::Protobuf);
        let (_, from_pb) = decode_batch(&bytes, &Limits::default(), Some(NOW)).unwrap();
        assert_eq!(from_json, from_pb);
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        let e = errors(&json(&format!(
            r#"{{"t_us":{NOW},"imu":{{"ax_g":0.1,"ay_g":99,"az_g":1}}}},
               {{"t_us":{NOW},"heart_rate":{{"bpm":400}}}},
               {{"t_us":{},"position":{{"x_m":1,"y_m":2}}}}"#,
            NOW + 3_600_000_000
        )));
        assert_eq!(e[0].field, "samples[0].imu.ay_g");
        assert_eq!(e[0].kind, ErrorKind::OutOfRange);
        assert_eq!(e[1].field, "samples[1].heart_rate.bpm");
        assert_eq!(e[2].field, "samples[2].t_us");
        assert_eq!(e[2].kind, ErrorKind::BadTimestamp);
        assert!(e[2].detail.contains("3600 s ahead"), "{}", e[2].detail);
    }

    #[test]
    fn nan_and_infinity_in_protobuf_are_not_finite() {
        let mut pb = decode_pb(
            json(&format!(
                r#"{{"t_us":{NOW},"imu":{{"ax_g":0,"ay_g":0,"az_g":1}}}}"#
            ))
            .as_bytes(),
        )
        .unwrap();
        if let Some(pb::sample::Reading::Imu(m)) = &mut pb.samples[0].reading {
            m.ax_g = f32::NAN;
            m.az_g = f32::INFINITY;
        }
        let err = decode_batch(&pb.encode_to_vec(), &Limits::default(), Some(NOW)).unwrap_err();
        let DecodeError::Invalid { errors, total } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*total, 2);
        assert!(errors.iter().all(|e| e.kind == ErrorKind::NotFinite));
        assert_eq!(err.kind().as_str(), "not_finite");
    }

    #[test]
    fn absurd_timestamps_are_refused_even_without_a_clock() {
        let p = json(r#"{"t_us":12,"imu":{"ax_g":0,"ay_g":0,"az_g":1}}"#);
        let err = decode_batch(p.as_bytes(), &Limits::default(), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadTimestamp);
        assert!(err.to_string().contains("outside 2000–2100"), "{err}");
    }

    #[test]
    fn malformed_json_says_where_and_typos_are_named() {
        let err = decode_batch(b"{\"device_id\": ", &Limits::default(), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed);
        assert!(err.to_string().contains("line 1"), "{err}");
        let typo = json(&format!(
            r#"{{"t_us":{NOW},"imu":{{"ax_g":0,"ay_g":0,"azg":1}}}}"#
        ));
        let err = decode_batch(typo.as_bytes(), &Limits::default(), Some(NOW)).unwrap_err();
        assert!(err.to_string().contains("azg"), "{err}");
    }

    #[test]
    fn garbage_bytes_are_malformed_protobuf_not_a_panic() {
        let err =
            decode_batch(&[0xff, 0xff, 0xff, 0x01, 0x02], &Limits::default(), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed);
    }

    #[test]
    fn ids_are_checked_for_use_in_topics_keys_and_labels() {
        let p = r#"{"device_id":"pod/1","team_id":"","session_id":"s","seq":1,"samples":[]}"#;
        let e = errors(p);
        assert_eq!(
            (e[0].field.as_str(), e[0].kind),
            ("device_id", ErrorKind::BadId)
        );
        assert_eq!(
            (e[1].field.as_str(), e[1].kind),
            ("team_id", ErrorKind::Missing)
        );
        assert_eq!(e[2].field, "samples");
    }

    #[test]
    fn two_readings_in_one_sample_or_mixed_coordinates_are_ambiguous() {
        let p = json(&format!(
            r#"{{"t_us":{NOW},"imu":{{"ax_g":0,"ay_g":0,"az_g":1}},"heart_rate":{{"bpm":120}}}},
               {{"t_us":{NOW},"position":{{"x_m":1,"lat_deg":2}}}}"#
        ));
        let e = errors(&p);
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|e| e.kind == ErrorKind::Ambiguous));
    }

    proptest::proptest! {
        #[test]
        fn no_byte_string_makes_decoding_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_batch(&bytes, &Limits::default(), Some(NOW));
        }
    }
}
