//! Configuration of the archiver (defaults and meaning in `default.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sideline_common::config::Validate;
use sideline_kafka::KafkaConfig;

pub use sideline_common::config::{HttpConfig, LogConfig};

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../default.toml");

/// Archiver behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    /// Consumer group.
    pub group_id: String,
    /// Archive root: a directory, or an object-store URL (`s3://bucket/prefix`).
    pub dir: PathBuf,
    /// Object-store settings (`endpoint`, `region`, `allow_http`, …) over the `AWS_*`
    /// environment; unused for a directory.
    #[serde(default)]
    pub object_store: crate::backend::Options,
    /// Commit at least this often, s.
    pub flush_interval_s: u64,
    /// Commit when this many rows are buffered.
    pub max_rows: usize,
    /// Archive samples.
    pub samples: bool,
    /// Archive metrics.
    pub metrics: bool,
    /// Archive alerts.
    pub alerts: bool,
    /// Rejoin the group when a partition has records waiting and no committed progress this
    /// long, s (0 = never; see `sideline_kafka::watchdog`).
    pub orphan_grace_s: u64,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Kafka.
    pub kafka: KafkaConfig,
    /// Behaviour.
    pub archive: ArchiveSettings,
    /// HTTP.
    pub http: HttpConfig,
    /// Logs.
    pub log: LogConfig,
}

impl Validate for ArchiveConfig {
    fn problems(&self) -> Vec<String> {
        let mut p = self.kafka.problems();
        let a = &self.archive;
        if a.group_id.trim().is_empty() {
            p.push("archive.group_id: must not be empty".into());
        }
        if a.dir.as_os_str().is_empty() {
            p.push("archive.dir: must not be empty".into());
        }
        for k in crate::backend::unknown_options(&a.object_store) {
            p.push(format!("archive.object_store.{k}: not an S3 setting"));
        }
        if let Some(url) = crate::backend::remote_url(&a.dir)
            && let Err(e) = crate::backend::object_store(url, &a.object_store)
        {
            p.push(format!("archive.dir: {e}"));
        }
        if !(1..=3600).contains(&a.flush_interval_s) {
            p.push("archive.flush_interval_s: 1..=3600".into());
        }
        if !(1_000..=50_000_000).contains(&a.max_rows) {
            p.push("archive.max_rows: 1000..=50000000".into());
        }
        if !(a.samples || a.metrics || a.alerts) {
            p.push("archive: samples, metrics and alerts are all off: nothing to archive".into());
        }
        if a.orphan_grace_s != 0 && a.orphan_grace_s <= 2 * a.flush_interval_s {
            p.push("archive.orphan_grace_s: 0 (off) or more than 2 × flush_interval_s".into());
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
    fn defaults_load_and_mistakes_are_all_reported() {
        let c: ArchiveConfig = toml::from_str(DEFAULTS).unwrap();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let mut bad = c.clone();
        bad.archive.flush_interval_s = 0;
        bad.archive.max_rows = 1;
        bad.archive.samples = false;
        bad.archive.metrics = false;
        bad.archive.alerts = false;
        bad.archive.dir = "gs://bucket/x".into();
        bad.archive
            .object_store
            .insert("endpoit".into(), "http://x".into());
        let p = bad.problems().join("\n");
        for want in [
            "flush_interval_s",
            "max_rows",
            "nothing to archive",
            "archive.dir: archive URL gs://bucket/x: only s3:// URLs",
            "archive.object_store.endpoit: not an S3 setting",
        ] {
            assert!(p.contains(want), "{want} not in {p}");
        }
        assert!(
            toml::from_str::<ArchiveConfig>(&DEFAULTS.replace("max_rows", "max_rowz")).is_err()
        );
        let mut s3 = c.clone();
        s3.archive.dir = "s3://club/history".into();
        s3.archive
            .object_store
            .insert("endpoint".into(), "http://minio:9000".into());
        s3.archive
            .object_store
            .insert("allow_http".into(), "true".into());
        assert!(s3.problems().is_empty(), "{:?}", s3.problems());
    }
}
