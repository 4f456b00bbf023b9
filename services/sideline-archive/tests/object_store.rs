//! The archive's commit protocol on an object store: a real S3-protocol server (moto) over
//! HTTP. A commit that dies before its manifest is never visible to SQL and is removed on the
//! next open; one that dies after it is finished by the next open; offsets survive reopening;
//! SQL reads the tables from the bucket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use sideline_archive::backend::Options;
use sideline_archive::query;
use sideline_archive::schema::{AlertRows, Origin, PartKey, Rows, Table};
use sideline_archive::store::{Covered, Part, Step, Store};
use sideline_testkit::S3;
use sideline_wire::pb;

fn parts(n: usize, session: &str) -> Vec<Part> {
    let mut rows = AlertRows::default();
    for i in 0..n {
        let a = pb::Alert {
            id: format!("{session}-{i}"),
            player_id: "p1".into(),
            t_us: 1_000_000,
            ..Default::default()
        };
        let at = Origin {
            partition: 0,
            offset: i as i64,
        };
        rows.push(&a, at);
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

/// Alert rows SQL sees in the archive.
async fn visible(root: &Path, opts: &Options) -> i64 {
    let ctx = query::context_with(root, opts).await.unwrap();
    let b = query::run(&ctx, "SELECT count(*) FROM alerts")
        .await
        .unwrap();
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_on_an_object_store_are_all_or_nothing_and_recover_on_open() {
    let s3 = S3::start("club-archive");
    let opts: Options = s3.options().into_iter().collect();
    let url = s3.url("sideline");
    let root = Path::new(&url);

    let mut s = Store::open_with(root, &opts).unwrap();
    assert!(s.commit(&parts(3, "s1"), &covered(2)).unwrap() > 0);
    assert_eq!(visible(root, &opts).await, 3);
    let keys = s3.keys("sideline/alerts/");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("sideline/alerts/team=home/date=1970-01-01/session=s1/part-"),
        "{keys:?}"
    );

    // Dies with its file staged but no manifest: never visible, rolled back on open.
    s.commit_until(&parts(4, "s2"), &covered(6), Step::Staged)
        .unwrap();
    assert_eq!(s3.keys("sideline/_staging/").len(), 1);
    assert_eq!(visible(root, &opts).await, 3);
    drop(s);
    let mut s = Store::open_with(root, &opts).unwrap();
    assert_eq!(s.committed("alerts", 0), Some(2));
    assert!(s3.keys("sideline/_staging/").is_empty());
    assert_eq!(visible(root, &opts).await, 3);

    // Dies after the manifest: the next open moves the file into place.
    s.commit_until(&parts(4, "s2"), &covered(6), Step::Manifested)
        .unwrap();
    assert_eq!(visible(root, &opts).await, 3);
    drop(s);
    let s = Store::open_with(root, &opts).unwrap();
    assert_eq!(s.committed("alerts", 0), Some(6));
    assert!(s3.keys("sideline/_staging/").is_empty());
    assert_eq!(visible(root, &opts).await, 7);
    drop(s);

    // Nothing outside the prefix was touched.
    assert_eq!(s3.keys("").len(), s3.keys("sideline/").len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_object_store_fails_the_commit_retryably_and_a_bad_url_fatally() {
    let s3 = S3::start("gone");
    let mut opts: Options = s3.options().into_iter().collect();
    let url = s3.url("x");
    let mut s = Store::open_with(Path::new(&url), &opts).unwrap();
    drop(s3);
    let t0 = std::time::Instant::now();
    let e = s.commit(&parts(1, "s1"), &covered(0)).unwrap_err();
    assert!(e.retryable(), "{e}");
    assert_eq!(s.committed("alerts", 0), None);
    assert!(
        t0.elapsed().as_secs() < 20,
        "gave up after {:?}",
        t0.elapsed()
    );

    let e = Store::open_with(Path::new("gs://bucket/x"), &opts).unwrap_err();
    assert!(!e.retryable(), "{e}");
    assert!(e.to_string().contains("only s3://"), "{e}");
    opts.insert("no_such_setting".into(), "1".into());
    assert_eq!(
        sideline_archive::backend::unknown_options(&opts),
        vec!["no_such_setting".to_string()]
    );
}
