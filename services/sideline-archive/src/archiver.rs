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
//! Memory is bounded by `max_rows` and `max_bytes`: when the buffer holds that much the caller
//! must flush before offering more ([`Archiver::full`]); if flushing fails (disk full) the rows
//! stay and the caller stops consuming until a flush succeeds, leaving the backlog in Kafka.
//!
//! A flush either runs on the caller's thread ([`Archiver::flush`]) or on the archiver's commit
//! thread ([`Archiver::flush_behind`], see [`crate::commit`]) while the caller offers the next
//! records; then up to twice the buffer is held (the one being committed and the next), and
//! a metrics batch's sort copies it once more: about 3 × `max_bytes` at the peak. The float
//! buffers of committed metrics rows (at most `max_bytes` of them) are kept for the next rows,
//! which fill them instead of new memory ([`crate::metric_rows::Spare`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prost::Message as _;
use sideline_wire::pb;
use sideline_wire::reuse::MetricsDecoder;

use crate::commit::{Done, Job, Offsets, Outcome, SharedStore, Writer, lock};
use crate::metric_rows::Source;
use crate::metric_rows::{MetricRows, Spare};
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
    /// Bytes buffered at most (estimated from each table's [`Table::row_bytes`]).
    pub max_bytes: usize,
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
    store: SharedStore,
    /// The store's committed offsets as of the last commit that finished (the store itself is
    /// locked by a commit under way; looked up by `&str`: this runs per record).
    committed: Offsets,
    topics: Topics,
    policy: FlushPolicy,
    metrics: ArchiveMetrics,
    buf: BTreeMap<(Table, PartKey), Rows>,
    ready: Vec<Part>,
    /// Highest offset buffered, by topic and partition.
    covered: Offsets,
    /// What the commit under way on the commit thread holds.
    inflight: Option<Held>,
    writer: Option<Writer>,
    /// Float buffers of committed metrics rows, for the next ones.
    spare: Spare,
    /// The UTC date of the last row's day, formatted once per day rather than once per row.
    day: (i64, String),
    rows: usize,
    /// Estimated bytes of the buffered rows.
    bytes: usize,
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
            committed: store.committed_by_topic().clone(),
            store: Arc::new(Mutex::new(store)),
            topics,
            policy,
            metrics,
            buf: BTreeMap::new(),
            ready: Vec::new(),
            covered: BTreeMap::new(),
            inflight: None,
            writer: None,
            spare: Spare::default(),
            rows: 0,
            bytes: 0,
            since: None,
            legacy_metrics: false,
            metrics_decoder: MetricsDecoder::skipping_term_text(),
            day: (0, String::new()),
        }
    }

    /// The store, once any commit under way has finished (its outcome is kept: its rows come
    /// back to the buffer if it failed).
    pub fn store(&mut self) -> MutexGuard<'_, Store> {
        if let Err(error) = self.settle() {
            tracing::warn!(message = "Background archive commit failed; rows kept.", %error);
        }
        lock(&self.store)
    }

    /// The last archived offset of every topic partition, as of the last commit that finished.
    pub fn archived(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.committed
            .iter()
            .flat_map(|(t, parts)| parts.iter().map(move |(p, last)| (t.as_str(), *p, *last)))
    }

    /// Re-read the store's offsets (on partition assignment), after any commit under way.
    pub fn refresh(&mut self) -> Result<(), ArchiveError> {
        let settled = self.settle();
        let mut s = lock(&self.store);
        s.refresh()?;
        self.committed = s.committed_by_topic().clone();
        drop(s);
        settled.map(|_| ())
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
        let seen = |o: &Offsets| {
            o.get(topic)
                .and_then(|p| p.get(&partition))
                .is_some_and(|last| offset <= *last)
        };
        if seen(&self.committed)
            || seen(&self.covered)
            || self.inflight.as_ref().is_some_and(|h| seen(&h.covered))
        {
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
        self.bytes += n * table.row_bytes();
        self.set_buffered_gauge();
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

    /// The raw rows of one device batch.
    fn sample_rows(
        &mut self,
        key: &str,
        b: &pb::SampleBatch,
        o: Origin,
    ) -> Result<usize, &'static str> {
        let t = b.samples.first().ok_or("empty")?.t_us;
        let player = if b.player_id.is_empty() {
            key
        } else {
            &b.player_id
        };
        let Some(Rows::Samples(r)) = self.rows_for(Table::Samples, &b.team_id, &b.session_id, t)
        else {
            return Err("bug");
        };
        let before = r.len;
        r.push(b, player, o);
        Ok(r.len - before)
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
                let mut b = pb::SampleBatch::decode(value).map_err(|_| "undecodable")?;
                // A record ingest coalesced: each of the player's batches it holds, in order.
                let parts = std::mem::take(&mut b.coalesced);
                if parts.is_empty() {
                    return self.sample_rows(key, &b, o);
                }
                let mut rows = 0;
                for inner in parts.iter().chain(Some(&b)) {
                    if !inner.samples.is_empty() {
                        rows += self.sample_rows(key, inner, o)?;
                    }
                }
                Ok(rows)
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
            let rows = match table {
                Table::Metrics if self.legacy_metrics => {
                    Rows::Metrics(Box::new(MetricRows::legacy()))
                }
                Table::Metrics => Rows::Metrics(Box::new(MetricRows::with_spare(&mut self.spare))),
                _ => Rows::new(table),
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
        self.rows >= self.policy.max_rows || self.bytes >= self.policy.max_bytes
    }

    /// Is a flush due (full, or the oldest row is old enough)?
    pub fn due(&self, now: Instant) -> bool {
        self.full()
            || self
                .since
                .is_some_and(|s| now.duration_since(s) >= self.policy.max_age)
            || (self.rows == 0 && !self.covered.is_empty())
    }

    /// Is a commit under way on the commit thread?
    pub fn flushing(&self) -> bool {
        self.inflight.is_some()
    }

    /// Commit everything buffered with the offsets it covers, on this thread, after any commit
    /// under way (whose rows are committed now if it failed). On failure nothing is lost: the
    /// rows stay buffered for the next attempt.
    pub fn flush(&mut self) -> Result<Flushed, ArchiveError> {
        let before = match self.settle() {
            Ok(f) => f,
            Err(e) if e.retryable() => Flushed::default(),
            Err(e) => return Err(e),
        };
        let Some((job, held)) = self.take_job() else {
            return Ok(before);
        };
        let now = self.absorb(job.run(&self.store, &self.metrics), held)?;
        Ok(Flushed {
            rows: before.rows + now.rows,
            files: before.files + now.files,
            bytes: before.bytes + now.bytes,
        })
    }

    /// Start committing everything buffered on the commit thread and return at once: the
    /// caller goes on offering records meanwhile ([`Archiver::poll`] tells when it is done).
    /// At most one such commit runs: if one is under way this waits for it first, and returns
    /// its outcome — if it failed, its rows are back in the buffer and nothing new starts (the
    /// caller retries when its policy says so).
    pub fn flush_behind(&mut self) -> Result<Flushed, ArchiveError> {
        let before = self.settle()?;
        if self.writer.is_none() {
            match Writer::spawn(self.store.clone(), self.metrics.clone()) {
                Ok(w) => self.writer = Some(w),
                Err(error) => {
                    tracing::warn!(message = "No archive commit thread; committing on this one.", %error);
                    return self.flush();
                }
            }
        }
        let Some((job, held)) = self.take_job() else {
            return Ok(before);
        };
        let sent = match &self.writer {
            Some(w) => w.send(job),
            None => Err(job),
        };
        match sent {
            Ok(()) => {
                self.inflight = Some(held);
                self.set_buffered_gauge();
                Ok(before)
            }
            // The thread is gone: commit here.
            Err(job) => {
                self.writer = None;
                self.absorb(job.run(&self.store, &self.metrics), held)
            }
        }
    }

    /// The outcome of the commit under way, if it has finished.
    pub fn poll(&mut self) -> Option<Result<Flushed, ArchiveError>> {
        self.inflight.as_ref()?;
        let done = match self.writer.as_ref().map(Writer::try_wait) {
            Some(None) => return None,
            Some(Some(d)) => d,
            None => Err(ArchiveError::CommitThread),
        };
        let held = self.inflight.take()?;
        Some(done.and_then(|d| self.absorb(d, held)))
    }

    /// Wait for the commit under way, if any, and take its outcome.
    fn settle(&mut self) -> Result<Flushed, ArchiveError> {
        let Some(held) = self.inflight.take() else {
            return Ok(Flushed::default());
        };
        let done = match &self.writer {
            Some(w) => w.wait()?,
            None => return Err(ArchiveError::CommitThread),
        };
        self.absorb(done, held)
    }

    /// The buffer and the batches of a failed commit as one job, and what it holds (none if
    /// there is nothing to commit, not even offsets). The archiver is left empty.
    fn take_job(&mut self) -> Option<(Job, Held)> {
        if self.covered.is_empty() && self.ready.is_empty() {
            return None;
        }
        let offsets = self
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
        let job = Job {
            tables: std::mem::take(&mut self.buf).into_iter().collect(),
            ready: std::mem::take(&mut self.ready),
            offsets,
            rows: self.rows,
        };
        let held = Held {
            covered: std::mem::take(&mut self.covered),
            rows: std::mem::take(&mut self.rows),
            bytes: std::mem::take(&mut self.bytes),
        };
        self.since = None;
        Some((job, held))
    }

    /// Take a commit's outcome. Committed: the store's offsets are noted. Failed: its batches,
    /// offsets and counts come back, to be committed with the next job.
    fn absorb(&mut self, done: Done, held: Held) -> Result<Flushed, ArchiveError> {
        // At most one commit's worth is kept (the rest is freed).
        if self.spare.bytes() + done.spare.bytes() <= self.policy.max_bytes {
            self.spare.absorb(done.spare);
        }
        let out = match done.outcome {
            Outcome::Committed(f, committed) => {
                self.committed = committed;
                Ok(f)
            }
            Outcome::Failed(e, parts) => {
                self.ready.extend(parts);
                for (topic, ps) in held.covered {
                    let mine = self.covered.entry(topic).or_default();
                    for (p, last) in ps {
                        let e = mine.entry(p).or_insert(last);
                        *e = (*e).max(last);
                    }
                }
                self.rows += held.rows;
                self.bytes += held.bytes;
                self.since.get_or_insert_with(Instant::now);
                Err(e)
            }
        };
        self.set_buffered_gauge();
        out
    }

    fn set_buffered_gauge(&self) {
        let inflight = self.inflight.as_ref().map_or(0, |h| h.rows);
        self.metrics.buffered.set((self.rows + inflight) as i64);
    }
}

/// What a commit took from the archiver (given back if it fails).
#[derive(Debug)]
struct Held {
    covered: Offsets,
    rows: usize,
    bytes: usize,
}

#[cfg(test)]
#[path = "archiver_tests.rs"]
mod tests;
