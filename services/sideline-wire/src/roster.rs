//! The roster: which pod each player wears (pods are swapped, so an assignment has a start
//! time), the athlete profiles staff maintain, and the teams' session schedule
//! ([`crate::schedule`]). Read from a TOML file and kept current from the compacted topic
//! `sideline.roster.v1` (key `device:<id>` → `DeviceAssignment`, `player:<id>` →
//! `AthleteProfile`, `session:<team>:<session>` → `ScheduledSession`,
//! `pitch:<team>:<session>:<player>:<at_us>` → `PitchChange` ([`crate::lineup`]); an empty
//! value deletes).
//!
//! ```toml
//! [[devices]]
//! device = "pod-h07"
//! player = "home-07"
//! team = "home"
//! valid_from_us = 0            # optional: from when this pod is this player's (µs since epoch)
//!
//! [[athletes]]
//! player = "home-07"
//! display_name = "A. Player"
//! vmax_mps = 9.4
//! hr_max = 195
//! hr_rest = 48
//! [athletes.susceptibility]
//! hamstring = "previous"       # none | previous | recent
//! nordic_n = 352
//!
//! [[sessions]]                 # optional; see crate::schedule
//! team = "home"
//! session = "2026-12-06-v-city"
//! start_us = 1796569200000000
//! ```

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use serde::{Deserialize, Serialize};
use sideline_engine::{AthleteProfile, Micros};

use crate::convert::{profile_from_pb, profile_to_pb};
use crate::lineup::PitchChange;
use crate::pb;
use crate::schedule::{Schedule, SessionEntry};

/// A pod worn by a player from a time on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// Pod id.
    pub device: String,
    /// Player id.
    pub player: String,
    /// Team id.
    pub team: String,
    /// From when (µs since the epoch; 0 = always).
    #[serde(default)]
    pub valid_from_us: Micros,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterFile {
    #[serde(default)]
    devices: Vec<DeviceEntry>,
    #[serde(default)]
    athletes: Vec<AthleteProfile>,
    #[serde(default)]
    sessions: Vec<SessionEntry>,
    #[serde(default)]
    lineup: Vec<PitchChange>,
}

/// A roster that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RosterError {
    /// The file does not parse.
    #[error("roster: {0}")]
    Parse(String),
    /// Entries are inconsistent (every problem listed).
    #[error("roster: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A topic record that is not a roster record.
    #[error("roster record {key:?}: {why}")]
    Record {
        /// Record key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

pub(crate) fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Device assignments and athlete profiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    devices: HashMap<String, Vec<DeviceEntry>>,
    athletes: BTreeMap<String, AthleteProfile>,
    schedule: Schedule,
    /// Lineup changes by their topic key.
    lineup: BTreeMap<String, PitchChange>,
}

impl Roster {
    /// Parse and check a TOML roster.
    pub fn from_toml(text: &str) -> Result<Self, RosterError> {
        let f: RosterFile = toml::from_str(text).map_err(|e| RosterError::Parse(e.to_string()))?;
        let mut problems = Vec::new();
        for d in &f.devices {
            for (what, v) in [
                ("device", &d.device),
                ("player", &d.player),
                ("team", &d.team),
            ] {
                if !id_ok(v) {
                    problems.push(format!(
                        "devices: {what} {v:?} must be 1–64 chars of [A-Za-z0-9._-]"
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for d in &f.devices {
            if !seen.insert((&d.device, d.valid_from_us)) {
                problems.push(format!(
                    "devices: {} assigned twice from {}",
                    d.device, d.valid_from_us
                ));
            }
        }
        for a in &f.athletes {
            if !id_ok(&a.player) {
                problems.push(format!(
                    "athletes: player {:?} must be 1–64 chars of [A-Za-z0-9._-]",
                    a.player
                ));
            }
            for p in a.problems() {
                problems.push(format!("athletes: player {:?}: {p}", a.player));
            }
        }
        for e in &f.sessions {
            for (what, v) in [("team", &e.team), ("session", &e.session)] {
                if !id_ok(v) {
                    problems.push(format!(
                        "sessions: {what} {v:?} must be 1–64 chars of [A-Za-z0-9._-]"
                    ));
                }
            }
        }
        problems.extend(Schedule::problems(&f.sessions));
        problems.extend(f.lineup.iter().filter_map(PitchChange::problem));
        if !problems.is_empty() {
            return Err(RosterError::Invalid(problems));
        }
        let mut r = Roster::default();
        for d in f.devices {
            r.assign(d);
        }
        for a in f.athletes {
            r.athletes.insert(a.player.clone(), a);
        }
        for e in f.sessions {
            r.schedule.insert(e);
        }
        for c in f.lineup {
            r.lineup.insert(c.key(), c);
        }
        Ok(r)
    }

    /// Add an assignment (later `valid_from_us` wins for later samples).
    pub fn assign(&mut self, d: DeviceEntry) {
        let list = self.devices.entry(d.device.clone()).or_default();
        list.retain(|e| e.valid_from_us != d.valid_from_us);
        list.push(d);
        list.sort_by_key(|e| e.valid_from_us);
    }

    /// The assignment of `device` at event time `at`: the latest that started at or before it
    /// (or the earliest, for samples from before every assignment).
    pub fn lookup(&self, device: &str, at: Micros) -> Option<&DeviceEntry> {
        let list = self.devices.get(device)?;
        list.iter()
            .rev()
            .find(|e| e.valid_from_us <= at)
            .or_else(|| list.first())
    }

    /// An athlete's profile.
    pub fn athlete(&self, player: &str) -> Option<&AthleteProfile> {
        self.athletes.get(player)
    }

    /// All athletes.
    pub fn athletes(&self) -> impl Iterator<Item = &AthleteProfile> {
        self.athletes.values()
    }

    /// The latest assignment of every device.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceEntry> {
        self.devices.values().filter_map(|l| l.last())
    }

    /// The teams' session schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Every lineup change.
    pub fn lineup(&self) -> impl Iterator<Item = &PitchChange> {
        self.lineup.values()
    }

    /// Apply one record of the roster topic (`None` value = delete).
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RosterError> {
        let key = String::from_utf8_lossy(key).into_owned();
        let bad = |why: &str| RosterError::Record {
            key: key.clone(),
            why: why.into(),
        };
        if let Some(device) = key.strip_prefix("device:") {
            match value {
                None | Some([]) => {
                    self.devices.remove(device);
                }
                Some(v) => {
                    let a = pb::DeviceAssignment::decode(v).map_err(|e| bad(&e.to_string()))?;
                    if a.device_id != device || !id_ok(&a.player_id) || !id_ok(&a.team_id) {
                        return Err(bad("device id differs from the key, or bad player/team id"));
                    }
                    self.assign(DeviceEntry {
                        device: a.device_id,
                        player: a.player_id,
                        team: a.team_id,
                        valid_from_us: a.valid_from_us,
                    });
                }
            }
            Ok(())
        } else if let Some(player) = key.strip_prefix("player:") {
            match value {
                None | Some([]) => {
                    self.athletes.remove(player);
                }
                Some(v) => {
                    let p = pb::AthleteProfile::decode(v).map_err(|e| bad(&e.to_string()))?;
                    if p.player_id != player {
                        return Err(bad("player id differs from the key"));
                    }
                    let profile = profile_from_pb(&p);
                    let problems = profile.problems();
                    if !problems.is_empty() {
                        // The previous profile (if any) stays.
                        return Err(bad(&problems.join("; ")));
                    }
                    self.athletes.insert(player.to_string(), profile);
                }
            }
            Ok(())
        } else if let Some(rest) = key.strip_prefix("session:") {
            let Some((team, session)) = rest.split_once(':') else {
                return Err(bad("a session key is session:<team>:<session>"));
            };
            match value {
                None | Some([]) => self.schedule.remove(team, session),
                Some(v) => {
                    let e = pb::ScheduledSession::decode(v).map_err(|e| bad(&e.to_string()))?;
                    let entry = SessionEntry {
                        team: e.team_id,
                        session: e.session_id,
                        start_us: e.start_us,
                        end_us: e.end_us,
                        kind: crate::schedule::SessionKind::from_pb(e.kind),
                        full_time_us: e.full_time_us,
                    };
                    if entry.team != team
                        || entry.session != session
                        || !id_ok(team)
                        || !id_ok(session)
                    {
                        return Err(bad("team/session differ from the key, or bad ids"));
                    }
                    if let Some(why) = Schedule::problems(std::slice::from_ref(&entry)).pop() {
                        return Err(bad(&why));
                    }
                    self.schedule.insert(entry);
                }
            }
            Ok(())
        } else if key.starts_with("pitch:") {
            let (c, on) = PitchChange::from_record(&key, value).map_err(|why| bad(&why))?;
            match on {
                Some(_) => self.lineup.insert(key, c),
                None => self.lineup.remove(&key),
            };
            Ok(())
        } else {
            Err(bad(
                "key must start with device:, player:, session: or pitch:",
            ))
        }
    }

    /// The roster as topic records (key, value): every assignment's latest state, every
    /// profile and every scheduled session.
    pub fn records(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .devices()
            .map(|d| {
                let v = pb::DeviceAssignment {
                    device_id: d.device.clone(),
                    player_id: d.player.clone(),
                    team_id: d.team.clone(),
                    valid_from_us: d.valid_from_us,
                };
                (format!("device:{}", d.device), v.encode_to_vec())
            })
            .collect();
        out.extend(self.athletes.values().map(|a| {
            (
                format!("player:{}", a.player),
                profile_to_pb(a).encode_to_vec(),
            )
        }));
        out.extend(self.schedule.entries().map(|e| {
            let v = pb::ScheduledSession {
                team_id: e.team.clone(),
                session_id: e.session.clone(),
                start_us: e.start_us,
                end_us: e.end_us,
                kind: crate::schedule::SessionKind::to_pb(e.kind),
                full_time_us: e.full_time_us,
            };
            (
                format!("session:{}:{}", e.team, e.session),
                v.encode_to_vec(),
            )
        }));
        out.extend(self.lineup.values().map(|c| (c.key(), c.encode())));
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[devices]]
device = "pod-1"
player = "alice"
team = "home"

[[devices]]
device = "pod-1"
player = "bob"
team = "home"
valid_from_us = 1000

[[athletes]]
player = "alice"
vmax_mps = 9.1
[athletes.susceptibility]
hamstring = "recent"

[[sessions]]
team = "home"
session = "match-1"
start_us = 2000
end_us = 9000
kind = "match"
full_time_us = 8000

[[lineup]]
team = "home"
session = "match-1"
player = "bob"
at_us = 5000
on = true
"#;

    #[test]
    fn a_swapped_pod_maps_by_event_time() {
        let r = Roster::from_toml(FILE).unwrap();
        assert_eq!(r.lookup("pod-1", 500).unwrap().player, "alice");
        assert_eq!(r.lookup("pod-1", 1000).unwrap().player, "bob");
        assert_eq!(r.lookup("pod-1", -5).unwrap().player, "alice");
        assert!(r.lookup("pod-2", 0).is_none());
        assert_eq!(r.athlete("alice").unwrap().vmax_mps, Some(9.1));
    }

    #[test]
    fn topic_records_round_trip_and_deletes_apply() {
        let r = Roster::from_toml(FILE).unwrap();
        let mut copy = Roster::default();
        for (k, v) in r.records() {
            copy.apply(k.as_bytes(), Some(&v)).unwrap();
        }
        // Compaction keeps the latest assignment per device.
        assert_eq!(copy.lookup("pod-1", 0).unwrap().player, "bob");
        assert_eq!(copy.athlete("alice"), r.athlete("alice"));
        assert_eq!(copy.schedule(), r.schedule());
        assert_eq!(copy.schedule().session("home", 2500, 4), "match-1");
        let on: Vec<_> = copy.lineup().collect();
        assert_eq!(on.len(), 1);
        assert_eq!(
            (on[0].player.as_str(), on[0].at_us, on[0].on),
            ("bob", 5000, true)
        );
        copy.apply(b"pitch:home:match-1:bob:5000", None).unwrap();
        assert_eq!(copy.lineup().count(), 0);
        assert!(copy.apply(b"pitch:home:match-1:bob", Some(b"")).is_err());
        copy.apply(b"player:alice", None).unwrap();
        assert!(copy.athlete("alice").is_none());
        copy.apply(b"session:home:match-1", None).unwrap();
        assert_eq!(copy.schedule().session("home", 2500, 0), "home-1970-01-01");
        assert!(copy.apply(b"session:home", Some(b"")).is_err());
        assert!(copy.apply(b"coach:x", Some(b"")).is_err());
    }

    #[test]
    fn bad_ids_and_duplicates_are_all_reported() {
        let err = Roster::from_toml(
            "[[devices]]\ndevice = \"pod 1\"\nplayer = \"a\"\nteam = \"t\"\n[[devices]]\ndevice = \"p\"\nplayer = \"a\"\nteam = \"t\"\n[[devices]]\ndevice = \"p\"\nplayer = \"b\"\nteam = \"t\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"pod 1\"") && err.contains("assigned twice"),
            "{err}"
        );
        assert!(Roster::from_toml("[[devices]]\ndevise = 1\n").is_err());
    }

    #[test]
    fn profiles_out_of_range_are_refused_from_the_file_and_the_topic() {
        let err = Roster::from_toml(
            "[[athletes]]\nplayer = \"a\"\nvmax_mps = 33.5\n[[athletes]]\nplayer = \"b\"\nhr_max = 60\nhr_rest = 190\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("km/h? 33.5 km/h is 9.31 m/s"), "{err}");
        assert!(
            err.contains("hr_max 60 bpm is not above hr_rest 190 bpm"),
            "{err}"
        );
        // On the topic: the record is refused and the player keeps the profile he had.
        let mut r = Roster::from_toml(FILE).unwrap();
        let mut bad = r.clone();
        bad.athletes.get_mut("alice").unwrap().vmax_mps = Some(33.5);
        let (k, v) = bad
            .records()
            .into_iter()
            .find(|(k, _)| k == "player:alice")
            .unwrap();
        let e = r.apply(k.as_bytes(), Some(&v)).unwrap_err().to_string();
        assert!(e.contains("vmax_mps 33.5"), "{e}");
        assert_eq!(r.athlete("alice").unwrap().vmax_mps, Some(9.1));
    }
}
