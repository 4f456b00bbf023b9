//! SQL over the archive with DataFusion.
//!
//! Tables (columns in [`crate::schema`]; `team`, `date` and `session` come from the directory
//! names and are on every table):
//!
//! - `samples`: one row per sample;
//! - `metrics`: one row per player per second (`source` = `live` or `reconciled`);
//! - `alerts`: one row per alert lifecycle event;
//! - `sessions` (view): team, session, date, start, end, players — from live metrics;
//! - `players` (view): team, player, sessions, first_seen, last_seen — from live metrics.
//!
//! Results come out as a text table, CSV, JSON lines or a Parquet file.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::backend::{self, BackendError, Options};
use crate::schema::Table;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query is wrong (syntax, unknown column) or could not run.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Formatting the result failed.
    #[error("output: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The archive's object store is unusable.
    #[error("{0}")]
    Storage(#[from] BackendError),
    /// Writing Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// Partition columns, in directory order.
pub const PARTITION_COLS: [&str; 3] = ["team", "date", "session"];

const VIEWS: [&str; 2] = [
    "CREATE VIEW sessions AS SELECT team, session, min(date) AS date, min(t) AS start, \
     max(t) AS \"end\", count(DISTINCT player) AS players FROM metrics WHERE source = 'live' \
     GROUP BY team, session",
    "CREATE VIEW players AS SELECT team, player, count(DISTINCT session) AS sessions, \
     min(t) AS first_seen, max(t) AS last_seen FROM metrics WHERE source = 'live' \
     GROUP BY team, player",
];

/// A DataFusion context with the archive at `root` (a directory or an `s3://` URL) registered.
pub async fn context(root: &Path) -> Result<SessionContext, QueryError> {
    context_with(root, &Options::new()).await
}

/// [`context`] with object-store settings.
pub async fn context_with(root: &Path, opts: &Options) -> Result<SessionContext, QueryError> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    let remote = match backend::remote_url(root) {
        Some(url) => {
            let (store, prefix, bucket) = backend::object_store(url, opts)?;
            let bucket_url = url::Url::parse(&bucket).map_err(|e| BackendError::Url {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
            ctx.register_object_store(&bucket_url, store);
            Some((bucket, prefix))
        }
        None => None,
    };
    for t in Table::ALL {
        let location = match &remote {
            Some((bucket, prefix)) if prefix.as_ref().is_empty() => {
                format!("{bucket}/{}/", t.name())
            }
            Some((bucket, prefix)) => format!("{bucket}/{prefix}/{}/", t.name()),
            None => {
                let dir = root.join(t.name());
                std::fs::create_dir_all(&dir)?;
                format!("{}/", dir.display())
            }
        };
        let schema: Schema = t.schema().as_ref().clone();
        let opts = ParquetReadOptions::default()
            .table_partition_cols(
                PARTITION_COLS
                    .iter()
                    .map(|c| (c.to_string(), DataType::Utf8))
                    .collect(),
            )
            .schema(&schema);
        ctx.register_parquet(t.name(), location, opts).await?;
    }
    for v in VIEWS {
        ctx.sql(v).await?;
    }
    Ok(ctx)
}

/// Run `sql` and collect the result.
pub async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Output::Table),
            "csv" => Ok(Output::Csv),
            "json" => Ok(Output::Json),
            _ => Err(format!("unknown output {s:?} (table, csv or json)")),
        }
    }
}

/// Write `batches` to `w` as `out`.
pub fn write(
    batches: &[RecordBatch],
    out: Output,
    w: &mut dyn std::io::Write,
) -> Result<(), QueryError> {
    match out {
        Output::Table => {
            writeln!(
                w,
                "{}",
                arrow::util::pretty::pretty_format_batches(batches)?
            )?;
        }
        Output::Csv => {
            let mut c = arrow::csv::WriterBuilder::new().with_header(true).build(w);
            for b in batches {
                c.write(b)?;
            }
        }
        Output::Json => {
            let mut j = arrow::json::LineDelimitedWriter::new(w);
            for b in batches {
                j.write(b)?;
            }
            j.finish()?;
        }
    }
    Ok(())
}

/// Write `batches` to a Parquet file at `path`.
pub fn write_parquet(batches: &[RecordBatch], path: &Path) -> Result<(), QueryError> {
    let Some(first) = batches.first() else {
        return Err(QueryError::Io(std::io::Error::other(
            "the query returned no rows (and no schema) to write",
        )));
    };
    let f = std::fs::File::create(path)?;
    let mut w = parquet::arrow::ArrowWriter::try_new(f, first.schema(), None)?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(())
}
