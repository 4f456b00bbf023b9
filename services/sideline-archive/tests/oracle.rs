//! The archive as an independent oracle: a simulated match goes through the engine and, as
//! the topics would carry it, into the archive; SQL over the archived *samples* recomputes each
//! player's running figures from the device speeds and must agree with the engine's totals,
//! and the archived *metrics* and *alerts* must be exactly what the engine produced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use prometheus::Registry;
use prost::Message as _;
use sideline_archive::archiver::{Archiver, FlushPolicy, Offer, Topics};
use sideline_archive::metric_rows::{MetricRows, Source};
use sideline_archive::metrics::ArchiveMetrics;
use sideline_archive::query;
use sideline_archive::reprocess::{self, Rerun};
use sideline_archive::resolution::{Resolution, of_column, stored};
use sideline_archive::schema::{Origin, Rows, TERM_F64};
use sideline_archive::store::Store;
use sideline_engine::risk::{TermId, TermState};
use sideline_engine::{Engine, Params, PlayerMetrics};
use sideline_sim::{MatchConfig, MatchSim};
use sideline_wire::convert;

const PARTITIONS: i32 = 4;

struct Feed {
    a: Archiver,
    offsets: HashMap<(String, i32), i64>,
}

impl Feed {
    fn offer(&mut self, topic: &str, key: &str, value: &[u8]) {
        let p = (key.bytes().map(u32::from).sum::<u32>() % PARTITIONS as u32) as i32;
        let o = self.offsets.entry((topic.into(), p)).or_insert(0);
        let r = self.a.offer(topic, p, *o, key, value, Instant::now());
        assert!(matches!(r, Offer::Buffered(_)), "{r:?}");
        *o += 1;
        if self.a.full() {
            self.a.flush().unwrap();
        }
    }
}

fn f64_col(b: &arrow::array::RecordBatch, name: &str) -> Vec<f64> {
    let c = b.column_by_name(name).unwrap();
    let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Float64).unwrap();
    let c = c.as_primitive::<Float64Type>();
    (0..c.len()).map(|i| c.value(i)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_over_archived_samples_agrees_with_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = MatchConfig {
        half_min: 4.0,
        break_min: 1.0,
        ..MatchConfig::default()
    };
    let mut sim = MatchSim::new(cfg.clone());
    let players: HashMap<String, String> = sim
        .players()
        .iter()
        .map(|p| (p.device.clone(), p.player.clone()))
        .collect();
    let mut engine: Engine = sideline_sim::offline::engine_for(&sim, Params::default());
    let mut feed = Feed {
        a: Archiver::new(
            Store::open(dir.path()).unwrap(),
            Topics {
                samples: "samples".into(),
                metrics: "metrics".into(),
                alerts: "alerts".into(),
                acks: "acks".into(),
            },
            FlushPolicy {
                max_rows: 400_000,
                max_bytes: usize::MAX,
                max_age: Duration::from_secs(3600),
            },
            ArchiveMetrics::new(&Registry::new()).unwrap(),
        ),
        offsets: HashMap::new(),
    };
    let mut out = sideline_engine::Outputs::default();
    let mut last: BTreeMap<String, PlayerMetrics> = BTreeMap::new();
    let mut positions: BTreeMap<String, i64> = BTreeMap::new();
    let mut alert_count = 0;
    let mut emit = |out: &mut sideline_engine::Outputs, feed: &mut Feed| {
        for m in out.metrics.drain(..) {
            feed.offer("metrics", &m.player, &convert::metrics(&m).encode_to_vec());
            last.insert(m.player.to_string(), m);
        }
        for a in out.alerts.drain(..) {
            feed.offer("alerts", &a.player, &convert::alert(&a).encode_to_vec());
            alert_count += 1;
        }
    };
    let t0 = Instant::now();
    while let Some(batches) = sim.next_batches() {
        for b in &batches {
            let player = &players[&b.device];
            let mut w = convert::batch(b);
            w.player_id = player.clone();
            *positions.entry(player.clone()).or_default() += w
                .samples
                .iter()
                .filter(|s| {
                    matches!(
                        s.reading,
                        Some(sideline_wire::pb::sample::Reading::Position(_))
                    )
                })
                .count() as i64;
            feed.offer("samples", player, &w.encode_to_vec());
            engine.ingest_batch(b, &mut out);
        }
        engine.tick(sim.now(), &mut out);
        emit(&mut out, &mut feed);
    }
    engine.finish(&mut out);
    emit(&mut out, &mut feed);
    feed.a.flush().unwrap();
    eprintln!("archived in {:.1} s", t0.elapsed().as_secs_f64());

    let ctx = query::context(dir.path()).await.unwrap();
    // Every position sample is there once.
    let b = query::run(
        &ctx,
        "SELECT player, count(*) AS n, count(DISTINCT CAST(kafka_partition AS BIGINT) * 1000000000000 + kafka_offset * 10000 + CAST(idx AS BIGINT)) AS d \
         FROM samples WHERE stream = 'position' GROUP BY player ORDER BY player",
    )
    .await
    .unwrap();
    let b = arrow::compute::concat_batches(&b[0].schema(), &b).unwrap();
    assert_eq!(b.num_rows(), positions.len());
    let n = b.column(1).as_primitive::<Int64Type>();
    let d = b.column(2).as_primitive::<Int64Type>();
    for (i, (p, want)) in positions.iter().enumerate() {
        assert_eq!(b.column(0).as_string::<i32>().value(i), p);
        assert_eq!(n.value(i), *want, "{p}");
        assert_eq!(d.value(i), *want, "{p}");
    }

    // Distance and high-speed running from the device speeds (10 Hz, 0.1 s each), leaving out
    // readings no human can run (the simulator's injected artefacts, which the engine rejects).
    let b = query::run(
        &ctx,
        "SELECT player, sum(speed_mps * 0.1) AS distance_m, \
                sum(CASE WHEN speed_mps > 5.5 THEN speed_mps * 0.1 ELSE 0 END) AS hsr_m \
         FROM samples WHERE stream = 'position' AND speed_mps < 12.5 \
         GROUP BY player ORDER BY player",
    )
    .await
    .unwrap();
    let b = arrow::compute::concat_batches(&b[0].schema(), &b).unwrap();
    let (dist, hsr) = (f64_col(&b, "distance_m"), f64_col(&b, "hsr_m"));
    let mut worst = (0.0f64, 0.0f64);
    for (i, p) in positions.keys().enumerate() {
        let t = &last[p].totals;
        let (ed, eh) = ((dist[i] - t.distance_m) / t.distance_m, hsr[i] - t.hsr_m);
        eprintln!(
            "{p}: distance sql {:.1} engine {:.1} ({:+.2} %), hsr sql {:.1} engine {:.1}",
            dist[i],
            t.distance_m,
            ed * 100.0,
            hsr[i],
            t.hsr_m
        );
        // The engine thresholds its filtered speed, which crosses 5.5 m/s a little less often
        // than the raw readings: within 5 % + 5 m.
        worst = (
            worst.0.max(ed.abs()),
            worst.1.max(eh.abs() - 0.05 * t.hsr_m),
        );
    }
    assert!(
        worst.0 < 0.01,
        "distance differs by {:.2} %",
        worst.0 * 100.0
    );
    assert!(worst.1 < 5.0, "HSR differs by {:.1} m beyond 5 %", worst.1);

    // The archived metrics are the engine's: the last second of each player equals its totals.
    let b = query::run(
        &ctx,
        "SELECT m.player, m.distance_m, m.hsr_m, m.sprints, m.risk_score, m.risk_completeness, \
                m.off_pitch_m, m.rhi_bouts \
         FROM metrics m \
         JOIN (SELECT player, max(t) AS t FROM metrics GROUP BY player) l \
           ON m.player = l.player AND m.t = l.t ORDER BY m.player",
    )
    .await
    .unwrap();
    let b = arrow::compute::concat_batches(&b[0].schema(), &b).unwrap();
    let (d, h, s, r, c) = (
        f64_col(&b, "distance_m"),
        f64_col(&b, "hsr_m"),
        f64_col(&b, "sprints"),
        f64_col(&b, "risk_score"),
        f64_col(&b, "risk_completeness"),
    );
    let (off, rhi) = (f64_col(&b, "off_pitch_m"), f64_col(&b, "rhi_bouts"));
    // Exactly the engine's figures at the archive's stated resolution.
    let st = |c: &str, v: f64| stored(of_column(c), v);
    for (i, (p, m)) in last.iter().enumerate() {
        assert_eq!(b.column(0).as_string::<i32>().value(i), p);
        assert_eq!(
            (off[i], rhi[i]),
            (
                st("off_pitch_m", m.totals.off_pitch_m),
                f64::from(m.totals.rhi_bouts)
            ),
            "{p}"
        );
        assert_eq!(
            (d[i], h[i], s[i] as u32, r[i], c[i]),
            (
                st("distance_m", m.totals.distance_m),
                st("hsr_m", m.totals.hsr_m),
                m.totals.sprints,
                st("risk_score", m.risk.score),
                st("risk_completeness", m.risk.completeness)
            ),
            "{p}"
        );
        assert!((d[i] - m.totals.distance_m).abs() <= 1.0 / 256.0, "{p}");
    }
    // Each risk term in its typed columns, as the engine scored it.
    let terms: Vec<String> = TermId::ALL
        .iter()
        .map(|t| format!("m.{0}_state, m.{0}_points, m.{0}_value", t.as_str()))
        .collect();
    let b = query::run(
        &ctx,
        &format!(
            "SELECT m.player, m.risk_terms, {} FROM metrics m \
             JOIN (SELECT player, max(t) AS t FROM metrics GROUP BY player) l \
               ON m.player = l.player AND m.t = l.t ORDER BY m.player",
            terms.join(", ")
        ),
    )
    .await
    .unwrap();
    let b = arrow::compute::concat_batches(&b[0].schema(), &b).unwrap();
    assert_eq!(
        b.column(1).null_count(),
        b.num_rows(),
        "no JSON terms any more"
    );
    let mut fired = 0;
    for (i, (p, m)) in last.iter().enumerate() {
        for (k, id) in TermId::ALL.iter().enumerate() {
            let t = m.risk.terms.iter().find(|t| t.id == *id).unwrap();
            let state = b.column(2 + 3 * k).as_string::<i32>().value(i);
            let points = b.column(3 + 3 * k).as_primitive::<Float64Type>().value(i);
            let value = b.column(4 + 3 * k).as_primitive::<Float64Type>();
            let want = match t.state {
                TermState::Fired => "fired",
                TermState::Clear => "clear",
                TermState::Unknown => "unknown",
            };
            fired += usize::from(want == "fired");
            assert_eq!(
                (state, points),
                (want, stored(Resolution::Relative, t.points)),
                "{p} {}",
                id.as_str()
            );
            match t.value.filter(|v| v.is_finite()) {
                Some(v) => assert_eq!(
                    value.value(i),
                    stored(Resolution::Relative, v),
                    "{p} {}",
                    id.as_str()
                ),
                None => assert!(value.is_null(i), "{p} {}", id.as_str()),
            }
        }
    }
    assert!(
        fired > 0,
        "no term fired: the check saw only clear and unknown"
    );
    let b = query::run(&ctx, "SELECT count(*) FROM alerts")
        .await
        .unwrap();
    assert_eq!(
        b[0].column(0).as_primitive::<Int64Type>().value(0),
        alert_count
    );
    // The views answer.
    let b = query::run(
        &ctx,
        "SELECT team, session, players FROM sessions ORDER BY team",
    )
    .await
    .unwrap();
    assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    assert_eq!(b[0].column(1).as_string::<i32>().value(0), cfg.session);

    // The post-session report: every player, the engine's figures, charts inline.
    let r = sideline_archive::report::session(dir.path(), &cfg.session)
        .await
        .unwrap();
    assert_eq!(r.rows.len(), last.len());
    let hsr = r.columns.iter().position(|c| c == "hsr_m").unwrap();
    for row in &r.rows {
        let want = last[&row[1]].totals.hsr_m;
        let got: f64 = row[hsr].parse().unwrap();
        // Printed to 0.01, stored to 1/128 m.
        assert!(
            (got - want).abs() <= 0.005 + 1.0 / 256.0,
            "{}: {got} vs {want}",
            row[1]
        );
    }
    let html = sideline_archive::report::html(&r);
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "not self-contained"
    );
    assert!(html.contains("home-07"));
    let csv = sideline_archive::report::csv(&r);
    assert_eq!(csv.lines().count(), 1 + last.len());
    let trend = sideline_archive::report::player(dir.path(), "home-07", 4)
        .await
        .unwrap();
    assert_eq!(trend.rows.len(), 1);
    std::fs::write(
        std::env::temp_dir().join("sideline-session-report.html"),
        &html,
    )
    .unwrap();

    // Daily loads from the archive: one day, each player's final live totals.
    let loads = sideline_archive::baselines::daily_loads(dir.path(), chrono_tz::UTC)
        .await
        .unwrap();
    assert_eq!(loads.len(), last.len());
    for ((_, p), days) in &loads {
        assert_eq!(days.len(), 1, "{p}");
        let t = &last[p].totals;
        assert_eq!(days[0].sessions, 1);
        assert_eq!(
            (days[0].hsr_m, days[0].distance_m, days[0].vmax95),
            (
                st("hsr_m", t.hsr_m),
                st("distance_m", t.distance_m),
                t.vmax_exposures[2]
            ),
            "{p}"
        );
    }

    // Reprocessing the stored session with the live parameter set, profiles and baselines
    // reproduces the live totals exactly.
    let stored = reprocess::load(dir.path(), &cfg.session, None)
        .await
        .unwrap();
    let sim = MatchSim::new(cfg.clone());
    let mut how = Rerun {
        params: Params::default(),
        profiles: sim.players().iter().map(|p| p.profile.clone()).collect(),
        baselines: sim
            .players()
            .iter()
            .map(|p| (p.player.clone(), p.baseline.clone()))
            .collect(),
        zero_phase: false,
    };
    let finals = |snaps: &[PlayerMetrics]| {
        let mut f: BTreeMap<String, PlayerMetrics> = BTreeMap::new();
        for m in snaps {
            f.insert(m.player.to_string(), m.clone());
        }
        f
    };
    let again = finals(&reprocess::run(&stored, &how));
    assert_eq!(again.len(), last.len());
    for (p, m) in &last {
        assert_eq!(again[p].totals, m.totals, "{p}");
    }
    // Zero-phase: the same running, filtered without lag; close to live, not identical.
    how.zero_phase = true;
    let snaps = reprocess::run(&stored, &how);
    let zp = finals(&snaps);
    let mut changed = 0;
    for (p, m) in &last {
        let d = (zp[p].totals.distance_m - m.totals.distance_m) / m.totals.distance_m;
        assert!(
            d.abs() < 0.02,
            "{p}: zero-phase distance {:+.2} %",
            d * 100.0
        );
        changed += usize::from(zp[p].totals != m.totals);
    }
    assert!(changed > 0);
    let written = reprocess::write(dir.path(), &snaps).unwrap();
    let ctx = query::context(dir.path()).await.unwrap();
    let b = query::run(
        &ctx,
        "SELECT count(*) FROM metrics WHERE source = 'reconciled'",
    )
    .await
    .unwrap();
    assert_eq!(
        b[0].column(0).as_primitive::<Int64Type>().value(0),
        written as i64
    );

    // A file written before a column existed (here: the same rows without
    // `risk_completeness`) still reads, with nulls there, beside the newer files.
    let old = first_parquet(&dir.path().join("metrics"));
    let rows = {
        let f = std::fs::File::open(&old).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        r.map(|b| b.unwrap()).collect::<Vec<_>>()
    };
    let keep: Vec<usize> = (0..rows[0].num_columns())
        .filter(|&i| rows[0].schema().field(i).name() != "risk_completeness")
        .collect();
    let narrow: Vec<_> = rows.iter().map(|b| b.project(&keep).unwrap()).collect();
    let n_old: usize = narrow.iter().map(|b| b.num_rows()).sum();
    {
        let f = std::fs::File::create(&old).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, narrow[0].schema(), None).unwrap();
        for b in &narrow {
            w.write(b).unwrap();
        }
        w.close().unwrap();
    }
    let ctx = query::context(dir.path()).await.unwrap();
    let b = query::run(
        &ctx,
        "SELECT count(*) FILTER (WHERE risk_completeness IS NULL), count(*) FROM metrics",
    )
    .await
    .unwrap();
    let (nulls, all) = (
        b[0].column(0).as_primitive::<Int64Type>().value(0),
        b[0].column(1).as_primitive::<Int64Type>().value(0),
    );
    assert_eq!(nulls as usize, n_old, "of {all} rows");
    assert!(all as usize > n_old);

    // A file as written before the compact layout (terms as JSON text, floats exact, no
    // typed term columns) reads beside the compact ones: JSON there, typed columns null.
    let mut legacy = Rows::Metrics(Box::new(MetricRows::legacy()));
    let Rows::Metrics(r) = &mut legacy else {
        unreachable!()
    };
    let (p, m) = last.iter().next().unwrap();
    r.push(
        &convert::metrics(m),
        Source::Live,
        Origin {
            partition: 0,
            offset: 0,
        },
    );
    let batch = legacy.finish().unwrap();
    let typed: Vec<String> = TermId::ALL
        .iter()
        .flat_map(|t| {
            std::iter::once("state")
                .chain(TERM_F64)
                .map(move |x| format!("{}_{x}", t.as_str()))
        })
        .collect();
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|&i| !typed.contains(batch.schema().field(i).name()))
        .collect();
    assert_eq!(keep.len(), batch.num_columns() - 64);
    let old_batch = batch.project(&keep).unwrap();
    let legacy_dir = dir
        .path()
        .join("metrics/team=legacy/date=2026-01-01/session=old");
    std::fs::create_dir_all(&legacy_dir).unwrap();
    {
        let f = std::fs::File::create(legacy_dir.join("part-old.parquet")).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, old_batch.schema(), None).unwrap();
        w.write(&old_batch).unwrap();
        w.close().unwrap();
    }
    let ctx = query::context(dir.path()).await.unwrap();
    let b = query::run(
        &ctx,
        "SELECT risk_terms, b_hsr_z_state, distance_m FROM metrics WHERE team = 'legacy'",
    )
    .await
    .unwrap();
    assert_eq!(b[0].num_rows(), 1);
    assert!(
        b[0].column(0)
            .as_string::<i32>()
            .value(0)
            .contains("\"b_hsr_z\"")
    );
    assert!(b[0].column(1).is_null(0));
    assert_eq!(
        b[0].column(2).as_primitive::<Float64Type>().value(0),
        m.totals.distance_m,
        "{p}: a legacy file keeps exact floats"
    );
}

/// The first Parquet file under `dir` (any depth).
fn first_parquet(dir: &std::path::Path) -> std::path::PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                return p;
            }
        }
    }
    panic!("no parquet file under {}", dir.display());
}
