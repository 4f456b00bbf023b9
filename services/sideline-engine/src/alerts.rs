//! Alert rules: per player and per kind, a small state machine over the per-second snapshots.
//!
//! Each rule has a *condition* (with a severity), a *pending period* (the condition must hold
//! that long before the alert fires: Grafana's pending period; an open episode escalates to a
//! higher severity only after that severity too has held for it), a separate *clear condition*
//! held for its own period (hysteresis, as Kapacitor's reset expressions), and a *cooldown*
//! after an episode resolves. An episode goes Firing → (Updated on escalation) → Resolved; its
//! id is a hash of (kind, player, session, the time its condition began), so a replay of the
//! same samples produces the same ids and a downstream de-duplicates by id and state.
//!
//! | kind | condition | clears |
//! |---|---|---|
//! | strain_risk | band amber (warning) or red (critical); pending 120 s, or 15 s when the score without its transient terms is in the band | score < amber − margin |
//! | strain_risk_rising | not red, red forecast within the lead time | red reached (superseded), or forecast beyond lead + margin |
//! | sprint_spike | 60-s sprint distance ≥ norm + 33 m (Gregson 2020: +11 m → OR 1.22), while amber or red | < norm + 11 m |
//! | fatigue | HSR-output decline *and* a neuromuscular marker (info) | not both |
//! | device | no signal or poor fixes *while teammates stream* | good signal; whole team silent ends the session |
//!
//! A player without a fix in the second (on the bench, pod silent, after the final whistle)
//! starts no new episode of the score-based kinds, and their pending periods start again:
//! his numbers are not moving. Open episodes carry on.
//!
//! Device alerts need the team: when every pod of a team goes quiet it is half-time or the end,
//! not 22 dead pods. Whether teammates were streaming at a given second is decided in
//! [`crate::team`], which evaluates the device rule only once every teammate has reached that
//! second, so that the outcome never depends on the order players' data arrives in.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::forecast::Forecast;
use crate::output::{PlayerMetrics, Signal};
use crate::params::AlertParams;
use crate::risk::{Band, Term, TermId, TermState};
use crate::sample::{Micros, SECOND};

/// Alert kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Score in the amber or red band.
    StrainRisk,
    /// Red forecast within the lead time.
    StrainRiskRising,
    /// A burst of sprinting in the last minute.
    SprintSpike,
    /// Fatigue markers.
    Fatigue,
    /// No signal or poor fixes.
    Device,
}

impl AlertKind {
    /// Every kind, in rule order.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::StrainRisk,
        AlertKind::StrainRiskRising,
        AlertKind::SprintSpike,
        AlertKind::Fatigue,
        AlertKind::Device,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::StrainRisk => "strain_risk",
            AlertKind::StrainRiskRising => "strain_risk_rising",
            AlertKind::SprintSpike => "sprint_spike",
            AlertKind::Fatigue => "fatigue",
            AlertKind::Device => "device",
        }
    }
}

/// Severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Look at this player.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Where an episode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Just fired.
    Firing,
    /// Escalated while firing.
    Updated,
    /// Over.
    Resolved,
}

/// Why an episode resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The clear condition held.
    Cleared,
    /// A more severe alert took over (rising → red).
    Superseded,
    /// The whole team went quiet (half-time, full time).
    SessionEnded,
}

/// One lifecycle event of an alert episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable episode id.
    pub id: String,
    /// Kind.
    pub kind: AlertKind,
    /// Severity now.
    pub severity: Severity,
    /// Lifecycle state.
    pub state: Lifecycle,
    /// For `Resolved`: why.
    pub resolution: Option<Resolution>,
    /// Player.
    pub player: Arc<str>,
    /// Team.
    pub team: Arc<str>,
    /// Session.
    pub session: Arc<str>,
    /// Event time of this lifecycle event, µs.
    pub t: Micros,
    /// When the episode's condition began, µs.
    pub since: Micros,
    /// The triggering value (score, minutes to red, metres, seconds without signal).
    pub value: f64,
    /// Its threshold.
    pub threshold: f64,
    /// Score band at the time.
    pub band: Band,
    /// Score terms that fired.
    pub terms: Vec<Term>,
    /// The score's completeness at the time (share of its possible points known, 0–1).
    pub completeness: f64,
    /// The band is a floor ("at least amber"): unknown terms could lift it.
    pub band_floor: bool,
    /// Forecast at the time.
    pub forecast: Forecast,
    /// One line for people.
    pub summary: String,
    /// Parameter set.
    pub params_version: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Episode {
    id: String,
    since: Micros,
    severity: Severity,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Rule {
    episode: Option<Episode>,
    cond_since: Option<Micros>,
    /// Since when an open episode's condition has been more severe than the episode (the
    /// escalation waits the same pending period as a new episode).
    #[serde(default)]
    escalate_since: Option<Micros>,
    clear_since: Option<Micros>,
    cooldown_until: Micros,
}

/// The alert state of one player (part of the player's snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerAlerts {
    rules: [Rule; 5],
}

/// What one rule sees in one snapshot.
struct Reading {
    level: Option<Severity>,
    clear: bool,
    /// Resolve at once, with this reason (no clear period).
    resolve_now: Option<Resolution>,
    value: f64,
    threshold: f64,
    pending_s: u32,
    clear_s: u32,
    cooldown_s: u32,
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `HH:MM:SS` UTC of an event time.
pub fn clock(t: Micros) -> String {
    let s = t.div_euclid(SECOND).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// The snapshot's second had a position fix.
fn tracked(m: &PlayerMetrics) -> bool {
    m.status.last_fix_age_s.is_some_and(|a| a <= 1.0)
}

fn fired_terms(m: &PlayerMetrics) -> Vec<Term> {
    m.risk
        .terms
        .iter()
        .filter(|t| t.state == TermState::Fired)
        .copied()
        .collect()
}

/// Terms that can fall back within the session: the last minute's sprint burst and
/// deceleration cluster, and the fatigue markers.
const TRANSIENT: [TermId; 4] = [
    TermId::DSprintBurst,
    TermId::DDecelCluster,
    TermId::DFatigue,
    TermId::DNeuromuscular,
];

/// The score without the transient terms' points (a lower bound when a block cap binds):
/// what stays in the band however the next minute goes.
fn sustained_score(m: &PlayerMetrics) -> f64 {
    m.risk.score
        - m.risk
            .terms
            .iter()
            .filter(|t| t.state == TermState::Fired && TRANSIENT.contains(&t.id))
            .map(|t| t.points)
            .sum::<f64>()
}

fn term(m: &PlayerMetrics, id: TermId) -> Option<&Term> {
    m.risk.terms.iter().find(|t| t.id == id)
}

fn read(
    kind: AlertKind,
    m: &PlayerMetrics,
    p: &AlertParams,
    amber: f64,
    red: f64,
    teammates_live: bool,
) -> Reading {
    match kind {
        AlertKind::StrainRisk => {
            let s = m.risk.score;
            Reading {
                level: match m.risk.band {
                    Band::Red => Some(Severity::Critical),
                    Band::Amber => Some(Severity::Warning),
                    Band::Green => None,
                },
                clear: s < amber - p.risk_clear_margin,
                value: s,
                threshold: if m.risk.band == Band::Red { red } else { amber },
                pending_s: if sustained_score(m)
                    >= if m.risk.band == Band::Red { red } else { amber }
                {
                    p.risk_sustained_pending_s
                } else {
                    p.risk_pending_s
                },
                clear_s: p.risk_clear_s,
                cooldown_s: p.risk_cooldown_s,
                resolve_now: None,
            }
        }
        AlertKind::StrainRiskRising => {
            let to_red = m.forecast.to_red_min;
            let soon = m.risk.band < Band::Red
                && to_red.is_some_and(|x| x > 0.0 && x <= p.rising_lead_min);
            Reading {
                level: soon.then_some(Severity::Warning),
                clear: to_red.is_none_or(|x| x > p.rising_lead_min + p.rising_clear_margin_min),
                resolve_now: (m.risk.band == Band::Red).then_some(Resolution::Superseded),
                value: to_red.unwrap_or(f64::INFINITY),
                threshold: p.rising_lead_min,
                pending_s: p.rising_pending_s,
                clear_s: p.rising_clear_s,
                cooldown_s: p.rising_cooldown_s,
            }
        }
        AlertKind::SprintSpike => {
            let (v, norm) = term(m, TermId::DSprintBurst).map_or((0.0, 0.0), |t| {
                (t.value.unwrap_or(0.0), t.threshold.unwrap_or(0.0))
            });
            Reading {
                level: (v >= norm + p.sprint_excess_m && m.risk.band >= p.sprint_min_band)
                    .then_some(Severity::Warning),
                clear: v < norm + p.sprint_clear_excess_m,
                value: v,
                threshold: norm + p.sprint_excess_m,
                pending_s: 0,
                clear_s: p.sprint_clear_s,
                cooldown_s: p.sprint_cooldown_s,
                resolve_now: None,
            }
        }
        AlertKind::Fatigue => {
            let fired = |id| term(m, id).is_some_and(|t| t.state == TermState::Fired);
            let flag = fired(TermId::DFatigue) && fired(TermId::DNeuromuscular);
            Reading {
                level: flag.then_some(Severity::Info),
                clear: !flag,
                value: m.fatigue.post_peak_decrement.unwrap_or(0.0),
                threshold: 0.0,
                pending_s: p.fatigue_pending_s,
                clear_s: p.fatigue_clear_s,
                cooldown_s: p.fatigue_cooldown_s,
                resolve_now: None,
            }
        }
        AlertKind::Device => {
            let bad = m.status.signal != Signal::Ok;
            Reading {
                level: (bad && teammates_live).then_some(Severity::Warning),
                clear: !bad,
                resolve_now: (!teammates_live).then_some(Resolution::SessionEnded),
                value: m.status.last_fix_age_s.unwrap_or(f64::INFINITY),
                threshold: f64::from(p.device_pending_s),
                pending_s: p.device_pending_s,
                clear_s: p.device_clear_s,
                cooldown_s: p.device_cooldown_s,
            }
        }
    }
}

fn summary(
    kind: AlertKind,
    sev: Severity,
    state: Lifecycle,
    m: &PlayerMetrics,
    r: &Reading,
    since: Micros,
) -> String {
    let who = &m.player;
    let what = match (kind, sev) {
        (AlertKind::StrainRisk, Severity::Critical) => format!(
            "strain-risk RED, score {:.1} (red ≥ {:.0})",
            r.value, r.threshold
        ),
        (AlertKind::StrainRisk, _) => format!(
            "strain-risk {}, score {:.1} (amber ≥ {:.0})",
            if m.risk.band_floor {
                "AT LEAST AMBER"
            } else {
                "AMBER"
            },
            r.value,
            r.threshold
        ),
        (AlertKind::StrainRiskRising, _) => {
            format!(
                "strain-risk rising: red in ~{:.0} min at the current rate (score {:.1})",
                r.value, m.risk.score
            )
        }
        (AlertKind::SprintSpike, _) => format!(
            "sprint burst: {:.0} m above 25 km/h in the last minute",
            r.value
        ),
        (AlertKind::Fatigue, _) => {
            "fatigue markers: high-speed output dropping / load per metre rising".to_string()
        }
        (AlertKind::Device, _) => match (state, m.status.signal) {
            (Lifecycle::Resolved, Signal::Ok) => "device: signal back".to_string(),
            (Lifecycle::Resolved, _) => "device: team off the pitch".to_string(),
            (_, Signal::PoorFix) => "device: poor satellite fixes".to_string(),
            _ => format!("device: no signal for {:.0} s", r.value),
        },
    };
    let terms: Vec<String> = m
        .risk
        .terms
        .iter()
        .filter(|t| t.state == TermState::Fired)
        .map(|t| format!("{} +{:.1}", t.id.label(), t.points))
        .collect();
    let why = if terms.is_empty() || matches!(kind, AlertKind::Device) {
        String::new()
    } else {
        format!(" — {}", terms.join("; "))
    };
    // What the score could not judge: said beside every score-based alert.
    let known = if m.risk.completeness < 1.0
        && matches!(kind, AlertKind::StrainRisk | AlertKind::StrainRiskRising)
    {
        format!(" [{:.0} % of the score known]", 100.0 * m.risk.completeness)
    } else {
        String::new()
    };
    let why = format!("{why}{known}");
    let tag = match state {
        Lifecycle::Firing => "",
        Lifecycle::Updated => " (escalated)",
        Lifecycle::Resolved => " — resolved",
    };
    format!("{who}: {what} since {}{why}{tag}", clock(since))
}

impl PlayerAlerts {
    /// Evaluate every rule but the device rule on one snapshot; lifecycle events go to `out`.
    pub fn observe(
        &mut self,
        m: &PlayerMetrics,
        p: &AlertParams,
        amber: f64,
        red: f64,
        out: &mut Vec<AlertEvent>,
    ) {
        self.rules_on(m, p, amber, red, None, out);
    }

    /// Evaluate the device rule on one snapshot. `teammates_live`: at least one teammate was
    /// streaming around that second (see [`crate::team`]).
    pub fn observe_device(
        &mut self,
        m: &PlayerMetrics,
        p: &AlertParams,
        teammates_live: bool,
        out: &mut Vec<AlertEvent>,
    ) {
        self.rules_on(m, p, 0.0, 0.0, Some(teammates_live), out);
    }

    /// The device rule alone when `device` is given, else every other rule.
    fn rules_on(
        &mut self,
        m: &PlayerMetrics,
        p: &AlertParams,
        amber: f64,
        red: f64,
        device: Option<bool>,
        out: &mut Vec<AlertEvent>,
    ) {
        for (k, kind) in AlertKind::ALL.into_iter().enumerate() {
            if (kind == AlertKind::Device) != device.is_some() {
                continue;
            }
            let teammates_live = device.unwrap_or(false);
            let mut r = read(kind, m, p, amber, red, teammates_live);
            if kind != AlertKind::Device && !tracked(m) {
                // Off the pitch (bench, dropout, after the whistle): nothing new fires.
                r.level = None;
            }
            let rule = &mut self.rules[k];
            let event = |state, sev: Severity, since: Micros, id: &str, resolution, r: &Reading| {
                AlertEvent {
                    id: id.to_string(),
                    kind,
                    severity: sev,
                    state,
                    resolution,
                    player: Arc::clone(&m.player),
                    team: Arc::clone(&m.team),
                    session: Arc::clone(&m.session),
                    t: m.t,
                    since,
                    value: r.value,
                    threshold: r.threshold,
                    band: m.risk.band,
                    terms: fired_terms(m),
                    completeness: m.risk.completeness,
                    band_floor: m.risk.band_floor,
                    forecast: m.forecast,
                    summary: summary(kind, sev, state, m, r, since),
                    params_version: Arc::clone(&m.params_version),
                }
            };
            match rule.episode.clone() {
                None => match r.level {
                    Some(sev) => {
                        let since = *rule.cond_since.get_or_insert(m.t);
                        if m.t - since >= i64::from(r.pending_s) * SECOND
                            && m.t >= rule.cooldown_until
                        {
                            let id = format!(
                                "{}-{:016x}",
                                kind.as_str(),
                                fnv(&format!(
                                    "{}|{}|{}|{}",
                                    kind.as_str(),
                                    m.player,
                                    m.session,
                                    since
                                ))
                            );
                            out.push(event(Lifecycle::Firing, sev, since, &id, None, &r));
                            rule.episode = Some(Episode {
                                id,
                                since,
                                severity: sev,
                            });
                            rule.clear_since = None;
                        }
                    }
                    None => rule.cond_since = None,
                },
                Some(ep) => {
                    if let Some(why) = r.resolve_now {
                        out.push(event(
                            Lifecycle::Resolved,
                            ep.severity,
                            ep.since,
                            &ep.id,
                            Some(why),
                            &r,
                        ));
                        *rule = Rule {
                            cooldown_until: m.t + i64::from(r.cooldown_s) * SECOND,
                            ..Rule::default()
                        };
                        continue;
                    }
                    match r.level {
                        Some(sev) if sev > ep.severity => {
                            let since = *rule.escalate_since.get_or_insert(m.t);
                            if m.t - since >= i64::from(r.pending_s) * SECOND {
                                out.push(event(
                                    Lifecycle::Updated,
                                    sev,
                                    ep.since,
                                    &ep.id,
                                    None,
                                    &r,
                                ));
                                rule.episode = Some(Episode {
                                    severity: sev,
                                    ..ep.clone()
                                });
                                rule.escalate_since = None;
                            }
                        }
                        _ => rule.escalate_since = None,
                    }
                    if r.clear {
                        let since = *rule.clear_since.get_or_insert(m.t);
                        if m.t - since >= i64::from(r.clear_s) * SECOND {
                            let sev = rule.episode.as_ref().map_or(ep.severity, |e| e.severity);
                            out.push(event(
                                Lifecycle::Resolved,
                                sev,
                                ep.since,
                                &ep.id,
                                Some(Resolution::Cleared),
                                &r,
                            ));
                            *rule = Rule {
                                cooldown_until: m.t + i64::from(r.cooldown_s) * SECOND,
                                ..Rule::default()
                            };
                        }
                    } else {
                        rule.clear_since = None;
                    }
                }
            }
        }
    }

    /// Ids of the open episodes.
    pub fn open(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter_map(|r| r.episode.as_ref().map(|e| e.id.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{DeviceStatus, Quality, Totals};
    use crate::risk::{Block, RiskScore};

    fn snap(t_s: i64, score: f64, to_red: Option<f64>, signal: Signal) -> PlayerMetrics {
        let band = if score >= 5.0 {
            Band::Red
        } else if score >= 3.0 {
            Band::Amber
        } else {
            Band::Green
        };
        PlayerMetrics {
            player: "p".into(),
            team: "t".into(),
            session: "s".into(),
            t: t_s * SECOND,
            params_version: "v".into(),
            status: DeviceStatus {
                signal,
                last_fix_age_s: Some(0.0),
            },
            totals: Totals::default(),
            windows: vec![],
            fatigue: Default::default(),
            risk: RiskScore {
                score,
                band,
                blocks: [0.0; 4],
                // 1 point that stays; the rest from a sprint burst that can fall back, so
                // the full pending periods apply (see `sustained`).
                terms: vec![
                    Term {
                        id: TermId::BHsrZ,
                        block: Block::B,
                        points: 1.0,
                        state: TermState::Fired,
                        value: Some(1.2),
                        threshold: Some(1.0),
                    },
                    Term {
                        id: TermId::DSprintBurst,
                        block: Block::D,
                        points: (score - 1.0).max(0.0),
                        state: TermState::Fired,
                        value: Some(40.0),
                        threshold: Some(20.0),
                    },
                ],
                completeness: 1.0,
                ceiling: score,
                band_floor: false,
            },
            forecast: Forecast {
                to_amber_min: None,
                to_red_min: to_red,
                to_red_long_rate_min: to_red,
                full_time_in_min: None,
            },
            quality: Quality::default(),
        }
    }

    fn run(series: impl Iterator<Item = PlayerMetrics>, teammates_live: bool) -> Vec<AlertEvent> {
        let mut a = PlayerAlerts::default();
        let mut out = Vec::new();
        for m in series {
            a.observe(&m, &AlertParams::default(), 3.0, 5.0, &mut out);
            a.observe_device(&m, &AlertParams::default(), teammates_live, &mut out);
        }
        out
    }

    #[test]
    fn strain_risk_fires_after_its_pending_period_escalates_and_resolves_with_hysteresis() {
        // 10 s green, 130 s amber, a 20-s red blip (shorter than the pending period: no
        // escalation), 10 s amber, 130 s red, 20 s at 2.8 (inside the hysteresis), 200 s at 2.0.
        let scores = std::iter::repeat_n(2.0, 10)
            .chain(std::iter::repeat_n(3.5, 130))
            .chain(std::iter::repeat_n(5.5, 20))
            .chain(std::iter::repeat_n(3.5, 10))
            .chain(std::iter::repeat_n(5.5, 130))
            .chain(std::iter::repeat_n(2.8, 20))
            .chain(std::iter::repeat_n(2.0, 200));
        let ev: Vec<_> = run(
            scores
                .enumerate()
                .map(|(i, s)| snap(i as i64, s, None, Signal::Ok)),
            true,
        )
        .into_iter()
        .filter(|e| e.kind == AlertKind::StrainRisk)
        .collect();
        let states: Vec<_> = ev
            .iter()
            .map(|e| (e.state, e.severity, e.t / SECOND))
            .collect();
        assert_eq!(
            states,
            vec![
                (Lifecycle::Firing, Severity::Warning, 10 + 120),
                (Lifecycle::Updated, Severity::Critical, 170 + 120),
                (Lifecycle::Resolved, Severity::Critical, 320 + 180),
            ],
            "{ev:#?}"
        );
        assert!(ev.iter().all(|e| e.id == ev[0].id), "one episode, one id");
        assert!(
            ev[0].summary.contains("strain-risk AMBER") && ev[0].summary.contains("7-day HSR"),
            "{}",
            ev[0].summary
        );
    }

    /// `snap` with every point on cumulative terms (weekly HSR rise), none transient.
    fn sustained(t_s: i64, score: f64) -> PlayerMetrics {
        let mut m = snap(t_s, score, None, Signal::Ok);
        m.risk.terms[0].id = TermId::BWeekRise;
        m.risk.terms[0].points = score;
        m.risk.terms.truncate(1);
        m
    }

    #[test]
    fn a_band_carried_by_cumulative_terms_fires_after_the_short_pending_period() {
        let p = AlertParams::default();
        // 10 s green, then amber from a weekly rise: fires after the short pending period.
        let ev: Vec<_> = run(
            (0..200).map(|i| sustained(i, if i < 10 { 2.0 } else { 3.8 })),
            true,
        )
        .into_iter()
        .filter(|e| e.kind == AlertKind::StrainRisk)
        .collect();
        assert_eq!(ev.len(), 1, "{ev:#?}");
        assert_eq!(ev[0].t / SECOND, 10 + i64::from(p.risk_sustained_pending_s));
        // The same score carried by a sprint burst waits the full period.
        let ev: Vec<_> = run(
            (0..200).map(|i| snap(i, if i < 10 { 2.0 } else { 3.8 }, None, Signal::Ok)),
            true,
        )
        .into_iter()
        .filter(|e| e.kind == AlertKind::StrainRisk)
        .collect();
        assert_eq!(ev[0].t / SECOND, 10 + i64::from(p.risk_pending_s));
        // Mixed: 3.2 of 3.8 points cumulative (in the band on its own) → short period; 2.5 of
        // them (below amber without the burst) → full period.
        for (stay, wait) in [(3.2, p.risk_sustained_pending_s), (2.5, p.risk_pending_s)] {
            let ev: Vec<_> = run(
                (0..200).map(|i| {
                    let mut m = snap(i, if i < 10 { 2.0 } else { 3.8 }, None, Signal::Ok);
                    if i >= 10 {
                        m.risk.terms[0].points = stay;
                        m.risk.terms[1].points = 3.8 - stay;
                    }
                    m
                }),
                true,
            )
            .into_iter()
            .filter(|e| e.kind == AlertKind::StrainRisk)
            .collect();
            assert_eq!(ev[0].t / SECOND, 10 + i64::from(wait), "{stay} points stay");
        }
    }

    #[test]
    fn a_new_episode_waits_for_the_cooldown_and_gets_a_new_id() {
        let mut series = Vec::new();
        for (from, len, s) in [
            (0, 150, 3.5),
            (150, 200, 2.0),
            (350, 150, 3.5),
            (500, 900, 2.0),
            (1400, 150, 3.5),
        ] {
            series.extend((from..from + len).map(|t| snap(t, s, None, Signal::Ok)));
        }
        let firing: Vec<_> = run(series.into_iter(), true)
            .into_iter()
            .filter(|e| e.kind == AlertKind::StrainRisk && e.state == Lifecycle::Firing)
            .collect();
        // First at 120 s; it resolves at 150+180 = 330 s; the amber at 350–499 falls in the
        // 900 s cooldown (to 1230 s); the one from 1400 s fires at 1520 s, a new episode.
        assert_eq!(
            firing.iter().map(|e| e.t / SECOND).collect::<Vec<_>>(),
            vec![120, 1520]
        );
        assert_ne!(firing[0].id, firing[1].id);
    }

    #[test]
    fn rising_fires_on_the_forecast_and_is_superseded_when_red_arrives() {
        let series = (0..40)
            .map(|t| snap(t, 4.0, Some(6.0), Signal::Ok))
            .chain((40..50).map(|t| snap(t, 5.2, Some(0.0), Signal::Ok)));
        let ev: Vec<_> = run(series, true)
            .into_iter()
            .filter(|e| e.kind == AlertKind::StrainRiskRising)
            .collect();
        assert_eq!(ev.len(), 2, "{ev:#?}");
        assert_eq!((ev[0].state, ev[0].t / SECOND), (Lifecycle::Firing, 30));
        assert_eq!(
            (ev[1].state, ev[1].resolution),
            (Lifecycle::Resolved, Some(Resolution::Superseded))
        );
        assert!(ev[0].summary.contains("red in ~6 min"), "{}", ev[0].summary);
    }

    #[test]
    fn a_silent_pod_alerts_only_while_teammates_stream() {
        let series = || {
            (0..120).map(|t| {
                snap(
                    t,
                    1.0,
                    None,
                    if t < 20 { Signal::Ok } else { Signal::NoSignal },
                )
            })
        };
        let alone = run(series(), false);
        assert!(
            alone.iter().all(|e| e.kind != AlertKind::Device),
            "half-time is not 22 dead pods"
        );
        let ev: Vec<_> = run(series(), true)
            .into_iter()
            .filter(|e| e.kind == AlertKind::Device)
            .collect();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].t / SECOND, 50);
    }

    #[test]
    fn nothing_new_fires_for_a_player_without_fixes() {
        // Red from second 20, but the pod stops at second 60 (before the 120-s pending ends).
        let series = || {
            (0..400).map(|t| {
                let mut m = snap(t, if t > 20 { 5.5 } else { 1.0 }, None, Signal::Ok);
                if t >= 60 {
                    m.status.last_fix_age_s = Some((t - 59) as f64);
                }
                m
            })
        };
        let ev = run(series(), false);
        assert!(ev.iter().all(|e| e.kind != AlertKind::StrainRisk), "{ev:?}");
    }

    #[test]
    fn the_same_snapshots_give_the_same_ids() {
        let series = || (0..300).map(|t| snap(t, if t > 20 { 5.5 } else { 1.0 }, None, Signal::Ok));
        let a: Vec<_> = run(series(), true).into_iter().map(|e| e.id).collect();
        let b: Vec<_> = run(series(), true).into_iter().map(|e| e.id).collect();
        assert!(!a.is_empty());
        assert_eq!(a, b);
    }
}
