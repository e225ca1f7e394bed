//! The ingest server against a real PostgreSQL (`pg::TestDb`) and a real
//! HTTP client (ureq). Skips when no PostgreSQL is available, except under
//! `CI=true`.

use netanalyzer_core::{PacketBatch, PacketRecord, Protocol};
use netanalyzer_store::pg::TestDb;
use netanalyzer_store::server::{DatabaseSource, Server, ServerConfig};
use netanalyzer_store::wire::{self, Compression, CONTENT_TYPE_JSON, CONTENT_TYPE_MSGPACK};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn record(i: u64) -> PacketRecord {
    let mut r = PacketRecord {
        ts_ns: now_ns() + i,
        wire_len: 60,
        cap_len: 60,
        ip_version: Some(4),
        src_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
        dst_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
        ip_proto: Some(17),
        src_port: Some(5353),
        dst_port: Some(53),
        protocol: Protocol::Udp,
        ..PacketRecord::default()
    };
    r.payload_len = Some(i as u32);
    r
}

fn batch(sensor: &str, stream: u64, seq: u64, n: u64) -> PacketBatch {
    let mut b = PacketBatch::new(sensor, stream, seq);
    b.records = (0..n).map(record).collect();
    b
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// An answer: status, Retry-After, body as JSON (or text under "text").
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: serde_json::Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

fn answer(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut resp = resp.expect("http request");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::json!({ "text": text }));
    Answer {
        status,
        retry_after,
        body,
    }
}

struct Post<'a> {
    content_type: &'a str,
    zstd: bool,
    token: Option<&'a str>,
}

const MSGPACK: Post<'static> = Post {
    content_type: CONTENT_TYPE_MSGPACK,
    zstd: false,
    token: None,
};

fn post(addr: SocketAddr, how: &Post<'_>, body: &[u8]) -> Answer {
    let mut req = agent()
        .post(format!("http://{addr}/ingest_packets"))
        .header("Content-Type", how.content_type);
    if how.zstd {
        req = req.header("Content-Encoding", "zstd");
    }
    if let Some(t) = how.token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    answer(req.send(body))
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    answer(agent().get(format!("http://{addr}{path}")).call())
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.client().query_one(sql, &[]).unwrap().get(0)
}

fn rows(db: &TestDb) -> (i64, i64) {
    (
        count(db, "SELECT count(*) FROM raw_packets"),
        count(db, "SELECT count(*) FROM ingest_batches"),
    )
}

fn config(db: &TestDb) -> ServerConfig {
    let mut cfg = ServerConfig::new(DatabaseSource::Url(db.conninfo()));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg
}

fn tokens() -> BTreeMap<String, String> {
    [("edge-1", "token-one"), ("edge-2", "token-two")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

/// The value of one metric line (`name{labels}` exactly).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn ingest_formats_duplicates_bad_input_and_metrics() {
    let Some(db) = TestDb::require() else { return };
    let mut cfg = config(&db);
    cfg.tokens = tokens();
    cfg.max_body_bytes = 64 * 1024;
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    let tok1 = Post {
        token: Some("token-one"),
        ..MSGPACK
    };
    let stream = wire::new_stream_id();

    // msgpack, zstd.
    let enc =
        wire::encode_batch(&batch("edge-1", stream, 0, 100), None, Compression::Zstd(3)).unwrap();
    assert!(enc.zstd);
    let a = post(addr, &Post { zstd: true, ..tok1 }, &enc.body);
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("stored")),
        "{a:?}"
    );
    assert_eq!(a.body["records"], 100);
    assert_eq!(rows(&db), (100, 1));

    // The same batch again: acknowledged, nothing written.
    let a = post(addr, &Post { zstd: true, ..tok1 }, &enc.body);
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("duplicate")),
        "{a:?}"
    );
    assert_eq!(a.body["records"], 100);
    assert_eq!(rows(&db), (100, 1));

    // msgpack, uncompressed.
    let enc = wire::encode_batch(&batch("edge-1", stream, 1, 10), None, Compression::None).unwrap();
    assert_eq!(post(addr, &tok1, &enc.body).status, 200);
    assert_eq!(rows(&db), (110, 2));

    // JSON envelope.
    let json = Post {
        content_type: CONTENT_TYPE_JSON,
        ..tok1
    };
    let body = wire::encode_json(&batch("edge-1", stream, 2, 5), None).unwrap();
    let a = post(addr, &json, &body);
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("stored")),
        "{a:?}"
    );
    assert_eq!(rows(&db), (115, 3));

    // Legacy JSON array: stored under the token's sensor.
    let legacy = serde_json::to_vec(&vec![record(1), record(2), record(3)]).unwrap();
    let a = post(addr, &json, &legacy);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(rows(&db), (118, 4));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM raw_packets WHERE sensor_id = 'edge-1'"
        ),
        118
    );

    // SQL-injection-looking strings are data: stored verbatim.
    let evil = "x'); DROP TABLE raw_packets; --";
    let mut b = batch("edge-1", stream, 3, 1);
    b.records[0].http_path = Some(evil.to_owned());
    b.records[0].dns_qname = Some("\"; DELETE FROM ingest_batches; --".to_owned());
    let enc = wire::encode_batch(&b, None, Compression::Zstd(1)).unwrap();
    assert_eq!(
        post(addr, &Post { zstd: true, ..tok1 }, &enc.body).status,
        200
    );
    let got: String = db
        .client()
        .query_one(
            "SELECT http_path FROM raw_packets WHERE http_path IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(got, evil);
    let stored = rows(&db);
    assert_eq!(stored, (119, 5));

    // Bad input: each its status and reason, nothing written, still serving.
    let good = wire::encode_batch(&batch("edge-1", stream, 9, 3), None, Compression::None)
        .unwrap()
        .body;
    let zstd_body = wire::encode_batch(&batch("edge-1", stream, 9, 50), None, Compression::Zstd(3))
        .unwrap()
        .body;
    let json_of = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(
            &wire::encode_json(&batch("edge-1", stream, 9, 2), None).unwrap(),
        )
        .unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let tok2 = Post {
        token: Some("token-two"),
        ..MSGPACK
    };
    let wrong = Post {
        token: Some("token-three"),
        ..MSGPACK
    };
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "malformed msgpack",
            post(addr, &tok1, b"\xc1\xc1 not msgpack"),
            400,
            "malformed_msgpack",
        ),
        (
            "truncated msgpack",
            post(addr, &tok1, &good[..good.len() / 2]),
            400,
            "malformed_msgpack",
        ),
        (
            "truncated zstd",
            post(
                addr,
                &Post { zstd: true, ..tok1 },
                &zstd_body[..zstd_body.len() / 2],
            ),
            400,
            "bad_zstd",
        ),
        (
            "over the limit",
            post(addr, &tok1, &vec![0u8; 70 * 1024]),
            413,
            "too_large",
        ),
        ("no token", post(addr, &MSGPACK, &good), 401, "unauthorized"),
        (
            "malformed authorization",
            answer(
                agent()
                    .post(format!("http://{addr}/ingest_packets"))
                    .header("Content-Type", CONTENT_TYPE_MSGPACK)
                    .header("Authorization", "Basic dG9rZW4tb25l")
                    .send(&good[..]),
            ),
            401,
            "unauthorized",
        ),
        ("wrong token", post(addr, &wrong, &good), 403, "forbidden"),
        (
            "token of another sensor",
            post(addr, &tok2, &good),
            403,
            "forbidden",
        ),
        (
            "unknown content type",
            post(
                addr,
                &Post {
                    content_type: "text/plain",
                    ..tok1
                },
                &good,
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "wrong version",
            post(addr, &json, &json_of(&|v| v["v"] = 2.into())),
            400,
            "bad_version",
        ),
        (
            "inconsistent count",
            post(addr, &json, &json_of(&|v| v["count"] = 3.into())),
            400,
            "count_mismatch",
        ),
        (
            "out-of-range ip_version",
            post(
                addr,
                &json,
                &json_of(&|v| v["records"][0]["ip_version"] = 5.into()),
            ),
            400,
            "out_of_range",
        ),
        (
            "out-of-range ts_ns",
            post(
                addr,
                &json,
                &json_of(&|v| v["records"][1]["ts_ns"] = u64::MAX.into()),
            ),
            400,
            "out_of_range",
        ),
        (
            "NUL byte",
            post(
                addr,
                &json,
                &json_of(&|v| v["records"][0]["http_host"] = "a\0b".into()),
            ),
            400,
            "bad_string",
        ),
        (
            "bad sensor id",
            post(addr, &json, &json_of(&|v| v["sensor_id"] = "edge 1".into())),
            400,
            "bad_sensor_id",
        ),
    ];
    for (what, a, status, error) in &cases {
        assert_eq!((a.status, a.error()), (*status, *error), "{what}: {a:?}");
        assert!(
            a.body["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{what}: no human reason: {a:?}"
        );
    }
    assert_eq!(rows(&db), stored, "bad input changed the database");

    // A chunked body (no Content-Length) over the limit: cut at the limit.
    let big = vec![7u8; 200 * 1024];
    let a = answer(
        agent()
            .post(format!("http://{addr}/ingest_packets"))
            .header("Content-Type", CONTENT_TYPE_MSGPACK)
            .header("Authorization", "Bearer token-one")
            .send(ureq::SendBody::from_reader(&mut &big[..])),
    );
    assert_eq!((a.status, a.error()), (413, "too_large"), "{a:?}");

    // Still serving.
    let a = post(addr, &tok1, &good);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(rows(&db), (stored.0 + 3, stored.1 + 1));

    let h = get(addr, "/health");
    assert_eq!((h.status, h.body["status"].as_str()), (200, Some("ok")));

    // Metrics: the values the traffic above must give.
    let text = get(addr, "/metrics").body["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text, {
        // /metrics and Server::metrics agree (nothing ran in between).
        server.metrics()
    });
    assert_eq!(
        metric(
            &text,
            "netanalyzer_ingest_batches_total{outcome=\"stored\"}"
        ),
        6.0
    );
    assert_eq!(
        metric(
            &text,
            "netanalyzer_ingest_batches_total{outcome=\"duplicate\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "netanalyzer_ingest_records_total"), 122.0);
    assert_eq!(metric(&text, "netanalyzer_store_copy_rows_total"), 122.0);
    assert_eq!(
        metric(&text, "netanalyzer_ingest_requests_total{code=\"200\"}"),
        7.0
    );
    assert_eq!(
        metric(&text, "netanalyzer_ingest_requests_total{code=\"400\"}"),
        9.0
    );
    assert_eq!(
        metric(&text, "netanalyzer_ingest_requests_total{code=\"401\"}"),
        2.0
    );
    assert_eq!(
        metric(&text, "netanalyzer_ingest_requests_total{code=\"403\"}"),
        2.0
    );
    assert_eq!(
        metric(&text, "netanalyzer_ingest_requests_total{code=\"413\"}"),
        2.0
    );
    assert_eq!(
        metric(&text, "netanalyzer_ingest_requests_total{code=\"415\"}"),
        1.0
    );
    for (reason, n) in [
        ("malformed_msgpack", 2.0),
        ("bad_zstd", 1.0),
        ("too_large", 2.0),
        ("unauthorized", 2.0),
        ("forbidden", 2.0),
        ("unsupported_media_type", 1.0),
        ("bad_version", 1.0),
        ("count_mismatch", 1.0),
        ("out_of_range", 2.0),
        ("bad_string", 1.0),
        ("bad_sensor_id", 1.0),
        ("queue_full", 0.0),
        ("db_down", 0.0),
    ] {
        let series = format!("netanalyzer_ingest_rejects_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&text, &series), n, "{series}");
    }
    assert!(metric(&text, "netanalyzer_ingest_bytes_total") > 0.0);
    assert!(metric(&text, "netanalyzer_store_copy_seconds_total") > 0.0);
    assert!(metric(&text, "netanalyzer_store_copy_rows_per_second") > 0.0);
    assert_eq!(metric(&text, "netanalyzer_store_db_up"), 1.0);
    assert_eq!(metric(&text, "netanalyzer_store_db_errors_total"), 0.0);
    assert_eq!(metric(&text, "netanalyzer_ingest_queue_depth"), 0.0);
    assert_eq!(metric(&text, "netanalyzer_ingest_queue_capacity"), 8.0);
    assert!(metric(&text, "netanalyzer_store_partitions_created_total") >= 0.0);

    server.shutdown().unwrap();
}

#[test]
fn open_ingest_stores_legacy_json_as_legacy() {
    let Some(db) = TestDb::require() else { return };
    let server = Server::start(config(&db)).unwrap();
    let addr = server.local_addr();
    let json = Post {
        content_type: "application/json; charset=utf-8",
        ..MSGPACK
    };
    let legacy = serde_json::to_vec(&vec![record(1), record(2)]).unwrap();
    // No exactly-once for legacy: the same request twice is stored twice.
    assert_eq!(post(addr, &json, &legacy).status, 200);
    assert_eq!(post(addr, &json, &legacy).status, 200);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM raw_packets WHERE sensor_id = 'legacy'"
        ),
        4
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT stream_id) FROM ingest_batches WHERE sensor_id = 'legacy'"
        ),
        2
    );
    // Open ingest ignores tokens; the batch's sensor is kept.
    let enc =
        wire::encode_batch(&batch("any-sensor", 7, 0, 3), None, Compression::Zstd(3)).unwrap();
    let a = post(
        addr,
        &Post {
            zstd: true,
            token: Some("whatever"),
            ..MSGPACK
        },
        &enc.body,
    );
    assert_eq!(a.status, 200, "{a:?}");
    server.shutdown().unwrap();
}

#[test]
fn start_refuses_open_non_loopback_and_taken_port() {
    // Neither reaches the database.
    let mut cfg = ServerConfig::new(DatabaseSource::Url("host=/nonexistent".into()));
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let e = Server::start(cfg).unwrap_err().to_string();
    assert!(e.contains("needs tokens") && e.contains("[tokens]"), "{e}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = ServerConfig::new(DatabaseSource::Url("host=/nonexistent".into()));
    cfg.listen = taken.local_addr().unwrap();
    let e = Server::start(cfg).unwrap_err().to_string();
    assert!(
        e.contains("cannot listen on") && e.contains(&taken.local_addr().unwrap().to_string()),
        "{e}"
    );
}

#[test]
fn full_queue_answers_503_with_retry_after() {
    let Some(db) = TestDb::require() else { return };
    let mut cfg = config(&db);
    cfg.queue_batches = 1;
    cfg.writers = 1;
    cfg.retry_after_secs = 2;
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();

    // Hold the only writer: its transaction waits on this lock.
    let mut locker = db.client();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE ingest_batches IN ACCESS EXCLUSIVE MODE")
        .unwrap();

    let send = move |seq: u64| {
        std::thread::spawn(move || {
            let enc =
                wire::encode_batch(&batch("edge-1", 42, seq, 2), None, Compression::None).unwrap();
            post(addr, &MSGPACK, &enc.body)
        })
    };
    let first = send(0); // taken by the writer, blocked on the lock
    wait_for(|| {
        server
            .metrics()
            .contains("netanalyzer_ingest_queue_depth 0")
    });
    std::thread::sleep(Duration::from_millis(300));
    let second = send(1); // waits in the queue
    wait_for(|| {
        server
            .metrics()
            .contains("netanalyzer_ingest_queue_depth 1")
    });
    let enc = wire::encode_batch(&batch("edge-1", 42, 2, 2), None, Compression::None).unwrap();
    let third = post(addr, &MSGPACK, &enc.body);
    assert_eq!(
        (third.status, third.error()),
        (503, "queue_full"),
        "{third:?}"
    );
    assert_eq!(third.retry_after.as_deref(), Some("2"));

    tx.rollback().unwrap();
    assert_eq!(first.join().unwrap().status, 200);
    assert_eq!(second.join().unwrap().status, 200);
    // The refused batch, sent again, is stored.
    assert_eq!(post(addr, &MSGPACK, &enc.body).status, 200);
    assert_eq!(rows(&db), (6, 3));
    let text = server.metrics();
    assert_eq!(
        metric(
            &text,
            "netanalyzer_ingest_rejects_total{reason=\"queue_full\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "netanalyzer_ingest_queue_capacity"), 1.0);
    server.shutdown().unwrap();
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn database_down_answers_503_then_recovers() {
    let Some(mut db) = TestDb::require() else {
        return;
    };
    if db.embedded().is_none() {
        eprintln!("skipping: needs the embedded test cluster (NETANALYZER_TEST_PG is set)");
        return;
    }
    let server = Server::start(config(&db)).unwrap();
    let addr = server.local_addr();
    let stream = wire::new_stream_id();
    let send = |seq: u64| {
        let enc = wire::encode_batch(&batch("edge-1", stream, seq, 4), None, Compression::Zstd(3))
            .unwrap();
        post(
            addr,
            &Post {
                zstd: true,
                ..MSGPACK
            },
            &enc.body,
        )
    };
    assert_eq!(send(0).status, 200);

    // Stop the cluster: the data directory stays, so restart brings it back.
    let pg = db.embedded().unwrap();
    let data_dir = pg.data_dir().to_path_buf();
    pg_ctl(&data_dir, &["stop", "-m", "fast", "-w"]);
    let a = send(1);
    assert_eq!((a.status, a.error()), (503, "db_down"), "{a:?}");
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    // While down: 503 at once, and /health degraded.
    let a = send(1);
    assert_eq!((a.status, a.error()), (503, "db_down"), "{a:?}");
    let h = get(addr, "/health");
    assert_eq!(h.status, 503);
    assert_eq!(
        h.body,
        serde_json::json!({"status": "degraded", "database": "down"})
    );
    assert_eq!(metric(&server.metrics(), "netanalyzer_store_db_up"), 0.0);

    let log = data_dir.join("log");
    pg_ctl(&data_dir, &["start", "-w", "-l", log.to_str().unwrap()]);
    wait_for(|| get(addr, "/health").status == 200);
    assert_eq!(send(1).status, 200);
    assert_eq!(send(2).status, 200);
    assert_eq!(rows(&db), (12, 3));
    let text = server.metrics();
    assert!(
        metric(&text, "netanalyzer_store_reconnects_total") >= 1.0,
        "{text}"
    );
    assert!(metric(&text, "netanalyzer_store_db_errors_total") >= 1.0);
    assert!(
        metric(
            &text,
            "netanalyzer_ingest_rejects_total{reason=\"db_down\"}"
        ) >= 2.0
    );
    assert_eq!(metric(&text, "netanalyzer_store_db_up"), 1.0);
    server.shutdown().unwrap();
}

/// Runs `pg_ctl ARGS -D DATA_DIR` on the test cluster behind the test
/// helper's back, as a crash or an operator would (its settings are in the
/// data directory, so a plain `pg_ctl start` brings it back the same).
fn pg_ctl(data_dir: &std::path::Path, args: &[&str]) {
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--", "pg_ctl"]);
        c
    } else {
        std::process::Command::new("pg_ctl")
    };
    let out = cmd
        .current_dir("/")
        .args(args)
        .arg("-D")
        .arg(data_dir)
        .output()
        .expect("run pg_ctl");
    assert!(out.status.success(), "pg_ctl {args:?}: {out:?}");
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[test]
fn the_readme_config_example_is_valid() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in README.md");
    let file = netanalyzer_store::server::ConfigFile::parse(block)
        .unwrap_or_else(|e| panic!("README's server.toml: {e}"));
    assert_eq!(file.tokens.len(), 1);
    assert_eq!(file.retention.days, Some(30));
}
