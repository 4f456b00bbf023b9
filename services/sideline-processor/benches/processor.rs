//! `make bench` (processor part), against baselines measured in the same run.
//!
//! Throughput: a whole synthetic match (22 players × 90 min, ≈ 13 M samples, 1 s batches) on
//! the samples topic of a real tansu, then
//! - engine only: the same batches, already decoded, through one `Engine` (one core);
//! - decode + validate + engine: the same work the processor does per record, from bytes in
//!   memory (one core, no Kafka);
//! - Kafka read: a bare consumer reading every record and doing nothing (the broker's ceiling);
//! - the processor: from the first poll until every sample is in an engine, outputs and
//!   snapshots produced.
//! - the processor's CPU by thread kind (librdkafka's, the runtime's), then the processor again
//!   under each of a few producer settings (linger, requests in flight, idempotence), each
//!   with its CPU-seconds and tansu's: where the service's CPU goes besides its own work.
//!
//! Match load: one match in real time (22 players, 200 ms device batches, event time = wall
//! time) produced to Kafka while the processor runs; a consumer of the metrics topic measures
//! end of a second (event time) → its snapshot readable on Kafka, p50/p99, and the consumer lag
//! is sampled. Run once with the default allowed lateness (a second is held that long for late
//! samples, by design) and once with 10 ms (the pipeline's own delay).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;
mod peer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sideline_engine::{Engine, Params};
use sideline_sim::{MatchConfig, MatchSim};
use sideline_testkit::Tansu;
use sideline_wire::pb;
use sideline_wire::validate::{Limits, validate};

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// CPU seconds of each thread of this process by kind (librdkafka's threads are named `rdk:…`,
/// the runtime's `tokio-…`), keyed by thread id so that a thread that started later counts
/// from zero.
fn thread_cpu() -> std::collections::BTreeMap<u32, (String, f64)> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let s = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let (Some((head, after)), Some(open)) = (s.rsplit_once(')'), s.find('(')) else {
            continue;
        };
        let name = head[open + 1..].to_string();
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        out.insert(tid, (name, ticks / 100.0));
    }
    out
}

/// CPU seconds spent between two [`thread_cpu`] snapshots, by thread kind.
fn thread_cpu_delta(
    before: &std::collections::BTreeMap<u32, (String, f64)>,
    after: &std::collections::BTreeMap<u32, (String, f64)>,
) -> std::collections::BTreeMap<&'static str, f64> {
    let mut out = std::collections::BTreeMap::new();
    for (tid, (name, cpu)) in after {
        let spent = cpu - before.get(tid).map_or(0.0, |b| b.1);
        let kind = if name.starts_with("rdk:broker") {
            "librdkafka broker threads"
        } else if name.starts_with("rdk:") {
            "librdkafka other threads"
        } else if name.starts_with("tokio") {
            "runtime workers (the processor's loop)"
        } else {
            "other"
        };
        *out.entry(kind).or_insert(0.0) += spent;
    }
    out
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn row(name: &str, secs: f64, samples: usize, base: f64) {
    println!(
        "{name:<46} {secs:>8.2} {:>12.0} {:>9.2}",
        samples as f64 / secs,
        secs / base
    );
}

/// Read every record of a topic with a bare consumer; returns how many.
fn drain(brokers: &str, topic: &str, want: usize) -> usize {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-drain")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut n = 0;
    let mut bytes = 0usize;
    while n < want {
        if let Some(Ok(m)) = c.poll(Duration::from_secs(10)) {
            bytes += m.payload_len();
            n += 1;
        }
    }
    std::hint::black_box(bytes);
    n
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let kafka = Tansu::start();
    let brokers = kafka.brokers();

    // ---- Throughput: a whole match (SIDELINE_BENCH_LIVE_ONLY=1 skips it) ----
    if std::env::var_os("SIDELINE_BENCH_LIVE_ONLY").is_none() {
        throughput(&kafka).await;
    }
    if std::env::var_os("SIDELINE_BENCH_SETTINGS_ONLY").is_none() {
        live_runs(&brokers).await;
    }
}

async fn throughput(kafka: &Tansu) {
    let brokers = kafka.brokers();
    let tansu_pid = kafka.pid();
    let me = std::process::id();
    let mcfg = match_config();
    let (batches, sim) = match_batches(&mcfg);
    let samples: usize = batches.iter().map(|(_, b)| b.samples.len()).sum();
    println!(
        "whole match: {} device batches, {samples} samples\n",
        batches.len()
    );
    let encoded: Vec<Vec<u8>> = batches.iter().map(|(_, b)| b.encode_to_vec()).collect();
    let decoded: Vec<(String, String, sideline_engine::Batch)> = batches
        .iter()
        .map(|(k, b)| {
            let limits = Limits {
                max_past_s: None,
                max_future_s: 1e12,
                ..Limits::default()
            };
            (
                k.clone(),
                b.team_id.clone(),
                validate(b, &limits, None).unwrap(),
            )
        })
        .collect();

    // Baseline 1: the engine alone, one core.
    let mut engine: Engine = sideline_sim::offline::engine_for(&sim, Params::default());
    let mut out = sideline_engine::Outputs::default();
    let t = Instant::now();
    for (player, team, b) in &decoded {
        engine.ingest_routed(player, team, "", b, &mut out);
        out.clear();
    }
    engine.finish(&mut out);
    let engine_s = t.elapsed().as_secs_f64();
    drop(engine);

    // Baseline 2: what the processor does per record, without Kafka: its core (decode,
    // validate, engine, alert rules, counters) and the outputs' encoding.
    let engine: Engine = sideline_sim::offline::engine_for(&sim, Params::default());
    let mut core = sideline_processor::core::Core::new(
        engine,
        sideline_processor::metrics::ProcessorMetrics::new(&prometheus::Registry::new()).unwrap(),
        false,
        sideline_processor::core::Timing {
            idle_advance: Duration::from_secs(30),
            session_idle: Duration::from_secs(600),
            forget_after: Duration::from_secs(43_200),
            pace: 1.0,
        },
    );
    let t = Instant::now();
    for (off, ((player, _), bytes)) in batches.iter().zip(&encoded).enumerate() {
        core.record(0, off as i64, player.as_bytes(), bytes, t);
        let (out, _) = core.take();
        for m in &out.metrics {
            std::hint::black_box(sideline_wire::convert::metrics(m).encode_to_vec());
        }
    }
    let decode_s = t.elapsed().as_secs_f64();
    drop((core, decoded, encoded));

    let cfg = config(&brokers, "bench-throughput");
    create_topics(&cfg.kafka).await;
    produce_profiles(&brokers, &cfg.kafka, &sim);
    let t = Instant::now();
    produce_batches(
        &test_producer(&brokers),
        &cfg.kafka.topics.samples,
        &batches,
    );
    let produce_s = t.elapsed().as_secs_f64();
    let n_records = batches.len();
    drop(batches);

    // SIDELINE_BENCH_SETTINGS_ONLY=1: only the producer settings below (a quick experiment).
    if std::env::var_os("SIDELINE_BENCH_SETTINGS_ONLY").is_some() {
        producer_settings(kafka, &cfg, samples).await;
        peer_vs(
            &brokers,
            &cfg.kafka.topics.samples,
            n_records,
            samples,
            tansu_pid,
            None,
        );
        return;
    }

    // Baseline 3: reading the topic and doing nothing.
    let (read_cpu, read_cpu_tansu) = (cpu_seconds(me), cpu_seconds(tansu_pid));
    let t = Instant::now();
    let read = tokio::task::spawn_blocking({
        let (b, topic) = (brokers.clone(), cfg.kafka.topics.samples.clone());
        move || drain(&b, &topic, n_records)
    })
    .await
    .unwrap();
    let read_s = t.elapsed().as_secs_f64();
    let (read_cpu, read_cpu_tansu) = (
        cpu_seconds(me) - read_cpu,
        cpu_seconds(tansu_pid) - read_cpu_tansu,
    );
    assert_eq!(read, n_records);

    // The processor.
    let svc = start(cfg.clone()).await;
    let run = measure(&svc, samples, tansu_pid).await;
    let (proc_s, cpu_me, cpu_tansu, by_thread) = (run.secs, run.cpu, run.tansu, run.by_thread);
    let late = svc.metric("sideline_processor_late_samples_total").await;
    svc.shutdown().await;

    println!(
        "{:<46} {:>8} {:>12} {:>9}",
        "throughput (whole match)", "time s", "samples/s", "× engine"
    );
    row(
        "engine only (decoded batches, 1 core)",
        engine_s,
        samples,
        engine_s,
    );
    row(
        "decode + validate + engine (1 core, no Kafka)",
        decode_s,
        samples,
        engine_s,
    );
    row(
        "produce to Kafka (test producer → tansu)",
        produce_s,
        samples,
        engine_s,
    );
    row(
        "Kafka read, bare consumer (no work)",
        read_s,
        samples,
        engine_s,
    );
    row(
        "processor: Kafka → engines → outputs",
        proc_s,
        samples,
        engine_s,
    );
    println!(
        "CPU seconds: bare read: bench process {read_cpu:.1}, tansu {read_cpu_tansu:.1}; \
         processor: bench process (the processor) {cpu_me:.1} = {:.0} samples per CPU-second, \
         tansu {cpu_tansu:.1}; late samples {late}\n",
        samples as f64 / cpu_me
    );
    println!("  the processor's CPU seconds by thread: {by_thread:.1?}\n");
    peer_vs(
        &brokers,
        &cfg.kafka.topics.samples,
        n_records,
        samples,
        tansu_pid,
        Some((samples as f64 / cpu_me, read_cpu)),
    );
    producer_settings(kafka, &cfg, samples).await;
}

/// The Quix app on the same topic, then the samples per CPU-second of each (`ours`: the
/// processor's figure and the bare read's CPU-s, measured just before in this run).
fn peer_vs(
    brokers: &str,
    topic: &str,
    n_records: usize,
    samples: usize,
    tansu_pid: u32,
    ours: Option<(f64, f64)>,
) {
    let Some(p) = peer::run(brokers, topic, n_records, tansu_pid) else {
        return;
    };
    assert_eq!((p.records, p.samples), (n_records, samples));
    let per_cpu = p.samples as f64 / p.cpu;
    println!(
        "peer (Quix Streams app: distance, HSR, sprints, rolling 5-min HSR): {:.1} s, \
         {:.1} CPU-s from its first record ({:.1} in all), {per_cpu:.0} samples per CPU-second, \
         tansu {:.1} CPU-s",
        p.secs, p.cpu, p.cpu_all, p.tansu
    );
    if let Some((proc_per_cpu, read_cpu)) = ours {
        println!(
            "  Sideline's processor / the peer, samples per CPU-second: {:.1}x \
             (bare read: {:.0} samples per CPU-second)\n",
            proc_per_cpu / per_cpu,
            samples as f64 / read_cpu
        );
    }
}

/// One processor run, from its first record consumed (start-up and group join left out) until
/// every sample is in an engine.
struct Measured {
    secs: f64,
    /// CPU-s of this process (the processor) and of tansu.
    cpu: f64,
    tansu: f64,
    by_thread: std::collections::BTreeMap<&'static str, f64>,
}

async fn measure(svc: &Service, samples: usize, tansu_pid: u32) -> Measured {
    wait_metric(
        svc,
        "sideline_processor_records_consumed_total",
        1.0,
        Duration::from_secs(120),
    )
    .await;
    let me = std::process::id();
    let (cpu0, tansu0, threads) = (cpu_seconds(me), cpu_seconds(tansu_pid), thread_cpu());
    let t0 = Instant::now();
    wait_metric(
        svc,
        "sideline_processor_samples_total",
        samples as f64,
        Duration::from_secs(900),
    )
    .await;
    Measured {
        secs: t0.elapsed().as_secs_f64(),
        cpu: cpu_seconds(me) - cpu0,
        tansu: cpu_seconds(tansu_pid) - tansu0,
        by_thread: thread_cpu_delta(&threads, &thread_cpu()),
    }
}

/// The processor again on the same topic, once per producer setting, in the same run: does
/// its producer thread spin while it waits for acknowledgements (issue 31)? Each run has a
/// group and output topics of its own (so nothing is restored from an earlier run's state).
async fn producer_settings(
    kafka: &Tansu,
    base: &sideline_processor::ProcessorConfig,
    samples: usize,
) {
    let idempotent: &[(&str, &str)] = &[
        ("enable.idempotence", "true"),
        ("max.in.flight.requests.per.connection", "5"),
    ];
    let variants: [(&str, &[(&str, &str)]); 5] = [
        ("as shipped", &[]),
        ("idempotent (the old default)", idempotent),
        (
            "idempotent, linger.ms=50",
            &[
                ("enable.idempotence", "true"),
                ("max.in.flight.requests.per.connection", "5"),
                ("linger.ms", "50"),
            ],
        ),
        (
            "not idempotent, 1 request in flight",
            &[
                ("enable.idempotence", "false"),
                ("max.in.flight.requests.per.connection", "1"),
            ],
        ),
        (
            "not idempotent, unordered (experiment)",
            &[
                ("enable.idempotence", "false"),
                ("max.in.flight.requests.per.connection", "1000000"),
            ],
        ),
    ];
    println!(
        "{:<38} {:>7} {:>8} {:>9}  the processor's CPU-s by thread",
        "processor, producer setting", "time s", "CPU-s", "tansu CPU"
    );
    for (i, (label, settings)) in variants.iter().enumerate() {
        let mut cfg = base.clone();
        cfg.processor.group_id = format!("bench-producer-{i}");
        let t = &mut cfg.kafka.topics;
        for (name, topic) in [
            ("metrics", &mut t.metrics),
            ("alerts", &mut t.alerts),
            ("state", &mut t.state),
            ("dlq", &mut t.dlq),
        ] {
            *topic = format!("bench.producer{i}.{name}");
        }
        for (k, v) in *settings {
            cfg.kafka.client.insert((*k).to_string(), (*v).to_string());
        }
        create_topics(&cfg.kafka).await;
        let svc = start(cfg.clone()).await;
        let r = measure(&svc, samples, kafka.pid()).await;
        svc.shutdown().await;
        println!(
            "{label:<38} {:>7.1} {:>8.1} {:>9.1}  {:.1?}",
            r.secs, r.cpu, r.tansu, r.by_thread
        );
    }
    println!();
}

/// ---- Match load: latency and lag ----
async fn live_runs(brokers: &str) {
    let brokers = brokers.to_string();
    let params_dir = tempfile::tempdir().unwrap();
    // A device sends its position, accelerometer and heart-rate streams as separate batches,
    // so the smallest lateness that refuses none of them is about one batch interval.
    for lateness in [Params::default().stream.allowed_lateness_s, 0.3] {
        let tag = if lateness < 1.0 { "lshort" } else { "ldef" };
        let mut cfg = config(&brokers, &format!("bench-live-{tag}"));
        let t = &mut cfg.kafka.topics;
        for (name, topic) in [
            ("samples", &mut t.samples),
            ("metrics", &mut t.metrics),
            ("alerts", &mut t.alerts),
            ("state", &mut t.state),
        ] {
            *topic = format!("bench.{tag}.{name}");
        }
        let mut params = Params::default();
        params.stream.allowed_lateness_s = lateness;
        let path = params_dir.path().join(format!("{tag}.toml"));
        std::fs::write(&path, toml::to_string(&params).unwrap()).unwrap();
        cfg.processor.params_file = path;
        cfg.processor.tick_interval_ms = 200;
        cfg.processor.checkpoint_interval_s = 5;
        let r = live(&brokers, &cfg, 60.0).await;
        let (mut lat, lag, late) = r;
        println!(
            "match load, allowed lateness {lateness} s: {} snapshots; end of second → \
             readable on Kafka p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; consumer lag max {lag} \
             records; late samples {late}",
            lat.len(),
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            pct(&mut lat, 1.0),
        );
    }
}

/// Run the processor on `cfg` while a match of `secs` is produced in real time; returns the
/// latencies (ms), the largest consumer lag seen and the late samples.
async fn live(
    brokers: &str,
    cfg: &sideline_processor::ProcessorConfig,
    secs: f64,
) -> (Vec<f64>, i64, f64) {
    create_topics(&cfg.kafka).await;
    let svc = start(cfg.clone()).await;
    wait_metric(
        &svc,
        "sideline_processor_assigned_partitions",
        6.0,
        Duration::from_secs(60),
    )
    .await;

    // Snapshots as they become readable.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-latency")
        .set("fetch.wait.max.ms", "10")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let topic = cfg.kafka.topics.metrics.clone();
    let md = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(5))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(&topic, p.id(), Offset::End)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let lat = Arc::new(Mutex::new(Vec::<(i64, f64)>::new()));
    let stop = sideline_common::CancellationToken::new();
    let reader = {
        let (lat, stop) = (Arc::clone(&lat), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    m = consumer.recv() => if let Ok(m) = m
                        && let Some(s) = m.payload().and_then(|p| pb::PlayerMetrics::decode(p).ok())
                    {
                        lat.lock().unwrap().push((s.t_us, (now_us() - s.t_us) as f64 / 1000.0));
                    }
                }
            }
        })
    };

    // The match, event time = now, each 200 ms batch sent when its last sample is taken.
    let start_us = now_us() + 1_000_000;
    let mcfg = MatchConfig {
        half_min: secs / 120.0,
        break_min: 0.0,
        start: start_us,
        batch_ms: 200,
        ..MatchConfig::default()
    };
    let mut sim = MatchSim::new(mcfg);
    let wearer: std::collections::HashMap<String, String> = sim
        .players()
        .iter()
        .map(|p| (p.device.clone(), p.player.clone()))
        .collect();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut max_lag = 0i64;
    let mut last_lag = Instant::now();
    while let Some(bs) = sim.next_batches() {
        let end = sim.now();
        let wait = (end - now_us()).max(0) as u64;
        tokio::time::sleep(Duration::from_micros(wait)).await;
        for b in bs {
            let mut m = sideline_wire::convert::batch(&b);
            m.player_id = wearer[&b.device].clone();
            let bytes = m.encode_to_vec();
            producer
                .send(
                    BaseRecord::to(&cfg.kafka.topics.samples)
                        .key(&m.player_id)
                        .payload(&bytes),
                )
                .unwrap();
        }
        if last_lag.elapsed() > Duration::from_millis(500) {
            last_lag = Instant::now();
            max_lag =
                max_lag.max(svc.metric("sideline_processor_consumer_lag_records").await as i64);
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    let _ = reader.await;
    let late = svc.metric("sideline_processor_late_samples_total").await;
    svc.shutdown().await;
    // The last seconds of the match close only when the partitions fall idle (nothing comes
    // after them): not match-load latency, left out.
    let lateness = (Params::default().stream.allowed_lateness_s.ceil() as i64 + 2) * 1_000_000;
    let last = sim.now();
    let lat = lat
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t <= last - lateness)
        .map(|(_, l)| *l)
        .collect();
    (lat, max_lag, late)
}
