//! What the netanalyzer binaries share: nothing a library user needs, only
//! the command-line conventions (logging to standard error, `RUST_LOG`).
//!
//! ```no_run
//! netanalyzer_examples::init_logging();
//! tracing::info!("logs go to standard error");
//! ```
#![forbid(unsafe_code)]

pub mod demo;
pub mod flows;
pub mod labelled;
pub mod pace;

use std::io::IsTerminal;
use std::process::ExitCode;

/// Logs to standard error at the level `RUST_LOG` sets (default `info`),
/// coloured only on a terminal.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Parses the command line as `C`. On a usage error (or `--help`,
/// `--version`) prints clap's message and returns the exit code to end
/// with (2 for an error, 0 for help).
pub fn parse_cli<C: clap::Parser>() -> Result<C, ExitCode> {
    C::try_parse().map_err(|e| {
        let _ = e.print();
        ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
    })
}

/// The `main` of the long-running binaries (server, aggregator): parses
/// the command line ([`parse_cli`]), starts logging ([`init_logging`]),
/// then runs `run`; an error prints `NAME: error: ...` with its causes and
/// exits with 1.
pub fn service_main<C: clap::Parser>(
    name: &str,
    run: impl FnOnce(C) -> anyhow::Result<()>,
) -> ExitCode {
    let cli = match parse_cli::<C>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
