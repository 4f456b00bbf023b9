//! The strain-risk attention score: a transparent points score that ranks players for staff
//! attention. It is **not** an injury probability (predictive accuracy of such scores is poor:
//! AUC ≈ 0.6, Ruddy 2018; Impellizzeri 2021). Nine terms' points are ≈ ln(published effect
//! size) and seven are judgements ([`crate::evidence`] says which, with source, outcome and
//! horizon); every term is reported with its value, threshold and state (`notes/domain.md`
//! §10):
//!
//! ```text
//! score = A + min(B, 3) + min(C, 1.5) + min(D, 2)         bands: ≥ 3 amber, ≥ 5 red
//! A susceptibility   previous HSI 1.0 | recent 1.6; Nordic < 337 N 1.5; BFlh < 10.56 cm 1.4;
//!                    previous ACL 0.5; previous calf 0.4; older age band 0.5
//! B exposure spikes  7-day HSR z ≥ 1 → 1.0, ≥ 2 → 1.9; 7-day rise of > 19.8 km/h ≥ 75 m → 1.8
//!                    (else of > 14.4 km/h ≥ 350 m → 1.1); 7-day > 24 km/h > 653 m → 1.2
//! C under-prepared   no ≥ 95 % Vmax exposure in 7 days 1.0; low chronic HSR 0.5
//! D live fatigue     0.2 per 11 m of 60-s sprint distance above norm (≤ 1); session HSR or
//!                    sprint > own p90 0.5; post-peak decrement < −20 % or last block HSR
//!                    < −45 % 0.5; load/m ↑ > 10 % or vertical share ↓ > 5 % 0.5;
//!                    ≥ 3 decelerations ≤ −3 m/s² in 60 s 0.3
//! ```
//!
//! 7-day sums are live: the baseline's previous 6 days plus today's session so far.

use serde::{Deserialize, Serialize};

use crate::params::RiskParams;
use crate::profile::{AthleteProfile, Baseline, HamstringHistory};

/// Score blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Block {
    /// Susceptibility (athlete profile).
    A,
    /// Recent exposure spikes (history + today).
    B,
    /// Under-preparation.
    C,
    /// Live in-session fatigue.
    D,
}

/// Identifier of a score term (stable: used in outputs, alerts and dashboards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermId {
    /// Previous hamstring injury.
    AHamstringHistory,
    /// Nordic eccentric force below threshold (N).
    ANordic,
    /// Short biceps femoris fascicles (cm).
    AFascicle,
    /// Previous ACL injury.
    APreviousAcl,
    /// Previous calf strain.
    APreviousCalf,
    /// Older age band.
    AOlderAge,
    /// 7-day HSR well above own norm (z).
    BHsrZ,
    /// 7-day rise in high-speed distance (m).
    BWeekRise,
    /// 7-day distance above 24 km/h (m).
    BV24Week,
    /// No ≥95 % Vmax exposure in 7 days.
    CNoVmaxExposure,
    /// Low chronic HSR.
    CLowChronic,
    /// Sprint distance in the last minute above norm (m).
    DSprintBurst,
    /// Session HSR/sprint above own p90 (m).
    DVolume,
    /// Post-peak or late-block HSR decline.
    DFatigue,
    /// Load per metre up / vertical share down.
    DNeuromuscular,
    /// Hard decelerations in the last minute.
    DDecelCluster,
}

impl TermId {
    /// Every term, in score order (blocks a, b, c, d).
    pub const ALL: [TermId; 16] = [
        TermId::AHamstringHistory,
        TermId::ANordic,
        TermId::AFascicle,
        TermId::APreviousAcl,
        TermId::APreviousCalf,
        TermId::AOlderAge,
        TermId::BHsrZ,
        TermId::BWeekRise,
        TermId::BV24Week,
        TermId::CNoVmaxExposure,
        TermId::CLowChronic,
        TermId::DSprintBurst,
        TermId::DVolume,
        TermId::DFatigue,
        TermId::DNeuromuscular,
        TermId::DDecelCluster,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TermId::AHamstringHistory => "a_hamstring_history",
            TermId::ANordic => "a_nordic",
            TermId::AFascicle => "a_fascicle",
            TermId::APreviousAcl => "a_previous_acl",
            TermId::APreviousCalf => "a_previous_calf",
            TermId::AOlderAge => "a_older_age",
            TermId::BHsrZ => "b_hsr_z",
            TermId::BWeekRise => "b_week_rise",
            TermId::BV24Week => "b_v24_week",
            TermId::CNoVmaxExposure => "c_no_vmax_exposure",
            TermId::CLowChronic => "c_low_chronic",
            TermId::DSprintBurst => "d_sprint_burst",
            TermId::DVolume => "d_volume",
            TermId::DFatigue => "d_fatigue",
            TermId::DNeuromuscular => "d_neuromuscular",
            TermId::DDecelCluster => "d_decel_cluster",
        }
    }

    /// What the term means, for people.
    pub fn label(self) -> &'static str {
        match self {
            TermId::AHamstringHistory => "previous hamstring injury",
            TermId::ANordic => "Nordic eccentric force below threshold (N)",
            TermId::AFascicle => "short biceps femoris fascicles (cm)",
            TermId::APreviousAcl => "previous ACL injury",
            TermId::APreviousCalf => "previous calf strain",
            TermId::AOlderAge => "older age band",
            TermId::BHsrZ => "7-day HSR well above own norm (z)",
            TermId::BWeekRise => "7-day rise in high-speed distance (m)",
            TermId::BV24Week => "7-day distance above 24 km/h (m)",
            TermId::CNoVmaxExposure => "no ≥95 % Vmax exposure in 7 days",
            TermId::CLowChronic => "low chronic HSR",
            TermId::DSprintBurst => "sprint distance in the last minute above norm (m)",
            TermId::DVolume => "session HSR/sprint above own p90 (m)",
            TermId::DFatigue => "post-peak or late-block HSR decline",
            TermId::DNeuromuscular => "load per metre up / vertical share down",
            TermId::DDecelCluster => "hard decelerations in the last minute",
        }
    }
}

impl std::fmt::Display for TermId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a term fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermState {
    /// Condition met; points added.
    Fired,
    /// Condition not met.
    Clear,
    /// An input is missing (no profile, no baseline): no points, shown as unknown.
    Unknown,
}

/// One term of the score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// Stable identifier.
    pub id: TermId,
    /// Block.
    pub block: Block,
    /// Points contributed (before the block cap).
    pub points: f64,
    /// State.
    pub state: TermState,
    /// The measured value, if any (units in the term's description).
    pub value: Option<f64>,
    /// The threshold it is compared with, if any.
    pub threshold: Option<f64>,
}

/// Attention band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Below amber.
    Green,
    /// ≥ amber.
    Amber,
    /// ≥ red.
    Red,
}

/// Live quantities the score reads, in SI units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskInputs {
    /// Session HSR distance (≥ 5.5 m/s), m.
    pub session_hsr_m: f64,
    /// Session distance ≥ 14.4 km/h, m.
    pub session_moderate_m: f64,
    /// Session distance ≥ 24 km/h, m.
    pub session_v24_m: f64,
    /// Session sprint distance (≥ 7 m/s), m.
    pub session_sprint_m: f64,
    /// ≥ 95 % Vmax exposures this session.
    pub vmax95_exposures: u32,
    /// No Vmax is known for the player (no profile value): %Vmax exposures are counted
    /// against the parameters' default Vmax for display, but the score's %Vmax term is
    /// unknown rather than judged against a Vmax that is not his.
    #[serde(default)]
    pub vmax_default: bool,
    /// Sprint distance in the last 60 s, m.
    pub sprint_60s_m: f64,
    /// Decelerations ≤ −3 m/s² in the last 60 s.
    pub decel_60s: u32,
    /// Post-peak 5-min HSR decrement (fraction; −0.2 = 20 % below the session average).
    pub post_peak_decrement: Option<f64>,
    /// Last completed block's HSR vs the first block (fraction).
    pub last_block_hsr_change: Option<f64>,
    /// Recent load per metre vs the first block (fraction).
    pub lpm_change: Option<f64>,
    /// Recent vertical share vs the first block (fraction).
    pub vshare_change: Option<f64>,
}

/// A score with its breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskScore {
    /// Total after block caps.
    pub score: f64,
    /// Band of the total.
    pub band: Band,
    /// Block totals after caps, A–D.
    pub blocks: [f64; 4],
    /// Every term, fired or not.
    pub terms: Vec<Term>,
    /// Share (0–1) of the score's possible points whose terms could be judged: each term's
    /// most points, block caps applied, known over all. 1 = nothing unknown.
    pub completeness: f64,
    /// The score had every unknown term fired at its most points (block caps applied): the
    /// true band lies between `band` and the band of this.
    pub ceiling: f64,
    /// The band is only a floor: the unknown terms could lift the score into a higher band.
    pub band_floor: bool,
}

impl RiskScore {
    /// The band for people: "amber", or "at least amber" when unknowns could lift it.
    pub fn band_text(&self) -> String {
        band_text(self.band, self.band_floor)
    }
}

/// "red", "amber", "green", with "at least " before a band reached while unknown terms could
/// lift it higher ("at least amber"); green stays "green", its completeness said beside it.
pub fn band_text(b: Band, floor: bool) -> String {
    let name = match b {
        Band::Green => "green",
        Band::Amber => "amber",
        Band::Red => "red",
    };
    if floor && b != Band::Green {
        format!("at least {name}")
    } else {
        name.to_string()
    }
}

/// The most points a term can add (before the block cap).
pub fn max_points(id: TermId, p: &RiskParams) -> f64 {
    match id {
        TermId::AHamstringHistory => p.prev_hsi.max(p.recent_hsi),
        TermId::ANordic => p.nordic_low,
        TermId::AFascicle => p.short_fascicles,
        TermId::APreviousAcl => p.prev_acl,
        TermId::APreviousCalf => p.prev_calf,
        TermId::AOlderAge => p.older_age,
        TermId::BHsrZ => p.hsr_z1.max(p.hsr_z2),
        TermId::BWeekRise => p.rise_hsr.max(p.rise_moderate),
        TermId::BV24Week => p.v24_week,
        TermId::CNoVmaxExposure => p.no_vmax_exposure,
        TermId::CLowChronic => p.low_chronic,
        TermId::DSprintBurst => p.sprint_burst_cap,
        TermId::DVolume => p.volume_exceeded,
        TermId::DFatigue => p.fatigue_flag,
        TermId::DNeuromuscular => p.nm_flag,
        TermId::DDecelCluster => p.decel_cluster,
    }
}

/// Everything besides the live inputs that the score reads.
#[derive(Debug, Clone, Copy)]
pub struct RiskContext<'a> {
    /// Parameters.
    pub params: &'a RiskParams,
    /// Athlete profile, if known.
    pub profile: Option<&'a AthleteProfile>,
    /// Load-history baseline, if known.
    pub baseline: Option<&'a Baseline>,
}

fn fired(cond: bool, points: f64) -> (TermState, f64) {
    if cond {
        (TermState::Fired, points)
    } else {
        (TermState::Clear, 0.0)
    }
}

/// Walk every term, handing each to `sink`. The single definition of the score.
fn each_term(x: &RiskInputs, ctx: &RiskContext<'_>, mut sink: impl FnMut(Term)) {
    let p = ctx.params;
    let mut emit = |id, block, (state, points): (TermState, f64), value, threshold| {
        sink(Term {
            id,
            block,
            points,
            state,
            value,
            threshold,
        })
    };
    let unknown = (TermState::Unknown, 0.0);

    // A: susceptibility.
    match ctx.profile.map(|pr| &pr.susceptibility) {
        Some(s) => {
            let hsi = match s.hamstring {
                None => unknown,
                Some(HamstringHistory::None) => (TermState::Clear, 0.0),
                Some(HamstringHistory::Previous) => (TermState::Fired, p.prev_hsi),
                Some(HamstringHistory::Recent) => (TermState::Fired, p.recent_hsi),
            };
            emit(TermId::AHamstringHistory, Block::A, hsi, None, None);
            let nordic = s
                .nordic_n
                .map_or(unknown, |n| fired(n < p.nordic_threshold_n, p.nordic_low));
            emit(
                TermId::ANordic,
                Block::A,
                nordic,
                s.nordic_n,
                Some(p.nordic_threshold_n),
            );
            let fasc = s.bflh_fascicle_cm.map_or(unknown, |c| {
                fired(c < p.fascicle_threshold_cm, p.short_fascicles)
            });
            emit(
                TermId::AFascicle,
                Block::A,
                fasc,
                s.bflh_fascicle_cm,
                Some(p.fascicle_threshold_cm),
            );
            emit(
                TermId::APreviousAcl,
                Block::A,
                s.previous_acl.map_or(unknown, |y| fired(y, p.prev_acl)),
                None,
                None,
            );
            emit(
                TermId::APreviousCalf,
                Block::A,
                s.previous_calf.map_or(unknown, |y| fired(y, p.prev_calf)),
                None,
                None,
            );
            emit(
                TermId::AOlderAge,
                Block::A,
                s.older_age_band.map_or(unknown, |y| fired(y, p.older_age)),
                None,
                None,
            );
        }
        None => {
            for id in &TermId::ALL[..6] {
                emit(*id, Block::A, unknown, None, None);
            }
        }
    }

    // B: exposure spikes, 7-day sums = previous 6 days + today so far.
    let b = ctx.baseline;
    let week = |prev: Option<f64>, today: f64| prev.map(|v| v + today);
    let hsr_7d = week(b.and_then(|b| b.hsr_prev6d_m), x.session_hsr_m);
    let z = match (
        hsr_7d,
        b.and_then(|b| b.hsr_7d_mean_m),
        b.and_then(|b| b.hsr_7d_sd_m),
    ) {
        (Some(w), Some(m), Some(sd)) if sd > 0.0 => Some((w - m) / sd),
        _ => None,
    };
    let zt = z.map_or(unknown, |z| {
        if z >= 2.0 {
            (TermState::Fired, p.hsr_z2)
        } else {
            fired(z >= 1.0, p.hsr_z1)
        }
    });
    emit(TermId::BHsrZ, Block::B, zt, z, Some(1.0));
    let rise_hsr = match (hsr_7d, b.and_then(|b| b.hsr_prior7d_m)) {
        (Some(w), Some(prior)) => Some(w - prior),
        _ => None,
    };
    let mod_7d = week(b.and_then(|b| b.moderate_prev6d_m), x.session_moderate_m);
    let rise_mod = match (mod_7d, b.and_then(|b| b.moderate_prior7d_m)) {
        (Some(w), Some(prior)) => Some(w - prior),
        _ => None,
    };
    let rise = match (rise_hsr, rise_mod) {
        (None, None) => unknown,
        (h, m) => {
            if h.is_some_and(|h| h >= p.rise_hsr_m) {
                (TermState::Fired, p.rise_hsr)
            } else {
                fired(m.is_some_and(|m| m >= p.rise_moderate_m), p.rise_moderate)
            }
        }
    };
    emit(
        TermId::BWeekRise,
        Block::B,
        rise,
        rise_hsr,
        Some(p.rise_hsr_m),
    );
    let v24 = week(b.and_then(|b| b.v24_prev6d_m), x.session_v24_m);
    let v24t = v24.map_or(unknown, |v| fired(v > p.v24_7d_m, p.v24_week));
    emit(TermId::BV24Week, Block::B, v24t, v24, Some(p.v24_7d_m));

    // C: under-preparation.
    let exposed = x.vmax95_exposures > 0;
    let c1 = match b.and_then(|b| b.vmax95_in_prev6d) {
        _ if x.vmax_default => unknown,
        _ if exposed => (TermState::Clear, 0.0),
        Some(prev) => fired(!prev, p.no_vmax_exposure),
        None => unknown,
    };
    emit(
        TermId::CNoVmaxExposure,
        Block::C,
        c1,
        Some(f64::from(x.vmax95_exposures)),
        None,
    );
    let c2 = b
        .and_then(|b| b.low_chronic_hsr)
        .map_or(unknown, |low| fired(low, p.low_chronic));
    emit(TermId::CLowChronic, Block::C, c2, None, None);

    // D: live fatigue.
    let norm = b
        .and_then(|b| b.sprint_1min_norm_m)
        .unwrap_or(p.default_sprint_1min_norm_m);
    let excess = (x.sprint_60s_m - norm).max(0.0);
    let burst = (p.sprint_burst_per_step * excess / p.sprint_burst_step_m).min(p.sprint_burst_cap);
    let bt = if burst > 0.0 {
        (TermState::Fired, burst)
    } else {
        (TermState::Clear, 0.0)
    };
    emit(
        TermId::DSprintBurst,
        Block::D,
        bt,
        Some(x.sprint_60s_m),
        Some(norm),
    );
    let hsr_p90 = b.and_then(|b| b.session_hsr_p90_m);
    let spr_p90 = b.and_then(|b| b.session_sprint_p90_m);
    let vol = match (hsr_p90, spr_p90) {
        (None, None) => unknown,
        (h, s) => fired(
            h.is_some_and(|h| x.session_hsr_m > h) || s.is_some_and(|s| x.session_sprint_m > s),
            p.volume_exceeded,
        ),
    };
    emit(
        TermId::DVolume,
        Block::D,
        vol,
        Some(x.session_hsr_m),
        hsr_p90,
    );
    // Either signal fires the flag; with neither measured yet (the first 20 minutes on the
    // pitch, or no HSR baseline block) it is unknown, not clear.
    let fat = match (x.post_peak_decrement, x.last_block_hsr_change) {
        (None, None) => unknown,
        (d, c) => fired(
            d.is_some_and(|d| d < p.post_peak_threshold)
                || c.is_some_and(|c| c < p.block_decline_threshold),
            p.fatigue_flag,
        ),
    };
    emit(
        TermId::DFatigue,
        Block::D,
        fat,
        x.post_peak_decrement,
        Some(p.post_peak_threshold),
    );
    // Without an accelerometer stream (or before its first block) it is unknown.
    let nm = match (x.lpm_change, x.vshare_change) {
        (None, None) => unknown,
        (l, v) => fired(
            l.is_some_and(|c| c > p.lpm_rise) || v.is_some_and(|c| c < p.vshare_fall),
            p.nm_flag,
        ),
    };
    emit(
        TermId::DNeuromuscular,
        Block::D,
        nm,
        x.lpm_change,
        Some(p.lpm_rise),
    );
    let dc = fired(x.decel_60s >= p.decel_cluster_count, p.decel_cluster);
    emit(
        TermId::DDecelCluster,
        Block::D,
        dc,
        Some(f64::from(x.decel_60s)),
        Some(f64::from(p.decel_cluster_count)),
    );
}

fn cap(block: Block, p: &RiskParams) -> f64 {
    match block {
        Block::A => f64::INFINITY,
        Block::B => p.cap_b,
        Block::C => p.cap_c,
        Block::D => p.cap_d,
    }
}

fn block_index(b: Block) -> usize {
    match b {
        Block::A => 0,
        Block::B => 1,
        Block::C => 2,
        Block::D => 3,
    }
}

/// The band of a score.
pub fn band(score: f64, p: &RiskParams) -> Band {
    if score >= p.red {
        Band::Red
    } else if score >= p.amber {
        Band::Amber
    } else {
        Band::Green
    }
}

/// The total only (no allocation): used by the forecast.
pub fn score_only(x: &RiskInputs, ctx: &RiskContext<'_>) -> f64 {
    let mut raw = [0.0; 4];
    each_term(x, ctx, |t| raw[block_index(t.block)] += t.points);
    capped_total(&raw, ctx.params).0
}

fn capped_total(raw: &[f64; 4], p: &RiskParams) -> (f64, [f64; 4]) {
    let blocks = [
        raw[0],
        raw[1].min(cap(Block::B, p)),
        raw[2].min(cap(Block::C, p)),
        raw[3].min(cap(Block::D, p)),
    ];
    (blocks.iter().sum(), blocks)
}

/// The score with every term.
pub fn evaluate(x: &RiskInputs, ctx: &RiskContext<'_>) -> RiskScore {
    let mut terms = Vec::with_capacity(16);
    let mut raw = [0.0; 4];
    each_term(x, ctx, |t| {
        raw[block_index(t.block)] += t.points;
        terms.push(t);
    });
    let p = ctx.params;
    let (score, blocks) = capped_total(&raw, p);
    // Known and possible points per block, and the raw total had every unknown fired.
    let (mut known, mut possible, mut lifted) = ([0.0; 4], [0.0; 4], raw);
    for t in &terms {
        let (i, most) = (block_index(t.block), max_points(t.id, p));
        possible[i] += most;
        if t.state == TermState::Unknown {
            lifted[i] += most;
        } else {
            known[i] += most;
        }
    }
    let possible = capped_total(&possible, p).0;
    let completeness = if possible > 0.0 {
        (capped_total(&known, p).0 / possible).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let ceiling = capped_total(&lifted, p).0;
    RiskScore {
        score,
        band: band(score, p),
        blocks,
        terms,
        completeness,
        ceiling,
        band_floor: band(ceiling, p) > band(score, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Susceptibility;

    fn profile(h: HamstringHistory, nordic: Option<f64>) -> AthleteProfile {
        AthleteProfile {
            player: "p".into(),
            susceptibility: Susceptibility {
                hamstring: Some(h),
                nordic_n: nordic,
                ..Susceptibility::recorded_clear()
            },
            ..Default::default()
        }
    }

    fn full_baseline() -> Baseline {
        Baseline {
            days_of_history: Some(60),
            hsr_7d_mean_m: Some(1500.0),
            hsr_7d_sd_m: Some(300.0),
            hsr_prev6d_m: Some(1300.0),
            hsr_prior7d_m: Some(1500.0),
            moderate_prev6d_m: Some(5000.0),
            moderate_prior7d_m: Some(5500.0),
            v24_prev6d_m: Some(200.0),
            vmax95_in_prev6d: Some(true),
            low_chronic_hsr: Some(false),
            sprint_1min_norm_m: Some(5.0),
            session_hsr_p90_m: Some(900.0),
            session_sprint_p90_m: Some(300.0),
            days_since_vmax90: Some(2),
            days_since_vmax95: Some(3),
            vmax_observed_mps: Some(9.0),
        }
    }

    #[test]
    fn recent_hamstring_injury_and_weak_nordics_make_amber_on_their_own() {
        let rp = RiskParams::default();
        let pr = profile(HamstringHistory::Recent, Some(300.0));
        let b = full_baseline();
        let ctx = RiskContext {
            params: &rp,
            profile: Some(&pr),
            baseline: Some(&b),
        };
        let s = evaluate(&RiskInputs::default(), &ctx);
        assert!((s.score - 3.1).abs() < 1e-9, "{s:?}");
        assert_eq!(s.band, Band::Amber);
        assert_eq!(score_only(&RiskInputs::default(), &ctx), s.score);
    }

    #[test]
    fn missing_profile_and_baseline_show_as_unknown_not_as_zero() {
        let rp = RiskParams::default();
        let ctx = RiskContext {
            params: &rp,
            profile: None,
            baseline: None,
        };
        let s = evaluate(&RiskInputs::default(), &ctx);
        let unknown: Vec<_> = s
            .terms
            .iter()
            .filter(|t| t.state == TermState::Unknown)
            .map(|t| t.id)
            .collect();
        for id in [
            TermId::ANordic,
            TermId::BHsrZ,
            TermId::BWeekRise,
            TermId::BV24Week,
            TermId::CNoVmaxExposure,
        ] {
            assert!(unknown.contains(&id), "{id} should be unknown: {unknown:?}");
        }
        assert_eq!(s.score, 0.0);
    }

    /// Live inputs with every fatigue and accelerometer signal measured (none firing).
    fn measured() -> RiskInputs {
        RiskInputs {
            post_peak_decrement: Some(0.0),
            last_block_hsr_change: Some(0.0),
            lpm_change: Some(0.0),
            vshare_change: Some(0.0),
            ..RiskInputs::default()
        }
    }

    #[test]
    fn not_recorded_is_unknown_and_a_recorded_no_is_clear() {
        let rp = RiskParams::default();
        let b = full_baseline();
        let state = |s: Susceptibility, id: TermId| {
            let pr = AthleteProfile {
                susceptibility: s,
                ..Default::default()
            };
            let ctx = RiskContext {
                params: &rp,
                profile: Some(&pr),
                baseline: Some(&b),
            };
            let r = evaluate(&measured(), &ctx);
            (
                r.terms.iter().find(|t| t.id == id).unwrap().state,
                r.completeness,
            )
        };
        for id in [
            TermId::AHamstringHistory,
            TermId::APreviousAcl,
            TermId::APreviousCalf,
            TermId::AOlderAge,
        ] {
            let (missing, c_missing) = state(Susceptibility::default(), id);
            let (no, c_no) = state(Susceptibility::recorded_clear(), id);
            assert_eq!(
                (missing, no),
                (TermState::Unknown, TermState::Clear),
                "{id}"
            );
            assert!(c_missing < c_no, "{id}: {c_missing} vs {c_no}");
        }
    }

    #[test]
    fn completeness_is_the_share_of_possible_points_known_with_block_caps() {
        let rp = RiskParams::default();
        let b = full_baseline();
        let mut pr = profile(HamstringHistory::None, Some(450.0));
        pr.susceptibility.bflh_fascicle_cm = Some(12.0);
        let eval = |x: &RiskInputs, pr: &AthleteProfile| {
            evaluate(
                x,
                &RiskContext {
                    params: &rp,
                    profile: Some(pr),
                    baseline: Some(&b),
                },
            )
        };
        let all = eval(&measured(), &pr);
        assert_eq!(all.completeness, 1.0);
        assert_eq!(all.ceiling, all.score);
        // Every term's most points, block caps applied: A 5.9 + B min(4.9, 3) + C 1.5 + D 2.
        let possible = 5.9 + 3.0 + 1.5 + 2.0;
        // Nordic and fascicle not measured: 1.5 + 1.4 of block A (uncapped) unknown.
        pr.susceptibility.nordic_n = None;
        pr.susceptibility.bflh_fascicle_cm = None;
        let part = eval(&measured(), &pr);
        assert!(
            (part.completeness - (possible - 2.9) / possible).abs() < 1e-9,
            "{part:?}"
        );
        assert!((part.ceiling - (part.score + 2.9)).abs() < 1e-9);
        // No accelerometer and no fatigue measure yet: D's two flags unknown, but D's cap (2)
        // still leaves room for them (burst 1 + volume 0.5 + decel 0.3 = 1.8 known).
        let early = eval(&RiskInputs::default(), &pr);
        let d_unknown = 2.0 - 1.8;
        assert!(
            (early.completeness - (possible - 2.9 - d_unknown) / possible).abs() < 1e-9,
            "{early:?}"
        );
        // Nothing known at all about the player: only the live terms count.
        let bare = evaluate(
            &RiskInputs::default(),
            &RiskContext {
                params: &rp,
                profile: None,
                baseline: None,
            },
        );
        assert!(bare.completeness < 0.25, "{}", bare.completeness);
    }

    #[test]
    fn a_band_reached_with_unknowns_that_could_lift_it_is_a_floor() {
        let rp = RiskParams::default();
        let b = full_baseline();
        // Recent hamstring injury and weak Nordics: 3.1, amber; fascicles not measured (1.4).
        let pr = profile(HamstringHistory::Recent, Some(300.0));
        let ctx = RiskContext {
            params: &rp,
            profile: Some(&pr),
            baseline: Some(&b),
        };
        // Fatigue and accelerometer measured: at most 4.5 < red, so amber is the band.
        let known = evaluate(&measured(), &ctx);
        assert_eq!((known.band, known.band_floor), (Band::Amber, false));
        assert_eq!(known.band_text(), "amber");
        // Before they are measured, their 0.5 + 0.5 could make it red: "at least amber".
        let early = evaluate(&RiskInputs::default(), &ctx);
        assert_eq!(early.score, known.score);
        assert!(early.ceiling >= rp.red, "{early:?}");
        assert_eq!((early.band, early.band_floor), (Band::Amber, true));
        assert_eq!(early.band_text(), "at least amber");
    }

    #[test]
    fn unknowns_never_lower_the_ceiling_below_the_score() {
        let rp = RiskParams::default();
        let b = full_baseline();
        for (i, h) in [None, Some(HamstringHistory::Recent)]
            .into_iter()
            .enumerate()
        {
            let pr = AthleteProfile {
                susceptibility: Susceptibility {
                    hamstring: h,
                    ..Default::default()
                },
                ..Default::default()
            };
            let x = RiskInputs {
                sprint_60s_m: 40.0 * i as f64,
                decel_60s: 5,
                session_hsr_m: 2000.0,
                ..RiskInputs::default()
            };
            for (profile, baseline) in [(None, None), (Some(&pr), None), (Some(&pr), Some(&b))] {
                let r = evaluate(
                    &x,
                    &RiskContext {
                        params: &rp,
                        profile,
                        baseline,
                    },
                );
                assert!(r.ceiling >= r.score && (0.0..=1.0).contains(&r.completeness));
            }
        }
    }

    #[test]
    fn today_completes_the_seven_day_sums() {
        let rp = RiskParams::default();
        let b = full_baseline();
        let ctx = RiskContext {
            params: &rp,
            profile: None,
            baseline: Some(&b),
        };
        // 1300 + 800 = 2100 → z = 2.0 → 1.9; rise = 2100 − 1500 = 600 ≥ 75 → 1.8. B capped at 3.
        let x = RiskInputs {
            session_hsr_m: 800.0,
            ..Default::default()
        };
        let s = evaluate(&x, &ctx);
        let pts = |id| s.terms.iter().find(|t| t.id == id).unwrap().points;
        assert_eq!(pts(TermId::BHsrZ), 1.9);
        assert_eq!(pts(TermId::BWeekRise), 1.8);
        assert_eq!(s.blocks[1], 3.0);
    }

    #[test]
    fn block_d_is_capped_and_the_sprint_burst_grows_per_11_m() {
        let rp = RiskParams::default();
        let b = full_baseline();
        let ctx = RiskContext {
            params: &rp,
            profile: None,
            baseline: Some(&b),
        };
        let x = RiskInputs {
            sprint_60s_m: 5.0 + 22.0,
            ..Default::default()
        };
        let s = evaluate(&x, &ctx);
        assert!((s.blocks[3] - 0.4).abs() < 1e-9, "{:?}", s.blocks);
        let x = RiskInputs {
            sprint_60s_m: 200.0,
            session_hsr_m: 1000.0,
            post_peak_decrement: Some(-0.3),
            lpm_change: Some(0.2),
            decel_60s: 4,
            ..Default::default()
        };
        assert_eq!(evaluate(&x, &ctx).blocks[3], 2.0);
    }

    #[test]
    fn a_95_percent_exposure_today_clears_the_under_preparation_term() {
        let rp = RiskParams::default();
        let mut b = full_baseline();
        b.vmax95_in_prev6d = Some(false);
        let ctx = RiskContext {
            params: &rp,
            profile: None,
            baseline: Some(&b),
        };
        assert_eq!(evaluate(&RiskInputs::default(), &ctx).blocks[2], 1.0);
        let x = RiskInputs {
            vmax95_exposures: 1,
            ..Default::default()
        };
        assert_eq!(evaluate(&x, &ctx).blocks[2], 0.0);
        // Without the player's own Vmax the term is unknown, exposed or not (issue 28: no
        // silent default Vmax).
        for n in [0, 1] {
            let x = RiskInputs {
                vmax95_exposures: n,
                vmax_default: true,
                ..Default::default()
            };
            let s = evaluate(&x, &ctx);
            let t = s
                .terms
                .iter()
                .find(|t| t.id == TermId::CNoVmaxExposure)
                .unwrap();
            assert_eq!((t.state, s.blocks[2]), (TermState::Unknown, 0.0));
        }
    }
}
