//! Positional activity profiles: how often each role walks, jogs, runs, goes above 5.5 m/s and
//! sprints, and where on the pitch it lives. The weights are calibrated (by hand, over seeds
//! 1–4) so that each role's match means land in the published figures for elite men's
//! football, which `tests/synthetic_match.rs` asserts:
//!
//! - ≥ 14.4 km/h: CB 1,834 ± 256 m, FB 2,605 ± 387, CM 2,825 ± 473, WM 3,138 ± 565,
//!   ST 2,341 ± 575 (Bradley et al. 2009, *J Sports Sci* 27:159);
//! - ≥ 19.8 km/h: CB 681 ± 128 m (least) to WM 1,049 ± 106 (most) (Di Salvo et al. 2009,
//!   *Int J Sports Med* 30:205);
//! - total 9–14 km outfield, CM the most and CB the least (Andrzejewski et al. 2013; Bradley
//!   2009); ~17.5 m per sprint (PMC10170543); goalkeepers 4–7 km (a judgement).
//!
//! Substitutions with a bench and a warm-up are `MatchConfig::substitutions`; stoppages and
//! repeated high-intensity bouts are modelled in [`crate::athlete`] and [`crate::stoppages`].

/// Playing roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Goalkeeper.
    Goalkeeper,
    /// Centre back.
    CentreBack,
    /// Full back.
    FullBack,
    /// Central midfielder.
    Midfielder,
    /// Wide midfielder / winger.
    Winger,
    /// Striker.
    Striker,
}

impl Role {
    /// The 4-4-2 line-up used for both teams.
    pub const LINEUP: [Role; 11] = [
        Role::Goalkeeper,
        Role::FullBack,
        Role::CentreBack,
        Role::CentreBack,
        Role::FullBack,
        Role::Winger,
        Role::Midfielder,
        Role::Midfielder,
        Role::Winger,
        Role::Striker,
        Role::Striker,
    ];

    /// Name shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Role::Goalkeeper => "GK",
            Role::CentreBack => "CB",
            Role::FullBack => "FB",
            Role::Midfielder => "CM",
            Role::Winger => "WM",
            Role::Striker => "ST",
        }
    }

    /// Relative weights of choosing stand, walk, jog, run, HSR, sprint for the next bout.
    pub fn weights(self) -> [f64; 6] {
        match self {
            Role::Goalkeeper => [60.0, 40.0, 10.0, 3.0, 0.6, 0.1],
            Role::CentreBack => [10.0, 36.0, 28.0, 10.0, 9.0, 2.4],
            Role::FullBack => [7.0, 30.0, 32.0, 16.0, 7.0, 2.8],
            Role::Midfielder => [5.0, 28.0, 38.0, 19.0, 6.5, 1.8],
            Role::Winger => [6.0, 30.0, 32.0, 15.0, 10.5, 3.4],
            Role::Striker => [8.0, 34.0, 28.0, 14.0, 7.5, 3.0],
        }
    }

    /// Chance that a high-speed effort in play starts a repeated high-intensity bout (two
    /// more efforts after short recoveries): calibrated so that bouts of ≥ 3 efforts come out
    /// near Carling et al. 2012's 1.1 ± 1.1 per player per match, full backs the most.
    pub fn repeat_chance(self) -> f64 {
        match self {
            Role::FullBack => 0.08,
            _ => 0.0,
        }
    }

    /// Home position as a fraction of the half-length and half-width (x towards the opponent).
    pub fn anchor(self, slot: usize) -> (f64, f64) {
        match (self, slot) {
            (Role::Goalkeeper, _) => (-0.9, 0.0),
            (Role::FullBack, 1) => (-0.5, -0.7),
            (Role::FullBack, _) => (-0.5, 0.7),
            (Role::CentreBack, 2) => (-0.6, -0.25),
            (Role::CentreBack, _) => (-0.6, 0.25),
            (Role::Winger, 5) => (0.0, -0.75),
            (Role::Winger, _) => (0.0, 0.75),
            (Role::Midfielder, 6) => (-0.1, -0.2),
            (Role::Midfielder, _) => (-0.1, 0.2),
            (Role::Striker, 9) => (0.45, -0.15),
            (Role::Striker, _) => (0.45, 0.15),
        }
    }

    /// Reference max speed, m/s.
    pub fn vmax(self) -> f64 {
        match self {
            Role::Goalkeeper => 7.6,
            Role::CentreBack => 8.9,
            Role::FullBack => 9.3,
            Role::Midfielder => 8.9,
            Role::Winger => 9.5,
            Role::Striker => 9.3,
        }
    }
}
