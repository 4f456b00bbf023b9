#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use prometheus::Registry;

use super::*;

fn topics() -> Topics {
    Topics {
        samples: "s".into(),
        metrics: "m".into(),
        alerts: "a".into(),
        acks: "k".into(),
    }
}

fn archiver(root: &Path, max_rows: usize) -> Archiver {
    Archiver::new(
        Store::open(root).unwrap(),
        topics(),
        FlushPolicy {
            max_rows,
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

#[test]
fn a_failed_commit_keeps_every_row_for_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut a = archiver(dir.path(), 20);
    for off in 0..4 {
        a.offer("s", 1, off, "p1", &batch(off as u64, 5), now);
    }
    assert!(a.full());
    // The disk "fails": staging cannot be created.
    let staging = dir.path().join("_staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::write(&staging, b"in the way").unwrap();
    let e = a.flush().unwrap_err();
    assert!(e.retryable(), "{e}");
    assert_eq!(a.buffered(), 20);
    assert_eq!(a.store().committed("s", 1), None);
    // More rows may arrive meanwhile (below the bound, the caller keeps reading).
    std::fs::remove_file(&staging).unwrap();
    std::fs::create_dir(&staging).unwrap();
    a.offer("s", 1, 4, "p1", &batch(4, 5), now);
    let f = a.flush().unwrap();
    assert_eq!(f.rows, 25);
    assert_eq!(a.store().committed("s", 1), Some(4));
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
