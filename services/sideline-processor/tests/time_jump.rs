//! One sample whose clock jumps 200 s ahead, in a live stream through Kafka: it is held, the
//! batches after it refute it, and it is dead-lettered as `time_jump`; no good sample after it
//! is refused as late, and every figure equals the offline run on the clean data. The match's
//! own half-time break (2 min, replayed with no pause) is a real jump: held, confirmed by the
//! batches after it, accepted whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use sideline_sim::MatchConfig;
use sideline_testkit::Tansu;
use sideline_testkit::kafka::TopicReader;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sample_far_ahead_is_dead_lettered_and_refuses_no_good_sample() {
    let kafka = Tansu::start();
    let brokers = kafka.brokers();
    let mut cfg = config(&brokers, "time-jump");
    cfg.kafka.partitions = 3;
    create_topics(&cfg.kafka).await;
    let mcfg = MatchConfig {
        half_min: 3.0,
        break_min: 2.0,
        ..MatchConfig::default()
    };
    let (mut batches, sim) = match_batches(&mcfg);
    produce_profiles(&brokers, &cfg.kafka, &sim);
    let samples: usize = batches.iter().map(|(_, b)| b.samples.len()).sum();

    // A pod's clock glitch: one extra position 200 s ahead, a minute into the match.
    let (key, b) = batches
        .iter_mut()
        .filter(|(k, _)| k == "home-07")
        .nth(60)
        .unwrap();
    let mut glitch = b
        .samples
        .iter()
        .find(|s| {
            matches!(
                s.reading,
                Some(sideline_wire::pb::sample::Reading::Position(_))
            )
        })
        .unwrap()
        .clone();
    glitch.t_us += 200_000_000;
    b.samples.push(glitch);
    let key = key.clone();

    let producer = test_producer(&brokers);
    produce_batches(&producer, &cfg.kafka.topics.samples, &batches);
    let svc = start(cfg.clone()).await;
    wait_metric(
        &svc,
        "sideline_processor_records_consumed_total",
        batches.len() as f64,
        Duration::from_secs(120),
    )
    .await;
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
        0.0,
        "good samples refused as late"
    );
    assert_eq!(
        svc.metric("sideline_processor_time_jump_samples_total")
            .await,
        1.0
    );
    assert_eq!(
        svc.metric("sideline_processor_samples_total").await,
        samples as f64,
        "every good sample accepted, the half-time jump included"
    );
    let outputs = svc.outputs_expected().await;
    svc.shutdown().await;

    // The glitch is on the DLQ with its reason, keyed by the player.
    let mut dlq = TopicReader::new(&brokers, &cfg.kafka.topics.dlq);
    dlq.catch_up();
    let jumps: Vec<_> = dlq
        .records()
        .iter()
        .filter(|r| r.headers.get("sideline.reason").map(Vec::as_slice) == Some(b"time_jump"))
        .collect();
    assert_eq!(jumps.len(), 1, "one time_jump dead letter");
    assert_eq!(jumps[0].key.as_deref(), Some(key.as_bytes()));

    let metrics = read_metrics(&brokers, &cfg.kafka.topics.metrics);
    let alerts = read_alerts(&brokers, &cfg.kafka.topics.alerts);
    assert_same_as_offline(&offline, &metrics, &alerts, outputs);
}
