//! The full synthetic match through the engine: plausible totals, and every scripted scenario
//! visible in the outputs.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sideline_engine::risk::Band;
use sideline_engine::{Params, PlayerMetrics, Signal};
use sideline_sim::MatchConfig;
use sideline_sim::offline::run_match;

struct Run {
    last: BTreeMap<String, PlayerMetrics>,
    alerts: Vec<sideline_engine::AlertEvent>,
    /// (event time, band, minutes to red) of the at-risk player, every second.
    at_risk: Vec<(i64, Band, Option<f64>)>,
    dropout_no_signal: usize,
    poor_fix: usize,
}

/// The match is simulated once and shared by every test here.
fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(simulate)
}

fn simulate() -> Run {
    let mut at_risk = Vec::new();
    let (mut dropout_no_signal, mut poor_fix) = (0, 0);
    let run = run_match(MatchConfig::default(), Params::default(), |m| {
        match &*m.player {
            "home-07" => at_risk.push((m.t, m.risk.band, m.forecast.to_red_min)),
            "away-05" if m.status.signal == Signal::NoSignal => dropout_no_signal += 1,
            "home-02" if m.status.signal == Signal::PoorFix => poor_fix += 1,
            _ => {}
        }
    });
    Run {
        last: run.last,
        alerts: run.alerts,
        at_risk,
        dropout_no_signal,
        poor_fix,
    }
}

#[test]
fn totals_are_in_the_published_ranges_for_elite_football() {
    let r = run();
    assert_eq!(r.last.len(), 22);
    for (p, m) in &r.last {
        let t = &m.totals;
        let keeper = p.ends_with("-01");
        let (dmin, dmax) = if keeper {
            (4_000.0, 8_000.0)
        } else {
            (9_000.0, 14_000.0)
        };
        assert!(
            (dmin..dmax).contains(&t.distance_m),
            "{p} distance {}",
            t.distance_m
        );
        assert!(
            t.hsr_m <= 1_800.0 && t.sprint_m <= t.hsr_m,
            "{p}: hsr {} sprint {}",
            t.hsr_m,
            t.sprint_m
        );
        if !keeper {
            assert!(
                t.hsr_m >= 200.0 && t.sprints >= 1,
                "{p}: hsr {} sprints {}",
                t.hsr_m,
                t.sprints
            );
        }
        assert!(t.max_speed_mps < 10.0 && t.hr.trimp_banister > 50.0, "{p}");
        assert!(
            (80.0..95.0).contains(&t.minutes) || p == "away-05",
            "{p} minutes {}",
            t.minutes
        );
    }
}

#[test]
fn the_at_risk_player_goes_green_amber_red_and_red_is_forecast_three_minutes_ahead() {
    let r = run();
    let first = |band: Band| r.at_risk.iter().find(|x| x.1 >= band).map(|x| x.0);
    let kick_off = r.at_risk[0].0;
    let amber = first(Band::Amber).expect("reaches amber");
    let red = first(Band::Red).expect("reaches red");
    assert!(
        amber - kick_off > 20 * 60_000_000,
        "not amber from the start"
    );
    assert!(red > amber);
    // The first time the forecast put red within 10 minutes, while not yet red.
    let warned = r
        .at_risk
        .iter()
        .find(|x| x.1 < Band::Red && x.2.is_some_and(|m| m <= 10.0))
        .map(|x| x.0)
        .expect("red is forecast before it happens");
    assert!(
        red - warned >= 3 * 60_000_000,
        "warning only {:.1} min ahead",
        (red - warned) as f64 / 60e6
    );
}

#[test]
fn steady_players_stay_below_amber_at_full_time() {
    let r = run();
    for (p, m) in r.last.iter().filter(|(p, _)| p.as_str() != "home-07") {
        assert!(
            m.risk.band == Band::Green,
            "{p}: {:.2} {:?}",
            m.risk.score,
            m.risk.terms
        );
    }
}

#[test]
fn the_dropout_and_the_poor_fixes_show_in_device_status() {
    let r = run();
    // 3 minutes without a pod, less the 10 s idle timeout, reported for up to 60 s more.
    assert!(r.dropout_no_signal >= 50, "{}", r.dropout_no_signal);
    assert!(r.poor_fix >= 100, "{}", r.poor_fix);
}

#[test]
fn every_injected_doppler_glitch_is_rejected() {
    let mut sim = sideline_sim::MatchSim::new(MatchConfig::default());
    while sim.next_batches().is_some() {}
    let injected = sim.injected_artefacts();
    let r = run();
    let rejected: u64 = r.last.values().map(|m| m.quality.artefacts).sum();
    assert!(injected > 100, "{injected}");
    // Glitches are +5 m/s; the rejection may also catch a few genuine extremes but must not
    // miss glitches.
    assert!(rejected >= injected, "rejected {rejected} of {injected}");
    assert!(
        rejected <= injected + injected / 2,
        "rejected {rejected}, injected {injected}"
    );
}

#[test]
fn the_at_risk_player_gets_a_rising_alert_before_red_and_steady_players_no_warning() {
    use sideline_engine::{AlertKind, Lifecycle, Severity};
    let r = run();
    let of = |p: &'static str, k: AlertKind| {
        r.alerts
            .iter()
            .filter(move |a| &*a.player == p && a.kind == k)
    };
    let rising = of("home-07", AlertKind::StrainRiskRising)
        .find(|a| a.state == Lifecycle::Firing)
        .expect("rising alert");
    let red = r
        .alerts
        .iter()
        .find(|a| {
            &*a.player == "home-07"
                && a.kind == AlertKind::StrainRisk
                && a.severity == Severity::Critical
        })
        .expect("red");
    assert!(
        red.t - rising.t >= 3 * 60_000_000,
        "rising only {:.1} min before red",
        (red.t - rising.t) as f64 / 60e6
    );
    // Warnings and criticals only for the scripted scenarios.
    let scripted = ["home-07", "home-02", "away-05"];
    let noisy: Vec<_> = r
        .alerts
        .iter()
        .filter(|a| a.severity >= Severity::Warning && !scripted.contains(&&*a.player))
        .map(|a| format!("{} {:?} {}", a.player, a.kind, a.summary))
        .collect();
    assert!(noisy.is_empty(), "{noisy:#?}");
    // The dropout and the poor fixes each raise one device episode that resolves.
    for p in ["home-02", "away-05"] {
        let d: Vec<_> = of(p, AlertKind::Device).map(|a| a.state).collect();
        assert_eq!(d, vec![Lifecycle::Firing, Lifecycle::Resolved], "{p}");
    }
    // No device alerts for half-time or the final whistle.
    assert_eq!(
        r.alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Device && a.state == Lifecycle::Firing)
            .count(),
        2
    );
}

/// Per-role means over four synthetic matches (seeds 1–4, `sideline analyze --format sim`),
/// each inside the published figures for elite men's football, mean ± 2 SD where an SD is
/// published:
///
/// - distance ≥ 14.4 km/h by position: centre-backs 1,834 ± 256 m, full-backs 2,605 ± 387,
///   central midfielders 2,825 ± 473, wide midfielders 3,138 ± 565, strikers 2,341 ± 575
///   (Bradley et al. 2009, *J Sports Sci* 27:159, EPL, ProZone);
/// - distance ≥ 19.8 km/h: from centre-backs' 681 ± 128 m (the least) to wide midfielders'
///   1,049 ± 106 m (the most) (Di Salvo et al. 2009, *Int J Sports Med* 30:205);
/// - total distance 9–14 km for outfield players (Andrzejewski et al. 2013, *J Strength Cond
///   Res* 27:2134), central midfielders the most and centre-backs the least (Bradley 2009);
/// - a sprint covers ~17.5 m on average (PMC10170543, GNSS, professional matches), so sprint
///   distance over sprint count lies in 10–30 m (the range is a judgement);
/// - sprint distance ≥ 25.2 km/h at least 100 m for every outfield role (the generator's
///   own "150–350 m" less a margin; a judgement — the per-role sprint tables we could read
///   were not verified).
#[test]
fn per_role_figures_are_inside_the_published_ranges() {
    use sideline_cli::analyze::{AnalyzeArgs, Format, summarize};
    let mut by_role: BTreeMap<String, Vec<sideline_cli::analyze::Summary>> = BTreeMap::new();
    for seed in 1..=4 {
        let args = AnalyzeArgs {
            format: Format::Sim,
            mapping: None,
            params: None,
            pitch: None,
            json: true,
            timeline: None,
            seed,
            substitutions: false,
            raw_gnss: false,
            paths: Vec::new(),
        };
        for s in summarize(&args).unwrap().summaries {
            by_role
                .entry(s.position.clone().expect("the sim's positions"))
                .or_default()
                .push(s);
        }
    }
    let mean = |role: &str, f: &dyn Fn(&sideline_cli::analyze::Summary) -> f64| {
        let v = &by_role[role];
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    let two_sd = |m: f64, sd: f64| (m - 2.0 * sd)..=(m + 2.0 * sd);
    let mut report = Vec::new();
    let mut check = |what: String, got: f64, range: std::ops::RangeInclusive<f64>| {
        let ok = range.contains(&got);
        report.push(format!(
            "{} {what} {got:.0} in {:.0}–{:.0}",
            if ok { "ok " } else { "BAD" },
            range.start(),
            range.end()
        ));
    };
    for (role, m, sd) in [
        ("CB", 1_834.0, 256.0),
        ("FB", 2_605.0, 387.0),
        ("CM", 2_825.0, 473.0),
        ("WM", 3_138.0, 565.0),
        ("ST", 2_341.0, 575.0),
    ] {
        check(
            format!("{role} ≥ 14.4 km/h"),
            mean(role, &|s| s.moderate_m),
            two_sd(m, sd),
        );
        let hsr = mean(role, &|s| s.hsr_m);
        let hsr_range = match role {
            "CB" => two_sd(681.0, 128.0),
            "WM" => two_sd(1_049.0, 106.0),
            _ => 681.0 - 2.0 * 128.0..=1_049.0 + 2.0 * 106.0,
        };
        check(format!("{role} ≥ 19.8 km/h"), hsr, hsr_range);
        check(
            format!("{role} distance"),
            mean(role, &|s| s.distance_m),
            9_000.0..=14_000.0,
        );
        check(
            format!("{role} sprint m"),
            mean(role, &|s| s.sprint_m),
            100.0..=600.0,
        );
        check(
            format!("{role} m per sprint"),
            mean(role, &|s| s.sprint_m) / mean(role, &|s| f64::from(s.sprints)),
            10.0..=30.0,
        );
    }
    let d = |r: &str| mean(r, &|s| s.distance_m);
    check(
        "CM distance minus the other roles' most".into(),
        d("CM")
            - ["CB", "FB", "WM", "ST"]
                .map(d)
                .into_iter()
                .fold(0.0, f64::max),
        0.0..=f64::MAX,
    );
    check(
        "the other roles' least minus CB distance".into(),
        ["FB", "CM", "WM", "ST"]
            .map(d)
            .into_iter()
            .fold(f64::MAX, f64::min)
            - d("CB"),
        0.0..=f64::MAX,
    );
    check("GK distance".into(), d("GK"), 4_000.0..=7_000.0);
    // Repeated high-intensity bouts: 1.1 ± 1.1 per player per match, full backs the most
    // (Carling et al. 2012).
    let bouts = |r: &str| mean(r, &|s| f64::from(s.rhi_bouts));
    let outfield = ["CB", "FB", "CM", "WM", "ST"];
    for r in outfield {
        check(
            format!("{r} repeated bouts per player (×10)"),
            10.0 * bouts(r),
            0.0..=100.0,
        );
    }
    let all = outfield.map(bouts).iter().sum::<f64>() / outfield.len() as f64;
    check(
        "outfield repeated bouts per player (×10)".into(),
        10.0 * all,
        5.0..=20.0,
    );
    check(
        "FB repeated bouts minus the other roles' most (×10)".into(),
        10.0 * (bouts("FB")
            - ["CB", "CM", "WM", "ST"]
                .map(bouts)
                .into_iter()
                .fold(0.0, f64::max)),
        0.0..=f64::MAX,
    );
    let text = report.join("\n");
    eprintln!("{text}");
    assert!(!text.contains("BAD"), "{text}");
}

/// The match with substitutions: three substitutes per team stream from kick-off (the bench,
/// then a warm-up with strides), come on at 60′, 70′ and 80′, and the starters they replace
/// sit on the bench still streaming. With the lineup the engine counts only minutes on the
/// pitch: the substitute's first block starts at his entry, his warm-up strides are in no
/// HSR figure, he gets no fatigue flag or "rising" alert from his bench time, and a starter
/// taken off stops accruing.
#[test]
fn substitutes_count_from_their_entry_and_starters_until_they_go_off() {
    let cfg = MatchConfig {
        substitutions: true,
        ..MatchConfig::default()
    };
    let sim = sideline_sim::MatchSim::new(cfg.clone());
    assert_eq!(sim.players().len(), 28);
    assert_eq!(sim.lineup().len(), 12, "{:?}", sim.lineup());
    let mut at_entry_plus_4 = None;
    let entry = sim
        .lineup()
        .into_iter()
        .find(|(p, _, on)| p == "home-12" && *on)
        .unwrap()
        .1;
    let run = run_match(cfg, Params::default(), |m| {
        if &*m.player == "home-12" && m.t <= entry + 240_000_000 {
            at_entry_plus_4 = Some(m.clone());
        }
    });
    let sub = &run.last["home-12"];
    let t = &sub.totals;
    assert!(
        (t.minutes - 30.0).abs() < 0.5,
        "on-pitch minutes {}",
        t.minutes
    );
    assert!(
        (t.off_pitch_min - 60.0).abs() < 0.5,
        "off-pitch minutes {}",
        t.off_pitch_min
    );
    // 60 minutes beside the pitch, 10 of them warming up with strides.
    assert!(t.off_pitch_m > 1_000.0, "{t:?}");
    let at4 = at_entry_plus_4.unwrap();
    assert!(
        at4.fatigue.blocks.is_empty(),
        "a block before 15 minutes on"
    );
    assert!(
        at4.forecast.to_red_min.is_none(),
        "a forecast before 5 minutes on"
    );
    // His blocks are his 30 minutes on the pitch, the first a playing one (the bench's 15
    // minutes cover a few hundred metres). Whether his own play then shows a decline is his
    // play's (`tests/metrics.rs` has the flag-from-the-bench case with its control).
    assert_eq!(sub.fatigue.blocks.len(), 2, "{:?}", sub.fatigue.blocks);
    assert!(
        sub.fatigue.blocks[0].distance_m > 1_500.0,
        "{:?}",
        sub.fatigue.blocks
    );
    // The starter he replaced: on until 60′.
    let off = &run.last["home-10"].totals;
    assert!((off.minutes - 60.0).abs() < 0.5, "{}", off.minutes);
    assert!(
        (off.off_pitch_min - 30.0).abs() < 0.5,
        "{}",
        off.off_pitch_min
    );
    // The control: the same match without the lineup counts his bench and warm-up as play.
    let sim = sideline_sim::MatchSim::new(MatchConfig {
        substitutions: true,
        ..MatchConfig::default()
    });
    let mut e: sideline_engine::Engine = sideline_engine::Engine::new(Params::default(), false);
    for p in sim.players() {
        e.assign(&p.device, &p.player, &p.team);
        e.set_profile(p.profile.clone());
        e.set_baseline(&p.player, p.baseline.clone());
    }
    let all = sideline_sim::offline::run_engine(sim, e, |_| {});
    let control = &all.last["home-12"];
    assert_eq!(
        control.fatigue.blocks.len(),
        6,
        "{:?}",
        control.fatigue.blocks
    );
    assert!(
        control.fatigue.blocks[0].distance_m < 1_000.0,
        "the bench as a block"
    );
    let counted = &control.totals;
    assert!((counted.minutes - 90.0).abs() < 0.5, "{}", counted.minutes);
    assert!(
        counted.hsr_m > t.hsr_m + 50.0,
        "warm-up strides: {} vs {} m",
        counted.hsr_m,
        t.hsr_m
    );
    for s in [
        "home-12", "home-13", "home-14", "away-12", "away-13", "away-14",
    ] {
        assert!(
            !run.alerts.iter().any(|a| &*a.player == s
                && a.kind == sideline_engine::alerts::AlertKind::StrainRiskRising),
            "{s}: a rising alert"
        );
    }
}
