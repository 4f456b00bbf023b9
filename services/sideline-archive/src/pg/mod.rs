//! The archive over the PostgreSQL wire protocol, so analysts' own tools (psql, Python's
//! psycopg and pandas, Grafana's PostgreSQL data source, Excel/Power BI through ODBC) query
//! history without `sideline sql`.
//!
//! Built on `datafusion-postgres` 0.19 (datafusion-contrib), the release on DataFusion 55, the
//! version this project pins, rather than on `pgwire` alone: besides the protocol (which
//! `pgwire` gives either way) it brings a `pg_catalog` and the PostgreSQL functions that
//! clients' metadata queries need (`\dt`, Grafana's table and column lists:
//! `pg_table_is_visible`, `quote_ident`, `current_setting`, `generate_series` over arrays…),
//! which would otherwise be written and kept here. What this module adds around it:
//!
//! - [`startup`]: SCRAM-SHA-256 password authentication for one account (the password read
//!   from a file, only its salted form kept), TLS required when a certificate is configured,
//!   and the server's statement timeout as every connection's default.
//! - [`guard`]: read-only — queries, `EXPLAIN`, `SHOW`, client `SET`s, cursors and
//!   transactions; DDL, DML, `COPY` and `SET datafusion.…` refused with SQLSTATE 25006.
//! - [`serve`]: the accept loop on an already-bound listener, a connection limit (beyond it a
//!   connection is closed at once and counted), stopped by a token.
//!
//! Limits: a query's sorts, joins and aggregations share the context's memory limit (beyond
//! it the query fails); the statement timeout (the client may change it with
//! `SET statement_timeout`) bounds planning and the start of execution, while rows already
//! streaming to the client go on until the client stops reading or cancels (psql's Ctrl-C
//! sends a cancel request, which is honoured).

pub mod guard;
pub mod startup;

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::datafusion_pg_catalog;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers};
use pgwire::error::PgWireError;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

pub use startup::Account;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// A certificate or key file is unreadable or invalid (fatal: fix the files).
    #[error("TLS: {0}")]
    Tls(String),
    /// The query context could not take the PostgreSQL catalog.
    #[error("pg_catalog: {0}")]
    Catalog(String),
    /// Registering the metrics failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The server's counters (`sideline_archive_pg_*`).
#[derive(Debug, Clone)]
pub struct PgMetrics {
    /// Connections by outcome (`accepted`, `over_limit`, `failed`).
    pub connections: IntCounterVec,
    /// Statements refused by the read-only guard, by reason (`statement`, `plan`).
    pub refused: IntCounterVec,
}

impl PgMetrics {
    /// The counters, registered in `r` when given.
    pub fn new(r: Option<&Registry>) -> Result<Self, PgError> {
        let connections = IntCounterVec::new(
            Opts::new(
                "sideline_archive_pg_connections_total",
                "PostgreSQL-protocol connections, by outcome (accepted, over_limit, failed).",
            ),
            &["outcome"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "sideline_archive_pg_refused_total",
                "PostgreSQL-protocol statements refused as not read-only, by reason.",
            ),
            &["reason"],
        )?;
        if let Some(r) = r {
            r.register(Box::new(connections.clone()))?;
            r.register(Box::new(refused.clone()))?;
        }
        Ok(PgMetrics {
            connections,
            refused,
        })
    }
}

/// What the server needs besides the listener.
#[derive(Clone)]
pub struct PgSettings {
    /// The account; `None` accepts anyone (only ever on loopback: [`crate::config`]).
    pub account: Option<Account>,
    /// TLS; when set, connections without TLS are refused.
    pub tls: Option<TlsAcceptor>,
    /// Most connections at once.
    pub max_connections: usize,
    /// Default statement timeout, ms.
    pub statement_timeout_ms: u64,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("account", &self.account)
            .field("tls", &self.tls.is_some())
            .field("max_connections", &self.max_connections)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

/// A TLS acceptor from PEM files (certificate chain; PKCS#8, PKCS#1 or SEC1 key).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, PgError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| PgError::Tls(format!("{}: {e}", p.display())));
    let cert_pem = read(cert)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<CertificateDer<'static>>, _>>()
        .map_err(|e| PgError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(PgError::Tls(format!("{}: no certificate", cert.display())));
    }
    let key_pem = read(key)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| PgError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| PgError::Tls(format!("{}: no private key", key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| PgError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Give `ctx` (an archive context, [`crate::query`]) the PostgreSQL catalog and functions.
pub fn add_catalog(ctx: &SessionContext) -> Result<(), PgError> {
    datafusion_pg_catalog::setup_pg_catalog(ctx, "datafusion", EmptyContextProvider)
        .map_err(|e| PgError::Catalog(e.to_string()))?;
    ctx.register_udf(current_setting());
    Ok(())
}

/// The server's settings as `current_setting(name)` reports them (PostgreSQL's names; an
/// unknown one is null rather than an error). Grafana reads `server_version_num` when a data
/// source is added.
const SETTINGS: [(&str, &str); 10] = [
    ("server_version", "16.6"),
    ("server_version_num", "160006"),
    ("search_path", "public"),
    ("default_transaction_read_only", "on"),
    ("transaction_read_only", "on"),
    ("timezone", "UTC"),
    ("datestyle", "ISO, YMD"),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("max_identifier_length", "63"),
];

fn current_setting() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, ArrayRef, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::common::cast::as_string_array;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let f = |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let names = ColumnarValue::values_to_arrays(args)?;
        let names = as_string_array(&names[0])?;
        let values: StringArray = (0..names.len())
            .map(|i| {
                if names.is_null(i) {
                    return None;
                }
                let n = names.value(i).to_ascii_lowercase();
                SETTINGS.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
            })
            .collect();
        let out: ArrayRef = Arc::new(values);
        if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
    };
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(f),
    )
}

/// One connection's handlers.
struct Handlers {
    session: Arc<DfSessionService>,
    startup: Arc<startup::Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, client: &C, error: &mut PgWireError) {
        tracing::debug!(message = "PostgreSQL-protocol error sent.", peer = %client.socket_addr(), %error);
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.session.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.session.clone()
    }
    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }
    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// Answer PostgreSQL clients on `listener` over `ctx` (see [`add_catalog`]) until `stop`.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SessionContext>,
    settings: PgSettings,
    metrics: PgMetrics,
    stop: CancellationToken,
) {
    let hooks: Vec<Arc<dyn datafusion_postgres::QueryHook>> = vec![
        Arc::new(guard::ReadOnly::new(metrics.refused.clone())),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    let session = Arc::new(DfSessionService::new_with_hooks(ctx, hooks));
    let connections = Arc::new(ConnectionManager::new());
    let cancel = Arc::new(DefaultCancelHandler::new(connections.clone()));
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let tasks = tokio_util::task::TaskTracker::new();
    tracing::info!(
        message = "PostgreSQL-protocol server listening.",
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        tls = settings.tls.is_some(),
        password = settings.account.is_some(),
    );
    loop {
        let (socket, peer) = tokio::select! {
            () = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(message = "PostgreSQL-protocol accept failed.", error = %e);
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.connections.with_label_values(&["over_limit"]).inc();
            tracing::warn!(message = "PostgreSQL-protocol connection refused: too many connections.", %peer, max = settings.max_connections);
            continue;
        };
        metrics.connections.with_label_values(&["accepted"]).inc();
        let handlers = Handlers {
            session: session.clone(),
            startup: Arc::new(startup::Startup::new(
                settings.account.as_ref(),
                connections.clone(),
                settings.tls.is_some(),
                settings.statement_timeout_ms,
            )),
            cancel: cancel.clone(),
        };
        let (tls, failed, stop) = (
            settings.tls.clone(),
            metrics.connections.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                r = pgwire::tokio::process_socket(socket, tls, handlers) => {
                    if let Err(e) = r {
                        failed.with_label_values(&["failed"]).inc();
                        tracing::info!(message = "PostgreSQL-protocol connection failed.", %peer, error = %e);
                    }
                }
            }
            drop(permit);
        });
    }
    tasks.close();
    tasks.wait().await;
}
