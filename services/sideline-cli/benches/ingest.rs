//! `make bench` (ingest part): MQTT → Kafka through the ingest service, with Mosquitto, tansu
//! and the service on this machine, next to a baseline measured in the same run: the same
//! publisher and broker with a bare subscriber that acknowledges at once (the broker's own
//! publish/subscribe rate, i.e. the ceiling for any bridge).
//!
//! Throughput: a flood of pre-encoded batches (the synthetic match, 200 ms batches, 110
//! samples per player-second) published as fast as the publisher can; time from the first
//! publish until the last message is acknowledged to Kafka (ingest) or received (baseline).
//! Latency: one match in real time (22 players), each sample stamped with its publish time;
//! a Kafka consumer measures publish → readable on Kafka (p50/p99); the baseline measures
//! publish → received by the bare subscriber.
//! CPU seconds per process (from /proc) name the bottleneck.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sideline_engine::Batch;
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, MqttConfig, QoS, connect, run_event_loop};
use sideline_sim::{MatchConfig, MatchSim};
use sideline_testkit::{Mosquitto, Tansu};
use sideline_wire::topic::{Encoding, encode, topic_for};
use tokio_util::sync::CancellationToken;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn pid_of(name: &str, port: u16) -> Option<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ")
                .contains(&port.to_string())
                || name == "mosquitto"
        })
}

struct Cpu {
    pids: Vec<(&'static str, u32)>,
    start: Vec<f64>,
}

impl Cpu {
    fn start(pids: Vec<(&'static str, u32)>) -> Self {
        let start = pids.iter().map(|(_, p)| cpu_seconds(*p)).collect();
        Cpu { pids, start }
    }
    fn report(&self) -> String {
        self.pids
            .iter()
            .zip(&self.start)
            .map(|((n, p), s)| format!("{n} {:.2}", cpu_seconds(*p) - s))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn mqtt_cfg(port: u16) -> MqttConfig {
    MqttConfig {
        port,
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        ..MqttConfig::default()
    }
}

async fn publisher(port: u16, id: &str) -> (sideline_mqtt::Client, CancellationToken) {
    let (c, el) = connect(
        &mqtt_cfg(port),
        id,
        ConnectOptions {
            manual_acks: false,
            request_capacity: 10_000,
            receive_maximum: None,
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(run_event_loop(
        el,
        c.clone(),
        vec![],
        None,
        Arc::new(ConnectionStatus::default()),
        (Duration::from_millis(50), Duration::from_millis(500)),
        1,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    (c, stop)
}

/// A bare subscriber acknowledging at once; counts messages and records publish → receive.
async fn bare_subscriber(
    port: u16,
    id: &str,
    count: Arc<AtomicU64>,
    lat: Arc<std::sync::Mutex<Vec<f64>>>,
) -> CancellationToken {
    let cfg = MqttConfig {
        clean_session: true,
        ..mqtt_cfg(port)
    };
    let (c, el) = connect(
        &cfg,
        id,
        ConnectOptions {
            manual_acks: true,
            request_capacity: 10_000,
            receive_maximum: Some(1000),
        },
    )
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<sideline_mqtt::Message>(1000);
    let stop = CancellationToken::new();
    tokio::spawn(run_event_loop(
        el,
        c.clone(),
        vec![("sideline/v1/+/+/+".into(), QoS::AtLeastOnce)],
        Some(tx),
        Arc::new(ConnectionStatus::default()),
        (Duration::from_millis(50), Duration::from_millis(500)),
        4000,
        stop.clone(),
    ));
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if let Ok(b) = sideline_wire::pb::SampleBatch::decode(&m.payload[..])
                && let Some(t) = sideline_wire::convert::batches(b)
                    .iter()
                    .flat_map(|b| b.samples.iter().map(|s| s.t_us))
                    .max()
            {
                lat.lock().unwrap().push((now_us() - t) as f64 / 1000.0);
            }
            let _ = c.try_ack(&m.ack);
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop
}

fn match_batches(secs: f64, batch_ms: u32) -> Vec<Batch> {
    let cfg = MatchConfig {
        half_min: secs / 120.0,
        break_min: 0.0,
        start: now_us() - (secs * 1e6) as i64,
        batch_ms,
        ..MatchConfig::default()
    };
    MatchSim::new(cfg).flatten().collect()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

async fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0.0;
    };
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut b = String::new();
    let _ = s.read_to_string(&mut b).await;
    b.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mqtt = Mosquitto::start();
    let kafka = Tansu::start();
    let mosq_pid = pid_of("mosquitto", mqtt.port).expect("mosquitto pid");
    let tansu_pid = pid_of("tansu", kafka.port).expect("tansu pid");
    let me = std::process::id();

    // Flood: 5 minutes of a 22-player match in 200 ms batches.
    let flood = match_batches(300.0, 200);
    let payloads: Vec<(String, Bytes)> = flood
        .iter()
        .map(|b| (topic_for(b), Bytes::from(encode(b, Encoding::Protobuf))))
        .collect();
    let n = payloads.len() as u64;
    let samples: usize = flood.iter().map(|b| b.samples.len()).sum();
    let bytes: usize = payloads.iter().map(|(_, p)| p.len()).sum();
    println!(
        "flood: {n} messages, {samples} samples, {:.1} MB of protobuf ({:.0} B/message)\n",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );

    // Baseline: the broker's own publish → subscribe.
    let count = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let bare = bare_subscriber(mqtt.port, "bench-bare-flood", Arc::clone(&count), lat).await;
    let (p, pstop) = publisher(mqtt.port, "bench-pub-1").await;
    let cpu = Cpu::start(vec![
        ("mosquitto", mosq_pid),
        ("bench process (publisher + subscriber)", me),
    ]);
    let t = Instant::now();
    for (topic, pl) in &payloads {
        p.publish(topic, QoS::AtLeastOnce, pl.clone())
            .await
            .unwrap();
    }
    while count.load(Ordering::Relaxed) < n {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "baseline stalled at {}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let base = t.elapsed().as_secs_f64();
    let base_cpu = cpu.report();
    bare.cancel();
    pstop.cancel();

    // Ingest.
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster.toml");
    let sim = MatchSim::new(MatchConfig::default());
    std::fs::write(&roster, sideline_cli::simulate::roster_toml(&sim)).unwrap();
    let mut cfg: sideline_ingest::IngestConfig =
        sideline_common::config::load(sideline_ingest::config::DEFAULTS, None).unwrap();
    cfg.mqtt.port = mqtt.port;
    cfg.mqtt.client_id = "bench-ingest".into();
    cfg.kafka.brokers = kafka.brokers();
    cfg.ingest.roster_file = roster;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let svc = tokio::spawn(sideline_ingest::run(cfg, listener, stop.clone()));
    while metric(http, "sideline_ingest_mqtt_connected").await < 1.0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (p, pstop) = publisher(mqtt.port, "bench-pub-2").await;
    let cpu = Cpu::start(vec![
        ("mosquitto", mosq_pid),
        ("tansu", tansu_pid),
        ("bench process (publisher + ingest)", me),
    ]);
    let t = Instant::now();
    for (topic, pl) in &payloads {
        p.publish(topic, QoS::AtLeastOnce, pl.clone())
            .await
            .unwrap();
    }
    loop {
        let done = metric(http, "sideline_ingest_messages_accepted_total").await as u64;
        if done >= n {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "ingest stalled at {done}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ing = t.elapsed().as_secs_f64();
    let ing_cpu = cpu.report();
    pstop.cancel();

    println!(
        "{:<44} {:>9} {:>12} {:>12}",
        "throughput (flood)", "time s", "messages/s", "samples/s"
    );
    println!(
        "{:<44} {:>9.2} {:>12.0} {:>12.0}",
        "baseline: MQTT publish → bare subscriber",
        base,
        n as f64 / base,
        samples as f64 / base
    );
    println!(
        "{:<44} {:>9.2} {:>12.0} {:>12.0}",
        "ingest: MQTT → validated → Kafka acked",
        ing,
        n as f64 / ing,
        samples as f64 / ing
    );
    println!(
        "ingest vs baseline: {:.0} % of the broker's own rate",
        100.0 * base / ing
    );
    println!("CPU seconds, baseline: {base_cpu}");
    println!("CPU seconds, ingest:   {ing_cpu}\n");

    // Latency at match load: one match in real time for 30 s, 200 ms batches.
    let live = match_batches(30.0, 200);
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.brokers())
        .set("group.id", "bench-latency")
        .set("fetch.wait.max.ms", "10")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some("sideline.samples.v1"), Duration::from_secs(5))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for part in md.topics()[0].partitions() {
        tpl.add_partition_offset("sideline.samples.v1", part.id(), Offset::End)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let e2e = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let (e2e2, want) = (Arc::clone(&e2e), live.len());
    let reader = tokio::spawn(async move {
        while e2e2.lock().unwrap().len() < want {
            let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await
            else {
                break;
            };
            if let Some(b) = m
                .payload()
                .and_then(|p| sideline_wire::pb::SampleBatch::decode(p).ok())
            {
                let sent = sideline_wire::convert::batches(b)
                    .iter()
                    .flat_map(|b| b.samples.iter().map(|s| s.t_us))
                    .max()
                    .unwrap_or(0);
                e2e2.lock().unwrap().push((now_us() - sent) as f64 / 1000.0);
            }
        }
    });
    // The baseline for latency: a bare subscriber receiving the same messages at the same time.
    let live_count = Arc::new(AtomicU64::new(0));
    let live_lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (port, lc, ll) = (mqtt.port, Arc::clone(&live_count), Arc::clone(&live_lat));
    let (bare_tx, bare_rx) = std::sync::mpsc::channel();
    let bare_thread = std::thread::spawn(move || {
        // Its own thread and runtime: the baseline must not queue behind the service.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let stop = bare_subscriber(port, "bench-bare-live", lc, ll).await;
            bare_tx.send(stop.clone()).unwrap();
            stop.cancelled().await;
        });
    });
    let bare = bare_rx.recv().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (p, pstop) = publisher(mqtt.port, "bench-pub-3").await;
    // Re-time each batch to "now" as it is published (its samples end now), in real time.
    let t0 = Instant::now();
    let first = live
        .iter()
        .map(|b| b.samples.iter().map(|s| s.t).max().unwrap())
        .min()
        .unwrap();
    for b in &live {
        let end = b.samples.iter().map(|s| s.t).max().unwrap();
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            t0 + Duration::from_micros((end - first) as u64),
        ))
        .await;
        let shift = now_us() - end;
        let mut b = b.clone();
        for s in &mut b.samples {
            s.t += shift;
        }
        p.publish(
            &topic_for(&b),
            QoS::AtLeastOnce,
            Bytes::from(encode(&b, Encoding::Protobuf)),
        )
        .await
        .unwrap();
    }
    reader.await.unwrap();
    pstop.cancel();
    bare.cancel();
    bare_thread.join().unwrap();
    let ack = histogram_quantiles(http, "sideline_ingest_ack_latency_seconds").await;
    let mut v = e2e.lock().unwrap().clone();
    let mut bl = live_lat.lock().unwrap().clone();
    println!(
        "latency at match load (22 players in real time, 200 ms batches, {} messages)",
        v.len()
    );
    println!(
        "  {:<42} p50 {:>6.1} ms   p99 {:>6.1} ms",
        "baseline: publish → bare MQTT subscriber",
        pct(&mut bl, 0.5),
        pct(&mut bl, 0.99)
    );
    println!(
        "  {:<42} p50 {:>6.1} ms   p99 {:>6.1} ms",
        "ingest: publish → readable on Kafka",
        pct(&mut v, 0.5),
        pct(&mut v, 0.99)
    );
    println!(
        "  {:<42} p50 ≤ {:>4.0} ms   p99 ≤ {:>4.0} ms   (service histogram, whole run)",
        "ingest: MQTT receive → Kafka ack",
        ack.0 * 1000.0,
        ack.1 * 1000.0
    );
    stop.cancel();
    let _ = svc.await;
}

/// p50 and p99 upper bounds from a Prometheus histogram exported by the service.
async fn histogram_quantiles(addr: std::net::SocketAddr, name: &str) -> (f64, f64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut b = String::new();
    s.read_to_string(&mut b).await.unwrap();
    let buckets: Vec<(f64, f64)> = b
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    let q = |p: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= p * total)
            .map_or(f64::NAN, |b| b.0)
    };
    (q(0.5), q(0.99))
}
