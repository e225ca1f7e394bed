//! Dashboard WebSocket load and latency: alert commit -> receipt by 1 and
//! by N concurrent `/ws/dashboard` clients on loopback.
//!
//! ```text
//! cargo run --release -p netanalyzer-benches --bin wsload -- [--clients N] [--alerts K] [--interval-ms MS]
//! ```
//!
//! Starts a database (`NETANALYZER_TEST_PG`, else an embedded cluster, as
//! `pg::TestDb`) and the server in this process, then runs two phases:
//! 1 client, then `--clients` (default 1000) clients. The clients live in a
//! child process (this binary with `--child`), so this process's memory
//! and CPU are the server's. In each phase, once every client has its
//! snapshot, `--alerts` (default 200) alerts are committed one per commit
//! through the real path (`flowdb::commit`: upsert + `pg_notify` in one
//! transaction), one every `--interval-ms` (default 20); the commit time is
//! taken right after COMMIT returns. Each client records when each alert
//! arrives (wall clock, shared by both processes); latency = receipt -
//! commit, over every (alert, client) pair. Prints p50/p99/max per phase,
//! the server's RSS (VmRSS, VmHWM from `/proc/self/status`) and its CPU
//! (threads `na-*` from `/proc/self/task/*/stat`) during the N-client
//! phase. The stats ticker runs as usual (stats to every client each
//! second) during the measurement.

use futures_util::StreamExt;
use netanalyzer_benches::parse_positive_flags;
use netanalyzer_core::{Alert, Severity};
use netanalyzer_store::flowdb::{self, FlowCommit, Position};
use netanalyzer_store::pg::TestDb;
use netanalyzer_store::server::{DatabaseSource, Server, ServerConfig};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

/// Longest a phase waits for every alert to reach every client.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// Handshakes in flight at once while connecting the clients.
const CONNECT_CONCURRENCY: usize = 64;

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit when it is below
/// `need`.
fn raise_nofile(need: u64) -> Result<(), String> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current.is_some_and(|c| c < need) {
        lim.current = lim.maximum;
        setrlimit(Resource::Nofile, lim).map_err(|e| format!("setrlimit NOFILE: {e}"))?;
    }
    let now = getrlimit(Resource::Nofile).current;
    if now.is_some_and(|c| c < need) {
        return Err(format!(
            "open files limited to {now:?}, {need} needed: raise `ulimit -n`"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- child

/// The client side: connects `n` clients, prints `READY` once each has its
/// snapshot, then records every alert's arrival and, once every client has
/// `k` alerts (or on timeout), prints `R <alert_id> <client> <unix_ns>` per
/// receipt and `DONE <stats messages>`.
fn child(addr: SocketAddr, n: usize, k: usize) -> Result<(), Box<dyn std::error::Error>> {
    raise_nofile(n as u64 + 64)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("wsload-client")
        .enable_all()
        .build()?;
    let url = format!("ws://{addr}/ws/dashboard");
    let results = rt.block_on(async move {
        let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
        let ready = Arc::new(tokio::sync::Barrier::new(n + 1));
        let mut tasks = Vec::with_capacity(n);
        for client in 0..n {
            let (gate, ready, url) = (gate.clone(), ready.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let opened = async {
                    let _permit = gate.acquire_owned().await;
                    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                        .await
                        .map_err(|e| format!("client {client}: connect: {e}"))?;
                    // The snapshot first.
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t.contains(r#""type":"snapshot""#) => Ok(ws),
                        other => Err(format!("client {client}: no snapshot: {other:?}")),
                    }
                }
                .await;
                // Everyone passes the barrier, connected or not.
                ready.wait().await;
                let mut ws = opened?;
                let mut got: Vec<(u64, u64)> = Vec::with_capacity(k);
                let mut stats = 0u64;
                let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
                while got.len() < k {
                    let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
                        Ok(Some(Ok(m))) => m,
                        _ => break,
                    };
                    let at = unix_ns();
                    if let Message::Text(t) = msg {
                        if t.starts_with(r#"{"type":"alert""#) {
                            if let Some(id) = alert_id(&t) {
                                got.push((id, at));
                            }
                        } else if t.starts_with(r#"{"type":"stats""#) {
                            stats += 1;
                        }
                    }
                }
                let _ = ws.close(None).await;
                Ok::<_, String>((got, stats))
            }));
        }
        ready.wait().await;
        println!("READY");
        let _ = std::io::stdout().flush();
        let mut out = Vec::with_capacity(n);
        for t in tasks {
            out.push(t.await.map_err(|e| e.to_string()).and_then(|r| r));
        }
        out
    });
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut stats = 0;
    for (client, r) in results.into_iter().enumerate() {
        let (got, s) = r?;
        stats += s;
        for (id, at) in got {
            writeln!(w, "R {id} {client} {at}")?;
        }
    }
    writeln!(w, "DONE {stats}")?;
    w.flush()?;
    Ok(())
}

/// The `alert_id` of an alert message, without parsing all of it.
fn alert_id(text: &str) -> Option<u64> {
    let key = r#""alert_id":""#;
    let at = text.find(key)? + key.len();
    let rest = &text[at..];
    rest[..rest.find('"')?].parse().ok()
}

// --------------------------------------------------------------- parent

struct Args {
    clients: usize,
    alerts: usize,
    interval: Duration,
}

fn parse_args() -> Result<Args, String> {
    let (mut clients, mut alerts, mut interval) = (1000, 200, 20);
    parse_positive_flags(
        std::env::args().skip(1),
        &mut [
            ("--clients", &mut clients),
            ("--alerts", &mut alerts),
            ("--interval-ms", &mut interval),
        ],
    )?;
    Ok(Args {
        clients: clients as usize,
        alerts: alerts as usize,
        interval: Duration::from_millis(interval),
    })
}

fn alert(id: u64) -> Alert {
    let t = unix_ns();
    Alert {
        alert_id: id,
        window_start_ns: t - 10_000_000_000,
        first_ts_ns: t - 9_000_000_000,
        last_ts_ns: t,
        class: "DDoS".into(),
        severity: Severity::Critical,
        confidence: 0.97,
        sources: (1..=8).map(|i| format!("198.51.100.{i}")).collect(),
        source_count: 250,
        target: "10.0.0.5".into(),
        flow_count: 1000,
        packet_count: 100_000,
        model_version: "rf-2025-01".into(),
        flow_ids: vec![1, 2, 3],
        revision: 1,
    }
}

/// `VmRSS` and `VmHWM` of this process, KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) of this process's threads whose name
/// starts with `prefix` (all threads for "").
fn cpu_secs(prefix: &str) -> f64 {
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let mut total = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... field 14 utime, 15 stime.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        total += num(11) + num(12);
    }
    total as f64 / ticks
}

/// `GET /metrics` over plain HTTP/1.0 (the hub's metrics are only there).
fn http_metrics(addr: SocketAddr) -> String {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

struct Phase {
    clients: usize,
    /// Server RSS once every client had its snapshot, KiB.
    rss_connected: u64,
    /// Latency of every (alert, client) pair, ms.
    lat_ms: Vec<f64>,
    /// Per alert, the latency of its last client, ms.
    last_ms: Vec<f64>,
    missing: usize,
    /// Receipts before COMMIT returned to the committer.
    early: usize,
    stats: u64,
    wall: Duration,
    server_cpu: f64,
    process_cpu: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn run_phase(
    server: &Server,
    committer: &mut postgres::Client,
    batch: &mut i64,
    next_id: &mut u64,
    args: &Args,
    clients: usize,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let addr = server.local_addr();
    let exe = std::env::current_exe()?;
    let t_connect = Instant::now();
    let mut child = Command::new(exe)
        .args([
            "--child",
            &addr.to_string(),
            &clients.to_string(),
            &args.alerts.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(l)) if l == "READY" => {}
        other => return Err(format!("child did not get ready: {other:?}").into()),
    }
    let connected = metric(&http_metrics(addr), "netanalyzer_ws_clients");
    let (rss_connected, _) = memory_kib();
    eprintln!(
        "{clients} clients connected in {:.2} s (server counts {connected})",
        t_connect.elapsed().as_secs_f64()
    );
    let (cpu0, all0, t0) = (cpu_secs("na-"), cpu_secs(""), Instant::now());
    let mut commits = std::collections::HashMap::with_capacity(args.alerts);
    let mut next = Instant::now();
    for _ in 0..args.alerts {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += args.interval;
        let id = *next_id;
        *next_id += 1;
        *batch += 1;
        flowdb::commit(
            committer,
            &FlowCommit {
                consumer: "wsload",
                position: Position {
                    xid: 1,
                    batch_id: *batch,
                },
                state: b"",
                flows: &[],
                model_version: "rf-2025-01",
                alerts: &[alert(id)],
                rows: 0,
                batches: 0,
                active_flows: None,
            },
        )?;
        commits.insert(id, unix_ns());
    }
    let mut lat_ms = Vec::with_capacity(args.alerts * clients);
    let mut last: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
    let mut stats = 0;
    let mut early = 0usize;
    for l in lines {
        let l = l?;
        let mut f = l.split(' ');
        match f.next() {
            Some("R") => {
                let id: u64 = f.next().and_then(|v| v.parse().ok()).ok_or("bad line")?;
                let _client = f.next();
                let at: u64 = f.next().and_then(|v| v.parse().ok()).ok_or("bad line")?;
                let Some(&c) = commits.get(&id) else { continue };
                // A client may see the NOTIFY before COMMIT returns here:
                // counted as 0.
                if at < c {
                    early += 1;
                }
                let ms = at.saturating_sub(c) as f64 / 1e6;
                lat_ms.push(ms);
                let e = last.entry(id).or_insert(0.0);
                *e = e.max(ms);
            }
            Some("DONE") => {
                stats = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            }
            _ => {}
        }
    }
    let wall = t0.elapsed();
    let (cpu1, all1) = (cpu_secs("na-"), cpu_secs(""));
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("client process failed: {status}").into());
    }
    lat_ms.sort_by(f64::total_cmp);
    let mut last_ms: Vec<f64> = last.into_values().collect();
    last_ms.sort_by(f64::total_cmp);
    Ok(Phase {
        clients,
        rss_connected,
        missing: args.alerts * clients - lat_ms.len(),
        lat_ms,
        last_ms,
        early,
        stats,
        wall,
        server_cpu: cpu1 - cpu0,
        process_cpu: all1 - all0,
    })
}

fn report(p: &Phase) {
    println!(
        "{:>5} clients: commit->receive p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  over {} receipts ({} missing, {} before COMMIT returned); \
         last client per alert p50 {:.2} ms p99 {:.2} ms; {} stats messages received",
        p.clients,
        pct(&p.lat_ms, 0.50),
        pct(&p.lat_ms, 0.99),
        p.lat_ms.last().copied().unwrap_or(f64::NAN),
        p.lat_ms.len(),
        p.missing,
        p.early,
        pct(&p.last_ms, 0.50),
        pct(&p.last_ms, 0.99),
        p.stats,
    );
    let secs = p.wall.as_secs_f64();
    println!(
        "       server CPU {:.2} s over {:.1} s = {:.1}% of one core (whole server process {:.1}%)",
        p.server_cpu,
        secs,
        100.0 * p.server_cpu / secs,
        100.0 * p.process_cpu / secs,
    );
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--child") {
        let addr: SocketAddr = argv.get(2).ok_or("addr")?.parse()?;
        let n: usize = argv.get(3).ok_or("n")?.parse()?;
        let k: usize = argv.get(4).ok_or("k")?.parse()?;
        return child(addr, n, k);
    }
    let args = parse_args()?;
    raise_nofile(args.clients as u64 + 256)?;
    let db = TestDb::start()?;
    let mut cfg = ServerConfig::new(DatabaseSource::Url(db.conninfo()));
    cfg.listen = "127.0.0.1:0".parse()?;
    cfg.dashboard.max_clients = args.clients + 16;
    let server = Server::start(cfg)?;
    let mut committer = db.client();
    let (mut batch, mut next_id) = (0i64, 1u64);
    let (rss0, _) = memory_kib();
    eprintln!("server up at {}; RSS {rss0} KiB", server.local_addr());

    let one = run_phase(&server, &mut committer, &mut batch, &mut next_id, &args, 1)?;
    let many = run_phase(
        &server,
        &mut committer,
        &mut batch,
        &mut next_id,
        &args,
        args.clients,
    )?;
    let (rss_end, hwm) = memory_kib();
    let m = http_metrics(server.local_addr());
    println!(
        "wsload: {} alerts per phase, one commit every {} ms; clients in a child process",
        args.alerts,
        args.interval.as_millis()
    );
    report(&one);
    report(&many);
    println!(
        "server RSS: {rss0} KiB idle, {} KiB with 1 client, {} KiB with {} clients connected, {rss_end} KiB after; VmHWM {hwm} KiB",
        one.rss_connected, many.rss_connected, args.clients
    );
    println!(
        "hub: stats dropped {}, disconnects overflow {} timeout {} error {}",
        metric(&m, "netanalyzer_ws_stats_dropped_total"),
        metric(&m, "netanalyzer_ws_disconnects_total{reason=\"overflow\"}"),
        metric(&m, "netanalyzer_ws_disconnects_total{reason=\"timeout\"}"),
        metric(&m, "netanalyzer_ws_disconnects_total{reason=\"error\"}"),
    );
    server.shutdown()?;
    if one.missing + many.missing > 0 {
        return Err("some alerts never reached a client".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsload: {e}");
            ExitCode::FAILURE
        }
    }
}
