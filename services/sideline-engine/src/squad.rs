//! The engine for a whole squad: routes each device's batches to its player, removes duplicate
//! deliveries by (device, sequence number), and drives every player's engine.
//!
//! This is what every mode runs (live processor, demo, replay, `sideline analyze`,
//! reprocessing): feed [`Engine::ingest_batch`] (or [`Engine::ingest`] for samples already
//! attributed to a player) and call [`Engine::tick`] with the current event time.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::output::PlayerMetrics;
use crate::params::Params;
use crate::player::PlayerEngine;
use crate::profile::{AthleteProfile, Baseline};
use crate::reorder::Refusal;
use crate::sample::{Batch, Micros, Sample};
use crate::window::{IncrementalWindows, WindowStore};

/// Where a device's samples go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Player id.
    pub player: String,
    /// Team id.
    pub team: String,
}

/// Per-device memory of recent sequence numbers (a sliding bitmap below the highest seen).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SeqWindow {
    highest: Option<u64>,
    bits: Vec<u64>,
}

/// What the sequence window says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqVerdict {
    New,
    Duplicate,
    /// Far below the window: a device restart (its counter began again).
    Reset,
}

impl SeqWindow {
    fn check(&mut self, seq: u64, window: u32) -> SeqVerdict {
        let words = window.div_ceil(64) as usize;
        if self.bits.len() != words {
            self.bits = vec![0; words];
        }
        let size = words as u64 * 64;
        let Some(hi) = self.highest else {
            self.highest = Some(seq);
            self.set(seq, size);
            return SeqVerdict::New;
        };
        if seq > hi {
            // Clear the slots that now fall out of the window.
            let shift = (seq - hi).min(size);
            for k in 1..=shift {
                self.clear(hi + k, size);
            }
            self.highest = Some(seq);
            self.set(seq, size);
            SeqVerdict::New
        } else if hi - seq < size {
            if self.get(seq, size) {
                SeqVerdict::Duplicate
            } else {
                self.set(seq, size);
                SeqVerdict::New
            }
        } else {
            self.bits.iter_mut().for_each(|w| *w = 0);
            self.highest = Some(seq);
            self.set(seq, size);
            SeqVerdict::Reset
        }
    }

    fn slot(seq: u64, size: u64) -> (usize, u64) {
        let i = seq % size;
        ((i / 64) as usize, 1 << (i % 64))
    }
    fn set(&mut self, seq: u64, size: u64) {
        let (w, m) = Self::slot(seq, size);
        self.bits[w] |= m;
    }
    fn clear(&mut self, seq: u64, size: u64) {
        let (w, m) = Self::slot(seq, size);
        self.bits[w] &= !m;
    }
    fn get(&self, seq: u64, size: u64) -> bool {
        let (w, m) = Self::slot(seq, size);
        self.bits[w] & m != 0
    }
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
}

/// What happened to one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The player the batch went to.
    pub player: Option<String>,
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
}

/// A squad's engine.
#[derive(Debug, Clone)]
pub struct Engine<W: WindowStore = IncrementalWindows> {
    params: Params,
    tag: Arc<str>,
    devices: HashMap<String, Assignment>,
    profiles: HashMap<String, AthleteProfile>,
    baselines: HashMap<String, Baseline>,
    players: HashMap<String, PlayerEngine<W>>,
    seqs: HashMap<String, SeqWindow>,
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
            players: HashMap::new(),
            seqs: HashMap::new(),
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
        self.devices.insert(
            device.to_string(),
            Assignment {
                player: player.to_string(),
                team: team.to_string(),
            },
        );
    }

    /// Set a player's athlete profile.
    pub fn set_profile(&mut self, profile: AthleteProfile) {
        if let Some(pe) = self.players.get_mut(&profile.player) {
            pe.set_profile(&self.params, Some(profile.clone()));
        }
        self.profiles.insert(profile.player.clone(), profile);
    }

    /// Set a player's load-history baseline.
    pub fn set_baseline(&mut self, player: &str, baseline: Baseline) {
        if let Some(pe) = self.players.get_mut(player) {
            pe.set_baseline(Some(baseline.clone()));
        }
        self.baselines.insert(player.to_string(), baseline);
    }

    /// The parameters and the player's engine, created on first sight.
    fn player_mut(
        &mut self,
        player: &str,
        team: &str,
        session: &str,
    ) -> (&Params, &mut PlayerEngine<W>) {
        if !self.players.contains_key(player) {
            let mut pe =
                PlayerEngine::new(&self.params, Arc::clone(&self.tag), player, team, session);
            pe.set_profile(&self.params, self.profiles.get(player).cloned());
            pe.set_baseline(self.baselines.get(player).cloned());
            self.players.insert(player.to_string(), pe);
        }
        let pe = match self.players.get_mut(player) {
            Some(pe) => pe,
            None => unreachable!("inserted above"),
        };
        (&self.params, pe)
    }

    /// Feed one device batch: de-duplicate by (device, seq), route to the player, accept each
    /// sample. Snapshots of seconds that closed go to `out`.
    pub fn ingest_batch(&mut self, b: &Batch, out: &mut Vec<PlayerMetrics>) -> BatchOutcome {
        self.counters.batches += 1;
        let mut outcome = BatchOutcome::default();
        let assignment = match self.devices.get(&b.device) {
            Some(a) => a.clone(),
            None if self.auto_enrol => Assignment {
                player: b.device.clone(),
                team: b.team.clone(),
            },
            None => {
                self.counters.unknown_device_batches += 1;
                outcome.unknown_device = true;
                return outcome;
            }
        };
        let window = self.params.stream.dedup_window;
        match self
            .seqs
            .entry(b.device.clone())
            .or_default()
            .check(b.seq, window)
        {
            SeqVerdict::Duplicate => {
                self.counters.duplicate_batches += 1;
                outcome.duplicate_batch = true;
                outcome.player = Some(assignment.player);
                return outcome;
            }
            SeqVerdict::Reset => self.counters.seq_resets += 1,
            SeqVerdict::New => {}
        }
        let (params, pe) = self.player_mut(&assignment.player, &assignment.team, &b.session);
        for (i, s) in b.samples.iter().enumerate() {
            match pe.ingest(params, *s, out) {
                Ok(()) => outcome.accepted += 1,
                Err(Refusal::Late) => outcome.late.push(i),
                Err(Refusal::Duplicate) => outcome.duplicates += 1,
            }
        }
        self.counters.samples += u64::from(outcome.accepted);
        self.counters.late_samples += outcome.late.len() as u64;
        self.counters.duplicate_samples += u64::from(outcome.duplicates);
        outcome.player = Some(assignment.player);
        outcome
    }

    /// Feed one sample already attributed to a player (importers, replays of files).
    pub fn ingest(
        &mut self,
        player: &str,
        team: &str,
        session: &str,
        s: Sample,
        out: &mut Vec<PlayerMetrics>,
    ) -> Result<(), Refusal> {
        let (params, pe) = self.player_mut(player, team, session);
        let r = pe.ingest(params, s, out);
        match r {
            Ok(()) => self.counters.samples += 1,
            Err(Refusal::Late) => self.counters.late_samples += 1,
            Err(Refusal::Duplicate) => self.counters.duplicate_samples += 1,
        }
        r
    }

    /// Advance event time for every player.
    pub fn tick(&mut self, now: Micros, out: &mut Vec<PlayerMetrics>) {
        for pe in self.players.values_mut() {
            pe.tick(&self.params, now, out);
        }
    }

    /// End of session for every player.
    pub fn finish(&mut self, out: &mut Vec<PlayerMetrics>) {
        for pe in self.players.values_mut() {
            pe.finish(&self.params, out);
        }
    }

    /// Players known so far.
    pub fn players(&self) -> impl Iterator<Item = &PlayerEngine<W>> {
        self.players.values()
    }
}
