//! The router: alert events in, messages out. Pure (no I/O, no clock: `offer(item, now)`,
//! `ack(id, by, now)`, `tick(now)`), serialisable so that it survives restarts.
//!
//! Staff think per player, so the router does: for each destination it remembers the level it
//! last told staff for each player (none, warning, critical). Events mark the player's team
//! group; `group_wait_s` after the first mark, the group is flushed: every marked player whose
//! level went up gets an entry (raised / escalated to red), whose red went back to warning
//! gets "downgraded", whose last open alert closed gets "cleared" (for a red, or for every
//! clearing when the destination says `send_resolved = "all"`; otherwise a "cleared" line in
//! the team's next message, or in a digest after `digest_after_s`). An alert raised and cleared
//! before staff were told of it, but open at least one group wait by its own event times (the
//! alerter learnt of it late: down, or catching up), gets a "cleared" entry of its own. A
//! second warning for a
//! player already warned about (amber after "rising") is not a new message: it is listed with
//! the next one. A rising alert superseded by red, and the session-end resolutions when the
//! whole team goes quiet, say nothing of their own. An alert raised and closed within one group
//! wait (by its event times) is never sent (as Alertmanager's group_wait). A red nobody acknowledged is repeated
//! every `repeat_interval_s` and escalates to the route's second destination after
//! `escalate_after_s`; an acknowledgement stops both, and is itself told (who, when) to every
//! destination that was told of the red, the escalation's included.
//!
//! Each entry has an idempotency key (destination, change, alert id, severity); the outbox
//! refuses an entry whose key it has seen, so a replay or a crash between flush and save never
//! sends one twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::item::{Item, Resolution, Severity, State};
use crate::policy::{Policy, SendResolved};

/// What changed for a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Newly at warning or critical.
    Raised,
    /// Warning → critical.
    Escalated,
    /// Critical → warning.
    Downgraded,
    /// Nothing open any more.
    Cleared,
    /// Still red, nobody acknowledged.
    Reminder,
    /// Red not acknowledged in time: sent to the second destination.
    Escalation,
    /// Someone acknowledged the red ([`Entry::ack`] says who and when).
    Acknowledged,
}

impl Change {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Raised => "raised",
            Change::Escalated => "escalated",
            Change::Downgraded => "downgraded",
            Change::Cleared => "cleared",
            Change::Reminder => "reminder",
            Change::Escalation => "escalation",
            Change::Acknowledged => "acknowledged",
        }
    }
}

/// One player in a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Idempotency key.
    pub key: String,
    /// What changed.
    pub change: Change,
    /// The alert that says it (highest severity open, or the last closed).
    pub alert: Item,
    /// The player's other open alerts.
    pub also: Vec<Item>,
    /// Who acknowledged the player's red, and when (set on [`Change::Acknowledged`], and on
    /// later entries of an acknowledged red).
    #[serde(default)]
    pub ack: Option<Acknowledgement>,
}

/// Who acknowledged a red, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The person: the name typed on the confirmation page, or the identity an
    /// authenticating proxy gave.
    pub by: String,
    /// When (the router's clock, µs).
    pub at: i64,
}

/// A closed alert reported as a line in a later message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClearedLine {
    /// The resolved event.
    pub alert: Item,
    /// When the router learnt of it.
    pub at: i64,
}

/// One notification for one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Destination name.
    pub destination: String,
    /// Team.
    pub team: String,
    /// When it was formed (the router's clock, µs).
    pub at: i64,
    /// Players, in the order of severity (critical first).
    pub entries: Vec<Entry>,
    /// Alerts closed since the team's previous message.
    pub cleared: Vec<ClearedLine>,
}

impl Message {
    /// Every idempotency key of the message (cleared lines included).
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.entries.iter().map(|e| e.key.clone()).collect();
        k.extend(
            self.cleared
                .iter()
                .map(|c| format!("{}|line|{}", self.destination, c.alert.id)),
        );
        k
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DestState {
    /// Level staff were last told.
    told: Option<Severity>,
    /// When red was told (for reminders and escalation).
    red_told_at: Option<i64>,
    last_reminder: Option<i64>,
    reminders: u32,
    escalated: bool,
    /// Closed since the last flush (for the entry or the cleared lines).
    closed: Vec<Item>,
    /// Of those, the ids open at least one group wait by their own event times: learnt of
    /// late (the alerter was down or catching up), they are still worth a message.
    #[serde(default)]
    long: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PlayerState {
    open: BTreeMap<String, Item>,
    /// Event time of each open alert's first event, µs.
    #[serde(default)]
    fired: BTreeMap<String, i64>,
    dests: BTreeMap<String, DestState>,
    /// The red was acknowledged (until the player drops below red).
    acked: bool,
    /// By whom and when (routers saved before this field have `None`).
    #[serde(default)]
    ack: Option<Acknowledgement>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Group {
    destination: String,
    team: String,
    opened: i64,
    players: BTreeSet<String>,
}

/// The router. See the module documentation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Router {
    #[serde(skip)]
    policy: Policy,
    players: BTreeMap<String, PlayerState>,
    groups: BTreeMap<String, Group>,
    lines: BTreeMap<String, Vec<ClearedLine>>,
    closed: BTreeMap<String, i64>,
    /// Acknowledgements still to be told, formed into messages at the next tick.
    #[serde(default)]
    acks_to_tell: Vec<(String, String, Entry)>,
    /// Acknowledgements not yet on the acks topic (saved with the state, so a crash or a Kafka
    /// outage loses none: see [`Router::unarchived`]).
    #[serde(default)]
    acks_to_archive: Vec<AckRecord>,
}

/// Acknowledgements kept while they wait for the acks topic, at most.
pub const MAX_UNARCHIVED: usize = 10_000;

/// One acknowledgement for the acks topic (`AlertAck`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckRecord {
    /// The alert acknowledged (the player's open red, if any).
    pub alert: Item,
    /// Who and when.
    pub ack: Acknowledgement,
}

const S: i64 = 1_000_000;

fn gkey(dest: &str, team: &str) -> String {
    format!("{dest}\u{1f}{team}")
}
fn pkey(team: &str, player: &str) -> String {
    format!("{team}\u{1f}{player}")
}

impl Router {
    /// A router with nothing open.
    pub fn new(policy: Policy) -> Self {
        Router {
            policy,
            ..Router::default()
        }
    }

    /// A saved router with the current policy (a changed route applies from now on).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Take one alert event. Returns false if it was a replay of a closed alert.
    pub fn offer(&mut self, item: Item, now: i64) -> bool {
        if self.closed.contains_key(&item.id) {
            return false;
        }
        // A replayed (or older) event of an open alert changes nothing.
        let stale = self
            .players
            .get(&pkey(&item.team, &item.player))
            .and_then(|p| p.open.get(&item.id))
            .is_some_and(|old| item.state != State::Resolved && item.t_us <= old.t_us);
        if stale {
            return false;
        }
        let dests: Vec<String> = self
            .policy
            .destinations(&item)
            .into_iter()
            .map(String::from)
            .collect();
        let p = self
            .players
            .entry(pkey(&item.team, &item.player))
            .or_default();
        if item.state == State::Resolved {
            p.open.remove(&item.id);
            let opened = p.fired.remove(&item.id).unwrap_or(item.t_us);
            let long = item.t_us - opened >= self.policy.timing.group_wait_s as i64 * S;
            self.closed.insert(item.id.clone(), now);
            for d in &dests {
                let d = p.dests.entry(d.clone()).or_default();
                d.closed.push(item.clone());
                if long {
                    d.long.insert(item.id.clone());
                }
            }
        } else {
            p.fired.entry(item.id.clone()).or_insert(item.t_us);
            p.open.insert(item.id.clone(), item.clone());
        }
        for d in dests {
            let g = self.groups.entry(gkey(&d, &item.team)).or_insert(Group {
                destination: d.clone(),
                team: item.team.clone(),
                opened: now,
                players: BTreeSet::new(),
            });
            g.players.insert(item.player.clone());
        }
        true
    }

    /// Acknowledge, by `by` at `now`, the red episode of the player whose open alert is `id`.
    /// Returns the player acknowledged, or `None` if no open alert has that id (already
    /// closed, or unknown). The first acknowledgement of an episode is told, at the next
    /// tick, to each destination told of the red (and to the escalation's, if it went
    /// there); a second one changes nothing.
    pub fn ack(&mut self, id: &str, by: &str, now: i64) -> Option<String> {
        self.ack_with(id, by, now, true)
    }

    /// [`Router::ack`] of an acknowledgement read from the acks topic (made on the bench):
    /// the same, except that it is not written to the topic again.
    pub fn ack_recorded(&mut self, id: &str, by: &str, at: i64) -> Option<String> {
        self.ack_with(id, by, at, false)
    }

    fn ack_with(&mut self, id: &str, by: &str, now: i64, archive: bool) -> Option<String> {
        let policy = &self.policy;
        let p = self
            .players
            .values_mut()
            .find(|p| p.open.contains_key(id))?;
        let item = p.open.get(id)?.clone();
        if p.acked {
            return Some(item.player);
        }
        p.acked = true;
        let ack = Acknowledgement {
            by: by.to_string(),
            at: now,
        };
        p.ack = Some(ack.clone());
        let red: Item = p
            .open
            .values()
            .filter(|i| i.severity == Severity::Critical)
            .max_by_key(|i| i.t_us)
            .cloned()
            .unwrap_or_else(|| item.clone());
        let mut told: BTreeSet<String> = BTreeSet::new();
        for (dest, d) in &p.dests {
            if d.red_told_at.is_none() {
                continue;
            }
            told.insert(dest.clone());
            if d.escalated
                && let Some((to, _)) = policy.escalation(&red, dest)
            {
                told.insert(to.to_string());
            }
        }
        for dest in told {
            self.acks_to_tell.push((
                dest.clone(),
                red.team.clone(),
                Entry {
                    key: format!("{dest}|acknowledged|{}|{now}", red.id),
                    change: Change::Acknowledged,
                    alert: red.clone(),
                    also: Vec::new(),
                    ack: Some(ack.clone()),
                },
            ));
        }
        if !archive {
            return Some(item.player);
        }
        if self.acks_to_archive.len() >= MAX_UNARCHIVED {
            // Only after days of an unreachable Kafka (or where nothing archives: the demo).
            self.acks_to_archive.remove(0);
            tracing::error!(
                message =
                    "Too many acknowledgements wait for the acks topic; the oldest is dropped.",
                max = MAX_UNARCHIVED
            );
        }
        self.acks_to_archive.push(AckRecord { alert: red, ack });
        Some(item.player)
    }

    /// Acknowledgements not yet confirmed on the acks topic, oldest first.
    pub fn unarchived(&self) -> &[AckRecord] {
        &self.acks_to_archive
    }

    /// The first `n` of [`Router::unarchived`] are on the acks topic.
    pub fn archived(&mut self, n: usize) {
        self.acks_to_archive
            .drain(..n.min(self.acks_to_archive.len()));
    }

    /// Who acknowledged the player whose alert is `id`, if anyone.
    pub fn acknowledgement(&self, id: &str) -> Option<&Acknowledgement> {
        self.players
            .values()
            .find(|p| p.open.contains_key(id))
            .and_then(|p| if p.acked { p.ack.as_ref() } else { None })
    }

    /// The open alert `id`, if it is open.
    pub fn open_alert(&self, id: &str) -> Option<&Item> {
        self.players.values().find_map(|p| p.open.get(id))
    }

    /// Is the player whose alert is `id` acknowledged?
    pub fn acked(&self, id: &str) -> bool {
        self.players
            .values()
            .any(|p| p.acked && p.open.contains_key(id))
    }

    /// Escalations waiting: reds told to a destination whose route escalates, neither
    /// acknowledged nor escalated yet (one per player and destination).
    pub fn escalations_waiting(&self) -> usize {
        self.players
            .values()
            .filter(|p| !p.acked)
            .map(|p| {
                let Some(red) = p
                    .open
                    .values()
                    .filter(|i| i.severity == Severity::Critical)
                    .max_by_key(|i| i.t_us)
                else {
                    return 0;
                };
                p.dests
                    .iter()
                    .filter(|(dest, d)| {
                        d.red_told_at.is_some()
                            && !d.escalated
                            && self.policy.escalation(red, dest).is_some()
                    })
                    .count()
            })
            .sum()
    }

    /// Open alert ids of acknowledged players.
    pub fn acked_ids(&self) -> Vec<String> {
        self.players
            .values()
            .filter(|p| p.acked)
            .flat_map(|p| p.open.keys().cloned())
            .collect()
    }

    /// Messages due at `now`.
    pub fn tick(&mut self, now: i64) -> Vec<Message> {
        let mut out = Vec::new();
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| now >= g.opened + self.policy.timing.group_wait_s as i64 * S)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(g) = self.groups.remove(&k) {
                self.flush(g, now, &mut out);
            }
        }
        self.reminders_and_escalations(now, &mut out);
        self.acknowledgements(now, &mut out);
        self.digests(now, &mut out);
        let keep = now - self.policy.timing.remember_closed_s as i64 * S;
        self.closed.retain(|_, t| *t >= keep);
        self.players.retain(|_, p| {
            // (closed: a flush is still to come for them)
            !p.open.is_empty()
                || p.dests
                    .values()
                    .any(|d| d.told.is_some() || !d.closed.is_empty())
        });
        out
    }

    fn flush(&mut self, g: Group, now: i64, out: &mut Vec<Message>) {
        let dest = g.destination.as_str();
        let resolved = self.policy.resolved(dest);
        let mut entries = Vec::new();
        for player in &g.players {
            let Some(p) = self.players.get_mut(&pkey(&g.team, player)) else {
                continue;
            };
            let routed: Vec<Item> = p
                .open
                .values()
                .filter(|i| self.policy.destinations(i).contains(&dest))
                .cloned()
                .collect();
            let level = routed.iter().map(|i| i.severity).max();
            let d = p.dests.entry(dest.to_string()).or_default();
            let told = d.told;
            let top = routed.iter().max_by_key(|i| (i.severity, i.t_us)).cloned();
            let also = |top: &Item| -> Vec<Item> {
                routed.iter().filter(|i| i.id != top.id).cloned().collect()
            };
            let change = match (told, level) {
                (None, Some(_)) => Some(Change::Raised),
                (Some(Severity::Critical), Some(l)) if l < Severity::Critical => {
                    Some(Change::Downgraded)
                }
                (Some(t), Some(l)) if l > t && l == Severity::Critical => Some(Change::Escalated),
                (Some(t), Some(l)) if l > t => Some(Change::Raised),
                _ => None,
            };
            // Closed alerts say nothing of their own if superseded, and session ends only to
            // machines.
            let long = std::mem::take(&mut d.long);
            let closed: Vec<Item> = std::mem::take(&mut d.closed)
                .into_iter()
                .filter(|i| match i.resolution {
                    Some(Resolution::Superseded) => false,
                    Some(Resolution::SessionEnded) => resolved == SendResolved::All,
                    _ => true,
                })
                .collect();
            // By default what closed becomes "cleared" lines of the team's next message.
            let mut as_lines = told.is_some();
            match (change, top) {
                (Some(c), Some(top)) => {
                    entries.push(Entry {
                        key: format!("{dest}|{}|{}|{}", c.as_str(), top.id, top.severity.as_str()),
                        change: c,
                        also: also(&top),
                        alert: top,
                        ack: None,
                    });
                    if c == Change::Escalated
                        || (c == Change::Raised && level == Some(Severity::Critical))
                    {
                        d.red_told_at = Some(now);
                        d.escalated = false;
                        d.reminders = 0;
                    }
                    if c == Change::Downgraded {
                        p.acked = false;
                        p.ack = None;
                    }
                    as_lines = true;
                }
                (None, None) if told.is_some() => {
                    let own = told == Some(Severity::Critical) || resolved == SendResolved::All;
                    if let Some(last) = closed.last()
                        && own
                        && resolved != SendResolved::None
                    {
                        entries.push(Entry {
                            key: format!("{dest}|cleared|{}", last.id),
                            change: Change::Cleared,
                            alert: last.clone(),
                            also: Vec::new(),
                            ack: None,
                        });
                        as_lines = false;
                    }
                    d.red_told_at = None;
                    p.acked = false;
                    p.ack = None;
                }
                (None, None) => {
                    // Raised and cleared before staff heard of it, yet open a group wait or
                    // more by its own times: each gets a "cleared" entry of its own.
                    for c in closed.iter().filter(|c| long.contains(&c.id)) {
                        entries.push(Entry {
                            key: format!("{dest}|cleared|{}", c.id),
                            change: Change::Cleared,
                            alert: c.clone(),
                            also: Vec::new(),
                            ack: None,
                        });
                    }
                }
                _ => {}
            }
            if as_lines && !closed.is_empty() {
                self.lines.entry(gkey(dest, &g.team)).or_default().extend(
                    closed
                        .into_iter()
                        .map(|alert| ClearedLine { alert, at: now }),
                );
            }
            d.told = level;
        }
        if entries.is_empty() {
            return;
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.alert.severity));
        let cleared = self.lines.remove(&gkey(dest, &g.team)).unwrap_or_default();
        out.push(Message {
            destination: dest.to_string(),
            team: g.team,
            at: now,
            entries,
            cleared,
        });
    }

    fn reminders_and_escalations(&mut self, now: i64, out: &mut Vec<Message>) {
        let repeat = self.policy.timing.repeat_interval_s as i64 * S;
        let mut batch: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
        for p in self.players.values_mut() {
            if p.acked {
                continue;
            }
            let Some(red) = p
                .open
                .values()
                .filter(|i| i.severity == Severity::Critical)
                .max_by_key(|i| i.t_us)
                .cloned()
            else {
                continue;
            };
            for (dest, d) in p.dests.iter_mut() {
                let Some(told_at) = d.red_told_at else {
                    continue;
                };
                let last = d.last_reminder.unwrap_or(told_at).max(told_at);
                if now >= last + repeat {
                    d.last_reminder = Some(now);
                    d.reminders += 1;
                    batch
                        .entry((dest.clone(), red.team.clone()))
                        .or_default()
                        .push(Entry {
                            key: format!("{dest}|reminder|{}|{}", red.id, d.reminders),
                            change: Change::Reminder,
                            alert: red.clone(),
                            also: Vec::new(),
                            ack: None,
                        });
                }
                if let Some((to, after)) = self.policy.escalation(&red, dest)
                    && !d.escalated
                    && now >= told_at + after as i64 * S
                {
                    d.escalated = true;
                    batch
                        .entry((to.to_string(), red.team.clone()))
                        .or_default()
                        .push(Entry {
                            key: format!("{to}|escalation|{}", red.id),
                            change: Change::Escalation,
                            alert: red.clone(),
                            also: Vec::new(),
                            ack: None,
                        });
                }
            }
        }
        for ((destination, team), mut entries) in batch {
            entries.dedup_by(|a, b| a.key == b.key);
            out.push(Message {
                destination,
                team,
                at: now,
                entries,
                cleared: Vec::new(),
            });
        }
    }

    fn acknowledgements(&mut self, now: i64, out: &mut Vec<Message>) {
        let mut batch: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
        for (dest, team, e) in std::mem::take(&mut self.acks_to_tell) {
            batch.entry((dest, team)).or_default().push(e);
        }
        for ((destination, team), entries) in batch {
            out.push(Message {
                destination,
                team,
                at: now,
                entries,
                cleared: Vec::new(),
            });
        }
    }

    fn digests(&mut self, now: i64, out: &mut Vec<Message>) {
        let after = self.policy.timing.digest_after_s as i64 * S;
        let due: Vec<String> = self
            .lines
            .iter()
            .filter(|(_, l)| l.first().is_some_and(|c| now >= c.at + after))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let Some(cleared) = self.lines.remove(&k) else {
                continue;
            };
            let (destination, team) = k.split_once('\u{1f}').unwrap_or((&k, ""));
            out.push(Message {
                destination: destination.to_string(),
                team: team.to_string(),
                at: now,
                entries: Vec::new(),
                cleared,
            });
        }
    }

    /// Players with an open alert, for the readiness page and tests.
    pub fn open_alerts(&self) -> usize {
        self.players.values().map(|p| p.open.len()).sum()
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
