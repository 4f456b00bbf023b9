//! Delivery against local HTTP receivers that behave like each chat service: Slack (200 "ok",
//! 429 with `Retry-After` and a JSON body), Discord (204, 429 with `retry_after` in
//! milliseconds and no header), Teams (202, slow answers, 503s), and a generic webhook (500
//! every third request). A burst of alerts under a 429 storm arrives completely, in order per
//! player, with no duplicates; and after a crash and a replay of every event, still exactly
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus::Registry;
use sideline_alerter::alerter::{Alerter, Setup};
use sideline_alerter::delivery::{Target, Timing};
use sideline_alerter::item::{Resolution, TermLine};
use sideline_alerter::metrics::AlerterMetrics;
use sideline_alerter::render::Format;
use sideline_alerter::{Item, Policy, Route, Severity, State as St};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Receiver {
    format: Format,
    started: Instant,
    storm: Duration,
    calls: Arc<Mutex<u64>>,
    got: Arc<Mutex<Vec<String>>>,
}

async fn handle(State(r): State<Receiver>, _h: HeaderMap, body: String) -> Response {
    let n = {
        let mut c = r.calls.lock().unwrap();
        *c += 1;
        *c
    };
    let storm = r.started.elapsed() < r.storm || n % 7 == 0;
    match r.format {
        Format::Slack if storm => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            r#"{"retry_after":1,"ok":false,"error":"rate_limited"}"#,
        )
            .into_response(),
        Format::Discord if storm => (
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"message":"You are being rate limited.","retry_after":700,"global":false}"#,
        )
            .into_response(),
        Format::Teams if storm => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response()
        }
        Format::Teams if n % 5 == 0 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        Format::Webhook if storm || n % 3 == 0 => {
            (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response()
        }
        f => {
            if f == Format::Teams {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            r.got.lock().unwrap().push(body);
            match f {
                Format::Slack => (StatusCode::OK, "ok").into_response(),
                Format::Discord => StatusCode::NO_CONTENT.into_response(),
                Format::Teams => StatusCode::ACCEPTED.into_response(),
                Format::Webhook => StatusCode::OK.into_response(),
            }
        }
    }
}

async fn receiver(format: Format, storm: Duration) -> (String, Receiver) {
    let r = Receiver {
        format,
        started: Instant::now(),
        storm,
        calls: Arc::default(),
        got: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(handle))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, r)
}

const FORMATS: [Format; 4] = [
    Format::Slack,
    Format::Discord,
    Format::Teams,
    Format::Webhook,
];

fn setup(dir: &std::path::Path, urls: &[String]) -> Setup {
    let names: Vec<String> = FORMATS.iter().map(|f| f.as_str().to_string()).collect();
    Setup {
        policy: Policy {
            timing: sideline_alerter::Timing {
                group_wait_s: 1,
                ..Default::default()
            },
            routes: vec![Route {
                teams: vec![],
                kinds: vec![],
                min_severity: Severity::Warning,
                destinations: names.clone(),
                escalate_to: None,
                escalate_after_s: 300,
            }],
            send_resolved: BTreeMap::new(),
        },
        targets: FORMATS
            .iter()
            .zip(urls)
            .map(|(f, u)| Target {
                name: f.as_str().into(),
                format: *f,
                url: u.clone(),
                rate_per_s: 20.0,
                burst: 5.0,
            })
            .collect(),
        timing: Timing {
            timeout: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(5),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
            max_age: Duration::from_secs(600),
        },
        outbox_dir: dir.to_path_buf(),
        links: None,
    }
}

/// Player `i` (each in a team of their own, so each change is a message): warning, red, clear.
fn wave(i: usize, step: usize) -> Item {
    let (severity, state) = match step {
        0 => (Severity::Warning, St::Firing),
        1 => (Severity::Critical, St::Updated),
        _ => (Severity::Critical, St::Resolved),
    };
    Item {
        id: format!("risk-p{i:02}"),
        kind: "strain_risk".into(),
        severity,
        state,
        resolution: (step == 2).then_some(Resolution::Cleared),
        player: format!("p{i:02}"),
        team: format!("t{i:02}"),
        session: "s".into(),
        t_us: 1_768_057_200_000_000 + step as i64 * 60_000_000,
        since_us: 1_768_057_200_000_000,
        value: 3.0 + step as f64,
        threshold: 3.0,
        band: ["amber", "red", "green"][step].into(),
        terms: vec![TermLine {
            label: "previous hamstring injury".into(),
            points: 1.0,
        }],
        to_red_min: None,
        to_red_long_rate_min: None,
        full_time_in_min: None,
        completeness: Some(1.0),
        band_floor: false,
        summary: String::new(),
        params_version: "v1".into(),
    }
}

/// What each player's messages said, in arrival order: "warning", "red", "clear".
fn per_player(bodies: &[String]) -> BTreeMap<String, Vec<&'static str>> {
    let mut out: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for b in bodies {
        for i in 0..PLAYERS {
            let p = format!("p{i:02}");
            let said = if b.contains(&format!("🔴 RED — {p}")) {
                "red"
            } else if b.contains(&format!("✅ {p} clear")) {
                "clear"
            } else if b.contains(&format!("🟠 {p}:")) {
                "warning"
            } else {
                continue;
            };
            out.entry(p).or_default().push(said);
        }
    }
    out
}

const PLAYERS: usize = 30;

/// Wait until every receiver has `want` messages and the outbox is empty: nothing more will
/// be sent (a message leaves the outbox only once delivered).
async fn wait_delivered(a: &Alerter, receivers: &[Receiver], want: usize, limit: Duration) {
    let t0 = Instant::now();
    while a.pending() > 0 || receivers.iter().any(|r| r.got.lock().unwrap().len() < want) {
        assert!(
            t0.elapsed() < limit,
            "not delivered in {limit:?}: {:?}",
            receivers
                .iter()
                .map(|r| r.got.lock().unwrap().len())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn offer_waves(a: &mut Alerter, steps: std::ops::Range<usize>) {
    for step in steps {
        for i in 0..PLAYERS {
            a.offer(wave(i, step));
        }
        for _ in 0..6 {
            a.tick();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn check(receivers: &[Receiver]) {
    for r in receivers {
        let got = r.got.lock().unwrap();
        let seq = per_player(&got);
        assert_eq!(seq.len(), PLAYERS, "{}", r.format.as_str());
        for (p, s) in seq {
            assert_eq!(s, ["warning", "red", "clear"], "{} {p}", r.format.as_str());
        }
        assert_eq!(got.len(), 3 * PLAYERS, "{}: duplicates", r.format.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_under_a_429_storm_arrives_complete_in_order_and_once() {
    let mut urls = Vec::new();
    let mut receivers = Vec::new();
    for f in FORMATS {
        let (u, r) = receiver(f, Duration::from_secs(3)).await;
        urls.push(u);
        receivers.push(r);
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    let metrics = AlerterMetrics::new(&registry).unwrap();
    let stop = CancellationToken::new();
    let (mut a, tasks) =
        Alerter::start(setup(dir.path(), &urls), metrics.clone(), stop.clone()).unwrap();
    offer_waves(&mut a, 0..3).await;
    wait_delivered(&a, &receivers, 3 * PLAYERS, Duration::from_secs(120)).await;
    check(&receivers);
    for f in FORMATS {
        let d = f.as_str();
        assert_eq!(
            metrics.delivered.with_label_values(&[d]).get(),
            3 * PLAYERS as u64
        );
        assert_eq!(
            metrics
                .dropped
                .with_label_values(&[d, "rejected_4xx"])
                .get(),
            0
        );
    }
    assert!(metrics.rate_limited.with_label_values(&["slack"]).get() > 0);
    assert!(metrics.rate_limited.with_label_values(&["discord"]).get() > 0);
    assert!(metrics.retried.with_label_values(&["webhook", "5xx"]).get() > 0);
    assert_eq!(a.pending(), 0);
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_delivery_and_a_replay_of_every_event_still_deliver_once() {
    let mut urls = Vec::new();
    let mut receivers = Vec::new();
    for f in FORMATS {
        // A long storm: the crash comes while messages wait in the outbox.
        let (u, r) = receiver(f, Duration::from_secs(6)).await;
        urls.push(u);
        receivers.push(r);
    }
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let m1 = AlerterMetrics::new(&Registry::new()).unwrap();
    let (mut a, tasks) = Alerter::start(setup(dir.path(), &urls), m1, stop.clone()).unwrap();
    offer_waves(&mut a, 0..2).await;
    // Crash: delivery stops mid-storm, the core is dropped without another tick.
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    drop(a);
    let before: Vec<usize> = receivers
        .iter()
        .map(|r| r.got.lock().unwrap().len())
        .collect();
    assert!(
        before.iter().all(|n| *n < 2 * PLAYERS),
        "the crash came too late: {before:?}"
    );

    // Restart on the same directory; the consumer re-reads every event from the start.
    let stop = CancellationToken::new();
    let m2 = AlerterMetrics::new(&Registry::new()).unwrap();
    let (mut a, tasks) =
        Alerter::start(setup(dir.path(), &urls), m2.clone(), stop.clone()).unwrap();
    offer_waves(&mut a, 0..3).await;
    wait_delivered(&a, &receivers, 3 * PLAYERS, Duration::from_secs(120)).await;
    check(&receivers);
    assert_eq!(
        m2.consumed.with_label_values(&["replayed"]).get(),
        2 * PLAYERS as u64,
        "the re-read events were recognised"
    );
    assert_eq!(a.open_alerts(), 0);
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}
