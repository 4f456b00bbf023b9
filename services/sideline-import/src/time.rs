//! Timestamp parsing: ISO-8601 (with or without zone; no zone means UTC), seconds, and Excel
//! serial days.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use sideline_engine::Micros;

/// Parse an ISO-8601 / RFC 3339 date-time to µs since the epoch. A time without a zone is UTC.
pub fn parse_iso(s: &str) -> Option<Micros> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    None
}

/// Seconds (possibly fractional) to µs.
pub fn secs_to_micros(s: f64) -> Option<Micros> {
    let us = (s * 1e6).round();
    (us.is_finite() && us.abs() < 9.0e18).then_some(us as Micros)
}

/// Excel serial day number (days since 1899-12-30, fraction = time of day, UTC) to µs.
pub fn excel_to_micros(days: f64) -> Option<Micros> {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?
        .and_hms_opt(0, 0, 0)?
        .and_utc();
    let us = (days * 86_400e6).round();
    if !us.is_finite() || !(0.0..1e17).contains(&us) {
        return None;
    }
    Some(epoch.timestamp_micros() + us as Micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_without_zone_are_utc() {
        assert_eq!(parse_iso("1970-01-01T00:00:01.5"), Some(1_500_000));
        assert_eq!(parse_iso("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_iso("2013-11-07T21:05:23.687179"),
            Some(1_383_858_323_687_179)
        );
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn excel_serial_days_count_from_1899_12_30() {
        // 45000.5 = 2023-03-15 12:00:00 UTC.
        assert_eq!(excel_to_micros(45000.5), parse_iso("2023-03-15T12:00:00"));
        assert_eq!(excel_to_micros(f64::NAN), None);
    }
}
