//! MQTT topics and payloads for publishing batches: `sideline/v1/{team}/{device}/{stream}`,
//! protobuf or the JSON form.

use prost::Message;
use sideline_engine::{Batch, Reading, Stream};

use crate::convert::batch;
use crate::json::{JsonBatch, JsonHeartRate, JsonImu, JsonPosition, JsonSample};

/// The MQTT topic filter every ingest instance subscribes to.
pub const FILTER: &str = "sideline/v1/+/+/+";

/// The topic of a batch (its stream is that of its first sample).
pub fn topic_for(b: &Batch) -> String {
    let stream = b.samples.first().map_or(Stream::Position, |s| s.stream());
    format!("sideline/v1/{}/{}/{}", b.team, b.device, stream.as_str())
}

/// Payload encodings for publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Protobuf `SampleBatch`.
    #[default]
    Protobuf,
    /// The JSON form.
    Json,
}

/// Encode a batch.
pub fn encode(b: &Batch, e: Encoding) -> Vec<u8> {
    match e {
        Encoding::Protobuf => batch(b).encode_to_vec(),
        Encoding::Json => {
            let j = JsonBatch {
                device_id: b.device.clone(),
                team_id: b.team.clone(),
                session_id: b.session.clone(),
                seq: b.seq,
                samples: b
                    .samples
                    .iter()
                    .map(|s| {
                        let mut j = JsonSample {
                            t_us: s.t,
                            position: None,
                            imu: None,
                            heart_rate: None,
                        };
                        match s.reading {
                            Reading::Position(p) => {
                                let mut jp = JsonPosition {
                                    speed_mps: p.speed,
                                    hdop: p.hdop,
                                    satellites: p.satellites.map(u32::from),
                                    ..Default::default()
                                };
                                match p.coord {
                                    sideline_engine::sample::Coord::Xy { x, y } => {
                                        (jp.x_m, jp.y_m) = (Some(x), Some(y))
                                    }
                                    sideline_engine::sample::Coord::LatLon { lat, lon } => {
                                        (jp.lat_deg, jp.lon_deg) = (Some(lat), Some(lon))
                                    }
                                }
                                j.position = Some(jp);
                            }
                            Reading::Imu(m) => {
                                j.imu = Some(JsonImu {
                                    ax_g: m.ax,
                                    ay_g: m.ay,
                                    az_g: m.az,
                                })
                            }
                            Reading::HeartRate(bpm) => {
                                j.heart_rate = Some(JsonHeartRate {
                                    bpm,
                                    rr_ms: Vec::new(),
                                })
                            }
                        }
                        j
                    })
                    .collect(),
            };
            serde_json::to_vec(&j).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Limits, decode_batch};
    use sideline_engine::Sample;

    #[test]
    fn both_encodings_decode_back_to_the_same_batch() {
        let b = Batch {
            device: "pod-h07".into(),
            team: "home".into(),
            session: "s1".into(),
            seq: 9,
            samples: vec![
                Sample::imu(1_700_000_000_000_000, 0.5, -0.25, 1.0),
                Sample::hr(1_700_000_000_000_000, 140.0),
            ],
        };
        assert_eq!(topic_for(&b), "sideline/v1/home/pod-h07/imu");
        for e in [Encoding::Protobuf, Encoding::Json] {
            let (_, back) = decode_batch(&encode(&b, e), &Limits::default(), None).unwrap();
            assert_eq!(back, b, "{e:?}");
        }
    }
}
