//! `shoplake serve`: the dashboard and the reports' API (see the `shoplake-serve` crate).

use std::io::Write;
use std::sync::Arc;

use shoplake_lake::Lake;
use shoplake_serve::http::{ServeError, ServeOptions, bind, serve};
use shoplake_serve::pg::{self, Limits, PgError, PgOptions};
use shoplake_serve::tls::{TlsFiles, http_acceptor, pg_acceptor};
use shoplake_serve::users::Users;

use crate::cli::ServeArgs;
use crate::config::{Settings, parse_size};
use crate::{Exit, usage};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

pub async fn run(lake: Lake, settings: &Settings, args: &ServeArgs) -> Result<(), Exit> {
    let file = &settings.serve;
    let pg_listen = args.pg.or(file.pg);
    // The dashboard, unless only the PostgreSQL endpoint was asked for on the command line
    // (`[serve] pg` alone keeps the dashboard at its default address).
    let listen = match (args.listen.or(file.listen), args.pg) {
        (Some(listen), _) => Some(listen),
        (None, None) => Some(DEFAULT_LISTEN.parse().expect("a socket address")),
        (None, Some(_)) => None,
    };
    let users_path = args.users.clone().or_else(|| file.users.clone());
    let users = match &users_path {
        Some(path) => Some(Arc::new(Users::load(path).map_err(usage)?)),
        None => None,
    };
    let tls = match (
        args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
        args.tls_key.clone().or_else(|| file.tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => {
            return Err(usage(anyhow::anyhow!(
                "TLS needs both a certificate and its key: give --tls-cert and --tls-key, or tls_cert and tls_key in [serve]"
            )));
        }
    };
    let mut out = std::io::stdout().lock();
    let http = match listen {
        Some(listen) => {
            let options = ServeOptions {
                listen,
                token: args.token.clone().filter(|t| !t.is_empty()),
                users: users.clone(),
                tls: tls.as_ref().map(http_acceptor).transpose().map_err(usage)?,
            };
            let (listener, addr) = bind(&options).await.map_err(|e| match e {
                e @ (ServeError::Unprotected(_)
                | ServeError::ClearLogins(_)
                | ServeError::Bind { .. }) => usage(e),
                e => Exit::from(e),
            })?;
            let scheme = if options.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let login = match (&options.users, &options.token) {
                (Some(_), _) => "  (log in: a user of the users file)",
                (None, Some(_)) => "?token=...",
                (None, None) => "",
            };
            // A server outlives whoever read its first lines: a closed stdout is no reason
            // to stop.
            let _ = writeln!(out, "dashboard: {scheme}://{addr}/{login}");
            let _ = writeln!(out, "reports:   {scheme}://{addr}/api/reports");
            if !addr.ip().is_loopback() && options.tls.is_none() {
                let _ = writeln!(
                    out,
                    "warning:   {addr} is not loopback and the dashboard speaks plain HTTP: the token and the reports are in clear (--tls-cert, --tls-key)"
                );
            }
            Some(tokio::spawn(serve(
                lake.clone(),
                listener,
                options,
                shutdown(),
            )))
        }
        None => None,
    };
    let postgres = match pg_listen {
        Some(listen) => {
            let defaults = Limits::default();
            let memory_per_connection = match args
                .pg_memory_per_connection
                .as_deref()
                .or(file.pg_memory_per_connection.as_deref())
            {
                Some(text) => parse_size(text).map_err(usage)?,
                None => defaults.memory_per_connection,
            };
            let statement_timeout = match (args.pg_statement_timeout, &file.pg_statement_timeout) {
                (Some(timeout), _) => timeout,
                (None, Some(text)) => humantime::parse_duration(text).map_err(|e| {
                    usage(anyhow::anyhow!(
                        "[serve] pg_statement_timeout = {text:?} is not a duration ({e}); write e.g. \"30s\" or \"5min\""
                    ))
                })?,
                (None, None) => defaults.statement_timeout,
            };
            let options = PgOptions {
                listen,
                users: users.clone(),
                limits: Limits {
                    max_connections: args
                        .pg_max_connections
                        .or(file.pg_max_connections)
                        .unwrap_or(defaults.max_connections)
                        .max(1),
                    statement_timeout,
                    max_rows: args
                        .pg_max_rows
                        .or(file.pg_max_rows)
                        .unwrap_or(defaults.max_rows),
                    memory_per_connection,
                },
                tls: tls.as_ref().map(pg_acceptor).transpose().map_err(usage)?,
            };
            let (listener, addr) = pg::bind(&options).await.map_err(|e| match e {
                e @ (PgError::Unprotected(_) | PgError::Bind { .. }) => usage(e),
            })?;
            let login = match (&users, &users_path) {
                (Some(users), Some(path)) => {
                    format!("{} users of {}", users.len(), path.display())
                }
                _ => "any user name, no password (loopback only)".to_string(),
            };
            let ssl = if options.tls.is_some() {
                "; TLS: sslmode=require"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "postgres:  postgresql://{addr}/lake  (read-only; {login}{ssl})"
            );
            if !addr.ip().is_loopback() && options.tls.is_none() {
                let _ = writeln!(
                    out,
                    "warning:   {addr} is not loopback and the PostgreSQL endpoint has no TLS (--tls-cert, --tls-key): passwords are safe (SCRAM), query traffic is in clear"
                );
            }
            Some(tokio::spawn(pg::serve(
                lake.clone(),
                listener,
                options,
                shutdown(),
            )))
        }
        None => None,
    };
    let _ = writeln!(out, "(Ctrl-C stops the server)");
    let _ = out.flush();
    drop(out);
    if let Some(http) = http {
        http.await.map_err(anyhow::Error::from)??;
    }
    if let Some(postgres) = postgres {
        postgres.await.map_err(anyhow::Error::from)??;
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
