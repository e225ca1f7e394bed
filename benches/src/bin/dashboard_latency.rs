//! Alert commit → browser DOM update latency of the dashboard.
//!
//! ```text
//! cargo build --release -p netanalyzer-examples --bin netanalyzer-server
//! (cd examples/browser && npm ci)
//! cargo run --release -p netanalyzer-benches --bin dashboard_latency -- [--alerts N] [--interval-ms MS]
//! ```
//!
//! 1. Starts the release `netanalyzer-server` (looked up beside this
//!    binary) on a fresh embedded PostgreSQL in a temporary directory.
//! 2. Opens the dashboard in Debian's headless Chromium (`CHROMIUM`,
//!    default `/usr/bin/chromium`) through `examples/browser/driver.mjs`,
//!    waits for `#conn[data-state=live]`, and installs a MutationObserver
//!    on the alerts table that records, for every added
//!    `tr[data-alert-id]`, `performance.timeOrigin + performance.now()`
//!    (wall-clock ms) in the observer callback, i.e. right after the DOM
//!    change in the same task.
//! 3. Commits `N` new critical alerts (default 300), one every `MS` ms
//!    (default 50), each through the aggregator's real commit path
//!    (`netanalyzer_store::flowdb::commit`: the alert upsert and its
//!    `pg_notify` in one transaction), and takes the wall time right after
//!    COMMIT returns.
//! 4. Reports p50/p90/p99/max of DOM time − commit time. The browser and
//!    this process read the same system clock; the offset between the
//!    two readings is estimated beforehand from 30 round trips (the
//!    reading whose round trip was shortest) and printed with its bound.
//!
//! `--json` prints the result as one JSON object as well.

use netanalyzer_core::{Alert, Severity};
use netanalyzer_store::flowdb::{self, FlowCommit, Position};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Wall-clock ms since the Unix epoch, fractional.
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The node driver of Chromium (`examples/browser/driver.mjs`).
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Browser {
    fn start(dir: &Path) -> Result<Browser> {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut child = Command::new("node")
            .arg("driver.mjs")
            .current_dir(dir)
            .env("CHROMIUM", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("driver stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("driver stdout")?);
        Ok(Browser {
            child,
            stdin,
            stdout,
            next: 0,
        })
    }

    fn call(&mut self, op: &str, mut args: Value) -> Result<Value> {
        self.next += 1;
        args["id"] = json!(self.next);
        args["op"] = json!(op);
        writeln!(self.stdin, "{args}")?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err("the browser driver exited".into());
        }
        let v: Value = serde_json::from_str(&line)?;
        if v["ok"] == json!(true) {
            Ok(v["value"].clone())
        } else {
            Err(format!("browser {op}: {}", v["error"]).into())
        }
    }

    fn eval(&mut self, expr: &str) -> Result<Value> {
        self.call("eval", json!({ "expr": expr }))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"id": 0, "op": "close"}));
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server child; SIGTERM on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server on `data_dir`; it and its address once it listens.
fn start_server(bin: &Path, data_dir: &Path) -> Result<(Server, String)> {
    let mut child = Command::new(bin)
        .env("RUST_LOG", "warn")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let err = child.stderr.take().ok_or("server stderr")?;
    let found: Arc<Mutex<Option<String>>> = Arc::default();
    let found2 = Arc::clone(&found);
    std::thread::spawn(move || {
        for line in BufReader::new(err)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                *found2.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
            } else {
                eprintln!("[server] {line}");
            }
        }
    });
    let server = Server(child);
    let t0 = Instant::now();
    loop {
        if let Some(a) = found.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok((server, format!("http://{a}")));
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err("the server did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `p`-quantile (nearest rank) of sorted values.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() -> Result<()> {
    let mut n: u64 = 300;
    let mut interval_ms: u64 = 50;
    let mut as_json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--alerts" => n = args.next().ok_or("--alerts N")?.parse()?,
            "--interval-ms" => interval_ms = args.next().ok_or("--interval-ms MS")?.parse()?,
            "--json" => as_json = true,
            "-h" | "--help" => {
                println!("usage: dashboard_latency [--alerts N] [--interval-ms MS] [--json]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let server_bin = std::env::current_exe()?
        .parent()
        .ok_or("no binary directory")?
        .join("netanalyzer-server");
    if !server_bin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release -p netanalyzer-examples --bin netanalyzer-server` first",
            server_bin.display()
        )
        .into());
    }
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/browser");
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        return Err(format!("run `npm ci` in {} first", browser_dir.display()).into());
    }

    let tmp = tempfile::Builder::new()
        .prefix("na-lat")
        .tempdir_in("/tmp")?;
    let data_dir = tmp.path().join("pg");
    let (_server, url) = start_server(&server_bin, &data_dir)?;
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=netanalyzer",
        data_dir.join("run").display()
    );
    let mut client = postgres::Client::connect(&conninfo, postgres::NoTls)?;
    eprintln!("server {url}");

    let mut b = Browser::start(&browser_dir)?;
    b.call("goto", json!({ "url": format!("{url}/") }))?;
    b.call(
        "waitFn",
        json!({ "expr": "document.querySelector('#conn').dataset.state === 'live'", "timeout_ms": 30000 }),
    )?;
    b.eval(
        "(() => { window.__seen = []; \
         new MutationObserver((ms) => { const t = performance.timeOrigin + performance.now(); \
           for (const m of ms) for (const n of m.addedNodes) \
             if (n.dataset && n.dataset.alertId) window.__seen.push([n.dataset.alertId, t]); }) \
         .observe(document.querySelector('#alerts tbody'), { childList: true }); return true; })()",
    )?;

    // Clock offset browser − here, from the round trip that was shortest.
    let mut best = (f64::INFINITY, 0.0);
    for _ in 0..30 {
        let t1 = now_ms();
        let v = b
            .eval("performance.timeOrigin + performance.now()")?
            .as_f64()
            .ok_or("a number")?;
        let t2 = now_ms();
        if t2 - t1 < best.0 {
            best = (t2 - t1, v - (t1 + t2) / 2.0);
        }
    }
    let (rtt, offset) = best;
    eprintln!(
        "clock offset browser - bench: {offset:.3} ms (± {:.3} ms)",
        rtt / 2.0
    );

    let base_id: u64 = 0x4c41_5400_0000_0000; // "LAT\0" + i
    let mut committed = Vec::with_capacity(n as usize);
    let position = Position {
        xid: 0,
        batch_id: 0,
    };
    let t_run = Instant::now();
    for i in 0..n {
        let ts_ns = (now_ms() * 1e6) as u64;
        let alert = Alert {
            alert_id: base_id + i,
            window_start_ns: ts_ns - 1_000_000_000,
            first_ts_ns: ts_ns - 1_000_000_000,
            last_ts_ns: ts_ns,
            class: "DDoS".into(),
            severity: Severity::Critical,
            confidence: 0.97,
            sources: vec!["192.0.2.1".into(), "192.0.2.2".into()],
            source_count: 1200,
            target: format!("198.51.100.{}", i % 250 + 1),
            flow_count: 1200,
            packet_count: 2400,
            model_version: "dashboard-latency".into(),
            flow_ids: vec![i],
            revision: 1,
        };
        let fc = FlowCommit {
            consumer: "dashboard-latency",
            position,
            state: &[],
            flows: &[],
            model_version: "dashboard-latency",
            alerts: std::slice::from_ref(&alert),
            rows: 0,
            batches: 0,
            active_flows: None,
        };
        let before = now_ms();
        flowdb::commit(&mut client, &fc)?;
        committed.push(((alert.alert_id as i64).to_string(), before, now_ms()));
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
    let run_secs = t_run.elapsed().as_secs_f64();

    // Collect what the page saw (waiting up to 10 s for stragglers).
    let t0 = Instant::now();
    let seen = loop {
        let seen = b.eval("window.__seen")?;
        let arr = seen.as_array().cloned().unwrap_or_default();
        if arr.len() >= n as usize || t0.elapsed() > Duration::from_secs(10) {
            break arr;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut dom = std::collections::HashMap::new();
    for s in &seen {
        if let (Some(id), Some(t)) = (s[0].as_str(), s[1].as_f64()) {
            dom.entry(id.to_owned()).or_insert(t);
        }
    }
    // From COMMIT's return (the measure), and from the commit call's start
    // (an upper bound: were this process descheduled between COMMIT and
    // reading the clock, the first would come out too short).
    let mut lat: Vec<f64> = Vec::new();
    let mut upper: Vec<f64> = Vec::new();
    for (id, before, after) in &committed {
        if let Some(d) = dom.get(id) {
            lat.push(d - after);
            upper.push(d - before);
        }
    }
    let missing = committed.len() - lat.len();
    lat.sort_by(f64::total_cmp);
    upper.sort_by(f64::total_cmp);
    let (u50, u99) = (quantile(&upper, 0.50), quantile(&upper, 0.99));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_owned();
    let (p50, p90, p99) = (
        quantile(&lat, 0.50),
        quantile(&lat, 0.90),
        quantile(&lat, 0.99),
    );
    let max = lat.last().copied().unwrap_or(f64::NAN);
    let min = lat.first().copied().unwrap_or(f64::NAN);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "dashboard latency, alert COMMIT -> DOM row (headless Chromium, {cpus} CPUs):\n  \
         alerts {n} (one per {interval_ms} ms, {run_secs:.1} s), shown {}, missing {missing}\n  \
         min {min:.1} ms  p50 {p50:.1} ms  p90 {p90:.1} ms  p99 {p99:.1} ms  max {max:.1} ms\n  \
         from the commit call's start: p50 {u50:.1} ms  p99 {u99:.1} ms\n  \
         clock offset browser-bench {offset:.2} ms (± {:.2} ms, not subtracted); load average {load}",
        lat.len(),
        rtt / 2.0
    );
    if as_json {
        println!(
            "{}",
            json!({
                "alerts": n, "interval_ms": interval_ms, "shown": lat.len(), "missing": missing,
                "min_ms": min, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max,
                "clock_offset_ms": offset, "clock_offset_bound_ms": rtt / 2.0, "cpus": cpus,
                "from_start_p50_ms": u50, "from_start_p99_ms": u99, "load_average_1m": load,
            })
        );
    }
    drop(b);
    if missing > 0 {
        return Err(format!("{missing} alert(s) never reached the page").into());
    }
    Ok(())
}
