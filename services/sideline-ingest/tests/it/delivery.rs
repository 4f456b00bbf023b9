//! Ingest against real brokers: every sample lands once, keyed by player, in order; bad input
//! is dead-lettered with the right reason while good input keeps flowing.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use prost::Message as _;
use sideline_engine::{Batch, Sample};
use sideline_testkit::kafka::read_topic;
use sideline_wire::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_of_a_match_lands_on_kafka_once_keyed_by_player_and_in_order() {
    let env = brokers();
    let (batches, sim) = short_match(60.0);
    let svc = start(config(
        env.mqtt.port,
        &env.kafka.brokers(),
        &env.roster(&sim),
        "ingest-a",
    ))
    .await;
    wait_ready(&svc, Duration::from_secs(60)).await;

    let publisher = Publisher::connect(env.mqtt.port, "pub-a").await;
    for b in &batches {
        publisher.send(b).await;
    }
    publisher.close().await;

    let records = samples(&env.kafka.brokers(), batches.len(), Duration::from_secs(30));
    let counts = counts(&records);
    let missing: Vec<_> = batches
        .iter()
        .filter(|b| !counts.contains_key(&(b.device.clone(), b.seq)))
        .map(|b| (&b.device, b.seq))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} batches missing, e.g. {:?}",
        missing.len(),
        batches.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        counts.values().all(|&n| n == 1),
        "duplicates: {:?}",
        counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(records.len(), batches.len());

    // Keyed by the player wearing the device; player id filled in; samples intact.
    let wearer: HashMap<&str, &str> = sim
        .players()
        .iter()
        .map(|p| (p.device.as_str(), p.player.as_str()))
        .collect();
    let sent: usize = batches.iter().map(|b| b.samples.len()).sum();
    let got: usize = records.iter().map(|(_, b, _)| b.samples.len()).sum();
    assert_eq!(got, sent);
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for (key, b, r) in &records {
        assert_eq!(key, wearer[b.device_id.as_str()]);
        assert_eq!(&b.player_id, key);
        assert!(b.received_at_us > 0);
        assert_eq!(
            *partition_of
                .entry(wearer[b.device_id.as_str()])
                .or_insert(r.partition),
            r.partition,
            "one partition per player"
        );
    }
    // In order per player: within a partition, each device's sequence numbers only increase.
    let mut by_partition = records.iter().collect::<Vec<_>>();
    by_partition.sort_by_key(|(_, _, r)| (r.partition, r.offset));
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (_, b, _) in by_partition {
        let prev = last.insert(b.device_id.as_str(), b.seq).unwrap_or(0);
        assert!(
            b.seq > prev,
            "device {} seq {} after {}",
            b.device_id,
            b.seq,
            prev
        );
    }

    assert_eq!(
        metric(&svc, "sideline_ingest_messages_accepted_total", "").await as usize,
        batches.len()
    );
    assert_eq!(
        metric(&svc, "sideline_ingest_samples_accepted_total", "").await as usize,
        sent
    );
    assert!(metric(&svc, "sideline_ingest_ack_latency_seconds_count", "").await > 0.0);
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}

fn pb_batch(device: &str, seq: u64, samples: Vec<Sample>) -> Batch {
    Batch {
        device: device.into(),
        team: "home".into(),
        session: "s".into(),
        seq,
        samples,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_dead_lettered_with_its_reason_and_good_input_keeps_flowing() {
    let env = brokers();
    let (_, sim) = short_match(2.0);
    let mut cfg = config(
        env.mqtt.port,
        &env.kafka.brokers(),
        &env.roster(&sim),
        "ingest-b",
    );
    cfg.ingest.max_payload_bytes = 4096;
    let svc = start(cfg).await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    let p = Publisher::connect(env.mqtt.port, "pub-b").await;
    let now = now_us();
    let t = "sideline/v1/home/pod-h01/imu";
    let good = |seq| pb_batch("pod-h01", seq, vec![Sample::imu(now, 0.1, 0.0, 1.0)]);

    // 1. malformed JSON
    p.raw(t, br#"{"device_id": "pod-h01", "samples": ["#.to_vec())
        .await;
    // 2. bytes that are not protobuf
    p.raw(t, vec![0xff, 0xff, 0xff, 0xff, 0x0f]).await;
    // 3. NaN in protobuf
    let mut nan = sideline_wire::convert::batch(&good(3));
    if let Some(pb::sample::Reading::Imu(m)) = &mut nan.samples[0].reading {
        m.ax_g = f32::NAN;
    }
    p.raw(t, nan.encode_to_vec()).await;
    // 4. out of range (heart rate 400 bpm)
    p.raw(
        "sideline/v1/home/pod-h01/hr",
        sideline_wire::topic::encode(
            &pb_batch("pod-h01", 4, vec![Sample::hr(now, 400.0)]),
            Default::default(),
        ),
    )
    .await;
    // 5. a device not on the roster
    p.raw(
        "sideline/v1/home/pod-zz/imu",
        sideline_wire::topic::encode(
            &pb_batch("pod-zz", 5, vec![Sample::imu(now, 0.0, 0.0, 1.0)]),
            Default::default(),
        ),
    )
    .await;
    // 6. an oversize payload (over the configured 4096 bytes)
    p.raw(t, vec![b' '; 10_000]).await;
    // 7. payload says another device than the topic
    p.raw(
        "sideline/v1/home/pod-h02/imu",
        sideline_wire::topic::encode(&good(7), Default::default()),
    )
    .await;
    // 8. a timestamp from the year 1990
    p.raw(
        t,
        sideline_wire::topic::encode(
            &pb_batch(
                "pod-h01",
                8,
                vec![Sample::imu(631_152_000_000_000, 0.0, 0.0, 1.0)],
            ),
            Default::default(),
        ),
    )
    .await;
    // 9. and a good batch after all that
    p.raw(
        t,
        sideline_wire::topic::encode(&good(9), Default::default()),
    )
    .await;
    p.close().await;

    let dlq = read_topic(
        &env.kafka.brokers(),
        "sideline.dlq.v1",
        8,
        Duration::from_secs(20),
    );
    let mut reasons: Vec<String> = dlq
        .iter()
        .map(|r| r.header("sideline.reason").unwrap())
        .collect();
    reasons.sort();
    let mut want = vec![
        "malformed",
        "malformed",
        "not_finite",
        "out_of_range",
        "unknown_device",
        "payload_too_large",
        "topic_mismatch",
        "bad_timestamp",
    ];
    want.sort();
    assert_eq!(reasons, want);
    for r in &dlq {
        assert!(
            r.header("sideline.mqtt_topic")
                .unwrap()
                .starts_with("sideline/v1/home/")
        );
        assert!(r.header("sideline.detail").is_some_and(|d| !d.is_empty()));
        assert!(
            r.header("sideline.received_at_us")
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > now - 60_000_000
        );
    }
    let big = dlq
        .iter()
        .find(|r| r.header("sideline.reason").as_deref() == Some("payload_too_large"))
        .unwrap();
    assert_eq!(
        big.value.as_ref().unwrap().len(),
        10_000,
        "under 64 KiB: kept whole"
    );
    let nan_detail = dlq
        .iter()
        .find(|r| r.header("sideline.reason").as_deref() == Some("not_finite"))
        .unwrap();
    assert!(
        nan_detail
            .header("sideline.detail")
            .unwrap()
            .contains("samples[0].imu.ax_g")
    );
    // The original payload is kept as it came.
    let json = dlq
        .iter()
        .find(|r| r.header("sideline.format").as_deref() == Some("json"))
        .unwrap();
    assert_eq!(
        json.value.as_deref().unwrap(),
        br#"{"device_id": "pod-h01", "samples": ["#
    );

    let ok = samples(&env.kafka.brokers(), 1, Duration::from_secs(10));
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].1.seq, 9);
    assert_eq!(
        metric(
            &svc,
            "sideline_ingest_messages_rejected_total",
            "reason=\"malformed\""
        )
        .await,
        2.0
    );
    assert_eq!(
        metric(&svc, "sideline_ingest_messages_rejected_total", "").await,
        8.0
    );
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}
