//! Input samples as the engine sees them: already decoded and validated, one per sensor reading.
//!
//! Times are event times in microseconds since the Unix epoch (UTC). The engine never reads a
//! clock; every time it uses comes from a sample or from the `now` passed to `tick`.

use serde::{Deserialize, Serialize};

/// Event time: microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// One microsecond-based second.
pub const SECOND: Micros = 1_000_000;

/// Convert microseconds to seconds as `f64`.
#[inline]
pub fn secs(us: Micros) -> f64 {
    us as f64 * 1e-6
}

/// Where a position fix is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coord {
    /// Metres on a local pitch plane (any origin, x and y orthogonal).
    Xy {
        /// x, metres.
        x: f64,
        /// y, metres.
        y: f64,
    },
    /// WGS84 latitude and longitude in degrees; projected by the engine onto a local plane.
    LatLon {
        /// Latitude, degrees north.
        lat: f64,
        /// Longitude, degrees east.
        lon: f64,
    },
}

/// A GNSS/LPS fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The fix.
    pub coord: Coord,
    /// The device's own (Doppler) speed in m/s, preferred over speed derived from positions.
    pub speed: Option<f32>,
    /// Satellites in view, when the device reports it.
    pub satellites: Option<u8>,
    /// Horizontal dilution of precision, when the device reports it.
    pub hdop: Option<f32>,
}

/// One tri-axial accelerometer reading in g (body frame of the pod: x forward, y sideways,
/// z vertical up).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Imu {
    /// Forward (anterior-posterior) acceleration, g.
    pub ax: f32,
    /// Sideways (medio-lateral) acceleration, g.
    pub ay: f32,
    /// Vertical acceleration, g.
    pub az: f32,
}

/// What a sample measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// A position fix (10–20 Hz).
    Position(Position),
    /// An accelerometer reading (100 Hz).
    Imu(Imu),
    /// Heart rate in beats per minute (1 Hz).
    HeartRate(f32),
}

/// The three independent streams of a player; each has its own ordering and reorder buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Position and speed.
    Position,
    /// Accelerometer.
    Imu,
    /// Heart rate.
    HeartRate,
}

impl Stream {
    /// All streams, in a fixed order used for indexing.
    pub const ALL: [Stream; 3] = [Stream::Position, Stream::Imu, Stream::HeartRate];

    /// Index into per-stream arrays.
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Stream::Position => 0,
            Stream::Imu => 1,
            Stream::HeartRate => 2,
        }
    }

    /// The name used in MQTT topics and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Position => "position",
            Stream::Imu => "imu",
            Stream::HeartRate => "hr",
        }
    }
}

/// One timestamped reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Event time, µs since the Unix epoch.
    pub t: Micros,
    /// The reading.
    pub reading: Reading,
}

impl Sample {
    /// The stream this sample belongs to.
    #[inline]
    pub fn stream(&self) -> Stream {
        match self.reading {
            Reading::Position(_) => Stream::Position,
            Reading::Imu(_) => Stream::Imu,
            Reading::HeartRate(_) => Stream::HeartRate,
        }
    }

    /// A position sample on the pitch plane with an optional device speed.
    pub fn xy(t: Micros, x: f64, y: f64, speed: Option<f32>) -> Self {
        Sample {
            t,
            reading: Reading::Position(Position {
                coord: Coord::Xy { x, y },
                speed,
                satellites: None,
                hdop: None,
            }),
        }
    }

    /// An accelerometer sample in g.
    pub fn imu(t: Micros, ax: f32, ay: f32, az: f32) -> Self {
        Sample {
            t,
            reading: Reading::Imu(Imu { ax, ay, az }),
        }
    }

    /// A heart-rate sample in beats per minute.
    pub fn hr(t: Micros, bpm: f32) -> Self {
        Sample {
            t,
            reading: Reading::HeartRate(bpm),
        }
    }
}

/// A device's batch of samples as it arrives from one MQTT message: the unit of de-duplication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Pod or strap identifier (pseudonymous).
    pub device: String,
    /// Team identifier.
    pub team: String,
    /// Session (match or training) identifier.
    pub session: String,
    /// Per-device sequence number; a repeated `(device, seq)` is a duplicate delivery.
    pub seq: u64,
    /// The readings, in any order.
    pub samples: Vec<Sample>,
}
