//! End-to-end benchmark of the whole pipeline as separate processes on real brokers (the
//! harness of `tests/e2e`): Mosquitto → `sideline ingest` → tansu → `sideline process` →
//! metrics / `sideline alert` → chat, with `sideline archive` and Prometheus running too, all
//! on this machine.
//!
//! 1. Throughput: a synthetic match (2 × 5 min) published over MQTT as fast as the pods'
//!    client can, timed until ingest, the processor and the archive have every sample (or
//!    what they reached after 5 min), on tansu with memory and with sqlite storage. Same-run
//!    baselines: the engine alone on the same batches (one core, in memory) and a bare Kafka
//!    consumer reading the samples topic the run produced (the broker's read ceiling).
//! 2. Latency at match load (1 match, 22 players) and at 20 teams' load (10 matches, 220
//!    players), in real time from minute 29:30, which takes in the scripted pod dropout at
//!    30:00: sample → metrics (end of a player's second → its snapshot readable on Kafka, read
//!    by a consumer here) and sample → chat (the alert's event time → the POST at the chat
//!    receiver); the pipeline's share of each, from the moment the pod batch whose sample
//!    closes the second (allowed lateness past its end; the batch before when the snapshot
//!    was out before that one was sent, closed by the player's silence) was sent; the
//!    processor's checkpoints. The processor's memory per player from its resident size.
//! 3. Recovery: at 20 teams' load the processor is killed (-9) and restarted; the time until
//!    it has consumed every partition to its end again, and until a second is again reported
//!    within 3 s.
//!
//! 4. The broker's price of a polling consumer (`parts/broker.rs`).
//!
//! Run: `make bench` (or `cargo bench -p sideline-e2e --bench e2e` with `SIDELINE_BIN` set to
//! a release build of `sideline`; `SIDELINE_BENCH_PART=throughput|latency|broker` for one part;
//! `SIDELINE_BENCH_PARTITIONS=N` for topics of N partitions (latency: each load once);
//! `SIDELINE_BENCH_STORAGE=memory|sqlite`, `SIDELINE_BENCH_BATCH_MS=N` and
//! `SIDELINE_BENCH_ENV="role:KEY=value …"` for the throughput runs;
//! `SIDELINE_BENCH_LOADS=match|teams` for one latency load and `SIDELINE_BENCH_READER_WAIT_MS`
//! for its metrics reader's poll).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "parts/broker.rs"]
mod broker;
#[path = "../e2e/mod.rs"]
mod e2e;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::feed::{self, Feed, Windows};
use e2e::{Pipeline, Setup};
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sideline_cli::publish::now_us;
use sideline_engine::{Engine, Params};
use sideline_sim::{MatchConfig, MatchSim};
use sideline_wire::pb;

/// The archiver runs when the `sideline` under test has the archive commands (a release build
/// with DataFusion takes long: `SIDELINE_BENCH_ARCHIVE=0` benches the rest without it).
fn archive() -> bool {
    std::env::var("SIDELINE_BENCH_ARCHIVE").map_or(true, |v| v != "0")
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// `n` matches of two teams each, starting `ago` before now (whole seconds).
fn matches(n: usize, half_min: f64, ago_s: i64) -> Vec<MatchConfig> {
    matches_batched(n, half_min, ago_s, 200)
}

/// As [`matches`], with pods that send a batch every `batch_ms` (per device and stream).
fn matches_batched(n: usize, half_min: f64, ago_s: i64, batch_ms: u32) -> Vec<MatchConfig> {
    let start = (now_us() / 1_000_000 - ago_s) * 1_000_000;
    (0..n)
        .map(|i| MatchConfig {
            seed: 7 + i as u64,
            start,
            half_min,
            break_min: 0.5,
            batch_ms,
            home: if n == 1 {
                "home".into()
            } else {
                format!("t{i:02}h")
            },
            away: if n == 1 {
                "away".into()
            } else {
                format!("t{i:02}a")
            },
            session: format!("bench-{i}"),
            ..MatchConfig::default()
        })
        .collect()
}

/// The windows of several matches played at once (same start), merged in time order, from
/// event time `from` on.
fn merged(cfgs: &[MatchConfig], from: i64) -> Windows {
    let mut all: Vec<Windows> = cfgs
        .iter()
        .map(|c| {
            let mut sim = MatchSim::new(c.clone());
            let mut w = Vec::new();
            while let Some(mut b) = sim.next_batches() {
                if sim.now() >= from {
                    if cfgs.len() > 1 {
                        for x in &mut b {
                            x.device = club_device(&x.team, &x.device);
                        }
                    }
                    w.push((sim.now(), b));
                }
            }
            w
        })
        .collect();
    let mut out = all.remove(0);
    for w in all {
        for (i, (_, b)) in w.into_iter().enumerate() {
            out[i].1.extend(b);
        }
    }
    out
}

/// The same windows moved in time so that the first is due now: event time = wall time as the
/// feed starts, however long simulating and starting the pipeline took.
fn due_now(mut w: Windows) -> Windows {
    let by = now_us() - w.first().map_or(0, |x| x.0);
    for (t, batches) in &mut w {
        *t += by;
        for b in batches {
            for s in &mut b.samples {
                s.t += by;
            }
        }
    }
    w
}

/// A pod id unique across a club's squads: the simulator numbers every squad's pods alike
/// (`pod-h01`…), and one ingest serves them all.
fn club_device(team: &str, device: &str) -> String {
    format!("{team}-{device}")
}

fn setup(cfgs: &[MatchConfig]) -> Setup {
    let sims: Vec<MatchSim> = cfgs.iter().map(|c| MatchSim::new(c.clone())).collect();
    let roster = if sims.len() == 1 {
        sideline_cli::simulate::roster_toml(&sims[0])
    } else {
        let mut out = String::new();
        for p in sims.iter().flat_map(|s| s.players()) {
            out.push_str(&format!(
                "\n[[devices]]\ndevice = \"{}\"\nplayer = \"{}\"\nteam = \"{}\"\n",
                club_device(&p.team, &p.device),
                p.player,
                p.team
            ));
        }
        out
    };
    Setup {
        roster,
        profiles: sims,
        env: vec![],
        archive: archive(),
        partitions: None,
        ingest_config: None,
    }
}

/// Reads the metrics topic from its end: for each snapshot, wall time − end of its second.
struct MetricsWatch {
    stop: Arc<AtomicBool>,
    task: std::thread::JoinHandle<Vec<(i64, i64, i64)>>,
}

/// The metrics reader's `fetch.wait.max.ms`: 10 ms (`SIDELINE_BENCH_READER_WAIT_MS` to change
/// it). On tansu a consumer's polls cost the broker CPU in proportion to partitions ÷ wait,
/// data or not (BENCHMARKS.md); 20 ms made no difference beyond the run-to-run spread.
fn reader_wait_ms() -> String {
    std::env::var("SIDELINE_BENCH_READER_WAIT_MS").unwrap_or_else(|_| "10".into())
}

impl MetricsWatch {
    fn start(p: &Pipeline) -> MetricsWatch {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", p.kafka.brokers())
            .set("group.id", "bench-latency")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", reader_wait_ms())
            .create()
            .unwrap();
        let topic = p.kafka_config.topics.metrics.clone();
        let md = c
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for part in 0..md.topics()[0].partitions().len() as i32 {
            tpl.add_partition_offset(&topic, part, Offset::End).unwrap();
        }
        c.assign(&tpl).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                    let now = now_us();
                    if let Ok(x) = pb::PlayerMetrics::decode(m.payload().unwrap_or_default()) {
                        // `t_us` is the end of the snapshot's second; the record's
                        // timestamp is when the processor produced it (ms).
                        let made = m.timestamp().to_millis().map_or(now, |ms| ms * 1000);
                        out.push((now, x.t_us, made));
                    }
                }
            }
            out
        });
        MetricsWatch { stop, task }
    }

    /// (wall time it was read, end of its second, time the processor produced it), µs, of
    /// every snapshot seen.
    fn finish(self) -> Vec<(i64, i64, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.join().unwrap()
    }
}

/// One Kafka hop on the pipeline's broker, measured beside it: a record produced every 100 ms
/// with the pipeline's producer settings, read by a consumer set like [`MetricsWatch`] — the
/// latency of one broker hop under the same load (the pipeline has two: ingest → processor,
/// processor → the reader).
struct BrokerProbe {
    stop: Arc<AtomicBool>,
    task: std::thread::JoinHandle<Vec<f64>>,
}

impl BrokerProbe {
    async fn start(p: &Pipeline) -> BrokerProbe {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let brokers = p.kafka.brokers();
        let topic = "bench.probe";
        let admin: AdminClient<_> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
        admin
            .create_topics(&[new], &AdminOptions::new())
            .await
            .unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "bench-probe")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::End).unwrap();
        consumer.assign(&tpl).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut next = Instant::now();
            // Records of the first 2 s wait for the new topic's metadata: not counted.
            let from = now_us() + 2_000_000;
            while !s.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let sent = now_us().to_string();
                    let _ = producer.send(BaseRecord::<(), _>::to(topic).payload(&sent));
                    next += Duration::from_millis(100);
                }
                producer.poll(Duration::ZERO);
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(10)) {
                    let now = now_us();
                    if let Some(sent) = m
                        .payload()
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .filter(|&sent| sent >= from)
                    {
                        out.push((now - sent) as f64 / 1000.0);
                    }
                }
            }
            let _ = producer.flush(Duration::from_secs(1));
            out
        });
        BrokerProbe { stop, task }
    }

    /// Hop latencies seen, ms.
    fn finish(self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.join().unwrap()
    }
}

/// Every alert that fired: (its first POST at the chat receiver, the event time of its firing
/// event on the alerts topic), µs.
fn chat_posts(p: &Pipeline) -> Vec<(i64, i64)> {
    let alerts = e2e::common::read_alerts(&p.kafka.brokers(), &p.kafka_config.topics.alerts);
    let posts = p.chat.lock().unwrap().clone();
    alerts
        .iter()
        .filter(|a| a.state == pb::alert::State::Firing as i32)
        .filter_map(|a| {
            let first = posts.iter().find(|post| {
                post.body["alerts"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x["fingerprint"] == a.id.as_str()))
            })?;
            Some((first.at, a.t_us))
        })
        .collect()
}

/// How long a throughput run may take before it reports what it reached.
const THROUGHPUT_CAP_S: f64 = 300.0;

async fn throughput() {
    let half_min = 5.0;
    // `SIDELINE_BENCH_BATCH_MS`: the pods' batch interval (200 ms unless set; 1000 = 1-s batches).
    let batch_ms = std::env::var("SIDELINE_BENCH_BATCH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!(
        "== 1. Throughput: a 2 × {half_min:.0} min match over MQTT as fast as it can be sent, {batch_ms}-ms pod batches"
    );
    let cfgs = matches_batched(1, half_min, 15 * 60, batch_ms);
    let windows = merged(&cfgs, i64::MIN);
    let n = feed::samples(&windows);
    // Baseline: the engine alone on the same batches, one core, in memory.
    let t0 = Instant::now();
    let mut engine: Engine =
        sideline_sim::offline::engine_for(&MatchSim::new(cfgs[0].clone()), Params::default());
    let mut out = sideline_engine::Outputs::default();
    for (t, bs) in &windows {
        for b in bs {
            engine.ingest_batch(b, &mut out);
        }
        engine.tick(*t, &mut out);
        out.clear();
    }
    let engine_s = t0.elapsed().as_secs_f64();
    let rate = |s: f64| n as f64 / s / 1000.0;
    println!("{n} samples");
    println!("| stage | time | samples/s |");
    println!("|---|---:|---:|");
    println!(
        "| engine alone, same batches, 1 core (baseline) | {engine_s:.2} s | {:.0} k |",
        rate(engine_s)
    );
    // tansu's two storage engines: sqlite (what the fault suite and deployments that restart
    // the broker need) and memory (no durability; the broker's own ceiling without sqlite).
    // `SIDELINE_BENCH_STORAGE=sqlite` or `=memory` runs one of them.
    let only = std::env::var("SIDELINE_BENCH_STORAGE").unwrap_or_default();
    for storage in ["memory://tansu/", "sqlite://tansu.db"] {
        if only.is_empty() || storage.starts_with(&only) {
            throughput_on(storage, &cfgs, windows.clone(), n).await;
        }
    }
}

/// Partitions per topic: the services' default (12) unless `SIDELINE_BENCH_PARTITIONS` says
/// otherwise (the latency part then runs each load once, on that many).
fn bench_partitions() -> Option<i32> {
    std::env::var("SIDELINE_BENCH_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
}

async fn throughput_on(storage: &str, cfgs: &[MatchConfig], windows: Windows, n: u64) {
    let rate = |s: f64| n as f64 / s / 1000.0;
    let kafka = sideline_testkit::Tansu::start_with_storage(storage);
    let tansu_pid = kafka.pid();
    let mut su = setup(cfgs);
    su.partitions = bench_partitions();
    // `SIDELINE_BENCH_ENV="ingest:SIDELINE__INGEST__MAX_INFLIGHT=4000 process:…"`: settings
    // for one service, to try a configuration without rebuilding.
    for item in std::env::var("SIDELINE_BENCH_ENV")
        .unwrap_or_default()
        .split_whitespace()
    {
        let (role, kv) = item.split_once(':').expect("role:KEY=value");
        let (k, v) = kv.split_once('=').expect("role:KEY=value");
        let role = ["ingest", "process", "alert", "archive"]
            .into_iter()
            .find(|r| *r == role)
            .expect("role: ingest, process, alert or archive");
        su.env.push((role, k.to_string(), v.to_string()));
    }
    let p = Pipeline::start_on(su, kafka).await;
    let cpu0 = cpu_s(tansu_pid);
    let mut f = Feed::new(p.mqtt.port, windows, 0.0);
    let t0 = Instant::now();
    f.play(1.0).await;
    let published = t0.elapsed().as_secs_f64();
    let stages = [
        (
            "ingest: every sample on Kafka",
            "ingest",
            "sideline_ingest_samples_accepted_total",
        ),
        (
            "**end to end**: every sample in the processor's engines",
            "process",
            "sideline_processor_samples_total",
        ),
        (
            "archive: every sample in committed Parquet",
            "archive",
            "sideline_archive_rows_total{table=\"samples\"}",
        ),
    ];
    let wanted = if archive() { 3 } else { 2 };
    let mut done: Vec<Option<f64>> = vec![None; wanted];
    let mut reached = vec![0.0; wanted];
    while done.iter().any(Option::is_none) && t0.elapsed().as_secs_f64() < THROUGHPUT_CAP_S {
        let e = t0.elapsed().as_secs_f64();
        for (i, (_, role, metric)) in stages.iter().take(wanted).enumerate() {
            if done[i].is_none() {
                reached[i] = p.metric(role, metric).await;
                if reached[i] >= n as f64 {
                    done[i] = Some(e);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let capped = t0.elapsed().as_secs_f64();
    let tansu_cpu = cpu_s(tansu_pid) - cpu0;
    let messages = f.batches;
    f.close().await;
    // Baseline: a bare consumer reading the samples topic this run produced.
    let t1 = Instant::now();
    let recs = sideline_testkit::kafka::read_topic(
        &p.kafka.brokers(),
        &p.kafka_config.topics.samples,
        usize::MAX,
        Duration::from_secs(3),
    );
    let read_s = t1.elapsed().as_secs_f64() - 3.0;
    println!(
        "| tansu `{storage}`, {} partitions: {messages} MQTT messages, {} Kafka records, tansu used {tansu_cpu:.0} CPU-s | | |",
        bench_partitions().unwrap_or(12),
        recs.len()
    );
    println!(
        "| bare Kafka read of the samples topic (baseline) | {read_s:.1} s | {:.0} k |",
        rate(read_s)
    );
    println!(
        "| pods' MQTT client: all published | {published:.1} s | {:.0} k |",
        rate(published)
    );
    for (i, (label, _, _)) in stages.iter().take(wanted).enumerate() {
        match done[i] {
            Some(s) => println!("| {label} | {s:.1} s | {:.0} k |", rate(s)),
            None => println!(
                "| {label} | not done at {capped:.0} s: {:.0} of {n} | {:.0} k |",
                reached[i],
                reached[i] / capped / 1000.0
            ),
        }
    }
}

/// CPU seconds (user + system) a process has used so far (0 if it cannot be read).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn latency() {
    println!(
        "tansu: sqlite:// storage in {} (SIDELINE_TANSU_DIR)",
        std::env::var("SIDELINE_TANSU_DIR")
            .unwrap_or_else(|_| "the system's temporary directory".into())
    );
    // Each load twice: topics with the default 12 partitions, and with 2 (tansu writes and
    // reads each partition of a produce or fetch request separately).
    // `SIDELINE_BENCH_LOADS=match` or `=teams` runs one load.
    let loads = std::env::var("SIDELINE_BENCH_LOADS").unwrap_or_default();
    for (label, n, partitions) in [
        ("match load: 1 match, 22 players", 1usize, None),
        ("match load: 1 match, 22 players", 1, Some(2)),
        ("20 teams: 10 matches, 220 players", 10, Some(2)),
        ("20 teams: 10 matches, 220 players", 10, None),
    ] {
        if !loads.is_empty() && !label.starts_with(&loads) {
            continue;
        }
        // `SIDELINE_BENCH_PARTITIONS=N`: each load once, on N partitions.
        let partitions = match bench_partitions() {
            Some(_) if partitions.is_some() => continue,
            Some(n) => Some(n),
            None => partitions,
        };
        println!(
            "\n== 2. Latency at {label}, {} partitions per topic, real time from 29:30 for 90 s",
            partitions.unwrap_or(12)
        );
        // Event time = wall time: the match started 29:30 + the break ago.
        let cfgs = matches(n, 45.0, 29 * 60 + 30 + 30);
        let from = cfgs[0].start + (29 * 60 + 30 + 30) * 1_000_000;
        let mut windows = merged(&cfgs, from);
        windows.truncate(90 * 5);
        let players = 22 * n;
        let mut su = setup(&cfgs);
        su.partitions = partitions;
        let p = Pipeline::start(su).await;
        let rss0 = p.rss("process");
        let proc_cpu0 = cpu_s(p.pid("process") as u32);
        let tansu_cpu0 = cpu_s(p.kafka.pid());
        let watch = MetricsWatch::start(&p);
        let probe = BrokerProbe::start(&p).await;
        let samples = feed::samples(&windows);
        let mut f = Feed::new(p.mqtt.port, due_now(windows), 1.0);
        f.play(1.0).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let rss1 = p.rss("process");
        let proc_cpu = cpu_s(p.pid("process") as u32) - proc_cpu0;
        let tansu_cpu = cpu_s(p.kafka.pid()) - tansu_cpu0;
        let seen = watch.finish();
        let mut hop = probe.finish();
        // Skip the first 10 s (players' first seconds, the pipeline warming up).
        let t_from = seen.first().map_or(0, |x| x.0) + 10_000_000;
        let seen: Vec<(i64, i64, i64)> = seen.into_iter().filter(|x| x.0 >= t_from).collect();
        let posts = chat_posts(&p);
        let ms = |us: i64| us as f64 / 1000.0;
        let mut lat: Vec<f64> = seen.iter().map(|(at, t, _)| ms(at - t)).collect();
        let mut chat: Vec<f64> = posts.iter().map(|(at, t)| ms(at - t)).collect();
        // A second is reported once the player's newest sample is past its end by the allowed
        // lateness (an event-time setting, not processing delay), and that sample leaves its
        // pod with its 200-ms batch. The pipeline's share starts when that batch was sent.
        // But the processor also moves a player's clock on by his silence while his partition
        // flows (`sideline-processor/src/flow.rs`), so the batch before can close the second:
        // when the snapshot was produced before that batch went out, the closing batch was the
        // one before it. (Within about one hop after the send the two cannot be told apart;
        // there the later batch is taken, so the share can still be understated by up to that.)
        let lateness = (Params::default().stream.allowed_lateness_s * 1e6) as i64;
        let sent = &f.sent;
        let closing_sent = |t: i64, made: i64| {
            let k = sent.partition_point(|(end, _)| *end <= t + lateness);
            let (_, at) = *sent.get(k)?;
            Some(match k.checked_sub(1) {
                Some(before) if made < at => sent[before].1,
                _ => at,
            })
        };
        let mut share: Vec<f64> = seen
            .iter()
            .filter_map(|(at, t, made)| Some(ms(at - closing_sent(*t, *made)?)))
            .collect();
        // The share split at the processor's produce call (record timestamps are in ms).
        let mut to_made: Vec<f64> = seen
            .iter()
            .filter_map(|(_, t, made)| Some(ms(made - closing_sent(*t, *made)?)))
            .collect();
        let mut made_to_read: Vec<f64> = seen.iter().map(|(at, _, made)| ms(at - made)).collect();
        // An alert also waits for the alerter's group wait (5 s by default: a team's alerts
        // share one message); it was raised no later than the POST less that wait.
        let group_wait = 5000.0;
        let wait_us = (group_wait * 1000.0) as i64;
        let mut chat_share: Vec<f64> = posts
            .iter()
            .filter_map(|(at, t)| Some(ms(at - closing_sent(*t, at - wait_us)?) - group_wait))
            .collect();
        println!(
            "pipeline's share (from the send of the pod batch that closes the second; for chat minus the {group_wait:.0}-ms group wait): sample → metrics p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; sample → chat p50 {:.0} ms, p99 {:.0} ms",
            pct(&mut share, 0.5),
            pct(&mut share, 0.99),
            pct(&mut share, 1.0),
            pct(&mut chat_share, 0.5),
            pct(&mut chat_share, 0.99),
        );
        println!(
            "  split: batch sent → processor produced the snapshot p50 {:.0} ms, p99 {:.0} ms; produced → read p50 {:.0} ms, p99 {:.0} ms",
            pct(&mut to_made, 0.5),
            pct(&mut to_made, 0.99),
            pct(&mut made_to_read, 0.5),
            pct(&mut made_to_read, 0.99),
        );
        println!(
            "{players} players, {:.0} samples/s: end of second → metrics p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} snapshots); → chat p50 {:.0} ms, p99 {:.0} ms ({} alerts); processor memory {:.1} MiB → {:.1} MiB, {:.0} KiB per player",
            samples as f64 / 90.0,
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            pct(&mut lat, 1.0),
            lat.len(),
            pct(&mut chat, 0.5),
            pct(&mut chat, 0.99),
            chat.len(),
            rss0 as f64 / 1048576.0,
            rss1 as f64 / 1048576.0,
            (rss1.saturating_sub(rss0)) as f64 / 1024.0 / players as f64,
        );
        println!(
            "same-run baseline, one Kafka hop (produce → read, a record every 100 ms beside the pipeline): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} records)",
            pct(&mut hop, 0.5),
            pct(&mut hop, 0.99),
            pct(&mut hop, 1.0),
            hop.len()
        );
        println!(
            "{}; CPU over the run: processor {proc_cpu:.1} CPU-s, tansu {tansu_cpu:.1} CPU-s",
            checkpoints(&p).await
        );
        f.close().await;
        if n == 10 && partitions.is_none() {
            recovery(p, cfgs).await;
        }
    }
}

/// The processor's checkpoints so far, from its `/metrics`: how many, mean and slowest bucket.
async fn checkpoints(p: &Pipeline) -> String {
    let body = e2e::common::http_get(p.addr("process"), "/metrics").await;
    let name = "sideline_processor_checkpoint_duration_seconds";
    let value = |suffix: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{suffix} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (n, sum) = (value("_count"), value("_sum"));
    let over = |le: &str| n - value(&format!("_bucket{{le=\"{le}\"}}"));
    format!(
        "processor checkpoints: {n:.0}, mean {:.0} ms, {:.0} over 100 ms, {:.0} over 250 ms, {:.0} over 1 s",
        if n > 0.0 { sum / n * 1000.0 } else { 0.0 },
        over("0.1"),
        over("0.25"),
        over("1"),
    )
}

async fn recovery(mut p: Pipeline, cfgs: Vec<MatchConfig>) {
    println!("\n== 3. Recovery: processor killed (-9) at 20 teams' load and restarted");
    let from = now_us() / 1_000_000 * 1_000_000;
    let mut windows = merged(&cfgs, from);
    windows.truncate(60 * 5);
    let mut f = Feed::new(p.mqtt.port, due_now(windows), 1.0);
    f.play(0.33).await;
    let watch = MetricsWatch::start(&p);
    p.kill9("process");
    let killed = Instant::now();
    let killed_us = now_us();
    tokio::time::sleep(Duration::from_secs(2)).await;
    p.restart("process").await;
    let restarted = killed.elapsed().as_secs_f64();
    let play = tokio::spawn(async move {
        f.play(1.0).await;
        f.close().await;
    });
    let mut caught_up = None;
    while caught_up.is_none() && killed.elapsed() < Duration::from_secs(120) {
        if p.processor_at_end().await {
            caught_up = Some(killed.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    play.await.unwrap();
    let seen = watch.finish();
    let fresh = seen
        .iter()
        .find(|(w, t, _)| *w > killed_us + 3_000_000 && w - t < 3_000_000)
        .map(|(w, _, _)| (w - killed_us) as f64 / 1e6);
    println!(
        "restarted {restarted:.1} s after the kill; every partition read to its end {} s after the kill; first second reported within 3 s again {} s after the kill",
        caught_up.map_or("—".into(), |s| format!("{s:.1}")),
        fresh.map_or("—".into(), |s| format!("{s:.1}")),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("model name\t: "))
            .unwrap_or("?")
    );
    // `SIDELINE_BENCH_PART=throughput`, `=latency` (with recovery) or `=broker` runs one part.
    let part = std::env::var("SIDELINE_BENCH_PART").unwrap_or_default();
    if part.is_empty() || part == "throughput" {
        throughput().await;
    }
    if part.is_empty() || part == "latency" {
        latency().await;
    }
    if part.is_empty() || part == "broker" {
        broker::run().await;
    }
}
