//! The history statistics on a hand-built history: five weeks of three 100 m HSR sessions a week (days 1, 3, 5 of each
//! week), one extra 70 m session on day 9, ≥ 95 % Vmax on day 3 and ≥ 90 % on days 3 and 20.
//! Every expectation below is worked out by hand from those loads.

use super::*;

// The default parameter set's history rules, as the archive's callers use them.
fn trend(d: &[Day]) -> Vec<Trend> {
    super::trend(d, &HistoryParams::default())
}
fn baseline(days: &[Day], today: i64) -> Baseline {
    super::baseline(days, today, &HistoryParams::default())
}
fn baseline_at(sessions: &[SessionLoad], today: i64, cutoff_us: i64) -> Baseline {
    super::baseline_at(sessions, today, cutoff_us, &HistoryParams::default())
}

fn history() -> Vec<Day> {
    let mut v = Vec::new();
    for day in 0..35 {
        let mut d = Day {
            day,
            ..Day::default()
        };
        if [1, 3, 5].contains(&(day % 7)) {
            d.sessions = 1;
            d.hsr_m = 100.0;
            d.moderate_m = 300.0;
            d.session_hsr_max_m = 100.0;
            d.session_sprint_max_m = 20.0;
            d.sprint_1min_peak_m = 15.0;
        }
        if day == 9 {
            d.sessions = 1;
            d.hsr_m = 70.0;
            d.session_hsr_max_m = 70.0;
        }
        if day == 3 {
            d.vmax95 = 1;
            d.vmax90 = 2;
        }
        if day == 20 {
            d.vmax90 = 1;
        }
        if d.sessions > 0 || d.vmax90 > 0 || day == 0 || day == 34 {
            v.push(d);
        }
    }
    v
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
}

#[test]
fn ewma_uses_lambda_two_over_n_plus_one() {
    let t = trend(&dense(&history(), 34));
    // Day 0: rest, both start at 0. Day 1: 100 m.
    close(t[1].ewma_acute_m, 0.25 * 100.0);
    close(t[1].ewma_chronic_m, 2.0 / 29.0 * 100.0);
    // Day 2: rest.
    close(t[2].ewma_acute_m, 0.75 * 25.0);
    close(t[2].ewma_chronic_m, 27.0 / 29.0 * (200.0 / 29.0));
    // Day 3: 100 m again.
    close(t[3].ewma_acute_m, 0.25 * 100.0 + 0.75 * 18.75);
}

#[test]
fn seven_day_sums_change_z_scores_and_days_since() {
    let t = trend(&dense(&history(), 34));
    close(t[6].hsr_7d_m, 300.0);
    close(t[9].hsr_7d_m, 370.0); // days 3..9: 3, 5, 8 and the extra 70 on 9
    close(t[15].hsr_7d_m, 370.0);
    close(t[16].hsr_7d_m, 300.0);
    // Change against the previous 7 days: day 15 (days 9..15: 370) vs days 2..8 (300).
    close(t[15].hsr_7d_change_pct.unwrap(), 100.0 * 70.0 / 300.0);
    assert_eq!(t[12].hsr_7d_change_pct, None); // not 14 days of history yet
    // Day 28's 7-day sum (300) against the 22 earlier sums of days 6..27: 7 of 370, 15 of 300.
    let mean = (7.0 * 370.0 + 15.0 * 300.0) / 22.0;
    let sd = ((7.0 * (370.0f64 - mean).powi(2) + 15.0 * (300.0f64 - mean).powi(2)) / 21.0).sqrt();
    close(t[28].hsr_7d_z.unwrap(), (300.0 - mean) / sd);
    assert_eq!(t[19].hsr_7d_z, None); // 13 earlier sums only
    assert_eq!(t[2].days_since_vmax95, None);
    assert_eq!(t[3].days_since_vmax95, Some(0));
    assert_eq!(t[30].days_since_vmax95, Some(27));
    assert_eq!(t[30].days_since_vmax90, Some(10));
}

#[test]
fn ratios_wait_for_28_days_and_monotony_and_strain_follow_foster() {
    let t = trend(&dense(&history(), 34));
    assert_eq!(t[26].acwr_ewma, None);
    assert_eq!(t[26].acwr_uncoupled, None);
    let r = t[27].acwr_ewma.unwrap();
    close(r, t[27].ewma_acute_m / t[27].ewma_chronic_m);
    // Uncoupled at day 34: acute = days 28..34 (300 / 7 per day), chronic = days 7..27 / 21:
    // days 8, 10, 12, 15, 17, 19, 22, 24, 26 and the 70 on day 9 → 970 / 21.
    close(
        t[34].acwr_uncoupled.unwrap(),
        (300.0 / 7.0) / (970.0 / 21.0),
    );
    // A week of 0, 100, 0, 100, 0, 100, 0 (days 28..34).
    let mean = 300.0 / 7.0;
    let sd = ((4.0 * mean * mean + 3.0 * (100.0f64 - mean).powi(2)) / 6.0).sqrt();
    close(t[34].monotony.unwrap(), mean / sd);
    close(t[34].strain.unwrap(), 300.0 * mean / sd);
}

#[test]
fn the_engine_baseline_as_of_a_day() {
    let b = baseline(&history(), 35);
    assert_eq!(b.days_of_history, Some(35));
    close(b.hsr_prev6d_m.unwrap(), 300.0); // days 29..34: 29, 31, 33
    close(b.hsr_prior7d_m.unwrap(), 300.0); // days 22..28
    close(b.moderate_prev6d_m.unwrap(), 900.0);
    assert_eq!(b.vmax95_in_prev6d, Some(false));
    assert_eq!(baseline(&history(), 8).vmax95_in_prev6d, Some(true)); // day 3 in 2..7
    // Last ≥ 95 % on day 3, last ≥ 90 % on day 20; as of day 3 neither has happened yet: the
    // history's length (days 0..2) as the lower bound.
    assert_eq!(b.days_since_vmax95, Some(32));
    assert_eq!(b.days_since_vmax90, Some(15));
    let early = baseline(&history(), 3);
    assert_eq!(
        (early.days_since_vmax90, early.days_since_vmax95),
        (Some(3), Some(3))
    );
    assert_eq!(baseline(&history(), 4).days_since_vmax95, Some(1));
    // 7-day sums of days 6..34: 7 of 370, 22 of 300.
    let mean = (7.0 * 370.0 + 22.0 * 300.0) / 29.0;
    close(b.hsr_7d_mean_m.unwrap(), mean);
    // 16 sessions: 15 of 100 m and one of 70 m → p90 = 100.
    close(b.session_hsr_p90_m.unwrap(), 100.0);
    // Mean of session 1-min sprint peaks: 15 sessions of 15 m and the extra one of 0.
    close(b.sprint_1min_norm_m.unwrap(), 15.0 * 15.0 / 16.0);
    assert_eq!(b.low_chronic_hsr, None); // needs 56 days
    // Too little history: the terms are unknown, not zero.
    let short = baseline(&history(), 5);
    assert_eq!(short.hsr_prev6d_m, None);
    assert_eq!(short.hsr_7d_mean_m, None);
    assert_eq!(baseline(&[], 5), Baseline::default());
}

/// A session of `hsr` m on `day`, from `h0` to `h1` o'clock (UTC).
fn session(day: i64, h0: i64, h1: i64, hsr: f64, vmax95: u32) -> SessionLoad {
    let at = |h: i64| (day * 86_400 + h * 3_600) * 1_000_000;
    SessionLoad {
        day,
        start_us: at(h0),
        end_us: at(h1),
        loads: Day {
            day,
            sessions: 1,
            hsr_m: hsr,
            moderate_m: 2.0 * hsr,
            vmax95,
            session_hsr_max_m: hsr,
            ..Day::default()
        },
    }
}

#[test]
fn a_morning_session_counts_in_the_afternoon_s_seven_day_sums() {
    // Two weeks of one 100 m session a day, then on day 14 a morning session (300 m, ≥ 95 %
    // Vmax) and the afternoon's, live at the cutoff (13:00).
    let mut s: Vec<SessionLoad> = (0..14).map(|d| session(d, 10, 11, 100.0, 0)).collect();
    s.push(session(14, 9, 11, 300.0, 1));
    s.push(session(14, 12, 16, 999.0, 1));
    let cutoff = (14 * 86_400 + 13 * 3_600) * 1_000_000;
    let b = baseline_at(&s, 14, cutoff);
    close(b.hsr_prev6d_m.unwrap(), 600.0 + 300.0);
    close(b.moderate_prev6d_m.unwrap(), 1_200.0 + 600.0);
    assert_eq!(b.vmax95_in_prev6d, Some(true));
    // The days before are what they were; the live session is nowhere.
    let before = baseline(&days_of(&s[..14]), 14);
    assert_eq!(b.hsr_7d_mean_m, before.hsr_7d_mean_m);
    assert_eq!(b.days_of_history, Some(14));
    close(before.hsr_prev6d_m.unwrap(), 600.0);
    // Two sessions on one day sum in its daily load.
    let days = days_of(&s);
    assert_eq!(days.len(), 15);
    assert_eq!((days[14].sessions, days[14].hsr_m), (2, 1_299.0));
    assert_eq!(days[14].session_hsr_max_m, 999.0);
}

#[test]
fn his_vmax_is_the_top_speed_he_held_in_any_session_of_the_history() {
    let mut h = history();
    assert_eq!(
        baseline(&h, 35).vmax_observed_mps,
        None,
        "no speeds recorded"
    );
    for (day, v) in [(1, 8.4), (8, 9.1), (15, 14.0), (22, 8.9)] {
        h.iter_mut().find(|d| d.day == day).unwrap().max_speed_mps = v;
    }
    // 14 m/s is no footballer's: ignored; the history before day 10 only knows 9.1.
    assert_eq!(baseline(&h, 35).vmax_observed_mps, Some(9.1));
    assert_eq!(baseline(&h, 5).vmax_observed_mps, Some(8.4));
}

#[test]
fn the_history_rules_are_parameters() {
    let d = dense(&history(), 34);
    // Ratios: withheld until 28 days by default; given from day 20 when 21 days suffice.
    let p = HistoryParams {
        ratio_min_days: 21,
        z_min_sums: 3,
        ..HistoryParams::default()
    };
    let (def, short) = (trend(&d), super::trend(&d, &p));
    assert_eq!(def[20].acwr_ewma, None);
    assert!(short[20].acwr_ewma.is_some() && short[20].acwr_uncoupled.is_some());
    // The z-score: after 14 earlier 7-day sums by default (day 20), after 3 here (day 9).
    assert_eq!(def[19].hsr_7d_z, None);
    assert!(def[20].hsr_7d_z.is_some());
    assert!(short[9].hsr_7d_z.is_some() && short[8].hsr_7d_z.is_none());
    // A slower acute EWMA weighs today's load less.
    let slow = super::trend(
        &d,
        &HistoryParams {
            ewma_acute_days: 14,
            ..HistoryParams::default()
        },
    );
    close(slow[1].ewma_acute_m, 2.0 / 15.0 * 100.0);
    // The p90 of session HSR needs 5 sessions by default; 20 here.
    let p90 = |min| {
        super::baseline(
            &history(),
            12,
            &HistoryParams {
                p90_min_sessions: min,
                ..HistoryParams::default()
            },
        )
        .session_hsr_p90_m
    };
    assert!(p90(5).is_some());
    assert_eq!(p90(20), None);
}
