//! `sideline alert` as a real process on a real Kafka-protocol broker (tansu), posting to a
//! local receiver that behaves like Slack (429 with `Retry-After` during a storm, then 200
//! "ok"). It is killed with SIGKILL while messages wait in its outbox and restarted: every
//! player's warning, red and clear arrive once each, in order; the acknowledge link in a red
//! message works, a tampered one is refused, and once the alert is over the link says so.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::{http_get, http_post_form, sum_metric};
use prost::Message as _;
use sideline_testkit::Tansu;
use sideline_testkit::brokers::free_port;
use sideline_wire::pb;

const PLAYERS: usize = 12;

#[derive(Clone)]
struct Slack {
    storm_until: Arc<Mutex<Instant>>,
    got: Arc<Mutex<Vec<String>>>,
}

async fn slack(State(s): State<Slack>, body: String) -> Response {
    if Instant::now() < *s.storm_until.lock().unwrap() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            r#"{"retry_after":1,"ok":false,"error":"rate_limited"}"#,
        )
            .into_response();
    }
    s.got.lock().unwrap().push(body);
    (StatusCode::OK, "ok").into_response()
}

fn alert(i: usize, step: usize) -> (String, Option<Vec<u8>>) {
    use pb::alert::{Kind, Resolution, Severity, State};
    let (sev, state, band) = match step {
        0 => (Severity::Warning, State::Firing, pb::Band::Amber),
        1 => (Severity::Critical, State::Updated, pb::Band::Red),
        _ => (Severity::Critical, State::Resolved, pb::Band::Green),
    };
    let a = pb::Alert {
        id: format!("risk-p{i:02}"),
        kind: Kind::StrainRisk as i32,
        severity: sev as i32,
        state: state as i32,
        player_id: format!("p{i:02}"),
        team_id: format!("t{i:02}"),
        session_id: "s".into(),
        t_us: 1_768_057_200_000_000 + step as i64 * 60_000_000,
        since_us: 1_768_057_200_000_000,
        value: 3.0 + step as f64,
        threshold: 3.0,
        band: band as i32,
        resolution: if step == 2 {
            Resolution::Cleared as i32
        } else {
            0
        },
        ..Default::default()
    };
    (format!("p{i:02}"), Some(a.encode_to_vec()))
}

/// Serve `app` on a free loopback port; the URL of its `/hook`.
async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    hook
}

/// A configuration file for one destination `bench` at `hook` and a free admin address; the
/// extras are lines added to `[alerter]` and to the destination.
fn write_config(
    brokers: &str,
    hook: &str,
    alerter: &str,
    format: &str,
    destination: &str,
) -> (tempfile::TempDir, std::net::SocketAddr, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("alert.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\npartitions = 3\n\
             [alerter]\noutbox_dir = \"{}\"\npublic_url = \"http://{http}\"\nack_secret = \"a test secret of 32 characters!!\"\n{alerter}\
             [alerter.timing]\ngroup_wait_s = 1\n\
             [[alerter.destinations]]\nname = \"bench\"\nformat = \"{format}\"\nurl = \"{hook}\"\n{destination}\
             [[alerter.routes]]\ndestinations = [\"bench\"]\n\
             [http]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n",
            dir.path().join("outbox").display()
        ),
    )
    .unwrap();
    (dir, http, config)
}

struct Alerter {
    child: Child,
    http: std::net::SocketAddr,
}

fn spawn(config: &std::path::Path, http: std::net::SocketAddr) -> Alerter {
    let child = Command::new(env!("CARGO_BIN_EXE_sideline"))
        .arg("alert")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Alerter { child, http }
}

impl Alerter {
    async fn metric(&self, name: &str) -> f64 {
        sum_metric(&http_get(self.http, "/metrics").await, name)
    }

    /// Wait until nothing more can be sent: the group has committed the end of the alerts
    /// topic (the alerter commits once its outbox holds what it read) and the outbox is empty.
    async fn until_drained(&self, brokers: &str) {
        until("the alerter drained", Duration::from_secs(60), async || {
            self.metric("sideline_alerter_outbox_pending").await == 0.0
                && tokio::task::block_in_place(|| {
                    sideline_testkit::kafka::group_at_end(
                        brokers,
                        "sideline-alerter",
                        "sideline.alerts.v1",
                    )
                })
        })
        .await;
    }
}

impl Drop for Alerter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < limit, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sequences(bodies: &[String]) -> Vec<Vec<&'static str>> {
    (0..PLAYERS)
        .map(|i| {
            let p = format!("p{i:02}");
            bodies
                .iter()
                .filter_map(|b| {
                    if b.contains(&format!("RED — {p}")) {
                        Some("red")
                    } else if b.contains(&format!("✅ {p} clear")) {
                        Some("clear")
                    } else if b.contains(&format!("🟠 {p}:")) {
                        Some("warning")
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_delivery_and_restarted_every_alert_arrives_once_and_acks_work() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let s = Slack {
        storm_until: Arc::new(Mutex::new(Instant::now() + Duration::from_secs(3600))),
        got: Arc::default(),
    };
    let hook = serve(
        axum::Router::new()
            .route("/hook", axum::routing::post(slack))
            .with_state(s.clone()),
    )
    .await;

    let (_dir, http, config) = write_config(
        &brokers,
        &hook,
        "backoff_base_ms = 100\n",
        "slack",
        "rate_per_s = 20\nburst = 5\n",
    );
    let mut first = spawn(&config, http);
    let mut records: Vec<_> = (0..PLAYERS).map(|i| alert(i, 0)).collect();
    records.push(("junk".into(), Some(b"\xff\x01 not an alert".to_vec())));
    sideline_testkit::kafka::produce(&brokers, "sideline.alerts.v1", &records);
    // Everything formed and stored, nothing delivered (the storm), then SIGKILL.
    until(
        "warnings stored in the outbox",
        Duration::from_secs(90),
        async || {
            first
                .metric("sideline_alerter_messages_enqueued_total")
                .await
                >= PLAYERS as f64
        },
    )
    .await;
    let reds: Vec<_> = (0..PLAYERS).map(|i| alert(i, 1)).collect();
    sideline_testkit::kafka::produce(&brokers, "sideline.alerts.v1", &reds);
    until(
        "reds stored in the outbox",
        Duration::from_secs(60),
        async || {
            first
                .metric("sideline_alerter_messages_enqueued_total")
                .await
                >= 2.0 * PLAYERS as f64
        },
    )
    .await;
    until(
        "the malformed record counted",
        Duration::from_secs(30),
        async || {
            first
                .metric("sideline_alerter_alerts_consumed_total{result=\"bad_malformed\"}")
                .await
                == 1.0
        },
    )
    .await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(s.got.lock().unwrap().is_empty());

    *s.storm_until.lock().unwrap() = Instant::now() + Duration::from_secs(4);
    let second = spawn(&config, http);
    until(
        "warnings and reds delivered",
        Duration::from_secs(90),
        async || {
            let seq = sequences(&s.got.lock().unwrap());
            seq.iter().all(|p| p.len() == 2)
        },
    )
    .await;
    assert!(second.metric("sideline_alerter_rate_limited_total").await >= 1.0);

    // Acknowledge p00's red through the link in the message.
    let body = s
        .got
        .lock()
        .unwrap()
        .iter()
        .find(|b| b.contains("RED — p00"))
        .cloned()
        .unwrap();
    let at = body.find(&format!("http://{http}/ack/")).unwrap();
    let link: String = body[at..]
        .chars()
        .take_while(|c| *c != '|' && *c != '"')
        .collect();
    let path = &link[format!("http://{http}").len()..];
    // The alerter serves the evidence behind the score's terms (messages with terms link it:
    // the renderers' tests).
    let evidence = http_get(http, "/evidence").await;
    assert!(
        evidence.starts_with("HTTP/1.1 200") && evidence.contains("<code>b_hsr_z</code>"),
        "{evidence}"
    );
    // Opening the link (a chat app's link preview, a URL scanner, then the person) only shows
    // a confirmation form: nothing is acknowledged by a GET.
    for _ in 0..2 {
        let page = http_get(http, path).await;
        assert!(
            page.starts_with("HTTP/1.1 200")
                && page.contains("<form method=post>")
                && page.contains("Acknowledge p00"),
            "{page}"
        );
    }
    assert_eq!(
        second
            .metric("sideline_alerter_acks_total{result=\"ok\"}")
            .await,
        0.0
    );
    // A name that is markup is refused, and never echoed unescaped.
    let bad = http_post_form(http, path, "by=%3Cscript%3Ex%3C%2Fscript%3E", "").await;
    assert!(
        bad.starts_with("HTTP/1.1 400") && !bad.contains("<script>"),
        "{bad}"
    );
    let ok = http_post_form(http, path, "by=Dr+Lee", "").await;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("Acknowledged by Dr Lee"),
        "{ok}"
    );
    // Who acknowledged is told in chat.
    until(
        "the acknowledgement told in chat",
        Duration::from_secs(30),
        async || {
            s.got
                .lock()
                .unwrap()
                .iter()
                .any(|b| b.contains("p00: red acknowledged by Dr Lee"))
        },
    )
    .await;
    // …and written to the acks topic, for the archive's `acks` table.
    let mut acks = sideline_testkit::kafka::TopicReader::new(&brokers, "sideline.acks.v1");
    until(
        "the acknowledgement on the acks topic",
        Duration::from_secs(30),
        async || {
            acks.catch_up();
            !acks.records().is_empty()
        },
    )
    .await;
    let rec = <sideline_wire::pb::AlertAck as prost::Message>::decode(
        acks.records()[0].value.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            rec.player_id.as_str(),
            rec.by.as_str(),
            rec.severity.as_str()
        ),
        ("p00", "Dr Lee", "critical")
    );
    assert_eq!(acks.records()[0].key_str(), rec.alert_id);
    let tampered = format!("{}x", path);
    assert!(http_get(http, &tampered).await.starts_with("HTTP/1.1 403"));
    assert!(
        http_post_form(http, &tampered, "by=Dr+Lee", "")
            .await
            .starts_with("HTTP/1.1 403")
    );

    sideline_testkit::kafka::produce(
        &brokers,
        "sideline.alerts.v1",
        &(0..PLAYERS).map(|i| alert(i, 2)).collect::<Vec<_>>(),
    );
    until("clears delivered", Duration::from_secs(60), async || {
        sequences(&s.got.lock().unwrap())
            .iter()
            .all(|p| p.len() == 3)
    })
    .await;
    second.until_drained(&brokers).await;
    let got = s.got.lock().unwrap().clone();
    for (i, seq) in sequences(&got).iter().enumerate() {
        assert_eq!(seq, &["warning", "red", "clear"], "p{i:02}");
    }
    assert_eq!(
        got.len(),
        3 * PLAYERS + 1,
        "no duplicates (+1: the acknowledgement)"
    );
    assert!(
        http_get(http, path).await.starts_with("HTTP/1.1 404"),
        "the alert is over"
    );
    acks.catch_up();
    assert_eq!(acks.records().len(), 1, "one acknowledgement, written once");
    assert_eq!(
        second
            .metric("sideline_alerter_acks_total{result=\"ok\"}")
            .await,
        1.0
    );
}

/// A receiver that records each request (its `Idempotency-Key` and body) as it arrives and,
/// while `hold` is set, answers only after a long pause.
#[derive(Clone, Default)]
struct Slow {
    hold: Arc<std::sync::atomic::AtomicBool>,
    got: Arc<Mutex<Vec<(String, String)>>>,
}

async fn slow(State(s): State<Slow>, headers: axum::http::HeaderMap, body: String) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    s.got.lock().unwrap().push((key, body));
    if s.hold.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    (StatusCode::OK, "ok").into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_an_http_request_the_resent_message_carries_the_same_idempotency_key() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let s = Slow::default();
    s.hold.store(true, std::sync::atomic::Ordering::SeqCst);
    let hook = serve(
        axum::Router::new()
            .route("/hook", axum::routing::post(slow))
            .with_state(s.clone()),
    )
    .await;
    let (_dir, http, config) =
        write_config(&brokers, &hook, "request_timeout_s = 60\n", "webhook", "");
    const N: usize = 3;
    let mut first = spawn(&config, http);
    sideline_testkit::kafka::produce(
        &brokers,
        "sideline.alerts.v1",
        &(0..N).map(|i| alert(i, 0)).collect::<Vec<_>>(),
    );
    // The first POST has reached the receiver, which has not answered: kill now.
    until("a request in flight", Duration::from_secs(90), async || {
        !s.got.lock().unwrap().is_empty()
    })
    .await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let in_flight = s.got.lock().unwrap()[0].clone();
    assert!(in_flight.0.starts_with("sideline-"), "{in_flight:?}");

    s.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = spawn(&config, http);
    let distinct = || {
        s.got
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    until(
        "every warning delivered",
        Duration::from_secs(90),
        async || distinct() == N,
    )
    .await;
    second.until_drained(&brokers).await;
    let got = s.got.lock().unwrap().clone();
    // The message in flight at the kill came again, with the same key and body; nothing else
    // twice. A receiver that honours the key sees each message once.
    let again: Vec<_> = got.iter().filter(|(k, _)| *k == in_flight.0).collect();
    assert_eq!(again.len(), 2, "{got:?}");
    assert!(again.iter().all(|(_, b)| *b == in_flight.1));
    assert_eq!(got.len(), N + 1, "{got:?}");
    assert_eq!(distinct(), N);
    for i in 0..N {
        assert!(
            got.iter().any(|(_, b)| b.contains(&format!("\"p{i:02}\""))),
            "p{i:02} missing"
        );
    }
    assert!(
        second
            .metric("sideline_alerter_messages_delivered_total")
            .await
            >= N as f64 - 1.0
    );
}
