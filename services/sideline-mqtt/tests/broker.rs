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
        status,
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
    // Let the QoS 1 publishes complete before disconnecting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
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

async fn reconnects_and_resubscribes(protocol: Protocol) {
    let mut broker = Mosquitto::start();
    let (client, el) = connect(&cfg(broker.port, protocol), "sub-1", OPTS).unwrap();
    let (tx, mut rx) = mpsc::channel(100);
    let status = Arc::new(ConnectionStatus::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_event_loop(
        el,
        client.clone(),
        vec![("sideline/v1/+/+/+".into(), QoS::AtLeastOnce)],
        Some(tx),
        Arc::clone(&status),
        (Duration::from_millis(50), Duration::from_millis(400)),
        1000,
        stop.clone(),
    ));
    while status.connects.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // subscription in place
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
    tokio::time::sleep(Duration::from_millis(200)).await;
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
