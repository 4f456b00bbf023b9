//! The demo's path, with no external service: pods publish to the embedded broker, ingest's
//! pump validates and maps their batches and puts them on the in-process bus, keyed by player
//! — every batch once, over MQTT 5 and 3.1.1 publishers alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prost::Message as _;
use sideline_bus::MemoryBus;
use sideline_demo::broker::EmbeddedBroker;
use sideline_engine::{Batch, Sample};
use sideline_ingest::IngestConfig;
use sideline_ingest::metrics::IngestMetrics;
use sideline_ingest::pipeline::Pipeline;
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, MqttConfig, Protocol, QoS, connect, run_event_loop};
use sideline_testkit::brokers::free_port;
use sideline_wire::roster::Roster;
use sideline_wire::topic::{Encoding, encode, topic_for};
use tokio_util::sync::CancellationToken;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn local(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

async fn publish(port: u16, protocol: Protocol, id: &str, batches: &[Batch]) {
    let cfg = MqttConfig {
        port,
        protocol,
        clean_session: true,
        ..MqttConfig::default()
    };
    let (c, el) = connect(
        &cfg,
        id,
        ConnectOptions {
            manual_acks: false,
            request_capacity: 10_000,
            receive_maximum: None,
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    let status = Arc::new(ConnectionStatus::default());
    let task = tokio::spawn(run_event_loop(
        el,
        c.clone(),
        vec![],
        None,
        Arc::clone(&status),
        (Duration::from_millis(50), Duration::from_millis(500)),
        1,
        stop.clone(),
    ));
    for b in batches {
        c.publish(
            &topic_for(b),
            QoS::AtLeastOnce,
            encode(b, Encoding::Protobuf).into(),
        )
        .await
        .unwrap();
    }
    // Every publish acknowledged by the broker before the connection goes.
    let t0 = std::time::Instant::now();
    while status.acked.load(std::sync::atomic::Ordering::SeqCst) < batches.len() as u64 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{id}: not acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    let _ = task.await;
}

fn batches(device: &str, n: u64) -> Vec<Batch> {
    let t0 = now_us() - 60_000_000;
    (1..=n)
        .map(|seq| Batch {
            device: device.into(),
            team: "home".into(),
            session: "demo".into(),
            seq,
            samples: vec![Sample::xy(
                t0 + seq as i64 * 100_000,
                seq as f64,
                0.0,
                Some(3.0),
            )],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_the_in_process_bus_through_the_embedded_broker_and_ingest() {
    let broker = EmbeddedBroker::start(local(free_port()), local(free_port())).unwrap();
    let bus = MemoryBus::new(1000);
    let mut samples = bus.subscribe("sideline.samples.v1");

    let mut cfg: IngestConfig =
        sideline_common::config::load(sideline_ingest::config::DEFAULTS, None).unwrap();
    cfg.mqtt.port = broker.v5.port();
    let roster = Roster::from_toml(
        "[[devices]]\ndevice = \"pod-a\"\nplayer = \"home-01\"\nteam = \"home\"\n\
         [[devices]]\ndevice = \"pod-b\"\nplayer = \"home-02\"\nteam = \"home\"\n",
    )
    .unwrap();
    let metrics = IngestMetrics::new(&prometheus::Registry::new()).unwrap();
    let pipeline = Pipeline::from_config(
        &cfg,
        Arc::new(bus.clone()),
        Arc::new(RwLock::new(roster)),
        &metrics,
    );
    let health = sideline_common::Health::new(&["mqtt"]);
    let (stop, tasks) = (CancellationToken::new(), CancellationToken::new());
    let pump = {
        let (cfg, metrics, health, stop, tasks) = (
            cfg.clone(),
            metrics.clone(),
            health.clone(),
            stop.clone(),
            tasks.clone(),
        );
        tokio::spawn(async move {
            sideline_ingest::pump(
                &cfg,
                "demo-ingest",
                pipeline,
                &metrics,
                &health,
                &stop,
                &tasks,
            )
            .await
        })
    };
    for _ in 0..100 {
        if health.get("mqtt") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ready means subscribed (SubAck received): publishing now loses nothing.
    assert!(
        health.get("mqtt"),
        "ingest never connected to the embedded broker"
    );

    let (a, b) = (batches("pod-a", 200), batches("pod-b", 200));
    tokio::join!(
        publish(broker.v5.port(), Protocol::V5, "pod-a-pub", &a),
        publish(broker.v4.port(), Protocol::V311, "pod-b-pub", &b),
    );
    let mut got: HashMap<(String, u64), usize> = HashMap::new();
    while got.values().sum::<usize>() < 400 {
        let r = tokio::time::timeout(Duration::from_secs(10), samples.recv())
            .await
            .expect("records stopped arriving")
            .unwrap();
        let pb = sideline_wire::pb::SampleBatch::decode(r.value.as_ref()).unwrap();
        assert_eq!(r.key, pb.player_id);
        let want = if pb.device_id == "pod-a" {
            "home-01"
        } else {
            "home-02"
        };
        assert_eq!(pb.player_id, want);
        *got.entry((pb.device_id.clone(), pb.seq)).or_default() += 1;
    }
    assert_eq!(got.len(), 400, "every batch once");
    assert!(got.values().all(|&n| n == 1));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), pump)
        .await
        .expect("pump did not drain")
        .unwrap()
        .unwrap();
    tasks.cancel();
}
