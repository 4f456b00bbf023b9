//! Position-only GNSS: the synthetic match sent as raw 10 Hz latitude/longitude without device
//! speed — correlated position error (Ornstein–Uhlenbeck, Schumayer et al. 2020), fix-to-fix
//! jitter, 14 % of fixes missing in runs (`sideline_sim::gnss`) — against the distance each
//! player really ran. The raw recording read 4–6 % high, most of it walking: position
//! noise passed the speed filter.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic

use sideline_engine::Params;
use sideline_sim::MatchConfig;
use sideline_sim::gnss::GnssNoise;
use sideline_sim::offline::{MatchRun, run_match};

fn run(gnss: Option<GnssNoise>, params: Params) -> MatchRun {
    let cfg = MatchConfig {
        // No dropout or poor-fix scripts: every second of the truth is streamed and good.
        scenarios: false,
        gnss,
        ..MatchConfig::default()
    };
    run_match(cfg, params, |_| {})
}

/// (Team error, worst player's error, who) of total distance against the truth.
fn errors(r: &MatchRun) -> (f64, f64, String) {
    let (mut est, mut truth, mut worst, mut who) = (0.0, 0.0, 0.0_f64, String::new());
    for (p, m) in &r.last {
        let t = r.true_distance_m[p];
        let e = m.totals.distance_m / t - 1.0;
        if e.abs() > worst.abs() {
            (worst, who) = (e, p.clone());
        }
        est += m.totals.distance_m;
        truth += t;
    }
    (est / truth - 1.0, worst, who)
}

fn total(r: &MatchRun, f: impl Fn(&sideline_engine::Totals) -> f64) -> f64 {
    r.last.values().map(|m| f(&m.totals)).sum()
}

#[test]
fn position_only_distance_is_within_two_percent_of_the_truth_for_every_player() {
    let device = run(None, Params::default());
    let raw = run(Some(GnssNoise::default()), Params::default());
    // The filter before the stationary gate, the noise debias and the 3-s gap limit.
    let mut old = Params::default();
    old.speed.stationary_window_s = 0.0;
    old.speed.noise_tau_s = 0.0;
    old.speed.max_gap_s = 1.0;
    let before = run(
        Some(GnssNoise {
            missing: 0.0,
            ..GnssNoise::default()
        }),
        old,
    );

    let (team, worst, who) = errors(&device);
    eprintln!(
        "device speed: team {:+.2} %, worst {who} {:+.2} %",
        100.0 * team,
        100.0 * worst
    );
    let (team, worst, who) = errors(&raw);
    eprintln!(
        "raw GNSS: team {:+.2} %, worst {who} {:+.2} %",
        100.0 * team,
        100.0 * worst
    );
    assert!(team.abs() < 0.01, "team distance {:+.2} %", 100.0 * team);
    assert!(worst.abs() < 0.02, "{who}: {:+.2} %", 100.0 * worst);
    // The bands come out as with device speed (HSR within 3 %, walking within 2 %).
    for (name, f, tol) in [
        (
            "HSR",
            (|t: &sideline_engine::Totals| t.hsr_m) as fn(&_) -> f64,
            0.03,
        ),
        ("walking", |t| t.walk_m, 0.02),
    ] {
        let (a, b) = (total(&raw, f), total(&device, f));
        eprintln!("{name}: raw {a:.0} m, device speed {b:.0} m");
        assert!((a / b - 1.0).abs() < tol, "{name}: {a:.0} m vs {b:.0} m");
    }

    // Control: the filter as it was reads the same noise (no fix even missing) high.
    let (team, worst, who) = errors(&before);
    eprintln!(
        "before: team {:+.2} %, worst {who} {:+.2} %",
        100.0 * team,
        100.0 * worst
    );
    assert!(worst > 0.04, "{who}: {:+.2} %", 100.0 * worst);
}
