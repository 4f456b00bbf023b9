//! `sideline simulate`: the synthetic match published over MQTT, as pods would, paced in real
//! time or faster (`--speed N`), with a progress bar on stderr (see [`crate::publish`] for the
//! pacing rule).

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sideline_sim::{MatchConfig, MatchSim};
use tokio_util::sync::CancellationToken;

use crate::publish::{Pacer, PublishArgs, Publisher, now_us, start_time};

/// Arguments of `sideline simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Broker and pacing.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Random seed of the match.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Minutes per half.
    #[arg(long, default_value_t = 45.0)]
    pub half_min: f64,
    /// Half-time break, minutes.
    #[arg(long, default_value_t = 15.0)]
    pub break_min: f64,
    /// Session id.
    #[arg(long, default_value = "sim-match")]
    pub session: String,
    /// Print the roster (TOML) for this match and exit.
    #[arg(long)]
    pub print_roster: bool,
    /// Three substitutes per team, on the bench (streaming) until 60′, 70′ and 80′; the
    /// roster printed with `--print-roster` then carries their lineup.
    #[arg(long)]
    pub substitutions: bool,
    /// Raw 10 Hz GNSS instead of clean fixes: latitude/longitude without device speed, with a
    /// published position-error model and 14 % of fixes missing (`sideline_sim::gnss`).
    #[arg(long)]
    pub raw_gnss: bool,
}

/// The roster of the simulated squads as TOML (devices and athlete profiles).
pub fn roster_toml(sim: &MatchSim) -> String {
    let mut out =
        String::from("# Roster of the synthetic match (sideline simulate --print-roster).\n");
    for p in sim.players() {
        out.push_str(&format!(
            "\n[[devices]]\ndevice = \"{}\"\nplayer = \"{}\"\nteam = \"{}\"\n",
            p.device, p.player, p.team
        ));
    }
    out.push_str(&sideline_wire::schedule::open_sessions_toml(
        sim.players().iter().map(|p| p.team.as_str()),
        &sim.config().session,
    ));
    for (player, at_us, on) in sim.lineup() {
        let team = sim
            .players()
            .iter()
            .find(|p| p.player == player)
            .map_or("", |p| p.team.as_str());
        out.push_str(&format!(
            "\n[[lineup]]\nteam = \"{team}\"\nsession = \"{}\"\nplayer = \"{player}\"\nat_us = {at_us}\non = {on}\n",
            sim.config().session
        ));
    }
    out
}

/// The match configuration for these arguments, starting at `now` (µs).
pub fn match_config(a: &SimulateArgs, now: i64) -> MatchConfig {
    let total = ((a.half_min * 2.0 + a.break_min) * 60e6) as i64;
    // On a whole second, so that samples fall on the same per-second grid in every run.
    let start = start_time(now, total, a.publish.speed).div_euclid(1_000_000) * 1_000_000;
    MatchConfig {
        seed: a.seed,
        start,
        half_min: a.half_min,
        break_min: a.break_min,
        batch_ms: 200,
        session: a.session.clone(),
        substitutions: a.substitutions,
        gnss: a.raw_gnss.then(sideline_sim::gnss::GnssNoise::default),
        ..MatchConfig::default()
    }
}

/// `sideline simulate`.
pub async fn run(a: &SimulateArgs, stop: CancellationToken) -> Result<()> {
    let cfg = match_config(a, now_us());
    if a.print_roster {
        print!("{}", roster_toml(&MatchSim::new(cfg)));
        return Ok(());
    }
    publish_match(&a.publish, cfg, stop).await
}

/// Publish the match `cfg` describes (its `start` already chosen with [`match_config`], so a
/// caller can run the same match offline for comparison).
pub async fn publish_match(
    a: &PublishArgs,
    cfg: MatchConfig,
    stop: CancellationToken,
) -> Result<()> {
    let seed = cfg.seed;
    let mut sim = MatchSim::new(cfg);
    let mut out = Publisher::connect(a, "sideline-simulate")?;
    let pb = ProgressBar::new((sim.total_minutes() * 60.0) as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} s of play ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(format!("match seed {seed} at {}×", a.speed));
    let pacer = Pacer::new(sim.now(), a.speed);
    while let Some(batches) = sim.next_batches() {
        if !pacer.wait_for(sim.now(), &stop).await {
            break;
        }
        for b in &batches {
            out.publish(b).await?;
        }
        pb.set_position((sim.minute() * 60.0) as u64);
    }
    pb.finish_and_clear();
    let published = out.published;
    out.close().await;
    eprintln!(
        "published {published} batches ({} injected Doppler glitches)",
        sim.injected_artefacts()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed roster is one `sideline roster publish` takes, with the substitutions'
    /// lineup when asked for.
    #[test]
    fn the_printed_roster_parses_and_carries_the_lineup() {
        for (subs, players, changes) in [(false, 22, 0), (true, 28, 12)] {
            let sim = MatchSim::new(MatchConfig {
                substitutions: subs,
                ..MatchConfig::default()
            });
            let r = sideline_wire::roster::Roster::from_toml(&roster_toml(&sim)).unwrap();
            assert_eq!(r.devices().count(), players);
            let lineup: Vec<_> = r.lineup().collect();
            assert_eq!(lineup.len(), changes);
            if subs {
                assert!(
                    lineup
                        .iter()
                        .any(|c| c.player == "home-12" && c.on && c.session == "sim-match")
                );
            }
        }
    }
}
