//! The JSON form of `SampleBatch`, for devices and scripts without protobuf. Field names and
//! units are those of `proto/sideline/v1/samples.proto`; unknown fields are errors (a typo in
//! a field name is reported, not ignored). Example:
//!
//! ```json
//! {
//!   "device_id": "pod-h07", "team_id": "home", "session_id": "2026-01-10-match", "seq": 42,
//!   "samples": [
//!     {"t_us": 1768057200000000, "position": {"x_m": 12.5, "y_m": -3.0, "speed_mps": 4.2,
//!                                             "satellites": 11, "hdop": 0.9}},
//!     {"t_us": 1768057200100000, "position": {"lat_deg": 53.3498, "lon_deg": -6.2603}},
//!     {"t_us": 1768057200010000, "imu": {"ax_g": 0.12, "ay_g": -0.03, "az_g": 1.31}},
//!     {"t_us": 1768057200000000, "heart_rate": {"bpm": 151, "rr_ms": [398, 402]}}
//!   ]
//! }
//! ```
//!
//! Each sample carries exactly one of `position`, `imu` or `heart_rate`. A position carries
//! either `x_m` + `y_m` (metres on the pitch) or `lat_deg` + `lon_deg` (WGS84).

use serde::{Deserialize, Serialize};

use crate::pb;

/// A batch in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonBatch {
    /// Device id.
    pub device_id: String,
    /// Team id.
    pub team_id: String,
    /// Session id.
    pub session_id: String,
    /// Per-device batch counter.
    pub seq: u64,
    /// Samples.
    pub samples: Vec<JsonSample>,
}

/// A sample in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSample {
    /// Event time, µs since the Unix epoch.
    pub t_us: i64,
    /// A position fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<JsonPosition>,
    /// An accelerometer reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imu: Option<JsonImu>,
    /// A heart-rate reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_rate: Option<JsonHeartRate>,
}

/// A position in JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonPosition {
    /// x, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_m: Option<f64>,
    /// y, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_m: Option<f64>,
    /// Latitude, degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat_deg: Option<f64>,
    /// Longitude, degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon_deg: Option<f64>,
    /// Device speed, m/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f32>,
    /// Satellites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satellites: Option<u32>,
    /// HDOP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdop: Option<f32>,
}

/// An accelerometer reading in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonImu {
    /// Forward, g.
    pub ax_g: f32,
    /// Sideways, g.
    pub ay_g: f32,
    /// Up, g.
    pub az_g: f32,
}

/// A heart-rate reading in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonHeartRate {
    /// Beats per minute.
    pub bpm: f32,
    /// Beat-to-beat intervals, ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rr_ms: Vec<u32>,
}

/// A JSON position whose coordinates are incomplete or mixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordError;

impl JsonPosition {
    fn coord(&self) -> Result<Option<pb::position::Coord>, CoordError> {
        match (self.x_m, self.y_m, self.lat_deg, self.lon_deg) {
            (Some(x_m), Some(y_m), None, None) => {
                Ok(Some(pb::position::Coord::Xy(pb::PitchXy { x_m, y_m })))
            }
            (None, None, Some(lat_deg), Some(lon_deg)) => {
                Ok(Some(pb::position::Coord::Latlon(pb::LatLon {
                    lat_deg,
                    lon_deg,
                })))
            }
            (None, None, None, None) => Ok(None),
            _ => Err(CoordError),
        }
    }
}

impl JsonBatch {
    /// The protobuf form. A sample with none or several readings, or a position with mixed
    /// or partial coordinates, becomes an empty reading/coordinate so that validation reports
    /// it with its path.
    pub fn into_pb(self) -> (pb::SampleBatch, Vec<(usize, &'static str)>) {
        let mut problems = Vec::new();
        let samples = self
            .samples
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let n = usize::from(s.position.is_some())
                    + usize::from(s.imu.is_some())
                    + usize::from(s.heart_rate.is_some());
                if n > 1 {
                    problems.push((i, "more than one of position, imu, heart_rate"));
                    return pb::Sample {
                        t_us: s.t_us,
                        reading: None,
                    };
                }
                let reading = if let Some(p) = s.position {
                    let coord = p.coord().unwrap_or_else(|_| {
                        problems.push((i, "position needs x_m+y_m or lat_deg+lon_deg, not a mix"));
                        None
                    });
                    Some(pb::sample::Reading::Position(pb::Position {
                        coord,
                        speed_mps: p.speed_mps,
                        satellites: p.satellites,
                        hdop: p.hdop,
                    }))
                } else if let Some(m) = s.imu {
                    Some(pb::sample::Reading::Imu(pb::Imu {
                        ax_g: m.ax_g,
                        ay_g: m.ay_g,
                        az_g: m.az_g,
                        gyro: None,
                    }))
                } else {
                    s.heart_rate.map(|h| {
                        pb::sample::Reading::HeartRate(pb::HeartRate {
                            bpm: h.bpm,
                            rr_ms: h.rr_ms,
                        })
                    })
                };
                pb::Sample {
                    t_us: s.t_us,
                    reading,
                }
            })
            .collect();
        (
            pb::SampleBatch {
                device_id: self.device_id,
                team_id: self.team_id,
                session_id: self.session_id,
                seq: self.seq,
                samples,
                player_id: String::new(),
                received_at_us: 0,
                device_session_id: String::new(),
                coalesced: Vec::new(),
            },
            problems,
        )
    }
}
