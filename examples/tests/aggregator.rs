//! End to end through the real binaries with the aggregator:
//! `netanalyzer-sniffer -r` (generated normal traffic + SYN flood + port
//! scan) → `netanalyzer-server` (its embedded PostgreSQL in a temp data
//! dir) → `netanalyzer-aggregator` (adopting that cluster).
//!
//! What every test checks in the end: the packets of the final `flows`
//! rows add up to the `raw_packets` rows (less the packets in no flow,
//! which the aggregator counts), with no `(sensor, flow_id, segment)`
//! twice, and the aggregator's position accounts for every row.
//!
//! `AGGREGATOR_TEST_MODEL=FILE` runs the aggregator with that model instead
//! of the built-in one; `NETANALYZER_STRICT_ALERTS=1` makes the expected
//! alerts (SYN flood as DoS/DDoS, the scan as PortScan) mandatory.

mod support;

use netanalyzer_capture::gen::{self, GenConfig, Scenario};
use postgres::fallible_iterator::FallibleIterator;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{sniffer, wait_for, ServerProc};

const AGGREGATOR: &str = env!("CARGO_BIN_EXE_netanalyzer-aggregator");

/// A generated capture: normal traffic, a SYN flood and a port scan
/// against the victim; returns the pcap and the labels file.
fn generated_pcap(dir: &Path, packets: u64) -> (PathBuf, PathBuf) {
    let pcap = dir.join("gen.pcap");
    let labels = dir.join("gen.labels.csv");
    let cfg = GenConfig {
        packets,
        pps: 5_000.0,
        scenarios: vec![Scenario::Normal, Scenario::SynFlood, Scenario::PortScan],
        ..GenConfig::default()
    };
    gen::generate_files(&cfg, &pcap, &labels).expect("generate a capture");
    (pcap, labels)
}

/// The server on its own embedded cluster in `dir/pgdata`.
struct Stack {
    server: ServerProc,
    data_dir: PathBuf,
}

impl Stack {
    fn start(dir: &Path) -> Stack {
        let data_dir = dir.join("pgdata");
        let server = ServerProc::start(&["--data-dir", data_dir.to_str().unwrap()]);
        Stack { server, data_dir }
    }

    /// The embedded cluster's connection string (its socket is in
    /// `<data dir>/run` for a short path like a temp dir).
    fn conninfo(&self) -> String {
        let run = self.data_dir.join("run");
        assert!(run.as_os_str().len() < 90, "temp dir path too long");
        format!(
            "host={} port=5432 user=postgres dbname=netanalyzer",
            run.display()
        )
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conninfo(), postgres::NoTls).unwrap()
    }

    /// Sends `pcap` through the sniffer to the server, as `sensor`.
    fn ingest(&self, pcap: &Path, sensor: &str, dir: &Path) {
        let out = sniffer()
            .arg("-r")
            .arg(pcap)
            .args(["--server", &self.server.url(), "--sensor-id", sensor])
            .args(["--batch-size", "1000"])
            .arg("--spool-dir")
            .arg(dir.join(format!("spool-{sensor}")))
            .output()
            .unwrap();
        support::show(&out);
        assert!(out.status.success(), "sniffer failed");
    }

    /// A stack in `dir` holding `packets` generated packets from sensor
    /// `edge-1`; a client and the `raw_packets` row count.
    fn ingested(dir: &Path, packets: u64) -> (Stack, postgres::Client, u64) {
        let (pcap, _) = generated_pcap(dir, packets);
        let stack = Stack::start(dir);
        stack.ingest(&pcap, "edge-1", dir);
        let mut client = stack.client();
        let raw = raw_rows(&mut client);
        (stack, client, raw)
    }

    /// The aggregator on this cluster, with `extra` flags.
    fn aggregator(&self, extra: &[&str]) -> AggProc {
        AggProc::start(&self.data_dir, extra)
    }
}

/// `--model FILE` when `AGGREGATOR_TEST_MODEL=FILE` is set (to try a
/// model other than the built-in default), else nothing.
fn test_model() -> Vec<String> {
    std::env::var("AGGREGATOR_TEST_MODEL")
        .map(|m| vec!["--model".to_owned(), m])
        .unwrap_or_default()
}

/// A running `netanalyzer-aggregator`; its standard error is echoed with
/// an `[aggregator]` prefix and kept.
struct AggProc {
    child: Option<Child>,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl AggProc {
    fn start(data_dir: &Path, extra: &[&str]) -> AggProc {
        let mut cmd = support::command(AGGREGATOR);
        cmd.env("RUST_LOG", "info")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(extra)
            .args(test_model())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start netanalyzer-aggregator");
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[aggregator] {line}");
                log2.lock().unwrap().push(line);
            }
        });
        let t0 = Instant::now();
        loop {
            let addr = log.lock().unwrap().iter().find_map(|l| {
                let rest = l.split("metrics on http://").nth(1)?;
                rest.split('/').next()?.parse().ok()
            });
            if let Some(addr) = addr {
                return AggProc {
                    child: Some(child),
                    addr,
                    log,
                };
            }
            if let Some(st) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "netanalyzer-aggregator exited at start: {st}\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the aggregator did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sum of every series of a metric on `/metrics` (0 when absent).
    fn metric(&self, name: &str) -> f64 {
        support::metric(self.addr, name)
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let st = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits for the exit; the status.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let c = self.child.as_mut().unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                self.child = None;
                // Let the echo thread read the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return st;
            }
            if t0.elapsed() > timeout {
                let _ = c.kill();
                panic!("the aggregator is still running after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The number before `what` on the exit summary line.
    fn summary(&self, what: &str) -> u64 {
        let log = self.log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.starts_with("netanalyzer-aggregator: ") && l.contains(what))
            .unwrap_or_else(|| panic!("no summary line with {what:?} in:\n{log}"));
        let before = line.split(what).next().unwrap();
        before
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The rows/s of every "caught up" line.
    fn catch_up_rates(&self) -> Vec<(u64, f64)> {
        self.log()
            .lines()
            .filter_map(|l| {
                let rest = l.split("caught up: ").nth(1)?;
                let rows: u64 = rest.split_whitespace().next()?.parse().ok()?;
                let rate: f64 = rest
                    .split('(')
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some((rows, rate))
            })
            .collect()
    }
}

impl Drop for AggProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Rows processed by the consumer's last commit (0 before the first).
fn committed_rows(client: &mut postgres::Client, consumer: &str) -> u64 {
    client
        .query_opt(
            "SELECT rows_processed FROM aggregator_state WHERE consumer = $1",
            &[&consumer],
        )
        .ok()
        .flatten()
        .map_or(0, |r| r.get::<_, i64>(0) as u64)
}

fn raw_rows(client: &mut postgres::Client) -> u64 {
    let n: i64 = client
        .query_one("SELECT count(*) FROM raw_packets", &[])
        .unwrap()
        .get(0);
    n as u64
}

/// Asserts every stored packet is in exactly one final flow: the flows'
/// packets plus the `unkeyed` ones equal the raw rows, no flow segment is
/// written twice, and the consumer's position accounts for every row.
fn assert_every_packet_once(client: &mut postgres::Client, unkeyed: u64) {
    let raw = raw_rows(client);
    let r = client
        .query_one(
            "SELECT count(*), coalesce(sum(fwd_packets + bwd_packets), 0)::bigint FROM flows",
            &[],
        )
        .unwrap();
    let (flows, packets): (i64, i64) = (r.get(0), r.get(1));
    let dups: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM flows GROUP BY sensor_id, flow_id, segment \
             HAVING count(*) > 1) d",
            &[],
        )
        .unwrap()
        .get(0);
    eprintln!("{raw} raw rows, {flows} flows holding {packets} packets, {unkeyed} unkeyed");
    assert!(raw > 0 && flows > 0);
    assert_eq!(dups, 0, "a flow segment written twice");
    assert_eq!(
        packets as u64 + unkeyed,
        raw,
        "every packet in exactly one flow"
    );
    assert_eq!(
        committed_rows(client, "default"),
        raw,
        "position at the end"
    );
}

/// Every flow row, as comparable text, sorted.
fn flow_rows(client: &mut postgres::Client) -> Vec<String> {
    let mut v: Vec<String> = client
        .query(
            "SELECT concat_ws(' ', sensor_id, flow_id, segment, first_ts, last_ts, \
             host(src_ip), src_port, host(dst_ip), dst_port, fwd_packets, bwd_packets, \
             fwd_bytes, bwd_bytes, tcp_flags, end_reason, label, confidence, \
             features::text) FROM flows",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    v.sort_unstable();
    v
}

/// The most common destination of the labels file's flows of `label`.
fn target_of(labels: &Path, label: &str) -> String {
    let text = std::fs::read_to_string(labels).unwrap();
    let mut count: BTreeMap<String, u64> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.last() == Some(&label) {
            *count.entry(f[3].to_owned()).or_default() += 1;
        }
    }
    count
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(ip, _)| ip)
        .unwrap_or_else(|| panic!("no {label} flow in the labels"))
}

#[test]
fn end_to_end_attacks_raise_alerts_notified_and_every_packet_is_in_one_flow() {
    if !support::pg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pcap, labels) = generated_pcap(dir.path(), 40_000);
    let stack = Stack::start(dir.path());

    // The dashboard's side: a LISTEN connection, open before anything.
    let mut listener = stack.client();
    listener
        .batch_execute(&format!(
            "LISTEN {}",
            netanalyzer_store::flowdb::ALERT_CHANNEL
        ))
        .unwrap();

    // The aggregator runs while the sensor sends.
    let mut agg = stack.aggregator(&["--commit-ms", "200"]);
    stack.ingest(&pcap, "edge-1", dir.path());
    let mut client = stack.client();
    let raw = raw_rows(&mut client);
    assert_eq!(raw, 40_000);
    wait_for(
        "the aggregator to catch up",
        Duration::from_secs(120),
        || committed_rows(&mut client, "default") == raw,
    );
    // The lag gauge is refreshed by the next poll that finds nothing new.
    wait_for("the lag gauge to reach 0", Duration::from_secs(10), || {
        agg.metric("netanalyzer_aggregator_lag_rows") == 0.0
    });
    wait_for("all rows counted", Duration::from_secs(10), || {
        agg.metric("netanalyzer_aggregator_rows_read_total") == raw as f64
    });
    // Metrics agree with the table: every committed flow was predicted.
    let flows_now: i64 = client
        .query_one("SELECT count(*) FROM flows", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        agg.metric("netanalyzer_aggregator_flows_written_total"),
        flows_now as f64
    );
    assert_eq!(
        agg.metric("netanalyzer_aggregator_predictions_total"),
        flows_now as f64
    );
    assert_eq!(
        agg.metric("netanalyzer_aggregator_flows_emitted_total"),
        flows_now as f64
    );
    let health = support::http_get(agg.addr, "/health").unwrap();
    assert!(health.contains("ok"), "{health}");

    // SIGTERM: the open flows end ("end"), are committed, exit 0.
    agg.signal("-TERM");
    let st = agg.wait(Duration::from_secs(60));
    assert!(st.success(), "aggregator exited with {st} after SIGTERM");
    assert_eq!(agg.summary("open flows"), 0);
    let unkeyed = agg.summary("unkeyed packets");
    // The server's cluster still runs: the aggregator adopted it and did
    // not stop it.
    assert_every_packet_once(&mut client, unkeyed);
    let ended: i64 = client
        .query_one("SELECT count(*) FROM flows WHERE end_reason = 'end'", &[])
        .unwrap()
        .get(0);
    assert!(ended > 0, "the open flows were drained at the stop");
    let unlabelled: i64 = client
        .query_one(
            "SELECT count(*) FROM flows WHERE label IS NULL OR confidence IS NULL \
             OR model_version = ''",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unlabelled, 0, "every flow classified");

    // Alerts: what the model found, by class and target.
    let rows = client
        .query(
            "SELECT alert_id, class, severity, target, flow_count, packet_count, source_count, \
             revision FROM alerts ORDER BY flow_count DESC",
            &[],
        )
        .unwrap();
    let mut by_class: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    eprintln!("{} alert(s):", rows.len());
    for r in &rows {
        let (id, class, sev, target): (i64, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let (flows, packets, sources, rev): (i64, i64, i64, i64) =
            (r.get(4), r.get(5), r.get(6), r.get(7));
        eprintln!(
            "  {class:<10} {sev:<8} target {target:<15} flows {flows:>6} packets {packets:>6} \
             sources {sources:>6} revision {rev}"
        );
        *by_class.entry((class, target)).or_default() += flows;
        ids.insert(id);
    }

    // Every alert row was announced on the LISTEN connection, as JSON.
    let mut notified = BTreeSet::new();
    let mut notes = 0;
    for n in listener
        .notifications()
        .timeout_iter(Duration::from_secs(2))
        .iterator()
    {
        let n = n.unwrap();
        assert_eq!(n.channel(), netanalyzer_store::flowdb::ALERT_CHANNEL);
        let v: serde_json::Value = serde_json::from_str(n.payload())
            .unwrap_or_else(|e| panic!("payload is not JSON ({e}): {}", n.payload()));
        // alert_id is the alerts.alert_id bigint as a string (exact in JS).
        let id: i64 = v["alert_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("alert_id in the payload");
        notified.insert(id);
        notes += 1;
    }
    eprintln!("{notes} notifications for {} alert(s)", notified.len());
    assert_eq!(notified, ids, "every alert (and only those) notified");

    // The expected alerts: the SYN flood as DoS/DDoS and the scan as
    // PortScan, both against the victim.
    let victim = target_of(&labels, "syn-flood");
    let scanned = target_of(&labels, "port-scan");
    let has = |classes: &[&str], target: &str| {
        by_class
            .iter()
            .any(|((c, t), _)| classes.contains(&c.as_str()) && t == target)
    };
    let flood = has(&["DoS", "DDoS"], &victim);
    let scan = has(&["PortScan"], &scanned);
    eprintln!("SYN flood on {victim} alerted: {flood}; port scan of {scanned} alerted: {scan}");
    assert!(
        flood,
        "no DoS/DDoS alert on the SYN flood's victim {victim}"
    );
    assert!(scan, "no PortScan alert on the scanned host {scanned}");
    stack.server.stop();
}

#[test]
fn sigkill_mid_run_then_restart_gives_the_flows_of_an_uninterrupted_run() {
    if !support::pg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (stack, mut client, raw) = Stack::ingested(dir.path(), 100_000);
    assert_eq!(raw, 100_000);

    // Small polls and a commit after each: the kill lands between commits
    // with open flows in the saved state.
    let small = ["--max-rows-per-poll", "1000", "--commit-ms", "1"];
    let mut agg = stack.aggregator(&small);
    wait_for(
        "a third of the rows committed",
        Duration::from_secs(120),
        || committed_rows(&mut client, "default") >= raw / 3,
    );
    agg.signal("-KILL");
    agg.wait(Duration::from_secs(10));
    let at_kill = committed_rows(&mut client, "default");
    eprintln!("killed with {at_kill} of {raw} rows committed");
    assert!(
        at_kill < raw,
        "the kill came after the end: nothing to prove"
    );

    let mut agg = stack.aggregator(&[&small[..], &["--exit-when-idle"]].concat());
    let st = agg.wait(Duration::from_secs(120));
    assert!(st.success(), "the restarted aggregator failed: {st}");
    assert!(
        agg.log().contains("resuming from the checkpoint"),
        "it resumed"
    );
    let unkeyed = agg.summary("unkeyed packets");
    assert_every_packet_once(&mut client, unkeyed);
    let resumed = flow_rows(&mut client);

    // The same rows read in one uninterrupted run with the default poll
    // size and commit interval: the very same flows.
    client
        .batch_execute("DELETE FROM flows; DELETE FROM alerts; DELETE FROM aggregator_state;")
        .unwrap();
    let mut agg = stack.aggregator(&["--exit-when-idle"]);
    let st = agg.wait(Duration::from_secs(120));
    assert!(st.success(), "the uninterrupted run failed: {st}");
    for (rows, rate) in agg.catch_up_rates() {
        eprintln!("catch-up rate: {rows} rows at {rate:.0} rows/s");
    }
    assert_every_packet_once(&mut client, agg.summary("unkeyed packets"));
    let clean = flow_rows(&mut client);
    assert_eq!(resumed.len(), clean.len(), "same number of flows");
    if let Some(i) = (0..clean.len()).find(|&i| resumed[i] != clean[i]) {
        panic!(
            "flows differ (first of the sorted lists):\n  resumed: {}\n    clean: {}",
            resumed[i], clean[i]
        );
    }
    stack.server.stop();
}

#[test]
fn sigterm_while_behind_drains_commits_exits_0_and_the_next_start_resumes() {
    if !support::pg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (stack, mut client, raw) = Stack::ingested(dir.path(), 60_000);

    let small = ["--max-rows-per-poll", "1000", "--commit-ms", "1"];
    let mut agg = stack.aggregator(&small);
    wait_for("some rows committed", Duration::from_secs(120), || {
        committed_rows(&mut client, "default") >= raw / 4
    });
    agg.signal("-TERM");
    let st = agg.wait(Duration::from_secs(60));
    assert!(st.success(), "exit after SIGTERM: {st}");
    let done = committed_rows(&mut client, "default");
    eprintln!("stopped with {done} of {raw} rows consumed");
    assert!(done < raw, "the stop came after the end: nothing to prove");
    assert_eq!(agg.summary("open flows"), 0, "every open flow drained");
    // What was consumed is entirely in flows, nothing left open.
    let packets: i64 = client
        .query_one(
            "SELECT coalesce(sum(fwd_packets + bwd_packets), 0)::bigint FROM flows",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(packets as u64 + agg.summary("unkeyed packets"), done);

    let mut agg = stack.aggregator(&["--exit-when-idle"]);
    assert!(agg.wait(Duration::from_secs(120)).success());
    assert_every_packet_once(&mut client, agg.summary("unkeyed packets"));
    stack.server.stop();
}
