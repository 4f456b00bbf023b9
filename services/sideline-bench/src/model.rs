//! What the bench shows of a snapshot and of an alert event, made from either source: the
//! engine's own values (the demo, in process) or their protobuf records (`sideline bench`,
//! from Kafka). Both conversions give the same value for the same snapshot (tested), so the
//! page cannot differ between the demo and production.

use serde::Serialize;
use sideline_engine::forecast::Forecast;
use sideline_engine::risk::{Band, TermId, TermState};
use sideline_engine::{AlertEvent, PlayerMetrics, Signal};
use sideline_wire::pb;

/// One term of the score, as staff read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermView {
    /// Stable id (`b_sprint_exposure`, …).
    pub id: String,
    /// Words for staff (the engine's label for the id).
    pub label: String,
    /// Fired, clear or unknown (an input is missing).
    pub state: TermState,
    /// Points it adds.
    pub points: f64,
}

/// The score with the terms behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskView {
    /// Strain-risk attention score.
    pub score: f64,
    /// Band.
    pub band: Band,
    /// Per-block points (A–D).
    pub blocks: Vec<f64>,
    /// Every term.
    pub terms: Vec<TermView>,
    /// Share (0–1) of the score's possible points whose terms could be judged, as the engine
    /// computes it (1 = nothing unknown).
    pub completeness: f64,
    /// The band is only a floor: unknown terms could lift it ("at least amber").
    pub band_floor: bool,
}

/// Session totals shown on the bench.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TotalsView {
    /// Minutes on the pitch.
    pub minutes: f64,
    /// Distance, m.
    pub distance_m: f64,
    /// High-speed running, m.
    pub hsr_m: f64,
    /// Sprint distance, m.
    pub sprint_m: f64,
    /// Sprint efforts.
    pub sprints: u32,
    /// Top speed, m/s.
    pub max_speed_mps: f64,
}

/// The shortest rolling window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WindowView {
    /// Length, s.
    pub length_s: u32,
    /// High-speed running in it, m.
    pub hsr_m: f64,
    /// Sprint distance in it, m.
    pub sprint_m: f64,
}

/// One player's second, as the bench shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Player id (pseudonymous; the page shows the roster's name).
    pub player: String,
    /// Team id.
    pub team: String,
    /// Session id.
    pub session: String,
    /// End of the second, µs since the epoch.
    pub t: i64,
    /// Device signal.
    pub signal: Signal,
    /// Score, band and terms.
    pub risk: RiskView,
    /// Minutes to the next bands.
    pub forecast: Forecast,
    /// Session totals.
    pub totals: TotalsView,
    /// The shortest rolling window.
    pub window: WindowView,
}

/// The share of terms that are known: the stand-in when a producer older than the score's own
/// completeness sent the record.
fn share_known(terms: &[TermView]) -> f64 {
    if terms.is_empty() {
        return 1.0;
    }
    let known = terms
        .iter()
        .filter(|t| t.state != TermState::Unknown)
        .count();
    known as f64 / terms.len() as f64
}

/// The engine's label of a term id (the id itself if it is not one this build knows).
fn label(id: &str) -> String {
    TermId::ALL
        .iter()
        .find(|t| t.as_str() == id)
        .map_or_else(|| id.to_string(), |t| t.label().to_string())
}

impl Snapshot {
    /// From the engine's snapshot (the demo).
    pub fn from_engine(m: &PlayerMetrics) -> Snapshot {
        let terms = m
            .risk
            .terms
            .iter()
            .map(|t| TermView {
                id: t.id.as_str().to_string(),
                label: t.id.label().to_string(),
                state: t.state,
                points: t.points,
            })
            .collect();
        let t = &m.totals;
        Snapshot {
            player: m.player.to_string(),
            team: m.team.to_string(),
            session: m.session.to_string(),
            t: m.t,
            signal: m.status.signal,
            risk: RiskView {
                score: m.risk.score,
                band: m.risk.band,
                blocks: m.risk.blocks.to_vec(),
                terms,
                completeness: m.risk.completeness,
                band_floor: m.risk.band_floor,
            },
            forecast: m.forecast,
            totals: TotalsView {
                minutes: t.minutes,
                distance_m: t.distance_m,
                hsr_m: t.hsr_m,
                sprint_m: t.sprint_m,
                sprints: t.sprints,
                max_speed_mps: t.max_speed_mps,
            },
            window: m
                .windows
                .first()
                .map_or_else(WindowView::default, |w| WindowView {
                    length_s: w.length_s,
                    hsr_m: w.hsr_m,
                    sprint_m: w.sprint_m,
                }),
        }
    }

    /// From a record of `sideline.metrics.v1` (the bench service).
    pub fn from_pb(m: &pb::PlayerMetrics) -> Snapshot {
        let r = m.risk.clone().unwrap_or_default();
        let terms: Vec<TermView> = r
            .terms
            .iter()
            .map(|t| TermView {
                id: t.id.clone(),
                label: label(&t.id),
                state: term_state(t.state()),
                points: t.points,
            })
            .collect();
        let t = m.totals.clone().unwrap_or_default();
        let f = m.forecast.unwrap_or_default();
        Snapshot {
            player: m.player_id.clone(),
            team: m.team_id.clone(),
            session: m.session_id.clone(),
            t: m.t_us,
            signal: match m.status.map(|s| s.signal()) {
                Some(pb::device_status::Signal::PoorFix) => Signal::PoorFix,
                Some(pb::device_status::Signal::NoSignal) => Signal::NoSignal,
                _ => Signal::Ok,
            },
            risk: RiskView {
                score: r.score,
                band: band(r.band()),
                blocks: r.blocks.clone(),
                completeness: r
                    .completeness
                    .filter(|c| (0.0..=1.0).contains(c))
                    .unwrap_or_else(|| share_known(&terms)),
                band_floor: r.band_floor,
                terms,
            },
            forecast: Forecast {
                to_amber_min: f.to_amber_min,
                to_red_min: f.to_red_min,
                to_red_long_rate_min: f.to_red_long_rate_min,
                full_time_in_min: f.full_time_in_min,
            },
            totals: TotalsView {
                minutes: t.minutes,
                distance_m: t.distance_m,
                hsr_m: t.hsr_m,
                sprint_m: t.sprint_m,
                sprints: t.sprints,
                max_speed_mps: t.max_speed_mps,
            },
            window: m
                .windows
                .first()
                .map_or_else(WindowView::default, |w| WindowView {
                    length_s: w.length_s,
                    hsr_m: w.hsr_m,
                    sprint_m: w.sprint_m,
                }),
        }
    }
}

fn band(b: pb::Band) -> Band {
    match b {
        pb::Band::Red => Band::Red,
        pb::Band::Amber => Band::Amber,
        _ => Band::Green,
    }
}

fn term_state(s: pb::term::State) -> TermState {
    match s {
        pb::term::State::Fired => TermState::Fired,
        pb::term::State::Unknown => TermState::Unknown,
        _ => TermState::Clear,
    }
}

/// One alert lifecycle event, as the bench shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertItem {
    /// Alert id (stable over the episode).
    pub id: String,
    /// Kind (`strain_risk`, …).
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// `firing`, `updated` or `resolved`.
    pub state: String,
    /// Player id.
    pub player: String,
    /// Team id.
    pub team: String,
    /// Session id.
    pub session: String,
    /// When, µs.
    pub t: i64,
    /// Episode start, µs.
    pub since: i64,
    /// The value that crossed.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// Band at the event.
    pub band: Band,
    /// Minutes to the next bands at the event.
    pub forecast: Forecast,
    /// One line of explanation.
    pub summary: String,
}

impl AlertItem {
    /// From the engine's event (the demo).
    pub fn from_engine(a: &AlertEvent) -> AlertItem {
        AlertItem {
            id: a.id.clone(),
            kind: a.kind.as_str().to_string(),
            severity: a.severity.as_str().to_string(),
            state: match a.state {
                sideline_engine::Lifecycle::Firing => "firing",
                sideline_engine::Lifecycle::Updated => "updated",
                sideline_engine::Lifecycle::Resolved => "resolved",
            }
            .to_string(),
            player: a.player.to_string(),
            team: a.team.to_string(),
            session: a.session.to_string(),
            t: a.t,
            since: a.since,
            value: a.value,
            threshold: a.threshold,
            band: a.band,
            forecast: a.forecast,
            summary: a.summary.clone(),
        }
    }

    /// From a record of `sideline.alerts.v1`; `None` for a record with no kind, severity or
    /// state (counted as bad by the caller).
    pub fn from_pb(a: &pb::Alert) -> Option<AlertItem> {
        use pb::alert::{Kind, Severity as S, State};
        if a.kind() == Kind::Unspecified {
            return None;
        }
        let severity = match a.severity() {
            S::Info => "info",
            S::Warning => "warning",
            S::Critical => "critical",
            S::Unspecified => return None,
        };
        let state = match a.state() {
            State::Firing => "firing",
            State::Updated => "updated",
            State::Resolved => "resolved",
            State::Unspecified => return None,
        };
        let f = a.forecast.unwrap_or_default();
        Some(AlertItem {
            id: a.id.clone(),
            kind: sideline_wire::convert::alert_kind_name(a.kind()).to_string(),
            severity: severity.to_string(),
            state: state.to_string(),
            player: a.player_id.clone(),
            team: a.team_id.clone(),
            session: a.session_id.clone(),
            t: a.t_us,
            since: a.since_us,
            value: a.value,
            threshold: a.threshold,
            band: band(a.band()),
            forecast: Forecast {
                to_amber_min: f.to_amber_min,
                to_red_min: f.to_red_min,
                to_red_long_rate_min: f.to_red_long_rate_min,
                full_time_in_min: f.full_time_in_min,
            },
            summary: a.summary.clone(),
        })
    }

    /// Is the episode over?
    pub fn resolved(&self) -> bool {
        self.state == "resolved"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_engine::Params;

    /// Every snapshot and alert of a simulated half: the demo's conversion (engine values)
    /// and the bench service's (through the wire) agree exactly.
    #[test]
    fn the_demo_and_the_service_see_the_same_snapshot_and_alert() {
        let cfg = sideline_sim::MatchConfig {
            // Long enough for home #2's scripted poor fix (minutes 20–22): alerts too.
            half_min: 23.0,
            break_min: 0.0,
            ..sideline_sim::MatchConfig::default()
        };
        let mut snaps = 0;
        let run = sideline_sim::offline::run_match(cfg, Params::default(), |m| {
            if m.t % 60_000_000 == 0 {
                let wire = sideline_wire::convert::metrics(m);
                assert_eq!(Snapshot::from_engine(m), Snapshot::from_pb(&wire));
                snaps += 1;
            }
        });
        assert!(snaps > 100, "{snaps}");
        assert!(!run.alerts.is_empty());
        for a in &run.alerts {
            let wire = sideline_wire::convert::alert(a);
            assert_eq!(Some(AlertItem::from_engine(a)), AlertItem::from_pb(&wire));
        }
    }

    #[test]
    fn without_the_engines_completeness_the_share_of_known_terms_stands_in() {
        let t = |state| TermView {
            id: "x".into(),
            label: "x".into(),
            state,
            points: 0.0,
        };
        let terms = vec![
            t(TermState::Fired),
            t(TermState::Clear),
            t(TermState::Unknown),
            t(TermState::Clear),
        ];
        assert_eq!(share_known(&terms), 0.75);
        assert_eq!(share_known(&[]), 1.0);
        assert_eq!(label("b_nope"), "b_nope");
    }
}
