//! A lineup change on the roster topic reaches the live processor: a starter taken off after
//! two minutes of a six-minute match stops accruing there, his pod still streaming, exactly as
//! the offline engine with the same lineup says — and unlike the offline engine without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use sideline_engine::{Engine, Params};
use sideline_sim::MatchConfig;
use sideline_testkit::Tansu;
use sideline_wire::lineup::PitchChange;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_substitution_on_the_roster_topic_stops_the_starter_s_minutes() {
    let kafka = Tansu::start();
    let brokers = kafka.brokers();
    let cfg = config(&brokers, "lineup");
    create_topics(&cfg.kafka).await;
    let mcfg = MatchConfig {
        half_min: 3.0,
        break_min: 0.5,
        ..MatchConfig::default()
    };
    let (batches, sim) = match_batches(&mcfg);
    produce_profiles(&brokers, &cfg.kafka, &sim);
    // home-10 goes off at 2′ (his pod keeps streaming from the bench).
    let off = PitchChange {
        team: "home".into(),
        session: mcfg.session.clone(),
        player: "home-10".into(),
        at_us: mcfg.start + 120_000_000,
        on: false,
        by: "Dr Lee".into(),
    };
    sideline_testkit::kafka::produce(
        &brokers,
        &cfg.kafka.topics.roster,
        &[(off.key(), Some(off.encode()))],
    );
    let samples: usize = batches.iter().map(|(_, b)| b.samples.len()).sum();
    let svc = start(cfg.clone()).await;
    // Ready: the roster topic has been read to its end, the change applied, before the
    // samples flow.
    let t0 = std::time::Instant::now();
    while !http_get(svc.http, "/readyz")
        .await
        .starts_with("HTTP/1.1 200")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the processor is not ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    produce_batches(
        &test_producer(&brokers),
        &cfg.kafka.topics.samples,
        &batches,
    );
    wait_metric(
        &svc,
        "sideline_processor_samples_total",
        samples as f64,
        Duration::from_secs(300),
    )
    .await;

    // Offline, with and without the lineup.
    let run = |lineup: bool| {
        let sim = sideline_sim::MatchSim::new(mcfg.clone());
        let mut e: Engine = sideline_sim::offline::engine_for(&sim, Params::default());
        if lineup {
            e.set_pitch(&off.session, &off.player, off.at_us, Some(false));
        }
        sideline_sim::offline::run_engine(sim, e, |_| {}).last
    };
    let with = run(true);
    let without = run(false);
    wait_last_seconds(
        &brokers,
        &cfg.kafka.topics.metrics,
        &with,
        Duration::from_secs(60),
    )
    .await;
    svc.shutdown().await;
    let live = read_metrics(&brokers, &cfg.kafka.topics.metrics)
        .into_iter()
        .filter(|m| m.player_id == "home-10")
        .max_by_key(|m| m.t_us)
        .unwrap()
        .totals
        .unwrap();
    let want = &with["home-10"].totals;
    assert!((want.minutes - 2.0).abs() < 0.05, "{}", want.minutes);
    assert!((without["home-10"].totals.minutes - 6.0).abs() < 0.05);
    assert!(
        (live.minutes - want.minutes).abs() < 1e-6
            && (live.distance_m - want.distance_m).abs() < 1e-6
            && (live.off_pitch_min - want.off_pitch_min).abs() < 1e-6,
        "live {} min {} m ({} off), offline {} min {} m ({} off)",
        live.minutes,
        live.distance_m,
        live.off_pitch_min,
        want.minutes,
        want.distance_m,
        want.off_pitch_min
    );
}
