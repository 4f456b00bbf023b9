//! The whole player engine on hand-built signals with known answers.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic

use sideline_engine::{AthleteProfile, Engine, Micros, Params, PlayerMetrics, Sample, Signal};

const T0: Micros = 1_700_000_000_000_000;
const DT: Micros = 100_000; // 10 Hz

/// Feed a 10 Hz device-speed trace (m/s per sample) starting at `T0 + offset`, finish, and
/// return every snapshot.
fn run(
    speeds: &[(f64, usize)],
    params: Params,
    profile: Option<AthleteProfile>,
) -> Vec<PlayerMetrics> {
    run_at(&[(0, speeds.to_vec())], params, profile)
}

fn run_at(
    parts: &[(Micros, Vec<(f64, usize)>)],
    params: Params,
    profile: Option<AthleteProfile>,
) -> Vec<PlayerMetrics> {
    let mut e: Engine = Engine::new(params, true);
    if let Some(p) = profile {
        e.set_profile(p);
    }
    let mut out = sideline_engine::Outputs::default();
    for (offset, speeds) in parts {
        let mut t = T0 + offset;
        let mut x = 0.0;
        for &(v, n) in speeds {
            for _ in 0..n {
                x += v * 0.1;
                // The first samples after a long gap are held until the next ones confirm
                // the jump (then accepted): not a refusal.
                let r = e.ingest(
                    "p",
                    "t",
                    "s",
                    Sample::xy(t, x, 0.0, Some(v as f32)),
                    &mut out,
                );
                assert!(
                    matches!(r, Ok(()) | Err(sideline_engine::reorder::Refusal::Held)),
                    "{r:?}"
                );
                t += DT;
            }
        }
    }
    e.finish(&mut out);
    out.metrics
}

fn trace(parts: &[(f64, usize)]) -> Vec<(f64, usize)> {
    parts.to_vec()
}

fn no_smoothing() -> Params {
    let mut p = Params::default();
    p.speed.median_samples = 1;
    p.speed.ema_tau_s = 0.0;
    p
}

/// For pure accounting tests built from instant speed steps: without this, a step of a few
/// m/s in 0.1 s is (rightly) rejected as an artefact (implied acceleration > 9 m/s²).
fn steps_allowed() -> Params {
    let mut p = no_smoothing();
    p.speed.max_accel_mps2 = 1e6;
    p
}

#[test]
fn distance_and_speed_bands_add_up() {
    // 60 s each at 1, 3, 5, 6 and 8 m/s (first sample of a run integrates nothing).
    let out = run(
        &trace(&[(1.0, 600), (3.0, 600), (5.0, 600), (6.0, 600), (8.0, 600)]),
        steps_allowed(),
        None,
    );
    let t = &out.last().unwrap().totals;
    assert!((t.walk_m - 59.9).abs() < 1e-6, "{}", t.walk_m);
    assert!((t.jog_m - 180.0).abs() < 1e-6);
    assert!((t.run_m - 300.0).abs() < 1e-6);
    assert!(
        (t.hsr_m - 840.0).abs() < 1e-6,
        "HSR = 6 + 8 m/s parts: {}",
        t.hsr_m
    );
    assert!((t.sprint_m - 480.0).abs() < 1e-6);
    assert!(
        (t.moderate_m - 1140.0).abs() < 1e-6,
        "≥ 14.4 km/h: {}",
        t.moderate_m
    );
    assert!((t.v24_m - 480.0).abs() < 1e-6, "≥ 24 km/h = the 8 m/s part");
    assert!((t.distance_m - (t.walk_m + t.jog_m + t.run_m + t.hsr_m)).abs() < 1e-6);
    assert_eq!(t.sprints, 1);
    assert!((t.max_speed_mps - 8.0).abs() < 1e-9);
    assert!((t.minutes - 299.9 / 60.0).abs() < 1e-9);
}

/// Repeated high-intensity bouts (Carling et al. 2012): three efforts ≥ 5.5 m/s of ≥ 1 s with
/// ≤ 20 s between are one bout; a fourth in the same chain is still one; a 25-s pause breaks
/// the chain, and an effort shorter than 1 s does not count.
#[test]
fn three_high_speed_efforts_within_twenty_seconds_are_one_repeated_bout() {
    let effort = (6.5, 15); // 1.5 s
    let rest = |s: usize| (2.0, s * 10);
    let bouts = |parts: &[(f64, usize)]| {
        let mut all = vec![rest(30)];
        all.extend_from_slice(parts);
        all.push(rest(30));
        run(&all, steps_allowed(), None)
            .last()
            .unwrap()
            .totals
            .rhi_bouts
    };
    assert_eq!(bouts(&[effort, rest(10), effort, rest(15), effort]), 1);
    assert_eq!(
        bouts(&[effort, rest(10), effort, rest(10), effort, rest(10), effort]),
        1
    );
    assert_eq!(bouts(&[effort, rest(10), effort, rest(25), effort]), 0);
    assert_eq!(bouts(&[effort, rest(10), (6.5, 6), rest(10), effort]), 0);
    assert_eq!(
        bouts(&[
            effort,
            rest(5),
            effort,
            rest(5),
            effort,
            rest(40),
            effort,
            rest(5),
            effort,
            rest(5),
            effort
        ]),
        2
    );
}

#[test]
fn a_speed_ramp_of_four_metres_per_second_squared_is_one_acceleration_and_hmld() {
    // 10 s jogging at 3 m/s and back to standing gently, then +0.4 m/s per 0.1 s for 1.5 s
    // (4 m/s²) to 6 m/s, 3 s steady, then −0.5 m/s per 0.1 s (−5 m/s²) to 0, 3 s standing.
    let mut speeds = vec![(0.0, 20)];
    speeds.extend((1..=20).map(|k| (0.15 * k as f64, 1)));
    speeds.push((3.0, 100));
    speeds.extend((1..=20).map(|k| (3.0 - 0.15 * k as f64, 1)));
    speeds.push((0.0, 20));
    speeds.extend((1..=15).map(|k| (0.4 * k as f64, 1)));
    speeds.push((6.0, 30));
    speeds.extend((1..=12).map(|k| ((6.0 - 0.5 * k as f64).max(0.0), 1)));
    speeds.push((0.0, 30));
    let out = run(&speeds, no_smoothing(), None);
    let t = &out.last().unwrap().totals;
    assert_eq!((t.accelerations, t.decelerations), (1, 1), "{t:?}");
    assert_eq!((t.accelerations_moderate, t.decelerations_moderate), (0, 0));
    // HMLD: all of the 6 m/s part plus the distance covered while |a| ≥ 2 m/s².
    assert!(
        t.hmld_m > 18.0 && t.hmld_m < t.distance_m,
        "{} of {}",
        t.hmld_m,
        t.distance_m
    );
}

#[test]
fn a_gentle_acceleration_counts_only_in_the_two_to_three_band() {
    let mut speeds = vec![(0.0, 20)];
    speeds.extend((1..=20).map(|k| (0.25 * k as f64, 1))); // 2.5 m/s² for 2 s
    speeds.push((5.0, 30));
    let t = run(&speeds, no_smoothing(), None)
        .last()
        .unwrap()
        .totals
        .clone();
    assert_eq!((t.accelerations, t.accelerations_moderate), (0, 1));
}

#[test]
fn max_velocity_exposures_grade_the_held_peak_against_the_profile_vmax() {
    let profile = AthleteProfile {
        player: "p".into(),
        vmax_mps: Some(10.0),
        ..Default::default()
    };
    // Efforts holding 8.7, 9.2 and 9.6 m/s for 2 s; a 0.2 s spike to 9.9 does not count.
    let speeds = trace(&[
        (3.0, 50),
        (8.7, 20),
        (3.0, 50),
        (9.2, 20),
        (3.0, 50),
        (9.6, 20),
        (3.0, 50),
        (8.0, 10),
        (9.9, 2),
        (8.0, 10),
        (3.0, 50),
    ]);
    let t = run(&speeds, no_smoothing(), Some(profile))
        .last()
        .unwrap()
        .totals
        .clone();
    assert_eq!(
        t.vmax_exposures,
        [3, 2, 1],
        "85 %: 8.7, 9.2, 9.6; 90 %: 9.2, 9.6; 95 %: 9.6"
    );
    assert!(!t.vmax_is_default);
}

#[test]
fn half_time_does_not_sit_inside_the_rolling_windows() {
    // 2 min at 4 m/s, a 15-min break without fixes, 30 s at 4 m/s.
    let snaps = run_at(
        &[
            (0, trace(&[(4.0, 1200)])),
            (1_020 * 1_000_000, trace(&[(4.0, 300)])),
        ],
        steps_allowed(),
        None,
    );
    let after: Vec<&PlayerMetrics> = snaps
        .iter()
        .filter(|m| m.t > T0 + 1_020 * 1_000_000 && m.status.signal == Signal::Ok)
        .collect();
    let best = |k: usize| {
        after
            .iter()
            .map(|m| m.windows[k].distance_m)
            .fold(0.0, f64::max)
    };
    // The last minute played right after the restart: 30 s before the break, 30 s after.
    assert!((best(0) - 240.0).abs() < 8.0, "1-min window {}", best(0));
    // The last 10 minutes played: all 2.5 minutes, not the break's zeros.
    assert!((best(3) - 600.0).abs() < 8.0, "10-min window {}", best(3));
}

/// The same trace with his Vmax (10 m/s) from the profile, from his history, or unknown.
fn vmax_run(profile_vmax: Option<f64>, seen: Option<f64>) -> sideline_engine::Totals {
    let mut e: Engine = Engine::new(steps_allowed(), true);
    e.set_profile(AthleteProfile {
        player: "p".into(),
        vmax_mps: profile_vmax,
        ..Default::default()
    });
    e.set_baseline(
        "p",
        sideline_engine::Baseline {
            vmax_observed_mps: seen,
            vmax95_in_prev6d: Some(false),
            ..Default::default()
        },
    );
    // 5 s at 8.7 m/s (87 %), 3 s at 9.2 (92 %), 2 s at 9.6 (96 %), between jogs.
    let out = feed(
        &mut e,
        &[
            (3.0, 50),
            (8.7, 50),
            (3.0, 50),
            (9.2, 30),
            (3.0, 50),
            (9.6, 20),
            (3.0, 50),
        ],
    );
    out.metrics.last().unwrap().totals.clone()
}

#[test]
fn vmax_comes_from_the_profile_else_his_history_and_relative_bands_sit_beside_absolute_ones() {
    let own = vmax_run(Some(10.0), Some(9.0));
    assert_eq!((own.vmax_ref_mps, own.vmax_from_history), (10.0, false));
    // Distance at ≥ 85 / 90 / 95 % of 10 m/s: every sample at or above, 0.1 s each.
    let naive = |f: f64| {
        [(8.7, 50), (9.2, 30), (9.6, 20)]
            .iter()
            .filter(|(v, _)| *v >= f * 10.0)
            .map(|(v, n)| v * 0.1 * f64::from(*n))
            .sum::<f64>()
    };
    for (k, f) in [0.85, 0.9, 0.95].into_iter().enumerate() {
        assert!(
            (own.vmax_band_m[k] - naive(f)).abs() < 0.5,
            "{f}: {} vs {}",
            own.vmax_band_m[k],
            naive(f)
        );
    }
    assert!(own.vmax_band_m[0] > own.vmax_band_m[1] && own.vmax_band_m[1] > own.vmax_band_m[2]);
    // No profile value: the top speed he held in his history.
    let seen = vmax_run(None, Some(10.0));
    assert_eq!((seen.vmax_ref_mps, seen.vmax_from_history), (10.0, true));
    assert!(!seen.vmax_is_default);
    assert_eq!(seen.vmax_band_m, own.vmax_band_m);
    assert_eq!(seen.vmax_exposures, own.vmax_exposures);
    // Neither (or an implausible one): the default, flagged, for display only.
    for none in [None, Some(14.0)] {
        let d = vmax_run(None, none);
        assert!(d.vmax_is_default && !d.vmax_from_history, "{none:?}");
    }
}

#[test]
fn with_vmax_from_history_the_score_judges_the_vmax_exposure_term() {
    use sideline_engine::risk::{TermId, TermState};
    let state = |seen| {
        let mut e: Engine = Engine::new(steps_allowed(), true);
        e.set_baseline(
            "p",
            sideline_engine::Baseline {
                vmax_observed_mps: seen,
                vmax95_in_prev6d: Some(false),
                ..Default::default()
            },
        );
        let out = feed(&mut e, &[(3.0, 100)]);
        let m = out.metrics.last().unwrap().clone();
        m.risk
            .terms
            .iter()
            .find(|t| t.id == TermId::CNoVmaxExposure)
            .unwrap()
            .state
    };
    assert_eq!(state(None), TermState::Unknown);
    assert_eq!(state(Some(9.4)), TermState::Fired);
}

#[test]
fn rolling_windows_and_peaks_follow_the_signal() {
    // 2 min at 2 m/s, 1 min at 7.5 m/s, 2 min at 2 m/s.
    let out = run(
        &trace(&[(2.0, 1200), (7.5, 600), (2.0, 1200)]),
        steps_allowed(),
        None,
    );
    let last = out.last().unwrap();
    let one_min = last.windows.iter().find(|w| w.length_s == 60).unwrap();
    assert!(
        (one_min.distance_m - 120.0).abs() < 0.5,
        "{}",
        one_min.distance_m
    );
    assert!(
        (one_min.peak_distance_m - 450.0).abs() < 0.5,
        "{}",
        one_min.peak_distance_m
    );
    assert!((one_min.peak_sprint_m - 450.0).abs() < 0.5);
    assert_eq!(one_min.sprint_m, 0.0);
}

#[test]
fn a_player_going_off_and_coming_back_counts_only_time_on_the_pitch() {
    // 5 min on, 20 min off (no data), 5 min on, all at 3 m/s.
    let out = run_at(
        &[(0, vec![(3.0, 3000)]), (25 * 60_000_000, vec![(3.0, 3000)])],
        no_smoothing(),
        None,
    );
    let last = out.last().unwrap();
    assert!(
        (last.totals.minutes - 599.8 / 60.0).abs() < 1e-6,
        "{}",
        last.totals.minutes
    );
    assert!(
        (last.totals.distance_m - 1799.4).abs() < 1e-6,
        "nothing across the gap"
    );
    assert_eq!(last.quality.gaps, 1);
    // While off, the player is reported as "no signal" for a while, then not at all.
    let off: Vec<_> = out
        .iter()
        .filter(|m| m.t > T0 + 5 * 60_000_000 && m.t < T0 + 25 * 60_000_000)
        .collect();
    assert!(off.iter().any(|m| m.status.signal == Signal::NoSignal));
    assert!(
        off.len() < 80,
        "snapshots stop after the idle report period: {}",
        off.len()
    );
}

#[test]
fn state_stays_bounded_over_a_long_session() {
    let mut e: Engine = Engine::new(Params::default(), true);
    let mut out = sideline_engine::Outputs::default();
    let mut sizes = Vec::new();
    for sec in 0..3 * 3600 {
        let t = T0 + sec * 1_000_000;
        for k in 0..10 {
            let v = if (sec / 30) % 4 == 0 { 7.5 } else { 2.5 };
            e.ingest(
                "p",
                "t",
                "s",
                Sample::xy(t + k * DT, 0.0, 0.0, Some(v)),
                &mut out,
            )
            .unwrap();
        }
        for k in 0..100 {
            e.ingest(
                "p",
                "t",
                "s",
                Sample::imu(t + k * 10_000, 0.0, 0.0, 1.0 + 0.1 * (k % 7) as f32),
                &mut out,
            )
            .unwrap();
        }
        out.clear();
        if sec % 1800 == 0 {
            sizes.push(e.players().next().unwrap().state_bytes());
        }
    }
    let (first, last) = (sizes[1], *sizes.last().unwrap());
    assert!(
        last <= first + 1024,
        "state grew from {first} to {last} bytes over 3 h: {sizes:?}"
    );
    assert!(last <= 64 * 1024, "{last} bytes");
}

/// A player one HSR spike away from red: amber from his profile (recent hamstring injury, low
/// Nordic force: 3.1), his 7-day HSR at his norm (z = 0; +200 m makes z = 2, +1.9 → red).
fn near_red(e: &mut Engine) {
    e.set_profile(AthleteProfile {
        player: "p".into(),
        vmax_mps: Some(9.5),
        susceptibility: sideline_engine::profile::Susceptibility {
            hamstring: Some(sideline_engine::profile::HamstringHistory::Recent),
            nordic_n: Some(250.0),
            ..Default::default()
        },
        ..Default::default()
    });
    e.set_baseline(
        "p",
        sideline_engine::Baseline {
            hsr_7d_mean_m: Some(1000.0),
            hsr_7d_sd_m: Some(100.0),
            hsr_prev6d_m: Some(1000.0),
            ..Default::default()
        },
    );
}

/// Feed a 10 Hz device-speed trace to `e`; every snapshot and alert event.
fn feed(e: &mut Engine, speeds: &[(f64, usize)]) -> sideline_engine::Outputs {
    let mut out = sideline_engine::Outputs::default();
    let (mut t, mut x) = (T0, 0.0);
    for &(v, n) in speeds {
        for _ in 0..n {
            x += v * 0.1;
            let _ = e.ingest(
                "p",
                "t",
                "s",
                Sample::xy(t, x, 0.0, Some(v as f32)),
                &mut out,
            );
            t += DT;
        }
    }
    e.finish(&mut out);
    out
}

#[test]
fn a_sprint_in_the_first_minute_forecasts_nothing_and_raises_no_rising_alert() {
    let mut e: Engine = Engine::new(Params::default(), true);
    near_red(&mut e);
    // Kick-off: 10 s jogging, a 12 s sprint at 8 m/s (96 m of HSR), then 4 min of walking.
    let out = feed(&mut e, &[(3.0, 100), (8.0, 120), (1.5, 2_400)]);
    let m = &out.metrics;
    let rising: Vec<_> = out
        .alerts
        .iter()
        .filter(|a| a.kind == sideline_engine::alerts::AlertKind::StrainRiskRising)
        .collect();
    assert!(rising.is_empty(), "{rising:?}");
    assert!(
        m.iter().all(|s| s.forecast.to_red_min.is_none()),
        "a forecast in the first minutes"
    );
    assert!(
        m.iter()
            .any(|s| s.risk.band == sideline_engine::risk::Band::Amber)
    );
    // The control: without the 5-minute rule the sprint's rate is projected.
    let mut p = Params::default();
    p.risk.forecast_min_on_field_s = 0;
    let mut e: Engine = Engine::new(p, true);
    near_red(&mut e);
    let out = feed(&mut e, &[(3.0, 100), (8.0, 120), (1.5, 2_400)]);
    assert!(
        out.metrics
            .iter()
            .any(|s| s.forecast.to_red_min.is_some_and(|x| x > 0.0)),
        "the control forecasts nothing"
    );
}

#[test]
fn a_sprint_in_the_first_minute_after_a_substitution_raises_no_rising_alert() {
    // 20 min on the bench walking at 1 m/s (streamed), on at 20′: 10 s jogging, a 12 s
    // sprint at 8 m/s, then 4 min of walking.
    let trace = [(1.0, 12_000), (3.0, 100), (8.0, 120), (1.5, 2_400)];
    let entry = T0 + 1_200 * 1_000_000;
    let rising = |out: &sideline_engine::Outputs| {
        out.alerts
            .iter()
            .filter(|a| a.kind == sideline_engine::alerts::AlertKind::StrainRiskRising)
            .count()
    };
    let mut e: Engine = Engine::new(Params::default(), true);
    near_red(&mut e);
    e.set_pitch("s", "p", entry, Some(true));
    let out = feed(&mut e, &trace);
    assert_eq!(rising(&out), 0);
    assert!(
        out.metrics
            .iter()
            .filter(|s| s.t >= entry)
            .all(|s| s.forecast.to_red_min.is_none()),
        "a forecast in his first minutes on the pitch"
    );
    // The control: without the lineup his bench time counts as play, and the sprint's rate
    // is projected at once — a "rising" alert a minute after he came on.
    let mut e: Engine = Engine::new(Params::default(), true);
    near_red(&mut e);
    let out = feed(&mut e, &trace);
    assert!(rising(&out) > 0, "the control raised no rising alert");
}

#[test]
fn the_forecast_looks_no_further_than_full_time() {
    // The steady rate of the test below: red about 10 minutes after the 6th minute.
    let mut trace = Vec::new();
    for _ in 0..10 {
        trace.push((6.0, 20));
        trace.push((2.0, 340));
    }
    let last = |full_time_min: Option<i64>| {
        let mut e: Engine = Engine::new(Params::default(), true);
        near_red(&mut e);
        e.set_full_time("s", full_time_min.map(|m| T0 + m * 60_000_000));
        feed(&mut e, &trace).metrics.last().unwrap().forecast
    };
    let d = Params::default().risk;
    // 30 minutes to full time: said as before full time.
    let f = last(Some(36));
    let text = f
        .red_text(d.forecast_trend_s, d.forecast_trend_long_s)
        .unwrap();
    assert!(
        text.starts_with("may reach red before full time (in "),
        "{text}"
    );
    assert!((f.full_time_in_min.unwrap() - 30.0).abs() < 0.1, "{f:?}");
    // Full time in 3 minutes, before the crossing: no red forecast, nothing said.
    let f = last(Some(9));
    assert_eq!(f.to_red_min, None, "{f:?}");
    assert_eq!(
        f.red_text(d.forecast_trend_s, d.forecast_trend_long_s),
        None
    );
    // Not known: the horizon as before.
    let f = last(None);
    assert!(f.to_red_min.is_some_and(|x| x > 3.0), "{f:?}");
    assert!(
        f.red_text(d.forecast_trend_s, d.forecast_trend_long_s)
            .unwrap()
            .starts_with("red in ")
    );
}

#[test]
fn after_five_minutes_a_steady_rate_is_forecast() {
    let mut e: Engine = Engine::new(Params::default(), true);
    near_red(&mut e);
    // 6 min of 2 s at 6 m/s in every 36 s (about 20 m of HSR a minute: z 1.2 after 6 min,
    // z 2 after about 10), then the forecast.
    let mut trace = Vec::new();
    for _ in 0..10 {
        trace.push((6.0, 20));
        trace.push((2.0, 340));
    }
    let m = feed(&mut e, &trace).metrics;
    let last = m.last().unwrap();
    assert!(
        last.forecast.to_red_min.is_some_and(|x| x > 0.0),
        "{:?}",
        last.forecast
    );
}

#[test]
fn poor_fixes_count_in_nothing_and_end_an_effort() {
    // 10 Hz at 8 m/s for 20 s, the middle 4 s with HDOP 8 (poor, above 5).
    let mut e: Engine = Engine::new(Params::default(), true);
    let mut out = sideline_engine::Outputs::default();
    let mut x = 0.0;
    for i in 0..200 {
        let t = T0 + i * DT;
        x += 0.8;
        let mut s = Sample::xy(t, x, 0.0, Some(8.0));
        if (80..120).contains(&i)
            && let sideline_engine::sample::Reading::Position(p) = &mut s.reading
        {
            p.hdop = Some(8.0);
        }
        e.ingest("p", "t", "s", s, &mut out).unwrap();
    }
    e.finish(&mut out);
    let last = out.metrics.last().unwrap();
    let tot = &last.totals;
    // 16 s of good fixes at 8 m/s: about 128 m of distance and sprinting (the poor 4 s add
    // none), and two sprints, not one bridging the poor stretch.
    assert!(
        (tot.distance_m - 128.0).abs() < 2.0,
        "distance {}",
        tot.distance_m
    );
    assert!((tot.sprint_m - tot.distance_m).abs() < 2.0, "{tot:?}");
    assert_eq!(tot.sprints, 2, "{tot:?}");
    assert!(
        (tot.max_speed_mps - 8.0).abs() < 1e-3,
        "{}",
        tot.max_speed_mps
    );
    assert!(
        (last.quality.poor_fix_s - 4.0).abs() < 0.2,
        "{:?}",
        last.quality
    );
}

/// A substitute's 90 minutes at 10 Hz: a 15-min warm-up with a 10-s stride at 6 m/s every
/// minute, 45 min on the bench at 0.5 m/s, then 30 min on the pitch at 3.5 m/s with a 5-s run
/// at 6 m/s every minute. With `entry`, the lineup says he came on at 60′ (and nothing
/// else: a first change "on" means he was on the bench before it).
fn substitute(entry: bool) -> Vec<PlayerMetrics> {
    let mut e: Engine = Engine::new(steps_allowed(), true);
    if entry {
        e.set_pitch("s", "p", T0 + 3_600 * 1_000_000, Some(true));
        // A change posted in error and withdrawn changes nothing.
        e.set_pitch("s", "p", T0 + 1_800 * 1_000_000, Some(true));
        e.set_pitch("s", "p", T0 + 1_800 * 1_000_000, None);
    }
    let mut minutes = Vec::new();
    minutes.extend(std::iter::repeat_n(vec![(3.0, 500), (6.0, 100)], 15));
    minutes.extend(std::iter::repeat_n(vec![(0.5, 600)], 45));
    minutes.extend(std::iter::repeat_n(vec![(3.5, 550), (6.0, 50)], 30));
    let mut out = sideline_engine::Outputs::default();
    let (mut t, mut x) = (T0, 0.0);
    for (v, n) in minutes.into_iter().flatten() {
        for _ in 0..n {
            x += v * 0.1;
            e.ingest(
                "p",
                "t",
                "s",
                Sample::xy(t, x, 0.0, Some(v as f32)),
                &mut out,
            )
            .unwrap();
            t += DT;
        }
    }
    e.finish(&mut out);
    out.metrics
}

#[test]
fn a_substitute_s_warm_up_and_bench_time_are_not_playing_time() {
    let at = |m: &[PlayerMetrics], s: i64| -> PlayerMetrics {
        m.iter()
            .rfind(|x| x.t <= T0 + s * 1_000_000)
            .unwrap()
            .clone()
    };
    let d_fatigue = |m: &PlayerMetrics| {
        m.risk
            .terms
            .iter()
            .find(|t| t.id == sideline_engine::risk::TermId::DFatigue)
            .unwrap()
            .state
    };
    use sideline_engine::risk::TermState;

    // The control: without the lineup his warm-up is his first block, the bench the
    // blocks after it, and his HSR "falls" by more than 45 %: a fatigue flag.
    let all = substitute(false);
    let end = at(&all, 5_399);
    assert!(
        end.fatigue.last_block_hsr_change.unwrap() < -0.45,
        "{:?}",
        end.fatigue
    );
    assert_eq!(d_fatigue(&end), TermState::Fired);
    assert!((end.totals.minutes - 90.0).abs() < 0.1);

    // With it: his first block starts at his entry (complete 15 minutes later, not
    // before), the warm-up and the bench count in no figure but the off-pitch ones, and no
    // fatigue flag.
    let sub = substitute(true);
    assert!(at(&sub, 3_600 + 899).fatigue.blocks.is_empty());
    let first = at(&sub, 3_600 + 901);
    assert_eq!(first.fatigue.blocks.len(), 1, "{:?}", first.fatigue.blocks);
    // 15 min at 3.5 m/s with 6 m/s for 5 s a minute: 15 × (55 × 3.5 + 5 × 6) m.
    let block_m = 15.0 * (55.0 * 3.5 + 5.0 * 6.0);
    assert!(
        (first.fatigue.blocks[0].distance_m - block_m).abs() < 0.01 * block_m,
        "{:?}",
        first.fatigue.blocks[0]
    );
    let end = sub.last().unwrap().clone();
    assert_eq!(end.fatigue.blocks.len(), 2, "{:?}", end.fatigue.blocks);
    assert_ne!(d_fatigue(&end), TermState::Fired, "{:?}", end.fatigue);
    assert!(end.fatigue.last_block_hsr_change.unwrap().abs() < 0.05);
    let t = &end.totals;
    assert!(
        (t.minutes - 30.0).abs() < 0.1,
        "{} on-pitch minutes",
        t.minutes
    );
    assert!((t.off_pitch_min - 60.0).abs() < 0.1, "{}", t.off_pitch_min);
    let warm_and_bench = 15.0 * (50.0 * 3.0 + 10.0 * 6.0) + 45.0 * 60.0 * 0.5;
    assert!((t.off_pitch_m - warm_and_bench).abs() < 0.01 * warm_and_bench);
    assert!((t.distance_m - 2.0 * block_m).abs() < 0.01 * 2.0 * block_m);
    // His warm-up strides are in no HSR figure, window or peak.
    assert!((t.hsr_m - 30.0 * 5.0 * 6.0).abs() < 2.0, "HSR {}", t.hsr_m);
    // No forecast in his first 5 minutes on the pitch, so no "rising" alert from them.
    assert!(at(&sub, 3_600 + 290).forecast.to_red_min.is_none());
}
