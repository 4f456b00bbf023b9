//! Configuration of the alerter (defaults and meaning in `default.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sideline_common::config::{Validate, secret};
use sideline_kafka::KafkaConfig;

use crate::policy::{Route, SendResolved, Timing};
use crate::render::Format;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../default.toml");

/// One destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Name used by routes and metrics.
    pub name: String,
    /// Body format.
    pub format: Format,
    /// Webhook URL (a secret: prefer `url_file` or `url_env`).
    #[serde(default)]
    pub url: Option<String>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// Requests per second (default 1).
    #[serde(default = "one")]
    pub rate_per_s: f64,
    /// Burst (default 3).
    #[serde(default = "three")]
    pub burst: f64,
    /// Which clearings get a message of their own.
    #[serde(default)]
    pub send_resolved: SendResolved,
}

fn one() -> f64 {
    1.0
}
fn three() -> f64 {
    3.0
}

impl DestinationConfig {
    /// The URL, from wherever it is given.
    pub fn resolve_url(&self) -> Result<String, String> {
        let from_env = match &self.url_env {
            Some(v) => {
                Some(std::env::var(v).map_err(|_| format!("environment variable {v} is not set"))?)
            }
            None => None,
        };
        let given = [
            self.url.is_some(),
            self.url_file.is_some(),
            from_env.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err("give exactly one of url, url_file, url_env".into());
        }
        let url = match from_env {
            Some(u) => u,
            None => secret(self.url.as_deref(), self.url_file.as_deref())?.unwrap_or_default(),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("the URL must start with http:// or https://".into());
        }
        Ok(url)
    }
}

/// Alerter behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlerterSettings {
    /// Consumer group.
    pub group_id: String,
    /// Rejoin the group when a partition of the alerts topic has records waiting and no
    /// committed progress this long, s (0 = never; see `sideline_kafka::watchdog`).
    pub orphan_grace_s: u64,
    /// Outbox directory.
    pub outbox_dir: PathBuf,
    /// Public base URL of the HTTP server (for acknowledge links).
    pub public_url: String,
    /// Secret signing acknowledge links.
    #[serde(default, skip_serializing)]
    pub ack_secret: Option<String>,
    /// File holding it.
    #[serde(default)]
    pub ack_secret_file: Option<PathBuf>,
    /// Link lifetime, s.
    pub ack_ttl_s: i64,
    /// Request header naming the person, set by an authenticating proxy in front of the
    /// alerter (e.g. `X-Auth-Request-User` from oauth2-proxy, `Remote-User`); when present
    /// it is who acknowledged, instead of the name typed on the confirmation page. Only set
    /// it if every request reaches the alerter through that proxy (anyone reaching the
    /// port directly can send any header).
    #[serde(default)]
    pub identity_header: Option<String>,
    /// Request timeout, s.
    pub request_timeout_s: u64,
    /// Longest 429 wait, s.
    pub max_retry_after_s: u64,
    /// Backoff base, ms.
    pub backoff_base_ms: u64,
    /// Backoff cap, s.
    pub backoff_max_s: u64,
    /// Give up after, s.
    pub max_age_s: u64,
    /// Grouping, repeat and digest timing.
    pub timing: Timing,
    /// Destinations.
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<Route>,
}

pub use sideline_common::config::{HttpConfig, LogConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlerterConfig {
    /// Kafka.
    pub kafka: KafkaConfig,
    /// Behaviour.
    pub alerter: AlerterSettings,
    /// HTTP.
    pub http: HttpConfig,
    /// Logs.
    pub log: LogConfig,
}

impl Validate for AlerterConfig {
    fn problems(&self) -> Vec<String> {
        let mut p = self.kafka.problems();
        let a = &self.alerter;
        let names: Vec<&str> = a.destinations.iter().map(|d| d.name.as_str()).collect();
        for (i, d) in a.destinations.iter().enumerate() {
            if let Err(e) = d.resolve_url() {
                p.push(format!("alerter.destinations[{i}] ({}): {e}", d.name));
            }
            if names.iter().filter(|n| **n == d.name).count() > 1 {
                p.push(format!(
                    "alerter.destinations[{i}]: name {} used twice",
                    d.name
                ));
            }
            if d.name.is_empty()
                || !d
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                p.push(format!(
                    "alerter.destinations[{i}]: name must be letters, digits, - or _"
                ));
            }
            if !(d.rate_per_s > 0.0 && d.burst >= 1.0) {
                p.push(format!(
                    "alerter.destinations[{i}]: rate_per_s > 0 and burst ≥ 1"
                ));
            }
        }
        for (i, r) in a.routes.iter().enumerate() {
            for d in r.destinations.iter().chain(r.escalate_to.iter()) {
                if !names.contains(&d.as_str()) {
                    p.push(format!("alerter.routes[{i}]: unknown destination {d}"));
                }
            }
        }
        if a.ack_secret.is_some() && a.ack_secret_file.is_some() {
            p.push("alerter: give ack_secret or ack_secret_file, not both".into());
        }
        if let Some(f) = &a.ack_secret_file
            && !f.is_file()
        {
            p.push(format!(
                "alerter.ack_secret_file: {} is not a readable file",
                f.display()
            ));
        } else if a.ack_secret.is_none() || a.ack_secret_file.is_none() {
            // A key anyone can guess lets anyone forge acknowledge links.
            match sideline_common::config::secret(
                a.ack_secret.as_deref(),
                a.ack_secret_file.as_deref(),
            ) {
                Ok(Some(s)) => {
                    if let Err(e) = sideline_common::config::check_strong("alerter.ack_secret", &s)
                    {
                        p.push(e);
                    }
                }
                Ok(None) => {}
                Err(e) => p.push(format!("alerter.ack_secret_file: {e}")),
            }
        }
        if let Some(h) = &a.identity_header
            && (h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            p.push(format!(
                "alerter.identity_header: {h:?} is not a header name"
            ));
        }
        if !(a.public_url.starts_with("http://") || a.public_url.starts_with("https://")) {
            p.push("alerter.public_url: must start with http:// or https://".into());
        }
        if a.ack_ttl_s <= 0 {
            p.push("alerter.ack_ttl_s: must be positive".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_mistakes_are_all_reported() {
        let c: AlerterConfig = toml::from_str(DEFAULTS).unwrap();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let bad = format!(
            "{DEFAULTS}\n[[alerter.destinations]]\nname = \"a\"\nformat = \"slack\"\nurl = \"ftp://x\"\n\
             [[alerter.destinations]]\nname = \"a\"\nformat = \"teams\"\nurl_env = \"SIDELINE_TEST_NOT_SET\"\n\
             [[alerter.routes]]\ndestinations = [\"a\", \"nowhere\"]\n"
        );
        let c: AlerterConfig = toml::from_str(&bad).unwrap();
        let p = c.problems().join("\n");
        for want in [
            "http:// or https://",
            "SIDELINE_TEST_NOT_SET",
            "used twice",
            "unknown destination nowhere",
        ] {
            assert!(p.contains(want), "{want} not in {p}");
        }
        assert!(
            toml::from_str::<AlerterConfig>(&DEFAULTS.replace("group_wait_s", "group_wiat_s"))
                .is_err()
        );
    }

    #[test]
    fn short_empty_or_placeholder_ack_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ack-secret");
        for (secret, ok) in [
            ("", false),
            ("short", false),
            ("replace-with-32-random-bytes", false),
            ("8c1f0e2d4b6a79583c2e1f0a9b8d7c6e", true),
        ] {
            std::fs::write(&f, format!("{secret}\n")).unwrap();
            let mut c: AlerterConfig = toml::from_str(DEFAULTS).unwrap();
            c.alerter.ack_secret_file = Some(f.clone());
            let p = c.problems().join("\n");
            assert_eq!(p.is_empty(), ok, "{secret:?}: {p}");
            let mut c: AlerterConfig = toml::from_str(DEFAULTS).unwrap();
            c.alerter.ack_secret = Some(secret.into());
            assert_eq!(c.problems().is_empty(), ok, "{secret:?} inline");
        }
    }
}
