//! `sideline demo` end to end in one process, as a user runs it: the simulator publishes a whole
//! match to the embedded broker at 60× real time; ingest, the in-process bus and the engine
//! turn it into per-player figures equal to the offline run of the same seed, the scripted
//! at-risk player raises "rising" at least 3 minutes before red, the API serves it, and the
//! alerts reach a chat webhook (Slack format, a local receiver) with working acknowledge links.
//! With `--history`, the players' baselines come from an archive's history instead.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use sideline_alerter::render::Format;
use sideline_cli::publish::PublishArgs;
use sideline_cli::simulate::{SimulateArgs, match_config};
use sideline_demo::chat::ChatConfig;
use sideline_demo::{Demo, DemoConfig};
use sideline_engine::{AlertKind, Params, Severity};
use sideline_testkit::brokers::free_port;
use tokio_util::sync::CancellationToken;

fn local() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> String {
    get_status(addr, path)
        .await
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default()
}

async fn get_status(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut b = String::new();
    s.read_to_string(&mut b).await.unwrap();
    b
}

/// Every player's latest totals in the demo equal his final offline totals.
fn at_offline_totals(demo: &Demo, offline: &sideline_sim::offline::MatchRun) -> bool {
    let latest = demo.latest.read().unwrap();
    offline
        .last
        .iter()
        .all(|(p, m)| latest.get(p).is_some_and(|l| l.totals == m.totals))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_gives_the_offline_figures_and_warns_before_red() {
    let v5 = local();
    let sim_args = SimulateArgs {
        publish: PublishArgs {
            mqtt: v5.to_string(),
            config: None,
            // Fast, but paced: the embedded broker keeps a bounded backlog for a slow
            // subscriber (see the README), and ingest must keep up.
            speed: 60.0,
            json: false,
        },
        seed: 7,
        half_min: 45.0,
        break_min: 1.0,
        session: "demo-test".into(),
        print_roster: false,
        substitutions: false,
        raw_gnss: false,
    };
    let mcfg = match_config(&sim_args, sideline_cli::publish::now_us());

    // A local Slack-like webhook receiver.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                async |State(b): State<Arc<Mutex<Vec<String>>>>, body: String| {
                    b.lock().unwrap().push(body);
                    "ok"
                },
            ),
        )
        .with_state(bodies.clone());
    tokio::spawn(async move { axum::serve(hook, app).await });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo = Demo::start(
        DemoConfig {
            mqtt_v4: local(),
            mqtt_v5: v5,
            sim: mcfg.clone(),
            speed: 60.0,
            console: false,
            chat: Some(ChatConfig {
                url: hook_url,
                format: Format::Slack,
                outbox_dir: None,
            }),
            baselines: Default::default(),
        },
        listener,
    )
    .await
    .unwrap();
    let http = demo.http;

    let t0 = Instant::now();
    sideline_cli::simulate::publish_match(
        &sim_args.publish,
        mcfg.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    eprintln!("published in {:.1} s", t0.elapsed().as_secs_f64());
    // Wait until everything published has been processed and the final seconds closed.
    let offline = sideline_sim::offline::run_match(mcfg.clone(), Params::default(), |_| {});
    let deadline = Instant::now() + Duration::from_secs(420);
    let (mut last_count, mut last_change) = (String::new(), Instant::now());
    loop {
        if at_offline_totals(&demo, &offline) {
            break;
        }
        let m = get(http, "/metrics").await;
        let count = m
            .lines()
            .find(|l| l.starts_with("sideline_processor_samples_total"))
            .unwrap_or_default()
            .to_string();
        if count != last_count {
            (last_count, last_change) = (count, Instant::now());
        }
        // Either slow (the deadline) or stuck (nothing processed for a minute: lost messages).
        if Instant::now() > deadline || last_change.elapsed() > Duration::from_secs(60) {
            let pick = |name: &str| {
                m.lines()
                    .find(|l| l.starts_with(name))
                    .unwrap_or_default()
                    .to_string()
            };
            panic!(
                "the demo never reached the offline totals: {} / {} / {}",
                pick("sideline_ingest_messages_accepted_total"),
                pick("sideline_processor_samples_total"),
                pick("sideline_processor_late_samples_total")
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("caught up {:.1} s after start", t0.elapsed().as_secs_f64());
    let metrics = get(http, "/metrics").await;
    let late: f64 = metrics
        .lines()
        .find(|l| l.starts_with("sideline_processor_late_samples_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert_eq!(late, 0.0);

    // The scripted escalation: rising well before red, as offline (from the view's feed).
    let alerts: Vec<sideline_bench::model::AlertItem> = demo
        .view
        .read()
        .unwrap()
        .alerts(None)
        .into_iter()
        .map(|f| f.alert)
        .collect();
    let first = |kind: AlertKind, sev: Severity| {
        alerts
            .iter()
            .filter(|a| a.player == "home-07" && a.kind == kind.as_str())
            .filter(|a| a.severity == sev.as_str() && !a.resolved())
            .map(|a| a.t)
            .min()
    };
    let rising = first(AlertKind::StrainRiskRising, Severity::Warning).expect("rising");
    let red = first(AlertKind::StrainRisk, Severity::Critical).expect("red");
    assert!(
        red - rising >= 180_000_000,
        "rising only {} s before red",
        (red - rising) / 1_000_000
    );

    // The API: the home team's 11 players (the away team's are its own squad), the at-risk
    // one on top by name, his history, the feed.
    let squad: serde_json::Value =
        serde_json::from_str(&get(http, "/api/squad?team=home").await).unwrap();
    let players = squad["players"].as_array().unwrap();
    assert_eq!(players.len(), 11);
    assert_eq!(players[0]["player"], "home-07");
    assert_eq!(players[0]["name"], "Home #7");
    let away: serde_json::Value =
        serde_json::from_str(&get(http, "/api/squad?team=away").await).unwrap();
    assert_eq!(away["players"].as_array().unwrap().len(), 11);
    let p: serde_json::Value =
        serde_json::from_str(&get(http, "/api/players/home-07?team=home").await).unwrap();
    assert!(p["history"].as_array().unwrap().len() > 5000);
    let feed: serde_json::Value =
        serde_json::from_str(&get(http, "/api/alerts?team=home").await).unwrap();
    assert!(!feed.as_array().unwrap().is_empty());

    // Chat: the scripted player's warning arrives as Block Kit, with a link back to the demo
    // that the demo recognises (200 while open, 404 once over; never 403). (At demo speed an
    // earlier short alert of his may come first as a "clear: … is over" entry, which has no
    // link.)
    let base = format!("http://{http}/ack/");
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        let found = bodies
            .lock()
            .unwrap()
            .iter()
            .find(|b| b.contains("home-07") && b.contains(&base))
            .cloned();
        if let Some(m) = found {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no chat message about home-07 with an acknowledge link"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let v: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert!(!v["blocks"].as_array().unwrap().is_empty(), "{message}");
    let at = message
        .find(&base)
        .expect("an acknowledge link to the demo");
    let link: String = message[at..]
        .chars()
        .take_while(|c| !matches!(c, '"' | '|' | '>' | ' '))
        .collect();
    let page = get_status(http, &link[format!("http://{http}").len()..]).await;
    assert!(
        page.starts_with("HTTP/1.1 200") || page.starts_with("HTTP/1.1 404"),
        "{link}: {page}"
    );
    let forged = get_status(http, "/ack/x.y").await;
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    // Staff see no duplicate: every message body is distinct.
    let all = bodies.lock().unwrap().clone();
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len());
    eprintln!("{} chat messages", all.len());
    demo.shutdown().await;
}

/// `sideline demo --history DIR`: the players' baselines are computed from an archive's
/// history (three weeks written by `sideline history`), and the live score's history terms
/// use them: the 7-day z-score and rise are the ones those baselines give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_scores_with_baselines_from_an_archived_history() {
    use sideline_engine::risk::{TermId, TermState};
    let dir = tempfile::tempdir().unwrap();
    let today = sideline_cli::publish::now_us().div_euclid(86_400_000_000);
    sideline_cli::history_cmd::generate(dir.path(), 3, today, 5.0).unwrap();
    let baselines = sideline_cli::baselines_cmd::from_archive(
        dir.path(),
        chrono_tz::UTC,
        sideline_cli::publish::now_us(),
        &sideline_engine::Params::default().history,
    )
    .await
    .unwrap();
    assert_eq!(baselines.len(), 22);

    let v5 = local();
    let sim_args = SimulateArgs {
        publish: PublishArgs {
            mqtt: v5.to_string(),
            config: None,
            speed: 60.0,
            json: false,
        },
        seed: 7,
        half_min: 3.0,
        break_min: 0.5,
        session: "demo-history".into(),
        print_roster: false,
        substitutions: false,
        raw_gnss: false,
    };
    // Kick-off now, after the history (event time then starts near the wall clock).
    let mcfg = match_config(&sim_args, sideline_cli::publish::now_us());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo = Demo::start(
        DemoConfig {
            mqtt_v4: local(),
            mqtt_v5: v5,
            sim: mcfg.clone(),
            speed: 60.0,
            console: false,
            chat: None,
            baselines: baselines.clone(),
        },
        listener,
    )
    .await
    .unwrap();
    sideline_cli::simulate::publish_match(
        &sim_args.publish,
        mcfg.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    // Wait until every player's totals equal the offline engine's for the same match: every
    // batch published arrived (the first round too, published as soon as `start` returned).
    let offline = sideline_sim::offline::run_match(mcfg.clone(), Params::default(), |_| {});
    let deadline = Instant::now() + Duration::from_secs(180);
    while !at_offline_totals(&demo, &offline) {
        if Instant::now() > deadline {
            let received = get(demo.http, "/metrics")
                .await
                .lines()
                .filter(|l| l.starts_with("sideline_ingest_messages_received_total"))
                .collect::<String>();
            let players = demo.latest.read().unwrap().len();
            panic!("the demo never reached the offline totals: {players} players, {received}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut checked = 0;
    {
        let v = demo.latest.read().unwrap();
        for (player, b) in &baselines {
            let latest = &v[player.as_str()];
            let term = |id: TermId| latest.risk.terms.iter().find(|t| t.id == id).unwrap();
            let hsr = latest.totals.hsr_m;
            let week = b.hsr_prev6d_m.unwrap() + hsr;
            let rise = term(TermId::BWeekRise);
            assert_ne!(rise.state, TermState::Unknown, "{player}");
            let want = week - b.hsr_prior7d_m.unwrap();
            assert!(
                (rise.value.unwrap() - want).abs() < 1e-9,
                "{player}: rise {rise:?}, want {want}"
            );
            let z = term(TermId::BHsrZ);
            match (b.hsr_7d_mean_m, b.hsr_7d_sd_m) {
                (Some(m), Some(sd)) if sd > 0.0 => {
                    let want = (week - m) / sd;
                    assert!(
                        (z.value.unwrap() - want).abs() < 1e-9,
                        "{player}: z {z:?}, want {want}"
                    );
                    checked += 1;
                }
                _ => assert_eq!(z.state, TermState::Unknown, "{player}"),
            }
        }
    }
    assert!(checked >= 20, "z-scores checked for {checked} players");
    demo.shutdown().await;
}
