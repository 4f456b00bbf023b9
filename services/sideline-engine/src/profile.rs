//! What the engine knows about an athlete beyond the samples: the profile set by staff and the
//! load-history baseline computed from the archive.

use serde::{Deserialize, Serialize};

/// Hamstring-injury history as recorded by medical staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HamstringHistory {
    /// No previous hamstring strain injury.
    #[default]
    None,
    /// A previous injury, before the previous season.
    Previous,
    /// An injury in the current or previous season.
    Recent,
}

/// Sex, for the Banister TRIMP coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Men's coefficients (the default).
    #[default]
    Male,
    /// Women's coefficients.
    Female,
}

/// Susceptibility attributes (block A of the strain-risk score).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
///
/// Every field is optional: absent means "not recorded", which makes its score term unknown
/// (no points, and the score's completeness falls), never the same as a recorded "no".
pub struct Susceptibility {
    /// Hamstring history (`"none"` is a recorded "no previous injury").
    pub hamstring: Option<HamstringHistory>,
    /// Latest Nordic eccentric force, N.
    pub nordic_n: Option<f64>,
    /// Biceps femoris long-head fascicle length, cm.
    pub bflh_fascicle_cm: Option<f64>,
    /// Previous ACL injury.
    pub previous_acl: Option<bool>,
    /// Previous calf strain.
    pub previous_calf: Option<bool>,
    /// In the squad's oldest age tertile.
    pub older_age_band: Option<bool>,
}

impl Susceptibility {
    /// The history fields recorded as "no" (the two measurements still not taken).
    pub fn recorded_clear() -> Self {
        Self {
            hamstring: Some(HamstringHistory::None),
            previous_acl: Some(false),
            previous_calf: Some(false),
            older_age_band: Some(false),
            ..Self::default()
        }
    }
}

/// The athlete profile (pseudonymous id; names only where staff see them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AthleteProfile {
    /// Pseudonymous player id.
    pub player: String,
    /// Name shown to staff.
    pub display_name: Option<String>,
    /// Playing position.
    pub position: Option<String>,
    /// Squad (shirt) number, shown to staff.
    pub squad_number: Option<u32>,
    /// Reference maximal sprinting speed, m/s.
    pub vmax_mps: Option<f64>,
    /// Maximum heart rate, bpm.
    pub hr_max: Option<f64>,
    /// Resting heart rate, bpm.
    pub hr_rest: Option<f64>,
    /// Sex (TRIMP coefficients).
    pub sex: Sex,
    /// Susceptibility attributes.
    pub susceptibility: Susceptibility,
}

/// Plausible reference Vmax, m/s. Footballers' match peak speed is 31.4 ± 1.5 km/h
/// (8.7 ± 0.4 m/s; semi-professionals, `notes/domain.md` §1.2), and SciSports rejects speeds
/// above 36 km/h (10 m/s) as artefacts (same section); the bounds, 5 m/s (a jog) and 12.5 m/s
/// (above any human sprinter), are a judgement with wide margins. A value above the range is
/// most likely km/h (33 km/h = 9.2 m/s).
pub const VMAX_RANGE_MPS: std::ops::RangeInclusive<f64> = 5.0..=12.5;
/// Plausible maximum heart rate, bpm (judgement around the age-predicted 208 − 0.7 × age of
/// Tanaka et al. 2001, *J Am Coll Cardiol* 37:153, for ages 15–45, with wide margins).
pub const HR_MAX_RANGE: std::ops::RangeInclusive<f64> = 140.0..=230.0;
/// Plausible resting heart rate, bpm (trained athletes reach the 30s; judgement).
pub const HR_REST_RANGE: std::ops::RangeInclusive<f64> = 25.0..=110.0;
/// Plausible Nordic eccentric force, N per leg (Opar et al. 2015, *Med Sci Sports Exerc*
/// 47:857: 256 N the at-risk cut-off; elite players' means 300–400 N; judgement margins).
pub const NORDIC_RANGE_N: std::ops::RangeInclusive<f64> = 50.0..=1000.0;
/// Plausible biceps femoris long-head fascicle length, cm (Timmins et al. 2016, *Br J Sports
/// Med* 50:1524: 10.56 cm the at-risk cut-off, means about 10–12 cm; judgement margins).
pub const BFLH_RANGE_CM: std::ops::RangeInclusive<f64> = 4.0..=20.0;

impl AthleteProfile {
    /// What is out of range in this profile (empty: nothing), in words for the operator.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = self.vmax_mps
            && !VMAX_RANGE_MPS.contains(&v)
        {
            let hint = if v > *VMAX_RANGE_MPS.end() && v / 3.6 <= *VMAX_RANGE_MPS.end() {
                format!(" (km/h? {v} km/h is {:.2} m/s)", v / 3.6)
            } else {
                String::new()
            };
            out.push(format!(
                "vmax_mps {v} is not a sprinting speed in m/s ({}–{}){hint}",
                VMAX_RANGE_MPS.start(),
                VMAX_RANGE_MPS.end()
            ));
        }
        out.extend(self.hr_problems());
        let s = &self.susceptibility;
        for (what, v, range) in [
            ("nordic_n", s.nordic_n, &NORDIC_RANGE_N),
            ("bflh_fascicle_cm", s.bflh_fascicle_cm, &BFLH_RANGE_CM),
        ] {
            if let Some(v) = v
                && !range.contains(&v)
            {
                out.push(format!(
                    "susceptibility.{what} {v} is outside {}–{}",
                    range.start(),
                    range.end()
                ));
            }
        }
        out
    }

    /// The heart-rate anchors' problems: each in range, and HRmax above HRrest.
    pub fn hr_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, v, range) in [
            ("hr_max", self.hr_max, &HR_MAX_RANGE),
            ("hr_rest", self.hr_rest, &HR_REST_RANGE),
        ] {
            if let Some(v) = v
                && !range.contains(&v)
            {
                out.push(format!(
                    "{what} {v} bpm is outside {}–{}",
                    range.start(),
                    range.end()
                ));
            }
        }
        if let (Some(max), Some(rest)) = (self.hr_max, self.hr_rest)
            && max <= rest
        {
            out.push(format!("hr_max {max} bpm is not above hr_rest {rest} bpm"));
        }
        out
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;

    #[test]
    fn profiles_out_of_range_are_named_with_a_hint() {
        let ok = AthleteProfile {
            vmax_mps: Some(9.3),
            hr_max: Some(195.0),
            hr_rest: Some(48.0),
            ..Default::default()
        };
        assert!(ok.problems().is_empty());
        let kmh = AthleteProfile {
            vmax_mps: Some(33.5),
            ..ok.clone()
        };
        let p = kmh.problems();
        assert!(p[0].contains("km/h? 33.5 km/h is 9.31 m/s"), "{p:?}");
        let swapped = AthleteProfile {
            hr_max: Some(60.0),
            hr_rest: Some(190.0),
            ..ok.clone()
        };
        let p = swapped.problems();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[2].contains("not above"), "{p:?}");
        let mut weak = ok.clone();
        weak.susceptibility.nordic_n = Some(2.5);
        assert_eq!(weak.problems().len(), 1);
    }
}

/// Load history up to (not including) today, from the archive (issue: baselines). Every field is
/// optional: a missing value makes its score term *unknown*, shown as such, never silently 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Baseline {
    /// Days of history behind these figures.
    pub days_of_history: Option<u32>,
    /// Mean of the player's rolling 7-day HSR (≥ 5.5 m/s) sums, m.
    pub hsr_7d_mean_m: Option<f64>,
    /// Standard deviation of those sums, m.
    pub hsr_7d_sd_m: Option<f64>,
    /// HSR in the 6 days before today, m (today's session completes the 7-day sum).
    pub hsr_prev6d_m: Option<f64>,
    /// HSR in days −13..−7 (the previous 7-day period), m.
    pub hsr_prior7d_m: Option<f64>,
    /// Distance > 14.4 km/h in the 6 days before today, m.
    pub moderate_prev6d_m: Option<f64>,
    /// Distance > 14.4 km/h in days −13..−7, m.
    pub moderate_prior7d_m: Option<f64>,
    /// Distance > 24 km/h in the 6 days before today, m.
    pub v24_prev6d_m: Option<f64>,
    /// Whether any ≥ 95 % Vmax exposure happened in the 6 days before today.
    pub vmax95_in_prev6d: Option<bool>,
    /// 28-day chronic HSR in the bottom tertile of the player's own history.
    pub low_chronic_hsr: Option<bool>,
    /// The player's norm (mean) of rolling 1-min sprint distance, m.
    pub sprint_1min_norm_m: Option<f64>,
    /// The player's p90 of session HSR, m.
    pub session_hsr_p90_m: Option<f64>,
    /// The player's p90 of session sprint distance, m.
    pub session_sprint_p90_m: Option<f64>,
    /// Days since the last ≥ 90 % Vmax exposure before today (1 = yesterday); with none in
    /// the history, its length (a lower bound). Shown on dashboards; not a score term.
    pub days_since_vmax90: Option<u32>,
    /// Days since the last ≥ 95 % Vmax exposure before today, as above.
    pub days_since_vmax95: Option<u32>,
    /// The highest speed he held ≥ `exposure.max_speed_hold_s` (0.5 s) in any session of the
    /// history, m/s (only values in [`VMAX_RANGE_MPS`]): his Vmax when the profile has none.
    #[serde(default)]
    pub vmax_observed_mps: Option<f64>,
}
