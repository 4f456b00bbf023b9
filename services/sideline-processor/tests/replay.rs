//! A whole synthetic match replayed through Kafka gives what the engine gives offline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use sideline_testkit::Tansu;
use sideline_wire::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_replayed_through_kafka_gives_the_offline_totals_and_alerts() {
    let kafka = Tansu::start();
    let brokers = kafka.brokers();
    let cfg = config(&brokers, "replay");
    create_topics(&cfg.kafka).await;
    let mcfg = match_config();
    let (batches, sim) = match_batches(&mcfg);
    produce_profiles(&brokers, &cfg.kafka, &sim);
    let samples: usize = batches.iter().map(|(_, b)| b.samples.len()).sum();

    let t0 = Instant::now();
    let producer = test_producer(&brokers);
    produce_batches(&producer, &cfg.kafka.topics.samples, &batches);
    eprintln!(
        "produced {} batches ({samples} samples) in {:.1} s",
        batches.len(),
        t0.elapsed().as_secs_f64()
    );

    let t1 = Instant::now();
    let svc = start(cfg.clone()).await;
    wait_metric(
        &svc,
        "sideline_processor_samples_total",
        samples as f64,
        Duration::from_secs(900),
    )
    .await;
    eprintln!("processed in {:.1} s", t1.elapsed().as_secs_f64());
    // The final seconds close once the partitions are idle (idle advance + lateness).
    let offline = offline(&mcfg);
    wait_last_seconds(
        &brokers,
        &cfg.kafka.topics.metrics,
        &offline.last,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        svc.metric("sideline_processor_late_samples_total").await,
        0.0
    );
    let outputs = svc.outputs_expected().await;
    // A clean stop: every output acknowledged before it returns.
    svc.shutdown().await;
    let metrics = read_metrics(&brokers, &cfg.kafka.topics.metrics);
    let alerts = read_alerts(&brokers, &cfg.kafka.topics.alerts);
    assert_same_as_offline(&offline, &metrics, &alerts, outputs);

    // One snapshot per player per second of event time, none twice.
    let mut per_second: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for m in &metrics {
        assert_eq!(m.t_us % 1_000_000, 0, "snapshots on whole seconds");
        *per_second.entry((m.player_id.clone(), m.t_us)).or_default() += 1;
    }
    assert!(
        outputs != Outputs::Once || per_second.values().all(|&n| n == 1),
        "a second emitted twice"
    );
    // The same seconds as offline (a silent player stops being reported after a while). Up to
    // each player's last offline second: after the final whistle the live service goes on
    // reporting the silent squad for a while as the wall clock moves, offline just stops.
    let got: BTreeSet<(String, i64)> = per_second
        .into_keys()
        .filter(|(p, t)| offline.last.get(p).is_some_and(|m| *t <= m.t))
        .collect();
    let missing: Vec<_> = offline.seconds.difference(&got).take(10).collect();
    let extra: Vec<_> = got.difference(&offline.seconds).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "seconds missing {missing:?}, extra {extra:?}"
    );

    // The scripted scenario: home #7 gets "rising" before he crosses into red; the players
    // with no script raise no strain-risk, rising or sprint-spike alert.
    let firing = |kind: pb::alert::Kind, player: &str, sev: pb::alert::Severity| {
        alerts
            .iter()
            .filter(|a| a.kind == kind as i32 && a.player_id == player && a.severity == sev as i32)
            .filter(|a| a.state != pb::alert::State::Resolved as i32)
            .map(|a| a.t_us)
            .min()
    };
    use pb::alert::{Kind, Severity};
    let rising = firing(Kind::StrainRiskRising, "home-07", Severity::Warning).expect("rising");
    let red = firing(Kind::StrainRisk, "home-07", Severity::Critical).expect("red");
    assert!(
        red - rising >= 3 * 60 * 1_000_000,
        "rising only {} s before red",
        (red - rising) / 1_000_000
    );
    let scripted: BTreeSet<&str> = sim
        .players()
        .iter()
        .filter(|p| p.script != Default::default())
        .map(|p| p.player.as_str())
        .collect();
    assert!(scripted.contains("home-07"));
    let noisy: Vec<_> = alerts
        .iter()
        .filter(|a| !scripted.contains(a.player_id.as_str()))
        .filter(|a| {
            [Kind::StrainRisk, Kind::StrainRiskRising, Kind::SprintSpike]
                .iter()
                .any(|k| a.kind == *k as i32)
        })
        .map(|a| a.summary.clone())
        .collect();
    assert!(noisy.is_empty(), "steady players alerted: {noisy:#?}");
}
