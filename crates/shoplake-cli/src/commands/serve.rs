//! `shoplake serve`: the dashboard and the reports' API (see the `shoplake-serve` crate).

use std::io::Write;
use std::sync::Arc;

use shoplake_lake::Lake;
use shoplake_serve::http::{ServeError, ServeOptions, bind, serve};
use shoplake_serve::pg::{self, Limits, PgError, PgOptions};
use shoplake_serve::users::Users;

use crate::cli::ServeArgs;
use crate::{Exit, usage};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

pub async fn run(lake: Lake, args: &ServeArgs) -> Result<(), Exit> {
    // The dashboard, unless only the PostgreSQL endpoint was asked for.
    let listen = match (args.listen, args.pg) {
        (Some(listen), _) => Some(listen),
        (None, None) => Some(DEFAULT_LISTEN.parse().expect("a socket address")),
        (None, Some(_)) => None,
    };
    let users = match &args.users {
        Some(path) => Some(Arc::new(Users::load(path).map_err(usage)?)),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let http = match listen {
        Some(listen) => {
            let options = ServeOptions {
                listen,
                token: args.token.clone().filter(|t| !t.is_empty()),
            };
            let (listener, addr) = bind(&options).await.map_err(|e| match e {
                e @ (ServeError::Unprotected(_) | ServeError::Bind { .. }) => usage(e),
                e => Exit::from(e),
            })?;
            let token_hint = if options.token.is_some() {
                "?token=..."
            } else {
                ""
            };
            // A server outlives whoever read its first lines: a closed stdout is no reason
            // to stop.
            let _ = writeln!(out, "dashboard: http://{addr}/{token_hint}");
            let _ = writeln!(out, "reports:   http://{addr}/api/reports");
            Some(tokio::spawn(serve(
                lake.clone(),
                listener,
                options.token,
                shutdown(),
            )))
        }
        None => None,
    };
    let postgres = match args.pg {
        Some(listen) => {
            let options = PgOptions {
                listen,
                users: users.clone(),
                limits: Limits {
                    max_connections: args.pg_max_connections.max(1),
                    statement_timeout: args.pg_statement_timeout,
                    max_rows: args.pg_max_rows,
                    ..Limits::default()
                },
            };
            let (listener, addr) = pg::bind(&options).await.map_err(|e| match e {
                e @ (PgError::Unprotected(_) | PgError::Bind { .. }) => usage(e),
            })?;
            let login = match &users {
                Some(users) => format!(
                    "{} users of {}",
                    users.len(),
                    args.users
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                None => "any user name, no password (loopback only)".to_string(),
            };
            let _ = writeln!(
                out,
                "postgres:  postgresql://{addr}/lake  (read-only; {login})"
            );
            if !addr.ip().is_loopback() {
                let _ = writeln!(
                    out,
                    "warning:   {addr} is not loopback and the PostgreSQL endpoint has no TLS: passwords are safe (SCRAM), query traffic is in clear"
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
