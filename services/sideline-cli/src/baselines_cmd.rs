//! `sideline baselines`: every player's daily loads and trends from the archive (DataFusion),
//! printed as CSV, and the engine's baseline as of a day published to the compacted topic
//! `sideline.baselines.v1`, where the processor picks it up for the history terms of the score.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use prost::Message as _;
use sideline_archive::baselines::{self, RATIO_MIN_DAYS};
use sideline_engine::Baseline;

/// Arguments of `sideline baselines`.
#[derive(Debug, Args)]
pub struct BaselinesArgs {
    /// The day the baselines are for (history runs to the day before), YYYY-MM-DD; default
    /// the day after the last archived day.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Print each player's daily trend (CSV) for the last N days.
    #[arg(long, default_value_t = 28)]
    pub days: i64,
    /// Publish the baselines to Kafka at these bootstrap servers.
    #[arg(long)]
    pub publish: Option<String>,
    /// Baselines topic.
    #[arg(long, default_value = "sideline.baselines.v1")]
    pub topic: String,
    /// The archive: a directory or `s3://bucket/prefix` (S3 settings from `AWS_*` variables).
    #[arg(long, env = "SIDELINE_ARCHIVE", default_value = "sideline-archive")]
    pub archive: PathBuf,
}

fn opt(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| format!("{v:.3}"))
}

/// Every archived player's baseline as of `today` (days since the epoch; the history runs to
/// the day before), by player id — what `--publish` puts on the topic.
pub async fn from_archive(archive: &Path, today: i64) -> Result<BTreeMap<String, Baseline>> {
    let loads = baselines::daily_loads(archive)
        .await
        .with_context(|| format!("reading the daily loads of {}", archive.display()))?;
    Ok(loads
        .iter()
        .map(|((_, player), days)| (player.clone(), baselines::baseline(days, today)))
        .collect())
}

/// `sideline baselines`.
pub async fn run(a: &BaselinesArgs) -> Result<()> {
    let loads = baselines::daily_loads(&a.archive).await?;
    if loads.is_empty() {
        anyhow::bail!("no live metrics in the archive at {}", a.archive.display());
    }
    let last = loads
        .values()
        .flat_map(|d| d.iter().map(|x| x.day))
        .max()
        .unwrap_or(0);
    let today = match &a.as_of {
        Some(s) => baselines::day_of(s).with_context(|| format!("--as-of {s}: not YYYY-MM-DD"))?,
        None => last + 1,
    };
    let as_of = baselines::date_of_day(today);
    println!(
        "team,player,date,hsr_m,hsr_7d_m,hsr_7d_z,hsr_7d_change_pct,days_since_vmax90,days_since_vmax95,\
         ewma_acute_m,ewma_chronic_m,acwr_ewma_contested,acwr_uncoupled_contested,monotony,strain"
    );
    let mut records = Vec::new();
    for ((team, player), days) in &loads {
        let past: Vec<_> = days.iter().filter(|d| d.day < today).copied().collect();
        let t = baselines::trend(&baselines::dense(&past, today - 1));
        for x in t.iter().filter(|x| x.day >= today - a.days) {
            println!(
                "{team},{player},{},{:.1},{:.1},{},{},{},{},{:.1},{:.1},{},{},{},{}",
                baselines::date_of_day(x.day),
                x.hsr_m,
                x.hsr_7d_m,
                opt(x.hsr_7d_z),
                opt(x.hsr_7d_change_pct),
                x.days_since_vmax90.map_or(String::new(), |d| d.to_string()),
                x.days_since_vmax95.map_or(String::new(), |d| d.to_string()),
                x.ewma_acute_m,
                x.ewma_chronic_m,
                opt(x.acwr_ewma),
                opt(x.acwr_uncoupled),
                opt(x.monotony),
                opt(x.strain),
            );
        }
        let b = baselines::baseline(days, today);
        records.push((
            player.clone(),
            sideline_wire::convert::baseline_to_pb(player, &b, &as_of).encode_to_vec(),
        ));
    }
    eprintln!(
        "{} players, baselines as of {as_of} (load ratios are contested and shown only after {RATIO_MIN_DAYS} days)",
        records.len()
    );
    if let Some(brokers) = &a.publish {
        crate::roster_cmd::publish(brokers, &a.topic, "sideline-baselines", &records).await?;
        eprintln!("published {} baselines to {}", records.len(), a.topic);
    }
    Ok(())
}
