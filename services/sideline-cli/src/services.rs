//! `sideline ingest` (and, as they land, the other services): load configuration, start
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
        for (k, v) in shown.kafka.client.iter_mut() {
            if k.contains("password") || k.contains("secret") {
                *v = "(hidden)".into();
            }
        }
        print!("{}", toml::to_string_pretty(&shown)?);
        return Ok(());
    }
    sideline_common::telemetry::init(cfg.log.format, &cfg.log.level);
    let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
    tracing::info!(message = "Admin HTTP listening.", addr = %cfg.http.listen);
    let stop = sideline_common::shutdown::on_signal();
    sideline_ingest::run(cfg, listener, stop).await?;
    Ok(())
}
