//! `sideline report`: the post-session report (`--session`) or a player's trend
//! (`--player … --weeks N`) from the archive, as CSV and as a self-contained HTML page.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sideline_archive::report;

/// Arguments of `sideline report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Post-session report of this session.
    #[arg(long, conflicts_with = "player", required_unless_present = "player")]
    pub session: Option<String>,
    /// Trend report of this player.
    #[arg(long)]
    pub player: Option<String>,
    /// Weeks of the trend report.
    #[arg(long, default_value_t = 6)]
    pub weeks: u32,
    /// Write the HTML page here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write CSV here (default: CSV on stdout when no --html is given).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Print the rows as JSON, one object per line (keys: the CSV's columns; numbers as
    /// numbers, empty cells as null) instead of CSV.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// The archive: a directory or `s3://bucket/prefix` (S3 settings from `AWS_*` variables).
    #[arg(long, env = "SIDELINE_ARCHIVE", default_value = "sideline-archive")]
    pub archive: PathBuf,
}

/// `sideline report`.
pub async fn run(a: &ReportArgs) -> Result<()> {
    let r = match (&a.session, &a.player) {
        (Some(s), _) => report::session(&a.archive, s).await?,
        (None, Some(p)) => report::player(&a.archive, p, a.weeks).await?,
        (None, None) => anyhow::bail!("give --session or --player"),
    };
    if r.rows.is_empty() {
        anyhow::bail!(
            "nothing archived for that {}",
            if a.session.is_some() {
                "session"
            } else {
                "player"
            }
        );
    }
    if let Some(p) = &a.html {
        std::fs::write(p, report::html(&r)).with_context(|| format!("writing {}", p.display()))?;
        eprintln!(
            "{}: {} rows, HTML written to {}",
            r.title,
            r.rows.len(),
            p.display()
        );
    }
    match &a.csv {
        Some(p) => std::fs::write(p, report::csv(&r))
            .with_context(|| format!("writing {}", p.display()))?,
        None if a.json => {
            for row in &r.rows {
                println!("{}", crate::input::json_row(&r.columns, row));
            }
        }
        None if a.html.is_none() => print!("{}", report::csv(&r)),
        None => {}
    }
    Ok(())
}
