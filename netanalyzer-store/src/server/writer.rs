//! Writer threads (one PostgreSQL connection each) and the maintenance
//! thread.

use super::metrics::Metrics;
use crate::pg::{self, PacketWriter, PartitionPlan, WriteOutcome};
use crate::wire::SensorStats;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use netanalyzer_core::PacketBatch;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// First reconnect delay after a failure; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an idle writer looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// State shared by the HTTP side, the writers and the maintenance thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Counters.
    pub(crate) metrics: Metrics,
    /// False from a failed database operation until the next success.
    db_down: AtomicBool,
    /// Bumped each time an established connection fails: a writer whose
    /// connection is older reconnects before its next batch, so a batch is
    /// not sent down a connection already known to be dead.
    down_epoch: AtomicU64,
    /// Set once the HTTP side has stopped: writers finish the queue and exit.
    pub(crate) stopping: AtomicBool,
}

impl Shared {
    /// Whether the database is believed up.
    pub(crate) fn db_up(&self) -> bool {
        !self.db_down.load(Ordering::Relaxed)
    }

    fn set_db_up(&self, up: bool) {
        let was_down = self.db_down.swap(!up, Ordering::Relaxed);
        if was_down && up {
            tracing::info!("database is up again");
        } else if !was_down && !up {
            tracing::warn!("database is down: ingest answers 503 until it is back");
        }
    }
}

/// What a writer answers for one batch: the outcome after COMMIT, or why
/// it was not written (the transaction was rolled back).
pub(crate) type JobResult = Result<WriteOutcome, String>;

/// One decoded batch on its way to a writer.
pub(crate) struct Job {
    /// The batch (sensor, stream and seq filled in).
    pub(crate) batch: PacketBatch,
    /// The sensor's statistics from the batch envelope, stored in its
    /// `sensors` row with the batch.
    pub(crate) stats: Option<SensorStats>,
    /// Where the outcome goes; the HTTP handler waits on it.
    pub(crate) reply: oneshot::Sender<JobResult>,
}

/// Starts `n` writer threads reading `rx`.
pub(crate) fn spawn_writers(
    n: usize,
    conninfo: &str,
    rx: &Receiver<Job>,
    shared: &Arc<Shared>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..n)
        .map(|i| {
            let (conninfo, rx, shared) = (conninfo.to_owned(), rx.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("na-writer-{i}"))
                .spawn(move || Writer::new(conninfo, shared).run(&rx))
        })
        .collect()
}

/// One writer thread's state.
struct Writer {
    conninfo: String,
    shared: Arc<Shared>,
    /// The connection and the `down_epoch` it was opened in.
    conn: Option<(PacketWriter, u64)>,
    backoff: Duration,
    next_try: Instant,
    /// A failure happened since the last successful connect.
    failed: bool,
}

impl Writer {
    fn new(conninfo: String, shared: Arc<Shared>) -> Self {
        Writer {
            conninfo,
            shared,
            conn: None,
            backoff: MIN_BACKOFF,
            next_try: Instant::now(),
            failed: false,
        }
    }

    fn run(mut self, rx: &Receiver<Job>) {
        loop {
            self.ensure_connected();
            let wait = if self.conn.is_some() {
                POLL
            } else {
                self.next_try
                    .saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), POLL)
            };
            match rx.recv_timeout(wait) {
                Ok(job) => self.handle(job),
                Err(RecvTimeoutError::Timeout) => {
                    if self.shared.stopping.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Drops a connection older than the last failure, and (re)connects
    /// when the backoff allows.
    fn ensure_connected(&mut self) {
        let epoch = self.shared.down_epoch.load(Ordering::Relaxed);
        if matches!(&self.conn, Some((w, e)) if *e < epoch || w.is_closed()) {
            self.conn = None;
            self.failed = true;
        }
        if self.conn.is_some() || Instant::now() < self.next_try {
            return;
        }
        match pg::connect(&self.conninfo) {
            Ok(client) => {
                self.conn = Some((PacketWriter::new(client), epoch));
                self.backoff = MIN_BACKOFF;
                if self.failed {
                    self.failed = false;
                    self.shared.metrics.reconnect();
                    tracing::info!("writer reconnected to the database");
                }
                self.shared.set_db_up(true);
            }
            Err(e) => {
                self.shared.metrics.db_error();
                self.shared.set_db_up(false);
                self.failed = true;
                tracing::debug!("writer cannot connect (retry in {:?}): {e}", self.backoff);
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn handle(&mut self, job: Job) {
        if self.conn.is_none() {
            // Waiting out a backoff: another writer may have found the
            // database back already, so try once now rather than refuse.
            self.next_try = Instant::now();
            self.ensure_connected();
        }
        let Some((writer, _)) = &mut self.conn else {
            let _ = job.reply.send(Err("the database is down".to_owned()));
            return;
        };
        let started = Instant::now();
        let result = writer.write_batch_with_stats(&job.batch, job.stats.as_ref());
        let took = started.elapsed();
        let reply = match result {
            Ok(outcome) => {
                match outcome {
                    WriteOutcome::Inserted { rows } => self.shared.metrics.stored(rows, took),
                    WriteOutcome::Duplicate => self.shared.metrics.duplicate(),
                }
                self.shared.set_db_up(true);
                Ok(outcome)
            }
            Err(e) => {
                // The transaction is rolled back (or the connection is
                // gone): nothing of the batch is stored, the sensor retries.
                self.shared.metrics.db_error();
                tracing::warn!(
                    sensor = %job.batch.sensor_id,
                    stream = job.batch.stream_id,
                    seq = job.batch.seq,
                    "batch not written: {e}"
                );
                if !connection_lost(&e, writer) {
                    // The database answered (e.g. a statement error): keep
                    // the connection, the database is not down.
                    let _ = job.reply.send(Err(e.to_string()));
                    return;
                }
                self.shared.down_epoch.fetch_add(1, Ordering::Relaxed);
                self.shared.set_db_up(false);
                self.conn = None;
                self.failed = true;
                self.next_try = Instant::now() + MIN_BACKOFF;
                self.backoff = MIN_BACKOFF * 2;
                Err(e.to_string())
            }
        };
        let _ = job.reply.send(reply);
    }
}

/// Whether a failed write means the connection (or the server) is gone,
/// rather than one statement failing on a working connection.
fn connection_lost(e: &crate::StoreError, writer: &PacketWriter) -> bool {
    if writer.is_closed() {
        return true;
    }
    match e {
        // No SQLSTATE: an I/O or protocol error. Class 08: connection
        // exception; 57: operator intervention (shutdown, terminated).
        crate::StoreError::Postgres { source, .. } => source
            .code()
            .is_none_or(|c| matches!(c.code().get(..2), Some("08" | "57"))),
        _ => false,
    }
}

/// Runs [`pg::maintain`] every `interval` on its own connection until
/// `stop` is dropped or sent to.
pub(crate) fn spawn_maintenance(
    conninfo: String,
    client: postgres::Client,
    plan: PartitionPlan,
    interval: Duration,
    stop: Receiver<()>,
    shared: Arc<Shared>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("na-maintenance".into())
        .spawn(move || {
            let mut client = Some(client);
            // A message or a dropped sender both mean stop.
            while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
                if client.as_ref().is_none_or(|c| c.is_closed()) {
                    client = match pg::connect(&conninfo) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            shared.metrics.db_error();
                            tracing::warn!("maintenance cannot connect: {e}");
                            continue;
                        }
                    };
                }
                if let Some(c) = client.as_mut() {
                    if run_maintenance(c, &plan, &shared).is_err() {
                        client = None;
                    }
                }
            }
        })
}

/// One maintenance pass; errors are counted and logged.
pub(crate) fn run_maintenance(
    client: &mut postgres::Client,
    plan: &PartitionPlan,
    shared: &Shared,
) -> Result<(), crate::StoreError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match pg::maintain(client, plan, now) {
        Ok(report) => {
            shared
                .metrics
                .partitions(u64::from(report.created), report.dropped.len() as u64);
            if report.created > 0 || !report.dropped.is_empty() {
                tracing::info!(
                    created = report.created,
                    dropped = report.dropped.len(),
                    "partition maintenance"
                );
            }
            Ok(())
        }
        Err(e) => {
            shared.metrics.db_error();
            tracing::warn!("partition maintenance failed: {e}");
            Err(e)
        }
    }
}
