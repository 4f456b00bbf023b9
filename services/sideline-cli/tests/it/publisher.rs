//! The pods' publisher (`sideline simulate` / `replay`) against a real Mosquitto: QoS 1
//! publishes still in flight when the broker stops are sent again once it is back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sideline_cli::publish::{PublishArgs, Publisher};
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, MqttConfig, QoS, connect, run_event_loop};
use sideline_testkit::Mosquitto;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_in_flight_when_the_broker_restarts_are_sent_again() {
    let mut broker = Mosquitto::start();
    let port = broker.port;

    // A persistent plain subscription (kept by the broker across its restart).
    let cfg = MqttConfig {
        port,
        reconnect_min_ms: 50,
        reconnect_max_ms: 400,
        ..MqttConfig::default()
    };
    let opts = ConnectOptions {
        manual_acks: false,
        request_capacity: 1000,
        receive_maximum: None,
    };
    let (sub, el) = connect(&cfg, "publisher-test-sub", opts).unwrap();
    let (tx, mut rx) = mpsc::channel(1_000_000);
    let sub_status = Arc::new(ConnectionStatus::default());
    let sub_stop = CancellationToken::new();
    let sub_task = tokio::spawn(run_event_loop(
        el,
        sub,
        vec![("sideline/v1/+/+/+".into(), QoS::AtLeastOnce)],
        Some(tx),
        Arc::clone(&sub_status),
        (Duration::from_millis(50), Duration::from_millis(400)),
        1000,
        sub_stop.clone(),
    ));
    // Publish only once the subscription is granted (the broker drops what matches none).
    let t0 = Instant::now();
    while !sub_status
        .subscribed
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "not subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let args = PublishArgs {
        mqtt: format!("127.0.0.1:{port}"),
        config: None,
        speed: 0.0,
        json: false,
    };
    let mut publisher = Publisher::connect(&args, "publisher-test").unwrap();

    // Stop the broker 1.5 s into a steady stream, start it again 1 s later.
    let restart = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(1500));
        broker.stop();
        std::thread::sleep(Duration::from_secs(1));
        broker.restart();
        broker
    });
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < Duration::from_secs(5) {
        for _ in 0..50 {
            publisher
                .publish_raw("sideline/v1/t/pod/imu", sent.to_string().into_bytes())
                .await
                .unwrap();
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let broker = restart.await.unwrap();
    publisher.close().await;

    let mut got = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (got.len() as u64) < sent && Instant::now() < deadline {
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            let i: u64 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
            got.insert(i);
        }
    }
    let missing = (0..sent).filter(|i| !got.contains(i)).count();
    sub_stop.cancel();
    sub_task.await.unwrap();
    assert!(sent > 1000, "a steady stream: {sent} sent");
    assert_eq!(
        missing,
        0,
        "{missing} of {sent} publishes lost across the restart; broker log:\n{}",
        broker.log()
    );
}
