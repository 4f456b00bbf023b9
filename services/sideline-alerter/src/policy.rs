//! Routing and notification policy: which destinations hear about which alerts, and when.
//! Defaults are chosen for a live match (seconds, not Alertmanager's 30 s / 5 min / 4 h).

use serde::{Deserialize, Serialize};

use crate::item::{Item, Severity};

/// Which resolutions a destination is told about in a message of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendResolved {
    /// A player's red clearing gets a message; a warning clearing rides along as a "cleared"
    /// line in the team's next message (or a digest after `digest_after_s`). Default for chat.
    #[default]
    Critical,
    /// Every clearing gets a message (and session ends too): for machines (generic webhook).
    All,
    /// Clearings only ride along in later messages.
    None,
}

/// One route: alerts matching it go to its destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Teams it applies to (empty: all).
    #[serde(default)]
    pub teams: Vec<String>,
    /// Alert kinds it applies to (empty: all).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Lowest severity sent (default warning: fatigue markers, which are info, stay on the
    /// bench page and Grafana).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Destination names.
    pub destinations: Vec<String>,
    /// A red alert not acknowledged within `escalate_after_s` is sent here too.
    #[serde(default)]
    pub escalate_to: Option<String>,
    /// Seconds before escalation (default 300).
    #[serde(default = "default_escalate_after")]
    pub escalate_after_s: u64,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}
fn default_escalate_after() -> u64 {
    300
}

impl Route {
    /// Does `item` match?
    pub fn matches(&self, item: &Item) -> bool {
        (self.teams.is_empty() || self.teams.contains(&item.team))
            && (self.kinds.is_empty() || self.kinds.contains(&item.kind))
            && item.severity >= self.min_severity
    }
}

/// Timing of grouping, reminders and digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Alerts of one team within this many seconds go out as one message (default 5).
    #[serde(default = "default_group_wait")]
    pub group_wait_s: u64,
    /// A red alert nobody acknowledged is repeated after this many seconds (default 1800; the escalation after `escalate_after_s` is the first answer to silence).
    #[serde(default = "default_repeat")]
    pub repeat_interval_s: u64,
    /// "Cleared" lines waiting for a team's next message go out on their own after this many
    /// seconds (default 3600).
    #[serde(default = "default_digest")]
    pub digest_after_s: u64,
    /// A closed alert id is remembered this long, so a replayed event does not reopen it
    /// (default 172800, two days).
    #[serde(default = "default_memory")]
    pub remember_closed_s: u64,
}

fn default_group_wait() -> u64 {
    5
}
fn default_repeat() -> u64 {
    1800
}
fn default_digest() -> u64 {
    3600
}
fn default_memory() -> u64 {
    172_800
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            group_wait_s: default_group_wait(),
            repeat_interval_s: default_repeat(),
            digest_after_s: default_digest(),
            remember_closed_s: default_memory(),
        }
    }
}

/// Everything the router decides with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// Timing.
    pub timing: Timing,
    /// Routes, all of which apply.
    pub routes: Vec<Route>,
    /// Per destination: which resolutions get their own message.
    pub send_resolved: std::collections::BTreeMap<String, SendResolved>,
}

impl Policy {
    /// Destinations `item` goes to (each once).
    pub fn destinations(&self, item: &Item) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in self.routes.iter().filter(|r| r.matches(item)) {
            for d in &r.destinations {
                if !out.contains(&d.as_str()) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// Where and after how long an unacknowledged red at `dest` escalates.
    pub fn escalation(&self, item: &Item, dest: &str) -> Option<(&str, u64)> {
        self.routes
            .iter()
            .filter(|r| r.matches(item) && r.destinations.iter().any(|d| d == dest))
            .find_map(|r| Some((r.escalate_to.as_deref()?, r.escalate_after_s)))
    }

    /// `dest`'s resolved policy.
    pub fn resolved(&self, dest: &str) -> SendResolved {
        self.send_resolved.get(dest).copied().unwrap_or_default()
    }
}
