//! The end-to-end harness: the whole pipeline as separate processes on real brokers.
//!
//! [`Pipeline::start`] starts Mosquitto and tansu (sqlite storage) on free loopback ports,
//! creates the contract's topics, puts the roster's profiles and baselines on their compacted
//! topics, and runs `sideline ingest`, `process`, `alert` (posting to a local chat receiver in
//! the Alertmanager-webhook shape) and `archive` as child processes, scraped by a real
//! Prometheus. [`Feed`] publishes pod batches over MQTT, paced by event time, as the pods
//! would; a test may alter batches on the way (clock offsets, duplicates, reordering) and do
//! things to the pipeline between parts of the feed (kill, freeze, restart). [`Pipeline::
//! outcome`] waits until every player's last second has been reported and the archive holds
//! every sample, and gathers what came out; [`Outcome::check`] compares it with the offline
//! engine on the same batches: totals equal, each alert delivered once, archive rows equal
//! the input.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../services/sideline-processor/tests/common/mod.rs"]
pub mod common;

pub mod check;
pub mod feed;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sideline_testkit::brokers::{Mosquitto, Tansu, free_port, wait_for_port};

pub use check::{Expected, Outcome};
pub use feed::Feed;

/// The four services, by the `sideline` sub-command that runs each.
pub const ROLES: [&str; 4] = ["ingest", "process", "alert", "archive"];

pub use sideline_e2e::sideline_bin;

/// Partitions per topic for a scenario: `SIDELINE_E2E_PARTITIONS` when set (e.g. 2, the count
/// deploy/README.md advises on tansu), else `default` (`None`: the services' default, 12).
/// Panics on a value that is not a positive number, naming the variable.
pub fn partitions_or(default: Option<i32>) -> Option<i32> {
    let Ok(v) = std::env::var("SIDELINE_E2E_PARTITIONS") else {
        return default;
    };
    match v.trim().parse::<i32>() {
        Ok(n) if n > 0 => Some(n),
        _ => panic!("SIDELINE_E2E_PARTITIONS={v:?}: not a positive number of partitions"),
    }
}

/// One chat POST as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Post {
    /// The message's `Idempotency-Key` header.
    pub key: String,
    /// The JSON body.
    pub body: serde_json::Value,
    /// When it arrived, µs since the epoch.
    pub at: i64,
}

/// A chat receiver that answers 200 and keeps every POST.
async fn chat_receiver() -> (String, Arc<Mutex<Vec<Post>>>) {
    use axum::extract::State;
    use axum::http::HeaderMap;
    let got: Arc<Mutex<Vec<Post>>> = Arc::default();
    async fn hook(
        State(got): State<Arc<Mutex<Vec<Post>>>>,
        h: HeaderMap,
        body: String,
    ) -> &'static str {
        let key = h
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        let at = sideline_cli::publish::now_us();
        got.lock().unwrap().push(Post { key, body, at });
        "ok"
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(got.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

/// A service process.
struct Service {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    env: Vec<(String, String)>,
    starts: usize,
}

/// The running pipeline.
pub struct Pipeline {
    /// The Kafka-protocol broker.
    pub kafka: Tansu,
    /// The MQTT broker.
    pub mqtt: Mosquitto,
    /// Working directory: configs, logs (`<role>.log`), outbox, archive, Prometheus data.
    pub dir: tempfile::TempDir,
    services: BTreeMap<&'static str, Service>,
    prometheus: Child,
    /// Prometheus's HTTP address.
    pub prometheus_addr: SocketAddr,
    /// What the chat receiver got.
    pub chat: Arc<Mutex<Vec<Post>>>,
    /// Topic names and client settings.
    pub kafka_config: sideline_kafka::KafkaConfig,
}

/// What the pipeline is started with.
pub struct Setup {
    /// Roster TOML for ingest (devices → players).
    pub roster: String,
    /// Put these matches' profiles and baselines on their topics (none for a recording).
    pub profiles: Vec<sideline_sim::MatchSim>,
    /// Extra environment for one service (e.g. `("process", "SIDELINE__…", "…")`).
    pub env: Vec<(&'static str, String, String)>,
    /// Run `sideline archive` too (needs a `sideline` built with the `archive` feature).
    pub archive: bool,
    /// Partitions of every topic (`kafka.partitions`); `None` keeps the default (12).
    pub partitions: Option<i32>,
    /// A configuration file for ingest (e.g. its `[[sources]]`), given with `--config`.
    pub ingest_config: Option<String>,
}

impl Pipeline {
    /// Start brokers, topics, the four services and Prometheus; wait until each answers.
    pub async fn start(setup: Setup) -> Pipeline {
        Self::start_on(setup, Tansu::start()).await
    }

    /// The same on a given (already started, empty) Kafka broker.
    pub async fn start_on(setup: Setup, kafka: Tansu) -> Pipeline {
        let mqtt = Mosquitto::start();
        let dir = tempfile::tempdir().unwrap();
        let mut k: sideline_kafka::KafkaConfig =
            sideline_common::config::load(sideline_processor::config::DEFAULTS, None)
                .map(|c: sideline_processor::ProcessorConfig| c.kafka)
                .unwrap();
        k.brokers = kafka.brokers();
        if let Some(n) = setup.partitions {
            k.partitions = n;
        }
        common::create_topics(&k).await;
        for sim in &setup.profiles {
            common::produce_profiles(&k.brokers, &k, sim);
        }
        let (hook, chat) = chat_receiver().await;
        let d = dir.path();
        std::fs::write(d.join("roster.toml"), &setup.roster).unwrap();
        std::fs::write(
            d.join("alert.toml"),
            format!(
                "[alerter]\noutbox_dir = \"{}\"\nack_secret = \"e2e-ack-secret-0123456789abcdef\"\n\
                 [[alerter.destinations]]\nname = \"bench\"\nformat = \"webhook\"\nurl = \"{hook}\"\n\
                 [[alerter.routes]]\ndestinations = [\"bench\"]\n",
                d.join("outbox").display()
            ),
        )
        .unwrap();
        let mut services = BTreeMap::new();
        for role in ROLES
            .into_iter()
            .filter(|r| setup.archive || *r != "archive")
        {
            let port = free_port();
            let mut env: Vec<(String, String)> = vec![
                ("SIDELINE__KAFKA__BROKERS".into(), k.brokers.clone()),
                ("SIDELINE__HTTP__LISTEN".into(), format!("127.0.0.1:{port}")),
                ("SIDELINE__LOG__LEVEL".into(), "info".into()),
                (
                    "SIDELINE__KAFKA__PARTITIONS".into(),
                    k.partitions.to_string(),
                ),
            ];
            let mut args = Vec::new();
            match role {
                "ingest" => {
                    if let Some(c) = &setup.ingest_config {
                        std::fs::write(d.join("ingest.toml"), c).unwrap();
                        args = vec![
                            "--config".into(),
                            d.join("ingest.toml").display().to_string(),
                        ];
                    }
                    env.push(("SIDELINE__MQTT__PORT".into(), mqtt.port.to_string()));
                    // No client id: the default (hostname and admin port) is the same for the
                    // restarted ingest, which resumes its persistent session.
                    env.push((
                        "SIDELINE__INGEST__ROSTER_FILE".into(),
                        d.join("roster.toml").display().to_string(),
                    ));
                }
                "alert" => {
                    args = vec![
                        "--config".into(),
                        d.join("alert.toml").display().to_string(),
                    ];
                    // As for the archiver: a restarted alerter's watchdog rejoins sooner.
                    env.push(("SIDELINE__ALERTER__ORPHAN_GRACE_S".into(), "15".into()));
                }
                "process" => {
                    // Shorter than the default 30 s so that each run's last seconds come
                    // sooner; still longer than any stall the fault suite causes.
                    env.push(("SIDELINE__PROCESSOR__IDLE_ADVANCE_S".into(), "15".into()));
                }
                "archive" => {
                    env.push((
                        "SIDELINE__ARCHIVE__DIR".into(),
                        d.join("archive").display().to_string(),
                    ));
                    env.push(("SIDELINE__ARCHIVE__FLUSH_INTERVAL_S".into(), "2".into()));
                    // After a kill -9, tansu leaves the dead member's partitions unowned until
                    // the watchdog rejoins (default 120 s): shorter here, see BENCHMARKS.md.
                    env.push(("SIDELINE__ARCHIVE__ORPHAN_GRACE_S".into(), "15".into()));
                }
                _ => {}
            }
            for (r, key, v) in &setup.env {
                if *r == role {
                    env.push((key.clone(), v.clone()));
                }
            }
            services.insert(
                role,
                Service {
                    child: None,
                    port,
                    args,
                    env,
                    starts: 0,
                },
            );
        }
        let prometheus_port = free_port();
        let prometheus = start_prometheus(d, prometheus_port, &services);
        let mut p = Pipeline {
            kafka,
            mqtt,
            dir,
            services,
            prometheus,
            prometheus_addr: format!("127.0.0.1:{prometheus_port}").parse().unwrap(),
            chat,
            kafka_config: k,
        };
        let roles: Vec<&'static str> = p.services.keys().copied().collect();
        for role in &roles {
            p.spawn(role);
        }
        for role in &roles {
            p.wait_ready(role);
        }
        p.wait_subscribed().await;
        assert!(
            wait_for_port(prometheus_port, Duration::from_secs(30)),
            "prometheus did not start"
        );
        p
    }

    fn spawn(&mut self, role: &'static str) {
        let log = self.dir.path().join(format!("{role}.log"));
        let s = self.services.get_mut(role).unwrap();
        assert!(s.child.is_none(), "{role} is already running");
        let mut c = Command::new(sideline_bin());
        c.arg(role)
            .args(&s.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        c.stderr(f);
        for (k, v) in &s.env {
            c.env(k, v);
        }
        s.child = Some(c.spawn().unwrap());
        s.starts += 1;
    }

    /// Wait until `role` answers on its admin port.
    pub fn wait_ready(&self, role: &str) {
        assert!(
            wait_for_port(self.services[role].port, Duration::from_secs(60)),
            "{role} did not open its admin port:\n{}",
            self.tails()
        );
    }

    /// Wait until ingest's MQTT subscription is granted (SubAck): a message published before
    /// anyone subscribed is dropped by the broker.
    pub async fn wait_subscribed(&self) {
        until(
            "ingest subscribed to MQTT",
            Duration::from_secs(30),
            async || {
                self.metric("ingest", "sideline_ingest_mqtt_subscribed")
                    .await
                    == 1.0
            },
        )
        .await;
    }

    /// Whether the processor has read every partition to its end (its consumer lag, from
    /// librdkafka's statistics, is 0 everywhere).
    pub async fn processor_at_end(&self) -> bool {
        let body = common::http_get(self.addr("process"), "/metrics").await;
        let lags: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with("sideline_processor_consumer_lag_records{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        !lags.is_empty() && lags.iter().all(|&l| l == 0.0)
    }

    /// The admin (metrics) address of `role`.
    pub fn addr(&self, role: &str) -> SocketAddr {
        format!("127.0.0.1:{}", self.services[role].port)
            .parse()
            .unwrap()
    }

    /// Resident memory of `role`, bytes.
    pub fn rss(&self, role: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(role))).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    }

    /// Process id of `role` (it must be running).
    pub fn pid(&self, role: &str) -> i32 {
        self.services[role].child.as_ref().unwrap().id() as i32
    }

    fn signal(&self, role: &str, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid(role).to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {role}");
    }

    /// SIGKILL `role` (no chance to flush or commit anything).
    pub fn kill9(&mut self, role: &'static str) {
        let mut c = self.services.get_mut(role).unwrap().child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM `role` and wait until it has exited (its clean shutdown).
    pub async fn terminate(&mut self, role: &'static str) {
        self.signal(role, "TERM");
        let mut c = self.services.get_mut(role).unwrap().child.take().unwrap();
        until(
            &format!("{role} exited after SIGTERM"),
            Duration::from_secs(60),
            async || c.try_wait().unwrap().is_some(),
        )
        .await;
        assert!(
            c.wait().unwrap().success(),
            "{role}: exit status after SIGTERM"
        );
    }

    /// Start `role` again (after [`Self::kill9`] or [`Self::terminate`]) and wait until it
    /// answers.
    pub async fn restart(&mut self, role: &'static str) {
        // The admin port of the killed process is free at once; a new one binds it.
        self.spawn(role);
        self.wait_ready(role);
        if role == "ingest" {
            self.wait_subscribed().await;
        }
    }

    /// Freeze `role` (SIGSTOP): it holds its connections but answers nothing.
    pub fn freeze(&self, role: &str) {
        self.signal(role, "STOP");
    }

    /// Let a frozen `role` go on (SIGCONT).
    pub fn thaw(&self, role: &str) {
        self.signal(role, "CONT");
    }

    /// Times `role` was started.
    pub fn starts(&self, role: &str) -> usize {
        self.services[role].starts
    }

    /// A `/metrics` value of `role` summed over its labels (0 when absent).
    pub async fn metric(&self, role: &str, name: &str) -> f64 {
        common::sum_metric(&common::http_get(self.addr(role), "/metrics").await, name)
    }

    /// The value of a PromQL instant query (the first series), or `None` without data.
    pub async fn promql(&self, q: &str) -> Option<f64> {
        let enc: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let body =
            common::http_get(self.prometheus_addr, &format!("/api/v1/query?query={enc}")).await;
        let json = body.split_once("\r\n\r\n").map_or("", |x| x.1);
        let json = json.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c.is_whitespace());
        let start = json.find('{')?;
        let end = json.rfind('}')?;
        let v: serde_json::Value = serde_json::from_str(&json[start..=end]).ok()?;
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
    }

    /// The last lines of each service's log (for failure messages).
    pub fn tails(&self) -> String {
        let mut out = String::new();
        for role in self.services.keys() {
            let p = self.dir.path().join(format!("{role}.log"));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!("--- {role}\n");
            for l in &lines[lines.len().saturating_sub(12)..] {
                out += l;
                out.push('\n');
            }
        }
        out
    }

    /// Lines of `role`'s log that are warnings or errors.
    pub fn problems(&self, role: &str) -> Vec<String> {
        let p = self.dir.path().join(format!("{role}.log"));
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("panicked"))
            .map(String::from)
            .collect()
    }

    /// Archive directory.
    pub fn archive_dir(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    /// Run SQL on the archiver's endpoint; CSV rows without the header.
    pub async fn sql(&self, q: &str) -> Vec<Vec<String>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.addr("archive"))
            .await
            .unwrap();
        let body = serde_json::json!({ "query": q }).to_string();
        s.write_all(
            format!(
                "POST /api/sql?format=csv HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).await.unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{q}: {r}");
        let body = r.split_once("\r\n\r\n").map_or("", |x| x.1);
        body.lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for s in self.services.values_mut() {
            if let Some(mut c) = s.child.take() {
                // A frozen process must be thawed to die cleanly under some kernels.
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(c.id().to_string())
                    .status();
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = self.prometheus.kill();
        let _ = self.prometheus.wait();
        // `SIDELINE_E2E_KEEP=1` keeps a failed run's directory (logs, configs, archive).
        if std::thread::panicking() && std::env::var_os("SIDELINE_E2E_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept the run's directory: {}", self.dir.path().display());
        }
    }
}

fn start_prometheus(dir: &Path, port: u16, services: &BTreeMap<&'static str, Service>) -> Child {
    let mut conf =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (role, s) in services {
        conf += &format!(
            "  - job_name: sideline-{role}\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
            s.port
        );
    }
    std::fs::write(dir.join("prometheus.yml"), conf).unwrap();
    Command::new("prometheus")
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
        .expect("prometheus not found: run scripts/setup.sh (Debian package prometheus)")
}

/// Poll `cond` until it holds; panic with `what` after `timeout`.
pub async fn until(what: &str, timeout: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !cond().await {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
