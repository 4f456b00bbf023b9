//! STATSports GPS export CSV, 10 Hz, several players per file:
//!
//! ```text
//! Player Id, Player Display Name, Time, Elapsed Time (s), Lat, Lon, Speed km/h,
//! Instantaneous Acceleration Impulse, Heart Rate (bpm)
//! ```
//!
//! Header names may carry leading spaces. `Speed km/h` is the device's own (Doppler) speed and
//! is used as such (converted to m/s); positions are WGS84 and projected by the engine onto a
//! local plane. Event time is `Time` when it is a full ISO-8601 date-time, otherwise
//! [`StatsportsOptions::start`] + `Elapsed Time (s)`. Heart rate is taken at most once a
//! second per player (the export repeats it on every 10 Hz row); 0 means "no strap".

use std::collections::HashMap;
use std::io::Read;

use sideline_engine::sample::{Coord, Position, Reading};
use sideline_engine::{Micros, Sample};

use crate::time::{parse_iso, secs_to_micros};
use crate::{Dataset, ImportError, ImportReport, Tracks};

/// Options for the STATSports reader.
#[derive(Debug, Clone)]
pub struct StatsportsOptions {
    /// Event time of elapsed 0 when `Time` is not a full date-time, µs.
    pub start: Micros,
    /// Team id.
    pub team: String,
    /// Session id.
    pub session: String,
}

impl Default for StatsportsOptions {
    fn default() -> Self {
        StatsportsOptions {
            start: 1_577_836_800_000_000,
            team: "home".into(),
            session: "statsports".into(),
        }
    }
}

/// Index of a header, ignoring surrounding spaces and case.
pub(crate) fn find_column(headers: &csv::StringRecord, name: &str) -> Option<usize> {
    headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
}

fn need(headers: &csv::StringRecord, name: &str) -> Result<usize, ImportError> {
    find_column(headers, name)
        .ok_or_else(|| ImportError::Format(format!("STATSports export has no `{name}` column")))
}

/// Read a STATSports GPS export.
pub fn read(input: impl Read, opts: &StatsportsOptions) -> Result<Dataset, ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let h = rdr.headers()?.clone();
    let c_id = need(&h, "Player Id")?;
    let c_name = find_column(&h, "Player Display Name");
    let c_time = find_column(&h, "Time");
    let c_el = need(&h, "Elapsed Time (s)")?;
    let (c_lat, c_lon) = (need(&h, "Lat")?, need(&h, "Lon")?);
    let c_v = need(&h, "Speed km/h")?;
    let c_hr = find_column(&h, "Heart Rate (bpm)");
    let mut report = ImportReport::default();
    let mut tracks = Tracks::default();
    let mut last_hr: HashMap<String, Micros> = HashMap::new();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec)? {
        report.rows += 1;
        let line = rec.position().map_or(0, |p| p.line());
        let f = |i: usize| rec.get(i).unwrap_or("");
        let num = |i: usize| f(i).parse::<f64>().ok().filter(|v| v.is_finite());
        let id = f(c_id);
        if id.is_empty() {
            report.skip("missing player id", line, c_name.map(f).unwrap_or(""));
            continue;
        }
        let t = match c_time.and_then(|c| parse_iso(f(c))) {
            Some(t) => Some(t),
            None => num(c_el).and_then(secs_to_micros).map(|us| opts.start + us),
        };
        let Some(t) = t else {
            report.skip("bad time", line, f(c_el));
            continue;
        };
        match (num(c_lat), num(c_lon)) {
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                let speed = num(c_v).filter(|v| *v >= 0.0).map(|kmh| (kmh / 3.6) as f32);
                if speed.is_none() {
                    report.skip("bad speed (position kept, speed derived)", line, f(c_v));
                }
                let pos = Position {
                    coord: Coord::LatLon { lat, lon },
                    speed,
                    satellites: None,
                    hdop: None,
                };
                tracks.push(
                    id,
                    &opts.team,
                    Sample {
                        t,
                        reading: Reading::Position(pos),
                    },
                );
            }
            _ => report.skip("bad position", line, format!("{},{}", f(c_lat), f(c_lon))),
        }
        if let Some(bpm) = c_hr.and_then(num).filter(|b| *b > 0.0) {
            let due = last_hr.get(id).is_none_or(|&lt| t - lt >= 1_000_000);
            if due {
                if (20.0..=250.0).contains(&bpm) {
                    last_hr.insert(id.to_string(), t);
                    tracks.push(id, &opts.team, Sample::hr(t, bpm as f32));
                } else {
                    report.skip("heart rate out of range", line, bpm);
                }
            }
        }
    }
    Ok(Dataset {
        session: opts.session.clone(),
        tracks: tracks.tracks,
        report,
    }
    .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_with_leading_spaces_and_kmh_speed_are_understood() {
        let text = "Player Id, Player Display Name, Time, Elapsed Time (s), Lat, Lon, Speed km/h, Instantaneous Acceleration Impulse, Heart Rate (bpm)\n\
                    17, A Player, 19:00:00.0, 0.0, 53.30, -6.20, 18.0, 0.1, 150\n\
                    17, A Player, 19:00:00.1, 0.1, 53.30001, -6.20, 18.0, 0.1, 150\n\
                    17, A Player, 19:00:01.0, 1.0, 53.30009, -6.20, 18.0, 0.1, 151\n";
        let d = read(text.as_bytes(), &StatsportsOptions::default()).unwrap();
        assert_eq!(d.tracks.len(), 1);
        let s = &d.tracks[0].samples;
        // 3 fixes and 2 heart-rate readings (the 0.1 s repeat is not a new reading).
        assert_eq!(s.len(), 5);
        let Reading::Position(p) = s[0].reading else {
            panic!()
        };
        assert_eq!(p.speed, Some(5.0));
        assert_eq!(d.report.skipped_total(), 0);
    }
}
