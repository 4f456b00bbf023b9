//! `POST /api/sql`: SQL over the archive for tools that cannot run `sideline sql`.
//!
//! Read-only and bounded, because whoever reaches the port otherwise reaches the host:
//! DataFusion by default runs `CREATE EXTERNAL TABLE … LOCATION '<any file>'` (reads any file
//! the service can), `COPY … TO '<file>'` and `CREATE TABLE … AS` (write files, e.g. into the
//! archive and so into the baselines behind the risk score).
//!
//! - **Authenticated**: with `archive.sql.token_file` set, a request must carry
//!   `Authorization: Bearer <token>` (401 otherwise); without one the service refuses to start
//!   on a non-loopback `http.listen` ([`crate::config::SqlApi`]).
//! - **Not reachable from a web page**: the body must be JSON (`Content-Type:
//!   application/json`, `{"query": "…"}`; 415 otherwise). A browser sends that cross-site only
//!   after a CORS preflight, which this server never grants, so a page the analyst happens to
//!   open cannot post a query with a simple `text/plain` form.
//! - **Read-only**: only queries (`SELECT`, `WITH`, `EXPLAIN`, `SHOW`, `DESCRIBE`); anything
//!   else is 403 before it runs ([`query::run_read_only`]).
//! - **Bounded**: `max_rows` (422 beyond), `timeout_s` (503, and the query is cancelled),
//!   `memory_mb` for sorts, joins and aggregations (a query needing more fails with 400).
//!   Queries run one at a time (another meanwhile gets 429) on their own one-thread runtime,
//!   so a heavy one never starves the archiver's Kafka loop or its health probes. Cancelling
//!   takes effect where DataFusion yields (between batches of a scan, at least); an operator
//!   that computes for long without yielding (a huge cross join) goes on until its batch is
//!   done, holding the one query slot.
//!
//! Every request is counted by outcome (`sideline_archive_sql_requests_total`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::backend::Options;
use crate::config::SqlApi;
use crate::metrics::ArchiveMetrics;
use crate::query::{self, Output, QueryError};

/// What the handler needs.
#[derive(Debug)]
pub struct SqlState {
    /// Archive root.
    pub root: std::path::PathBuf,
    /// Object-store settings.
    pub opts: Options,
    /// The bearer token requests must carry, if any.
    pub token: Option<String>,
    /// Limits.
    pub limits: SqlApi,
    /// Where requests are counted.
    pub metrics: ArchiveMetrics,
    /// Where queries run ([`QueryRuntime`]).
    pub runtime: QueryRuntime,
}

/// A one-thread runtime for queries, on its own OS thread, and the one query slot. Stops (and
/// its thread ends) when `stop` is cancelled.
#[derive(Debug, Clone)]
pub struct QueryRuntime {
    handle: tokio::runtime::Handle,
    slot: Arc<tokio::sync::Semaphore>,
}

impl QueryRuntime {
    /// Start the runtime's thread.
    pub fn start(stop: tokio_util::sync::CancellationToken) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sideline-sql")
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("sideline-sql-runtime".into())
            .spawn(move || rt.block_on(stop.cancelled()))?;
        Ok(QueryRuntime {
            handle,
            slot: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// Run `f` on the query runtime (the PostgreSQL-protocol server runs here, beside
    /// `POST /api/sql`, away from the archiver's Kafka loop).
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f)
    }
}

#[derive(serde::Deserialize)]
struct Params {
    format: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    query: String,
}

/// The router serving `POST /api/sql` (`?format=json|csv|table`, default JSON lines).
pub fn router(state: SqlState) -> Router {
    Router::new()
        .route("/api/sql", post(sql))
        .with_state(Arc::new(state))
}

/// Compare without stopping at the first difference (the time taken says nothing about how
/// much of a guess was right).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(s: &SqlState, outcome: &str, code: StatusCode, why: String) -> Response {
    s.metrics.sql_requests.with_label_values(&[outcome]).inc();
    tracing::info!(message = "SQL request refused.", outcome, %why);
    (code, why).into_response()
}

async fn sql(
    State(s): State<Arc<SqlState>>,
    Query(p): Query<Params>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(token) = &s.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.trim().as_bytes(), token.as_bytes()) {
            let mut r = refuse(
                &s,
                "unauthorized",
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer …)".into(),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return refuse(
            &s,
            "unsupported_media_type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the query as JSON: Content-Type: application/json, {\"query\": \"SELECT …\"}"
                .into(),
        );
    }
    let q: Body = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => {
            return refuse(
                &s,
                "bad_request",
                StatusCode::BAD_REQUEST,
                format!("body: {e} (want {{\"query\": \"SELECT …\"}})"),
            );
        }
    };
    let out: Output = match p.format.as_deref().unwrap_or("json").parse() {
        Ok(o) => o,
        Err(e) => return refuse(&s, "bad_request", StatusCode::BAD_REQUEST, e),
    };
    let Ok(permit) = Arc::clone(&s.runtime.slot).try_acquire_owned() else {
        return refuse(
            &s,
            "busy",
            StatusCode::TOO_MANY_REQUESTS,
            "another query is running; try again when it is done".into(),
        );
    };
    let (root, opts, limits) = (s.root.clone(), s.opts.clone(), s.limits.clone());
    let task = s.runtime.handle.spawn(async move {
        let _permit = permit; // the slot is free once the query is really over
        let ctx = query::context_limited(
            &root,
            &opts,
            Some(limits.memory_mb.saturating_mul(1024 * 1024)),
        )
        .await?;
        let batches = query::run_read_only(&ctx, &q.query, limits.max_rows).await?;
        let mut buf = Vec::new();
        query::write(&batches, out, &mut buf)?;
        Ok::<_, QueryError>(buf)
    });
    let abort = task.abort_handle();
    let limit = Duration::from_secs(s.limits.timeout_s);
    let result = match tokio::time::timeout(limit, task).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(join)) => Ok(Err(QueryError::Io(std::io::Error::other(format!(
            "the query stopped: {join}"
        ))))),
        Err(elapsed) => {
            abort.abort();
            Err(elapsed)
        }
    };
    match result {
        Ok(Ok(buf)) => {
            s.metrics.sql_requests.with_label_values(&["ok"]).inc();
            let ct = match out {
                Output::Csv => "text/csv",
                Output::Json => "application/x-ndjson",
                Output::Table => "text/plain; charset=utf-8",
            };
            ([(header::CONTENT_TYPE, ct)], buf).into_response()
        }
        Ok(Err(e @ QueryError::Forbidden(_))) => {
            refuse(&s, "forbidden", StatusCode::FORBIDDEN, e.to_string())
        }
        Ok(Err(e @ QueryError::TooManyRows(_))) => refuse(
            &s,
            "too_many_rows",
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        ),
        Ok(Err(e)) => refuse(&s, "bad_request", StatusCode::BAD_REQUEST, e.to_string()),
        Err(_) => refuse(
            &s,
            "timeout",
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the query ran longer than {limit:?} and was stopped"),
        ),
    }
}

#[cfg(test)]
#[path = "sql_api_tests.rs"]
mod tests;
