//! One player's engine: reorder by event time, filter, detect, accumulate per second, and emit
//! a [`PlayerMetrics`] snapshot for every closed second.
//!
//! Flow per released sample (in event-time order across the player's three streams):
//! position → speed filter → distances and bands, effort detectors (sprint, high-speed,
//! accelerations, decelerations); accelerometer → load on a 100 Hz grid; heart rate → zones
//! and TRIMP. Everything a sample adds goes to the bucket of the second it falls in. A second
//! closes once the watermark has passed its end: its bucket enters the rolling windows and the
//! fatigue blocks, the score is evaluated, and a snapshot is emitted.
//!
//! State is bounded: reorder buffers are capped, windows keep at most the longest window of
//! seconds, fatigue keeps at most 16 blocks, filters keep a fraction of a second.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alerts::PlayerAlerts;
use crate::dedup::{SeqVerdict, SeqWindow};
use crate::effort::{Effort, EffortDetector};
use crate::fatigue::FatigueState;
use crate::forecast::{Rates, forecast};
use crate::hr::{HrAnchors, HrState};
use crate::imu::AccelLoad;
use crate::jump::{Quarantine, Verdict};
use crate::output::{DeviceStatus, PlayerMetrics, Quality, Signal, Totals, WindowValues};
use crate::params::{EffortParams, Params};
use crate::profile::{AthleteProfile, Baseline, Sex, VMAX_RANGE_MPS};
use crate::reorder::{Refusal, ReorderBuffer};
use crate::risk::{RiskContext, RiskInputs, evaluate};
use crate::sample::{Micros, Position, Reading, SECOND, Sample, secs};
use crate::speed::{HeldMax, SpeedFilter};
use crate::team::DeviceWatch;
use crate::window::{
    Bucket, FIELDS, Field, IncrementalWindows, MICRO, MM, Sums, WindowStore, to_units,
};

/// Real-valued accumulators of the second being filled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct SecondAcc {
    dist: f64,
    hsr: f64,
    sprint: f64,
    moderate: f64,
    v24: f64,
    load: f64,
    up: f64,
    d1: f64,
    accdec: u32,
    decel: u32,
    on_field_s: f64,
    poor_fix_s: f64,
}

impl SecondAcc {
    fn bucket(&self) -> Bucket {
        let mut b = [0u32; FIELDS];
        b[Field::Distance as usize] = to_units(self.dist, MM);
        b[Field::Hsr as usize] = to_units(self.hsr, MM);
        b[Field::Sprint as usize] = to_units(self.sprint, MM);
        b[Field::AccDec as usize] = self.accdec;
        b[Field::DecelHard as usize] = self.decel;
        b[Field::Load as usize] = to_units(self.load, MICRO);
        b[Field::LoadUp as usize] = to_units(self.up, MICRO);
        b[Field::Load1d as usize] = to_units(self.d1, MICRO);
        b[Field::Moderate as usize] = to_units(self.moderate, MM);
        b[Field::V24 as usize] = to_units(self.v24, MM);
        b
    }
}

/// Indices of the window lengths the engine itself needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct WindowIndex {
    minute: usize,
    peak: usize,
    nm: usize,
    trend: usize,
}

/// The effort detectors of one player.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Detectors {
    sprint: EffortDetector,
    high_speed: EffortDetector,
    acc_high: EffortDetector,
    dec_high: EffortDetector,
    acc_mod: EffortDetector,
    dec_mod: EffortDetector,
}

impl Detectors {
    fn new(p: &Params) -> Self {
        let accel = |threshold| EffortParams {
            threshold,
            entry_samples: p.accel.entry_samples,
            min_duration_s: p.accel.min_duration_s,
            merge_gap_s: p.accel.merge_gap_s,
        };
        let hold = p.exposure.peak_hold_s;
        Detectors {
            sprint: EffortDetector::new(&p.sprint, hold),
            high_speed: EffortDetector::new(&p.high_speed, hold),
            acc_high: EffortDetector::new(&accel(p.accel.high_mps2), hold),
            dec_high: EffortDetector::new(&accel(p.accel.high_mps2), hold),
            acc_mod: EffortDetector::new(&accel(p.accel.moderate_mps2), hold),
            dec_mod: EffortDetector::new(&accel(p.accel.moderate_mps2), hold),
        }
    }

    fn heap_bytes(&self) -> usize {
        [
            &self.sprint,
            &self.high_speed,
            &self.acc_high,
            &self.dec_high,
            &self.acc_mod,
            &self.dec_mod,
        ]
        .iter()
        .map(|d| d.heap_bytes())
        .sum()
    }
}

/// Which detector produced an effort.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Sprint,
    HighSpeed,
    AccHigh,
    DecHigh,
    AccMod,
    DecMod,
}

/// The engine state of one player.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "W: Serialize + serde::de::DeserializeOwned")]
pub struct PlayerEngine<W: WindowStore = IncrementalWindows> {
    player: Arc<str>,
    team: Arc<str>,
    session: Arc<str>,
    params_version: Arc<str>,
    lengths: Vec<u32>,
    shown: usize,
    idx: WindowIndex,
    buffers: [ReorderBuffer; 3],
    newest: Micros,
    watermark: Micros,
    cur_sec: Option<i64>,
    acc: SecondAcc,
    windows: W,
    peaks: Vec<Sums>,
    speed: SpeedFilter,
    det: Detectors,
    imu: AccelLoad,
    hr: HrState,
    totals: Totals,
    fatigue: FatigueState,
    last_fix: Option<Micros>,
    last_any: Option<Micros>,
    quality: Quality,
    /// The highest speed held `peak_hold_s` in this stretch of good fixes.
    #[serde(default)]
    held_max: HeldMax,
    /// The last fix was poor (efforts were ended at the start of the stretch).
    #[serde(default)]
    in_poor_stretch: bool,
    /// On and off the pitch by the lineup: `(from, on)` in time order; empty = no lineup
    /// known (every fix is playing time).
    #[serde(default)]
    lineup: Vec<(Micros, bool)>,
    /// The last fix was off the pitch (efforts were ended when he left it).
    #[serde(default)]
    off_pitch: bool,
    /// The session's planned full time, when the schedule gives one (the forecast's limit).
    #[serde(default)]
    full_time: Option<Micros>,
    /// The current chain of high-speed efforts: (efforts in it, end of the last).
    #[serde(default)]
    rhi_chain: (u32, Micros),
    anchors: HrAnchors,
    profile: Option<AthleteProfile>,
    baseline: Option<Baseline>,
    empty_run: u32,
    closed: u64,
    /// Release point forced by a full reorder buffer.
    forced: Micros,
    /// Recent sequence numbers per device, for de-duplication.
    seqs: HashMap<String, SeqWindow>,
    /// Alert rule state.
    alerts: PlayerAlerts,
    /// Signal history and snapshots waiting for the team's device rule.
    device: DeviceWatch,
    /// The newest time the caller advanced him to with [`PlayerEngine::tick`].
    ticked: Micros,
    /// Samples far ahead of his clock, waiting for the next batches ([`crate::jump`]).
    jump: Quarantine,
    /// Held samples refused as time jumps, for the caller to take.
    jumped: Vec<Sample>,
}

fn push_unique(v: &mut Vec<u32>, x: u32) -> usize {
    match v.iter().position(|&y| y == x) {
        Some(i) => i,
        None => {
            v.push(x);
            v.len() - 1
        }
    }
}

impl<W: WindowStore> PlayerEngine<W> {
    /// A new player. `params_version` is [`Params::version_tag`] of `p`.
    pub fn new(
        p: &Params,
        params_version: Arc<str>,
        player: &str,
        team: &str,
        session: &str,
    ) -> Self {
        let mut lengths = p.windows.lengths_s.clone();
        let shown = lengths.len();
        let idx = WindowIndex {
            minute: push_unique(&mut lengths, 60),
            peak: push_unique(&mut lengths, p.fatigue.peak_window_s),
            nm: push_unique(&mut lengths, p.fatigue.nm_window_s),
            trend: push_unique(&mut lengths, p.risk.forecast_trend_s),
        };
        // Found by length when used (a state saved before it existed lacks the index).
        push_unique(&mut lengths, p.risk.forecast_trend_long_s);
        let mut e = PlayerEngine {
            player: player.into(),
            team: team.into(),
            session: session.into(),
            params_version,
            windows: W::with_lengths(&lengths),
            peaks: vec![[0; FIELDS]; shown],
            lengths,
            shown,
            idx,
            buffers: [
                ReorderBuffer::new(),
                ReorderBuffer::new(),
                ReorderBuffer::new(),
            ],
            newest: Micros::MIN,
            watermark: Micros::MIN,
            cur_sec: None,
            acc: SecondAcc::default(),
            speed: SpeedFilter::new(),
            det: Detectors::new(p),
            imu: AccelLoad::new(&p.imu),
            hr: HrState::default(),
            totals: Totals::default(),
            fatigue: FatigueState::default(),
            last_fix: None,
            last_any: None,
            quality: Quality::default(),
            held_max: HeldMax::default(),
            in_poor_stretch: false,
            lineup: Vec::new(),
            off_pitch: false,
            full_time: None,
            rhi_chain: (0, 0),
            anchors: HrAnchors {
                max: 0.0,
                rest: 0.0,
                female: false,
            },
            profile: None,
            baseline: None,
            empty_run: 0,
            closed: 0,
            forced: Micros::MIN,
            seqs: HashMap::new(),
            alerts: PlayerAlerts::default(),
            device: DeviceWatch::default(),
            ticked: Micros::MIN,
            jump: Quarantine::default(),
            jumped: Vec::new(),
        };
        e.set_profile(p, None);
        e
    }

    /// Is this engine (decoded from a snapshot) laid out as `p` lays a new one out? Its
    /// window lengths, their indices and the per-window arrays must be what `p` gives, or
    /// a later second would index out of bounds: a snapshot that fails is not restored.
    pub fn check(&self, p: &Params) -> Result<(), String> {
        let fresh: PlayerEngine<W> = PlayerEngine::new(
            p,
            self.params_version.clone(),
            &self.player,
            &self.team,
            &self.session,
        );
        if self.lengths != fresh.lengths || self.shown != fresh.shown || self.idx != fresh.idx {
            return Err("window layout differs from the parameters".into());
        }
        if self.windows.lengths() != self.lengths.as_slice() {
            return Err("window store lengths differ from the engine's".into());
        }
        if self.peaks.len() != self.shown {
            return Err("window peaks do not match the windows".into());
        }
        // Its clocks within a day of each other: the next second closes every second from
        // the open one on, so an open second years back would take hours.
        const SPAN: Micros = 86_400 * SECOND;
        let near = |t: Micros| t == Micros::MIN || self.newest.abs_diff(t) <= SPAN as u64;
        let times = [
            self.watermark,
            self.forced,
            self.ticked,
            self.cur_sec
                .map_or(Micros::MIN, |c| c.saturating_mul(SECOND)),
            self.last_fix.unwrap_or(Micros::MIN),
            self.last_any.unwrap_or(Micros::MIN),
        ];
        if self.newest == Micros::MIN {
            if self.cur_sec.is_some() {
                return Err("an open second before any sample".into());
            }
        } else if !times.into_iter().all(near) {
            return Err("clocks more than a day apart".into());
        }
        Ok(())
    }

    /// Player id.
    pub fn player(&self) -> &str {
        &self.player
    }

    /// Player id, shared.
    pub fn player_arc(&self) -> Arc<str> {
        Arc::clone(&self.player)
    }

    /// Session id.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Team id.
    pub fn team(&self) -> &str {
        &self.team
    }

    /// The parameter version this engine runs with.
    pub fn params_version(&self) -> &str {
        &self.params_version
    }

    /// Alert rule state.
    pub fn alerts(&self) -> &PlayerAlerts {
        &self.alerts
    }

    /// Evaluate the alert rules on one of this player's snapshots (in time order); the device
    /// rule waits for the team (see [`crate::team`]).
    pub fn observe_alerts(
        &mut self,
        m: &PlayerMetrics,
        p: &crate::params::AlertParams,
        amber: f64,
        red: f64,
        out: &mut Vec<crate::alerts::AlertEvent>,
    ) {
        self.alerts.observe(m, p, amber, red, out);
        self.device.push(m);
    }

    /// The team side of the device rule.
    pub fn device_watch(&self) -> &DeviceWatch {
        &self.device
    }

    /// Evaluate the device rule on the oldest waiting snapshot.
    pub fn observe_device(
        &mut self,
        p: &crate::params::AlertParams,
        teammates_live: bool,
        out: &mut Vec<crate::alerts::AlertEvent>,
    ) {
        if let Some(m) = self.device.pop() {
            self.alerts.observe_device(&m, p, teammates_live, out);
        }
    }

    /// Devices whose sequence windows are remembered.
    pub fn devices_remembered(&self) -> usize {
        self.seqs.len()
    }

    /// Classify a batch's (device, seq), remembering it. `boot` is the device's own session
    /// id ("" if unknown): a pod that reboots counts from 1 again under a new id, so a new
    /// `boot` starts the device's window afresh (a reset) instead of taking its first
    /// hundreds of batches for duplicates of the previous boot's. One window per device.
    pub fn check_seq(&mut self, device: &str, boot: &str, seq: u64, window: u32) -> SeqVerdict {
        const SEP: char = '\u{1f}';
        let key = if boot.is_empty() {
            device.to_string()
        } else {
            format!("{device}{SEP}{boot}")
        };
        if let Some(w) = self.seqs.get_mut(&key) {
            return w.check(seq, window);
        }
        let before = self.seqs.len();
        self.seqs.retain(|k, _| {
            k != device && !k.strip_prefix(device).is_some_and(|r| r.starts_with(SEP))
        });
        let rebooted = self.seqs.len() < before;
        let mut w = SeqWindow::default();
        let v = w.check(seq, window);
        self.seqs.insert(key, w);
        if rebooted { SeqVerdict::Reset } else { v }
    }

    /// Apply (or clear) the athlete profile: Vmax, heart-rate anchors, susceptibility.
    pub fn set_profile(&mut self, p: &Params, profile: Option<AthleteProfile>) {
        let pr = profile.as_ref();
        let (mut max, mut rest) = (pr.and_then(|x| x.hr_max), pr.and_then(|x| x.hr_rest));
        // Anchors out of range (see `AthleteProfile::problems`) are not used.
        if pr.is_some_and(|x| !x.hr_problems().is_empty()) {
            (max, rest) = (None, None);
        }
        self.totals.hr_anchors_default = max.is_none() || rest.is_none();
        self.anchors = HrAnchors {
            max: max.unwrap_or(p.hr.default_hr_max),
            rest: rest.unwrap_or(p.hr.default_hr_rest),
            female: pr.is_some_and(|x| x.sex == Sex::Female),
        };
        self.profile = profile;
        self.refresh_vmax(p);
    }

    /// Apply (or clear) the load-history baseline.
    pub fn set_baseline(&mut self, p: &Params, baseline: Option<Baseline>) {
        self.baseline = baseline;
        self.refresh_vmax(p);
    }

    /// His Vmax: the profile's; else the highest speed he held ≥ 0.5 s in his history; else
    /// none, and %Vmax figures are counted against the default only for display, flagged
    /// (`vmax_is_default`), while the score's %Vmax term is unknown.
    fn refresh_vmax(&mut self, p: &Params) {
        let ok = |v: &f64| VMAX_RANGE_MPS.contains(v);
        let own = self.profile.as_ref().and_then(|x| x.vmax_mps).filter(ok);
        let seen = self
            .baseline
            .as_ref()
            .and_then(|b| b.vmax_observed_mps)
            .filter(ok);
        let t = &mut self.totals;
        t.vmax_ref_mps = own.or(seen).unwrap_or(p.exposure.default_vmax_mps);
        t.vmax_is_default = own.is_none() && seen.is_none();
        t.vmax_from_history = own.is_none() && seen.is_some();
    }

    /// Newest event time seen on any stream.
    pub fn newest(&self) -> Option<Micros> {
        (self.newest != Micros::MIN).then_some(self.newest)
    }

    /// Accept one sample. Late and duplicate samples are refused (and counted); the caller
    /// decides where they go (the processor dead-letters them). A sample far ahead of his
    /// clock is [`Refusal::Held`] for now ([`crate::jump`]; use
    /// [`PlayerEngine::ingest_all`] to learn how many held samples a call confirms).
    pub fn ingest(
        &mut self,
        p: &Params,
        s: Sample,
        out: &mut Vec<PlayerMetrics>,
    ) -> Result<(), Refusal> {
        let mut r = Ok(());
        self.ingest_all(p, std::slice::from_ref(&s), out, |_, e| r = Err(e));
        r
    }

    /// Accept a device batch: every sample is buffered first, then released once, so the
    /// order of samples inside a batch never matters. `refused(index, reason)` is called for
    /// each sample not accepted (now: [`Refusal::Held`] ones may be accepted later). Returns
    /// how many earlier held samples this batch confirmed and accepted; held samples it
    /// refuted wait in [`PlayerEngine::take_time_jumps`].
    pub fn ingest_all(
        &mut self,
        p: &Params,
        samples: &[Sample],
        out: &mut Vec<PlayerMetrics>,
        mut refused: impl FnMut(usize, Refusal),
    ) -> u32 {
        let clock = self.newest.max(self.ticked);
        let mut confirmed = 0;
        if let Some(held) = self.jump.caught_up(&p.stream, clock) {
            confirmed += held
                .into_iter()
                .map(|s| u32::from(self.accept(p, s).is_ok()))
                .sum::<u32>();
        }
        let (mut ahead, mut near) = (false, false);
        for (i, s) in samples.iter().enumerate() {
            if Quarantine::is_jump(&p.stream, clock, s.t) {
                self.jump.hold(*s);
                ahead = true;
                refused(i, Refusal::Held);
                continue;
            }
            near = true;
            if let Err(r) = self.accept(p, *s) {
                refused(i, r);
            }
        }
        match self.jump.after_batch(&p.stream, ahead, near) {
            Verdict::Wait => {}
            Verdict::Confirmed(held) => {
                confirmed += held
                    .into_iter()
                    .map(|s| u32::from(self.accept(p, s).is_ok()))
                    .sum::<u32>();
            }
            Verdict::Refused(held) => self.jumped.extend(held),
        }
        self.release_to_watermark(p, out);
        confirmed
    }

    /// Held samples refuted as time jumps since the last call (the processor dead-letters
    /// them as `time_jump`).
    pub fn take_time_jumps(&mut self) -> Vec<Sample> {
        std::mem::take(&mut self.jumped)
    }

    /// Samples held, waiting for the batches that decide a jump.
    pub fn held(&self) -> usize {
        self.jump.len()
    }

    /// Buffer one sample (no release).
    fn accept(&mut self, p: &Params, s: Sample) -> Result<(), Refusal> {
        let buf = &mut self.buffers[s.stream().index()];
        if let Err(r) = buf.insert(s) {
            match r {
                Refusal::Duplicate => self.quality.duplicates += 1,
                Refusal::Late => self.quality.late += 1,
                Refusal::Held => {}
            }
            return Err(r);
        }
        if buf.len() > p.stream.max_buffered_samples {
            // A stream ran far ahead of the others: stop waiting for them.
            if let Some(t) = buf.front_time() {
                self.forced = self.forced.max(t);
            }
            self.quality.forced_releases += 1;
        }
        self.newest = self.newest.max(s.t);
        Ok(())
    }

    fn release_to_watermark(&mut self, p: &Params, out: &mut Vec<PlayerMetrics>) {
        let lateness = (p.stream.allowed_lateness_s * 1e6) as Micros;
        let target = (self.newest - lateness).max(self.forced);
        self.release(p, target, out);
    }

    /// Advance event time to `now` with no new sample: releases what the allowed lateness was
    /// holding back, closes seconds, reports a quiet player as "no signal".
    pub fn tick(&mut self, p: &Params, now: Micros, out: &mut Vec<PlayerMetrics>) {
        self.ticked = self.ticked.max(now);
        let lateness = (p.stream.allowed_lateness_s * 1e6) as Micros;
        self.release(p, now - lateness, out);
    }

    /// End of session: release everything buffered, close the open second, end open efforts.
    pub fn finish(&mut self, p: &Params, out: &mut Vec<PlayerMetrics>) {
        let never_confirmed = self.jump.drain();
        self.jumped.extend(never_confirmed);
        if self.newest != Micros::MIN {
            self.release(p, self.newest, out);
            self.end_efforts(p);
            let end = (self.newest.div_euclid(SECOND) + 1) * SECOND;
            self.close_before(p, end.div_euclid(SECOND), out);
        }
    }

    fn release(&mut self, p: &Params, up_to: Micros, out: &mut Vec<PlayerMetrics>) {
        if up_to <= self.watermark {
            return;
        }
        loop {
            // The oldest releasable sample across the three streams.
            let mut next: Option<(Micros, usize)> = None;
            for (i, b) in self.buffers.iter().enumerate() {
                if let Some(t) = b.front_time()
                    && t <= up_to
                    && next.is_none_or(|(nt, _)| t < nt)
                {
                    next = Some((t, i));
                }
            }
            let Some((t, i)) = next else { break };
            let sec = t.div_euclid(SECOND);
            if self.cur_sec.is_some_and(|c| c < sec) {
                self.close_before(p, sec, out);
            }
            if let Some(s) = self.buffers[i].pop_until(up_to) {
                self.process(p, &s);
            }
        }
        for b in &mut self.buffers {
            b.advance(up_to);
        }
        self.watermark = up_to;
        self.close_before(p, (up_to + 1).div_euclid(SECOND), out);
    }

    fn process(&mut self, p: &Params, s: &Sample) {
        self.cur_sec.get_or_insert(s.t.div_euclid(SECOND));
        self.last_any = Some(s.t);
        match &s.reading {
            Reading::Position(pos) => self.position(p, s.t, pos),
            Reading::Imu(r) => {
                let step = self.imu.update(s.t, r);
                if !self.lineup.is_empty() && !self.on_pitch(s.t) {
                    return;
                }
                self.acc.load += step.load;
                self.acc.up += step.axis[2];
                self.acc.d1 += step.axis[0] + step.axis[1] + step.axis[2];
                self.totals.load += step.load;
                for (tot, a) in self.totals.load_axes.iter_mut().zip(step.axis) {
                    *tot += a;
                }
            }
            Reading::HeartRate(bpm) => self.hr.update(&p.hr, &self.anchors, s.t, f64::from(*bpm)),
        }
    }

    /// Set the session's planned full time (`None`: not known).
    pub fn set_full_time(&mut self, at: Option<Micros>) {
        self.full_time = at;
    }

    /// Set his lineup changes in this session: `(from, on)`, any order.
    pub fn set_lineup(&mut self, mut lineup: Vec<(Micros, bool)>) {
        lineup.sort_by_key(|&(t, _)| t);
        self.lineup = lineup;
    }

    /// Whether he is on the pitch at `t` by the lineup: the latest change at or before `t`;
    /// before his first change, the opposite of it (a substitute whose first change is "on"
    /// was on the bench; a starter whose first is "off" was playing). No lineup: always.
    pub fn on_pitch(&self, t: Micros) -> bool {
        match self.lineup.partition_point(|&(at, _)| at <= t) {
            0 => self.lineup.first().is_none_or(|&(_, on)| !on),
            i => self.lineup[i - 1].1,
        }
    }

    fn position(&mut self, p: &Params, t: Micros, pos: &Position) {
        let gaps_before = self.speed.gaps;
        let o = self.speed.update(&p.speed, t, pos);
        if self.speed.gaps != gaps_before {
            self.end_efforts(p);
            self.quality.gaps = self.speed.gaps;
        }
        self.last_fix = Some(t);
        self.quality.artefacts = self.speed.artefacts;
        let (v, a, dt) = (o.v, o.a, o.dt);
        let d = v * dt;
        let z = &p.zones;
        let hold_us = (p.exposure.max_speed_hold_s * 1e6).round() as Micros;
        if !self.lineup.is_empty() && !self.on_pitch(t) {
            // Warm-up, the bench, after being substituted: not playing time. No window,
            // block, rate, effort or maximum sees it; its distance is kept apart.
            if !self.off_pitch {
                self.end_efforts(p);
                self.off_pitch = true;
            }
            self.held_max.reset();
            if dt > 0.0 && !o.artefact {
                self.totals.off_pitch_min += dt / 60.0;
                self.totals.off_pitch_m += d;
            }
            return;
        }
        self.off_pitch = false;
        if o.poor_fix {
            // A poor fix counts in no distance, band, maximum or effort, and an effort does
            // not bridge a poor stretch: it ends at its start.
            if !self.in_poor_stretch {
                self.end_efforts(p);
                self.in_poor_stretch = true;
            }
            self.held_max.reset();
            if dt > 0.0 {
                self.acc.on_field_s += dt;
                self.totals.minutes += dt / 60.0;
                self.acc.poor_fix_s += dt;
                self.quality.poor_fix_s += dt;
            }
            return;
        }
        self.in_poor_stretch = false;
        if o.artefact || self.speed.gaps != gaps_before {
            self.held_max.reset();
        }
        if !o.artefact {
            self.held_max.push(t, v, hold_us);
        }
        let tot = &mut self.totals;
        let acc = &mut self.acc;
        if dt > 0.0 {
            acc.on_field_s += dt;
            tot.minutes += dt / 60.0;
            tot.distance_m += d;
            acc.dist += d;
            if v < z.walk_max_mps {
                tot.walk_m += d;
            } else if v < z.jog_max_mps {
                tot.jog_m += d;
            } else if v < z.hsr_mps {
                tot.run_m += d;
            }
            if v >= z.moderate_mps {
                tot.moderate_m += d;
                acc.moderate += d;
            }
            if v >= z.hsr_mps {
                tot.hsr_m += d;
                acc.hsr += d;
            }
            if v >= z.v24_mps {
                tot.v24_m += d;
                acc.v24 += d;
            }
            if v >= z.sprint_mps {
                tot.sprint_m += d;
                acc.sprint += d;
            }
            for (m, f) in tot.vmax_band_m.iter_mut().zip(p.exposure.fractions) {
                if v >= f * tot.vmax_ref_mps {
                    *m += d;
                }
            }
            if v > z.hsr_mps || a.abs() >= z.hmld_accel_mps2 {
                tot.hmld_m += d;
            }
        }
        // The maximum is a speed held `max_speed_hold_s` (0.5 s), not one sample.
        tot.max_speed_mps = tot.max_speed_mps.max(self.held_max.best);
        if !o.artefact {
            tot.peak_speed_mps = tot.peak_speed_mps.max(v);
        }
        let dt_us = (dt * 1e6).round() as Micros;
        let found = [
            (Kind::Sprint, self.det.sprint.update(t, v, dt_us, d)),
            (Kind::HighSpeed, self.det.high_speed.update(t, v, dt_us, d)),
            (Kind::AccHigh, self.det.acc_high.update(t, a, dt_us, d)),
            (Kind::DecHigh, self.det.dec_high.update(t, -a, dt_us, d)),
            (Kind::AccMod, self.det.acc_mod.update(t, a, dt_us, d)),
            (Kind::DecMod, self.det.dec_mod.update(t, -a, dt_us, d)),
        ];
        for (kind, e) in found {
            if let Some(e) = e {
                self.count_effort(p, kind, &e);
            }
        }
    }

    fn end_efforts(&mut self, p: &Params) {
        let found = [
            (Kind::Sprint, self.det.sprint.flush()),
            (Kind::HighSpeed, self.det.high_speed.flush()),
            (Kind::AccHigh, self.det.acc_high.flush()),
            (Kind::DecHigh, self.det.dec_high.flush()),
            (Kind::AccMod, self.det.acc_mod.flush()),
            (Kind::DecMod, self.det.dec_mod.flush()),
        ];
        for (kind, e) in found {
            if let Some(e) = e {
                self.count_effort(p, kind, &e);
            }
        }
    }

    fn count_effort(&mut self, p: &Params, kind: Kind, e: &Effort) {
        let tot = &mut self.totals;
        match kind {
            Kind::Sprint => {
                tot.sprints += 1;
                tot.sprint_effort_m += e.distance_m;
            }
            Kind::HighSpeed => {
                tot.hs_efforts += 1;
                let r = &p.repeated;
                if e.duration_s() >= r.min_effort_s {
                    let (n, last_end) = self.rhi_chain;
                    let recovery = (e.start - last_end) as f64 / 1e6;
                    let n = if n > 0 && recovery <= r.max_recovery_s {
                        n + 1
                    } else {
                        1
                    };
                    if n == r.min_efforts {
                        tot.rhi_bouts += 1;
                    }
                    self.rhi_chain = (n, e.end);
                }
                for (n, f) in tot.vmax_exposures.iter_mut().zip(p.exposure.fractions) {
                    if e.held_peak >= f * tot.vmax_ref_mps {
                        *n += 1;
                    }
                }
            }
            Kind::AccHigh => {
                tot.accelerations += 1;
                self.acc.accdec += 1;
            }
            Kind::DecHigh => {
                tot.decelerations += 1;
                self.acc.accdec += 1;
                self.acc.decel += 1;
            }
            Kind::AccMod if e.peak < p.accel.high_mps2 => tot.accelerations_moderate += 1,
            Kind::DecMod if e.peak < p.accel.high_mps2 => tot.decelerations_moderate += 1,
            Kind::AccMod | Kind::DecMod => {}
        }
    }

    /// Close every second before `limit` (epoch seconds).
    fn close_before(&mut self, p: &Params, limit: i64, out: &mut Vec<PlayerMetrics>) {
        let Some(mut sec) = self.cur_sec else { return };
        let longest = self.lengths.iter().copied().max().unwrap_or(1);
        while sec < limit {
            let empty = self.acc == SecondAcc::default();
            if empty && self.empty_run > longest && !self.emits(p, sec) {
                // Nothing left in any window and nobody watching: jump over the gap.
                sec = limit;
                break;
            }
            self.close_second(p, sec, out);
            self.empty_run = if empty {
                self.empty_run.saturating_add(1)
            } else {
                0
            };
            sec += 1;
        }
        self.cur_sec = Some(sec);
    }

    fn emits(&self, p: &Params, sec: i64) -> bool {
        let end = (sec + 1) * SECOND;
        let horizon = ((p.stream.idle_timeout_s + p.stream.report_idle_for_s) * 1e6) as Micros;
        self.last_any.is_some_and(|t| end - t <= horizon)
    }

    fn close_second(&mut self, p: &Params, sec: i64, out: &mut Vec<PlayerMetrics>) {
        self.closed += 1;
        // Fixes stopped (a dropout, a substitution, the end): efforts under way end here rather
        // than whenever the next fix arrives, so a live session agrees with a finished one.
        let end = (sec + 1) * SECOND;
        if self
            .last_fix
            .is_some_and(|t| end - t > (p.speed.effort_gap_s * 1e6) as Micros)
            && (self.det.sprint.active()
                || self.det.high_speed.active()
                || self.det.acc_high.active()
                || self.det.dec_high.active()
                || self.det.acc_mod.active()
                || self.det.dec_mod.active())
        {
            self.end_efforts(p);
        }
        let b = self.acc.bucket();
        let on_field = self.acc.on_field_s > 0.0;
        // Rolling windows run on playing time: a second without a fix (half-time, the bench,
        // a dropout) is not pushed, so "the last 5 minutes" after the restart are the last 5
        // minutes played, not the break's zeros. A second with only accelerometer or heart
        // data still counts (a pod without satellites indoors).
        if on_field || b.iter().any(|&x| x > 0) {
            self.windows.push(&b);
        }
        for k in 0..self.shown {
            let s = self.windows.sums(k);
            let peak = &mut self.peaks[k];
            for f in 0..FIELDS {
                peak[f] = peak[f].max(s[f]);
            }
        }
        let peak_sums = self.windows.sums(self.idx.peak);
        self.fatigue.on_second(&p.fatigue, &b, on_field, &peak_sums);
        if self.emits(p, sec) {
            out.push(self.snapshot(p, sec));
        }
        self.acc = SecondAcc::default();
    }

    fn snapshot(&self, p: &Params, sec: i64) -> PlayerMetrics {
        let end = (sec + 1) * SECOND;
        let windows = (0..self.shown)
            .map(|k| {
                let s = self.windows.sums(k);
                let pk = &self.peaks[k];
                let m = |x: u64| x as f64 / MM;
                WindowValues {
                    length_s: self.lengths[k],
                    distance_m: m(s[Field::Distance as usize]),
                    hsr_m: m(s[Field::Hsr as usize]),
                    sprint_m: m(s[Field::Sprint as usize]),
                    accdec: s[Field::AccDec as usize] as u32,
                    load: s[Field::Load as usize] as f64 / MICRO,
                    peak_distance_m: m(pk[Field::Distance as usize]),
                    peak_hsr_m: m(pk[Field::Hsr as usize]),
                    peak_sprint_m: m(pk[Field::Sprint as usize]),
                    peak_accdec: pk[Field::AccDec as usize] as u32,
                    peak_load: pk[Field::Load as usize] as f64 / MICRO,
                }
            })
            .collect();
        let fatigue = self
            .fatigue
            .markers(&p.fatigue, &self.windows.sums(self.idx.nm));
        let minute = self.windows.sums(self.idx.minute);
        let tot = &self.totals;
        let inputs = RiskInputs {
            session_hsr_m: tot.hsr_m,
            session_moderate_m: tot.moderate_m,
            session_v24_m: tot.v24_m,
            session_sprint_m: tot.sprint_m,
            vmax95_exposures: tot.vmax_exposures[2],
            vmax_default: tot.vmax_is_default,
            sprint_60s_m: minute[Field::Sprint as usize] as f64 / MM,
            decel_60s: minute[Field::DecelHard as usize] as u32,
            post_peak_decrement: fatigue.post_peak_decrement,
            last_block_hsr_change: fatigue.last_block_hsr_change,
            lpm_change: fatigue.load_per_m_change,
            vshare_change: fatigue.vertical_share_change,
        };
        let ctx = RiskContext {
            params: &p.risk,
            profile: self.profile.as_ref(),
            baseline: self.baseline.as_ref(),
        };
        let risk = evaluate(&inputs, &ctx);
        // Rates over a trend window, or over the session so far when it is shorter.
        let rates_over = |w: usize| {
            let sums = self.windows.sums(w);
            let span = f64::from(self.lengths[w])
                .min(self.fatigue.on_field_s() as f64)
                .max(1.0);
            let per_s = |f: Field| sums[f as usize] as f64 / MM / span;
            Rates {
                hsr: per_s(Field::Hsr),
                moderate: per_s(Field::Moderate),
                v24: per_s(Field::V24),
                sprint: per_s(Field::Sprint),
                sprint_60s_mean_m: per_s(Field::Sprint) * 60.0,
            }
        };
        // Too little play to measure a rate: only a band already reached is said (0 min).
        let (rates, long) = if self.fatigue.on_field_s() < u64::from(p.risk.forecast_min_on_field_s)
        {
            (Rates::default(), Rates::default())
        } else {
            let long = self
                .lengths
                .iter()
                .position(|&l| l == p.risk.forecast_trend_long_s)
                .unwrap_or(self.idx.trend);
            (rates_over(self.idx.trend), rates_over(long))
        };
        let minutes_left = self.full_time.map(|ft| (ft - end) as f64 / 60e6);
        let fc = forecast(&inputs, &rates, &long, risk.score, &ctx, minutes_left);
        let mut totals = tot.clone();
        totals.hr = self.hr.totals.clone();
        let axes: f64 = totals.load_axes.iter().sum();
        totals.load_per_min = (totals.minutes > 0.0).then(|| totals.load / totals.minutes);
        totals.load_per_m = (totals.distance_m > 1.0).then(|| totals.load / totals.distance_m);
        totals.vertical_share = (axes > 0.0).then(|| totals.load_axes[2] / axes);
        let age = self.last_fix.map(|t| secs(end - t));
        let signal = match age {
            Some(a) if a <= p.stream.idle_timeout_s => {
                if self.acc.poor_fix_s > 0.5 * self.acc.on_field_s.max(1e-9) {
                    Signal::PoorFix
                } else {
                    Signal::Ok
                }
            }
            _ => Signal::NoSignal,
        };
        PlayerMetrics {
            player: Arc::clone(&self.player),
            team: Arc::clone(&self.team),
            session: Arc::clone(&self.session),
            t: end,
            params_version: Arc::clone(&self.params_version),
            status: DeviceStatus {
                signal,
                last_fix_age_s: age,
            },
            totals,
            windows,
            fatigue,
            risk,
            forecast: fc,
            quality: self.quality,
        }
    }

    /// Approximate bytes of state held for this player (struct plus heap).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.windows.heap_bytes()
            + self.peaks.capacity() * std::mem::size_of::<Sums>()
            + self
                .buffers
                .iter()
                .map(ReorderBuffer::heap_bytes)
                .sum::<usize>()
            + self.speed.heap_bytes()
            + self.det.heap_bytes()
            + self.fatigue.heap_bytes()
            + self.lengths.capacity() * 4
            + self.player.len()
            + self.team.len()
            + self.session.len()
    }
}
