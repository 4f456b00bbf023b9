//! Event times as vendors send them, to µs since the Unix epoch (UTC).
//!
//! - `iso8601`: `2022-02-26T10:07:19.128Z`, with an offset (`+01:00`), or without a zone and
//!   with a space for the `T` (Sewio's `2016-10-18 14:16:56.365`): no zone means UTC.
//! - `epoch_s`, `epoch_ms`, `epoch_us`: a number (or numeric string) since 1970-01-01 UTC.
//! - `gps_s`: GPS seconds since 1980-01-06T00:00:00Z; UTC = GPS − 18 s (the leap seconds since
//!   1980 as of 2017; IERS Bulletin C has announced none since).
//! - `frame`: the frame number × `frame_period_ms` after an epoch (see the shape).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pointer::number;

/// GPS epoch (1980-01-06T00:00:00Z) in µs since the Unix epoch.
pub const GPS_EPOCH_US: i64 = 315_964_800_000_000;
/// GPS − UTC, s (since 2017-01-01).
pub const GPS_LEAP_S: i64 = 18;

/// How a message states its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// ISO-8601 / RFC 3339 text.
    #[default]
    Iso8601,
    /// Seconds since the Unix epoch.
    EpochS,
    /// Milliseconds since the Unix epoch.
    EpochMs,
    /// Microseconds since the Unix epoch.
    EpochUs,
    /// GPS seconds.
    GpsS,
    /// Frame number × frame period after an epoch.
    Frame,
    /// No time in the message: when ingest received it.
    Received,
}

/// `v` in `format`, µs since the Unix epoch.
pub fn parse(v: &Value, format: TimeFormat) -> Result<i64, String> {
    let n = || {
        number(v)
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("{v} is not a number"))
    };
    let us = match format {
        TimeFormat::Iso8601 => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("{v} is not a text time"))?;
            return iso8601(s.trim());
        }
        TimeFormat::EpochS => n()? * 1e6,
        TimeFormat::EpochMs => n()? * 1e3,
        TimeFormat::EpochUs => n()?,
        TimeFormat::GpsS => (n()? - GPS_LEAP_S as f64) * 1e6 + GPS_EPOCH_US as f64,
        TimeFormat::Frame | TimeFormat::Received => {
            return Err("frame and received times are not read from a field".into());
        }
    };
    if !(0.0..4.1e18).contains(&us) {
        return Err(format!("{v} is out of range"));
    }
    Ok(us.round() as i64)
}

/// ISO-8601 text to µs (no zone = UTC).
pub fn iso8601(s: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err(format!("{s:?} is not an ISO-8601 time"))
}

/// µs since the Unix epoch as RFC 3339 with milliseconds (`…T10:07:19.128Z`).
pub fn to_iso_ms(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_format_reads_to_the_same_instant() {
        let want = 1_645_870_039_128_000; // 2022-02-26T10:07:19.128Z
        assert_eq!(
            parse(&json!("2022-02-26T10:07:19.128Z"), TimeFormat::Iso8601),
            Ok(want)
        );
        assert_eq!(
            parse(&json!("2022-02-26T11:07:19.128+01:00"), TimeFormat::Iso8601),
            Ok(want)
        );
        assert_eq!(
            parse(&json!("2022-02-26 10:07:19.128"), TimeFormat::Iso8601),
            Ok(want)
        );
        assert_eq!(
            parse(&json!(1_645_870_039.128), TimeFormat::EpochS),
            Ok(want)
        );
        assert_eq!(
            parse(&json!(1_645_870_039_128_i64), TimeFormat::EpochMs),
            Ok(want)
        );
        assert_eq!(
            parse(&json!("1645870039128000"), TimeFormat::EpochUs),
            Ok(want)
        );
        let gps = (want - GPS_EPOCH_US) as f64 / 1e6 + 18.0;
        assert_eq!(parse(&json!(gps), TimeFormat::GpsS), Ok(want));
        assert_eq!(to_iso_ms(want), "2022-02-26T10:07:19.128Z");
        assert!(parse(&json!("yesterday"), TimeFormat::Iso8601).is_err());
        assert!(parse(&json!(-5), TimeFormat::EpochMs).is_err());
        assert!(parse(&json!({}), TimeFormat::EpochS).is_err());
    }
}
