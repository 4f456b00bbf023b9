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
    /// Commit when the buffered rows take this much memory, MiB (estimated per table).
    pub max_buffer_mb: usize,
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
    /// Address for the PostgreSQL-protocol server (`psql`, psycopg, Grafana; [`crate::pg`]);
    /// none = not served. Beyond loopback it needs `password_file` and TLS.
    pub listen: Option<String>,
    /// The PostgreSQL account's user name.
    pub user: String,
    /// File holding the PostgreSQL account's password (at least 16 characters). Without
    /// one, anyone who reaches a loopback `listen` may connect.
    pub password_file: Option<PathBuf>,
    /// PEM certificate chain for TLS on `listen` (with `tls_key_file`); with TLS configured,
    /// connections without it are refused.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Most PostgreSQL-protocol connections at once (one more is closed at once).
    pub max_connections: usize,
}

impl Default for SqlApi {
    fn default() -> Self {
        SqlApi {
            token_file: None,
            max_rows: 100_000,
            timeout_s: 30,
            memory_mb: 512,
            listen: None,
            user: "sideline".into(),
            password_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            max_connections: 16,
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

    /// The PostgreSQL account from `user` and `password_file`, if a password is configured.
    pub fn account(&self) -> Result<Option<crate::pg::Account>, String> {
        let Some(f) = &self.password_file else {
            return Ok(None);
        };
        let what = format!("archive.sql.password_file: {}", f.display());
        let pw = std::fs::read_to_string(f).map_err(|e| format!("{what}: {e}"))?;
        let pw = pw.trim_end_matches(['\r', '\n']);
        sideline_common::config::check_strong(&what, pw)?;
        Ok(Some(crate::pg::Account::new(&self.user, pw)))
    }

    /// The PostgreSQL server's TLS, if configured.
    pub fn tls(&self) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => Ok(None),
            (Some(c), Some(k)) => crate::pg::tls_acceptor(c, k)
                .map(Some)
                .map_err(|e| format!("archive.sql.tls_cert_file/tls_key_file: {e}")),
            _ => Err("archive.sql.tls_cert_file and tls_key_file: give both or neither".into()),
        }
    }

    /// The PostgreSQL server's settings (`None` without `listen`).
    pub fn pg_settings(&self) -> Result<Option<crate::pg::PgSettings>, String> {
        if self.listen.is_none() {
            return Ok(None);
        }
        Ok(Some(crate::pg::PgSettings {
            account: self.account()?,
            tls: self.tls()?,
            max_connections: self.max_connections,
            statement_timeout_ms: self.timeout_s.saturating_mul(1000),
        }))
    }

    /// What is wrong with the PostgreSQL-protocol settings.
    pub fn pg_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let account = self.account();
        let tls = self.tls();
        for e in [account.as_ref().err(), tls.as_ref().err()]
            .into_iter()
            .flatten()
        {
            p.push(e.clone());
        }
        if self.user.trim().is_empty() {
            p.push("archive.sql.user: must not be empty".into());
        }
        if !(1..=1000).contains(&self.max_connections) {
            p.push("archive.sql.max_connections: 1..=1000".into());
        }
        let Some(listen) = &self.listen else {
            return p;
        };
        match listen.parse::<std::net::SocketAddr>() {
            Err(e) => p.push(format!("archive.sql.listen: {listen}: {e}")),
            Ok(addr) if !addr.ip().is_loopback() => {
                if matches!(account, Ok(None)) {
                    p.push(format!(
                        "archive.sql.password_file: required when archive.sql.listen ({listen}) is not a loopback address"
                    ));
                }
                if matches!(tls, Ok(None)) {
                    p.push(format!(
                        "archive.sql.tls_cert_file and tls_key_file: required when archive.sql.listen ({listen}) is not a loopback address (the password and the data would cross the network in clear)"
                    ));
                }
            }
            Ok(_) => {}
        }
        p
    }

    fn problems(&self, listen: &str) -> Vec<String> {
        let mut p = self.pg_problems();
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
        if !(8..=16_384).contains(&a.max_buffer_mb) {
            p.push("archive.max_buffer_mb: 8..=16384".into());
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
        bad.archive.max_buffer_mb = 0;
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
            "max_buffer_mb",
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
    fn the_postgresql_server_needs_a_password_and_tls_beyond_loopback() {
        let c: ArchiveConfig = toml::from_str(DEFAULTS).unwrap();
        assert_eq!(c.archive.sql.listen, None);
        assert!(c.archive.sql.pg_settings().unwrap().is_none());
        let mut local = c.clone();
        local.archive.sql.listen = Some("127.0.0.1:5433".into());
        assert!(local.problems().is_empty(), "{:?}", local.problems());
        let s = local.archive.sql.pg_settings().unwrap().unwrap();
        assert!(s.account.is_none() && s.tls.is_none());

        let mut open = c.clone();
        open.archive.sql.listen = Some("0.0.0.0:5433".into());
        let p = open.problems().join("\n");
        assert!(p.contains("archive.sql.password_file: required"), "{p}");
        assert!(p.contains("tls_key_file: required"), "{p}");

        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "short\n").unwrap();
        open.archive.sql.password_file = Some(pw.clone());
        open.archive.sql.tls_cert_file = Some(dir.path().join("missing.crt"));
        let p = open.problems().join("\n");
        assert!(p.contains("at least 16"), "{p}");
        assert!(p.contains("give both or neither"), "{p}");
        open.archive.sql.tls_key_file = Some(dir.path().join("missing.key"));
        let p = open.problems().join("\n");
        assert!(p.contains("missing.crt"), "{p}");
        std::fs::write(&pw, "a-long-enough-password\n").unwrap();
        open.archive.sql.listen = Some("nonsense".into());
        let p = open.problems().join("\n");
        assert!(p.contains("archive.sql.listen: nonsense"), "{p}");
        assert!(!p.contains("at least 16"), "{p}");
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
