//! The processor as a real process (`sideline process`) killed with SIGKILL mid-match: the
//! restarted instance, or the surviving one of a group of two, restores the players' state
//! and the final figures equal the offline run's — nothing lost, nothing counted twice, no
//! alert under a second id.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sideline_processor::ProcessorConfig;
use sideline_sim::MatchConfig;
use sideline_testkit::Tansu;
use sideline_testkit::brokers::free_port;

/// A shorter match than the replay test's: the faults need volume, not the second-half script.
fn short_match() -> MatchConfig {
    MatchConfig {
        half_min: 12.0,
        break_min: 1.0,
        ..MatchConfig::default()
    }
}

/// `sideline process` as a child process; SIGKILLed when dropped.
struct Proc {
    child: Child,
    http: SocketAddr,
    name: &'static str,
}

impl Proc {
    fn spawn(cfg: &ProcessorConfig, dir: &Path, name: &'static str) -> Self {
        let mut cfg = cfg.clone();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        cfg.http.listen = http.to_string();
        // Rebalances and restores are logged at info: shown only when a test fails.
        cfg.log.level = "info".into();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sideline"))
            .arg("process")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Proc { child, http, name }
    }

    async fn metric(&self, name: &str) -> f64 {
        sum_metric(&http_get(self.http, "/metrics").await, name)
    }

    async fn wait_metric(&self, name: &str, at_least: f64, timeout: Duration) -> f64 {
        let t0 = Instant::now();
        loop {
            let v = self.metric(name).await;
            if v >= at_least {
                return v;
            }
            assert!(
                t0.elapsed() < timeout,
                "{}: {name} = {v}, waited {timeout:?} for {at_least}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until this instance holds `partitions` partitions and has consumed all of them to
    /// their end (lag from librdkafka's statistics, every 5 s).
    async fn wait_caught_up(&self, partitions: usize, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            let body = http_get(self.http, "/metrics").await;
            let lags: Vec<f64> = body
                .lines()
                .filter(|l| l.starts_with("sideline_processor_consumer_lag_records{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
                .collect();
            if lags.len() == partitions && lags.iter().all(|&l| l == 0.0) {
                return;
            }
            if t0.elapsed() >= timeout {
                let assigned = sum_metric(&body, "sideline_processor_assigned_partitions");
                let rejoins = sum_metric(&body, "sideline_processor_group_rejoins_total");
                panic!(
                    "{} not caught up after {timeout:?}: {assigned} partitions assigned, \
                     {rejoins} watchdog rejoins, lags {lags:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM: final checkpoint, clean exit.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{} did not stop",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Brokers, topics, profiles and the whole short match on the samples topic.
struct Setup {
    kafka: Tansu,
    cfg: ProcessorConfig,
    samples: f64,
    offline: Offline,
    dir: tempfile::TempDir,
}

async fn setup(group: &str) -> Setup {
    let kafka = Tansu::start();
    let brokers = kafka.brokers();
    let cfg = config(&brokers, group);
    create_topics(&cfg.kafka).await;
    let mcfg = short_match();
    let (batches, sim) = match_batches(&mcfg);
    produce_profiles(&brokers, &cfg.kafka, &sim);
    produce_batches(
        &test_producer(&brokers),
        &cfg.kafka.topics.samples,
        &batches,
    );
    let samples = batches.iter().map(|(_, b)| b.samples.len()).sum::<usize>() as f64;
    Setup {
        kafka,
        cfg,
        samples,
        offline: offline(&mcfg),
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    /// Wait until every player's last second is out: the final seconds close once the
    /// partitions are idle (idle advance + lateness).
    async fn wait_last_seconds(&self) {
        wait_last_seconds(
            &self.kafka.brokers(),
            &self.cfg.kafka.topics.metrics,
            &self.offline.last,
            Duration::from_secs(60),
        )
        .await;
    }

    fn check(&self) {
        let brokers = self.kafka.brokers();
        let t = &self.cfg.kafka.topics;
        let metrics = read_metrics(&brokers, &t.metrics);
        let alerts = read_alerts(&brokers, &t.alerts);
        assert_same_as_offline(
            &self.offline,
            &metrics,
            &alerts,
            Outputs::RepeatedIdentically,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_killed_mid_match_restarts_from_its_state_and_counts_nothing_twice() {
    let s = setup("kill9").await;
    let mut first = Proc::spawn(&s.cfg, s.dir.path(), "first");
    // Kill it when it is about 40 % through the match, between checkpoints.
    let at_kill = first
        .wait_metric(
            "sideline_processor_samples_total",
            0.4 * s.samples,
            Duration::from_secs(300),
        )
        .await;
    assert!(first.metric("sideline_processor_checkpoints_total").await >= 1.0);
    first.kill9();
    eprintln!("killed after {at_kill} of {} samples", s.samples);

    let t0 = Instant::now();
    let second = Proc::spawn(&s.cfg, s.dir.path(), "second");
    second.wait_caught_up(6, Duration::from_secs(300)).await;
    eprintln!(
        "caught up {:.1} s after the restart",
        t0.elapsed().as_secs_f64()
    );
    s.wait_last_seconds().await;
    assert!(second.metric("sideline_processor_restores_total").await >= 1.0);
    assert_eq!(
        second.metric("sideline_processor_late_samples_total").await,
        0.0
    );
    // Less than everything was processed again: the state, not a replay from the start,
    // carried the first instance's work.
    let again = second.metric("sideline_processor_samples_total").await;
    assert!(
        again < s.samples,
        "the restart re-processed the whole match"
    );
    second.terminate();
    s.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_processors_in_a_group_the_survivor_takes_over_the_killed_ones_players() {
    let s = setup("pair").await;
    let mut a = Proc::spawn(&s.cfg, s.dir.path(), "a");
    let b = Proc::spawn(&s.cfg, s.dir.path(), "b");
    // The partitions are split between the two.
    let t0 = Instant::now();
    loop {
        let (pa, pb) = (
            a.metric("sideline_processor_assigned_partitions").await,
            b.metric("sideline_processor_assigned_partitions").await,
        );
        if pa >= 1.0 && pb >= 1.0 && pa + pb == 6.0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "not split: a {pa}, b {pb}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Kill one once it has done some work and checkpointed it.
    a.wait_metric(
        "sideline_processor_checkpoints_total",
        2.0,
        Duration::from_secs(120),
    )
    .await;
    a.wait_metric(
        "sideline_processor_samples_total",
        0.15 * s.samples,
        Duration::from_secs(300),
    )
    .await;
    a.kill9();

    let t1 = Instant::now();
    b.wait_caught_up(6, Duration::from_secs(300)).await;
    eprintln!(
        "survivor caught up {:.1} s after the kill",
        t1.elapsed().as_secs_f64()
    );
    s.wait_last_seconds().await;
    assert!(b.metric("sideline_processor_restores_total").await >= 1.0);
    // The rebalance after the kill is eager: b gave its own partitions back before the six
    // were dealt again, and says so.
    assert!(
        b.metric("sideline_processor_partitions_revoked_total")
            .await
            >= 1.0
    );
    assert_eq!(b.metric("sideline_processor_late_samples_total").await, 0.0);
    b.terminate();
    s.check();
}

/// The window between a checkpoint and its outputs: Kafka holds the metrics and alerts back
/// (their partitions' leader, broker 1 of a librdkafka mock cluster, goes down) while the
/// state topic (broker 2) answers at once; the processor reads the rest of the match, takes
/// checkpoints, and is killed with SIGKILL. After a restart every (player, second) and every
/// alert event of the offline run is on its topic: no snapshot covered an output Kafka did
/// not have. (Fails if snapshots are produced before the outputs they follow are
/// acknowledged: the restart skips the records they cover and those seconds are never
/// produced.) A mock cluster, not tansu, because the fault needs one topic's partitions
/// unreachable and another's not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_held_back_by_kafka_at_a_kill_are_produced_after_the_restart() {
    use rdkafka::mocking::{MockCluster, MockCoordinator};

    let mock = MockCluster::new(2).unwrap();
    let brokers = mock.bootstrap_servers();
    let mut cfg = config(&brokers, "held-back");
    cfg.kafka.create_topics = false;
    let outputs = [
        cfg.kafka.topics.metrics.clone(),
        cfg.kafka.topics.alerts.clone(),
    ];
    for spec in sideline_kafka::topics::contract(&cfg.kafka) {
        mock.create_topic(&spec.name, spec.partitions, 1).unwrap();
        let leader = if outputs.contains(&spec.name) { 1 } else { 2 };
        for p in 0..spec.partitions {
            mock.partition_leader(&spec.name, p, Some(leader)).unwrap();
        }
    }
    mock.coordinator(MockCoordinator::Group("held-back".into()), 2)
        .unwrap();
    let mcfg = MatchConfig {
        half_min: 4.0,
        break_min: 0.5,
        ..MatchConfig::default()
    };
    let (batches, sim) = match_batches(&mcfg);
    produce_profiles(&brokers, &cfg.kafka, &sim);
    let samples = batches.iter().map(|(_, b)| b.samples.len()).sum::<usize>() as f64;
    let offline = offline(&mcfg);
    let dir = tempfile::tempdir().unwrap();

    // The first half goes through; then broker 1 goes down and the rest is read. The first
    // process never closes a second by the wall clock (its idle advance is longer than it
    // lives): the pause between the halves must not close seconds whose samples are still to
    // come, which would make them differ from the offline run for a reason of its own.
    let (first_half, rest) = batches.split_at(batches.len() / 2);
    let producer = test_producer(&brokers);
    produce_batches(&producer, &cfg.kafka.topics.samples, first_half);
    let mut patient = cfg.clone();
    patient.processor.idle_advance_s = 600;
    let mut first = Proc::spawn(&patient, dir.path(), "first");
    first
        .wait_metric(
            "sideline_processor_samples_total",
            first_half
                .iter()
                .map(|(_, b)| b.samples.len())
                .sum::<usize>() as f64,
            Duration::from_secs(120),
        )
        .await;
    // The whole first half committed before the fault: the mock keeps at most 5 MiB per
    // partition (librdkafka's rdkafka_mock.c) and drops the oldest records beyond that, so a
    // commit left behind the first half could point at records the mock has since dropped
    // (the restart would then skip them: a loss of the mock's making, seen under CPU load).
    let ends = watermarks(&brokers, &cfg.kafka.topics.samples, cfg.kafka.partitions).await;
    eventually_async("the first half committed", Duration::from_secs(120), || {
        let (brokers, group, topic) = (&brokers, "held-back", &cfg.kafka.topics.samples);
        let ends = &ends;
        async move {
            let committed = committed(brokers, group, topic, ends.len() as i32).await;
            committed.iter().zip(ends).all(|(c, (_, hi))| *c >= *hi)
        }
    })
    .await;
    mock.broker_down(1).unwrap();
    produce_batches(&producer, &cfg.kafka.topics.samples, rest);
    first
        .wait_metric(
            "sideline_processor_samples_total",
            samples,
            Duration::from_secs(120),
        )
        .await;
    // Checkpoints taken while the outputs before them wait (every 2 s here).
    let taken = first.metric("sideline_processor_checkpoints_waiting").await;
    first
        .wait_metric(
            "sideline_processor_checkpoints_waiting",
            taken + 2.0,
            Duration::from_secs(60),
        )
        .await;
    first.kill9();
    // Nothing the group has still to read was dropped by the mock's size limit.
    let lows = watermarks(&brokers, &cfg.kafka.topics.samples, cfg.kafka.partitions).await;
    let committed = committed(
        &brokers,
        "held-back",
        &cfg.kafka.topics.samples,
        cfg.kafka.partitions,
    )
    .await;
    for (p, ((lo, _), c)) in lows.iter().zip(&committed).enumerate() {
        assert!(
            lo <= c,
            "partition {p}: the mock dropped records up to {lo}, the group committed {c}: the test's data is too large for it"
        );
    }
    mock.broker_up(1).unwrap();

    let second = Proc::spawn(&cfg, dir.path(), "second");
    wait_last_seconds(
        &brokers,
        &cfg.kafka.topics.metrics,
        &offline.last,
        Duration::from_secs(120),
    )
    .await;
    second.terminate();
    let metrics = read_metrics(&brokers, &cfg.kafka.topics.metrics);
    let alerts = read_alerts(&brokers, &cfg.kafka.topics.alerts);
    let got: std::collections::BTreeSet<(String, i64)> = metrics
        .iter()
        .map(|m| (m.player_id.clone(), m.t_us))
        .collect();
    let missing: Vec<_> = offline.seconds.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{} (player, second) outputs never produced, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_same_as_offline(&offline, &metrics, &alerts, Outputs::RepeatedIdentically);
}

/// Low and high watermarks of each partition of `topic`.
async fn watermarks(brokers: &str, topic: &str, partitions: i32) -> Vec<(i64, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        (0..partitions)
            .map(|p| {
                c.fetch_watermarks(&topic, p, Duration::from_secs(10))
                    .unwrap()
            })
            .collect()
    })
    .await
    .unwrap()
}

/// The offsets `group` has committed on each partition of `topic` (-1 where none).
async fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (brokers, group, topic) = (brokers.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        (0..partitions)
            .map(
                |p| match got.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(rdkafka::Offset::Offset(o)) => o,
                    _ => -1,
                },
            )
            .collect()
    })
    .await
    .unwrap()
}

/// Wait for an async condition, polling.
async fn eventually_async<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !cond().await {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
