//! What the bench sees, per (team, session): every player's latest snapshot, his history for
//! the session (one point per second, for sparklines) and his peak score; the alert feed with
//! acknowledgements; the roster's names, squad numbers and positions; and how old the newest
//! data is. Bounded: [`SESSIONS`] sessions, [`HISTORY_S`] points per player, [`FEED`] alert
//! events, [`ACKS`] acknowledgements (the oldest go first).

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use sideline_engine::forecast::Forecast;
use sideline_engine::risk::Band;

use crate::model::{AlertItem, Snapshot};

/// Sessions kept (a tournament day's worth of both teams).
pub const SESSIONS: usize = 16;
/// Seconds of history kept per player (a whole match with extra time).
pub const HISTORY_S: usize = 2 * 60 * 60;
/// Alert events kept in the feed.
pub const FEED: usize = 2_000;
/// Acknowledgements kept.
pub const ACKS: usize = 10_000;

/// The forecast as staff read it, only where it tells them something: nothing for a player
/// already in the red band (the band says it), "at the red threshold" while the score has
/// reached red but the band has not changed yet (its pending time), the minutes to red as the
/// range of the last 5 and 10 minutes' rates ([`Forecast::red_text`]), else for a green player
/// the minutes to amber; nothing without a crossing in the horizon.
pub fn forecast_text(band: Band, f: &Forecast) -> Option<String> {
    let minutes = |m: f64| format!("{:.0}", m.round().max(1.0));
    let d = sideline_engine::params::RiskParams::default();
    match (band, f.to_red_min, f.to_amber_min) {
        (Band::Red, _, _) => None,
        (_, Some(m), _) if m <= 0.0 => Some("at the red threshold".into()),
        (_, Some(_), _) => f.red_text(d.forecast_trend_s, d.forecast_trend_long_s),
        (Band::Green, None, Some(m)) if m <= 0.0 => Some("at the amber threshold".into()),
        (Band::Green, None, Some(m)) => Some(format!("amber in ~{} min", minutes(m))),
        _ => None,
    }
}

/// Who a player is, for staff (from the roster's athlete profiles).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Person {
    /// Display name.
    pub name: Option<String>,
    /// Squad number.
    pub number: Option<u32>,
    /// Position.
    pub position: Option<String>,
}

/// One point of a player's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// End of the second, µs.
    pub t_us: i64,
    /// Strain-risk score.
    pub score: f64,
    /// Rolling HSR of the shortest window, m.
    pub hsr_m: f64,
    /// Rolling sprint distance of the shortest window, m.
    pub sprint_m: f64,
}

/// An acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    /// Who.
    pub by: String,
    /// When, µs since the epoch.
    pub at_us: i64,
}

#[derive(Debug, Default)]
struct Session {
    latest: BTreeMap<String, Snapshot>,
    history: BTreeMap<String, VecDeque<Point>>,
    peak: BTreeMap<String, (f64, Band)>,
    newest_t: i64,
    as_of_us: i64,
}

/// A (team, session) as the pickers list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionInfo {
    /// Team id.
    pub team: String,
    /// Session id.
    pub session: String,
    /// Players seen.
    pub players: usize,
    /// Newest second, µs.
    pub newest_t: i64,
    /// Seconds since the newest data was produced.
    pub age_s: f64,
}

/// A player's row in the squad list.
#[derive(Debug, Clone, Serialize)]
pub struct Row<'a> {
    /// The latest snapshot.
    #[serde(flatten)]
    pub snapshot: &'a Snapshot,
    /// Who he is.
    #[serde(flatten)]
    pub person: Person,
    /// His open alert ids.
    pub open_alerts: Vec<String>,
    /// The forecast in words ([`forecast_text`]).
    pub forecast_text: Option<String>,
}

/// An alert event with the player's name and its acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedItem {
    /// The event.
    pub alert: AlertItem,
    /// The player's display name.
    pub name: Option<String>,
    /// Its forecast in words.
    pub forecast_text: Option<String>,
    /// The alert is still open (its latest event is not a resolution).
    pub open: bool,
    /// Acknowledged by staff.
    pub acknowledged: bool,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When, µs.
    pub acknowledged_at_us: Option<i64>,
}

/// A player's line of the session summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Player id.
    pub player: String,
    /// Who he is.
    #[serde(flatten)]
    pub person: Person,
    /// Minutes played.
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
    /// Highest score of the session and its band.
    pub peak_score: f64,
    /// Band at the peak.
    pub peak_band: Band,
    /// Score and band at the end.
    pub final_score: f64,
    /// Band at the end.
    pub final_band: Band,
    /// Alerts that fired for him in the session.
    pub alerts: usize,
    /// Of which staff acknowledged.
    pub acknowledged: usize,
}

/// The state behind the bench page.
#[derive(Debug, Default)]
pub struct SquadView {
    sessions: BTreeMap<(String, String), Session>,
    feed: VecDeque<AlertItem>,
    acked: HashMap<String, Ack>,
    ack_order: VecDeque<String>,
    people: HashMap<String, Person>,
    /// Snapshots taken in.
    pub updates: u64,
}

impl SquadView {
    /// Take a snapshot in; `as_of_us` is when it was produced (the record's timestamp), for
    /// the data age.
    pub fn snapshot(&mut self, s: Snapshot, as_of_us: i64) {
        self.updates += 1;
        let key = (s.team.clone(), s.session.clone());
        if !self.sessions.contains_key(&key) && self.sessions.len() >= SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, v)| v.newest_t)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                if self.sessions[&k].newest_t > s.t {
                    return; // older than every session kept
                }
                self.sessions.remove(&k);
            }
        }
        let sess = self.sessions.entry(key).or_default();
        sess.newest_t = sess.newest_t.max(s.t);
        sess.as_of_us = sess.as_of_us.max(as_of_us);
        let h = sess.history.entry(s.player.clone()).or_default();
        if h.len() == HISTORY_S {
            h.pop_front();
        }
        h.push_back(Point {
            t_us: s.t,
            score: s.risk.score,
            hsr_m: s.window.hsr_m,
            sprint_m: s.window.sprint_m,
        });
        let peak = sess
            .peak
            .entry(s.player.clone())
            .or_insert((s.risk.score, s.risk.band));
        if s.risk.score > peak.0 || s.risk.band > peak.1 {
            *peak = (peak.0.max(s.risk.score), peak.1.max(s.risk.band));
        }
        sess.latest.insert(s.player.clone(), s);
    }

    /// Take an alert event in.
    pub fn alert(&mut self, a: AlertItem) {
        if self.feed.len() == FEED {
            self.feed.pop_front();
        }
        self.feed.push_back(a);
    }

    /// Set who a player is.
    pub fn set_person(&mut self, player: &str, p: Person) {
        self.people.insert(player.to_string(), p);
    }

    /// Forget a player's name (his profile was deleted).
    pub fn remove_person(&mut self, player: &str) {
        self.people.remove(player);
    }

    fn person(&self, player: &str) -> Person {
        self.people.get(player).cloned().unwrap_or_default()
    }

    /// Acknowledge an alert in the feed (the bench page): `false` if no such alert is in the
    /// feed. The first acknowledgement stands.
    pub fn acknowledge(&mut self, id: &str, by: &str, at_us: i64) -> bool {
        if !self.feed.iter().any(|a| a.id == id) {
            return false;
        }
        self.record_ack(id, by, at_us);
        true
    }

    /// Record an acknowledgement from elsewhere (the acks topic, chat), whether or not its
    /// alert has been seen yet. The first one stands.
    pub fn record_ack(&mut self, id: &str, by: &str, at_us: i64) {
        if self.acked.contains_key(id) {
            return;
        }
        if self.ack_order.len() == ACKS
            && let Some(old) = self.ack_order.pop_front()
        {
            self.acked.remove(&old);
        }
        self.ack_order.push_back(id.to_string());
        self.acked.insert(
            id.to_string(),
            Ack {
                by: by.to_string(),
                at_us,
            },
        );
    }

    /// The acknowledgement of an alert id.
    pub fn ack(&self, id: &str) -> Option<&Ack> {
        self.acked.get(id)
    }

    /// Acknowledged alert ids and who acknowledged each.
    pub fn acknowledged(&self) -> impl Iterator<Item = (&str, &str)> {
        self.acked.iter().map(|(i, a)| (i.as_str(), a.by.as_str()))
    }

    /// Every session, the one with the freshest data first.
    pub fn sessions(&self, now_us: i64) -> Vec<SessionInfo> {
        let mut v: Vec<SessionInfo> = self
            .sessions
            .iter()
            .map(|((team, session), s)| SessionInfo {
                team: team.clone(),
                session: session.clone(),
                players: s.latest.len(),
                newest_t: s.newest_t,
                age_s: age_s(now_us, s.as_of_us),
            })
            .collect();
        // Freshest data first (the session being played), as [`SquadView::pick`] chooses.
        v.sort_by(|a, b| {
            a.age_s
                .total_cmp(&b.age_s)
                .then(b.newest_t.cmp(&a.newest_t))
                .then(a.team.cmp(&b.team))
        });
        v
    }

    /// The (team, session) asked for, else the given team's session with the freshest data
    /// (the one being played), else the freshest of all.
    pub fn pick(&self, team: Option<&str>, session: Option<&str>) -> Option<(String, String)> {
        if let (Some(t), Some(s)) = (team, session)
            && self.sessions.contains_key(&(t.to_string(), s.to_string()))
        {
            return Some((t.to_string(), s.to_string()));
        }
        self.sessions
            .iter()
            .filter(|((t, _), _)| team.is_none_or(|want| want == t))
            .max_by_key(|(_, s)| (s.as_of_us, s.newest_t))
            .map(|(k, _)| k.clone())
    }

    /// Seconds since the session's newest data was produced.
    pub fn age_s(&self, key: &(String, String), now_us: i64) -> Option<f64> {
        self.sessions.get(key).map(|s| age_s(now_us, s.as_of_us))
    }

    /// A session's players, highest score first (ties by id).
    pub fn squad(&self, key: &(String, String)) -> Vec<Row<'_>> {
        let Some(sess) = self.sessions.get(key) else {
            return Vec::new();
        };
        let open = self.open();
        let mut rows: Vec<Row<'_>> = sess
            .latest
            .values()
            .map(|s| Row {
                snapshot: s,
                person: self.person(&s.player),
                open_alerts: open
                    .iter()
                    .filter(|a| a.player == s.player && a.session == s.session)
                    .map(|a| a.id.clone())
                    .collect(),
                forecast_text: forecast_text(s.risk.band, &s.forecast),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.snapshot
                .risk
                .score
                .total_cmp(&a.snapshot.risk.score)
                .then_with(|| a.snapshot.player.cmp(&b.snapshot.player))
        });
        rows
    }

    /// Alerts whose latest event is not a resolution.
    fn open(&self) -> Vec<&AlertItem> {
        let mut last: BTreeMap<&str, &AlertItem> = BTreeMap::new();
        for a in &self.feed {
            last.insert(a.id.as_str(), a);
        }
        last.into_values().filter(|a| !a.resolved()).collect()
    }

    /// One player's latest snapshot and history in a session.
    pub fn player(
        &self,
        key: &(String, String),
        id: &str,
    ) -> Option<(&Snapshot, &VecDeque<Point>, Person)> {
        let s = self.sessions.get(key)?;
        Some((s.latest.get(id)?, s.history.get(id)?, self.person(id)))
    }

    /// The alert feed of a session (all sessions for `None`), newest first.
    pub fn alerts(&self, key: Option<&(String, String)>) -> Vec<FeedItem> {
        let open: std::collections::HashSet<&str> =
            self.open().into_iter().map(|a| a.id.as_str()).collect();
        self.feed
            .iter()
            .rev()
            .filter(|a| key.is_none_or(|(t, s)| *t == a.team && *s == a.session))
            .map(|a| {
                let ack = self.acked.get(&a.id);
                FeedItem {
                    name: self.person(&a.player).name,
                    forecast_text: forecast_text(a.band, &a.forecast),
                    alert: a.clone(),
                    open: open.contains(a.id.as_str()),
                    acknowledged: ack.is_some(),
                    acknowledged_by: ack.map(|a| a.by.clone()),
                    acknowledged_at_us: ack.map(|a| a.at_us),
                }
            })
            .collect()
    }

    /// The session's summary: one line per player, by squad number then name then id.
    pub fn summary(&self, key: &(String, String)) -> Vec<SummaryRow> {
        let Some(sess) = self.sessions.get(key) else {
            return Vec::new();
        };
        let mut rows: Vec<SummaryRow> = sess
            .latest
            .values()
            .map(|s| {
                let fired: Vec<&AlertItem> = self
                    .feed
                    .iter()
                    .filter(|a| {
                        a.player == s.player
                            && a.team == key.0
                            && a.session == key.1
                            && a.state == "firing"
                    })
                    .collect();
                let (peak_score, peak_band) = sess
                    .peak
                    .get(&s.player)
                    .copied()
                    .unwrap_or((s.risk.score, s.risk.band));
                SummaryRow {
                    player: s.player.clone(),
                    person: self.person(&s.player),
                    minutes: s.totals.minutes,
                    distance_m: s.totals.distance_m,
                    hsr_m: s.totals.hsr_m,
                    sprint_m: s.totals.sprint_m,
                    sprints: s.totals.sprints,
                    max_speed_mps: s.totals.max_speed_mps,
                    peak_score,
                    peak_band,
                    final_score: s.risk.score,
                    final_band: s.risk.band,
                    alerts: fired.len(),
                    acknowledged: fired
                        .iter()
                        .filter(|a| self.acked.contains_key(&a.id))
                        .count(),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (
                a.person.number.unwrap_or(u32::MAX),
                &a.person.name,
                &a.player,
            )
                .cmp(&(
                    b.person.number.unwrap_or(u32::MAX),
                    &b.person.name,
                    &b.player,
                ))
        });
        rows
    }

    /// Players seen in every session.
    pub fn players(&self) -> usize {
        self.sessions.values().map(|s| s.latest.len()).sum()
    }
}

fn age_s(now_us: i64, as_of_us: i64) -> f64 {
    ((now_us - as_of_us) as f64 / 1e6).max(0.0)
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
