//! `sideline analyze`: import recorded tracking, run the engine offline, print per-player
//! figures as a table or as JSON lines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use sideline_engine::{Engine, Params, PlayerMetrics};
use sideline_import::{Dataset, ImportReport, epts, mapped, metrica, statsports, zxy};

use crate::input::{open, progress, read_text};

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ZXY Sport Tracking long CSV.
    Zxy,
    /// Metrica raw tracking CSV, one file per team.
    MetricaCsv,
    /// Metrica EPTS: tracking.txt and metadata.xml.
    Epts,
    /// STATSports GPS export CSV.
    Statsports,
    /// Any CSV, with --mapping.
    Csv,
    /// The built-in synthetic match (no files; see --seed).
    Sim,
}

/// Arguments of `sideline analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Input format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Column mapping (TOML) for `--format csv`.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Engine parameter file (TOML); defaults otherwise.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Pitch size for Metrica formats, `LENGTHxWIDTH` in metres (default: metadata or 105x68).
    #[arg(long)]
    pub pitch: Option<String>,
    /// One JSON object per player per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print this player's strain-risk score, band, forecast and fired terms each minute.
    #[arg(long, value_name = "PLAYER")]
    pub timeline: Option<String>,
    /// Seed of the synthetic match (`--format sim`).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The synthetic match with three substitutes per team (on at 60′, 70′, 80′, streaming
    /// from the bench and a warm-up before), and their lineup (`--format sim`).
    #[arg(long)]
    pub substitutions: bool,
    /// Raw 10 Hz GNSS instead of clean fixes: latitude/longitude without device speed, with a
    /// published position-error model and 14 % of fixes missing (`sideline_sim::gnss`).
    #[arg(long)]
    pub raw_gnss: bool,
    /// Input files (EPTS: the tracking file and its metadata.xml; none for `sim`).
    pub paths: Vec<PathBuf>,
}

/// The per-player line of `--json` (units in the names; distances in metres).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[allow(missing_docs)] // Field names are the documentation: see the README's table.
pub struct Summary {
    pub player: String,
    pub team: String,
    /// Playing position, where known (the synthetic match's roles: GK, CB, FB, CM, WM, ST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Minutes on the pitch (with a lineup; otherwise every minute with a fix).
    pub minutes: f64,
    /// Minutes and metres off the pitch by the lineup (warm-up, bench): in no other figure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub off_pitch_min: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub off_pitch_m: f64,
    pub distance_m: f64,
    pub walk_m: f64,
    pub jog_m: f64,
    pub run_m: f64,
    pub hsr_m: f64,
    /// Distance ≥ 14.4 km/h (4 m/s), m: Bradley et al. 2009's "high-intensity running".
    #[serde(default)]
    pub moderate_m: f64,
    pub v24_m: f64,
    pub sprint_m: f64,
    pub hmld_m: f64,
    pub sprints: u32,
    pub hs_efforts: u32,
    /// Repeated high-intensity bouts (≥ 3 efforts ≥ 19.8 km/h of ≥ 1 s, each within 20 s of
    /// the last; Carling et al. 2012).
    #[serde(default)]
    pub rhi_bouts: u32,
    pub vmax_exposures_85_90_95: [u32; 3],
    pub max_speed_mps: f64,
    /// Distance at ≥ 85 / 90 / 95 % of his Vmax, m.
    pub vmax_band_m_85_90_95: [f64; 3],
    /// Where his Vmax came from: "profile", "history" or "default" (display only).
    pub vmax_source: &'static str,
    /// Highest single filtered sample (the maximum is held 0.5 s), m/s.
    pub peak_speed_mps: f64,
    pub accelerations: u32,
    pub decelerations: u32,
    pub accelerations_2_3: u32,
    pub decelerations_2_3: u32,
    pub load: f64,
    pub peak_1min_distance_m: Option<f64>,
    pub trimp_banister: f64,
    pub artefacts: u64,
    pub risk_score: f64,
    pub risk_band: String,
    /// Share (0–1) of the score's possible points that could be judged.
    pub risk_completeness: f64,
    /// The band is a floor: unknown terms could lift it ("at least amber").
    pub risk_band_floor: bool,
    /// "amber", "at least amber", … for the table.
    #[serde(skip)]
    pub risk_band_text: String,
    pub params_version: String,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Summary {
    /// The summary of a player's last snapshot.
    pub fn from_metrics(m: &PlayerMetrics) -> Self {
        let t = &m.totals;
        let r1 = |x: f64| (x * 10.0).round() / 10.0;
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        Summary {
            player: m.player.to_string(),
            team: m.team.to_string(),
            position: None,
            minutes: r3(t.minutes),
            off_pitch_min: r3(t.off_pitch_min),
            off_pitch_m: r1(t.off_pitch_m),
            distance_m: r1(t.distance_m),
            walk_m: r1(t.walk_m),
            jog_m: r1(t.jog_m),
            run_m: r1(t.run_m),
            hsr_m: r1(t.hsr_m),
            moderate_m: r1(t.moderate_m),
            v24_m: r1(t.v24_m),
            sprint_m: r1(t.sprint_m),
            hmld_m: r1(t.hmld_m),
            sprints: t.sprints,
            hs_efforts: t.hs_efforts,
            rhi_bouts: t.rhi_bouts,
            vmax_exposures_85_90_95: t.vmax_exposures,
            max_speed_mps: r3(t.max_speed_mps),
            vmax_band_m_85_90_95: t.vmax_band_m.map(r1),
            vmax_source: if t.vmax_is_default {
                "default"
            } else if t.vmax_from_history {
                "history"
            } else {
                "profile"
            },
            peak_speed_mps: r3(t.peak_speed_mps),
            accelerations: t.accelerations,
            decelerations: t.decelerations,
            accelerations_2_3: t.accelerations_moderate,
            decelerations_2_3: t.decelerations_moderate,
            load: r3(t.load),
            peak_1min_distance_m: m.windows.first().map(|w| r1(w.peak_distance_m)),
            trimp_banister: r1(t.hr.trimp_banister),
            artefacts: m.quality.artefacts,
            risk_score: (m.risk.score * 100.0).round() / 100.0,
            risk_band: format!("{:?}", m.risk.band).to_lowercase(),
            risk_completeness: r3(m.risk.completeness),
            risk_band_floor: m.risk.band_floor,
            risk_band_text: m.risk.band_text(),
            params_version: m.params_version.to_string(),
        }
    }
}

fn parse_pitch(s: &str) -> Result<(f64, f64)> {
    let (l, w) = s
        .split_once(['x', 'X'])
        .context("--pitch must look like 105x68")?;
    let (l, w): (f64, f64) = (l.trim().parse()?, w.trim().parse()?);
    if !(l > 0.0 && w > 0.0 && l < 1000.0 && w < 1000.0) {
        bail!("--pitch: implausible size {l}x{w}");
    }
    Ok((l, w))
}

/// Import the files named in `args`.
pub fn load(args: &AnalyzeArgs) -> Result<Dataset> {
    load_files(
        args.format,
        &args.paths,
        args.mapping.as_deref(),
        args.pitch.as_deref(),
    )
}

/// Import `paths` in `format` (`mapping` for mapped CSV, `pitch` for Metrica).
pub fn load_files(
    format: Format,
    paths: &[PathBuf],
    mapping: Option<&std::path::Path>,
    pitch: Option<&str>,
) -> Result<Dataset> {
    let pb = progress(paths, "reading");
    let mut mopts = metrica::MetricaOptions::default();
    let pitch = pitch.map(parse_pitch).transpose()?;
    if let Some((l, w)) = pitch {
        mopts.pitch_length_m = l;
        mopts.pitch_width_m = w;
    }
    let mut data = Dataset::default();
    match format {
        Format::Zxy => {
            for p in paths {
                data.merge(zxy::read(open(p, &pb)?, &zxy::ZxyOptions::default())?);
            }
        }
        Format::MetricaCsv => {
            for p in paths {
                data.merge(metrica::read(open(p, &pb)?, &mopts)?);
            }
        }
        Format::Epts => {
            let (meta, tracking): (Vec<&PathBuf>, Vec<&PathBuf>) = paths
                .iter()
                .partition(|p| p.to_string_lossy().to_lowercase().contains(".xml"));
            let (Some(meta), Some(tracking)) = (meta.first(), tracking.first()) else {
                bail!("--format epts needs the tracking file and its metadata .xml");
            };
            let m = epts::read_metadata(&read_text(meta)?)
                .with_context(|| format!("in {}", meta.display()))?;
            data.merge(epts::read(
                open(tracking, &pb)?,
                &m,
                &mopts,
                pitch.is_some(),
            )?);
        }
        Format::Statsports => {
            for p in paths {
                data.merge(statsports::read(
                    open(p, &pb)?,
                    &statsports::StatsportsOptions::default(),
                )?);
            }
        }
        Format::Sim => bail!("the synthetic match has no files to load"),
        Format::Csv => {
            let Some(mp) = mapping else {
                bail!("--format csv needs --mapping FILE");
            };
            let m = mapped::Mapping::from_toml(&read_text(mp)?)?;
            for p in paths {
                data.merge(mapped::read(open(p, &pb)?, &m, "csv")?);
            }
        }
    }
    pb.finish_and_clear();
    Ok(data)
}

/// Run the engine over a dataset; `on_snapshot` sees every snapshot; returns the last
/// snapshot of each player, in input order.
pub fn run_engine(
    data: &Dataset,
    params: Params,
    mut on_snapshot: impl FnMut(&PlayerMetrics),
) -> Vec<PlayerMetrics> {
    let mut engine: Engine = Engine::new(params, true);
    let mut last: BTreeMap<usize, PlayerMetrics> = BTreeMap::new();
    let mut out = sideline_engine::Outputs::default();
    for (i, track) in data.tracks.iter().enumerate() {
        for s in &track.samples {
            // Refusals (duplicate timestamps in a file) are counted inside the engine.
            let _ = engine.ingest(&track.player, &track.team, &data.session, *s, &mut out);
            out.alerts.clear();
            for m in out.metrics.drain(..) {
                on_snapshot(&m);
                last.insert(i, m);
            }
        }
    }
    engine.finish(&mut out);
    let index: BTreeMap<&str, usize> = data
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.player.as_str(), i))
        .collect();
    for m in out.metrics {
        on_snapshot(&m);
        if let Some(&i) = index.get(&*m.player) {
            last.insert(i, m);
        }
    }
    last.into_values().collect()
}

/// One line of `--timeline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineRow {
    /// Minutes since the player's first snapshot (event time, breaks included).
    pub minute: f64,
    /// Score.
    pub score: f64,
    /// Band.
    pub band: sideline_engine::risk::Band,
    /// Minutes to red at the current rate.
    pub red_in_min: Option<f64>,
    /// HSR so far, m.
    pub hsr_m: f64,
    /// Terms that fired, with points.
    pub fired: Vec<(String, f64)>,
}

/// What `analyze` computes.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Import report (empty for the synthetic match).
    pub report: ImportReport,
    /// One summary per player.
    pub summaries: Vec<Summary>,
    /// The `--timeline` player's rows, one per minute.
    pub timeline: Vec<TimelineRow>,
}

/// Import (or simulate), run the engine, summarise: everything `analyze` does but printing.
pub fn summarize(args: &AnalyzeArgs) -> Result<Analysis> {
    let params = crate::input::params_file(args.params.as_deref())?;
    let mut timeline = Vec::new();
    let mut first: Option<i64> = None;
    let watch = args.timeline.as_deref();
    let mut on_snapshot = |m: &PlayerMetrics| {
        if watch != Some(&*m.player) {
            return;
        }
        let t0 = *first.get_or_insert(m.t);
        if (m.t - t0) % 60_000_000 != 0 {
            return;
        }
        timeline.push(TimelineRow {
            minute: (m.t - t0) as f64 / 60e6,
            score: m.risk.score,
            band: m.risk.band,
            red_in_min: m.forecast.to_red_min,
            hsr_m: m.totals.hsr_m,
            fired: m
                .risk
                .terms
                .iter()
                .filter(|t| t.state == sideline_engine::risk::TermState::Fired)
                .map(|t| (t.id.to_string(), t.points))
                .collect(),
        });
    };
    let mut positions = std::collections::HashMap::new();
    let (report, last) = if args.format == Format::Sim {
        let cfg = sideline_sim::MatchConfig {
            seed: args.seed,
            substitutions: args.substitutions,
            gnss: args.raw_gnss.then(sideline_sim::gnss::GnssNoise::default),
            ..Default::default()
        };
        for p in sideline_sim::MatchSim::new(cfg.clone()).players() {
            positions.insert(p.player.clone(), p.role.name().to_string());
        }
        let last = sideline_sim::offline::run_match(cfg, params, &mut on_snapshot);
        (
            ImportReport::default(),
            last.last.into_values().collect::<Vec<_>>(),
        )
    } else {
        if args.paths.is_empty() {
            bail!("give the input files (or --format sim)");
        }
        let data = load(args)?;
        let last = run_engine(&data, params, &mut on_snapshot);
        (data.report, last)
    };
    let summaries = last
        .iter()
        .map(|m| Summary {
            position: positions.get(&*m.player).cloned(),
            ..Summary::from_metrics(m)
        })
        .collect();
    Ok(Analysis {
        report,
        summaries,
        timeline,
    })
}

/// `sideline analyze`.
pub fn run(args: &AnalyzeArgs) -> Result<()> {
    let Analysis {
        report: r,
        summaries,
        timeline,
    } = summarize(args)?;
    if args.format == Format::Sim {
        eprintln!(
            "synthetic match, seed {}: {} players",
            args.seed,
            summaries.len()
        );
    } else {
        eprintln!(
            "read {} rows → {} samples for {} players ({} absent values, {} skipped)",
            r.rows,
            r.samples,
            summaries.len(),
            r.absent,
            r.skipped_total()
        );
    }
    for (reason, n) in r.skipped.iter().chain(r.warnings.iter()) {
        eprintln!("  {n} × {reason}");
    }
    for e in &r.examples {
        eprintln!("  e.g. {e}");
    }
    if args.json {
        for s in &summaries {
            println!("{}", serde_json::to_string(s)?);
        }
        for row in &timeline {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    println!(
        "{:<6} {:<10} {:>6} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>4} {:>4} {:>7}  strain-risk",
        "team",
        "player",
        "min",
        "dist_m",
        "hsr_m",
        "spr_m",
        "sprints",
        "hs_eff",
        "vmax",
        "acc",
        "dec",
        "load"
    );
    for s in &summaries {
        println!(
            "{:<6} {:<10} {:>6.1} {:>8.1} {:>7.1} {:>7.1} {:>7} {:>6} {:>6.2} {:>4} {:>4} {:>7.2}  {:.2} {} ({:.0} % known)",
            s.team,
            s.player,
            s.minutes,
            s.distance_m,
            s.hsr_m,
            s.sprint_m,
            s.sprints,
            s.hs_efforts,
            s.max_speed_mps,
            s.accelerations,
            s.decelerations,
            s.load,
            s.risk_score,
            s.risk_band_text,
            100.0 * s.risk_completeness
        );
    }
    if let Some(p) = &args.timeline {
        println!("\nstrain-risk timeline of {p} (score, band, forecast; terms that fired):");
        for r in &timeline {
            let red = match r.red_in_min {
                Some(m) if m > 0.0 => format!("red in ~{m:.0} min"),
                _ => String::new(),
            };
            let terms: Vec<String> = r
                .fired
                .iter()
                .map(|(id, p)| format!("{id} +{p:.1}"))
                .collect();
            println!(
                "{:>5.0}′ {:>5.2} {:<6} {:<14} HSR {:>5.0} m  {}",
                r.minute,
                r.score,
                format!("{:?}", r.band).to_lowercase(),
                red,
                r.hsr_m,
                terms.join(", ")
            );
        }
    }
    Ok(())
}
