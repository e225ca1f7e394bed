//! The sensor side of the transport: HTTP sink, retries, on-disk spool.
//!
//! [`HttpSink`] is a [`Sink<PacketRecord>`] that carries records to the
//! ingest server (`POST {server}/ingest_packets`) in batches encoded by
//! [`wire::BatchEncoder`]. It is built so that **capture never waits on
//! the network** and **no record is lost silently**.
//!
//! # Data path
//!
//! ```text
//!  capture thread                          sender threads (`senders`, one shared ureq Agent, keep-alive)
//!  write() ─► BatchEncoder ─seal─► bounded channel (queue_batches) ─► POST ×K ─► 2xx: acked
//!                              │                                     │
//!                              └─► spool (segment files) ◄──────────┘ retryable failure
//!                                         │
//!                                         └── replay, claims oldest first ─► POST ×K
//! ```
//!
//! - The capture thread calls [`Sink::write`]; the record is appended to the
//!   encoder's buffer (no allocation per record once warm). A batch is
//!   *sealed* when it holds [`HttpSinkConfig::batch_size`] records, or when
//!   [`HttpSinkConfig::batch_interval`] has passed since its first record.
//!   The clock is read once per batch and then every 256 records, and on
//!   every [`Sink::tick`] (the pump calls it when the source is idle).
//! - A sealed batch goes to the channel **only when the spool is empty**
//!   and the channel has room. Otherwise it is appended to the spool, so
//!   batches stay in order and the capture thread never blocks on HTTP.
//! - [`HttpSinkConfig::senders`] threads (K, default 2) share the channel
//!   (multi-consumer) and one agent, so up to K requests are in flight: the
//!   server acknowledges only after its database commit, and one request
//!   at a time would leave the sensor idle during each commit and the
//!   server's writers idle during each upload.
//! - Each sender takes batches from the channel first (they are always
//!   older than anything in the spool), then *claims* the oldest spool
//!   segment no other sender holds, so no segment is ever sent twice at
//!   once. On a retryable failure of a batch from memory, that sender
//!   *prepends* its batch and everything still in the channel to the spool,
//!   keeping the order; batches other senders hold end normally
//!   (acknowledged, or prepended by their own sender). A sender whose
//!   spooled batch fails releases its claim, so that segment is the next
//!   one claimed. Each sender backs off on its own, exponentially with full
//!   jitter (100 ms doubling to 5 s); a `Retry-After` of a 429/503 (capped
//!   at 60 s) pauses every sender. When the spool is empty again, batches
//!   flow straight through the channel.
//! - **Order.** With one sender, batches are acknowledged in seq order and
//!   the spool is replayed strictly in order. With K senders, requests
//!   still *start* in that order (replay begins with the oldest segment),
//!   but they complete, and reach the server, reordered within a window of
//!   K batches. The server's exactly-once check does not depend on order.
//!
//! # Server answers
//!
//! | answer | effect |
//! |---|---|
//! | 2xx | acknowledged; `{"status":"duplicate"}` is counted in [`TransportStats::batches_duplicate`] |
//! | connection error, timeout, 408, 429, 5xx (503) | retry with backoff; the batch waits in the spool |
//! | 400, 413, 415 | the batch can never succeed: moved to `<spool>/rejected/`, its records counted in [`TransportStats::rejected_records`], one error logged |
//! | 401, 403 | fatal: the batch stays in the spool, every sender stops (requests already in flight end normally), the next `write`/`tick`/`close` returns [`StoreError::Rejected`] |
//! | any other | retried like a 5xx, with a warning |
//!
//! # The spool
//!
//! A directory of segment files, one sealed batch each, named by a
//! monotonically increasing counter (`seg-00000001000000000042.nab`) so the
//! order survives restarts; written to a temporary name, fsynced and
//! renamed; a header with a magic, version, flags, stream/seq, count,
//! length and CRC-32s so a torn or corrupt file is detected and moved to
//! `<spool>/corrupt/` (counted in [`TransportStats::corrupt_segments`]),
//! never sent and never fatal.
//!
//! The spool is bounded by [`HttpSinkConfig::spool_max_bytes`] (a single
//! batch is always accepted into an empty spool; batches the senders put
//! back from memory may exceed the bound by at most `queue_batches +
//! senders` batches, they were already accepted). When a new batch does not fit:
//!
//! - [`SpoolFullPolicy::Block`]: `write()` blocks until the senders free
//!   space. For live capture this pushes back to libpcap, whose buffer
//!   overflows and is counted as kernel drops.
//! - [`SpoolFullPolicy::DropNewest`]: the new batch is dropped, its records
//!   counted in [`TransportStats::dropped_records`] and a warning logged at
//!   most once every 10 s.
//!
//! On [`HttpSink::new`], segments left by an earlier run are sent first.
//! They keep their original sensor, stream and seq, so the server's
//! exactly-once check (sensor, stream, seq) makes a resend harmless. Each
//! sink gets a new stream id ([`wire::new_stream_id`]); seq starts at 0.
//!
//! # Closing
//!
//! [`Sink::close`] seals the last batch and waits until the channel and the
//! spool are empty, i.e. every batch was acknowledged (or rejected). If no
//! batch is acknowledged for [`HttpSinkConfig::drain_timeout`], it stops
//! the senders (after their current requests, bounded by
//! [`HttpSinkConfig::request_timeout`]), moves what is still in memory to
//! the spool, and returns [`StoreError::DrainTimeout`] with the exact
//! remaining record and batch counts. Dropping a sink without closing it
//! does the same without waiting.
//!
//! ```no_run
//! use netanalyzer_core::{PacketRecord, Sink};
//! use netanalyzer_store::transport::{HttpSink, HttpSinkConfig};
//!
//! let mut cfg = HttpSinkConfig::new("http://127.0.0.1:8000", "sensor-1", "/var/spool/na");
//! cfg.token = Some("secret".into());
//! let mut sink = HttpSink::new(cfg)?;
//! sink.write(&PacketRecord::default())?;
//! sink.close()?; // Ok once the server acknowledged everything
//! println!("{} records acknowledged", sink.stats().records_acked);
//! # Ok::<(), netanalyzer_store::StoreError>(())
//! ```

mod sender;
mod spool;
pub mod testing;

use crate::wire::{self, BatchEncoder, EncodedBatch, SensorStats};
use crate::StoreError;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use netanalyzer_core::{Control, PacketRecord, Sink};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to do with a new batch when the spool is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpoolFullPolicy {
    /// `write()` blocks until space frees (capture back-pressure).
    #[default]
    Block,
    /// Drop the new batch and count its records.
    DropNewest,
}

impl FromStr for SpoolFullPolicy {
    type Err = StoreError;

    /// `block` or `drop-newest`.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "block" => Ok(SpoolFullPolicy::Block),
            "drop-newest" => Ok(SpoolFullPolicy::DropNewest),
            _ => Err(StoreError::InvalidSpec {
                spec: s.to_owned(),
                reason: "expected block or drop-newest",
            }),
        }
    }
}

impl fmt::Display for SpoolFullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpoolFullPolicy::Block => "block",
            SpoolFullPolicy::DropNewest => "drop-newest",
        })
    }
}

/// Settings of an [`HttpSink`]. Build with [`HttpSinkConfig::new`], which
/// fills in the defaults, then change fields.
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    /// Base URL of the ingest server, e.g. `http://127.0.0.1:8000`; batches
    /// are POSTed to `{server}/ingest_packets`.
    pub server: String,
    /// This sensor's name: 1 to 64 characters of `[A-Za-z0-9._:-]`.
    pub sensor_id: String,
    /// Bearer token sent as `Authorization: Bearer TOKEN`. Default none
    /// (a server on loopback with no tokens configured).
    pub token: Option<String>,
    /// Records per batch. Default 10,000: big enough for an efficient COPY,
    /// small enough (about 1 MiB of msgpack) to retry cheaply.
    pub batch_size: usize,
    /// A batch is sealed this long after its first record even if not full.
    /// Default 1 s: bounds the latency of a quiet link.
    pub batch_interval: Duration,
    /// Body compression. Default zstd level 3 (about 4x smaller, cheap).
    pub compression: wire::Compression,
    /// Directory of the on-disk spool (created if missing). Use one
    /// directory per sensor.
    pub spool_dir: PathBuf,
    /// Bytes the spool may hold. Default 1 GiB.
    pub spool_max_bytes: u64,
    /// What happens when the spool is full. Default
    /// [`SpoolFullPolicy::Block`]: never lose a record silently.
    pub spool_full: SpoolFullPolicy,
    /// `close()` gives up when no batch was acknowledged for this long.
    /// Default 60 s.
    pub drain_timeout: Duration,
    /// Time limit of one HTTP request, connect to response body. Default
    /// 30 s: a server that is slow (not down) gets time to commit.
    pub request_timeout: Duration,
    /// Sealed batches held in memory for the sender. Default 4; beyond
    /// that, batches go to the spool.
    pub queue_batches: usize,
    /// Sender threads, i.e. HTTP requests in flight at once (each keeps
    /// one keep-alive connection). Default 2, at least 1. The server
    /// acknowledges a batch only after its database commit, so with one
    /// request in flight the sensor waits idle during every commit and
    /// the server's writers during every upload; 2 overlaps them. More
    /// helps only when the server has more writers than that. With K
    /// senders, acknowledgements (and a replayed spool) may come back
    /// reordered within a window of K batches.
    pub senders: usize,
    /// When the memory queue is full but the server is answering (the
    /// spool is empty), wait for room instead of spooling. Default false:
    /// a live capture must not stall (the kernel would drop packets), so
    /// it spills to disk. A capture file loses nothing by waiting, and
    /// waiting spares writing, syncing and reading back every batch.
    pub wait_for_queue: bool,
}

impl HttpSinkConfig {
    /// A configuration with every default (see the fields).
    pub fn new(
        server: impl Into<String>,
        sensor_id: impl Into<String>,
        spool_dir: impl Into<PathBuf>,
    ) -> Self {
        HttpSinkConfig {
            server: server.into(),
            sensor_id: sensor_id.into(),
            token: None,
            batch_size: 10_000,
            batch_interval: Duration::from_secs(1),
            compression: wire::Compression::Zstd(3),
            spool_dir: spool_dir.into(),
            spool_max_bytes: 1 << 30,
            spool_full: SpoolFullPolicy::Block,
            drain_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            queue_batches: 4,
            senders: 2,
            wait_for_queue: false,
        }
    }

    /// The URL batches are POSTed to.
    pub fn ingest_url(&self) -> String {
        format!("{}/ingest_packets", self.server.trim_end_matches('/'))
    }
}

/// Counters of an [`HttpSink`], a snapshot. Every queue has its depth.
#[derive(Debug, Clone, Default)]
pub struct TransportStats {
    /// This sink's stream id.
    pub stream_id: u64,
    /// Batches the server acknowledged (2xx), duplicates included.
    pub batches_acked: u64,
    /// Records in those batches.
    pub records_acked: u64,
    /// Acknowledged batches the server had already stored.
    pub batches_duplicate: u64,
    /// Failed attempts that will be retried.
    pub retries: u64,
    /// Batches in the spool now.
    pub spool_batches: u64,
    /// Records in the spool now.
    pub spool_records: u64,
    /// Bytes of segment files in the spool now.
    pub spool_bytes: u64,
    /// Records written to the spool since start (a batch put back counts
    /// again).
    pub records_spooled_total: u64,
    /// Batches dropped because the spool was full (drop-newest).
    pub dropped_batches: u64,
    /// Records in those batches.
    pub dropped_records: u64,
    /// Batches the server refused for good (400/413/415), now in
    /// `<spool>/rejected/`.
    pub rejected_batches: u64,
    /// Records in those batches.
    pub rejected_records: u64,
    /// Spool segments found torn or corrupt, moved to `<spool>/corrupt/`.
    pub corrupt_segments: u64,
    /// Records whose strings the encoder repaired before sending (a NUL
    /// byte, which PostgreSQL text cannot hold, or an over-long string):
    /// stored, but not byte for byte as captured.
    pub repaired_records: u64,
    /// Sealed batches waiting in the in-memory channel.
    pub queue_depth: usize,
    /// Records accepted by `write` not yet sealed into a batch.
    pub open_records: usize,
    /// The last failure, for a human.
    pub last_error: Option<String>,
}

/// Why the sender stopped for good.
#[derive(Debug, Clone)]
enum Fatal {
    Rejected { status: u16, reason: String },
    Spool { path: PathBuf, msg: String },
}

impl Fatal {
    fn to_error(&self) -> StoreError {
        match self {
            Fatal::Rejected { status, reason } => StoreError::Rejected {
                status: *status,
                reason: reason.clone(),
            },
            Fatal::Spool { path, msg } => StoreError::Spool {
                path: path.clone(),
                source: std::io::Error::other(msg.clone()),
            },
        }
    }
}

/// State shared by the capture side and the sender threads.
struct State {
    spool: spool::Spool,
    stats: TransportStats,
    /// Batches in the channel or in a sender's hand.
    pending_mem: usize,
    fatal: Option<Fatal>,
    shutdown: bool,
    /// Last acknowledgement (or start).
    last_ack: Instant,
    /// No sender starts a request before this (a `Retry-After`).
    pause_until: Option<Instant>,
    last_drop_warn: Option<Instant>,
    reject_logged: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    /// Mirrors `state.fatal.is_some()`, for a cheap check per write.
    fatal: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the spool down with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait_timeout<'a>(&self, g: MutexGuard<'a, State>, d: Duration) -> MutexGuard<'a, State> {
        match self.cond.wait_timeout(g, d) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        }
    }

    fn set_fatal(&self, st: &mut State, f: Fatal) {
        st.stats.last_error = Some(f.to_error().to_string());
        st.fatal = Some(f);
        self.fatal.store(true, Ordering::Release);
        self.cond.notify_all();
    }
}

/// How many records pass between two reads of the clock in `write`.
const CLOCK_EVERY: u32 = 256;

/// The HTTP transport sink. See the [module docs](self) for the design.
pub struct HttpSink {
    cfg: HttpSinkConfig,
    encoder: BatchEncoder,
    stream_id: u64,
    next_seq: u64,
    first_at: Option<Instant>,
    until_clock: u32,
    sensor_stats: SensorStats,
    tx: Sender<EncodedBatch>,
    rx: Receiver<EncodedBatch>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    closed: bool,
}

impl fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSink")
            .field("server", &self.cfg.server)
            .field("sensor_id", &self.cfg.sensor_id)
            .field("stream_id", &self.stream_id)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl HttpSink {
    /// Opens the spool (segments left by an earlier run are sent first),
    /// starts the sender threads and a new stream.
    ///
    /// # Errors
    /// [`StoreError::InvalidSetting`] for a zero batch size, queue or
    /// sender count,
    /// [`StoreError::Spool`] when the spool directory cannot be created or
    /// read, [`StoreError::Http`] when the URL is not `http://` or
    /// `https://`.
    pub fn new(cfg: HttpSinkConfig) -> Result<Self, StoreError> {
        if cfg.batch_size == 0 {
            return Err(StoreError::InvalidSetting {
                name: "batch_size",
                reason: "must be at least 1",
            });
        }
        if cfg.queue_batches == 0 {
            return Err(StoreError::InvalidSetting {
                name: "queue_batches",
                reason: "must be at least 1",
            });
        }
        if cfg.senders == 0 {
            return Err(StoreError::InvalidSetting {
                name: "senders",
                reason: "must be at least 1",
            });
        }
        if !(cfg.server.starts_with("http://") || cfg.server.starts_with("https://")) {
            return Err(StoreError::Http {
                url: cfg.server.clone(),
                detail: "the server URL must start with http:// or https://".into(),
            });
        }
        let spool = spool::Spool::open(&cfg.spool_dir)?;
        if !spool.is_empty() {
            tracing::info!(
                spool = %cfg.spool_dir.display(),
                batches = spool.len(),
                records = spool.records(),
                "sending batches left in the spool by an earlier run first"
            );
        }
        let stream_id = wire::new_stream_id();
        let stats = TransportStats {
            stream_id,
            corrupt_segments: spool.corrupt_at_open,
            ..TransportStats::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                spool,
                stats,
                pending_mem: 0,
                fatal: None,
                shutdown: false,
                last_ack: Instant::now(),
                pause_until: None,
                last_drop_warn: None,
                reject_logged: false,
            }),
            cond: Condvar::new(),
            fatal: AtomicBool::new(false),
        });
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_batches);
        let agent = sender::agent(&cfg);
        let mut threads = Vec::with_capacity(cfg.senders);
        for i in 0..cfg.senders {
            let sender =
                sender::SenderThread::new(&cfg, agent.clone(), rx.clone(), Arc::clone(&shared));
            match std::thread::Builder::new()
                .name(format!("netanalyzer-http-sender-{i}"))
                .spawn(move || sender.run())
            {
                Ok(t) => threads.push(t),
                Err(e) => {
                    shared.lock().shutdown = true;
                    shared.cond.notify_all();
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(StoreError::Http {
                        url: cfg.ingest_url(),
                        detail: format!("cannot start a sender thread: {e}"),
                    });
                }
            }
        }
        Ok(HttpSink {
            encoder: BatchEncoder::new(&cfg.sensor_id, stream_id, cfg.compression),
            cfg,
            stream_id,
            next_seq: 0,
            first_at: None,
            until_clock: CLOCK_EVERY,
            sensor_stats: SensorStats::default(),
            tx,
            rx,
            shared,
            threads,
            closed: false,
        })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        let st = self.shared.lock();
        let mut s = st.stats.clone();
        s.spool_batches = st.spool.len() as u64;
        s.spool_records = st.spool.records();
        s.spool_bytes = st.spool.bytes();
        s.queue_depth = self.rx.len();
        s.open_records = self.encoder.len();
        s.repaired_records = self.encoder.repaired();
        s
    }

    /// This sink's stream id.
    pub fn stream_id(&self) -> u64 {
        self.stream_id
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &std::path::Path {
        &self.cfg.spool_dir
    }

    /// Sets what the sensor reports about itself (packets, kernel drops,
    /// parse errors); attached to the next batches. The spool and drop
    /// fields are filled in by the sink.
    pub fn set_sensor_stats(&mut self, s: SensorStats) {
        let (spool_records, spool_bytes, dropped) = (
            self.sensor_stats.spool_records,
            self.sensor_stats.spool_bytes,
            self.sensor_stats.dropped_records,
        );
        self.sensor_stats = s;
        self.sensor_stats.spool_records = spool_records;
        self.sensor_stats.spool_bytes = spool_bytes;
        self.sensor_stats.dropped_records = dropped;
    }

    fn check_fatal(&self) -> Result<(), StoreError> {
        if self.shared.fatal.load(Ordering::Acquire) {
            if let Some(f) = &self.shared.lock().fatal {
                return Err(f.to_error());
            }
        }
        Ok(())
    }

    /// Seals the open batch (if any) and hands it on.
    fn seal(&mut self) -> Result<(), StoreError> {
        self.first_at = None;
        if self.encoder.is_empty() {
            return Ok(());
        }
        let batch = self
            .encoder
            .finish(self.next_seq, Some(&self.sensor_stats))?;
        self.next_seq += 1;
        self.enqueue(batch)
    }

    /// Sends a sealed batch to the channel, or to the spool (see the module
    /// docs), applying the spool-full policy.
    fn enqueue(&mut self, batch: EncodedBatch) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        let mut batch = batch;
        while st.fatal.is_none() && !st.shutdown && st.spool.is_empty() {
            match self.tx.try_send(batch) {
                Ok(()) => {
                    st.pending_mem += 1;
                    self.note_spool(&st);
                    return Ok(());
                }
                Err(TrySendError::Disconnected(b)) => {
                    batch = b;
                    break;
                }
                Err(TrySendError::Full(b)) => {
                    batch = b;
                    if !self.cfg.wait_for_queue {
                        break;
                    }
                    // Counted as pending while we wait, so a drain never
                    // sees fewer batches than there are.
                    st.pending_mem += 1;
                    drop(st);
                    let sent = self.tx.send_timeout(batch, Duration::from_millis(50));
                    st = shared.lock();
                    match sent {
                        Ok(()) => {
                            self.note_spool(&st);
                            return Ok(());
                        }
                        Err(SendTimeoutError::Timeout(b) | SendTimeoutError::Disconnected(b)) => {
                            st.pending_mem = st.pending_mem.saturating_sub(1);
                            batch = b;
                        }
                    }
                }
            }
        }
        let len = (spool::HEADER_LEN + batch.sensor_id.len() + batch.body.len()) as u64;
        loop {
            // After a fatal answer or at shutdown nothing will free space:
            // keep the batch (one over the bound) rather than lose it.
            let keep = st.fatal.is_some() || st.shutdown;
            if keep || st.spool.is_empty() || st.spool.bytes() + len <= self.cfg.spool_max_bytes {
                let res = st.spool.push_back(&batch);
                if res.is_ok() {
                    st.stats.records_spooled_total += u64::from(batch.count);
                }
                shared.cond.notify_all();
                self.note_spool(&st);
                res?;
                break;
            }
            if self.cfg.spool_full == SpoolFullPolicy::Block {
                st = shared.wait_timeout(st, Duration::from_millis(100));
                continue;
            }
            st.stats.dropped_batches += 1;
            st.stats.dropped_records += u64::from(batch.count);
            if st
                .last_drop_warn
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
            {
                st.last_drop_warn = Some(Instant::now());
                tracing::warn!(
                    spool = %self.cfg.spool_dir.display(),
                    spool_bytes = st.spool.bytes(),
                    dropped_records = st.stats.dropped_records,
                    dropped_batches = st.stats.dropped_batches,
                    "spool full: dropping the newest batches (--spool-full drop-newest)"
                );
            }
            self.note_spool(&st);
            break;
        }
        match &st.fatal {
            Some(f) => Err(f.to_error()),
            None => Ok(()),
        }
    }

    /// Copies the spool figures into the sensor stats sent with the next
    /// batch.
    fn note_spool(&mut self, st: &State) {
        self.sensor_stats.spool_records = st.spool.records();
        self.sensor_stats.spool_bytes = st.spool.bytes();
        self.sensor_stats.dropped_records = st.stats.dropped_records;
    }

    /// Stops the senders (after their current requests) and waits for
    /// them.
    fn stop_senders(&mut self) {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            self.shared.cond.notify_all();
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("an http sender thread panicked");
            }
        }
    }

    /// Stops the senders (after their current requests) and moves every
    /// batch still in memory to the spool, keeping the order.
    fn stop_and_spool(&mut self) -> Result<(), StoreError> {
        self.stop_senders();
        // Channel batches are older than anything in the spool; the open
        // batch is the newest of all.
        let left: Vec<EncodedBatch> = self.rx.try_iter().collect();
        let newest = if self.encoder.is_empty() {
            None
        } else {
            let b = self
                .encoder
                .finish(self.next_seq, Some(&self.sensor_stats))?;
            self.next_seq += 1;
            Some(b)
        };
        let mut st = self.shared.lock();
        st.pending_mem = 0;
        let mut first_err = None;
        for b in left.iter().rev() {
            match st.spool.push_front(b) {
                Ok(()) => st.stats.records_spooled_total += u64::from(b.count),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(b) = newest {
            match st.spool.push_back(&b) {
                Ok(()) => st.stats.records_spooled_total += u64::from(b.count),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Sink<PacketRecord> for HttpSink {
    type Error = StoreError;

    fn write(&mut self, rec: &PacketRecord) -> Result<Control, StoreError> {
        self.check_fatal()?;
        self.encoder.push(rec)?;
        if self.encoder.len() >= self.cfg.batch_size {
            self.seal()?;
            return Ok(Control::Continue);
        }
        match self.first_at {
            None => {
                self.first_at = Some(Instant::now());
                self.until_clock = CLOCK_EVERY;
            }
            Some(t) => {
                self.until_clock -= 1;
                if self.until_clock == 0 {
                    self.until_clock = CLOCK_EVERY;
                    if t.elapsed() >= self.cfg.batch_interval {
                        self.seal()?;
                    }
                }
            }
        }
        Ok(Control::Continue)
    }

    fn tick(&mut self) -> Result<(), StoreError> {
        self.check_fatal()?;
        if self
            .first_at
            .is_some_and(|t| t.elapsed() >= self.cfg.batch_interval)
        {
            self.seal()?;
        }
        Ok(())
    }

    /// Seals the open batch; does not wait for the server.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.check_fatal()?;
        self.seal()
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let sealed = self.seal();
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        let start = Instant::now();
        let outcome = loop {
            if let Some(f) = &st.fatal {
                break Err(Some(f.to_error()));
            }
            if st.pending_mem == 0 && st.spool.is_empty() {
                break Ok(());
            }
            let since = st.last_ack.max(start);
            let idle = since.elapsed();
            if idle >= self.cfg.drain_timeout {
                break Err(None);
            }
            let wait = (self.cfg.drain_timeout - idle).min(Duration::from_millis(100));
            st = shared.wait_timeout(st, wait);
        };
        drop(st);
        let spooled = self.stop_and_spool();
        match outcome {
            Ok(()) => {
                sealed?;
                spooled
            }
            Err(Some(e)) => Err(e),
            Err(None) => {
                spooled?;
                let st = shared.lock();
                tracing::warn!(
                    records = st.spool.records(),
                    batches = st.spool.len(),
                    spool = %st.spool.dir().display(),
                    "drain timeout: the server acknowledged nothing for {:?}",
                    self.cfg.drain_timeout
                );
                Err(StoreError::DrainTimeout {
                    remaining_records: st.spool.records(),
                    remaining_batches: st.spool.len() as u64,
                    spool_dir: st.spool.dir().to_path_buf(),
                })
            }
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            if let Err(e) = self.stop_and_spool() {
                tracing::error!("http sink dropped without close: {e}");
            }
        } else {
            self.stop_senders();
        }
    }
}
