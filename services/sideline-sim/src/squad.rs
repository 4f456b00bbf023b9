//! The two simulated squads: ids, devices, profiles, load-history baselines and scenarios.
//!
//! Baselines are set so that an ordinary player finishes the match near his usual 7-day load
//! (no spike terms), while the scripted at-risk player (home #7) starts with a history that a
//! heavy second half turns into a spike: green at kick-off, amber after about 50 minutes, red
//! later, with the forecast warning minutes ahead.

use sideline_engine::profile::{HamstringHistory, Sex, Susceptibility};
use sideline_engine::{AthleteProfile, Baseline};

use crate::athlete::Script;
use crate::roles::Role;

/// A simulated player as the roster knows him.
#[derive(Debug, Clone, PartialEq)]
pub struct SimPlayer {
    /// Pseudonymous player id, e.g. `home-07`.
    pub player: String,
    /// Pod id, e.g. `pod-07`.
    pub device: String,
    /// Team id.
    pub team: String,
    /// Shirt number.
    pub shirt: u32,
    /// Role.
    pub role: Role,
    /// Athlete profile (staff-entered).
    pub profile: AthleteProfile,
    /// Load-history baseline (from the archive).
    pub baseline: Baseline,
    /// What is scripted for him.
    pub script: Script,
    /// Short description of the scenario, if any.
    pub scenario: Option<&'static str>,
}

/// Typical match loads per role in this generator, m: (HSR ≥ 5.5, moderate ≥ 4.0,
/// ≥ 24 km/h, sprint ≥ 7) — the means over seeds 7 and 8, so that ordinary players finish
/// near their usual week.
fn typical(role: Role) -> (f64, f64, f64, f64) {
    match role {
        Role::Goalkeeper => (40.0, 285.0, 10.0, 4.0),
        Role::CentreBack => (820.0, 1965.0, 233.0, 155.0),
        Role::FullBack => (906.0, 2787.0, 377.0, 287.0),
        Role::Midfielder => (563.0, 2659.0, 191.0, 139.0),
        Role::Winger => (1182.0, 3062.0, 491.0, 387.0),
        Role::Striker => (846.0, 2484.0, 323.0, 242.0),
    }
}

fn ordinary_baseline(role: Role) -> Baseline {
    let (hsr, moderate, v24, sprint) = typical(role);
    let week = 2.4 * hsr;
    Baseline {
        days_of_history: Some(120),
        hsr_7d_mean_m: Some(week),
        // Weekly HSR varies by ~25 %; at least 150 m so goalkeepers' small numbers stay sane.
        hsr_7d_sd_m: Some((0.25 * week).max(150.0)),
        hsr_prev6d_m: Some(week - hsr),
        // The previous week was a little heavier (two matches), as is common in season.
        hsr_prior7d_m: Some(week * 1.25),
        moderate_prev6d_m: Some(2.4 * moderate - moderate),
        moderate_prior7d_m: Some(2.4 * moderate * 1.25),
        v24_prev6d_m: Some((653.0 - 2.2 * v24).max(0.0)),
        vmax95_in_prev6d: Some(true),
        low_chronic_hsr: Some(false),
        sprint_1min_norm_m: Some(8.0),
        session_hsr_p90_m: Some(1.6 * hsr),
        session_sprint_p90_m: Some(1.9 * sprint),
        days_since_vmax90: Some(3),
        days_since_vmax95: Some(3),
        // The profile carries his Vmax.
        vmax_observed_mps: None,
    }
}

/// The at-risk player's history: a lighter week than usual before a heavy match.
fn at_risk_baseline() -> Baseline {
    Baseline {
        days_of_history: Some(120),
        hsr_7d_mean_m: Some(1900.0),
        hsr_7d_sd_m: Some(250.0),
        hsr_prev6d_m: Some(1450.0),
        hsr_prior7d_m: Some(1875.0),
        moderate_prev6d_m: Some(3000.0),
        moderate_prior7d_m: Some(5500.0),
        v24_prev6d_m: Some(250.0),
        vmax95_in_prev6d: Some(false),
        low_chronic_hsr: Some(false),
        sprint_1min_norm_m: Some(8.0),
        session_hsr_p90_m: Some(1100.0),
        session_sprint_p90_m: Some(350.0),
        // A light week: nothing near his top speed since the match 10 days ago.
        days_since_vmax90: Some(10),
        days_since_vmax95: Some(10),
        // The profile carries his Vmax.
        vmax_observed_mps: None,
    }
}

/// Both squads, 11 each, in a fixed order (home 1–11, away 1–11).
pub fn squads(home: &str, away: &str, scenarios: bool) -> Vec<SimPlayer> {
    let mut out = Vec::with_capacity(22);
    for (t, team) in [home, away].into_iter().enumerate() {
        for (slot, role) in Role::LINEUP.into_iter().enumerate() {
            let shirt = slot as u32 + 1;
            let k = t * 11 + slot;
            // The medical history recorded for every player (the demo's squad is a club's
            // own); a few previous injuries and older players.
            let mut susceptibility = Susceptibility::recorded_clear();
            if k % 5 == 3 {
                susceptibility.hamstring = Some(HamstringHistory::Previous);
            }
            if k % 7 == 2 {
                susceptibility.older_age_band = Some(true);
            }
            if k % 6 == 1 {
                susceptibility.nordic_n = Some(360.0 + 5.0 * k as f64);
            }
            let mut script = Script::default();
            let mut baseline = ordinary_baseline(role);
            let mut scenario = None;
            if scenarios {
                match (t, shirt) {
                    (0, 7) => {
                        susceptibility = Susceptibility {
                            hamstring: Some(HamstringHistory::Previous),
                            nordic_n: Some(352.0),
                            ..Susceptibility::recorded_clear()
                        };
                        baseline = at_risk_baseline();
                        script.overload_from_min = Some(47.0);
                        script.overload = (3.2, 3.5);
                        script.sprint_cap = 0.92;
                        script.extra_fatigue = 0.8;
                        scenario = Some(
                            "at risk: light week, previous hamstring injury, heavy second half",
                        );
                    }
                    (1, 5) => {
                        script.dropout_min = Some((30.0, 33.0));
                        scenario = Some("pod drops out from 30:00 to 33:00");
                    }
                    (0, 2) => {
                        script.poor_fix_min = Some((20.0, 22.0));
                        scenario = Some("poor satellite fixes from 20:00 to 22:00");
                    }
                    _ => {}
                }
            }
            let vmax = role.vmax()
                + if scenario.is_some() && shirt == 7 {
                    0.3
                } else {
                    0.0
                };
            let player = format!("{team}-{shirt:02}");
            out.push(SimPlayer {
                profile: AthleteProfile {
                    player: player.clone(),
                    display_name: Some(format!("{} #{shirt}", capitalise(team))),
                    position: Some(role.name().to_string()),
                    squad_number: Some(shirt),
                    vmax_mps: Some(vmax),
                    hr_max: Some(188.0 + (k % 5) as f64 * 3.0),
                    hr_rest: Some(46.0 + (k % 4) as f64 * 3.0),
                    sex: Sex::Male,
                    susceptibility,
                },
                player,
                device: format!("pod-{}{shirt:02}", if t == 0 { "h" } else { "a" }),
                team: team.to_string(),
                shirt,
                role,
                baseline,
                script,
                scenario,
            });
        }
    }
    out
}

/// Three substitutes per team (numbers 12–14: a striker, a striker and a wide midfielder) who
/// come on at 60′, 70′ and 80′ for the numbers 10, 11 and 9, who go off then.
pub fn add_substitutes(players: &mut Vec<SimPlayer>, home: &str, away: &str) {
    for (t, team) in [home, away].into_iter().enumerate() {
        for (shirt, replaces, minute, role) in [
            (12u32, 10u32, 60.0, Role::Striker),
            (13, 11, 70.0, Role::Striker),
            (14, 9, 80.0, Role::Winger),
        ] {
            let Some(starter) = players
                .iter_mut()
                .find(|p| p.team == team && p.shirt == replaces)
            else {
                continue;
            };
            starter.script.on_pitch_min = Some((0.0, minute));
            let mut sub = starter.clone();
            let player = format!("{team}-{shirt:02}");
            sub.profile.player = player.clone();
            sub.profile.display_name = Some(format!("{} #{shirt}", capitalise(team)));
            sub.profile.squad_number = Some(shirt);
            sub.profile.position = Some(role.name().to_string());
            sub.device = format!("pod-{}{shirt:02}", if t == 0 { "h" } else { "a" });
            sub.player = player;
            sub.shirt = shirt;
            sub.role = role;
            sub.script = Script {
                on_pitch_min: Some((minute, f64::INFINITY)),
                ..Script::default()
            };
            sub.scenario = Some("substitute: bench and warm-up, then on");
            players.push(sub);
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatchConfig;
    use sideline_engine::Params;

    /// The demo's hand-set baselines rest on `typical`: an ordinary player's usual week is
    /// built from it so that he finishes the match near that week (no spike terms). Check it
    /// against what the generator really produces, so that a change to the generator cannot
    /// silently turn every ordinary player's history terms on (or off).
    #[test]
    fn typical_role_loads_are_what_the_generator_produces() {
        // (HSR, moderate, ≥ 24 km/h, sprint) summed per role over both seeds, and a count.
        let mut sums: Vec<(Role, [f64; 4], f64)> = Vec::new();
        for seed in [7, 8] {
            let cfg = MatchConfig {
                seed,
                scenarios: false,
                ..MatchConfig::default()
            };
            let roles: Vec<(String, Role)> = squads(&cfg.home, &cfg.away, false)
                .into_iter()
                .map(|p| (p.player, p.role))
                .collect();
            let run = crate::offline::run_match(cfg, Params::default(), |_| {});
            for (player, role) in roles {
                let t = &run.last[&player].totals;
                let got = [t.hsr_m, t.moderate_m, t.v24_m, t.sprint_m];
                match sums.iter_mut().find(|(r, _, _)| *r == role) {
                    Some((_, s, n)) => {
                        s.iter_mut().zip(got).for_each(|(a, b)| *a += b);
                        *n += 1.0;
                    }
                    None => sums.push((role, got, 1.0)),
                }
            }
        }
        let mut report = Vec::new();
        for (role, s, n) in sums {
            let (hsr, moderate, v24, sprint) = typical(role);
            for ((name, want), got) in ["hsr", "moderate", "v24", "sprint"]
                .into_iter()
                .zip([hsr, moderate, v24, sprint])
                .zip(s.map(|x| x / n))
            {
                // 10 %, or 25 m for a goalkeeper's few metres.
                if (got - want).abs() > (0.10 * want).max(25.0) {
                    report.push(format!(
                        "{} {name}: typical {want:.0} m, generator {got:.0} m",
                        role.name()
                    ));
                }
            }
        }
        assert!(report.is_empty(), "{report:#?}");
    }
}
