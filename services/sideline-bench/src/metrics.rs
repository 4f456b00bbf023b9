//! Every metric of `sideline bench`.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// The bench's metrics.
#[derive(Debug, Clone)]
pub struct BenchMetrics {
    /// Records read, by topic role and result (`ok`, `bad`).
    pub records: IntCounterVec,
    /// Acknowledgements made on the page written to the acks topic, by result.
    pub acks_written: IntCounterVec,
    /// Lineup changes posted on the bench written to the roster topic, by result.
    pub lineup_written: IntCounterVec,
    /// Requests with credentials that did not sign in (wrong user, password or header).
    pub sign_in_refused: IntCounter,
}

impl BenchMetrics {
    /// Register every metric in `r`.
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let records = IntCounterVec::new(
            Opts::new(
                "sideline_bench_records_total",
                "Records read by the bench, by topic (metrics, alerts, roster, acks) and result (ok, bad).",
            ),
            &["topic", "result"],
        )?;
        r.register(Box::new(records.clone()))?;
        for t in ["metrics", "alerts", "roster", "acks"] {
            for res in ["ok", "bad"] {
                records.with_label_values(&[t, res]);
            }
        }
        let acks_written = IntCounterVec::new(
            Opts::new(
                "sideline_bench_acks_written_total",
                "Acknowledgements made on the bench page written to the acks topic, by result (ok, failed).",
            ),
            &["result"],
        )?;
        r.register(Box::new(acks_written.clone()))?;
        let lineup_written = IntCounterVec::new(
            Opts::new(
                "sideline_bench_lineup_written_total",
                "Lineup changes (substitutions) posted on the bench written to the roster topic, by result (ok, failed).",
            ),
            &["result"],
        )?;
        r.register(Box::new(lineup_written.clone()))?;
        for res in ["ok", "failed"] {
            acks_written.with_label_values(&[res]);
            lineup_written.with_label_values(&[res]);
        }
        let sign_in_refused = IntCounter::new(
            "sideline_bench_sign_in_refused_total",
            "Requests whose credentials (Basic user and password) did not sign in.",
        )?;
        r.register(Box::new(sign_in_refused.clone()))?;
        Ok(BenchMetrics {
            records,
            acks_written,
            lineup_written,
            sign_in_refused,
        })
    }
}
