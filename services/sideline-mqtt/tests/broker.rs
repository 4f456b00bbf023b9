//! The MQTT layer against a real Mosquitto.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, MqttConfig, Protocol, QoS, connect, run_event_loop};
use sideline_testkit::Mosquitto;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn cfg(port: u16, protocol: Protocol) -> MqttConfig {
    MqttConfig {
        port,
        protocol,
        reconnect_min_ms: 50,
        reconnect_max_ms: 400,
        keep_alive_s: 5,
        ..MqttConfig::default()
    }
}

const OPTS: ConnectOptions = ConnectOptions {
    manual_acks: true,
    request_capacity: 100,
    receive_maximum: Some(50),
};

async fn publish_n(port: u16, protocol: Protocol, prefix: &str, n: usize) {
    let (client, el) = connect(
        &cfg(port, protocol),
        &format!("pub-{prefix}"),
        ConnectOptions {
            manual_acks: false,
            ..OPTS
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    let status = Arc::new(ConnectionStatus::default());
    let task = tokio::spawn(run_event_loop(
        el,
        client.clone(),
        vec![],
        None,
        Arc::clone(&status),
        (Duration::from_millis(50), Duration::from_millis(400)),
        1000,
        stop.clone(),
    ));
    for i in 0..n {
        client
            .publish(
                "sideline/v1/t/pod/imu",
                QoS::AtLeastOnce,
                Bytes::from(format!("{prefix}-{i}")),
            )
            .await
            .unwrap();
    }
    // Let the QoS 1 publishes complete (the broker acknowledged each) before disconnecting.
    let t0 = std::time::Instant::now();
    while status.acked.load(Ordering::Relaxed) < n as u64 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "publishes not acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.disconnect().await.unwrap();
    // The disconnect is sent before the loop stops.
    while status.connected.load(Ordering::Relaxed) {
        assert!(t0.elapsed() < Duration::from_secs(30), "still connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    task.await.unwrap();
}

async fn receive(
    rx: &mut mpsc::Receiver<sideline_mqtt::Message>,
    client: &sideline_mqtt::Client,
    n: usize,
) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("message in time")
            .unwrap();
        client.ack(&m.ack).await.unwrap();
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    got
}

/// A subscriber to `filter` with manual acknowledgements, connected and subscribed.
struct Sub {
    client: sideline_mqtt::Client,
    rx: mpsc::Receiver<sideline_mqtt::Message>,
    status: Arc<ConnectionStatus>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn subscriber(
    port: u16,
    protocol: Protocol,
    id: &str,
    filter: &str,
    backoff: (Duration, Duration),
) -> Sub {
    let (client, el) = connect(&cfg(port, protocol), id, OPTS).unwrap();
    let (tx, rx) = mpsc::channel(100);
    let status = Arc::new(ConnectionStatus::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_event_loop(
        el,
        client.clone(),
        vec![(filter.into(), QoS::AtLeastOnce)],
        Some(tx),
        Arc::clone(&status),
        backoff,
        1000,
        stop.clone(),
    ));
    wait_subscribed(&status).await;
    Sub {
        client,
        rx,
        status,
        stop,
        task,
    }
}

/// Waits until the broker has granted the subscription (no sleep-and-hope: a message
/// published before the SubAck may match nothing and be dropped).
async fn wait_subscribed(status: &ConnectionStatus) {
    let t0 = std::time::Instant::now();
    while !status.subscribed.load(Ordering::Relaxed) {
        assert!(t0.elapsed() < Duration::from_secs(15), "not subscribed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(status.connected.load(Ordering::Relaxed));
}

const FAST: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(400));

async fn reconnects_and_resubscribes(protocol: Protocol) {
    let mut broker = Mosquitto::start();
    let Sub {
        client,
        mut rx,
        status,
        stop,
        task,
    } = subscriber(broker.port, protocol, "sub-1", "sideline/v1/+/+/+", FAST).await;
    publish_n(broker.port, protocol, "before", 20).await;
    let got = receive(&mut rx, &client, 20).await;
    assert_eq!(
        got,
        (0..20).map(|i| format!("before-{i}")).collect::<Vec<_>>(),
        "in order"
    );

    broker.restart();
    let t0 = std::time::Instant::now();
    while status.connects.load(Ordering::Relaxed) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(15), "did not reconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(status.errors.load(Ordering::Relaxed) >= 1);
    wait_subscribed(&status).await;
    publish_n(broker.port, protocol, "after", 10).await;
    let got = receive(&mut rx, &client, 10).await;
    assert_eq!(got.len(), 10, "subscribed again after the restart");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn mqtt5_reconnects_and_resubscribes_after_a_broker_restart() {
    reconnects_and_resubscribes(Protocol::V5).await;
}

#[tokio::test]
async fn mqtt311_reconnects_and_resubscribes_after_a_broker_restart() {
    reconnects_and_resubscribes(Protocol::V311).await;
}

#[tokio::test]
async fn a_dead_broker_is_retried_with_backoff_not_in_a_tight_loop() {
    let port = sideline_testkit::free_port();
    let (client, el) = connect(&cfg(port, Protocol::V5), "sub-2", OPTS).unwrap();
    let status = Arc::new(ConnectionStatus::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_event_loop(
        el,
        client,
        vec![],
        None,
        Arc::clone(&status),
        (Duration::from_millis(50), Duration::from_millis(400)),
        1000,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    task.await.unwrap();
    let errors = status.errors.load(Ordering::Relaxed);
    // 50, 100, 200, 400, 400… ms (+ jitter): well under 20 attempts in 2 s, at least 3.
    assert!((3..20).contains(&errors), "{errors} attempts in 2 s");
}

/// Messages a subscriber `filter` receives when they are published after a broker restart but
/// before the subscriber has reconnected (its back-off is longer than the restart).
async fn published_before_resubscribing(filter: &str) -> usize {
    let mut broker = Mosquitto::start();
    let late = (Duration::from_secs(3), Duration::from_secs(3));
    let Sub {
        client,
        mut rx,
        status,
        stop,
        task,
    } = subscriber(broker.port, Protocol::V5, "sub-late", filter, late).await;
    broker.restart();
    publish_n(broker.port, Protocol::V5, "early", 20).await;
    assert_eq!(
        status.connects.load(Ordering::Relaxed),
        1,
        "reconnected too soon"
    );
    // The connection broke with the restart: no longer counted as subscribed.
    assert!(status.errors.load(Ordering::Relaxed) >= 1);
    assert!(!status.subscribed.load(Ordering::Relaxed));
    let mut got = 0;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(8), rx.recv()).await {
        client.ack(&m.ack).await.unwrap();
        got += 1;
    }
    assert_eq!(status.connects.load(Ordering::Relaxed), 2);
    stop.cancel();
    task.await.unwrap();
    got
}

/// Why ingest's default is a plain subscription (README, "No loss, bounded memory"): Mosquitto
/// keeps a persistent session's plain subscription across its own restart and queues for it,
/// but does not save shared subscriptions, so it drops what arrives before the re-subscription.
/// If this fails on the shared side, the broker has fixed it: revisit `subscribe.share_group`.
#[tokio::test]
async fn across_a_broker_restart_a_plain_subscription_keeps_early_messages_a_shared_one_does_not() {
    let plain = published_before_resubscribing("sideline/v1/+/+/+").await;
    let shared = published_before_resubscribing("$share/g/sideline/v1/+/+/+").await;
    assert_eq!(plain, 20, "plain subscription");
    assert_eq!(shared, 0, "shared subscription (Mosquitto 2.0 behaviour)");
}

/// After a reconnect the broker re-sends what was left unacknowledged, tagged with the new
/// connection; only that copy may be acknowledged (`ConnectionStatus::may_ack`).
#[tokio::test]
async fn unacknowledged_messages_come_again_on_the_next_connection_and_only_that_copy_is_ackable() {
    let mut broker = Mosquitto::start();
    let Sub {
        client,
        mut rx,
        status,
        stop,
        task,
    } = subscriber(
        broker.port,
        Protocol::V5,
        "sub-stale",
        "sideline/v1/+/+/+",
        FAST,
    )
    .await;
    publish_n(broker.port, Protocol::V5, "held", 5).await;
    let mut first = Vec::new();
    for _ in 0..5 {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.connection, 1);
        first.push(m);
    }
    assert!(status.may_ack(1));
    broker.restart();
    let t0 = std::time::Instant::now();
    while !status.may_ack(2) {
        assert!(t0.elapsed() < Duration::from_secs(15), "did not reconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!status.may_ack(1), "a first-connection copy is stale now");
    let mut again = Vec::new();
    for _ in 0..5 {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("re-sent after the reconnect")
            .unwrap();
        assert_eq!(m.connection, 2);
        assert!(m.duplicate, "re-sent with DUP");
        again.push(String::from_utf8(m.payload.to_vec()).unwrap());
        client.ack(&m.ack).await.unwrap();
    }
    let held: Vec<String> = first
        .iter()
        .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
        .collect();
    assert_eq!(again, held);
    // Acknowledged once: nothing comes a third time, and new messages flow.
    publish_n(broker.port, Protocol::V5, "next", 3).await;
    let got = receive(&mut rx, &client, 3).await;
    assert_eq!(got, vec!["next-0", "next-1", "next-2"]);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_stalled_consumer_keeps_its_connection_when_the_backlog_spills_to_disk() {
    // The consumer takes nothing for longer than 1.5 keep-alives (5 s). Without the spool the
    // polling task would stop at its memory cap, send no pings, and lose the connection (the
    // broker then re-sends everything); with it, polling goes on and nothing is re-sent.
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let (client, el) = connect(&cfg(broker.port, Protocol::V5), "spill", OPTS).unwrap();
    let (tx, mut rx) = mpsc::channel(5);
    let status = Arc::new(ConnectionStatus::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_event_loop(
        el,
        client.clone(),
        vec![("sideline/#".into(), QoS::AtLeastOnce)],
        Some(tx),
        Arc::clone(&status),
        (Duration::from_millis(50), Duration::from_millis(400)),
        sideline_mqtt::Backlog {
            memory: 5,
            memory_bytes: usize::MAX,
            spool: Some(sideline_mqtt::Spool::new(dir.path(), 1 << 20)),
        },
        stop.clone(),
    ));
    wait_subscribed(&status).await;
    let n = 600;
    publish_n(broker.port, Protocol::V5, "s", n).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let spilled = status.spilled.load(Ordering::Relaxed);
    assert!(
        spilled >= 30,
        "the receive window's excess was spooled: {spilled}"
    );
    assert!(status.spool_bytes.load(Ordering::Relaxed) > 0);
    let got = receive(&mut rx, &client, n).await;
    let want: Vec<String> = (0..n).map(|i| format!("s-{i}")).collect();
    assert_eq!(got, want, "all, once, in order");
    assert_eq!(
        status.connects.load(Ordering::Relaxed),
        1,
        "the connection survived the stall"
    );
    assert_eq!(status.errors.load(Ordering::Relaxed), 0);
    // Nothing more comes (no re-sends), and the spool has given its space back.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err()
    );
    assert_eq!(status.spool_bytes.load(Ordering::Relaxed), 0);
    assert_eq!(status.spool_errors.load(Ordering::Relaxed), 0);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_deliberate_disconnect_ends_the_task_without_counting_an_error() {
    let broker = Mosquitto::start();
    for protocol in [Protocol::V311, Protocol::V5] {
        let mut sub = subscriber(
            broker.port,
            protocol,
            "closing",
            "sideline/#",
            (Duration::from_millis(50), Duration::from_millis(400)),
        )
        .await;
        sub.status.closing.store(true, Ordering::Relaxed);
        sub.client.disconnect().await.unwrap();
        // The task stops by itself (no `stop`), and nothing was counted as a failure.
        tokio::time::timeout(Duration::from_secs(5), &mut sub.task)
            .await
            .expect("the task ends after a deliberate disconnect")
            .unwrap();
        assert_eq!(sub.status.errors.load(Ordering::Relaxed), 0, "{protocol:?}");
        assert_eq!(sub.status.connects.load(Ordering::Relaxed), 1);
        assert!(!sub.status.connected.load(Ordering::Relaxed));
        sub.stop.cancel();
    }
}
