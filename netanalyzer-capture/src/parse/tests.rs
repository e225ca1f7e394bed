//! Unit tests on byte-array frames: every link type and protocol, plus
//! truncated and malformed variants.
use super::parse_frame;
use crate::LinkType;
use netanalyzer_core::{MacAddr, MalformedKind, PacketRecord, ParseStats, Protocol};
use std::net::IpAddr;

const DST: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const SRC: [u8; 6] = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4_opts(proto: u8, opts: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
    let ihl = 20 + opts.len();
    let total = (ihl + payload.len()) as u16;
    let mut p = vec![0x40 | (ihl / 4) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    p.extend_from_slice(opts);
    p.extend_from_slice(payload);
    p
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_opts(proto, &[], 0, payload)
}

fn ipv6(nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[nh, 33]);
    let mut src = [0u8; 16];
    src[0] = 0x20;
    src[1] = 0x01;
    src[15] = 1;
    let mut dst = src;
    dst[15] = 2;
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

fn tcp(sport: u16, dport: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    t.extend_from_slice(&0x0506_0708u32.to_be_bytes());
    t.extend_from_slice(&((5u16 << 12) | flags).to_be_bytes());
    t.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn dns_query(name: &[&str], response: bool) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, if response { 0x81 } else { 0x01 }, 0x00];
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// Parses with `wire_len` = frame length (not snapped).
fn parse(link: LinkType, f: &[u8]) -> (PacketRecord, ParseStats) {
    parse_wire(link, f, f.len() as u32)
}

fn parse_wire(link: LinkType, f: &[u8], wire_len: u32) -> (PacketRecord, ParseStats) {
    let mut rec = PacketRecord {
        wire_len,
        cap_len: f.len() as u32,
        ..PacketRecord::default()
    };
    let mut stats = ParseStats::default();
    parse_frame(link, f, &mut rec, &mut stats);
    assert_eq!(stats.packets, 1);
    (rec, stats)
}

fn only_problem(stats: &ParseStats) -> Option<MalformedKind> {
    assert!(stats.total_problems() <= 1);
    assert_eq!(stats.malformed_packets, stats.total_problems());
    stats.nonzero().next().map(|(k, _)| k)
}

fn v4(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = eth(0x0800, &ipv4(6, &tcp(1234, 8080, 0x112, b"xyz")));
    let (r, s) = parse(LinkType::ETHERNET, &f);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.eth_dst, Some(MacAddr(DST)));
    assert_eq!(r.eth_src, Some(MacAddr(SRC)));
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(r.vlan_id, None);
    assert_eq!(r.ip_version, Some(4));
    assert_eq!(r.src_ip, v4("10.0.0.1"));
    assert_eq!(r.dst_ip, v4("10.0.0.2"));
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!(r.ttl, Some(64));
    assert_eq!(r.is_fragment, Some(false));
    assert_eq!((r.src_port, r.dst_port), (Some(1234), Some(8080)));
    assert_eq!(r.tcp_flags, Some(0x112));
    assert_eq!(r.tcp_seq, Some(0x0102_0304));
    assert_eq!(r.tcp_ack, Some(0x0506_0708));
    assert_eq!(r.tcp_window, Some(0xfaf0));
    assert_eq!(r.payload_len, Some(3));
    assert_eq!(r.protocol, Protocol::Tcp);
    assert_eq!(r.icmp_type, None);
    assert_eq!(r.arp_op, None);
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = eth(0x0800, &ipv4(6, &tcp(1, 2, 0x10, b"")));
    f.extend_from_slice(&[0; 6]);
    let (r, s) = parse(LinkType::ETHERNET, &f);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.payload_len, Some(0));
}

#[test]
fn vlan_and_qinq_keep_outer_id() {
    let ip = ipv4(17, &udp(1000, 2000, b"abcd"));
    let mut inner = vec![0x20, 0x0a, 0x08, 0x00];
    inner.extend_from_slice(&ip);
    let (r, s) = parse(LinkType::ETHERNET, &eth(0x8100, &inner));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.vlan_id, Some(10));
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(r.payload_len, Some(4));
    assert_eq!(r.protocol, Protocol::Udp);

    let mut qinq = vec![0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00];
    qinq.extend_from_slice(&ip);
    let (r, _) = parse(LinkType::ETHERNET, &eth(0x88a8, &qinq));
    assert_eq!(r.vlan_id, Some(100));
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(r.src_port, Some(1000));

    let (r, s) = parse(LinkType::ETHERNET, &eth(0x8100, &[0x00, 0x64]));
    assert_eq!(only_problem(&s), Some(MalformedKind::VlanTruncated));
    assert_eq!(r.eth_src, Some(MacAddr(SRC)));
    assert_eq!(r.vlan_id, None);
}

#[test]
fn ieee8023_llc_snap() {
    let ip = ipv4(6, &tcp(80, 5555, 0x18, b"hi"));
    let mut llc = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    llc.extend_from_slice(&ip);
    let (r, s) = parse(LinkType::ETHERNET, &eth(llc.len() as u16, &llc));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(r.src_port, Some(80));
    // Plain LLC (e.g. spanning tree): link fields only.
    let (r, s) = parse(LinkType::ETHERNET, &eth(7, &[0x42, 0x42, 0x03, 0, 0, 0, 0]));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ether_type, None);
    assert_eq!(r.protocol, Protocol::Other);
}

#[test]
fn arp_request_and_truncated() {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&[0; 20]);
    let (r, s) = parse(LinkType::ETHERNET, &eth(0x0806, &a));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.arp_op, Some(1));
    assert_eq!(r.protocol, Protocol::Arp);
    assert_eq!(r.src_ip, None);
    let (r, s) = parse(LinkType::ETHERNET, &eth(0x0806, &a[..12]));
    assert_eq!(only_problem(&s), Some(MalformedKind::ArpTruncated));
    assert_eq!(r.arp_op, Some(1));
    let (r, s) = parse(LinkType::ETHERNET, &eth(0x0806, &a[..5]));
    assert_eq!(only_problem(&s), Some(MalformedKind::ArpTruncated));
    assert_eq!(r.arp_op, None);
}

#[test]
fn short_ethernet_is_link_truncated() {
    let (r, s) = parse(LinkType::ETHERNET, &DST[..4]);
    assert_eq!(only_problem(&s), Some(MalformedKind::LinkTruncated));
    assert_eq!(r.eth_dst, None);
    let f = eth(0x0800, &[]);
    let (r, s) = parse(LinkType::ETHERNET, &f[..13]);
    assert_eq!(only_problem(&s), Some(MalformedKind::LinkTruncated));
    assert_eq!(r.eth_src, Some(MacAddr(SRC)));
    let (_, s) = parse(LinkType::ETHERNET, &[]);
    assert_eq!(only_problem(&s), Some(MalformedKind::LinkTruncated));
}

#[test]
fn sll_and_sll2() {
    let ip = ipv4(17, &udp(5000, 53, &dns_query(&["example", "com"], false)));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let (r, s) = parse(LinkType::LINUX_SLL, &sll);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.eth_src, None);
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(r.dst_port, Some(53));
    assert_eq!(r.protocol, Protocol::Dns);
    assert_eq!(r.dns_qname.as_deref(), Some("example.com"));
    assert_eq!(r.dns_qtype, Some(1));
    assert_eq!(r.dns_is_response, Some(false));

    let mut sll2 = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&ipv6(6, &tcp(443, 40000, 0x011, b"")));
    let (r, s) = parse(LinkType::LINUX_SLL2, &sll2);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ether_type, Some(0x86dd));
    assert_eq!(r.ip_version, Some(6));
    assert_eq!(r.ttl, Some(33));
    assert_eq!(r.tcp_flags, Some(0x011));

    let (_, s) = parse(LinkType::LINUX_SLL, &sll[..10]);
    assert_eq!(only_problem(&s), Some(MalformedKind::LinkTruncated));
    let (_, s) = parse(LinkType::LINUX_SLL2, &sll2[..19]);
    assert_eq!(only_problem(&s), Some(MalformedKind::LinkTruncated));
}

#[test]
fn raw_and_null_links() {
    let ip4 = ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1, b'p']);
    let ip6 = ipv6(58, &[128, 0, 0, 0, 0, 1, 0, 1]);
    for link in [LinkType::RAW, LinkType::RAW_OLD, LinkType::IPV4] {
        let (r, s) = parse(link, &ip4);
        assert_eq!(only_problem(&s), None, "{link}");
        assert_eq!(r.protocol, Protocol::Icmp);
        assert_eq!((r.icmp_type, r.icmp_code), (Some(8), Some(0)));
        assert_eq!(r.payload_len, Some(1));
        assert_eq!(r.eth_src, None);
    }
    for link in [LinkType::RAW, LinkType::IPV6] {
        let (r, s) = parse(link, &ip6);
        assert_eq!(only_problem(&s), None);
        assert_eq!(r.protocol, Protocol::Icmpv6);
        assert_eq!(r.icmp_type, Some(128));
    }
    let (_, s) = parse(LinkType::IPV4, &ip6);
    assert_eq!(only_problem(&s), Some(MalformedKind::Ipv4Bad));
    // Null/loop: both byte orders, every AF_INET6 value.
    for (fam, ip, v) in [
        ([2, 0, 0, 0], &ip4, 4),
        ([0, 0, 0, 2], &ip4, 4),
        ([24, 0, 0, 0], &ip6, 6),
        ([0, 0, 0, 28], &ip6, 6),
        ([30, 0, 0, 0], &ip6, 6),
    ] {
        let mut f = fam.to_vec();
        f.extend_from_slice(ip);
        for link in [LinkType::NULL, LinkType::LOOP] {
            let (r, s) = parse(link, &f);
            assert_eq!(only_problem(&s), None);
            assert_eq!(r.ip_version, Some(v));
        }
    }
    let (r, s) = parse(LinkType::NULL, &[7, 0, 0, 0, 1, 2]);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ip_version, None);
    let (_, s) = parse(LinkType::NULL, &[2, 0]);
    assert_eq!(only_problem(&s), Some(MalformedKind::LinkTruncated));
}

#[test]
fn ppp_and_pppoe() {
    let ip = ipv4(6, &tcp(1, 2, 0x02, b""));
    for hdr in [&[0xff, 0x03, 0x00, 0x21][..], &[0x00, 0x21], &[0x21]] {
        let mut f = hdr.to_vec();
        f.extend_from_slice(&ip);
        let (r, s) = parse(LinkType::PPP, &f);
        assert_eq!(only_problem(&s), None);
        assert_eq!(r.src_port, Some(1));
    }
    let mut pppoe = vec![0x11, 0x00, 0x00, 0x01, 0x00, 0x30, 0x00, 0x57];
    pppoe.extend_from_slice(&ipv6(17, &udp(1, 2, b"")));
    let (r, s) = parse(LinkType::ETHERNET, &eth(0x8864, &pppoe));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ether_type, Some(0x8864));
    assert_eq!(r.ip_version, Some(6));
    assert_eq!(r.protocol, Protocol::Udp);
    let (_, s) = parse(LinkType::ETHERNET, &eth(0x8864, &pppoe[..5]));
    assert_eq!(only_problem(&s), Some(MalformedKind::LinkTruncated));
}

#[test]
fn mpls_then_ipv4() {
    let mut f = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
    f.extend_from_slice(&ipv4(17, &udp(7, 9, b"")));
    let (r, s) = parse(LinkType::ETHERNET, &eth(0x8847, &f));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.src_port, Some(7));
}

#[test]
fn unsupported_link_type_is_counted() {
    let (r, s) = parse(LinkType::IEEE802_11_RADIOTAP, &[0; 40]);
    assert_eq!(only_problem(&s), Some(MalformedKind::UnsupportedLinkType));
    assert_eq!(r.protocol, Protocol::Other);
}

#[test]
fn ipv4_options_and_fragments() {
    let opts = [0x94, 0x04, 0, 0, 0x01, 0x01, 0x01, 0x00];
    let f = eth(
        0x0800,
        &ipv4_opts(2, &opts, 0, &[0x16, 0, 0, 0, 224, 0, 0, 22]),
    );
    let (r, s) = parse(LinkType::ETHERNET, &f);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.protocol, Protocol::Igmp);
    assert_eq!(r.ip_proto, Some(2));
    // First fragment (MF): ports read.
    let f = eth(0x0800, &ipv4_opts(17, &[], 0x2000, &udp(53, 999, &[0; 16])));
    let (r, s) = parse(LinkType::ETHERNET, &f);
    assert_eq!(r.is_fragment, Some(true));
    assert_eq!(r.src_port, Some(53));
    // The DNS message is cut at the fragment boundary; counted as DNS.
    assert!(s.total_problems() <= 1);
    // Later fragment: no ports, protocol from the number.
    let f = eth(
        0x0800,
        &ipv4_opts(17, &[], 0x0003, &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
    );
    let (r, s) = parse(LinkType::ETHERNET, &f);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.is_fragment, Some(true));
    assert_eq!(r.src_port, None);
    assert_eq!(r.ip_proto, Some(17));
    assert_eq!(r.payload_len, Some(9));
    assert_eq!(r.protocol, Protocol::Udp);
}

#[test]
fn ipv4_truncated_and_bad() {
    let full = eth(0x0800, &ipv4(6, &tcp(1, 2, 0x02, b"")));
    // Cut inside the IP header: fields up to the cut are kept.
    let (r, s) = parse_wire(LinkType::ETHERNET, &full[..14 + 16], full.len() as u32);
    assert_eq!(only_problem(&s), Some(MalformedKind::Ipv4Truncated));
    assert_eq!(r.ttl, Some(64));
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!(r.src_ip, v4("10.0.0.1"));
    assert_eq!(r.dst_ip, None);
    // Cut inside TCP: ports and seq kept.
    let (r, s) = parse_wire(LinkType::ETHERNET, &full[..14 + 20 + 10], full.len() as u32);
    assert_eq!(only_problem(&s), Some(MalformedKind::TcpTruncated));
    assert_eq!(r.dst_port, Some(2));
    assert_eq!(r.tcp_seq, Some(0x0102_0304));
    assert_eq!(r.tcp_ack, None);
    assert_eq!(r.payload_len, None);
    // Bogus IHL.
    let mut bad = full.clone();
    bad[14] = 0x43;
    let (r, s) = parse(LinkType::ETHERNET, &bad);
    assert_eq!(only_problem(&s), Some(MalformedKind::Ipv4Bad));
    assert_eq!(r.dst_ip, v4("10.0.0.2"));
    assert_eq!(r.src_port, None);
    // Total length beyond the frame (not snapped): bad, transport still read.
    let mut long = full.clone();
    long[16] = 0x05;
    let (r, s) = parse(LinkType::ETHERNET, &long);
    assert_eq!(only_problem(&s), Some(MalformedKind::Ipv4Bad));
    assert_eq!(r.src_port, Some(1));
    // Total length 0 (segmentation offload): the rest of the frame.
    let mut tso = full.clone();
    tso[16] = 0;
    tso[17] = 0;
    let (r, s) = parse(LinkType::ETHERNET, &tso);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.src_port, Some(1));
    // Snapped payload: no problem, payload_len counts captured bytes.
    let f = eth(0x0800, &ipv4(6, &tcp(1, 2, 0x18, &[7; 100])));
    let (r, s) = parse_wire(LinkType::ETHERNET, &f[..f.len() - 60], f.len() as u32);
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.payload_len, Some(40));
}

#[test]
fn tcp_all_nine_flags_and_bad_offset() {
    let mut t = tcp(1, 2, 0, b"");
    t[12] = 0x51; // data offset 5, NS
    t[13] = 0xff;
    let (r, _) = parse(LinkType::IPV4, &ipv4(6, &t));
    assert_eq!(r.tcp_flags, Some(0x1ff));
    t[12] = 0x3e; // offset 3, reserved bits set: not flags
    let (r, s) = parse(LinkType::IPV4, &ipv4(6, &t));
    assert_eq!(only_problem(&s), Some(MalformedKind::TcpBad));
    assert_eq!(r.tcp_flags, Some(0x0ff));
    assert_eq!(r.tcp_window, Some(0xfaf0));
    t[12] = 0xf0; // offset 60 > segment
    let (_, s) = parse(LinkType::IPV4, &ipv4(6, &t));
    assert_eq!(only_problem(&s), Some(MalformedKind::TcpBad));
}

#[test]
fn udp_truncated() {
    let (r, s) = parse(LinkType::IPV4, &ipv4(17, &[0, 53, 0, 54, 0]));
    assert_eq!(only_problem(&s), Some(MalformedKind::UdpTruncated));
    assert_eq!((r.src_port, r.dst_port), (Some(53), Some(54)));
}

#[test]
fn icmp_igmp_gre_truncated() {
    let (r, s) = parse(LinkType::IPV4, &ipv4(1, &[3]));
    assert_eq!(only_problem(&s), Some(MalformedKind::IcmpTruncated));
    assert_eq!((r.icmp_type, r.icmp_code), (Some(3), None));
    let (_, s) = parse(LinkType::IPV4, &ipv4(2, &[0x11, 0, 0]));
    assert_eq!(only_problem(&s), Some(MalformedKind::IgmpTruncated));
    let (r, s) = parse(LinkType::IPV4, &ipv4(47, &[0x20, 0x00, 0x08]));
    assert_eq!(only_problem(&s), Some(MalformedKind::GreBad));
    assert_eq!(r.protocol, Protocol::Gre);
}

#[test]
fn gre_keeps_outer_header() {
    // GRE with key, carrying IPv4/UDP: the record describes the outer packet.
    let inner = ipv4(17, &udp(1111, 2222, b"data"));
    let mut g = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 42];
    g.extend_from_slice(&inner);
    let (r, s) = parse(LinkType::IPV4, &ipv4(47, &g));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.protocol, Protocol::Gre);
    assert_eq!(r.ip_proto, Some(47));
    assert_eq!(r.src_port, None);
    assert_eq!(r.payload_len, Some(inner.len() as u32));
    // PPTP enhanced GRE (version 1, sequence number present).
    let g1 = [
        0x30, 0x01, 0x88, 0x0b, 0, 4, 0, 1, 0, 0, 0, 1, 0xff, 0x03, 0, 0x21,
    ];
    let (r, s) = parse(LinkType::IPV4, &ipv4(47, &g1));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.payload_len, Some(4));
}

#[test]
fn ipv6_extension_headers() {
    // hop-by-hop → routing → dstopts → TCP
    let mut p = vec![43, 0, 1, 4, 0, 0, 0, 0];
    p.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&tcp(22, 2222, 0x10, b"ssh"));
    let (r, s) = parse(LinkType::IPV6, &ipv6(0, &p));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!(r.src_port, Some(22));
    assert_eq!(r.payload_len, Some(3));
    assert_eq!(r.is_fragment, Some(false));
    // AH (length 4 → 24 bytes) → UDP
    let mut ah = vec![17, 4, 0, 0];
    ah.extend_from_slice(&[0; 20]);
    ah.extend_from_slice(&udp(500, 500, b""));
    let (r, s) = parse(LinkType::IPV6, &ipv6(51, &ah));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ip_proto, Some(17));
    assert_eq!(r.dst_port, Some(500));
    // Mobility with payload proto 59: the mobility message is the upper layer.
    let (r, s) = parse(
        LinkType::IPV6,
        &ipv6(135, &[59, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.ip_proto, Some(135));
    assert_eq!(r.protocol, Protocol::Other);
    // Extension header cut short.
    let (r, s) = parse_wire(LinkType::IPV6, &ipv6(0, &p)[..44], 100);
    assert_eq!(only_problem(&s), Some(MalformedKind::Ipv6ExtBad));
    assert_eq!(r.ip_proto, Some(0));
    assert_eq!(r.src_port, None);
}

#[test]
fn ipv6_fragments() {
    let mut first = vec![6, 0, 0x00, 0x01, 0, 0, 0, 7];
    first.extend_from_slice(&tcp(80, 1024, 0x18, &[0; 8]));
    let (r, s) = parse(LinkType::IPV6, &ipv6(44, &first));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.is_fragment, Some(true));
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!(r.src_port, Some(80));
    let later = [6, 0, 0x05, 0x00, 0, 0, 0, 7, 1, 2, 3];
    let (r, s) = parse(LinkType::IPV6, &ipv6(44, &later));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.is_fragment, Some(true));
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!(r.src_port, None);
    assert_eq!(r.payload_len, Some(3));
    assert_eq!(r.protocol, Protocol::Tcp);
}

#[test]
fn ipv6_truncated_header_keeps_fields() {
    let f = ipv6(17, &udp(1, 2, b""));
    let (r, s) = parse_wire(LinkType::IPV6, &f[..30], f.len() as u32);
    assert_eq!(only_problem(&s), Some(MalformedKind::Ipv6Truncated));
    assert_eq!(r.ip_version, Some(6));
    assert_eq!(r.ip_proto, Some(17));
    assert!(r.src_ip.is_some());
    assert_eq!(r.dst_ip, None);
    assert_eq!(r.is_fragment, None);
}

#[test]
fn dns_over_tcp_and_mdns_response() {
    let q = dns_query(&["a", "b"], false);
    let mut m = (q.len() as u16).to_be_bytes().to_vec();
    m.extend_from_slice(&q);
    let (r, s) = parse(LinkType::IPV4, &ipv4(6, &tcp(3333, 53, 0x18, &m)));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.protocol, Protocol::Dns);
    assert_eq!(r.dns_qname.as_deref(), Some("a.b"));
    let resp = dns_query(&["printer", "local"], true);
    let (r, s) = parse(LinkType::IPV4, &ipv4(17, &udp(5353, 5353, &resp)));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.dns_is_response, Some(true));
    assert_eq!(r.dns_qname.as_deref(), Some("printer.local"));
    // Garbage on UDP 53: counted, ports kept.
    let (r, s) = parse(LinkType::IPV4, &ipv4(17, &udp(53, 4000, &[1, 2, 3])));
    assert_eq!(only_problem(&s), Some(MalformedKind::DnsBad));
    assert_eq!(r.src_port, Some(53));
    assert_eq!(r.protocol, Protocol::Udp);
}

#[test]
fn http_request_on_any_port() {
    let req = b"GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t\r\n\r\n";
    let (r, s) = parse(LinkType::IPV4, &ipv4(6, &tcp(40000, 8888, 0x18, req)));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.protocol, Protocol::Http);
    assert_eq!(r.http_method.as_deref(), Some("GET"));
    assert_eq!(r.http_path.as_deref(), Some("/index.html"));
    assert_eq!(r.http_host.as_deref(), Some("example.org"));
    let (r, _) = parse(
        LinkType::IPV4,
        &ipv4(6, &tcp(80, 40000, 0x18, b"HTTP/1.1 200 OK\r\n\r\n")),
    );
    assert_eq!(r.protocol, Protocol::Http);
    assert_eq!(r.http_method, None);
}

#[test]
fn nul_in_http_host_is_escaped() {
    // PostgreSQL text cannot hold NUL: the record must never carry one.
    let req = b"GET / HTTP/1.1\r\nHost: evil\0.example\r\n\r\n";
    let (r, _) = parse(LinkType::IPV4, &ipv4(6, &tcp(40000, 80, 0x18, req)));
    assert_eq!(r.http_host.as_deref(), Some("evil\\000.example"));
}

#[test]
fn tls_client_hello_sni() {
    let host = b"www.example.com";
    let mut sni_ext = vec![0, 0];
    let list_len = 3 + host.len();
    sni_ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
    sni_ext.extend_from_slice(&(list_len as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(host.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(host);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // cipher suites
    body.extend_from_slice(&[1, 0]); // compression
    body.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&sni_ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    let (r, s) = parse(LinkType::IPV4, &ipv4(6, &tcp(50000, 8443, 0x18, &rec)));
    assert_eq!(only_problem(&s), None);
    assert_eq!(r.protocol, Protocol::Tls);
    assert_eq!(r.tls_sni.as_deref(), Some("www.example.com"));
}

#[test]
fn every_prefix_of_every_frame_is_safe() {
    let frames: Vec<(LinkType, Vec<u8>)> = vec![
        (
            LinkType::ETHERNET,
            eth(
                0x0800,
                &ipv4(6, &tcp(1, 80, 0x18, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")),
            ),
        ),
        (
            LinkType::ETHERNET,
            eth(
                0x86dd,
                &ipv6(0, &[17, 0, 1, 4, 0, 0, 0, 0, 0, 53, 0, 53, 0, 8, 0, 0]),
            ),
        ),
        (
            LinkType::IPV4,
            ipv4(17, &udp(53, 53, &dns_query(&["x", "y"], true))),
        ),
        (LinkType::PPP, vec![0xff, 0x03, 0x00, 0x57, 0x60]),
    ];
    for (link, f) in frames {
        for cut in 0..=f.len() {
            let mut stats = ParseStats::default();
            for wire in [cut, f.len()] {
                let mut rec = PacketRecord {
                    wire_len: wire as u32,
                    ..PacketRecord::default()
                };
                parse_frame(link, &f[..cut], &mut rec, &mut stats);
                assert!(rec.payload_len.unwrap_or(0) as usize <= cut);
            }
            assert_eq!(stats.packets, 2);
            assert!(stats.total_problems() <= 2);
        }
    }
}
