//! Lineup changes: who came on or went off the pitch, and when. They ride on the compacted
//! roster topic under `pitch:<team>:<session>:<player>:<at_us>` (one record per change, so a
//! substitute who comes on and later goes off keeps both; an empty value withdraws one), and
//! in a roster file as `[[lineup]]` entries:
//!
//! ```toml
//! [[lineup]]                  # home-12 starts on the bench: "off" from the session's start
//! team = "home"
//! session = "2026-12-06-v-city"
//! player = "home-12"
//! at_us = 0
//! on = false
//! ```
//!
//! The engine's rule ([`sideline_engine::PlayerEngine::on_pitch`]): the latest change at or
//! before a time; before a player's first change, the opposite of it; no change at all, every
//! fix is playing time.

use prost::Message;
use serde::{Deserialize, Serialize};
use sideline_engine::Micros;

use crate::pb;

/// One lineup change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PitchChange {
    /// Team id.
    pub team: String,
    /// Session id.
    pub session: String,
    /// Player id.
    pub player: String,
    /// From when, µs since the epoch (0: from the start of the session).
    pub at_us: Micros,
    /// Came on (`true`) or went off (`false`).
    pub on: bool,
    /// Who posted it.
    #[serde(default)]
    pub by: String,
}

impl PitchChange {
    /// Its roster-topic key.
    pub fn key(&self) -> String {
        format!(
            "pitch:{}:{}:{}:{}",
            self.team, self.session, self.player, self.at_us
        )
    }

    /// Its roster-topic value.
    pub fn encode(&self) -> Vec<u8> {
        pb::PitchChange {
            team_id: self.team.clone(),
            session_id: self.session.clone(),
            player_id: self.player.clone(),
            at_us: self.at_us,
            on: self.on,
            by: self.by.clone(),
        }
        .encode_to_vec()
    }

    /// A record of the roster topic whose key starts `pitch:`: the change, or (empty value) the
    /// withdrawal of the change the key names (`on` is then `None`). The key and the value
    /// must agree.
    pub fn from_record(key: &str, value: Option<&[u8]>) -> Result<(Self, Option<bool>), String> {
        let rest = key
            .strip_prefix("pitch:")
            .ok_or("a lineup key starts with pitch:")?;
        let mut parts = rest.split(':');
        let (Some(team), Some(session), Some(player), Some(at), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err("a lineup key is pitch:<team>:<session>:<player>:<at_us>".into());
        };
        let at_us: Micros = at.parse().map_err(|_| format!("at_us {at:?} is not µs"))?;
        let mut c = PitchChange {
            team: team.into(),
            session: session.into(),
            player: player.into(),
            at_us,
            on: false,
            by: String::new(),
        };
        if let Some(why) = c.problem() {
            return Err(why);
        }
        match value {
            None | Some([]) => Ok((c, None)),
            Some(v) => {
                let p = pb::PitchChange::decode(v).map_err(|e| e.to_string())?;
                if (
                    p.team_id.as_str(),
                    p.session_id.as_str(),
                    p.player_id.as_str(),
                    p.at_us,
                ) != (team, session, player, at_us)
                {
                    return Err("the change differs from its key".into());
                }
                (c.on, c.by) = (p.on, p.by);
                let on = c.on;
                Ok((c, Some(on)))
            }
        }
    }

    /// What makes it unusable, if anything.
    pub fn problem(&self) -> Option<String> {
        for (what, v) in [
            ("team", &self.team),
            ("session", &self.session),
            ("player", &self.player),
        ] {
            if !crate::roster::id_ok(v) {
                return Some(format!(
                    "lineup: {what} {v:?} must be 1–64 chars of [A-Za-z0-9._-]"
                ));
            }
        }
        (self.at_us < 0).then(|| format!("lineup: at_us {} is before 1970", self.at_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_goes_through_its_record_and_a_withdrawal_names_it() {
        let c = PitchChange {
            team: "home".into(),
            session: "m1".into(),
            player: "home-12".into(),
            at_us: 1_700_000_000_000_000,
            on: true,
            by: "Dr Lee".into(),
        };
        let (back, on) = PitchChange::from_record(&c.key(), Some(&c.encode())).unwrap();
        assert_eq!((back, on), (c.clone(), Some(true)));
        let (gone, on) = PitchChange::from_record(&c.key(), None).unwrap();
        assert_eq!(
            (gone.player.as_str(), gone.at_us, on),
            ("home-12", c.at_us, None)
        );
        // A value that is not the key's change, and keys that are not lineup keys.
        let other = PitchChange {
            player: "home-13".into(),
            ..c.clone()
        };
        assert!(PitchChange::from_record(&c.key(), Some(&other.encode())).is_err());
        for k in [
            "pitch:home:m1:p",
            "pitch:home:m1:p:x",
            "pitch:h:m:p:1:2",
            "pitch:h o:m:p:1",
        ] {
            assert!(PitchChange::from_record(k, None).is_err(), "{k}");
        }
    }
}
