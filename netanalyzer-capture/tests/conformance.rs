//! Conformance of the frame parser against tshark, field by field, on every
//! capture of `../shared/pcaps` (see `docs/conformance.md` for how each
//! field is compared and for every remaining class of difference).
//!
//! Run with `cargo test -p netanalyzer-capture --test conformance -- --nocapture`
//! to see the tables. When the corpus folder is missing the test is skipped
//! with a printed reason, unless `CI=true`, where it fails.

mod support;
use netanalyzer_core::{PacketRecord, ParseStats};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

/// Minimum agreement, per field over the whole corpus.
const MIN_AGREEMENT: f64 = 0.995;

/// The compared fields, in table order.
const FIELDS: [&str; 23] = [
    "ts_ns",
    "wire_len",
    "cap_len",
    "eth_src",
    "eth_dst",
    "vlan_id",
    "ip_version",
    "src_ip",
    "dst_ip",
    "ip_proto",
    "ttl",
    "src_port",
    "dst_port",
    "tcp_flags",
    "tcp_seq",
    "tcp_ack",
    "tcp_window",
    "icmp_type",
    "icmp_code",
    "arp_op",
    "dns_qname",
    "http_host",
    "tls_sni",
];

/// IPv6 extension header numbers: `ipv6.nxt` names one of these when the
/// first header is followed by extensions, and then it is not the transport.
const IPV6_EXT: [&str; 7] = ["0", "43", "44", "51", "60", "139", "140"];

/// Outer IP protocols whose payload is another IP packet.
const IP_TUNNEL_PROTOS: [u8; 4] = [4, 41, 47, 97];

/// UDP ports of tunnels whose payload tshark decodes as an inner packet
/// (VXLAN, Geneve, VXLAN-GPE, GTP-U, Teredo, L2TP).
const UDP_TUNNEL_PORTS: [u16; 6] = [4789, 6081, 4790, 2152, 3544, 1701];

/// TCP/UDP ports tshark 4.0 maps to its HTTP dissector by default.
const TSHARK_HTTP_PORTS: [u16; 10] = [80, 1900, 2710, 2869, 3128, 3132, 5985, 8080, 8088, 11371];

/// TCP ports tshark 4.0 decodes as TLS by default (TLS itself and the
/// implicit-TLS services that hand their payload to it).
const TSHARK_TLS_PORTS: [u16; 12] = [443, 465, 636, 853, 989, 990, 992, 993, 994, 995, 5061, 8443];

/// Captures whose records tshark frames differently: wiretap's pcap
/// heuristics pick another record-header variant for a corrupt file. Their
/// fields are not compared and their record count may differ (see
/// docs/conformance.md).
const FRAMED_DIFFERENTLY: [&str; 1] = ["corrupt-huge-caplen.pcap"];

#[derive(Default, Clone, Copy)]
struct Tally {
    matches: u64,
    compared: u64,
    excluded: u64,
}

/// One oracle row: column name → value (absent when the cell is empty).
struct Row<'a> {
    cols: &'a [String],
    cells: Vec<&'a str>,
}

impl Row<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let i = self.cols.iter().position(|c| c == name)?;
        self.cells.get(i).copied().filter(|s| !s.is_empty())
    }
}

/// Why a field of a row is not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// The oracle value comes from an inner (tunnelled) packet.
    Tunnel,
    /// The oracle value comes from the packet quoted by an ICMP error.
    IcmpQuote,
    /// The oracle field does not describe what the record field holds
    /// (ipv6.nxt naming an extension header, ICMPv6, IPv6 TTL).
    NotInOracle,
    /// The field is defined on TCP only; tshark also fills it over UDP
    /// (TLS SNI of QUIC Initial packets, which it decrypts).
    OutOfScope,
}

/// The oracle columns a field is compared with.
fn oracle_columns(field: &str) -> &'static [&'static str] {
    match field {
        "ip_version" | "src_ip" => &["ip.src", "ipv6.src"],
        "dst_ip" => &["ip.dst", "ipv6.dst"],
        "ip_proto" => &["ip.proto", "ipv6.nxt"],
        "ttl" => &["ip.ttl"],
        "src_port" => &["tcp.srcport", "udp.srcport"],
        "dst_port" => &["tcp.dstport", "udp.dstport"],
        "tcp_flags" => &["tcp.flags"],
        "tcp_seq" => &["tcp.seq_raw"],
        "tcp_ack" => &["tcp.ack_raw"],
        "tcp_window" => &["tcp.window_size_value"],
        "icmp_type" => &["icmp.type"],
        "icmp_code" => &["icmp.code"],
        "arp_op" => &["arp.opcode"],
        "dns_qname" => &["dns.qry.name"],
        "http_host" => &["http.host"],
        "tls_sni" => &["tls.handshake.extensions_server_name"],
        _ => &[],
    }
}

/// Why a value only the record has is not held against it: tshark
/// dissects by port and does not re-dissect retransmitted segments.
fn ours_only_excused(field: &str, r: &PacketRecord, retransmission: bool) -> bool {
    let ports: &[u16] = match field {
        "http_host" => &TSHARK_HTTP_PORTS,
        "tls_sni" => &TSHARK_TLS_PORTS,
        _ => return false,
    };
    let on_port = [r.src_port, r.dst_port]
        .iter()
        .flatten()
        .any(|p| ports.contains(p));
    retransmission || !on_port
}

fn ts_string(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

fn opt<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

fn ip_string(ip: Option<IpAddr>) -> Option<String> {
    ip.map(|a| a.to_string())
}

/// The (ours, expected) pair of one field, or why it is not compared.
fn field_pair(
    field: &str,
    r: &PacketRecord,
    o: &Row<'_>,
) -> Result<(Option<String>, Option<String>), Skip> {
    let ours_v6 = r.ip_version == Some(6);
    // Which oracle column describes our (outermost) IP header.
    let ip_col = |v4: &'static str, v6: &'static str| -> Option<String> {
        let (a, b) = if ours_v6 { (v6, v4) } else { (v4, v6) };
        o.get(a).or_else(|| o.get(b)).map(str::to_owned)
    };
    // The outer protocol according to the oracle.
    let outer_proto: Option<u8> = if ours_v6 {
        o.get("ipv6.nxt").or_else(|| o.get("ip.proto"))
    } else {
        o.get("ip.proto").or_else(|| o.get("ipv6.nxt"))
    }
    .and_then(|s| s.parse().ok());
    let udp_ports = [o.get("udp.srcport"), o.get("udp.dstport")];
    let udp_tunnel = udp_ports
        .iter()
        .flatten()
        .filter_map(|p| p.parse::<u16>().ok())
        .any(|p| UDP_TUNNEL_PORTS.contains(&p))
        && outer_proto == Some(17);
    let ip_tunnel = outer_proto.is_some_and(|p| IP_TUNNEL_PROTOS.contains(&p));
    let icmp_error = if ours_v6 {
        outer_proto == Some(58) && r.icmp_type.is_some_and(|t| t < 128)
    } else {
        outer_proto == Some(1)
            && o.get("icmp.type")
                .is_some_and(|t| matches!(t, "3" | "4" | "5" | "11" | "12"))
    };
    let inner_layer = |udp_ok: bool| -> Result<(), Skip> {
        if ip_tunnel || (udp_tunnel && !udp_ok) {
            Err(Skip::Tunnel)
        } else if icmp_error {
            Err(Skip::IcmpQuote)
        } else {
            Ok(())
        }
    };
    let port = |tcp: &str, udp: &str| -> Option<String> {
        match r.ip_proto {
            Some(17) => o.get(udp),
            Some(6) => o.get(tcp),
            _ => o.get(tcp).or_else(|| o.get(udp)),
        }
        .map(str::to_owned)
    };
    let s = |c: &str| o.get(c).map(str::to_owned);
    Ok(match field {
        "ts_ns" => (Some(ts_string(r.ts_ns)), s("frame.time_epoch")),
        "wire_len" => (Some(r.wire_len.to_string()), s("frame.len")),
        "cap_len" => (Some(r.cap_len.to_string()), s("frame.cap_len")),
        "eth_src" => (opt(r.eth_src), s("eth.src")),
        "eth_dst" => (opt(r.eth_dst), s("eth.dst")),
        "vlan_id" => (opt(r.vlan_id), s("vlan.id")),
        "ip_version" => {
            let exp = match (o.get("ip.src").is_some(), o.get("ipv6.src").is_some()) {
                (true, false) => Some("4".to_owned()),
                (false, true) => Some("6".to_owned()),
                (true, true) => return Err(Skip::Tunnel),
                // A header too short for addresses: compare on the version alone.
                (false, false) if o.get("ip.proto").is_some() => Some("4".to_owned()),
                (false, false) if o.get("ipv6.nxt").is_some() => Some("6".to_owned()),
                (false, false) => None,
            };
            (opt(r.ip_version), exp)
        }
        "src_ip" => (ip_string(r.src_ip), ip_col("ip.src", "ipv6.src")),
        "dst_ip" => (ip_string(r.dst_ip), ip_col("ip.dst", "ipv6.dst")),
        "ip_proto" => {
            let exp = ip_col("ip.proto", "ipv6.nxt");
            if ours_v6 && exp.as_deref().is_some_and(|n| IPV6_EXT.contains(&n)) {
                return Err(Skip::NotInOracle);
            }
            (opt(r.ip_proto), exp)
        }
        "ttl" => {
            if ours_v6 {
                return Err(Skip::NotInOracle);
            }
            (opt(r.ttl), s("ip.ttl"))
        }
        "src_port" => {
            inner_layer(true)?;
            (opt(r.src_port), port("tcp.srcport", "udp.srcport"))
        }
        "dst_port" => {
            inner_layer(true)?;
            (opt(r.dst_port), port("tcp.dstport", "udp.dstport"))
        }
        "tcp_flags" => {
            inner_layer(false)?;
            let exp = o
                .get("tcp.flags")
                .and_then(|h| u16::from_str_radix(h.trim_start_matches("0x"), 16).ok())
                .map(|f| (f & 0x01ff).to_string());
            (opt(r.tcp_flags), exp)
        }
        "tcp_seq" => {
            inner_layer(false)?;
            (opt(r.tcp_seq), s("tcp.seq_raw"))
        }
        "tcp_ack" => {
            inner_layer(false)?;
            (opt(r.tcp_ack), s("tcp.ack_raw"))
        }
        "tcp_window" => {
            inner_layer(false)?;
            (opt(r.tcp_window), s("tcp.window_size_value"))
        }
        "icmp_type" | "icmp_code" => {
            if ip_tunnel || udp_tunnel {
                return Err(Skip::Tunnel);
            }
            if ours_v6 {
                return Err(Skip::NotInOracle);
            }
            if field == "icmp_type" {
                (opt(r.icmp_type), s("icmp.type"))
            } else {
                (opt(r.icmp_code), s("icmp.code"))
            }
        }
        "arp_op" => {
            inner_layer(false)?;
            (opt(r.arp_op), s("arp.opcode"))
        }
        "dns_qname" => {
            inner_layer(false)?;
            (r.dns_qname.clone(), s("dns.qry.name"))
        }
        "http_host" => {
            inner_layer(false)?;
            (r.http_host.clone(), s("http.host"))
        }
        "tls_sni" => {
            inner_layer(false)?;
            if r.ip_proto == Some(17) {
                return Err(Skip::OutOfScope);
            }
            (r.tls_sni.clone(), s("tls.handshake.extensions_server_name"))
        }
        other => panic!("unknown field {other}"),
    })
}

#[test]
fn records_agree_with_tshark() {
    let Some(dir) = netanalyzer_capture::testing::shared_pcaps_or_skip("conformance") else {
        return;
    };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());

    let mut corpus: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut count_mismatch = Vec::new();
    let mut reasons: BTreeMap<(&str, String), u64> = BTreeMap::new();
    let mut total_packets = 0u64;
    let mut total_stats = ParseStats::default();
    println!("\n== per file: rows, read error, fields below 100% (matches/compared) ==");
    for name in &files {
        let (records, stats, err) = netanalyzer_capture::testing::read_capture(&dir.join(name));
        total_stats.merge(&stats);
        let (text, which) = support::read_oracle(&dir, name, true);
        let mut lines = text.lines();
        let cols: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split('\t')
            .map(str::to_owned)
            .collect();
        let rows: Vec<Row<'_>> = lines
            .map(|l| Row {
                cols: &cols,
                cells: l.split('\t').collect(),
            })
            .collect();
        let framed_differently = FRAMED_DIFFERENTLY.contains(&name.as_str());
        if framed_differently {
            println!(
                "{name:<40} {:>6} rows, {} records: framed differently by tshark, not compared",
                rows.len(),
                records.len()
            );
            continue;
        }
        if rows.len() != records.len() {
            count_mismatch.push(format!(
                "{name}: {} records, {} oracle rows",
                records.len(),
                rows.len()
            ));
        }
        total_packets += records.len() as u64;
        let mut per_file: BTreeMap<&str, Tally> = BTreeMap::new();
        let mut examples: Vec<String> = Vec::new();
        let mut segments = HashSet::new();
        for (i, (r, o)) in records.iter().zip(&rows).enumerate() {
            let retransmission = r.payload_len.unwrap_or(0) > 0
                && r.tcp_seq.is_some()
                && !segments.insert((r.src_ip, r.dst_ip, r.src_port, r.dst_port, r.tcp_seq));
            for field in FIELDS {
                let t = per_file.entry(field).or_default();
                match field_pair(field, r, o) {
                    Err(skip) => {
                        // Counted only when there was something to compare.
                        if oracle_columns(field).iter().any(|c| o.get(c).is_some()) {
                            t.excluded += 1;
                            *reasons.entry((field, format!("{skip:?}"))).or_default() += 1;
                        }
                    }
                    Ok((None, None)) => {}
                    Ok((Some(_), None)) if ours_only_excused(field, r, retransmission) => {
                        t.excluded += 1;
                        let why = if retransmission {
                            "Retransmission"
                        } else {
                            "PortNotDissected"
                        };
                        *reasons.entry((field, why.to_owned())).or_default() += 1;
                    }
                    Ok((ours, exp)) => {
                        t.compared += 1;
                        if ours == exp {
                            t.matches += 1;
                        } else if examples.len() < 6 {
                            examples.push(format!(
                                "    frame {}: {field}: ours {:?}, tshark {:?}",
                                i + 1,
                                ours,
                                exp
                            ));
                        }
                    }
                }
            }
        }
        let below: Vec<String> = per_file
            .iter()
            .filter(|(_, t)| t.matches < t.compared)
            .map(|(f, t)| format!("{f} {}/{}", t.matches, t.compared))
            .collect();
        println!(
            "{name:<40} {:>6} rows ({which}){}  {}",
            rows.len(),
            err.map(|e| format!(" [read error: {e}]"))
                .unwrap_or_default(),
            if below.is_empty() {
                "all compared fields agree".to_owned()
            } else {
                below.join(", ")
            }
        );
        for e in examples {
            println!("{e}");
        }
        for (f, t) in per_file {
            let c = corpus.entry(f).or_default();
            c.matches += t.matches;
            c.compared += t.compared;
            c.excluded += t.excluded;
        }
    }

    println!(
        "\n== corpus: {} files, {total_packets} packets ==",
        files.len()
    );
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9}",
        "field", "matches", "compared", "excluded", "agree%"
    );
    let mut failing = Vec::new();
    for field in FIELDS {
        let t = corpus.get(field).copied().unwrap_or_default();
        let pct = if t.compared == 0 {
            1.0
        } else {
            t.matches as f64 / t.compared as f64
        };
        println!(
            "{field:<12} {:>9} {:>9} {:>9} {:>8.3}%",
            t.matches,
            t.compared,
            t.excluded,
            pct * 100.0
        );
        if pct < MIN_AGREEMENT {
            failing.push(format!("{field} {:.3}%", pct * 100.0));
        }
    }
    println!("\nexcluded, by field and reason:");
    for ((field, why), n) in &reasons {
        println!("  {field:<12} {why:<18} {n:>6}");
    }
    println!(
        "parse problems: {:?}",
        total_stats.nonzero().collect::<Vec<_>>()
    );
    assert!(
        count_mismatch.is_empty(),
        "record counts differ: {count_mismatch:#?}"
    );
    assert!(
        failing.is_empty(),
        "fields below {}%: {failing:?}",
        MIN_AGREEMENT * 100.0
    );
}

/// Parse-only speed on the corpus frames (already in memory), one core.
/// Run: `cargo test --release -p netanalyzer-capture --test conformance -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn parse_speed_on_corpus() {
    use netanalyzer_capture::{parse::parse_frame, FrameReader, LinkType};
    let Some(dir) = netanalyzer_capture::testing::shared_pcaps_or_skip("conformance") else {
        return;
    };
    let mut frames: Vec<(LinkType, u32, Vec<u8>)> = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if ext != "pcap" && ext != "pcapng" {
            continue;
        }
        let Ok(mut rd) = FrameReader::new(std::fs::File::open(&p).unwrap()) else {
            continue;
        };
        while let Ok(Some(f)) = rd.next_frame() {
            frames.push((f.link, f.wire_len, f.data.to_vec()));
        }
    }
    let mut stats = ParseStats::default();
    let mut rec = PacketRecord::default();
    let rounds = 20;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        for (link, wire, data) in &frames {
            rec.clear();
            rec.wire_len = *wire;
            rec.cap_len = data.len() as u32;
            parse_frame(*link, data, &mut rec, &mut stats);
            std::hint::black_box(&rec);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (frames.len() * rounds) as f64;
    println!(
        "parsed {n} frames in {secs:.3} s: {:.0} ns/packet, {:.2} M packets/s",
        secs * 1e9 / n,
        n / secs / 1e6
    );
}
