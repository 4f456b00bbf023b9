//! `sideline sql "<query>"`: DataFusion over the archive (tables in `sideline-archive`'s
//! `query` module: samples, metrics, alerts, sessions, players).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sideline_archive::query::{self, Output};

/// Arguments of `sideline sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT player, max(hsr_m) FROM metrics GROUP BY player".
    pub query: String,
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
    let ctx = query::context(&a.archive).await?;
    let batches = query::run(&ctx, &a.query).await?;
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
