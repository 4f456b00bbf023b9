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
    /// Client id; empty → `sideline-<role>-<pid>` (set a stable one for persistent sessions).
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

    /// The client id to use for `role` when none is configured.
    pub fn client_id_for(&self, role: &str) -> String {
        if self.client_id.is_empty() {
            format!("sideline-{role}-{}", std::process::id())
        } else {
            self.client_id.clone()
        }
    }
}
