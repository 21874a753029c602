//! `shoplake serve`: the dashboard and the reports' API (see the `shoplake-serve` crate).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use shoplake_lake::Lake;
use shoplake_serve::http::{ServeError, ServeOptions, bind, serve};
use shoplake_serve::pg::{self, Limits, PgError, PgOptions};
use shoplake_serve::tls::{TlsFiles, http_acceptor, pg_acceptor};
use shoplake_serve::users::Users;

use crate::cli::ServeArgs;
use crate::config::{ServeConfig, Settings, parse_size};
use crate::{Exit, usage};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What `serve` was asked for: each setting from its flag, else from `[serve]`, else its
/// default.
#[derive(Debug)]
struct Asked {
    /// The dashboard's address; none when only `--pg` was given on the command line.
    listen: Option<SocketAddr>,
    pg: Option<SocketAddr>,
    users: Option<PathBuf>,
    tls: Option<TlsFiles>,
    limits: Limits,
}

fn asked(args: &ServeArgs, file: &ServeConfig) -> anyhow::Result<Asked> {
    // `[serve] pg` alone keeps the dashboard at its default address.
    let listen = match (args.listen.or(file.listen), args.pg) {
        (Some(listen), _) => Some(listen),
        (None, None) => Some(DEFAULT_LISTEN.parse().expect("a socket address")),
        (None, Some(_)) => None,
    };
    let tls = match (
        args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
        args.tls_key.clone().or_else(|| file.tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => anyhow::bail!(
            "TLS needs both a certificate and its key: give --tls-cert and --tls-key, or tls_cert and tls_key in [serve]"
        ),
    };
    let defaults = Limits::default();
    let memory_per_connection = match args
        .pg_memory_per_connection
        .as_deref()
        .or(file.pg_memory_per_connection.as_deref())
    {
        Some(text) => parse_size(text)?,
        None => defaults.memory_per_connection,
    };
    let statement_timeout = match (args.pg_statement_timeout, &file.pg_statement_timeout) {
        (Some(timeout), _) => timeout,
        (None, Some(text)) => humantime::parse_duration(text).map_err(|e| {
            anyhow::anyhow!(
                "[serve] pg_statement_timeout = {text:?} is not a duration ({e}); write e.g. \"30s\" or \"5min\""
            )
        })?,
        (None, None) => defaults.statement_timeout,
    };
    Ok(Asked {
        listen,
        pg: args.pg.or(file.pg),
        users: args.users.clone().or_else(|| file.users.clone()),
        tls,
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
    })
}

pub async fn run(lake: Lake, settings: &Settings, args: &ServeArgs) -> Result<(), Exit> {
    let Asked {
        listen,
        pg: pg_listen,
        users: users_path,
        tls,
        limits,
    } = asked(args, &settings.serve).map_err(usage)?;
    let users = match &users_path {
        Some(path) => Some(Arc::new(Users::load(path).map_err(usage)?)),
        None => None,
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
            let options = PgOptions {
                listen,
                users: users.clone(),
                limits,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn serve_args(flags: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["shoplake", "serve"].iter().chain(flags)).unwrap();
        match cli.command {
            Command::Serve(args) => args,
            other => panic!("{other:?}"),
        }
    }

    fn file() -> ServeConfig {
        ServeConfig {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            pg: Some("127.0.0.1:5433".parse().unwrap()),
            users: Some(PathBuf::from("/srv/users.toml")),
            pg_max_rows: Some(9),
            pg_statement_timeout: Some("30s".into()),
            ..ServeConfig::default()
        }
    }

    #[test]
    fn flags_win_over_the_serve_section_which_wins_over_defaults() {
        let given = asked(
            &serve_args(&[
                "--pg",
                "127.0.0.1:6000",
                "--pg-max-rows",
                "5",
                "--users",
                "u.toml",
            ]),
            &file(),
        )
        .unwrap();
        assert_eq!(given.pg, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(given.limits.max_rows, 5);
        assert_eq!(given.users, Some(PathBuf::from("u.toml")));
        // Not given as a flag: the file's, then the default.
        assert_eq!(given.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(given.limits.statement_timeout, Duration::from_secs(30));
        assert_eq!(
            given.limits.max_connections,
            Limits::default().max_connections
        );

        let from_file = asked(&serve_args(&[]), &file()).unwrap();
        assert_eq!(from_file.pg, Some("127.0.0.1:5433".parse().unwrap()));
        assert_eq!(from_file.limits.max_rows, 9);
        assert_eq!(from_file.users, Some(PathBuf::from("/srv/users.toml")));
    }

    #[test]
    fn the_dashboard_stays_unless_only_pg_is_asked_for_on_the_command_line() {
        let pg_only_in_file = ServeConfig {
            pg: Some("127.0.0.1:5433".parse().unwrap()),
            ..ServeConfig::default()
        };
        let given = asked(&serve_args(&[]), &pg_only_in_file).unwrap();
        assert_eq!(given.listen, Some(DEFAULT_LISTEN.parse().unwrap()));
        assert!(given.pg.is_some());
        let pg_flag = asked(
            &serve_args(&["--pg", "127.0.0.1:0"]),
            &ServeConfig::default(),
        )
        .unwrap();
        assert_eq!(pg_flag.listen, None);
    }

    #[test]
    fn half_a_tls_pair_or_a_bad_duration_in_the_file_is_refused() {
        let half = ServeConfig {
            tls_cert: Some(PathBuf::from("c.pem")),
            ..ServeConfig::default()
        };
        let e = asked(&serve_args(&[]), &half).unwrap_err().to_string();
        assert!(e.contains("both a certificate and its key"), "{e}");
        let bad = ServeConfig {
            pg_statement_timeout: Some("soon".into()),
            ..ServeConfig::default()
        };
        let e = asked(&serve_args(&[]), &bad).unwrap_err().to_string();
        assert!(
            e.contains("pg_statement_timeout") && e.contains("soon"),
            "{e}"
        );
    }
}
