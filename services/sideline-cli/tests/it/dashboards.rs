//! The Grafana dashboards under `grafana/` against a real Prometheus scraping a running
//! pipeline: Mosquitto and tansu, `sideline ingest`, `process`, `alert` (to a local chat
//! receiver) and `archive` as separate processes, fed with a short synthetic match by
//! `sideline simulate`. Every panel query of every dashboard, with its template variables
//! substituted by values Prometheus knows, must return data; the dashboards must be valid JSON
//! with one datasource uid and no undefined variables. The annotation queries must be valid
//! PromQL (they may be empty: nobody need be red in a short match).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sideline_testkit::Tansu;
use sideline_testkit::brokers::{Mosquitto, free_port, wait_for_port};

const UID: &str = "sideline-prometheus";

fn grafana() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../grafana")
}

/// The dashboards on Prometheus (the training-ground dashboard reads the archive over the
/// PostgreSQL protocol and is tested in `pg_server.rs`).
fn dashboards() -> Vec<(String, Value)> {
    let out: Vec<_> = all_dashboards()
        .into_iter()
        .filter(|(n, _)| n != "training-ground.json")
        .collect();
    assert_eq!(out.len(), 4, "four dashboards on Prometheus");
    out
}

fn all_dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(grafana().join("dashboards")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((p.file_name().unwrap().to_string_lossy().to_string(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 5, "five dashboards");
    out
}

/// Every `$name` / `${name}` in `s`.
fn vars_used(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let rest = &s[i + 1..];
            let rest = rest.strip_prefix('{').unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // Grafana's own variables ($__rate_interval, $__value…) need no definition.
            if !name.is_empty() && !name.starts_with("__") {
                out.insert(name);
            }
        }
        i += 1;
    }
    out
}

/// Every datasource object anywhere in `v`.
fn datasources(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "datasource" {
                    out.push(x.clone());
                } else {
                    datasources(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| datasources(x, out)),
        _ => {}
    }
}

struct Query {
    dashboard: String,
    panel: String,
    expr: String,
    instant: bool,
}

/// Panel queries (and annotation queries, marked by panel "annotation: …").
fn queries(name: &str, d: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push(Query {
                dashboard: name.into(),
                panel: p["title"].as_str().unwrap().into(),
                expr: t["expr"].as_str().unwrap().into(),
                instant: t["instant"].as_bool().unwrap_or(false),
            });
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if let Some(e) = a["expr"].as_str() {
            out.push(Query {
                dashboard: name.into(),
                panel: format!("annotation: {}", a["name"].as_str().unwrap()),
                expr: e.into(),
                instant: false,
            });
        }
    }
    out
}

/// `grafana/generate.py` writes exactly the committed dashboards (a panel added by hand to the
/// JSON would be lost at the next regeneration).
#[test]
fn the_dashboards_are_what_the_generator_writes() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("python3")
        .arg(grafana().join("generate.py"))
        .arg(out.path())
        .output()
        .expect("python3");
    assert!(run.status.success(), "{run:?}");
    for (name, committed) in all_dashboards() {
        let generated: Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join(&name)).unwrap())
                .unwrap();
        assert!(
            generated == committed,
            "{name} differs from what grafana/generate.py writes: edit generate.py and run it"
        );
    }
}

/// What the staff use: rates over Grafana's rate interval, a session choice on the player
/// dashboard, the squad table's player names leading to the player dashboard, and
/// annotations that say which player.
#[test]
fn the_dashboards_link_and_name_what_staff_need() {
    let all: BTreeMap<String, Value> = dashboards().into_iter().collect();
    for (name, d) in &all {
        for q in queries(name, d) {
            assert!(
                !q.expr.contains("rate(") || q.expr.contains("[$__rate_interval]"),
                "{name} / {}: a rate over a fixed window: {}",
                q.panel,
                q.expr
            );
        }
    }
    let player = &all["player.json"];
    let vars: Vec<&str> = player["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        vars.contains(&"session"),
        "player dashboard variables: {vars:?}"
    );
    let live = &all["live-match.json"];
    let table = live["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "table")
        .unwrap();
    assert!(
        table["fieldConfig"]["overrides"]
            .to_string()
            .contains("/d/sideline-player/"),
        "the squad table does not link to the player dashboard"
    );
    assert_eq!(player["uid"], "sideline-player");
    for a in live["annotations"]["list"].as_array().unwrap() {
        if a["expr"].is_string() {
            assert!(
                a["titleFormat"]
                    .as_str()
                    .is_some_and(|t| t.contains("{{player}}")),
                "annotation {} names no player",
                a["name"]
            );
        }
    }
}

#[test]
fn dashboards_are_consistent_json() {
    for (name, d) in dashboards() {
        assert!(
            d["uid"]
                .as_str()
                .is_some_and(|u| u.starts_with("sideline-")),
            "{name}"
        );
        let mut ds = Vec::new();
        datasources(&d, &mut ds);
        for x in &ds {
            let uid = x["uid"].as_str().unwrap_or_default();
            assert!(
                uid == UID || uid == "-- Grafana --",
                "{name}: datasource {x} is not {UID}"
            );
        }
        let defined: BTreeSet<String> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        let mut ids = BTreeSet::new();
        for p in d["panels"].as_array().unwrap() {
            assert!(
                ids.insert(p["id"].as_i64().unwrap()),
                "{name}: duplicate panel id"
            );
            assert!(
                !p["targets"].as_array().unwrap().is_empty(),
                "{name}: empty panel"
            );
            for used in vars_used(&p["title"].to_string()) {
                assert!(defined.contains(&used), "{name}: title uses ${used}");
            }
        }
        for q in queries(&name, &d) {
            for used in vars_used(&q.expr) {
                assert!(
                    defined.contains(&used),
                    "{name} / {}: ${used} undefined",
                    q.panel
                );
            }
        }
        // Variables that query Prometheus refer only to variables defined before them.
        let list = d["templating"]["list"].as_array().unwrap();
        for (i, v) in list.iter().enumerate() {
            let before: BTreeSet<String> = list[..i]
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect();
            for used in vars_used(&v["definition"].to_string()) {
                assert!(
                    before.contains(&used),
                    "{name}: variable {} uses ${used}",
                    v["name"]
                );
            }
        }
    }
    // The provisioning points at the same uid.
    let ds =
        std::fs::read_to_string(grafana().join("provisioning/datasources/sideline.yml")).unwrap();
    assert!(ds.contains(&format!("uid: {UID}")));
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET over HTTP/1.0 (no chunking); the body as JSON.
async fn prom(addr: std::net::SocketAddr, path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).await.unwrap();
    let body = r.split_once("\r\n\r\n").map_or("", |x| x.1);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {r}"))
}

/// The last lines of every log in `dir` (for failure messages).
fn tails(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "log") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!("--- {}\n", p.display());
            for l in &lines[lines.len().saturating_sub(15)..] {
                out += l;
                out.push('\n');
            }
        }
    }
    out
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sideline(role: &'static str, args: &[&str], env: &[(&str, String)], log: &Path) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sideline"));
    c.arg(role).args(args).stdin(Stdio::null());
    c.stderr(std::fs::File::create(log.join(format!("{role}.log"))).unwrap());
    c.stdout(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Proc(c.spawn().unwrap())
}

fn prometheus(dir: &Path, port: u16, targets: &[(&str, u16)]) -> Proc {
    let mut conf =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, p) in targets {
        conf += &format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [\"127.0.0.1:{p}\"]\n"
        );
    }
    std::fs::write(dir.join("prometheus.yml"), conf).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus not found: run scripts/setup.sh (Debian package prometheus)");
    Proc(child)
}

/// Metrics that are NaN until enough of a match has been played (fatigue markers need their
/// reference period; the forecast is NaN while red is beyond its horizon): for these a series
/// must exist, but its values may all be NaN in this short match.
const NAN_UNTIL_LATER: [&str; 4] = [
    "sideline_player_post_peak_decrement_ratio",
    "sideline_player_load_per_metre_change_ratio",
    "sideline_player_vertical_share_change_ratio",
    "sideline_player_forecast_red_minutes",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_from_a_real_prometheus_scraping_the_pipeline() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let mqtt = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();

    // Roster, profiles and baselines on their topics, as `sideline roster publish` and
    // `sideline baselines --publish` would leave them.
    let mut k: sideline_kafka::KafkaConfig =
        sideline_common::config::load(sideline_processor::config::DEFAULTS, None)
            .map(|c: sideline_processor::ProcessorConfig| c.kafka)
            .unwrap();
    k.brokers = brokers.clone();
    common::create_topics(&k).await;
    let sim = sideline_sim::MatchSim::new(sideline_sim::MatchConfig::default());
    common::produce_profiles(&brokers, &k, &sim);

    // A chat receiver that says "ok".
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });

    let ports: BTreeMap<&str, u16> = ["ingest", "process", "alert", "archive"]
        .into_iter()
        .map(|r| (r, free_port()))
        .collect();
    let common_env = |role: &str| {
        vec![
            ("SIDELINE__KAFKA__BROKERS", brokers.clone()),
            (
                "SIDELINE__HTTP__LISTEN",
                format!("127.0.0.1:{}", ports[role]),
            ),
            ("SIDELINE__LOG__LEVEL", "warn".to_string()),
        ]
    };
    let roster = dir.path().join("roster.toml");
    std::fs::write(&roster, sideline_cli::simulate::roster_toml(&sim)).unwrap();
    let mut env = common_env("ingest");
    env.push(("SIDELINE__MQTT__PORT", mqtt.port.to_string()));
    env.push((
        "SIDELINE__INGEST__ROSTER_FILE",
        roster.display().to_string(),
    ));
    let _ingest = sideline("ingest", &[], &env, logs);
    let _process = sideline("process", &[], &common_env("process"), logs);
    let alert_conf = dir.path().join("alert.toml");
    std::fs::write(
        &alert_conf,
        format!(
            "[alerter]\noutbox_dir = \"{}\"\nack_secret = \"dashboards-test-ack-secret-0123\"\n\
             [[alerter.destinations]]\nname = \"bench\"\nformat = \"slack\"\nurl = \"{hook}\"\n\
             [[alerter.routes]]\ndestinations = [\"bench\"]\n",
            dir.path().join("outbox").display()
        ),
    )
    .unwrap();
    let alert_conf_s = alert_conf.display().to_string();
    let _alert = sideline(
        "alert",
        &["--config", &alert_conf_s],
        &common_env("alert"),
        logs,
    );
    let mut env = common_env("archive");
    env.push((
        "SIDELINE__ARCHIVE__DIR",
        dir.path().join("archive").display().to_string(),
    ));
    env.push(("SIDELINE__ARCHIVE__FLUSH_INTERVAL_S", "5".to_string()));
    let _archive = sideline("archive", &[], &env, logs);
    for (role, p) in &ports {
        assert!(
            wait_for_port(*p, Duration::from_secs(60)),
            "{role} did not open its admin port: {}",
            std::fs::read_to_string(logs.join(format!("{role}.log"))).unwrap_or_default()
        );
    }
    let prom_port = free_port();
    let _prom = prometheus(
        dir.path(),
        prom_port,
        &[
            ("sideline-ingest", ports["ingest"]),
            ("sideline-processor", ports["process"]),
            ("sideline-alerter", ports["alert"]),
            ("sideline-archive", ports["archive"]),
        ],
    );
    assert!(
        wait_for_port(prom_port, Duration::from_secs(30)),
        "prometheus"
    );
    let paddr: std::net::SocketAddr = format!("127.0.0.1:{prom_port}").parse().unwrap();

    // 2 × 4 minutes with a 1-minute break, at 20× real time: about 27 s of publishing.
    let mqtt_addr = format!("127.0.0.1:{}", mqtt.port);
    let mut simulate = sideline(
        "simulate",
        &[
            "--mqtt",
            &mqtt_addr,
            "--speed",
            "20",
            "--half-min",
            "4",
            "--break-min",
            "1",
        ],
        &[],
        logs,
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = simulate.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "simulate did not finish"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(status.success(), "simulate failed: {}", tails(logs));
    // Template variables: the first value Prometheus knows (the player: the scripted one).
    let label = async |name: &str, series: &str| -> Vec<String> {
        let r = prom(
            paddr,
            &format!("/api/v1/label/{name}/values?match[]={}", enc(series)),
        )
        .await;
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    // Once Prometheus has scraped the processor's gauges of the scripted player.
    let t0 = Instant::now();
    while !label("player", "sideline_player_risk_score")
        .await
        .contains(&"home-07".to_string())
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no risk score of home-07 in Prometheus\n{}",
            tails(logs)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let teams = label("team", "sideline_player_risk_score").await;
    assert!(teams.contains(&"home".to_string()), "{teams:?}");
    let sessions = label("session", "sideline_player_risk_score{team=\"home\"}").await;
    let players = label("player", "sideline_player_risk_score{team=\"home\"}").await;
    assert!(players.contains(&"home-07".to_string()), "{players:?}");
    let subst = |e: &str| {
        e.replace("$team", "home")
            .replace("$session", &sessions[0])
            .replace("$player", "home-07")
            .replace("$window", "300")
            .replace("$__rate_interval", "1m")
    };

    // Every panel's query, until each returns data: the processor, the archive (5-s flushes)
    // and Prometheus's scrapes (every second) catch up after the simulation; rates need two
    // scrapes in their window.
    let t0 = Instant::now();
    let (failures, checked) = loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut failures = Vec::new();
        let mut checked = 0;
        for (name, d) in dashboards() {
            for q in queries(&name, &d) {
                let expr = subst(&q.expr);
                let path = if q.instant {
                    format!("/api/v1/query?query={}", enc(&expr))
                } else {
                    format!(
                        "/api/v1/query_range?query={}&start={}&end={now}&step=5",
                        enc(&expr),
                        now - 300
                    )
                };
                let r = prom(paddr, &path).await;
                checked += 1;
                if r["status"] != "success" {
                    failures.push(format!(
                        "{} / {}: {expr}: {}",
                        q.dashboard, q.panel, r["error"]
                    ));
                    continue;
                }
                if q.panel.starts_with("annotation: ") {
                    continue;
                }
                let result = r["data"]["result"].as_array().unwrap();
                let values: Vec<f64> = result
                    .iter()
                    .flat_map(|s| {
                        let mut v: Vec<&Value> = s["values"]
                            .as_array()
                            .map_or(vec![], |a| a.iter().collect());
                        if !s["value"].is_null() {
                            v.push(&s["value"]);
                        }
                        v.into_iter()
                            .filter_map(|p| p[1].as_str()?.parse::<f64>().ok())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let nan_ok = NAN_UNTIL_LATER.iter().any(|m| expr.contains(m));
                if result.is_empty() {
                    failures.push(format!("{} / {}: no data for {expr}", q.dashboard, q.panel));
                } else if !nan_ok && !values.iter().any(|v| v.is_finite()) {
                    failures.push(format!(
                        "{} / {}: only NaN for {expr}",
                        q.dashboard, q.panel
                    ));
                }
            }
        }
        if failures.is_empty() || t0.elapsed() > Duration::from_secs(120) {
            break (failures, checked);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(checked >= 55, "{checked} queries");
    assert!(
        failures.is_empty(),
        "{} of {checked} queries failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        tails(logs)
    );
}
