//! Generic JSON webhook in the Alertmanager webhook shape (version "4"), so that receivers
//! written for Alertmanager take it unchanged: `status`, `groupKey`, `groupLabels`,
//! `commonLabels`, `alerts[]` with `labels`, `annotations`, `startsAt`, `endsAt`,
//! `fingerprint` (the stable alert id, to de-duplicate on). Sideline adds `change`, `ack_url`
//! and `evidence_url` annotations and an `idempotencyKey` per alert.

use serde_json::{Value, json};

use super::card;
use crate::ack::Links;
use crate::item::State;
use crate::router::{Change, Message};

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

pub(super) fn render(msg: &Message, links: Option<&Links>, now_s: i64) -> Value {
    let mut alerts: Vec<Value> = msg
        .entries
        .iter()
        .map(|e| {
            let a = &e.alert;
            let c = card(e, links, now_s);
            let resolved = e.change == Change::Cleared;
            let mut annotations = json!({
                "summary": c.title,
                "description": a.summary,
                "how_much": a.how_much(),
                "terms": c.terms.join("; "),
                "change": e.change.as_str(),
                "params_version": a.params_version,
            });
            for (k, v) in &c.facts {
                annotations[k.to_lowercase().replace(' ', "_")] = json!(v);
            }
            if let Some(c) = a.completeness {
                annotations["score_completeness"] = json!(c);
                annotations["band_is_floor"] = json!(a.band_floor);
            }
            if let Some(u) = &c.ack {
                annotations["ack_url"] = json!(u);
            }
            if let Some(u) = &c.evidence {
                annotations["evidence_url"] = json!(u);
            }
            json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": {"alertname": a.kind, "team": a.team, "player": a.player,
                           "session": a.session, "severity": a.severity.as_str()},
                "annotations": annotations,
                "startsAt": rfc3339(a.since_us),
                "endsAt": if resolved { rfc3339(a.t_us) } else { "0001-01-01T00:00:00Z".into() },
                "generatorURL": "",
                "fingerprint": a.id,
                "idempotencyKey": e.key,
            })
        })
        .collect();
    alerts.extend(msg.cleared.iter().map(|c| {
        let a = &c.alert;
        json!({
            "status": "resolved",
            "labels": {"alertname": a.kind, "team": a.team, "player": a.player,
                       "session": a.session, "severity": a.severity.as_str()},
            "annotations": {"summary": format!("{} {} is over", a.player, a.headline()),
                            "description": a.summary, "change": "cleared_line"},
            "startsAt": rfc3339(a.since_us),
            "endsAt": rfc3339(if a.state == State::Resolved { a.t_us } else { c.at }),
            "generatorURL": "",
            "fingerprint": a.id,
            "idempotencyKey": format!("{}|line|{}", msg.destination, a.id),
        })
    }));
    let firing = alerts.iter().any(|a| a["status"] == "firing");
    json!({
        "version": "4",
        "receiver": msg.destination,
        "groupKey": format!("{{}}:{{team=\"{}\"}}", msg.team),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "groupLabels": {"team": msg.team},
        "commonLabels": {"team": msg.team},
        "commonAnnotations": {},
        "externalURL": links.map(|l| l.base.clone()).unwrap_or_default(),
        "alerts": alerts,
    })
}
