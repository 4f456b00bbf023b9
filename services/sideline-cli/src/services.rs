//! `sideline ingest` and `sideline process` (and, as they land, the other services): load configuration, start
//! logging, bind the admin listener, run until SIGINT/SIGTERM.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sideline_common::config::load;

/// Arguments shared by the services.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Configuration file (TOML); defaults and SIDELINE__SECTION__KEY variables apply.
    #[arg(long, env = "SIDELINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (secrets hidden) and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// `sideline ingest`.
pub async fn ingest(a: &ServiceArgs) -> Result<()> {
    let cfg: sideline_ingest::IngestConfig =
        load(sideline_ingest::config::DEFAULTS, a.config.as_deref())?;
    if a.print_config {
        print!("{}", shown(&cfg)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let (listener, stop) = admin(&cfg.http.listen).await?;
    sideline_ingest::run(cfg, listener, stop).await?;
    Ok(())
}

/// `sideline process`.
pub async fn process(a: &ServiceArgs) -> Result<()> {
    let cfg: sideline_processor::ProcessorConfig =
        load(sideline_processor::config::DEFAULTS, a.config.as_deref())?;
    if a.print_config {
        print!("{}", shown(&cfg)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let (listener, stop) = admin(&cfg.http.listen).await?;
    sideline_processor::run(cfg, listener, stop).await?;
    Ok(())
}

/// `sideline alert`.
pub async fn alert(a: &ServiceArgs) -> Result<()> {
    let cfg: sideline_alerter::config::AlerterConfig =
        load(sideline_alerter::config::DEFAULTS, a.config.as_deref())?;
    if a.print_config {
        print!("{}", shown(&cfg)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let (listener, stop) = admin(&cfg.http.listen).await?;
    sideline_alerter::service::run(cfg, listener, stop).await?;
    Ok(())
}

/// `sideline bench` and its tools.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(subcommand)]
    action: Option<BenchAction>,
}

/// Tools of `sideline bench`.
#[derive(Debug, clap::Subcommand)]
enum BenchAction {
    /// Read a password from standard input (its first line) and print its Argon2id hash, for
    /// the `password` of a `[[staff]]` entry in the staff file.
    HashPassword,
}

/// `sideline bench`.
pub async fn bench(a: &BenchArgs) -> Result<()> {
    if let Some(BenchAction::HashPassword) = a.action {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let hash = sideline_bench::auth::hash_password(line.trim_end_matches(['\n', '\r']))
            .map_err(anyhow::Error::msg)?;
        println!("{hash}");
        return Ok(());
    }
    let cfg: sideline_bench::BenchConfig = load(
        sideline_bench::config::DEFAULTS,
        a.service.config.as_deref(),
    )?;
    if a.service.print_config {
        print!("{}", shown(&cfg)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let (listener, stop) = admin(&cfg.http.listen).await?;
    sideline_bench::run(cfg, listener, stop).await?;
    Ok(())
}

/// `sideline archive`.
#[cfg(feature = "archive")]
pub async fn archive(a: &ServiceArgs) -> Result<()> {
    let cfg: sideline_archive::config::ArchiveConfig =
        load(sideline_archive::config::DEFAULTS, a.config.as_deref())?;
    if a.print_config {
        print!("{}", shown(&cfg)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let (listener, stop) = admin(&cfg.http.listen).await?;
    let pg = match &cfg.archive.sql.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("archive.sql.listen: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    sideline_archive::service::run(cfg, listener, pg, stop).await?;
    Ok(())
}

/// The configuration as TOML for `--print-config`, every secret hidden: any value whose key
/// names a secret (passwords, secrets, tokens, access and private keys, credentials, PEM
/// material, webhook URLs — which carry their secret in the path) at any depth, including
/// the free-form maps (librdkafka's `kafka.client`, `archive.object_store`). Keys naming a
/// file (`…_file`, `….location`) are paths, shown.
fn shown<T: serde::Serialize>(cfg: &T) -> Result<String> {
    let mut v = toml::Value::try_from(cfg)?;
    hide(&mut v, false);
    Ok(toml::to_string_pretty(&v)?)
}

const SECRET_KEYS: [&str; 9] = [
    "password",
    "secret",
    "token",
    "access_key",
    "private",
    "credential",
    "pem",
    "webhook",
    "url",
];

fn is_secret(key: &str) -> bool {
    let k = key.to_lowercase();
    let path = k.ends_with("_file")
        || k.ends_with("_files")
        || k.ends_with("_dir")
        || k.ends_with(".location")
        || k == "public_url";
    !path && SECRET_KEYS.iter().any(|s| k.contains(s))
}

fn hide(v: &mut toml::Value, secret: bool) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                hide(x, secret || is_secret(k));
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(|x| hide(x, secret)),
        toml::Value::String(s) if secret && !s.is_empty() => *s = "(hidden)".into(),
        _ => {}
    }
}

/// Bind the admin listener and arm SIGINT/SIGTERM.
async fn admin(
    listen: &str,
) -> Result<(tokio::net::TcpListener, sideline_common::CancellationToken)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(message = "Admin HTTP listening.", addr = %listen);
    Ok((listener, sideline_common::shutdown::on_signal()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn print_config_hides_every_secret_and_shows_paths() {
        let mut archive: sideline_archive::config::ArchiveConfig =
            load(sideline_archive::config::DEFAULTS, None).unwrap();
        let o = &mut archive.archive.object_store;
        o.insert("access_key_id".into(), "AKIAEXAMPLEKEYID0001".into());
        o.insert(
            "secret_access_key".into(),
            "wJalrXUtnFEMIK7MDENGbPxRfiCY".into(),
        );
        o.insert("session_token".into(), "FwoGZXIvYXdzEJr//////////".into());
        o.insert("endpoint".into(), "http://minio:9000".into());
        archive.archive.sql.token_file = Some("/run/secrets/archive-sql-token".into());
        archive
            .kafka
            .client
            .insert("sasl.password".into(), "kafka-pass-1".into());
        archive
            .kafka
            .client
            .insert("ssl.key.pem".into(), "-----BEGIN PRIVATE KEY-----".into());
        archive
            .kafka
            .client
            .insert("ssl.key.location".into(), "/etc/kafka/key.pem".into());
        let out = shown(&archive).unwrap();
        for secret in [
            "AKIAEXAMPLEKEYID0001",
            "wJalrXUtnFEMIK7MDENGbPxRfiCY",
            "FwoGZXIvYXdzEJr",
            "kafka-pass-1",
            "BEGIN PRIVATE KEY",
        ] {
            assert!(!out.contains(secret), "{secret} printed:\n{out}");
        }
        for shown_as_is in [
            "http://minio:9000",
            "/run/secrets/archive-sql-token",
            "/etc/kafka/key.pem",
        ] {
            assert!(out.contains(shown_as_is), "{shown_as_is} hidden:\n{out}");
        }

        let mut ingest: sideline_ingest::IngestConfig =
            load(sideline_ingest::config::DEFAULTS, None).unwrap();
        ingest.mqtt.password = Some("mqtt-pass-1".into());
        assert!(!shown(&ingest).unwrap().contains("mqtt-pass-1"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("alert.toml");
        std::fs::write(
            &f,
            "[alerter]\nack_secret = \"ack-secret-0123456789abcdef\"\n\
             [[alerter.destinations]]\nname = \"bench\"\nformat = \"slack\"\n\
             url = \"https://hooks.slack.com/services/T0/B0/abcdefSECRET\"\n",
        )
        .unwrap();
        let alert: sideline_alerter::config::AlerterConfig =
            load(sideline_alerter::config::DEFAULTS, Some(&f)).unwrap();
        assert_eq!(alert.alerter.destinations.len(), 1);
        let out = shown(&alert).unwrap();
        for secret in ["abcdefSECRET", "ack-secret-0123456789abcdef"] {
            assert!(!out.contains(secret), "{secret} printed:\n{out}");
        }
        assert!(out.contains("public_url"), "{out}");
    }
}
