use serde_json::Value;

use super::*;
use crate::ack::{Links, Signer};
use crate::item::tests::item;
use crate::item::{Severity, State};
use crate::router::{ClearedLine, Entry, Message};

const NOW: i64 = 1_768_062_000;

fn links() -> Links {
    Links {
        base: "https://sideline.example.org/alerter".into(),
        signer: Signer::new(b"golden-file secret, not a real one"),
        ttl_s: 3600,
    }
}

fn entry(change: Change, player: &str, kind: &str, sev: Severity, state: State) -> Entry {
    let alert = item(
        &format!("{player}-{kind}"),
        player,
        kind,
        sev,
        state,
        NOW - 20,
    );
    Entry {
        key: format!("bench|{}|{}|{}", change.as_str(), alert.id, sev.as_str()),
        change,
        also: Vec::new(),
        alert,
        ack: None,
    }
}

fn message() -> Message {
    let mut red = entry(
        Change::Escalated,
        "home-07",
        "strain_risk",
        Severity::Critical,
        State::Updated,
    );
    red.also = vec![item(
        "x",
        "home-07",
        "sprint_spike",
        Severity::Warning,
        State::Firing,
        NOW - 60,
    )];
    let mut rising = entry(
        Change::Raised,
        "home-09",
        "strain_risk_rising",
        Severity::Warning,
        State::Firing,
    );
    rising.alert.band = "amber".into();
    rising.alert.value = 4.0;
    rising.alert.threshold = 10.0;
    rising.alert.completeness = Some(0.7);
    // An amber reached while part of the score is unknown: a floor.
    let mut floor = entry(
        Change::Raised,
        "home-11",
        "strain_risk",
        Severity::Warning,
        State::Firing,
    );
    floor.alert.value = 3.4;
    floor.alert.threshold = 3.0;
    floor.alert.to_red_min = None;
    floor.alert.completeness = Some(0.55);
    floor.alert.band_floor = true;
    let cleared = entry(
        Change::Cleared,
        "home-03",
        "strain_risk",
        Severity::Critical,
        State::Resolved,
    );
    Message {
        destination: "bench".into(),
        team: "home".into(),
        at: NOW * 1_000_000,
        entries: vec![red, rising, floor, cleared],
        cleared: vec![ClearedLine {
            alert: item(
                "d",
                "home-02",
                "device",
                Severity::Warning,
                State::Resolved,
                NOW - 300,
            ),
            at: NOW * 1_000_000,
        }],
    }
}

fn big_message(players: usize) -> Message {
    let mut m = message();
    m.entries = (0..players)
        .map(|i| {
            let mut e = entry(
                Change::Raised,
                &format!("player-{i:03}"),
                "strain_risk",
                Severity::Critical,
                State::Firing,
            );
            e.alert.terms = (0..16)
                .map(|k| crate::item::TermLine {
                    label: format!("a long term label number {k} {}", "x".repeat(60)),
                    points: 0.5,
                })
                .collect();
            e
        })
        .collect();
    m.cleared = (0..200)
        .map(|i| ClearedLine {
            alert: item(
                &format!("c{i}"),
                "home-02",
                "device",
                Severity::Warning,
                State::Resolved,
                NOW,
            ),
            at: NOW,
        })
        .collect();
    m
}

fn golden(name: &str, body: &[u8]) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    let path = format!("{}/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(text, want, "{path} differs (UPDATE_GOLDEN=1 rewrites it)");
}

fn render_json(f: Format, m: &Message) -> (Vec<u8>, Value) {
    let b = render(f, m, Some(&links()), NOW);
    let v = serde_json::from_slice(&b).unwrap();
    (b, v)
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

#[test]
fn each_renderer_matches_its_golden_file() {
    for f in [
        Format::Slack,
        Format::Teams,
        Format::Discord,
        Format::Webhook,
    ] {
        golden(f.as_str(), &render(f, &message(), Some(&links()), NOW));
    }
}

#[test]
fn every_message_says_who_what_how_much_since_terms_forecast_and_links_the_ack() {
    let signer = links().signer;
    for f in [
        Format::Slack,
        Format::Teams,
        Format::Discord,
        Format::Webhook,
    ] {
        let text = String::from_utf8(render(f, &message(), Some(&links()), NOW)).unwrap();
        for needle in [
            "home-07",
            "strain-risk RED",
            "score 5.2",
            "since",
            "previous hamstring injury +1.0",
            "red in 4–7 min at the last 5 and 10 minutes' rates",
            "home-02 device signal",
        ] {
            assert!(
                text.to_lowercase().contains(&needle.to_lowercase()),
                "{} lacks {needle:?}",
                f.as_str()
            );
        }
        // The ack link is ours and its token names the red alert.
        let at = text
            .find("https://sideline.example.org/alerter/ack/")
            .unwrap();
        let token: String = text[at + 41..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect();
        assert_eq!(signer.check(&token, NOW).unwrap(), "home-07-strain_risk");
        // Beside the terms, the page of the evidence behind them.
        assert!(
            text.contains("https://sideline.example.org/alerter/evidence"),
            "{} lacks the evidence link",
            f.as_str()
        );
    }
}

#[test]
fn slack_stays_within_50_blocks_and_its_text_limits() {
    for n in [1, 3, 20, 60] {
        let m = big_message(n);
        let (_, v) = render_json(Format::Slack, &m);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        assert!(chars(&blocks[0]["text"]["text"]) <= 150);
        let total: usize = blocks.iter().map(|b| b.to_string().len()).sum();
        assert!(total <= 13_000, "{total} characters of blocks");
        for b in blocks {
            assert!(chars(&b["text"]["text"]) <= 3000);
            for f in b["fields"].as_array().into_iter().flatten() {
                assert!(chars(&f["text"]) <= 2000);
            }
            assert!(b["fields"].as_array().is_none_or(|f| f.len() <= 10));
        }
        if n == 60 {
            assert!(v.to_string().contains("more player(s)"), "the cut is said");
        }
        assert!(chars(&v["text"]) <= 3000);
    }
}

#[test]
fn discord_stays_within_10_embeds_2000_characters_and_6000_in_embeds() {
    for n in [1, 9, 10, 11, 60] {
        let (_, v) = render_json(Format::Discord, &big_message(n));
        let embeds = v["embeds"].as_array().unwrap();
        assert!(embeds.len() <= 10);
        assert!(chars(&v["content"]) <= 2000);
        let mut total = 0;
        for e in embeds {
            assert!(chars(&e["title"]) <= 256);
            assert!(chars(&e["description"]) <= 4096);
            let fields = e["fields"].as_array().cloned().unwrap_or_default();
            assert!(fields.len() <= 25);
            total += chars(&e["title"]) + chars(&e["description"]);
            for f in fields {
                assert!(chars(&f["value"]) <= 1024);
                total += chars(&f["name"]) + chars(&f["value"]);
            }
        }
        assert!(total <= 6000, "{total}");
        assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
    }
}

#[test]
fn teams_stays_under_28_kb_and_is_an_adaptive_card() {
    for n in [1, 30, 200] {
        let (b, v) = render_json(Format::Teams, &big_message(n));
        assert!(b.len() <= 28 * 1024, "{} bytes", b.len());
        let card = &v["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        if n == 200 {
            assert!(v.to_string().contains("more player(s)"));
        }
    }
}

#[test]
fn the_webhook_has_the_alertmanager_shape() {
    let (_, v) = render_json(Format::Webhook, &message());
    assert_eq!(v["version"], "4");
    assert_eq!(v["status"], "firing");
    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 5);
    for a in alerts {
        for k in [
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "fingerprint",
        ] {
            assert!(!a[k].is_null(), "{k}");
        }
    }
    assert_eq!(alerts[3]["status"], "resolved");
    assert_eq!(alerts[2]["annotations"]["score_completeness"], 0.55);
    assert_eq!(alerts[2]["annotations"]["band_is_floor"], true);
    assert_eq!(alerts[0]["startsAt"], "2026-01-10T16:19:10.000Z");
}
