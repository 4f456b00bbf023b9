//! Who may connect: SCRAM-SHA-256 password authentication (or, on loopback only, none), TLS
//! required when configured, and the server's statement timeout as each connection's default.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password, random_nonce};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, ServerParameterProvider,
    StartupHandler,
};
use pgwire::api::{ClientInfo, ConnectionManager};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

/// SCRAM iterations (RFC 7677's minimum, PostgreSQL's default).
const ITERATIONS: usize = 4096;

/// The connection-metadata key the library reads a statement timeout from, ms.
const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

/// The one account: its name and SCRAM salted password (the clear password is not kept).
#[derive(Clone)]
pub struct Account {
    user: String,
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// `user` with `password`, salted with a random salt.
    pub fn new(user: &str, password: &str) -> Self {
        // 18 random bytes, base64: any bytes serve as a salt.
        let salt = random_nonce().into_bytes();
        Account {
            user: user.to_string(),
            salted: gen_salted_password(password, &salt, ITERATIONS),
            salt,
        }
    }
}

#[derive(Debug)]
struct Source(Account);

#[async_trait]
#[allow(elided_lifetimes_in_paths)]
impl AuthSource for Source {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        if login.user() != Some(self.0.user.as_str()) {
            return Err(PgWireError::InvalidPassword(
                login.user().unwrap_or_default().to_string(),
            ));
        }
        Ok(Password::new(
            Some(self.0.salt.clone()),
            self.0.salted.clone(),
        ))
    }
}

/// No authentication (loopback only; see [`crate::pg`]).
struct Trust(Arc<ConnectionManager>);

impl NoopStartupHandler for Trust {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.0.clone())
    }
}

/// Server parameters: those of the library, and `default_transaction_read_only = on`, so a
/// client that asks knows before it tries to write.
pub struct Params(DefaultServerParameterProvider);

impl ServerParameterProvider for Params {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let mut p = self.0.server_parameters(client)?;
        p.insert("default_transaction_read_only".into(), "on".into());
        p.insert("is_superuser".into(), "off".into());
        Some(p)
    }
}

fn params() -> Params {
    Params(DefaultServerParameterProvider::default())
}

enum Auth {
    Scram(Box<SASLAuthStartupHandler<Params>>),
    Trust(Trust),
}

/// One connection's startup handler (SCRAM keeps per-connection state: make one per
/// connection).
pub struct Startup {
    auth: Auth,
    require_tls: bool,
    statement_timeout_ms: u64,
}

impl Startup {
    /// For a connection: `account` (none = trust), TLS required or not, the default timeout.
    pub fn new(
        account: Option<&Account>,
        connections: Arc<ConnectionManager>,
        require_tls: bool,
        statement_timeout_ms: u64,
    ) -> Self {
        let auth = match account {
            Some(a) => {
                let mut scram = ScramAuth::new(Arc::new(Source(a.clone())));
                scram.set_iterations(ITERATIONS);
                Auth::Scram(Box::new(
                    SASLAuthStartupHandler::new(Arc::new(params()))
                        .with_scram(scram)
                        .with_connection_manager(connections),
                ))
            }
            None => Auth::Trust(Trust(connections)),
        };
        Startup {
            auth,
            require_tls,
            statement_timeout_ms,
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(_) = &message {
            if self.require_tls && !client.is_secure() {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "28000".into(),
                    "this server accepts only TLS connections (connect with sslmode=require)"
                        .into(),
                ))));
            }
            client.metadata_mut().insert(
                STATEMENT_TIMEOUT_KEY.into(),
                self.statement_timeout_ms.to_string(),
            );
        }
        match &self.auth {
            Auth::Scram(h) => h.on_startup(client, message).await,
            Auth::Trust(h) => h.on_startup(client, message).await,
        }
    }
}
