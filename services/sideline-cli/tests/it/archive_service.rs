//! `sideline archive` as a real process on a real Kafka-protocol broker (tansu): a match's
//! samples and some alerts are on the topics; the archiver is killed with SIGKILL mid-way
//! (commits every second, so mid-commit is likely) and restarted. The archive must then hold
//! every sample and alert exactly once (counted in SQL, and by distinct Kafka position), with
//! no unfinished commit left behind; `POST /api/sql` answers and reports a bad query clearly.
//! Run twice: on a local directory, and on an object store (a real S3-protocol server, moto).

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::{http_get, match_batches, sum_metric, test_producer};
use prost::Message as _;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use sideline_archive::backend::{Backend, Options};
use sideline_archive::query;
use sideline_sim::MatchConfig;
use sideline_testkit::brokers::free_port;
use sideline_testkit::{S3, Tansu};
use sideline_wire::pb;

struct Archiver {
    child: Child,
    http: std::net::SocketAddr,
}

fn spawn(config: &std::path::Path, http: std::net::SocketAddr) -> Archiver {
    let child = Command::new(env!("CARGO_BIN_EXE_sideline"))
        .arg("archive")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Archiver { child, http }
}

impl Archiver {
    async fn metric(&self, name: &str) -> f64 {
        sum_metric(&http_get(self.http, "/metrics").await, name)
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produce one record, waiting while the producer's queue is full.
fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &str, value: &[u8]) {
    let mut r = BaseRecord::to(topic).key(key).payload(value);
    while let Err((_, back)) = p.send(r) {
        r = back;
        p.poll(Duration::from_millis(10));
    }
}

async fn count(root: &std::path::Path, opts: &Options, sql: &str) -> i64 {
    let ctx = query::context_with(root, opts).await.unwrap();
    let b = query::run(&ctx, sql).await.unwrap();
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_session_and_restarted_the_archive_holds_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    kill_and_restart(&root, &Options::new(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_session_and_restarted_an_object_store_archive_holds_every_row_once() {
    let s3 = S3::start("club");
    let url = s3.url("history/sideline");
    let opts: Options = s3.options().into_iter().collect();
    kill_and_restart(std::path::Path::new(&url), &opts, &s3.env()).await;
    let keys = s3.keys("history/sideline/samples/team=");
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.ends_with(".parquet")),
        "{keys:?}"
    );
}

/// The scenario on the archive at `root` (settings `opts`; `env` for the CLI's `AWS_*`).
async fn kill_and_restart(root: &std::path::Path, opts: &Options, env: &[(String, String)]) {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let cfg = MatchConfig {
        half_min: 4.0,
        break_min: 0.5,
        ..MatchConfig::default()
    };
    let (batches, _) = match_batches(&cfg);
    let samples: i64 = batches.iter().map(|(_, b)| b.samples.len() as i64).sum();
    let alerts = 40;

    let dir = tempfile::tempdir().unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let pg_port = free_port();
    let config = dir.path().join("archive.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\npartitions = 3\n\
             [archive]\ndir = \"{}\"\nflush_interval_s = 1\nmax_rows = 20000\norphan_grace_s = 8\n\
             [archive.object_store]\n{}\n\
             [archive.sql]\nlisten = \"127.0.0.1:{pg_port}\"\n\
             [http]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n",
            root.display(),
            opts.iter()
                .map(|(k, v)| format!("{k} = \"{v}\""))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    )
    .unwrap();
    let first = spawn(&config, http);
    // Topics exist once the archiver is up (it creates them), then the input goes on.
    let t0 = Instant::now();
    while !http_get(http, "/readyz").await.starts_with("HTTP/1.1 200") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "archiver never came up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let producer = test_producer(&brokers);
    for (player, b) in &batches {
        let v = b.encode_to_vec();
        send(&producer, "sideline.samples.v1", player, &v);
    }
    for i in 0..alerts {
        let a = pb::Alert {
            id: format!("a{i}"),
            player_id: format!("p{}", i % 7),
            team_id: "home".into(),
            session_id: cfg.session.clone(),
            t_us: cfg.start + i * 1_000_000,
            ..Default::default()
        };
        let v = a.encode_to_vec();
        let key = a.player_id.clone();
        producer
            .send(BaseRecord::to("sideline.alerts.v1").key(&key).payload(&v))
            .map_err(|e| e.0)
            .unwrap();
    }
    // And the live metrics of the same match, as the processor would publish them.
    let mut metrics = 0i64;
    sideline_sim::offline::run_match(cfg.clone(), sideline_engine::Params::default(), |m| {
        let v = sideline_wire::convert::metrics(m).encode_to_vec();
        send(&producer, "sideline.metrics.v1", &m.player, &v);
        metrics += 1;
    });
    producer.flush(Duration::from_secs(60)).unwrap();

    // Kill it part-way through.
    let t0 = Instant::now();
    loop {
        let rows = first.metric("sideline_archive_rows_total").await;
        if rows >= samples as f64 * 0.3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "archiving too slow: {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let before = count(root, opts, "SELECT count(*) FROM samples").await;
    assert!(
        before > 0 && before < samples,
        "{before} of {samples} before the restart"
    );

    let second = spawn(&config, http);
    let t0 = Instant::now();
    loop {
        let n = count(root, opts, "SELECT count(*) FROM samples").await;
        let a = count(root, opts, "SELECT count(*) FROM alerts").await;
        let m = count(root, opts, "SELECT count(*) FROM metrics").await;
        if n >= samples && a >= alerts && m >= metrics {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "after the restart: {n} of {samples} samples, {a} of {alerts} alerts, {m} of {metrics} metrics"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Settle: nothing more will be written once the archiver has committed the end of every
    // topic it reads (it commits only what is in the archive) and buffers nothing. Then the
    // exact counts.
    let t0 = Instant::now();
    loop {
        let committed = tokio::task::block_in_place(|| {
            [
                "sideline.samples.v1",
                "sideline.metrics.v1",
                "sideline.alerts.v1",
            ]
            .iter()
            .all(|t| sideline_testkit::kafka::group_at_end(&brokers, "sideline-archive", t))
        });
        if committed && second.metric("sideline_archive_buffered_rows").await == 0.0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the archiver did not commit the end of its topics"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(root, opts, "SELECT count(*) FROM samples").await,
        samples
    );
    assert_eq!(
        count(
            root,
            opts,
            "SELECT count(DISTINCT CAST(kafka_partition AS BIGINT) * 1000000000000 \
             + kafka_offset * 10000 + CAST(idx AS BIGINT)) FROM samples"
        )
        .await,
        samples
    );
    assert_eq!(
        count(root, opts, "SELECT count(*) FROM alerts").await,
        alerts
    );
    assert_eq!(
        count(root, opts, "SELECT count(*) FROM metrics").await,
        metrics
    );
    assert_eq!(
        count(root, opts, "SELECT count(DISTINCT id) FROM alerts").await,
        alerts
    );
    assert_eq!(
        second
            .metric("sideline_archive_commit_failures_total")
            .await,
        0.0
    );
    let staged = Backend::open(root, opts).unwrap().list("_staging").unwrap();
    assert!(
        staged.is_empty(),
        "unfinished commits left behind: {staged:?}"
    );

    // Baselines from the archived metrics, published where the processor reads them, as of
    // the day after the match.
    let next_day =
        sideline_archive::baselines::date_of_day(cfg.start.div_euclid(86_400_000_000) + 1);
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sideline"))
            .args(args)
            .arg("--archive")
            .arg(root)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = cli(&[
        "baselines",
        "--as-of",
        &next_day,
        "--days",
        "1",
        "--publish",
        &brokers,
    ]);
    assert!(csv.starts_with("team,player,date,hsr_m,hsr_7d_m"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 22, "{csv}");
    let published = sideline_testkit::kafka::read_topic(
        &brokers,
        "sideline.baselines.v1",
        22,
        Duration::from_secs(10),
    );
    assert_eq!(published.len(), 22);
    let b = pb::Baseline::decode(published[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(b.days_of_history, Some(1));
    assert_eq!(b.hsr_prev6d_m, None); // one day of history: unknown, not zero

    // The analysts' commands on the same archive (a directory or the object store alike), as
    // JSON: SQL, the session report, the trend, and a dry-run reprocess against the live
    // figures (the same engine on the same samples: no difference).
    let json_lines = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    };
    let sql = cli(&["sql", "--format", "csv", "SELECT count(*) AS n FROM alerts"]);
    assert_eq!(sql, format!("n\n{alerts}\n"));
    let report = json_lines(&cli(&["report", "--session", &cfg.session, "--json"]));
    assert_eq!(report.len(), 22, "{report:?}");
    assert!(
        report
            .iter()
            .all(|r| r["player"].is_string() && r["distance_m"].as_f64().is_some_and(|d| d > 0.0)),
        "{report:?}"
    );
    let trend = json_lines(&cli(&[
        "baselines",
        "--as-of",
        &next_day,
        "--days",
        "1",
        "--json",
    ]));
    assert_eq!(trend.len(), 22, "{trend:?}");
    assert!(
        trend
            .iter()
            .all(|r| r["hsr_7d_m"].is_number() && r["date"].is_string())
    );
    let rerun = json_lines(&cli(&[
        "reprocess",
        "--session",
        &cfg.session,
        "--dry-run",
        "--json",
    ]));
    let distance: Vec<_> = rerun
        .iter()
        .filter(|r| r["figure"] == "distance_m")
        .collect();
    assert_eq!(distance.len(), 22, "{rerun:?}");
    for r in distance {
        let (live, again) = (
            r["live"].as_f64().unwrap(),
            r["reconciled"].as_f64().unwrap(),
        );
        assert!((again - live).abs() <= 1e-6 * live.max(1.0), "{r}");
    }

    // The HTTP query endpoint.
    let body = post(
        http,
        "/api/sql?format=csv",
        "SELECT count(*) AS n FROM alerts",
    )
    .await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(&format!("n\n{alerts}\n")), "{body}");
    let body = post(http, "/api/sql", "SELECT nope FROM alerts").await;
    assert!(body.starts_with("HTTP/1.1 400"), "{body}");
    assert!(body.contains("nope"), "{body}");

    // The same archive over the PostgreSQL protocol (`[archive.sql] listen`; loopback, so no
    // password is needed), from psql.
    let out = Command::new(sideline_testkit::brokers::find_binary(
        "SIDELINE_PSQL",
        &["psql"],
    ))
    .args([
        "-X",
        "-A",
        "-t",
        "-h",
        "127.0.0.1",
        "-U",
        "sideline",
        "-d",
        "sideline",
    ])
    .args(["-p", &pg_port.to_string()])
    .args(["-c", "SELECT count(*) FROM alerts"])
    .env("PGCONNECT_TIMEOUT", "10")
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        alerts.to_string()
    );
}

/// POST the query `sql` as the endpoint wants it (JSON).
async fn post(addr: std::net::SocketAddr, path: &str, sql: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::json!({ "query": sql }).to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut b = String::new();
    s.read_to_string(&mut b).await.unwrap();
    b
}
