//! `[mqtt]` settings.
//!
//! ```toml
//! [mqtt]
//! host = "127.0.0.1"
//! port = 1883
//! protocol = "v5"            # or "v311"
//! client_id = "sideline-ingest-1"   # stable per instance: the broker keeps its session
//! clean_session = false      # keep the session (and unacknowledged messages) across reconnects
//! session_expiry_s = 3600    # v5: how long the broker keeps the session while we are away
//! keep_alive_s = 30
//! username = "sideline"
//! password_file = "/run/secrets/mqtt-password"   # or password = "…"
//! [mqtt.tls]                 # present = TLS
//! ca_file = "/etc/sideline/mqtt-ca.pem"
//! client_cert_file = "/etc/sideline/ingest.pem"   # optional client authentication
//! client_key_file = "/etc/sideline/ingest.key"
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5 (flow control with Receive Maximum).
    #[default]
    V5,
}

/// TLS to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA certificate(s), PEM. Absent: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate, PEM (with `client_key_file`).
    pub client_cert_file: Option<PathBuf>,
    /// Client private key, PKCS#8 PEM.
    pub client_key_file: Option<PathBuf>,
    /// Accept any server certificate (tests only; logged as a warning).
    pub insecure_skip_verify: bool,
}

/// Connection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Protocol version.
    pub protocol: Protocol,
    /// Client id: the broker keeps the session (subscription and unacknowledged messages)
    /// under it, so it must be stable across restarts and unique per instance. Empty →
    /// `sideline-<role>-<hostname>-<admin port>` ([`MqttConfig::client_id_for`]).
    pub client_id: String,
    /// Start a clean session on connect (loses unacknowledged messages across reconnects).
    pub clean_session: bool,
    /// MQTT 5 session expiry, s.
    pub session_expiry_s: u32,
    /// Keep-alive, s.
    pub keep_alive_s: u64,
    /// Username.
    pub username: Option<String>,
    /// Password (prefer `password_file`).
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// TLS settings; absent → plain TCP.
    pub tls: Option<TlsConfig>,
    /// First reconnect delay, ms (doubles up to the maximum, with jitter).
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, ms.
    pub reconnect_max_ms: u64,
    /// Largest MQTT packet accepted from the broker, bytes. Larger packets break the
    /// connection in the client library, so this is generous; services enforce their own,
    /// smaller payload limit and dead-letter what exceeds it.
    pub max_packet_bytes: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            protocol: Protocol::V5,
            client_id: String::new(),
            clean_session: false,
            session_expiry_s: 3600,
            keep_alive_s: 30,
            username: None,
            password: None,
            password_file: None,
            tls: None,
            reconnect_min_ms: 200,
            reconnect_max_ms: 10_000,
            max_packet_bytes: 16 * 1024 * 1024,
        }
    }
}

impl MqttConfig {
    /// Problems ("mqtt.key: why").
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.host.trim().is_empty() {
            p.push("mqtt.host: must not be empty".into());
        }
        if self.port == 0 {
            p.push("mqtt.port: must not be 0".into());
        }
        if self.keep_alive_s != 0 && self.keep_alive_s < 5 {
            p.push("mqtt.keep_alive_s: 0 (off) or at least 5".into());
        }
        if self.password.is_some() && self.password_file.is_some() {
            p.push("mqtt.password / mqtt.password_file: give one, not both".into());
        }
        if let Some(f) = &self.password_file
            && !f.is_file()
        {
            p.push(format!(
                "mqtt.password_file: {} is not a readable file",
                f.display()
            ));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            p.push("mqtt.reconnect_min_ms: must be > 0 and ≤ reconnect_max_ms".into());
        }
        if let Some(t) = &self.tls {
            for (k, f) in [
                ("ca_file", &t.ca_file),
                ("client_cert_file", &t.client_cert_file),
                ("client_key_file", &t.client_key_file),
            ] {
                if let Some(f) = f
                    && !f.is_file()
                {
                    p.push(format!(
                        "mqtt.tls.{k}: {} is not a readable file",
                        f.display()
                    ));
                }
            }
            if t.client_cert_file.is_some() != t.client_key_file.is_some() {
                p.push("mqtt.tls: client_cert_file and client_key_file go together".into());
            }
        }
        p
    }

    /// The client id of the instance of `role` whose admin server listens on `admin_port`,
    /// when none is configured: `sideline-<role>-<hostname>-<admin port>`. Stable across
    /// restarts on one host (and in a Kubernetes StatefulSet, whose pod names are the
    /// hostnames), and unique per instance (two instances on one host cannot share an admin
    /// port). Not the process id: every container's is 1, and a new one per restart would
    /// strand the old session's queued messages.
    pub fn client_id_for(&self, role: &str, admin_port: u16) -> String {
        if self.client_id.is_empty() {
            format!("sideline-{role}-{}-{admin_port}", hostname())
        } else {
            self.client_id.clone()
        }
    }
}

/// This host's name (Linux: `/proc/sys/kernel/hostname`, else `$HOSTNAME`), with anything but
/// letters, digits, `-`, `_` and `.` replaced by `-`; `localhost` if neither is known.
pub fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    clean_hostname(&raw)
}

fn clean_hostname(raw: &str) -> String {
    let name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_client_id_is_stable_per_host_and_unique_per_admin_port() {
        let cfg = MqttConfig::default();
        let a = cfg.client_id_for("ingest", 9101);
        assert_eq!(a, cfg.client_id_for("ingest", 9101), "stable across calls");
        assert_ne!(a, cfg.client_id_for("ingest", 9102));
        assert!(
            a.starts_with("sideline-ingest-") && a.ends_with("-9101"),
            "{a}"
        );
        assert!(
            !a.contains(&format!("-{}-", std::process::id())),
            "no process id"
        );
        let set = MqttConfig {
            client_id: "pitch-1".into(),
            ..MqttConfig::default()
        };
        assert_eq!(set.client_id_for("ingest", 9101), "pitch-1");
    }

    #[test]
    fn hostnames_are_cleaned() {
        assert_eq!(clean_hostname("ingest-0\n"), "ingest-0");
        assert_eq!(clean_hostname("a b/c"), "a-b-c");
        assert_eq!(clean_hostname("  "), "localhost");
    }
}
