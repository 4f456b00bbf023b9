//! Feeds in other systems' shapes: a club's local-positioning or GNSS system, a league's live
//! tracking feed, heart-rate straps behind a gateway. Each `[[sources]]` entry in ingest's
//! configuration names a shape (a built-in profile, overridden key by key, or a shape of its
//! own: `sideline_wire::adapter::Shape`) and one transport:
//!
//! - `mqtt_topic`: a topic filter on ingest's broker, with `{device}` / `{team}` levels captured
//!   (`gateway/{device}/hrm`); messages are acknowledged once their records are on Kafka, like
//!   pods' own.
//! - `websocket`: a `ws://` or `wss://` URL, read by [`ws`] (reconnects with back-off; the
//!   `league` protocol authenticates, requests its fixture with backfill and skips what it
//!   already forwarded).
//! - `udp_listen`: one message per datagram ([`udp`]).
//!
//! What comes out is the native path's: [`crate::pipeline::Pipeline::handle_source`].

pub mod udp;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sideline_wire::adapter::Shape;

/// How a WebSocket source talks to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WsProtocol {
    /// Connect and read.
    #[default]
    Plain,
    /// A league's tracking feed: `{"authToken": …}`, then `{"fixtureId": …, "backfill": -1}`;
    /// heartbeats every 10 s; frames carry an index `ix`.
    League,
    /// Sewio RTLS: subscribe to `/feeds/` with the API key.
    Sewio,
}

/// One `[[sources]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name ([A-Za-z0-9._-], ≤ 32): metric label, and the devices' boot id downstream.
    pub name: String,
    /// Built-in profile (`rtloc`, `sewio`, `league`, `ble-hrm`) or "" for `shape` alone.
    #[serde(default)]
    pub profile: String,
    /// Shape keys laid over the profile's.
    #[serde(default)]
    pub shape: toml::Table,
    /// Put in front of the feed's device ids (the roster's device ids are the result).
    #[serde(default)]
    pub device_prefix: String,
    /// MQTT topic filter on ingest's broker, with `{device}` and `{team}` levels.
    #[serde(default)]
    pub mqtt_topic: String,
    /// WebSocket URL.
    #[serde(default)]
    pub websocket: String,
    /// UDP address to listen on (`host:port`).
    #[serde(default)]
    pub udp_listen: String,
    /// WebSocket protocol.
    #[serde(default)]
    pub protocol: WsProtocol,
    /// File holding the feed's token or API key (read at start, never logged).
    #[serde(default)]
    pub token_file: PathBuf,
    /// The league fixture to request.
    #[serde(default)]
    pub fixture_id: String,
    /// Seconds without any message (heartbeats included) before a WebSocket reconnects.
    #[serde(default = "idle_timeout_s")]
    pub idle_timeout_s: u64,
}

fn idle_timeout_s() -> u64 {
    30
}

/// A source ready to use.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// Device id prefix.
    pub device_prefix: String,
    /// Its MQTT topic, if it comes over MQTT.
    pub topic: Option<TopicPattern>,
    /// Its configuration.
    pub cfg: SourceConfig,
}

impl Source {
    /// The `{device}` capture if `topic` is this source's (`Some(None)` when the pattern has
    /// no capture).
    pub fn matches(&self, topic: &str) -> Option<Option<String>> {
        self.topic.as_ref()?.matches(topic)
    }
}

/// Every source's problems (empty when all are usable).
pub fn problems(cfgs: &[SourceConfig]) -> Vec<String> {
    let mut p = Vec::new();
    let mut names = std::collections::HashSet::new();
    for c in cfgs {
        let at = format!("sources.{}", c.name);
        let ok_name = !c.name.is_empty()
            && c.name.len() <= 32
            && c.name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch));
        if !ok_name {
            p.push(format!("{at}: name must be 1–32 of [A-Za-z0-9._-]"));
        }
        if !names.insert(c.name.as_str()) {
            p.push(format!("{at}: two sources have this name"));
        }
        if let Err(e) = Shape::resolve(&c.profile, &c.shape) {
            p.push(format!("{at}: shape: {e}"));
        }
        let transports = [&c.mqtt_topic, &c.websocket, &c.udp_listen]
            .iter()
            .filter(|s| !s.is_empty())
            .count();
        if transports != 1 {
            p.push(format!(
                "{at}: exactly one of mqtt_topic, websocket, udp_listen"
            ));
        }
        if !c.mqtt_topic.is_empty() {
            if let Err(e) = TopicPattern::parse(&c.mqtt_topic) {
                p.push(format!("{at}.mqtt_topic: {e}"));
            }
            if c.mqtt_topic.starts_with("sideline/") {
                p.push(format!("{at}.mqtt_topic: sideline/… is the native topics'"));
            }
        }
        if !(c.websocket.is_empty()
            || c.websocket.starts_with("ws://")
            || c.websocket.starts_with("wss://"))
        {
            p.push(format!("{at}.websocket: a ws:// or wss:// URL"));
        }
        if !c.udp_listen.is_empty() && c.udp_listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!("{at}.udp_listen: host:port"));
        }
        if c.protocol == WsProtocol::League && c.fixture_id.is_empty() {
            p.push(format!("{at}: protocol = \"league\" needs fixture_id"));
        }
        if c.protocol != WsProtocol::Plain && !c.token_file.is_file() {
            p.push(format!(
                "{at}.token_file: {} is not a readable file",
                c.token_file.display()
            ));
        }
        if !(1..=3600).contains(&c.idle_timeout_s) {
            p.push(format!("{at}.idle_timeout_s: 1..=3600"));
        }
    }
    p
}

/// The sources `cfgs` describe (their problems, if any).
pub fn compile(cfgs: &[SourceConfig]) -> Result<Vec<Arc<Source>>, Vec<String>> {
    let p = problems(cfgs);
    if !p.is_empty() {
        return Err(p);
    }
    Ok(cfgs
        .iter()
        .filter_map(|c| {
            Some(Arc::new(Source {
                name: c.name.clone(),
                shape: Shape::resolve(&c.profile, &c.shape).ok()?,
                device_prefix: c.device_prefix.clone(),
                topic: (!c.mqtt_topic.is_empty())
                    .then(|| TopicPattern::parse(&c.mqtt_topic).ok())
                    .flatten(),
                cfg: c.clone(),
            }))
        })
        .collect())
}

/// One level of a topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(String),
    Any,
    Device,
    Team,
    Rest,
}

/// An MQTT topic filter whose `{device}` and `{team}` levels are captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern(Vec<Level>);

impl TopicPattern {
    /// Parse `gateway/{device}/hrm`, `data/#`, `clubs/+/{team}/{device}`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let levels: Vec<&str> = s.split('/').collect();
        let mut out = Vec::new();
        for (i, l) in levels.iter().enumerate() {
            out.push(match *l {
                "+" => Level::Any,
                "{device}" => Level::Device,
                "{team}" => Level::Team,
                "#" if i + 1 == levels.len() => Level::Rest,
                l if l.contains(['+', '#', '{', '}']) => {
                    return Err(format!("{s:?}: level {l:?} mixes wildcards and text"));
                }
                l => Level::Literal(l.to_string()),
            });
        }
        Ok(TopicPattern(out))
    }

    /// The filter to subscribe to (captures as `+`).
    pub fn filter(&self) -> String {
        let l: Vec<&str> = self
            .0
            .iter()
            .map(|l| match l {
                Level::Literal(s) => s.as_str(),
                Level::Any | Level::Device | Level::Team => "+",
                Level::Rest => "#",
            })
            .collect();
        l.join("/")
    }

    /// The `{device}` capture if `topic` matches.
    pub fn matches(&self, topic: &str) -> Option<Option<String>> {
        let mut device = None;
        let mut parts = topic.split('/');
        for l in &self.0 {
            if *l == Level::Rest {
                return Some(device);
            }
            let p = parts.next()?;
            match l {
                Level::Literal(s) if s != p => return None,
                Level::Device => device = Some(p.to_string()),
                _ => {}
            }
        }
        parts.next().is_none().then_some(device)
    }
}

/// Start the WebSocket and UDP sources' tasks (UDP ports are bound here: a taken port is a
/// start-up error); they stop with `stop`, after finishing what they took (a WebSocket source
/// then saves its watermark).
pub fn spawn(
    sources: &[Arc<Source>],
    pipeline: &crate::pipeline::Pipeline,
    state_dir: &std::path::Path,
    stop: &tokio_util::sync::CancellationToken,
) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for s in sources {
        let (src, p, stop) = (Arc::clone(s), pipeline.clone(), stop.clone());
        if !s.cfg.websocket.is_empty() {
            let state = state_dir.join(format!("source-{}.json", s.name));
            tasks.push(tokio::spawn(ws::run(src, p, state, stop)));
        } else if !s.cfg.udp_listen.is_empty() {
            let sock = udp::bind(s)?;
            tasks.push(tokio::spawn(udp::run(src, sock, p, stop)));
        }
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_capture_the_device_and_subscribe_with_wildcards() {
        let p = TopicPattern::parse("gateway/{team}/{device}/hrm").unwrap();
        assert_eq!(p.filter(), "gateway/+/+/hrm");
        assert_eq!(
            p.matches("gateway/home/strap-4/hrm"),
            Some(Some("strap-4".into()))
        );
        assert_eq!(p.matches("gateway/home/strap-4/x"), None);
        assert_eq!(p.matches("gateway/home/strap-4/hrm/extra"), None);
        let all = TopicPattern::parse("data/devices/tag-data/#").unwrap();
        assert_eq!(all.matches("data/devices/tag-data/frame"), Some(None));
        assert!(TopicPattern::parse("a/b{device}").is_err());
    }

    fn source(toml: &str) -> Vec<SourceConfig> {
        #[derive(Deserialize)]
        struct F {
            sources: Vec<SourceConfig>,
        }
        toml::from_str::<F>(toml).unwrap().sources
    }

    #[test]
    fn every_source_problem_is_reported_at_once() {
        let ok = source(
            "[[sources]]\nname = \"lps\"\nprofile = \"rtloc\"\nmqtt_topic = \"data/devices/tag-data/frame\"\n",
        );
        assert!(problems(&ok).is_empty(), "{:?}", problems(&ok));
        assert_eq!(
            compile(&ok).unwrap()[0].topic.as_ref().unwrap().filter(),
            "data/devices/tag-data/frame"
        );
        let bad = source(
            "[[sources]]\nname = \"a b\"\nprofile = \"rtlocc\"\n\
             [[sources]]\nname = \"x\"\nprofile = \"league\"\nwebsocket = \"http://x\"\nprotocol = \"league\"\nmqtt_topic = \"sideline/v1/#\"\n\
             [sources.shape]\nspeed = \"v\"\n",
        );
        let p = problems(&bad).join("\n");
        for want in [
            "name must be",
            "unknown profile",
            "exactly one of",
            "sideline/…",
            "ws://",
            "fixture_id",
            "token_file",
            "\"v\"",
        ] {
            assert!(p.contains(want), "{want} missing from:\n{p}");
        }
    }
}
