//! Fewer, larger records (issue 31): a [`RecordSink`] in front of Kafka that puts one player's
//! batches arriving within `ingest.coalesce_linger_ms` into one record of the samples topic.
//!
//! The broker's cost is per record, and pods send a small batch per stream every 200 ms, so
//! the samples topic's record rate, not its bytes, is what limits a durable broker. Each batch
//! keeps its own encoding, device, sequence number and session: the record is a `SampleBatch`
//! whose only field is `coalesced` (field 16), the batches in the order they were offered, so
//! de-duplication by (device, seq) works as before and the processor and the archive read
//! both shapes. A group of one goes out as the batch itself.
//!
//! Acknowledgement is unchanged: [`Coalescer::send`] returns once Kafka has acknowledged the
//! record holding that batch, so an MQTT message is acknowledged only then, and a kill during
//! the linger loses nothing (the broker re-delivers the unacknowledged messages). If Kafka
//! refuses a coalesced record for good (too large for the broker, say) each batch is sent on
//! its own, so one batch's fault is never another's. A transient failure fails each batch's
//! send, and each caller retries its own (they coalesce again).
//!
//! Order: groups are closed (by the linger or by `coalesce_max_kb`) under one lock and handed
//! to the producer in that order, so a player's batches reach Kafka in the order offered.
//! Records of other topics (the DLQ) and records with headers pass straight through.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use sideline_bus::{Record, RecordSink, SendFuture, SinkError};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::metrics::IngestMetrics;

/// Field 16 (`coalesced`), wire type 2 (length-delimited): (16 << 3) | 2, as a varint.
const COALESCED_TAG: [u8; 2] = [0x82, 0x01];

type Waiter = oneshot::Sender<Result<(), SinkError>>;

/// Batches of one key waiting for the linger to end.
struct Group {
    id: u64,
    topic: String,
    key: String,
    parts: Vec<Bytes>,
    bytes: usize,
    waiters: Vec<Waiter>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// The open group of each key.
    open: HashMap<String, Group>,
    /// (deadline, key, group id) of open groups, oldest first (one linger for all).
    deadlines: VecDeque<(Instant, String, u64)>,
    /// Closed groups not yet handed to the producer, in closing order.
    closed: VecDeque<Group>,
}

struct Shared {
    inner: Arc<dyn RecordSink>,
    topic: String,
    linger: Duration,
    max_bytes: usize,
    state: Mutex<State>,
    wake: Notify,
    metrics: IngestMetrics,
}

/// The coalescing sink; its flusher task stops when it is dropped.
pub struct Coalescer {
    shared: Arc<Shared>,
    flusher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("topic", &self.shared.topic)
            .field("linger", &self.shared.linger)
            .finish_non_exhaustive()
    }
}

impl Drop for Coalescer {
    fn drop(&mut self) {
        self.flusher.abort();
    }
}

impl Coalescer {
    /// Coalesce records of `topic` for up to `linger` or `max_bytes`, in front of `inner`.
    /// Must be called within a Tokio runtime.
    pub fn new(
        inner: Arc<dyn RecordSink>,
        topic: &str,
        linger: Duration,
        max_bytes: usize,
        metrics: IngestMetrics,
    ) -> Self {
        let shared = Arc::new(Shared {
            inner,
            topic: topic.to_string(),
            linger,
            max_bytes,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            metrics,
        });
        let flusher = tokio::spawn(flush_loop(shared.clone()));
        Coalescer { shared, flusher }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Add `record` to its key's group; the receiver gets the group's outcome.
    fn offer(&self, record: Record) -> oneshot::Receiver<Result<(), SinkError>> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        let State {
            next_id,
            open,
            deadlines,
            closed,
        } = &mut *st;
        let was_idle = deadlines.is_empty() && closed.is_empty();
        let g = open.entry(record.key.clone()).or_insert_with(|| {
            *next_id += 1;
            deadlines.push_back((Instant::now() + self.linger, record.key.clone(), *next_id));
            Group {
                id: *next_id,
                topic: record.topic.clone(),
                key: record.key.clone(),
                parts: Vec::new(),
                bytes: 0,
                waiters: Vec::new(),
            }
        });
        g.bytes += record.value.len() + 6;
        g.parts.push(record.value);
        g.waiters.push(tx);
        let full = g.bytes >= self.max_bytes;
        if full && let Some(g) = open.remove(&record.key) {
            closed.push_back(g);
        }
        drop(st);
        if was_idle || full {
            self.wake.notify_one();
        }
        rx
    }

    /// Close the groups whose linger has ended; the next deadline, if any.
    fn close_due(&self, now: Instant) -> Option<Instant> {
        let mut st = self.lock();
        let State {
            open,
            deadlines,
            closed,
            ..
        } = &mut *st;
        while let Some((due, key, id)) = deadlines.front() {
            if *due > now {
                return Some(*due);
            }
            if open.get(key).is_some_and(|g| g.id == *id)
                && let Some(g) = open.remove(key)
            {
                closed.push_back(g);
            }
            deadlines.pop_front();
        }
        None
    }

    fn take_closed(&self) -> VecDeque<Group> {
        std::mem::take(&mut self.lock().closed)
    }

    /// Produce one closed group and tell its waiters.
    async fn produce(self: Arc<Self>, g: Group) {
        if g.parts.len() == 1 {
            self.metrics
                .sample_records
                .with_label_values(&["one"])
                .inc();
            let value = g.parts.into_iter().next().unwrap_or_default();
            let r = self.inner.send(record(g.topic, g.key, value)).await;
            for w in g.waiters {
                let _ = w.send(r.clone());
            }
            return;
        }
        let mut value = Vec::with_capacity(g.bytes);
        for p in &g.parts {
            value.extend_from_slice(&COALESCED_TAG);
            put_varint(&mut value, p.len() as u64);
            value.extend_from_slice(p);
        }
        let r = self
            .inner
            .send(record(g.topic.clone(), g.key.clone(), value.into()))
            .await;
        if let Err(SinkError::Reject(error)) = &r {
            // Refused for good as a whole: each batch on its own, each with its own outcome.
            tracing::warn!(message = "A coalesced record was refused; sending its batches one by one.", %error, batches = g.parts.len());
            for (p, w) in g.parts.into_iter().zip(g.waiters) {
                self.metrics
                    .sample_records
                    .with_label_values(&["one"])
                    .inc();
                let r = self
                    .inner
                    .send(record(g.topic.clone(), g.key.clone(), p))
                    .await;
                let _ = w.send(r);
            }
            return;
        }
        if r.is_ok() {
            self.metrics
                .sample_records
                .with_label_values(&["coalesced"])
                .inc();
            self.metrics.coalesced_batches.inc_by(g.parts.len() as u64);
        }
        for w in g.waiters {
            let _ = w.send(r.clone());
        }
    }
}

fn record(topic: String, key: String, value: Bytes) -> Record {
    Record {
        topic,
        key,
        value,
        headers: Vec::new(),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Close groups when their linger ends and hand closed groups to the producer in order.
async fn flush_loop(shared: Arc<Shared>) {
    let mut sending = FuturesUnordered::new();
    loop {
        let next = shared.close_due(Instant::now());
        for g in shared.take_closed() {
            sending.push(shared.clone().produce(g));
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            Some(()) = sending.next(), if !sending.is_empty() => {}
        }
    }
}

impl RecordSink for Coalescer {
    fn send(&self, record: Record) -> SendFuture<'_> {
        Box::pin(async move {
            let s = &self.shared;
            if record.topic != s.topic || !record.headers.is_empty() || s.linger.is_zero() {
                if record.topic == s.topic {
                    s.metrics.sample_records.with_label_values(&["one"]).inc();
                }
                return s.inner.send(record).await;
            }
            match s.offer(record).await {
                Ok(r) => r,
                Err(_) => Err(SinkError::Retry {
                    class: "retry",
                    detail: "the coalescer stopped before the record was sent".into(),
                }),
            }
        })
    }

    fn reachable(&self) -> bool {
        self.shared.inner.reachable()
    }
}

#[cfg(test)]
#[path = "coalesce_tests.rs"]
mod tests;
