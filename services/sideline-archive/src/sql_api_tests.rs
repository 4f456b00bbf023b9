#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use prometheus::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const TOKEN: &str = "7c1d0e5f9a2b4c6d8e0f1a3b";

struct Server {
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    metrics: ArchiveMetrics,
}

async fn serve(root: &Path, token: Option<&str>, limits: SqlApi) -> Server {
    let metrics = ArchiveMetrics::new(&Registry::new()).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let app = router(SqlState {
        runtime: QueryRuntime::start(stop.clone()).unwrap(),
        root: root.to_path_buf(),
        opts: Options::new(),
        token: token.map(String::from),
        limits,
        metrics: metrics.clone(),
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(sideline_common::admin::serve(l, app, stop.clone()));
    Server {
        addr,
        stop,
        metrics,
    }
}

/// POST `body` to /api/sql with the given headers; (status, body).
async fn post(s: &Server, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut req = format!(
        "POST /api/sql?format=csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (code, body.to_string())
}

fn query(sql: &str) -> String {
    serde_json::json!({ "query": sql }).to_string()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// Every file and directory under `root`.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(d: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            }
            out.insert(p);
        }
    }
    let mut out = BTreeSet::new();
    walk(root, &mut out);
    out
}

fn counted(s: &Server, outcome: &str) -> u64 {
    s.metrics.sql_requests.with_label_values(&[outcome]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_queries_run_and_nothing_on_disk_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("archive"), dir.path().join("outside"));
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.csv");
    std::fs::write(&secret, "line\nthe host's file\n").unwrap();
    let s = serve(&root, None, SqlApi::default()).await;
    // A query works (and creates the tables' directories once).
    let (code, body) = post(&s, &[JSON], &query("SELECT count(*) AS n FROM alerts")).await;
    assert_eq!((code, body.trim()), (200, "n\n0"), "{body}");
    let before = tree(dir.path());
    let copied = outside.join("copied.csv");
    let archived = root.join("metrics").join("team=x");
    let forbidden = [
        format!("COPY (SELECT 1 AS x) TO '{}'", copied.display()),
        format!(
            "COPY (SELECT 1 AS x) TO '{}' STORED AS PARQUET",
            archived.join("part.parquet").display()
        ),
        format!(
            "CREATE EXTERNAL TABLE leak (line VARCHAR) STORED AS CSV LOCATION '{}'",
            secret.display()
        ),
        "CREATE TABLE t AS SELECT 1 AS x".into(),
        "CREATE VIEW v AS SELECT 1 AS x".into(),
        "INSERT INTO alerts SELECT * FROM alerts".into(),
        "DROP TABLE alerts".into(),
        "SET datafusion.execution.batch_size = 1".into(),
        format!(
            "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{}'",
            copied.display()
        ),
        format!("SELECT 1; COPY (SELECT 1 AS x) TO '{}'", copied.display()),
    ];
    for sql in &forbidden {
        let (code, body) = post(&s, &[JSON], &query(sql)).await;
        assert!((400..500).contains(&code), "{sql}: {code} {body}");
        assert!(!body.is_empty(), "{sql}: the refusal says why");
    }
    assert_eq!(tree(dir.path()), before, "something on disk changed");
    assert!(
        counted(&s, "forbidden") >= 6,
        "{}",
        counted(&s, "forbidden")
    );
    // Still only the archive's tables.
    let (code, body) = post(&s, &[JSON], &query("SELECT * FROM leak")).await;
    assert_eq!(code, 400, "{body}");
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_set_and_the_body_must_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), Some(TOKEN), SqlApi::default()).await;
    let q = query("SELECT 1 AS one");
    let (code, _) = post(&s, &[JSON], &q).await;
    assert_eq!(code, 401, "no token");
    let (code, _) = post(
        &s,
        &[JSON, ("Authorization", "Bearer 7c1d0e5f9a2b4c6d8e0f1a3c")],
        &q,
    )
    .await;
    assert_eq!(code, 401, "wrong token");
    let auth = bearer();
    let ok = [JSON, (auth.0, auth.1.as_str())];
    let (code, body) = post(&s, &ok, &q).await;
    assert_eq!((code, body.trim()), (200, "one\n1"), "{body}");
    // What a web page can send cross-site without a preflight: refused.
    let (code, _) = post(
        &s,
        &[("Content-Type", "text/plain"), (auth.0, auth.1.as_str())],
        "SELECT 1",
    )
    .await;
    assert_eq!(code, 415);
    let (code, _) = post(&s, &ok, "SELECT 1").await;
    assert_eq!(code, 400, "not JSON");
    assert_eq!(counted(&s, "unauthorized"), 2);
    assert_eq!(counted(&s, "unsupported_media_type"), 1);
    assert_eq!(counted(&s, "ok"), 1);
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_and_running_time_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(
        dir.path(),
        None,
        SqlApi {
            max_rows: 1_000,
            timeout_s: 1,
            ..SqlApi::default()
        },
    )
    .await;
    let (code, _) = post(&s, &[JSON], &query("SELECT * FROM range(1000)")).await;
    assert_eq!(code, 200, "at the limit");
    let (code, body) = post(&s, &[JSON], &query("SELECT * FROM range(1001)")).await;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("more than 1000 rows"), "{body}");
    // Hours of work: stopped at the time limit, and cancelled (the slot frees).
    let long = query("SELECT sum(value % 7) FROM range(1000000000000)");
    let t0 = std::time::Instant::now();
    let (code, body) = post(&s, &[JSON], &long).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "answered at the limit, not after {:?}",
        t0.elapsed()
    );
    let mut code = 0;
    for _ in 0..100 {
        (code, _) = post(&s, &[JSON], &query("SELECT 1 AS one")).await;
        if code != 429 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(code, 200, "the stopped query still holds the slot");
    assert_eq!(counted(&s, "too_many_rows"), 1);
    assert_eq!(counted(&s, "timeout"), 1);
    s.stop.cancel();
}
