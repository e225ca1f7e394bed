//! The ingest server: HTTP in, writer threads out.
//!
//! [`Server::start`] takes a [`ServerConfig`] (defaults, then a
//! [`ConfigFile`], then flags) and runs until [`Server::shutdown`].
//!
//! # Endpoints
//!
//! - `POST /ingest_packets`: one batch, msgpack or JSON by `Content-Type`
//!   (see [`wire`](crate::wire)), zstd when `Content-Encoding: zstd`,
//!   `Authorization: Bearer <token>` when tokens are configured. Answers
//!   `200 {"status":"stored","records":N}` or
//!   `200 {"status":"duplicate","records":N}` only after the batch's
//!   transaction has committed; every refusal is
//!   `{"error":"<reason>","reason":"<human text>"}` where `<reason>` is a
//!   [`RejectReason`](crate::wire::RejectReason) name, `queue_full` or
//!   `db_down`: 401 no or malformed token, 403 unknown token or the token
//!   of another sensor than the batch's `sensor_id`, 413 body over
//!   [`ServerConfig::max_body_bytes`] (or decoded batch over the
//!   [`DecodeLimits`](crate::wire::DecodeLimits)), 415 unknown
//!   `Content-Type`/`Content-Encoding`, 400 any other bad batch, 503 with
//!   `Retry-After` when the queue is full or the database is down.
//! - `GET /health`: 200 `{"status":"ok","database":"up",...}`, or 503
//!   `{"status":"degraded","database":"down"}`.
//! - `GET /metrics`: Prometheus text; every metric is listed in
//!   `docs/metrics.md`.
//!
//! # Design
//!
//! ```text
//!  HTTP (tokio, 2 workers, axum)            writer threads (N)         PostgreSQL
//!  auth -> read body (<= limit) ->          PacketWriter::write_batch
//!  decode (spawn_blocking, slots) ->  ==>   one transaction: bookkeeping ==> COMMIT
//!  try_send(batch, oneshot)   bounded queue  + binary COPY, then reply
//!  <- await reply -> 200 / 503
//! ```
//!
//! - The HTTP side only authenticates, reads, decodes and enqueues. Bodies
//!   are read with a hard limit (never more than `max_body_bytes` is
//!   buffered) and decoded on the blocking pool; at most
//!   [`ServerConfig::decode_slots`] requests read or decode at once, and
//!   the writer queue holds at most [`ServerConfig::queue_batches`]
//!   batches. Anything beyond answers 503 + `Retry-After` at once, so
//!   memory stays bounded whatever the load (about `decode_slots x
//!   (max_body_bytes + decoded batch)` plus `queue_batches` batches) and the
//!   sensor spools.
//! - `writers` OS threads each own one connection
//!   ([`PacketWriter`](crate::pg::PacketWriter)). A batch's rows and its
//!   `(sensor, stream, seq)` row in `ingest_batches` commit together, and the
//!   HTTP answer is sent only after COMMIT: a batch sent again (its
//!   acknowledgement lost) is answered `duplicate` without writing.
//! - On a database error the transaction is rolled back, the writer
//!   answers 503 (the sensor retries), marks the database down and
//!   reconnects with exponential backoff (100 ms doubling to 5 s). While
//!   it is down, ingest answers 503 at once and `/health` is degraded;
//!   the first successful connect or write marks it up again. Other
//!   writers drop connections opened before the failure and reconnect.
//! - A maintenance thread with its own connection runs
//!   [`pg::maintain`] (partitions ahead, retention)
//!   at start and every [`ServerConfig::maintenance_interval`].
//! - Tokens: with none configured ingest is open, which is allowed only on
//!   a loopback listen address ([`StoreError::InsecureListen`] otherwise).
//!   A token speaks for one sensor: a batch whose `sensor_id` is another
//!   sensor's is refused with 403.
//! - Legacy JSON (a bare array of records, the old system's format): the
//!   sensor is the token's sensor, or `legacy` when ingest is open; each
//!   request gets a fresh random stream id and seq 0, so legacy ingest has
//!   **no exactly-once**: a retried request is stored again.
//! - Shutdown: stop accepting and finish in-flight requests (graceful
//!   axum shutdown), let the writers empty the queue, stop the writers and
//!   the maintenance thread, then stop the embedded cluster if the server
//!   started one.

pub mod api;
mod auth;
mod config;
mod dashboard;
mod http;
mod live;
mod metrics;
mod writer;

pub use config::{
    ConfigFile, DashboardConfig, DashboardSection, DatabaseSource, LimitsSection, RetentionSection,
    ServerConfig,
};
pub use metrics::{escape_label_value, write_family};

use crate::pg::{self, EmbeddedPostgres};
use crate::StoreError;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use writer::Shared;

/// Threads of the tokio runtime that runs axum.
const RUNTIME_WORKERS: usize = 2;
/// How long shutdown waits for in-flight requests before giving up on them.
const GRACE: Duration = Duration::from_secs(30);

/// Asks a running [`Server`] to stop; cheap to clone, usable from a signal
/// handler thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    inner: Arc<ShutdownState>,
}

#[derive(Debug)]
struct ShutdownState {
    requested: Mutex<bool>,
    cond: Condvar,
    notify: tokio::sync::watch::Sender<bool>,
}

impl ShutdownHandle {
    fn new() -> Self {
        ShutdownHandle {
            inner: Arc::new(ShutdownState {
                requested: Mutex::new(false),
                cond: Condvar::new(),
                notify: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// Requests shutdown: [`Server::wait`] returns and the server stops
    /// accepting connections. [`Server::shutdown`] then finishes the job.
    pub fn request(&self) {
        if let Ok(mut r) = self.inner.requested.lock() {
            *r = true;
        }
        self.inner.cond.notify_all();
        self.inner.notify.send_replace(true);
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        self.inner.requested.lock().map(|r| *r).unwrap_or(true)
    }
}

/// A running ingest server.
///
/// Dropping it without [`shutdown`](Self::shutdown) stops it too, less
/// politely (no error is reported).
pub struct Server {
    local_addr: SocketAddr,
    app: Arc<http::App>,
    shutdown: ShutdownHandle,
    runtime: Option<tokio::runtime::Runtime>,
    serve: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    writers: Vec<JoinHandle<()>>,
    maintenance: Option<(crossbeam_channel::Sender<()>, JoinHandle<()>)>,
    live: Option<live::LiveThreads>,
    embedded: Option<EmbeddedPostgres>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("writers", &self.writers.len())
            .field("embedded", &self.embedded.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts the server: checks the config, binds the listen address,
    /// starts the embedded cluster or connects to the given one, applies
    /// migrations, runs partition maintenance once, then spawns the writer
    /// threads, the maintenance thread and the HTTP runtime.
    ///
    /// # Errors
    ///
    /// - [`StoreError::InvalidSetting`] for a bad setting,
    /// - [`StoreError::InsecureListen`] for a non-loopback address with no
    ///   tokens,
    /// - [`StoreError::Bind`] when the address cannot be bound (e.g. the
    ///   port is taken),
    /// - the [`pg`] errors of starting, connecting, migrating,
    /// - [`StoreError::Runtime`] when a thread or the runtime cannot start.
    pub fn start(cfg: ServerConfig) -> Result<Server, StoreError> {
        cfg.validate()?;
        if cfg.tokens.is_empty() && !cfg.listen.ip().is_loopback() {
            return Err(StoreError::InsecureListen { addr: cfg.listen });
        }
        if cfg.dashboard.read_tokens.is_empty() && !cfg.listen.ip().is_loopback() {
            return Err(StoreError::ReadTokenRequired { addr: cfg.listen });
        }
        // Bind first: a taken port fails fast, before a cluster starts.
        let listener = TcpListener::bind(cfg.listen).map_err(|source| StoreError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let runtime_err = |what: &str, e: std::io::Error| StoreError::Runtime {
            detail: format!("{what}: {e}"),
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| runtime_err("listener", e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| runtime_err("listener", e))?;

        tracing::info!("database: {}", config::describe(&cfg.database));
        let (embedded, conninfo) = match cfg.database {
            DatabaseSource::Url(url) => (None, url),
            DatabaseSource::Embedded(opts) => {
                let pg = EmbeddedPostgres::start(opts)?;
                let conninfo = pg.conninfo();
                (Some(pg), conninfo)
            }
        };
        // From here on, a failure drops `embedded`, which stops the cluster.
        let mut client = pg::connect(&conninfo)?;
        let version = pg::migrate(&mut client)?;
        tracing::info!("schema version {version}");

        let shared = Arc::new(Shared::default());
        writer::run_maintenance(&mut client, &cfg.partitions, &shared)?;

        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_batches);
        let writers = writer::spawn_writers(cfg.writers, &conninfo, &rx, &shared)
            .map_err(|e| runtime_err("writer thread", e))?;
        drop(rx);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let maintenance = writer::spawn_maintenance(
            conninfo.clone(),
            client,
            cfg.partitions,
            cfg.maintenance_interval,
            stop_rx,
            shared.clone(),
        )
        .map_err(|e| runtime_err("maintenance thread", e))?;

        let pool = Arc::new(api::QueryPool::new(
            &conninfo,
            cfg.dashboard.query_connections,
            cfg.dashboard.query_timeout,
        ));
        let hub = Arc::new(live::Hub::new(&cfg.dashboard));
        let live_threads =
            live::start(&conninfo, hub.clone()).map_err(|e| runtime_err("live threads", e))?;
        let app = Arc::new(http::App {
            shared: shared.clone(),
            tokens: auth::Tokens::new(&cfg.tokens),
            queue: tx,
            queue_capacity: cfg.queue_batches,
            decode_slots: Arc::new(tokio::sync::Semaphore::new(cfg.decode_slots)),
            max_body_bytes: cfg.max_body_bytes,
            limits: cfg.limits,
            retry_after: cfg.retry_after_secs.into(),
            pool,
            hub,
            dashboard: cfg.dashboard,
        });
        let shutdown = ShutdownHandle::new();
        let mut server = Server {
            local_addr,
            app: app.clone(),
            shutdown: shutdown.clone(),
            runtime: None,
            serve: None,
            writers,
            maintenance: Some((stop_tx, maintenance)),
            live: Some(live_threads),
            embedded,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_WORKERS)
            .thread_name("na-http")
            .enable_all()
            .build()
            .map_err(|e| runtime_err("tokio runtime", e))?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(|e| runtime_err("listener", e))?
        };
        let mut stop = shutdown.inner.notify.subscribe();
        let router = http::router(app);
        server.serve = Some(runtime.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }));
        server.runtime = Some(runtime);
        tracing::debug!("listening on http://{local_addr}");
        Ok(server)
    }

    /// The address the server listens on (with the real port when the
    /// config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The current metrics, Prometheus text format (as `GET /metrics`).
    pub fn metrics(&self) -> String {
        self.app.render_metrics()
    }

    /// Whether the database is believed up (as `GET /health`).
    pub fn database_up(&self) -> bool {
        self.app.shared.db_up()
    }

    /// A handle that requests shutdown, e.g. from a signal handler.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Blocks until shutdown is requested through a [`ShutdownHandle`] (the
    /// binary requests it on SIGINT/SIGTERM), or the HTTP server stopped on
    /// its own.
    pub fn wait(&self) {
        let state = &self.shutdown.inner;
        let Ok(mut requested) = state.requested.lock() else {
            return;
        };
        while !*requested {
            if self.serve.as_ref().is_none_or(|s| s.is_finished()) {
                return;
            }
            match state
                .cond
                .wait_timeout(requested, Duration::from_millis(500))
            {
                Ok((guard, _)) => requested = guard,
                Err(_) => return,
            }
        }
    }

    /// Stops gracefully: stops accepting connections, answers the requests
    /// in flight (their batches are written), lets the writers finish the
    /// queue, stops the writer and maintenance threads, then stops the
    /// embedded cluster if this server started one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Runtime`] when the HTTP server had failed or a thread
    /// panicked; the error of stopping the embedded cluster.
    pub fn shutdown(mut self) -> Result<(), StoreError> {
        let mut result = self.stop();
        if let Some(pg) = self.embedded.take() {
            let stopped = pg.stop();
            if result.is_ok() {
                result = stopped;
            }
        }
        result
    }

    /// Everything of shutdown but the embedded cluster.
    fn stop(&mut self) -> Result<(), StoreError> {
        let mut problems = Vec::new();
        self.shutdown.request();
        if let (Some(rt), Some(serve)) = (self.runtime.as_ref(), self.serve.take()) {
            match rt.block_on(async { tokio::time::timeout(GRACE, serve).await }) {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => problems.push(format!("http server: {e}")),
                Ok(Err(e)) => problems.push(format!("http server task: {e}")),
                Err(_) => problems.push(format!(
                    "requests still running after {GRACE:?}; closed them"
                )),
            }
        }
        // No new batches can arrive now: writers drain the queue and exit.
        self.app.shared.stopping.store(true, Ordering::Relaxed);
        for w in self.writers.drain(..) {
            if w.join().is_err() {
                problems.push("a writer thread panicked".to_owned());
            }
        }
        if let Some(live) = self.live.take() {
            live.stop();
        }
        if let Some((stop, handle)) = self.maintenance.take() {
            let _ = stop.send(());
            if handle.join().is_err() {
                problems.push("the maintenance thread panicked".to_owned());
            }
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Runtime {
                detail: problems.join("; "),
            })
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            if let Err(e) = self.stop() {
                tracing::warn!("server stop: {e}");
            }
        }
        // `embedded` stops the cluster in its own Drop.
    }
}
