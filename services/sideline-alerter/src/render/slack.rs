//! Slack incoming webhook, Block Kit. Limits: 50 blocks, header 150 characters, section text
//! 3000, 10 fields of 2000; in practice about 13k characters of blocks in all
//! (slackapi/bolt-js#2509), so this stays under 12k.

use serde_json::{Value, json};

use super::{Card, card, cleared_text, cut, message_title};
use crate::ack::Links;
use crate::router::Message;

const MAX_BLOCKS: usize = 50;
const MAX_CHARS: usize = 12_000;

fn mrkdwn_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn blocks_for(c: &Card) -> Vec<Value> {
    let mut text = format!("*{}*", mrkdwn_escape(&c.title));
    if let Some(url) = &c.ack {
        text.push_str(&format!("  <{url}|Acknowledge>"));
    }
    let fields: Vec<Value> = c
        .facts
        .iter()
        .take(10)
        .map(|(k, v)| json!({"type": "mrkdwn", "text": cut(&format!("*{k}*\n{}", mrkdwn_escape(v)), 2000)}))
        .collect();
    let mut out = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": cut(&text, 3000)},
        "fields": fields,
    })];
    if !c.terms.is_empty() {
        let mut terms = format!("Terms that fired: {}", mrkdwn_escape(&c.terms.join(" · ")));
        if let Some(url) = &c.evidence {
            terms.push_str(&format!(" · <{url}|evidence behind the score>"));
        }
        out.push(
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&terms, 3000)}]}),
        );
    }
    out.push(json!({"type": "divider"}));
    out
}

pub(super) fn render(msg: &Message, links: Option<&Links>, now_s: i64) -> Value {
    let title = message_title(msg);
    let mut blocks =
        vec![json!({"type": "header", "text": {"type": "plain_text", "text": cut(&title, 150)}})];
    let tail = cleared_text(msg)
        .map(|t| json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&mrkdwn_escape(&t), 3000)}]}));
    // Room for the cleared line and an "and N more" line.
    let room = MAX_BLOCKS - 1 - usize::from(tail.is_some()) - 1;
    let mut chars = title.len() + tail.as_ref().map_or(0, |t| t.to_string().len()) + 200;
    let mut shown = 0;
    for e in &msg.entries {
        let b = blocks_for(&card(e, links, now_s));
        let size: usize = b.iter().map(|x| x.to_string().len()).sum();
        if blocks.len() - 1 + b.len() > room || chars + size > MAX_CHARS {
            break;
        }
        chars += size;
        blocks.extend(b);
        shown += 1;
    }
    if shown < msg.entries.len() {
        let more = msg.entries.len() - shown;
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("…and {more} more player(s): see the bench page")}}));
    }
    blocks.extend(tail);
    let fallback: Vec<String> = msg
        .entries
        .iter()
        .map(|e| card(e, None, now_s).title)
        .collect();
    let text = if fallback.is_empty() {
        title.clone()
    } else {
        fallback.join(" | ")
    };
    json!({"text": cut(&text, 3000), "blocks": blocks})
}
