//! Configuration of `sideline bench` (defaults and meaning in `default.toml`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sideline_common::config::{HttpConfig, LogConfig, Validate};
use sideline_kafka::KafkaConfig;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../default.toml");

/// The bench's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchSettings {
    /// Page title.
    pub title: String,
    /// The club's IANA time zone.
    pub time_zone: String,
    /// `light` or `dark`.
    pub theme: String,
    /// Hours of metrics and alerts read at start.
    pub history_h: u32,
    /// Staff file (Basic sign-in).
    #[serde(default)]
    pub staff_file: Option<PathBuf>,
    /// Header naming the person, set by an authenticating proxy.
    #[serde(default)]
    pub identity_header: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchConfig {
    /// Kafka.
    pub kafka: KafkaConfig,
    /// The bench.
    pub bench: BenchSettings,
    /// HTTP.
    pub http: HttpConfig,
    /// Logs.
    pub log: LogConfig,
}

impl Validate for BenchConfig {
    fn problems(&self) -> Vec<String> {
        let mut p = self.kafka.problems();
        let b = &self.bench;
        if b.time_zone.parse::<chrono_tz::Tz>().is_err() {
            p.push(format!(
                "bench.time_zone: {:?} is not an IANA time zone (e.g. Europe/London)",
                b.time_zone
            ));
        }
        if !["light", "dark"].contains(&b.theme.as_str()) {
            p.push("bench.theme: light or dark".into());
        }
        if !(1..=168).contains(&b.history_h) {
            p.push("bench.history_h: 1..=168".into());
        }
        if b.staff_file.is_some() && b.identity_header.is_some() {
            p.push("bench: give staff_file or identity_header, not both".into());
        }
        if let Some(f) = &b.staff_file
            && !f.is_file()
        {
            p.push(format!(
                "bench.staff_file: {} is not a readable file",
                f.display()
            ));
        }
        match self.http.listen.parse::<SocketAddr>() {
            Err(_) => p.push("http.listen: must be ip:port".into()),
            Ok(a)
                if !a.ip().is_loopback()
                    && b.staff_file.is_none()
                    && b.identity_header.is_none() =>
            {
                p.push(format!(
                    "http.listen: {a} is reachable from other machines, and the page shows players' health data: set bench.staff_file or bench.identity_header, or listen on 127.0.0.1"
                ));
            }
            Ok(_) => {}
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Result<BenchConfig, sideline_common::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.toml");
        std::fs::write(&f, extra).unwrap();
        sideline_common::config::load(DEFAULTS, Some(&f))
    }

    #[test]
    fn the_defaults_load_and_open_listening_needs_sign_in() {
        let c = load("").unwrap();
        assert_eq!(c.bench.theme, "light");
        let e = load("[http]\nlisten = \"0.0.0.0:9305\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("staff_file or bench.identity_header"), "{e}");
        let c =
            load("[http]\nlisten = \"0.0.0.0:9305\"\n[bench]\nidentity_header = \"Remote-User\"\n")
                .unwrap();
        assert_eq!(
            c.bench.time_zone, "UTC",
            "the other keys keep their defaults"
        );
        let e = load("[bench]\ntime_zone = \"Mars/Olympus\"\ntitle = \"x\"\ntheme = \"dim\"\nhistory_h = 0\n")
            .unwrap_err()
            .to_string();
        for want in ["bench.time_zone", "bench.theme", "bench.history_h"] {
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
