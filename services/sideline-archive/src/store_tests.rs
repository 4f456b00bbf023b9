#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::Path;

use super::*;
use crate::schema::{AlertRows, Origin, Rows};
use sideline_wire::pb;

fn parts(n: usize, session: &str) -> Vec<Part> {
    let mut rows = AlertRows::default();
    for i in 0..n {
        rows.push(
            &pb::Alert {
                id: format!("a{i}"),
                player_id: "p1".into(),
                t_us: 1_000_000,
                ..Default::default()
            },
            Origin {
                partition: 0,
                offset: i as i64,
            },
        );
    }
    let mut r = Rows::Alerts(Box::new(rows));
    vec![Part {
        table: Table::Alerts,
        key: PartKey::new("home", session, 1_000_000),
        batch: r.finish().unwrap(),
    }]
}

fn covered(last: i64) -> Vec<Covered> {
    vec![Covered {
        topic: "alerts".into(),
        partition: 0,
        last,
    }]
}

/// Rows in the visible parquet files of `table`.
fn visible(root: &Path, table: &str) -> usize {
    fn walk(d: &Path, n: &mut usize) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, n);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let f = File::open(&p).unwrap();
                let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .build()
                    .unwrap();
                *n += r.map(|b| b.unwrap().num_rows()).sum::<usize>();
            }
        }
    }
    let mut n = 0;
    let d = root.join(table);
    if d.exists() {
        walk(&d, &mut n);
    }
    n
}

#[test]
fn a_commit_survives_reopening_with_its_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    assert!(s.commit(&parts(5, "s1"), &covered(4)).unwrap() > 0);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.committed("alerts", 0), Some(4));
    assert_eq!(visible(dir.path(), "alerts"), 5);
    assert!(
        dir.path()
            .join("alerts/team=home/date=1970-01-01/session=s1")
            .is_dir()
    );
}

#[test]
fn dying_before_the_manifest_rolls_back_and_after_it_rolls_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&parts(3, "s1"), &covered(2)).unwrap();
    // Dies with files staged but no manifest: nothing of it is ever visible.
    s.commit_until(&parts(4, "s2"), &covered(6), Step::Staged)
        .unwrap();
    assert_eq!(visible(dir.path(), "alerts"), 3);
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.committed("alerts", 0), Some(2));
    assert_eq!(visible(dir.path(), "alerts"), 3);
    assert_eq!(
        std::fs::read_dir(dir.path().join("_staging"))
            .unwrap()
            .count(),
        0
    );
    // Dies after the manifest: the next open finishes the commit.
    s.commit_until(&parts(4, "s2"), &covered(6), Step::Manifested)
        .unwrap();
    assert_eq!(visible(dir.path(), "alerts"), 3);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.committed("alerts", 0), Some(6));
    assert_eq!(visible(dir.path(), "alerts"), 7);
}

#[test]
fn many_commits_fold_into_a_checkpoint_without_losing_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    for i in 0..(FOLD_AFTER as i64 + 5) {
        let mut c = covered(i);
        c.push(Covered {
            topic: "samples".into(),
            partition: (i % 3) as i32,
            last: i * 10,
        });
        s.commit(&[], &c).unwrap();
    }
    let files = std::fs::read_dir(dir.path().join("_commits"))
        .unwrap()
        .count();
    assert!(files < 10, "{files} manifest files left");
    let s = Store::open(dir.path()).unwrap();
    let last = FOLD_AFTER as i64 + 4;
    assert_eq!(s.committed("alerts", 0), Some(last));
    for p in 0..3 {
        let want = (0..=last).filter(|i| i % 3 == p).max().unwrap() * 10;
        assert_eq!(s.committed("samples", p as i32), Some(want));
    }
}
