//! The deployment files under `deploy/`, checked with real tools:
//!
//! - Prometheus: `promtool check config`, `check rules` and `test rules` (the rules' own unit
//!   tests, firing and quiet cases) on `deploy/prometheus/`.
//! - Mosquitto: a real broker started with `deploy/mosquitto/sideline.conf` and its ACL (paths
//!   and ports rewritten to a temporary directory and free loopback ports, certificates made
//!   for the test): a device is refused under another device's topic and accepted under its
//!   own, over TLS; a wrong password is refused; a device reads nothing; ingest writes nothing.
//!   The certificates and ingest's account are the ones `deploy/compose/make-secrets.sh` makes.
//! - Alertmanager: Prometheus and Alertmanager, both with the shipped configuration files
//!   unchanged, and a local chat webhook as the IT's: with no Sideline service answering,
//!   `SidelineServiceDown` reaches the webhook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{Event, MqttConfig, Protocol, QoS};
use sideline_testkit::brokers::{Mosquitto, free_port, wait_for_port};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .expect("promtool not found: run scripts/setup.sh (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn prometheus_config_and_rules_pass_promtool_and_their_unit_tests() {
    let c = promtool(&["check", "config", "prometheus.yml"]);
    assert!(c.contains("SUCCESS"), "{c}");
    let r = promtool(&["check", "rules", "sideline.rules.yml"]);
    assert!(r.contains("SUCCESS: 11 rules found"), "{r}");
    let t = promtool(&["test", "rules", "sideline.rules.test.yml"]);
    assert!(t.contains("SUCCESS"), "{t}");
    // The Compose stack's Prometheus configuration, with the rules beside it as it mounts them.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        deploy().join("compose/prometheus.yml"),
        tmp.path().join("prometheus.yml"),
    )
    .unwrap();
    std::fs::copy(
        deploy().join("prometheus/sideline.rules.yml"),
        tmp.path().join("sideline.rules.yml"),
    )
    .unwrap();
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(tmp.path().join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "compose prometheus.yml: {out:?}");
    // Every rule has a unit test.
    let rules = std::fs::read_to_string(deploy().join("prometheus/sideline.rules.yml")).unwrap();
    let tests =
        std::fs::read_to_string(deploy().join("prometheus/sideline.rules.test.yml")).unwrap();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!("alertname: {name}")),
                "rule {name} has no promtool test"
            );
        }
    }
}

/// deploy/mosquitto/sideline.conf with its paths under `dir` and its TLS listener on `tls`.
/// The fixture adds its own plain loopback listener (in place of the file's 1883) and its own
/// persistence settings.
fn mosquitto_conf(dir: &Path, tls: u16) -> String {
    let conf = std::fs::read_to_string(deploy().join("mosquitto/sideline.conf")).unwrap();
    assert!(conf.contains("listener 8883\n") && conf.contains("listener 1883 127.0.0.1\n"));
    conf.lines()
        .filter(|l| {
            !l.starts_with("listener 1883")
                && !l.starts_with("persistence")
                && !l.starts_with("autosave")
                && !l.starts_with("max_")
        })
        .map(|l| {
            if l == "listener 8883" {
                format!("listener {tls} 127.0.0.1")
            } else {
                l.replace("/etc/mosquitto/sideline/", &format!("{}/", dir.display()))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn add_user(passwd: &Path, user: &str, password: &str) {
    let mut c = Command::new("mosquitto_passwd");
    if !passwd.exists() {
        c.arg("-c");
    }
    let out = c
        .arg("-b")
        .arg(passwd)
        .args([user, password])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn client(
    port: u16,
    user: &str,
    password: &str,
    tls: Option<&Path>,
    protocol: Protocol,
) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        protocol,
        clean_session: true,
        username: Some(user.into()),
        password: Some(password.into()),
        tls: tls.map(|ca| sideline_mqtt::config::TlsConfig {
            ca_file: Some(ca.to_path_buf()),
            ..Default::default()
        }),
        ..MqttConfig::default()
    }
}

/// Connect; `Err` with the broker's refusal if the CONNECT is refused.
async fn connect(
    cfg: &MqttConfig,
    id: &str,
) -> Result<(sideline_mqtt::Client, sideline_mqtt::EventLoop), String> {
    let (c, mut e) = sideline_mqtt::connect(
        cfg,
        id,
        ConnectOptions {
            manual_acks: false,
            request_capacity: 100,
            receive_maximum: None,
        },
    )
    .map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), e.poll()).await {
            Ok(Ok(Event::Connected { .. })) => return Ok((c, e)),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(err.to_string()),
            Err(_) => return Err("no CONNACK in 10 s".into()),
        }
    }
}

/// Publish at QoS 1.
async fn send(c: &sideline_mqtt::Client, topic: &str, payload: String) {
    c.publish(topic, QoS::AtLeastOnce, Bytes::from(payload))
        .await
        .unwrap();
}

/// A client's event loop driven in the background: the messages it receives, and how many
/// PubAcks and SubAcks the broker has sent it.
struct Driven {
    msgs: tokio::sync::mpsc::UnboundedReceiver<(String, Bytes)>,
    pubacks: Arc<AtomicUsize>,
    subacks: Arc<AtomicUsize>,
}

/// Drive an event loop in the background, passing messages on and counting acknowledgements.
fn drive(mut e: sideline_mqtt::EventLoop) -> Driven {
    let (tx, msgs) = tokio::sync::mpsc::unbounded_channel();
    let (pubacks, subacks) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
    let (p, s) = (Arc::clone(&pubacks), Arc::clone(&subacks));
    tokio::spawn(async move {
        while let Ok(ev) = e.poll().await {
            match ev {
                Event::Message(m) => {
                    let _ = tx.send((m.topic, m.payload));
                }
                Event::PubAck => {
                    p.fetch_add(1, Ordering::SeqCst);
                }
                Event::SubAck { .. } => {
                    s.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
        }
    });
    Driven {
        msgs,
        pubacks,
        subacks,
    }
}

/// Wait until `count` reaches `n`.
async fn until_count(what: &str, count: &AtomicUsize, n: usize) {
    let t0 = std::time::Instant::now();
    while count.load(Ordering::SeqCst) < n {
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_lets_a_device_publish_only_under_its_own_id_and_team() {
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The broker's certificate and ingest's account as the shipped make-secrets.sh makes them
    // (Compose mounts secrets/mosquitto-passwd as the broker's passwd).
    let secrets = dir.path().join("secrets");
    let out = Command::new(deploy().join("compose/make-secrets.sh"))
        .env("SECRETS_DIR", &secrets)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::rename(secrets.join("certs"), dir.path().join("certs")).unwrap();
    let ca = dir.path().join("certs/ca.pem");
    let passwd = dir.path().join("passwd");
    std::fs::copy(secrets.join("mosquitto-passwd"), &passwd).unwrap();
    let ingest_password = std::fs::read_to_string(secrets.join("mqtt-ingest-password")).unwrap();
    let ingest_password = ingest_password.trim();
    add_user(&passwd, "pod-a", "secret-a");
    add_user(&passwd, "pod-b", "secret-b");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::copy(deploy().join("mosquitto/acl"), dir.path().join("acl")).unwrap();
    let tls = free_port();
    let broker = Mosquitto::start_with(&mosquitto_conf(dir.path(), tls));
    assert!(
        wait_for_port(tls, Duration::from_secs(10)),
        "{}",
        broker.log()
    );

    // Ingest reads every device topic, as the service subscribes (plain subscription), over
    // TLS as in the Compose stack, trusting the generated CA.
    let (ingest, ingest_loop) = connect(
        &client(
            tls,
            "sideline-ingest",
            ingest_password,
            Some(&ca),
            Protocol::V5,
        ),
        "ingest",
    )
    .await
    .unwrap();
    let mut seen = drive(ingest_loop);
    ingest
        .try_subscribe("sideline/v1/+/+/+", QoS::AtLeastOnce)
        .unwrap();
    until_count("ingest's SubAck", &seen.subacks, 1).await;

    // A wrong password is refused at CONNECT, over TLS and on the plain listener.
    for (port, ca) in [(tls, Some(ca.as_path())), (broker.port, None)] {
        let r = connect(
            &client(port, "pod-a", "wrong", ca, Protocol::V5),
            "pod-a-bad",
        )
        .await;
        assert!(r.is_err(), "a wrong password was accepted on {port}");
    }
    // No anonymous access.
    let mut anon = client(broker.port, "x", "", None, Protocol::V311);
    anon.username = None;
    anon.password = None;
    assert!(connect(&anon, "anon").await.is_err(), "anonymous accepted");

    for (round, protocol) in [Protocol::V5, Protocol::V311].into_iter().enumerate() {
        let tag = format!("{protocol:?}");
        // pod-a over TLS: first under pod-b's id (forged), then under its own.
        let (pod_a, a_loop) = connect(
            &client(tls, "pod-a", "secret-a", Some(&ca), protocol),
            &format!("pod-a-{tag}"),
        )
        .await
        .unwrap();
        let mut a_seen = drive(a_loop);
        // pod-a tries to read pod-b's data (and its own): the ACL gives devices no reads.
        pod_a
            .try_subscribe("sideline/v1/#", QoS::AtLeastOnce)
            .unwrap();
        until_count("pod-a's SubAck", &a_seen.subacks, 1).await;
        send(
            &pod_a,
            "sideline/v1/home/pod-b/samples",
            format!("forged-{tag}"),
        )
        .await;
        // Its own id under another team's topics: refused too (the ACL ties it to its team).
        send(
            &pod_a,
            "sideline/v1/away/pod-a/samples",
            format!("other-team-{tag}"),
        )
        .await;
        send(
            &pod_a,
            "sideline/v1/home/pod-a/samples",
            format!("own-{tag}"),
        )
        .await;
        // pod-b publishing as itself is fine too.
        let (pod_b, b_loop) = connect(
            &client(tls, "pod-b", "secret-b", Some(&ca), protocol),
            &format!("pod-b-{tag}"),
        )
        .await
        .unwrap();
        let b_seen = drive(b_loop);
        send(&pod_b, "sideline/v1/away/pod-b/imu", format!("b-own-{tag}")).await;
        // Ingest may not publish.
        send(
            &ingest,
            "sideline/v1/home/pod-a/samples",
            format!("ingest-{tag}"),
        )
        .await;

        // Once the broker has acknowledged every publish (refused ones too), it has routed
        // each: a message it let through is on ingest's socket ahead of the PubAck for
        // ingest's own publish, and pod-a's forged one ahead of its own.
        until_count("pod-a's publishes acknowledged", &a_seen.pubacks, 3).await;
        until_count("pod-b's publish acknowledged", &b_seen.pubacks, 1).await;
        until_count("ingest's publish acknowledged", &seen.pubacks, round + 1).await;
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while got.len() < 2 {
            let Ok(Some((topic, payload))) =
                tokio::time::timeout_at(deadline, seen.msgs.recv()).await
            else {
                break;
            };
            got.push((topic, String::from_utf8_lossy(&payload).to_string()));
        }
        while let Ok((topic, payload)) = seen.msgs.try_recv() {
            got.push((topic, String::from_utf8_lossy(&payload).to_string()));
        }
        assert_eq!(
            got,
            vec![
                (
                    "sideline/v1/home/pod-a/samples".to_string(),
                    format!("own-{tag}")
                ),
                (
                    "sideline/v1/away/pod-b/imu".to_string(),
                    format!("b-own-{tag}")
                ),
            ],
            "{tag}: what ingest received; broker log:\n{}",
            broker.log()
        );
        assert!(
            a_seen.msgs.try_recv().is_err(),
            "{tag}: a device read device topics"
        );
        pod_a.disconnect().await.unwrap();
        pod_b.disconnect().await.unwrap();
    }
}

/// The pipeline's own alerts reach a person: Prometheus (shipped `prometheus.yml` and rules,
/// unchanged) scrapes the four services' default ports, where nothing answers;
/// `SidelineServiceDown` fires after its minute and Alertmanager (shipped `alertmanager.yml`,
/// unchanged, on its default port 9093 where `prometheus.yml` looks for it) posts it to the
/// webhook in `secrets/ops-webhook` — here a local receiver standing in for the IT's chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_down_reaches_the_it_chat_through_alertmanager() {
    use std::sync::Mutex;
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/ops",
            axum::routing::post(
                |axum::extract::State(got): axum::extract::State<Arc<Mutex<Vec<String>>>>,
                 body: String| async move {
                    got.lock().unwrap().push(body);
                    "ok"
                },
            ),
        )
        .with_state(got.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/ops", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });

    let dir = tempfile::tempdir().unwrap();
    let am = dir.path().join("alertmanager");
    std::fs::create_dir_all(am.join("secrets")).unwrap();
    std::fs::copy(
        deploy().join("alertmanager/alertmanager.yml"),
        am.join("alertmanager.yml"),
    )
    .unwrap();
    // What the operator does: the IT chat's webhook URL in the secret file.
    std::fs::write(am.join("secrets/ops-webhook"), format!("{hook}\n")).unwrap();
    assert!(
        std::net::TcpListener::bind("127.0.0.1:9093").is_ok(),
        "port 9093 (Alertmanager's default, where prometheus.yml sends) is taken"
    );
    // In the configuration's directory, as the shipped systemd drop-in and Compose run it.
    let mut alertmanager = Command::new("prometheus-alertmanager")
        .current_dir(&am)
        .arg(format!(
            "--config.file={}",
            am.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", am.join("data").display()))
        .args([
            "--web.listen-address=127.0.0.1:9093",
            "--cluster.listen-address=",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(am.join("log")).unwrap())
        .spawn()
        .expect("prometheus-alertmanager not found: run scripts/setup.sh");
    let prom = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom).unwrap();
    for f in ["prometheus.yml", "sideline.rules.yml"] {
        std::fs::copy(deploy().join("prometheus").join(f), prom.join(f)).unwrap();
    }
    let prom_port = free_port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            prom.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(prom.join("log")).unwrap())
        .spawn()
        .expect("prometheus not found: run scripts/setup.sh");

    let t0 = std::time::Instant::now();
    let arrived = loop {
        let bodies = got.lock().unwrap().clone();
        if let Some(b) = bodies.iter().find(|b| b.contains("SidelineServiceDown")) {
            break Some(b.clone());
        }
        if t0.elapsed() > Duration::from_secs(180) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = prometheus.kill();
    let _ = alertmanager.kill();
    let _ = prometheus.wait();
    let _ = alertmanager.wait();
    let body = arrived.unwrap_or_else(|| {
        panic!(
            "no SidelineServiceDown at the webhook in 180 s; alertmanager: {}\nprometheus: {}",
            std::fs::read_to_string(am.join("log")).unwrap_or_default(),
            std::fs::read_to_string(prom.join("log")).unwrap_or_default()
        )
    });
    // What the IT person reads: which service, and that it is not answering.
    assert!(body.contains("is not answering scrapes"), "{body}");
    eprintln!(
        "SidelineServiceDown reached the webhook {:.0} s after Prometheus started",
        t0.elapsed().as_secs_f64()
    );
}
