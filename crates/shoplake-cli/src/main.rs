//! The `shoplake` binary: arguments, progress, printing. The work is in the library crates.

mod cli;
mod commands;
mod config;
mod output;
mod progress;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, LogFormat};
use crate::config::Settings;

// The system allocator kept freed batch memory mapped: a month's run peaked markedly higher
// with it, at the same speed (see bench/results/2026-11-28-66600000-at-917085d.md).
// DataFusion's own command line makes the same choice.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes: 0 ok, 1 failure, 2 usage error, 3 quality gate failed.
pub mod exit {
    /// The job failed.
    pub const FAILURE: u8 = 1;
    /// The command was used wrongly (bad argument, missing input).
    pub const USAGE: u8 = 2;
    /// A quality check of severity `error` failed.
    pub const GATE: u8 = 3;
}

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Exit {
    /// Exit code.
    pub code: u8,
    /// The error.
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Exit {
    fn from(error: E) -> Self {
        Exit {
            code: exit::FAILURE,
            error: error.into(),
        }
    }
}

/// A failed quality gate (exit code 3).
pub fn gate(error: impl Into<anyhow::Error>) -> Exit {
    Exit {
        code: exit::GATE,
        error: error.into(),
    }
}

/// Marks an error as a usage error (exit code 2).
pub fn usage(error: impl Into<anyhow::Error>) -> Exit {
    Exit {
        code: exit::USAGE,
        error: error.into(),
    }
}

fn init_logs(format: LogFormat, quiet: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOPLAKE_LOG").unwrap_or_else(|_| {
        // Dependencies report their failures through our errors; their own logs are noise.
        let ours = if quiet { "warn" } else { "info" };
        let crates = [
            "shoplake",
            "shoplake_cli",
            "shoplake_lake",
            "shoplake_sql",
            "shoplake_ingest",
            "shoplake_quality",
            "shoplake_profile",
            "shoplake_pipeline",
            "shoplake_oltp",
        ];
        let levels: Vec<String> = crates.iter().map(|c| format!("{c}={ours}")).collect();
        tracing_subscriber::EnvFilter::new(format!("off,{}", levels.join(",")))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.without_time().init(),
    }
}

/// Whether log lines are coloured: only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Turns transparent huge pages off for this process (and what it starts).
///
/// Where the kernel hands out huge pages by default, every fresh 2 MiB of address space is
/// zeroed on first touch, however little of it is used: Parquet encoders and decoders, zstd
/// contexts and Arrow buffers come and go by the thousand, and each new one faulted in
/// another huge page. With them off, a 10 M-event `run` spent far less time in the kernel,
/// finished sooner and peaked lower, and `convert` sped up too (the A/B is in
/// bench/results/2026-11-28-66600000-at-4872d19.md).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and only sets a flag of this
    // process. It fails on kernels without it, and then nothing changes: the result is ignored.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    init_logs(cli.log_format, cli.quiet);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Exit::from)
        .and_then(|rt| rt.block_on(dispatch(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => {
            eprintln!("error: {:#}", exit.error);
            ExitCode::from(exit.code)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), Exit> {
    if let Command::Generate(args) = &cli.command {
        return commands::generate::run(args, cli.quiet);
    }
    if let Command::Docs(args) = &cli.command {
        return commands::docs::run(args);
    }
    if let Command::Users(args) = &cli.command {
        return commands::users::run(args);
    }
    if let Command::Oltp(args) = &cli.command {
        let bars = progress::Bars::new(cli.quiet);
        return commands::oltp::run(args, &bars, cli.quiet).await;
    }
    let settings = Settings::resolve(&cli).map_err(usage)?;
    if let Command::Convert(args) = &cli.command {
        return commands::convert::run(args, &settings, cli.quiet);
    }
    let lake = shoplake_lake::Lake::open(&settings.lake)
        .map_err(usage)?
        .with_memory_limit(settings.memory_limit);
    let bars = progress::Bars::new(cli.quiet);
    match &cli.command {
        Command::Demo(args) => commands::demo::run(&lake, &settings, args, &bars, cli.quiet).await,
        Command::Ingest(args) => {
            commands::ingest::run(&lake, &settings, args, &bars, cli.quiet).await
        }
        Command::Run(args) => commands::run::run(&lake, &settings, args, &bars).await,
        Command::Check(args) => commands::check::run(&lake, &settings, args).await,
        Command::Query(args) => commands::query::run(&lake, args).await,
        Command::Status(args) => commands::status::run(&lake, args).await,
        Command::Profile(args) => commands::profile::run(&lake, args, &bars).await,
        Command::Report(args) => commands::report::run(&lake, args).await,
        Command::Serve(args) => commands::serve::run(lake, &settings, args).await,
        Command::Cdc(args) => commands::cdc::run(&lake, args, &bars, cli.quiet).await,
        Command::Generate(_)
        | Command::Docs(_)
        | Command::Convert(_)
        | Command::Users(_)
        | Command::Oltp(_) => {
            unreachable!("handled above")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(super::colour(true, None));
        assert!(super::colour(true, Some("".into())));
        assert!(!super::colour(true, Some("1".into())));
        assert!(!super::colour(false, None));
    }

    /// The kernel's own view of this process after the call: `THP_enabled` in
    /// /proc/self/status turns 0 (it reads 1 whatever the system-wide policy is until then).
    #[cfg(target_os = "linux")]
    #[test]
    fn transparent_huge_pages_are_off_for_the_process() {
        let thp = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_string()))
        };
        if thp().is_none() {
            // Kernels before 6.1 do not report it; nothing to compare with.
            return;
        }
        super::no_transparent_huge_pages();
        assert_eq!(thp().as_deref(), Some("0"));
    }
}
