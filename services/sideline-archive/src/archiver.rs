//! The archiver's core, with no Kafka in it: records in (topic, partition, offset, key,
//! value), rows buffered per table and partition directory, and flushes that commit the
//! buffered rows with the offsets they cover (see [`crate::store`]).
//!
//! A record at or below the archive's committed offset for its partition was archived before
//! (a replay after a crash or a rebalance) and is skipped, so the archive holds every record
//! exactly once whatever Kafka redelivers. A record that does not decode is counted
//! (`sideline_archive_records_total{outcome="undecodable"}`), logged, and its offset still
//! counts as covered: it is never retried forever.
//!
//! Memory is bounded by `max_rows`: when the buffer holds that many rows the caller must flush
//! before offering more ([`Archiver::full`]); if flushing fails (disk full) the rows stay and
//! the caller stops consuming until a flush succeeds, leaving the backlog in Kafka.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use sideline_wire::pb;
use sideline_wire::reuse::MetricsDecoder;

use crate::metric_rows::MetricRows;
use crate::metric_rows::Source;
use crate::metrics::ArchiveMetrics;
use crate::schema::{Origin, PartKey, Rows, Table, date_of};

/// One day, µs.
const DAY_US: i64 = 86_400_000_000;
use crate::store::{ArchiveError, Covered, Part, Store};

/// The topics and the table each feeds.
#[derive(Debug, Clone)]
pub struct Topics {
    /// `sideline.samples.v1`.
    pub samples: String,
    /// `sideline.metrics.v1`.
    pub metrics: String,
    /// `sideline.alerts.v1`.
    pub alerts: String,
    /// `sideline.acks.v1`.
    pub acks: String,
}

impl Topics {
    fn table(&self, topic: &str) -> Option<Table> {
        if topic == self.samples {
            Some(Table::Samples)
        } else if topic == self.metrics {
            Some(Table::Metrics)
        } else if topic == self.alerts {
            Some(Table::Alerts)
        } else if topic == self.acks {
            Some(Table::Acks)
        } else {
            None
        }
    }
}

/// When to flush.
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    /// Rows buffered at most.
    pub max_rows: usize,
    /// Age of the oldest buffered row at most.
    pub max_age: Duration,
}

/// What became of an offered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Its rows are buffered.
    Buffered(usize),
    /// Archived before (at or below the committed offset).
    Archived,
    /// Not archivable (counted and logged); the reason is a metric label.
    Refused(&'static str),
}

/// What a flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Rows.
    pub rows: usize,
    /// Files.
    pub files: usize,
    /// Bytes.
    pub bytes: u64,
}

/// The core. See the module documentation.
#[derive(Debug)]
pub struct Archiver {
    store: Store,
    topics: Topics,
    policy: FlushPolicy,
    metrics: ArchiveMetrics,
    buf: BTreeMap<(Table, PartKey), Rows>,
    ready: Vec<Part>,
    /// Highest offset buffered, by topic and partition (looked up by `&str`: this runs per
    /// record).
    covered: BTreeMap<String, BTreeMap<i32, i64>>,
    /// The UTC date of the last row's day, formatted once per day rather than once per row.
    day: (i64, String),
    rows: usize,
    since: Option<Instant>,
    legacy_metrics: bool,
    /// Metrics records decode into one reused message (one record per player-second).
    metrics_decoder: MetricsDecoder,
}

impl Archiver {
    /// Write the metrics table as before 2026-12-07 ([`MetricRows::legacy`]): only for the
    /// benchmark's before/after in one run.
    pub fn with_legacy_metrics(mut self) -> Self {
        self.legacy_metrics = true;
        self
    }

    /// An archiver writing to `store`.
    pub fn new(store: Store, topics: Topics, policy: FlushPolicy, metrics: ArchiveMetrics) -> Self {
        Archiver {
            store,
            topics,
            policy,
            metrics,
            buf: BTreeMap::new(),
            ready: Vec::new(),
            covered: BTreeMap::new(),
            rows: 0,
            since: None,
            legacy_metrics: false,
            metrics_decoder: MetricsDecoder::skipping_term_text(),
            day: (0, String::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Re-read the store's offsets (on partition assignment).
    pub fn refresh(&mut self) -> Result<(), ArchiveError> {
        self.store.refresh()
    }

    /// Take one record.
    pub fn offer(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        key: &str,
        value: &[u8],
        now: Instant,
    ) -> Offer {
        let Some(table) = self.topics.table(topic) else {
            return self.refuse(Table::Samples, "unknown_topic", topic, partition, offset);
        };
        let done = self.store.committed(topic, partition);
        let pending = self.covered.get(topic).and_then(|p| p.get(&partition));
        if done.is_some_and(|d| offset <= d) || pending.is_some_and(|p| offset <= *p) {
            self.metrics.outcome(table, "archived_before");
            return Offer::Archived;
        }
        match self.covered.get_mut(topic) {
            Some(p) => {
                p.insert(partition, offset);
            }
            None => {
                self.covered
                    .insert(topic.to_string(), BTreeMap::from([(partition, offset)]));
            }
        }
        let o = Origin { partition, offset };
        let n = match self.rows_of(table, key, value, o) {
            Ok(n) => n,
            Err(reason) => return self.refuse(table, reason, topic, partition, offset),
        };
        self.metrics.outcome(table, "buffered");
        self.rows += n;
        self.metrics.buffered.set(self.rows as i64);
        self.since.get_or_insert(now);
        Offer::Buffered(n)
    }

    fn refuse(
        &mut self,
        table: Table,
        reason: &'static str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Offer {
        self.metrics.outcome(table, reason);
        tracing::warn!(
            message = "Record not archived.",
            reason,
            topic,
            partition,
            offset
        );
        Offer::Refused(reason)
    }

    fn rows_of(
        &mut self,
        table: Table,
        key: &str,
        value: &[u8],
        o: Origin,
    ) -> Result<usize, &'static str> {
        match table {
            Table::Samples => {
                let b = pb::SampleBatch::decode(value).map_err(|_| "undecodable")?;
                let t = b.samples.first().ok_or("empty")?.t_us;
                let player = if b.player_id.is_empty() {
                    key
                } else {
                    &b.player_id
                };
                let Some(Rows::Samples(r)) = self.rows_for(table, &b.team_id, &b.session_id, t)
                else {
                    return Err("bug");
                };
                let before = r.len;
                r.push(&b, player, o);
                Ok(r.len - before)
            }
            Table::Metrics => {
                // Taken out for the call so that the rows can be borrowed beside it. The
                // legacy layout (the benchmark's "before") decodes afresh, as it used to.
                let mut dec = std::mem::take(&mut self.metrics_decoder);
                let fresh;
                let decoded = if self.legacy_metrics {
                    fresh = pb::PlayerMetrics::decode(value);
                    fresh.as_ref().map_err(|_| ())
                } else {
                    dec.decode(value).map_err(|_| ())
                };
                let pushed = match decoded {
                    Ok(m) => match self.rows_for(table, &m.team_id, &m.session_id, m.t_us) {
                        Some(Rows::Metrics(r)) => {
                            r.push(m, Source::Live, o);
                            Ok(1)
                        }
                        _ => Err("bug"),
                    },
                    Err(()) => Err("undecodable"),
                };
                self.metrics_decoder = dec;
                pushed
            }
            Table::Alerts => {
                let a = pb::Alert::decode(value).map_err(|_| "undecodable")?;
                let Some(Rows::Alerts(r)) = self.rows_for(table, &a.team_id, &a.session_id, a.t_us)
                else {
                    return Err("bug");
                };
                r.push(&a, o);
                Ok(1)
            }
            Table::Acks => {
                let a = pb::AlertAck::decode(value).map_err(|_| "undecodable")?;
                if a.alert_id.is_empty() || a.player_id.is_empty() {
                    return Err("missing_field");
                }
                let Some(Rows::Acks(r)) = self.rows_for(table, &a.team_id, &a.session_id, a.at_us)
                else {
                    return Err("bug");
                };
                r.push(&a, o);
                Ok(1)
            }
        }
    }

    /// The rows of `table` in the partition of (`team`, `session`, the day of `t_us`), made if
    /// new. Few partitions are open at once, so they are scanned by borrowed ids rather than
    /// found by an owned key built per record.
    fn rows_for(
        &mut self,
        table: Table,
        team: &str,
        session: &str,
        t_us: i64,
    ) -> Option<&mut Rows> {
        let day = t_us.div_euclid(DAY_US);
        if self.day.1.is_empty() || self.day.0 != day {
            self.day = (day, date_of(t_us));
        }
        let date = self.day.1.as_str();
        let here = |(t, k): &(Table, PartKey)| {
            *t == table && k.team == team && k.session == session && k.date == date
        };
        if !self.buf.keys().any(here) {
            let rows = if self.legacy_metrics && table == Table::Metrics {
                Rows::Metrics(Box::new(MetricRows::legacy()))
            } else {
                Rows::new(table)
            };
            let key = PartKey {
                team: team.to_string(),
                date: date.to_string(),
                session: session.to_string(),
            };
            self.buf.insert((table, key), rows);
        }
        self.buf
            .iter_mut()
            .find(|(k, _)| here(k))
            .map(|(_, rows)| rows)
    }

    /// Rows buffered.
    pub fn buffered(&self) -> usize {
        self.rows
    }

    /// Must the caller flush before offering more?
    pub fn full(&self) -> bool {
        self.rows >= self.policy.max_rows
    }

    /// Is a flush due (full, or the oldest row is old enough)?
    pub fn due(&self, now: Instant) -> bool {
        self.full()
            || self
                .since
                .is_some_and(|s| now.duration_since(s) >= self.policy.max_age)
            || (self.rows == 0 && !self.covered.is_empty())
    }

    /// Commit everything buffered with the offsets it covers. On failure nothing is lost: the
    /// rows stay buffered for the next attempt.
    pub fn flush(&mut self) -> Result<Flushed, ArchiveError> {
        if self.covered.is_empty() && self.ready.is_empty() {
            return Ok(Flushed::default());
        }
        for ((table, key), mut rows) in std::mem::take(&mut self.buf) {
            if rows.is_empty() {
                continue;
            }
            let batch = rows.finish()?;
            self.ready.push(Part { table, key, batch });
        }
        let offsets: Vec<Covered> = self
            .covered
            .iter()
            .flat_map(|(topic, parts)| {
                parts.iter().map(|(partition, last)| Covered {
                    topic: topic.clone(),
                    partition: *partition,
                    last: *last,
                })
            })
            .collect();
        let started = Instant::now();
        match self.store.commit(&self.ready, &offsets) {
            Ok(bytes) => {
                let f = Flushed {
                    rows: self.rows,
                    files: self.ready.len(),
                    bytes,
                };
                for p in &self.ready {
                    self.metrics.rows(p.table, p.batch.num_rows());
                }
                self.metrics.commit(started.elapsed(), bytes, f.files);
                self.ready.clear();
                self.covered.clear();
                self.rows = 0;
                self.since = None;
                self.metrics.buffered.set(0);
                Ok(f)
            }
            Err(e) => {
                self.metrics.commit_failures.inc();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
#[path = "archiver_tests.rs"]
mod tests;
