//! What the engine emits: one [`PlayerMetrics`] per player per second of event time.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::fatigue::FatigueMarkers;
use crate::forecast::Forecast;
use crate::hr::HrTotals;
use crate::risk::RiskScore;
use crate::sample::Micros;

/// Signal state of a player's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Fixes arriving with good quality.
    Ok,
    /// Most fixes in the last second were poor (few satellites or high HDOP).
    PoorFix,
    /// No fix for longer than the idle timeout.
    NoSignal,
}

/// Session totals of one player.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// On-field minutes (time covered by position fixes, gaps excluded).
    pub minutes: f64,
    /// Distance, m (Σ v·Δt).
    pub distance_m: f64,
    /// Distance walking (< 2 m/s), m.
    pub walk_m: f64,
    /// Distance jogging (2–4 m/s), m.
    pub jog_m: f64,
    /// Distance running (4–5.5 m/s), m.
    pub run_m: f64,
    /// Distance ≥ 14.4 km/h, m.
    pub moderate_m: f64,
    /// HSR distance (≥ 5.5 m/s), m.
    pub hsr_m: f64,
    /// Distance ≥ 24 km/h, m.
    pub v24_m: f64,
    /// Sprint distance (≥ 7 m/s), m.
    pub sprint_m: f64,
    /// High metabolic load distance (v > 5.5 m/s or |a| ≥ 2 m/s²), m.
    pub hmld_m: f64,
    /// Maximum speed: the highest filtered speed held `exposure.max_speed_hold_s` (0.5 s),
    /// m/s — one fast sample is not a maximum.
    pub max_speed_mps: f64,
    /// Highest single filtered sample, m/s (what systems that report an instantaneous peak
    /// compare with; above `max_speed_mps` by a few per cent on short peaks).
    #[serde(default)]
    pub peak_speed_mps: f64,
    /// Sprint efforts.
    pub sprints: u32,
    /// Distance inside sprint efforts, m.
    pub sprint_effort_m: f64,
    /// High-speed efforts (≥ 5.5 m/s, ≥ 0.5 s).
    pub hs_efforts: u32,
    /// Repeated high-intensity bouts: ≥ 3 high-speed efforts of ≥ 1 s, each within 20 s of
    /// the last (`repeated`; Carling et al. 2012).
    #[serde(default)]
    pub rhi_bouts: u32,
    /// Efforts whose held peak reached 85 / 90 / 95 % of Vmax.
    pub vmax_exposures: [u32; 3],
    /// Vmax used for the exposures, m/s.
    pub vmax_ref_mps: f64,
    /// True when Vmax came from the defaults (no profile value, no history).
    pub vmax_is_default: bool,
    /// True when Vmax is the highest speed he held in his history (the profile has none).
    #[serde(default)]
    pub vmax_from_history: bool,
    /// Distance at ≥ 85 / 90 / 95 % of Vmax (`exposure.fractions`), m: the relative bands
    /// beside the absolute ones (Clemente et al. 2023: % of peak speed; `notes/domain.md` §1.2).
    #[serde(default)]
    pub vmax_band_m: [f64; 3],
    /// Minutes with fixes while off the pitch by the lineup (warm-up, the bench, after being
    /// substituted): counted here and in no other figure.
    #[serde(default)]
    pub off_pitch_min: f64,
    /// Distance covered off the pitch by the lineup, m (warm-up load, kept apart).
    #[serde(default)]
    pub off_pitch_m: f64,
    /// Accelerations ≥ 3 m/s² held 0.5 s.
    pub accelerations: u32,
    /// Decelerations ≤ −3 m/s² held 0.5 s.
    pub decelerations: u32,
    /// Accelerations in the 2–3 m/s² band.
    pub accelerations_moderate: u32,
    /// Decelerations in the −2 to −3 m/s² band.
    pub decelerations_moderate: u32,
    /// Accelerometer load (PlayerLoad-style), AU.
    pub load: f64,
    /// Uniaxial loads: forward, side, up, AU.
    pub load_axes: [f64; 3],
    /// Load per on-field minute, AU/min.
    pub load_per_min: Option<f64>,
    /// Load per metre, AU/m.
    pub load_per_m: Option<f64>,
    /// Vertical share of the uniaxial loads.
    pub vertical_share: Option<f64>,
    /// Heart rate.
    pub hr: HrTotals,
    /// True when HRmax/HRrest came from the defaults.
    pub hr_anchors_default: bool,
}

/// One rolling window: the current value and the session peak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowValues {
    /// Window length, s.
    pub length_s: u32,
    /// Distance in the window, m.
    pub distance_m: f64,
    /// HSR distance, m.
    pub hsr_m: f64,
    /// Sprint distance, m.
    pub sprint_m: f64,
    /// Accelerations + decelerations.
    pub accdec: u32,
    /// Accelerometer load, AU.
    pub load: f64,
    /// Session peak of each of the above ("worst-case scenario").
    pub peak_distance_m: f64,
    /// Peak HSR, m.
    pub peak_hsr_m: f64,
    /// Peak sprint, m.
    pub peak_sprint_m: f64,
    /// Peak accelerations + decelerations.
    pub peak_accdec: u32,
    /// Peak load, AU.
    pub peak_load: f64,
}

/// Input-quality counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Fixes rejected as speed/acceleration artefacts.
    pub artefacts: u64,
    /// Seconds of poor fixes.
    pub poor_fix_s: f64,
    /// Gaps longer than the limit (filters restarted).
    pub gaps: u64,
    /// Samples refused as late.
    pub late: u64,
    /// Samples refused as duplicates.
    pub duplicates: u64,
    /// Samples released early because a reorder buffer was full.
    pub forced_releases: u64,
}

/// Device status in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Signal state.
    pub signal: Signal,
    /// Seconds since the last position fix (at the snapshot's time).
    pub last_fix_age_s: Option<f64>,
}

/// One player's state at the end of one second of event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerMetrics {
    /// Pseudonymous player id.
    pub player: Arc<str>,
    /// Team id.
    pub team: Arc<str>,
    /// Session id.
    pub session: Arc<str>,
    /// End of the second this snapshot covers (exclusive), µs since the epoch.
    pub t: Micros,
    /// Parameter set that produced it ([`crate::Params::version_tag`]).
    pub params_version: Arc<str>,
    /// Device status.
    pub status: DeviceStatus,
    /// Session totals.
    pub totals: Totals,
    /// Rolling windows (1, 3, 5, 10 min by default).
    pub windows: Vec<WindowValues>,
    /// Fatigue markers.
    pub fatigue: FatigueMarkers,
    /// Strain-risk attention score with its terms.
    pub risk: RiskScore,
    /// Minutes to the next bands at the current rate.
    pub forecast: Forecast,
    /// Input quality.
    pub quality: Quality,
}

/// What the squad engine produces from one call: the snapshots of the seconds that closed, in
/// order, and the alert lifecycle events the alert rules raised on them. The rules run inside
/// the engine on every snapshot it emits, so no caller can forget them.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Per-second snapshots.
    pub metrics: Vec<PlayerMetrics>,
    /// Alert lifecycle events.
    pub alerts: Vec<crate::alerts::AlertEvent>,
}

impl Outputs {
    /// Nothing produced.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty() && self.alerts.is_empty()
    }

    /// Forget what was produced (keeping the buffers).
    pub fn clear(&mut self) {
        self.metrics.clear();
        self.alerts.clear();
    }
}
