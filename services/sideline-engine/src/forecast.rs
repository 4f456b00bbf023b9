//! "Red in ~4 min at the current rate": when will the score cross the next band?
//!
//! The score is re-evaluated on a projection of the live inputs: cumulative session quantities
//! (HSR, > 14.4 and > 24 km/h, sprint distance) grow at the rate measured over the trailing
//! trend window, the 60-s sprint distance is replaced by its trailing average, and flags keep
//! their current state. With non-negative rates the projected score never decreases with the
//! horizon, so the first crossing is found by bisection. No crossing within the horizon gives
//! `None`; a band already reached gives `Some(0)`.
//!
//! One rate is one guess: red is also forecast at the rate of a longer trailing window
//! (`risk.forecast_trend_long_s`, 10 min), and the two crossings are said as a range ("red in
//! 8–15 min") rather than a single minute. The alert rules read the short window's minute.

use serde::{Deserialize, Serialize};

use crate::risk::{RiskContext, RiskInputs, score_only};

/// Trailing rates of the live inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// HSR distance per second, m/s.
    pub hsr: f64,
    /// Distance ≥ 14.4 km/h per second.
    pub moderate: f64,
    /// Distance ≥ 24 km/h per second.
    pub v24: f64,
    /// Sprint distance per second.
    pub sprint: f64,
    /// Average sprint distance per 60 s over the trend window, m.
    pub sprint_60s_mean_m: f64,
}

/// Minutes until each band, at the current rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Minutes until amber (0 if already amber or red; `None` beyond the horizon).
    pub to_amber_min: Option<f64>,
    /// Minutes until red.
    pub to_red_min: Option<f64>,
    /// Minutes until red at the longer window's rate (the other end of the range).
    #[serde(default)]
    pub to_red_long_rate_min: Option<f64>,
    /// Minutes left to the session's planned full time, when the schedule gives one: the
    /// forecast then looks no further (a crossing after full time is none).
    #[serde(default)]
    pub full_time_in_min: Option<f64>,
}

impl Forecast {
    /// Red in words with the range of the two rates: "red in 8–15 min at the last 5 and 10
    /// minutes' rates", "red in ~6 min"
    /// (both agree), "red in ~6 min at the last 5 minutes' rate" (the longer rate does not
    /// reach it within the horizon); `None` without a crossing or once red is reached. With
    /// the session's full time known: "may reach red before full time (in 8–15 min at the
    /// last 5 and 10 minutes' rates)".
    pub fn red_text(&self, short_s: u32, long_s: u32) -> Option<String> {
        let m = |x: f64| x.round().max(1.0);
        // When, and a note on the other rate.
        let (when, note) = match (self.to_red_min, self.to_red_long_rate_min) {
            (Some(a), _) if a <= 0.0 => None,
            (Some(a), Some(b)) if m(a) != m(b) => Some((
                format!(
                    "in {:.0}–{:.0} min at the last {} and {} minutes' rates",
                    m(a.min(b)),
                    m(a.max(b)),
                    short_s / 60,
                    long_s / 60
                ),
                None,
            )),
            (Some(a), Some(_)) => Some((format!("in ~{:.0} min", m(a)), None)),
            (Some(a), None) => Some((
                format!(
                    "in ~{:.0} min at the last {} minutes' rate",
                    m(a),
                    short_s / 60
                ),
                Some(format!("not at the last {}'", long_s / 60)),
            )),
            (None, _) => None,
        }?;
        Some(match (self.full_time_in_min, note) {
            (Some(_), Some(n)) => format!("may reach red before full time ({when}; {n})"),
            (Some(_), None) => format!("may reach red before full time ({when})"),
            (None, Some(n)) => format!("red {when} ({n})"),
            (None, None) => format!("red {when}"),
        })
    }
}

fn project(x: &RiskInputs, r: &Rates, minutes: f64) -> RiskInputs {
    let s = minutes * 60.0;
    RiskInputs {
        session_hsr_m: x.session_hsr_m + r.hsr * s,
        session_moderate_m: x.session_moderate_m + r.moderate * s,
        session_v24_m: x.session_v24_m + r.v24 * s,
        session_sprint_m: x.session_sprint_m + r.sprint * s,
        sprint_60s_m: r.sprint_60s_mean_m,
        ..*x
    }
}

fn minutes_to(
    target: f64,
    now_score: f64,
    x: &RiskInputs,
    r: &Rates,
    ctx: &RiskContext<'_>,
    horizon: f64,
) -> Option<f64> {
    if now_score >= target {
        return Some(0.0);
    }
    if horizon <= 0.0 {
        return None;
    }
    if score_only(&project(x, r, horizon), ctx) < target {
        return None;
    }
    let (mut lo, mut hi) = (0.0, horizon);
    while hi - lo > 0.05 {
        let mid = 0.5 * (lo + hi);
        if score_only(&project(x, r, mid), ctx) >= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some((hi * 10.0).round() / 10.0)
}

/// Forecast both bands from the current inputs, their rates over the short and the long
/// trailing windows, and the current score; no further than `minutes_left` to the session's
/// planned full time, when known.
pub fn forecast(
    x: &RiskInputs,
    r: &Rates,
    long: &Rates,
    now_score: f64,
    ctx: &RiskContext<'_>,
    minutes_left: Option<f64>,
) -> Forecast {
    let minutes_left = minutes_left.map(|m| m.max(0.0));
    let horizon = minutes_left.map_or(ctx.params.forecast_horizon_min, |m| {
        m.min(ctx.params.forecast_horizon_min)
    });
    let to_red_min = minutes_to(ctx.params.red, now_score, x, r, ctx, horizon);
    // The other end of the range is only said beside a crossing still ahead: skip the
    // second search otherwise (one score per snapshot saved for most players).
    let to_red_long_rate_min = match to_red_min {
        Some(m) if m > 0.0 => minutes_to(ctx.params.red, now_score, x, long, ctx, horizon),
        _ => None,
    };
    Forecast {
        to_amber_min: minutes_to(ctx.params.amber, now_score, x, r, ctx, horizon),
        to_red_min,
        to_red_long_rate_min,
        full_time_in_min: minutes_left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RiskParams;
    use crate::profile::Baseline;

    #[test]
    fn a_steady_hsr_rate_forecasts_the_minute_the_weekly_z_term_fires() {
        let rp = RiskParams {
            amber: 1.0,
            red: 1.9,
            ..Default::default()
        };
        let b = Baseline {
            hsr_7d_mean_m: Some(1000.0),
            hsr_7d_sd_m: Some(100.0),
            hsr_prev6d_m: Some(900.0),
            ..Default::default()
        };
        let ctx = RiskContext {
            params: &rp,
            profile: None,
            baseline: Some(&b),
        };
        let x = RiskInputs {
            session_hsr_m: 100.0,
            ..Default::default()
        };
        // z = (900 + 100 − 1000)/100 = 0 now; +10 m/min → z 1 after 10 min, z 2 after 20 min.
        let r = Rates {
            hsr: 10.0 / 60.0,
            ..Default::default()
        };
        // Over the last 10 minutes he ran at half that rate: red in 40 min, beyond the
        // 30-min horizon, at the longer rate.
        let half = Rates {
            hsr: 5.0 / 60.0,
            ..Default::default()
        };
        let f = forecast(&x, &r, &half, score_only(&x, &ctx), &ctx, None);
        assert!((f.to_amber_min.unwrap() - 10.0).abs() <= 0.1, "{f:?}");
        assert!((f.to_red_min.unwrap() - 20.0).abs() <= 0.1, "{f:?}");
        assert_eq!(f.to_red_long_rate_min, None);
        assert_eq!(
            f.red_text(300, 600).as_deref(),
            Some("red in ~20 min at the last 5 minutes' rate (not at the last 10')")
        );
        // At two thirds of it: red in 30 min. A range, earliest first.
        let two_thirds = Rates {
            hsr: 10.0 / 60.0 * 2.0 / 3.0,
            ..Default::default()
        };
        let f = forecast(&x, &r, &two_thirds, score_only(&x, &ctx), &ctx, None);
        assert!(
            (f.to_red_long_rate_min.unwrap() - 30.0).abs() <= 0.1,
            "{f:?}"
        );
        assert_eq!(
            f.red_text(300, 600).as_deref(),
            Some("red in 20–30 min at the last 5 and 10 minutes' rates")
        );
        // Faster lately than over 10 min, or slower: the range is the same either way round.
        let g = forecast(&x, &two_thirds, &r, score_only(&x, &ctx), &ctx, None);
        assert_eq!(
            g.red_text(300, 600).as_deref(),
            Some("red in 20–30 min at the last 5 and 10 minutes' rates")
        );
        // The same rate: one minute.
        let same = forecast(&x, &r, &r, score_only(&x, &ctx), &ctx, None);
        assert_eq!(same.red_text(300, 600).as_deref(), Some("red in ~20 min"));

        // Aware of the time left: 32 minutes to full time, red in 20–30 min before it.
        let f = forecast(&x, &r, &two_thirds, score_only(&x, &ctx), &ctx, Some(32.0));
        assert_eq!(
            f.red_text(300, 600).as_deref(),
            Some(
                "may reach red before full time (in 20–30 min at the last 5 and 10 minutes' rates)"
            )
        );
        // 25 minutes left: the slower rate's 30 min fall after full time.
        let f = forecast(&x, &r, &two_thirds, score_only(&x, &ctx), &ctx, Some(25.0));
        assert_eq!(f.to_red_long_rate_min, None);
        assert_eq!(
            f.red_text(300, 600).as_deref(),
            Some(
                "may reach red before full time (in ~20 min at the last 5 minutes' rate; not at the last 10')"
            )
        );
        // 15 minutes left: no red before full time, so nothing to say (and no "rising").
        let f = forecast(&x, &r, &two_thirds, score_only(&x, &ctx), &ctx, Some(15.0));
        assert_eq!((f.to_red_min, f.red_text(300, 600)), (None, None));
        assert!((f.to_amber_min.unwrap() - 10.0).abs() <= 0.1, "{f:?}");
        // After full time (stoppage time): no crossing ahead.
        let f = forecast(&x, &r, &r, score_only(&x, &ctx), &ctx, Some(-3.0));
        assert_eq!(
            (f.to_amber_min, f.to_red_min, f.full_time_in_min),
            (None, None, Some(0.0))
        );
    }

    #[test]
    fn no_trend_means_no_crossing_and_a_reached_band_means_zero() {
        let rp = RiskParams::default();
        let ctx = RiskContext {
            params: &rp,
            profile: None,
            baseline: None,
        };
        let x = RiskInputs::default();
        let none = Rates::default();
        let f = forecast(&x, &none, &none, 0.0, &ctx, None);
        assert_eq!(f, Forecast::default());
        assert_eq!(f.red_text(300, 600), None);
        let f = forecast(&x, &none, &none, 3.5, &ctx, None);
        assert_eq!(f.to_amber_min, Some(0.0));
        assert_eq!(f.to_red_min, None);
    }
}
