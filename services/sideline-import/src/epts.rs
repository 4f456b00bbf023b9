//! Metrica EPTS: `tracking.txt` lines `frame:x1,y1;x2,y2;…:bx,by` (normalised like the CSV) with
//! a FIFA EPTS `metadata.xml` that says which player is in which slot.
//!
//! The metadata lists `DataFormatSpecification`s, each for a frame range, with its
//! `PlayerChannelRef`s in slot order (the order changes at substitutions);
//! `PlayerChannel id → playerId`; `Player id → teamId, ShirtNumber`; the local team of the
//! `Score` element is "home". Halves come from the `first_half_start` … provider parameters;
//! each new half is shifted by the period gap as in the CSV reader. A frame outside every
//! specification uses the last one that starts before it (counted as a warning).

use std::collections::HashMap;
use std::io::{BufRead, Read};

use sideline_engine::Sample;

use crate::metrica::MetricaOptions;
use crate::time::parse_iso;
use crate::{Dataset, ImportError, ImportReport, Tracks};

/// One slot layout valid for a range of frames.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatSpec {
    /// First frame (inclusive).
    pub start: u64,
    /// Last frame (inclusive).
    pub end: u64,
    /// Player id in each slot (None when a slot's channels are unknown).
    pub slots: Vec<Option<String>>,
}

/// What the metadata says.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Frames per second.
    pub frame_rate: f64,
    /// Pitch length and width, m.
    pub field: (f64, f64),
    /// Session start, µs since the epoch, when given.
    pub start: Option<i64>,
    /// Halves as inclusive frame ranges, in order.
    pub periods: Vec<(u64, u64)>,
    /// Player id → (team, shirt) with the team as "home"/"away".
    pub players: HashMap<String, (String, String)>,
    /// Slot layouts by frame range.
    pub specs: Vec<FormatSpec>,
}

fn text<'a>(node: roxmltree::Node<'a, 'a>, tag: &str) -> Option<&'a str> {
    node.descendants()
        .find(|n| n.has_tag_name(tag))
        .and_then(|n| n.text())
        .map(str::trim)
}

fn format_err(msg: impl Into<String>) -> ImportError {
    ImportError::Format(msg.into())
}

/// Parse `metadata.xml`.
pub fn read_metadata(xml: &str) -> Result<Metadata, ImportError> {
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| format_err(format!("metadata.xml: {e}")))?;
    let root = doc.root_element();
    let frame_rate: f64 = text(root, "FrameRate")
        .and_then(|s| s.parse().ok())
        .filter(|r: &f64| *r > 0.0)
        .ok_or_else(|| format_err("metadata.xml: no valid FrameRate"))?;
    let field = root
        .descendants()
        .find(|n| n.has_tag_name("FieldSize"))
        .and_then(|f| {
            Some((
                text(f, "Width")?.parse().ok()?,
                text(f, "Height")?.parse().ok()?,
            ))
        })
        .unwrap_or((105.0, 68.0));
    let start = text(root, "Start").and_then(parse_iso);

    // Provider parameters: name → value.
    let params: HashMap<&str, &str> = root
        .descendants()
        .filter(|n| n.has_tag_name("ProviderParameter"))
        .filter_map(|n| Some((text(n, "Name")?, text(n, "Value").unwrap_or(""))))
        .collect();
    let mut periods = Vec::new();
    for half in [
        "first_half",
        "second_half",
        "first_extra_half",
        "second_extra_half",
    ] {
        let get = |k: &str| {
            params
                .get(format!("{half}_{k}").as_str())
                .and_then(|v| v.parse().ok())
        };
        if let (Some(a), Some(b)) = (get("start"), get("end")) {
            periods.push((a, b));
        }
    }

    let score = root.descendants().find(|n| n.has_tag_name("Score"));
    let local = score.and_then(|s| s.attribute("idLocalTeam"));
    let visiting = score.and_then(|s| s.attribute("idVisitingTeam"));
    let team_ids: Vec<&str> = root
        .descendants()
        .filter(|n| n.has_tag_name("Team"))
        .filter_map(|n| n.attribute("id"))
        .collect();
    let side = |team: &str| -> String {
        if Some(team) == local || (local.is_none() && team_ids.first() == Some(&team)) {
            "home".into()
        } else if Some(team) == visiting || local.is_none() {
            "away".into()
        } else {
            team.to_lowercase()
        }
    };
    let players: HashMap<String, (String, String)> = root
        .descendants()
        .filter(|n| n.has_tag_name("Player"))
        .filter_map(|n| {
            let id = n.attribute("id")?;
            let team = side(n.attribute("teamId")?);
            let shirt = text(n, "ShirtNumber").unwrap_or(id).to_string();
            Some((id.to_string(), (team, shirt)))
        })
        .collect();
    let channels: HashMap<&str, &str> = root
        .descendants()
        .filter(|n| n.has_tag_name("PlayerChannel"))
        .filter_map(|n| Some((n.attribute("id")?, n.attribute("playerId")?)))
        .collect();
    let mut specs = Vec::new();
    for spec in root
        .descendants()
        .filter(|n| n.has_tag_name("DataFormatSpecification"))
    {
        let attr = |k| spec.attribute(k).and_then(|v: &str| v.parse::<u64>().ok());
        let (Some(start), Some(end)) = (attr("startFrame"), attr("endFrame")) else {
            return Err(format_err(
                "metadata.xml: DataFormatSpecification without frame range",
            ));
        };
        let refs: Vec<&str> = spec
            .descendants()
            .filter(|n| n.has_tag_name("PlayerChannelRef"))
            .filter_map(|n| n.attribute("playerChannelId"))
            .collect();
        let slots = refs
            .chunks(2)
            .map(|pair| {
                let p = channels.get(pair[0]).copied();
                (pair.len() == 2 && p.is_some() && p == channels.get(pair[1]).copied())
                    .then(|| p.map(str::to_string))
                    .flatten()
            })
            .collect();
        specs.push(FormatSpec { start, end, slots });
    }
    if specs.is_empty() {
        return Err(format_err("metadata.xml: no DataFormatSpecification"));
    }
    specs.sort_by_key(|s| s.start);
    Ok(Metadata {
        frame_rate,
        field,
        start,
        periods,
        players,
        specs,
    })
}

impl Metadata {
    fn spec_for(&self, frame: u64) -> (Option<&FormatSpec>, bool) {
        if let Some(s) = self
            .specs
            .iter()
            .find(|s| s.start <= frame && frame <= s.end)
        {
            return (Some(s), true);
        }
        (self.specs.iter().rev().find(|s| s.start <= frame), false)
    }

    fn period_of(&self, frame: u64) -> u32 {
        let mut period = 1;
        for (i, &(a, _)) in self.periods.iter().enumerate() {
            if frame >= a {
                period = i as u32 + 1;
            }
        }
        period
    }
}

/// Read `tracking.txt` with its parsed metadata. `opts` supplies the session id and the period
/// gap; pitch size and start time come from the metadata unless `opts` overrides them
/// (`override_pitch`).
pub fn read(
    tracking: impl Read,
    meta: &Metadata,
    opts: &MetricaOptions,
    override_pitch: bool,
) -> Result<Dataset, ImportError> {
    let mut o = opts.clone();
    if !override_pitch {
        o.pitch_length_m = meta.field.0;
        o.pitch_width_m = meta.field.1;
    }
    if let Some(s) = meta.start {
        o.start = s;
    }
    let mut report = ImportReport::default();
    let mut tracks = Tracks::default();
    let name = |pid: &str| -> (String, String) {
        match meta.players.get(pid) {
            Some((team, shirt)) => (format!("{team}-{shirt}"), team.clone()),
            None => (pid.to_string(), "unknown".to_string()),
        }
    };
    for spec in &meta.specs {
        for pid in spec.slots.iter().flatten() {
            let (id, team) = name(pid);
            tracks.declare(&id, &team);
        }
    }
    let reader = std::io::BufReader::new(tracking);
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        let lineno = n as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        report.rows += 1;
        let mut parts = line.splitn(3, ':');
        let (Some(frame), Some(players)) = (parts.next(), parts.next()) else {
            report.skip("malformed line", lineno, "expected frame:players:ball");
            continue;
        };
        let Ok(frame) = frame.trim().parse::<u64>() else {
            report.skip("malformed line", lineno, format!("bad frame `{frame}`"));
            continue;
        };
        let (spec, inside) = meta.spec_for(frame);
        let Some(spec) = spec else {
            report.skip("frame before every format specification", lineno, frame);
            continue;
        };
        if !inside {
            *report
                .warnings
                .entry("frame outside its format specification (last layout used)")
                .or_default() += 1;
        }
        let period = meta.period_of(frame);
        let Some(t) = o.event_time(frame as f64 / meta.frame_rate, period) else {
            report.skip("malformed line", lineno, "frame time out of range");
            continue;
        };
        let cells: Vec<&str> = players.split(';').collect();
        if cells.len() != spec.slots.len() {
            report.skip(
                "slot count differs from metadata",
                lineno,
                format!("{} slots, metadata has {}", cells.len(), spec.slots.len()),
            );
            continue;
        }
        for (cell, slot) in cells.iter().zip(&spec.slots) {
            let Some(pid) = slot else { continue };
            let (id, team) = name(pid);
            let mut xy = cell.split(',').map(str::trim);
            let (xs, ys) = (xy.next().unwrap_or(""), xy.next().unwrap_or(""));
            if xs.eq_ignore_ascii_case("nan") || ys.eq_ignore_ascii_case("nan") || xs.is_empty() {
                report.absent += 1;
                continue;
            }
            match (xs.parse::<f64>(), ys.parse::<f64>()) {
                (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                    let (xm, ym) = o.to_metres(x, y);
                    tracks.push(&id, &team, Sample::xy(t, xm, ym, None));
                }
                _ => report.skip("bad coordinate", lineno, format!("{id}: {cell}")),
            }
        }
    }
    Ok(Dataset {
        session: o.session.clone(),
        tracks: tracks.tracks,
        report,
    }
    .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"<main><Metadata>
      <GlobalConfig><FrameRate>25</FrameRate><ProviderGlobalParameters>
        <ProviderParameter><Name>first_half_start</Name><Value>1</Value></ProviderParameter>
        <ProviderParameter><Name>first_half_end</Name><Value>2</Value></ProviderParameter>
        <ProviderParameter><Name>second_half_start</Name><Value>3</Value></ProviderParameter>
        <ProviderParameter><Name>second_half_end</Name><Value>9</Value></ProviderParameter>
      </ProviderGlobalParameters></GlobalConfig>
      <Sessions><Session><Start>2019-02-21T03:30:07.000Z</Start>
        <MatchParameters><Score idLocalTeam="B" idVisitingTeam="A"/></MatchParameters>
        <FieldSize><Width>100</Width><Height>50</Height></FieldSize></Session></Sessions>
      <Teams><Team id="A"/><Team id="B"/></Teams>
      <Players>
        <Player id="p1" teamId="A"><ShirtNumber>7</ShirtNumber></Player>
        <Player id="p2" teamId="B"><ShirtNumber>9</ShirtNumber></Player>
      </Players>
      <PlayerChannels>
        <PlayerChannel channelId="x" id="c1x" playerId="p1"/><PlayerChannel channelId="y" id="c1y" playerId="p1"/>
        <PlayerChannel channelId="x" id="c2x" playerId="p2"/><PlayerChannel channelId="y" id="c2y" playerId="p2"/>
      </PlayerChannels></Metadata>
      <DataFormatSpecifications>
        <DataFormatSpecification startFrame="1" endFrame="2"><PlayerChannelRef playerChannelId="c1x"/><PlayerChannelRef playerChannelId="c1y"/><PlayerChannelRef playerChannelId="c2x"/><PlayerChannelRef playerChannelId="c2y"/></DataFormatSpecification>
        <DataFormatSpecification startFrame="3" endFrame="3"><PlayerChannelRef playerChannelId="c2x"/><PlayerChannelRef playerChannelId="c2y"/><PlayerChannelRef playerChannelId="c1x"/><PlayerChannelRef playerChannelId="c1y"/></DataFormatSpecification>
      </DataFormatSpecifications></main>"#;

    #[test]
    fn slots_follow_the_specification_for_each_frame() {
        let m = read_metadata(META).unwrap();
        assert_eq!(m.field, (100.0, 50.0));
        let tracking =
            "1:0.5,0.5;0.1,0.1:NaN,NaN\n3:0.2,0.2;0.6,0.6:0.5,0.5\n4:0.2,0.2;0.7,0.7:0.5,0.5\n";
        let d = read(tracking.as_bytes(), &m, &MetricaOptions::default(), false).unwrap();
        let find = |id: &str| d.tracks.iter().find(|t| t.player == id).unwrap();
        // Team B is the local team, so shirt 9 is home.
        let home9 = find("home-9");
        let away7 = find("away-7");
        assert_eq!(home9.samples.len(), 3);
        let sideline_engine::Reading::Position(p) = away7.samples[1].reading else {
            panic!()
        };
        // Frame 3: slot 2 is p1 at (0.6, 0.6) → (10, −5) on a 100 × 50 pitch.
        let sideline_engine::sample::Coord::Xy { x, y } = p.coord else {
            panic!()
        };
        assert!(
            (x - 10.0).abs() < 1e-9 && (y - (-5.0)).abs() < 1e-9,
            "{x},{y}"
        );
        // Frame 3 is in the second half: shifted by the 900 s break.
        assert_eq!(away7.samples[1].t - away7.samples[0].t, 900_080_000);
        assert_eq!(d.report.warnings.values().sum::<u64>(), 1);
    }

    #[test]
    fn a_line_with_the_wrong_slot_count_is_counted_not_misassigned() {
        let m = read_metadata(META).unwrap();
        let d = read(
            "1:0.5,0.5:NaN,NaN\n".as_bytes(),
            &m,
            &MetricaOptions::default(),
            false,
        )
        .unwrap();
        assert_eq!(d.report.skipped["slot count differs from metadata"], 1);
        assert_eq!(d.report.samples, 0);
    }
}
