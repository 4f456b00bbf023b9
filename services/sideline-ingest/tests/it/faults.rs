//! Ingest when things break: Kafka killed and restarted, Mosquitto restarted, two instances.

use crate::common;

use std::time::Duration;

use common::*;

/// Publish `batches` at roughly `per_sec` batches per second.
async fn paced(p: &Publisher, batches: &[sideline_engine::Batch], per_sec: f64) {
    let gap = Duration::from_secs_f64(1.0 / per_sec);
    let mut next = tokio::time::Instant::now();
    for b in batches {
        p.send(b).await;
        next += gap;
        tokio::time::sleep_until(next).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_kafka_mid_stream_loses_no_sample() {
    let mut env = brokers();
    let (batches, sim) = short_match(20.0);
    let svc = start(config(
        env.mqtt.port,
        &env.kafka.brokers(),
        &env.roster(&sim),
        "ingest-k",
    ))
    .await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    let p = Publisher::connect(env.mqtt.port, "pub-k").await;
    let third = batches.len() / 3;
    paced(&p, &batches[..third], 400.0).await;
    env.kafka.kill9();
    // While Kafka is down, messages keep arriving and wait unacknowledged.
    paced(&p, &batches[third..2 * third], 400.0).await;
    // Readiness notices within a few probe periods.
    let t0 = tokio::time::Instant::now();
    loop {
        let (code, body) = http_get(svc.http, "/readyz").await;
        if code == 503 {
            assert!(body.contains("\"kafka\":false"), "{body}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "still ready without Kafka: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.kafka.restart();
    paced(&p, &batches[2 * third..], 400.0).await;
    p.close().await;

    let records = samples(&env.kafka.brokers(), batches.len(), Duration::from_secs(60));
    let counts = counts(&records);
    let missing = missing(&batches, &counts);
    assert_eq!(
        missing,
        0,
        "{missing} of {} batches lost across the Kafka restart\n{}",
        batches.len(),
        env.kafka.log()
    );
    // At-least-once: a few may be repeated (resent after the restart); the engine drops them by (device, seq).
    let dups = records.len() - counts.len();
    assert!(dups <= batches.len() / 3, "{dups} duplicates");
    eprintln!(
        "kafka restart: {} batches, {dups} duplicates, produce retries {}, producer rebuilds {}",
        batches.len(),
        metric(
            &svc,
            "sideline_ingest_produce_retries_total",
            "class=\"retry\""
        )
        .await,
        metric(
            &svc,
            "sideline_ingest_produce_retries_total",
            "class=\"recreate\""
        )
        .await
    );
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_mosquitto_reconnects_resubscribes_and_continues() {
    let mut env = brokers();
    let (batches, sim) = short_match(10.0);
    let svc = start(config(
        env.mqtt.port,
        &env.kafka.brokers(),
        &env.roster(&sim),
        "ingest-m",
    ))
    .await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    let half = batches.len() / 2;
    let p = Publisher::connect(env.mqtt.port, "pub-m1").await;
    for b in &batches[..half] {
        p.send(b).await;
    }
    p.close().await;
    let before = samples(&env.kafka.brokers(), half, Duration::from_secs(20)).len();
    assert_eq!(before, half);

    env.mqtt.restart();
    // Reconnected (a second connect) and ready again (subscribed) without
    // being restarted itself.
    wait_metric(
        &svc,
        "sideline_ingest_mqtt_connects_total",
        2.0,
        Duration::from_secs(30),
    )
    .await;
    wait_ready(&svc, Duration::from_secs(30)).await;
    let p = Publisher::connect(env.mqtt.port, "pub-m2").await;
    for b in &batches[half..] {
        p.send(b).await;
    }
    p.close().await;
    let records = samples(&env.kafka.brokers(), batches.len(), Duration::from_secs(30));
    let counts = counts(&records);
    let missing = missing(&batches, &counts);
    assert_eq!(missing, 0, "{}", env.mqtt.log());
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_shared_subscription_split_the_work_and_lose_nothing() {
    let env = brokers();
    let (batches, sim) = short_match(20.0);
    let roster = env.roster(&sim);
    let shared = |id: &str| {
        let mut c = config(env.mqtt.port, &env.kafka.brokers(), &roster, id);
        c.subscribe.share_group = "sideline-ingest".into();
        c
    };
    let a = start(shared("ingest-1")).await;
    let b = start(shared("ingest-2")).await;
    wait_ready(&a, Duration::from_secs(60)).await;
    wait_ready(&b, Duration::from_secs(60)).await;
    let p = Publisher::connect(env.mqtt.port, "pub-s").await;
    for x in &batches {
        p.send(x).await;
    }
    p.close().await;
    let records = samples(&env.kafka.brokers(), batches.len(), Duration::from_secs(30));
    let counts = counts(&records);
    let missing = missing(&batches, &counts);
    assert_eq!(missing, 0);
    assert_eq!(records.len(), counts.len(), "no duplicates without faults");
    let (na, nb) = (
        metric(&a, "sideline_ingest_messages_accepted_total", "").await,
        metric(&b, "sideline_ingest_messages_accepted_total", "").await,
    );
    assert_eq!((na + nb) as usize, batches.len());
    assert!(
        na > 0.1 * batches.len() as f64 && nb > 0.1 * batches.len() as f64,
        "both receive work: {na} / {nb}"
    );
    for s in [a, b] {
        s.stop.cancel();
        s.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_kafka_is_down_at_most_max_inflight_messages_are_held_and_the_rest_wait_at_the_broker()
 {
    let mut env = brokers();
    let (batches, sim) = short_match(10.0);
    let mut cfg = config(
        env.mqtt.port,
        &env.kafka.brokers(),
        &env.roster(&sim),
        "ingest-bp",
    );
    cfg.ingest.max_inflight = 50;
    let svc = start(cfg).await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    env.kafka.kill9();
    let p = Publisher::connect(env.mqtt.port, "pub-bp").await;
    for b in &batches {
        p.send(b).await;
    }
    // The service takes messages until the cap, then leaves the rest at the broker.
    wait_metric(
        &svc,
        "sideline_ingest_inflight_messages",
        50.0,
        Duration::from_secs(30),
    )
    .await;
    let inflight = metric(&svc, "sideline_ingest_inflight_messages", "").await;
    let received = metric(&svc, "sideline_ingest_messages_received_total", "").await;
    assert!(inflight <= 50.0, "in flight {inflight}");
    assert!(
        received <= 50.0,
        "taken from the broker while Kafka is down: {received} of {}",
        batches.len()
    );
    env.kafka.restart();
    p.close().await;
    let records = samples(&env.kafka.brokers(), batches.len(), Duration::from_secs(60));
    let counts = counts(&records);
    let missing = missing(&batches, &counts);
    assert_eq!(missing, 0, "{missing} of {} lost", batches.len());
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_with_kafka_down_leaves_unfinished_messages_to_the_broker_and_a_restart_delivers_them()
 {
    let mut env = brokers();
    let (batches, sim) = short_match(4.0);
    let roster = env.roster(&sim);
    let mut cfg = config(env.mqtt.port, &env.kafka.brokers(), &roster, "ingest-sd");
    cfg.ingest.drain_timeout_s = 1;
    let svc = start(cfg.clone()).await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    env.kafka.kill9();
    let p = Publisher::connect(env.mqtt.port, "pub-sd").await;
    for b in &batches {
        p.send(b).await;
    }
    p.close().await;
    // Stop: nothing can reach Kafka, so after the drain timeout the in-flight messages are
    // abandoned unacknowledged; the broker keeps them for the session.
    svc.stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), svc.task)
        .await
        .expect("stops within the drain timeout")
        .unwrap()
        .unwrap();
    env.kafka.restart();
    // Same client id: the broker's session (and its unacknowledged messages) is ours again.
    let svc = start(cfg).await;
    let records = samples(&env.kafka.brokers(), batches.len(), Duration::from_secs(60));
    let counts = counts(&records);
    let missing = missing(&batches, &counts);
    assert_eq!(
        missing,
        0,
        "{missing} of {} lost across the shutdown",
        batches.len()
    );
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}

/// A clean restart (SIGTERM's path) while pods go on publishing: shutdown keeps the MQTT
/// session (no unsubscribe), so the broker queues what arrives meanwhile for the same client
/// id, and the new instance gets it. (Fails if shutdown unsubscribes: the broker drops every
/// message published until the new instance subscribes again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_while_pods_publish_loses_nothing() {
    let env = brokers();
    let (batches, sim) = short_match(12.0);
    let roster = env.roster(&sim);
    let cfg = config(env.mqtt.port, &env.kafka.brokers(), &roster, "ingest-clean");
    let svc = start(cfg.clone()).await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    let p = Publisher::connect(env.mqtt.port, "pub-clean").await;
    let third = batches.len() / 3;
    paced(&p, &batches[..third], 400.0).await;
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
    // Down: the pods go on.
    paced(&p, &batches[third..2 * third], 400.0).await;
    let svc = start(cfg).await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    paced(&p, &batches[2 * third..], 400.0).await;
    p.close().await;
    let records = samples(&env.kafka.brokers(), batches.len(), Duration::from_secs(60));
    let counts = counts(&records);
    let missing = missing(&batches, &counts);
    assert_eq!(
        missing,
        0,
        "{missing} of {} lost across a clean restart ({} published while it was down)",
        batches.len(),
        third
    );
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}

/// Two instances configured with one client id: the broker gives the session to whichever
/// connected last and closes the other's connection (Mosquitto 2.0 without a DISCONNECT).
/// Each says so — an ERROR log, a counter — and is not ready, instead of flapping silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_one_client_id_report_the_session_take_over() {
    let env = brokers();
    let (_, sim) = short_match(1.0);
    let roster = env.roster(&sim);
    let cfg = config(env.mqtt.port, &env.kafka.brokers(), &roster, "ingest-same");
    let a = start(cfg.clone()).await;
    wait_ready(&a, Duration::from_secs(60)).await;
    let b = start(cfg).await;
    const TAKEN: &str = "sideline_ingest_mqtt_session_taken_over_total";
    // b takes the session from a; after its back-off a takes it back from b; and so on.
    wait_metric(&a, TAKEN, 1.0, Duration::from_secs(30)).await;
    wait_metric(&b, TAKEN, 1.0, Duration::from_secs(30)).await;
    for (name, s) in [("a", &a), ("b", &b)] {
        let (code, body) = http_get(s.http, "/readyz").await;
        assert_eq!(
            code, 503,
            "{name} ready while its session is taken over: {body}"
        );
        assert!(body.contains("mqtt"), "{name}: {body}");
    }
    for s in [a, b] {
        s.stop.cancel();
        s.task.await.unwrap().unwrap();
    }
}

/// This process's resident memory: (now, peak so far), bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// A flood of large messages while Kafka is down: ingest holds at most `max_backlog_mb`
/// waiting and as much again being handled, the rest goes to the disk spool, and the
/// process's memory stays near that bound. (Before the byte bound, the same flood was all
/// held in memory: 1000 messages in flight of up to 16 MiB each were allowed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_messages_is_held_within_the_byte_bound_and_spooled() {
    const BOUND_MB: u64 = 8;
    const N: usize = 400;
    const SIZE: usize = 512 * 1024;
    let mut env = brokers();
    let (_, sim) = short_match(1.0);
    let mut cfg = config(
        env.mqtt.port,
        &env.kafka.brokers(),
        &env.roster(&sim),
        "ingest-flood",
    );
    let spool = tempfile::tempdir().unwrap();
    cfg.ingest.max_backlog_mb = BOUND_MB;
    cfg.ingest.spool_dir = spool.path().to_path_buf();
    let svc = start(cfg).await;
    wait_ready(&svc, Duration::from_secs(60)).await;
    env.kafka.kill9();
    let (before, _) = rss();
    let p = Publisher::connect(env.mqtt.port, "pub-flood").await;
    // One shared payload, so the publisher itself holds one copy.
    let payload = bytes::Bytes::from(vec![0x5a; SIZE]);
    let topic = format!("sideline/v1/home/{}/position", sim.players()[0].device);
    for _ in 0..N {
        p.client
            .publish(&topic, sideline_mqtt::QoS::AtLeastOnce, payload.clone())
            .await
            .unwrap();
    }
    // Read from the broker: in memory up to the bounds (16 messages being handled, 16 in the
    // hand-off, 16 waiting), the rest spooled.
    wait_metric(
        &svc,
        "sideline_ingest_mqtt_spilled_messages_total",
        (N - 48) as f64,
        Duration::from_secs(120),
    )
    .await;
    let spilled = metric(&svc, "sideline_ingest_mqtt_spilled_messages_total", "").await;
    let backlog = metric(&svc, "sideline_ingest_mqtt_memory_bytes", "backlog").await;
    let inflight = metric(&svc, "sideline_ingest_mqtt_memory_bytes", "inflight").await;
    let (_, peak) = rss();
    let grew_mb = peak.saturating_sub(before) as f64 / (1 << 20) as f64;
    eprintln!(
        "flood of {} MiB: spilled {spilled}, backlog {backlog} B, in flight {inflight} B, RSS grew {grew_mb:.1} MiB",
        (N * SIZE) >> 20
    );
    let bound = (BOUND_MB << 20) as f64 + SIZE as f64;
    assert!(backlog <= bound, "backlog {backlog} B over the bound");
    assert!(inflight <= bound, "in flight {inflight} B over the bound");
    // Held: 2 × 8 MiB, the 16-message hand-off (8 MiB), librdkafka's copies of what is in
    // flight, the publisher's buffers: measured 45–55 MiB, against 200 MiB for the flood
    // (without the byte bound the process grew by more than the flood).
    assert!(
        grew_mb < 100.0,
        "RSS grew {grew_mb:.1} MiB for a {} MiB flood",
        (N * SIZE) >> 20
    );
    p.close().await;
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}
