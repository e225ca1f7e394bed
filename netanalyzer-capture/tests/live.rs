//! Live capture through libpcap, for real: a veth pair with one end in a
//! network namespace of its own, `tcpreplay` sending a generated pcap at a
//! fixed rate from inside the namespace, and [`LiveSource`] capturing on
//! the host end. Every packet must be seen, in order, with the fields that
//! were written; the kernel-drop counter is read and printed.
//!
//! Needs root, `ip` and `tcpreplay`. Without them the namespace tests skip
//! with a printed reason; with `CI=true` and root, anything that keeps the
//! namespace from being made is a failure.
//!
//! The replayed frames (crafted UDP, and the generator's mixed traffic) are
//! addressed to MACs that are not the host end's, and neither end has an
//! address, so the host's IP stack discards them unread: the traffic stays
//! inside the pair.
use netanalyzer_capture::gen::{self, GenConfig, Scenario};
use netanalyzer_capture::testing::{netns_or_skip, privileged, replay_result};
use netanalyzer_capture::{CaptureError, FileSource, LiveConfig, LiveSource, PcapWriter};
use netanalyzer_core::{PacketRecord, Protocol, Source, SourceEvent};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Replay rate, packets per second.
const PPS: u32 = 2000;
/// Frames in the replayed file.
const FRAMES: u32 = 3000;
const SRC_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const DST_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const DST_PORT: u16 = 9999;
const FILTER: &str = "udp and src host 198.51.100.1 and dst port 9999";

// ---------------------------------------------------------------- fixture

/// What frame `i` of the fixture looks like.
fn expected(i: u32) -> (u16, u32) {
    let src_port = 40_000 + u16::try_from(i % 1000).unwrap();
    let payload_len = 8 + i % 64;
    (src_port, payload_len)
}

/// An Ethernet/IPv4/UDP frame, index `i` in the first payload bytes.
fn frame(i: u32) -> Vec<u8> {
    let (src_port, payload_len) = expected(i);
    let payload_len = payload_len as usize;
    let mut f = Vec::with_capacity(42 + payload_len);
    f.extend_from_slice(&[0x02, 0x6e, 0x61, 0, 0, 0x02]); // dst: not the host end
    f.extend_from_slice(&[0x02, 0x6e, 0x61, 0, 0, 0x01]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = u16::try_from(20 + 8 + payload_len).unwrap();
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&SRC_IP.octets());
    ip[16..20].copy_from_slice(&DST_IP.octets());
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&src_port.to_be_bytes());
    f.extend_from_slice(&DST_PORT.to_be_bytes());
    f.extend_from_slice(&u16::try_from(8 + payload_len).unwrap().to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum
    f.extend_from_slice(&i.to_be_bytes());
    f.resize(42 + payload_len, 0xab);
    f
}

fn write_fixture(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(file).unwrap();
    for i in 0..FRAMES {
        let f = frame(i);
        let ts = 1_700_000_000_000_000_000 + u64::from(i) * 500_000;
        w.write_frame(ts, u32::try_from(f.len()).unwrap(), &f)
            .unwrap();
    }
    w.flush().unwrap();
}

// ------------------------------------------------------------- namespaces

fn now_ns() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

/// Reads until `want` packets arrived and then `quiet` more passed with
/// nothing new, or until `deadline`. Returns the records.
fn collect(
    src: &mut LiveSource,
    want: usize,
    quiet: Duration,
    deadline: Instant,
) -> Vec<PacketRecord> {
    let mut got = Vec::with_capacity(want);
    let mut rec = PacketRecord::default();
    let mut full_since: Option<Instant> = None;
    while Instant::now() < deadline {
        match src.next_into(&mut rec).unwrap() {
            SourceEvent::Packet => got.push(rec.clone()),
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
        if got.len() >= want {
            let since = *full_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= quiet {
                break;
            }
        }
    }
    got
}

fn check_record(rec: &PacketRecord, i: u32, iface: &str, t0: u64, t1: u64) {
    let (src_port, payload_len) = expected(i);
    let f = frame(i);
    assert_eq!(rec.iface.as_deref(), Some(iface), "packet {i}");
    assert_eq!(rec.wire_len as usize, f.len(), "packet {i}: wire_len");
    assert_eq!(rec.cap_len as usize, f.len(), "packet {i}: cap_len");
    assert!(
        (t0..=t1).contains(&rec.ts_ns),
        "packet {i}: ts_ns {} outside the capture window {t0}..={t1}",
        rec.ts_ns
    );
    assert_eq!(rec.src_ip, Some(IpAddr::V4(SRC_IP)), "packet {i}: src_ip");
    assert_eq!(rec.dst_ip, Some(IpAddr::V4(DST_IP)), "packet {i}: dst_ip");
    assert_eq!(rec.ip_proto, Some(17), "packet {i}: ip_proto");
    assert_eq!(rec.src_port, Some(src_port), "packet {i}: src_port");
    assert_eq!(rec.dst_port, Some(DST_PORT), "packet {i}: dst_port");
    assert_eq!(
        rec.payload_len,
        Some(payload_len),
        "packet {i}: payload_len"
    );
    assert_eq!(rec.protocol, Protocol::Udp, "packet {i}: protocol");
}

// ------------------------------------------------------------------ tests

#[test]
fn replay_over_veth_is_captured_completely() {
    let test = "replay_over_veth_is_captured_completely";
    let Some(ns) = netns_or_skip(test, 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("replay.pcap");
    write_fixture(&pcap);
    let host = ns.host(0).to_owned();

    let cfg = LiveConfig {
        filter: Some(FILTER.into()),
        ..LiveConfig::new(host.clone())
    };
    let mut src = LiveSource::open(&cfg).unwrap();
    let t0 = now_ns();
    let started = Instant::now();
    let child = ns.replay(0, &pcap, PPS);
    let deadline = started + Duration::from_secs(u64::from(FRAMES / PPS) + 15);
    let got = collect(
        &mut src,
        FRAMES as usize,
        Duration::from_millis(300),
        deadline,
    );
    let sent = replay_result(child);
    let secs = started.elapsed().as_secs_f64();
    let t1 = now_ns();
    src.refresh_stats();
    let stats = src.stats();
    let ifs = src.iface_stats();
    println!(
        "{test}: sent {sent} at {PPS} pps, seen {} in {secs:.2} s; kernel received {:?}, \
         kernel dropped {:?}, interface dropped {:?}; link {}, ns timestamps {}",
        got.len(),
        stats.kernel_received,
        stats.kernel_dropped,
        stats.if_dropped,
        ifs[0].link,
        ifs[0].ts_nanos
    );

    assert_eq!(
        sent,
        u64::from(FRAMES),
        "tcpreplay did not send every frame"
    );
    assert_eq!(
        got.len(),
        FRAMES as usize,
        "packets seen differ from packets sent"
    );
    for (i, rec) in (0u32..).zip(&got) {
        check_record(rec, i, &host, t0, t1);
    }
    assert!(
        got.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "timestamps go back"
    );
    assert_eq!(stats.packets, u64::from(FRAMES));
    assert_eq!(stats.parse.packets, u64::from(FRAMES));
    assert_eq!(stats.parse.malformed_packets, 0);
    assert_eq!(
        stats.kernel_dropped,
        Some(0),
        "the kernel dropped at {PPS} pps"
    );
    assert_eq!(stats.kernel_received, Some(u64::from(FRAMES)));
    assert_eq!(src.queue_depth(), 0);
    if cfg!(target_os = "linux") {
        assert!(ifs[0].ts_nanos, "libpcap on Linux gives ns timestamps");
    }
}

#[test]
fn two_interfaces_are_captured_by_threads() {
    let test = "two_interfaces_are_captured_by_threads";
    let Some(ns) = netns_or_skip(test, 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("replay.pcap");
    write_fixture(&pcap);
    let hosts: Vec<String> = (0..2).map(|k| ns.host(k).to_owned()).collect();

    let cfg = LiveConfig {
        interfaces: hosts.clone(),
        filter: Some(FILTER.into()),
        ..LiveConfig::default()
    };
    let mut src = LiveSource::open(&cfg).unwrap();
    let stopper = src.stopper();
    let t0 = now_ns();
    let started = Instant::now();
    let children = [ns.replay(0, &pcap, PPS), ns.replay(1, &pcap, PPS)];
    let deadline = started + Duration::from_secs(u64::from(FRAMES / PPS) + 15);
    let got = collect(
        &mut src,
        2 * FRAMES as usize,
        Duration::from_millis(300),
        deadline,
    );
    let sent: u64 = children.into_iter().map(replay_result).sum();
    let t1 = now_ns();

    // Stopping ends the source after the queue is drained, with final
    // counters polled by the capture threads.
    stopper.stop();
    let mut rec = PacketRecord::default();
    let stop_at = Instant::now();
    while src.next_into(&mut rec).unwrap() != SourceEvent::End {
        assert!(
            stop_at.elapsed() < Duration::from_secs(3),
            "stop did not end the source"
        );
    }
    let stats = src.stats();
    println!(
        "{test}: sent {sent} over 2 interfaces at {PPS} pps each, seen {}; kernel received {:?}, \
         kernel dropped {:?}, interface dropped {:?}; per interface {:?}",
        got.len(),
        stats.kernel_received,
        stats.kernel_dropped,
        stats.if_dropped,
        src.iface_stats()
    );

    assert_eq!(sent, 2 * u64::from(FRAMES));
    assert_eq!(got.len(), 2 * FRAMES as usize);
    for host in &hosts {
        let mine: Vec<&PacketRecord> = got
            .iter()
            .filter(|r| r.iface.as_deref() == Some(host))
            .collect();
        assert_eq!(mine.len(), FRAMES as usize, "packets seen on {host}");
        for (i, rec) in (0u32..).zip(mine) {
            check_record(rec, i, host, t0, t1);
        }
    }
    assert_eq!(stats.packets, 2 * u64::from(FRAMES));
    assert_eq!(stats.parse.packets, 2 * u64::from(FRAMES));
    assert_eq!(stats.kernel_dropped, Some(0));
    assert_eq!(stats.kernel_received, Some(2 * u64::from(FRAMES)));
    let per_if: Vec<u64> = src
        .iface_stats()
        .iter()
        .map(|s| s.kernel_received)
        .collect();
    assert_eq!(per_if, [u64::from(FRAMES); 2]);
}

/// The generator's mixed traffic (TCP sessions, DNS, HTTP, TLS, ICMP, ARP,
/// IPv6, VLAN, a port scan) replayed over the veth pair with no filter:
/// every packet arrives, and each live record equals the record the file
/// path makes of the same frame (all fields but the capture time and the
/// interface). Live and offline share one parser; this proves it end to end.
///
/// The frames are addressed to the generator's own MACs, never the host
/// end's, and neither end has an address, so the host stack ignores them.
#[test]
fn generated_traffic_live_equals_offline() {
    let test = "generated_traffic_live_equals_offline";
    let Some(ns) = netns_or_skip(test, 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("generated.pcap");
    let cfg = GenConfig {
        packets: u64::from(FRAMES),
        pps: f64::from(PPS),
        seed: 42,
        scenarios: vec![Scenario::Normal, Scenario::PortScan],
        ..GenConfig::default()
    };
    gen::generate(&cfg, std::fs::File::create(&pcap).unwrap(), std::io::sink()).unwrap();

    let mut offline = Vec::new();
    let mut file = FileSource::open(&pcap).unwrap();
    let mut rec = PacketRecord::default();
    while file.next_into(&mut rec).unwrap() == SourceEvent::Packet {
        offline.push(rec.clone());
    }
    assert_eq!(offline.len(), FRAMES as usize);

    let host = ns.host(0).to_owned();
    // Forwarding off on the host end: nothing that arrives can leave.
    let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{host}/forwarding"), "0");
    let mut src = LiveSource::open(&LiveConfig::new(host.clone())).unwrap();
    let started = Instant::now();
    let child = ns.replay(0, &pcap, PPS);
    let deadline = started + Duration::from_secs(u64::from(FRAMES / PPS) + 15);
    let got = collect(
        &mut src,
        FRAMES as usize,
        Duration::from_millis(300),
        deadline,
    );
    let sent = replay_result(child);
    src.refresh_stats();
    let stats = src.stats();
    println!(
        "{test}: sent {sent} generated frames at {PPS} pps, seen {}; kernel received {:?}, \
         kernel dropped {:?}, interface dropped {:?}",
        got.len(),
        stats.kernel_received,
        stats.kernel_dropped,
        stats.if_dropped
    );
    assert_eq!(
        sent,
        u64::from(FRAMES),
        "tcpreplay did not send every frame"
    );
    assert_eq!(
        got.len(),
        offline.len(),
        "packets seen differ from packets sent"
    );
    for (i, (live, file)) in got.iter().zip(&offline).enumerate() {
        let mut live = live.clone();
        live.ts_ns = file.ts_ns;
        live.iface = file.iface.clone();
        assert_eq!(
            &live, file,
            "packet {i}: live record differs from the file's"
        );
    }
    assert_eq!(stats.parse.malformed_packets, 0);
    assert_eq!(
        stats.kernel_dropped,
        Some(0),
        "the kernel dropped at {PPS} pps"
    );
}

#[test]
fn bad_filter_names_interface_and_filter() {
    if !privileged("bad_filter_names_interface_and_filter", &[]) {
        return;
    }
    let cfg = LiveConfig {
        filter: Some("udp and and port".into()),
        ..LiveConfig::new("lo")
    };
    let err = LiveSource::open(&cfg).unwrap_err();
    let msg = err.to_string();
    println!("bad filter: {msg}");
    assert!(
        matches!(&err, CaptureError::Filter { iface, filter, .. } if iface == "lo" && filter == "udp and and port"),
        "{err:?}"
    );
    assert!(
        msg.contains("\"lo\"") && msg.contains("udp and and port"),
        "{msg}"
    );
}

#[test]
fn missing_interface_is_a_clear_error() {
    // Also without root: then libpcap refuses for lack of permission, and
    // the error still names the interface.
    let err = LiveSource::open(&LiveConfig::new("na-no-such-if")).unwrap_err();
    let msg = err.to_string();
    println!("missing interface: {msg}");
    assert!(
        matches!(&err, CaptureError::Live { iface, .. } if iface == "na-no-such-if"),
        "{err:?}"
    );
    assert!(msg.contains("na-no-such-if"), "{msg}");
}

#[test]
fn stopper_ends_an_idle_capture_promptly() {
    if !privileged("stopper_ends_an_idle_capture_promptly", &[]) {
        return;
    }
    // A filter nothing on loopback matches: the source only idles.
    let cfg = LiveConfig {
        filter: Some("udp port 9 and host 203.0.113.77".into()),
        ..LiveConfig::new("lo")
    };
    let mut src = LiveSource::open(&cfg).unwrap();
    let stopper = src.stopper();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stopper.stop();
    });
    let start = Instant::now();
    let mut rec = PacketRecord::default();
    let mut idles = 0;
    loop {
        match src.next_into(&mut rec).unwrap() {
            SourceEvent::Idle => idles += 1,
            SourceEvent::Packet => {}
            SourceEvent::End => break,
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "stop did not end the source"
        );
    }
    t.join().unwrap();
    let took = start.elapsed();
    println!("stopped after {took:?}, {idles} idle polls");
    assert!(idles >= 1, "an idle source reports Idle");
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert_eq!(src.next_into(&mut rec).unwrap(), SourceEvent::End);
    assert!(src.stats().kernel_received.is_some());
}
