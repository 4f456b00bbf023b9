//! `make bench`: the archive's write rate and the time of a season query, each against a
//! baseline measured in the same run.
//!
//! - Write: the first `SIDELINE_ARCHIVE_MIN` (10) minutes of the synthetic match (22 players,
//!   10 Hz positions, 100 Hz IMU, 1 Hz heart rate) as protobuf records of the samples topic,
//!   through the archiver into Parquet; baseline: only decoding the same records (the least
//!   any archiver must do). Then the same into an object store: moto, an S3-protocol server on
//!   loopback (the client's protocol cost and moto's own, not a real network's).
//! - Metrics: one synthetic match's per-second metrics copied into `SIDELINE_LEGACY_MATCHES`
//!   (4) sessions, archived as before 2026-12-07 (risk terms as JSON text, exact floats) and in
//!   the compact layout (typed terms, rounded floats, sorted): rows/s and bytes per row.
//! - Season: the same copied into `SIDELINE_SEASON_MATCHES` (40) sessions 3.5 days apart
//!   (22 players × ~5,700 s each), archived; then "weekly HSR per player" in SQL; baseline:
//!   the same answer computed by hand in Rust reading the same Parquet files with the
//!   `parquet` crate (projection of the three columns needed); and the same query through
//!   psql and the PostgreSQL-protocol server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use prometheus::Registry;
use prost::Message as _;
use sideline_archive::archiver::{Archiver, FlushPolicy, Topics};
use sideline_archive::backend::Options;
use sideline_archive::metrics::ArchiveMetrics;
use sideline_archive::query;
use sideline_archive::store::Store;
use sideline_engine::Params;
use sideline_sim::{MatchConfig, MatchSim};
use sideline_wire::{convert, pb};

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `archive.max_buffer_mb`'s default, bytes.
const MAX_BYTES: usize = 128 << 20;

fn archiver(root: &Path, opts: &Options, max_bytes: usize) -> Archiver {
    Archiver::new(
        Store::open_with(root, opts).unwrap(),
        Topics {
            samples: "samples".into(),
            metrics: "metrics".into(),
            alerts: "alerts".into(),
            acks: "acks".into(),
        },
        FlushPolicy {
            max_rows: 500_000,
            max_bytes,
            max_age: Duration::from_secs(3600),
        },
        ArchiveMetrics::new(&Registry::new()).unwrap(),
    )
}

fn dir_bytes(d: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() {
            dir_bytes(&p)
        } else {
            p.metadata().unwrap().len()
        };
    }
    n
}

fn write_rate() {
    let minutes = env("SIDELINE_ARCHIVE_MIN", 10.0);
    let cfg = MatchConfig::default();
    let mut sim = MatchSim::new(cfg.clone());
    let wearer: HashMap<String, String> = sim
        .players()
        .iter()
        .map(|p| (p.device.clone(), p.player.clone()))
        .collect();
    let end = cfg.start + (minutes * 60e6) as i64;
    let mut records = Vec::new();
    while let Some(batches) = sim.next_batches() {
        if sim.now() > end {
            break;
        }
        for b in batches {
            let mut w = convert::batch(&b);
            w.player_id = wearer[&b.device].clone();
            records.push((w.player_id.clone(), w.encode_to_vec()));
        }
    }
    let bytes_in: usize = records.iter().map(|r| r.1.len()).sum();

    let t0 = Instant::now();
    let mut rows = 0usize;
    for (_, v) in &records {
        rows += pb::SampleBatch::decode(v.as_slice()).unwrap().samples.len();
    }
    let decode = t0.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().unwrap();
    let write = archive_all(dir.path(), &Options::new(), &records);
    let on_disk = dir_bytes(&dir.path().join("samples"));
    println!(
        "archive write: {minutes} min of a 22-player match, {} records, {rows} sample rows, {:.1} MB protobuf",
        records.len(),
        bytes_in as f64 / 1e6
    );
    println!(
        "  baseline (decode only)  {:>8.2} s  {:>10.0} rows/s",
        decode,
        rows as f64 / decode
    );
    println!(
        "  archive to Parquet      {:>8.2} s  {:>10.0} rows/s  ({:.1}x the baseline's time; {:.1} MB on disk, {:.1} B/row)",
        write,
        rows as f64 / write,
        write / decode,
        on_disk as f64 / 1e6,
        on_disk as f64 / rows as f64
    );
    let s3 = sideline_testkit::S3::start("bench");
    let url = s3.url("archive");
    let opts: Options = s3.options().into_iter().collect();
    let remote = archive_all(Path::new(&url), &opts, &records);
    println!(
        "  archive to S3 (moto)    {:>8.2} s  {:>10.0} rows/s  ({:.1}x the baseline's time; {} objects)",
        remote,
        rows as f64 / remote,
        remote / decode,
        s3.keys("archive/samples/").len()
    );
}

/// Archive every record at `root`, committing (on the commit thread, as the service does)
/// whenever the buffer is full; seconds taken.
fn archive_all(root: &Path, opts: &Options, records: &[(String, Vec<u8>)]) -> f64 {
    let mut a = archiver(root, opts, MAX_BYTES);
    let t0 = Instant::now();
    for (i, (k, v)) in records.iter().enumerate() {
        a.offer("samples", 0, i as i64, k, v, Instant::now());
        if a.full() {
            a.flush_behind().unwrap();
        }
    }
    a.flush().unwrap();
    t0.elapsed().as_secs_f64()
}

/// Weekly HSR per player by hand: each session's last HSR total, summed per ISO week.
fn by_hand(root: &Path) -> BTreeMap<(String, i64), f64> {
    let mut per_session: HashMap<(String, String), (i64, f64)> = HashMap::new();
    let mut files = Vec::new();
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    walk(&root.join("metrics"), &mut files);
    for f in files {
        let session = f
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap()).unwrap();
        let schema = b.parquet_schema();
        let mask = ProjectionMask::columns(schema, ["player", "t", "hsr_m"]);
        for batch in b.with_projection(mask).build().unwrap() {
            let batch = batch.unwrap();
            let p = batch.column(0).as_string::<i32>();
            let t = batch.column(1).as_primitive::<TimestampMicrosecondType>();
            let h = batch.column(2).as_primitive::<Float64Type>();
            for i in 0..batch.num_rows() {
                let e = per_session
                    .entry((p.value(i).to_string(), session.clone()))
                    .or_insert((i64::MIN, 0.0));
                e.0 = e.0.max(t.value(i));
                e.1 = e.1.max(h.value(i));
            }
        }
    }
    let mut out = BTreeMap::new();
    const WEEK: i64 = 7 * 86_400_000_000;
    // Weeks start on Monday; the epoch was a Thursday.
    const MONDAY: i64 = 4 * 86_400_000_000;
    for ((player, _), (t, hsr)) in per_session {
        let week = (t - MONDAY).div_euclid(WEEK) * WEEK + MONDAY;
        *out.entry((player, week)).or_insert(0.0) += hsr;
    }
    out
}

const SEASON_SQL: &str = "SELECT player, date_trunc('week', t) AS week, sum(hsr) AS hsr_m \
    FROM (SELECT player, session, max(t) AS t, max(hsr_m) AS hsr FROM metrics \
          WHERE source = 'live' GROUP BY player, session) \
    GROUP BY player, date_trunc('week', t) ORDER BY player, week";

/// Archive `matches` copies of one match's metrics (3.5 days apart) into `root`; the time
/// spent in the archiver (offer and commit), the time spent waiting for commits, and the rows.
/// Every record is encoded before the clock starts, so that a commit on the commit thread
/// cannot hide in untimed work.
fn write_metrics(
    root: &Path,
    snaps: &[pb::PlayerMetrics],
    matches: i64,
    legacy: bool,
) -> (f64, f64, i64) {
    // The old archiver: no bound on bytes, every commit on this thread.
    let mut a = if legacy {
        archiver(root, &Options::new(), usize::MAX).with_legacy_metrics()
    } else {
        archiver(root, &Options::new(), MAX_BYTES)
    };
    // One buffer of payloads per match, and where each record ends in it.
    let encoded: Vec<(Vec<u8>, Vec<usize>)> = (0..matches)
        .map(|s| {
            let mut buf = Vec::new();
            let mut ends = Vec::with_capacity(snaps.len());
            let mut m = pb::PlayerMetrics::default();
            for snap in snaps {
                m.clone_from(snap);
                m.t_us += s * 302_400_000_000; // 3.5 days
                m.session_id = format!("match-{s:02}");
                m.encode(&mut buf).unwrap();
                ends.push(buf.len());
            }
            (buf, ends)
        })
        .collect();
    let mut flushing = Duration::ZERO;
    let mut offset = 0;
    let t0 = Instant::now();
    for (buf, ends) in &encoded {
        let mut start = 0;
        for (snap, &end) in snaps.iter().zip(ends) {
            a.offer(
                "metrics",
                0,
                offset,
                &snap.player_id,
                &buf[start..end],
                Instant::now(),
            );
            start = end;
            offset += 1;
            if a.full() {
                // Waiting: for the commit on this thread (before), or for the commit thread's
                // previous commit (compact: it overlaps the decoding of the next records).
                let t1 = Instant::now();
                if legacy {
                    a.flush().unwrap();
                } else {
                    a.flush_behind().unwrap();
                }
                flushing += t1.elapsed();
            }
        }
    }
    let t1 = Instant::now();
    a.flush().unwrap();
    flushing += t1.elapsed();
    (t0.elapsed().as_secs_f64(), flushing.as_secs_f64(), offset)
}

/// The season query through psql against the PostgreSQL-protocol server over `root`
/// (in this process, on a loopback port); best of 3, and the weekly HSR summed.
async fn season_over_pg(root: &Path) -> Option<(f64, f64, usize)> {
    let psql = ["/usr/bin/psql", "/usr/local/bin/psql"]
        .into_iter()
        .find(|p| Path::new(p).is_file())?;
    let ctx = query::context(root).await.unwrap();
    sideline_archive::pg::add_catalog(&ctx).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(sideline_archive::pg::serve(
        listener,
        std::sync::Arc::new(ctx),
        sideline_archive::pg::PgSettings {
            account: None,
            tls: None,
            max_connections: 4,
            statement_timeout_ms: 60_000,
        },
        sideline_archive::pg::PgMetrics::new(None).unwrap(),
        stop.clone(),
    ));
    let (mut best, mut sum, mut rows) = (f64::INFINITY, 0.0, 0);
    for _ in 0..3 {
        let t0 = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(psql)
                .args([
                    "-X",
                    "-A",
                    "-t",
                    "-F",
                    ",",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "bench",
                ])
                .args(["-p", &port.to_string(), "-c", SEASON_SQL])
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        best = best.min(t0.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        rows = text.lines().count();
        sum = text
            .lines()
            .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
            .sum();
    }
    stop.cancel();
    server.await.unwrap();
    Some((best, sum, rows))
}

async fn season() {
    let matches = env("SIDELINE_SEASON_MATCHES", 40.0) as i64;
    let before_matches = env("SIDELINE_LEGACY_MATCHES", 4.0) as i64;
    let cfg = MatchConfig {
        break_min: 1.0,
        ..MatchConfig::default()
    };
    let mut snaps = Vec::new();
    sideline_sim::offline::run_match(cfg.clone(), Params::default(), |m| {
        snaps.push(convert::metrics(m))
    });

    println!();
    println!(
        "metrics archive: {} rows per match (22 players x ~5,700 s), the archiver's time only",
        snaps.len()
    );
    let mut rates = Vec::new();
    for (label, legacy) in [
        ("before (2026-12-06): JSON terms, exact floats", true),
        ("compact: typed terms, rounded floats, sorted ", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (secs, flush, rows) = write_metrics(dir.path(), &snaps, before_matches, legacy);
        let bytes = dir_bytes(&dir.path().join("metrics"));
        rates.push(rows as f64 / secs);
        println!(
            "  {label}  {before_matches} matches, {rows} rows: {secs:>6.2} s (flushing {flush:.2} s), {:>8.0} rows/s, {:>6.1} B/row",
            rows as f64 / secs,
            bytes as f64 / rows as f64
        );
    }
    println!(
        "  compact vs before: {:.1}x the rows per second",
        rates[1] / rates[0]
    );

    let dir = tempfile::tempdir().unwrap();
    let (write, _, rows) = write_metrics(dir.path(), &snaps, matches, false);
    let bytes = dir_bytes(&dir.path().join("metrics"));
    println!();
    println!(
        "season query: {matches} matches x 22 players, {rows} metric rows (compact: {:.1} s to archive, {:.0} rows/s, {:.1} MB, {:.1} B/row)",
        write,
        rows as f64 / write,
        bytes as f64 / 1e6,
        bytes as f64 / rows as f64
    );
    println!("  \"weekly HSR per player\" (each session's final HSR, summed per week)");

    let mut best_hand = f64::INFINITY;
    let mut best_sql = f64::INFINITY;
    let mut hand = BTreeMap::new();
    let mut sql_rows = 0;
    for _ in 0..3 {
        let t0 = Instant::now();
        hand = by_hand(dir.path());
        best_hand = best_hand.min(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        let ctx = query::context(dir.path()).await.unwrap();
        let b = query::run(&ctx, SEASON_SQL).await.unwrap();
        best_sql = best_sql.min(t0.elapsed().as_secs_f64());
        sql_rows = b.iter().map(|b| b.num_rows()).sum::<usize>();
        // Same answer.
        let mut got = 0.0;
        for batch in &b {
            let h = batch.column(2).as_primitive::<Float64Type>();
            got += (0..batch.num_rows()).map(|i| h.value(i)).sum::<f64>();
        }
        let want: f64 = hand.values().sum();
        assert!(
            (got - want).abs() < 1e-6 * want.max(1.0),
            "sql {got} vs hand {want}"
        );
    }
    assert_eq!(sql_rows, hand.len());
    println!(
        "  baseline (Rust by hand, parquet crate)  {:>7.3} s  ({} player-weeks)",
        best_hand,
        hand.len()
    );
    println!(
        "  DataFusion SQL (context + plan + run)   {:>7.3} s  ({:.2}x the baseline's time)",
        best_sql,
        best_sql / best_hand
    );
    match season_over_pg(dir.path()).await {
        Some((secs, sum, n)) => {
            let want: f64 = hand.values().sum();
            assert_eq!(n, hand.len(), "rows over the PostgreSQL protocol");
            assert!(
                (sum - want).abs() < 1e-6 * want.max(1.0),
                "pg {sum} vs hand {want}"
            );
            println!(
                "  psql over the PostgreSQL protocol       {:>7.3} s  ({:.2}x the baseline's time; a psql process per run)",
                secs,
                secs / best_hand
            );
        }
        None => {
            println!("  psql over the PostgreSQL protocol: psql not installed (scripts/setup.sh)")
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    write_rate();
    season().await;
}
