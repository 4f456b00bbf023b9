//! Sources in other shapes through real brokers: heart-rate straps' 0x2A37 notifications over
//! Mosquitto and a Sewio-shaped UDP stream, into Kafka keyed by player; a broken notification
//! on the dead-letter topic, a battery message skipped and counted.

use crate::common;

use std::time::Duration;

use common::*;
use prost::Message as _;
use sideline_ingest::sources::SourceConfig;
use sideline_testkit::brokers::free_port;
use sideline_testkit::kafka::{read_topic, read_topic_until};
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
        read_topic_until(
            &env.kafka.brokers(),
            "sideline.samples.v1",
            Duration::from_secs(30),
            batches_read(5),
        )
    });
    let mut hr = Vec::new();
    let mut xs = Vec::new();
    for (r, b) in records.iter().flat_map(|r| {
        let b = pb::SampleBatch::decode(r.value.as_deref().unwrap()).unwrap();
        sideline_wire::convert::batches(b)
            .into_iter()
            .map(move |b| (r, b))
    }) {
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

/// A league feed in the test: checks the token, answers, takes the fixture request, sends
/// every frame so far from the start (the backfill ingest asks for), then heartbeats.
async fn league_feed(
    listener: tokio::net::TcpListener,
    frames: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    while let Ok((tcp, _)) = listener.accept().await {
        let frames = std::sync::Arc::clone(&frames);
        tokio::spawn(async move {
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let auth = ws.next().await.unwrap().unwrap().into_text().unwrap();
            assert!(auth.contains("league-token"), "{auth}");
            ws.send(Message::text(
                r#"{"message":"Authorisation accepted","level":"INFO"}"#,
            ))
            .await
            .unwrap();
            let req = ws.next().await.unwrap().unwrap().into_text().unwrap();
            assert!(
                req.contains(r#""backfill":-1"#) && req.contains(r#""fixtureId":"fx""#),
                "{req}"
            );
            let all = frames.lock().unwrap().clone();
            for f in all {
                if ws
                    .send(Message::text(String::from_utf8(f).unwrap()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let hb = Message::text(
                    r#"{"message":"Heartbeat sent at 2026-12-07T00:00:00.000Z","level":"INFO"}"#,
                );
                if ws.send(hb).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// An ingest stopped and started again mid-match resumes a league feed from its saved
/// watermark: the new instance gets the whole feed again (backfill from the start), skips what
/// the first one put on Kafka, and forwards only the new frames: each (player, frame) once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ingest_resumes_a_league_feed_from_its_watermark() {
    use sideline_wire::adapter::shapes::league;
    let env = brokers();
    let roster = env.dir.path().join("roster.toml");
    std::fs::write(
        &roster,
        "[[devices]]\ndevice = \"lg-p1\"\nplayer = \"p1\"\nteam = \"home\"\n\
         [[devices]]\ndevice = \"lg-p2\"\nplayer = \"p2\"\nteam = \"home\"\n",
    )
    .unwrap();
    let token = env.dir.path().join("token");
    std::fs::write(&token, "league-token\n").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let t0 = now_us() - 20_000_000;
    let add = |from: u64, to: u64| {
        let mut f = frames.lock().unwrap();
        for ix in from..to {
            let fix = |id| Fix {
                id,
                x: ix as f64 * 0.2,
                y: 1.0,
                speed: Some(5.0),
            };
            f.push(league(
                "fx",
                ix,
                t0 + ix as i64 * 40_000,
                &[fix("p1"), fix("p2")],
                &[fix("opp")],
            ));
        }
    };
    add(0, 100);
    tokio::spawn(league_feed(listener, std::sync::Arc::clone(&frames)));
    #[derive(serde::Deserialize)]
    struct F {
        sources: Vec<SourceConfig>,
    }
    let sources = toml::from_str::<F>(&format!(
        "[[sources]]\nname = \"league\"\nprofile = \"league\"\nwebsocket = \"{url}\"\nprotocol = \"league\"\n\
         token_file = \"{}\"\nfixture_id = \"fx\"\ndevice_prefix = \"lg-\"\n",
        token.display()
    ))
    .unwrap()
    .sources;
    let run = |id: &str| {
        let mut cfg = config(env.mqtt.port, &env.kafka.brokers(), &roster, id);
        cfg.sources = sources.clone();
        cfg.ingest.state_dir = env.dir.path().to_path_buf();
        start(cfg)
    };

    let first = run("ingest-l1").await;
    wait_metric(
        &first,
        "sideline_ingest_source_records_total",
        200.0,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        metric(
            &first,
            "sideline_ingest_source_skipped_total",
            "unknown_device"
        )
        .await,
        100.0
    );
    first.stop.cancel();
    let _ = first.task.await;
    let saved = std::fs::read_to_string(env.dir.path().join("source-league.json")).unwrap();
    assert!(saved.contains(r#""ix":99"#), "{saved}");

    add(100, 150);
    let second = run("ingest-l2").await;
    wait_metric(
        &second,
        "sideline_ingest_source_records_total",
        100.0,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        metric(&second, "sideline_ingest_source_skipped_total", "duplicate").await,
        100.0
    );

    let records = tokio::task::block_in_place(|| {
        read_topic_until(
            &env.kafka.brokers(),
            "sideline.samples.v1",
            Duration::from_secs(10),
            batches_read(300),
        )
    });
    let mut seen = std::collections::HashMap::new();
    for r in &records {
        let b = pb::SampleBatch::decode(r.value.as_deref().unwrap()).unwrap();
        for b in sideline_wire::convert::batches(b) {
            *seen.entry((b.device_id, b.seq)).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 300, "every (player, frame) of 150 frames");
    assert!(seen.values().all(|&n| n == 1), "a frame put on Kafka twice");
    second.stop.cancel();
    let _ = second.task.await;
}
