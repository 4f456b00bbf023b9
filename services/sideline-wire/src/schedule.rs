//! Which session (match or training) a team's data belongs to — decided by the club, never by
//! the pod. A pod that reboots mid-match comes back with a new session id of its own; if that id
//! were used, the player's engine would start again from zero (his risk history lost) and his
//! per-session series would multiply. So ingest stamps every batch with the team's session:
//!
//! 1. the roster's schedule: the latest session of the team that started at or before the
//!    batch's first sample, unless it has ended (`end_us`);
//! 2. otherwise the team's session day, `<team>-<YYYY-MM-DD>`, where a day starts at
//!    `day_start_utc_h` o'clock UTC (so that an evening match past midnight stays in its day).
//!
//! ```toml
//! [[sessions]]
//! team = "home"
//! session = "2026-12-06-v-city"
//! start_us = 1796569200000000  # from when this is the team's session (µs since epoch, 0 = always)
//! end_us = 0                   # optional: until when (0 = until the team's next session)
//! kind = "match"               # optional: match | training | drill
//! full_time_us = 1796575500000000  # optional: planned end of play; forecasts look no further
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sideline_engine::Micros;

/// A team's session from a time on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionEntry {
    /// Team id.
    pub team: String,
    /// Session id.
    pub session: String,
    /// From when (µs since the epoch; 0 = always).
    #[serde(default)]
    pub start_us: Micros,
    /// Until when, exclusive (µs since the epoch; 0 = until the team's next session starts).
    #[serde(default)]
    pub end_us: Micros,
    /// What the session is.
    #[serde(default)]
    pub kind: Option<SessionKind>,
    /// Planned end of play, µs since the epoch (0 = not known): the forecast's limit.
    #[serde(default)]
    pub full_time_us: Micros,
}

/// What a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A match.
    Match,
    /// A training session.
    Training,
    /// A drill (a part of training timed on its own).
    Drill,
}

impl SessionKind {
    /// The wire enum's value.
    pub fn to_pb(k: Option<Self>) -> i32 {
        match k {
            None => 0,
            Some(SessionKind::Match) => 1,
            Some(SessionKind::Training) => 2,
            Some(SessionKind::Drill) => 3,
        }
    }

    /// From the wire enum's value (unknown values: not said).
    pub fn from_pb(v: i32) -> Option<Self> {
        match v {
            1 => Some(SessionKind::Match),
            2 => Some(SessionKind::Training),
            3 => Some(SessionKind::Drill),
            _ => None,
        }
    }
}

/// Every team's scheduled sessions, each team's in start order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    teams: HashMap<String, Vec<SessionEntry>>,
}

impl Schedule {
    /// Problems with a list of entries (ids checked by the caller).
    pub fn problems(entries: &[SessionEntry]) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in entries {
            if e.end_us != 0 && e.end_us <= e.start_us {
                out.push(format!(
                    "sessions: {}/{} ends ({}) before it starts ({})",
                    e.team, e.session, e.end_us, e.start_us
                ));
            }
            if e.full_time_us != 0 && e.full_time_us <= e.start_us {
                out.push(format!(
                    "sessions: {}/{} has full time ({}) before it starts ({})",
                    e.team, e.session, e.full_time_us, e.start_us
                ));
            }
            if !seen.insert((&e.team, &e.session)) {
                out.push(format!("sessions: {}/{} listed twice", e.team, e.session));
            }
        }
        out
    }

    /// Add or replace (same team and session id) an entry.
    pub fn insert(&mut self, e: SessionEntry) {
        let list = self.teams.entry(e.team.clone()).or_default();
        list.retain(|x| x.session != e.session);
        list.push(e);
        list.sort_by_key(|x| x.start_us);
    }

    /// Remove a team's session.
    pub fn remove(&mut self, team: &str, session: &str) {
        if let Some(list) = self.teams.get_mut(team) {
            list.retain(|x| x.session != session);
        }
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = &SessionEntry> {
        self.teams.values().flatten()
    }

    /// The scheduled session of `team` at event time `t`, if one is in force.
    pub fn scheduled(&self, team: &str, t: Micros) -> Option<&SessionEntry> {
        let latest = self
            .teams
            .get(team)?
            .iter()
            .rev()
            .find(|e| e.start_us <= t)?;
        (latest.end_us == 0 || t < latest.end_us).then_some(latest)
    }

    /// The session of `team` at event time `t`: the schedule's, or the team's session day.
    pub fn session(&self, team: &str, t: Micros, day_start_utc_h: u8) -> String {
        match self.scheduled(team, t) {
            Some(e) => e.session.clone(),
            None => session_day(team, t, day_start_utc_h),
        }
    }
}

/// `<team>-<YYYY-MM-DD>` of the day (starting at `day_start_utc_h` UTC) that holds `t`.
pub fn session_day(team: &str, t: Micros, day_start_utc_h: u8) -> String {
    const HOUR: Micros = 3_600_000_000;
    let shifted = t.saturating_sub(Micros::from(day_start_utc_h.min(23)) * HOUR);
    let day = chrono::DateTime::from_timestamp_micros(shifted).map_or_else(
        || "out-of-range".to_string(),
        |d| d.format("%Y-%m-%d").to_string(),
    );
    format!("{team}-{day}")
}

/// Roster TOML that puts each of `teams` in `session` from the beginning of time (for a replay
/// or a simulation, whose data should keep the session it was recorded or generated under).
pub fn open_sessions_toml<'a>(teams: impl IntoIterator<Item = &'a str>, session: &str) -> String {
    let mut teams: Vec<&str> = teams.into_iter().collect();
    teams.sort_unstable();
    teams.dedup();
    teams
        .into_iter()
        .map(|t| format!("\n[[sessions]]\nteam = \"{t}\"\nsession = \"{session}\"\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Micros = 3_600_000_000;
    /// 2026-12-06T00:00:00Z.
    const DEC6: Micros = 1_796_515_200_000_000;

    fn entry(session: &str, start_us: Micros, end_us: Micros) -> SessionEntry {
        SessionEntry {
            kind: None,
            full_time_us: 0,
            team: "home".into(),
            session: session.into(),
            start_us,
            end_us,
        }
    }

    #[test]
    fn the_latest_started_session_applies_until_it_ends() {
        let mut s = Schedule::default();
        s.insert(entry("am", DEC6 + 9 * H, DEC6 + 11 * H));
        s.insert(entry("pm", DEC6 + 15 * H, 0));
        assert_eq!(s.session("home", DEC6 + 10 * H, 4), "am");
        // Between the two: the day.
        assert_eq!(s.session("home", DEC6 + 12 * H, 4), "home-2026-12-06");
        assert_eq!(s.session("home", DEC6 + 23 * H, 4), "pm");
        // Open-ended: the next day too, until another starts.
        assert_eq!(s.session("home", DEC6 + 40 * H, 4), "pm");
        // Another team is not scheduled.
        assert_eq!(s.session("away", DEC6 + 10 * H, 4), "away-2026-12-06");
        // Replaced by id.
        s.insert(entry("am", DEC6 + 8 * H, DEC6 + 9 * H));
        assert_eq!(s.session("home", DEC6 + 8 * H + 1, 4), "am");
        assert_eq!(s.session("home", DEC6 + 10 * H, 4), "home-2026-12-06");
        s.remove("home", "pm");
        assert_eq!(s.session("home", DEC6 + 23 * H, 4), "home-2026-12-06");
    }

    #[test]
    fn a_session_day_starts_at_the_set_hour_so_a_late_match_keeps_its_day() {
        // 01:30 UTC on the 7th belongs to the 6th when days start at 04:00 UTC.
        assert_eq!(
            session_day("home", DEC6 + 25 * H + H / 2, 4),
            "home-2026-12-06"
        );
        assert_eq!(session_day("home", DEC6 + 28 * H, 4), "home-2026-12-07");
        assert_eq!(session_day("home", DEC6 + 25 * H, 0), "home-2026-12-07");
    }

    #[test]
    fn bad_entries_are_reported() {
        let p = Schedule::problems(&[entry("a", 10, 5), entry("b", 0, 0), entry("b", 3, 0)]);
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
