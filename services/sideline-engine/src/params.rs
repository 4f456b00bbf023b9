//! The one versioned parameter set: every threshold the engine uses, with its default and source.
//!
//! Effort counts move a lot with filter and minimum-duration choices (Varley et al. 2017, IJSPP;
//! Delves et al. 2021, Sports Med Open), so every output records [`Params::version_tag`]: the
//! human version string plus a fingerprint of the exact values. A file need only name the
//! values it changes; everything else keeps the defaults below. Unknown keys are errors.

use serde::{Deserialize, Serialize};

/// Every threshold of the engine. Load with [`Params::from_toml`] or [`Params::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Human version of this set, e.g. `"default-2026.11"`. Bump it when you change values.
    pub version: String,
    /// Speed pre-processing and artefact rejection.
    pub speed: SpeedParams,
    /// Speed bands.
    pub zones: ZoneParams,
    /// Sprint efforts (≥ 7 m/s).
    pub sprint: EffortParams,
    /// High-speed efforts (≥ 5.5 m/s) whose sustained peak is graded against Vmax.
    pub high_speed: EffortParams,
    /// Max-velocity exposures.
    pub exposure: ExposureParams,
    /// Repeated high-intensity bouts.
    pub repeated: RepeatedParams,
    /// Accelerations and decelerations.
    pub accel: AccelParams,
    /// Accelerometer load.
    pub imu: ImuParams,
    /// Heart rate.
    pub hr: HrParams,
    /// Rolling windows.
    pub windows: WindowParams,
    /// In-session fatigue markers.
    pub fatigue: FatigueParams,
    /// The strain-risk attention score.
    pub risk: RiskParams,
    /// Load history: trends and the score's baseline ([`crate::history`]).
    pub history: HistoryParams,
    /// Event-time handling: lateness, buffers, idle detection.
    pub stream: StreamParams,
    /// Alert rules: pending periods, hysteresis, cooldowns.
    pub alerts: AlertParams,
}

/// Speed filtering. Defaults follow `notes/domain.md` §9.1: prefer device Doppler speed,
/// short median + exponential smoothing, a = Δv over 0.2 s (Varley 2017), reject v > 10 m/s
/// or |a| > 9 m/s² (SciSports rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeedParams {
    /// Use the device's own speed when a sample carries it.
    pub prefer_device_speed: bool,
    /// Speed from positions = displacement over this span, s (a causal moving average of
    /// velocity; 0.3 s ≈ the 7-sample Savitzky–Golay window of the reference at 25 Hz).
    pub derive_window_s: f64,
    /// Median filter length, samples (1 disables).
    pub median_samples: usize,
    /// Exponential smoothing time constant, s (0 disables). Default 0.1 s (α 0.63 at 10 Hz,
    /// 0.39 at 20 Hz). Measured on the ZXY excerpt against the independent reference: 0.1 s
    /// keeps peak speed within 0.6 % and sprint counts exact; 0.2 s lowers short peaks by up
    /// to 6 % and 0.28 s (α 0.3 at 10 Hz, a common suggestion) by up to 11 % and loses a
    /// sprint. Device speed is already filtered on the device; the median removes single
    /// spikes.
    pub ema_tau_s: f64,
    /// Acceleration = Δ filtered speed over this interval, s.
    pub accel_interval_s: f64,
    /// Speeds above this are artefacts, m/s (36 km/h).
    pub max_speed_mps: f64,
    /// Sample-to-sample speed changes implying more than this are artefacts, m/s².
    pub max_accel_mps2: f64,
    /// No distance is integrated across a gap longer than this, s; filters restart after it.
    /// Default 3 s: raw GNSS loses about one fix in seven, in runs, and a run of more than 10
    /// fixes is common enough that a 1-s limit dropped 2 % of the distance on the simulated
    /// raw recording (`tests/raw_gnss.rs`); the speed at the fix after a gap is the straight
    /// line across it, a lower bound. (A judgement, measured there.)
    pub max_gap_s: f64,
    /// An effort under way ends once no fix has come for this long, s, in a live session as
    /// in a finished one (the processor closes a silent player's seconds soon after his last
    /// fix). Shorter than `max_gap_s`: an effort does not bridge a second of missing fixes,
    /// while distance bridges up to `max_gap_s`.
    pub effort_gap_s: f64,
    /// Position-only streams (no device speed): a player whose displacement over the last
    /// `stationary_window_s` is slower than `stationary_mps` stands still, and his speed is 0
    /// (the zero-velocity detection of pedestrian navigation): GNSS error then moves the fix
    /// by centimetres per tenth of a second in random directions, which a short derive window
    /// turns into a walking speed that never was. Window, s (0 disables the gate).
    pub stationary_window_s: f64,
    /// Below this speed over the stationary window he stands, m/s (a judgement: above the
    /// error's drift over 2 s, below any real walk; 0.1–0.2 measured in `tests/raw_gnss.rs`).
    pub stationary_mps: f64,
    /// While he stands, the derived speeds are pure position noise: their mean square, an
    /// exponential average with this time constant (s), is subtracted from each moving
    /// speed's square (E|v + n|² = |v|² + E|n|², so the noise no longer adds distance at a
    /// walk). 0 disables. 120 s: a shorter average is itself noisy and over-subtracts at a
    /// goalkeeper's shuffle (30 s: −2.7 %, 120 s: −1.6 % on the simulated raw match).
    pub noise_tau_s: f64,
    /// After this many consecutive rejected samples the filter restarts from the next one.
    pub max_consecutive_rejects: u32,
    /// A fix with HDOP above this is poor (flagged, excluded from effort detection).
    pub poor_fix_hdop: f64,
    /// A fix with fewer satellites than this is poor.
    pub poor_fix_min_satellites: u8,
}

/// Speed bands in m/s. HSR 5.5 (19.8 km/h) and sprint 7.0 (25.2 km/h) are the football
/// conventions (STATSports glossary; Gregson 2020); 6.67 m/s = 24 km/h is the hamstring
/// literature's band (Ruddy 2018); 4.0 m/s = 14.4 km/h is Malone 2018's "HSR".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneParams {
    /// Upper bound of walking.
    pub walk_max_mps: f64,
    /// Upper bound of jogging.
    pub jog_max_mps: f64,
    /// Moderate-speed running (14.4 km/h), used by the 7-day change term.
    pub moderate_mps: f64,
    /// High-speed running threshold.
    pub hsr_mps: f64,
    /// The > 24 km/h band.
    pub v24_mps: f64,
    /// Sprint threshold.
    pub sprint_mps: f64,
    /// HMLD counts distance while |a| is at least this, m/s² (or v > `hsr_mps`).
    pub hmld_accel_mps2: f64,
}

/// An effort ("event") detector: entry after `entry_samples` consecutive samples at or above
/// `threshold`, valid once sustained `min_duration_s`, dips below of at most `merge_gap_s`
/// merged (STATSports sprint rule; OHCOACH tolerance time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EffortParams {
    /// Threshold (m/s for speed efforts).
    pub threshold: f64,
    /// Consecutive samples at or above the threshold before an effort starts.
    pub entry_samples: u32,
    /// Minimum effort duration, s.
    pub min_duration_s: f64,
    /// Dips below the threshold no longer than this are merged into the effort, s.
    pub merge_gap_s: f64,
}

/// Repeated high-intensity bouts: at least `min_efforts` high-speed efforts (at or above
/// `high_speed.threshold`, 5.5 m/s = 19.8 km/h) of at least `min_effort_s`, each starting
/// within `max_recovery_s` of the previous one's end. Carling, Le Gall and Dupont 2012
/// (J Sports Sci 30:325, doi 10.1080/02640414.2011.652655): ≥ 3 efforts > 19.8 km/h of ≥ 1 s
/// with a mean recovery ≤ 20 s; 1.1 ± 1.1 bouts per player per match in French Ligue 1, full
/// backs the most. Here every recovery must be ≤ 20 s (the stricter reading: a mean lets one
/// long pause hide between short ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepeatedParams {
    /// Efforts in a bout.
    pub min_efforts: u32,
    /// Shortest effort that counts, s.
    pub min_effort_s: f64,
    /// Longest recovery between efforts of a bout, s.
    pub max_recovery_s: f64,
}

impl Default for RepeatedParams {
    fn default() -> Self {
        RepeatedParams {
            min_efforts: 3,
            min_effort_s: 1.0,
            max_recovery_s: 20.0,
        }
    }
}

/// Max-velocity exposures: high-speed efforts whose peak held for `peak_hold_s` reaches a
/// fraction of the player's reference max speed (Malone 2017; Buchheit 2022; Shah 2022).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExposureParams {
    /// Fractions of Vmax, ascending.
    pub fractions: [f64; 3],
    /// The peak of an effort is the highest speed held this long, s.
    pub peak_hold_s: f64,
    /// Vmax used when the athlete profile has none, m/s (flagged in the output).
    pub default_vmax_mps: f64,
    /// A maximum speed is a speed held this long, s (SciSports accepts a maximum only when
    /// sustained, `notes/domain.md` §1.2; 0.5 s matches the effort peaks' hold).
    pub max_speed_hold_s: f64,
}

/// Accelerations and decelerations: ±3 m/s² held 0.5 s (STATSports), with the 2–3 m/s² band
/// counted separately (Akenhead 2013; PlayerData).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccelParams {
    /// High threshold, m/s².
    pub high_mps2: f64,
    /// Moderate band lower bound, m/s².
    pub moderate_mps2: f64,
    /// Consecutive samples beyond the threshold before an effort starts.
    pub entry_samples: u32,
    /// Minimum duration, s.
    pub min_duration_s: f64,
    /// Dips merged, s.
    pub merge_gap_s: f64,
}

/// Accelerometer load (PlayerLoad-style): Σ √(Δax² + Δay² + Δaz²) / 100 on a 100 Hz grid, in g.
/// Not numerically comparable with any vendor's proprietary value (Nicolella 2018).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImuParams {
    /// Readings are resampled to this rate by linear interpolation, Hz.
    pub rate_hz: f64,
    /// Scaling divisor of the load formula.
    pub scale: f64,
    /// No interpolation across a gap longer than this, s.
    pub max_gap_s: f64,
}

/// Heart-rate zones and TRIMP (Teixeira 2021 Table 2; Banister 1975; Edwards 1993).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HrParams {
    /// Zone bounds as fractions of HRmax: zones are < b0, b0–b1, b1–b2, ≥ b2.
    pub zone_bounds: [f64; 3],
    /// Edwards zones start at these fractions of HRmax, weights 1..5.
    pub edwards_bounds: [f64; 5],
    /// Banister weighting for men: k·e^(c·HRr).
    pub banister_male: [f64; 2],
    /// Banister weighting for women.
    pub banister_female: [f64; 2],
    /// "Time at high intensity" counts readings at or above this fraction of HRmax.
    pub high_fraction: f64,
    /// A reading covers the interval since the previous one, up to this long, s.
    pub max_gap_s: f64,
    /// HRmax when the profile has none (flagged).
    pub default_hr_max: f64,
    /// HRrest when the profile has none (flagged).
    pub default_hr_rest: f64,
}

/// Rolling windows with a 1 s hop (Varley 2012; Fereday 2020: rolling, not fixed, epochs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowParams {
    /// Window lengths, s, ascending, each ≤ 1800.
    pub lengths_s: Vec<u32>,
}

/// Within-session fatigue markers (Mohr 2003; Bradley & Noakes 2013; Barrett 2016; Cormack 2013).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FatigueParams {
    /// Block length for block-vs-first-block comparisons, s of on-field time.
    pub block_s: u32,
    /// Window for the peak and post-peak HSR comparison, s.
    pub peak_window_s: u32,
    /// Recent window for load-per-metre and vertical share, s.
    pub nm_window_s: u32,
    /// Load-per-metre and vertical share need at least this distance in the window, m.
    pub nm_min_distance_m: f64,
    /// The post-peak decrement compares with the session average, which means nothing in the
    /// first minutes: it is only evaluated after this much on-field time, s.
    pub post_peak_min_on_field_s: u32,
}

/// Load history ([`crate::history`]): how much history each statistic needs before it is
/// given (withheld as unknown until then) and the EWMA spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryParams {
    /// Acute EWMA span N, days (λ = 2 / (N + 1); Williams et al. 2017: 7).
    pub ewma_acute_days: u32,
    /// Chronic EWMA span N, days (Williams et al. 2017: 28).
    pub ewma_chronic_days: u32,
    /// Days of history before the (contested) load ratios are given (a chronic span: 28).
    pub ratio_min_days: u32,
    /// Earlier 7-day sums needed for the 7-day HSR z-score (judgement: 14, two weeks of sums).
    pub z_min_sums: u32,
    /// Days of history before "low chronic HSR" (his lowest third of 28-day sums) is judged
    /// (judgement: 56, two chronic spans).
    pub low_chronic_min_days: u32,
    /// Sessions needed for his 1-minute sprint norm (judgement: 3).
    pub sprint_norm_min_sessions: u32,
    /// Sessions needed for the p90 of his session HSR and sprint distance (judgement: 5).
    pub p90_min_sessions: u32,
}

impl Default for HistoryParams {
    fn default() -> Self {
        HistoryParams {
            ewma_acute_days: 7,
            ewma_chronic_days: 28,
            ratio_min_days: 28,
            z_min_sums: 14,
            low_chronic_min_days: 56,
            sprint_norm_min_sessions: 3,
            p90_min_sessions: 5,
        }
    }
}

/// The strain-risk attention score: points per term (nine ≈ ln of a published effect size,
/// seven judgements: [`crate::evidence`]), with caps per block (`notes/domain.md` §10). Ranks players for attention; not an injury probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskParams {
    /// Amber band starts here.
    pub amber: f64,
    /// Red band starts here.
    pub red: f64,
    /// Any previous hamstring injury (Green 2020, RR 2.7).
    pub prev_hsi: f64,
    /// Hamstring injury within the current or previous season (Green 2020, RR 4.8).
    pub recent_hsi: f64,
    /// Nordic eccentric force below `nordic_threshold_n` (Timmins 2016, RR 4.4).
    pub nordic_low: f64,
    /// Nordic threshold, N.
    pub nordic_threshold_n: f64,
    /// Short biceps femoris long-head fascicles (Timmins 2016, RR 4.1).
    pub short_fascicles: f64,
    /// Fascicle threshold, cm.
    pub fascicle_threshold_cm: f64,
    /// Previous ACL injury (Green 2020, RR 1.7).
    pub prev_acl: f64,
    /// Previous calf strain (Green 2020, RR 1.5).
    pub prev_calf: f64,
    /// Older age band (Green 2020, SMD 1.6).
    pub older_age: f64,
    /// Block B cap.
    pub cap_b: f64,
    /// 7-day HSR z ≥ 1 (Duhig 2016).
    pub hsr_z1: f64,
    /// 7-day HSR z ≥ 2 (Duhig 2016, OR 6.44).
    pub hsr_z2: f64,
    /// 7-day rise of distance > 19.8 km/h of at least `rise_hsr_m` (Malone 2018, OR 6.12).
    pub rise_hsr: f64,
    /// Rise threshold, m.
    pub rise_hsr_m: f64,
    /// 7-day rise of distance > 14.4 km/h of at least `rise_moderate_m` (Malone 2018, OR 3.02).
    pub rise_moderate: f64,
    /// Rise threshold, m.
    pub rise_moderate_m: f64,
    /// 7-day distance > 24 km/h above `v24_7d_m` (Ruddy 2018, RR 3.4).
    pub v24_week: f64,
    /// Threshold, m.
    pub v24_7d_m: f64,
    /// Block C cap.
    pub cap_c: f64,
    /// No ≥ 95 % Vmax exposure in 7 days (Malone 2017).
    pub no_vmax_exposure: f64,
    /// Low chronic HSR (bottom tertile of own history).
    pub low_chronic: f64,
    /// Block D cap.
    pub cap_d: f64,
    /// Points per `sprint_burst_step_m` of 60-s sprint distance above the player's norm
    /// (Gregson 2020: +11 m → OR 1.22).
    pub sprint_burst_per_step: f64,
    /// Step, m.
    pub sprint_burst_step_m: f64,
    /// Cap of the sprint-burst term.
    pub sprint_burst_cap: f64,
    /// 1-min sprint norm when the baseline has none, m.
    pub default_sprint_1min_norm_m: f64,
    /// Session HSR or sprint above the player's p90.
    pub volume_exceeded: f64,
    /// Post-peak decrement worse than `post_peak_threshold`, or last block HSR decline worse
    /// than `block_decline_threshold`.
    pub fatigue_flag: f64,
    /// Post-peak decrement threshold (fraction, e.g. −0.20).
    pub post_peak_threshold: f64,
    /// Block HSR decline threshold (fraction, e.g. −0.45).
    pub block_decline_threshold: f64,
    /// Load-per-metre rise above `lpm_rise` or vertical-share fall beyond `vshare_fall`.
    pub nm_flag: f64,
    /// Load-per-metre rise threshold (fraction).
    pub lpm_rise: f64,
    /// Vertical-share fall threshold (fraction, negative).
    pub vshare_fall: f64,
    /// At least `decel_cluster_count` decelerations ≤ −3 m/s² in 60 s.
    pub decel_cluster: f64,
    /// Count threshold.
    pub decel_cluster_count: u32,
    /// Forecast horizon, min.
    pub forecast_horizon_min: f64,
    /// Rates for the forecast are measured over this trailing window, s.
    pub forecast_trend_s: u32,
    /// And over this longer one, s: the other end of the forecast's range (judgement: 10 min).
    pub forecast_trend_long_s: u32,
    /// No forecast before this much on-field time, s (issue 28: a sprint in the first minute
    /// is no rate to project; 5 min is a judgement). Before it, a band already reached still
    /// reads 0 min.
    pub forecast_min_on_field_s: u32,
}

/// Alert rules (Grafana's pending period, Kapacitor's reset thresholds, a cooldown after each
/// episode; `notes/streaming.md` §2d). Times are seconds of event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertParams {
    /// Strain risk: the band must hold this long before the alert fires.
    pub risk_pending_s: u32,
    /// …or only this long when the band is carried by terms that cannot fall back within the
    /// session (the score without the transient terms — last-minute sprint burst and
    /// deceleration cluster, fatigue markers — is in the band): the pending period guards
    /// against flapping, and cumulative loads do not flap.
    pub risk_sustained_pending_s: u32,
    /// Strain risk clears below amber minus this margin (hysteresis), points.
    pub risk_clear_margin: f64,
    /// …held this long.
    pub risk_clear_s: u32,
    /// No new strain-risk episode this soon after one resolved.
    pub risk_cooldown_s: u32,
    /// Rising: red forecast within this many minutes.
    pub rising_lead_min: f64,
    /// Rising: the forecast must hold this long.
    pub rising_pending_s: u32,
    /// Rising clears when red is no longer forecast within the lead plus this margin, minutes.
    pub rising_clear_margin_min: f64,
    /// …held this long.
    pub rising_clear_s: u32,
    /// Rising cooldown.
    pub rising_cooldown_s: u32,
    /// Sprint spike: 60-s sprint distance this far above the player's norm, m.
    pub sprint_excess_m: f64,
    /// Sprint spike only while the score is in this band or worse ("green" = always): for
    /// hamstring attention a burst matters most in a player already at risk.
    pub sprint_min_band: crate::risk::Band,
    /// Sprint spike clears below the norm plus this, m.
    pub sprint_clear_excess_m: f64,
    /// Sprint spike: held this long before clearing.
    pub sprint_clear_s: u32,
    /// Sprint spike cooldown.
    pub sprint_cooldown_s: u32,
    /// Fatigue alert: an HSR-output decline (post-peak decrement or block decline) *and* a
    /// neuromuscular marker (load per metre up or vertical share down) held this long. One
    /// marker alone is common and stays a score term (descriptive markers need corroboration).
    pub fatigue_pending_s: u32,
    /// Fatigue clears after this long without a flag.
    pub fatigue_clear_s: u32,
    /// Fatigue cooldown.
    pub fatigue_cooldown_s: u32,
    /// Device: no signal or poor fixes for this long.
    pub device_pending_s: u32,
    /// Device: good signal for this long clears.
    pub device_clear_s: u32,
    /// Device cooldown.
    pub device_cooldown_s: u32,
}

impl Default for AlertParams {
    fn default() -> Self {
        AlertParams {
            risk_pending_s: 120,
            risk_sustained_pending_s: 15,
            risk_clear_margin: 0.5,
            risk_clear_s: 180,
            risk_cooldown_s: 900,
            rising_lead_min: 10.0,
            rising_pending_s: 30,
            rising_clear_margin_min: 5.0,
            rising_clear_s: 180,
            rising_cooldown_s: 1800,
            sprint_excess_m: 33.0,
            sprint_min_band: crate::risk::Band::Amber,
            sprint_clear_excess_m: 11.0,
            sprint_clear_s: 60,
            sprint_cooldown_s: 1800,
            fatigue_pending_s: 120,
            fatigue_clear_s: 600,
            fatigue_cooldown_s: 3600,
            device_pending_s: 30,
            device_clear_s: 20,
            device_cooldown_s: 600,
        }
    }
}

/// Event-time handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamParams {
    /// Samples up to this much older than the newest seen are re-ordered; older ones are late, s.
    pub allowed_lateness_s: f64,
    /// Cap of each per-stream reorder buffer; beyond it the oldest sample is released early.
    pub max_buffered_samples: usize,
    /// A player with no position fix for this long is "no signal", s.
    pub idle_timeout_s: f64,
    /// Snapshots keep coming for this long after "no signal" (so views see the status), s.
    pub report_idle_for_s: f64,
    /// How many recent sequence numbers per device are remembered for de-duplication.
    pub dedup_window: u32,
    /// A sample more than this far ahead of the player's own clock is held until the next
    /// batches confirm or refute the jump ([`crate::jump`]), s (0 = off).
    pub max_jump_s: f64,
    /// Batches that confirm a jump (far-ahead samples again) or refute it (near ones only).
    pub jump_confirm_batches: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            version: "default-2026.12.2".to_string(),
            speed: SpeedParams::default(),
            zones: ZoneParams::default(),
            sprint: EffortParams {
                threshold: 7.0,
                entry_samples: 2,
                min_duration_s: 1.0,
                merge_gap_s: 0.5,
            },
            high_speed: EffortParams {
                threshold: 5.5,
                entry_samples: 2,
                min_duration_s: 0.5,
                merge_gap_s: 0.5,
            },
            exposure: ExposureParams::default(),
            repeated: RepeatedParams::default(),
            accel: AccelParams::default(),
            imu: ImuParams::default(),
            hr: HrParams::default(),
            windows: WindowParams::default(),
            fatigue: FatigueParams::default(),
            risk: RiskParams::default(),
            history: HistoryParams::default(),
            stream: StreamParams::default(),
            alerts: AlertParams::default(),
        }
    }
}

impl Default for SpeedParams {
    fn default() -> Self {
        SpeedParams {
            prefer_device_speed: true,
            derive_window_s: 0.3,
            median_samples: 3,
            ema_tau_s: 0.1,
            accel_interval_s: 0.2,
            max_speed_mps: 10.0,
            max_accel_mps2: 9.0,
            max_gap_s: 3.0,
            effort_gap_s: 1.0,
            stationary_window_s: 2.0,
            stationary_mps: 0.15,
            noise_tau_s: 120.0,
            max_consecutive_rejects: 10,
            poor_fix_hdop: 5.0,
            poor_fix_min_satellites: 4,
        }
    }
}

impl Default for ZoneParams {
    fn default() -> Self {
        ZoneParams {
            walk_max_mps: 2.0,
            jog_max_mps: 4.0,
            moderate_mps: 4.0,
            hsr_mps: 5.5,
            v24_mps: 24.0 / 3.6,
            sprint_mps: 7.0,
            hmld_accel_mps2: 2.0,
        }
    }
}

impl Default for EffortParams {
    fn default() -> Self {
        Params::default().sprint
    }
}

impl Default for ExposureParams {
    fn default() -> Self {
        ExposureParams {
            fractions: [0.85, 0.90, 0.95],
            peak_hold_s: 0.5,
            default_vmax_mps: 9.0,
            max_speed_hold_s: 0.5,
        }
    }
}

impl Default for AccelParams {
    fn default() -> Self {
        AccelParams {
            high_mps2: 3.0,
            moderate_mps2: 2.0,
            entry_samples: 2,
            min_duration_s: 0.5,
            merge_gap_s: 0.0,
        }
    }
}

impl Default for ImuParams {
    fn default() -> Self {
        ImuParams {
            rate_hz: 100.0,
            scale: 100.0,
            max_gap_s: 0.1,
        }
    }
}

impl Default for HrParams {
    fn default() -> Self {
        HrParams {
            zone_bounds: [0.75, 0.85, 0.90],
            edwards_bounds: [0.5, 0.6, 0.7, 0.8, 0.9],
            banister_male: [0.64, 1.92],
            banister_female: [0.86, 1.67],
            high_fraction: 0.90,
            max_gap_s: 5.0,
            default_hr_max: 195.0,
            default_hr_rest: 55.0,
        }
    }
}

impl Default for WindowParams {
    fn default() -> Self {
        WindowParams {
            lengths_s: vec![60, 180, 300, 600],
        }
    }
}

impl Default for FatigueParams {
    fn default() -> Self {
        FatigueParams {
            block_s: 900,
            peak_window_s: 300,
            nm_window_s: 300,
            nm_min_distance_m: 300.0,
            post_peak_min_on_field_s: 1200,
        }
    }
}

impl Default for RiskParams {
    fn default() -> Self {
        RiskParams {
            amber: 3.0,
            red: 5.0,
            prev_hsi: 1.0,
            recent_hsi: 1.6,
            nordic_low: 1.5,
            nordic_threshold_n: 337.0,
            short_fascicles: 1.4,
            fascicle_threshold_cm: 10.56,
            prev_acl: 0.5,
            prev_calf: 0.4,
            older_age: 0.5,
            cap_b: 3.0,
            hsr_z1: 1.0,
            hsr_z2: 1.9,
            rise_hsr: 1.8,
            rise_hsr_m: 75.0,
            rise_moderate: 1.1,
            rise_moderate_m: 350.0,
            v24_week: 1.2,
            v24_7d_m: 653.0,
            cap_c: 1.5,
            no_vmax_exposure: 1.0,
            low_chronic: 0.5,
            cap_d: 2.0,
            sprint_burst_per_step: 0.2,
            sprint_burst_step_m: 11.0,
            sprint_burst_cap: 1.0,
            default_sprint_1min_norm_m: 5.0,
            volume_exceeded: 0.5,
            fatigue_flag: 0.5,
            post_peak_threshold: -0.20,
            block_decline_threshold: -0.45,
            nm_flag: 0.5,
            lpm_rise: 0.10,
            vshare_fall: -0.05,
            decel_cluster: 0.3,
            decel_cluster_count: 3,
            forecast_horizon_min: 30.0,
            forecast_trend_s: 300,
            forecast_trend_long_s: 600,
            forecast_min_on_field_s: 300,
        }
    }
}

impl Default for StreamParams {
    fn default() -> Self {
        StreamParams {
            allowed_lateness_s: 2.0,
            max_buffered_samples: 4096,
            idle_timeout_s: 10.0,
            report_idle_for_s: 60.0,
            dedup_window: 4096,
            max_jump_s: 60.0,
            jump_confirm_batches: 3,
        }
    }
}

/// A parameter set that cannot be used; every problem is listed at once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    /// The file does not parse (syntax, unknown key, wrong type).
    #[error("parameter file does not parse: {0}")]
    Parse(String),
    /// Values parse but are inconsistent.
    #[error("invalid parameters: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Params {
    /// Parse TOML (any subset of keys; the rest default) and validate.
    pub fn from_toml(text: &str) -> Result<Self, ParamsError> {
        let p: Params = toml::from_str(text).map_err(|e| ParamsError::Parse(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Parse JSON (any subset of keys) and validate.
    pub fn from_json(text: &str) -> Result<Self, ParamsError> {
        let p: Params =
            serde_json::from_str(text).map_err(|e| ParamsError::Parse(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Check consistency; returns every problem found.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let mut errs = Vec::new();
        let mut pos = |name: &str, v: f64| {
            if !(v.is_finite() && v > 0.0) {
                errs.push(format!("{name} must be a positive number (got {v})"));
            }
        };
        pos("speed.derive_window_s", self.speed.derive_window_s);
        pos("speed.accel_interval_s", self.speed.accel_interval_s);
        pos("speed.max_speed_mps", self.speed.max_speed_mps);
        pos("speed.max_accel_mps2", self.speed.max_accel_mps2);
        pos("speed.max_gap_s", self.speed.max_gap_s);
        pos("speed.effort_gap_s", self.speed.effort_gap_s);
        pos("repeated.min_effort_s", self.repeated.min_effort_s);
        pos("repeated.max_recovery_s", self.repeated.max_recovery_s);
        pos("zones.hsr_mps", self.zones.hsr_mps);
        pos("zones.sprint_mps", self.zones.sprint_mps);
        pos("sprint.threshold", self.sprint.threshold);
        pos("high_speed.threshold", self.high_speed.threshold);
        pos("accel.high_mps2", self.accel.high_mps2);
        pos("accel.moderate_mps2", self.accel.moderate_mps2);
        pos("imu.rate_hz", self.imu.rate_hz);
        pos("imu.scale", self.imu.scale);
        pos("exposure.default_vmax_mps", self.exposure.default_vmax_mps);
        pos("stream.allowed_lateness_s", self.stream.allowed_lateness_s);
        pos("stream.idle_timeout_s", self.stream.idle_timeout_s);
        for (name, v) in [
            ("speed.ema_tau_s", self.speed.ema_tau_s),
            ("speed.stationary_window_s", self.speed.stationary_window_s),
            ("speed.stationary_mps", self.speed.stationary_mps),
            ("speed.noise_tau_s", self.speed.noise_tau_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errs.push(format!("{name} must be ≥ 0 (got {v})"));
            }
        }
        if self.speed.median_samples == 0 || self.speed.median_samples > 15 {
            errs.push("speed.median_samples must be 1..=15".into());
        }
        let z = &self.zones;
        if !(z.walk_max_mps < z.jog_max_mps
            && z.jog_max_mps <= z.hsr_mps
            && z.hsr_mps < z.sprint_mps)
        {
            errs.push("zones must satisfy walk_max < jog_max ≤ hsr < sprint".into());
        }
        if self.accel.moderate_mps2 >= self.accel.high_mps2 {
            errs.push("accel.moderate_mps2 must be below accel.high_mps2".into());
        }
        let f = self.exposure.fractions;
        if !(f[0] > 0.0 && f[0] < f[1] && f[1] < f[2] && f[2] <= 1.5) {
            errs.push("exposure.fractions must be ascending and in (0, 1.5]".into());
        }
        let w = &self.windows.lengths_s;
        if w.is_empty() || w.len() > 8 {
            errs.push("windows.lengths_s must list 1 to 8 windows".into());
        }
        if w.windows(2).any(|p| p[0] >= p[1]) || w.iter().any(|&l| l == 0 || l > 1800) {
            errs.push("windows.lengths_s must be ascending, each 1..=1800 s".into());
        }
        let fat = &self.fatigue;
        if fat.block_s < 60 || fat.peak_window_s == 0 || fat.nm_window_s == 0 {
            errs.push("fatigue windows must be positive (block_s ≥ 60)".into());
        }
        if fat.peak_window_s > 900 || fat.nm_window_s > 1800 {
            errs.push("fatigue.peak_window_s ≤ 900 and fatigue.nm_window_s ≤ 1800".into());
        }
        let hb = self.hr.zone_bounds;
        if !(hb[0] < hb[1] && hb[1] < hb[2]) {
            errs.push("hr.zone_bounds must be ascending".into());
        }
        let h = &self.history;
        if h.ewma_acute_days == 0 || h.ewma_acute_days >= h.ewma_chronic_days {
            errs.push("history.ewma_acute_days must be ≥ 1 and below ewma_chronic_days".into());
        }
        if h.low_chronic_min_days < 29 {
            errs.push("history.low_chronic_min_days must be ≥ 29 (one 28-day sum and more)".into());
        }
        if h.p90_min_sessions == 0 || h.sprint_norm_min_sessions == 0 || h.z_min_sums < 2 {
            errs.push(
                "history: p90_min_sessions and sprint_norm_min_sessions ≥ 1, z_min_sums ≥ 2".into(),
            );
        }
        if self.risk.amber >= self.risk.red {
            errs.push("risk.amber must be below risk.red".into());
        }
        if self.risk.forecast_trend_s < 30 || self.risk.forecast_trend_s > 1800 {
            errs.push("risk.forecast_trend_s must be 30..=1800".into());
        }
        if self.risk.forecast_trend_long_s < self.risk.forecast_trend_s
            || self.risk.forecast_trend_long_s > 1800
        {
            errs.push("risk.forecast_trend_long_s must be forecast_trend_s..=1800".into());
        }
        if self.stream.max_buffered_samples < 16 {
            errs.push("stream.max_buffered_samples must be ≥ 16".into());
        }
        if !(self.stream.max_jump_s.is_finite() && self.stream.max_jump_s >= 0.0) {
            errs.push("stream.max_jump_s must be ≥ 0 (0 = off)".into());
        } else if self.stream.max_jump_s > 0.0
            && self.stream.max_jump_s <= self.stream.allowed_lateness_s
        {
            errs.push("stream.max_jump_s must exceed stream.allowed_lateness_s".into());
        }
        if !(1..=100).contains(&self.stream.jump_confirm_batches) {
            errs.push("stream.jump_confirm_batches must be 1..=100".into());
        }
        if self.stream.dedup_window == 0 || self.stream.dedup_window > 1 << 20 {
            errs.push("stream.dedup_window must be 1..=1048576".into());
        }
        let a = &self.alerts;
        if !(a.risk_clear_margin >= 0.0
            && a.rising_lead_min > 0.0
            && a.sprint_excess_m > a.sprint_clear_excess_m)
        {
            errs.push("alerts: risk_clear_margin ≥ 0, rising_lead_min > 0, sprint_excess_m > sprint_clear_excess_m".into());
        }
        if self.repeated.min_efforts < 2 {
            errs.push("repeated.min_efforts must be at least 2".into());
        }
        if self.version.trim().is_empty() {
            errs.push("version must not be empty".into());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ParamsError::Invalid(errs))
        }
    }

    /// `version+fingerprint`: the fingerprint is FNV-1a over the canonical JSON of every value,
    /// so two sets that differ in any threshold never share a tag even if `version` was not
    /// bumped.
    pub fn version_tag(&self) -> String {
        let canonical = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in canonical.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{}+{:08x}", self.version, (h >> 32) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_tagged() {
        let p = Params::default();
        p.validate().unwrap();
        let tag = p.version_tag();
        assert!(tag.starts_with("default-2026.12.2+"), "{tag}");
    }

    #[test]
    fn a_partial_toml_file_overrides_only_what_it_names() {
        let p = Params::from_toml(
            "version = \"club-a-1\"\n[sprint]\nthreshold = 7.5 # km/h 27\nmin_duration_s = 0.6\n",
        )
        .unwrap();
        assert_eq!(p.sprint.threshold, 7.5);
        assert_eq!(p.sprint.min_duration_s, 0.6);
        assert_eq!(p.sprint.merge_gap_s, 0.5);
        assert_eq!(p.zones.hsr_mps, 5.5);
        assert_ne!(p.version_tag(), Params::default().version_tag());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_all_reported() {
        let err = Params::from_toml("[sprint]\nthreshhold = 7.5\n").unwrap_err();
        assert!(err.to_string().contains("threshhold"), "{err}");
        let err = Params::from_json(r#"{"zones":{"hsr_mps":9.0},"risk":{"amber":6.0}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("zones must satisfy"), "{err}");
        assert!(err.contains("risk.amber"), "{err}");
    }

    #[test]
    fn the_tag_changes_with_any_value_even_without_a_version_bump() {
        let mut p = Params::default();
        p.accel.min_duration_s = 0.7;
        assert_ne!(p.version_tag(), Params::default().version_tag());
    }
}
