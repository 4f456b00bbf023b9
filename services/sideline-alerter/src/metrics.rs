//! Every metric the alerter exports (`sideline_alerter_*`). Labels are bounded: destination
//! names come from the configuration; reasons and results are fixed lists.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// The alerter's metrics.
#[derive(Debug, Clone)]
pub struct AlerterMetrics {
    /// Alert events read, by result (`accepted`, `replayed`, `bad_malformed`, `bad_missing_field`).
    pub consumed: IntCounterVec,
    /// Player entries put in messages, by change (raised, escalated, …, escalation).
    pub entries: IntCounterVec,
    /// Messages stored in the outbox, by destination.
    pub enqueued: IntCounterVec,
    /// Entries not enqueued because their idempotency key was seen, by destination.
    pub duplicates: IntCounterVec,
    /// Messages delivered (2xx), by destination.
    pub delivered: IntCounterVec,
    /// Failed attempts that will be retried, by destination and reason (`5xx`, `network`).
    pub retried: IntCounterVec,
    /// 429 answers, by destination.
    pub rate_limited: IntCounterVec,
    /// Failed attempts, by destination and reason (`429`, `5xx`, `4xx`, `network`).
    pub failed: IntCounterVec,
    /// Messages given up, by destination and reason (`rejected_4xx`, `expired`, `corrupt`).
    pub dropped: IntCounterVec,
    /// Messages waiting, by destination.
    pub pending: IntGaugeVec,
    /// Message formed → delivered, s, by destination.
    pub latency: HistogramVec,
    /// Acknowledge requests, by result (`ok`, `unknown`, `expired`, `bad_signature`, `malformed`).
    pub acks: IntCounterVec,
    /// Acknowledgements written to the acks topic, by result (`ok`, `failed`: retried).
    pub acks_archived: IntCounterVec,
    /// Outbox write failures (disk full, permissions): messages held in memory meanwhile.
    pub outbox_errors: IntGauge,
    /// Group rejoins forced by the orphaned-partition watchdog.
    pub rejoins: IntCounter,
    /// Reds told, not acknowledged, whose route will escalate them (per player and
    /// destination); an acknowledgement, on a chat link or the bench, takes one away.
    pub escalations_waiting: IntGauge,
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl AlerterMetrics {
    /// Create every series of a configured destination at zero, so that dashboards and alert
    /// rules see "no failures" rather than "no data" before the first failure.
    pub fn init_destination(&self, name: &str) {
        for c in [
            &self.enqueued,
            &self.duplicates,
            &self.delivered,
            &self.rate_limited,
        ] {
            c.with_label_values(&[name]);
        }
        self.pending.with_label_values(&[name]);
        self.latency.with_label_values(&[name]);
        for reason in ["429", "5xx", "4xx", "network"] {
            self.failed.with_label_values(&[name, reason]);
        }
        for reason in ["5xx", "network"] {
            self.retried.with_label_values(&[name, reason]);
        }
        for reason in ["expired", "rejected_4xx"] {
            self.dropped.with_label_values(&[name, reason]);
        }
    }

    /// Register every metric in `r`.
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let d = &["destination"];
        let dr = &["destination", "reason"];
        let pending = IntGaugeVec::new(
            Opts::new(
                "sideline_alerter_outbox_pending",
                "Messages waiting in the outbox.",
            ),
            d,
        )?;
        r.register(Box::new(pending.clone()))?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "sideline_alerter_delivery_latency_seconds",
                "Message formed to delivered, seconds.",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            d,
        )?;
        r.register(Box::new(latency.clone()))?;
        let outbox_errors = IntGauge::new(
            "sideline_alerter_outbox_write_errors",
            "Messages held in memory because the outbox could not be written.",
        )?;
        r.register(Box::new(outbox_errors.clone()))?;
        let rejoins = IntCounter::new(
            "sideline_alerter_group_rejoins_total",
            "Consumer-group rejoins forced by the orphaned-partition watchdog.",
        )?;
        r.register(Box::new(rejoins.clone()))?;
        let escalations_waiting = IntGauge::new(
            "sideline_alerter_escalations_waiting",
            "Reds told and not acknowledged whose route escalates them.",
        )?;
        r.register(Box::new(escalations_waiting.clone()))?;
        Ok(AlerterMetrics {
            rejoins,
            escalations_waiting,
            consumed: counter(
                r,
                "sideline_alerter_alerts_consumed_total",
                "Alert events read.",
                &["result"],
            )?,
            entries: counter(
                r,
                "sideline_alerter_entries_total",
                "Player entries in messages.",
                &["change"],
            )?,
            enqueued: counter(
                r,
                "sideline_alerter_messages_enqueued_total",
                "Messages stored in the outbox.",
                d,
            )?,
            duplicates: counter(
                r,
                "sideline_alerter_duplicate_entries_total",
                "Entries skipped: idempotency key seen.",
                d,
            )?,
            delivered: counter(
                r,
                "sideline_alerter_messages_delivered_total",
                "Messages delivered.",
                d,
            )?,
            retried: counter(
                r,
                "sideline_alerter_delivery_retries_total",
                "Attempts retried.",
                dr,
            )?,
            rate_limited: counter(r, "sideline_alerter_rate_limited_total", "429 answers.", d)?,
            failed: counter(
                r,
                "sideline_alerter_delivery_failures_total",
                "Failed attempts.",
                dr,
            )?,
            dropped: counter(
                r,
                "sideline_alerter_messages_dropped_total",
                "Messages given up.",
                dr,
            )?,
            pending,
            latency,
            acks: counter(
                r,
                "sideline_alerter_acks_total",
                "Acknowledge requests.",
                &["result"],
            )?,
            acks_archived: counter(
                r,
                "sideline_alerter_acks_archived_total",
                "Acknowledgements written to the acks topic, by result (failed ones are retried).",
                &["result"],
            )?,
            outbox_errors,
        })
    }
}
