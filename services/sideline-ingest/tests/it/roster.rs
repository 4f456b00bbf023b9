//! The roster topic: assignments arriving live re-key a swapped pod's batches.

use crate::common;

use std::time::Duration;

use common::*;
use prost::Message as _;
use sideline_engine::{Batch, Sample};
use sideline_testkit::kafka::{produce, read_topic};
use sideline_wire::pb;

fn assignment(device: &str, player: &str, from: i64) -> (String, Option<Vec<u8>>) {
    let v = pb::DeviceAssignment {
        device_id: device.into(),
        player_id: player.into(),
        team_id: "home".into(),
        valid_from_us: from,
    };
    (format!("device:{device}"), Some(v.encode_to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_swapped_through_the_roster_topic_feeds_its_new_wearer() {
    let env = brokers();
    let empty = env.dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let svc = start(config(
        env.mqtt.port,
        &env.kafka.brokers(),
        &empty,
        "ingest-r",
    ))
    .await;
    // Ready once the (empty) roster topic has been read; the service created it.
    wait_ready(&svc, Duration::from_secs(60)).await;
    let t0 = now_us() - 10_000_000;
    produce(
        &env.kafka.brokers(),
        "sideline.roster.v1",
        &[assignment("pod-7", "alice", 0)],
    );
    wait_roster_records(&svc, 1).await;

    let p = Publisher::connect(env.mqtt.port, "pub-r").await;
    let batch = |seq, t| Batch {
        device: "pod-7".into(),
        team: "home".into(),
        session: "s".into(),
        seq,
        samples: vec![Sample::imu(t, 0.0, 0.0, 1.0)],
    };
    p.send(&batch(1, t0)).await;
    // At half-time the pod goes to bob.
    produce(
        &env.kafka.brokers(),
        "sideline.roster.v1",
        &[assignment("pod-7", "bob", t0 + 5_000_000)],
    );
    wait_roster_records(&svc, 2).await;
    p.send(&batch(2, t0 + 6_000_000)).await;
    // A late batch from before the swap still belongs to alice.
    p.send(&batch(3, t0 + 1_000_000)).await;
    p.close().await;

    let got = samples(&env.kafka.brokers(), 3, Duration::from_secs(20));
    let keys: Vec<(u64, String)> = {
        let mut k: Vec<_> = got.iter().map(|(key, b, _)| (b.seq, key.clone())).collect();
        k.sort();
        k
    };
    assert_eq!(
        keys,
        vec![(1, "alice".into()), (2, "bob".into()), (3, "alice".into())]
    );
    assert_eq!(
        metric(&svc, "sideline_ingest_roster_devices", "").await,
        1.0
    );
    // A record that is not a roster record is counted, not fatal.
    produce(
        &env.kafka.brokers(),
        "sideline.roster.v1",
        &[("coach:x".into(), Some(b"?".to_vec()))],
    );
    wait_roster_records(&svc, 3).await;
    assert_eq!(
        metric(&svc, "sideline_ingest_roster_bad_records_total", "").await,
        1.0
    );
    assert!(
        read_topic(
            &env.kafka.brokers(),
            "sideline.dlq.v1",
            1,
            Duration::from_secs(1)
        )
        .is_empty()
    );
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}

/// Wait until the service has read `n` records of the roster topic.
async fn wait_roster_records(svc: &Service, n: u64) {
    wait_metric(
        svc,
        "sideline_ingest_roster_records_total",
        n as f64,
        Duration::from_secs(30),
    )
    .await;
}
