#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use prometheus::Registry;

use arrow::array::AsArray as _;

use super::*;
use crate::schema::Origin;

fn topics() -> Topics {
    Topics {
        samples: "s".into(),
        metrics: "m".into(),
        alerts: "a".into(),
        acks: "k".into(),
    }
}

fn archiver(root: &Path, max_rows: usize) -> Archiver {
    archiver_bytes(root, max_rows, usize::MAX)
}

fn archiver_bytes(root: &Path, max_rows: usize, max_bytes: usize) -> Archiver {
    Archiver::new(
        Store::open(root).unwrap(),
        topics(),
        FlushPolicy {
            max_rows,
            max_bytes,
            max_age: Duration::from_secs(30),
        },
        ArchiveMetrics::new(&Registry::new()).unwrap(),
    )
}

fn batch(seq: u64, n: usize) -> Vec<u8> {
    let samples = (0..n)
        .map(|i| pb::Sample {
            t_us: 1_000_000 * seq as i64 + i as i64 * 10_000,
            reading: Some(pb::sample::Reading::HeartRate(pb::HeartRate {
                bpm: 150.0,
                rr_ms: vec![],
            })),
        })
        .collect();
    pb::SampleBatch {
        device_id: "d1".into(),
        team_id: "home".into(),
        session_id: "s1".into(),
        seq,
        samples,
        player_id: "p1".into(),
        received_at_us: 0,
        device_session_id: String::new(),
        coalesced: Vec::new(),
    }
    .encode_to_vec()
}

#[test]
fn replayed_records_are_skipped_and_bad_ones_counted_but_covered() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 1_000_000);
    for off in 0..10 {
        assert_eq!(
            a.offer("s", 0, off, "p1", &batch(off as u64, 3), now),
            Offer::Buffered(3)
        );
    }
    assert_eq!(
        a.offer("s", 0, 10, "p1", b"\xff\xff not protobuf", now),
        Offer::Refused("undecodable")
    );
    assert_eq!(a.offer("s", 0, 5, "p1", &batch(5, 3), now), Offer::Archived);
    let f = a.flush().unwrap();
    assert_eq!((f.rows, f.files), (30, 1));
    // A restart: Kafka redelivers from an older offset; nothing is written twice.
    let mut a = archiver(dir.path(), 1_000_000);
    assert_eq!(a.store().committed("s", 0), Some(10));
    for off in 0..=10 {
        assert_eq!(
            a.offer("s", 0, off, "p1", &batch(off as u64, 3), now),
            Offer::Archived
        );
    }
    assert_eq!(
        a.offer("s", 0, 11, "p1", &batch(11, 2), now),
        Offer::Buffered(2)
    );
    assert_eq!(a.flush().unwrap().rows, 2);
}

/// A record ingest coalesced (issue 31) is archived as the batches it holds: every sample a
/// row, covered by the record's one offset, skipped as a whole on a redelivery.
#[test]
fn a_coalesced_record_is_archived_as_its_batches() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 1_000_000);
    let coalesced = |seqs: std::ops::Range<u64>| {
        pb::SampleBatch {
            coalesced: seqs
                .map(|s| pb::SampleBatch::decode(&batch(s, 3)[..]).unwrap())
                .collect(),
            ..Default::default()
        }
        .encode_to_vec()
    };
    assert_eq!(
        a.offer("s", 0, 0, "p1", &coalesced(0..4), now),
        Offer::Buffered(12)
    );
    assert_eq!(
        a.offer("s", 0, 1, "p1", &batch(4, 3), now),
        Offer::Buffered(3)
    );
    assert_eq!(a.flush().unwrap().rows, 15);
    let mut a = archiver(dir.path(), 1_000_000);
    assert_eq!(
        a.offer("s", 0, 0, "p1", &coalesced(0..4), now),
        Offer::Archived
    );
}

/// A metrics record of `session` at `t_us`.
fn snapshot(session: &str, player: &str, t_us: i64) -> Vec<u8> {
    pb::PlayerMetrics {
        player_id: player.into(),
        team_id: "home".into(),
        session_id: session.into(),
        t_us,
        ..Default::default()
    }
    .encode_to_vec()
}

/// Records of two sessions, across midnight UTC and over two partitions, interleaved: each
/// lands in its own partition directory, and each topic-partition's offset is committed.
#[test]
fn interleaved_sessions_and_days_land_in_their_own_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 1_000_000);
    let midnight = 1_765_065_600_000_000; // 2025-12-07T00:00:00Z
    let mut off = [0i64; 2];
    for i in 0..40i64 {
        let t = midnight - 10_000_000 + i * 500_000;
        let (session, part) = if i % 2 == 0 { ("a", 0) } else { ("b", 1) };
        let v = snapshot(session, &format!("p{}", i % 3), t);
        assert_eq!(
            a.offer("m", part, off[part as usize], "p", &v, now),
            Offer::Buffered(1)
        );
        off[part as usize] += 1;
        // A samples batch between them, for the other table.
        assert_eq!(
            a.offer("s", 0, i, "p1", &batch(i as u64, 1), now),
            Offer::Buffered(1)
        );
    }
    let f = a.flush().unwrap();
    // Samples: one partition; metrics: two sessions x two days.
    assert_eq!((f.rows, f.files), (80, 5));
    for (session, date) in [
        ("a", "2025-12-06"),
        ("a", "2025-12-07"),
        ("b", "2025-12-06"),
        ("b", "2025-12-07"),
    ] {
        let d = dir
            .path()
            .join(format!("metrics/team=home/date={date}/session={session}"));
        assert!(d.is_dir(), "{}", d.display());
    }
    assert_eq!(a.store().committed("m", 0), Some(19));
    assert_eq!(a.store().committed("m", 1), Some(19));
    assert_eq!(a.store().committed("s", 0), Some(39));
    // Every record is counted as archived now, per partition.
    let v = snapshot("a", "p0", midnight);
    assert_eq!(a.offer("m", 1, 19, "p", &v, now), Offer::Archived);
    assert_eq!(a.offer("m", 1, 20, "p", &v, now), Offer::Buffered(1));
}

/// Make commits fail as on a full disk (staging cannot be created), or work again.
fn set_disk_failing(root: &Path, failing: bool) {
    let staging = root.join("_staging");
    if failing {
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::write(&staging, b"in the way").unwrap();
    } else {
        std::fs::remove_file(&staging).unwrap();
        std::fs::create_dir(&staging).unwrap();
    }
}

/// Offsets 0..4 of partition 1 of the samples topic, 5 rows each.
fn offer_four_batches(a: &mut Archiver, now: Instant) {
    for off in 0..4 {
        a.offer("s", 1, off, "p1", &batch(off as u64, 5), now);
    }
}

#[test]
fn a_failed_commit_keeps_every_row_for_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 20);
    offer_four_batches(&mut a, now);
    assert!(a.full());
    // The disk "fails": staging cannot be created.
    set_disk_failing(dir.path(), true);
    let e = a.flush().unwrap_err();
    assert!(e.retryable(), "{e}");
    assert_eq!(a.buffered(), 20);
    assert_eq!(a.store().committed("s", 1), None);
    // More rows may arrive meanwhile (below the bound, the caller keeps reading).
    set_disk_failing(dir.path(), false);
    a.offer("s", 1, 4, "p1", &batch(4, 5), now);
    let f = a.flush().unwrap();
    assert_eq!(f.rows, 25);
    assert_eq!(a.store().committed("s", 1), Some(4));
    // Both parts of the directory are there (the failed commit's and the new rows' files).
    assert_eq!(sample_rows(dir.path()), (25, 5));
}

#[test]
fn a_flush_is_due_by_size_or_age() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 10);
    assert!(!a.due(now));
    a.offer("s", 0, 0, "p1", &batch(0, 3), now);
    assert!(!a.due(now + Duration::from_secs(29)));
    assert!(a.due(now + Duration::from_secs(30)));
    a.offer("s", 0, 1, "p1", &batch(1, 7), now);
    assert!(a.due(now));
}

#[test]
fn a_flush_is_due_when_the_rows_take_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver_bytes(dir.path(), 1_000_000, 10 * Table::Samples.row_bytes());
    a.offer("s", 0, 0, "p1", &batch(0, 5), now);
    assert!(!a.full());
    a.offer("s", 0, 1, "p1", &batch(1, 5), now);
    assert!(a.full() && a.due(now));
}

/// Wait for the commit under way to finish (a condition, polled).
fn finished(a: &mut Archiver) -> Result<Flushed, ArchiveError> {
    let t0 = Instant::now();
    loop {
        if let Some(r) = a.poll() {
            return r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "commit never finished"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SQL over the archive: (rows, distinct batch sequence numbers) of the samples table.
fn sample_rows(root: &Path) -> (i64, i64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = crate::query::context(root).await.unwrap();
        let out = crate::query::run(
            &ctx,
            "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS s FROM samples",
        )
        .await
        .unwrap();
        let n = out[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>();
        let d = out[0]
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>();
        (n.value(0), d.value(0))
    })
}

/// A commit on the commit thread while records keep coming: those it holds count as archived
/// (a redelivery is not buffered again), the next commit waits for it, and in the end every
/// record is in the archive once with its offset committed.
#[test]
fn a_commit_behind_overlaps_reading_and_archives_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 20);
    offer_four_batches(&mut a, now);
    assert!(a.full());
    assert_eq!(a.flush_behind().unwrap(), Flushed::default());
    assert!(a.flushing() && !a.full());
    assert_eq!(a.buffered(), 0);
    // Kafka redelivers one the commit holds; new ones are buffered.
    assert_eq!(a.offer("s", 1, 2, "p1", &batch(2, 5), now), Offer::Archived);
    for off in 4..8 {
        assert_eq!(
            a.offer("s", 1, off, "p1", &batch(off as u64, 5), now),
            Offer::Buffered(5)
        );
    }
    // The second commit waits for the first, and reports it.
    let first = a.flush_behind().unwrap();
    assert_eq!((first.rows, first.files), (20, 1));
    let second = finished(&mut a).unwrap();
    assert_eq!(second.rows, 20);
    assert!(!a.flushing());
    assert_eq!(a.store().committed("s", 1), Some(7));
    assert_eq!(a.archived().collect::<Vec<_>>(), vec![("s", 1, 7)]);
    assert_eq!(a.offer("s", 1, 7, "p1", &batch(7, 5), now), Offer::Archived);
    assert_eq!(sample_rows(dir.path()), (40, 8));
}

/// A commit on the commit thread that fails hands its rows back: nothing is lost, nothing
/// is visible, and the next flush commits them with what arrived meanwhile.
#[test]
fn a_failed_commit_behind_gives_its_rows_back() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 20);
    offer_four_batches(&mut a, now);
    set_disk_failing(dir.path(), true);
    a.flush_behind().unwrap();
    a.offer("s", 1, 4, "p1", &batch(4, 5), now);
    let e = finished(&mut a).unwrap_err();
    assert!(e.retryable(), "{e}");
    assert_eq!(a.buffered(), 25);
    assert!(a.due(now));
    // Still counted as seen: a redelivery is not buffered twice.
    assert_eq!(a.offer("s", 1, 1, "p1", &batch(1, 5), now), Offer::Archived);
    assert_eq!(a.store().committed("s", 1), None);
    set_disk_failing(dir.path(), false);
    let f = a.flush().unwrap();
    assert_eq!(f.rows, 25);
    assert_eq!(a.store().committed("s", 1), Some(4));
    assert_eq!(sample_rows(dir.path()), (25, 5));
}

/// What [`Table::row_bytes`] says a buffered row takes is what the builders hold (the
/// allocation, capacity included), within a quarter, for real samples and metrics.
#[test]
fn row_bytes_match_the_builders() {
    use sideline_sim::{MatchConfig, MatchSim};
    let cfg = MatchConfig {
        half_min: 3.0,
        break_min: 1.0,
        ..MatchConfig::default()
    };
    let mut samples = Rows::new(Table::Samples);
    let mut sim = MatchSim::new(cfg.clone());
    let mut n = 0;
    while let Some(batches) = sim.next_batches() {
        for b in batches {
            if let Rows::Samples(r) = &mut samples {
                let o = Origin {
                    partition: 0,
                    offset: n,
                };
                r.push(&sideline_wire::convert::batch(&b), "p", o);
            }
            n += 1;
        }
    }
    let mut metrics = Rows::new(Table::Metrics);
    sideline_sim::offline::run_match(cfg, sideline_engine::Params::default(), |m| {
        if let Rows::Metrics(r) = &mut metrics {
            r.push(
                &sideline_wire::convert::metrics(m),
                Source::Live,
                Origin {
                    partition: 0,
                    offset: 0,
                },
            );
        }
    });
    for (table, mut rows) in [(Table::Samples, samples), (Table::Metrics, metrics)] {
        let len = rows.len();
        assert!(len > 5_000, "{table:?}: {len} rows");
        let batch = rows.finish().unwrap();
        let per_row = batch.get_array_memory_size() as f64 / len as f64;
        let said = table.row_bytes() as f64;
        eprintln!("{table:?}: {per_row:.0} B/row, row_bytes {said}");
        assert!(
            per_row <= said * 1.25 && per_row >= said * 0.75,
            "{table:?}: {per_row:.0} B/row in the builders, row_bytes says {said}"
        );
    }
}

/// Acknowledgements land in the `acks` table under their alert's team and session, and SQL
/// reads who acknowledged what; a record without an alert id is refused and counted.
#[tokio::test]
async fn acknowledgements_are_archived_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 1_000);
    let ack = pb::AlertAck {
        alert_id: "strain_risk-00ff".into(),
        kind: "strain_risk".into(),
        severity: "critical".into(),
        player_id: "home-07".into(),
        team_id: "home".into(),
        session_id: "cup-final".into(),
        by: "Dr O'Neil".into(),
        at_us: 1_796_569_260_000_000,
        since_us: 1_796_569_200_000_000,
    };
    assert_eq!(
        a.offer("k", 0, 0, "strain_risk-00ff", &ack.encode_to_vec(), now),
        Offer::Buffered(1)
    );
    let bad = pb::AlertAck {
        alert_id: String::new(),
        ..ack.clone()
    };
    assert_eq!(
        a.offer("k", 0, 1, "x", &bad.encode_to_vec(), now),
        Offer::Refused("missing_field")
    );
    assert_eq!(a.flush().unwrap().rows, 1);
    assert!(
        dir.path()
            .join("acks/team=home/date=2026-12-06/session=cup-final")
            .is_dir()
    );
    let ctx = crate::query::context(dir.path()).await.unwrap();
    let out = crate::query::run(
        &ctx,
        "SELECT alert_id, player, severity, by, CAST(at AS BIGINT) AS at_us, session FROM acks",
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&out)
        .unwrap()
        .to_string();
    for want in [
        "strain_risk-00ff",
        "home-07",
        "critical",
        "Dr O'Neil",
        "1796569260000000",
        "cup-final",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
}
