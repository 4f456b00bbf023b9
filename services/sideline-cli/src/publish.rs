//! Publishing device batches over MQTT as pods would, for `sideline simulate` and
//! `sideline replay`: the broker options they share, a QoS 1 client, and a pacer that keeps
//! event time in step with the wall clock at `--speed N`.
//!
//! Event times never run ahead of the wall clock (ingest rejects samples from the future): at
//! `--speed 1` or slower the session starts now; faster, it starts in the past so that its last
//! sample is published as its time comes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use sideline_engine::{Batch, Micros};
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{Client, ConnectionStatus, MqttConfig, QoS, connect, run_event_loop};
use sideline_wire::topic::{Encoding, encode, topic_for};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Broker and pacing options shared by the publishing commands.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// MQTT broker `host:port`.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// A config file whose `[mqtt]` section (TLS, credentials) is used; `--mqtt` still wins.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Times real time (0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Publish the JSON form instead of protobuf.
    #[arg(long)]
    pub json: bool,
}

impl PublishArgs {
    /// The payload encoding asked for.
    pub fn encoding(&self) -> Encoding {
        if self.json {
            Encoding::Json
        } else {
            Encoding::Protobuf
        }
    }
}

/// Wall-clock time now, µs since the epoch.
pub fn now_us() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

/// The event time at which a session of `total_us` should start when published from `now` at
/// `speed` (0 = as fast as possible), so that no sample is ever ahead of the wall clock.
pub fn start_time(now: Micros, total_us: Micros, speed: f64) -> Micros {
    if speed == 0.0 {
        now - total_us
    } else if speed > 1.0 {
        now - total_us + (total_us as f64 / speed) as Micros
    } else {
        now
    }
}

/// Releases event time `t` at wall time `(t - t0) / speed` after the start.
#[derive(Debug)]
pub struct Pacer {
    wall0: tokio::time::Instant,
    t0: Micros,
    speed: f64,
}

impl Pacer {
    /// Start pacing now, event time `t0` first.
    pub fn new(t0: Micros, speed: f64) -> Self {
        Pacer {
            wall0: tokio::time::Instant::now(),
            t0,
            speed,
        }
    }

    /// Wait until event time `t` is due; `false` if `stop` fired first.
    pub async fn wait_for(&self, t: Micros, stop: &CancellationToken) -> bool {
        if self.speed <= 0.0 {
            return !stop.is_cancelled();
        }
        let due = self.wall0
            + Duration::from_secs_f64(((t - self.t0) as f64 / 1e6 / self.speed).max(0.0));
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep_until(due) => true,
        }
    }
}

/// How long (s) the broker keeps a publisher's session after it disconnects: long enough to
/// ride out a broker restart, short enough not to pile up sessions of finished runs.
pub const PUBLISHER_SESSION_S: u32 = 600;

/// A QoS 1 MQTT publisher with its own event-loop task.
pub struct Publisher {
    client: Client,
    encoding: Encoding,
    stop: CancellationToken,
    task: JoinHandle<()>,
    status: Arc<ConnectionStatus>,
    /// Messages published (batches, and raw payloads from tests).
    pub published: u64,
}

impl Publisher {
    /// Connect to the broker named in `a` as client `name`.
    pub fn connect(a: &PublishArgs, name: &str) -> Result<Self> {
        let mut mqtt: MqttConfig = match &a.config {
            Some(f) => {
                #[derive(serde::Deserialize)]
                struct OnlyMqtt {
                    #[serde(default)]
                    mqtt: MqttConfig,
                }
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let c: OnlyMqtt = mqtt_section(&text)?;
                c.mqtt
            }
            None => MqttConfig::default(),
        };
        let (host, port) = parse_host_port(&a.mqtt)?;
        mqtt.host = host;
        mqtt.port = port;
        // A persistent session: rumqttc re-sends the QoS 1 publishes still unacknowledged when
        // a connection drops (a broker restart) only if the broker answers the reconnect with
        // "session present"; with a clean session it drops them, and they are lost. The
        // session holds no subscription and expires `PUBLISHER_SESSION_S` after we leave (MQTT
        // 5; a 3.1.1 broker keeps it until `persistent_client_expiration`).
        mqtt.clean_session = false;
        mqtt.session_expiry_s = mqtt.session_expiry_s.min(PUBLISHER_SESSION_S);
        let (client, el) = connect(
            &mqtt,
            &format!("{name}-{}", std::process::id()),
            ConnectOptions {
                manual_acks: false,
                request_capacity: 10_000,
                receive_maximum: None,
            },
        )?;
        let stop = CancellationToken::new();
        let status = Arc::new(ConnectionStatus::default());
        let task = tokio::spawn(run_event_loop(
            el,
            client.clone(),
            vec![],
            None,
            status.clone(),
            (Duration::from_millis(200), Duration::from_secs(5)),
            1,
            stop.clone(),
        ));
        Ok(Publisher {
            client,
            encoding: a.encoding(),
            stop,
            task,
            status,
            published: 0,
        })
    }

    /// Publish one batch on its device topic (QoS 1).
    pub async fn publish(&mut self, b: &Batch) -> Result<()> {
        self.client
            .publish(
                &topic_for(b),
                QoS::AtLeastOnce,
                encode(b, self.encoding).into(),
            )
            .await?;
        self.published += 1;
        Ok(())
    }

    /// Publish arbitrary bytes on any topic (QoS 1): for tests that send what no pod should.
    pub async fn publish_raw(&mut self, topic: &str, payload: Vec<u8>) -> Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, payload.into())
            .await?;
        self.published += 1;
        Ok(())
    }

    /// Wait (up to `ACK_WAIT`) until the broker has acknowledged every publish — the client
    /// may still hold many while the broker is slow or away — then disconnect and stop the
    /// event loop. Says on stderr how many were never acknowledged (lost unless re-sent).
    pub async fn close(self) {
        const ACK_WAIT: Duration = Duration::from_secs(60);
        let t0 = tokio::time::Instant::now();
        let acked = || self.status.acked.load(std::sync::atomic::Ordering::Relaxed);
        while acked() < self.published && t0.elapsed() < ACK_WAIT {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if acked() < self.published {
            eprintln!(
                "warning: {} of {} messages not acknowledged by the broker after {ACK_WAIT:?}",
                self.published - acked(),
                self.published
            );
        }
        self.status
            .closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn parse_host_port(s: &str) -> Result<(String, u16)> {
    let (h, p) = s.rsplit_once(':').context("--mqtt must be host:port")?;
    Ok((h.to_string(), p.parse().context("--mqtt port")?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sample_is_ever_ahead_of_the_wall_clock() {
        let (now, total) = (1_000_000_000_000, 600_000_000);
        for speed in [0.0, 0.5, 1.0, 2.0, 10.0, 1000.0] {
            let start = start_time(now, total, speed);
            // The last sample is due at (total / speed) after now (at once when speed is 0).
            let publish_end = if speed == 0.0 {
                now
            } else {
                now + (total as f64 / speed) as i64
            };
            assert!(
                start + total <= publish_end.max(now + total),
                "speed {speed}"
            );
            if speed >= 1.0 {
                assert!((start + total - publish_end).abs() <= 1, "speed {speed}");
            }
        }
    }
}
