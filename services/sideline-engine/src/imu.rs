//! Accelerometer load ("AccelLoad", PlayerLoad-style) from tri-axial readings in g.
//!
//! Readings are put on an exact 100 Hz grid by linear interpolation (devices drift and some
//! sample at 50 or 200 Hz; the formula is only defined per 100 Hz step). Per grid step:
//!
//! ```text
//! load  += √(Δax² + Δay² + Δaz²) / 100        (g; Boyd, Ball & Aughey 2011 structure)
//! axis  += |Δa_axis| / 100                    (uniaxial components: forward, side, up)
//! ```
//!
//! The sum is in arbitrary units and is **not** comparable with Catapult PlayerLoad or any other
//! vendor's value: their filtering is undisclosed (Nicolella et al. 2018 found ~15 % lower
//! vendor values than the published formula). Input above 100 Hz is not low-passed first, so
//! 200 Hz input adds aliasing; resample on the device where possible.

use serde::{Deserialize, Serialize};

use crate::params::ImuParams;
use crate::sample::{Imu, Micros};

/// Load added by one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadStep {
    /// Vector load, AU.
    pub load: f64,
    /// Uniaxial loads (forward, side, up), AU.
    pub axis: [f64; 3],
    /// Grid steps accumulated.
    pub steps: u32,
}

/// Resampling state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccelLoad {
    period: Micros,
    max_gap: Micros,
    inv_scale: f64,
    last: Option<(Micros, [f64; 3])>,
    next_grid: Micros,
    prev_grid: Option<[f64; 3]>,
    /// Gaps (no interpolation across them).
    pub gaps: u64,
}

impl Default for AccelLoad {
    fn default() -> Self {
        AccelLoad::new(&ImuParams::default())
    }
}

fn ceil_to(t: Micros, period: Micros) -> Micros {
    t.div_euclid(period) * period + if t.rem_euclid(period) == 0 { 0 } else { period }
}

impl AccelLoad {
    /// A resampler for `p` (grid period and limits are fixed here, not per reading).
    pub fn new(p: &ImuParams) -> Self {
        AccelLoad {
            period: (1e6 / p.rate_hz).round().max(1.0) as Micros,
            max_gap: (p.max_gap_s * 1e6) as Micros,
            inv_scale: 1.0 / p.scale,
            last: None,
            next_grid: 0,
            prev_grid: None,
            gaps: 0,
        }
    }

    /// Feed one reading in time order.
    pub fn update(&mut self, t: Micros, r: &Imu) -> LoadStep {
        let cur = [f64::from(r.ax), f64::from(r.ay), f64::from(r.az)];
        let (period, max_gap) = (self.period, self.max_gap);
        let mut step = LoadStep::default();
        match self.last {
            Some((lt, lv)) if t - lt <= max_gap && t > lt => {
                let span = (t - lt) as f64;
                while self.next_grid <= t {
                    let w = (self.next_grid - lt) as f64 / span;
                    let g = [
                        lv[0] + (cur[0] - lv[0]) * w,
                        lv[1] + (cur[1] - lv[1]) * w,
                        lv[2] + (cur[2] - lv[2]) * w,
                    ];
                    if let Some(pg) = self.prev_grid {
                        let d = [g[0] - pg[0], g[1] - pg[1], g[2] - pg[2]];
                        step.load += (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                        step.axis[0] += d[0].abs();
                        step.axis[1] += d[1].abs();
                        step.axis[2] += d[2].abs();
                        step.steps += 1;
                    }
                    self.prev_grid = Some(g);
                    self.next_grid += period;
                }
            }
            Some((lt, _)) if t <= lt => return step,
            other => {
                if other.is_some() {
                    self.gaps += 1;
                }
                self.next_grid = ceil_to(t, period);
                self.prev_grid = None;
                if self.next_grid == t {
                    self.prev_grid = Some(cur);
                    self.next_grid += period;
                }
            }
        }
        self.last = Some((t, cur));
        step.load *= self.inv_scale;
        for a in &mut step.axis {
            *a *= self.inv_scale;
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: impl Iterator<Item = (Micros, [f32; 3])>) -> (f64, [f64; 3], u32) {
        let mut l = AccelLoad::new(&ImuParams::default());
        let mut tot = (0.0, [0.0; 3], 0);
        for (t, a) in samples {
            let s = l.update(
                t,
                &Imu {
                    ax: a[0],
                    ay: a[1],
                    az: a[2],
                },
            );
            tot.0 += s.load;
            for i in 0..3 {
                tot.1[i] += s.axis[i];
            }
            tot.2 += s.steps;
        }
        tot
    }

    #[test]
    fn a_constant_jerk_signal_gives_the_expected_load() {
        // az rises at 2 g/s for 10 s at 100 Hz: each step Δ = 0.02 g, 1000 steps.
        // Load = 1000 × 0.02 / 100 = 0.2 AU, all of it vertical.
        let (load, axis, steps) =
            run((0..=1000).map(|i| (i * 10_000, [0.0, 0.0, 1.0 + 0.02 * i as f32])));
        assert_eq!(steps, 1000);
        assert!((load - 0.2).abs() < 1e-5, "{load}");
        assert!((axis[2] - 0.2).abs() < 1e-5 && axis[0] == 0.0 && axis[1] == 0.0);
    }

    #[test]
    fn the_vector_load_is_the_euclidean_norm_of_the_axis_steps() {
        // Δ = (0.03, 0.04, 0) per step → 0.05 per step.
        let (load, axis, _) = run((0..=100).map(|i| {
            let k = i as f32;
            (i * 10_000, [0.03 * k, 0.04 * k, 1.0])
        }));
        assert!((load - 100.0 * 0.05 / 100.0).abs() < 1e-5, "{load}");
        assert!((axis[0] - 0.03).abs() < 1e-5 && (axis[1] - 0.04).abs() < 1e-5);
    }

    #[test]
    fn fifty_hertz_input_is_resampled_to_the_same_load_for_a_linear_signal() {
        let at100 = run((0..=1000).map(|i| (i * 10_000, [0.0, 0.0, 0.02 * i as f32]))).0;
        let at50 = run((0..=500).map(|i| (i * 20_000, [0.0, 0.0, 0.04 * i as f32]))).0;
        assert!((at100 - at50).abs() < 1e-5, "{at100} vs {at50}");
    }

    #[test]
    fn offset_timestamps_still_step_on_the_100_hz_grid() {
        let (_, _, steps) = run((0..=100).map(|i| (3_000 + i * 10_000, [0.0, 0.0, 1.0])));
        assert_eq!(steps, 99);
    }

    #[test]
    fn no_load_is_added_across_a_gap() {
        let before = (0..=100).map(|i| (i * 10_000, [0.0, 0.0, 1.0f32]));
        let after = (0..=100).map(|i| (5_000_000 + i * 10_000, [0.0, 0.0, 2.0f32]));
        let (load, _, _) = run(before.chain(after));
        assert_eq!(load, 0.0);
    }
}
