//! The Kafka shell around the processor's [`Core`]: records from the consumer go into the core,
//! and what comes out is produced; `lib.rs` drives it from one `select!` loop.
//!
//! - a record or a tick: the core's outputs (dead letters, snapshots, alert events) are queued
//!   for Kafka, waiting while the producer's local queue is full (where a slow or absent
//!   Kafka slows consumption down);
//! - a checkpoint: the core encodes a snapshot of every player that changed; once Kafka has
//!   acknowledged every output produced before it, those snapshots are produced (a snapshot
//!   never covers an output Kafka does not have: a restore skips the records it covers, so
//!   such an output would be lost for good); once the snapshots too are acknowledged, the
//!   offsets they cover are committed (the loop goes on meanwhile: [`crate::commits`]). On
//!   shutdown and before a rejoin, the same synchronously.
//! - an output Kafka refuses, or that cannot be queued, stops the loop with [`OutputError`]:
//!   nothing after it is committed, so the restart from the last checkpoint produces it
//!   again. Outputs are never skipped.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prost::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sideline_kafka::sink::{ProducerSlot, QueueError};
use sideline_wire::convert;

use crate::commits::Commits;
use crate::context::{ProcessorContext, RebalanceEvent};
use crate::core::{Core, DeadLetter};

/// An output that could not be delivered: the loop stops (fatal for this run; the supervisor's
/// restart resumes from the last checkpoint, whose outputs were all acknowledged).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Kafka refused a record (after the producer's own retries).
    #[error("Kafka refused an output record: {0}")]
    Refused(KafkaError),
    /// The producer dropped a record before delivering it.
    #[error("an output record was cancelled by the producer")]
    Cancelled,
    /// A record could not be queued for the producer (not a full queue: that waits).
    #[error("an output record for {topic} could not be queued: {error}")]
    Queue {
        /// The topic.
        topic: String,
        /// Why.
        error: KafkaError,
    },
}

/// A checkpoint's snapshots, encoded when it was taken, waiting until every output produced
/// before it is acknowledged.
#[derive(Debug)]
struct Staged {
    /// Outputs numbered below this come first.
    after: u64,
    /// (partition, next offset) it covers.
    offsets: Vec<(i32, i64)>,
    /// (partition, player, encoded snapshot).
    snaps: Vec<(i32, String, Vec<u8>)>,
    taken: Instant,
}

type Delivery = Result<
    rdkafka::producer::future_producer::OwnedDeliveryResult,
    futures::channel::oneshot::Canceled,
>;

/// An output's acknowledgement with the output's sequence number (see [`Commits`]) and the
/// producer generation that sent it.
struct Tagged {
    seq: u64,
    generation: u64,
    fut: DeliveryFuture,
}

impl Future for Tagged {
    type Output = (u64, u64, Delivery);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.fut)
            .poll(cx)
            .map(|r| (this.seq, this.generation, r))
    }
}

/// Topic names the processor writes to.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Input.
    pub samples: String,
    /// Per-second snapshots.
    pub metrics: String,
    /// Alert events.
    pub alerts: String,
    /// Engine state.
    pub state: String,
    /// Dead letters.
    pub dlq: String,
}

/// Everything the loop owns.
pub struct Processor {
    /// Records in, outputs as values.
    pub core: Core,
    producer: Arc<ProducerSlot>,
    pending: FuturesUnordered<Tagged>,
    commits: Commits,
    /// Checkpoints whose snapshots wait for the outputs before them, oldest first.
    staged: VecDeque<Staged>,
    topics: Topics,
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Processor {
    /// A processor around `core`, producing through `producer`.
    pub fn new(core: Core, producer: Arc<ProducerSlot>, topics: Topics) -> Self {
        Processor {
            core,
            producer,
            pending: FuturesUnordered::new(),
            commits: Commits::default(),
            staged: VecDeque::new(),
            topics,
        }
    }

    /// Outputs not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Wait for the next acknowledgement (for the loop's `select!`), then produce the
    /// snapshots that were waiting for it.
    pub async fn next_delivery(&mut self) -> Result<(), OutputError> {
        if let Some(r) = self.pending.next().await {
            self.delivered(r)?;
        }
        self.release_staged().await?;
        self.core
            .metrics
            .pending_outputs
            .set(self.pending.len() as i64);
        Ok(())
    }

    /// Output `seq` delivered, or an error: an output Kafka did not take is never counted as
    /// acknowledged (a checkpoint after it would cover it).
    fn delivered(&mut self, (seq, generation, r): (u64, u64, Delivery)) -> Result<(), OutputError> {
        match r {
            Ok(Ok(_)) => {
                self.commits.acked(seq);
                Ok(())
            }
            Ok(Err((error, _))) => {
                // A fatal error rebuilds the producer for the restart.
                self.producer.failed(generation, &error);
                self.core.metrics.output_failures.inc();
                tracing::error!(message = "Kafka refused an output record; stopping without committing.", %error);
                Err(OutputError::Refused(error))
            }
            Err(_) => {
                self.core.metrics.output_failures.inc();
                tracing::error!(
                    message = "An output record was cancelled by the producer; stopping without committing."
                );
                Err(OutputError::Cancelled)
            }
        }
    }

    /// Queue a record for Kafka, waiting (and collecting acknowledgements) while the local
    /// queue is full: this is where a slow or absent Kafka slows consumption down.
    async fn enqueue(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: &str,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), OutputError> {
        let mut rec = FutureRecord::<str, [u8]>::to(topic).key(key);
        // An empty state record is a tombstone: no value at all, so compaction deletes it.
        if !(payload.is_empty() && topic == self.topics.state) {
            rec = rec.payload(payload);
        }
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        loop {
            match self.producer.queue(rec) {
                Ok((generation, fut)) => {
                    let seq = self.commits.issue();
                    self.pending.push(Tagged {
                        seq,
                        generation,
                        fut,
                    });
                    return Ok(());
                }
                Err(QueueError::Full(back)) => {
                    rec = back;
                    match tokio::time::timeout(Duration::from_millis(50), self.pending.next()).await
                    {
                        Ok(Some(r)) => self.delivered(r)?,
                        _ => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err(QueueError::Failed(error, _)) => {
                    self.core.metrics.output_failures.inc();
                    tracing::error!(message = "Output record could not be queued; stopping without committing.", %topic, %error);
                    return Err(OutputError::Queue {
                        topic: topic.to_string(),
                        error,
                    });
                }
            }
        }
    }

    async fn dead_letter(&mut self, d: DeadLetter) -> Result<(), OutputError> {
        let (p, o, now) = (
            d.partition.to_string(),
            d.offset.to_string(),
            wall_us().to_string(),
        );
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: sideline_wire::dlq::REASON,
                value: Some(d.reason),
            })
            .insert(Header {
                key: sideline_wire::dlq::DETAIL,
                value: Some(d.detail.as_str()),
            })
            .insert(Header {
                key: sideline_wire::dlq::SOURCE_PARTITION,
                value: Some(p.as_str()),
            })
            .insert(Header {
                key: sideline_wire::dlq::SOURCE_OFFSET,
                value: Some(o.as_str()),
            })
            .insert(Header {
                key: sideline_wire::dlq::RECEIVED_AT_US,
                value: Some(now.as_str()),
            });
        let dlq = self.topics.dlq.clone();
        self.enqueue(&dlq, None, &d.key, &d.payload, Some(headers))
            .await
    }

    /// Handle one record of the samples topic.
    pub async fn record(&mut self, m: &BorrowedMessage<'_>) -> Result<(), OutputError> {
        let (key, payload) = (m.key().unwrap_or_default(), m.payload().unwrap_or_default());
        self.core
            .record(m.partition(), m.offset(), key, payload, Instant::now());
        self.produce().await
    }

    /// Advance event time; produce what closed (see [`Core::tick`]).
    pub async fn tick(&mut self) -> Result<(), OutputError> {
        self.core.tick(Instant::now());
        self.produce().await
    }

    /// Queue what the core produced: dead letters, snapshots, alert events.
    async fn produce(&mut self) -> Result<(), OutputError> {
        let (out, dead) = self.core.take();
        for d in dead {
            self.dead_letter(d).await?;
        }
        if out.is_empty() {
            return Ok(());
        }
        let now = wall_us();
        let metrics_topic = self.topics.metrics.clone();
        for m in &out.metrics {
            self.core
                .metrics
                .latency
                .observe(((now - m.t) as f64 / 1e6).max(0.0));
            let bytes = convert::metrics(m).encode_to_vec();
            self.enqueue(&metrics_topic, None, &m.player, &bytes, None)
                .await?;
        }
        let alerts_topic = self.topics.alerts.clone();
        for a in &out.alerts {
            let bytes = convert::alert(a).encode_to_vec();
            self.enqueue(&alerts_topic, None, &a.player, &bytes, None)
                .await?;
        }
        self.core
            .metrics
            .pending_outputs
            .set(self.pending.len() as i64);
        Ok(())
    }

    /// Encode a snapshot of what changed; it is produced once every output before it is
    /// acknowledged ([`Self::release_staged`]), and the offsets it covers are committed once
    /// it too is acknowledged ([`Self::commit_ready`]). Nothing here waits.
    pub async fn checkpoint(
        &mut self,
        consumer: &StreamConsumer<ProcessorContext>,
    ) -> Result<(), OutputError> {
        self.stage();
        self.release_staged().await?;
        self.commit_ready(consumer);
        Ok(())
    }

    /// Snapshot what changed, wait for every output and snapshot, commit the offsets covered:
    /// before the process stops or rejoins its group.
    pub async fn checkpoint_sync(
        &mut self,
        consumer: &StreamConsumer<ProcessorContext>,
    ) -> Result<(), OutputError> {
        let taken = Instant::now();
        self.stage();
        // Every output, then the snapshots that waited for them, then those snapshots.
        while !self.staged.is_empty() || !self.pending.is_empty() {
            while let Some(r) = self.pending.next().await {
                self.delivered(r)?;
            }
            self.release_staged().await?;
        }
        self.core.metrics.pending_outputs.set(0);
        self.commits.clear();
        let offsets = self.core.offsets();
        self.commit(consumer, &offsets, CommitMode::Sync, taken);
        Ok(())
    }

    /// Take a checkpoint ([`Core::stage`]), to be produced after the outputs issued so far.
    fn stage(&mut self) {
        let taken = Instant::now();
        let c = self.core.stage();
        self.staged.push_back(Staged {
            after: self.commits.issued(),
            offsets: c.offsets,
            snaps: c.snaps,
            taken,
        });
        self.core
            .metrics
            .checkpoints_waiting
            .set((self.staged.len() + self.commits.waiting()) as i64);
    }

    /// Produce the snapshots of every staged checkpoint whose earlier outputs are all
    /// acknowledged, oldest first (each player's snapshots stay in order on his partition),
    /// and hand their offsets to [`Commits`], to be committed once the snapshots too are
    /// acknowledged.
    async fn release_staged(&mut self) -> Result<(), OutputError> {
        let state_topic = self.topics.state.clone();
        while self
            .staged
            .front()
            .is_some_and(|s| self.commits.acked_before(s.after))
        {
            let Some(s) = self.staged.pop_front() else {
                break;
            };
            for (p, player, bytes) in &s.snaps {
                self.enqueue(&state_topic, Some(*p), player, bytes, None)
                    .await?;
                self.core.metrics.snapshots.inc();
            }
            self.commits.take(s.offsets, s.taken);
        }
        Ok(())
    }

    /// Commit the newest checkpoint whose outputs are all acknowledged, if any (asynchronous:
    /// a failure is logged by the consumer's context, and the next checkpoint commits again).
    pub fn commit_ready(&mut self, consumer: &StreamConsumer<ProcessorContext>) {
        if let Some(c) = self.commits.ready() {
            self.commit(consumer, &c.offsets, CommitMode::Async, c.taken);
        }
        self.core
            .metrics
            .checkpoints_waiting
            .set((self.staged.len() + self.commits.waiting()) as i64);
    }

    fn commit(
        &self,
        consumer: &StreamConsumer<ProcessorContext>,
        offsets: &[(i32, i64)],
        mode: CommitMode,
        taken: Instant,
    ) {
        let mut tpl = TopicPartitionList::new();
        // Only partitions still ours (a waiting checkpoint may predate a rebalance).
        for &(p, next) in offsets.iter().filter(|(p, _)| self.core.holds(*p)) {
            if let Err(error) =
                tpl.add_partition_offset(&self.topics.samples, p, Offset::Offset(next))
            {
                tracing::error!(message = "Offset not added to the commit.", partition = p, %error);
            }
        }
        if tpl.count() > 0 {
            let r = match mode {
                CommitMode::Sync => {
                    tokio::task::block_in_place(|| consumer.commit(&tpl, CommitMode::Sync))
                }
                CommitMode::Async => consumer.commit(&tpl, CommitMode::Async),
            };
            // Counted in the consumer's commit callback, which hears of every failure.
            if let Err(error) = r {
                tracing::warn!(message = "Offset commit failed; the next checkpoint retries.", %error);
                return;
            }
        }
        self.core.metrics.checkpoints.inc();
        self.core
            .metrics
            .checkpoint_seconds
            .observe(taken.elapsed().as_secs_f64());
    }

    /// The consumer reached the end of partition `p` (see [`Core::at_end`]).
    pub fn at_end(&mut self, p: i32) {
        self.core.at_end(p, Instant::now());
    }

    /// Staged checkpoints no longer speak for `parts` (taken away or assigned anew): the new
    /// owner restores from what was committed and produced.
    fn forget_staged(&mut self, parts: &[i32]) {
        for s in &mut self.staged {
            s.offsets.retain(|(p, _)| !parts.contains(p));
            s.snaps.retain(|(p, _, _)| !parts.contains(p));
        }
    }

    /// Apply a rebalance: checkpoints waiting no longer speak for the partitions that moved
    /// (the new owner restores from what was committed and produced); the core restores or
    /// drops their players.
    pub fn rebalance(&mut self, ev: RebalanceEvent) {
        let moved: Vec<i32> = match &ev {
            RebalanceEvent::Assigned(parts) => parts.iter().map(|(p, _)| *p).collect(),
            RebalanceEvent::Revoked(parts) => parts.clone(),
            RebalanceEvent::RestoreFailed(_) => Vec::new(),
        };
        self.commits.forget(&moved);
        self.forget_staged(&moved);
        self.core.rebalance(ev, Instant::now());
    }
}
