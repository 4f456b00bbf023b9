//! Effort ("event") detection on a sampled signal: sprints, high-speed efforts, accelerations.
//!
//! Rule (STATSports sprint definition; OHCOACH tolerance time; `notes/domain.md` §1.3):
//! an effort *enters* after `entry_samples` consecutive samples at or above the threshold and
//! starts at the first of them; dips below the threshold are merged when the signal returns
//! within `merge_gap_s` of the first sample below; otherwise the effort ends at that first
//! sample below. It counts when its duration (start to end, merged dips included) is at least
//! `min_duration_s`. A gap in the data ends an effort at the last sample's interval.
//!
//! Each effort reports its distance (Σ v·Δt over its samples, dips included), its peak, and its
//! *held* peak: the highest value sustained for `hold` (the maximum over time of the sliding
//! minimum), which grades max-velocity exposures without being fooled by one noisy sample.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::params::EffortParams;
use crate::sample::Micros;

/// A completed, valid effort.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effort {
    /// Time of the first sample at or above the threshold.
    pub start: Micros,
    /// Time of the first sample of the closing dip (or end of the last sample's interval).
    pub end: Micros,
    /// Σ v·Δt over the effort's samples, m (0 when the caller passes no distance).
    pub distance_m: f64,
    /// Largest sample value.
    pub peak: f64,
    /// Largest value held for the hold time (`f64::NAN` if the effort was shorter).
    pub held_peak: f64,
}

impl Effort {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        (self.end - self.start) as f64 * 1e-6
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Phase {
    Idle,
    Entering { count: u32 },
    Active,
}

/// Detector state; feed samples in time order with [`EffortDetector::update`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EffortDetector {
    threshold: f64,
    entry_samples: u32,
    min_duration: Micros,
    merge_gap: Micros,
    hold: Micros,
    phase: Phase,
    start: Micros,
    last_t: Micros,
    last_dt: Micros,
    below_since: Option<Micros>,
    dip_distance: f64,
    distance: f64,
    peak: f64,
    held_peak: f64,
    /// Monotonic deque for the sliding minimum over `hold`.
    window: VecDeque<(Micros, f64)>,
}

impl EffortDetector {
    /// A detector for `p`, grading held peaks over `hold_s` seconds.
    pub fn new(p: &EffortParams, hold_s: f64) -> Self {
        EffortDetector {
            threshold: p.threshold,
            entry_samples: p.entry_samples.max(1),
            min_duration: (p.min_duration_s * 1e6).round() as Micros,
            merge_gap: (p.merge_gap_s * 1e6).round() as Micros,
            hold: (hold_s * 1e6).round() as Micros,
            phase: Phase::Idle,
            start: 0,
            last_t: 0,
            last_dt: 0,
            below_since: None,
            dip_distance: 0.0,
            distance: 0.0,
            peak: f64::NEG_INFINITY,
            held_peak: f64::NAN,
            window: VecDeque::new(),
        }
    }

    /// True while an effort is under way (entered, not yet ended).
    pub fn active(&self) -> bool {
        self.phase == Phase::Active
    }

    fn begin(&mut self, t: Micros, x: f64, dist: f64) {
        self.start = t;
        self.distance = dist;
        self.peak = x;
        self.held_peak = f64::NAN;
        self.below_since = None;
        self.dip_distance = 0.0;
        self.window.clear();
    }

    fn track_hold(&mut self, t: Micros, x: f64, dt: Micros) {
        while self.window.back().is_some_and(|&(_, v)| v >= x) {
            self.window.pop_back();
        }
        self.window.push_back((t, x));
        while self
            .window
            .front()
            .is_some_and(|&(wt, _)| wt <= t - self.hold)
        {
            self.window.pop_front();
        }
        // The samples in (t − hold, t] cover `hold` of time once the effort is that long.
        if t + dt - self.start >= self.hold
            && let Some(&(_, m)) = self.window.front()
        {
            self.held_peak = if self.held_peak.is_nan() {
                m
            } else {
                self.held_peak.max(m)
            };
        }
    }

    fn close(&mut self, end: Micros) -> Option<Effort> {
        self.phase = Phase::Idle;
        let e = Effort {
            start: self.start,
            end,
            distance_m: self.distance,
            peak: self.peak,
            held_peak: self.held_peak,
        };
        (end - self.start >= self.min_duration).then_some(e)
    }

    /// Feed one sample: time `t`, value `x`, the sample's interval `dt` (µs, backwards) and the
    /// distance covered in that interval. Returns an effort when one has just ended.
    pub fn update(&mut self, t: Micros, x: f64, dt: Micros, dist: f64) -> Option<Effort> {
        self.last_t = t;
        self.last_dt = dt;
        let above = x >= self.threshold;
        match self.phase {
            Phase::Idle => {
                if above {
                    self.begin(t, x, dist);
                    self.track_hold(t, x, dt);
                    self.phase = if self.entry_samples <= 1 {
                        Phase::Active
                    } else {
                        Phase::Entering { count: 1 }
                    };
                }
                None
            }
            Phase::Entering { count } => {
                if above {
                    self.distance += dist;
                    self.peak = self.peak.max(x);
                    self.track_hold(t, x, dt);
                    let count = count + 1;
                    self.phase = if count >= self.entry_samples {
                        Phase::Active
                    } else {
                        Phase::Entering { count }
                    };
                } else {
                    self.phase = Phase::Idle;
                }
                None
            }
            Phase::Active => {
                if above {
                    if self.below_since.take().is_some() {
                        self.distance += self.dip_distance;
                        self.dip_distance = 0.0;
                    }
                    self.distance += dist;
                    self.peak = self.peak.max(x);
                    self.track_hold(t, x, dt);
                    None
                } else {
                    let since = *self.below_since.get_or_insert(t);
                    self.dip_distance += dist;
                    self.track_hold(t, x, dt);
                    if t - since >= self.merge_gap {
                        self.close(since)
                    } else {
                        None
                    }
                }
            }
        }
    }

    /// End any effort under way (a data gap, the player leaving, or the end of the session).
    pub fn flush(&mut self) -> Option<Effort> {
        match self.phase {
            Phase::Active => {
                let end = self.below_since.unwrap_or(self.last_t + self.last_dt);
                self.close(end)
            }
            _ => {
                self.phase = Phase::Idle;
                None
            }
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.window.capacity() * std::mem::size_of::<(Micros, f64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: Micros = 100_000; // 10 Hz

    fn sprint() -> EffortDetector {
        EffortDetector::new(&EffortParams::default(), 0.5)
    }

    /// Run a 10 Hz speed trace; return completed efforts (flushing at the end).
    fn run(d: &mut EffortDetector, speeds: &[f64]) -> Vec<Effort> {
        let mut out = Vec::new();
        for (i, &v) in speeds.iter().enumerate() {
            out.extend(d.update(i as Micros * DT, v, DT, v * 0.1));
        }
        out.extend(d.flush());
        out
    }

    fn trace(parts: &[(f64, usize)]) -> Vec<f64> {
        parts
            .iter()
            .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
            .collect()
    }

    #[test]
    fn three_seconds_at_8_mps_is_one_sprint_of_24_m() {
        let e = run(&mut sprint(), &trace(&[(4.0, 20), (8.0, 30), (4.0, 20)]));
        assert_eq!(e.len(), 1);
        assert!((e[0].distance_m - 24.0).abs() < 1e-9, "{:?}", e[0]);
        assert!((e[0].duration_s() - 3.0).abs() < 1e-9);
        assert_eq!(e[0].peak, 8.0);
        assert_eq!(e[0].held_peak, 8.0);
    }

    #[test]
    fn a_dip_of_four_tenths_merges() {
        let e = run(
            &mut sprint(),
            &trace(&[(4.0, 5), (8.0, 12), (6.0, 4), (8.0, 12), (4.0, 10)]),
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!((e[0].duration_s() - 2.8).abs() < 1e-9);
        // The dip's own distance belongs to the merged effort.
        assert!((e[0].distance_m - (24.0 * 0.8 + 4.0 * 0.6)).abs() < 1e-9);
    }

    #[test]
    fn a_dip_of_six_tenths_splits() {
        let e = run(
            &mut sprint(),
            &trace(&[(4.0, 5), (8.0, 12), (6.0, 6), (8.0, 12), (4.0, 10)]),
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!((e[0].duration_s() - 1.2).abs() < 1e-9);
        assert!((e[1].duration_s() - 1.2).abs() < 1e-9);
    }

    #[test]
    fn a_burst_of_nine_tenths_is_no_sprint_but_one_second_is() {
        assert!(run(&mut sprint(), &trace(&[(4.0, 5), (8.0, 9), (4.0, 10)])).is_empty());
        assert_eq!(
            run(&mut sprint(), &trace(&[(4.0, 5), (8.0, 10), (4.0, 10)])).len(),
            1
        );
    }

    #[test]
    fn one_sample_above_never_enters() {
        let e = run(
            &mut sprint(),
            &trace(&[(4.0, 5), (8.0, 1), (4.0, 5), (8.0, 1), (4.0, 5)]),
        );
        assert!(e.is_empty());
    }

    #[test]
    fn the_held_peak_ignores_a_short_spike() {
        let e = run(
            &mut sprint(),
            &trace(&[(4.0, 5), (8.0, 8), (9.5, 2), (8.0, 8), (4.0, 5)]),
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].peak, 9.5);
        assert_eq!(e[0].held_peak, 8.0);
    }

    #[test]
    fn an_effort_running_into_the_end_of_data_is_closed_by_flush() {
        let e = run(&mut sprint(), &trace(&[(4.0, 5), (8.0, 15)]));
        assert_eq!(e.len(), 1);
        assert!((e[0].duration_s() - 1.5).abs() < 1e-9);
    }

    #[test]
    fn with_no_merge_gap_any_dip_ends_the_effort() {
        let p = EffortParams {
            threshold: 3.0,
            entry_samples: 2,
            min_duration_s: 0.5,
            merge_gap_s: 0.0,
        };
        let mut d = EffortDetector::new(&p, 0.5);
        let e = run(
            &mut d,
            &trace(&[(0.0, 3), (3.5, 6), (2.0, 1), (3.5, 6), (0.0, 3)]),
        );
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
