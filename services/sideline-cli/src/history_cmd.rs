//! `sideline history`: several weeks of synthetic sessions for the simulated squads, run
//! through the engine and written into the archive as live metrics, so that `sideline
//! baselines` has a history to work from (daily loads, 7-day sums, z-scores, ratios) and the
//! risk score's history terms are computed rather than made up.
//!
//! Two matches a week, alternately 3 and 4 days apart (different seeds, no scripted
//! scenarios): on the weekday of `--until` and three days later; the last one 4 days before
//! `--until`, so that a match on `--until` keeps the rhythm: every 7 days hold two matches.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sideline_archive::metric_rows::Source;
use sideline_archive::reprocess::write_metrics;
use sideline_engine::Params;
use sideline_sim::MatchConfig;

/// Arguments of `sideline history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Weeks of history.
    #[arg(long, default_value_t = 6)]
    pub weeks: u32,
    /// The history ends the day before this date (YYYY-MM-DD); default today.
    #[arg(long)]
    pub until: Option<String>,
    /// Minutes per half of each match.
    #[arg(long, default_value_t = 45.0)]
    pub half_min: f64,
    /// The archive: a directory or `s3://bucket/prefix` (S3 settings from `AWS_*` variables).
    #[arg(long, env = "SIDELINE_ARCHIVE", default_value = "sideline-archive")]
    pub archive: PathBuf,
}

/// Write the history; returns (sessions, rows).
pub fn generate(root: &Path, weeks: u32, until_day: i64, half_min: f64) -> Result<(u32, usize)> {
    let mut sessions = 0;
    let mut rows = 0;
    for k in (1..=i64::from(weeks)).rev() {
        for day in [until_day - 7 * k, until_day - 7 * k + 3] {
            let date = sideline_archive::baselines::date_of_day(day);
            let cfg = MatchConfig {
                seed: 1000 + day as u64,
                // 19:00 UTC kick-off.
                start: day * 86_400_000_000 + 19 * 3_600_000_000,
                half_min,
                break_min: 15.0,
                session: format!("{date}-match"),
                scenarios: false,
                ..MatchConfig::default()
            };
            let mut snaps = Vec::new();
            sideline_sim::offline::run_match(cfg, Params::default(), |m| snaps.push(m.clone()));
            rows += write_metrics(root, &snaps, Source::Live)
                .with_context(|| format!("writing the session of {date}"))?;
            sessions += 1;
        }
    }
    Ok((sessions, rows))
}

/// `sideline history`.
pub fn run(a: &HistoryArgs) -> Result<()> {
    let until = match &a.until {
        Some(s) => sideline_archive::baselines::day_of(s)
            .with_context(|| format!("--until {s}: not YYYY-MM-DD"))?,
        None => crate::publish::now_us().div_euclid(86_400_000_000),
    };
    let (sessions, rows) = generate(&a.archive, a.weeks, until, a.half_min)?;
    eprintln!(
        "{sessions} synthetic sessions ({rows} metric rows) written to {} up to {}",
        a.archive.display(),
        sideline_archive::baselines::date_of_day(until - 1)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_gives_every_player_a_baseline_from_his_own_loads() {
        let dir = tempfile::tempdir().unwrap();
        let until = sideline_archive::baselines::day_of("2026-03-02").unwrap();
        let (sessions, rows) = generate(dir.path(), 2, until, 3.0).unwrap();
        assert_eq!(sessions, 4);
        assert!(rows > 4 * 22 * 300);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let loads = rt
            .block_on(sideline_archive::baselines::daily_loads(
                dir.path(),
                chrono_tz::UTC,
            ))
            .unwrap();
        assert_eq!(loads.len(), 22);
        for ((_, p), days) in &loads {
            assert_eq!(days.len(), 4, "{p}");
            let b = sideline_archive::baselines::baseline(days, until, &Params::default().history);
            assert_eq!(b.days_of_history, Some(14), "{p}");
            let hsr6: f64 = days
                .iter()
                .filter(|d| d.day >= until - 6)
                .map(|d| d.hsr_m)
                .sum();
            assert_eq!(b.hsr_prev6d_m, Some(hsr6), "{p}");
            assert!(b.hsr_prior7d_m.is_some(), "{p}");
        }
    }
}
