//! Every metric the archiver exports (`sideline_archive_*`). Labels are bounded: tables are
//! the three of [`Table`], outcomes a fixed list.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::schema::Table;

/// The archiver's metrics.
#[derive(Debug, Clone)]
pub struct ArchiveMetrics {
    /// Records read, by table and outcome (`buffered`, `archived_before`, `undecodable`,
    /// `empty`, `unknown_topic`).
    pub records: IntCounterVec,
    /// Rows committed, by table.
    pub rows: IntCounterVec,
    /// Commits.
    pub commits: IntCounter,
    /// Commits that failed (disk full, permissions): retried, rows kept.
    pub commit_failures: IntCounter,
    /// Parquet bytes committed.
    pub bytes: IntCounter,
    /// Files committed.
    pub files: IntCounter,
    /// Commit duration, s.
    pub commit_seconds: Histogram,
    /// Rows waiting for the next commit.
    pub buffered: IntGauge,
    /// `POST /api/sql` requests, by outcome (`ok`, `unauthorized`, `unsupported_media_type`,
    /// `bad_request`, `forbidden`, `too_many_rows`, `timeout`, `busy`).
    pub sql_requests: IntCounterVec,
    /// `records{outcome="buffered"}` by table (`Table::ALL` order), resolved once: it counts
    /// every record.
    buffered_records: [IntCounter; 4],
}

impl ArchiveMetrics {
    /// Register every metric in `r`.
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let records = IntCounterVec::new(
            Opts::new(
                "sideline_archive_records_total",
                "Kafka records read, by table and outcome.",
            ),
            &["table", "outcome"],
        )?;
        let rows = IntCounterVec::new(
            Opts::new("sideline_archive_rows_total", "Rows committed, by table."),
            &["table"],
        )?;
        let commits = IntCounter::new("sideline_archive_commits_total", "Commits.")?;
        let commit_failures = IntCounter::new(
            "sideline_archive_commit_failures_total",
            "Failed commits (rows kept and retried).",
        )?;
        let bytes = IntCounter::new(
            "sideline_archive_written_bytes_total",
            "Parquet bytes committed.",
        )?;
        let files = IntCounter::new("sideline_archive_files_total", "Parquet files committed.")?;
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new("sideline_archive_commit_seconds", "Commit duration.")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )?;
        let buffered = IntGauge::new(
            "sideline_archive_buffered_rows",
            "Rows waiting for the next commit.",
        )?;
        r.register(Box::new(records.clone()))?;
        r.register(Box::new(rows.clone()))?;
        r.register(Box::new(commits.clone()))?;
        r.register(Box::new(commit_failures.clone()))?;
        r.register(Box::new(bytes.clone()))?;
        r.register(Box::new(files.clone()))?;
        r.register(Box::new(commit_seconds.clone()))?;
        r.register(Box::new(buffered.clone()))?;
        let sql_requests = IntCounterVec::new(
            Opts::new(
                "sideline_archive_sql_requests_total",
                "POST /api/sql requests, by outcome (refused ones: unauthorized, forbidden, …).",
            ),
            &["outcome"],
        )?;
        r.register(Box::new(sql_requests.clone()))?;
        // Every table's series exist from the start (0, not "no data").
        for t in crate::schema::Table::ALL {
            rows.with_label_values(&[t.name()]);
            for outcome in ["buffered", "archived_before"] {
                records.with_label_values(&[t.name(), outcome]);
            }
        }
        let buffered_records =
            Table::ALL.map(|t| records.with_label_values(&[t.name(), "buffered"]));
        Ok(ArchiveMetrics {
            records,
            rows,
            commits,
            commit_failures,
            bytes,
            files,
            commit_seconds,
            buffered,
            sql_requests,
            buffered_records,
        })
    }

    pub(crate) fn outcome(&self, t: Table, outcome: &str) {
        let cached = (outcome == "buffered")
            .then(|| Table::ALL.iter().position(|x| *x == t))
            .flatten()
            .and_then(|i| self.buffered_records.get(i));
        if let Some(c) = cached {
            c.inc();
            return;
        }
        self.records.with_label_values(&[t.name(), outcome]).inc();
    }

    pub(crate) fn rows(&self, t: Table, n: usize) {
        self.rows.with_label_values(&[t.name()]).inc_by(n as u64);
    }

    pub(crate) fn commit(&self, took: Duration, bytes: u64, files: usize) {
        self.commits.inc();
        self.bytes.inc_by(bytes);
        self.files.inc_by(files as u64);
        self.commit_seconds.observe(took.as_secs_f64());
    }
}
