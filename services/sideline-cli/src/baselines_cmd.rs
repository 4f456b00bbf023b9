//! `sideline baselines`: every player's daily loads and trends from the archive (DataFusion),
//! printed as CSV, and the engine's baseline as of a day published to the compacted topic
//! `sideline.baselines.v1`, where the processor picks it up for the history terms of the score.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use prost::Message as _;
use sideline_archive::baselines;
use sideline_engine::Baseline;
use sideline_engine::params::HistoryParams;

/// Arguments of `sideline baselines`.
#[derive(Debug, Args)]
pub struct BaselinesArgs {
    /// When the baselines are for: a day, YYYY-MM-DD (its start: the history runs to the day
    /// before), or an instant, RFC 3339 (e.g. 2026-11-30T13:00:00+00:00: that day's sessions
    /// already over count too). Default: now (before an afternoon session, the morning's
    /// counts).
    #[arg(long)]
    pub as_of: Option<String>,
    /// The club's time zone (IANA, e.g. Europe/London): which day a session belongs to.
    #[arg(long, env = "SIDELINE_TIME_ZONE", default_value = "UTC")]
    pub time_zone: String,
    /// Print each player's daily trend (CSV) for the last N days.
    #[arg(long, default_value_t = 28)]
    pub days: i64,
    /// Print the trend as JSON, one object per player-day (keys: the CSV's columns; numbers as
    /// numbers, unknown as null) instead of CSV.
    #[arg(long)]
    pub json: bool,
    /// Publish the baselines to Kafka at these bootstrap servers.
    #[arg(long)]
    pub publish: Option<String>,
    /// Baselines topic.
    #[arg(long, default_value = "sideline.baselines.v1")]
    pub topic: String,
    /// The archive: a directory or `s3://bucket/prefix` (S3 settings from `AWS_*` variables).
    #[arg(long, env = "SIDELINE_ARCHIVE", default_value = "sideline-archive")]
    pub archive: PathBuf,
    /// Parameter set (TOML): its `[history]` section says how much history each statistic
    /// needs and the EWMA spans. Default: the built-in set.
    #[arg(long)]
    pub params: Option<PathBuf>,
}

/// The trend's columns.
const COLUMNS: [&str; 15] = [
    "team",
    "player",
    "date",
    "hsr_m",
    "hsr_7d_m",
    "hsr_7d_z",
    "hsr_7d_change_pct",
    "days_since_vmax90",
    "days_since_vmax95",
    "ewma_acute_m",
    "ewma_chronic_m",
    "acwr_ewma_contested",
    "acwr_uncoupled_contested",
    "monotony",
    "strain",
];

fn opt(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| format!("{v:.3}"))
}

/// Every archived player's baseline at `at_us` (its day in `tz` is "today": the days before
/// and that day's sessions already over), by player id — what `--publish` puts on the topic.
pub async fn from_archive(
    archive: &Path,
    tz: chrono_tz::Tz,
    at_us: i64,
    p: &HistoryParams,
) -> Result<BTreeMap<String, Baseline>> {
    let loads = baselines::session_loads(archive, tz)
        .await
        .with_context(|| format!("reading the session loads of {}", archive.display()))?;
    let today = baselines::local_day(at_us, tz);
    Ok(loads
        .iter()
        .map(|((_, player), s)| (player.clone(), baselines::baseline_at(s, today, at_us, p)))
        .collect())
}

/// `--as-of` as (the club's day, the cutoff instant in µs).
fn as_of(arg: Option<&str>, tz: chrono_tz::Tz) -> Result<(i64, i64)> {
    let at_us = match arg {
        None => crate::publish::now_us(),
        Some(s) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                t.timestamp_micros()
            } else {
                let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").with_context(|| {
                    format!("--as-of {s}: neither YYYY-MM-DD nor an RFC 3339 instant")
                })?;
                // The first instant of that day in the club's zone (a day may start at 01:00
                // where clocks go forward at midnight).
                let start = d
                    .and_hms_opt(0, 0, 0)
                    .and_then(|m| {
                        use chrono::TimeZone as _;
                        tz.from_local_datetime(&m).earliest()
                    })
                    .or_else(|| {
                        use chrono::TimeZone as _;
                        d.and_hms_opt(1, 0, 0)
                            .and_then(|m| tz.from_local_datetime(&m).earliest())
                    })
                    .with_context(|| format!("--as-of {s}: no such day in {tz}"))?;
                start.timestamp_micros()
            }
        }
    };
    Ok((baselines::local_day(at_us, tz), at_us))
}

/// `sideline baselines`.
pub async fn run(a: &BaselinesArgs) -> Result<()> {
    let tz: chrono_tz::Tz = a
        .time_zone
        .parse()
        .map_err(|_| anyhow::anyhow!("--time-zone {:?}: not an IANA time zone", a.time_zone))?;
    let p = crate::input::params_file(a.params.as_deref())?.history;
    let sessions = baselines::session_loads(&a.archive, tz).await?;
    let loads: BTreeMap<_, _> = sessions
        .iter()
        .map(|(k, v)| (k.clone(), baselines::days_of(v)))
        .collect();
    if loads.is_empty() {
        anyhow::bail!("no live metrics in the archive at {}", a.archive.display());
    }
    let (today, at_us) = as_of(a.as_of.as_deref(), tz)?;
    let as_of = baselines::date_of_day(today);
    if !a.json {
        println!("{}", COLUMNS.join(","));
    }
    let mut records = Vec::new();
    for ((team, player), days) in &loads {
        let past: Vec<_> = days.iter().filter(|d| d.day < today).copied().collect();
        let t = baselines::trend(&baselines::dense(&past, today - 1), &p);
        for x in t.iter().filter(|x| x.day >= today - a.days) {
            let cells = [
                team.clone(),
                player.clone(),
                baselines::date_of_day(x.day),
                format!("{:.1}", x.hsr_m),
                format!("{:.1}", x.hsr_7d_m),
                opt(x.hsr_7d_z),
                opt(x.hsr_7d_change_pct),
                x.days_since_vmax90.map_or(String::new(), |d| d.to_string()),
                x.days_since_vmax95.map_or(String::new(), |d| d.to_string()),
                format!("{:.1}", x.ewma_acute_m),
                format!("{:.1}", x.ewma_chronic_m),
                opt(x.acwr_ewma),
                opt(x.acwr_uncoupled),
                opt(x.monotony),
                opt(x.strain),
            ];
            if a.json {
                println!("{}", crate::input::json_row(&COLUMNS, &cells));
            } else {
                println!("{}", cells.join(","));
            }
        }
        let b =
            baselines::baseline_at(&sessions[&(team.clone(), player.clone())], today, at_us, &p);
        records.push((
            player.clone(),
            sideline_wire::convert::baseline_to_pb(player, &b, &as_of).encode_to_vec(),
        ));
    }
    eprintln!(
        "{} players, baselines as of {as_of} (load ratios are contested and shown only after {} days)",
        records.len(),
        p.ratio_min_days
    );
    if let Some(brokers) = &a.publish {
        crate::roster_cmd::publish(brokers, &a.topic, "sideline-baselines", &records).await?;
        eprintln!("published {} baselines to {}", records.len(), a.topic);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_a_day_is_its_first_instant_in_the_club_s_zone_and_an_instant_is_itself() {
        let sydney = chrono_tz::Australia::Sydney;
        let day = baselines::day_of("2026-03-02").unwrap();
        // Midnight in Sydney (UTC+11) is 13:00 UTC the day before.
        let (d, at) = as_of(Some("2026-03-02"), sydney).unwrap();
        assert_eq!(d, day);
        assert_eq!(at, ((day - 1) * 86_400 + 13 * 3_600) * 1_000_000);
        let (d, at) = as_of(Some("2026-03-02T13:00:00+11:00"), sydney).unwrap();
        assert_eq!((d, at), (day, (day * 86_400 + 2 * 3_600) * 1_000_000));
        assert!(as_of(Some("02/03/2026"), sydney).is_err());
        let (d, at) = as_of(None, chrono_tz::UTC).unwrap();
        assert_eq!(d, at.div_euclid(86_400_000_000));
    }
}
