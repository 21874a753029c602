//! `shoplake serve --pg`: the lake over the PostgreSQL wire protocol, for BI tools, notebooks
//! and `psql`.
//!
//! datafusion-postgres supplies the protocol plumbing (pgwire), the emulated `pg_catalog`,
//! and the `SET`/`SHOW`/transaction/cursor hooks. shoplake owns what it lacks:
//!
//! - logging in (`startup`): SCRAM-SHA-256 against the users file's verifiers, or anyone as
//!   a local engineer on loopback with no users file;
//! - roles per table (`session`): a connection's session registers only the tables its
//!   role sees, so queries and the catalog (`\dt`, `information_schema`) agree, and
//!   `has_table_privilege()` and its kin (`privileges`) answer for the role;
//! - reads only ([`policy`]): every statement classified before planning, every plan checked;
//! - limits (`handler`): a statement timeout a client may lower but not lift, a row limit
//!   on results, a memory pool per connection, a maximum number of connections;
//! - cancel requests (`cancel`): psql's Ctrl-C ends the statement running, as the timeout does;
//! - a new lake version seen by the next statement, and `version()` in PostgreSQL's form;
//! - TLS when a certificate and key are given (`crate::tls`): off loopback, TLS only.
//!
//! Every connection is a task of its own: a client that stops reading, or sends a malformed
//! message, holds up or closes only its own connection.

mod cancel;
mod handler;
pub mod policy;
mod privileges;
mod session;
mod startup;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use datafusion_postgres::pgwire;
use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::error::PgWireResult;
use shoplake_lake::Lake;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

pub use session::VERSION;
pub use startup::SERVER_VERSION;

use crate::users::{Role, Users};
use handler::{Extended, Parser, Queries, user_error};
use policy::error;

/// The limits every connection runs under.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more are refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// The longest a statement may run (a client may `SET statement_timeout` lower).
    pub statement_timeout: Duration,
    /// The most rows a result may send; a larger one ends with SQLSTATE 54000.
    pub max_rows: u64,
    /// The engine memory a connection may use before it spills or fails (bytes).
    pub memory_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            statement_timeout: Duration::from_secs(300),
            max_rows: 1_000_000,
            memory_per_connection: 2 << 30,
        }
    }
}

/// What the PostgreSQL endpoint was asked for.
#[derive(Clone)]
pub struct PgOptions {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The users file's users; `None` accepts anyone on loopback as a local engineer.
    pub users: Option<Arc<Users>>,
    /// The limits.
    pub limits: Limits,
    /// TLS, when a certificate and key are configured: clients may ask for it
    /// (`sslmode=require`), and clients off loopback must.
    pub tls: Option<crate::tls::TlsAcceptor>,
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Listening anywhere but loopback without a users file.
    #[error(
        "{0} is not a loopback address: give a users file (--users FILE, or [serve] users in shoplake.toml; `shoplake users add` writes one) so that only its users read the lake"
    )]
    Unprotected(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Binds `options.listen` (port 0 picks one); refuses a non-loopback address without users.
pub async fn bind(options: &PgOptions) -> Result<(tokio::net::TcpListener, SocketAddr), PgError> {
    if !options.listen.ip().is_loopback() && options.users.is_none() {
        return Err(PgError::Unprotected(options.listen));
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| PgError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| PgError::Bind {
        addr: options.listen,
        source,
    })?;
    Ok((listener, addr))
}

/// What a connection's handlers share: its role (set at login) and its session (made at
/// the first statement).
pub(crate) struct ConnectionState {
    lake: Lake,
    memory_limit: usize,
    role: OnceLock<Role>,
    session: OnceLock<Arc<session::Session>>,
    /// Cancel requests for the statement running.
    cancel: Arc<cancel::Cancel>,
    /// The process id given at login (the key of cancel requests).
    pid: OnceLock<i32>,
}

impl ConnectionState {
    fn set_role(&self, role: Role) {
        let _ = self.role.set(role);
    }

    fn session(&self) -> PgWireResult<Arc<session::Session>> {
        if let Some(session) = self.session.get() {
            return Ok(session.clone());
        }
        let Some(role) = self.role.get() else {
            return Err(user_error(error("28000", "not logged in")));
        };
        let made = session::Session::new(&self.lake, role.clone(), self.memory_limit)
            .map_err(|e| user_error(error("58030", e)))?;
        Ok(self.session.get_or_init(|| Arc::new(made)).clone())
    }
}

/// One connection's handlers.
struct Connection {
    state: Arc<ConnectionState>,
    login: Arc<startup::Login>,
    queries: Arc<Queries>,
    extended: Arc<Extended>,
    cancels: Arc<cancel::Cancels>,
}

impl Connection {
    fn new(lake: &Lake, options: &PgOptions, cancels: &Arc<cancel::Cancels>) -> Connection {
        let state = Arc::new(ConnectionState {
            lake: lake.clone(),
            memory_limit: options.limits.memory_per_connection,
            role: OnceLock::new(),
            session: OnceLock::new(),
            cancel: Arc::default(),
            pid: OnceLock::new(),
        });
        let queries = Arc::new(Queries::new(state.clone(), options.limits.clone()));
        Connection {
            login: Arc::new(startup::Login::new(
                options.users.clone(),
                options.tls.is_some(),
                state.clone(),
                cancels.clone(),
            )),
            extended: Arc::new(Extended {
                queries: queries.clone(),
                parser: Arc::new(Parser::new(queries.clone())),
            }),
            queries,
            state,
            cancels: cancels.clone(),
        }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.login.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancels.clone()
    }
}

/// A FATAL ErrorResponse, for a connection refused before its start-up is read.
fn fatal_message(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Whether the first message on `socket` is a CancelRequest (its code after the length),
/// read without taking it off the socket.
async fn is_cancel_request(socket: &tokio::net::TcpStream) -> bool {
    const CANCEL_REQUEST_CODE: i32 = 80877102;
    let mut head = [0u8; 8];
    let whole = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match socket.peek(&mut head).await {
                Ok(n) if n >= head.len() => return true,
                Ok(0) | Err(_) => return false,
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .unwrap_or(false);
    whole && i32::from_be_bytes([head[4], head[5], head[6], head[7]]) == CANCEL_REQUEST_CODE
}

/// Serves `lake` on `listener` until `shutdown` completes.
pub async fn serve(
    lake: Lake,
    listener: tokio::net::TcpListener,
    options: PgOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.limits.max_connections));
    let cancels = Arc::new(cancel::Cancels::default());
    let options = Arc::new(options);
    tokio::pin!(shutdown);
    loop {
        let (mut socket, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("pg: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let message = format!(
                "sorry, too many clients already (at most {} connections: [serve] pg_max_connections)",
                options.limits.max_connections
            );
            // A cancel request comes on a connection of its own, most needed when the server
            // is full: it takes no slot, and is answered and closed at once.
            let canceller = Connection::new(&lake, &options, &cancels);
            tokio::spawn(async move {
                if is_cancel_request(&socket).await {
                    let _ = pgwire::tokio::process_socket(socket, None, canceller).await;
                    return;
                }
                let _ = socket.write_all(&fatal_message("53300", &message)).await;
                let _ = socket.shutdown().await;
            });
            continue;
        };
        let connection = Connection::new(&lake, &options, &cancels);
        let state = connection.state.clone();
        let cancels = cancels.clone();
        let tls = options.tls.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, connection).await {
                tracing::debug!("pg: connection from {peer} ended: {e}");
            }
            if let Some(pid) = state.pid.get() {
                cancels.forget(*pid);
            }
            drop(slot);
        });
    }
}
