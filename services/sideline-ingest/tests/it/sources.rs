//! Sources in other shapes through real brokers: heart-rate straps' 0x2A37 notifications over
//! Mosquitto and a Sewio-shaped UDP stream, into Kafka keyed by player; a broken notification
//! on the dead-letter topic, a battery message skipped and counted.

use crate::common;

use std::time::Duration;

use common::*;
use prost::Message as _;
use sideline_ingest::sources::SourceConfig;
use sideline_testkit::brokers::free_port;
use sideline_testkit::kafka::read_topic;
use sideline_wire::adapter::ble;
use sideline_wire::adapter::shapes::{Fix, sewio};
use sideline_wire::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn straps_over_mqtt_and_a_udp_stream_reach_kafka_as_their_players_samples() {
    let env = brokers();
    let roster = env.dir.path().join("roster.toml");
    std::fs::write(
        &roster,
        "[[devices]]\ndevice = \"strap-4\"\nplayer = \"alice\"\nteam = \"home\"\n\
         [[devices]]\ndevice = \"sw-18\"\nplayer = \"bob\"\nteam = \"home\"\n",
    )
    .unwrap();
    let mut cfg = config(env.mqtt.port, &env.kafka.brokers(), &roster, "ingest-src");
    let udp = format!("127.0.0.1:{}", free_port());
    #[derive(serde::Deserialize)]
    struct F {
        sources: Vec<SourceConfig>,
    }
    cfg.sources = toml::from_str::<F>(&format!(
        "[[sources]]\nname = \"straps\"\nprofile = \"ble-hrm\"\nmqtt_topic = \"hr/{{device}}/2a37\"\ndevice_prefix = \"strap-\"\n\
         [[sources]]\nname = \"rtls\"\nprofile = \"sewio\"\nudp_listen = \"{udp}\"\ndevice_prefix = \"sw-\"\n"
    ))
    .unwrap()
    .sources;
    let svc = start(cfg).await;
    wait_ready(&svc, Duration::from_secs(60)).await;

    let p = Publisher::connect(env.mqtt.port, "gateway").await;
    for (bpm, rr) in [(150u16, vec![400u32]), (152, vec![395, 390]), (185, vec![])] {
        p.raw("hr/4/2a37", ble::encode(bpm, &rr)).await;
    }
    p.raw("hr/4/2a37", vec![0x10, 0x96, 0x01]).await; // RR flagged, half a value
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let t = now_us() - 3_000_000;
    for k in 0..2 {
        let f = Fix {
            id: "18",
            x: 10.0 + f64::from(k),
            y: 5.0,
            speed: None,
        };
        sock.send_to(&sewio(t + i64::from(k) * 100_000, &f), &udp)
            .unwrap();
    }
    sock.send_to(br#"{"body":{"id":"18","datastreams":[{"id":"battery_level","current_value":"77%","at":"2016-10-18 15:27:38.606"}]},"resource":"/feeds/18"}"#, &udp).unwrap();

    let records = tokio::task::block_in_place(|| {
        read_topic(
            &env.kafka.brokers(),
            "sideline.samples.v1",
            5,
            Duration::from_secs(30),
        )
    });
    let mut hr = Vec::new();
    let mut xs = Vec::new();
    for r in &records {
        let b = pb::SampleBatch::decode(r.value.as_deref().unwrap()).unwrap();
        let key = String::from_utf8_lossy(r.key.as_deref().unwrap()).to_string();
        match (key.as_str(), &b.samples[0].reading) {
            ("alice", Some(pb::sample::Reading::HeartRate(h))) => hr.push((h.bpm, h.rr_ms.clone())),
            ("bob", Some(pb::sample::Reading::Position(p))) => xs.push(p.coord),
            other => panic!("unexpected record {other:?}"),
        }
    }
    assert_eq!(
        hr,
        [(150.0, vec![400]), (152.0, vec![395, 390]), (185.0, vec![])]
    );
    assert_eq!(xs.len(), 2);
    let dlq = tokio::task::block_in_place(|| {
        read_topic(
            &env.kafka.brokers(),
            "sideline.dlq.v1",
            1,
            Duration::from_secs(30),
        )
    });
    assert_eq!(dlq[0].headers["sideline.reason"], b"malformed");
    wait_metric(
        &svc,
        "sideline_ingest_source_skipped_total",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        metric(&svc, "sideline_ingest_source_records_total", "rtls").await,
        2.0
    );
    p.close().await;
    svc.stop.cancel();
    let _ = svc.task.await;
}
