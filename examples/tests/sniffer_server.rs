//! Drives the real `netanalyzer-sniffer` with `--server` against the
//! scripted ingest server of `netanalyzer_store::transport::testing` (a real
//! HTTP/1.1 server on loopback): acknowledgement, CSV backup beside the
//! server, drain timeout and resume from the spool, a refused token, flag
//! parsing. The end-to-end tests with the real server and PostgreSQL live
//! elsewhere.

mod support;

use netanalyzer_capture::PcapWriter;
use netanalyzer_store::transport::testing::{Reply, ScriptedServer};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::{run, sniffer, stderr};

const T0: u64 = 1_700_000_000_000_000_000;

/// One Ethernet/IPv4/UDP frame from 10.0.0.1:(1000+i) to 10.0.0.2:53.
fn udp_frame(i: u16) -> Vec<u8> {
    let mut udp = Vec::with_capacity(8);
    udp.extend_from_slice(&(1000u16.wrapping_add(i)).to_be_bytes());
    udp.extend_from_slice(&53u16.to_be_bytes());
    udp.extend_from_slice(&8u16.to_be_bytes());
    udp.extend_from_slice(&0u16.to_be_bytes());
    support::eth_ipv4(i, 17, &udp)
}

/// Writes `n` packets 1 ms apart; packet i has ts_ns T0 + i ms.
fn write_pcap(path: &Path, n: u16) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(file).unwrap();
    for i in 0..n {
        let frame = udp_frame(i);
        w.write_frame(T0 + u64::from(i) * 1_000_000, frame.len() as u32, &frame)
            .unwrap();
    }
    w.into_inner().unwrap();
}

/// The packet indexes the server stored, asserting each arrived once.
fn stored(server: &ScriptedServer) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    for b in &server.log().stored {
        for &t in &b.ts {
            assert!(ids.insert((t - T0) / 1_000_000), "record {t} stored twice");
        }
    }
    ids
}

struct Setup {
    _dir: tempfile::TempDir,
    pcap: PathBuf,
    spool: PathBuf,
    root: PathBuf,
}

fn setup(n: u16) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("in.pcap");
    write_pcap(&pcap, n);
    Setup {
        spool: dir.path().join("spool"),
        root: dir.path().to_path_buf(),
        pcap,
        _dir: dir,
    }
}

#[test]
fn server_only_exits_0_once_everything_is_acknowledged() {
    let server = ScriptedServer::start();
    let s = setup(1050);
    let out = run(sniffer()
        .arg("-r")
        .arg(&s.pcap)
        .args(["--server", &server.url(), "--sensor-id", "probe-1"])
        .args(["--batch-size", "100", "--token", "t0k"])
        .arg("--spool-dir")
        .arg(&s.spool));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "no jsonl:- default with --server");
    assert_eq!(stored(&server), (0..1050).collect());
    let log = server.log();
    assert_eq!(log.stored.len(), 11);
    assert!(log.stored.iter().all(|b| b.sensor_id == "probe-1"));
    assert!(log
        .requests
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer t0k")));
    // The source's counters ride along; the last batch, sealed at the
    // end, sees them all (with two senders it may not be stored last).
    let last = log
        .stored
        .iter()
        .max_by_key(|b| b.seq)
        .and_then(|b| b.stats.clone())
        .unwrap();
    assert_eq!((last.packets, last.parse_errors), (1050, 0));
    let err = stderr(&out);
    assert!(
        err.contains("1050 records acknowledged in 11 batches"),
        "{err}"
    );
    assert!(err.contains("dropped:    0 records"), "{err}");
}

#[test]
fn server_and_csv_backup_together_via_env() {
    let server = ScriptedServer::start();
    let s = setup(300);
    let csv = s.root.join("csv");
    let out = run(sniffer()
        .env("NETANALYZER_READ", &s.pcap)
        .env("NETANALYZER_SERVER", server.url())
        .env("NETANALYZER_OUTPUT", format!("csv:{}", csv.display()))
        .env("NETANALYZER_SPOOL_DIR", &s.spool)
        .env("NETANALYZER_SPOOL_MAX_BYTES", "64M")
        .env("NETANALYZER_COMPRESS", "none")
        .env("NETANALYZER_BATCH_MS", "50"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stored(&server), (0..300).collect());
    assert!(server
        .log()
        .requests
        .iter()
        .all(|r| r.content_encoding.is_none()));
    let rows: usize = std::fs::read_dir(&csv)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
                - 1
        })
        .sum();
    assert_eq!(rows, 300);
}

#[test]
fn drain_timeout_exits_3_and_the_next_run_sends_the_spool() {
    let mut server = ScriptedServer::start();
    server.down();
    let s = setup(500);
    let out = run(sniffer()
        .arg("-r")
        .arg(&s.pcap)
        .args(["--server", &server.url(), "--sensor-id", "probe-2"])
        .args(["--batch-size", "100", "--drain-timeout", "1"])
        .arg("--spool-dir")
        .arg(&s.spool));
    assert_eq!(out.status.code(), Some(3));
    let want = format!(
        "500 records in 5 batches remain in the spool at {}",
        s.spool.display()
    );
    assert!(stderr(&out).contains(&want), "want {want:?}");

    // The server is back: a run that reads nothing sends the spool.
    server.up();
    let out = run(sniffer()
        .arg("-r")
        .arg(&s.pcap)
        .args([
            "-c",
            "0",
            "--server",
            &server.url(),
            "--sensor-id",
            "probe-2",
        ])
        .arg("--spool-dir")
        .arg(&s.spool));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stored(&server), (0..500).collect());
    assert!(stderr(&out).contains("500 records acknowledged"));
}

#[test]
fn default_spool_dir_is_under_xdg_data_home() {
    let mut server = ScriptedServer::start();
    server.down();
    let s = setup(10);
    let out = run(sniffer()
        .arg("-r")
        .arg(&s.pcap)
        .env("XDG_DATA_HOME", &s.root)
        .args(["--server", &server.url(), "--sensor-id", "probe-3"])
        .args(["--drain-timeout", "0"]));
    assert_eq!(out.status.code(), Some(3));
    let dir = s.root.join("netanalyzer/spool/probe-3");
    assert!(stderr(&out).contains(&dir.display().to_string()));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn refused_token_exits_4() {
    let server = ScriptedServer::start();
    server.set_default(Reply::Status(403));
    let s = setup(10);
    let out = run(sniffer()
        .arg("-r")
        .arg(&s.pcap)
        .args(["--server", &server.url(), "--token", "wrong"])
        .arg("--spool-dir")
        .arg(&s.spool));
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("403"));
}

#[test]
fn default_sensor_id_is_the_host_name() {
    let server = ScriptedServer::start();
    let s = setup(5);
    let out = run(sniffer()
        .arg("-r")
        .arg(&s.pcap)
        .args(["--server", &server.url()])
        .arg("--spool-dir")
        .arg(&s.spool));
    assert_eq!(out.status.code(), Some(0));
    let id = server.log().stored[0].sensor_id.clone();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    if !host.trim().is_empty() && host.trim().len() <= 64 {
        assert_eq!(id, host.trim());
    }
    assert!(!id.is_empty());
}

#[test]
fn bad_server_flags_are_usage_errors() {
    let s = setup(1);
    for bad in [
        &["--spool-max-bytes", "12Q"][..],
        &["--spool-max-bytes", "0"],
        &["--sensor-id", "has space"],
        &["--spool-full", "maybe"],
        &["--compress", "lz4"],
        &["--batch-size", "0"],
    ] {
        let out = run(sniffer()
            .arg("-r")
            .arg(&s.pcap)
            .args(["--server", "http://127.0.0.1:9"])
            .args(bad));
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let out = run(sniffer()
        .arg("-r")
        .arg(&s.pcap)
        .args(["--server", "ftp://x", "--spool-dir"])
        .arg(&s.spool));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("http://"));
}
