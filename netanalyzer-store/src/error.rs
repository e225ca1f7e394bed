use std::path::PathBuf;
use thiserror::Error;

/// Errors of the store crate: an output that cannot be created or written.
///
/// Every variant names the path it concerns; standard output is named
/// `-`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An output directory could not be created.
    #[error("cannot create output directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output file could not be created.
    #[error("cannot create output file {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing or flushing an output failed.
    #[error("cannot write to {path}: {source}")]
    Write {
        /// The file (`-` for standard output).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output specification (`jsonl:PATH`, `csv:DIR`, `null`) could not
    /// be understood.
    #[error("invalid output {spec:?}: {reason}")]
    InvalidSpec {
        /// What was given.
        spec: String,
        /// What is wrong, for a human.
        reason: &'static str,
    },
    /// A setting is out of range.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// What is wrong, for a human.
        reason: &'static str,
    },
    // -- wire variants (wire/) --
    /// A batch body was rejected by the wire decoder (see
    /// [`crate::wire::decode_body`]); `reason` is the stable machine name,
    /// `detail` says what to fix.
    #[error("bad batch ({}): {detail}", reason.as_str())]
    BadBatch {
        /// The stable machine name of the rejection.
        reason: crate::wire::RejectReason,
        /// What is wrong, for a human (e.g. `record 17: field dns_qname holds a NUL byte`).
        detail: String,
    },
    // -- transport variants (transport/) --
    /// `close()` gave up: no batch was acknowledged for the drain timeout.
    /// Everything not acknowledged is in the spool and is sent on the next
    /// start.
    #[error(
        "{remaining_records} records in {remaining_batches} batches remain in the spool at {}",
        spool_dir.display()
    )]
    DrainTimeout {
        /// Records not acknowledged, now in the spool.
        remaining_records: u64,
        /// Batches not acknowledged, now in the spool.
        remaining_batches: u64,
        /// The spool directory.
        spool_dir: PathBuf,
    },
    /// The server refused the sensor for good (401/403: no or wrong
    /// token). The batch stays in the spool.
    #[error("server rejected the sensor: http {status}: {reason}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's reason, or the status text.
        reason: String,
    },
    /// Reading or writing the on-disk spool failed.
    #[error("spool {path}: {source}")]
    Spool {
        /// The segment file or spool directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An HTTP client could not be set up or the request could not be
    /// built (e.g. a malformed URL).
    #[error("http {url}: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
    // -- pg variants (pg/) --
    /// A PostgreSQL operation failed.
    #[error("postgres: {context}: {source}")]
    Postgres {
        /// What was being done (e.g. `"connect"`, `"copy raw_packets"`).
        context: &'static str,
        /// The driver's error.
        source: postgres::Error,
    },
    /// No PostgreSQL server binaries (`initdb`, `pg_ctl`) were found for the
    /// embedded cluster.
    #[error(
        "postgresql server binaries (initdb, pg_ctl) not found (searched: {searched}); \
         install the `postgresql` package (Debian/Ubuntu: apt-get install postgresql) \
         or set DATABASE_URL to use an existing server"
    )]
    PostgresNotInstalled {
        /// The places searched, for a human.
        searched: String,
    },
    /// A value does not fit its PostgreSQL column (e.g. a `stream_id`
    /// above `i64::MAX`).
    #[error("value {value} out of range for postgres column {column}")]
    ColumnOutOfRange {
        /// The column.
        column: &'static str,
        /// The value.
        value: u64,
    },
    /// The embedded PostgreSQL cluster could not be created, started or
    /// stopped.
    #[error("embedded postgres: {detail}")]
    Embedded {
        /// What went wrong, for a human (includes the tail of the server log
        /// when there is one).
        detail: String,
    },
    // -- server variants (server/) --
    /// The server's config file could not be read, parsed or validated.
    #[error("config file {path}: {detail}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, for a human (TOML errors include line and column).
        detail: String,
    },
    /// The server could not bind its listen address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why (e.g. the port is already taken).
        source: std::io::Error,
    },
    /// Ingest would be open to the network: a non-loopback listen address
    /// with no tokens configured.
    #[error(
        "refusing to listen on {addr}: listening on a non-loopback address needs tokens \
         in the config (--config FILE with a [tokens] table)"
    )]
    InsecureListen {
        /// The listen address asked for.
        addr: std::net::SocketAddr,
    },
    /// A non-loopback listen address with no read token for the query API
    /// and the dashboard.
    #[error(
        "refusing to serve the dashboard and query API on {addr} without a read token: \
         give --read-token TOKEN (or [dashboard] read_tokens in the config), or listen on loopback"
    )]
    ReadTokenRequired {
        /// The listen address asked for.
        addr: std::net::SocketAddr,
    },
    /// The server's runtime or one of its threads failed.
    #[error("server runtime: {detail}")]
    Runtime {
        /// What went wrong, for a human.
        detail: String,
    },
    // -- flowdb variants --
    /// A binary COPY stream read from PostgreSQL did not have the expected
    /// layout (wrong header, column count, field length or value).
    #[error("malformed copy data from {source_table}: {detail}")]
    CopyDecode {
        /// What was being read (e.g. `"raw_packets"`).
        source_table: &'static str,
        /// What is wrong, for a human.
        detail: String,
    },
    /// Another aggregator with the same consumer name has saved a position
    /// beyond this one: two aggregators share a consumer name.
    #[error(
        "consumer {consumer:?} is already at position {stored_xid}/{stored_batch_id}, \
         beyond {xid}/{batch_id}: is another aggregator running with the same consumer name?"
    )]
    PositionConflict {
        /// The consumer name.
        consumer: String,
        /// The stored position's xid.
        stored_xid: u64,
        /// The stored position's batch id.
        stored_batch_id: i64,
        /// The position being committed: xid.
        xid: u64,
        /// The position being committed: batch id.
        batch_id: i64,
    },
}

impl StoreError {
    /// Whether this is a write to a closed pipe (e.g. `jsonl:-` piped into
    /// `head`). Command-line tools usually stop quietly on it.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, StoreError::Write { source, .. }
            if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn write(path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}
