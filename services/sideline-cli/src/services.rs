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
        let mut shown = cfg.clone();
        if shown.mqtt.password.is_some() {
            shown.mqtt.password = Some("(hidden)".into());
        }
        hide_secrets(&mut shown.kafka);
        print!("{}", toml::to_string_pretty(&shown)?);
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
        let mut shown = cfg.clone();
        hide_secrets(&mut shown.kafka);
        print!("{}", toml::to_string_pretty(&shown)?);
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
        let mut shown = cfg.clone();
        hide_secrets(&mut shown.kafka);
        for d in &mut shown.alerter.destinations {
            if d.url.is_some() {
                d.url = Some("(hidden)".into());
            }
        }
        print!("{}", toml::to_string_pretty(&shown)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let (listener, stop) = admin(&cfg.http.listen).await?;
    sideline_alerter::service::run(cfg, listener, stop).await?;
    Ok(())
}

/// `sideline archive`.
#[cfg(feature = "archive")]
pub async fn archive(a: &ServiceArgs) -> Result<()> {
    let cfg: sideline_archive::config::ArchiveConfig =
        load(sideline_archive::config::DEFAULTS, a.config.as_deref())?;
    if a.print_config {
        let mut shown = cfg.clone();
        hide_secrets(&mut shown.kafka);
        print!("{}", toml::to_string_pretty(&shown)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let (listener, stop) = admin(&cfg.http.listen).await?;
    sideline_archive::service::run(cfg, listener, stop).await?;
    Ok(())
}

/// Librdkafka settings that look like secrets are not printed.
fn hide_secrets(kafka: &mut sideline_kafka::KafkaConfig) {
    for (k, v) in kafka.client.iter_mut() {
        if k.contains("password") || k.contains("secret") {
            *v = "(hidden)".into();
        }
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
