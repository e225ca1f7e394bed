//! `netanalyzer-server`: the ingest server. Sensors POST batches of packet
//! records to it; it stores them in PostgreSQL exactly once.
//!
//! The logic lives in `netanalyzer_store::server`; this binary parses
//! flags, reads the config file, starts the server, and stops it
//! gracefully on SIGINT/SIGTERM. Run with `--help` for the flags.

use anyhow::{Context, Result};
use clap::Parser;
use netanalyzer_store::pg::{self, EmbeddedOptions};
use netanalyzer_store::server::{ConfigFile, DatabaseSource, Server, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

const AFTER_HELP: &str = "\
Without --database-url (or DATABASE_URL) the server runs its own PostgreSQL
cluster in --data-dir, using the PostgreSQL binaries installed on the
machine: created on first start, stopped on exit, recovered after a crash.

The config file (TOML) holds the sensors' tokens, limits and retention:

  [tokens]            # sensor id = bearer token
  edge-1 = \"a-long-random-token\"
  [limits]
  max_body_bytes = 33554432
  max_records = 100000
  queue_batches = 8
  writers = 2
  [retention]
  days = 30           # drop daily partitions older than this
  partitions_ahead_days = 3
  [dashboard]         # the query API (/api/*), the page (/) and /ws/dashboard
  read_tokens = [\"a-long-random-read-token\"]
  query_connections = 4   # PostgreSQL connections for queries
  client_queue = 256      # messages queued per WebSocket client
  max_clients = 4096      # WebSocket clients at once
  stats_window_secs = 300 # window of the stats pushed to dashboards

Flags win over the config file. Without tokens ingest is open, which is
allowed only on a loopback --listen address. Likewise, without a read token
(--read-token or [dashboard] read_tokens) the API and the dashboard are open,
which is allowed only on loopback; with one, send `Authorization: Bearer T`
or `?token=T`. The API is described in docs/api.md.

Every flag can also be set with an environment variable: NETANALYZER_ and the
long flag in upper case, '-' as '_' (NETANALYZER_LISTEN, ...), except
--database-url which reads DATABASE_URL. Logs go to standard error; RUST_LOG
sets the level (default: info). SIGINT or SIGTERM stops accepting, finishes
the batches in flight and exits 0; a second one quits at once (status 130).

Exit status:
  0  stopped by SIGINT/SIGTERM after a clean shutdown
  1  error: bad config, port taken, database unreachable, ...
  2  usage error: bad flags";

/// Receives packet-record batches from sensors over HTTP and stores them in
/// PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "netanalyzer-server", version, after_help = AFTER_HELP)]
struct Cli {
    /// Address and port to listen on.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        env = "NETANALYZER_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    listen: SocketAddr,

    /// PostgreSQL to use (libpq key=value string or postgres:// URL);
    /// tables are created when missing. Without it: the embedded cluster.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// Directory of the embedded PostgreSQL cluster [default:
    /// $XDG_DATA_HOME/netanalyzer/postgres or ~/.local/share/netanalyzer/postgres].
    #[arg(long, value_name = "DIR", env = "NETANALYZER_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Config file (TOML) with the tables tokens, limits and retention.
    #[arg(long, value_name = "FILE", env = "NETANALYZER_CONFIG")]
    config: Option<PathBuf>,

    /// Writer threads, each with its own database connection [default: 2].
    #[arg(long, value_name = "N", env = "NETANALYZER_WRITERS",
          value_parser = clap::value_parser!(u16).range(1..))]
    writers: Option<u16>,

    /// Decoded batches that may wait for a writer; beyond, ingest answers
    /// 503 and sensors spool [default: 8].
    #[arg(long, value_name = "N", env = "NETANALYZER_QUEUE_BATCHES",
          value_parser = clap::value_parser!(u32).range(1..))]
    queue_batches: Option<u32>,

    /// Largest request body in bytes, as sent [default: 33554432].
    #[arg(long, value_name = "BYTES", env = "NETANALYZER_MAX_BODY_BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    max_body_bytes: Option<u64>,

    /// Read token of the query API and the dashboard (repeatable; the
    /// environment variable takes a comma-separated list). Replaces the
    /// config file's `[dashboard] read_tokens`.
    #[arg(
        long = "read-token",
        value_name = "TOKEN",
        env = "NETANALYZER_READ_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    read_tokens: Vec<String>,

    /// Drop daily partitions older than this many days [default: keep all].
    #[arg(long, value_name = "DAYS", env = "NETANALYZER_RETENTION_DAYS",
          value_parser = clap::value_parser!(u32).range(1..))]
    retention_days: Option<u32>,
}

/// Set by the first signal; a second one exits at once.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    netanalyzer_examples::service_main("netanalyzer-server", run)
}

/// Defaults, then the config file, then the flags.
fn config(cli: Cli) -> Result<ServerConfig> {
    let database = match cli.database_url {
        Some(url) => DatabaseSource::Url(url),
        None => DatabaseSource::Embedded(EmbeddedOptions {
            data_dir: cli.data_dir.unwrap_or_else(pg::default_data_dir),
            durable: true,
        }),
    };
    let mut cfg = ServerConfig::new(database);
    cfg.listen = cli.listen;
    if let Some(path) = &cli.config {
        ConfigFile::load(path)?.apply(&mut cfg);
    }
    if let Some(n) = cli.writers {
        cfg.writers = usize::from(n);
    }
    if let Some(n) = cli.queue_batches {
        cfg.queue_batches = usize::try_from(n).context("--queue-batches")?;
    }
    if let Some(n) = cli.max_body_bytes {
        cfg.max_body_bytes = usize::try_from(n).context("--max-body-bytes is too large")?;
    }
    if !cli.read_tokens.is_empty() {
        cfg.dashboard.read_tokens = cli.read_tokens;
    }
    if let Some(days) = cli.retention_days {
        cfg.partitions.retention_days = Some(days);
    }
    Ok(cfg)
}

fn run(cli: Cli) -> Result<()> {
    let cfg = config(cli)?;
    let database = match &cfg.database {
        DatabaseSource::Url(_) => "the PostgreSQL of --database-url/DATABASE_URL".to_owned(),
        DatabaseSource::Embedded(o) => {
            format!("the embedded PostgreSQL in {}", o.data_dir.display())
        }
    };
    let (listen, writers, open) = (cfg.listen, cfg.writers, cfg.tokens.is_empty());
    let server = Server::start(cfg)
        .with_context(|| format!("cannot start the server on {listen} with {database}"))?;

    let handle = server.shutdown_handle();
    ctrlc::set_handler(move || {
        if SIGNALLED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        handle.request();
    })
    .context("cannot install the SIGINT/SIGTERM handler")?;

    tracing::info!(
        "using {database}, {writers} writer(s), ingest {}",
        if open {
            "open (no tokens)"
        } else {
            "with tokens"
        }
    );
    eprintln!("listening on http://{}", server.local_addr());
    server.wait();
    tracing::info!("shutting down: finishing the batches in flight");
    server.shutdown().context("shutdown")?;
    tracing::info!("stopped");
    Ok(())
}
