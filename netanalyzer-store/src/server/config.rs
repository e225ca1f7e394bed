//! Server settings: [`ServerConfig`] (what [`Server::start`](super::Server::start)
//! takes) and [`ConfigFile`] (the `--config` TOML file).

use crate::pg::{EmbeddedOptions, PartitionPlan};
use crate::wire::DecodeLimits;
use crate::StoreError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the server's PostgreSQL is.
#[derive(Debug)]
pub enum DatabaseSource {
    /// An existing server: a libpq `key=value` string or a `postgres://`
    /// URL. Tables are created when missing.
    Url(String),
    /// A cluster the server manages itself in a data directory: created
    /// on first use, started with the server, stopped on shutdown.
    Embedded(EmbeddedOptions),
}

/// Everything [`Server::start`](super::Server::start) needs.
///
/// [`ServerConfig::new`] gives the defaults below; a [`ConfigFile`] and
/// command-line flags override them.
#[derive(Debug)]
pub struct ServerConfig {
    /// Listen address. Default `127.0.0.1:8000`. Any address other than
    /// loopback needs [`tokens`](Self::tokens), or start is refused.
    pub listen: SocketAddr,
    /// The database.
    pub database: DatabaseSource,
    /// Bearer token per sensor id (`sensor -> token`). Empty = ingest is
    /// open, allowed only on a loopback listen address.
    pub tokens: BTreeMap<String, String>,
    /// Largest request body accepted, in bytes, as sent (compressed).
    /// Default 32 MiB: a 10,000-record batch is about 2-4 MiB of msgpack
    /// before zstd, so this leaves room while bounding memory per request.
    pub max_body_bytes: usize,
    /// Decoder limits (decompressed size, records per batch).
    pub limits: DecodeLimits,
    /// Decoded batches waiting for a writer. Default 8. When the queue is
    /// full, ingest answers 503 + `Retry-After` and the sensor spools, so
    /// memory stays bounded.
    pub queue_batches: usize,
    /// Writer threads, each with its own PostgreSQL connection. Default 2
    /// (one COPY saturates about one core of PostgreSQL).
    pub writers: usize,
    /// Requests that may read and decode a body at the same time (each
    /// holds at most `max_body_bytes` plus its decoded batch). Default 8;
    /// beyond that ingest answers 503 + `Retry-After`.
    pub decode_slots: usize,
    /// Partitions created ahead and retention.
    pub partitions: PartitionPlan,
    /// How often the maintenance thread creates partitions ahead and drops
    /// expired ones. Default 1 hour (it also runs once at start).
    pub maintenance_interval: Duration,
    /// Seconds sent in `Retry-After` with every 503. Default 1.
    pub retry_after_secs: u32,
    /// The query API, the dashboard and its WebSocket.
    pub dashboard: DashboardConfig,
}

/// Settings of the read side: the query API (`/api/*`), the dashboard page
/// and its WebSocket (`/ws/dashboard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardConfig {
    /// Bearer tokens that may read (`Authorization: Bearer <t>`, or
    /// `?token=<t>` where a header cannot be set, as on a WebSocket).
    /// Empty = reading is open, which is allowed only on a loopback listen
    /// address ([`StoreError::ReadTokenRequired`] otherwise).
    pub read_tokens: Vec<String>,
    /// PostgreSQL connections of the query pool. Default 4; a query that
    /// finds them all busy waits up to a second, then answers 503.
    pub query_connections: usize,
    /// Messages queued per WebSocket client. Default 256. When full, the
    /// client's oldest `stats` message is dropped (and counted); alerts
    /// are never dropped.
    pub client_queue: usize,
    /// WebSocket clients at once. Default 4096; more are refused with 503.
    pub max_clients: usize,
    /// Window of the `stats` pushed to dashboards, seconds. Default 300.
    pub stats_window_secs: u32,
    /// Longest a query may run (PostgreSQL `statement_timeout`). Default 5 s.
    pub query_timeout: Duration,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            read_tokens: Vec::new(),
            query_connections: 4,
            client_queue: 256,
            max_clients: 4096,
            stats_window_secs: 300,
            query_timeout: Duration::from_secs(5),
        }
    }
}

impl ServerConfig {
    /// The defaults, with the given database.
    pub fn new(database: DatabaseSource) -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
            database,
            tokens: BTreeMap::new(),
            max_body_bytes: 32 << 20,
            limits: DecodeLimits::default(),
            queue_batches: 8,
            writers: 2,
            decode_slots: 8,
            partitions: PartitionPlan {
                ahead_days: 3,
                retention_days: None,
            },
            maintenance_interval: Duration::from_secs(3600),
            retry_after_secs: 1,
            dashboard: DashboardConfig::default(),
        }
    }

    /// Checks the settings that must be at least 1, and the tokens.
    ///
    /// # Errors
    /// [`StoreError::InvalidSetting`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), StoreError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_records", self.limits.max_records),
            ("queue_batches", self.queue_batches),
            ("writers", self.writers),
            ("decode_slots", self.decode_slots),
            ("query_connections", self.dashboard.query_connections),
            ("client_queue", self.dashboard.client_queue),
            ("max_clients", self.dashboard.max_clients),
            (
                "stats_window_secs",
                self.dashboard.stats_window_secs as usize,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(StoreError::InvalidSetting {
                    name,
                    reason: "must be at least 1",
                });
            }
        }
        if self.maintenance_interval.is_zero() {
            return Err(StoreError::InvalidSetting {
                name: "maintenance_interval",
                reason: "must be positive",
            });
        }
        check_tokens(&self.tokens).map_err(|reason| StoreError::InvalidSetting {
            name: "tokens",
            reason,
        })?;
        check_read_tokens(&self.dashboard.read_tokens).map_err(|reason| {
            StoreError::InvalidSetting {
                name: "read_tokens",
                reason,
            }
        })
    }
}

impl Default for ServerConfig {
    /// The defaults with the embedded cluster in
    /// [`pg::default_data_dir`](crate::pg::default_data_dir), durable.
    fn default() -> Self {
        ServerConfig::new(DatabaseSource::Embedded(EmbeddedOptions {
            data_dir: crate::pg::default_data_dir(),
            durable: true,
        }))
    }
}

/// The `--config` file, TOML. Every table and key is optional; unknown
/// keys are an error (a typo must not silently leave ingest open).
///
/// ```toml
/// [tokens]                  # sensor id = bearer token
/// edge-1 = "s3cret-token-for-edge-1"
///
/// [limits]
/// max_body_bytes = 33554432 # request body, as sent
/// max_records = 100000      # records per batch
/// queue_batches = 8         # decoded batches waiting for a writer
/// writers = 2               # writer threads (PostgreSQL connections)
///
/// [retention]
/// days = 30                 # drop partitions older than this; absent = keep
/// partitions_ahead_days = 3 # create daily partitions this far ahead
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[tokens]`: sensor id = bearer token.
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[retention]`.
    #[serde(default)]
    pub retention: RetentionSection,
    /// `[dashboard]`.
    #[serde(default)]
    pub dashboard: DashboardSection,
}

/// The `[dashboard]` table of a [`ConfigFile`]; absent keys keep the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSection {
    /// [`DashboardConfig::read_tokens`].
    pub read_tokens: Option<Vec<String>>,
    /// [`DashboardConfig::query_connections`].
    pub query_connections: Option<usize>,
    /// [`DashboardConfig::client_queue`].
    pub client_queue: Option<usize>,
    /// [`DashboardConfig::max_clients`].
    pub max_clients: Option<usize>,
    /// [`DashboardConfig::stats_window_secs`].
    pub stats_window_secs: Option<u32>,
}

/// The `[limits]` table of a [`ConfigFile`]; absent keys keep the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// [`ServerConfig::max_body_bytes`].
    pub max_body_bytes: Option<usize>,
    /// [`DecodeLimits::max_records`].
    pub max_records: Option<usize>,
    /// [`ServerConfig::queue_batches`].
    pub queue_batches: Option<usize>,
    /// [`ServerConfig::writers`].
    pub writers: Option<usize>,
}

/// The `[retention]` table of a [`ConfigFile`]; absent keys keep the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Days of data kept ([`PartitionPlan::retention_days`]).
    pub days: Option<u32>,
    /// [`PartitionPlan::ahead_days`].
    pub partitions_ahead_days: Option<u32>,
}

impl ConfigFile {
    /// Reads and checks a config file.
    ///
    /// # Errors
    /// [`StoreError::Config`] with the path and what is wrong: unreadable,
    /// bad TOML or an unknown key (with line and column), a limit of 0, a
    /// bad sensor id, an empty token, or one token given to two sensors.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let err = |detail: String| StoreError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let file = Self::parse(&text).map_err(err)?;
        Ok(file)
    }

    /// Parses and checks the text of a config file; the error is for a
    /// human (TOML errors name line and column).
    ///
    /// # Errors
    /// As [`load`](Self::load), without the path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        let limits = [
            ("limits.max_body_bytes", file.limits.max_body_bytes),
            ("limits.max_records", file.limits.max_records),
            ("limits.queue_batches", file.limits.queue_batches),
            ("limits.writers", file.limits.writers),
        ];
        for (name, value) in limits {
            if value == Some(0) {
                return Err(format!("{name} must be at least 1"));
            }
        }
        let dashboard = [
            (
                "dashboard.query_connections",
                file.dashboard.query_connections,
            ),
            ("dashboard.client_queue", file.dashboard.client_queue),
            ("dashboard.max_clients", file.dashboard.max_clients),
            (
                "dashboard.stats_window_secs",
                file.dashboard.stats_window_secs.map(|v| v as usize),
            ),
        ];
        for (name, value) in dashboard {
            if value == Some(0) {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if let Some(t) = &file.dashboard.read_tokens {
            check_read_tokens(t).map_err(|r| format!("dashboard.read_tokens: {r}"))?;
        }
        if file.retention.days == Some(0) {
            return Err(
                "retention.days must be at least 1 (leave it out to keep data forever)".into(),
            );
        }
        check_tokens(&file.tokens).map_err(|r| format!("[tokens]: {r}"))?;
        Ok(file)
    }

    /// Overrides the settings this file gives; the others stay as they are.
    pub fn apply(self, cfg: &mut ServerConfig) {
        if !self.tokens.is_empty() {
            cfg.tokens = self.tokens;
        }
        let l = self.limits;
        if let Some(v) = l.max_body_bytes {
            cfg.max_body_bytes = v;
        }
        if let Some(v) = l.max_records {
            cfg.limits.max_records = v;
        }
        if let Some(v) = l.queue_batches {
            cfg.queue_batches = v;
        }
        if let Some(v) = l.writers {
            cfg.writers = v;
        }
        if let Some(days) = self.retention.days {
            cfg.partitions.retention_days = Some(days);
        }
        if let Some(v) = self.retention.partitions_ahead_days {
            cfg.partitions.ahead_days = v;
        }
        let d = self.dashboard;
        if let Some(v) = d.read_tokens {
            cfg.dashboard.read_tokens = v;
        }
        if let Some(v) = d.query_connections {
            cfg.dashboard.query_connections = v;
        }
        if let Some(v) = d.client_queue {
            cfg.dashboard.client_queue = v;
        }
        if let Some(v) = d.max_clients {
            cfg.dashboard.max_clients = v;
        }
        if let Some(v) = d.stats_window_secs {
            cfg.dashboard.stats_window_secs = v;
        }
    }
}

/// Sensor ids as the wire format allows them, non-empty tokens, and no
/// token shared by two sensors (a token must name exactly one sensor).
fn check_tokens(tokens: &BTreeMap<String, String>) -> Result<(), &'static str> {
    let mut seen = std::collections::HashSet::new();
    for (sensor, token) in tokens {
        let ok_id = (1..=64).contains(&sensor.len())
            && sensor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if !ok_id {
            return Err("a sensor id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -");
        }
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a token must be non-empty, without spaces or control characters");
        }
        if !seen.insert(token.as_str()) {
            return Err("the same token is given to two sensors");
        }
    }
    Ok(())
}

/// Non-empty read tokens without spaces or control characters.
fn check_read_tokens(tokens: &[String]) -> Result<(), &'static str> {
    if tokens
        .iter()
        .any(|t| t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err("a read token must be non-empty, without spaces or control characters");
    }
    Ok(())
}

/// The data directory of an embedded source, for logs.
pub(crate) fn describe(source: &DatabaseSource) -> String {
    match source {
        DatabaseSource::Url(_) => "external PostgreSQL (DATABASE_URL)".to_owned(),
        DatabaseSource::Embedded(o) => {
            format!(
                "embedded PostgreSQL in {}",
                PathBuf::from(&o.data_dir).display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_tables() {
        let f = ConfigFile::parse(
            "[tokens]\nedge-1 = \"abc\"\n[limits]\nmax_body_bytes = 1000\nmax_records = 5\n\
             queue_batches = 2\nwriters = 3\n[retention]\ndays = 7\npartitions_ahead_days = 1\n",
        )
        .unwrap();
        let mut cfg = ServerConfig::new(DatabaseSource::Url("x".into()));
        f.apply(&mut cfg);
        assert_eq!(cfg.tokens["edge-1"], "abc");
        assert_eq!(cfg.max_body_bytes, 1000);
        assert_eq!(cfg.limits.max_records, 5);
        assert_eq!(cfg.queue_batches, 2);
        assert_eq!(cfg.writers, 3);
        assert_eq!(cfg.partitions.retention_days, Some(7));
        assert_eq!(cfg.partitions.ahead_days, 1);
        cfg.validate().unwrap();
    }

    #[test]
    fn empty_file_keeps_defaults() {
        let mut cfg = ServerConfig::new(DatabaseSource::Url("x".into()));
        ConfigFile::parse("").unwrap().apply(&mut cfg);
        assert!(cfg.tokens.is_empty());
        assert_eq!(cfg.max_body_bytes, 32 << 20);
        assert_eq!(cfg.writers, 2);
    }

    #[test]
    fn unknown_key_names_the_line() {
        let e = ConfigFile::parse("[limits]\nwriters = 2\nmax_bodybytes = 3\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("max_bodybytes"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(ConfigFile::parse("[limits]\nwriters = 0\n")
            .unwrap_err()
            .contains("writers"));
        assert!(ConfigFile::parse("[tokens]\n\"a b\" = \"t\"\n").is_err());
        assert!(ConfigFile::parse("[tokens]\na = \"\"\n").is_err());
        assert!(ConfigFile::parse("[tokens]\na = \"t\"\nb = \"t\"\n").is_err());
        assert!(ConfigFile::parse("[limits]\nwriters = -1\n")
            .unwrap_err()
            .contains("line 2"));
    }

    #[test]
    fn load_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.toml");
        std::fs::write(&p, "[tokens\n").unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("server.toml") && e.contains("line 1"), "{e}");
    }
}
