//! Harness for the ingest tests: real brokers, a configured service, a publisher.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use sideline_engine::Batch;
use sideline_ingest::IngestConfig;
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{Client, ConnectionStatus, MqttConfig, QoS, connect, run_event_loop};
use sideline_sim::{MatchConfig, MatchSim};
use sideline_testkit::kafka::{Record, read_topic_until};
use sideline_testkit::{Mosquitto, Tansu};
use sideline_wire::pb;
use sideline_wire::topic::{Encoding, encode, topic_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A short synthetic match (`secs` of play, 22 players) that happened just now.
pub fn short_match(secs: f64) -> (Vec<Batch>, MatchSim) {
    let cfg = MatchConfig {
        half_min: secs / 120.0,
        break_min: 0.0,
        start: now_us() - (secs * 1e6) as i64,
        ..MatchConfig::default()
    };
    let mut sim = MatchSim::new(cfg.clone());
    let batches: Vec<Batch> = sim.by_ref().flatten().collect();
    (batches, MatchSim::new(cfg))
}

/// The roster file for the simulated squads.
pub fn roster_toml(sim: &MatchSim) -> String {
    let devices: String = sim
        .players()
        .iter()
        .map(|p| {
            format!(
                "[[devices]]\ndevice = \"{}\"\nplayer = \"{}\"\nteam = \"{}\"\n",
                p.device, p.player, p.team
            )
        })
        .collect();
    devices
        + &sideline_wire::schedule::open_sessions_toml(
            sim.players().iter().map(|p| p.team.as_str()),
            &sim.config().session,
        )
}

pub struct Service {
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), sideline_ingest::IngestError>>,
    pub http: std::net::SocketAddr,
}

pub fn config(mqtt_port: u16, brokers: &str, roster: &Path, client_id: &str) -> IngestConfig {
    let mut c: IngestConfig =
        sideline_common::config::load(sideline_ingest::config::DEFAULTS, None).unwrap();
    c.mqtt.port = mqtt_port;
    c.mqtt.client_id = client_id.into();
    c.mqtt.reconnect_min_ms = 50;
    c.mqtt.reconnect_max_ms = 500;
    c.mqtt.keep_alive_s = 5;
    c.kafka.brokers = brokers.into();
    c.kafka.partitions = 4;
    c.ingest.roster_file = roster.to_path_buf();
    c.ingest.drain_timeout_s = 5;
    c
}

pub async fn start(cfg: IngestConfig) -> Service {
    // Logs for diagnosis: RUST_LOG=sideline_ingest=debug cargo test … -- --nocapture
    sideline_common::telemetry::init(sideline_common::telemetry::LogFormat::Text, "warn");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(sideline_ingest::run(cfg, listener, stop.clone()));
    Service { stop, task, http }
}

pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    (
        buf.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0),
        buf,
    )
}

pub async fn wait_ready(s: &Service, timeout: Duration) {
    let end = tokio::time::Instant::now() + timeout;
    loop {
        let (code, body) = http_get(s.http, "/readyz").await;
        if code == 200 {
            // Ready means subscribed (SubAck received): publishing now loses nothing.
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "ingest not ready in time: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A metric's value from /metrics (sum over label sets matching `filter`).
pub async fn metric(s: &Service, name: &str, filter: &str) -> f64 {
    let (_, body) = http_get(s.http, "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with(name) && l.contains(filter) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until a metric reaches `at_least` (the service notices a broker
/// restart only when its connection breaks, which takes a moment).
pub async fn wait_metric(s: &Service, name: &str, at_least: f64, timeout: Duration) {
    let end = tokio::time::Instant::now() + timeout;
    loop {
        let v = metric(s, name, "").await;
        if v >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{name} stayed at {v}, wanted at least {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct Publisher {
    pub client: Client,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Publisher {
    pub async fn connect(port: u16, id: &str) -> Self {
        let cfg = MqttConfig {
            port,
            reconnect_min_ms: 50,
            reconnect_max_ms: 500,
            keep_alive_s: 5,
            ..MqttConfig::default()
        };
        let (client, el) = connect(
            &cfg,
            id,
            ConnectOptions {
                manual_acks: false,
                request_capacity: 1000,
                receive_maximum: None,
            },
        )
        .unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_event_loop(
            el,
            client.clone(),
            vec![],
            None,
            Arc::new(ConnectionStatus::default()),
            (Duration::from_millis(50), Duration::from_millis(500)),
            1000,
            stop.clone(),
        ));
        Publisher { client, stop, task }
    }

    /// Publish a batch: protobuf, or the JSON form for every fifth sequence number (devices
    /// of both kinds share a broker).
    pub async fn send(&self, b: &Batch) {
        let e = if b.seq.is_multiple_of(5) {
            Encoding::Json
        } else {
            Encoding::Protobuf
        };
        self.client
            .publish(&topic_for(b), QoS::AtLeastOnce, Bytes::from(encode(b, e)))
            .await
            .unwrap();
    }

    pub async fn raw(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, Bytes::from(payload))
            .await
            .unwrap();
    }

    pub async fn close(self) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Done once the samples records read hold `want` device batches (a record ingest coalesced
/// holds several).
pub fn batches_read(want: usize) -> impl FnMut(&[Record]) -> bool {
    let (mut batches, mut counted) = (0, 0);
    move |out: &[Record]| {
        for r in &out[counted..] {
            batches += pb::SampleBatch::decode(r.value.as_deref().unwrap_or_default())
                .map_or(1, |b| b.coalesced.len().max(1));
        }
        counted = out.len();
        batches >= want
    }
}

/// Decoded sample records: (key, device, seq, samples, partition, offset).
pub fn samples(
    brokers: &str,
    want: usize,
    idle: Duration,
) -> Vec<(String, pb::SampleBatch, Record)> {
    read_topic_until(brokers, "sideline.samples.v1", idle, batches_read(want))
        .into_iter()
        .flat_map(|r| {
            let b = pb::SampleBatch::decode(r.value.as_deref().unwrap()).unwrap();
            // A coalesced record: each batch it holds, with the record.
            sideline_wire::convert::batches(b)
                .into_iter()
                .map(move |b| (r.key_str(), b, r.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// How many times each (device, seq) appears.
/// Batches of `batches` not among `counts` (by device and sequence number).
pub fn missing(batches: &[Batch], counts: &HashMap<(String, u64), usize>) -> usize {
    batches
        .iter()
        .filter(|b| !counts.contains_key(&(b.device.clone(), b.seq)))
        .count()
}

pub fn counts(records: &[(String, pb::SampleBatch, Record)]) -> HashMap<(String, u64), usize> {
    let mut m = HashMap::new();
    for (_, b, _) in records {
        *m.entry((b.device_id.clone(), b.seq)).or_default() += 1;
    }
    m
}

pub struct Brokers {
    pub mqtt: Mosquitto,
    pub kafka: Tansu,
    pub dir: tempfile::TempDir,
}

pub fn brokers() -> Brokers {
    Brokers {
        mqtt: Mosquitto::start(),
        kafka: Tansu::start(),
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Brokers {
    pub fn roster(&self, sim: &MatchSim) -> std::path::PathBuf {
        let p = self.dir.path().join("roster.toml");
        std::fs::write(&p, roster_toml(sim)).unwrap();
        p
    }
}
