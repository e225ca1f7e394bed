//! `netanalyzer-demo` end to end: the real demo binary starts the real
//! server (embedded PostgreSQL in a temp dir), aggregator and sniffer,
//! replays a short generated scenario at capture speed and reports with
//! `--json`.
//!
//! - A clean run: exit 0, every generated packet logged, 0 drops, every
//!   logged packet in a flow, the expected alert classes (DDoS, PortScan,
//!   DoS) raised.
//! - A lossy run: the sniffer is told to stop after 1,000 packets
//!   (`--sniffer-arg=-c`), so packets generated are never logged: the
//!   report says so and the exit status is 3.
//!
//! Needs the PostgreSQL server binaries (`initdb`); without them the tests
//! print why and pass, except under `CI=true`, where they fail.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const DEMO: &str = env!("CARGO_BIN_EXE_netanalyzer-demo");

fn postgres_installed() -> bool {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("initdb").is_file()));
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().any(|e| e.path().join("bin/initdb").is_file()))
        .unwrap_or(false);
    if on_path || debian {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and the PostgreSQL server binaries (initdb) are not installed"
    );
    eprintln!("skipping the demo test: the PostgreSQL server binaries (initdb) are not installed");
    false
}

/// Runs the demo in a fresh temp dir; returns (exit code, report).
fn demo(dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    // As root the cluster runs as `postgres`, which must enter the dir.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let port = support::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = support::command(DEMO);
    cmd.args([
        "--dir",
        dir.to_str().unwrap(),
        "--listen",
        &listen,
        "--json",
    ])
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- demo stderr ---\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        for log in ["server.log", "aggregator.log", "sniffer.log"] {
            let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
            eprintln!("--- {log} ---\n{text}");
        }
        panic!("no JSON report ({e}) on stdout: {stdout:?}")
    });
    (out.status.code(), report)
}

fn run(mut cmd: Command) -> std::process::Output {
    cmd.output().expect("run netanalyzer-demo")
}

#[test]
fn the_demo_logs_every_packet_and_raises_the_expected_alerts() {
    if !postgres_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = demo(dir.path(), &["--duration", "20", "--scale", "0.1"]);
    assert_eq!(r["ok"], Value::Bool(true), "problems: {}", r["problems"]);
    assert_eq!(code, Some(0));
    let generated = r["generated_packets"].as_u64().unwrap();
    assert!(generated > 10_000, "{generated}");
    assert_eq!(r["logged_packets"].as_u64(), Some(generated));
    assert_eq!(r["sniffer_packets"].as_u64(), Some(generated));
    assert_eq!(r["drops"]["total"].as_u64(), Some(0));
    assert_eq!(r["packets_in_flows"].as_u64(), Some(generated));
    for class in ["DDoS", "PortScan", "DoS"] {
        assert!(
            r["alerts_by_class"][class].as_u64().unwrap_or(0) >= 1,
            "no {class} alert: {}",
            r["alerts_by_class"]
        );
    }
    assert_eq!(r["missing_classes"], Value::Array(Vec::new()));
    // The flood's rate shows as the peak (3,000/s at scale 0.1).
    let peak = r["peak_pps_1s"].as_u64().unwrap();
    assert!((2_500..=4_500).contains(&peak), "peak {peak} packets/s");
    let phases = r["phases"].as_array().unwrap();
    let sum: u64 = phases.iter().map(|p| p["packets"].as_u64().unwrap()).sum();
    assert_eq!(sum, generated);
}

#[test]
fn a_lossy_run_exits_3() {
    if !postgres_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = demo(
        dir.path(),
        &[
            "--duration",
            "6",
            "--scale",
            "0.05",
            "--expect",
            "NoSuchClass",
            "--sniffer-arg=-c",
            "--sniffer-arg=1000",
        ],
    );
    assert_eq!(code, Some(3), "report: {r}");
    assert_eq!(r["ok"], Value::Bool(false));
    assert_eq!(r["logged_packets"].as_u64(), Some(1000));
    assert!(r["generated_packets"].as_u64().unwrap() > 1000);
    let problems = r["problems"].to_string();
    assert!(problems.contains("generated"), "{problems}");
    assert_eq!(
        r["missing_classes"],
        serde_json::json!(["NoSuchClass"]),
        "{problems}"
    );
}
