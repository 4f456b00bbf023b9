//! ZXY Sport Tracking long CSV: `id,t_utc,t_s,segment,x,y,heading,direction,energy,speed,
//! total_distance`, one row per tag sample (20 Hz), x/y in metres from a pitch corner, `speed`
//! in m/s as computed by the ZXY system (used as the device speed). Each tag keeps its own
//! timestamps (tags are not frame-aligned); `t_utc` has no zone and is UTC.

use std::io::Read;

use sideline_engine::Sample;

use crate::time::parse_iso;
use crate::{Dataset, ImportError, ImportReport, Tracks};

/// Options for the ZXY reader.
#[derive(Debug, Clone)]
pub struct ZxyOptions {
    /// Team id given to every tag.
    pub team: String,
    /// Session id.
    pub session: String,
}

impl Default for ZxyOptions {
    fn default() -> Self {
        ZxyOptions {
            team: "home".into(),
            session: "zxy".into(),
        }
    }
}

fn column(headers: &csv::StringRecord, name: &str) -> Result<usize, ImportError> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| ImportError::Format(format!("ZXY file has no `{name}` column")))
}

/// Read a ZXY long CSV.
pub fn read(input: impl Read, opts: &ZxyOptions) -> Result<Dataset, ImportError> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = rdr.headers()?.clone();
    let (c_id, c_t, c_x, c_y, c_v) = (
        column(&headers, "id")?,
        column(&headers, "t_utc")?,
        column(&headers, "x")?,
        column(&headers, "y")?,
        column(&headers, "speed")?,
    );
    let mut report = ImportReport::default();
    let mut tracks = Tracks::default();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec)? {
        report.rows += 1;
        let line = rec.position().map_or(0, |p| p.line());
        let field = |i: usize| rec.get(i).unwrap_or("").trim();
        let id = field(c_id);
        if id.is_empty() {
            report.skip("missing tag id", line, "");
            continue;
        }
        let Some(t) = parse_iso(field(c_t)) else {
            report.skip("bad timestamp", line, field(c_t));
            continue;
        };
        let num = |i: usize| field(i).parse::<f64>().ok().filter(|v| v.is_finite());
        let (Some(x), Some(y)) = (num(c_x), num(c_y)) else {
            report.skip(
                "bad position",
                line,
                format!("{},{}", field(c_x), field(c_y)),
            );
            continue;
        };
        let speed = match num(c_v) {
            Some(v) if v >= 0.0 => Some(v as f32),
            _ => {
                report.skip("bad speed (position kept, speed derived)", line, field(c_v));
                None
            }
        };
        tracks.push(id, &opts.team, Sample::xy(t, x, y, speed));
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

    const HEAD: &str = "id,t_utc,t_s,segment,x,y,heading,direction,energy,speed,total_distance\n";

    #[test]
    fn rows_become_per_tag_tracks_with_device_speed() {
        let text = format!(
            "{HEAD}2,2013-11-07T21:05:23.700000,0,1,10.0,20.0,0,0,0,3.5,0\n\
             7,2013-11-07T21:05:23.710000,0,1,30.0,40.0,0,0,0,1.0,0\n\
             2,2013-11-07T21:05:23.750000,0.05,1,10.2,20.0,0,0,0,3.6,0.2\n"
        );
        let d = read(text.as_bytes(), &ZxyOptions::default()).unwrap();
        assert_eq!(d.tracks.len(), 2);
        assert_eq!(d.tracks[0].player, "2");
        assert_eq!(d.tracks[0].samples.len(), 2);
        assert_eq!(d.report.samples, 3);
        assert_eq!(d.tracks[0].samples[1].t - d.tracks[0].samples[0].t, 50_000);
    }

    #[test]
    fn bad_rows_are_counted_with_their_line_and_reason() {
        let text = format!(
            "{HEAD}2,not-a-time,0,1,10.0,20.0,0,0,0,3.5,0\n\
             2,2013-11-07T21:05:23.750000,0.05,1,NaN,20.0,0,0,0,3.6,0.2\n\
             2,2013-11-07T21:05:23.800000,0.05,1,1.0,20.0,0,0,0,-1,0.2\n"
        );
        let d = read(text.as_bytes(), &ZxyOptions::default()).unwrap();
        assert_eq!(d.report.rows, 3);
        assert_eq!(d.report.samples, 1);
        assert_eq!(d.report.skipped["bad timestamp"], 1);
        assert_eq!(d.report.skipped["bad position"], 1);
        assert!(
            d.report.examples[0].starts_with("line 2: bad timestamp"),
            "{:?}",
            d.report
        );
    }

    #[test]
    fn a_file_without_the_needed_columns_is_an_error() {
        let err = read("id,x,y\n1,2,3\n".as_bytes(), &ZxyOptions::default()).unwrap_err();
        assert!(err.to_string().contains("t_utc"), "{err}");
    }
}
