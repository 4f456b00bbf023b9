//! Configuration loading, in order of precedence (highest first):
//!
//! 1. environment variables `SIDELINE__SECTION__KEY` (e.g. `SIDELINE__MQTT__PORT=1884`;
//!    double underscores separate levels, single ones stay part of a key);
//! 2. the file given with `--config` (TOML);
//! 3. the service's embedded defaults (each service documents them in its `default.toml`).
//!
//! Config structs use `#[serde(deny_unknown_fields)]`, so a misspelt key is an error. Every
//! problem — parse errors, unknown keys, wrong types, then the service's own semantic checks —
//! is reported together at start-up, before anything connects anywhere.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// Configuration that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("configuration error(s):\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// The `[http]` section every service has: where its admin (and own) HTTP server listens.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address.
    pub listen: String,
}

/// The `[log]` section every service has.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Format.
    pub format: crate::telemetry::LogFormat,
    /// Default level (RUST_LOG overrides).
    pub level: String,
}

/// Semantic checks beyond what serde can express.
pub trait Validate {
    /// Every problem, as "key: what is wrong".
    fn problems(&self) -> Vec<String>;
}

/// Load `T` from `defaults` (TOML text), then `file`, then `SIDELINE__…` variables.
pub fn load<T: DeserializeOwned + Validate>(
    defaults: &str,
    file: Option<&Path>,
) -> Result<T, ConfigError> {
    let env = Env::prefixed("SIDELINE__").split("__");
    let mut fig = Figment::from(Toml::string(defaults));
    if let Some(f) = file {
        if !f.exists() {
            return Err(ConfigError(vec![format!(
                "config file {} does not exist",
                f.display()
            )]));
        }
        fig = fig.merge(Toml::file(f));
    }
    let fig = fig.merge(env);
    let cfg: T = fig
        .extract()
        .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
    let problems = cfg.problems();
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError(problems))
    }
}

/// Read a secret from `value`, or from the file `file` (trailing newline removed). Secrets
/// (passwords, webhook URLs) may come from either; they are never logged.
pub fn secret(value: Option<&str>, file: Option<&Path>) -> Result<Option<String>, String> {
    match (value, file) {
        (Some(_), Some(_)) => Err("give the secret or its file, not both".into()),
        (Some(v), None) => Ok(Some(v.to_string())),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|e| format!("cannot read {}: {e}", f.display())),
        (None, None) => Ok(None),
    }
}

/// Shortest shared secret (token, signing key) accepted.
pub const MIN_SECRET_CHARS: usize = 16;

/// Refuse a shared secret that is short or still an example placeholder (`replace-with…`,
/// `change-me`, the shipped `secrets.example` values). `what` names it in the message.
pub fn check_strong(what: &str, secret: &str) -> Result<(), String> {
    if secret.trim().chars().count() < MIN_SECRET_CHARS {
        return Err(format!(
            "{what}: must have at least {MIN_SECRET_CHARS} characters"
        ));
    }
    let lower = secret.to_lowercase();
    if lower.starts_with("replace-with") || lower.contains("change-me") {
        return Err(format!("{what}: still the example placeholder"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its (large) error type
mod tests {
    use super::*;
    use figment::Jail;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        mqtt: Mqtt,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Mqtt {
        host: String,
        port: u16,
        max_inflight: u32,
    }

    impl Validate for Cfg {
        fn problems(&self) -> Vec<String> {
            let mut p = Vec::new();
            if self.mqtt.max_inflight == 0 {
                p.push("mqtt.max_inflight: must be at least 1".into());
            }
            p
        }
    }

    const DEFAULTS: &str = "[mqtt]\nhost = \"127.0.0.1\"\nport = 1883\nmax_inflight = 100\n";

    #[test]
    fn a_file_overrides_defaults_and_the_environment_overrides_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[mqtt]\nport = 1884\nmax_inflight = 5\n")?;
            let c: Cfg = load(DEFAULTS, Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(
                (c.mqtt.host.as_str(), c.mqtt.port, c.mqtt.max_inflight),
                ("127.0.0.1", 1884, 5)
            );
            jail.set_env("SIDELINE__MQTT__MAX_INFLIGHT", 7);
            jail.set_env("SIDELINE__MQTT__HOST", "broker.club.local");
            let c: Cfg = load(DEFAULTS, Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(
                (c.mqtt.host.as_str(), c.mqtt.port, c.mqtt.max_inflight),
                ("broker.club.local", 1884, 7)
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_wrong_types_and_semantic_problems_are_all_reported() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[mqtt]\nprot = 1884\n")?;
            let err = load::<Cfg>(DEFAULTS, Some(Path::new("c.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("prot"), "{err}");
            jail.create_file("d.toml", "[mqtt]\nmax_inflight = 0\n")?;
            let err = load::<Cfg>(DEFAULTS, Some(Path::new("d.toml")))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("mqtt.max_inflight: must be at least 1"),
                "{err}"
            );
            jail.set_env("SIDELINE__MQTT__PORT", "not-a-port");
            let err = load::<Cfg>(DEFAULTS, None).unwrap_err().to_string();
            assert!(err.contains("port"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error_not_silently_defaults() {
        let err = load::<Cfg>(DEFAULTS, Some(Path::new("/nonexistent/sideline.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn secrets_come_from_a_value_or_a_file_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(secret(None, Some(&f)).unwrap().as_deref(), Some("s3cret"));
        assert!(secret(Some("x"), Some(&f)).is_err());
        assert_eq!(secret(None, None).unwrap(), None);
    }

    #[test]
    fn short_or_placeholder_secrets_are_refused() {
        assert!(check_strong("x", "").is_err());
        assert!(check_strong("x", "fifteen-chars!!").is_err());
        assert!(check_strong("x", "replace-with-32-random-bytes").is_err());
        assert!(check_strong("x", "please-CHANGE-ME-now-please").is_err());
        assert!(check_strong("x", "0f3a9c1e7b2d4f60a8c3e5b7d9f1a2c4").is_ok());
    }
}
