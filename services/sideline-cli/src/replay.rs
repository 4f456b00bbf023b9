//! `sideline replay`: recorded tracking (ZXY, Metrica CSV/EPTS, STATSports, mapped CSV)
//! published over MQTT as the players' pods would send it, paced by its own timestamps
//! (`--speed N`), with a progress bar on stderr.
//!
//! Each track becomes a pod `pod-<team>-<player>` worn by player `<team>-<player>` (ids made
//! safe for topics, keys and labels: anything but letters, digits, `.`, `_` and `-` becomes
//! `-`); `--print-roster` prints that roster for ingest. Event times are shifted so that the
//! recording plays as if it were happening now (the rule in [`crate::publish`]); every
//! `--batch-ms` of event time each pod sends one batch per stream, with its own sequence
//! numbers. `--as` publishes in another system's shape instead ([`crate::replay_as`]).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sideline_engine::{Batch, Micros};
use sideline_import::Dataset;
use tokio_util::sync::CancellationToken;

use crate::analyze::{Format, load_files};
use crate::publish::{Pacer, PublishArgs, Publisher, now_us, start_time};

/// Arguments of `sideline replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Broker and pacing.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Input format (not `sim`: that is `sideline simulate`).
    #[arg(long, value_enum)]
    pub format: Format,
    /// Column mapping (TOML) for `--format csv`.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Pitch size for Metrica formats, `LENGTHxWIDTH` in metres.
    #[arg(long)]
    pub pitch: Option<String>,
    /// Event time each pod batch covers, ms.
    #[arg(long, default_value_t = 200)]
    pub batch_ms: u32,
    /// Session id (default: the file's, made safe).
    #[arg(long)]
    pub session: Option<String>,
    /// Print the roster (TOML) of the pods this replay uses and exit.
    #[arg(long)]
    pub print_roster: bool,
    /// Play only the recording's first this many seconds.
    #[arg(long)]
    pub duration_s: Option<u64>,
    /// The event time (µs since the Unix epoch, whole seconds) the recording's first second
    /// plays at (default: now, so that it plays live).
    #[arg(long)]
    pub start_us: Option<Micros>,
    /// Another system's shape (`--as rtloc|sewio|league|ble-hrm`) and its options.
    #[command(flatten)]
    pub shape: crate::replay_as::AsArgs,
    /// Input files (EPTS: the tracking file and its metadata.xml).
    pub paths: Vec<PathBuf>,
}

/// An id usable in MQTT topics, Kafka keys and Prometheus labels (at most 64 bytes).
pub fn safe_id(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(64);
    if out.is_empty() { "x".into() } else { out }
}

/// The pod, player and team ids of each track, in track order.
pub fn pods(data: &Dataset) -> Vec<(String, String, String)> {
    data.tracks
        .iter()
        .map(|t| {
            let team = safe_id(&t.team);
            let player = safe_id(&format!("{team}-{}", t.player));
            (safe_id(&format!("pod-{player}")), player, team)
        })
        .collect()
}

/// The roster of a replay as TOML, for ingest's `roster_file`: the pods, and each team in
/// `session` (so that the replayed data keeps the session it is replayed under).
pub fn roster_toml(data: &Dataset, session: &str) -> String {
    let mut out =
        String::from("# Roster of a replayed recording (sideline replay --print-roster).\n");
    let pods = pods(data);
    for (device, player, team) in &pods {
        out.push_str(&format!(
            "\n[[devices]]\ndevice = \"{device}\"\nplayer = \"{player}\"\nteam = \"{team}\"\n"
        ));
    }
    out.push_str(&sideline_wire::schedule::open_sessions_toml(
        pods.iter().map(|(_, _, t)| t.as_str()),
        session,
    ));
    out
}

/// Every pod batch of the recording with event times shifted by `shift`, grouped by the end of
/// the `batch_us` window they belong to, in time order.
pub fn windows(
    data: &Dataset,
    session: &str,
    shift: Micros,
    batch_us: Micros,
) -> Vec<(Micros, Vec<Batch>)> {
    let ids = pods(data);
    let Some(first) = data
        .tracks
        .iter()
        .filter_map(|t| t.samples.first())
        .map(|s| s.t)
        .min()
    else {
        return Vec::new();
    };
    let mut cursor = vec![0usize; data.tracks.len()];
    let mut seq = vec![0u64; data.tracks.len()];
    let mut out = Vec::new();
    let mut end = first + batch_us;
    while cursor
        .iter()
        .zip(&data.tracks)
        .any(|(&c, t)| c < t.samples.len())
    {
        let mut batches = Vec::new();
        for (i, t) in data.tracks.iter().enumerate() {
            let from = cursor[i];
            let to = from + t.samples[from..].partition_point(|s| s.t < end);
            cursor[i] = to;
            let mut by_stream: Vec<Batch> = Vec::new();
            for s in &t.samples[from..to] {
                let mut s = *s;
                s.t += shift;
                match by_stream
                    .iter_mut()
                    .find(|b| b.samples[0].stream() == s.stream())
                {
                    Some(b) => b.samples.push(s),
                    None => {
                        seq[i] += 1;
                        by_stream.push(Batch {
                            device: ids[i].0.clone(),
                            team: ids[i].2.clone(),
                            session: session.to_string(),
                            seq: seq[i],
                            samples: vec![s],
                        });
                    }
                }
            }
            batches.extend(by_stream);
        }
        if !batches.is_empty() {
            out.push((end + shift, batches));
        }
        end += batch_us;
    }
    out
}

/// Keep each track's samples of the recording's first `seconds`.
pub fn truncate(data: &mut Dataset, seconds: u64) {
    let first = data
        .tracks
        .iter()
        .filter_map(|t| t.samples.first())
        .map(|s| s.t)
        .min();
    if let Some(first) = first {
        let end = first + seconds as Micros * 1_000_000;
        for t in &mut data.tracks {
            t.samples.retain(|s| s.t < end);
        }
    }
}

/// `sideline replay`.
pub async fn run(a: &ReplayArgs, stop: CancellationToken) -> Result<()> {
    if a.format == Format::Sim {
        bail!("the synthetic match is published with `sideline simulate`");
    }
    if a.batch_ms == 0 || a.batch_ms > 10_000 {
        bail!("--batch-ms must be 1..=10000");
    }
    let mut data = load_files(a.format, &a.paths, a.mapping.as_deref(), a.pitch.as_deref())?;
    if let Some(d) = a.duration_s {
        truncate(&mut data, d);
    }
    let session = safe_id(a.session.as_deref().unwrap_or(if data.session.is_empty() {
        "replay"
    } else {
        &data.session
    }));
    if a.print_roster {
        print!("{}", roster_toml(&data, &session));
        return Ok(());
    }
    let times = || {
        data.tracks
            .iter()
            .flat_map(|t| t.samples.iter().map(|s| s.t))
    };
    let (Some(first), Some(last)) = (times().min(), times().max()) else {
        bail!("no samples in the input");
    };
    let total = last - first;
    // Whole seconds: each sample keeps its place within its second, so the replay's
    // per-second figures are the recording's own (what `sideline analyze` gives).
    let start = a
        .start_us
        .unwrap_or_else(|| start_time(now_us(), total, a.publish.speed));
    let shift = (start - first).div_euclid(1_000_000) * 1_000_000;
    let windows = windows(&data, &session, shift, Micros::from(a.batch_ms) * 1000);
    if a.shape.shape != crate::replay_as::Shape::Native {
        let n = crate::replay_as::run(&a.shape, &a.publish, &windows, first + shift, &stop).await?;
        eprintln!(
            "published {n} messages in the {:?} shape (session {session})",
            a.shape.shape
        );
        return Ok(());
    }
    let mut out = Publisher::connect(&a.publish, "sideline-replay")?;
    let pb = ProgressBar::new((total / 1_000_000).max(1) as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} s ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(format!(
        "{} tracks at {}×",
        data.tracks.len(),
        a.publish.speed
    ));
    let pacer = Pacer::new(first + shift, a.publish.speed);
    let mut samples = 0usize;
    for (end, batches) in &windows {
        if !pacer.wait_for(*end, &stop).await {
            break;
        }
        for b in batches {
            out.publish(b).await?;
            samples += b.samples.len();
        }
        pb.set_position(((end - first - shift) / 1_000_000).max(0) as u64);
    }
    pb.finish_and_clear();
    let published = out.published;
    out.close().await;
    eprintln!(
        "published {published} batches, {samples} samples of {} tracks (session {session})",
        data.tracks.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_engine::Sample;
    use sideline_import::Track;

    fn track(player: &str, times_ms: &[i64]) -> Track {
        Track {
            player: player.into(),
            team: "Home Team".into(),
            samples: times_ms
                .iter()
                .map(|&t| Sample::xy(t * 1000, 0.0, 0.0, None))
                .collect(),
        }
    }

    #[test]
    fn ids_are_made_safe_and_every_sample_lands_in_one_batch_of_its_window() {
        let data = Dataset {
            session: "s 1".into(),
            tracks: vec![
                track("Nr 7/ä", &[0, 100, 199, 200, 650]),
                track("9", &[120, 900]),
            ],
            ..Dataset::default()
        };
        let ids = pods(&data);
        assert_eq!(ids[0].0, "pod-Home-Team-Nr-7--");
        assert_eq!(ids[0].1, "Home-Team-Nr-7--");
        assert_eq!(ids[1].2, "Home-Team");
        let w = windows(&data, "s-1", 1_000, 200_000);
        let ends: Vec<_> = w.iter().map(|(e, _)| *e).collect();
        // Windows [0,200) [200,400) [600,800) [800,1000) ms; the empty one is skipped.
        assert_eq!(ends, vec![201_000, 401_000, 801_000, 1_001_000]);
        let all: Vec<&Batch> = w.iter().flat_map(|(_, b)| b).collect();
        assert_eq!(all.iter().map(|b| b.samples.len()).sum::<usize>(), 7);
        for (end, bs) in &w {
            for b in bs {
                assert!(b.samples.iter().all(|s| s.t < *end && s.t >= end - 200_000));
            }
        }
        // Sequence numbers count each pod's batches from 1.
        let seqs: Vec<u64> = all
            .iter()
            .filter(|b| b.device == ids[0].0)
            .map(|b| b.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }
}
