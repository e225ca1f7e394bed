//! The two threads that feed the [`Hub`]: the alert listener and the stats
//! ticker, each with its own PostgreSQL connection.
//!
//! - Listener: `LISTEN netanalyzer_alerts`, then reads the alerts it may
//!   have missed (at start: the 100 with the newest `last_ts`; after a
//!   reconnect: every alert whose `updated_at` is at most [`MARGIN`] before
//!   the last moment the previous connection was known to be listening),
//!   then forwards every notification. Alerts are forwarded only when their
//!   revision is newer than the one already forwarded, so the re-read
//!   sends no duplicates. It reconnects with backoff (100 ms doubling to
//!   5 s) and checks its connection every [`HEALTH_EVERY`].
//! - Ticker: once a second, [`query_stats`] over
//!   `stats_window_secs` and [`query_sensors`]: one query of each per
//!   second for all clients together.

use super::{AlertKey, Hub, SNAPSHOT_ALERTS};
use crate::flowdb::{alert_json, ALERT_CHANNEL};
use crate::pg::pg_err;
use crate::server::api::stats::{query_sensors, query_stats, StatsQuery};
use crate::StoreError;
use netanalyzer_core::{Alert, Severity};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far before the last moment it was known to be listening the
/// listener re-reads after a reconnect: covers transactions that started
/// (`updated_at = now()` is the transaction start) before it and committed
/// after, and notifications in flight when the connection died.
const MARGIN: Duration = Duration::from_secs(30);
/// The listener checks its connection (and moves its watermark) this often.
const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// Longest wait for notifications before looking at the stop flag.
const POLL: Duration = Duration::from_millis(200);
/// Most alerts re-read after one reconnect.
const REREAD_MAX: i64 = 10_000;
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Connect timeout when the conninfo sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Ticker period.
const TICK: Duration = Duration::from_secs(1);

const ALERT_COLUMNS: &str = "alert_id, (extract(epoch FROM window_start) * 1000000)::int8, \
    (extract(epoch FROM first_ts) * 1000000)::int8, (extract(epoch FROM last_ts) * 1000000)::int8, \
    class, severity, confidence, sources, source_count, target, flow_count, packet_count, \
    model_version, revision, (extract(epoch FROM updated_at) * 1000)::int8";

/// The threads feeding the hub: the alert listener (LISTEN) and the stats
/// ticker.
#[derive(Debug)]
pub(crate) struct LiveThreads {
    stop: Arc<AtomicBool>,
    hub: Arc<Hub>,
    threads: Vec<JoinHandle<()>>,
}

impl LiveThreads {
    /// Disconnects every client (close 1001), then stops and joins the
    /// threads (within about [`POLL`], or a connect timeout).
    pub(crate) fn stop(self) {
        self.stop.store(true, Relaxed);
        self.hub.shutdown();
        for t in self.threads {
            if t.join().is_err() {
                tracing::warn!("a live thread panicked");
            }
        }
    }
}

/// Starts the listener and ticker threads.
///
/// # Errors
///
/// When a thread cannot be spawned.
pub(crate) fn start(conninfo: &str, hub: Arc<Hub>) -> std::io::Result<LiveThreads> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut live = LiveThreads {
        stop: stop.clone(),
        hub: hub.clone(),
        threads: Vec::new(),
    };
    // The first connection and the load of the newest alerts happen here,
    // so the first client's snapshot has them; on failure the thread
    // retries.
    let mut listener = Listener::new(hub.clone());
    let first = match listener.open(conninfo) {
        Ok(c) => Some(c),
        Err(e) => {
            hub.m.listen_errors.fetch_add(1, Relaxed);
            tracing::warn!("dashboard alert listener: {e}; retrying");
            None
        }
    };
    let (c, s) = (conninfo.to_owned(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("na-live-listen".into())
        .spawn(move || listener.run(&c, &s, first));
    match thread {
        Ok(t) => live.threads.push(t),
        Err(e) => {
            live.stop();
            return Err(e);
        }
    }
    let (c, h, s) = (conninfo.to_owned(), hub, stop);
    let ticker = std::thread::Builder::new()
        .name("na-live-tick".into())
        .spawn(move || run_ticker(&c, &h, &s));
    match ticker {
        Ok(t) => live.threads.push(t),
        Err(e) => {
            live.stop();
            return Err(e);
        }
    }
    Ok(live)
}

/// Connects with a connect timeout and a recognizable application name.
fn connect(conninfo: &str, app: &str) -> Result<Client, StoreError> {
    let mut cfg: postgres::Config = conninfo.parse().map_err(pg_err("live: connect"))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    cfg.application_name(app);
    cfg.connect(postgres::NoTls)
        .map_err(pg_err("live: connect"))
}

/// Sleeps `d` in slices, returning early (false) when `stop` is set.
fn sleep(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(POLL));
    }
}

fn ms_to_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH
    }
}

/// The alert listener's state across reconnects.
struct Listener {
    hub: Arc<Hub>,
    /// alert_id -> (newest revision forwarded, its updated_ms).
    seen: HashMap<String, (u64, i64)>,
    /// DB clock (ms) when a connection was last known to be listening and
    /// up to date; None before the first connection.
    alive_ms: Option<i64>,
}

impl Listener {
    fn new(hub: Arc<Hub>) -> Self {
        Listener {
            hub,
            seen: HashMap::new(),
            alive_ms: None,
        }
    }

    fn run(mut self, conninfo: &str, stop: &AtomicBool, first: Option<Client>) {
        let mut backoff = BACKOFF_MIN;
        let mut client = first;
        while !stop.load(Relaxed) {
            let c = match client.take() {
                Some(c) => Ok(c),
                None => self.open(conninfo).inspect(|_| {
                    self.hub.m.listen_reconnects.fetch_add(1, Relaxed);
                }),
            };
            let result = c.and_then(|c| {
                backoff = BACKOFF_MIN;
                self.listen(c, stop)
            });
            match result {
                Ok(()) => return,
                Err(e) => {
                    self.hub.m.listen_errors.fetch_add(1, Relaxed);
                    tracing::warn!("dashboard alert listener: {e}; reconnecting in {backoff:?}");
                }
            }
            if !sleep(backoff, stop) {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Connects, LISTENs, then forwards what may have been missed: at the
    /// first connection the 100 alerts with the newest `last_ts`, later
    /// every alert updated since [`MARGIN`] before the last moment the
    /// previous connection was known to be listening.
    fn open(&mut self, conninfo: &str) -> Result<Client, StoreError> {
        let mut c = connect(conninfo, "netanalyzer-live-listen")?;
        c.batch_execute(&format!("LISTEN {ALERT_CHANNEL}"))
            .map_err(pg_err("live: listen"))?;
        let listening_ms = db_now_ms(&mut c)?;
        let rows = match self.alive_ms {
            None => c
                .query(
                    &format!(
                        "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY last_ts DESC LIMIT {SNAPSHOT_ALERTS}"
                    ),
                    &[],
                )
                .map_err(pg_err("live: load alerts"))?,
            Some(alive) => {
                let since = ms_to_time(alive - MARGIN.as_millis() as i64);
                c.query(
                    &format!(
                        "SELECT {ALERT_COLUMNS} FROM alerts WHERE updated_at > $1 \
                         ORDER BY updated_at LIMIT {REREAD_MAX}"
                    ),
                    &[&since],
                )
                .map_err(pg_err("live: re-read alerts"))?
            }
        };
        let mut loaded: Vec<(AlertKey, String)> = rows.iter().filter_map(row_alert).collect();
        // Oldest first, as they happened.
        loaded.sort_by_key(|(k, _)| (k.updated_ms, k.last_ts_ms));
        for (key, json) in loaded {
            self.hub.m.alerts_reread.fetch_add(1, Relaxed);
            self.forward(&key, &json);
        }
        self.alive_ms = Some(listening_ms);
        Ok(c)
    }

    /// Forwards notifications until `stop` (Ok) or the connection fails.
    fn listen(&mut self, mut c: Client, stop: &AtomicBool) -> Result<(), StoreError> {
        let mut last_check = Instant::now();
        loop {
            if stop.load(Relaxed) {
                return Ok(());
            }
            // Wait for one, then take those already here: forwarded at
            // once, never held back for a batch.
            let mut got = Vec::new();
            {
                let mut n = c.notifications();
                let first = n.timeout_iter(POLL).next();
                if let Some(m) = first.map_err(pg_err("live: notifications"))? {
                    got.push(m);
                    let mut more = n.iter();
                    while got.len() < 256 {
                        match more.next().map_err(pg_err("live: notifications"))? {
                            Some(m) => got.push(m),
                            None => break,
                        }
                    }
                }
            }
            for m in &got {
                self.hub.m.alerts_received.fetch_add(1, Relaxed);
                match serde_json::from_str::<AlertKey>(m.payload()) {
                    Ok(key) => self.forward(&key, m.payload()),
                    Err(e) => tracing::debug!("alert notification not understood: {e}"),
                }
            }
            if c.is_closed() {
                return Err(StoreError::Runtime {
                    detail: "live: the LISTEN connection closed".to_owned(),
                });
            }
            if last_check.elapsed() >= HEALTH_EVERY {
                let now = db_now_ms(&mut c)?;
                self.alive_ms = Some(now);
                last_check = Instant::now();
                let keep = now - 3 * MARGIN.as_millis() as i64;
                self.seen.retain(|_, (_, updated)| *updated >= keep);
            }
        }
    }

    /// Forwards an alert unless this revision (or a newer one) was
    /// forwarded already.
    fn forward(&mut self, key: &AlertKey, json: &str) {
        if let Some((rev, _)) = self.seen.get(&key.alert_id) {
            if *rev >= key.revision {
                return;
            }
        }
        self.seen
            .insert(key.alert_id.clone(), (key.revision, key.updated_ms));
        self.hub.publish_alert(key, json);
    }
}

/// The database clock, ms since the Unix epoch.
fn db_now_ms(c: &mut Client) -> Result<i64, StoreError> {
    c.query_one(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8",
        &[],
    )
    .and_then(|r| r.try_get(0))
    .map_err(pg_err("live: check connection"))
}

/// An `alerts` row ([`ALERT_COLUMNS`]) as its key and Alert JSON (the same
/// JSON the NOTIFY payload carries, with `updated_ms` from `updated_at`).
fn row_alert(r: &postgres::Row) -> Option<(AlertKey, String)> {
    let us = |i: usize| -> Option<u64> {
        let v: i64 = r.try_get(i).ok()?;
        Some(u64::try_from(v).unwrap_or(0) * 1000)
    };
    let count = |i: usize| -> Option<u64> {
        let v: i64 = r.try_get(i).ok()?;
        Some(u64::try_from(v).unwrap_or(0))
    };
    let severity: &str = r.try_get(5).ok()?;
    let alert = Alert {
        alert_id: r.try_get::<_, i64>(0).ok()? as u64,
        window_start_ns: us(1)?,
        first_ts_ns: us(2)?,
        last_ts_ns: us(3)?,
        class: r.try_get(4).ok()?,
        severity: severity.parse::<Severity>().ok()?,
        confidence: r.try_get(6).ok()?,
        sources: r.try_get(7).ok()?,
        source_count: count(8)?,
        target: r.try_get(9).ok()?,
        flow_count: count(10)?,
        packet_count: count(11)?,
        model_version: r.try_get(12).ok()?,
        flow_ids: Vec::new(),
        revision: count(13)?,
    };
    let updated_ms: i64 = r.try_get(14).ok()?;
    let json = alert_json(&alert, u64::try_from(updated_ms).unwrap_or(0)).to_string();
    let key = AlertKey {
        alert_id: (alert.alert_id as i64).to_string(),
        revision: alert.revision,
        last_ts_ms: (alert.last_ts_ns / 1_000_000) as i64,
        updated_ms,
    };
    Some((key, json))
}

/// The ticker: stats and sensors once a second.
fn run_ticker(conninfo: &str, hub: &Hub, stop: &AtomicBool) {
    let q = StatsQuery {
        window_secs: hub.cfg.stats_window_secs,
        to_ns: None,
    };
    let timeout_ms = hub.cfg.query_timeout.as_millis();
    let mut client: Option<Client> = None;
    let mut backoff = BACKOFF_MIN;
    let mut retry_at = Instant::now();
    let mut failing = false;
    let mut next = Instant::now();
    loop {
        if !sleep(next.saturating_duration_since(Instant::now()), stop) {
            return;
        }
        next += TICK;
        if next < Instant::now() {
            next = Instant::now() + TICK;
        }
        let t0 = Instant::now();
        if client.is_none() {
            if t0 < retry_at {
                continue;
            }
            let opened = connect(conninfo, "netanalyzer-live-tick").and_then(|mut c| {
                c.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
                    .map_err(pg_err("live: set statement_timeout"))?;
                Ok(c)
            });
            match opened {
                Ok(c) => {
                    client = Some(c);
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    hub.m.tick_errors.fetch_add(1, Relaxed);
                    if !failing {
                        tracing::warn!("dashboard stats: {e}; retrying");
                        failing = true;
                    }
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let got = query_stats(c, &q).and_then(|s| Ok((s, query_sensors(c)?)));
        match got {
            Ok((stats, sensors)) => {
                failing = false;
                if let Ok(json) = serde_json::to_string(&stats) {
                    hub.publish_stats(json);
                }
                let sensors: Vec<serde_json::Value> = sensors
                    .iter()
                    .filter_map(|s| serde_json::to_value(s).ok())
                    .collect();
                hub.publish_sensors(sensors);
                hub.m.ticks.fetch_add(1, Relaxed);
            }
            Err(e) => {
                hub.m.tick_errors.fetch_add(1, Relaxed);
                if !failing {
                    tracing::warn!("dashboard stats: {e}");
                    failing = true;
                }
                if c.is_closed() {
                    client = None;
                }
            }
        }
        hub.m
            .tick_nanos
            .fetch_add(t0.elapsed().as_nanos() as u64, Relaxed);
    }
}
