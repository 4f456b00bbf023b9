//! Any CSV, given a column mapping (TOML). Example:
//!
//! ```toml
//! player_column = "athlete"      # or: player = "p7" for a one-player file
//! team = "home"                  # or: team_column = "squad"
//! time_column = "timestamp"
//! time_format = "iso8601"        # "seconds" (offset from `start`), "iso8601", "excel" (serial days)
//! start = "2025-03-01T15:00:00Z" # only for "seconds"
//! x_column = "x"                 # metres…
//! y_column = "y"
//! # lat_column = "lat"           # …or WGS84 degrees, projected onto a local plane
//! # lon_column = "lon"
//! speed_column = "speed"         # optional: the device's own speed
//! speed_unit = "kmh"             # "mps" (default) or "kmh"
//! heart_rate_column = "hr"       # optional
//! delimiter = ";"                # default ","
//! ```

use std::io::Read;

use serde::Deserialize;
use sideline_engine::sample::{Coord, Position, Reading};
use sideline_engine::{Micros, Sample};

use crate::statsports::find_column;
use crate::time::{excel_to_micros, parse_iso, secs_to_micros};
use crate::{Dataset, ImportError, ImportReport, Tracks};

/// How the time column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Seconds (fractional) after `start`.
    Seconds,
    /// ISO-8601 date-time; no zone means UTC.
    Iso8601,
    /// Excel serial days (days since 1899-12-30, UTC).
    Excel,
}

/// Unit of the speed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeedUnit {
    /// Metres per second.
    #[default]
    Mps,
    /// Kilometres per hour.
    Kmh,
}

/// A column mapping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Field delimiter (one character).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Column holding the player id.
    #[serde(default)]
    pub player_column: Option<String>,
    /// Player id for a one-player file.
    #[serde(default)]
    pub player: Option<String>,
    /// Column holding the team id.
    #[serde(default)]
    pub team_column: Option<String>,
    /// Team id for every row (default "home").
    #[serde(default)]
    pub team: Option<String>,
    /// Column holding the time.
    pub time_column: String,
    /// How times are written.
    pub time_format: TimeFormat,
    /// Start for `seconds` times (ISO-8601; default 2020-01-01T00:00:00Z).
    #[serde(default)]
    pub start: Option<String>,
    /// x in metres.
    #[serde(default)]
    pub x_column: Option<String>,
    /// y in metres.
    #[serde(default)]
    pub y_column: Option<String>,
    /// Latitude in degrees.
    #[serde(default)]
    pub lat_column: Option<String>,
    /// Longitude in degrees.
    #[serde(default)]
    pub lon_column: Option<String>,
    /// Device speed.
    #[serde(default)]
    pub speed_column: Option<String>,
    /// Unit of the speed column.
    #[serde(default)]
    pub speed_unit: SpeedUnit,
    /// Heart rate in bpm.
    #[serde(default)]
    pub heart_rate_column: Option<String>,
}

impl Mapping {
    /// Parse and check a TOML mapping; every problem is reported.
    pub fn from_toml(text: &str) -> Result<Self, ImportError> {
        let m: Mapping =
            toml::from_str(text).map_err(|e| ImportError::Format(format!("mapping: {e}")))?;
        let mut errs = Vec::new();
        if m.player_column.is_some() == m.player.is_some() {
            errs.push("give exactly one of `player_column` or `player`");
        }
        let xy = m.x_column.is_some() && m.y_column.is_some();
        let ll = m.lat_column.is_some() && m.lon_column.is_some();
        if xy == ll {
            errs.push("give either `x_column` + `y_column` or `lat_column` + `lon_column`");
        }
        if m.delimiter.as_ref().is_some_and(|d| d.len() != 1) {
            errs.push("`delimiter` must be one ASCII character");
        }
        if m.start.as_ref().is_some_and(|s| parse_iso(s).is_none()) {
            errs.push("`start` must be an ISO-8601 date-time");
        }
        if errs.is_empty() {
            Ok(m)
        } else {
            Err(ImportError::Format(format!("mapping: {}", errs.join("; "))))
        }
    }
}

/// Read a CSV with a mapping.
pub fn read(input: impl Read, m: &Mapping, session: &str) -> Result<Dataset, ImportError> {
    let delim = m.delimiter.as_deref().map_or(b',', |d| d.as_bytes()[0]);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let h = rdr.headers()?.clone();
    let col = |name: &Option<String>| -> Result<Option<usize>, ImportError> {
        match name {
            None => Ok(None),
            Some(n) => find_column(&h, n).map(Some).ok_or_else(|| {
                ImportError::Format(format!("CSV has no column `{n}` named in the mapping"))
            }),
        }
    };
    let c_player = col(&m.player_column)?;
    let c_team = col(&m.team_column)?;
    let c_time = col(&Some(m.time_column.clone()))?.unwrap_or(0);
    let (c_x, c_y) = (col(&m.x_column)?, col(&m.y_column)?);
    let (c_lat, c_lon) = (col(&m.lat_column)?, col(&m.lon_column)?);
    let c_speed = col(&m.speed_column)?;
    let c_hr = col(&m.heart_rate_column)?;
    let start: Micros = m
        .start
        .as_deref()
        .and_then(parse_iso)
        .unwrap_or(1_577_836_800_000_000);
    let team_default = m.team.clone().unwrap_or_else(|| "home".into());
    let mut report = ImportReport::default();
    let mut tracks = Tracks::default();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec)? {
        report.rows += 1;
        let line = rec.position().map_or(0, |p| p.line());
        let f = |i: usize| rec.get(i).unwrap_or("");
        let num = |i: Option<usize>| {
            i.and_then(|i| f(i).parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let player = c_player.map_or_else(
            || m.player.clone().unwrap_or_default(),
            |c| f(c).to_string(),
        );
        if player.is_empty() {
            report.skip("missing player", line, "");
            continue;
        }
        let team = c_team.map_or_else(|| team_default.clone(), |c| f(c).to_string());
        let raw_t = f(c_time);
        let t = match m.time_format {
            TimeFormat::Iso8601 => parse_iso(raw_t),
            TimeFormat::Seconds => raw_t
                .parse()
                .ok()
                .and_then(secs_to_micros)
                .map(|us| start + us),
            TimeFormat::Excel => raw_t.parse().ok().and_then(excel_to_micros),
        };
        let Some(t) = t else {
            report.skip("bad time", line, raw_t);
            continue;
        };
        let coord = if c_x.is_some() {
            num(c_x).zip(num(c_y)).map(|(x, y)| Coord::Xy { x, y })
        } else {
            num(c_lat)
                .zip(num(c_lon))
                .filter(|(lat, lon)| lat.abs() <= 90.0 && lon.abs() <= 180.0)
                .map(|(lat, lon)| Coord::LatLon { lat, lon })
        };
        let speed = num(c_speed)
            .filter(|v| *v >= 0.0)
            .map(|v| match m.speed_unit {
                SpeedUnit::Mps => v as f32,
                SpeedUnit::Kmh => (v / 3.6) as f32,
            });
        match coord {
            Some(coord) => {
                let pos = Position {
                    coord,
                    speed,
                    satellites: None,
                    hdop: None,
                };
                tracks.push(
                    &player,
                    &team,
                    Sample {
                        t,
                        reading: Reading::Position(pos),
                    },
                );
            }
            None => report.skip("bad position", line, ""),
        }
        if let Some(bpm) = num(c_hr).filter(|b| *b > 0.0) {
            if (20.0..=250.0).contains(&bpm) {
                tracks.push(&player, &team, Sample::hr(t, bpm as f32));
            } else {
                report.skip("heart rate out of range", line, bpm);
            }
        }
    }
    Ok(Dataset {
        session: session.to_string(),
        tracks: tracks.tracks,
        report,
    }
    .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_times_and_kmh_speeds_map_onto_samples() {
        let m = Mapping::from_toml(
            "player = \"p7\"\ntime_column = \"When\"\ntime_format = \"excel\"\n\
             x_column = \"X\"\ny_column = \"Y\"\nspeed_column = \"V\"\nspeed_unit = \"kmh\"\ndelimiter = \";\"\n",
        )
        .unwrap();
        let text = "When;X;Y;V\n45000.5;1.0;2.0;36\n45000.50001;1.1;2.0;36\n";
        let d = read(text.as_bytes(), &m, "s").unwrap();
        let s = &d.tracks[0].samples;
        assert_eq!(s.len(), 2);
        // 0.00001 day = 0.864 s (to within float resolution of the serial number).
        assert!(
            (s[1].t - s[0].t - 864_000).abs() <= 2,
            "{}",
            s[1].t - s[0].t
        );
        let Reading::Position(p) = s[0].reading else {
            panic!()
        };
        assert_eq!(p.speed, Some(10.0));
    }

    #[test]
    fn an_inconsistent_mapping_lists_every_problem() {
        let err = Mapping::from_toml("time_column = \"t\"\ntime_format = \"seconds\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("player_column") && err.contains("x_column"),
            "{err}"
        );
        let err =
            Mapping::from_toml("time_column = \"t\"\ntime_format = \"fortnights\"\n").unwrap_err();
        assert!(err.to_string().contains("fortnights"), "{err}");
    }

    #[test]
    fn a_missing_mapped_column_is_an_error_naming_it() {
        let m = Mapping::from_toml(
            "player = \"p\"\ntime_column = \"t\"\ntime_format = \"seconds\"\nlat_column = \"lat\"\nlon_column = \"lng\"\n",
        )
        .unwrap();
        let err = read("t,lat,lon\n0,1,2\n".as_bytes(), &m, "s").unwrap_err();
        assert!(err.to_string().contains("`lng`"), "{err}");
    }
}
