//! Heart-rate internal load: time in %HRmax zones and TRIMP.
//!
//! ```text
//! HRr            = (HR − HRrest) / (HRmax − HRrest), clamped to [0, 1]
//! Banister TRIMP = Σ D(min) · HRr · k · e^(c · HRr)   men k 0.64, c 1.92; women 0.86, 1.67
//! Edwards TRIMP  = Σ D(min) · w,   w = 1..5 for 50–60, 60–70, 70–80, 80–90, 90–100 % HRmax
//! ```
//!
//! (Banister 1975 via Morton 1990; Edwards 1993; zone schemes from Teixeira et al. 2021
//! IJERPH 18:3906 Table 2.) Each reading covers the interval since the previous reading, up
//! to `max_gap_s`; longer gaps count nothing.

use serde::{Deserialize, Serialize};

use crate::params::HrParams;
use crate::sample::{Micros, secs};

/// The athlete's heart-rate anchors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HrAnchors {
    /// Maximum heart rate, bpm.
    pub max: f64,
    /// Resting heart rate, bpm.
    pub rest: f64,
    /// Use the women's Banister coefficients.
    pub female: bool,
}

/// Heart-rate accumulators for a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HrTotals {
    /// Seconds in each zone (< b0, b0–b1, b1–b2, ≥ b2 of HRmax).
    pub zone_s: [f64; 4],
    /// Seconds at or above the high fraction of HRmax.
    pub high_s: f64,
    /// Edwards TRIMP, AU.
    pub trimp_edwards: f64,
    /// Banister TRIMP, AU.
    pub trimp_banister: f64,
    /// Most recent reading, bpm.
    pub current_bpm: Option<f64>,
    /// Highest reading, bpm.
    pub max_bpm: Option<f64>,
}

/// Heart-rate stream state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HrState {
    last_t: Option<Micros>,
    /// Totals so far.
    pub totals: HrTotals,
}

impl HrState {
    /// Feed one reading in time order.
    pub fn update(&mut self, p: &HrParams, anchors: &HrAnchors, t: Micros, bpm: f64) {
        let dt = match self.last_t {
            Some(lt) if secs(t - lt) <= p.max_gap_s => secs(t - lt),
            _ => 0.0,
        };
        self.last_t = Some(t);
        let tot = &mut self.totals;
        tot.current_bpm = Some(bpm);
        tot.max_bpm = Some(tot.max_bpm.map_or(bpm, |m| m.max(bpm)));
        if dt <= 0.0 {
            return;
        }
        let frac = bpm / anchors.max;
        let zone = p.zone_bounds.iter().filter(|&&b| frac >= b).count();
        tot.zone_s[zone] += dt;
        if frac >= p.high_fraction {
            tot.high_s += dt;
        }
        let minutes = dt / 60.0;
        let w = p.edwards_bounds.iter().filter(|&&b| frac >= b).count();
        tot.trimp_edwards += minutes * w as f64;
        // Heart-rate reserve needs HRmax above HRrest: anchors that are not (a profile typed
        // wrong) add no Banister TRIMP rather than NaN. `set_profile` refuses such anchors.
        let reserve = anchors.max - anchors.rest;
        if reserve > 0.0 {
            let hrr = ((bpm - anchors.rest) / reserve).clamp(0.0, 1.0);
            let [k, c] = if anchors.female {
                p.banister_female
            } else {
                p.banister_male
            };
            tot.trimp_banister += minutes * hrr * k * (c * hrr).exp();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_hrmax_and_hrrest_give_no_nan() {
        let t = run(
            150.0,
            10,
            HrAnchors {
                max: 180.0,
                rest: 180.0,
                female: false,
            },
        );
        assert!(
            t.trimp_banister.is_finite() && t.trimp_edwards.is_finite(),
            "{t:?}"
        );
        assert_eq!(t.trimp_banister, 0.0);
    }

    fn run(bpm: f64, minutes: i64, anchors: HrAnchors) -> HrTotals {
        let p = HrParams::default();
        let mut s = HrState::default();
        for i in 0..=minutes * 60 {
            s.update(&p, &anchors, i * 1_000_000, bpm);
        }
        s.totals
    }

    #[test]
    fn banister_matches_the_published_worked_example() {
        // 45 min at 150 bpm, rest 60, max 190, male → 75.4 (calculatorhub worked check).
        let t = run(
            150.0,
            45,
            HrAnchors {
                max: 190.0,
                rest: 60.0,
                female: false,
            },
        );
        assert!(
            (t.trimp_banister - 75.4).abs() < 0.1,
            "{}",
            t.trimp_banister
        );
    }

    #[test]
    fn edwards_weights_minutes_by_zone() {
        // 150/190 = 79 % HRmax → weight 3; 10 min → 30.
        let t = run(
            150.0,
            10,
            HrAnchors {
                max: 190.0,
                rest: 60.0,
                female: false,
            },
        );
        assert!((t.trimp_edwards - 30.0).abs() < 1e-9);
        // 79 % is in the lowest %HRmax zone (< 75 %)? No: 75–85 → zone 1.
        assert!((t.zone_s[1] - 600.0).abs() < 1e-9);
        assert_eq!(t.high_s, 0.0);
    }

    #[test]
    fn time_at_high_intensity_counts_readings_at_or_above_90_percent() {
        let t = run(
            180.0,
            2,
            HrAnchors {
                max: 190.0,
                rest: 60.0,
                female: true,
            },
        );
        assert!((t.high_s - 120.0).abs() < 1e-9);
        assert!((t.zone_s[3] - 120.0).abs() < 1e-9);
    }

    #[test]
    fn gaps_longer_than_the_limit_count_nothing() {
        let p = HrParams::default();
        let a = HrAnchors {
            max: 190.0,
            rest: 60.0,
            female: false,
        };
        let mut s = HrState::default();
        s.update(&p, &a, 0, 150.0);
        s.update(&p, &a, 60_000_000, 150.0);
        assert_eq!(s.totals.zone_s.iter().sum::<f64>(), 0.0);
        assert_eq!(s.totals.max_bpm, Some(150.0));
    }
}
