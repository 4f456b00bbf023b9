//! `sideline simulate`: the synthetic match published over MQTT, as pods would, paced in real
//! time or faster (`--speed N`), with a progress bar on stderr.
//!
//! Event times never run ahead of the wall clock (ingest rejects samples from the future):
//! at `--speed 1` the match starts now; faster, it starts in the past so that its last sample
//! is published as its time comes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, MqttConfig, QoS, connect, run_event_loop};
use sideline_sim::{MatchConfig, MatchSim};
use sideline_wire::topic::{Encoding, encode, topic_for};
use tokio_util::sync::CancellationToken;

/// Arguments of `sideline simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// MQTT broker `host:port`.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// A config file whose `[mqtt]` section (TLS, credentials) is used; `--mqtt` still wins.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Random seed of the match.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Times real time (0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Minutes per half.
    #[arg(long, default_value_t = 45.0)]
    pub half_min: f64,
    /// Half-time break, minutes.
    #[arg(long, default_value_t = 15.0)]
    pub break_min: f64,
    /// Publish the JSON form instead of protobuf.
    #[arg(long)]
    pub json: bool,
    /// Session id.
    #[arg(long, default_value = "sim-match")]
    pub session: String,
    /// Print the roster (TOML) for this match and exit.
    #[arg(long)]
    pub print_roster: bool,
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
    out
}

fn parse_host_port(s: &str) -> Result<(String, u16)> {
    let (h, p) = s.rsplit_once(':').context("--mqtt must be host:port")?;
    Ok((h.to_string(), p.parse().context("--mqtt port")?))
}

/// The match configuration for these arguments, starting at `now` (µs).
pub fn match_config(a: &SimulateArgs, now: i64) -> MatchConfig {
    let play_us = (a.half_min * 2.0 * 60e6) as i64;
    let break_us = (a.break_min * 60e6) as i64;
    let total = play_us + break_us;
    let start = if a.speed > 1.0 || a.speed == 0.0 {
        let speed = if a.speed == 0.0 {
            f64::INFINITY
        } else {
            a.speed
        };
        now - total + (total as f64 / speed) as i64
    } else {
        now
    };
    MatchConfig {
        seed: a.seed,
        start,
        half_min: a.half_min,
        break_min: a.break_min,
        batch_ms: 200,
        session: a.session.clone(),
        ..MatchConfig::default()
    }
}

/// `sideline simulate`.
pub async fn run(a: &SimulateArgs, stop: CancellationToken) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let mut sim = MatchSim::new(match_config(a, now));
    if a.print_roster {
        print!("{}", roster_toml(&sim));
        return Ok(());
    }
    let mut mqtt: MqttConfig = match &a.config {
        Some(f) => {
            #[derive(serde::Deserialize)]
            struct OnlyMqtt {
                #[serde(default)]
                mqtt: MqttConfig,
            }
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let c: OnlyMqtt = mqtt_section(&text)?;
            c.mqtt
        }
        None => MqttConfig::default(),
    };
    let (host, port) = parse_host_port(&a.mqtt)?;
    mqtt.host = host;
    mqtt.port = port;
    mqtt.clean_session = true;
    let (client, el) = connect(
        &mqtt,
        &format!("sideline-simulate-{}", std::process::id()),
        ConnectOptions {
            manual_acks: false,
            request_capacity: 10_000,
            receive_maximum: None,
        },
    )?;
    let status = Arc::new(ConnectionStatus::default());
    let loop_stop = CancellationToken::new();
    let task = tokio::spawn(run_event_loop(
        el,
        client.clone(),
        vec![],
        None,
        Arc::clone(&status),
        (Duration::from_millis(200), Duration::from_secs(5)),
        1,
        loop_stop.clone(),
    ));
    let encoding = if a.json {
        Encoding::Json
    } else {
        Encoding::Protobuf
    };
    let pb = ProgressBar::new((sim.total_minutes() * 60.0) as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} s of play ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(format!("match seed {} at {}×", a.seed, a.speed));
    let wall0 = tokio::time::Instant::now();
    let t0 = sim.now();
    let mut published = 0u64;
    while let Some(batches) = sim.next_batches() {
        if a.speed > 0.0 {
            let due =
                wall0 + Duration::from_secs_f64(((sim.now() - t0) as f64 / 1e6 / a.speed).max(0.0));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(due) => {}
            }
        } else if stop.is_cancelled() {
            break;
        }
        for b in &batches {
            client
                .publish(&topic_for(b), QoS::AtLeastOnce, encode(b, encoding).into())
                .await?;
            published += 1;
        }
        pb.set_position((sim.minute() * 60.0) as u64);
    }
    pb.finish_and_clear();
    // Let the last QoS 1 publishes be acknowledged by the broker.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    loop_stop.cancel();
    let _ = task.await;
    eprintln!(
        "published {published} batches ({} injected Doppler glitches)",
        sim.injected_artefacts()
    );
    Ok(())
}

fn mqtt_section<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    // Only the [mqtt] table is read; other sections of a service config are ignored here.
    let v: toml::Value = toml::from_str(text)?;
    let mqtt = v
        .get("mqtt")
        .cloned()
        .unwrap_or(toml::Value::Table(Default::default()));
    let mut t = toml::map::Map::new();
    t.insert("mqtt".into(), mqtt);
    Ok(toml::Value::Table(t).try_into()?)
}
