//! The engine for a whole squad: routes each device's batches to its player, removes duplicate
//! deliveries by (device, sequence number), and drives every player's engine.
//!
//! This is what every mode runs (live processor, demo, replay, `sideline analyze`,
//! reprocessing): feed [`Engine::ingest_batch`] (or [`Engine::ingest`] for samples already
//! attributed to a player) and call [`Engine::tick`] with the current event time.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alerts::AlertEvent;
use crate::dedup::SeqVerdict;
use crate::output::{Outputs, PlayerMetrics};
use crate::params::Params;
use crate::player::PlayerEngine;
use crate::profile::{AthleteProfile, Baseline};
use crate::reorder::Refusal;
use crate::sample::{Batch, Micros, Sample};
use crate::team::{MAX_WAITING, team_ready};
use crate::window::{IncrementalWindows, WindowStore};

/// Where a device's samples go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Player id.
    pub player: String,
    /// Team id.
    pub team: String,
}

/// Counters of what the engine did with its input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Batches received.
    pub batches: u64,
    /// Batches dropped as duplicate deliveries.
    pub duplicate_batches: u64,
    /// Device sequence counters that restarted.
    pub seq_resets: u64,
    /// Batches from devices not on the roster (refused).
    pub unknown_device_batches: u64,
    /// Samples accepted.
    pub samples: u64,
    /// Samples refused as late.
    pub late_samples: u64,
    /// Samples refused as duplicates.
    pub duplicate_samples: u64,
    /// Samples refused as time jumps (held far ahead of the player's clock, then refuted).
    pub time_jump_samples: u64,
    /// Player sessions ended because a new session began.
    pub sessions_ended: u64,
}

/// What happened to one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// The player the batch went to.
    pub player: Option<Arc<str>>,
    /// The whole batch was a duplicate delivery.
    pub duplicate_batch: bool,
    /// The device is not on the roster.
    pub unknown_device: bool,
    /// Samples accepted.
    pub accepted: u32,
    /// Indices (into the batch) of samples refused as late, for dead-lettering.
    pub late: Vec<usize>,
    /// Samples refused as duplicates.
    pub duplicates: u32,
    /// Samples of this batch held far ahead of the player's clock ([`crate::jump`]).
    pub held: u32,
    /// Samples refused as time jumps (held by this or earlier batches), for dead-lettering.
    pub time_jumps: Vec<crate::sample::Sample>,
}

/// Per-device routing state.
#[derive(Debug, Clone)]
struct Device {
    assignment: Assignment,
    /// Index into `players` once the player's engine exists.
    slot: Option<usize>,
}

/// A squad's engine.
#[derive(Debug, Clone)]
pub struct Engine<W: WindowStore = IncrementalWindows> {
    params: Params,
    tag: Arc<str>,
    devices: HashMap<String, Device>,
    profiles: HashMap<String, AthleteProfile>,
    baselines: HashMap<String, Baseline>,
    /// Lineup changes by (session, player): from when on (`true`) or off the pitch.
    lineups: HashMap<(String, String), std::collections::BTreeMap<Micros, bool>>,
    /// Planned full time by session.
    full_times: HashMap<String, Micros>,
    index: HashMap<String, usize>,
    players: Vec<PlayerEngine<W>>,
    auto_enrol: bool,
    counters: Counters,
}

impl<W: WindowStore> Engine<W> {
    /// An engine with these parameters. With `auto_enrol`, a device not on the roster is taken
    /// to be its own player (offline analysis); otherwise its batches are refused.
    pub fn new(params: Params, auto_enrol: bool) -> Self {
        let tag: Arc<str> = params.version_tag().into();
        Engine {
            params,
            tag,
            devices: HashMap::new(),
            profiles: HashMap::new(),
            baselines: HashMap::new(),
            lineups: HashMap::new(),
            full_times: HashMap::new(),
            index: HashMap::new(),
            players: Vec::new(),
            auto_enrol,
            counters: Counters::default(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The version tag stamped on every output.
    pub fn version_tag(&self) -> &str {
        &self.tag
    }

    /// Counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Map a device to a player (pods are swapped between players; the latest mapping wins).
    pub fn assign(&mut self, device: &str, player: &str, team: &str) {
        let assignment = Assignment {
            player: player.to_string(),
            team: team.to_string(),
        };
        match self.devices.get_mut(device) {
            Some(d) if d.assignment == assignment => {}
            Some(d) => {
                d.assignment = assignment;
                d.slot = None;
            }
            None => {
                self.devices.insert(
                    device.to_string(),
                    Device {
                        assignment,
                        slot: None,
                    },
                );
            }
        }
    }

    /// Set a player's athlete profile.
    pub fn set_profile(&mut self, profile: AthleteProfile) {
        if let Some(&i) = self.index.get(&profile.player) {
            self.players[i].set_profile(&self.params, Some(profile.clone()));
        }
        self.profiles.insert(profile.player.clone(), profile);
    }

    /// Set a player's load-history baseline.
    pub fn set_baseline(&mut self, player: &str, baseline: Baseline) {
        if let Some(&i) = self.index.get(player) {
            self.players[i].set_baseline(&self.params, Some(baseline.clone()));
        }
        self.baselines.insert(player.to_string(), baseline);
    }

    /// A player's load-history baseline, if one was set.
    pub fn baseline(&self, player: &str) -> Option<&Baseline> {
        self.baselines.get(player)
    }

    fn new_player(&self, player: &str, team: &str, session: &str) -> PlayerEngine<W> {
        let mut pe = PlayerEngine::new(&self.params, Arc::clone(&self.tag), player, team, session);
        pe.set_profile(&self.params, self.profiles.get(player).cloned());
        pe.set_baseline(&self.params, self.baselines.get(player).cloned());
        pe.set_lineup(self.lineup(session, player));
        pe.set_full_time(self.full_times.get(session).copied());
        pe
    }

    /// The planned full time of `session` (`None`: not known), µs: forecasts look no further.
    pub fn set_full_time(&mut self, session: &str, at: Option<Micros>) {
        match at {
            Some(t) => self.full_times.insert(session.to_string(), t),
            None => self.full_times.remove(session),
        };
        for pe in self.players.iter_mut().filter(|p| p.session() == session) {
            pe.set_full_time(at);
        }
    }

    /// A lineup change: `player` came on (`Some(true)`) or went off (`Some(false)`) the pitch
    /// in `session` at `at`; `None` withdraws a change posted in error. Applies to seconds
    /// not yet closed (post it as it happens; `sideline reprocess` redoes a finished session).
    pub fn set_pitch(&mut self, session: &str, player: &str, at: Micros, on: Option<bool>) {
        let changes = self
            .lineups
            .entry((session.to_string(), player.to_string()))
            .or_default();
        match on {
            Some(on) => {
                changes.insert(at, on);
            }
            None => {
                changes.remove(&at);
            }
        }
        let lineup = self.lineup(session, player);
        if let Some(&i) = self.index.get(player)
            && self.players[i].session() == session
        {
            self.players[i].set_lineup(lineup);
        }
    }

    /// `player`'s lineup changes in `session`, in time order.
    fn lineup(&self, session: &str, player: &str) -> Vec<(Micros, bool)> {
        self.lineups
            .get(&(session.to_string(), player.to_string()))
            .map(|m| m.iter().map(|(&t, &on)| (t, on)).collect())
            .unwrap_or_default()
    }

    /// The slot of `player`'s engine for `session`, created on first sight. A known player in
    /// a new session gets a fresh engine; the old session is finished into `out`.
    fn slot(
        &mut self,
        player: &str,
        team: &str,
        session: &str,
        out: &mut Vec<PlayerMetrics>,
    ) -> usize {
        match self.index.get(player) {
            Some(&i) if self.players[i].session() == session => i,
            Some(&i) => {
                let fresh = self.new_player(player, team, session);
                let mut old = std::mem::replace(&mut self.players[i], fresh);
                old.finish(&self.params, out);
                self.counters.sessions_ended += 1;
                i
            }
            None => {
                let pe = self.new_player(player, team, session);
                self.players.push(pe);
                self.index
                    .insert(player.to_string(), self.players.len() - 1);
                self.players.len() - 1
            }
        }
    }

    /// Feed one device batch: route it to its player by the roster, de-duplicate by
    /// (device, seq), accept each sample. Snapshots of seconds that closed go to `out`.
    pub fn ingest_batch(&mut self, b: &Batch, out: &mut Outputs) -> BatchOutcome {
        let from = out.metrics.len();
        let outcome = self.ingest_batch_inner(b, &mut out.metrics);
        self.observe(out, from);
        outcome
    }

    fn ingest_batch_inner(&mut self, b: &Batch, out: &mut Vec<PlayerMetrics>) -> BatchOutcome {
        self.counters.batches += 1;
        if !self.devices.contains_key(&b.device) {
            if !self.auto_enrol {
                self.counters.unknown_device_batches += 1;
                return BatchOutcome {
                    unknown_device: true,
                    ..BatchOutcome::default()
                };
            }
            self.assign(&b.device, &b.device, &b.team);
        }
        let Some(dev) = self.devices.get(&b.device) else {
            unreachable!("inserted above")
        };
        let known = dev.slot.filter(|&i| {
            self.players
                .get(i)
                .is_some_and(|p| p.session() == b.session)
        });
        let i = match known {
            Some(i) => i,
            None => {
                let a = dev.assignment.clone();
                let i = self.slot(&a.player, &a.team, &b.session, out);
                if let Some(d) = self.devices.get_mut(&b.device) {
                    d.slot = Some(i);
                }
                i
            }
        };
        self.ingest_at(i, b, "", out)
    }

    /// Feed a batch already attributed to `player` of `team` (the processor: ingest resolved
    /// the roster and the session, and keyed the record by player). De-duplicates by (device,
    /// seq) within the device's `boot` (its own session id, "" if unknown; see
    /// [`PlayerEngine::check_seq`]).
    pub fn ingest_routed(
        &mut self,
        player: &str,
        team: &str,
        boot: &str,
        b: &Batch,
        out: &mut Outputs,
    ) -> BatchOutcome {
        self.counters.batches += 1;
        let from = out.metrics.len();
        let i = match self.index.get(player) {
            Some(&i) if self.players[i].session() == b.session => i,
            _ => self.slot(player, team, &b.session, &mut out.metrics),
        };
        let outcome = self.ingest_at(i, b, boot, &mut out.metrics);
        self.observe(out, from);
        outcome
    }

    fn ingest_at(
        &mut self,
        i: usize,
        b: &Batch,
        boot: &str,
        out: &mut Vec<PlayerMetrics>,
    ) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let window = self.params.stream.dedup_window;
        let pe = &mut self.players[i];
        outcome.player = Some(pe.player_arc());
        match pe.check_seq(&b.device, boot, b.seq, window) {
            SeqVerdict::Duplicate => {
                self.counters.duplicate_batches += 1;
                outcome.duplicate_batch = true;
                return outcome;
            }
            SeqVerdict::Reset => self.counters.seq_resets += 1,
            SeqVerdict::New => {}
        }
        let (late, dups, held) = (
            &mut outcome.late,
            &mut outcome.duplicates,
            &mut outcome.held,
        );
        let confirmed = pe.ingest_all(&self.params, &b.samples, out, |k, r| match r {
            Refusal::Late => late.push(k),
            Refusal::Duplicate => *dups += 1,
            Refusal::Held => *held += 1,
        });
        outcome.time_jumps = pe.take_time_jumps();
        self.counters.time_jump_samples += outcome.time_jumps.len() as u64;
        outcome.accepted =
            b.samples.len() as u32 - outcome.late.len() as u32 - outcome.duplicates - outcome.held
                + confirmed;
        self.counters.samples += u64::from(outcome.accepted);
        self.counters.late_samples += outcome.late.len() as u64;
        self.counters.duplicate_samples += u64::from(outcome.duplicates);
        outcome
    }

    /// Feed one sample already attributed to a player (importers, replays of files).
    pub fn ingest(
        &mut self,
        player: &str,
        team: &str,
        session: &str,
        s: Sample,
        out: &mut Outputs,
    ) -> Result<(), Refusal> {
        let from = out.metrics.len();
        let i = match self.index.get(player) {
            Some(&i) if self.players[i].session() == session => i,
            _ => self.slot(player, team, session, &mut out.metrics),
        };
        let mut r = Ok(());
        let confirmed = self.players[i].ingest_all(
            &self.params,
            std::slice::from_ref(&s),
            &mut out.metrics,
            |_, e| r = Err(e),
        );
        self.observe(out, from);
        self.counters.samples += u64::from(confirmed);
        self.counters.time_jump_samples += self.players[i].take_time_jumps().len() as u64;
        match r {
            Ok(()) => self.counters.samples += 1,
            Err(Refusal::Late) => self.counters.late_samples += 1,
            Err(Refusal::Duplicate) => self.counters.duplicate_samples += 1,
            Err(Refusal::Held) => {}
        }
        r
    }

    /// Advance event time for every player.
    pub fn tick(&mut self, now: Micros, out: &mut Outputs) {
        let from = out.metrics.len();
        for pe in &mut self.players {
            pe.tick(&self.params, now, &mut out.metrics);
        }
        self.observe(out, from);
    }

    /// Advance each player to his own `now` (e.g. his partition's stream time); `None` skips.
    pub fn tick_each(
        &mut self,
        now_of: impl Fn(&PlayerEngine<W>) -> Option<Micros>,
        out: &mut Outputs,
    ) {
        let from = out.metrics.len();
        for pe in &mut self.players {
            if let Some(now) = now_of(pe) {
                pe.tick(&self.params, now, &mut out.metrics);
            }
        }
        self.observe(out, from);
    }

    /// The alert rules on the snapshots from `from` on, which the call that ends here produced.
    fn observe(&mut self, out: &mut Outputs, from: usize) {
        let Outputs { metrics, alerts } = out;
        self.observe_alerts(metrics.get(from..).unwrap_or_default(), alerts);
    }

    /// Evaluate the alert rules on snapshots just produced (in order); lifecycle events go to
    /// `alerts`. Every public call that emits snapshots runs it on them. Device rules run for
    /// the seconds every teammate has reached (see [`crate::team`]).
    fn observe_alerts(&mut self, snapshots: &[PlayerMetrics], alerts: &mut Vec<AlertEvent>) {
        if snapshots.is_empty() {
            return;
        }
        let (amber, red) = (self.params.risk.amber, self.params.risk.red);
        for m in snapshots {
            let Some(&i) = self.index.get(&*m.player) else {
                continue;
            };
            let pe = &mut self.players[i];
            if pe.session() != &*m.session {
                continue; // a finished session's last words
            }
            pe.observe_alerts(m, &self.params.alerts, amber, red, alerts);
        }
        // Teams (with their session) of the players that just produced something.
        let mut teams: Vec<(&str, &str)> =
            snapshots.iter().map(|m| (&*m.team, &*m.session)).collect();
        teams.sort_unstable();
        teams.dedup();
        let teams: Vec<(String, String)> = teams
            .into_iter()
            .map(|(t, s)| (t.to_string(), s.to_string()))
            .collect();
        for (team, session) in teams {
            self.release_device_rules(&team, &session, alerts);
        }
    }

    fn release_device_rules(&mut self, team: &str, session: &str, alerts: &mut Vec<AlertEvent>) {
        let members: Vec<usize> = (0..self.players.len())
            .filter(|&i| self.players[i].team() == team && self.players[i].session() == session)
            .collect();
        let observed = members
            .iter()
            .map(|&i| self.players[i].device_watch().observed());
        let Some(ready) = team_ready(observed) else {
            return;
        };
        // Decide every waiting snapshot's "teammates live" first (reading the others), then
        // run the rules (changing each player).
        let mut verdicts: Vec<(usize, Vec<bool>)> = Vec::new();
        for &i in &members {
            let w = self.players[i].device_watch();
            let n = w.waiting();
            let v: Vec<bool> = w
                .waiting_times()
                .enumerate()
                .take_while(|&(k, t)| t <= ready || n - k > MAX_WAITING)
                .map(|(_, t)| {
                    members
                        .iter()
                        .any(|&j| j != i && self.players[j].device_watch().streaming_at(t))
                })
                .collect();
            verdicts.push((i, v));
        }
        for (i, v) in verdicts {
            for live in v {
                self.players[i].observe_device(&self.params.alerts, live, alerts);
            }
        }
    }

    /// A player's engine (to snapshot it).
    pub fn player(&self, id: &str) -> Option<&PlayerEngine<W>> {
        self.index.get(id).map(|&i| &self.players[i])
    }

    /// Put back a player's engine from a snapshot (same parameter version only). The current
    /// profile and baseline are applied; any engine for that player is replaced.
    pub fn restore(&mut self, mut pe: PlayerEngine<W>) -> Result<(), String> {
        if pe.params_version() != &*self.tag {
            return Err(format!(
                "snapshot made with parameters {} but running {}",
                pe.params_version(),
                self.tag
            ));
        }
        pe.check(&self.params)?;
        let id = pe.player().to_string();
        pe.set_profile(&self.params, self.profiles.get(&id).cloned());
        pe.set_baseline(&self.params, self.baselines.get(&id).cloned());
        match self.index.get(&id) {
            Some(&i) => self.players[i] = pe,
            None => {
                self.players.push(pe);
                self.index.insert(id, self.players.len() - 1);
            }
        }
        for d in self.devices.values_mut() {
            d.slot = None;
        }
        Ok(())
    }

    /// Forget players (e.g. their partition moved to another instance).
    pub fn remove_players(&mut self, gone: impl Fn(&PlayerEngine<W>) -> bool) {
        self.players.retain(|p| !gone(p));
        self.index = self
            .players
            .iter()
            .enumerate()
            .map(|(i, p)| (p.player().to_string(), i))
            .collect();
        for d in self.devices.values_mut() {
            d.slot = None;
        }
    }

    /// End of session for one player (he has been silent long enough): release what is
    /// buffered, close his open second, end his open efforts. His engine stays (a return in
    /// the same session goes on from his totals); finishing again produces nothing.
    pub fn finish_player(&mut self, player: &str, out: &mut Outputs) {
        let from = out.metrics.len();
        if let Some(&i) = self.index.get(player) {
            let pe = &mut self.players[i];
            pe.finish(&self.params, &mut out.metrics);
            self.counters.time_jump_samples += pe.take_time_jumps().len() as u64;
        }
        self.observe(out, from);
    }

    /// End of session for every player.
    pub fn finish(&mut self, out: &mut Outputs) {
        let from = out.metrics.len();
        for pe in &mut self.players {
            pe.finish(&self.params, &mut out.metrics);
            // Still held at the end: never confirmed, counted as time jumps.
            self.counters.time_jump_samples += pe.take_time_jumps().len() as u64;
        }
        self.observe(out, from);
    }

    /// Players known so far.
    pub fn players(&self) -> impl Iterator<Item = &PlayerEngine<W>> {
        self.players.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{SECOND, Sample};

    fn batch(device: &str, session: &str, seq: u64, t0: Micros) -> Batch {
        Batch {
            device: device.into(),
            team: "t".into(),
            session: session.into(),
            seq,
            samples: (0..10)
                .map(|k| Sample::xy(t0 + k * 100_000, 0.0, 0.0, Some(3.0)))
                .collect(),
        }
    }

    #[test]
    fn a_device_not_on_the_roster_is_refused_and_counted() {
        let mut e: Engine = Engine::new(Params::default(), false);
        let o = e.ingest_batch(&batch("pod-x", "s", 1, 0), &mut Outputs::default());
        assert!(o.unknown_device);
        assert_eq!(e.counters().unknown_device_batches, 1);
    }

    #[test]
    fn a_swapped_pod_feeds_its_new_player() {
        let mut e: Engine = Engine::new(Params::default(), false);
        let mut out = Outputs::default();
        e.assign("pod-1", "alice", "t");
        assert_eq!(
            e.ingest_batch(&batch("pod-1", "s", 1, 0), &mut out)
                .player
                .as_deref(),
            Some("alice")
        );
        e.assign("pod-1", "bob", "t");
        assert_eq!(
            e.ingest_batch(&batch("pod-1", "s", 2, 1_000_000), &mut out)
                .player
                .as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn a_new_session_finishes_the_old_one_and_starts_from_zero() {
        let mut e: Engine = Engine::new(Params::default(), true);
        let mut out = Outputs::default();
        for k in 0..5 {
            e.ingest_batch(
                &batch("pod-1", "monday", k + 1, k as Micros * 1_000_000),
                &mut out,
            );
        }
        out.clear();
        e.ingest_batch(&batch("pod-1", "tuesday", 6, 86_400_000_000), &mut out);
        assert!(out.metrics.iter().all(|m| &*m.session == "monday") && !out.metrics.is_empty());
        assert_eq!(e.counters().sessions_ended, 1);
        out.clear();
        e.finish(&mut out);
        let last = out.metrics.last().unwrap();
        assert_eq!(&*last.session, "tuesday");
        assert!(last.totals.distance_m < 4.0, "{}", last.totals.distance_m);
    }

    /// A player silent long enough is finished alone; finishing again produces nothing, and a
    /// return in the same session — from a pod that rebooted, its counter from 1 — goes on
    /// from his totals.
    #[test]
    fn a_finished_player_resumes_his_session_with_his_totals() {
        let mut e: Engine = Engine::new(Params::default(), false);
        e.assign("pod-1", "alice", "t");
        e.assign("pod-2", "bob", "t");
        let mut out = Outputs::default();
        let run = |e: &mut Engine, from: u64, seq0: u64, out: &mut Outputs| {
            for k in 0..20 {
                let t = (from + k) as Micros * 1_000_000;
                let mut b = batch("pod-1", "match", seq0 + k, t);
                for (j, s) in b.samples.iter_mut().enumerate() {
                    let tj = t + j as Micros * 100_000;
                    *s = Sample::xy(tj, tj as f64 * 6e-6, 0.0, Some(6.0));
                }
                e.ingest_batch(&b, out);
            }
        };
        run(&mut e, 0, 100, &mut out);
        e.ingest_batch(&batch("pod-2", "match", 1, 0), &mut out);
        out.clear();
        e.finish_player("alice", &mut out);
        assert!(out.metrics.iter().all(|m| &*m.player == "alice") && !out.metrics.is_empty());
        let first = out.metrics.last().unwrap().totals.distance_m;
        out.clear();
        e.finish_player("alice", &mut out);
        assert!(
            out.metrics.is_empty(),
            "finishing twice produced {} snapshots",
            out.metrics.len()
        );
        run(&mut e, 30, 1, &mut out);
        e.finish(&mut out);
        let last = out
            .metrics
            .iter()
            .rev()
            .find(|m| &*m.player == "alice")
            .unwrap();
        assert_eq!(&*last.session, "match");
        assert!(
            last.totals.distance_m > first + 90.0,
            "{} then {}",
            first,
            last.totals.distance_m
        );
        assert_eq!(e.counters().sessions_ended, 0);
    }

    /// A pod rebooting a minute into the match counts from 1 again under a new id of its own:
    /// its batches are new, not duplicates of the first boot's 1..600; a batch delivered
    /// twice within a boot is still a duplicate.
    #[test]
    fn a_rebooted_pod_counting_from_one_again_is_not_a_duplicate() {
        let mut e: Engine = Engine::new(Params::default(), false);
        let mut out = Outputs::default();
        let b = |seq: u64, t: Micros| batch("pod-1", "match", seq, t);
        for k in 1..=600u64 {
            let o = e.ingest_routed(
                "alice",
                "t",
                "boot-a",
                &b(k, k as Micros * 100_000),
                &mut out,
            );
            assert!(!o.duplicate_batch);
        }
        let t1 = 61_000_000;
        for k in 1..=100u64 {
            let o = e.ingest_routed(
                "alice",
                "t",
                "boot-b",
                &b(k, t1 + k as Micros * 100_000),
                &mut out,
            );
            assert!(!o.duplicate_batch, "batch {k} of the second boot refused");
        }
        let again = e.ingest_routed("alice", "t", "boot-b", &b(100, t1 + 10_000_000), &mut out);
        assert!(again.duplicate_batch);
        assert_eq!(e.counters().seq_resets, 1);
        assert_eq!(e.counters().sessions_ended, 0);
        // One window per device, whatever the number of boots.
        assert_eq!(e.player("alice").unwrap().devices_remembered(), 1);
    }

    /// Three teammates for 5 minutes; `dead`'s pod is silent from minute 1 to 3. Each player's
    /// batches are fed in `order` (player index per step), each player ticked to his own time.
    fn device_events(lag_s: [i64; 3], team_silent_after_s: Option<i64>) -> Vec<(String, i64)> {
        let mut e: Engine = Engine::new(Params::default(), false);
        let names = ["alive-1", "dead", "alive-2"];
        for (k, n) in names.iter().enumerate() {
            e.assign(&format!("pod-{k}"), n, "t");
        }
        let (mut out, mut alerts) = (Outputs::default(), Vec::new());
        // Step through wall time; player k sees event second `step - lag_s[k]`.
        for step in 0..(300 + 60) {
            for (k, name) in names.iter().enumerate() {
                let sec = step - lag_s[k];
                if !(0..300).contains(&sec) {
                    continue;
                }
                let silent = (*name == "dead" && (60..180).contains(&sec))
                    || team_silent_after_s.is_some_and(|s| sec >= s);
                if !silent {
                    e.ingest_batch(
                        &batch(&format!("pod-{k}"), "s", sec as u64 + 1, sec * SECOND),
                        &mut out,
                    );
                }
                e.tick_each(
                    |pe| (pe.player() == *name).then_some((sec + 1) * SECOND),
                    &mut out,
                );
                alerts.append(&mut out.alerts);
                out.clear();
            }
        }
        let mut ev: Vec<(String, i64)> = alerts
            .into_iter()
            .filter(|a| a.kind == crate::AlertKind::Device)
            .map(|a| (format!("{} {} {:?}", a.id, a.player, a.state), a.t))
            .collect();
        ev.sort();
        ev
    }

    #[test]
    fn device_alerts_do_not_depend_on_which_teammate_is_processed_first() {
        let in_step = device_events([0, 0, 0], None);
        assert_eq!(in_step.len(), 2, "{in_step:?}");
        assert!(in_step.iter().all(|(e, _)| e.contains(" dead ")));
        // The dead pod's partition far ahead of, or far behind, its teammates'.
        assert_eq!(device_events([40, 0, 40], None), in_step);
        assert_eq!(device_events([0, 45, 3], None), in_step);
    }

    #[test]
    fn a_whole_team_falling_silent_raises_no_device_alert_whatever_the_order() {
        for lags in [[0, 0, 0], [50, 0, 20], [0, 50, 0]] {
            let ev = device_events(lags, Some(30));
            assert!(ev.is_empty(), "{lags:?}: {ev:?}");
        }
    }

    #[test]
    fn sequence_windows_spot_duplicates_and_restarts() {
        use crate::dedup::{SeqVerdict, SeqWindow};
        let mut w = SeqWindow::default();
        assert_eq!(w.check(10, 64), SeqVerdict::New);
        assert_eq!(w.check(12, 64), SeqVerdict::New);
        assert_eq!(w.check(11, 64), SeqVerdict::New);
        assert_eq!(w.check(11, 64), SeqVerdict::Duplicate);
        assert_eq!(w.check(200, 64), SeqVerdict::New);
        assert_eq!(w.check(150, 64), SeqVerdict::New);
        assert_eq!(w.check(12, 64), SeqVerdict::Reset);
        assert_eq!(w.check(13, 64), SeqVerdict::New);
    }
}
