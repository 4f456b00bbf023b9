//! Bounded live state on a real broker: three consecutive sessions of the same squad leave
//! `/metrics` with one session's worth of `sideline_player_*` series at each step (never the
//! sessions before), a squad gone silent has its sessions closed (series removed), and once
//! forgotten each player's state on the state topic is deleted (a tombstone).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use sideline_sim::MatchConfig;
use sideline_testkit::Tansu;
use sideline_testkit::kafka::TopicReader;

/// (series, session labels, players) of the `sideline_player_*` families in a /metrics body.
fn player_series(body: &str) -> (usize, BTreeSet<String>, BTreeSet<String>) {
    let label = |l: &str, name: &str| -> Option<String> {
        let from = l.find(&format!("{name}=\""))? + name.len() + 2;
        let len = l[from..].find('"')?;
        Some(l[from..from + len].to_string())
    };
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("sideline_player_"))
        .collect();
    let sessions = lines.iter().filter_map(|l| label(l, "session")).collect();
    let players = lines.iter().filter_map(|l| label(l, "player")).collect();
    (lines.len(), sessions, players)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sessions_leave_one_sessions_series_and_silence_clears_them() {
    let kafka = Tansu::start();
    let brokers = kafka.brokers();
    let dir = tempfile::tempdir().unwrap();
    // The engine reports a silent player for idle_timeout + report_idle_for; shorter here so
    // that a session can close within the test.
    let params = dir.path().join("params.toml");
    std::fs::write(
        &params,
        "[stream]\nidle_timeout_s = 2\nreport_idle_for_s = 2\n",
    )
    .unwrap();
    let mut cfg = config(&brokers, "sessions");
    cfg.kafka.partitions = 3;
    cfg.processor.params_file = params;
    cfg.processor.session_idle_s = 12;
    cfg.processor.forget_after_s = 25;
    create_topics(&cfg.kafka).await;
    let svc = start(cfg.clone()).await;
    let producer = test_producer(&brokers);

    let mut consumed = 0;
    let mut worth = None;
    let mut squad = BTreeSet::new();
    for (k, session) in ["monday", "wednesday", "saturday"].into_iter().enumerate() {
        let mcfg = MatchConfig {
            half_min: 0.5,
            break_min: 0.0,
            session: session.into(),
            start: MatchConfig::default().start + k as i64 * 2 * 86_400_000_000,
            ..MatchConfig::default()
        };
        let (batches, _) = match_batches(&mcfg);
        squad = batches.iter().map(|(p, _)| p.clone()).collect();
        produce_batches(&producer, &cfg.kafka.topics.samples, &batches);
        consumed += batches.len();
        wait_metric(
            &svc,
            "sideline_processor_records_consumed_total",
            consumed as f64,
            Duration::from_secs(60),
        )
        .await;
        // Every player of this session shown, and no other session.
        let t0 = std::time::Instant::now();
        let (series, sessions) = loop {
            let (series, sessions, players) = player_series(&http_get(svc.http, "/metrics").await);
            if players == squad && sessions.len() == 1 && sessions.contains(session) {
                break (series, sessions);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{session}: sessions {sessions:?}, {} of {} players shown",
                players.len(),
                squad.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!("{session}: {series} series of {sessions:?}");
        assert_eq!(*worth.get_or_insert(series), series, "after {session}");
    }
    assert_eq!(worth.unwrap() % squad.len(), 0);
    assert_eq!(
        svc.metric("sideline_processor_players").await,
        squad.len() as f64
    );

    // Silent: every session closes, every series goes.
    wait_metric(
        &svc,
        "sideline_processor_sessions_closed_total",
        squad.len() as f64,
        Duration::from_secs(60),
    )
    .await;
    let (series, sessions, _) = player_series(&http_get(svc.http, "/metrics").await);
    assert_eq!((series, sessions.len()), (0, 0), "{sessions:?}");

    // Forgotten: engines dropped, and each player's latest state record is a tombstone.
    wait_metric(
        &svc,
        "sideline_processor_players_forgotten_total",
        squad.len() as f64,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(svc.metric("sideline_processor_players").await, 0.0);
    // The tombstones are produced at the next checkpoint.
    let mut state = TopicReader::new(&brokers, &cfg.kafka.topics.state);
    eventually(
        "tombstones on the state topic",
        Duration::from_secs(30),
        || {
            state.catch_up();
            let mut last = std::collections::HashMap::new();
            for r in state.records() {
                last.insert(r.key_str(), r.value.is_none());
            }
            squad.iter().all(|p| last.get(p) == Some(&true))
        },
    )
    .await;
    svc.shutdown().await;
}
