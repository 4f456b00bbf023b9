//! The archive over the PostgreSQL wire protocol as analysts reach it, against a real
//! `sideline sql --serve` process on a loopback port, over an archive made by `sideline
//! history`: psql (including `\dt`), Python's psycopg and pandas (`pg_clients.py`), and the
//! metadata and time-series queries Grafana's PostgreSQL data source sends. The password
//! (SCRAM-SHA-256) and TLS are required; writes, DDL, `COPY` and engine `SET`s are refused.
//! Every answer is compared with DataFusion's own over the same archive.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use sideline_archive::query;
use sideline_testkit::brokers::find_binary;
use sideline_testkit::{free_port, test_certs};

const PASSWORD: &str = "a-long-test-password-for-psql";
const TEAM: &str = "home";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// psql with the connection in the environment, as a user would set it.
struct Psql {
    port: u16,
    ca: PathBuf,
}

impl Psql {
    fn run(&self, password: &str, sslmode: &str, args: &[&str]) -> Output {
        Command::new(find_binary("SIDELINE_PSQL", &["psql"]))
            .args(["-X", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "sideline")
            .env("PGDATABASE", "sideline")
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", sslmode)
            .env("PGSSLROOTCERT", &self.ca)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap()
    }

    /// `sql` as CSV (header first), asserting success.
    fn csv(&self, sql: &str) -> Vec<String> {
        let out = self.run(PASSWORD, "verify-full", &["--csv", "-c", sql]);
        assert!(
            out.status.success(),
            "{sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Two CSV texts hold the same cells: numbers equal as numbers (psql prints `0` where
/// DataFusion's writer prints `0.0`), other cells equal as text.
fn assert_same_csv(got: &str, want: &str) {
    let (g, w): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
    assert_eq!(g.len(), w.len(), "{got}\nvs\n{want}");
    for (gl, wl) in g.iter().zip(&w) {
        let (gc, wc): (Vec<_>, Vec<_>) = (gl.split(',').collect(), wl.split(',').collect());
        assert_eq!(gc.len(), wc.len(), "{gl} vs {wl}");
        for (a, b) in gc.iter().zip(&wc) {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert_eq!(x, y, "{gl} vs {wl}"),
                _ => assert_eq!(a, b, "{gl} vs {wl}"),
            }
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The queries Grafana's PostgreSQL data source sends (public/app/plugins/datasource/
/// grafana-postgresql-datasource/postgresMetaQuery.ts and the backend's macros.go in
/// grafana/grafana), with the macros expanded as Grafana expands them, and the expected
/// column names.
fn grafana_queries() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let schema_constraint = "quote_ident(table_schema) IN (SELECT CASE WHEN trim(s[i]) = '\"$user\"' \
         THEN user ELSE trim(s[i]) END FROM generate_series(array_lower(string_to_array(\
         current_setting('search_path'),','),1), array_upper(string_to_array(current_setting(\
         'search_path'),','),1)) as i, string_to_array(current_setting('search_path'),',') s)";
    vec![
        (
            "version",
            "SELECT current_setting('server_version_num')::int/100 as version".into(),
            vec!["version"],
        ),
        (
            "schemas",
            "SELECT schema_name AS \"name\" FROM information_schema.schemata WHERE schema_name \
             NOT IN ('information_schema', 'pg_catalog', 'pg_toast') ORDER BY schema_name"
                .into(),
            vec!["name"],
        ),
        (
            "tables",
            format!(
                "SELECT CASE WHEN {schema_constraint} THEN quote_ident(table_name) ELSE \
                 quote_ident(table_schema) || '.' || quote_ident(table_name) END AS \"table\" \
                 FROM information_schema.tables WHERE quote_ident(table_schema) NOT IN \
                 ('information_schema', 'pg_catalog', '_timescaledb_cache') \
                 ORDER BY CASE WHEN {schema_constraint} THEN 0 ELSE 1 END, 1"
            ),
            vec!["table"],
        ),
        (
            "tables in a schema",
            "SELECT quote_ident(table_name) AS \"table\" FROM information_schema.tables \
             WHERE quote_ident(table_schema) = 'public' ORDER BY 1"
                .into(),
            vec!["table"],
        ),
        (
            "columns",
            format!(
                "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM \
                 information_schema.columns WHERE CASE WHEN \
                 array_length(parse_ident('public.metrics'),1) = 2 THEN quote_ident(table_schema) = \
                 (parse_ident('public.metrics'))[1] AND quote_ident(table_name) = \
                 (parse_ident('public.metrics'))[2] ELSE quote_ident(table_name) = 'public.metrics' AND \
                 {schema_constraint} END"
            ),
            vec!["column", "type"],
        ),
        (
            // $__timeGroupAlias(t, '1d') and $__timeFilter(t) over the archive's days.
            "time series",
            "SELECT floor(extract(epoch from t)/86400)*86400 AS \"time\", player AS metric, \
             max(hsr_m) AS hsr_m FROM public.metrics WHERE t BETWEEN '2026-02-01T00:00:00Z' AND \
             '2026-03-11T00:00:00.000Z' AND source = 'live' GROUP BY 1, 2 ORDER BY 1"
                .into(),
            vec!["time", "metric", "hsr_m"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_psycopg_pandas_and_grafana_read_the_archive_over_the_postgresql_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let today = sideline_archive::baselines::day_of("2026-03-10").unwrap();
    let (sessions, _) = sideline_cli::history_cmd::generate(&archive, 1, today, 4.0).unwrap();
    assert_eq!(sessions, 2);
    // The last session (4 days before `today`) and its kick-off (19:00 UTC).
    let last_day = today - 4;
    let last_session = format!(
        "{}-match",
        sideline_archive::baselines::date_of_day(last_day)
    );
    add_alerts(
        &archive,
        &last_session,
        last_day * 86_400_000_000 + 19 * 3_600_000_000,
    );
    let ctx = query::context(&archive).await.unwrap();
    let answer = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let b = query::run(&ctx, sql).await.unwrap();
            let mut buf = Vec::new();
            query::write(&b, query::Output::Csv, &mut buf).unwrap();
            String::from_utf8(buf).unwrap()
        }
    };

    let certs = test_certs(dir.path());
    let password_file = dir.path().join("pg-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let port = free_port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_sideline"))
            .arg("sql")
            .arg("--archive")
            .arg(&archive)
            .arg("--serve")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--password-file")
            .arg(&password_file)
            .arg("--tls-cert")
            .arg(&certs.server_cert)
            .arg("--tls-key")
            .arg(&certs.server_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        sideline_testkit::brokers::wait_for_port(port, Duration::from_secs(30)),
        "sideline sql --serve did not listen"
    );
    let psql = Psql {
        port,
        ca: certs.ca.clone(),
    };

    // psql: \dt lists the archive's tables; a query gives DataFusion's answer.
    let out = psql.run(PASSWORD, "verify-full", &["-c", "\\dt"]);
    assert!(out.status.success(), "\\dt: {}", stderr(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    for t in ["samples", "metrics", "alerts", "acks"] {
        assert!(
            listing
                .lines()
                .any(|l| l.contains(&format!(" {t} ")) && l.contains("table")),
            "\\dt lacks {t}:\n{listing}"
        );
    }
    let per_player = "SELECT player, count(*) AS seconds, max(hsr_m) AS hsr_m FROM metrics \
                      WHERE source = 'live' GROUP BY player ORDER BY player";
    let want = answer(per_player).await;
    let got = psql.csv(per_player).join("\n") + "\n";
    assert_same_csv(&got, &want);
    assert_eq!(want.lines().count(), 23, "22 players and a header: {want}");

    // Grafana's connection check (an empty statement), metadata and time-series queries.
    for ping in [";", "-- ping", "SELECT 1"] {
        let out = psql.run(PASSWORD, "verify-full", &["-c", ping]);
        assert!(out.status.success(), "{ping}: {}", stderr(&out));
    }
    for (what, sql, columns) in grafana_queries() {
        let rows = psql.csv(&sql);
        assert_eq!(rows[0], columns.join(","), "{what}");
        assert!(rows.len() > 1, "{what}: no rows");
        if what == "tables" {
            // Qualified: the library answers the search-path part of Grafana's query with an
            // empty path, so every table is listed with its schema, which Grafana then uses.
            assert!(
                rows.iter().any(|r| r == "public.metrics"),
                "{what}: {rows:?}"
            );
        }
        if what == "tables in a schema" {
            assert!(rows.iter().any(|r| r == "metrics"), "{what}: {rows:?}");
        }
        if what == "time series" {
            // Two session days × 22 players.
            assert_eq!(rows.len() - 1, 2 * 22, "{what}: {rows:?}");
        }
        if what == "columns" {
            assert!(rows.iter().any(|r| r.starts_with("hsr_m,")), "{rows:?}");
        }
    }

    // The training-ground dashboard, panel by panel.
    training_ground_panels_answer(&psql, &last_session);

    // Credentials and TLS are required.
    let wrong = psql.run("not-the-password", "verify-full", &["-c", "SELECT 1"]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong)
            .to_lowercase()
            .contains("password authentication failed"),
        "{}",
        stderr(&wrong)
    );
    let clear = psql.run(PASSWORD, "disable", &["-c", "SELECT 1"]);
    assert!(!clear.status.success());
    assert!(stderr(&clear).contains("TLS"), "{}", stderr(&clear));

    // Read-only: DDL (which would read any file), DML, COPY and engine settings refused.
    let copy_target = dir.path().join("copied.csv");
    for sql in [
        "CREATE EXTERNAL TABLE leak STORED AS PARQUET LOCATION '/etc/'".to_string(),
        "CREATE TABLE leak AS SELECT 1".to_string(),
        "CREATE VIEW leak AS SELECT 1".to_string(),
        "INSERT INTO metrics (player) VALUES ('x')".to_string(),
        format!("COPY metrics TO '{}'", copy_target.display()),
        "SET datafusion.execution.target_partitions = 64".to_string(),
        "WITH x AS (SELECT 1) SELECT * FROM leak".to_string(),
    ] {
        let out = psql.run(PASSWORD, "verify-full", &["-c", &sql]);
        assert!(!out.status.success(), "{sql} was allowed");
        // The last finds no table `leak`: none was made.
        if !sql.starts_with("WITH") {
            assert!(
                stderr(&out).contains("read-only"),
                "{sql}: {}",
                stderr(&out)
            );
        }
    }
    assert!(!copy_target.exists());

    // psycopg and pandas.
    let dsn = format!(
        "host=127.0.0.1 port={port} user=sideline dbname=sideline password={PASSWORD} \
         sslmode=verify-full sslrootcert={}",
        certs.ca.display()
    );
    let out = Command::new(find_binary(
        "SIDELINE_PYCLIENTS",
        &["sideline-pyclients-python"],
    ))
    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/pg_clients.py"))
    .env("SIDELINE_PG_DSN", &dsn)
    .env("SIDELINE_TEAM", TEAM)
    .output()
    .unwrap();
    assert!(out.status.success(), "pg_clients.py: {}", stderr(&out));
    let py: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(py["read_only_param"], "on");
    assert_eq!(py["tls"], true);
    // The Python script asks for one team's players.
    let want_rows: Vec<Vec<String>> = want
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|r| r[0].starts_with(&format!("{TEAM}-")))
        .collect();
    assert_eq!(want_rows.len(), 11);
    let got_rows = py["psycopg"].as_array().unwrap();
    assert_eq!(got_rows.len(), want_rows.len());
    for (g, w) in got_rows.iter().zip(&want_rows) {
        assert_eq!(g[0].as_str().unwrap(), w[0]);
        assert_eq!(g[1].as_i64().unwrap().to_string(), w[1]);
        let (gh, wh) = (g[2].as_f64().unwrap(), w[2].parse::<f64>().unwrap());
        assert!((gh - wh).abs() <= 1e-9 * wh.max(1.0), "{g} vs {w:?}");
    }
    let total: usize = want_rows
        .iter()
        .map(|r| r[1].parse::<usize>().unwrap())
        .sum();
    assert_eq!(py["pandas"]["rows"].as_u64().unwrap() as usize, total);
    assert_eq!(
        py["pandas"]["columns"],
        serde_json::json!(["player", "t", "distance_m", "hsr_m", "risk_score"])
    );
    assert!(
        py["pandas"]["t_dtype"]
            .as_str()
            .unwrap()
            .starts_with("datetime64"),
        "{}",
        py["pandas"]
    );
    let hsr_sum: f64 = want_rows.iter().map(|r| r[2].parse::<f64>().unwrap()).sum();
    let got_sum = py["pandas"]["hsr_sum_of_max"].as_f64().unwrap();
    assert!(
        (got_sum - hsr_sum).abs() <= 1e-6 * hsr_sum,
        "{got_sum} vs {hsr_sum}"
    );
    assert!(
        py["last_t"].as_str().unwrap().starts_with("2026-03-"),
        "{py}"
    );
    for (what, code) in py["refused"].as_object().unwrap() {
        assert_eq!(code, "25006", "{what} over psycopg");
    }
}

/// Alerts and acknowledgements of the archive's last session, through the archiver's core:
/// four alerts, two acknowledged.
fn add_alerts(archive: &Path, session: &str, start_us: i64) {
    use prost::Message as _;
    use sideline_archive::archiver::{Archiver, FlushPolicy, Topics};
    use sideline_wire::pb;
    let mut a = Archiver::new(
        sideline_archive::Store::open(archive).unwrap(),
        Topics {
            samples: "s".into(),
            metrics: "m".into(),
            alerts: "a".into(),
            acks: "k".into(),
        },
        FlushPolicy {
            max_rows: 1000,
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(3600),
        },
        sideline_archive::metrics::ArchiveMetrics::new(&prometheus::Registry::new()).unwrap(),
    );
    let now = std::time::Instant::now();
    for i in 0..4i64 {
        let alert = pb::Alert {
            id: format!("alert-{i}"),
            kind: pb::alert::Kind::StrainRisk as i32,
            severity: pb::alert::Severity::Critical as i32,
            state: pb::alert::State::Firing as i32,
            player_id: format!("{TEAM}-0{}", i + 2),
            team_id: TEAM.into(),
            session_id: session.into(),
            t_us: start_us + i * 60_000_000,
            ..Default::default()
        };
        a.offer("a", 0, i, &alert.player_id, &alert.encode_to_vec(), now);
        if i % 2 == 0 {
            let ack = pb::AlertAck {
                alert_id: alert.id.clone(),
                kind: "strain_risk".into(),
                severity: "critical".into(),
                player_id: alert.player_id.clone(),
                team_id: TEAM.into(),
                session_id: session.into(),
                by: "Physio on the bench".into(),
                at_us: alert.t_us + 30_000_000,
                since_us: alert.t_us,
            };
            a.offer("k", 0, i, &ack.player_id, &ack.encode_to_vec(), now);
        }
    }
    a.flush().unwrap();
}

/// Grafana's substitution of its macros and template variables in a panel's SQL, for the time
/// range `from`..`to` (RFC 3339, as Grafana writes them).
fn grafana_sql(sql: &str, from: &str, to: &str, vars: &[(&str, String)]) -> String {
    let mut out = sql
        .replace("$__timeFrom()", &format!("'{from}'"))
        .replace("$__timeTo()", &format!("'{to}'"));
    while let Some(i) = out.find("$__timeFilter(") {
        let rest = &out[i + "$__timeFilter(".len()..];
        let end = rest.find(')').unwrap();
        let col = rest[..end].trim().to_string();
        out = format!(
            "{}{col} BETWEEN '{from}' AND '{to}'{}",
            &out[..i],
            &rest[end + 1..]
        );
    }
    for (name, value) in vars {
        out = out.replace(&format!("${name}"), value);
    }
    assert!(!out.contains('$'), "unexpanded: {out}");
    out
}

/// Every panel of the training-ground dashboard, its SQL expanded as Grafana would, through
/// psql against the server: rows, with the columns the panel shows.
fn training_ground_panels_answer(psql: &Psql, session: &str) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../grafana/dashboards/training-ground.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let quoted = |rows: Vec<String>| {
        rows.iter()
            .skip(1)
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // The variables, from their own queries.
    let vars_list = d["templating"]["list"].as_array().unwrap();
    let var_sql = |n: &str| {
        vars_list.iter().find(|v| v["name"] == n).unwrap()["query"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let team = quoted(psql.csv(&var_sql("team")));
    assert_eq!(team, "'away','home'");
    let players = quoted(psql.csv(&var_sql("player").replace("$team", &team)));
    assert_eq!(players.matches(',').count(), 21, "{players}");
    let sessions = psql.csv(&var_sql("session").replace("$team", &team));
    assert_eq!(sessions[1], session, "latest session first: {sessions:?}");
    let vars = [
        ("session", session.to_string()),
        ("team", team),
        ("player", players),
    ];
    let (from, to) = ("2026-01-01T00:00:00Z", "2026-03-11T00:00:00Z");
    let want: &[(&str, &[&str])] = &[
        (
            "Weekly loads per player",
            &[
                "player",
                "week",
                "sessions",
                "hsr_m",
                "sprint_m",
                "v24_m",
                "accelerations",
            ],
        ),
        ("Weekly HSR", &["time", "metric", "hsr_m"]),
        (
            "7-day HSR against the 28-day weekly average",
            &["time", "player", "hsr_7d_m", "hsr_28d_per_week_m"],
        ),
        (
            "7-day HSR z-score the risk score used (session end)",
            &["time", "player", "state", "z", "threshold", "points"],
        ),
        (
            "Days since ≥ 95 % / ≥ 90 % Vmax",
            &[
                "player",
                "last_95",
                "last_90",
                "days_since_95",
                "days_since_90",
            ],
        ),
        (
            "Session summary: $session",
            &[
                "player",
                "minutes",
                "distance_m",
                "hsr_m",
                "sprint_m",
                "v24_m",
                "sprints",
                "accelerations",
                "decelerations",
                "max_speed_kmh",
                "peak_risk",
                "amber_s",
                "red_s",
            ],
        ),
        (
            "Alert history and acknowledgements",
            &[
                "time",
                "player",
                "kind",
                "severity",
                "state",
                "band",
                "summary",
                "acknowledged_by",
                "acknowledged_at",
            ],
        ),
    ];
    let panels = d["panels"].as_array().unwrap();
    assert_eq!(panels.len(), want.len());
    for (title, columns) in want {
        let p = panels
            .iter()
            .find(|p| p["title"] == *title)
            .unwrap_or_else(|| panic!("{title}"));
        assert_eq!(p["datasource"]["uid"], "sideline-archive", "{title}");
        for t in p["targets"].as_array().unwrap() {
            let sql = grafana_sql(t["rawSql"].as_str().unwrap(), from, to, &vars);
            let rows = psql.csv(&sql);
            assert_eq!(rows[0], columns.join(","), "{title}");
            assert!(rows.len() > 1, "{title}: no rows\n{sql}");
            match *title {
                // Two sessions in one week or two, 22 players.
                "Weekly loads per player" => assert!(rows.len() > 22, "{rows:?}"),
                "Session summary: $session" => assert_eq!(rows.len() - 1, 22, "{rows:?}"),
                "Alert history and acknowledgements" => {
                    assert_eq!(rows.len() - 1, 4, "{rows:?}");
                    let acked = rows
                        .iter()
                        .filter(|r| r.contains("Physio on the bench"))
                        .count();
                    assert_eq!(acked, 2, "{rows:?}");
                }
                "7-day HSR z-score the risk score used (session end)" => {
                    // 2 sessions × 22 players, each term state named.
                    assert_eq!(rows.len() - 1, 44, "{rows:?}");
                    assert!(
                        rows[1..].iter().all(|r| r.contains(",unknown,")
                            || r.contains(",clear,")
                            || r.contains(",fired,")),
                        "{rows:?}"
                    );
                }
                _ => {}
            }
        }
    }
}

#[test]
fn serving_beyond_loopback_without_password_and_tls_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sideline"))
        .arg("sql")
        .arg("--archive")
        .arg(dir.path())
        .arg("--serve")
        .arg("0.0.0.0:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("password_file: required"), "{e}");
    assert!(e.contains("tls_key_file: required"), "{e}");
}
