//! `shoplake serve`: the dashboard, the JSON API of every report, `/healthz` and Prometheus
//! `/metrics`, over HTTP.
//!
//! - `GET /`: the dashboard (KPI tiles, the funnel, trends, products, categories, brands,
//!   sessions and prices, with a date range and a category/brand filter), drawn with Apache
//!   ECharts, which is embedded in the binary: the page needs no network but the server.
//! - `GET /api/reports`: the reports; `GET /api/reports/NAME?from=..&to=..&category=..&brand=..
//!   &limit=..&min_views=..`: one report, the JSON that `shoplake report NAME -f json` prints.
//! - `GET /healthz`, `GET /metrics`.
//!
//! Every request opens the lake's catalog afresh, so a new lake version (a run that finished)
//! is served by the next request without a restart. Bad parameters are a 400 with a JSON body
//! `{"error": "..."}` that says what is wrong. The server listens on loopback unless told
//! otherwise; elsewhere it requires the users of the users file (HTTP Basic: the browser's
//! login prompt, `curl -u`; then over HTTPS, with a certificate and key) or a token
//! (`Authorization: Bearer TOKEN`, or `?token=` on the page, which passes it on to the API):
//! see [`auth`].

mod api;
mod assets;
pub mod auth;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use shoplake_lake::Lake;

pub use metrics::Metrics;

/// What `shoplake serve` was asked for.
#[derive(Clone)]
pub struct ServeOptions {
    /// Where the dashboard listens.
    pub listen: SocketAddr,
    /// A token a request may carry instead of a login.
    pub token: Option<String>,
    /// The users who may log in (the users file of the PostgreSQL endpoint).
    pub users: Option<Arc<crate::users::Users>>,
    /// HTTPS, when a certificate and key are configured.
    pub tls: Option<crate::tls::TlsAcceptor>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Listening anywhere but loopback without users or a token.
    #[error(
        "{0} is not a loopback address: give a users file (--users FILE) or a token (--token or SHOPLAKE_SERVE_TOKEN) so that only those who have one read the lake"
    )]
    Unprotected(SocketAddr),
    /// Logins with passwords off loopback over plain HTTP.
    #[error(
        "{0} is not a loopback address and the dashboard's logins carry passwords: give --tls-cert and --tls-key (or tls_cert and tls_key in [serve]), or listen on loopback behind your TLS proxy"
    )]
    ClearLogins(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The lake served.
    pub lake: Lake,
    /// Who may read.
    pub guard: Arc<auth::Guard>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::dashboard))
        .route("/assets/{file}", get(assets::asset))
        .route("/api/reports", get(api::list))
        .route("/api/reports/{name}", get(api::report))
        .route("/healthz", get(api::health))
        .route("/metrics", get(metrics::metrics))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// Binds `options.listen`; returns the listener and the address it got (port 0 picks one).
pub async fn bind(
    options: &ServeOptions,
) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    let guarded = options.users.is_some() || options.token.as_ref().is_some_and(|t| !t.is_empty());
    if !options.listen.ip().is_loopback() && !guarded {
        return Err(ServeError::Unprotected(options.listen));
    }
    if !options.listen.ip().is_loopback() && options.users.is_some() && options.tls.is_none() {
        return Err(ServeError::ClearLogins(options.listen));
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves `lake` on `listener` until `shutdown` completes.
pub async fn serve(
    lake: Lake,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = AppState {
        lake,
        guard: Arc::new(auth::Guard::new(options.token, options.users)),
        metrics: Arc::new(Metrics::default()),
    };
    match options.tls {
        Some(acceptor) => {
            let listener = crate::tls::TlsListener::new(listener, acceptor)?;
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown)
                .await?
        }
        None => {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown)
                .await?
        }
    }
    Ok(())
}
