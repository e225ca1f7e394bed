//! Live push to dashboards: `GET /ws/dashboard`.
//!
//! ```text
//!  alert listener thread ── LISTEN netanalyzer_alerts ──┐
//!  (own connection, reconnects, re-reads what it missed) │ publish_alert
//!                                                        v
//!  stats ticker thread ── query_stats + query_sensors ─> Hub ── push ──> ClientQueue ──> socket task ──> client
//!  (own connection, once a second for all clients)       │   (never     (bounded, one    (one per client:
//!                                                        │    waits)     per client)       writes, pings)
//!  GET /ws/dashboard ── register + snapshot, one lock ───┘
//! ```
//!
//! - The [`Hub`] keeps what a new client needs (the 100 alerts with the
//!   newest `last_ts`, each at its newest revision; the latest stats; every
//!   sensor's latest health) and the clients' queues. Every publish happens
//!   under its lock, so all clients see the same order, and a client is
//!   registered and given its snapshot under the same lock: nothing
//!   published falls between the snapshot and the first pushed message.
//! - A publish serializes the message once and pushes the shared text into
//!   every client's [`queue`](queue::ClientQueue); it never waits on a
//!   socket. Each client's socket is written by its own task, so a slow
//!   client only fills its own queue (stats dropped, alerts kept) and is
//!   disconnected when even its alerts pass a hard cap.
//! - Architecture invariant: alerts are never dropped while a client is
//!   connected. A client cut off (overflow, timeout, restart) reconnects
//!   and gets a snapshot.

mod feed;
mod queue;

use super::api;
use super::config::DashboardConfig;
use super::http::App;
use super::metrics::write_family;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
pub(crate) use feed::{start, LiveThreads};
use futures_util::{SinkExt, StreamExt};
use queue::{ClientQueue, CloseReason, Kind, Msg};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Alerts kept for snapshots (those with the newest `last_ts`).
pub(crate) const SNAPSHOT_ALERTS: usize = 100;
/// Alerts and sensor messages queued for one client beyond which it is
/// disconnected (its `stats` are dropped long before, at `client_queue`).
const HARD_QUEUE: usize = 10_000;
/// Messages written to a socket before one flush.
const WRITE_BATCH: usize = 64;
/// A ping is sent after this long with nothing sent.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A client that sends nothing (not even a pong) for this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest message accepted from a client (they only answer pings).
const MAX_CLIENT_MESSAGE: usize = 64 << 10;
/// Read buffer of a connection (the library's default, 128 KiB, is
/// allocated eagerly: 128 MB for 1000 clients that only send pongs).
const READ_BUFFER: usize = 4 << 10;
/// Bytes buffered before a write reaches the socket (each batch is
/// flushed anyway).
const WRITE_BUFFER: usize = 32 << 10;

/// The identity and order of an alert, read from its JSON.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AlertKey {
    /// Decimal string.
    pub(crate) alert_id: String,
    pub(crate) revision: u64,
    pub(crate) last_ts_ms: i64,
    pub(crate) updated_ms: i64,
}

#[derive(Debug)]
struct CachedAlert {
    revision: u64,
    last_ts_ms: i64,
    json: Arc<str>,
}

#[derive(Debug, Default)]
struct State_ {
    clients: HashMap<u64, Arc<ClientQueue>>,
    next_id: u64,
    alerts: HashMap<String, CachedAlert>,
    stats: Option<String>,
    /// sensor_id -> (health without `last_seen_ms`, for change detection;
    /// the JSON text).
    sensors: BTreeMap<String, (serde_json::Value, String)>,
}

/// The hub's counters.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    sent: [AtomicU64; Kind::ALL.len()],
    stats_dropped: AtomicU64,
    disconnects: [AtomicU64; CloseReason::ALL.len()],
    alerts_received: AtomicU64,
    alerts_reread: AtomicU64,
    listen_reconnects: AtomicU64,
    listen_errors: AtomicU64,
    ticks: AtomicU64,
    tick_errors: AtomicU64,
    tick_nanos: AtomicU64,
}

/// Fans alerts, stats and sensor changes out to every WebSocket client.
#[derive(Debug)]
pub(crate) struct Hub {
    cfg: DashboardConfig,
    state: Mutex<State_>,
    m: Counters,
    shutting_down: AtomicBool,
}

/// Why a client was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Full,
    ShuttingDown,
}

/// A registered client: its queue; unregisters on drop.
#[derive(Debug)]
struct ClientHandle {
    hub: Arc<Hub>,
    id: u64,
    queue: Arc<ClientQueue>,
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.hub.lock().clients.remove(&self.id);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Hub {
    /// A hub with no clients.
    pub(crate) fn new(cfg: &DashboardConfig) -> Self {
        Hub {
            cfg: cfg.clone(),
            state: Mutex::new(State_::default()),
            m: Counters::default(),
            shutting_down: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State_> {
        // Every update leaves the state consistent: a panic elsewhere
        // while holding the lock does not poison the hub.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a client and queues its snapshot, under one lock.
    fn register(self: &Arc<Self>) -> Result<ClientHandle, Refused> {
        if self.shutting_down.load(Relaxed) {
            return Err(Refused::ShuttingDown);
        }
        let mut st = self.lock();
        if st.clients.len() >= self.cfg.max_clients {
            self.m.refused.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        }
        let queue = Arc::new(ClientQueue::new(self.cfg.client_queue, HARD_QUEUE));
        queue.push(Msg {
            kind: Kind::Snapshot,
            text: snapshot(&st).into(),
        });
        let id = st.next_id;
        st.next_id += 1;
        st.clients.insert(id, queue.clone());
        self.m.connections.fetch_add(1, Relaxed);
        Ok(ClientHandle {
            hub: self.clone(),
            id,
            queue,
        })
    }

    /// Pushes one message to every client (under the state lock).
    fn broadcast(&self, st: &mut State_, kind: Kind, text: String) {
        let text = Utf8Bytes::from(text);
        let mut gone = Vec::new();
        for (id, q) in &st.clients {
            let p = q.push(Msg {
                kind,
                text: text.clone(),
            });
            if p.stats_dropped {
                self.m.stats_dropped.fetch_add(1, Relaxed);
            }
            if p.overflow {
                gone.push(*id);
            }
        }
        for id in gone {
            st.clients.remove(&id);
        }
    }

    /// Publishes a new or updated alert (`json`: the Alert JSON object,
    /// `key` read from it).
    pub(crate) fn publish_alert(&self, key: &AlertKey, json: &str) {
        let json: Arc<str> = Arc::from(json.trim());
        let mut st = self.lock();
        let newer = st
            .alerts
            .get(&key.alert_id)
            .is_none_or(|c| c.revision <= key.revision);
        if newer {
            st.alerts.insert(
                key.alert_id.clone(),
                CachedAlert {
                    revision: key.revision,
                    last_ts_ms: key.last_ts_ms,
                    json: json.clone(),
                },
            );
            if st.alerts.len() > SNAPSHOT_ALERTS {
                let oldest = st
                    .alerts
                    .iter()
                    .min_by(|a, b| (a.1.last_ts_ms, a.0).cmp(&(b.1.last_ts_ms, b.0)))
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    st.alerts.remove(&k);
                }
            }
        }
        let text = format!(r#"{{"type":"alert","alert":{json}}}"#);
        self.broadcast(&mut st, Kind::Alert, text);
    }

    /// Publishes the stats of this second (`json`: the Stats object).
    pub(crate) fn publish_stats(&self, json: String) {
        let text = format!(r#"{{"type":"stats","stats":{json}}}"#);
        let mut st = self.lock();
        st.stats = Some(json);
        self.broadcast(&mut st, Kind::Stats, text);
    }

    /// Publishes the sensors whose health changed (ignoring
    /// `last_seen_ms`, which moves with every batch).
    pub(crate) fn publish_sensors(&self, sensors: Vec<serde_json::Value>) {
        let mut st = self.lock();
        for s in sensors {
            let id = match s.get("sensor_id") {
                Some(serde_json::Value::String(id)) => id.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let mut cmp = s.clone();
            if let Some(o) = cmp.as_object_mut() {
                o.remove("last_seen_ms");
            }
            let json = s.to_string();
            let changed = st.sensors.get(&id).is_none_or(|(old, _)| *old != cmp);
            if changed {
                let text = format!(r#"{{"type":"sensor","sensor":{json}}}"#);
                self.broadcast(&mut st, Kind::Sensor, text);
            }
            // Always keep the newest (last_seen included) for snapshots.
            st.sensors.insert(id, (cmp, json));
        }
    }

    /// Disconnects every client (close code 1001) and refuses new ones.
    pub(crate) fn shutdown(&self) {
        self.shutting_down.store(true, Relaxed);
        let mut st = self.lock();
        for q in st.clients.values() {
            q.close(CloseReason::Shutdown);
        }
        st.clients.clear();
    }

    /// Clients connected now.
    #[cfg(test)]
    pub(crate) fn clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// Appends the hub's metrics (Prometheus text) to `out`.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let (clients, depth_sum, depth_max) = {
            let st = self.lock();
            let depths: Vec<usize> = st.clients.values().map(|q| q.depth()).collect();
            (
                st.clients.len(),
                depths.iter().sum::<usize>(),
                depths.iter().copied().max().unwrap_or(0),
            )
        };
        let m = &self.m;
        let get = |a: &AtomicU64| a.load(Relaxed) as f64;
        let one = |v: f64| [("", v)];
        write_family(
            out,
            "netanalyzer_ws_clients",
            "gauge",
            "WebSocket dashboard clients connected now.",
            &one(clients as f64),
        );
        write_family(
            out,
            "netanalyzer_ws_connections_total",
            "counter",
            "WebSocket dashboard connections accepted.",
            &one(get(&m.connections)),
        );
        write_family(
            out,
            "netanalyzer_ws_refused_total",
            "counter",
            "WebSocket connections refused with 503 (max_clients reached).",
            &one(get(&m.refused)),
        );
        write_family(
            out,
            "netanalyzer_ws_queue_depth",
            "gauge",
            "Messages queued for all clients together.",
            &one(depth_sum as f64),
        );
        write_family(
            out,
            "netanalyzer_ws_queue_depth_max",
            "gauge",
            "Messages queued for the most backlogged client.",
            &one(depth_max as f64),
        );
        let sent: Vec<(String, f64)> = Kind::ALL
            .iter()
            .map(|k| (format!("type=\"{}\"", k.as_str()), get(&m.sent[k.index()])))
            .collect();
        write_family(
            out,
            "netanalyzer_ws_messages_sent_total",
            "counter",
            "Messages written to client sockets, by type.",
            &sent,
        );
        write_family(
            out,
            "netanalyzer_ws_stats_dropped_total",
            "counter",
            "Stats messages dropped from a full client queue (alerts are never dropped).",
            &one(get(&m.stats_dropped)),
        );
        let gone: Vec<(String, f64)> = CloseReason::ALL
            .iter()
            .map(|r| {
                (
                    format!("reason=\"{}\"", r.as_str()),
                    get(&m.disconnects[r.index()]),
                )
            })
            .collect();
        write_family(
            out,
            "netanalyzer_ws_disconnects_total",
            "counter",
            "Client connections ended, by reason.",
            &gone,
        );
        write_family(
            out,
            "netanalyzer_ws_alerts_received_total",
            "counter",
            "Alert notifications received on LISTEN netanalyzer_alerts.",
            &one(get(&m.alerts_received)),
        );
        write_family(
            out,
            "netanalyzer_ws_alerts_reread_total",
            "counter",
            "Alerts read from the alerts table at start and after a LISTEN reconnect.",
            &one(get(&m.alerts_reread)),
        );
        write_family(
            out,
            "netanalyzer_ws_listen_reconnects_total",
            "counter",
            "LISTEN connections re-established after a failure.",
            &one(get(&m.listen_reconnects)),
        );
        write_family(
            out,
            "netanalyzer_ws_listen_errors_total",
            "counter",
            "Failures of the LISTEN connection (connect, query or lost connection).",
            &one(get(&m.listen_errors)),
        );
        write_family(
            out,
            "netanalyzer_ws_stats_ticks_total",
            "counter",
            "Stats ticks run (one stats and one sensors query each).",
            &one(get(&m.ticks)),
        );
        write_family(
            out,
            "netanalyzer_ws_stats_tick_errors_total",
            "counter",
            "Stats ticks that failed (nothing pushed that second).",
            &one(get(&m.tick_errors)),
        );
        write_family(
            out,
            "netanalyzer_ws_stats_tick_seconds_total",
            "counter",
            "Seconds spent in stats ticks (queries and publishing).",
            &one(get(&m.tick_nanos) / 1e9),
        );
    }
}

/// The snapshot message of a new client.
fn snapshot(st: &State_) -> String {
    let mut alerts: Vec<&CachedAlert> = st.alerts.values().collect();
    alerts.sort_by_key(|a| std::cmp::Reverse(a.last_ts_ms));
    let mut s = String::with_capacity(256 + alerts.iter().map(|a| a.json.len() + 1).sum::<usize>());
    let _ = write!(
        s,
        r#"{{"type":"snapshot","server_ms":{},"stats":{},"sensors":["#,
        now_ms(),
        st.stats.as_deref().unwrap_or("null")
    );
    for (i, (_, json)) in st.sensors.values().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(json);
    }
    s.push_str(r#"],"alerts":["#);
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&a.json);
    }
    s.push_str("]}");
    s
}

/// Query string of `/ws/dashboard`.
#[derive(Debug, Deserialize)]
struct WsParams {
    token: Option<String>,
}

/// The `/ws/dashboard` route.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/ws/dashboard", get(ws_dashboard))
}

async fn ws_dashboard(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(e) = api::check_read(&app, &headers, params.token.as_deref()) {
        return e.into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let client = match app.hub.register() {
        Ok(c) => c,
        Err(refused) => {
            let reason = match refused {
                Refused::Full => format!(
                    "{} dashboard clients are connected (max_clients); retry later",
                    app.dashboard.max_clients
                ),
                Refused::ShuttingDown => "the server is shutting down".to_owned(),
            };
            let mut resp =
                api::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", reason).into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return resp;
        }
    };
    // If the upgrade fails, the closure (and `client`) is dropped, which
    // unregisters it.
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| serve(socket, client))
}

/// Runs one client's connection: writes its queue, pings, reads (pongs,
/// close) until either side ends it.
async fn serve(socket: WebSocket, client: ClientHandle) {
    let (mut tx, mut rx) = socket.split();
    let hub = client.hub.clone();
    let queue = client.queue.clone();
    let reason = {
        let reader = async {
            loop {
                match tokio::time::timeout(IDLE_TIMEOUT, rx.next()).await {
                    Err(_) => return CloseReason::Timeout,
                    Ok(None | Some(Ok(Message::Close(_)))) => return CloseReason::Closed,
                    Ok(Some(Err(_))) => return CloseReason::Error,
                    // Pongs, and anything else a client sends, only prove
                    // it is alive; pings are answered by the library.
                    Ok(Some(Ok(_))) => {}
                }
            }
        };
        let writer = async {
            let mut batch = Vec::with_capacity(WRITE_BATCH);
            loop {
                match tokio::time::timeout(PING_EVERY, queue.next(&mut batch, WRITE_BATCH)).await {
                    Err(_) => {
                        if tx.send(Message::Ping(Default::default())).await.is_err() {
                            return CloseReason::Error;
                        }
                        continue;
                    }
                    Ok(Err(reason)) => return reason,
                    Ok(Ok(())) => {}
                }
                for m in batch.drain(..) {
                    let kind = m.kind;
                    if tx.feed(Message::Text(m.text)).await.is_err() {
                        return CloseReason::Error;
                    }
                    hub.m.sent[kind.index()].fetch_add(1, Relaxed);
                }
                if tx.flush().await.is_err() {
                    return CloseReason::Error;
                }
            }
        };
        tokio::select! {
            r = reader => r,
            r = writer => r,
            // A writer stuck on a full socket still ends on overflow or
            // shutdown.
            r = queue.wait_closed() => r,
        }
    };
    // The queue's own reason (overflow, shutdown) wins over what the
    // socket saw.
    let reason = queue.closed().unwrap_or(reason);
    hub.m.disconnects[reason.index()].fetch_add(1, Relaxed);
    drop(client);
    let code = match reason {
        CloseReason::Shutdown => Some(1001),
        CloseReason::Overflow => Some(1008),
        _ => None,
    };
    if let Some(code) = code {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(if code == 1001 {
                "server shutting down"
            } else {
                "too far behind; reconnect"
            }),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Message::Close(Some(frame))))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u64, revision: u64, last_ts_ms: i64) -> (AlertKey, String) {
        let json = format!(
            r#"{{"alert_id":"{id}","revision":{revision},"last_ts_ms":{last_ts_ms},"updated_ms":1}}"#
        );
        (serde_json::from_str(&json).unwrap(), json)
    }

    fn drain(q: &ClientQueue) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        q.take(&mut out, usize::MAX).unwrap();
        out.iter()
            .map(|m| serde_json::from_str(&m.text).unwrap())
            .collect()
    }

    #[test]
    fn snapshot_keeps_newest_alerts_and_revisions() {
        let hub = Arc::new(Hub::new(&DashboardConfig::default()));
        for i in 0..150 {
            let (k, j) = key(i, 1, i as i64);
            hub.publish_alert(&k, &j);
        }
        let (k, j) = key(149, 2, 149);
        hub.publish_alert(&k, &j);
        // An older revision never replaces a newer one in the snapshot.
        let (k, j) = key(148, 0, 148);
        hub.publish_alert(&k, &j);
        hub.publish_stats(r#"{"window_secs":300}"#.to_owned());
        let c = hub.register().unwrap();
        let msgs = drain(&c.queue);
        assert_eq!(msgs.len(), 1);
        let snap = &msgs[0];
        assert_eq!(snap["type"], "snapshot");
        assert_eq!(snap["stats"]["window_secs"], 300);
        let alerts = snap["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), SNAPSHOT_ALERTS);
        assert_eq!(alerts[0]["alert_id"], "149");
        assert_eq!(alerts[0]["revision"], 2);
        assert_eq!(alerts[1]["revision"], 1);
        assert_eq!(alerts[99]["alert_id"], "50");
        assert_eq!(hub.clients(), 1);
        drop(c);
        assert_eq!(hub.clients(), 0);
    }

    #[test]
    fn pushes_follow_the_snapshot_in_order() {
        let hub = Arc::new(Hub::new(&DashboardConfig::default()));
        let a = hub.register().unwrap();
        let (k, j) = key(1, 1, 1);
        hub.publish_alert(&k, &j);
        hub.publish_stats("{}".to_owned());
        let sensor = |lag: u64, seen: u64| serde_json::json!({"sensor_id": "s1", "ingest_lag_ms": lag, "last_seen_ms": seen});
        hub.publish_sensors(vec![sensor(5, 1)]);
        // Only last_seen moved: no message.
        hub.publish_sensors(vec![sensor(5, 2)]);
        hub.publish_sensors(vec![sensor(9, 3)]);
        let types: Vec<String> = drain(&a.queue)
            .iter()
            .map(|m| m["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types, ["snapshot", "alert", "stats", "sensor", "sensor"]);
        let b = hub.register().unwrap();
        let snap = &drain(&b.queue)[0];
        assert_eq!(snap["sensors"][0]["last_seen_ms"], 3);
        assert_eq!(snap["sensors"][0]["ingest_lag_ms"], 9);
        assert_eq!(snap["alerts"][0]["alert_id"], "1");
    }

    #[test]
    fn max_clients_and_shutdown_refuse() {
        let cfg = DashboardConfig {
            max_clients: 1,
            ..DashboardConfig::default()
        };
        let hub = Arc::new(Hub::new(&cfg));
        let a = hub.register().unwrap();
        assert_eq!(hub.register().unwrap_err(), Refused::Full);
        hub.shutdown();
        assert_eq!(a.queue.closed(), Some(CloseReason::Shutdown));
        drop(a);
        assert_eq!(hub.register().unwrap_err(), Refused::ShuttingDown);
        let mut m = String::new();
        hub.render_metrics(&mut m);
        assert!(m.contains("netanalyzer_ws_refused_total 1\n"), "{m}");
    }
}
