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
pub struct Susceptibility {
    /// Hamstring history.
    pub hamstring: HamstringHistory,
    /// Latest Nordic eccentric force, N (unknown when absent).
    pub nordic_n: Option<f64>,
    /// Biceps femoris long-head fascicle length, cm (unknown when absent).
    pub bflh_fascicle_cm: Option<f64>,
    /// Previous ACL injury.
    pub previous_acl: bool,
    /// Previous calf strain.
    pub previous_calf: bool,
    /// In the squad's oldest age tertile.
    pub older_age_band: bool,
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
}
