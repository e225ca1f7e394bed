//! Drives the real `netanalyzer-sniffer` binary: flags, env vars, outputs,
//! exit codes and the summary.

mod support;

use netanalyzer_capture::PcapWriter;
use netanalyzer_store::CSV_COLUMNS;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{run, sniffer, stderr};

const T0: u64 = 1_700_000_000_000_000_000;

/// One Ethernet/IPv4/TCP SYN frame from 10.0.0.1:(40000+i) to 10.0.0.2:80.
fn tcp_syn(i: u16) -> Vec<u8> {
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&(40_000 + i).to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&(1000 * u32::from(i)).to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    support::eth_ipv4(i, 6, &tcp)
}

/// Writes `n` SYN packets, 500 ms apart, as a nanosecond pcap.
fn write_pcap(path: &Path, n: u16) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(file).unwrap();
    for i in 0..n {
        let frame = tcp_syn(i);
        let ts = T0 + u64::from(i) * 500_000_000;
        w.write_frame(ts, frame.len() as u32, &frame).unwrap();
    }
    w.into_inner().unwrap();
}

struct Fixture {
    dir: tempfile::TempDir,
    pcap: PathBuf,
}

fn fixture(n: u16) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("small.pcap");
    write_pcap(&pcap, n);
    Fixture { dir, pcap }
}

fn jsonl_lines(text: &str) -> Vec<serde_json::Map<String, Value>> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn jsonl_file_has_one_object_per_packet_with_every_key() {
    let fx = fixture(20);
    let out_path = fx.dir.path().join("out.jsonl");
    let out = run(sniffer()
        .arg("-r")
        .arg(&fx.pcap)
        .arg("--output")
        .arg(format!("jsonl:{}", out_path.display())));
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout for a file output");
    let recs = jsonl_lines(&std::fs::read_to_string(&out_path).unwrap());
    assert_eq!(recs.len(), 20);
    for (i, r) in recs.iter().enumerate() {
        let mut keys: Vec<&str> = r.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = CSV_COLUMNS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(r["ts_ns"], T0 + i as u64 * 500_000_000);
        assert_eq!(r["src_ip"], "10.0.0.1");
        assert_eq!(r["dst_port"], 80);
        assert_eq!(r["tcp_flags"], 2);
        assert_eq!(r["protocol"], "TCP");
        assert!(r["dns_qname"].is_null());
        assert!(r["vlan_id"].is_null());
    }
    let err = stderr(&out);
    assert!(err.contains("packets:      20\n"), "{err}");
    assert!(err.contains("bytes:        1080 "), "{err}");
}

#[test]
fn jsonl_dash_writes_to_stdout_by_default() {
    let fx = fixture(3);
    // No --output: jsonl:- is the default.
    let out = run(sniffer().arg("--read").arg(&fx.pcap));
    assert!(out.status.success());
    let recs = jsonl_lines(&String::from_utf8(out.stdout.clone()).unwrap());
    assert_eq!(recs.len(), 3);
}

#[test]
fn count_stops_after_n_packets() {
    let fx = fixture(20);
    let out = run(sniffer()
        .args(["-c", "5", "--output", "jsonl:-", "-r"])
        .arg(&fx.pcap));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .count(),
        5
    );
    let err = stderr(&out);
    assert!(err.contains("packets:      5\n"), "{err}");
    assert!(err.contains("stopped:      packet count reached"), "{err}");
}

#[test]
fn env_vars_set_flags() {
    let fx = fixture(20);
    let out = run(sniffer()
        .env("NETANALYZER_READ", &fx.pcap)
        .env("NETANALYZER_COUNT", "3")
        .env("NETANALYZER_OUTPUT", "jsonl:-,null"));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .count(),
        3
    );
    let err = stderr(&out);
    assert!(err.contains("output null: 3 records"), "{err}");

    // A flag on the command line wins over the variable.
    let out = run(sniffer()
        .env("NETANALYZER_COUNT", "3")
        .args(["-c", "7", "-r"])
        .arg(&fx.pcap));
    assert_eq!(
        String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .count(),
        7
    );
}

#[test]
fn csv_output_rotates_by_packet_time() {
    // 20 packets over 9.5 s of packet time, 4 s per file: 3 files.
    let fx = fixture(20);
    let dir = fx.dir.path().join("csv");
    let out = run(sniffer()
        .arg("-r")
        .arg(&fx.pcap)
        .arg("--output")
        .arg(format!("csv:{}", dir.display()))
        .args(["--rotate-secs", "4"]));
    assert!(out.status.success());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            format!("packets-{T0}.csv"),
            format!("packets-{}.csv", T0 + 4_000_000_000),
            format!("packets-{}.csv", T0 + 8_000_000_000),
        ]
    );
    let header = CSV_COLUMNS.join(",");
    let mut rows = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(text.lines().next(), Some(header.as_str()));
        rows += text.lines().count() - 1;
    }
    assert_eq!(rows, 20);
    assert!(stderr(&out).contains(", 3 files"), "{}", stderr(&out));
}

#[test]
fn several_outputs_at_once() {
    let fx = fixture(10);
    let jsonl = fx.dir.path().join("a.jsonl");
    let csv = fx.dir.path().join("csv");
    let out = run(sniffer()
        .arg("-r")
        .arg(&fx.pcap)
        .arg("--output")
        .arg(format!("jsonl:{}", jsonl.display()))
        .arg("-o")
        .arg(format!("csv:{}", csv.display()))
        .args(["-o", "null"]));
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 10);
    assert_eq!(std::fs::read_dir(&csv).unwrap().count(), 1);
    assert!(stderr(&out).contains("output null: 10 records"));
}

#[test]
fn null_output_prints_the_summary() {
    let fx = fixture(8);
    let out = run(sniffer().arg("-r").arg(&fx.pcap).args(["--output", "null"]));
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    for line in [
        "packets:      8\n",
        "bytes:        432 (on the wire)\n",
        "parse errors: none\n",
        "kernel drops: n/a (file)\n",
        "seconds:",
        "packets/s:",
        "stopped:      end of input\n",
        "output null: 8 records\n",
    ] {
        assert!(err.contains(line), "missing {line:?} in\n{err}");
    }
}

#[test]
fn missing_file_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pcap");
    let out = run(sniffer().arg("-r").arg(&missing).args(["-o", "null"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error: cannot read capture file"), "{err}");
    assert!(err.contains("nope.pcap"), "{err}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn corrupt_file_keeps_earlier_records_and_fails() {
    let fx = fixture(5);
    let mut bytes = std::fs::read(&fx.pcap).unwrap();
    let good_len = bytes.len();
    // A sixth record header claiming 1 GiB of data.
    bytes.extend_from_slice(&1_700_000_010u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(&fx.pcap, &bytes).unwrap();

    let out = run(sniffer().arg("-r").arg(&fx.pcap).args(["-o", "jsonl:-"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .count(),
        5
    );
    let err = stderr(&out);
    assert!(err.contains("packets:      5\n"), "{err}");
    assert!(err.contains("error: reading "), "{err}");
    assert!(err.contains(&format!("offset {good_len}")), "{err}");
}

#[test]
fn filter_on_a_file_keeps_matches_and_counts_the_rest() {
    let fx = fixture(10);
    let out = run(sniffer().arg("-r").arg(&fx.pcap).args([
        "-f",
        "src port 40003 or src port 40007",
        "-o",
        "jsonl:-",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = jsonl_lines(&String::from_utf8(out.stdout.clone()).unwrap());
    let ports: Vec<_> = lines.iter().map(|l| l["src_port"].clone()).collect();
    assert_eq!(ports, [Value::from(40003), Value::from(40007)]);
    let err = stderr(&out);
    assert!(err.contains("packets:      2\n"), "{err}");
    assert!(err.contains("filtered out: 8 "), "{err}");

    // A filter that does not compile is a clear error, not a usage error.
    let out = run(sniffer()
        .arg("-r")
        .arg(&fx.pcap)
        .args(["-f", "tcp and and"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad bpf filter \"tcp and and\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    let fx = fixture(1);
    // No input at all.
    let out = run(sniffer().args(["-o", "null"]));
    assert_eq!(out.status.code(), Some(2));
    // A snap length needs a live interface.
    let out = run(sniffer().arg("-r").arg(&fx.pcap).args(["-s", "96"]));
    assert_eq!(out.status.code(), Some(2));
    // An unknown output kind.
    let out = run(sniffer().arg("-r").arg(&fx.pcap).args(["-o", "parquet:x"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected jsonl:PATH, jsonl:-, csv:DIR or null"));
    // Zero-second rotation.
    let out = run(sniffer()
        .arg("-r")
        .arg(&fx.pcap)
        .args(["--rotate-secs", "0"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_env_vars_and_exit_codes() {
    let out = run(sniffer().arg("--help"));
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout.clone()).unwrap();
    for s in [
        "--read",
        "--interface",
        "--filter",
        "--snaplen",
        "--count",
        "--output",
        "--rotate-secs",
        "NETANALYZER_COUNT",
        "Exit status",
        "2  usage error",
    ] {
        assert!(help.contains(s), "{s} missing from --help");
    }
}

/// The shared real captures, or `None` (skip) when the folder is missing
/// outside CI.
fn shared_pcaps() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{} is missing, and CI=true", dir.display());
    }
    eprintln!("skipping: {} not found", dir.display());
    None
}

#[test]
fn smoke_on_a_real_capture() {
    let Some(dir) = shared_pcaps() else { return };
    let out = run(sniffer()
        .arg("-r")
        .arg(dir.join("tcp-handshake.pcapng"))
        .args(["-o", "jsonl:-"]));
    assert!(out.status.success());
    let recs = jsonl_lines(&String::from_utf8(out.stdout.clone()).unwrap());
    // The oracle has one row per packet (plus a header line).
    let oracle =
        std::fs::read_to_string(dir.join("oracle/tcp-handshake.pcapng.fields.tsv")).unwrap();
    assert_eq!(recs.len(), oracle.lines().count() - 1);
    assert!(recs.iter().all(|r| r.len() == CSV_COLUMNS.len()));
    assert!(recs.iter().any(|r| r["protocol"] == "TCP"));
}

#[test]
fn every_real_capture_runs_to_a_clean_end_or_a_clear_error() {
    let Some(dir) = shared_pcaps() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = manifest.lines();
    let cols: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name).unwrap();
    let (c_file, c_packets, c_err) = (col("file"), col("packets"), col("read_error"));
    let mut checked = 0;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let out = Command::new(support::SNIFFER)
            .env("RUST_LOG", "warn")
            .arg("-r")
            .arg(dir.join(f[c_file]))
            .args(["-o", "null"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(err.contains("packets:"), "{}: no summary\n{err}", f[c_file]);
        if f[c_err].is_empty() {
            assert_eq!(out.status.code(), Some(0), "{}\n{err}", f[c_file]);
            let want = format!("packets:      {}\n", f[c_packets]);
            assert!(err.contains(&want), "{}: want {want:?}\n{err}", f[c_file]);
        } else {
            // Broken files: a clean summary, then an error naming the offset.
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{}\n{err}",
                f[c_file]
            );
            if out.status.code() == Some(1) {
                assert!(err.contains("offset"), "{}\n{err}", f[c_file]);
            }
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} captures in the manifest");
}

/// Ctrl-C (SIGINT) stops reading, flushes the outputs and exits 0 with the
/// summary. The capture comes through a FIFO so the sniffer is still
/// running when the signal arrives.
#[cfg(unix)]
#[test]
fn ctrl_c_flushes_and_exits_cleanly() {
    use std::io::Write;
    use std::time::Duration;

    let fx = fixture(5);
    let bytes = std::fs::read(&fx.pcap).unwrap();
    let (head, rest) = bytes.split_at(24 + 3 * (16 + 54));
    let fifo = fx.dir.path().join("live.pcap");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mkfifo is not available");
        return;
    }
    let jsonl = fx.dir.path().join("out.jsonl");
    let child = sniffer()
        .arg("-r")
        .arg(&fifo)
        .arg("-o")
        .arg(format!("jsonl:{}", jsonl.display()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the write end waits for the sniffer to open the read end,
    // which it does after installing its Ctrl-C handler.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(100));
    // More packets arrive after the signal; the sniffer stops at the next.
    w.write_all(rest).unwrap();
    drop(w);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped:      stopped\n"), "{err}");
    let written = std::fs::read_to_string(&jsonl).unwrap().lines().count();
    assert!((1..5).contains(&written), "{written} records");
    assert!(
        err.contains(&format!(
            "output jsonl:{}: {written} records",
            jsonl.display()
        )),
        "{err}"
    );
}

/// `sniffer | head` closes standard output early: a quiet stop, status 0.
#[test]
fn closed_stdout_is_a_quiet_stop() {
    use std::io::Read;
    let fx = fixture(2000); // about 1 MB of JSON, more than the pipe holds
    let mut child = sniffer()
        .arg("-r")
        .arg(&fx.pcap)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"{\"ts_ns\":"));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("packets:"), "{err}");
    assert!(!err.contains("sniffer: error"), "{err}");
}
