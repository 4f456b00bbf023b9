//! `sideline bench` and `sideline alert` as real processes on a real Kafka-protocol broker
//! (tansu), the page in headless Chromium. The squad's profiles, a session's metrics and two
//! red alerts are on their topics; staff sign in with the staff file (Argon2, HTTP Basic).
//!
//! - Nothing is served without signing in (401 with a Basic challenge), a wrong password too.
//! - The page shows players by name and squad number, the light theme, the alert by name.
//! - A red acknowledged on the bench page (its button pressed in Chromium, driven over the
//!   DevTools protocol; the page then shows who) is written to the acks topic under the signed-in
//!   name, the chat is told who acknowledged it, and it is not escalated to the doctor,
//!   while the other red, not acknowledged, is (the same route: the control).
//! - A session whose newest data is minutes old shows the loud "no new data" banner.

use crate::bench_page::{chromium, dom};
use crate::common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use sideline_testkit::Tansu;
use sideline_testkit::brokers::free_port;
use sideline_wire::{convert, pb};

const PASSWORD: &str = "correct horse battery";

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(role: &str, config: &std::path::Path) -> Kill {
    Kill(
        Command::new(env!("CARGO_BIN_EXE_sideline"))
            .arg(role)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `(key, value, timestamp ms)` records to `topic`, waiting for Kafka.
fn produce_at(brokers: &str, topic: &str, records: &[(String, Vec<u8>, i64)]) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "10")
        .create()
        .unwrap();
    for (k, v, ts) in records {
        let r: BaseRecord<'_, String, Vec<u8>> =
            BaseRecord::to(topic).key(k).payload(v).timestamp(*ts);
        p.send(r).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

async fn request(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn red(player: &str, t_us: i64) -> pb::Alert {
    use pb::alert::{Kind, Severity, State};
    pb::Alert {
        id: format!("risk-{player}"),
        kind: Kind::StrainRisk as i32,
        severity: Severity::Critical as i32,
        state: State::Firing as i32,
        player_id: player.into(),
        team_id: "home".into(),
        session_id: "sim-match".into(),
        t_us,
        since_us: t_us,
        value: 6.5,
        threshold: 6.0,
        band: pb::Band::Red as i32,
        ..Default::default()
    }
}

async fn until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < limit, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_see_names_and_an_acknowledgement_on_the_bench_stops_the_escalation() {
    let browser = chromium();
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let mut kafka = sideline_kafka::KafkaConfig {
        brokers: brokers.clone(),
        partitions: 3,
        ..Default::default()
    };
    kafka.create_topics = true;
    common::create_topics(&kafka).await;
    let t = kafka.topics.clone();

    // The squads' profiles, a few minutes of the session's metrics (produced now), and a
    // training session whose newest data is three minutes old.
    let mcfg = sideline_sim::MatchConfig {
        half_min: 3.0,
        break_min: 0.0,
        ..sideline_sim::MatchConfig::default()
    };
    let sim = sideline_sim::MatchSim::new(mcfg.clone());
    common::produce_roster(&brokers, &kafka, &sim);
    let now_ms = sideline_bench::http::now_us() / 1000;
    let mut metrics = Vec::new();
    let mut last_t = 0;
    sideline_sim::offline::run_match(mcfg, sideline_engine::Params::default(), |m| {
        if m.t % 20_000_000 == 0 {
            metrics.push((
                m.player.to_string(),
                convert::metrics(m).encode_to_vec(),
                now_ms,
            ));
            last_t = last_t.max(m.t);
        }
    });
    let stale = metrics
        .iter()
        .filter(|(k, _, _)| k == "home-05")
        .map(|(k, v, _)| {
            let mut m = pb::PlayerMetrics::decode(&v[..]).unwrap();
            m.session_id = "training-tue".into();
            (k.clone(), m.encode_to_vec(), now_ms - 180_000)
        })
        .collect::<Vec<_>>();
    // home-02's newest second: amber reached while part of the score is unknown.
    let floor = metrics
        .iter()
        .rev()
        .find(|(k, _, _)| k == "home-02")
        .map(|(k, v, at)| {
            let mut m = pb::PlayerMetrics::decode(&v[..]).unwrap();
            m.t_us = last_t + 1_000_000;
            let r = m.risk.get_or_insert_default();
            (r.score, r.band, r.completeness) = (3.4, pb::Band::Amber as i32, Some(0.55));
            (r.ceiling, r.band_floor) = (6.3, true);
            (k.clone(), m.encode_to_vec(), *at)
        })
        .unwrap();
    metrics.push(floor);
    produce_at(&brokers, &t.metrics, &stale);
    produce_at(&brokers, &t.metrics, &metrics);

    // The alerter: reds go to the bench channel, and to the doctor after 15 s unacknowledged.
    let dir = tempfile::tempdir().unwrap();
    // Each body with when it arrived: the escalation delay is measured between arrivals.
    type Got = Arc<Mutex<Vec<(Instant, String)>>>;
    async fn hook(
        axum::extract::State(got): axum::extract::State<Got>,
        body: String,
    ) -> &'static str {
        got.lock().unwrap().push((Instant::now(), body));
        "ok"
    }
    let (bench_chat, doctor): (Got, Got) = (Arc::default(), Arc::default());
    let mut hooks = Vec::new();
    for got in [&bench_chat, &doctor] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        hooks.push(format!("http://{}/hook", l.local_addr().unwrap()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(got.clone());
        tokio::spawn(async move { axum::serve(l, app).await });
    }
    let alert_http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let alert_cfg = dir.path().join("alert.toml");
    std::fs::write(
        &alert_cfg,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\npartitions = 3\n\
             [alerter]\noutbox_dir = \"{}\"\npublic_url = \"http://{alert_http}\"\nack_secret = \"a test secret of 32 characters!!\"\n\
             [alerter.timing]\ngroup_wait_s = 1\n\
             [[alerter.destinations]]\nname = \"bench\"\nformat = \"slack\"\nurl = \"{}\"\n\
             [[alerter.destinations]]\nname = \"doctor\"\nformat = \"slack\"\nurl = \"{}\"\n\
             [[alerter.routes]]\ndestinations = [\"bench\"]\nescalate_to = \"doctor\"\nescalate_after_s = 15\n\
             [http]\nlisten = \"{alert_http}\"\n[log]\nlevel = \"warn\"\n",
            dir.path().join("outbox").display(),
            hooks[0],
            hooks[1],
        ),
    )
    .unwrap();
    let _alerter = spawn("alert", &alert_cfg);

    // The bench, behind the staff file.
    let staff = dir.path().join("staff.toml");
    std::fs::write(
        &staff,
        format!(
            "[[staff]]\nuser = \"lee\"\nname = \"Dr Lee\"\npassword = \"{}\"\n",
            sideline_bench::auth::hash_password(PASSWORD).unwrap()
        ),
    )
    .unwrap();
    let bench: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let bench_cfg = dir.path().join("bench.toml");
    std::fs::write(
        &bench_cfg,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\npartitions = 3\n\
             [bench]\nstaff_file = \"{}\"\ntime_zone = \"Europe/London\"\n\
             [http]\nlisten = \"{bench}\"\n[log]\nlevel = \"warn\"\n",
            staff.display()
        ),
    )
    .unwrap();
    let _bench = spawn("bench", &bench_cfg);

    // Two reds in the session: home-07's will be acknowledged on the bench, home-09's not.
    let alerts: Vec<(String, Vec<u8>, i64)> = ["home-07", "home-09"]
        .iter()
        .map(|p| (p.to_string(), red(p, last_t).encode_to_vec(), now_ms))
        .collect();
    produce_at(&brokers, &t.alerts, &alerts);

    // No way in without signing in.
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("lee:{PASSWORD}"));
    let auth = format!("Authorization: Basic {creds}\r\n");
    until("the bench answers", Duration::from_secs(60), async || {
        request(bench, "GET", "/healthz", "", "")
            .await
            .starts_with("HTTP/1.1 200")
    })
    .await;
    let wrong = base64::engine::general_purpose::STANDARD.encode("lee:not the password");
    for h in [String::new(), format!("Authorization: Basic {wrong}\r\n")] {
        for p in ["/", "/api/squad", "/events?max=1"] {
            let r = request(bench, "GET", p, &h, "").await;
            assert!(
                r.starts_with("HTTP/1.1 401")
                    && r.to_lowercase().contains("www-authenticate: basic"),
                "{p} {h}: {r}"
            );
        }
    }

    // The squad by name once the bench has read the topics; both reds in its feed.
    let squad_path = "/api/squad?team=home&session=sim-match";
    until(
        "the bench shows the squad and both reds",
        Duration::from_secs(60),
        async || {
            let s = request(bench, "GET", squad_path, &auth, "").await;
            let a = request(
                bench,
                "GET",
                "/api/alerts?team=home&session=sim-match",
                &auth,
                "",
            )
            .await;
            s.contains("\"name\":\"Home #7\"")
                && s.contains("\"number\":7")
                && a.contains("risk-home-09")
                && a.contains("risk-home-07")
        },
    )
    .await;
    // Both reds reached the bench channel in chat.
    until("both reds in chat", Duration::from_secs(60), async || {
        let got = bench_chat.lock().unwrap();
        ["home-07", "home-09"]
            .iter()
            .all(|p| got.iter().any(|(_, b)| b.contains(&format!("RED — {p}"))))
    })
    .await;
    let raised = bench_chat
        .lock()
        .unwrap()
        .iter()
        .find(|(_, b)| b.contains("RED — home-09"))
        .map(|(at, _)| *at)
        .unwrap();

    // Acknowledge home-07's red on the bench page: signed in, a press of its button in the
    // feed (a real browser, the page's own script doing the rest), and the page then shows
    // who acknowledged it.
    let basic = format!("Basic {creds}");
    let mut page = tokio::task::block_in_place(|| {
        let mut p = sideline_testkit::cdp::Page::open(
            &browser,
            &format!("http://{bench}/?team=home&session=sim-match"),
            &[("Authorization", &basic)],
            800,
            1280,
        );
        p.until(
            "home-07's red can be acknowledged on the page",
            r#"!!document.querySelector('#feed [data-ack="risk-home-07"]')"#,
            Duration::from_secs(30),
        );
        p.click(r#"#feed [data-ack="risk-home-07"]"#);
        p.until(
            "the page shows who acknowledged home-07's red",
            r#"(() => { const li = document.querySelector('#feed li[data-id="risk-home-07"]');
                return !!li && li.textContent.includes("✓ Dr Lee")
                    && !li.querySelector("[data-ack]"); })()"#,
            Duration::from_secs(30),
        );
        p
    });
    // On the acks topic under the signed-in name; chat is told.
    let mut acks = sideline_testkit::kafka::TopicReader::new(&brokers, &t.acks);
    until(
        "the acknowledgement on the acks topic",
        Duration::from_secs(30),
        async || {
            tokio::task::block_in_place(|| acks.catch_up());
            acks.records().iter().any(|r| {
                r.value
                    .as_deref()
                    .and_then(|v| pb::AlertAck::decode(v).ok())
                    .is_some_and(|a| {
                        a.alert_id == "risk-home-07" && a.by == "Dr Lee" && a.player_id == "home-07"
                    })
            })
        },
    )
    .await;
    // A substitution: home-07 taken off on the page (his row opened, "Went off now" pressed
    // and confirmed), home-12 brought on through the API, which refuses it without signing
    // in. Both reach the roster topic (where the processor reads them) under the signed-in
    // name.
    tokio::task::block_in_place(|| {
        page.click(r#"#squad tr.player[data-player="home-07"]"#);
        let off = r#"#squad button[data-pitch="off"][data-player="home-07"]"#;
        page.until(
            "home-07's row offers a substitution",
            &format!("!!document.querySelector('{off}')"),
            Duration::from_secs(30),
        );
        page.click(off);
        page.until(
            "the button asks to confirm",
            &format!("document.querySelector('{off}').textContent.startsWith('Confirm')"),
            Duration::from_secs(10),
        );
        page.click(off);
        page.until(
            "the page says the substitution was posted",
            r#"document.querySelector('#squad .pitch').textContent.includes("went off at")"#,
            Duration::from_secs(30),
        );
    });
    let sub = r#"{"team":"home","session":"sim-match","on":["home-12"]}"#;
    let json = "Content-Type: application/json\r\n";
    let r = request(bench, "POST", "/api/pitch", json, sub).await;
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    let r = request(bench, "POST", "/api/pitch", &format!("{auth}{json}"), sub).await;
    assert!(r.starts_with("HTTP/1.1 202"), "{r}");
    let mut roster = sideline_testkit::kafka::TopicReader::new(&brokers, &t.roster);
    until(
        "the substitution on the roster topic",
        Duration::from_secs(30),
        async || {
            tokio::task::block_in_place(|| roster.catch_up());
            let changes: Vec<_> = roster
                .records()
                .iter()
                .filter_map(|r| {
                    let key = String::from_utf8_lossy(r.key.as_deref()?).into_owned();
                    key.starts_with("pitch:home:sim-match:").then(|| {
                        sideline_wire::lineup::PitchChange::from_record(&key, r.value.as_deref())
                            .unwrap()
                    })
                })
                .collect();
            changes.len() == 2
                && changes.iter().all(|(c, _)| c.by == "Dr Lee")
                && changes
                    .iter()
                    .any(|(c, on)| c.player == "home-12" && *on == Some(true))
                && changes
                    .iter()
                    .any(|(c, on)| c.player == "home-07" && *on == Some(false))
        },
    )
    .await;
    until(
        "chat told who acknowledged",
        Duration::from_secs(30),
        async || {
            bench_chat
                .lock()
                .unwrap()
                .iter()
                .any(|(_, b)| b.contains("home-07: red acknowledged by Dr Lee"))
        },
    )
    .await;
    // The unacknowledged red escalates to the doctor; the acknowledged one does not.
    until(
        "home-09's red escalated",
        Duration::from_secs(60),
        async || {
            doctor
                .lock()
                .unwrap()
                .iter()
                .any(|(_, b)| b.contains("Escalated: home-09"))
        },
    )
    .await;
    // 15 s after the red was sent; it arrived a moment after it was sent.
    let escalated = doctor
        .lock()
        .unwrap()
        .iter()
        .find(|(_, b)| b.contains("Escalated: home-09"))
        .map(|(at, _)| *at)
        .unwrap();
    let waited = escalated.duration_since(raised);
    assert!(
        waited >= Duration::from_secs(14),
        "escalated too early: {waited:?} after the red"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to_doctor: Vec<String> = doctor
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert!(
        !to_doctor
            .iter()
            .any(|b| b.contains("home-07") && b.contains("Escalated")),
        "an acknowledged red was escalated: {to_doctor:?}"
    );

    // The feed is live (the processor produces every second): a snapshot just now.
    let fresh: Vec<_> = metrics
        .iter()
        .rev()
        .filter(|(k, _, _)| k.starts_with("home-"))
        .take(1)
        .map(|(k, v, _)| (k.clone(), v.clone(), sideline_bench::http::now_us() / 1000))
        .collect();
    produce_at(&brokers, &t.metrics, &fresh);
    // The page in a browser, signed in: names, numbers, the light theme, the acknowledged red.
    let url = format!(
        "http://lee:{}@{bench}/?team=home&session=sim-match&stream_max=2",
        PASSWORD.replace(' ', "%20")
    );
    let page = dom(&browser, &url);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bench-service.html"), &page).unwrap();
    assert!(
        page.contains("<body class=\"light\">"),
        "light theme (the page is in target/test-artefacts/bench-service.html)"
    );
    assert!(page.contains("signed in: Dr Lee"), "who");
    assert!(
        page.contains("<b>Home #7</b>") && page.contains("<b>Home #9</b>"),
        "names"
    );
    // A band reached with unknowns is a floor, and how much of the score is known is shown.
    let home2 = page
        .split("<tr class=\"player\" data-player=\"home-02\"")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_default();
    assert!(
        home2.contains(">at least amber</span>") && home2.contains("55 %"),
        "home-02's row: {home2}"
    );
    let feed = page.split("id=\"feed\"").nth(1).unwrap_or_default();
    let home7 = feed
        .split("<li")
        .find(|li| li.contains("data-id=\"risk-home-07\""))
        .unwrap_or_default();
    assert!(
        home7.contains("✓ Dr Lee") && !home7.contains("data-ack"),
        "home-07's item: {home7}"
    );
    let home9 = feed
        .split("<li")
        .find(|li| li.contains("data-id=\"risk-home-09\""))
        .unwrap_or_default();
    assert!(
        home9.contains("data-ack=\"risk-home-09\""),
        "home-09 can be acknowledged: {home9}"
    );
    assert!(
        !page.contains("id=\"stale\" role=\"alert\" class=\"on\""),
        "fresh data is not stale"
    );
    // The training session's newest data is three minutes old: said loudly.
    let url = format!(
        "http://lee:{}@{bench}/?team=home&session=training-tue&stream_max=2",
        PASSWORD.replace(' ', "%20")
    );
    let page = dom(&browser, &url);
    let banner = page.split("id=\"stale\"").nth(1).unwrap_or_default();
    let banner = banner.split("</div>").next().unwrap_or_default();
    assert!(
        banner.contains("class=\"on\"") && banner.contains("NO NEW DATA FOR 3 MIN"),
        "banner: {banner}"
    );
}
