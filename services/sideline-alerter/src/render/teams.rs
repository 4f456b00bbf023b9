//! Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received" →
//! "Post card in a chat or channel"): a message with one Adaptive Card 1.2 attachment, the
//! shape Alertmanager's msteamsv2 sends. Limit: 28 KB per message; this stays under 27 KB.

use serde_json::{Value, json};

use super::{Card, Tone, card, cleared_text, message_title};
use crate::ack::Links;
use crate::router::Message;

/// Bytes of the whole message, with a margin under Teams' 28 KB.
pub(crate) const MAX_BYTES: usize = 27 * 1024;

fn colour(t: Tone) -> &'static str {
    match t {
        Tone::Critical => "Attention",
        Tone::Warning => "Warning",
        Tone::Good => "Good",
    }
}

fn items_for(c: &Card) -> Vec<Value> {
    let mut facts: Vec<Value> = c
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    if !c.terms.is_empty() {
        facts.push(json!({"title": "Terms that fired", "value": c.terms.join(" · ")}));
    }
    let mut out = vec![
        json!({"type": "TextBlock", "text": c.title, "weight": "Bolder", "wrap": true,
               "color": colour(c.tone), "separator": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    let mut actions = Vec::new();
    if let Some(url) = &c.ack {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Acknowledge", "url": url}));
    }
    if let Some(url) = &c.evidence {
        actions.push(
            json!({"type": "Action.OpenUrl", "title": "Evidence behind the score", "url": url}),
        );
    }
    if !actions.is_empty() {
        out.push(json!({"type": "ActionSet", "actions": actions}));
    }
    out
}

fn wrap(body: Vec<Value>) -> Value {
    json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": null,
        "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.2",
            "msteams": {"width": "full"},
            "body": body,
        }
    }]})
}

pub(super) fn render(msg: &Message, links: Option<&Links>, now_s: i64) -> Value {
    let tone = msg.entries.iter().map(|e| card(e, None, now_s).tone).next();
    let mut body = vec![json!({"type": "TextBlock", "text": message_title(msg),
        "weight": "Bolder", "size": "Medium", "wrap": true, "style": "heading",
        "color": colour(tone.unwrap_or(Tone::Good))})];
    let tail = cleared_text(msg).map(|t| {
        json!({"type": "TextBlock", "text": t, "wrap": true,
        "isSubtle": true, "separator": true})
    });
    let reserve = tail.as_ref().map_or(0, |t| t.to_string().len()) + 200;
    // The size grows by each item's JSON and a comma: counted, not re-serialised each time.
    let mut size = wrap(body.clone()).to_string().len();
    let mut shown = 0;
    for e in &msg.entries {
        let items = items_for(&card(e, links, now_s));
        let grow: usize = items.iter().map(|i| i.to_string().len() + 1).sum();
        if size + grow + reserve > MAX_BYTES {
            break;
        }
        size += grow;
        body.extend(items);
        shown += 1;
    }
    if shown < msg.entries.len() {
        body.push(json!({"type": "TextBlock", "wrap": true, "text":
            format!("…and {} more player(s): see the bench page", msg.entries.len() - shown)}));
    }
    body.extend(tail);
    wrap(body)
}
