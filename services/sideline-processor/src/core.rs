//! The processor's sans-I/O core, shared by `sideline process` (records from Kafka) and
//! `sideline demo` (records from the in-process bus): decode, validate, route to the player's
//! engine, the event-time and silence policy, and the outputs as values — snapshots and the
//! alert events raised on them ([`Outputs`]), dead letters ([`DeadLetter`]), and state
//! snapshots at a checkpoint. No Kafka, no async, no clock: every step is given its `now`.
//!
//! - a record: decode (else dead letter `undecodable`), skip it if a restored snapshot covers
//!   it, validate (else `invalid`), hand it to the player's engine (which removes duplicate
//!   deliveries and reorders by event time); samples too late become a `late` dead letter,
//!   refuted time jumps a `time_jump` one;
//! - a tick: advance each partition's stream time (the newest event time seen, or the wall
//!   clock × [`Timing::pace`] once the partition is read to its end and silent for
//!   [`Timing::idle_advance`]); close each silent player's seconds by his own silence
//!   ([`crate::flow`]); close the session of a player silent for [`Timing::session_idle`],
//!   forget one silent for [`Timing::forget_after`];
//! - a checkpoint ([`Core::stage`]): the encoded engine of every player that changed, with the
//!   partition offsets it covers (the Kafka shell decides when to produce and commit them).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use prost::Message as _;
use sideline_engine::{Engine, Micros, Outputs};
use sideline_wire::convert;
use sideline_wire::pb;
use sideline_wire::validate::{Limits, validate};

use crate::context::RebalanceEvent;
use crate::flow::FlowClock;
use crate::metrics::ProcessorMetrics;
use crate::state::encode;

/// A gap between two ticks (every 200 ms by default) longer than this means the process itself
/// stood still — stopped (SIGSTOP), a paused virtual machine, a long blocking call.
pub const SELF_STALL: Duration = Duration::from_secs(1);

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
    /// Seconds of event time per second of wall time: 1 live; the simulator's speed-up in
    /// the demo (a silent player's seconds, an idle stream and the silence limits above all
    /// follow the recording's clock, not the wall's).
    pub pace: f64,
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
        if !(self.pace.is_finite() && self.pace >= 1.0) {
            self.pace = 1.0;
        }
        self
    }

    /// Wall time as event time.
    fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.pace)
    }
}

/// A record (or part of one) that goes to the dead-letter topic, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Record key (the player, or the input's key when it did not decode).
    pub key: String,
    /// The refused bytes (the whole input, or a batch of the refused samples).
    pub payload: Vec<u8>,
    /// Bounded reason: `undecodable`, `invalid`, `late`, `time_jump`.
    pub reason: &'static str,
    /// What exactly, for a person.
    pub detail: String,
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
}

/// Per-partition bookkeeping.
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) stream_time: Micros,
    /// Time while the partition flowed, and when its latest record was read.
    pub(crate) flow: FlowClock,
    pub(crate) last_advance: Instant,
    next_offset: Option<i64>,
    dirty: HashSet<String>,
}

impl Part {
    fn new(now: Instant, idle_after: Duration) -> Self {
        Part {
            stream_time: Micros::MIN,
            flow: FlowClock::new(now, idle_after),
            last_advance: now,
            next_offset: None,
            dirty: HashSet::new(),
        }
    }
}

/// A checkpoint's content: what it covers and the snapshots that say so.
#[derive(Debug, Default)]
pub struct Checkpoint {
    /// (partition, next offset) it covers.
    pub offsets: Vec<(i32, i64)>,
    /// (partition, player, encoded snapshot; empty = tombstone for a forgotten player).
    pub snaps: Vec<(i32, String, Vec<u8>)>,
}

/// The state of the players of the partitions held, and what they produced since the last
/// [`Core::take`].
pub struct Core {
    /// The engines of every player of the partitions held.
    pub engine: Engine,
    pub(crate) parts: HashMap<i32, Part>,
    player_part: HashMap<String, i32>,
    /// Each player's partition flow time when his latest batch was read (see [`Core::tick`]).
    last_batch: HashMap<String, Duration>,
    skip_until: HashMap<String, i64>,
    /// Every metric of the service.
    pub metrics: ProcessorMetrics,
    pub(crate) player_gauges: bool,
    pub(crate) timing: Timing,
    /// Players whose session closed (silent `session_idle`): no series until they return.
    closed: HashSet<String>,
    /// When [`Core::tick`] last ran.
    last_tick: Option<Instant>,
    out: Outputs,
    dead: Vec<DeadLetter>,
    limits: Limits,
}

impl Core {
    /// A core with no partitions yet.
    pub fn new(
        engine: Engine,
        metrics: ProcessorMetrics,
        player_gauges: bool,
        timing: Timing,
    ) -> Self {
        let timing = timing.effective(engine.params());
        Core {
            engine,
            parts: HashMap::new(),
            player_part: HashMap::new(),
            last_batch: HashMap::new(),
            skip_until: HashMap::new(),
            metrics,
            player_gauges,
            timing,
            closed: HashSet::new(),
            last_tick: None,
            out: Outputs::default(),
            dead: Vec::new(),
            // Ingest validated against the clock; here only structure and ranges matter.
            limits: Limits {
                max_past_s: None,
                max_future_s: 1e12,
                ..Limits::default()
            },
        }
    }

    /// What was produced since the last call: snapshots and alert events (in order), and
    /// dead letters.
    pub fn take(&mut self) -> (Outputs, Vec<DeadLetter>) {
        (
            std::mem::take(&mut self.out),
            std::mem::take(&mut self.dead),
        )
    }

    fn part(&mut self, p: i32, now: Instant) -> &mut Part {
        let idle = self.timing.idle_advance;
        self.parts.entry(p).or_insert_with(|| Part::new(now, idle))
    }

    fn dead_letter(
        &mut self,
        key: &str,
        payload: Vec<u8>,
        reason: &'static str,
        detail: String,
        (partition, offset): (i32, i64),
    ) {
        self.metrics.dlq.with_label_values(&[reason]).inc();
        self.dead.push(DeadLetter {
            key: key.to_string(),
            payload,
            reason,
            detail,
            partition,
            offset,
        });
    }

    /// Record `off` of partition `p` (`key`, `payload`: a `SampleBatch`), read at `now`.
    pub fn record(&mut self, p: i32, off: i64, key: &[u8], payload: &[u8], now: Instant) {
        self.metrics.records.inc();
        let part = self.part(p, now);
        part.next_offset = Some(off + 1);
        part.flow.record(now);
        let key = String::from_utf8_lossy(key).into_owned();
        let mut b = match pb::SampleBatch::decode(payload) {
            Ok(b) => b,
            Err(e) => {
                let detail = e.to_string();
                return self.dead_letter(&key, payload.to_vec(), "undecodable", detail, (p, off));
            }
        };
        // A record ingest coalesced holds several of the player's batches, in arrival order.
        let parts = std::mem::take(&mut b.coalesced);
        if parts.is_empty() {
            return self.batch(p, off, &key, b, Some(payload), now);
        }
        self.metrics.coalesced_batches.inc_by(parts.len() as u64);
        for inner in parts {
            self.batch(p, off, &key, inner, None, now);
        }
        if !b.samples.is_empty() {
            self.batch(p, off, &key, b, None, now);
        }
    }

    /// One batch of record (`p`, `off`) keyed `key`; `raw` is its encoding when it was the
    /// whole record (dead-lettered as received), else it is encoded again for the dead letter.
    fn batch(
        &mut self,
        p: i32,
        off: i64,
        key: &str,
        b: pb::SampleBatch,
        raw: Option<&[u8]>,
        now: Instant,
    ) {
        let flowed = self.part(p, now).flow.flowed();
        let key = key.to_string();
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
                return;
            }
            self.skip_until.remove(&player);
        }
        let batch = match validate(&b, &self.limits, None) {
            Ok(x) => x,
            Err(e) => {
                let detail = e.to_string();
                let bytes = raw.map_or_else(|| b.encode_to_vec(), <[u8]>::to_vec);
                return self.dead_letter(&key, bytes, "invalid", detail, (p, off));
            }
        };
        if !batch.samples.is_empty() {
            let part = self.part(p, now);
            part.dirty.insert(player.clone());
            let flowed = part.flow.flowed();
            self.last_batch.insert(player.clone(), flowed);
            self.closed.remove(&player);
        }
        self.player_part.insert(player.clone(), p);
        let from = (self.out.metrics.len(), self.out.alerts.len());
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
            let part = self.part(p, now);
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
            self.dead_letter(&player, late.encode_to_vec(), "late", detail, (p, off));
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
                jumped.encode_to_vec(),
                "time_jump",
                detail,
                (p, off),
            );
        }
        self.emitted(from);
    }

    /// The consumer reached the end of partition `p` at `now`: from the idle time on (until a
    /// record arrives) silence means the players are quiet, not that we are behind.
    pub fn at_end(&mut self, p: i32, now: Instant) {
        self.part(p, now).flow.end(now);
    }

    /// Advance event time at `now`; what closed is produced.
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
    pub fn tick(&mut self, now: Instant) {
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
        let timing = self.timing;
        for (p, part) in &mut self.parts {
            let idle = part.flow.idle(now);
            if !stalled && part.stream_time != Micros::MIN && idle {
                let step = timing.scaled(now.saturating_duration_since(part.last_advance));
                part.stream_time += step.as_micros() as i64;
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
        let from = (self.out.metrics.len(), self.out.alerts.len());
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
                let silent = timing.scaled(part.flow.silence(*last, now)).as_micros() as Micros;
                Some(own.saturating_add(silent).min(part.stream_time))
            },
            &mut self.out,
        );
        let (close, forget) = self.silent_players(now);
        for player in &close {
            self.engine.finish_player(player, &mut self.out);
        }
        self.emitted(from);
        for player in close {
            self.metrics.player.remove_player(&player);
            self.metrics.sessions_closed.inc();
            tracing::info!(message = "Session closed for a silent player; his series are removed.", player = %player);
            self.closed.insert(player);
        }
        self.forget(&forget);
    }

    /// Players silent (wall time while their partition flowed, see [`crate::flow`], × pace)
    /// past `session_idle` whose session is still open, and players silent past
    /// `forget_after`.
    fn silent_players(&self, now: Instant) -> (Vec<String>, Vec<String>) {
        let (mut close, mut forget) = (Vec::new(), Vec::new());
        for (player, last) in &self.last_batch {
            let Some(part) = self.player_part.get(player).and_then(|p| self.parts.get(p)) else {
                continue;
            };
            let silent = self.timing.scaled(part.flow.silence(*last, now));
            if silent >= self.timing.forget_after {
                forget.push(player.clone());
            } else if silent >= self.timing.session_idle && !self.closed.contains(player) {
                close.push(player.clone());
            }
        }
        (close, forget)
    }

    /// Drop the engines of `players` and delete their state (a tombstone at the next
    /// checkpoint).
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

    /// Bookkeeping for the snapshots from `from` and the alerts from `alerts_from` on, just
    /// produced: gauges, counters, players to snapshot at the next checkpoint.
    fn emitted(&mut self, (from, alerts_from): (usize, usize)) {
        let Outputs { metrics, alerts } = &self.out;
        for m in metrics.get(from..).unwrap_or_default() {
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
            self.metrics.metrics_out.inc();
        }
        for a in alerts.get(alerts_from..).unwrap_or_default() {
            self.metrics
                .alerts_out
                .with_label_values(&[a.kind.as_str()])
                .inc();
            tracing::info!(message = "Alert.", id = %a.id, kind = a.kind.as_str(), state = ?a.state, severity = ?a.severity, player = %a.player);
        }
        self.metrics
            .players
            .set(self.engine.players().count() as i64);
    }

    /// A checkpoint: the encoded engine of every player that changed since the last one (a
    /// tombstone for one forgotten), and the partition offsets they cover.
    pub fn stage(&mut self) -> Checkpoint {
        let mut snaps = Vec::new();
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
                    None => snaps.push((p, player, Vec::new())),
                }
            }
        }
        Checkpoint {
            offsets: self.offsets(),
            snaps,
        }
    }

    /// (partition, next offset) of every partition read from.
    pub fn offsets(&self) -> Vec<(i32, i64)> {
        self.parts
            .iter()
            .filter_map(|(&p, part)| Some((p, part.next_offset?)))
            .collect()
    }

    /// Whether partition `p` is held.
    pub fn holds(&self, p: i32) -> bool {
        self.parts.contains_key(&p)
    }

    /// Give up every partition held (the run ends): their players and series go, as at a
    /// revocation.
    pub fn release_all(&mut self) {
        let held: Vec<i32> = self.parts.keys().copied().collect();
        self.rebalance(RebalanceEvent::Revoked(held), Instant::now());
    }

    /// Apply a rebalance at `now`: restore the assigned partitions' players from their
    /// snapshots; drop the players of revoked ones (the new owner snapshots them).
    pub fn rebalance(&mut self, ev: RebalanceEvent, now: Instant) {
        match ev {
            RebalanceEvent::Assigned(parts) => {
                for (p, state) in parts {
                    let mut part = Part::new(now, self.timing.idle_advance);
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
#[path = "core_tests.rs"]
mod tests;
