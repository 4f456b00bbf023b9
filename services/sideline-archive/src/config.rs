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
    /// Archive alerts and their acknowledgements.
    pub alerts: bool,
    /// Rejoin the group when a partition has records waiting and no committed progress this
    /// long, s (0 = never; see `sideline_kafka::watchdog`).
    pub orphan_grace_s: u64,
    /// `POST /api/sql`.
    #[serde(default)]
    pub sql: SqlApi,
}

/// `POST /api/sql`: read-only queries, bounded, behind a bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlApi {
    /// File holding the bearer token (at least 16 characters) that requests must carry
    /// (`Authorization: Bearer …`). Required when `http.listen` is not a loopback address.
    pub token_file: Option<PathBuf>,
    /// Most rows one result may have.
    pub max_rows: usize,
    /// Longest a query may run, s.
    pub timeout_s: u64,
    /// Memory for one query's sorts, joins and aggregations, MiB.
    pub memory_mb: usize,
}

impl Default for SqlApi {
    fn default() -> Self {
        SqlApi {
            token_file: None,
            max_rows: 100_000,
            timeout_s: 30,
            memory_mb: 512,
        }
    }
}

/// Shortest bearer token accepted.
pub const MIN_TOKEN_CHARS: usize = sideline_common::config::MIN_SECRET_CHARS;

impl SqlApi {
    /// The token from `token_file` (trimmed), if one is configured.
    pub fn token(&self) -> Result<Option<String>, String> {
        let Some(f) = &self.token_file else {
            return Ok(None);
        };
        let t = std::fs::read_to_string(f)
            .map_err(|e| format!("archive.sql.token_file: {}: {e}", f.display()))?;
        let t = t.trim().to_string();
        sideline_common::config::check_strong(
            &format!("archive.sql.token_file: {}", f.display()),
            &t,
        )?;
        Ok(Some(t))
    }

    fn problems(&self, listen: &str) -> Vec<String> {
        let mut p = Vec::new();
        match self.token() {
            Err(e) => p.push(e),
            Ok(None) => {
                if let Ok(addr) = listen.parse::<std::net::SocketAddr>()
                    && !addr.ip().is_loopback()
                {
                    p.push(format!(
                        "archive.sql.token_file: required when http.listen ({listen}) is not a loopback address: POST /api/sql would answer anyone on the network"
                    ));
                }
            }
            Ok(Some(_)) => {}
        }
        if !(1..=10_000_000).contains(&self.max_rows) {
            p.push("archive.sql.max_rows: 1..=10000000".into());
        }
        if !(1..=3600).contains(&self.timeout_s) {
            p.push("archive.sql.timeout_s: 1..=3600".into());
        }
        if !(16..=65_536).contains(&self.memory_mb) {
            p.push("archive.sql.memory_mb: 16..=65536".into());
        }
        p
    }
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
        p.extend(a.sql.problems(&self.http.listen));
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

    #[test]
    fn the_sql_api_needs_a_real_token_beyond_loopback() {
        let c: ArchiveConfig = toml::from_str(DEFAULTS).unwrap();
        let mut open = c.clone();
        open.http.listen = "0.0.0.0:9304".into();
        assert!(
            open.problems()
                .join("\n")
                .contains("archive.sql.token_file: required"),
            "{:?}",
            open.problems()
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        for (token, want) in [
            ("short", Some("at least 16")),
            ("replace-with-a-long-random-token", Some("placeholder")),
            ("3f9c1e7a5b2d4c6e8f0a1b3c", None),
        ] {
            std::fs::write(&f, format!("{token}\n")).unwrap();
            let mut with = open.clone();
            with.archive.sql.token_file = Some(f.clone());
            let p = with.problems().join("\n");
            match want {
                Some(w) => assert!(p.contains(w), "{token}: {p}"),
                None => assert!(p.is_empty(), "{token}: {p}"),
            }
        }
    }
}
