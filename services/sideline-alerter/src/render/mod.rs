//! Renderers: a [`Message`] as each chat service's JSON, inside each service's documented
//! limits (see `notes/streaming.md` §2e). Every message says who, what, how much, since when,
//! the terms that fired, the forecast, and carries an acknowledge link; when a message would
//! break a limit, the last players are folded into an "…and N more" line rather than the
//! service refusing the whole message.

mod discord;
mod slack;
mod teams;
mod webhook;

use serde::{Deserialize, Serialize};

use crate::ack::Links;
use crate::item::{Severity, clock};
use crate::router::{Change, Entry, Message};

/// The kind of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Slack incoming webhook, Block Kit.
    Slack,
    /// Microsoft Teams Workflows webhook, Adaptive Card.
    Teams,
    /// Discord execute-webhook, embeds.
    Discord,
    /// Generic JSON, the Alertmanager webhook shape.
    Webhook,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "slack" => Ok(Format::Slack),
            "teams" => Ok(Format::Teams),
            "discord" => Ok(Format::Discord),
            "webhook" => Ok(Format::Webhook),
            _ => Err(format!(
                "unknown format {s:?} (slack, teams, discord or webhook)"
            )),
        }
    }
}

impl Format {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Slack => "slack",
            Format::Teams => "teams",
            Format::Discord => "discord",
            Format::Webhook => "webhook",
        }
    }
}

/// The body to POST for `msg` in `format`, made at `now_s` (Unix seconds, for link expiry).
pub fn render(format: Format, msg: &Message, links: Option<&Links>, now_s: i64) -> Vec<u8> {
    let v = match format {
        Format::Slack => slack::render(msg, links, now_s),
        Format::Teams => teams::render(msg, links, now_s),
        Format::Discord => discord::render(msg, links, now_s),
        Format::Webhook => webhook::render(msg, links, now_s),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Colour class of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Critical,
    Warning,
    Good,
}

/// One player's part of a message, in words, before a service's layout.
#[derive(Debug, Clone)]
pub(crate) struct Card {
    pub tone: Tone,
    pub title: String,
    pub facts: Vec<(&'static str, String)>,
    pub terms: Vec<String>,
    pub ack: Option<String>,
    /// The evidence page, beside the terms (when there are terms and links).
    pub evidence: Option<String>,
}

pub(crate) fn card(e: &Entry, links: Option<&Links>, now_s: i64) -> Card {
    let a = &e.alert;
    let red = a.severity == Severity::Critical;
    let (tone, title) = match e.change {
        Change::Raised | Change::Escalated if red => (
            Tone::Critical,
            format!("🔴 RED — {}: {}", a.player, a.headline()),
        ),
        Change::Raised | Change::Escalated => {
            (Tone::Warning, format!("🟠 {}: {}", a.player, a.headline()))
        }
        Change::Downgraded => (
            Tone::Warning,
            format!("🟠 {} back from red: {}", a.player, a.headline()),
        ),
        Change::Cleared => (
            Tone::Good,
            format!("✅ {} clear: {} is over", a.player, a.headline()),
        ),
        Change::Reminder => (
            Tone::Critical,
            format!("🔁 Still RED, not acknowledged — {}", a.player),
        ),
        Change::Escalation => (
            Tone::Critical,
            format!("📣 Escalated: {} RED and not acknowledged", a.player),
        ),
        Change::Acknowledged => (
            Tone::Good,
            format!(
                "✔ {}: red acknowledged by {}",
                a.player,
                e.ack.as_ref().map_or("someone", |k| k.by.as_str())
            ),
        ),
    };
    let minutes = (a.t_us - a.since_us).max(0) / 60_000_000;
    let mut facts = vec![
        (
            "Player",
            format!("{} ({}, session {})", a.player, a.team, a.session),
        ),
        ("What", a.headline()),
        ("How much", a.how_much()),
        (
            "Since",
            format!("{} UTC ({minutes} min)", clock(a.since_us)),
        ),
    ];
    if let Some(f) = a.forecast() {
        facts.push(("Forecast", f));
    }
    if !e.also.is_empty() {
        let also: Vec<String> = e.also.iter().map(|i| i.headline()).collect();
        facts.push(("Also open", also.join("; ")));
    }
    if let Some(k) = &e.ack {
        facts.push((
            "Acknowledged",
            format!("by {} at {} UTC", k.by, clock(k.at)),
        ));
    }
    let linked = !matches!(e.change, Change::Cleared | Change::Acknowledged);
    let ack = linked
        .then(|| links.map(|l| l.ack_url(&a.id, now_s)))
        .flatten();
    let terms = a.term_lines();
    let evidence = (!terms.is_empty())
        .then(|| links.map(Links::evidence_url))
        .flatten();
    Card {
        tone,
        title,
        facts,
        terms,
        ack,
        evidence,
    }
}

/// "Sideline · home: 1 red, 2 warnings, 1 clear".
pub(crate) fn message_title(msg: &Message) -> String {
    let n = |t: Tone| {
        msg.entries
            .iter()
            .filter(|e| {
                let red = e.alert.severity == Severity::Critical;
                match e.change {
                    Change::Acknowledged => false,
                    Change::Cleared => t == Tone::Good,
                    Change::Downgraded => t == Tone::Warning,
                    _ => (t == Tone::Critical) == red && t != Tone::Good,
                }
            })
            .count()
    };
    let mut parts = Vec::new();
    for (t, one, many) in [
        (Tone::Critical, "red", "red"),
        (Tone::Warning, "warning", "warnings"),
        (Tone::Good, "clear", "clear"),
    ] {
        match n(t) {
            0 => {}
            1 => parts.push(format!("1 {one}")),
            k => parts.push(format!("{k} {many}")),
        }
    }
    let acked = msg
        .entries
        .iter()
        .filter(|e| e.change == Change::Acknowledged)
        .count();
    if acked > 0 {
        parts.push(format!("{acked} acknowledged"));
    }
    if parts.is_empty() {
        parts.push(format!("{} cleared", msg.cleared.len()));
    }
    format!("Sideline · {}: {}", msg.team, parts.join(", "))
}

/// "Cleared since the last message: home-07 sprint burst (15:31–15:33); …".
pub(crate) fn cleared_text(msg: &Message) -> Option<String> {
    if msg.cleared.is_empty() {
        return None;
    }
    let lines: Vec<String> = msg
        .cleared
        .iter()
        .map(|c| {
            format!(
                "{} {} ({}–{})",
                c.alert.player,
                c.alert.headline(),
                clock(c.alert.since_us),
                clock(c.alert.t_us)
            )
        })
        .collect();
    Some(format!(
        "Cleared since the last message: {}",
        lines.join("; ")
    ))
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
