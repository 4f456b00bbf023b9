//! Vendors' live formats, declared rather than coded: a [`Shape`] says where a message's
//! per-device records are, and where in each record (JSON pointers, [`pointer`]) the device,
//! the time ([`time`]), the position, speed, heart rate and accelerometer are. [`decode`]
//! turns one message into one `SampleBatch` per record, which ingest then validates and routes
//! exactly like a pod's own. Built-in profiles ([`Shape::profile`]) describe published formats;
//! a club writes its own shape in ingest's configuration for a system not listed.
//!
//! # Layout
//!
//! - this file: [`Shape`] and its units, the built-in profiles (`profiles/*.toml`, each
//!   naming the vendor page it follows).
//! - [`pointer`]: JSON pointers with `^` (whole message) and `[key=value]` selectors.
//! - [`time`]: ISO-8601, epoch s/ms/µs, GPS seconds, frame numbers.
//! - [`decode`]: message → batches, or a located reason.
//! - [`ble`]: the Bluetooth Heart Rate Measurement characteristic (0x2A37).
//! - [`shapes`]: the other direction, for `sideline replay --as`: batches in a profile's shape.

pub mod ble;
pub mod decode;
pub mod pointer;
pub mod shapes;
pub mod time;

use serde::{Deserialize, Serialize};

pub use decode::{AdapterError, Context, Decoded, decode};
pub use time::TimeFormat;

/// The built-in profiles: (name, TOML).
pub const PROFILES: [(&str, &str); 4] = [
    ("rtloc", include_str!("profiles/rtloc.toml")),
    ("sewio", include_str!("profiles/sewio.toml")),
    ("league", include_str!("profiles/league.toml")),
    ("ble-hrm", include_str!("profiles/ble-hrm.toml")),
];

/// How the payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// A JSON document.
    #[default]
    Json,
    /// The raw bytes of a Bluetooth Heart Rate Measurement (0x2A37) notification.
    BleHrm,
}

/// What the `records` pointers designate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordsKind {
    /// One record (one device).
    #[default]
    One,
    /// An array: each element is a record.
    List,
    /// An object: each member is a record, its key the device id (`device = "@key"`).
    Map,
}

/// Where a batch's sequence number comes from (the processor drops a repeated
/// (device, sequence number), so it must be the same each time a message is delivered again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqFrom {
    /// The event time in `frame_period_ms` steps.
    #[default]
    Time,
    /// The message's frame number.
    Frame,
}

/// Speed units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeedUnit {
    /// Metres per second.
    #[default]
    Mps,
    /// Kilometres per hour.
    Kmh,
}

/// Accelerometer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccUnit {
    /// Standard gravity.
    #[default]
    G,
    /// Thousandths of g.
    Mg,
    /// m/s² (÷ 9.80665 to g).
    Mps2,
}

/// A vendor's message shape. Pointers are relative to a record unless they start with `^`;
/// an empty pointer means "not in this feed".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shape {
    /// Payload encoding.
    pub encoding: Encoding,
    /// Where the records are (several arrays may hold them, e.g. home and away); empty = the
    /// message is the one record.
    pub records: Vec<String>,
    /// What each `records` pointer designates.
    pub records_kind: RecordsKind,
    /// The device id: a pointer, `@key` (the member name in a `map`), or empty (the topic's
    /// `{device}` capture).
    pub device: String,
    /// Devices not on the roster are skipped and counted (a feed carrying every player,
    /// opponents and referees included) instead of dead-lettered.
    pub skip_unknown: bool,
    /// The event time (empty with `time_format = "received"` or `"frame"`).
    pub time: String,
    /// How `time` is written.
    pub time_format: TimeFormat,
    /// The frame number (for `seq = "frame"` and `time_format = "frame"`).
    pub frame: String,
    /// Time between frames, ms (also the step of `seq = "time"`).
    pub frame_period_ms: f64,
    /// The time of frame 0, µs since the Unix epoch (`time_format = "frame"`).
    pub frame_epoch_us: i64,
    /// Where sequence numbers come from.
    pub seq: SeqFrom,
    /// Pitch x, y (× `xy_scale` = metres, then + offsets).
    pub x: String,
    /// See `x`.
    pub y: String,
    /// Metres per unit of x and y (0.001 for millimetres).
    pub xy_scale: f64,
    /// Added to x, m (e.g. half the pitch length to move a centre origin to a corner).
    pub x_offset_m: f64,
    /// Added to y, m.
    pub y_offset_m: f64,
    /// WGS84 latitude, degrees.
    pub lat: String,
    /// WGS84 longitude, degrees.
    pub lon: String,
    /// Speed of the position fix.
    pub speed: String,
    /// Unit of `speed`.
    pub speed_unit: SpeedUnit,
    /// Heart rate, bpm.
    pub heart_rate: String,
    /// Beat-to-beat intervals, an array of ms.
    pub rr_ms: String,
    /// Accelerometer x, y, z (three pointers, or none).
    pub acc: Vec<String>,
    /// Unit of `acc`.
    pub acc_unit: AccUnit,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            encoding: Encoding::Json,
            records: Vec::new(),
            records_kind: RecordsKind::One,
            device: String::new(),
            skip_unknown: false,
            time: String::new(),
            time_format: TimeFormat::Iso8601,
            frame: String::new(),
            frame_period_ms: 10.0,
            frame_epoch_us: 0,
            seq: SeqFrom::Time,
            x: String::new(),
            y: String::new(),
            xy_scale: 1.0,
            x_offset_m: 0.0,
            y_offset_m: 0.0,
            lat: String::new(),
            lon: String::new(),
            speed: String::new(),
            speed_unit: SpeedUnit::Mps,
            heart_rate: String::new(),
            rr_ms: String::new(),
            acc: Vec::new(),
            acc_unit: AccUnit::G,
        }
    }
}

impl Shape {
    /// A built-in profile by name.
    pub fn profile(name: &str) -> Option<Shape> {
        Self::resolve(name, &toml::Table::new()).ok()
    }

    /// `profile` (or nothing, for `""`) with `overrides` laid over it, checked.
    pub fn resolve(profile: &str, overrides: &toml::Table) -> Result<Shape, String> {
        let mut t = if profile.is_empty() {
            toml::Table::new()
        } else {
            let (_, text) = PROFILES
                .iter()
                .find(|(n, _)| *n == profile)
                .ok_or_else(|| {
                    let names: Vec<&str> = PROFILES.iter().map(|(n, _)| *n).collect();
                    format!(
                        "unknown profile {profile:?} (built in: {})",
                        names.join(", ")
                    )
                })?;
            text.parse::<toml::Table>()
                .map_err(|e| format!("profile {profile}: {e}"))?
        };
        for (k, v) in overrides {
            t.insert(k.clone(), v.clone());
        }
        let s: Shape = toml::Value::Table(t)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        let problems = s.problems();
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(problems.join("; "))
        }
    }

    /// Everything wrong with this shape (empty when it can be used).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let pointers = self
            .records
            .iter()
            .chain([
                &self.time,
                &self.frame,
                &self.x,
                &self.y,
                &self.lat,
                &self.lon,
            ])
            .chain([&self.speed, &self.heart_rate, &self.rr_ms])
            .chain(&self.acc)
            .chain((self.device != "@key").then_some(&self.device));
        for ptr in pointers {
            if let Err(e) = pointer::check(ptr) {
                p.push(e);
            }
        }
        if self.device == "@key" && self.records_kind != RecordsKind::Map {
            p.push("device = \"@key\" needs records_kind = \"map\"".into());
        }
        if self.x.is_empty() != self.y.is_empty() || self.lat.is_empty() != self.lon.is_empty() {
            p.push("x and y (and lat and lon) go together".into());
        }
        if !(self.acc.is_empty() || self.acc.len() == 3) {
            p.push("acc: three pointers (x, y, z) or none".into());
        }
        if !(self.frame_period_ms > 0.0 && self.frame_period_ms <= 60_000.0) {
            p.push("frame_period_ms: 0 < ms ≤ 60000".into());
        }
        if !(self.xy_scale.is_finite() && self.xy_scale > 0.0) {
            p.push("xy_scale: > 0".into());
        }
        let needs_time = !matches!(self.time_format, TimeFormat::Frame | TimeFormat::Received);
        if needs_time && self.time.is_empty() && self.encoding == Encoding::Json {
            p.push("time: a pointer (or time_format = \"received\" / \"frame\")".into());
        }
        if (self.seq == SeqFrom::Frame || self.time_format == TimeFormat::Frame)
            && self.frame.is_empty()
        {
            p.push("frame: a pointer, for seq = \"frame\" or time_format = \"frame\"".into());
        }
        let reads = [&self.x, &self.lat, &self.heart_rate]
            .iter()
            .any(|s| !s.is_empty())
            || !self.acc.is_empty()
            || self.encoding == Encoding::BleHrm;
        if !reads {
            p.push("the shape reads nothing: give x/y, lat/lon, heart_rate or acc".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_loads_and_overrides_replace_its_keys() {
        for (name, _) in PROFILES {
            assert!(
                Shape::profile(name).is_some(),
                "{name}: {:?}",
                Shape::resolve(name, &toml::Table::new())
            );
        }
        let o: toml::Table = "device = \"/tr\"\nframe_period_ms = 100.0".parse().unwrap();
        let s = Shape::resolve("league", &o).unwrap();
        assert_eq!((s.device.as_str(), s.frame_period_ms), ("/tr", 100.0));
        let err = Shape::resolve("nope", &toml::Table::new()).unwrap_err();
        assert!(err.contains("rtloc, sewio, league, ble-hrm"), "{err}");
        let bad: toml::Table = "x = \"pos\"\nacc = [\"/a\"]\nspeeed = \"/v\""
            .parse()
            .unwrap();
        assert!(
            Shape::resolve("rtloc", &bad)
                .unwrap_err()
                .contains("speeed")
        );
        let bad: toml::Table = "x = \"pos\"\nacc = [\"/a\"]".parse().unwrap();
        let err = Shape::resolve("rtloc", &bad).unwrap_err();
        assert!(err.contains("\"pos\"") && err.contains("acc:"), "{err}");
    }
}
