//! The processor's state and steps; `lib.rs` drives them from one `select!` loop.
//!
//! - a record: decode, skip it if a restored snapshot covers it, hand it to the player's engine
//!   (which removes duplicate deliveries and reorders by event time), dead-letter late samples,
//!   produce the snapshots and alert events that came out;
//! - a tick: advance each partition's stream time (the newest event time seen, or the wall
//!   clock once the consumer is at the end of the partition and it has been silent for
//!   `idle_advance_s`), close seconds, produce;
//! - a checkpoint: encode a snapshot of every player that changed; once Kafka has acknowledged
//!   every output produced before it, produce those snapshots (a snapshot never covers an
//!   output Kafka does not have: a restore skips the records it covers, so such an output
//!   would be lost for good); once the snapshots too are acknowledged, commit the offsets they
//!   cover (the loop goes on meanwhile: [`crate::commits`]). On shutdown and before a rejoin,
//!   the same synchronously.
//! - an output Kafka refuses, or that cannot be queued, stops the loop with
//!   [`OutputError`]: nothing after it is committed, so a restart produces it again. Outputs are
//!   never skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prost::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sideline_engine::{AlertEvent, Engine, Micros, PlayerMetrics};
use sideline_wire::convert;
use sideline_wire::pb;
use sideline_wire::validate::{Limits, validate};

use crate::commits::Commits;
use crate::context::{ProcessorContext, RebalanceEvent};
use crate::flow::FlowClock;
use crate::metrics::ProcessorMetrics;
use crate::state::encode;

/// Per-partition bookkeeping.
#[derive(Debug)]
struct Part {
    stream_time: Micros,
    /// Time while the partition flowed, and when its latest record was read.
    flow: FlowClock,
    last_advance: Instant,
    next_offset: Option<i64>,
    dirty: HashSet<String>,
}

impl Part {
    fn new(idle_after: Duration) -> Self {
        let now = Instant::now();
        Part {
            stream_time: Micros::MIN,
            flow: FlowClock::new(now, idle_after),
            last_advance: now,
            next_offset: None,
            dirty: HashSet::new(),
        }
    }
}

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

/// An output's acknowledgement with the output's sequence number (see [`Commits`]).
struct Tagged {
    seq: u64,
    fut: DeliveryFuture,
}

impl Future for Tagged {
    type Output = (u64, Delivery);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.fut).poll(cx).map(|r| (this.seq, r))
    }
}

/// A gap between two ticks (every 200 ms by default) longer than this means the process itself
/// stood still — stopped (SIGSTOP), a paused virtual machine, a long blocking call.
pub const SELF_STALL: Duration = Duration::from_secs(1);

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

/// How event time and a player's lifetime follow the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A partition read to its end and silent this long advances with the wall clock.
    pub idle_advance: Duration,
    /// A player silent this long has his session closed: his open second and efforts end,
    /// his series are removed (they come back with his next sample, his totals kept). Never
    /// less than the engine's own reporting horizon ([`Timing::effective`]).
    pub session_idle: Duration,
    /// A player silent this long is forgotten: his engine is dropped and his state deleted
    /// from the state topic (a return starts a new engine).
    pub forget_after: Duration,
}

impl Timing {
    /// `session_idle` raised to the time the engine keeps reporting a silent player (his
    /// snapshots say "no signal" for a while; closing before that would bring his series
    /// straight back).
    pub fn effective(mut self, p: &sideline_engine::Params) -> Self {
        let s = &p.stream;
        let horizon = s.idle_timeout_s + s.report_idle_for_s + s.allowed_lateness_s + 2.0;
        let horizon = Duration::from_secs_f64(horizon.clamp(0.0, 86_400.0));
        self.session_idle = self.session_idle.max(horizon);
        self.forget_after = self.forget_after.max(self.session_idle);
        self
    }
}

/// Everything the loop owns.
pub struct Processor {
    /// The engines of every player of the assigned partitions.
    pub engine: Engine,
    parts: HashMap<i32, Part>,
    player_part: HashMap<String, i32>,
    /// Each player's partition flow time when his latest batch was read (see
    /// [`Processor::tick`]).
    last_batch: HashMap<String, Duration>,
    skip_until: HashMap<String, i64>,
    producer: FutureProducer,
    pending: FuturesUnordered<Tagged>,
    commits: Commits,
    /// Checkpoints whose snapshots wait for the outputs before them, oldest first.
    staged: VecDeque<Staged>,
    topics: Topics,
    /// Every metric of the service.
    pub metrics: ProcessorMetrics,
    player_gauges: bool,
    timing: Timing,
    /// Players whose session closed (silent `session_idle`): no series until they return.
    closed: HashSet<String>,
    /// When [`Processor::tick`] last ran.
    last_tick: Option<Instant>,
    out: Vec<PlayerMetrics>,
    alerts: Vec<AlertEvent>,
    limits: Limits,
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Processor {
    /// A processor with no partitions yet.
    pub fn new(
        engine: Engine,
        producer: FutureProducer,
        topics: Topics,
        metrics: ProcessorMetrics,
        player_gauges: bool,
        timing: Timing,
    ) -> Self {
        let timing = timing.effective(engine.params());
        Processor {
            engine,
            parts: HashMap::new(),
            player_part: HashMap::new(),
            last_batch: HashMap::new(),
            skip_until: HashMap::new(),
            producer,
            pending: FuturesUnordered::new(),
            commits: Commits::default(),
            staged: VecDeque::new(),
            topics,
            metrics,
            player_gauges,
            timing,
            closed: HashSet::new(),
            last_tick: None,
            out: Vec::new(),
            alerts: Vec::new(),
            // Ingest validated against the clock; here only structure and ranges matter.
            limits: Limits {
                max_past_s: None,
                max_future_s: 1e12,
                ..Limits::default()
            },
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
        self.metrics.pending_outputs.set(self.pending.len() as i64);
        Ok(())
    }

    /// Output `seq` delivered, or an error: an output Kafka did not take is never counted as
    /// acknowledged (a checkpoint after it would cover it).
    fn delivered(&mut self, (seq, r): (u64, Delivery)) -> Result<(), OutputError> {
        match r {
            Ok(Ok(_)) => {
                self.commits.acked(seq);
                Ok(())
            }
            Ok(Err((error, _))) => {
                self.metrics.output_failures.inc();
                tracing::error!(message = "Kafka refused an output record; stopping without committing.", %error);
                Err(OutputError::Refused(error))
            }
            Err(_) => {
                self.metrics.output_failures.inc();
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
            match self.producer.send_result(rec) {
                Ok(fut) => {
                    let seq = self.commits.issue();
                    self.pending.push(Tagged { seq, fut });
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    match tokio::time::timeout(Duration::from_millis(50), self.pending.next()).await
                    {
                        Ok(Some(r)) => self.delivered(r)?,
                        _ => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((error, _)) => {
                    self.metrics.output_failures.inc();
                    tracing::error!(message = "Output record could not be queued; stopping without committing.", %topic, %error);
                    return Err(OutputError::Queue {
                        topic: topic.to_string(),
                        error,
                    });
                }
            }
        }
    }

    async fn dead_letter(
        &mut self,
        key: &str,
        payload: &[u8],
        reason: &'static str,
        detail: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), OutputError> {
        self.metrics.dlq.with_label_values(&[reason]).inc();
        let (p, o, now) = (
            partition.to_string(),
            offset.to_string(),
            wall_us().to_string(),
        );
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: sideline_wire::dlq::REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: sideline_wire::dlq::DETAIL,
                value: Some(detail),
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
        self.enqueue(&dlq, None, key, payload, Some(headers)).await
    }

    /// Handle one record of the samples topic.
    pub async fn record(&mut self, m: &BorrowedMessage<'_>) -> Result<(), OutputError> {
        let (key, payload) = (m.key().unwrap_or_default(), m.payload().unwrap_or_default());
        self.record_at(m.partition(), m.offset(), key, payload, Instant::now())
            .await
    }

    /// [`Self::record`] of record `off` of partition `p`, read at `now`.
    async fn record_at(
        &mut self,
        p: i32,
        off: i64,
        key: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> Result<(), OutputError> {
        self.metrics.records.inc();
        let idle = self.timing.idle_advance;
        let part = self.parts.entry(p).or_insert_with(|| Part::new(idle));
        part.next_offset = Some(off + 1);
        part.flow.record(now);
        let flowed = part.flow.flowed();
        let key = String::from_utf8_lossy(key).into_owned();
        let b = match pb::SampleBatch::decode(payload) {
            Ok(b) => b,
            Err(e) => {
                return self
                    .dead_letter(&key, payload, "undecodable", &e.to_string(), p, off)
                    .await;
            }
        };
        let player = if b.player_id.is_empty() {
            key.clone()
        } else {
            b.player_id.clone()
        };
        if let Some(&covers) = self.skip_until.get(&player) {
            if off < covers {
                // His batch, already in his restored state: he is not silent.
                self.last_batch.insert(player, flowed);
                self.metrics.replay_skipped.inc();
                return Ok(());
            }
            self.skip_until.remove(&player);
        }
        let batch = match validate(&b, &self.limits, None) {
            Ok(x) => x,
            Err(e) => {
                return self
                    .dead_letter(&key, payload, "invalid", &e.to_string(), p, off)
                    .await;
            }
        };
        if !batch.samples.is_empty() {
            let part = self.parts.entry(p).or_insert_with(|| Part::new(idle));
            part.dirty.insert(player.clone());
            self.last_batch.insert(player.clone(), part.flow.flowed());
            self.closed.remove(&player);
        }
        self.player_part.insert(player.clone(), p);
        let outcome = self.engine.ingest_routed(
            &player,
            &b.team_id,
            &b.device_session_id,
            &batch,
            &mut self.out,
        );
        // The partition's time moves with what the engine accepted: a sample held as a time
        // jump does not move it (it would close partition-mates' seconds early).
        if let Some(newest) = self.engine.player(&player).and_then(|pe| pe.newest()) {
            let part = self.parts.entry(p).or_insert_with(|| Part::new(idle));
            part.stream_time = part.stream_time.max(newest);
        }
        if outcome.duplicate_batch {
            self.metrics.duplicate_batches.inc();
        }
        self.metrics.samples.inc_by(u64::from(outcome.accepted));
        if !outcome.late.is_empty() {
            self.metrics.late_samples.inc_by(outcome.late.len() as u64);
            let late = pb::SampleBatch {
                samples: outcome
                    .late
                    .iter()
                    .filter_map(|&i| b.samples.get(i).cloned())
                    .collect(),
                ..b.clone()
            };
            let detail = format!(
                "{} sample(s) older than the allowed lateness behind {player}'s newest",
                outcome.late.len()
            );
            self.dead_letter(&player, &late.encode_to_vec(), "late", &detail, p, off)
                .await?;
        }
        if !outcome.time_jumps.is_empty() {
            let n = outcome.time_jumps.len();
            self.metrics.time_jump_samples.inc_by(n as u64);
            let jumped = convert::batch(&sideline_engine::Batch {
                samples: outcome.time_jumps,
                ..batch.clone()
            });
            let detail = format!(
                "{n} sample(s) far ahead of {player}'s clock that the batches after them did not confirm"
            );
            tracing::warn!(message = "Samples refused as a time jump.", player = %player, samples = n);
            self.dead_letter(
                &player,
                &jumped.encode_to_vec(),
                "time_jump",
                &detail,
                p,
                off,
            )
            .await?;
        }
        self.emit().await
    }

    /// Advance event time; emit what closed.
    ///
    /// The engine closes a streaming player's seconds on his own newest sample; the tick is
    /// for a player who falls silent. His event time moves on from his newest sample by the
    /// wall time since his last batch was read — measured up to the partition's latest record
    /// while the partition flows, with a stall upstream not counted (see [`crate::flow`]), up
    /// to now once the partition advances as idle — and never past the partition's stream
    /// time. So a pod whose clock is 30 s off, ahead or behind, neither loses its own samples
    /// nor has anyone else's seconds closed early, and a silent pod is still closed at the
    /// pace of the wall clock.
    ///
    /// A tick that finds this process itself stood still since the previous one
    /// ([`SELF_STALL`]) does not advance idle partitions over that gap: whatever arrived
    /// meanwhile is still in the consumer's queue, unread, and the partition only looks idle
    /// (seen in CI: a processor frozen 15 s, as long as the idle time, closed a player's open
    /// second on its first tick after SIGCONT, without the samples waiting for it).
    pub async fn tick(&mut self) -> Result<(), OutputError> {
        self.tick_at(Instant::now()).await
    }

    async fn tick_at(&mut self, now: Instant) -> Result<(), OutputError> {
        let gap = self
            .last_tick
            .map(|prev| now.saturating_duration_since(prev));
        self.last_tick = Some(now);
        let stalled = gap.is_some_and(|g| g > SELF_STALL);
        if stalled {
            self.metrics.self_stalls.inc();
            tracing::warn!(
                message =
                    "The processor stood still; idle partitions do not advance over that time.",
                gap_s = gap.map_or(0.0, |g| g.as_secs_f64())
            );
        }
        for (p, part) in &mut self.parts {
            let idle = part.flow.idle(now);
            if !stalled && part.stream_time != Micros::MIN && idle {
                part.stream_time +=
                    now.saturating_duration_since(part.last_advance).as_micros() as i64;
            }
            part.last_advance = now;
            let label = [p.to_string()];
            self.metrics
                .idle
                .with_label_values(&label)
                .set(i64::from(idle));
            if part.stream_time != Micros::MIN {
                self.metrics
                    .event_time
                    .with_label_values(&label)
                    .set(part.stream_time as f64 / 1e6);
            }
        }
        let (parts, player_part, last_batch) = (&self.parts, &self.player_part, &self.last_batch);
        self.engine.tick_each(
            |pe| {
                let part = player_part.get(pe.player()).and_then(|p| parts.get(p))?;
                if part.stream_time == Micros::MIN {
                    return None;
                }
                let (Some(own), Some(last)) = (pe.newest(), last_batch.get(pe.player())) else {
                    return Some(part.stream_time);
                };
                let silent = part.flow.silence(*last, now).as_micros() as Micros;
                Some(own.saturating_add(silent).min(part.stream_time))
            },
            &mut self.out,
        );
        let (close, forget) = self.silent_players(now);
        for player in &close {
            self.engine.finish_player(player, &mut self.out);
        }
        self.emit().await?;
        for player in close {
            self.metrics.player.remove_player(&player);
            self.metrics.sessions_closed.inc();
            tracing::info!(message = "Session closed for a silent player; his series are removed.", player = %player);
            self.closed.insert(player);
        }
        self.forget(&forget);
        Ok(())
    }

    /// Players silent (wall time while their partition flowed, see [`crate::flow`]) past
    /// `session_idle` whose session is still open, and players silent past `forget_after`.
    fn silent_players(&self, now: Instant) -> (Vec<String>, Vec<String>) {
        let (mut close, mut forget) = (Vec::new(), Vec::new());
        for (player, last) in &self.last_batch {
            let Some(part) = self.player_part.get(player).and_then(|p| self.parts.get(p)) else {
                continue;
            };
            let silent = part.flow.silence(*last, now);
            if silent >= self.timing.forget_after {
                forget.push(player.clone());
            } else if silent >= self.timing.session_idle && !self.closed.contains(player) {
                close.push(player.clone());
            }
        }
        (close, forget)
    }

    /// Drop the engines of `players` and delete their state (a tombstone at the next
    /// checkpoint, produced after every output before it like any snapshot).
    fn forget(&mut self, players: &[String]) {
        if players.is_empty() {
            return;
        }
        let gone: HashSet<&str> = players.iter().map(String::as_str).collect();
        self.engine.remove_players(|pe| gone.contains(pe.player()));
        for player in players {
            if let Some(part) = self
                .player_part
                .get(player)
                .and_then(|p| self.parts.get_mut(p))
            {
                part.dirty.insert(player.clone());
            }
            self.player_part.remove(player);
            self.last_batch.remove(player);
            self.skip_until.remove(player);
            self.closed.remove(player);
            self.metrics.player.remove_player(player);
            self.metrics.players_forgotten.inc();
            tracing::info!(message = "Silent player forgotten; his state is deleted.", player = %player);
        }
        self.metrics
            .players
            .set(self.engine.players().count() as i64);
    }

    async fn emit(&mut self) -> Result<(), OutputError> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.engine.observe_alerts(&self.out, &mut self.alerts);
        let now = wall_us();
        let out = std::mem::take(&mut self.out);
        let metrics_topic = self.topics.metrics.clone();
        for m in &out {
            self.metrics
                .latency
                .observe(((now - m.t) as f64 / 1e6).max(0.0));
            if self.player_gauges {
                self.metrics.player.set(m, self.engine.baseline(&m.player));
            }
            if let Some(part) = self
                .player_part
                .get(&*m.player)
                .and_then(|p| self.parts.get_mut(p))
            {
                part.dirty.insert(m.player.to_string());
            }
            let bytes = convert::metrics(m).encode_to_vec();
            self.enqueue(&metrics_topic, None, &m.player, &bytes, None)
                .await?;
            self.metrics.metrics_out.inc();
        }
        self.out = out;
        self.out.clear();
        let alerts = std::mem::take(&mut self.alerts);
        let alerts_topic = self.topics.alerts.clone();
        for a in &alerts {
            self.metrics
                .alerts_out
                .with_label_values(&[a.kind.as_str()])
                .inc();
            tracing::info!(message = "Alert.", id = %a.id, kind = a.kind.as_str(), state = ?a.state, severity = ?a.severity, player = %a.player);
            let bytes = convert::alert(a).encode_to_vec();
            self.enqueue(&alerts_topic, None, &a.player, &bytes, None)
                .await?;
        }
        self.alerts = alerts;
        self.alerts.clear();
        self.metrics
            .players
            .set(self.engine.players().count() as i64);
        self.metrics.pending_outputs.set(self.pending.len() as i64);
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
        self.metrics.pending_outputs.set(0);
        self.commits.clear();
        let offsets = self.offsets();
        self.commit(consumer, &offsets, CommitMode::Sync, taken);
        Ok(())
    }

    /// Take a checkpoint: encode a snapshot of every player that changed (covering his
    /// partition's next offset now), to be produced after the outputs issued so far.
    fn stage(&mut self) {
        let taken = Instant::now();
        let mut snaps: Vec<(i32, String, Vec<u8>)> = Vec::new();
        for (&p, part) in &mut self.parts {
            let Some(next) = part.next_offset else {
                continue;
            };
            for player in part.dirty.drain() {
                match self.engine.player(&player) {
                    Some(pe) => match encode(next, pe) {
                        Ok(bytes) => snaps.push((p, player, bytes)),
                        Err(error) => {
                            tracing::error!(message = "Snapshot could not be encoded.", %player, %error)
                        }
                    },
                    // Forgotten: a tombstone deletes his state.
                    None => snaps.push((p, player, Vec::new())),
                }
            }
        }
        self.staged.push_back(Staged {
            after: self.commits.issued(),
            offsets: self.offsets(),
            snaps,
            taken,
        });
        self.metrics
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
                self.metrics.snapshots.inc();
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
        self.metrics
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
        for &(p, next) in offsets.iter().filter(|(p, _)| self.parts.contains_key(p)) {
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
        self.metrics.checkpoints.inc();
        self.metrics
            .checkpoint_seconds
            .observe(taken.elapsed().as_secs_f64());
    }

    /// (partition, next offset) of every partition read from.
    fn offsets(&self) -> Vec<(i32, i64)> {
        self.parts
            .iter()
            .filter_map(|(&p, part)| Some((p, part.next_offset?)))
            .collect()
    }

    /// The consumer reached the end of partition `p`: from the idle time on (until a record
    /// arrives) silence means the players are quiet, not that we are behind.
    pub fn at_end(&mut self, p: i32) {
        self.at_end_at(p, Instant::now());
    }

    fn at_end_at(&mut self, p: i32, now: Instant) {
        let idle = self.timing.idle_advance;
        let part = self.parts.entry(p).or_insert_with(|| Part::new(idle));
        part.flow.end(now);
    }

    /// Staged checkpoints no longer speak for `parts` (taken away or assigned anew): the new
    /// owner restores from what was committed and produced.
    fn forget_staged(&mut self, parts: &[i32]) {
        for s in &mut self.staged {
            s.offsets.retain(|(p, _)| !parts.contains(p));
            s.snaps.retain(|(p, _, _)| !parts.contains(p));
        }
    }

    /// Apply a rebalance.
    pub fn rebalance(&mut self, ev: RebalanceEvent) {
        match ev {
            RebalanceEvent::Assigned(parts) => {
                let ids: Vec<i32> = parts.iter().map(|(p, _)| *p).collect();
                self.commits.forget(&ids);
                self.forget_staged(&ids);
                for (p, state) in parts {
                    let mut part = Part::new(self.timing.idle_advance);
                    self.metrics.restore_rejected.inc_by(state.unusable);
                    for (player, rec) in state.players {
                        let covers = rec.covers;
                        let newest = rec.engine.newest();
                        match self.engine.restore(rec.engine) {
                            Ok(()) => {
                                self.metrics.restores.inc();
                                // Read just now, as far as his silence goes: his seconds
                                // close on his own newest sample, never on a partition-mate's
                                // (whose snapshot may come from a later checkpoint).
                                self.last_batch.insert(player.clone(), part.flow.flowed());
                                self.skip_until.insert(player.clone(), covers);
                                self.player_part.insert(player, p);
                                if let Some(n) = newest {
                                    part.stream_time = part.stream_time.max(n);
                                }
                            }
                            Err(why) => {
                                self.metrics.restore_rejected.inc();
                                tracing::warn!(message = "Snapshot not restored; the player starts from the committed offset.", %player, %why);
                            }
                        }
                    }
                    self.parts.insert(p, part);
                }
                self.metrics.partitions.set(self.parts.len() as i64);
            }
            RebalanceEvent::Revoked(parts) => {
                self.commits.forget(&parts);
                self.forget_staged(&parts);
                let gone: HashSet<String> = self
                    .player_part
                    .iter()
                    .filter(|(_, p)| parts.contains(p))
                    .map(|(k, _)| k.clone())
                    .collect();
                for player in &gone {
                    self.metrics.player.remove_player(player);
                }
                self.engine.remove_players(|pe| gone.contains(pe.player()));
                self.player_part.retain(|k, _| !gone.contains(k));
                self.closed.retain(|k| !gone.contains(k));
                self.last_batch.retain(|k, _| !gone.contains(k));
                self.skip_until.retain(|k, _| !gone.contains(k));
                for p in &parts {
                    self.parts.remove(p);
                    self.metrics.forget_partition(*p);
                }
                self.metrics.partitions.set(self.parts.len() as i64);
            }
            RebalanceEvent::RestoreFailed(_) => self.metrics.restore_failed.inc(),
        }
    }
}

#[cfg(test)]
#[path = "processor_tests.rs"]
mod tests;
