//! The deployment files under `deploy/`, checked with real tools:
//!
//! - Prometheus: `promtool check config`, `check rules` and `test rules` (the rules' own unit
//!   tests, firing and quiet cases) on `deploy/prometheus/`.
//! - Mosquitto: a real broker started with `deploy/mosquitto/sideline.conf` and its ACL (paths
//!   and ports rewritten to a temporary directory and free loopback ports, certificates made
//!   for the test): a device is refused under another device's topic and accepted under its
//!   own, over TLS; a wrong password is refused; a device reads nothing; ingest writes nothing.
//!   The certificates and ingest's account are the ones `deploy/compose/make-secrets.sh` makes.
//! - The deployment as shipped: every systemd unit's service started as the unit starts it,
//!   with its shipped configuration, on Mosquitto, tansu, Prometheus and Alertmanager as
//!   shipped; the ZXY recording replayed through it (every player's final totals equal the
//!   offline engine's); the bench page in Chromium; a stopped processor reported to the IT
//!   chat as `SidelineServiceDown`.

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
/// A local chat webhook: the bodies posted to `path`, and its URL.
async fn chat(path: &'static str) -> (Arc<std::sync::Mutex<Vec<String>>>, String) {
    use std::sync::Mutex;
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            path,
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
    let url = format!("http://{}{path}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (got, url)
}

/// A service started as its systemd unit starts it: `ExecStart` (the binary and the
/// configuration under the test's `/etc/sideline`), the unit's `Environment=` lines plus
/// `env`, in its `WorkingDirectory` (the test's `/var/lib/sideline`).
struct Unit {
    child: std::process::Child,
    log: PathBuf,
}

impl Unit {
    fn start(unit: &str, etc: &Path, var: &Path, env: &[(&str, String)]) -> Unit {
        let text = std::fs::read_to_string(deploy().join("systemd").join(unit)).unwrap();
        let key = |k: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
                .collect()
        };
        let exec = key("ExecStart").remove(0);
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/local/bin/sideline"), "{unit}");
        let args: Vec<String> = words
            .map(|w| w.replace("/etc/sideline/", &format!("{}/", etc.display())))
            .collect();
        assert_eq!(key("WorkingDirectory"), ["/var/lib/sideline"], "{unit}");
        let log = var.join(format!("{unit}.log"));
        let mut c = Command::new(sideline_e2e::sideline_bin());
        c.args(&args)
            .current_dir(var)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(var.join(format!("{unit}.err"))).unwrap());
        for kv in key("Environment") {
            let (k, v) = kv.split_once('=').unwrap();
            c.env(k, v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        Unit {
            child: c.spawn().unwrap(),
            log,
        }
    }

    /// SIGTERM, as `systemctl stop` sends it; wait for the exit.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        let err = self.log.with_extension("err");
        format!(
            "{}{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET on loopback; the whole response.
async fn get(port: u16, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{headers}\r\n"
    );
    let _ = s.write_all(req.as_bytes()).await;
    let mut b = String::new();
    let _ = s.read_to_string(&mut b).await;
    b
}

/// Each player's final totals from the offline engine on the batches `sideline replay` sends
/// for `recording` (200-ms batches; the replay shifts time by whole seconds, which changes no
/// figure).
fn offline_totals(
    recording: &Path,
) -> std::collections::BTreeMap<String, sideline_wire::pb::Totals> {
    let data = sideline_cli::analyze::load_files(
        sideline_cli::analyze::Format::Zxy,
        &[recording.to_path_buf()],
        None,
        None,
    )
    .unwrap();
    let mut e: sideline_engine::Engine =
        sideline_engine::Engine::new(sideline_engine::Params::default(), false);
    for (d, p, t) in sideline_cli::replay::pods(&data) {
        e.assign(&d, &p, &t);
    }
    let mut out = sideline_engine::Outputs::default();
    let mut last = std::collections::BTreeMap::new();
    let mut keep = |out: &mut sideline_engine::Outputs| {
        for m in out.metrics.drain(..) {
            last.insert(
                m.player.to_string(),
                sideline_wire::convert::metrics(&m).totals.unwrap(),
            );
        }
        out.alerts.clear();
    };
    for (t, batches) in sideline_cli::replay::windows(&data, "replay", 0, 200_000) {
        for b in &batches {
            e.ingest_batch(b, &mut out);
        }
        e.tick(t, &mut out);
        keep(&mut out);
    }
    e.finish(&mut out);
    keep(&mut out);
    last
}

/// The deployment as shipped, run the way its systemd units run it: every `sideline` unit with
/// its shipped configuration (`deploy/systemd/config/`, installed under a temporary
/// `/etc/sideline`, unchanged but for that location), its environment and working directory;
/// only Kafka's and Mosquitto's addresses given as `SIDELINE__…` variables, as an operator
/// whose brokers live elsewhere would. Around them: Mosquitto with the shipped `sideline.conf`
/// and ACL (accounts and certificates as `make-secrets.sh` makes them), tansu, Prometheus with
/// the shipped configuration and rules, Alertmanager with the shipped configuration and a
/// local webhook as the IT's chat. The real ZXY recording is replayed over MQTT with the
/// replay tool's account; the bench page, signed in as the staff file's user, shows the
/// players by the roster's names with their scores and the recording's device alert by name
/// (headless Chromium); a player whose profile puts him at red has his red acknowledged on
/// the page, and the alerter then holds no escalation for it (the shipped route escalates to
/// the medical channel after 5 minutes); Prometheus scrapes all five services; then the processor is stopped and `SidelineServiceDown` for it reaches the
/// IT chat, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_as_shipped_serves_the_bench_and_tells_it_when_the_processor_stops() {
    // The ports the shipped files name: the admin ports Prometheus scrapes, Alertmanager's.
    for port in [9093u16, 9301, 9302, 9303, 9304, 9305] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port}, named by the shipped configuration, is taken"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (it_chat, it_hook) = chat("/ops").await;
    let (staff_chat, staff_hook) = chat("/staff").await;
    let (medical_chat, medical_hook) = chat("/medical").await;

    // Secrets as make-secrets.sh makes them.
    let made = dir.path().join("made");
    let out = Command::new(deploy().join("compose/make-secrets.sh"))
        .env("SECRETS_DIR", &made)
        .env("SIDELINE_BIN", sideline_e2e::sideline_bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // /etc/sideline: the shipped configurations, the secrets beside them.
    let etc = dir.path().join("etc-sideline");
    std::fs::create_dir_all(etc.join("secrets")).unwrap();
    for e in std::fs::read_dir(deploy().join("systemd/config")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("/etc/sideline/", &format!("{}/", etc.display()));
        std::fs::write(etc.join(p.file_name().unwrap()), text).unwrap();
    }
    for (from, to) in [
        ("mqtt-ingest-password", "mqtt-password"),
        ("ack-secret", "ack-secret"),
        ("bench-staff.toml", "bench-staff.toml"),
    ] {
        std::fs::copy(made.join(from), etc.join("secrets").join(to)).unwrap();
    }
    std::fs::write(etc.join("secrets/slack-webhook"), format!("{staff_hook}\n")).unwrap();
    std::fs::write(
        etc.join("secrets/medical-webhook"),
        format!("{medical_hook}\n"),
    )
    .unwrap();
    let bench_password = std::fs::read_to_string(made.join("bench-password")).unwrap();
    let bench_password = bench_password.trim();

    // Mosquitto: the shipped configuration and ACL; the replay tool's account added.
    let mq = dir.path().join("mosquitto");
    std::fs::create_dir_all(&mq).unwrap();
    std::fs::rename(made.join("certs"), mq.join("certs")).unwrap();
    std::fs::copy(deploy().join("mosquitto/acl"), mq.join("acl")).unwrap();
    std::fs::copy(made.join("mosquitto-passwd"), mq.join("passwd")).unwrap();
    add_user(
        &mq.join("passwd"),
        "sideline-replay",
        "replay-password-0123456789",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["passwd", "acl"] {
            std::fs::set_permissions(mq.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(&mq, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tls = free_port();
    let broker = Mosquitto::start_with(&mosquitto_conf(&mq, tls));
    let kafka = sideline_testkit::Tansu::start();

    // The units.
    let var = dir.path().join("var-lib-sideline");
    std::fs::create_dir_all(&var).unwrap();
    let brokers = ("SIDELINE__KAFKA__BROKERS", kafka.brokers());
    let mut units: Vec<(&str, Unit)> = Vec::new();
    for (role, unit) in [
        ("ingest", "sideline-ingest.service"),
        ("process", "sideline-process.service"),
        ("alert", "sideline-alert.service"),
        ("archive", "sideline-archive.service"),
        ("bench", "sideline-bench.service"),
    ] {
        let mut env = vec![brokers.clone()];
        if role == "ingest" {
            // The shipped 127.0.0.1:1883 is the fixture's own plain loopback listener here.
            env.push(("SIDELINE__MQTT__PORT", broker.port.to_string()));
        }
        units.push((role, Unit::start(unit, &etc, &var, &env)));
    }
    let logs = |units: &[(&str, Unit)]| -> String {
        units
            .iter()
            .map(|(r, u)| format!("--- {r}\n{}", u.log()))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Alertmanager and Prometheus, both as shipped.
    let am = dir.path().join("alertmanager");
    std::fs::create_dir_all(am.join("secrets")).unwrap();
    std::fs::copy(
        deploy().join("alertmanager/alertmanager.yml"),
        am.join("alertmanager.yml"),
    )
    .unwrap();
    std::fs::write(am.join("secrets/ops-webhook"), format!("{it_hook}\n")).unwrap();
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

    // Every unit ready.
    let t0 = std::time::Instant::now();
    for port in [9301u16, 9302, 9303, 9304, 9305] {
        while !get(port, "/readyz", "").await.starts_with("HTTP/1.1 200") {
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "the service on {port} is not ready:\n{}",
                logs(&units)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    // The roster as the operator publishes it: the recording's pods, and the players' names.
    let zxy = sideline_e2e::data_dir()
        .join("zxy_alfheim/zxy_tromso_anzhi_2013-11-07_excerpt_long.csv.gz");
    let bin = sideline_e2e::sideline_bin();
    let out = Command::new(&bin)
        .args(["replay", "--format", "zxy", "--print-roster"])
        .arg(&zxy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut roster = String::from_utf8(out.stdout).unwrap();
    let players: std::collections::BTreeSet<String> = roster
        .lines()
        .filter_map(|l| l.strip_prefix("player = \""))
        .map(|p| p.trim_end_matches('"').to_string())
        .collect();
    assert!(players.len() >= 10, "{roster}");
    // One player back from a hamstring strain this season, with a weak Nordic, short
    // fascicles and in the squad's oldest third: 1.6 + 1.5 + 1.4 + 0.5 = 5.0 points of
    // susceptibility, red from his first scored seconds.
    let at_risk = players.iter().nth(1).unwrap().clone();
    for (i, p) in players.iter().enumerate() {
        roster += &format!(
            "\n[[athletes]]\nplayer = \"{p}\"\ndisplay_name = \"Tromsø player {}\"\nsquad_number = {}\n",
            i + 1,
            i + 1
        );
        if *p == at_risk {
            roster += "susceptibility = { hamstring = \"recent\", nordic_n = 240.0, \
                       bflh_fascicle_cm = 9.8, older_age_band = true }\n";
        }
    }
    std::fs::write(dir.path().join("roster.toml"), &roster).unwrap();
    let out = Command::new(&bin)
        .args(["roster", "publish", "--brokers", &kafka.brokers(), "--file"])
        .arg(dir.path().join("roster.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // The recording, replayed at 30× with the replay tool's account.
    std::fs::write(
        dir.path().join("replay.toml"),
        "[mqtt]\nusername = \"sideline-replay\"\npassword = \"replay-password-0123456789\"\n",
    )
    .unwrap();
    let replay = Command::new(&bin)
        .args(["replay", "--format", "zxy", "--speed", "30", "--mqtt"])
        .arg(format!("127.0.0.1:{}", broker.port))
        .arg("--config")
        .arg(dir.path().join("replay.toml"))
        .arg(&zxy)
        .output()
        .unwrap();
    assert!(replay.status.success(), "{replay:?}");

    // The bench, signed in: the players by name, with their scores.
    let creds = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("bench:{bench_password}"))
    };
    let auth = format!("Authorization: Basic {creds}\r\n");
    assert!(
        get(9305, "/api/squad", "")
            .await
            .starts_with("HTTP/1.1 401")
    );
    let t1 = std::time::Instant::now();
    loop {
        let squad = get(9305, "/api/squad", &auth).await;
        let named = squad.matches("\"name\":\"Tromsø player ").count();
        if named >= 10 {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(120),
            "the bench shows {named} named players: {}\n{}",
            &squad[..squad.len().min(500)],
            logs(&units)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let browser = sideline_testkit::browser::chromium();
    let page = sideline_testkit::browser::dom(
        &browser,
        &format!("http://bench:{bench_password}@127.0.0.1:9305/?stream_max=2"),
    );
    assert!(page.contains("signed in: Bench staff"), "who is signed in");
    let rows = page.matches("<tr class=\"player\" data-player=\"").count();
    assert!(rows >= 10, "{rows} rows on the page");
    assert!(page.contains("<b>Tromsø player "), "names on the page");
    assert!(page.contains("<span class=\"band "), "bands on the page");
    // The recording's own alert: home-1's pod loses its signal for 41 s (a gap in the data),
    // shown in the feed by his name.
    let feed = page.split("id=\"feed\"").nth(1).unwrap_or_default();
    assert!(
        feed.contains("data-player=\"home-1\"") && feed.contains("<b>Tromsø player 1</b> device"),
        "the feed: {}",
        &feed[..feed.len().min(1500)]
    );

    // His red, in the staff's chat and waiting for the medical channel (the shipped route
    // escalates a red nobody acknowledges in 5 minutes), is acknowledged on the bench page:
    // its button pressed in Chromium, signed in. The page shows who; the alerter reads the
    // acknowledgement from the acks topic, tells the chat, and no escalation waits any more.
    let escalations_waiting = async || -> Option<i64> {
        let m = get(9303, "/metrics", "").await;
        m.lines()
            .find_map(|l| l.strip_prefix("sideline_alerter_escalations_waiting "))
            .and_then(|v| v.trim().parse().ok())
    };
    let t4 = std::time::Instant::now();
    while escalations_waiting().await != Some(1) {
        assert!(
            t4.elapsed() < Duration::from_secs(90),
            "no red of {at_risk} waiting to escalate ({:?}); staff chat: {:?}\n{}",
            escalations_waiting().await,
            staff_chat.lock().unwrap(),
            logs(&units)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        staff_chat
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains(&format!("RED — {at_risk}"))),
        "the red in the staff's chat: {:?}",
        staff_chat.lock().unwrap()
    );
    let ack_button = format!(r#"#feed li.critical[data-player="{at_risk}"] [data-ack]"#);
    let basic = format!("Basic {creds}");
    let _page = tokio::task::block_in_place(|| {
        let mut p = sideline_testkit::cdp::Page::open(
            &browser,
            "http://127.0.0.1:9305/",
            &[("Authorization", &basic)],
            800,
            1280,
        );
        p.until(
            "the red can be acknowledged on the page",
            &format!("!!document.querySelector('{ack_button}')"),
            Duration::from_secs(30),
        );
        p.click(&ack_button);
        p.until(
            "the page shows who acknowledged the red",
            &format!(
                r#"(() => {{ const li = document.querySelector('#feed li.critical[data-player="{at_risk}"]');
                    return !!li && li.textContent.includes("✓ Bench staff")
                        && !li.querySelector("[data-ack]"); }})()"#
            ),
            Duration::from_secs(30),
        );
        p
    });
    let t5 = std::time::Instant::now();
    while !staff_chat
        .lock()
        .unwrap()
        .iter()
        .any(|b| b.contains("red acknowledged by Bench staff"))
        || escalations_waiting().await != Some(0)
    {
        assert!(
            t5.elapsed() < Duration::from_secs(60),
            "the alerter did not take the bench's acknowledgement: escalations waiting {:?}; staff chat: {:?}\n{}",
            escalations_waiting().await,
            staff_chat.lock().unwrap(),
            logs(&units)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        medical_chat.lock().unwrap().is_empty(),
        "escalated: {:?}",
        medical_chat.lock().unwrap()
    );

    // Every player's final totals on the metrics topic are the offline engine's on the
    // same batches (the pipeline changes no figure; once the stream is idle,
    // `idle_advance_s` as shipped, the last seconds close).
    let want = offline_totals(&zxy);
    let mut metrics_topic =
        sideline_testkit::kafka::TopicReader::new(&kafka.brokers(), "sideline.metrics.v1");
    let mut latest: std::collections::BTreeMap<String, (i64, sideline_wire::pb::Totals)> =
        Default::default();
    let t3 = std::time::Instant::now();
    loop {
        let seen = metrics_topic.records().len();
        tokio::task::block_in_place(|| metrics_topic.catch_up());
        for r in &metrics_topic.records()[seen..] {
            let m = <sideline_wire::pb::PlayerMetrics as prost::Message>::decode(
                r.value.as_deref().unwrap(),
            )
            .unwrap();
            let e = latest
                .entry(m.player_id.clone())
                .or_insert((i64::MIN, Default::default()));
            if m.t_us >= e.0 {
                *e = (m.t_us, m.totals.unwrap_or_default());
            }
        }
        let differ: Vec<&String> = want
            .iter()
            .filter(|(p, t)| latest.get(*p).is_none_or(|(_, got)| got != *t))
            .map(|(p, _)| p)
            .collect();
        if differ.is_empty() {
            break;
        }
        assert!(
            t3.elapsed() < Duration::from_secs(120),
            "final totals differ from the offline engine's for {differ:?}:\n{}\n{}",
            differ
                .iter()
                .map(|p| format!(
                    "{p}: pipeline {:?}\n  offline {:?}",
                    latest.get(*p),
                    want[*p]
                ))
                .collect::<Vec<_>>()
                .join("\n"),
            logs(&units)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "final totals of {} players equal the offline engine's {:.0} s after the replay",
        want.len(),
        t1.elapsed().as_secs_f64()
    );

    // Prometheus scrapes all five; then the processor stops, and the IT chat hears of it.
    let t2 = std::time::Instant::now();
    loop {
        let r = get(
            prom_port,
            "/api/v1/query?query=count(up%7Bjob%3D~%22sideline-.*%22%7D%3D%3D1)",
            "",
        )
        .await;
        if r.contains("\"5\"]") {
            break;
        }
        assert!(
            t2.elapsed() < Duration::from_secs(60),
            "Prometheus does not see five services up: {r}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stopped = std::time::Instant::now();
    units
        .iter_mut()
        .find(|(r, _)| *r == "process")
        .unwrap()
        .1
        .stop();
    let arrived = loop {
        let bodies = it_chat.lock().unwrap().clone();
        if let Some(b) = bodies
            .iter()
            .find(|b| b.contains("SidelineServiceDown") && b.contains("sideline-processor"))
        {
            break Some(b.clone());
        }
        if stopped.elapsed() > Duration::from_secs(180) {
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
            "no SidelineServiceDown for the processor at the IT webhook in 180 s; alertmanager: {}\nprometheus: {}",
            std::fs::read_to_string(am.join("log")).unwrap_or_default(),
            std::fs::read_to_string(prom.join("log")).unwrap_or_default()
        )
    });
    // What the IT person reads: which service, and that it is not answering.
    assert!(body.contains("is not answering scrapes"), "{body}");
    // Only the stopped one.
    let all = it_chat.lock().unwrap().join("\n");
    for other in ["ingest", "alerter", "archive", "bench"] {
        assert!(
            !all.contains(&format!("sideline-{other} on")),
            "{other} reported down: {all}"
        );
    }
    eprintln!(
        "SidelineServiceDown reached the IT chat {:.0} s after the processor stopped",
        stopped.elapsed().as_secs_f64()
    );
}
