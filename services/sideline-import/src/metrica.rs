//! Metrica Sports "Raw Tracking Data" CSV (Sample Games 1–3 layout), one file per team:
//!
//! ```text
//! ,,,Home,,Home, … ,,                 row 1: team label above each player's x column
//! ,,,11,,1, … ,,                      row 2: shirt numbers (blank for the ball)
//! Period,Frame,Time [s],Player11,,Player1,, … ,Ball,
//! 1,1,0.04,0.00082,0.48238, …         one row per frame (25 Hz), (x, y) per player, ball last
//! ```
//!
//! Coordinates are normalised to [0, 1] with (0, 0) top-left; metres with the origin at the
//! centre are `x_m = (x − 0.5)·L`, `y_m = −(y − 0.5)·W`. `NaN` means the player is not on the
//! pitch (counted as absent, not as an error). Frames do not reset at half-time and the break
//! is not in the file, so each new period is shifted by [`MetricaOptions::period_gap_s`]: the
//! engine then sees a real gap and does not integrate the teams' change of ends as running.

use std::io::Read;

use sideline_engine::{Micros, Sample};

use crate::time::secs_to_micros;
use crate::{Dataset, ImportError, ImportReport, Tracks};

/// Options shared by the Metrica readers.
#[derive(Debug, Clone)]
pub struct MetricaOptions {
    /// Pitch length, m (Metrica's metadata says 105).
    pub pitch_length_m: f64,
    /// Pitch width, m.
    pub pitch_width_m: f64,
    /// Event time of `Time [s] = 0`, µs since the epoch.
    pub start: Micros,
    /// Break inserted before each new period, s.
    pub period_gap_s: f64,
    /// Session id.
    pub session: String,
}

impl Default for MetricaOptions {
    fn default() -> Self {
        MetricaOptions {
            pitch_length_m: 105.0,
            pitch_width_m: 68.0,
            // 2020-01-01T00:00:00Z: the files carry no absolute time.
            start: 1_577_836_800_000_000,
            period_gap_s: 900.0,
            session: "metrica".into(),
        }
    }
}

impl MetricaOptions {
    /// Normalised (x, y) to pitch metres.
    pub fn to_metres(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - 0.5) * self.pitch_length_m,
            -(y - 0.5) * self.pitch_width_m,
        )
    }

    /// Event time of a frame time in seconds within `period` (1-based).
    pub fn event_time(&self, secs: f64, period: u32) -> Option<Micros> {
        let offset = f64::from(period.saturating_sub(1)) * self.period_gap_s;
        secs_to_micros(secs + offset).map(|us| self.start + us)
    }
}

/// Read one team's CSV file.
pub fn read(input: impl Read, opts: &MetricaOptions) -> Result<Dataset, ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut rows = rdr.records();
    let mut header = || -> Result<csv::StringRecord, ImportError> {
        rows.next()
            .ok_or_else(|| ImportError::Format("Metrica CSV ends inside its 3 header rows".into()))?
            .map_err(ImportError::from)
    };
    let (labels, shirts, names) = (header()?, header()?, header()?);
    if names.get(0).map(str::trim) != Some("Period")
        || names.get(2).map(str::trim) != Some("Time [s]")
    {
        return Err(ImportError::Format(
            "not a Metrica tracking CSV: row 3 must start `Period,Frame,Time [s]`".into(),
        ));
    }
    let team = labels
        .get(3)
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ImportError::Format("Metrica CSV: no team label in row 1, column 4".into())
        })?;
    // Player x columns: named "Player…" in row 3; y is the next column.
    let players: Vec<(usize, String)> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.trim().starts_with("Player"))
        .map(|(j, n)| {
            let shirt = shirts
                .get(j)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map_or_else(
                    || n.trim().trim_start_matches("Player").to_string(),
                    str::to_string,
                );
            (j, format!("{team}-{shirt}"))
        })
        .collect();
    if players.is_empty() {
        return Err(ImportError::Format(
            "Metrica CSV: no Player columns in row 3".into(),
        ));
    }
    let mut report = ImportReport::default();
    let mut tracks = Tracks::default();
    for (_, id) in &players {
        tracks.declare(id, &team);
    }
    for rec in rows {
        let rec = rec?;
        report.rows += 1;
        let line = rec.position().map_or(0, |p| p.line());
        let period = rec.get(0).and_then(|s| s.trim().parse::<u32>().ok());
        let secs = rec.get(2).and_then(|s| s.trim().parse::<f64>().ok());
        let (Some(period), Some(secs)) = (period, secs) else {
            report.skip("bad period or time", line, rec.get(2).unwrap_or(""));
            continue;
        };
        let Some(t) = opts.event_time(secs, period) else {
            report.skip("bad period or time", line, secs);
            continue;
        };
        for (j, id) in &players {
            let (xs, ys) = (
                rec.get(*j).unwrap_or("").trim(),
                rec.get(j + 1).unwrap_or("").trim(),
            );
            if xs.eq_ignore_ascii_case("nan") || ys.eq_ignore_ascii_case("nan") {
                report.absent += 1;
                continue;
            }
            match (xs.parse::<f64>(), ys.parse::<f64>()) {
                (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                    let (xm, ym) = opts.to_metres(x, y);
                    tracks.push(id, &team, Sample::xy(t, xm, ym, None));
                }
                _ => report.skip("bad coordinate", line, format!("{id}: {xs},{ys}")),
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

    const FILE: &str = ",,,Home,,Home,,,\n\
                        ,,,11,,1,,,\n\
                        Period,Frame,Time [s],Player11,,Player1,,Ball,\n\
                        1,1,0.04,0.5,0.5,NaN,NaN,0.1,0.1\n\
                        1,2,0.08,0.6,0.25,0.1,x,NaN,NaN\n\
                        2,3,0.12,0.6,0.25,0.2,0.2,NaN,NaN\n";

    #[test]
    fn players_are_named_by_team_and_shirt_and_converted_to_metres() {
        let d = read(FILE.as_bytes(), &MetricaOptions::default()).unwrap();
        let ids: Vec<_> = d.tracks.iter().map(|t| t.player.as_str()).collect();
        assert_eq!(ids, ["home-11", "home-1"]);
        let s = d.tracks[0].samples[1];
        let sideline_engine::Reading::Position(p) = s.reading else {
            panic!()
        };
        let sideline_engine::sample::Coord::Xy { x, y } = p.coord else {
            panic!()
        };
        assert!(
            (x - 10.5).abs() < 1e-9 && (y - (17.0)).abs() < 1e-9,
            "{x},{y}"
        );
    }

    #[test]
    fn nan_is_absence_and_garbage_is_counted() {
        let d = read(FILE.as_bytes(), &MetricaOptions::default()).unwrap();
        assert_eq!(d.report.absent, 1);
        assert_eq!(d.report.skipped["bad coordinate"], 1);
        assert_eq!(d.report.samples, 4);
    }

    #[test]
    fn a_new_period_starts_after_the_inserted_break() {
        let d = read(FILE.as_bytes(), &MetricaOptions::default()).unwrap();
        let s = &d.tracks[0].samples;
        assert_eq!(s[2].t - s[1].t, 900_040_000);
    }

    #[test]
    fn the_real_kloppy_fixture_reads_both_teams() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/metrica/csv_format_fixture_kloppy"
        );
        let home = std::fs::read(format!("{dir}/metrica_home.csv")).unwrap();
        let d = read(&home[..], &MetricaOptions::default()).unwrap();
        assert_eq!(d.tracks.len(), 14);
        assert_eq!(d.report.rows, 6);
        assert_eq!(d.report.skipped_total(), 0);
        let away = std::fs::read(format!("{dir}/metrica_away.csv")).unwrap();
        let a = read(&away[..], &MetricaOptions::default()).unwrap();
        assert!(a.tracks.iter().all(|t| t.team == "away"));
    }
}
