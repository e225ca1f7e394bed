//! Properties of the traffic generator: determinism, exact counts, every
//! frame parses with etherparse with valid checksums, TCP seq/ack
//! consistency, labels covering every packet, per-scenario signatures,
//! and a read-back through `FileSource` and our parser.

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use netanalyzer_capture::gen::{
    generate, parse_scenarios, FlowLabel, GenConfig, GenSummary, Generator, Mix, Scenario,
    LABELS_HEADER,
};
use netanalyzer_capture::FileSource;
use netanalyzer_core::{
    FlowAddr, FlowKey, FlowProto, MacAddr, PacketRecord, Protocol, Source, SourceEvent,
};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const VICTIM: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));

fn cfg(packets: u64, scenarios: &[Scenario]) -> GenConfig {
    GenConfig {
        packets,
        scenarios: scenarios.to_vec(),
        ..GenConfig::default()
    }
}

fn run(c: &GenConfig) -> (Vec<u8>, String, GenSummary) {
    let (mut pcap, mut labels) = (Vec::new(), Vec::new());
    let s = generate(c, &mut pcap, &mut labels).unwrap();
    (pcap, String::from_utf8(labels).unwrap(), s)
}

/// Minimal reader for the little-endian nanosecond pcap the writer makes.
fn frames(pcap: &[u8]) -> Vec<(u64, &[u8])> {
    assert_eq!(&pcap[..4], &0xa1b2_3c4du32.to_le_bytes());
    assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().unwrap()), 1);
    let mut out = Vec::new();
    let mut p = 24;
    while p < pcap.len() {
        let u = |o: usize| {
            u64::from(u32::from_le_bytes(
                pcap[p + o..p + o + 4].try_into().unwrap(),
            ))
        };
        let (secs, ns, cap, wire) = (u(0), u(4), u(8) as usize, u(12) as usize);
        assert!(ns < 1_000_000_000);
        assert_eq!(cap, wire);
        out.push((secs * 1_000_000_000 + ns, &pcap[p + 16..p + 16 + cap]));
        p += 16 + cap;
    }
    assert_eq!(p, pcap.len());
    out
}

/// What the tests need from one frame.
#[derive(Debug, Clone)]
struct Info<'a> {
    vlan: bool,
    v6: bool,
    key: FlowKey,
    src: FlowAddr,
    dst: FlowAddr,
    sport: u16,
    dport: u16,
    proto: FlowProto,
    /// (flags: syn, ack, fin, rst), seq, ack
    tcp: Option<(bool, bool, bool, bool, u32, u32)>,
    icmp: Option<(u8, u8)>,
    payload: &'a [u8],
}

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn sum16(b: &[u8]) -> u64 {
    b.chunks(2)
        .map(|c| u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0)))
        .sum()
}

/// Decodes a frame with etherparse and checks every checksum with an
/// independent 16-bit implementation.
fn decode(frame: &[u8]) -> Info<'_> {
    let p = SlicedPacket::from_ethernet(frame).expect("frame parses");
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
        panic!("not ethernet")
    };
    let vlan = p.vlan().is_some();
    let (src, dst, proto_n, l4, pseudo, v6) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            assert_eq!(fold(sum16(h.slice())), 0xffff, "ipv4 header checksum");
            let l4 = ip.payload().payload;
            let pseudo = sum16(&h.source())
                + sum16(&h.destination())
                + u64::from(h.protocol().0)
                + l4.len() as u64;
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                h.protocol().0,
                l4,
                pseudo,
                false,
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let l4 = ip.payload().payload;
            let nh = ip.payload().ip_number.0;
            let pseudo =
                sum16(&h.source()) + sum16(&h.destination()) + u64::from(nh) + l4.len() as u64;
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                nh,
                l4,
                pseudo,
                true,
            )
        }
        Some(NetSlice::Arp(a)) => {
            let (s, d) = (
                FlowAddr::Mac(MacAddr(eth.source())),
                FlowAddr::Mac(MacAddr(eth.destination())),
            );
            assert!(matches!(a.operation().0, 1 | 2));
            return Info {
                vlan,
                v6: false,
                key: FlowKey::new(FlowProto::Arp, s, 0, d, 0).0,
                src: s,
                dst: d,
                sport: 0,
                dport: 0,
                proto: FlowProto::Arp,
                tcp: None,
                icmp: None,
                payload: &[],
            };
        }
        None => panic!("no network layer"),
    };
    // Transport checksum (ICMPv4 has no pseudo header).
    let initial = if proto_n == 1 { 0 } else { pseudo };
    assert_eq!(
        fold(initial + sum16(l4)),
        0xffff,
        "l4 checksum, proto {proto_n}"
    );
    let (mut sport, mut dport, mut tcp, mut icmp, mut payload) = (0, 0, None, None, &[][..]);
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            sport = t.source_port();
            dport = t.destination_port();
            tcp = Some((
                t.syn(),
                t.ack(),
                t.fin(),
                t.rst(),
                t.sequence_number(),
                t.acknowledgment_number(),
            ));
            payload = t.payload();
        }
        Some(TransportSlice::Udp(u)) => {
            sport = u.source_port();
            dport = u.destination_port();
            payload = u.payload();
        }
        Some(TransportSlice::Icmpv4(i)) => icmp = Some((i.type_u8(), i.code_u8())),
        Some(TransportSlice::Icmpv6(i)) => icmp = Some((i.type_u8(), i.code_u8())),
        other => panic!("unexpected transport {other:?}"),
    }
    let (s, d) = (FlowAddr::Ip(src), FlowAddr::Ip(dst));
    let proto = FlowProto::Ip(proto_n);
    Info {
        vlan,
        v6,
        key: FlowKey::new(proto, s, sport, d, dport).0,
        src: s,
        dst: d,
        sport,
        dport,
        proto,
        tcp,
        icmp,
        payload,
    }
}

fn parse_labels(csv: &str) -> Vec<(FlowKey, u64, String)> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(LABELS_HEADER));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 10, "{l}");
            let addr = |s: &str| match s.parse::<IpAddr>() {
                Ok(ip) => FlowAddr::Ip(ip),
                Err(_) => FlowAddr::Mac(s.parse().unwrap()),
            };
            let proto = match f[0] {
                "tcp" => FlowProto::Ip(6),
                "udp" => FlowProto::Ip(17),
                "icmp" => FlowProto::Ip(1),
                "icmpv6" => FlowProto::Ip(58),
                "arp" => FlowProto::Arp,
                n => FlowProto::Ip(n.parse().unwrap()),
            };
            let key = FlowKey::new(
                proto,
                addr(f[1]),
                f[2].parse().unwrap(),
                addr(f[3]),
                f[4].parse().unwrap(),
            )
            .0;
            let first: u64 = f[5].parse().unwrap();
            let last: u64 = f[6].parse().unwrap();
            assert!(first <= last);
            (key, f[7].parse().unwrap(), f[9].to_owned())
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let c = cfg(3000, &Scenario::ALL);
    let (p1, l1, s1) = run(&c);
    let (p2, l2, s2) = run(&c);
    assert!(p1 == p2, "pcap differs between identical runs");
    assert_eq!(l1, l2);
    assert_eq!(s1, s2);
    let (p3, l3, _) = run(&GenConfig { seed: 2, ..c });
    assert!(p1 != p3);
    assert_ne!(l1, l3);
}

#[test]
fn packet_count_is_exact_and_timestamps_follow_pps() {
    for (n, sc) in [
        (0u64, vec![Scenario::Normal]),
        (1, vec![Scenario::SynFlood]),
        (777, vec![Scenario::Normal, Scenario::Slowloris]),
        (5000, Scenario::ALL.to_vec()),
    ] {
        let c = GenConfig {
            pps: 2500.0,
            ..cfg(n, &sc)
        };
        let (p, _, s) = run(&c);
        let fr = frames(&p);
        assert_eq!(fr.len() as u64, n);
        assert_eq!(s.packets, n);
        assert_eq!(s.scenarios.iter().map(|e| e.packets).sum::<u64>(), n);
        assert!(
            fr.windows(2).all(|w| w[0].0 < w[1].0),
            "timestamps increase"
        );
        if n > 1000 {
            let span = (fr[fr.len() - 1].0 - fr[0].0) as f64 / 1e9;
            let rate = (n - 1) as f64 / span;
            assert!((rate - 2500.0).abs() < 25.0, "rate {rate}");
            assert!(fr[0].0 >= c.start_ts_ns && fr[0].0 < c.start_ts_ns + 400_000);
        }
    }
}

#[test]
fn every_frame_parses_with_valid_checksums_and_labels_cover_it() {
    let c = cfg(20_000, &Scenario::ALL);
    let (p, labels, s) = run(&c);
    let rows = parse_labels(&labels);
    assert_eq!(rows.len() as u64, s.flows);
    assert_eq!(
        rows.iter().map(|r| r.1).sum::<u64>(),
        s.packets,
        "label packets add up"
    );
    let keys: HashMap<FlowKey, &str> = rows.iter().map(|r| (r.0, r.2.as_str())).collect();
    for (i, (_, f)) in frames(&p).into_iter().enumerate() {
        assert!(f.len() >= 60);
        let info = decode(f);
        assert!(
            keys.contains_key(&info.key),
            "frame {i} flow {} has no label",
            info.key
        );
    }
    // Each scenario's label appears.
    let names: HashSet<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    for sc in Scenario::ALL {
        assert!(names.contains(sc.name()), "{sc} missing from labels");
    }
}

#[test]
fn frames_carry_the_label_of_their_scenario() {
    let c = cfg(6000, &Scenario::ALL);
    let mut g = Generator::new(&c).unwrap();
    let mut seen: Vec<(FlowKey, Scenario)> = Vec::new();
    let mut labels: Vec<FlowLabel> = Vec::new();
    while let Some(f) = g.next_frame() {
        let sc = f.scenario;
        let key = decode(f.data).key;
        seen.push((key, sc));
        labels.extend(g.take_labels());
    }
    g.finish();
    labels.extend(g.take_labels());
    let by_key: HashMap<FlowKey, HashSet<Scenario>> =
        labels.iter().fold(HashMap::new(), |mut m, l| {
            m.entry(l.key()).or_default().insert(l.scenario);
            m
        });
    for (key, sc) in seen {
        assert!(
            by_key[&key].contains(&sc),
            "{key} labelled {:?}, frame from {sc}",
            by_key[&key]
        );
    }
}

#[test]
fn tcp_sequence_numbers_are_consistent() {
    let c = cfg(
        30_000,
        &[Scenario::Normal, Scenario::Slowloris, Scenario::PortScan],
    );
    let (p, _, _) = run(&c);
    // Per directed 4-tuple: next expected seq.
    let mut next: HashMap<(FlowAddr, u16, FlowAddr, u16), u32> = HashMap::new();
    let mut checked = 0;
    for (_, f) in frames(&p) {
        let i = decode(f);
        let Some((syn, ack, fin, rst, seq, ackn)) = i.tcp else {
            continue;
        };
        let me = (i.src, i.sport, i.dst, i.dport);
        let peer = (i.dst, i.dport, i.src, i.sport);
        if syn {
            // A SYN starts the direction; a SYN-ACK acknowledges the SYN.
            next.insert(me, seq.wrapping_add(1));
            if ack {
                assert_eq!(Some(&ackn), next.get(&peer), "syn-ack ack");
            }
            continue;
        }
        if rst && !ack && seq == 0 {
            continue;
        }
        if let Some(exp) = next.get(&me) {
            assert_eq!(seq, *exp, "seq of {me:?}");
            checked += 1;
        } else {
            // First packet of this direction without SYN: RST|ACK to a SYN.
            assert!(rst, "non-SYN first packet must be a reset");
        }
        if ack {
            if let Some(exp) = next.get(&peer) {
                assert_eq!(ackn, *exp, "ack of {me:?}");
            }
        }
        let adv = i.payload.len() as u32 + u32::from(fin);
        if let Some(n) = next.get_mut(&me) {
            *n = n.wrapping_add(adv);
        }
    }
    assert!(checked > 10_000, "only {checked} segments checked");
}

struct Mixture {
    n: usize,
    v6: usize,
    vlan: usize,
    dns: usize,
    http: usize,
    tls_sni: usize,
    icmp: usize,
    arp: usize,
}

fn mixture(p: &[u8]) -> Mixture {
    let mut m = Mixture {
        n: 0,
        v6: 0,
        vlan: 0,
        dns: 0,
        http: 0,
        tls_sni: 0,
        icmp: 0,
        arp: 0,
    };
    for (_, f) in frames(p) {
        let i = decode(f);
        m.n += 1;
        m.v6 += usize::from(i.v6);
        m.vlan += usize::from(i.vlan);
        match i.proto {
            FlowProto::Arp => m.arp += 1,
            FlowProto::Ip(1 | 58) => m.icmp += 1,
            FlowProto::Ip(17) if i.sport == 53 || i.dport == 53 => m.dns += 1,
            FlowProto::Ip(6) => {
                let pl = i.payload;
                if pl.starts_with(b"GET ")
                    || pl.starts_with(b"POST ")
                    || pl.starts_with(b"HTTP/1.1 ")
                {
                    m.http += 1;
                }
                if pl.len() > 6 && pl[0] == 0x16 && pl[5] == 0x01 {
                    m.tls_sni += 1;
                }
            }
            _ => {}
        }
    }
    m
}

#[test]
fn normal_traffic_mix() {
    let (p, _, _) = run(&cfg(40_000, &[Scenario::Normal]));
    let m = mixture(&p);
    let share = |k: usize| k as f64 / m.n as f64;
    assert!(
        (0.08..0.25).contains(&share(m.v6)),
        "ipv6 share {}",
        share(m.v6)
    );
    assert!(
        (0.05..0.16).contains(&share(m.vlan)),
        "vlan share {}",
        share(m.vlan)
    );
    assert!(
        m.dns > 200 && m.http > 200 && m.tls_sni > 200 && m.icmp > 100 && m.arp > 50,
        "dns {} http {} tls {} icmp {} arp {}",
        m.dns,
        m.http,
        m.tls_sni,
        m.icmp,
        m.arp
    );
}

fn infos_of(sc: Scenario, n: u64) -> Vec<Info<'static>> {
    let (p, _, _) = run(&cfg(n, &[sc]));
    let p: &'static [u8] = Box::leak(p.into_boxed_slice());
    frames(p).into_iter().map(|(_, f)| decode(f)).collect()
}

#[test]
fn syn_flood_signature() {
    let v = infos_of(Scenario::SynFlood, 5000);
    let syn_only = v
        .iter()
        .filter(|i| matches!(i.tcp, Some((true, false, false, false, _, _))))
        .count();
    let sources: HashSet<FlowAddr> = v.iter().map(|i| i.src).collect();
    assert!(
        syn_only * 10 >= v.len() * 9,
        "{syn_only} SYN-only of {}",
        v.len()
    );
    assert!(sources.len() > 4500, "{} sources", sources.len());
    assert!(v
        .iter()
        .all(|i| i.dst == FlowAddr::Ip(VICTIM) && i.dport == 80));
}

#[test]
fn udp_and_icmp_flood_signatures() {
    let v = infos_of(Scenario::UdpFlood, 3000);
    let ports: HashSet<u16> = v.iter().map(|i| i.dport).collect();
    assert!(v
        .iter()
        .all(|i| i.proto == FlowProto::Ip(17) && i.dst == FlowAddr::Ip(VICTIM)));
    assert!(ports.len() > 2500);
    let v = infos_of(Scenario::IcmpFlood, 3000);
    let sources: HashSet<FlowAddr> = v.iter().map(|i| i.src).collect();
    assert!(v
        .iter()
        .all(|i| i.icmp == Some((8, 0)) && i.dst == FlowAddr::Ip(VICTIM)));
    assert!(sources.len() > 2500);
}

#[test]
fn port_scan_signature() {
    let v = infos_of(Scenario::PortScan, 8000);
    let target = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)));
    let tcp_ports: HashSet<u16> = v
        .iter()
        .filter(|i| i.dst == target && i.proto == FlowProto::Ip(6))
        .map(|i| i.dport)
        .collect();
    let udp_ports: HashSet<u16> = v
        .iter()
        .filter(|i| i.dst == target && i.proto == FlowProto::Ip(17))
        .map(|i| i.dport)
        .collect();
    let rst_ack = v
        .iter()
        .filter(|i| matches!(i.tcp, Some((false, true, _, true, _, _))))
        .count();
    let syn_ack = v
        .iter()
        .filter(|i| matches!(i.tcp, Some((true, true, _, _, _, _))))
        .count();
    let unreach = v.iter().filter(|i| i.icmp == Some((3, 3))).count();
    assert!(tcp_ports.len() > 1000, "{} tcp ports", tcp_ports.len());
    assert!(udp_ports.len() > 300, "{} udp ports", udp_ports.len());
    assert!(
        rst_ack > 500 && syn_ack >= 3 && unreach > 200,
        "rst {rst_ack} synack {syn_ack} unreach {unreach}"
    );
}

#[test]
fn slowloris_signature() {
    let v = infos_of(Scenario::Slowloris, 20_000);
    let conns: HashSet<u16> = v
        .iter()
        .filter(|i| i.dport == 80)
        .map(|i| i.sport)
        .collect();
    let partial = v
        .iter()
        .filter(|i| i.payload.starts_with(b"GET /?"))
        .count();
    let lines = v.iter().filter(|i| i.payload.starts_with(b"X-a: ")).count();
    let complete = v
        .iter()
        .filter(|i| i.payload.windows(4).any(|w| w == b"\r\n\r\n"))
        .count();
    assert!(conns.len() >= 150, "{} connections", conns.len());
    assert!(
        partial >= 150 && lines > 3000,
        "partial {partial} lines {lines}"
    );
    assert_eq!(complete, 0, "a slowloris head was completed");
}

#[test]
fn dns_amplification_signature() {
    let v = infos_of(Scenario::DnsAmplification, 4000);
    let (mut q, mut qb, mut r, mut rb) = (0usize, 0usize, 0usize, 0usize);
    for i in &v {
        if i.dport == 53 {
            assert_eq!(
                i.src,
                FlowAddr::Ip(VICTIM),
                "queries are spoofed from the victim"
            );
            // qtype ANY right after the question name.
            let name_end = 12 + i.payload[12..].iter().position(|&b| b == 0).unwrap() + 1;
            assert_eq!(&i.payload[name_end..name_end + 2], &[0, 255]);
            q += 1;
            qb += i.payload.len();
        } else {
            assert_eq!(i.sport, 53);
            assert_eq!(i.dst, FlowAddr::Ip(VICTIM));
            r += 1;
            rb += i.payload.len();
        }
    }
    assert!(q > 1000 && r > 1000);
    assert!(
        (rb / r) >= 20 * (qb / q),
        "amplification {} / {}",
        rb / r,
        qb / q
    );
}

#[test]
fn phases_run_in_order() {
    let c = GenConfig {
        mix: Mix::Phases,
        ..cfg(
            4000,
            &[Scenario::Normal, Scenario::SynFlood, Scenario::UdpFlood],
        )
    };
    let mut g = Generator::new(&c).unwrap();
    let mut order = Vec::new();
    while let Some(f) = g.next_frame() {
        order.push(f.scenario);
    }
    let third = order.len() / 3;
    assert!(order[..third].iter().all(|&s| s == Scenario::Normal));
    assert!(
        !order[third..].contains(&Scenario::UdpFlood)
            || order[2 * third..].contains(&Scenario::UdpFlood)
    );
    assert!(!order[third + 1..2 * third].contains(&Scenario::UdpFlood));
    let normal_in_attack = order[third + 1..]
        .iter()
        .filter(|&&s| s == Scenario::Normal)
        .count();
    let frac = normal_in_attack as f64 / (order.len() - third - 1) as f64;
    assert!(
        (0.2..0.3).contains(&frac),
        "background share in attack phases {frac}"
    );
}

#[test]
fn scenario_lists_parse() {
    let (s, w) = parse_scenarios("normal:3, syn-flood ,dns-amp").unwrap();
    assert_eq!(
        s,
        vec![
            Scenario::Normal,
            Scenario::SynFlood,
            Scenario::DnsAmplification
        ]
    );
    assert_eq!(w, vec![3.0, 1.0, 1.0]);
    for sc in Scenario::ALL {
        assert_eq!(sc.name().parse::<Scenario>().unwrap(), sc);
    }
    assert!(parse_scenarios("normal,bogus").is_err());
    assert!(parse_scenarios("normal:x").is_err());
    assert!(parse_scenarios("").is_err());
    let bad = GenConfig {
        pps: 0.0,
        ..GenConfig::default()
    };
    assert!(Generator::new(&bad).is_err());
    let bad = GenConfig {
        weights: vec![1.0, 2.0],
        ..GenConfig::default()
    };
    assert!(Generator::new(&bad).is_err());
}

#[test]
fn weights_set_the_shares() {
    let c = GenConfig {
        weights: vec![3.0, 1.0],
        ..cfg(20_000, &[Scenario::Normal, Scenario::SynFlood])
    };
    let (_, _, s) = run(&c);
    let syn = s
        .scenarios
        .iter()
        .find(|e| e.scenario == Scenario::SynFlood)
        .unwrap()
        .packets;
    assert!((4500..5500).contains(&syn), "{syn}");
}

#[test]
fn file_source_reads_generated_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.pcap");
    let c = cfg(20_000, &Scenario::ALL);
    let f = std::fs::File::create(&path).unwrap();
    generate(&c, f, std::io::sink()).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    let mut rec = PacketRecord::default();
    let mut n = 0u64;
    let mut protos: HashMap<Protocol, u64> = HashMap::new();
    let (mut v6, mut vlan, mut sni, mut host, mut qname) = (0u64, 0u64, 0u64, 0u64, 0u64);
    loop {
        match src.next_into(&mut rec).unwrap() {
            SourceEvent::Packet => {}
            SourceEvent::Idle => continue,
            SourceEvent::End => break,
        }
        n += 1;
        *protos.entry(rec.protocol).or_default() += 1;
        v6 += u64::from(rec.ip_version == Some(6));
        vlan += u64::from(rec.vlan_id.is_some());
        sni += u64::from(rec.tls_sni.is_some());
        host += u64::from(rec.http_host.is_some());
        qname += u64::from(rec.dns_qname.is_some());
        assert!(FlowKey::from_record(&rec).is_some());
    }
    assert_eq!(n, 20_000);
    let stats = src.stats();
    assert_eq!(
        stats.parse.total_problems(),
        0,
        "malformed: {:?}",
        stats.parse.nonzero().collect::<Vec<_>>()
    );
    for p in [
        Protocol::Dns,
        Protocol::Http,
        Protocol::Tls,
        Protocol::Icmp,
        Protocol::Arp,
        Protocol::Tcp,
        Protocol::Udp,
    ] {
        assert!(
            protos.get(&p).copied().unwrap_or(0) > 0,
            "no {p:?} in {protos:?}"
        );
    }
    assert!(v6 > 100 && vlan > 100, "v6 {v6} vlan {vlan}");
    assert!(
        sni > 20 && host > 20 && qname > 100,
        "sni {sni} host {host} qname {qname}"
    );
}
