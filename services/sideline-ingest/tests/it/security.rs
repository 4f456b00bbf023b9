//! Ingest to a broker that requires TLS and a username/password.

use crate::common;

use std::time::Duration;

use common::*;
use sideline_mqtt::config::TlsConfig;
use sideline_testkit::{Mosquitto, Tansu, password_file, test_certs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_credentials_to_the_broker_work_and_a_wrong_password_stays_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let certs = test_certs(dir.path());
    let pw = password_file(dir.path(), "ingest", "correct horse");
    let extra = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous false\npassword_file {}\n",
        certs.ca.display(),
        certs.server_cert.display(),
        certs.server_key.display(),
        pw.display()
    );
    let mqtt = Mosquitto::start_with(&extra);
    let kafka = Tansu::start();
    let (batches, sim) = short_match(4.0);
    let roster = dir.path().join("roster.toml");
    std::fs::write(&roster, roster_toml(&sim)).unwrap();
    let secret = dir.path().join("mqtt-password");
    std::fs::write(&secret, "correct horse\n").unwrap();

    let mut cfg = config(mqtt.port, &kafka.brokers(), &roster, "ingest-tls");
    cfg.mqtt.username = Some("ingest".into());
    cfg.mqtt.password_file = Some(secret.clone());
    cfg.mqtt.tls = Some(TlsConfig {
        ca_file: Some(certs.ca.clone()),
        ..TlsConfig::default()
    });
    let svc = start(cfg.clone()).await;
    wait_ready(&svc, Duration::from_secs(60)).await;

    // Publish over TLS with the same credentials.
    let pub_cfg = sideline_mqtt::MqttConfig {
        port: mqtt.port,
        ..cfg.mqtt.clone()
    };
    let (client, el) = sideline_mqtt::connect(
        &pub_cfg,
        "pub-tls",
        sideline_mqtt::client::ConnectOptions {
            manual_acks: false,
            request_capacity: 1000,
            receive_maximum: None,
        },
    )
    .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(sideline_mqtt::run_event_loop(
        el,
        client.clone(),
        vec![],
        None,
        Default::default(),
        (Duration::from_millis(50), Duration::from_millis(500)),
        1000,
        stop.clone(),
    ));
    for b in &batches {
        client
            .publish(
                &sideline_wire::topic::topic_for(b),
                sideline_mqtt::QoS::AtLeastOnce,
                sideline_wire::topic::encode(b, Default::default()).into(),
            )
            .await
            .unwrap();
    }
    let got = samples(&kafka.brokers(), batches.len(), Duration::from_secs(20));
    assert_eq!(got.len(), batches.len());
    stop.cancel();
    task.await.unwrap();
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();

    // The same service with a wrong password never becomes ready, and says why.
    let bad = dir.path().join("wrong");
    std::fs::write(&bad, "battery staple").unwrap();
    cfg.mqtt.password_file = Some(bad);
    cfg.mqtt.client_id = "ingest-tls-2".into();
    let svc = start(cfg).await;
    // Refused at least twice (a retry, not a one-off), and still not ready.
    wait_metric(
        &svc,
        "sideline_ingest_mqtt_errors_total",
        2.0,
        Duration::from_secs(30),
    )
    .await;
    let (code, body) = http_get(svc.http, "/readyz").await;
    assert_eq!(code, 503);
    assert!(body.contains("\"mqtt\":false"), "{body}");
    assert!(metric(&svc, "sideline_ingest_mqtt_errors_total", "").await >= 2.0);
    svc.stop.cancel();
    svc.task.await.unwrap().unwrap();
}
