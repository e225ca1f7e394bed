//! Latency of the query API (`/api/*`) on a large `raw_packets`.
//!
//! ```text
//! cargo run --release -p netanalyzer-benches --bin api_latency -- \
//!     [--rows N] [--closed-days N] [--flows N] [--alerts N] [--requests N]
//! ```
//!
//! Starts an embedded PostgreSQL (`durable: false`) in a temporary
//! directory, then fills it through the real write paths:
//!
//! - `--rows` packets (default 10 000 000) by `PacketWriter::write_batch`
//!   (binary COPY, batches of 50 000): half spread evenly over
//!   `--closed-days` (default 3) closed days, half over the last two hours
//!   (a busy "today"). `pg::maintain` then builds the closed days' btree
//!   indexes, as the server's maintenance does, and `VACUUM (ANALYZE)`
//!   runs (what autovacuum does in the steady state: statistics, and the
//!   BRIN block ranges summarized, as `autosummarize` asks);
//! - `--flows` flows (default 200 000) and `--alerts` alerts (default
//!   2 000) by `flowdb::commit`, spread the same way.
//!
//! It then starts the server on that database and sends each case
//! `--requests` times (default 200) over HTTP on loopback, one at a time,
//! and prints p50/p95/p99 per case and per endpoint, then the
//! `EXPLAIN (ANALYZE, BUFFERS)` of each list query
//! (`netanalyzer_store::server::api::explain`: the very SQL the handlers
//! run). The tables of `docs/api.md` come from this output.

use netanalyzer_benches::{parse_positive_flags, ScratchPostgres};
use netanalyzer_core::{
    Alert, EndReason, FlowAddr, FlowFeatures, FlowKey, FlowProto, FlowRecord, PacketBatch,
    PacketRecord, Protocol, Severity,
};
use netanalyzer_store::flowdb::{self, FlowCommit, Position};
use netanalyzer_store::pg::{self, PacketWriter, PartitionPlan};
use netanalyzer_store::server::{api, DatabaseSource, Server, ServerConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY_NS: u64 = 86_400_000_000_000;
const BUSY_NS: u64 = 2 * 3_600_000_000_000;

struct Args {
    rows: u64,
    closed_days: u64,
    flows: u64,
    alerts: u64,
    requests: u64,
}

fn parse_args() -> Result<Args, String> {
    let (mut rows, mut closed_days, mut flows, mut alerts, mut requests) =
        (10_000_000, 3, 200_000, 2_000, 200);
    parse_positive_flags(
        std::env::args().skip(1),
        &mut [
            ("--rows", &mut rows),
            ("--closed-days", &mut closed_days),
            ("--flows", &mut flows),
            ("--alerts", &mut alerts),
            ("--requests", &mut requests),
        ],
    )?;
    Ok(Args {
        rows,
        closed_days,
        flows,
        alerts,
        requests,
    })
}

/// A cheap deterministic mixer (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The time of item `i` of `n`: the first half evenly over the closed days,
/// the second over the last two hours before `now_ns`.
fn spread(i: u64, n: u64, now_ns: u64, closed_days: u64) -> u64 {
    let today = now_ns / DAY_NS * DAY_NS;
    let half = n / 2;
    if i < half {
        let first = today - closed_days * DAY_NS;
        first + ((i as u128 * u128::from(closed_days * DAY_NS)) / u128::from(half.max(1))) as u64
    } else {
        let start = now_ns - BUSY_NS.min(now_ns - today);
        let span = now_ns - start - 1_000_000_000;
        start + ((u128::from(i - half) * u128::from(span)) / u128::from((n - half).max(1))) as u64
    }
}

/// Packet `i`: a few heavy hitters and many rare addresses, mixed
/// protocols.
fn packet(i: u64, ts_ns: u64) -> PacketRecord {
    let h = mix(i);
    let src = if h % 4 == 0 {
        Ipv4Addr::new(10, 0, 0, (h >> 8) as u8 % 8) // heavy
    } else {
        Ipv4Addr::new(172, 16, (h >> 16) as u8, (h >> 24) as u8) // rare
    };
    let dst = Ipv4Addr::new(10, 1, (h >> 32) as u8 % 4, (h >> 40) as u8 % 16);
    let (protocol, ip_proto, dport) = match h % 10 {
        0..=4 => (Protocol::Tcp, 6, 443),
        5 => (Protocol::Http, 6, 80),
        6..=7 => (Protocol::Udp, 17, 5000 + (h >> 48) as u16 % 100),
        8 => (Protocol::Dns, 17, 53),
        _ => (Protocol::Icmp, 1, 0),
    };
    PacketRecord {
        ts_ns,
        wire_len: 60 + (h % 1400) as u32,
        cap_len: 60,
        ip_version: Some(4),
        src_ip: Some(IpAddr::V4(src)),
        dst_ip: Some(IpAddr::V4(dst)),
        ip_proto: Some(ip_proto),
        ttl: Some(64),
        src_port: (ip_proto != 1).then_some(1024 + (h >> 20) as u16 % 60000),
        dst_port: (ip_proto != 1).then_some(dport),
        payload_len: Some((h % 1400) as u32),
        protocol,
        ..PacketRecord::default()
    }
}

fn flow(i: u64, ts_ns: u64) -> FlowRecord {
    let h = mix(i ^ 0x5555);
    let src = FlowAddr::Ip(IpAddr::V4(if h % 4 == 0 {
        Ipv4Addr::new(10, 0, 0, (h >> 8) as u8 % 8)
    } else {
        Ipv4Addr::new(172, 16, (h >> 16) as u8, (h >> 24) as u8)
    }));
    let dst = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::new(10, 1, 0, (h >> 32) as u8 % 16)));
    let proto = FlowProto::Ip(if h % 3 == 0 { 17 } else { 6 });
    let (sp, dp) = (
        1024 + (h >> 40) as u16 % 60000,
        if h % 3 == 0 { 53 } else { 443 },
    );
    let (key, _) = FlowKey::new(proto, src, sp, dst, dp);
    FlowRecord {
        flow_id: h,
        segment: 0,
        key,
        proto,
        src,
        src_port: sp,
        dst,
        dst_port: dp,
        vlan_id: None,
        first_ts_ns: ts_ns,
        last_ts_ns: ts_ns + 2_000_000_000,
        fwd_packets: 10,
        bwd_packets: 8,
        fwd_bytes: 1000,
        bwd_bytes: 8000,
        tcp_flags: 0x1b,
        end_reason: EndReason::Fin,
        features: FlowFeatures::default(),
        label: Some(["BENIGN", "BENIGN", "BENIGN", "DoS", "PortScan"][(h % 5) as usize].into()),
        confidence: Some(0.9),
    }
}

fn alert(i: u64, ts_ns: u64) -> Alert {
    let h = mix(i ^ 0xaaaa);
    Alert {
        alert_id: h >> 1,
        window_start_ns: ts_ns,
        first_ts_ns: ts_ns,
        last_ts_ns: ts_ns + 10_000_000_000,
        class: ["DDoS", "DoS", "PortScan", "BruteForce"][(h % 4) as usize].into(),
        severity: [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ][((h >> 8) % 4) as usize],
        confidence: 0.9,
        sources: vec!["1.2.3.4".into()],
        source_count: 1,
        target: "10.1.0.5".into(),
        flow_count: 10,
        packet_count: 1000,
        model_version: "bench".into(),
        flow_ids: vec![1],
        revision: 1,
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn fill(conninfo: &str, a: &Args, now: u64) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let mut w = PacketWriter::new(pg::connect(conninfo)?);
    const BATCH: u64 = 50_000;
    let mut seq = 0;
    let mut i = 0;
    while i < a.rows {
        let end = (i + BATCH).min(a.rows);
        let mut b = PacketBatch::new("bench", 1, seq);
        b.records = (i..end)
            .map(|k| packet(k, spread(k, a.rows, now, a.closed_days)))
            .collect();
        w.write_batch(&b)?;
        seq += 1;
        i = end;
        if seq % 20 == 0 {
            eprintln!(
                "  {i} rows, {:.0} rows/s",
                i as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "{} packets written in {:.1} s ({:.0} rows/s)",
        a.rows,
        t.elapsed().as_secs_f64(),
        a.rows as f64 / t.elapsed().as_secs_f64()
    );
    let mut c = w.into_client();
    let t = Instant::now();
    let report = pg::maintain(
        &mut c,
        &PartitionPlan::default(),
        (now / 1_000_000_000) as i64,
    )?;
    eprintln!(
        "closed partitions indexed in {:.1} s: {:?}",
        t.elapsed().as_secs_f64(),
        report.indexed
    );

    let t = Instant::now();
    let mut k = 0;
    while k < a.flows {
        let end = (k + 10_000).min(a.flows);
        let flows: Vec<(String, FlowRecord)> = (k..end)
            .map(|j| {
                (
                    "bench".to_owned(),
                    flow(j, spread(j, a.flows, now, a.closed_days)),
                )
            })
            .collect();
        let alerts: Vec<Alert> = if k == 0 {
            (0..a.alerts)
                .map(|j| alert(j, spread(j, a.alerts, now, a.closed_days)))
                .collect()
        } else {
            Vec::new()
        };
        flowdb::commit(
            &mut c,
            &FlowCommit {
                consumer: "bench",
                position: Position {
                    xid: 0,
                    batch_id: k as i64,
                },
                state: b"",
                flows: &flows,
                model_version: "bench",
                alerts: &alerts,
                rows: 0,
                batches: 0,
                active_flows: None,
            },
        )?;
        k = end;
    }
    eprintln!(
        "{} flows, {} alerts written in {:.1} s",
        a.flows,
        a.alerts,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    // What autovacuum does in the steady state: BRIN ranges summarized
    // (autosummarize), statistics gathered.
    c.batch_execute("VACUUM (ANALYZE)")?;
    eprintln!("VACUUM (ANALYZE) in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// GET, returns (status, body).
fn get(agent: &ureq::Agent, addr: SocketAddr, path: &str) -> (u16, String) {
    match agent.get(format!("http://{addr}{path}")).call() {
        Ok(mut r) => {
            let s = r.status().as_u16();
            (s, r.body_mut().read_to_string().unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse_args()?;
    let scratch = ScratchPostgres::start("netanalyzer-api-latency-")?;
    let conninfo = scratch.pg.conninfo();
    {
        let mut c = pg::connect(&conninfo)?;
        pg::migrate(&mut c)?;
    }
    let now = now_ns();
    fill(&conninfo, &a, now)?;

    let mut cfg = ServerConfig::new(DatabaseSource::Url(conninfo.clone()));
    cfg.listen = "127.0.0.1:0".parse()?;
    let server = Server::start(cfg)?;
    let addr = server.local_addr();
    let agent = agent();

    // Varied parameters. Times: a window inside the middle closed day, and
    // the last 10 minutes.
    let today_ms = now / DAY_NS * DAY_NS / 1_000_000;
    let mid_closed_ms = today_ms - (a.closed_days.div_ceil(2)) * 86_400_000 + 43_200_000;
    let closed = format!("from={}&to={}", mid_closed_ms, mid_closed_ms + 3_600_000);
    let recent = format!("from={}", now / 1_000_000 - 600_000);
    let week = format!("from={}", today_ms - a.closed_days * 86_400_000);
    let second_page = |path: &str| -> String {
        let (_, body) = get(&agent, addr, path);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        match v["next_cursor"].as_str() {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        }
    };
    let cases: Vec<(&str, String)> = vec![
        ("raw_packets", "/api/raw_packets?limit=100".into()),
        ("raw_packets", "/api/raw_packets?limit=1000".into()),
        ("raw_packets", second_page("/api/raw_packets?limit=100")),
        ("raw_packets", "/api/raw_packets?ip=10.0.0.3".into()),
        ("raw_packets", "/api/raw_packets?src_ip=172.16.7.9".into()),
        (
            "raw_packets",
            format!("/api/raw_packets?src_ip=172.16.7.9&{closed}"),
        ),
        (
            "raw_packets",
            format!("/api/raw_packets?dst_ip=10.1.2.3&{closed}"),
        ),
        ("raw_packets", "/api/raw_packets?port=53&proto=udp".into()),
        ("raw_packets", "/api/raw_packets?proto=icmp".into()),
        ("raw_packets", format!("/api/raw_packets?{closed}")),
        ("raw_packets", format!("/api/raw_packets?proto=tcp&{week}")),
        ("raw_packets_last", "/api/raw_packets/last/1000".into()),
        ("last10", "/api/last10".into()),
        ("alltraffic", "/api/alltraffic?limit=500".into()),
        ("flows", "/api/flows".into()),
        ("flows", second_page("/api/flows?limit=100")),
        ("flows", "/api/flows?ip=10.0.0.3".into()),
        ("flows", "/api/flows?src_ip=172.16.7.9".into()),
        ("flows", "/api/flows?label=PortScan&proto=tcp".into()),
        ("flows", format!("/api/flows?port=53&{closed}")),
        ("flows", format!("/api/flows?label=DoS&{week}&limit=1000")),
        ("alerts", "/api/alerts".into()),
        ("alerts", "/api/alerts?severity=high,critical".into()),
        ("alerts", format!("/api/alerts?class=DDoS&{week}")),
        ("alerts", format!("/api/alerts?{recent}")),
        ("stats", "/api/stats?window=300".into()),
        ("stats", "/api/stats?window=3600".into()),
        ("sensors", "/api/sensors".into()),
    ];
    // Warm-up.
    for (_, path) in &cases {
        let (s, body) = get(&agent, addr, path);
        if s != 200 {
            return Err(format!("{path}: {s} {body}").into());
        }
    }
    println!(
        "{} raw packets ({} closed days + today), {} flows, {} alerts; {} requests per case",
        a.rows, a.closed_days, a.flows, a.alerts, a.requests
    );
    println!(
        "\n| case | items | requests | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|"
    );
    let mut by_endpoint: Vec<(&str, Vec<f64>)> = Vec::new();
    for (endpoint, path) in &cases {
        let mut lat = Vec::with_capacity(a.requests as usize);
        let mut items = 0;
        for r in 0..a.requests {
            // A slow case (over 0.5 s on average) is run only 20 times.
            if r == 20 && lat.iter().sum::<f64>() > 10_000.0 {
                break;
            }
            let t = Instant::now();
            let (s, body) = get(&agent, addr, path);
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            if s != 200 {
                return Err(format!("{path}: {s} {body}").into());
            }
            items = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .map_or(0, |v| {
                    v.get("items")
                        .and_then(|i| i.as_array().map(Vec::len))
                        .or_else(|| v.as_array().map(Vec::len))
                        .unwrap_or(0)
                });
        }
        lat.sort_by(f64::total_cmp);
        let shown = if path.contains("cursor=") {
            format!("{} (page 2)", path.split("&cursor=").next().unwrap_or(path))
        } else {
            path.clone()
        };
        println!(
            "| `{shown}` | {items} | {} | {:.1} | {:.1} | {:.1} |",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.95),
            pct(&lat, 0.99)
        );
        match by_endpoint.iter_mut().find(|(e, _)| e == endpoint) {
            Some((_, v)) => v.extend(lat),
            None => by_endpoint.push((endpoint, lat)),
        }
    }
    println!("\n| endpoint | requests | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|");
    for (e, mut lat) in by_endpoint {
        lat.sort_by(f64::total_cmp);
        println!(
            "| {e} | {} | {:.1} | {:.1} | {:.1} |",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.95),
            pct(&lat, 0.99)
        );
    }

    println!("\n## Plans (EXPLAIN (ANALYZE, BUFFERS), warm cache)\n");
    let mut c = pg::connect(&conninfo)?;
    for (_, path) in &cases {
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        let p = match p {
            "/api/alltraffic" | "/api/last10" => "/api/raw_packets",
            p if p.starts_with("/api/raw_packets/last") => continue,
            p => p,
        };
        if !matches!(p, "/api/raw_packets" | "/api/flows" | "/api/alerts") {
            continue;
        }
        let plans = api::explain(&mut c, p, (!q.is_empty()).then_some(q))?;
        println!("### `{path}`\n\n{} window(s)\n\n```text", plans.len());
        for plan in &plans {
            println!("{plan}");
        }
        println!("```\n");
    }
    server.shutdown()?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api_latency: {e}");
            ExitCode::FAILURE
        }
    }
}
