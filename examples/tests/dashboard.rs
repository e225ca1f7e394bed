//! The dashboard in real headless Chromium (Debian's `/usr/bin/chromium`,
//! driven by `playwright-core` through `examples/browser/driver.mjs`),
//! against the real binaries: `netanalyzer-server` on its embedded
//! PostgreSQL, `netanalyzer-aggregator` adopting that cluster, and
//! `netanalyzer-sniffer` sending a generated capture (normal traffic and a
//! SYN flood stamped a few seconds ago).
//!
//! What is proven:
//! - the page loads with no console error, with its strict CSP;
//! - the rate and protocol charts draw from the pushed `stats`;
//! - an alert raised by the aggregator from the sniffer's packets reaches
//!   the page as a table row and (high/critical) as a toast;
//! - the sensor panel lists the sensor; the flows view filters;
//! - after the server restarts (same data dir, same port) the page
//!   reconnects by itself (`#conn[data-state=live]`);
//! - when the WebSocket keeps failing the page polls the API, and goes
//!   back to live when the WebSocket works again;
//! - with a read token, the page without it is refused and with
//!   `#token=...` works.
//!
//! Screenshots of every step go to `target/artifacts/dashboard/`.
//! Needs node, `npm ci` in `examples/browser` and Chromium: without them
//! the tests are skipped with a reason, except under `CI=true`.

mod support;

use netanalyzer_capture::gen::{self, GenConfig, Scenario};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{wait_for, ServerProc};

const AGGREGATOR: &str = env!("CARGO_BIN_EXE_netanalyzer-aggregator");

/// `examples/browser`, the node project of the driver.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Where screenshots go: `<target>/artifacts/dashboard`.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("artifacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Chromium binary (`CHROMIUM`, default `/usr/bin/chromium`).
fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Whether the browser tests can run here; a reason is printed when not,
/// and under `CI=true` a missing piece fails.
fn browser_available() -> bool {
    let mut missing = Vec::new();
    if !chromium().exists() {
        missing.push(format!(
            "{} (apt-get install chromium)",
            chromium().display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node".to_owned());
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push("examples/browser/node_modules (npm ci in examples/browser)".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "browser tests need {} under CI=true",
        missing.join(", ")
    );
    eprintln!("skipping: missing {}", missing.join(", "));
    false
}

/// The node driver: one JSON command per line, one JSON answer per line.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Browser {
    fn start() -> Browser {
        let mut child = Command::new("node")
            .arg("driver.mjs")
            .current_dir(browser_dir())
            .env("CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node driver.mjs");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Browser {
            child,
            stdin,
            stdout,
            next: 0,
        }
    }

    /// Runs one command; its value, or the driver's error text.
    fn try_call(&mut self, op: &str, mut args: Value) -> Result<Value, String> {
        self.next += 1;
        args["id"] = json!(self.next);
        args["op"] = json!(op);
        writeln!(self.stdin, "{args}").expect("write to the driver");
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read the driver");
        assert!(n > 0, "the browser driver exited");
        let v: Value = serde_json::from_str(&line).expect("driver answer is JSON");
        assert_eq!(v["id"], json!(self.next));
        if v["ok"] == json!(true) {
            Ok(v["value"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("?").to_owned())
        }
    }

    fn call(&mut self, op: &str, args: Value) -> Value {
        self.try_call(op, args.clone())
            .unwrap_or_else(|e| panic!("browser {op} {args}: {e}"))
    }

    fn goto(&mut self, url: &str, fresh: bool) -> Value {
        self.call("goto", json!({ "url": url, "fresh": fresh }))
    }

    fn eval(&mut self, expr: &str) -> Value {
        self.call("eval", json!({ "expr": expr }))
    }

    /// Waits until `expr` is truthy in the page; panics with `what` and a
    /// screenshot after `secs`.
    fn wait_js(&mut self, what: &str, expr: &str, secs: u64) -> Value {
        match self.try_call("waitFn", json!({ "expr": expr, "timeout_ms": secs * 1000 })) {
            Ok(v) => v,
            Err(e) => {
                let shot = self.shot(&format!("failed-{}", what.replace(' ', "-")));
                let log = self.call("console", json!({}));
                panic!("timed out waiting for {what} ({e}); screenshot {shot}; console {log}")
            }
        }
    }

    fn conn_state(&mut self) -> String {
        self.eval("document.querySelector('#conn').dataset.state")
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    fn wait_state(&mut self, state: &str, secs: u64) {
        self.wait_js(
            &format!("#conn {state}"),
            &format!("document.querySelector('#conn').dataset.state === '{state}'"),
            secs,
        );
    }

    /// A full-page screenshot into the artifacts folder; its path.
    fn shot(&mut self, name: &str) -> String {
        let path = artifacts().join(format!("{name}.png"));
        let p = path.to_str().unwrap().to_owned();
        let _ = self.try_call("screenshot", json!({ "path": p }));
        eprintln!("screenshot {p}");
        p
    }

    /// Console errors and page errors logged since `since_ms`.
    fn errors_since(&mut self, since_ms: u64) -> Vec<Value> {
        self.call("console", json!({}))
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["t_ms"].as_u64().unwrap_or(0) >= since_ms
                    && matches!(m["type"].as_str(), Some("error" | "pageerror"))
            })
            .cloned()
            .collect()
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A running aggregator on the server's embedded cluster; stderr echoed.
struct AggProc(Child);

impl AggProc {
    fn start(data_dir: &Path) -> AggProc {
        let mut child = support::command(AGGREGATOR)
            .env("RUST_LOG", "info")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--metrics-listen", "127.0.0.1:0", "--commit-ms", "200"])
            .args(["--idle-poll-ms", "50"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start netanalyzer-aggregator");
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[aggregator] {line}");
            }
        });
        AggProc(child)
    }

    fn stop(mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AggProc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The server on `data_dir` at `127.0.0.1:port`, with extra flags.
fn server(data_dir: &Path, port: u16, extra: &[&str]) -> ServerProc {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--listen",
        &listen,
    ];
    args.extend_from_slice(extra);
    ServerProc::start(&args)
}

/// A capture of normal traffic and a SYN flood, stamped from 30 s ago, so
/// it falls in the dashboard's 5-minute window.
fn attack_pcap(dir: &Path) -> PathBuf {
    let pcap = dir.join("attack.pcap");
    let cfg = GenConfig {
        packets: 30_000,
        pps: 5_000.0,
        seed: 5,
        start_ts_ns: (now_ms() - 30_000) * 1_000_000,
        scenarios: vec![Scenario::Normal, Scenario::SynFlood],
        ..GenConfig::default()
    };
    gen::generate_files(&cfg, &pcap, &dir.join("attack.labels.csv")).expect("generate");
    pcap
}

/// Sends a capture through the sniffer to the server.
fn send(pcap: &Path, url: &str, dir: &Path) {
    let out = support::sniffer()
        .arg("-r")
        .arg(pcap)
        .args(["--server", url, "--sensor-id", "edge-1"])
        .args(["--batch-size", "1000"])
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .output()
        .unwrap();
    support::show(&out);
    assert!(out.status.success(), "sniffer failed");
}

/// `postgres` client on the server's embedded cluster.
fn db(data_dir: &Path) -> postgres::Client {
    let run = data_dir.join("run");
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=netanalyzer",
        run.display()
    );
    postgres::Client::connect(&conninfo, postgres::NoTls).unwrap()
}

#[test]
fn dashboard_live_alerts_reconnect_and_polling_in_chromium() {
    if !browser_available() || !support::pg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("pgdata");
    let port = support::free_port();
    let srv = server(&data_dir, port, &[]);
    let url = srv.url();
    let pcap = attack_pcap(dir.path());

    // 1. The page loads, connects, and logs no error.
    let mut b = Browser::start();
    let t_load = now_ms();
    let resp = b.goto(&format!("{url}/"), false);
    assert_eq!(resp["status"], json!(200));
    let csp = resp["headers"]["content-security-policy"]
        .as_str()
        .unwrap_or("");
    assert!(csp.contains("script-src 'self'"), "CSP: {csp}");
    b.wait_state("live", 20);
    // A second of pushes (stats once a second) before judging the log.
    std::thread::sleep(Duration::from_millis(1500));
    let errors = b.errors_since(t_load);
    assert!(errors.is_empty(), "console errors on load: {errors:?}");
    b.shot("01-empty-live");

    // 2. Traffic and an attack through the pipeline: sniffer -> server ->
    //    aggregator -> alerts + NOTIFY -> WebSocket -> page.
    let agg = AggProc::start(&data_dir);
    send(&pcap, &url, dir.path());
    let mut client = db(&data_dir);
    wait_for("a high or critical alert", Duration::from_secs(120), || {
        client
            .query_one(
                "SELECT count(*) FROM alerts WHERE severity IN ('high', 'critical')",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
    });
    let rows = client
        .query(
            "SELECT alert_id::text, class, severity, target FROM alerts ORDER BY alert_id",
            &[],
        )
        .unwrap();
    let alerts: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    eprintln!("alerts in the database: {alerts:?}");
    let (id, class, severity, target) = alerts
        .iter()
        .find(|a| a.2 == "high" || a.2 == "critical")
        .cloned()
        .unwrap();
    let row = format!("#alerts tbody tr[data-alert-id='{id}']");
    let toast = format!(".toast[data-alert-id='{id}']");
    b.wait_js(
        "the alert row",
        &format!("!!document.querySelector(\"{row}\")"),
        20,
    );
    b.wait_js(
        "the alert toast",
        &format!("!!document.querySelector(\"{toast}\")"),
        5,
    );
    let shown = b.eval(&format!(
        "(() => {{ const t = document.querySelector(\"{toast}\"); \
         return {{ text: t.textContent, sev: t.dataset.severity, \
         row: document.querySelector(\"{row}\").textContent }}; }})()"
    ));
    eprintln!("toast: {shown}");
    let text = shown["text"].as_str().unwrap();
    assert!(text.contains(&class) && text.contains(&target), "{text}");
    assert!(
        text.contains("confidence") && text.contains("from "),
        "{text}"
    );
    assert_eq!(shown["sev"].as_str(), Some(severity.as_str()));
    assert!(shown["row"].as_str().unwrap().contains(&target));
    // Every alert of the database is in the table.
    for (aid, ..) in &alerts {
        b.wait_js(
            "every alert row",
            &format!("!!document.querySelector(\"#alerts tbody tr[data-alert-id='{aid}']\")"),
            10,
        );
    }
    b.shot("02-alert-toast");

    // 3. The charts draw: the rate line has points above zero, the
    //    protocol chart has bars, the top lists and the sensor are shown.
    b.wait_js(
        "the rate chart",
        "(() => { const s = document.querySelector('#rate-chart'); \
         return +s.dataset.maxPps > 0 && s.querySelector('path.pps').getAttribute('d').length > 100; })()",
        20,
    );
    b.wait_js(
        "protocol bars",
        "document.querySelectorAll('#proto-chart rect.bar').length > 0",
        10,
    );
    b.wait_js(
        "top targets",
        &format!("!!document.querySelector(\"#targets tr[data-ip='{target}']\")"),
        10,
    );
    b.wait_js(
        "the sensor row",
        "!!document.querySelector(\"#sensors tr[data-sensor-id='edge-1']\")",
        10,
    );
    // The capture is stamped from 30 s ago: the sensor's ingest lag is
    // over 10 s, which the red banner must say.
    let banner = b.wait_js(
        "the sensor trouble banner",
        "(() => { const b = document.querySelector('#health-banner'); \
         return !b.hidden && b.textContent.includes('edge-1') && b.textContent; })()",
        10,
    );
    assert!(banner.as_str().unwrap().contains("ingest lag"), "{banner}");
    let last = b.eval("+document.querySelector('#last-updated').dataset.ms");
    assert!(
        last.as_u64().unwrap() + 5_000 > now_ms(),
        "last updated {last}"
    );

    // 4. The flows view: filter by the target's address.
    b.eval(&format!(
        "(() => {{ const f = document.querySelector('#flow-filter'); \
         f.elements.ip.value = '{target}'; f.elements.proto.value = 'tcp'; \
         f.requestSubmit(); }})()"
    ));
    let flows = b.wait_js(
        "filtered flows",
        &format!(
            "(() => {{ const r = [...document.querySelectorAll('#flows tbody tr')]; \
             return r.length > 0 && r.every(t => t.textContent.includes('{target}')) \
             && r.length; }})()"
        ),
        20,
    );
    eprintln!("flows view: {flows} rows for {target}");
    b.shot("03-flows");
    let errors = b.errors_since(t_load);
    assert!(errors.is_empty(), "console errors while live: {errors:?}");

    // 5. The server restarts (same data dir, same port): the page notices
    //    and reconnects by itself.
    agg.stop();
    srv.stop();
    b.wait_js(
        "the page to notice",
        "document.querySelector('#conn').dataset.state !== 'live'",
        20,
    );
    b.shot("04-server-down");
    let srv = server(&data_dir, port, &[]);
    let t0 = Instant::now();
    b.wait_state("live", 60);
    eprintln!("reconnected {:?} after the restart", t0.elapsed());
    b.wait_js(
        "alerts after the reconnect",
        &format!("!!document.querySelector(\"{row}\")"),
        10,
    );
    b.shot("05-reconnected");

    // 6. The WebSocket keeps failing: after 5 attempts the page polls the
    //    API (alerts, stats, sensors), then goes back to live once the
    //    WebSocket works again.
    b.call("wsFail", json!({ "on": true }));
    b.goto(&format!("{url}/"), true);
    let t0 = Instant::now();
    b.wait_state("polling", 40);
    eprintln!("polling after {:?}", t0.elapsed());
    b.wait_js(
        "alerts by polling",
        &format!("!!document.querySelector(\"{row}\")"),
        10,
    );
    let before = b
        .eval("+document.querySelector('#last-updated').dataset.ms")
        .as_u64()
        .unwrap();
    b.wait_js(
        "a second poll",
        &format!("+document.querySelector('#last-updated').dataset.ms > {before}"),
        10,
    );
    b.shot("06-polling");
    b.call("wsFail", json!({ "on": false }));
    b.wait_state("live", 30);
    assert_eq!(b.conn_state(), "live");
    drop(b);
    srv.stop();
}

#[test]
fn read_token_is_required_and_taken_from_the_address() {
    if !browser_available() || !support::pg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = "dashboard-test-token-0123456789";
    let srv = server(
        &dir.path().join("pgdata"),
        support::free_port(),
        &["--read-token", token],
    );
    let url = srv.url();
    // The API refuses without the token (401) and with a wrong one (403).
    let status = |path: &str| {
        let resp = raw_get(srv.addr(), path);
        resp.split_whitespace().nth(1).unwrap_or("").to_owned()
    };
    assert_eq!(status("/api/alerts"), "401");
    assert_eq!(status("/api/alerts?token=wrong"), "403");
    assert_eq!(status(&format!("/api/alerts?token={token}")), "200");
    assert_eq!(status("/"), "200", "the page itself is public");

    let mut b = Browser::start();
    b.goto(&format!("{url}/"), false);
    b.wait_js(
        "the token banner",
        "!document.querySelector('#auth-banner').hidden",
        10,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(b.conn_state(), "live", "no live connection without token");
    b.shot("07-token-missing");

    let t0 = now_ms();
    b.goto(&format!("{url}/#token={token}"), true);
    b.wait_state("live", 20);
    let hidden = b.eval(
        "[document.querySelector('#auth-banner').hidden, location.hash, \
         sessionStorage.getItem('netanalyzer.token')]",
    );
    assert_eq!(
        hidden,
        json!([true, "", token]),
        "token kept, hidden from the address"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let errors = b.errors_since(t0);
    assert!(
        errors.is_empty(),
        "console errors with the token: {errors:?}"
    );
    b.shot("08-token-ok");
    drop(b);
    srv.stop();
}

/// A GET's status line and headers (the body is not read).
fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split("\r\n\r\n").next().unwrap_or("").to_owned()
}
