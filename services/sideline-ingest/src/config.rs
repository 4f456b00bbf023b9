//! Configuration of the ingest service (defaults and meaning in `default.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sideline_common::config::Validate;
use sideline_kafka::KafkaConfig;
use sideline_mqtt::MqttConfig;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../default.toml");

/// What to subscribe to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeConfig {
    /// Topic filter.
    pub topic: String,
    /// Shared-subscription group (`$share/<group>/<topic>`); empty for a plain subscription.
    pub share_group: String,
    /// Subscription QoS (1 for no loss).
    pub qos: u8,
}

impl SubscribeConfig {
    /// The filter to subscribe to.
    pub fn filter(&self) -> String {
        if self.share_group.is_empty() {
            self.topic.clone()
        } else {
            format!("$share/{}/{}", self.share_group, self.topic)
        }
    }
}

/// Ingest behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Roster file ("" = none).
    pub roster_file: PathBuf,
    /// Follow the compacted roster topic.
    pub roster_topic: bool,
    /// Unscheduled data belongs to its team's session day, which starts at this hour UTC
    /// (0–23; see `sideline_wire::schedule`).
    pub session_day_start_utc_h: u8,
    /// Messages received but not acknowledged.
    pub max_inflight: usize,
    /// Largest payload accepted, bytes.
    pub max_payload_bytes: usize,
    /// Most samples per batch.
    pub max_samples: usize,
    /// Furthest ahead of the clock, s.
    pub max_future_s: f64,
    /// Furthest behind the clock, s (0 = no limit).
    pub max_past_s: f64,
    /// Payload device/team must match the topic.
    pub check_topic: bool,
    /// Drain time on shutdown, s.
    pub drain_timeout_s: u64,
    /// Directory of the disk spool ("" = the OS temp dir).
    pub spool_dir: PathBuf,
    /// Largest spool, MiB (0 = no spool).
    pub spool_max_mb: u64,
    /// Most MQTT message bytes (topics and payloads) held in memory waiting, MiB; as many
    /// again may be being handled. Beyond it messages go to the spool.
    pub max_backlog_mb: u64,
    /// Directory of the sources' state (a league feed's watermark); "" = `spool_dir`'s.
    pub state_dir: PathBuf,
    /// A player's batches arriving within this many ms go to Kafka as one record (0 = one
    /// record per batch).
    pub coalesce_linger_ms: u64,
    /// A coalesced record is sent as soon as it holds this many KiB.
    pub coalesce_max_kb: usize,
}

impl IngestSettings {
    /// [`Self::max_backlog_mb`] in bytes.
    pub fn max_backlog_bytes(&self) -> usize {
        usize::try_from(self.max_backlog_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Where sources keep their state: `state_dir`, else `spool_dir`, else the OS temp dir.
    pub fn state_dir(&self) -> PathBuf {
        [&self.state_dir, &self.spool_dir]
            .into_iter()
            .find(|d| !d.as_os_str().is_empty())
            .cloned()
            .unwrap_or_else(std::env::temp_dir)
    }

    /// The polling task's backlog: 4 × `max_inflight` messages and `max_backlog_mb` in
    /// memory, then the spool.
    pub fn backlog(&self) -> sideline_mqtt::Backlog {
        let dir = if self.spool_dir.as_os_str().is_empty() {
            std::env::temp_dir()
        } else {
            self.spool_dir.clone()
        };
        sideline_mqtt::Backlog {
            memory: 4 * self.max_inflight,
            memory_bytes: self.max_backlog_bytes(),
            spool: (self.spool_max_mb > 0)
                .then(|| sideline_mqtt::Spool::new(dir, self.spool_max_mb.saturating_mul(1 << 20))),
        }
    }
}

pub use sideline_common::config::{HttpConfig, LogConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// MQTT connection.
    pub mqtt: MqttConfig,
    /// Subscription.
    pub subscribe: SubscribeConfig,
    /// Kafka.
    pub kafka: KafkaConfig,
    /// Behaviour.
    pub ingest: IngestSettings,
    /// Admin HTTP.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Feeds in other systems' shapes (none by default).
    #[serde(default)]
    pub sources: Vec<crate::sources::SourceConfig>,
}

impl Validate for IngestConfig {
    fn problems(&self) -> Vec<String> {
        let mut p = self.mqtt.problems();
        p.extend(self.kafka.problems());
        if !self.subscribe.topic.starts_with("sideline/v1/") {
            p.push("subscribe.topic: must be under sideline/v1/ (sideline/v1/{team}/{device}/{stream})".into());
        }
        if self.subscribe.share_group.contains(['/', '+', '#']) {
            p.push("subscribe.share_group: must not contain / + #".into());
        }
        if self.subscribe.qos > 1 {
            p.push("subscribe.qos: 0 or 1 (QoS 2 adds nothing once Kafka de-duplicates)".into());
        }
        let i = &self.ingest;
        if !(1..=65_536).contains(&i.max_backlog_mb) {
            p.push("ingest.max_backlog_mb: 1..=65536".into());
        }
        if i.coalesce_linger_ms > 1000 {
            p.push("ingest.coalesce_linger_ms: 0..=1000".into());
        }
        if !(1..=768).contains(&i.coalesce_max_kb) {
            p.push(
                "ingest.coalesce_max_kb: 1..=768 (Kafka's default record limit is 1 MiB)".into(),
            );
        }
        if !(1..=65_535).contains(&i.max_inflight) {
            p.push("ingest.max_inflight: 1..=65535".into());
        }
        if i.max_payload_bytes < 1024 || i.max_payload_bytes > self.mqtt.max_packet_bytes {
            p.push(
                "ingest.max_payload_bytes: at least 1024 and at most mqtt.max_packet_bytes".into(),
            );
        }
        if !(i.max_future_s >= 0.0 && i.max_past_s >= 0.0) {
            p.push("ingest.max_future_s / max_past_s: must be ≥ 0".into());
        }
        if !i.spool_dir.as_os_str().is_empty() && !i.spool_dir.is_dir() {
            p.push(format!(
                "ingest.spool_dir: {} is not a directory",
                i.spool_dir.display()
            ));
        }
        if !i.state_dir.as_os_str().is_empty() && !i.state_dir.is_dir() {
            p.push(format!(
                "ingest.state_dir: {} is not a directory",
                i.state_dir.display()
            ));
        }
        p.extend(crate::sources::problems(&self.sources));
        if i.session_day_start_utc_h > 23 {
            p.push("ingest.session_day_start_utc_h: 0..=23".into());
        }
        if !i.roster_file.as_os_str().is_empty() && !i.roster_file.is_file() {
            p.push(format!(
                "ingest.roster_file: {} is not a readable file",
                i.roster_file.display()
            ));
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!(
                "http.listen: {:?} is not host:port",
                self.http.listen
            ));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_defaults_load_and_validate() {
        let mut c: IngestConfig = sideline_common::config::load(DEFAULTS, None).unwrap();
        assert_eq!(c.subscribe.filter(), "sideline/v1/+/+/+");
        c.subscribe.share_group = "sideline-ingest".into();
        assert_eq!(
            c.subscribe.filter(),
            "$share/sideline-ingest/sideline/v1/+/+/+"
        );
        assert_eq!(c.ingest.max_inflight, 1000);
    }

    #[test]
    fn the_backlog_spills_to_a_spool_unless_it_is_turned_off_and_a_missing_dir_is_reported() {
        let mut c: IngestConfig = sideline_common::config::load(DEFAULTS, None).unwrap();
        let b = c.ingest.backlog();
        assert_eq!(b.memory, 4000);
        assert!(b.spool.is_some_and(|s| s.has_room()));
        c.ingest.spool_max_mb = 0;
        assert!(c.ingest.backlog().spool.is_none());
        c.ingest.spool_dir = "/nonexistent/sideline-spool".into();
        assert!(
            c.problems().iter().any(|p| p.contains("ingest.spool_dir")),
            "{:?}",
            c.problems()
        );
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    /// A `[[sources]]` entry with its shape overrides loads through the same configuration
    /// path as every other key, and its problems are reported with the others at start-up.
    #[test]
    fn sources_load_from_the_config_file_with_their_shape_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ingest.toml");
        std::fs::write(
            &f,
            "[[sources]]\nname = \"lps\"\nprofile = \"rtloc\"\nmqtt_topic = \"data/devices/tag-data/frame\"\n\
             [sources.shape]\nspeed = \"/v\"\nframe_period_ms = 50.0\n",
        )
        .unwrap();
        let c: IngestConfig = sideline_common::config::load(DEFAULTS, Some(&f)).unwrap();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let s = crate::sources::compile(&c.sources).unwrap();
        assert_eq!(
            (s[0].shape.speed.as_str(), s[0].shape.frame_period_ms),
            ("/v", 50.0)
        );
        std::fs::write(&f, "[[sources]]\nname = \"lps\"\nprofile = \"rtloc\"\n").unwrap();
        let e = sideline_common::config::load::<IngestConfig>(DEFAULTS, Some(&f)).unwrap_err();
        assert!(format!("{e:?}").contains("exactly one of"), "{e:?}");
    }
}
