//! Load history: each player's daily loads, their trends against his own history, and the
//! [`Baseline`] (the history terms of the strain-risk score) as of a day. Pure functions of
//! the loads; reading them from the archive (and which club day a session falls on) is the
//! archive's job. Every threshold is in [`HistoryParams`], part of the versioned parameter set.
//!
//! - rolling 7-day sum of HSR (≥ 5.5 m/s), m, and its z-score against every earlier 7-day sum
//!   of the player (at least `z_min_sums` of them);
//! - 7-day change: this 7-day sum against the previous one, %;
//! - days since the last ≥ 90 % and ≥ 95 % Vmax exposure;
//! - EWMA of daily HSR with λ = 2 / (N + 1), acute N = 7 and chronic N = 28 (Williams et al.
//!   2017), and the uncoupled rolling ACWR (acute 7-day mean / mean of days −28..−8, which
//!   leaves the acute week out of the chronic one; Lolli et al. 2019). Both ratios are
//!   **contested** as injury predictors (Impellizzeri et al. 2020; `notes/domain.md`) and are
//!   withheld (`None`) until `ratio_min_days` of history exist;
//! - monotony (mean / SD of the 7 daily loads) and strain (7-day sum × monotony; Foster 1998).
//!
//! Days without a session count as zero load (rest): [`dense`].

use std::collections::BTreeMap;

use crate::params::HistoryParams;
use crate::profile::Baseline;

/// One player's final loads in one session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionLoad {
    /// The club's day the session started on, days since 1970-01-01.
    pub day: i64,
    /// First event time, µs.
    pub start_us: i64,
    /// Last event time, µs.
    pub end_us: i64,
    /// The loads (`sessions` = 1; the session's values in the per-session maxima).
    pub loads: Day,
}

/// One player's loads on one day (sums over that day's sessions).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Day {
    /// Days since 1970-01-01 (the club's day).
    pub day: i64,
    /// Sessions that day.
    pub sessions: u32,
    /// High-speed running (≥ 5.5 m/s), m.
    pub hsr_m: f64,
    /// Distance > 14.4 km/h, m.
    pub moderate_m: f64,
    /// Distance > 24 km/h, m.
    pub v24_m: f64,
    /// Sprint distance (≥ 7 m/s), m.
    pub sprint_m: f64,
    /// Total distance, m.
    pub distance_m: f64,
    /// Exposures ≥ 90 % of the player's Vmax.
    pub vmax90: u32,
    /// Exposures ≥ 95 % of the player's Vmax.
    pub vmax95: u32,
    /// Highest session HSR that day, m (for the p90 of session HSR).
    pub session_hsr_max_m: f64,
    /// Highest session sprint distance that day, m.
    pub session_sprint_max_m: f64,
    /// Highest rolling 1-min sprint distance that day, m.
    pub sprint_1min_peak_m: f64,
    /// Highest speed held ≥ 0.5 s that day (the sessions' `max_speed_mps`), m/s.
    pub max_speed_mps: f64,
}

/// The trend of one day (everything before `day` plus `day` itself).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// The day.
    pub day: i64,
    /// Its HSR, m.
    pub hsr_m: f64,
    /// HSR over the 7 days ending that day, m.
    pub hsr_7d_m: f64,
    /// z-score of `hsr_7d_m` against the player's earlier 7-day sums.
    pub hsr_7d_z: Option<f64>,
    /// Change of `hsr_7d_m` against the 7 days before, %.
    pub hsr_7d_change_pct: Option<f64>,
    /// Days since the last ≥ 90 % Vmax exposure (0: that day).
    pub days_since_vmax90: Option<i64>,
    /// Days since the last ≥ 95 % Vmax exposure.
    pub days_since_vmax95: Option<i64>,
    /// Acute EWMA of daily HSR (N = 7), m.
    pub ewma_acute_m: f64,
    /// Chronic EWMA of daily HSR (N = 28), m.
    pub ewma_chronic_m: f64,
    /// EWMA ACWR (contested; `None` before 28 days of history).
    pub acwr_ewma: Option<f64>,
    /// Uncoupled rolling ACWR (contested; `None` before 28 days of history).
    pub acwr_uncoupled: Option<f64>,
    /// Monotony of the last 7 days' HSR.
    pub monotony: Option<f64>,
    /// Strain of the last 7 days' HSR, m.
    pub strain: Option<f64>,
}

/// Fill rest days with zero loads: one entry per day from the first to `until` (inclusive).
pub fn dense(days: &[Day], until: i64) -> Vec<Day> {
    let Some(first) = days.iter().map(|d| d.day).min() else {
        return Vec::new();
    };
    let by: BTreeMap<i64, &Day> = days.iter().map(|d| (d.day, d)).collect();
    (first..=until.max(first))
        .map(|day| {
            by.get(&day).map_or(
                Day {
                    day,
                    ..Day::default()
                },
                |d| **d,
            )
        })
        .collect()
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

fn sum(d: &[Day], from: i64, to: i64, f: impl Fn(&Day) -> f64) -> f64 {
    d.iter()
        .filter(|x| x.day >= from && x.day <= to)
        .map(f)
        .sum()
}

/// Every day's trend of a dense series (see [`dense`]).
pub fn trend(d: &[Day], p: &HistoryParams) -> Vec<Trend> {
    let Some(first) = d.first().map(|x| x.day) else {
        return Vec::new();
    };
    let (la, lc) = (
        2.0 / (f64::from(p.ewma_acute_days) + 1.0),
        2.0 / (f64::from(p.ewma_chronic_days) + 1.0),
    );
    let (mut acute, mut chronic) = (0.0, 0.0);
    let mut sums: Vec<f64> = Vec::new();
    let (mut last90, mut last95) = (None, None);
    let mut out = Vec::new();
    for (i, x) in d.iter().enumerate() {
        // EWMA_today = λ · load_today + (1 − λ) · EWMA_yesterday, started at the first load.
        (acute, chronic) = if i == 0 {
            (x.hsr_m, x.hsr_m)
        } else {
            (
                la * x.hsr_m + (1.0 - la) * acute,
                lc * x.hsr_m + (1.0 - lc) * chronic,
            )
        };
        if x.vmax90 > 0 {
            last90 = Some(x.day);
        }
        if x.vmax95 > 0 {
            last95 = Some(x.day);
        }
        let s7 = sum(d, x.day - 6, x.day, |v| v.hsr_m);
        let prev7 = sum(d, x.day - 13, x.day - 7, |v| v.hsr_m);
        let history = x.day - first + 1;
        let z = (sums.len() >= p.z_min_sums as usize).then(|| {
            let (m, sd) = mean_sd(&sums);
            if sd > 0.0 { (s7 - m) / sd } else { 0.0 }
        });
        let ratios = history >= i64::from(p.ratio_min_days);
        let chronic_u = sum(d, x.day - 27, x.day - 7, |v| v.hsr_m) / 21.0;
        let week: Vec<f64> = d[i.saturating_sub(6)..=i].iter().map(|v| v.hsr_m).collect();
        let (wm, wsd) = mean_sd(&week);
        let monotony = (week.len() == 7 && wsd > 0.0).then(|| wm / wsd);
        out.push(Trend {
            day: x.day,
            hsr_m: x.hsr_m,
            hsr_7d_m: s7,
            hsr_7d_z: z,
            hsr_7d_change_pct: (history >= 14 && prev7 > 0.0).then(|| 100.0 * (s7 - prev7) / prev7),
            days_since_vmax90: last90.map(|l| x.day - l),
            days_since_vmax95: last95.map(|l| x.day - l),
            ewma_acute_m: acute,
            ewma_chronic_m: chronic,
            acwr_ewma: (ratios && chronic > 0.0).then(|| acute / chronic),
            acwr_uncoupled: (ratios && chronic_u > 0.0).then(|| (s7 / 7.0) / chronic_u),
            monotony,
            strain: monotony.map(|m| s7 * m),
        });
        if history >= 7 {
            sums.push(s7);
        }
    }
    out
}

fn p90(mut x: Vec<f64>, min: u32) -> Option<f64> {
    if x.len() < (min as usize).max(1) {
        return None;
    }
    x.sort_by(f64::total_cmp);
    let r = 0.9 * (x.len() - 1) as f64;
    let (lo, hi) = (r.floor() as usize, r.ceil() as usize);
    Some(x[lo] + (x[hi] - x[lo]) * (r - lo as f64))
}

/// The engine's baseline as of `today` (exclusive: the history runs to the day before), from a
/// player's (sparse or dense) daily loads.
pub fn baseline(days: &[Day], today: i64, p: &HistoryParams) -> Baseline {
    let past: Vec<Day> = days.iter().filter(|d| d.day < today).copied().collect();
    let d = dense(&past, today - 1);
    let Some(first) = d.first().map(|x| x.day) else {
        return Baseline::default();
    };
    let history = today - first;
    let t = trend(&d, p);
    let sums: Vec<f64> = t
        .iter()
        .filter(|x| x.day - first >= 6)
        .map(|x| x.hsr_7d_m)
        .collect();
    let (mean7, sd7) = if sums.len() >= p.z_min_sums as usize {
        let (m, s) = mean_sd(&sums);
        (Some(m), Some(s))
    } else {
        (None, None)
    };
    let enough = |n: i64| history >= n;
    let chronic = |end: i64| sum(&d, end - 27, end, |v| v.hsr_m);
    let low_chronic = enough(i64::from(p.low_chronic_min_days)).then(|| {
        let now = chronic(today - 1);
        let mut all: Vec<f64> = (first + 27..today).map(chronic).collect();
        all.sort_by(f64::total_cmp);
        // The lowest third of his own 28-day sums (a judgement: `notes/domain.md` §10).
        all.get((all.len().max(1) - 1) / 3)
            .is_some_and(|low| now <= *low)
    });
    let sessions: Vec<&Day> = past.iter().filter(|x| x.sessions > 0).collect();
    let days_since = |hit: fn(&Day) -> bool| {
        let last = past.iter().filter(|x| hit(x)).map(|x| x.day).max();
        let n = today - last.unwrap_or(first);
        Some(n.clamp(0, i64::from(u32::MAX)) as u32)
    };
    Baseline {
        days_of_history: Some(history.clamp(0, i64::from(u32::MAX)) as u32),
        hsr_7d_mean_m: mean7,
        hsr_7d_sd_m: sd7,
        hsr_prev6d_m: enough(6).then(|| sum(&d, today - 6, today - 1, |v| v.hsr_m)),
        hsr_prior7d_m: enough(13).then(|| sum(&d, today - 13, today - 7, |v| v.hsr_m)),
        moderate_prev6d_m: enough(6).then(|| sum(&d, today - 6, today - 1, |v| v.moderate_m)),
        moderate_prior7d_m: enough(13).then(|| sum(&d, today - 13, today - 7, |v| v.moderate_m)),
        v24_prev6d_m: enough(6).then(|| sum(&d, today - 6, today - 1, |v| v.v24_m)),
        vmax95_in_prev6d: enough(6).then(|| d.iter().any(|x| x.day >= today - 6 && x.vmax95 > 0)),
        low_chronic_hsr: low_chronic,
        sprint_1min_norm_m: (sessions.len() >= p.sprint_norm_min_sessions as usize).then(|| {
            sessions.iter().map(|x| x.sprint_1min_peak_m).sum::<f64>() / sessions.len() as f64
        }),
        session_hsr_p90_m: p90(
            sessions.iter().map(|x| x.session_hsr_max_m).collect(),
            p.p90_min_sessions,
        ),
        session_sprint_p90_m: p90(
            sessions.iter().map(|x| x.session_sprint_max_m).collect(),
            p.p90_min_sessions,
        ),
        days_since_vmax90: days_since(|x| x.vmax90 > 0),
        days_since_vmax95: days_since(|x| x.vmax95 > 0),
        // His top held speed (not one sample: the sessions' maxima are held 0.5 s), only
        // from plausible values (a wrong fix must not set his reference).
        vmax_observed_mps: past
            .iter()
            .map(|x| x.max_speed_mps)
            .filter(|v| crate::profile::VMAX_RANGE_MPS.contains(v))
            .max_by(f64::total_cmp),
    }
}

/// Sessions summed per day, in day order.
pub fn days_of(sessions: &[SessionLoad]) -> Vec<Day> {
    let mut by: BTreeMap<i64, Day> = BTreeMap::new();
    for x in sessions {
        let d = by.entry(x.day).or_insert(Day {
            day: x.day,
            ..Day::default()
        });
        let l = &x.loads;
        d.sessions += 1;
        d.hsr_m += l.hsr_m;
        d.moderate_m += l.moderate_m;
        d.v24_m += l.v24_m;
        d.sprint_m += l.sprint_m;
        d.distance_m += l.distance_m;
        d.vmax90 += l.vmax90;
        d.vmax95 += l.vmax95;
        d.session_hsr_max_m = d.session_hsr_max_m.max(l.session_hsr_max_m);
        d.session_sprint_max_m = d.session_sprint_max_m.max(l.session_sprint_max_m);
        d.sprint_1min_peak_m = d.sprint_1min_peak_m.max(l.sprint_1min_peak_m);
        d.max_speed_mps = d.max_speed_mps.max(l.max_speed_mps);
    }
    by.into_values().collect()
}

/// The engine's baseline for a session on `today` computed at `cutoff_us`: the history of the
/// days before [`baseline`], plus the sessions of `today` already over at the cutoff, which
/// belong in the 7-day sums the live session completes (HSR, > 14.4 and > 24 km/h distance,
/// and ≥ 95 % Vmax exposure in the last 7 days). A sum still unknown (under 6 days of
/// history) stays unknown. Sessions not over at the cutoff (the live one) count nowhere.
pub fn baseline_at(
    sessions: &[SessionLoad],
    today: i64,
    cutoff_us: i64,
    p: &HistoryParams,
) -> Baseline {
    let over: Vec<SessionLoad> = sessions
        .iter()
        .filter(|x| x.end_us <= cutoff_us)
        .copied()
        .collect();
    let mut b = baseline(&days_of(&over), today, p);
    let earlier: Vec<&Day> = over
        .iter()
        .filter(|x| x.day == today)
        .map(|x| &x.loads)
        .collect();
    let add = |v: &mut Option<f64>, f: fn(&Day) -> f64| {
        if let Some(v) = v {
            *v += earlier.iter().map(|d| f(d)).sum::<f64>();
        }
    };
    add(&mut b.hsr_prev6d_m, |d| d.hsr_m);
    add(&mut b.moderate_prev6d_m, |d| d.moderate_m);
    add(&mut b.v24_prev6d_m, |d| d.v24_m);
    if let Some(v) = b.vmax95_in_prev6d.as_mut() {
        *v |= earlier.iter().any(|d| d.vmax95 > 0);
    }
    b
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
