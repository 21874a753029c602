//! `shoplake serve`: the dashboard and the reports' API (see the `shoplake-serve` crate).

use std::io::Write;

use shoplake_lake::Lake;
use shoplake_serve::http::{ServeError, ServeOptions, bind, serve};

use crate::cli::ServeArgs;
use crate::{Exit, usage};

pub async fn run(lake: Lake, args: &ServeArgs) -> Result<(), Exit> {
    let options = ServeOptions {
        listen: args.listen,
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
    // A server outlives whoever read its first lines: a closed stdout is no reason to stop.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "dashboard: http://{addr}/{token_hint}");
    let _ = writeln!(
        out,
        "reports:   http://{addr}/api/reports  (Ctrl-C stops the server)"
    );
    let _ = out.flush();
    drop(out);
    serve(lake, listener, options.token, shutdown()).await?;
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
