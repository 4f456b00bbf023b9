//! SQL over the archive with DataFusion.
//!
//! Tables (columns in [`crate::schema`]; `team`, `date` and `session` come from the directory
//! names and are on every table):
//!
//! - `samples`: one row per sample;
//! - `metrics`: one row per player per second (`source` = `live` or `reconciled`);
//! - `alerts`: one row per alert lifecycle event;
//! - `acks`: one row per acknowledgement (alert_id, player, kind, severity, by, at, since);
//! - `sessions` (view): team, session, date, start, end, players — from live metrics;
//! - `players` (view): team, player, sessions, first_seen, last_seen — from live metrics.
//!
//! Results come out as a text table, CSV, JSON lines or a Parquet file.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;

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
    /// A statement that is not a query (DDL, DML, COPY, SET) where only queries are allowed.
    #[error("only SELECT, WITH, EXPLAIN and SHOW are allowed here: {0}")]
    Forbidden(String),
    /// The result has more rows than allowed.
    #[error("the result has more than {0} rows: narrow the query or add a LIMIT")]
    TooManyRows(usize),
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
    context_limited(root, opts, None).await
}

/// [`context_with`], its queries given at most `memory_bytes` for sorts, joins and
/// aggregations (beyond it they spill or fail with a resources error) when set.
pub async fn context_limited(
    root: &Path,
    opts: &Options,
    memory_bytes: Option<usize>,
) -> Result<SessionContext, QueryError> {
    let config = SessionConfig::new().with_information_schema(true);
    let ctx = match memory_bytes {
        Some(bytes) => SessionContext::new_with_config_rt(
            config,
            RuntimeEnvBuilder::new()
                .with_memory_limit(bytes, 1.0)
                .build_arc()?,
        ),
        None => SessionContext::new_with_config(config),
    };
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

/// Run `sql` only if it is a query — no DDL (`CREATE EXTERNAL TABLE` would read any file of the
/// host), no DML or `COPY … TO` (would write files), no `SET` — checked on the planned
/// statement, subqueries and `EXPLAIN ANALYZE` included, before anything runs; and collect at
/// most `max_rows` rows.
pub async fn run_read_only(
    ctx: &SessionContext,
    sql: &str,
    max_rows: usize,
) -> Result<Vec<RecordBatch>, QueryError> {
    let plan = ctx.state().create_logical_plan(sql).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| QueryError::Forbidden(e.strip_backtrace()))?;
    let mut stream = ctx
        .execute_logical_plan(plan)
        .await?
        .execute_stream()
        .await?;
    let (mut out, mut rows) = (Vec::new(), 0usize);
    while let Some(b) = stream.next().await {
        let b = b?;
        rows += b.num_rows();
        if rows > max_rows {
            return Err(QueryError::TooManyRows(max_rows));
        }
        out.push(b);
    }
    Ok(out)
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
