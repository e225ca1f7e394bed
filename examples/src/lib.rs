//! What the netanalyzer binaries share: nothing a library user needs, only
//! the command-line conventions (logging to standard error, `RUST_LOG`).
//!
//! ```no_run
//! netanalyzer_examples::init_logging();
//! tracing::info!("logs go to standard error");
//! ```
#![forbid(unsafe_code)]

use std::io::IsTerminal;

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
