//! Speed pre-processing for one player's position stream (causal, for live use).
//!
//! Per fix: project to the local plane; take the device's Doppler speed when present, else the
//! displacement over the last `derive_window_s` (a causal moving average of velocity, which
//! suppresses the position jitter that would otherwise inflate distance); reject artefacts
//! (v > 10 m/s, or an implied change faster than 9 m/s²); median of the last few accepted
//! values; first-order exponential smoothing with time constant τ (α = 1 − e^(−Δt/τ), so the
//! filter behaves the same at 10, 20 or 25 Hz); acceleration a = Δv over 0.2 s of filtered
//! speed (Varley et al. 2017). A gap longer than `max_gap_s` restarts every filter and
//! integrates no distance across it.
//!
//! Position-only streams (no device speed) also pass the [`StationaryGate`]: standing
//! detection and a debias for GNSS position noise.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::geo::LocalPlane;
use crate::params::SpeedParams;
use crate::sample::{Coord, Micros, Position, secs};
use crate::stationary::StationaryGate;

/// What the filter made of one fix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedOut {
    /// Seconds since the previous fix to integrate over (0 for the first fix after a gap).
    pub dt: f64,
    /// Filtered speed, m/s.
    pub v: f64,
    /// Longitudinal acceleration from filtered speed, m/s².
    pub a: f64,
    /// The raw value was rejected as an artefact; `v` is the held previous value.
    pub artefact: bool,
    /// The fix reported poor quality (few satellites or high HDOP).
    pub poor_fix: bool,
}

/// Capacity of the short position and speed histories (enough for 0.3 s at 100 Hz).
const HISTORY_CAP: usize = 48;
/// Largest median window supported.
const MEDIAN_CAP: usize = 15;
/// Implied accelerations are measured over at least this long, s, so that sample-to-sample
/// noise at high rates is not mistaken for an artefact.
const MIN_ACCEL_CHECK_S: f64 = 0.1;

/// Causal speed filter state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeedFilter {
    plane: Option<LocalPlane>,
    last_t: Option<Micros>,
    /// Recent projected fixes (t, x, y) for derived speed.
    fixes: VecDeque<(Micros, f64, f64)>,
    /// Recent accepted raw speeds for the median.
    med: [f64; MEDIAN_CAP],
    med_len: usize,
    med_next: usize,
    /// Smoothed speed; `None` right after a restart.
    ema: Option<f64>,
    /// Recent (t, filtered v) for acceleration.
    vhist: VecDeque<(Micros, f64)>,
    last_accepted: Option<(Micros, f64)>,
    rejects_in_row: u32,
    /// Position-only streams: standing detection and noise debias.
    #[serde(default)]
    gate: StationaryGate,
    /// Fixes rejected as artefacts.
    pub artefacts: u64,
    /// Filter restarts after gaps.
    pub gaps: u64,
}

impl Default for SpeedFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl SpeedFilter {
    /// A filter waiting for its first fix.
    pub fn new() -> Self {
        SpeedFilter {
            plane: None,
            last_t: None,
            fixes: VecDeque::with_capacity(HISTORY_CAP),
            med: [0.0; MEDIAN_CAP],
            med_len: 0,
            med_next: 0,
            ema: None,
            vhist: VecDeque::with_capacity(HISTORY_CAP),
            last_accepted: None,
            rejects_in_row: 0,
            gate: StationaryGate::default(),
            artefacts: 0,
            gaps: 0,
        }
    }

    fn restart(&mut self) {
        self.fixes.clear();
        self.med_len = 0;
        self.med_next = 0;
        self.ema = None;
        self.vhist.clear();
        self.last_accepted = None;
        self.rejects_in_row = 0;
        self.gate.clear();
    }

    fn project(&mut self, c: Coord) -> (f64, f64) {
        match c {
            Coord::Xy { x, y } => (x, y),
            Coord::LatLon { lat, lon } => {
                let plane = *self.plane.get_or_insert_with(|| LocalPlane::new(lat, lon));
                plane.project(lat, lon)
            }
        }
    }

    /// Displacement speed over the derive window, once at least half of it is covered (right
    /// after a start, one frame step of tracking jitter would otherwise pass for a sprint).
    fn derived_speed(&self, t: Micros, x: f64, y: f64, window: Micros) -> Option<f64> {
        // The newest stored fix at or before t − window, else the oldest one available.
        let target = t - window;
        let idx = self.fixes.partition_point(|f| f.0 <= target);
        let (t0, x0, y0) = if idx > 0 {
            self.fixes[idx - 1]
        } else {
            *self.fixes.front()?
        };
        (2 * (t - t0) >= window).then(|| (x - x0).hypot(y - y0) / secs(t - t0))
    }

    fn median(&self) -> f64 {
        let mut w = [0.0; MEDIAN_CAP];
        let n = self.med_len.clamp(1, MEDIAN_CAP);
        w[..n].copy_from_slice(&self.med[..n]);
        let w = &mut w[..n];
        w.sort_unstable_by(f64::total_cmp);
        if n % 2 == 1 {
            w[n / 2]
        } else {
            0.5 * (w[n / 2 - 1] + w[n / 2])
        }
    }

    fn accel(&self, t: Micros, v: f64, interval: Micros) -> f64 {
        let target = t - interval;
        let idx = self.vhist.partition_point(|h| h.0 <= target);
        if idx == 0 {
            // Not yet `interval` of history: use the oldest point if it spans half of it.
            return match self.vhist.front() {
                Some(&(t0, v0)) if 2 * (t - t0) >= interval => (v - v0) / secs(t - t0),
                _ => 0.0,
            };
        }
        let (t0, v0) = self.vhist[idx - 1];
        let v_then = match self.vhist.get(idx) {
            Some(&(t1, v1)) if t1 > t0 => v0 + (v1 - v0) * secs(target - t0) / secs(t1 - t0),
            _ => v0,
        };
        (v - v_then) / secs(interval)
    }

    /// Feed one fix in time order.
    pub fn update(&mut self, p: &SpeedParams, t: Micros, pos: &Position) -> SpeedOut {
        let (x, y) = self.project(pos.coord);
        let max_gap = (p.max_gap_s * 1e6) as Micros;
        let dt = match self.last_t {
            Some(lt) if t - lt <= max_gap => secs(t - lt),
            Some(_) => {
                self.gaps += 1;
                self.restart();
                0.0
            }
            None => 0.0,
        };
        self.last_t = Some(t);
        let poor_fix = pos.hdop.is_some_and(|h| f64::from(h) > p.poor_fix_hdop)
            || pos
                .satellites
                .is_some_and(|s| s < p.poor_fix_min_satellites);

        let window = (p.derive_window_s * 1e6) as Micros;
        let raw = match pos.speed {
            Some(s) if p.prefer_device_speed => Some(f64::from(s)),
            _ => self
                .derived_speed(t, x, y, window)
                .map(|raw| self.gate.apply(p, t, (x, y), dt, raw)),
        };
        if self.fixes.len() == HISTORY_CAP {
            self.fixes.pop_front();
        }
        self.fixes.push_back((t, x, y));
        // Keep only what the derive window needs (plus one older fix).
        while self.fixes.len() > 2 && self.fixes[1].0 <= t - window {
            self.fixes.pop_front();
        }

        let held = self.ema.unwrap_or(0.0);
        let Some(raw) = raw else {
            return SpeedOut {
                dt,
                v: held,
                a: 0.0,
                artefact: false,
                poor_fix,
            };
        };

        let implausible = !raw.is_finite()
            || raw < 0.0
            || raw > p.max_speed_mps
            || self.last_accepted.is_some_and(|(lt, lv)| {
                (raw - lv).abs() / secs(t - lt).max(MIN_ACCEL_CHECK_S) > p.max_accel_mps2
            });
        if implausible {
            self.artefacts += 1;
            self.rejects_in_row += 1;
            if self.rejects_in_row > p.max_consecutive_rejects && raw.is_finite() && raw >= 0.0 {
                // The last accepted value was probably the outlier: start again from here.
                self.restart();
                self.fixes.push_back((t, x, y));
            }
            return SpeedOut {
                dt,
                v: held,
                a: 0.0,
                artefact: true,
                poor_fix,
            };
        }
        self.rejects_in_row = 0;
        self.last_accepted = Some((t, raw));

        let n = p.median_samples.clamp(1, MEDIAN_CAP);
        // (Kept in range even for a state read back from elsewhere.)
        let at = self.med_next % n;
        self.med[at] = raw;
        self.med_next = (at + 1) % n;
        self.med_len = (self.med_len + 1).min(n);
        let m = self.median();

        let v = match self.ema {
            Some(prev) if p.ema_tau_s > 0.0 => {
                let alpha = 1.0 - (-dt / p.ema_tau_s).exp();
                prev + alpha * (m - prev)
            }
            _ => m,
        };
        self.ema = Some(v);

        let a = self.accel(t, v, (p.accel_interval_s * 1e6) as Micros);
        if self.vhist.len() == HISTORY_CAP {
            self.vhist.pop_front();
        }
        self.vhist.push_back((t, v));
        let keep = (p.accel_interval_s * 1e6) as Micros;
        while self.vhist.len() > 2 && self.vhist[1].0 <= t - keep {
            self.vhist.pop_front();
        }
        SpeedOut {
            dt,
            v,
            a,
            artefact: false,
            poor_fix,
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        (self.fixes.capacity() + self.gate.capacity()) * std::mem::size_of::<(Micros, f64, f64)>()
            + self.vhist.capacity() * std::mem::size_of::<(Micros, f64)>()
    }
}

/// The highest speed held for at least a given time: the best, over the samples so far, of
/// the lowest speed in any window of that length (a sliding minimum). One fast sample is not
/// a maximum (SciSports accepts a maximum only when sustained; the held peak of `effort`).
/// [`HeldMax::reset`] starts a new run (a gap, an artefact, a poor fix): a window never spans
/// one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldMax {
    /// Candidates for the window's minimum: increasing speeds, oldest first.
    window: VecDeque<(Micros, f64)>,
    /// First sample of the current run.
    run_start: Option<Micros>,
    /// Highest held speed so far, m/s.
    pub best: f64,
}

impl HeldMax {
    /// A sample of speed `v` at `t`, in time order; `hold_us`: how long a speed must hold.
    pub fn push(&mut self, t: Micros, v: f64, hold_us: Micros) {
        let start = *self.run_start.get_or_insert(t);
        while self.window.back().is_some_and(|&(_, b)| b >= v) {
            self.window.pop_back();
        }
        self.window.push_back((t, v));
        while self.window.front().is_some_and(|&(ft, _)| ft < t - hold_us) {
            self.window.pop_front();
        }
        if t - start >= hold_us
            && let Some(&(_, min)) = self.window.front()
        {
            self.best = self.best.max(min);
        }
    }

    /// Start a new run (the best so far stays).
    pub fn reset(&mut self) {
        self.window.clear();
        self.run_start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Coord;

    fn fix(x: f64, speed: Option<f32>) -> Position {
        Position {
            coord: Coord::Xy { x, y: 0.0 },
            speed,
            satellites: None,
            hdop: None,
        }
    }

    #[test]
    fn constant_speed_from_positions_is_recovered_exactly() {
        let p = SpeedParams::default();
        let mut f = SpeedFilter::new();
        let mut last = None;
        for i in 0..100 {
            let t = i * 40_000; // 25 Hz
            last = Some(f.update(&p, t, &fix(6.0 * secs(t), None)));
        }
        let o = last.unwrap();
        assert!((o.v - 6.0).abs() < 1e-9, "{}", o.v);
        assert!(o.a.abs() < 1e-9);
        assert!((o.dt - 0.04).abs() < 1e-12);
    }

    #[test]
    fn derived_speed_waits_for_half_its_window_after_a_start() {
        let p = SpeedParams::default();
        let mut f = SpeedFilter::new();
        // A 0.36 m jitter between the first two 25 Hz frames would read as 9 m/s.
        assert_eq!(f.update(&p, 0, &fix(0.0, None)).v, 0.0);
        assert_eq!(f.update(&p, 40_000, &fix(0.36, None)).v, 0.0);
        assert_eq!(f.update(&p, 80_000, &fix(0.36, None)).v, 0.0);
        let o = f.update(&p, 160_000, &fix(0.36, None));
        assert!((o.v - 0.36 / 0.16).abs() < 1e-9, "{o:?}");
    }

    #[test]
    fn a_single_spike_is_rejected_and_counted() {
        let p = SpeedParams::default();
        let mut f = SpeedFilter::new();
        for i in 0..20 {
            f.update(&p, i * 100_000, &fix(0.0, Some(5.0)));
        }
        let o = f.update(&p, 2_000_000, &fix(0.0, Some(14.0)));
        assert!(o.artefact);
        assert!((o.v - 5.0).abs() < 1e-9);
        let o = f.update(&p, 2_100_000, &fix(0.0, Some(5.0)));
        assert!(!o.artefact);
        assert_eq!(f.artefacts, 1);
    }

    #[test]
    fn a_gap_restarts_the_filter_and_integrates_nothing() {
        let p = SpeedParams::default();
        let mut f = SpeedFilter::new();
        for i in 0..20 {
            f.update(&p, i * 100_000, &fix(0.0, Some(5.0)));
        }
        let o = f.update(&p, 10_000_000, &fix(0.0, Some(2.0)));
        assert_eq!(o.dt, 0.0);
        assert_eq!(o.v, 2.0);
        assert_eq!(f.gaps, 1);
    }

    #[test]
    fn acceleration_is_the_change_of_speed_over_two_tenths() {
        let p = SpeedParams {
            median_samples: 1,
            ema_tau_s: 0.0,
            ..SpeedParams::default()
        };
        let mut f = SpeedFilter::new();
        let mut o = None;
        for i in 0..30 {
            let t = i * 100_000;
            // speed ramps at 2.5 m/s² from 1 m/s
            o = Some(f.update(&p, t, &fix(0.0, Some((1.0 + 2.5 * secs(t)) as f32))));
        }
        assert!((o.unwrap().a - 2.5).abs() < 1e-5, "{:?}", o);
    }

    #[test]
    fn poor_fixes_are_flagged() {
        let p = SpeedParams::default();
        let mut f = SpeedFilter::new();
        let mut pos = fix(0.0, Some(3.0));
        pos.hdop = Some(9.0);
        assert!(f.update(&p, 0, &pos).poor_fix);
        pos.hdop = Some(1.0);
        pos.satellites = Some(3);
        assert!(f.update(&p, 100_000, &pos).poor_fix);
        pos.satellites = Some(9);
        assert!(!f.update(&p, 200_000, &pos).poor_fix);
    }

    #[test]
    fn the_maximum_is_a_speed_held_half_a_second() {
        let hold = 500_000;
        let mut m = HeldMax::default();
        // 10 Hz: 7 m/s, one spike of 9.5, then 8 m/s for 0.6 s, then 6.
        let speeds = [
            7.0, 7.0, 9.5, 7.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 6.0, 6.0,
        ];
        for (i, v) in speeds.iter().enumerate() {
            m.push(i as Micros * 100_000, *v, hold);
        }
        assert_eq!(m.best, 8.0, "the spike is not a maximum; 8 held 0.6 s is");
        // A run shorter than the hold gives nothing; a reset splits runs.
        let mut m = HeldMax::default();
        for i in 0..4 {
            m.push(i * 100_000, 9.0, hold);
        }
        m.reset();
        for i in 5..9 {
            m.push(i * 100_000, 9.0, hold);
        }
        assert_eq!(m.best, 0.0);
    }

    #[test]
    fn held_max_equals_a_naive_recomputation() {
        let hold = 500_000;
        let mut rng = 12345u64;
        let mut v = Vec::new();
        for _ in 0..400 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.push((rng >> 33) as f64 / f64::from(1u32 << 31) * 10.0);
        }
        let mut m = HeldMax::default();
        for (i, x) in v.iter().enumerate() {
            m.push(i as Micros * 100_000, *x, hold);
        }
        // Naive: the best minimum over every window of 6 consecutive samples (0.5 s at 10 Hz).
        let naive = v
            .windows(6)
            .map(|w| w.iter().copied().fold(f64::INFINITY, f64::min))
            .fold(0.0, f64::max);
        assert_eq!(m.best, naive);
    }
}
