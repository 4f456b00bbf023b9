//! Discord execute-webhook with embeds. Limits: content 2000 characters, 10 embeds, title 256,
//! description 4096, 25 fields (name 256, value 1024), 6000 characters over all embeds.
//! Mentions are disabled (`allowed_mentions.parse = []`): a player's name never pings anyone.

use serde_json::{Value, json};

use super::{Card, Tone, card, cleared_text, cut, message_title};
use crate::ack::Links;
use crate::router::Message;

const MAX_EMBEDS: usize = 10;
const MAX_EMBED_CHARS: usize = 6000;

fn colour(t: Tone) -> u32 {
    match t {
        Tone::Critical => 0x992D22,
        Tone::Warning => 0xE67E22,
        Tone::Good => 0x2ECC71,
    }
}

/// The embed and the characters Discord counts for it.
fn embed_for(c: &Card) -> (Value, usize) {
    let title = cut(&c.title, 256);
    let mut description = String::new();
    if let Some(url) = &c.ack {
        description.push_str(&format!("[Acknowledge]({url})\n"));
    }
    if !c.terms.is_empty() {
        description.push_str(&format!("Terms that fired: {}", c.terms.join(" · ")));
        if let Some(url) = &c.evidence {
            description.push_str(&format!(" · [evidence behind the score]({url})"));
        }
    }
    let description = cut(&description, 4096);
    let mut chars = title.chars().count() + description.chars().count();
    let fields: Vec<Value> = c
        .facts
        .iter()
        .take(25)
        .map(|(k, v)| {
            let v = cut(v, 1024);
            chars += k.len() + v.chars().count();
            json!({"name": k, "value": v, "inline": v.chars().count() < 40})
        })
        .collect();
    (
        json!({"title": title, "description": description, "color": colour(c.tone), "fields": fields}),
        chars,
    )
}

pub(super) fn render(msg: &Message, links: Option<&Links>, now_s: i64) -> Value {
    let mut embeds = Vec::new();
    let mut chars = 0;
    let mut shown = 0;
    for e in &msg.entries {
        let (embed, n) = embed_for(&card(e, links, now_s));
        if embeds.len() + 1 >= MAX_EMBEDS || chars + n > MAX_EMBED_CHARS - 200 {
            break;
        }
        chars += n;
        embeds.push(embed);
        shown += 1;
    }
    // The tenth embed, if needed, says what did not fit.
    if shown < msg.entries.len() {
        embeds.push(
            json!({"title": format!("…and {} more player(s)", msg.entries.len() - shown),
            "description": "See the bench page.", "color": colour(Tone::Warning)}),
        );
    }
    let mut content = message_title(msg);
    if let Some(t) = cleared_text(msg) {
        content.push('\n');
        content.push_str(&t);
    }
    json!({
        "content": cut(&content, 2000),
        "username": "Sideline",
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    })
}
