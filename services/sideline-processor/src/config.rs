//! Configuration of the processor (defaults and meaning in `default.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sideline_common::config::Validate;
use sideline_kafka::KafkaConfig;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../default.toml");

/// Processor behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorSettings {
    /// Consumer group.
    pub group_id: String,
    /// Engine parameter file ("" = defaults).
    pub params_file: PathBuf,
    /// Checkpoint interval, s.
    pub checkpoint_interval_s: u64,
    /// Tick interval, ms.
    pub tick_interval_ms: u64,
    /// Idle partitions advance with the wall clock after this long, s.
    pub idle_advance_s: u64,
    /// Time allowed to read a partition's state, s.
    pub restore_timeout_s: u64,
    /// Export per-player gauges.
    pub player_gauges: bool,
    /// A player silent this long has his session closed and his series removed, s.
    pub session_idle_s: u64,
    /// A player silent this long is forgotten (engine dropped, state deleted), s.
    pub forget_after_s: u64,
    /// Rejoin the group when a partition has been owned by no live member this long, s
    /// (0 = never; see `watchdog`).
    pub orphan_grace_s: u64,
}

pub use sideline_common::config::{HttpConfig, LogConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    /// Kafka.
    pub kafka: KafkaConfig,
    /// Behaviour.
    pub processor: ProcessorSettings,
    /// Admin HTTP.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Validate for ProcessorConfig {
    fn problems(&self) -> Vec<String> {
        let mut p = self.kafka.problems();
        let s = &self.processor;
        if s.group_id.trim().is_empty() {
            p.push("processor.group_id: must not be empty".into());
        }
        if !(1..=300).contains(&s.checkpoint_interval_s) {
            p.push("processor.checkpoint_interval_s: 1..=300".into());
        }
        if !(10..=5000).contains(&s.tick_interval_ms) {
            p.push("processor.tick_interval_ms: 10..=5000".into());
        }
        if s.session_idle_s == 0 {
            p.push("processor.session_idle_s: at least 1".into());
        }
        if s.forget_after_s <= s.session_idle_s {
            p.push("processor.forget_after_s: must be longer than session_idle_s".into());
        }
        if s.idle_advance_s == 0 {
            p.push("processor.idle_advance_s: at least 1".into());
        }
        if !s.params_file.as_os_str().is_empty() && !s.params_file.is_file() {
            p.push(format!(
                "processor.params_file: {} is not a readable file",
                s.params_file.display()
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
