//! The query API (`/api/*`) of a real server on a real PostgreSQL
//! (`pg::TestDb`), with data written through the real paths: packets by
//! `PacketWriter::write_batch`, flows and alerts by `flowdb::commit`.
//! Skips when no PostgreSQL is available, except under `CI=true`.

use netanalyzer_core::{
    Alert, EndReason, FlowAddr, FlowFeatures, FlowKey, FlowProto, FlowRecord, PacketBatch,
    PacketRecord, Protocol, Severity,
};
use netanalyzer_store::flowdb::{self, FlowCommit, Position};
use netanalyzer_store::pg::{PacketWriter, TestDb};
use netanalyzer_store::server::{DatabaseSource, Server, ServerConfig};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    fn items(&self) -> &Vec<Value> {
        self.body["items"].as_array().expect("items")
    }
}

fn get_with(addr: SocketAddr, path: &str, bearer: Option<&str>) -> Answer {
    let mut req = agent().get(format!("http://{addr}{path}"));
    if let Some(t) = bearer {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().expect("http request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::json!({ "text": text }));
    Answer {
        status,
        headers,
        body,
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    get_with(addr, path, None)
}

fn config(db: &TestDb) -> ServerConfig {
    let mut cfg = ServerConfig::new(DatabaseSource::Url(db.conninfo()));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg
}

const PACKETS: u64 = 2_300;
/// Packets sharing one timestamp (the ctid tie-break).
const SAME_TS: u64 = 40;

/// Packet `i`: a distinct `payload_len` identifies it.
fn packet(i: u64, base_ns: u64) -> PacketRecord {
    let ts_ns = if i < SAME_TS {
        base_ns
    } else {
        base_ns + i * 7_000_000 + i % 1000
    };
    let (protocol, ip_proto) = match i % 4 {
        0 => (Protocol::Tcp, Some(6)),
        1 => (Protocol::Udp, Some(17)),
        2 => (Protocol::Dns, Some(17)),
        _ => (Protocol::Arp, None),
    };
    let ip = ip_proto.is_some();
    PacketRecord {
        ts_ns,
        wire_len: 60,
        cap_len: 60,
        src_ip: ip.then(|| IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i % 5) as u8))),
        dst_ip: ip.then(|| IpAddr::V4(Ipv4Addr::new(10, 1, 0, (i % 3) as u8))),
        ip_proto,
        src_port: ip.then_some(1000 + (i % 7) as u16),
        dst_port: ip.then_some(53),
        payload_len: Some(i as u32),
        http_path: (i % 10 == 0).then(|| format!("/p/{i}")),
        protocol,
        ..PacketRecord::default()
    }
}

fn flow(i: u64, first_ts_ns: u64) -> FlowRecord {
    let (proto, src, dst) = if i % 5 == 4 {
        (
            FlowProto::Arp,
            FlowAddr::Mac(netanalyzer_core::MacAddr([2, 0, 0, 0, 0, 1])),
            FlowAddr::Mac(netanalyzer_core::MacAddr::BROADCAST),
        )
    } else {
        (
            FlowProto::Ip(if i % 2 == 0 { 6 } else { 17 }),
            FlowAddr::Ip(IpAddr::from([10, 0, 0, (i % 3) as u8])),
            FlowAddr::Ip(IpAddr::from([10, 1, 0, 1])),
        )
    };
    let (sp, dp) = if matches!(proto, FlowProto::Arp) {
        (0, 0)
    } else {
        (40_000 + (i % 2) as u16, 80)
    };
    let (key, _) = FlowKey::new(proto, src, sp, dst, dp);
    FlowRecord {
        flow_id: u64::MAX - i,
        segment: 0,
        key,
        proto,
        src,
        src_port: sp,
        dst,
        dst_port: dp,
        vlan_id: None,
        // Groups of 3 share first_ts (ties).
        first_ts_ns: first_ts_ns + (i / 3) * 1_000_000,
        last_ts_ns: first_ts_ns + (i / 3) * 1_000_000 + 5_000,
        fwd_packets: i,
        bwd_packets: 1,
        fwd_bytes: 100,
        bwd_bytes: 200,
        tcp_flags: 0x12,
        end_reason: EndReason::Fin,
        features: FlowFeatures::default(),
        label: Some(if i % 3 == 0 { "DoS" } else { "BENIGN" }.into()),
        confidence: Some(0.5),
    }
}

fn alert(i: u64, ts_ns: u64) -> Alert {
    Alert {
        // Ids of different lengths in a pair (108 and 9): sorted as
        // numbers, not as their decimal strings.
        alert_id: if i % 2 == 0 { 100 + i } else { i },
        window_start_ns: ts_ns,
        first_ts_ns: ts_ns,
        // Pairs share last_ts (ties broken by alert_id).
        last_ts_ns: ts_ns + (i / 2) * 1_000_000,
        class: if i % 2 == 0 { "DDoS" } else { "PortScan" }.into(),
        severity: [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ][(i % 4) as usize],
        confidence: 0.9,
        sources: (0..12).map(|k| format!("1.2.3.{k}")).collect(),
        source_count: 12,
        target: "10.0.0.5".into(),
        flow_count: 10,
        packet_count: 100 + i,
        model_version: "test-model".into(),
        flow_ids: vec![1, 2],
        revision: 1,
    }
}

/// Writes the fixtures; returns the packets written.
fn fill(db: &TestDb, base_ns: u64) -> Vec<PacketRecord> {
    let recs: Vec<PacketRecord> = (0..PACKETS).map(|i| packet(i, base_ns)).collect();
    let mut w = PacketWriter::new(db.client());
    for (seq, chunk) in recs.chunks(500).enumerate() {
        let mut b = PacketBatch::new("edge-1", 7, seq as u64);
        b.records = chunk.to_vec();
        w.write_batch(&b).unwrap();
    }
    let flows: Vec<(String, FlowRecord)> = (0..250)
        .map(|i| ("edge-1".to_owned(), flow(i, base_ns)))
        .collect();
    let alerts: Vec<Alert> = (0..30).map(|i| alert(i, base_ns)).collect();
    let mut c = db.client();
    flowdb::commit(
        &mut c,
        &FlowCommit {
            consumer: "test",
            position: Position::default(),
            state: b"",
            flows: &flows,
            model_version: "test-model",
            alerts: &alerts,
            rows: 0,
            batches: 0,
            active_flows: None,
        },
    )
    .unwrap();
    recs
}

/// Follows `next_cursor` from `path` (which has a `?`), returning every item
/// and the number of pages.
fn walk(addr: SocketAddr, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut url = path.to_owned();
    loop {
        let a = get(addr, &url);
        assert_eq!(a.status, 200, "{url}: {a:?}");
        pages += 1;
        items.extend(a.items().iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => url = format!("{path}&cursor={c}"),
            None => return (items, pages),
        }
        assert!(pages < 10_000);
    }
}

fn ts_ns_of(v: &Value) -> u64 {
    v["ts_ns"].as_str().unwrap().parse().unwrap()
}

/// Checks a walk over packets: newest first, each exactly once, exactly
/// the expected ones.
fn check_packets(items: &[Value], expected: impl Iterator<Item = u64>) {
    let ids: Vec<u64> = items
        .iter()
        .map(|v| v["payload_len"].as_u64().unwrap())
        .collect();
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an item came twice");
    let want: HashSet<u64> = expected.collect();
    let mut missing: Vec<_> = want.difference(&unique).collect();
    let mut extra: Vec<_> = unique.difference(&want).collect();
    missing.sort();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    for w in items.windows(2) {
        assert!(ts_ns_of(&w[0]) >= ts_ns_of(&w[1]), "not newest first");
    }
}

#[test]
fn every_endpoint_filter_and_page() {
    let Some(db) = TestDb::require() else { return };
    let base = now_ns() - 3_600_000_000_000; // an hour ago
    let recs = fill(&db, base);
    // Every partition's BRIN index on ts summarizes new block ranges by
    // itself (migration 5), so "newest first" reads only the newest ranges.
    let opts: Vec<String> = db
        .client()
        .query(
            "SELECT coalesce(array_to_string(c.reloptions, ','), '') FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam \
             WHERE a.amname = 'brin' AND c.relname LIKE 'raw_packets%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(opts.len() >= 2, "{opts:?}");
    assert!(
        opts.iter().all(|o| o.contains("autosummarize=on")),
        "{opts:?}"
    );
    let server = Server::start(config(&db)).unwrap();
    let addr = server.local_addr();
    let all = 0..PACKETS;
    let pick = |f: &dyn Fn(&PacketRecord) -> bool| {
        recs.iter()
            .filter(|r| f(r))
            .map(|r| u64::from(r.payload_len.unwrap()))
            .collect::<Vec<_>>()
            .into_iter()
    };

    // Every packet once, newest first, over pages of 100 (the ties of
    // SAME_TS packets straddle no page boundary issue: ctid breaks them).
    let (items, pages) = walk(addr, "/api/raw_packets?limit=100");
    check_packets(&items, all.clone());
    assert_eq!(pages, (PACKETS as usize).div_ceil(100));
    // Pages of 7: ties cut across pages.
    let (items, _) = walk(addr, "/api/raw_packets?limit=7");
    check_packets(&items, all.clone());
    let first = &items[items.len() - 1];
    assert_eq!(first["ts_ms"].as_u64().unwrap(), base / 1_000_000);
    assert_eq!(ts_ns_of(first), base);
    assert_eq!(first["sensor_id"], "edge-1");
    assert_eq!(first["protocol"], "TCP");

    // Default page, then the default window misses nothing written an
    // hour ago.
    let a = get(addr, "/api/raw_packets");
    assert_eq!(a.items().len(), 100);
    assert!(a.body["next_cursor"].is_string());

    // Filters.
    let ip1: IpAddr = "10.0.0.1".parse().unwrap();
    let (items, _) = walk(addr, "/api/raw_packets?limit=300&ip=10.0.0.1");
    check_packets(
        &items,
        pick(&|r| r.src_ip == Some(ip1) || r.dst_ip == Some(ip1)),
    );
    let (items, _) = walk(addr, "/api/raw_packets?limit=300&src_ip=10.0.0.2");
    check_packets(
        &items,
        pick(&|r| r.src_ip == Some("10.0.0.2".parse().unwrap())),
    );
    let (items, _) = walk(addr, "/api/raw_packets?limit=300&dst_ip=10.1.0.2");
    check_packets(
        &items,
        pick(&|r| r.dst_ip == Some("10.1.0.2".parse().unwrap())),
    );
    let (items, _) = walk(addr, "/api/raw_packets?limit=300&port=1003");
    check_packets(
        &items,
        pick(&|r| r.src_port == Some(1003) || r.dst_port == Some(1003)),
    );
    let (items, _) = walk(addr, "/api/raw_packets?limit=300&proto=tcp");
    check_packets(&items, pick(&|r| r.ip_proto == Some(6)));
    let (items, _) = walk(addr, "/api/raw_packets?limit=300&proto=17&src_ip=10.0.0.1");
    check_packets(
        &items,
        pick(&|r| r.ip_proto == Some(17) && r.src_ip == Some(ip1)),
    );
    let (items, _) = walk(addr, "/api/raw_packets?limit=1000&proto=ARP");
    check_packets(&items, pick(&|r| r.protocol == Protocol::Arp));
    // Time window, ms and RFC 3339, from inclusive and to exclusive.
    let lo = recs[100].ts_ns;
    let hi = recs[200].ts_ns;
    let (items, _) = walk(
        addr,
        &format!(
            "/api/raw_packets?limit=30&from={}&to={}",
            lo.div_ceil(1_000_000),
            hi / 1_000_000
        ),
    );
    let (lo_ms, hi_ms) = (lo.div_ceil(1_000_000), hi / 1_000_000);
    check_packets(
        &items,
        pick(&|r| r.ts_ns / 1000 >= lo_ms * 1000 && r.ts_ns / 1000 < hi_ms * 1000),
    );
    let rfc = |ns: u64| {
        let secs = ns / 1_000_000_000;
        let days = secs / 86_400;
        let (y, m, d) = civil(days as i64);
        let s = secs % 86_400;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
            s / 3600,
            s / 60 % 60,
            s % 60,
            ns / 1000 % 1_000_000
        )
    };
    let (items, _) = walk(
        addr,
        &format!(
            "/api/raw_packets?limit=1000&from={}&to={}",
            rfc(lo),
            rfc(hi)
        ),
    );
    check_packets(
        &items,
        pick(&|r| r.ts_ns / 1000 >= lo / 1000 && r.ts_ns / 1000 < hi / 1000),
    );

    // last/{n}, last10, alltraffic.
    let a = get(addr, "/api/raw_packets/last/5");
    assert_eq!(a.status, 200, "{a:?}");
    let ids: Vec<u64> = a
        .items()
        .iter()
        .map(|v| v["payload_len"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2299, 2298, 2297, 2296, 2295]);
    assert!(a.body["next_cursor"].is_null());
    let a = get(addr, "/api/raw_packets/last/5000");
    assert_eq!(a.items().len(), 1000, "n is capped at 1000");
    let a = get(addr, "/api/raw_packets/last/3?proto=udp");
    assert_eq!(a.items().len(), 3);
    let a = get(addr, "/api/last10");
    assert_eq!(a.status, 200);
    let arr = a.body.as_array().expect("a bare array");
    assert_eq!(arr.len(), 10);
    assert_eq!(arr[0]["payload_len"], 2299);
    let mut seen = Vec::new();
    let mut url = "/api/alltraffic?limit=400".to_owned();
    let mut pages = 0;
    loop {
        let a = get(addr, &url);
        assert_eq!(a.status, 200, "{a:?}");
        pages += 1;
        seen.extend(a.body.as_array().unwrap().iter().cloned());
        let Some(link) = a.header("link") else {
            assert!(a.header("x-next-cursor").is_none());
            break;
        };
        let cursor = a.header("x-next-cursor").unwrap();
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        assert!(link.contains(cursor));
        url = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            url.starts_with("/api/alltraffic?limit=400&cursor="),
            "{url}"
        );
    }
    assert_eq!(pages, 6);
    check_packets(&seen, all.clone());

    // Flows: newest first_ts first, all once, filters.
    let (flows, pages) = walk(addr, "/api/flows?limit=7");
    assert_eq!(flows.len(), 250);
    assert_eq!(pages, 36);
    let ids: HashSet<&str> = flows
        .iter()
        .map(|f| f["flow_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 250);
    for w in flows.windows(2) {
        assert!(w[0]["first_ts_ms"].as_u64() >= w[1]["first_ts_ms"].as_u64());
    }
    let f = flows.iter().find(|f| f["flow_id"] == "-1").unwrap(); // u64::MAX
    for key in [
        "segment",
        "first_ts_ms",
        "last_ts_ms",
        "sensor_id",
        "ip_proto",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "vlan_id",
        "fwd_packets",
        "bwd_packets",
        "fwd_bytes",
        "bwd_bytes",
        "tcp_flags",
        "end_reason",
        "label",
        "confidence",
    ] {
        assert!(f.get(key).is_some(), "flow JSON lacks {key}: {f}");
    }
    assert_eq!(f["src_ip"], "10.0.0.0");
    assert_eq!(f["first_ts_ms"].as_u64().unwrap(), base / 1_000_000);
    let count = |q: &str| walk(addr, &format!("/api/flows?limit=1000&{q}")).0.len();
    assert_eq!(count("label=DoS"), 84);
    assert_eq!(count("proto=arp"), 50);
    assert_eq!(count("proto=tcp"), 100);
    assert_eq!(
        count("ip=10.0.0.1"),
        (0..250).filter(|i| i % 5 != 4 && i % 3 == 1).count()
    );
    assert_eq!(
        count("src_ip=10.0.0.2"),
        (0..250).filter(|i| i % 5 != 4 && i % 3 == 2).count()
    );
    assert_eq!(count("dst_ip=10.1.0.1"), 200);
    assert_eq!(
        count("port=40001"),
        (0..250).filter(|i| i % 5 != 4 && i % 2 == 1).count()
    );

    // Alerts: newest last_ts first, all once, filters, the JSON.
    let (alerts, pages) = walk(addr, "/api/alerts?limit=4");
    assert_eq!((alerts.len(), pages), (30, 8));
    for w in alerts.windows(2) {
        assert!(w[0]["last_ts_ms"].as_u64() >= w[1]["last_ts_ms"].as_u64());
    }
    let a0 = &alerts[0];
    assert_eq!(a0["alert_id"], "128");
    let ids: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[..4], ["128", "29", "126", "27"]);
    let i = ids.iter().position(|id| *id == "108").unwrap();
    assert_eq!(ids[i + 1], "9");
    assert_eq!(
        a0["sources"].as_array().unwrap().len(),
        8,
        "sources are cut to 8"
    );
    for key in [
        "revision",
        "class",
        "severity",
        "target",
        "source_count",
        "flow_count",
        "packet_count",
        "confidence",
        "window_start_ms",
        "first_ts_ms",
        "model_version",
        "updated_ms",
    ] {
        assert!(a0.get(key).is_some(), "alert JSON lacks {key}: {a0}");
    }
    let count = |q: &str| walk(addr, &format!("/api/alerts?limit=1000&{q}")).0.len();
    assert_eq!(count("severity=high,critical"), 14);
    assert_eq!(count("severity=low"), 8);
    assert_eq!(count("class=DDoS"), 15);
    assert_eq!(count("class=DDoS&severity=critical"), 0);
    assert_eq!(count("class=PortScan&severity=critical"), 7);

    // Limits and bad parameters: 400 with a reason naming the parameter.
    assert_eq!(get(addr, "/api/flows?limit=1000").status, 200);
    let flows_cursor = get(addr, "/api/flows?limit=1").body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, name) in [
        ("/api/flows?limit=1001", "limit"),
        ("/api/flows?limit=0", "limit"),
        ("/api/flows?limit=x", "limit"),
        ("/api/flows?from=yesterday", "from"),
        ("/api/flows?to=2024-13-01T00:00:00Z", "to"),
        ("/api/flows?from=2000&to=1000", "from"),
        ("/api/flows?from=0", "from"),
        ("/api/raw_packets?from=0", "from"),
        ("/api/flows?ip=10.0.0", "ip"),
        ("/api/flows?src_ip=x", "src_ip"),
        ("/api/flows?dst_ip=1.2.3.4.5", "dst_ip"),
        ("/api/flows?port=65536", "port"),
        ("/api/flows?proto=sctpx", "proto"),
        ("/api/flows?proto=256", "proto"),
        ("/api/flows?label=", "label"),
        ("/api/flows?severity=high", "severity"),
        ("/api/alerts?severity=high,urgent", "severity"),
        ("/api/alerts?ip=10.0.0.1", "ip"),
        ("/api/alerts?class=", "class"),
        ("/api/flows?cursor=zz", "cursor"),
        (&format!("/api/alerts?cursor={flows_cursor}"), "cursor"),
        ("/api/flows?limit=1&limit=2", "limit"),
        ("/api/flows?bogus=1", "bogus"),
        ("/api/raw_packets?label=DoS", "label"),
        ("/api/raw_packets/last/0", "n"),
        ("/api/raw_packets/last/x", "n"),
        ("/api/raw_packets/last/5?limit=3", "limit"),
        ("/api/last10?limit=3", "limit"),
        ("/api/alltraffic?port=-1", "port"),
        ("/api/flows?from=%zz", "from"),
    ] {
        let a = get(addr, path);
        assert_eq!(
            (a.status, a.error()),
            (400, "bad_parameter"),
            "{path}: {a:?}"
        );
        assert!(a.reason().contains(name), "{path}: {}", a.reason());
    }

    // Metrics.
    let text = get(addr, "/metrics").body["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        metric(
            &text,
            "netanalyzer_api_requests_total{endpoint=\"flows\",code=\"200\"}"
        ) > 10.0
    );
    assert!(
        metric(
            &text,
            "netanalyzer_api_requests_total{endpoint=\"flows\",code=\"400\"}"
        ) > 10.0
    );
    assert!(
        metric(
            &text,
            "netanalyzer_api_request_duration_seconds_count{endpoint=\"raw_packets\"}"
        ) > 10.0
    );
    assert_eq!(metric(&text, "netanalyzer_api_pool_in_use"), 0.0);
    assert!(metric(&text, "netanalyzer_api_pool_idle") >= 1.0);
    server.shutdown().unwrap();
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[test]
fn read_tokens() {
    let Some(db) = TestDb::require() else { return };
    let mut cfg = config(&db);
    cfg.dashboard.read_tokens = vec!["read-one".into(), "read-two".into()];
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    for path in [
        "/api/flows",
        "/api/alerts",
        "/api/raw_packets",
        "/api/raw_packets/last/3",
        "/api/last10",
        "/api/alltraffic",
    ] {
        let a = get(addr, path);
        assert_eq!((a.status, a.error()), (401, "unauthorized"), "{path}");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        let a = get_with(addr, path, Some("read-three"));
        assert_eq!((a.status, a.error()), (403, "forbidden"), "{path}");
        let a = get(addr, &format!("{path}?token=nope"));
        assert_eq!((a.status, a.error()), (403, "forbidden"), "{path}");
        assert_eq!(get_with(addr, path, Some("read-two")).status, 200, "{path}");
        assert_eq!(
            get(addr, &format!("{path}?token=read-one")).status,
            200,
            "{path}"
        );
    }
    // The token is checked before the parameters.
    assert_eq!(get(addr, "/api/flows?limit=0").status, 401);
    assert_eq!(get(addr, "/api/flows?limit=0&token=read-one").status, 400);
    // Not guarded: health and metrics.
    assert_eq!(get(addr, "/health").status, 200);
    assert_eq!(get(addr, "/metrics").status, 200);
    server.shutdown().unwrap();

    // A non-loopback listen address needs a read token.
    let mut cfg = config(&db);
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    cfg.tokens = [("edge-1".to_owned(), "t".to_owned())]
        .into_iter()
        .collect();
    let e = Server::start(cfg).unwrap_err().to_string();
    assert!(e.contains("read token"), "{e}");
}

/// Sends a GET by hand and returns the socket.
fn raw_get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

#[test]
fn slow_and_vanishing_clients_hold_no_connection() {
    let Some(db) = TestDb::require() else { return };
    // Big rows: a page of 1000 is about 1.5 MB of JSON.
    let base = now_ns() - 60_000_000_000;
    let mut w = PacketWriter::new(db.client());
    let mut b = PacketBatch::new("edge-1", 1, 0);
    b.records = (0..1000)
        .map(|i| PacketRecord {
            ts_ns: base + i * 1000,
            payload_len: Some(i as u32),
            http_path: Some("x".repeat(1200)),
            protocol: Protocol::Http,
            ..PacketRecord::default()
        })
        .collect();
    w.write_batch(&b).unwrap();
    let mut cfg = config(&db);
    cfg.dashboard.query_connections = 1;
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    let big = "/api/raw_packets?limit=1000";

    // Clients that go away mid-answer.
    for _ in 0..5 {
        let mut s = raw_get(addr, big);
        let mut buf = [0u8; 1024];
        s.read_exact(&mut buf).unwrap();
        drop(s);
    }
    // ... and before it.
    drop(raw_get(addr, big));

    // A slow reader of a big page: meanwhile other requests are answered
    // at once (the page was read before writing; the one connection is free).
    let mut slow = raw_get(addr, big);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let n = slow.read(&mut buf).unwrap();
    got.extend_from_slice(&buf[..n]);
    for _ in 0..5 {
        let t = Instant::now();
        let a = get(addr, "/api/raw_packets?limit=2");
        assert_eq!(a.status, 200, "{a:?}");
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
        let n = slow.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    slow.read_to_end(&mut got).unwrap();
    let text = String::from_utf8(got).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"));
    // Chunked or not, the JSON ends with the page.
    assert!(body.contains("\"next_cursor\":null") || body.contains("\"next_cursor\""));
    assert!(text.len() > 1_000_000);

    let text = get(addr, "/metrics").body["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(metric(&text, "netanalyzer_api_pool_in_use"), 0.0);
    assert_eq!(metric(&text, "netanalyzer_api_pool_idle"), 1.0);
    server.shutdown().unwrap();
}

#[test]
fn busy_timeout_and_database_down() {
    let Some(mut db) = TestDb::require() else {
        return;
    };
    if db.embedded().is_none() {
        eprintln!("skipping: needs the embedded test cluster (NETANALYZER_TEST_PG is set)");
        return;
    }
    let mut cfg = config(&db);
    cfg.dashboard.query_connections = 1;
    cfg.dashboard.query_timeout = Duration::from_secs(2);
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/api/alerts").status, 200);

    // A lock holds the only connection's query: the next request waits a
    // second for a connection and answers busy; the first one times out.
    let mut locker = db.client();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let first = std::thread::spawn(move || get(addr, "/api/alerts"));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let a = get(addr, "/api/alerts");
    assert_eq!((a.status, a.error()), (503, "busy"), "{a:?}");
    assert_eq!(a.header("retry-after"), Some("1"));
    assert!(t.elapsed() >= Duration::from_millis(900));
    let a = first.join().unwrap();
    assert_eq!((a.status, a.error()), (503, "timeout"), "{a:?}");
    tx.rollback().unwrap();
    drop(locker);
    assert_eq!(get(addr, "/api/alerts").status, 200);

    // The database goes away: 503 db_down, then back to 200.
    let data_dir = db.embedded().unwrap().data_dir().to_path_buf();
    pg_ctl(&data_dir, &["stop", "-m", "fast", "-w"]);
    for path in ["/api/alerts", "/api/flows", "/api/raw_packets"] {
        let a = get(addr, path);
        assert_eq!((a.status, a.error()), (503, "db_down"), "{a:?}");
        assert_eq!(a.header("retry-after"), Some("1"));
    }
    let log = data_dir.join("log");
    pg_ctl(&data_dir, &["start", "-w", "-l", log.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(addr, "/api/alerts").status != 200 {
        assert!(Instant::now() < deadline, "never recovered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = get(addr, "/metrics").body["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(metric(&text, "netanalyzer_api_pool_busy_total") >= 1.0);
    assert!(metric(&text, "netanalyzer_api_db_errors_total") >= 3.0);
    assert!(
        metric(
            &text,
            "netanalyzer_api_requests_total{endpoint=\"alerts\",code=\"503\"}"
        ) >= 3.0
    );
    server.shutdown().unwrap();
}

/// Runs `pg_ctl ARGS -D DATA_DIR` on the test cluster behind the test
/// helper's back (as tests/server.rs does).
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
