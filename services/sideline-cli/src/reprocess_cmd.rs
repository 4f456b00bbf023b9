//! `sideline reprocess --session …`: a stored session through the engine again (another
//! parameter set, post-session zero-phase filtering), the reconciled per-second figures written
//! into the archive beside the live ones, and a per-player table of the differences.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use arrow::array::AsArray;
use arrow::datatypes::Float64Type;
use clap::Args;
use sideline_archive::query;
use sideline_archive::reprocess::{self, Rerun};
use sideline_archive::resolution;
use sideline_engine::PlayerMetrics;
use sideline_wire::roster::Roster;

/// Arguments of `sideline reprocess`.
#[derive(Debug, Args)]
pub struct ReprocessArgs {
    /// The session to re-run.
    #[arg(long)]
    pub session: String,
    /// Only this team.
    #[arg(long)]
    pub team: Option<String>,
    /// Engine parameter set (TOML); default: the built-in (live) set.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Roster with athlete profiles (reference max speed, HRmax/HRrest), as given to ingest.
    #[arg(long)]
    pub roster: Option<PathBuf>,
    /// Post-session zero-phase speed filtering instead of the live causal filter.
    #[arg(long)]
    pub zero_phase: bool,
    /// Compute and report only; write nothing into the archive.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the differences as JSON, one object per player and figure (the session line
    /// goes to stderr), instead of CSV.
    #[arg(long)]
    pub json: bool,
    /// The archive: a directory or `s3://bucket/prefix` (S3 settings from `AWS_*` variables).
    #[arg(long, env = "SIDELINE_ARCHIVE", default_value = "sideline-archive")]
    pub archive: PathBuf,
}

/// The figures compared, as (column in `metrics`, label, value of a snapshot).
type Figure = (&'static str, fn(&PlayerMetrics) -> f64);
const FIGURES: [Figure; 8] = [
    ("distance_m", |m| m.totals.distance_m),
    ("hsr_m", |m| m.totals.hsr_m),
    ("sprint_m", |m| m.totals.sprint_m),
    ("sprints", |m| f64::from(m.totals.sprints)),
    ("accelerations", |m| f64::from(m.totals.accelerations)),
    ("decelerations", |m| f64::from(m.totals.decelerations)),
    ("max_speed_mps", |m| m.totals.max_speed_mps),
    ("load", |m| m.totals.load),
];

/// The live final figures of each player in the session.
pub async fn live_finals(
    root: &std::path::Path,
    session: &str,
) -> Result<BTreeMap<String, Vec<f64>>> {
    let ctx = query::context(root).await?;
    let cols: Vec<String> = FIGURES
        .iter()
        .map(|(c, _)| format!("CAST(m.{c} AS DOUBLE) AS {c}"))
        .collect();
    let sql = format!(
        "SELECT m.player, {} FROM metrics m JOIN (SELECT player, max(t) AS t FROM metrics \
         WHERE source = 'live' AND session = '{s}' GROUP BY player) l \
         ON m.player = l.player AND m.t = l.t WHERE m.source = 'live' AND m.session = '{s}'",
        cols.join(", "),
        s = session.replace('\'', "''")
    );
    let mut out = BTreeMap::new();
    for b in query::run(&ctx, &sql).await? {
        let p = b.column(0).as_string::<i32>();
        for r in 0..b.num_rows() {
            let v = (1..=FIGURES.len())
                .map(|c| b.column(c).as_primitive::<Float64Type>().value(r))
                .collect();
            out.insert(p.value(r).to_string(), v);
        }
    }
    Ok(out)
}

/// `sideline reprocess`.
pub async fn run(a: &ReprocessArgs) -> Result<()> {
    let params = crate::input::params_file(a.params.as_deref())?;
    let profiles = match &a.roster {
        Some(p) => Roster::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("roster {}", p.display()))?
        .athletes()
        .cloned()
        .collect(),
        None => Vec::new(),
    };
    let stored = reprocess::load(&a.archive, &a.session, a.team.as_deref()).await?;
    let snaps = reprocess::run(
        &stored,
        &Rerun {
            params,
            profiles,
            baselines: BTreeMap::new(),
            zero_phase: a.zero_phase,
        },
    );
    let mut last: BTreeMap<String, &PlayerMetrics> = BTreeMap::new();
    for m in &snaps {
        last.insert(m.player.to_string(), m);
    }
    let live = live_finals(&a.archive, &a.session).await?;
    let version = snaps
        .first()
        .map(|m| m.params_version.to_string())
        .unwrap_or_default();
    let head = format!(
        "session {}: {} batches, {} players re-run with parameters {version}{}",
        a.session,
        stored.batches.len(),
        last.len(),
        if a.zero_phase { ", zero-phase" } else { "" }
    );
    const COLUMNS: [&str; 6] = [
        "player",
        "figure",
        "live",
        "reconciled",
        "difference",
        "difference_pct",
    ];
    if a.json {
        eprintln!("{head}");
    } else {
        println!("{head}");
        println!("{}", COLUMNS.join(","));
    }
    for (p, m) in &last {
        for (i, (name, f)) in FIGURES.iter().enumerate() {
            // At the archive's resolution, as the live figure beside it is stored: a
            // difference is then a real one, not the rounding of storage.
            let r = resolution::stored(resolution::of_column(name), f(m));
            let cells = match live.get(p) {
                Some(l) => {
                    let d = r - l[i];
                    let pct = if l[i].abs() > 1e-9 {
                        format!("{:.2}", 100.0 * d / l[i])
                    } else {
                        String::new()
                    };
                    [
                        p.clone(),
                        (*name).to_string(),
                        format!("{:.3}", l[i]),
                        format!("{r:.3}"),
                        format!("{d:.3}"),
                        pct,
                    ]
                }
                None => [
                    p.clone(),
                    (*name).to_string(),
                    String::new(),
                    format!("{r:.3}"),
                    String::new(),
                    String::new(),
                ],
            };
            if a.json {
                println!("{}", crate::input::json_row(&COLUMNS, &cells));
            } else {
                println!("{}", cells.join(","));
            }
        }
    }
    if !a.dry_run {
        let n = reprocess::write(&a.archive, &snaps)?;
        eprintln!(
            "{n} reconciled metric rows written (source = 'reconciled', params_version = {version})"
        );
    }
    Ok(())
}
