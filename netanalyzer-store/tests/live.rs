//! `GET /ws/dashboard` against a real server on a `pg::TestDb`, with
//! tokio-tungstenite clients and alerts committed through the real
//! aggregator path (`flowdb::commit`: upsert + NOTIFY in one transaction).
//! Skips when no PostgreSQL is available, except under `CI=true`.

use futures_util::StreamExt;
use netanalyzer_core::{Alert, Severity};
use netanalyzer_store::flowdb::{self, FlowCommit, Position};
use netanalyzer_store::pg::TestDb;
use netanalyzer_store::server::{DatabaseSource, Server, ServerConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(db: &TestDb) -> ServerConfig {
    let mut cfg = ServerConfig::new(DatabaseSource::Url(db.conninfo()));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.writers = 1;
    cfg
}

fn alert(id: u64, revision: u64) -> Alert {
    let t = now_ns();
    Alert {
        alert_id: id,
        window_start_ns: t - 5_000_000_000,
        first_ts_ns: t - 4_000_000_000,
        last_ts_ns: t,
        class: "DDoS".into(),
        severity: Severity::Critical,
        confidence: 0.93,
        sources: (1..=10).map(|i| format!("10.1.0.{i}")).collect(),
        source_count: 10,
        target: "10.0.0.5".into(),
        flow_count: 10 * revision,
        packet_count: 100 * revision,
        model_version: "m-test".into(),
        flow_ids: vec![1, 2],
        revision,
    }
}

/// Commits alerts through the aggregator's path.
struct Committer {
    c: postgres::Client,
    batch: i64,
}

impl Committer {
    fn new(db: &TestDb) -> Self {
        Committer {
            c: db.client(),
            batch: 0,
        }
    }

    fn commit(&mut self, alerts: &[Alert]) {
        self.batch += 1;
        flowdb::commit(
            &mut self.c,
            &FlowCommit {
                consumer: "live-test",
                position: Position {
                    xid: 1,
                    batch_id: self.batch,
                },
                state: b"",
                flows: &[],
                model_version: "m-test",
                alerts,
                rows: 0,
                batches: 0,
                active_flows: None,
            },
        )
        .unwrap();
    }
}

async fn connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/dashboard"))
        .await
        .unwrap();
    ws
}

/// The next text message as JSON (pings and pongs skipped); None on
/// timeout or close.
async fn next_json(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let end = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The next message of type `ty`, others skipped.
async fn next_of(ws: &mut Ws, ty: &str, timeout: Duration) -> Option<Value> {
    let end = tokio::time::Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let v = next_json(ws, left).await?;
        if v["type"] == ty {
            return Some(v);
        }
    }
}

fn metrics(addr: SocketAddr) -> String {
    ureq::get(format!("http://{addr}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

/// Waits until `series` satisfies `ok`.
fn wait_metric(addr: SocketAddr, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let v = metric(&metrics(addr), series);
        if ok(v) {
            return v;
        }
        assert!(Instant::now() < end, "{series} stuck at {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_alert_fields(a: &Value, want: &Alert) {
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "alert_id",
            "class",
            "confidence",
            "first_ts_ms",
            "flow_count",
            "last_ts_ms",
            "model_version",
            "packet_count",
            "revision",
            "severity",
            "source_count",
            "sources",
            "target",
            "updated_ms",
            "window_start_ms"
        ]
    );
    assert_eq!(a["alert_id"], (want.alert_id as i64).to_string());
    assert_eq!(a["revision"], want.revision);
    assert_eq!(a["class"], want.class.as_str());
    assert_eq!(a["severity"], want.severity.as_str());
    assert_eq!(a["target"], want.target.as_str());
    assert_eq!(a["sources"].as_array().unwrap().len(), 8, "sources capped");
    assert_eq!(a["sources"][0], "10.1.0.1");
    assert_eq!(a["source_count"], want.source_count);
    assert_eq!(a["flow_count"], want.flow_count);
    assert_eq!(a["packet_count"], want.packet_count);
    assert_eq!(a["confidence"], want.confidence);
    assert_eq!(a["window_start_ms"], want.window_start_ns / 1_000_000);
    assert_eq!(a["first_ts_ms"], want.first_ts_ns / 1_000_000);
    assert_eq!(a["last_ts_ms"], want.last_ts_ns / 1_000_000);
    assert_eq!(a["model_version"], want.model_version.as_str());
    let updated = a["updated_ms"].as_u64().unwrap();
    let now = now_ns() / 1_000_000;
    assert!(
        updated <= now && updated + 60_000 > now,
        "{updated} vs {now}"
    );
}

#[test]
fn snapshot_alerts_stats_limits_and_shutdown() {
    let Some(db) = TestDb::require() else { return };
    let mut committer = Committer::new(&db);
    // Committed before the server starts: loaded into the first snapshot.
    let early = alert(u64::MAX - 1, 1);
    committer.commit(std::slice::from_ref(&early));
    let mut cfg = config(&db);
    cfg.dashboard.max_clients = 2;
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    let rt = rt();

    let mut ws = rt.block_on(connect(addr));
    let snap = rt
        .block_on(next_json(&mut ws, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(snap["type"], "snapshot", "{snap}");
    assert!(snap["server_ms"].as_u64().unwrap() > 0);
    assert!(
        snap["stats"].is_null() || snap["stats"].is_object(),
        "{snap}"
    );
    assert!(snap["sensors"].is_array());
    let alerts = snap["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{snap}");
    check_alert_fields(&alerts[0], &early);

    // A new alert, then a new revision of it: each arrives as `alert`.
    let a1 = alert(42, 1);
    let t0 = Instant::now();
    committer.commit(std::slice::from_ref(&a1));
    let got = rt
        .block_on(next_of(&mut ws, "alert", Duration::from_secs(10)))
        .unwrap();
    let latency = t0.elapsed();
    check_alert_fields(&got["alert"], &a1);
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    let a2 = alert(42, 2);
    committer.commit(std::slice::from_ref(&a2));
    let got = rt
        .block_on(next_of(&mut ws, "alert", Duration::from_secs(10)))
        .unwrap();
    check_alert_fields(&got["alert"], &a2);

    // Stats about once a second.
    let stats: Vec<Instant> = rt.block_on(async {
        let mut at = Vec::new();
        let end = tokio::time::Instant::now() + Duration::from_millis(3500);
        while let Some(v) = next_of(
            &mut ws,
            "stats",
            end.saturating_duration_since(tokio::time::Instant::now()),
        )
        .await
        {
            assert!(v["stats"].is_object(), "{v}");
            at.push(Instant::now());
        }
        at
    });
    assert!((2..=5).contains(&stats.len()), "{} stats", stats.len());
    for w in stats.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap > Duration::from_millis(500) && gap < Duration::from_millis(1600),
            "{gap:?}"
        );
    }

    // A second client sees the newest revision in its snapshot.
    let mut ws2 = rt.block_on(connect(addr));
    let snap2 = rt
        .block_on(next_json(&mut ws2, Duration::from_secs(10)))
        .unwrap();
    let ids: Vec<(&str, u64)> = snap2["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["alert_id"].as_str().unwrap(),
                a["revision"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ids, [("42", 2), ("-2", 1)], "newest last_ts first");

    // max_clients = 2: a third is refused with 503.
    let third = rt.block_on(tokio_tungstenite::connect_async(format!(
        "ws://{addr}/ws/dashboard"
    )));
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503)
        }
        other => panic!("expected 503, got {other:?}"),
    }
    let m = metrics(addr);
    assert_eq!(metric(&m, "netanalyzer_ws_clients"), 2.0);
    assert_eq!(metric(&m, "netanalyzer_ws_refused_total"), 1.0);
    assert!(metric(&m, "netanalyzer_ws_messages_sent_total{type=\"alert\"}") >= 2.0);
    assert_eq!(
        metric(&m, "netanalyzer_ws_messages_sent_total{type=\"snapshot\"}"),
        2.0
    );

    // A client that vanishes mid-stream (no close frame) is cleaned up.
    drop(ws2);
    committer.commit(&[alert(43, 1)]);
    wait_metric(addr, "netanalyzer_ws_clients", |v| v == 1.0);

    // Shutdown: the connected client gets close 1001 and the server stops
    // promptly.
    let t0 = Instant::now();
    let stopper = std::thread::spawn(move || server.shutdown());
    let close = rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
    });
    assert_eq!(close, Some(1001));
    stopper.join().unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

/// A client that never reads: the others get every alert promptly, its
/// stats are dropped (counted), its alerts all wait for it.
#[test]
fn slow_client_loses_stats_never_alerts() {
    let Some(db) = TestDb::require() else { return };
    let mut cfg = config(&db);
    cfg.dashboard.client_queue = 4;
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    let rt = rt();

    // The slow client: a tiny receive buffer, never read until the end.
    let mut slow = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let tcp = sock.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws/dashboard"),
            MaybeTlsStream::Plain(tcp),
        )
        .await
        .unwrap();
        ws
    });
    // Two fast readers record when each alert arrives.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(BTreeMap<u64, Instant>, Ws)>();
    const N: u64 = 3000;
    for _ in 0..2 {
        let mut ws = rt.block_on(connect(addr));
        let done = done_tx.clone();
        rt.spawn(async move {
            let mut seen = BTreeMap::new();
            while (seen.len() as u64) < N {
                let Some(v) = next_json(&mut ws, Duration::from_secs(60)).await else {
                    break;
                };
                if v["type"] == "alert" {
                    let id: u64 = v["alert"]["alert_id"].as_str().unwrap().parse().unwrap();
                    seen.insert(id, Instant::now());
                }
            }
            let _ = done.send((seen, ws));
        });
    }
    wait_metric(addr, "netanalyzer_ws_clients", |v| v == 3.0);

    // Fat alerts (about 3 KB each), so the slow socket fills up.
    let mut committer = Committer::new(&db);
    let fat = |id: u64| {
        let mut a = alert(id, 1);
        a.sources = (0..8).map(|i| format!("{i}-{}", "s".repeat(240))).collect();
        a.target = format!("target-{id}-{}", "t".repeat(400));
        a.model_version = "m".repeat(400);
        a
    };
    let mut committed = BTreeMap::new();
    for chunk in (1..=N).collect::<Vec<_>>().chunks(100) {
        let alerts: Vec<Alert> = chunk.iter().map(|&id| fat(id)).collect();
        committer.commit(&alerts);
        let t = Instant::now();
        for &id in chunk {
            committed.insert(id, t);
        }
    }
    // Stats keep coming for a few seconds while the slow client is stuck.
    let mut fast = Vec::new();
    for _ in 0..2 {
        let (seen, ws) = done_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        fast.push(ws);
        assert_eq!(seen.len() as u64, N, "a fast client missed alerts");
        let worst = committed
            .iter()
            .map(|(id, t)| seen[id].duration_since(*t))
            .max()
            .unwrap();
        assert!(
            worst < Duration::from_secs(5),
            "fast client waited {worst:?}"
        );
    }
    let dropped = wait_metric(addr, "netanalyzer_ws_stats_dropped_total", |v| v >= 2.0);
    let m = metrics(addr);
    assert!(metric(&m, "netanalyzer_ws_queue_depth_max") > 4.0, "{m}");
    assert_eq!(
        metric(&m, "netanalyzer_ws_disconnects_total{reason=\"overflow\"}"),
        0.0
    );
    assert_eq!(metric(&m, "netanalyzer_ws_clients"), 3.0, "{m}");

    // Now the slow client reads: snapshot, then every alert in order.
    let (ids, stats) = rt.block_on(async {
        let first = next_json(&mut slow, Duration::from_secs(10)).await.unwrap();
        assert_eq!(first["type"], "snapshot");
        let mut ids = Vec::new();
        let mut stats = 0;
        while (ids.len() as u64) < N {
            let v = next_json(&mut slow, Duration::from_secs(10)).await.unwrap();
            match v["type"].as_str().unwrap() {
                "alert" => ids.push(
                    v["alert"]["alert_id"]
                        .as_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                ),
                "stats" => stats += 1,
                _ => {}
            }
        }
        (ids, stats)
    });
    assert_eq!(ids, (1..=N).collect::<Vec<_>>());
    eprintln!("slow client: {stats} stats received, {dropped} dropped");
    rt.block_on(slow.close(None)).unwrap();
    wait_metric(addr, "netanalyzer_ws_clients", |v| v == 2.0);
    for mut ws in fast {
        rt.block_on(ws.close(None)).unwrap();
    }
    wait_metric(addr, "netanalyzer_ws_clients", |v| v == 0.0);
    let m = metrics(addr);
    assert_eq!(
        metric(&m, "netanalyzer_ws_disconnects_total{reason=\"closed\"}"),
        3.0
    );
    server.shutdown().unwrap();
}

/// Alerts committed while the LISTEN connection is down arrive after it
/// reconnects (re-read from the table), without duplicates.
#[test]
fn alerts_survive_a_lost_listen_connection() {
    let Some(db) = TestDb::require() else { return };
    let server = Server::start(config(&db)).unwrap();
    let addr = server.local_addr();
    let rt = rt();
    let mut ws = rt.block_on(connect(addr));
    let mut committer = Committer::new(&db);
    committer.commit(&[alert(1, 1)]);
    let got = rt
        .block_on(next_of(&mut ws, "alert", Duration::from_secs(10)))
        .unwrap();
    assert_eq!(got["alert"]["alert_id"], "1");

    // Refuse new connections to the database, then kill the listener: it
    // cannot come back until connections are allowed again.
    let dbname: String = db
        .client()
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    // ALLOW_CONNECTIONS cannot change from inside the database itself.
    let mut admin = {
        let mut cfg: postgres::Config = db.conninfo().parse().unwrap();
        cfg.dbname("postgres");
        cfg.connect(postgres::NoTls).unwrap()
    };
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS false"
        ))
        .unwrap();
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'netanalyzer-live-listen'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    wait_metric(addr, "netanalyzer_ws_listen_errors_total", |v| v >= 2.0);
    // Committed while nobody listens: their NOTIFYs are lost.
    committer.commit(&[alert(2, 1), alert(3, 1)]);
    committer.commit(&[alert(1, 2)]);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS true"
        ))
        .unwrap();
    let mut got = Vec::new();
    rt.block_on(async {
        while got.len() < 3 {
            let Some(v) = next_of(&mut ws, "alert", Duration::from_secs(20)).await else {
                break;
            };
            got.push((
                v["alert"]["alert_id"].as_str().unwrap().to_owned(),
                v["alert"]["revision"].as_u64().unwrap(),
            ));
        }
    });
    got.sort();
    assert_eq!(
        got,
        [
            ("1".to_owned(), 2),
            ("2".to_owned(), 1),
            ("3".to_owned(), 1)
        ]
    );
    // Nothing more: revision 1 of alert 1 (re-read too) is not sent again.
    let extra = rt.block_on(next_of(&mut ws, "alert", Duration::from_millis(1500)));
    assert!(extra.is_none(), "{extra:?}");
    let m = metrics(addr);
    assert!(metric(&m, "netanalyzer_ws_listen_reconnects_total") >= 1.0);
    assert!(metric(&m, "netanalyzer_ws_alerts_reread_total") >= 3.0);
    // And it listens again.
    committer.commit(&[alert(4, 1)]);
    let v = rt
        .block_on(next_of(&mut ws, "alert", Duration::from_secs(10)))
        .unwrap();
    assert_eq!(v["alert"]["alert_id"], "4");
    drop(ws);
    server.shutdown().unwrap();
}
