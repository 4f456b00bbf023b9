//! Harness for the processor tests: a real tansu, the synthetic match produced to the samples
//! topic as ingest would, profiles and baselines on their compacted topics, the offline run to
//! compare with, and readers for the output topics.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use sideline_engine::{AlertEvent, Params, PlayerMetrics};
use sideline_kafka::KafkaConfig;
use sideline_processor::ProcessorConfig;
use sideline_sim::{MatchConfig, MatchSim};
use sideline_testkit::kafka::TopicReader;
use sideline_wire::convert;
use sideline_wire::pb;

/// The match used by the processor tests: the whole 90 minutes (the at-risk scenario needs the
/// second half) with the break shortened; pods batch 1 s.
pub fn match_config() -> MatchConfig {
    MatchConfig {
        break_min: 1.0,
        ..MatchConfig::default()
    }
}

/// Every device batch of the match, with the wearer filled in as ingest does.
pub fn match_batches(cfg: &MatchConfig) -> (Vec<(String, pb::SampleBatch)>, MatchSim) {
    let mut sim = MatchSim::new(cfg.clone());
    let wearer: HashMap<String, String> = sim
        .players()
        .iter()
        .map(|p| (p.device.clone(), p.player.clone()))
        .collect();
    let mut out = Vec::new();
    while let Some(batches) = sim.next_batches() {
        for b in batches {
            let player = wearer[&b.device].clone();
            let mut m = convert::batch(&b);
            m.player_id = player.clone();
            out.push((player, m));
        }
    }
    (out, MatchSim::new(cfg.clone()))
}

/// A fast producer for test input.
pub fn test_producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .unwrap()
}

/// Produce `batches[range]` to the samples topic keyed by player and wait for Kafka.
pub fn produce_batches(
    p: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    batches: &[(String, pb::SampleBatch)],
) {
    for (key, b) in batches {
        let bytes = b.encode_to_vec();
        let mut rec: BaseRecord<'_, String, Vec<u8>> =
            BaseRecord::to(topic).key(key).payload(&bytes);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
}

/// Profiles (roster topic, key `player:<id>`) and baselines of the simulated squads.
pub fn produce_profiles(brokers: &str, k: &KafkaConfig, sim: &MatchSim) {
    produce_roster(brokers, k, sim);
    let baselines: Vec<_> = sim
        .players()
        .iter()
        .map(|p| {
            let b = convert::baseline_to_pb(&p.player, &p.baseline, "2026-01-09");
            (p.player.clone(), Some(b.encode_to_vec()))
        })
        .collect();
    sideline_testkit::kafka::produce(brokers, &k.topics.baselines, &baselines);
}

/// Profiles only (roster topic, key `player:<id>`) of the simulated squads.
pub fn produce_roster(brokers: &str, k: &KafkaConfig, sim: &MatchSim) {
    let roster: Vec<_> = sim
        .players()
        .iter()
        .map(|p| {
            let v = convert::profile_to_pb(&p.profile).encode_to_vec();
            (format!("player:{}", p.player), Some(v))
        })
        .collect();
    sideline_testkit::kafka::produce(brokers, &k.topics.roster, &roster);
}

/// Create the contract's topics (as a service would at start-up).
pub async fn create_topics(k: &KafkaConfig) {
    let stop = sideline_common::CancellationToken::new();
    assert!(
        sideline_kafka::topics::ensure_contract_until_ready(k, "test-admin", &stop)
            .await
            .unwrap()
    );
}

/// The processor configuration for tests.
pub fn config(brokers: &str, group: &str) -> ProcessorConfig {
    let mut c: ProcessorConfig =
        sideline_common::config::load(sideline_processor::config::DEFAULTS, None).unwrap();
    c.kafka.brokers = brokers.into();
    c.kafka.partitions = 6;
    c.processor.group_id = group.into();
    c.processor.checkpoint_interval_s = 2;
    c.processor.tick_interval_ms = 100;
    c.processor.idle_advance_s = 2;
    c.processor.orphan_grace_s = 15;
    c.http.listen = "127.0.0.1:0".into();
    c
}

/// What the engine gives offline on the same match, with the same roster, profiles and
/// baselines.
pub struct Offline {
    /// Each player's last snapshot.
    pub last: BTreeMap<String, PlayerMetrics>,
    /// Every alert event.
    pub alerts: Vec<AlertEvent>,
    /// Every (player, second) with a snapshot.
    pub seconds: BTreeSet<(String, i64)>,
}

/// Run the match offline.
pub fn offline(cfg: &MatchConfig) -> Offline {
    let mut seconds = BTreeSet::new();
    let run = sideline_sim::offline::run_match(cfg.clone(), Params::default(), |m| {
        seconds.insert((m.player.to_string(), m.t));
    });
    Offline {
        last: run.last,
        alerts: run.alerts,
        seconds,
    }
}

/// Every snapshot on the metrics topic now (every partition read to its end), decoded. Call it
/// once the outputs are complete (e.g. after [`wait_last_seconds`] and a clean stop).
pub fn read_metrics(brokers: &str, topic: &str) -> Vec<pb::PlayerMetrics> {
    let mut r = TopicReader::new(brokers, topic);
    r.catch_up();
    r.records()
        .iter()
        .map(|r| pb::PlayerMetrics::decode(r.value.as_deref().unwrap()).unwrap())
        .collect()
}

/// Every alert event on the alerts topic now, decoded (see [`read_metrics`]).
pub fn read_alerts(brokers: &str, topic: &str) -> Vec<pb::Alert> {
    let mut r = TopicReader::new(brokers, topic);
    r.catch_up();
    r.records()
        .iter()
        .map(|r| pb::Alert::decode(r.value.as_deref().unwrap()).unwrap())
        .collect()
}

/// Wait until the metrics topic holds each player's last second of `last` (the offline run's
/// final snapshots): the pipeline has closed every second it will report. Polled, reading only
/// what is new each time.
pub async fn wait_last_seconds(
    brokers: &str,
    topic: &str,
    last: &BTreeMap<String, PlayerMetrics>,
    timeout: Duration,
) {
    let mut reader = TopicReader::new(brokers, topic);
    let mut latest: HashMap<String, i64> = HashMap::new();
    let t0 = Instant::now();
    loop {
        let seen = reader.records().len();
        tokio::task::block_in_place(|| reader.catch_up());
        for r in &reader.records()[seen..] {
            let m = pb::PlayerMetrics::decode(r.value.as_deref().unwrap()).unwrap();
            let t = latest.entry(m.player_id).or_insert(m.t_us);
            *t = (*t).max(m.t_us);
        }
        let behind: Vec<(&String, Option<&i64>, i64)> = last
            .iter()
            .filter(|(p, m)| latest.get(*p).is_none_or(|t| *t < m.t))
            .map(|(p, m)| (p, latest.get(p), m.t))
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < timeout,
            "after {timeout:?} players lack their last second (player, latest, wanted): {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait for `cond`, polling.
pub async fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A processor running in this process.
pub struct Service {
    pub stop: sideline_common::CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), sideline_processor::ProcessorError>>,
    pub http: std::net::SocketAddr,
}

/// Start the processor (logs: RUST_LOG=sideline_processor=debug … -- --nocapture).
pub async fn start(cfg: ProcessorConfig) -> Service {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let stop = sideline_common::CancellationToken::new();
    let task = tokio::spawn(sideline_processor::run(cfg, listener, stop.clone()));
    Service { stop, task, http }
}

impl Service {
    /// Graceful stop: final checkpoint, then return.
    pub async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("processor did not stop")
            .unwrap()
            .unwrap();
    }

    /// What repeats to allow, read before the stop: every output exactly once unless the run
    /// was in fact interrupted — the group took partitions away (a starved 2-core machine can
    /// miss heartbeats for the session timeout), the watchdog rejoined, or an output failure
    /// restarted the processor — in which case repeats must be identical.
    pub async fn outputs_expected(&self) -> Outputs {
        let revoked = self
            .metric("sideline_processor_partitions_revoked_total")
            .await;
        let rejoins = self.metric("sideline_processor_group_rejoins_total").await;
        let restarts = self.metric("sideline_processor_restarts_total").await;
        if revoked + rejoins + restarts > 0.0 {
            eprintln!(
                "the run was interrupted ({revoked} partitions revoked, {rejoins} rejoins, \
                 {restarts} restarts): repeats allowed if identical"
            );
            Outputs::RepeatedIdentically
        } else {
            Outputs::Once
        }
    }

    /// One value from /metrics (sum over label sets), 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let body = http_get(self.http, "/metrics").await;
        sum_metric(&body, name)
    }
}

/// Sum every sample of `name` in a Prometheus text body.
pub fn sum_metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// GET a path over plain HTTP/1.1.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body).await;
    body
}

/// POST an `application/x-www-form-urlencoded` body over plain HTTP/1.1 (with `extra`
/// header lines, each ending in CRLF).
pub async fn http_post_form(
    addr: std::net::SocketAddr,
    path: &str,
    body: &str,
    extra: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out
}

/// Wait until a /metrics value reaches `at_least`.
pub async fn wait_metric(svc: &Service, name: &str, at_least: f64, timeout: Duration) {
    let t0 = Instant::now();
    loop {
        let v = svc.metric(name).await;
        if v >= at_least {
            return;
        }
        assert!(
            t0.elapsed() < timeout,
            "{name} = {v}, waited {timeout:?} for {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An alert event reduced to what must be identical between runs.
pub type AlertKey = (String, i32, i32, i32, i64);

/// (id, kind, state, severity, event time) of an alert event.
pub fn alert_key(a: &pb::Alert) -> AlertKey {
    (a.id.clone(), a.kind, a.state, a.severity, a.t_us)
}

/// The newest snapshot of each player.
pub fn latest(metrics: &[pb::PlayerMetrics]) -> BTreeMap<String, pb::PlayerMetrics> {
    let mut out: BTreeMap<String, pb::PlayerMetrics> = BTreeMap::new();
    for m in metrics {
        let e = out.entry(m.player_id.clone()).or_insert_with(|| m.clone());
        if m.t_us > e.t_us {
            *e = m.clone();
        }
    }
    out
}

/// How outputs may repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// An uninterrupted run: every output exactly once.
    Once,
    /// After a crash the outputs since the last checkpoint are produced again: a repeat must
    /// be identical to the first copy (same id, same values), never a new id or new figures.
    RepeatedIdentically,
}

/// Check the processor's outputs against the offline run: every player's final totals equal,
/// every alert event of the offline run present (once, or repeated identically) with the same
/// id, state and time, and the only extra events being the session-end resolutions that come
/// after the final whistle.
pub fn assert_same_as_offline(
    offline: &Offline,
    metrics: &[pb::PlayerMetrics],
    alerts: &[pb::Alert],
    outputs: Outputs,
) {
    // A second reported twice carries the same figures both times.
    let mut first: HashMap<(&str, i64), &pb::PlayerMetrics> = HashMap::new();
    let mut repeated = Vec::new();
    for m in metrics {
        if let Some(prev) = first.insert((m.player_id.as_str(), m.t_us), m) {
            repeated.push((m.player_id.as_str(), m.t_us));
            assert_eq!(prev, m, "a second reported twice with different figures");
        }
    }
    if outputs == Outputs::Once {
        assert!(
            repeated.is_empty(),
            "{} seconds reported twice in an uninterrupted run, e.g. {:?}",
            repeated.len(),
            &repeated[..repeated.len().min(10)]
        );
    }
    let got = latest(metrics);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        offline.last.keys().collect::<Vec<_>>(),
        "players"
    );
    let mut bad = Vec::new();
    for (player, want) in &offline.last {
        let want = convert::metrics(want).totals;
        if got[player].totals != want {
            bad.push(format!(
                "{player}:\n  processor {:?}\n  offline   {:?}",
                got[player].totals, want
            ));
        }
    }
    assert!(bad.is_empty(), "totals differ:\n{}", bad.join("\n"));

    let end = offline.last.values().map(|m| m.t).max().unwrap();
    let want: Vec<AlertKey> = offline
        .alerts
        .iter()
        .map(|a| alert_key(&convert::alert(a)))
        .collect();
    let mut seen: HashMap<AlertKey, usize> = HashMap::new();
    for a in alerts {
        *seen.entry(alert_key(a)).or_default() += 1;
    }
    let missing: Vec<_> = want.iter().filter(|k| !seen.contains_key(*k)).collect();
    assert!(missing.is_empty(), "alert events missing: {missing:#?}");
    if outputs == Outputs::Once {
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "alert events emitted twice: {twice:#?}");
    }
    let wanted: std::collections::HashSet<&AlertKey> = want.iter().collect();
    let extra: Vec<_> = alerts
        .iter()
        .filter(|a| !wanted.contains(&alert_key(a)))
        .filter(|a| {
            !(a.state == pb::alert::State::Resolved as i32
                && a.resolution == pb::alert::Resolution::SessionEnded as i32
                && a.t_us > end)
        })
        .map(|a| (a.id.clone(), a.summary.clone(), a.t_us))
        .collect();
    assert!(
        extra.is_empty(),
        "alert events the offline run lacks: {extra:#?}"
    );
    // Every id belongs to one (player, kind, since): no event re-issued under another id.
    let mut ids: HashMap<(String, i32, i64), std::collections::HashSet<String>> = HashMap::new();
    for a in alerts {
        ids.entry((a.player_id.clone(), a.kind, a.since_us))
            .or_default()
            .insert(a.id.clone());
    }
    assert!(
        ids.values().all(|s| s.len() == 1),
        "one alert, several ids: {ids:?}"
    );
}
