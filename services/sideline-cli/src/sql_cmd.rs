//! `sideline sql "<query>"`: DataFusion over the archive (tables in `sideline-archive`'s
//! `query` module: samples, metrics, alerts, sessions, players).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sideline_archive::pg;
use sideline_archive::query::{self, Output};

/// Arguments of `sideline sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT player, max(hsr_m) FROM metrics GROUP BY player" (not with
    /// `--serve`).
    #[arg(required_unless_present = "serve", conflicts_with = "serve")]
    pub query: Option<String>,
    /// Instead of running one query, answer PostgreSQL clients (psql, psycopg, Grafana) on
    /// this address, read-only, until interrupted, e.g. 127.0.0.1:5433. Beyond loopback
    /// `--password-file` and `--tls-cert`/`--tls-key` are required.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// With `--serve`: the account's user name.
    #[arg(long, default_value = "sideline", requires = "serve")]
    pub user: String,
    /// With `--serve`: a file holding the account's password (at least 16 characters).
    #[arg(long, requires = "serve")]
    pub password_file: Option<PathBuf>,
    /// With `--serve`: PEM certificate chain; clients must then connect with TLS.
    #[arg(long, requires_all = ["serve", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// With `--serve`: PEM private key of `--tls-cert`.
    #[arg(long, requires_all = ["serve", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
    /// The archive (as `archive.dir` of `sideline archive`): a directory or `s3://bucket/prefix`
    /// (S3 settings from `AWS_*` variables).
    #[arg(long, env = "SIDELINE_ARCHIVE", default_value = "sideline-archive")]
    pub archive: PathBuf,
    /// Output: table, csv or json (one object per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Write the result to this Parquet file instead of printing it.
    #[arg(long)]
    pub parquet: Option<PathBuf>,
}

/// `sideline sql`.
pub async fn run(a: &SqlArgs) -> Result<()> {
    let out: Output = a.format.parse().map_err(anyhow::Error::msg)?;
    if !crate::input::is_object_store(&a.archive) && !a.archive.is_dir() {
        anyhow::bail!(
            "{} is not an archive directory (run `sideline archive`, or give --archive)",
            a.archive.display()
        );
    }
    let Some(sql) = &a.query else {
        return serve(a).await;
    };
    let ctx = query::context(&a.archive).await?;
    let batches = query::run(&ctx, sql).await?;
    match &a.parquet {
        Some(p) => {
            query::write_parquet(&batches, p)
                .with_context(|| format!("writing {}", p.display()))?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            eprintln!("{rows} rows written to {}", p.display());
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            query::write(&batches, out, &mut w)?;
        }
    }
    Ok(())
}

/// `sideline sql --serve ADDR`: the PostgreSQL-protocol server over the archive, with the
/// service's limits ([`sideline_archive::config::SqlApi`] defaults) and checks.
async fn serve(a: &SqlArgs) -> Result<()> {
    sideline_common::telemetry::init(sideline_common::telemetry::LogFormat::Text, "info");
    let defaults = sideline_archive::config::SqlApi::default();
    let limits = sideline_archive::config::SqlApi {
        listen: a.serve.clone(),
        user: a.user.clone(),
        password_file: a.password_file.clone(),
        tls_cert_file: a.tls_cert.clone(),
        tls_key_file: a.tls_key.clone(),
        ..defaults
    };
    let problems = limits.pg_problems();
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    let settings = limits
        .pg_settings()
        .map_err(anyhow::Error::msg)?
        .context("--serve is required")?;
    let addr = a.serve.as_deref().unwrap_or_default();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let ctx = query::context_limited(
        &a.archive,
        &sideline_archive::backend::Options::new(),
        Some(limits.memory_mb.saturating_mul(1024 * 1024)),
    )
    .await?;
    pg::add_catalog(&ctx)?;
    eprintln!(
        "serving {} over the PostgreSQL protocol on {} (read-only; user {}{}); Ctrl-C stops",
        a.archive.display(),
        listener.local_addr()?,
        a.user,
        if settings.tls.is_some() { ", TLS" } else { "" },
    );
    let stop = sideline_common::shutdown::on_signal();
    pg::serve(
        listener,
        std::sync::Arc::new(ctx),
        settings,
        pg::PgMetrics::new(None)?,
        stop,
    )
    .await;
    Ok(())
}
