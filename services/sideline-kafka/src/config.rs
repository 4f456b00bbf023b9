//! `[kafka]` configuration.
//!
//! ```toml
//! [kafka]
//! brokers = "127.0.0.1:9092"
//! create_topics = true          # create missing topics at start-up (tansu never auto-creates)
//! partitions = 12               # for the per-player topics (samples, metrics, state)
//! replication = 1
//! [kafka.client]                # passed to librdkafka unchanged: security and tuning
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//! "sasl.username" = "sideline"
//! "ssl.ca.location" = "/etc/sideline/ca.pem"
//! [kafka.secret_files]          # librdkafka settings read from files (never logged)
//! "sasl.password" = "/run/secrets/kafka-password"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Topic names (defaults per `deploy/README.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicNames {
    /// Validated samples, key = player id.
    pub samples: String,
    /// Rejected input with its reason.
    pub dlq: String,
    /// Per-player per-second metrics.
    pub metrics: String,
    /// Alert lifecycle events.
    pub alerts: String,
    /// Acknowledgements of alerts (who, when).
    pub acks: String,
    /// Engine state changelog (compacted).
    pub state: String,
    /// Device assignments and athlete profiles (compacted).
    pub roster: String,
    /// Load-history baselines (compacted).
    pub baselines: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames {
            samples: "sideline.samples.v1".into(),
            dlq: "sideline.dlq.v1".into(),
            metrics: "sideline.metrics.v1".into(),
            alerts: "sideline.alerts.v1".into(),
            acks: "sideline.acks.v1".into(),
            state: "sideline.state.v1".into(),
            roster: "sideline.roster.v1".into(),
            baselines: "sideline.baselines.v1".into(),
        }
    }
}

/// Kafka connection and topic settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// Create missing topics at start-up (else a missing topic is a start-up error).
    pub create_topics: bool,
    /// Partitions of the per-player topics.
    pub partitions: i32,
    /// Replication factor of created topics.
    pub replication: i32,
    /// Topic names.
    pub topics: TopicNames,
    /// librdkafka settings passed through unchanged (security, tuning).
    pub client: BTreeMap<String, String>,
    /// librdkafka settings whose values are read from files (secrets).
    pub secret_files: BTreeMap<String, PathBuf>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            create_topics: true,
            partitions: 12,
            replication: 1,
            topics: TopicNames::default(),
            client: BTreeMap::new(),
            secret_files: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Problems with this configuration ("kafka.key: why").
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.brokers.trim().is_empty() {
            p.push("kafka.brokers: must list at least one host:port".into());
        }
        if !(1..=1000).contains(&self.partitions) {
            p.push("kafka.partitions: must be 1..=1000".into());
        }
        if self.replication < 1 {
            p.push("kafka.replication: must be at least 1".into());
        }
        for (k, f) in &self.secret_files {
            if !f.is_file() {
                p.push(format!(
                    "kafka.secret_files.{k}: {} is not a readable file",
                    f.display()
                ));
            }
        }
        p
    }

    /// librdkafka settings for a client: brokers, client id, pass-through settings, secrets.
    /// `defaults` are Sideline's settings for this kind of client; the pass-through settings
    /// win over them, so operators can tune anything.
    pub fn client_config(
        &self,
        client_id: &str,
        defaults: &[(&str, &str)],
    ) -> std::io::Result<ClientConfig> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", client_id);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.client {
            c.set(k, v);
        }
        for (k, f) in &self.secret_files {
            let v = std::fs::read_to_string(f)?;
            c.set(k, v.trim_end_matches(['\n', '\r']));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_settings_win_over_sidelines_defaults() {
        let mut cfg = KafkaConfig::default();
        cfg.client.insert("linger.ms".into(), "20".into());
        cfg.client
            .insert("security.protocol".into(), "SASL_SSL".into());
        let c = cfg
            .client_config("t", &[("linger.ms", "5"), ("acks", "all")])
            .unwrap();
        assert_eq!(c.get("linger.ms"), Some("20"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
    }

    #[test]
    fn secrets_are_read_from_files() {
        let dir = std::env::temp_dir().join(format!("sideline-kafka-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "hunter2\n").unwrap();
        let mut cfg = KafkaConfig::default();
        cfg.secret_files.insert("sasl.password".into(), f.clone());
        assert!(cfg.problems().is_empty());
        assert_eq!(
            cfg.client_config("t", &[]).unwrap().get("sasl.password"),
            Some("hunter2")
        );
        cfg.secret_files
            .insert("ssl.key.password".into(), dir.join("missing"));
        assert_eq!(cfg.problems().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
