//! The fuzz seed corpus, built in code: hand-crafted frames (every link
//! type, VLAN/QinQ, IPv4 options and fragments, IPv6 extension chains,
//! truncations and bogus lengths), small pcap and pcapng files, DNS, HTTP
//! and TLS payloads, and frames and files from the traffic generator.
//!
//! Checksums are left zero: the parser does not verify them.

use super::props::FrameInput;
use netanalyzer_capture::gen::{self, GenConfig, Generator, Scenario};
use netanalyzer_capture::{LinkType, PcapWriter, TsResolution};

/// A target's seeds: (file name, bytes).
pub type Seeds = Vec<(String, Vec<u8>)>;

/// Every target's seeds, in a fixed order.
pub fn all() -> Vec<(&'static str, Seeds)> {
    vec![
        ("parse_frame", parse_frame_seeds()),
        ("file_reader", file_reader_seeds()),
        ("app_dns", dns_seeds()),
        ("app_http", http_seeds()),
        ("app_tls", tls_seeds()),
    ]
}

// ---------------------------------------------------------------- builders

const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];
const V4_A: [u8; 4] = [10, 0, 0, 1];
const V4_B: [u8; 4] = [192, 168, 1, 2];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_IPV6: u16 = 0x86dd;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Ethernet II with the given VLAN tags (outermost first: (TPID, TCI)).
fn eth(tags: &[(u16, u16)], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = cat(&[&MAC_B, &MAC_A]);
    for &(tpid, tci) in tags {
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&tci.to_be_bytes());
    }
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Linux cooked v1: packet type, ARPHRD, address length, 8 address bytes,
/// protocol.
fn sll(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0, 6];
    v.extend_from_slice(&MAC_A);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&proto.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type,
/// address length, 8 address bytes.
fn sll2(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = proto.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 4, 6]);
    v.extend_from_slice(&MAC_A);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

/// BSD null: address family in host (here little-endian) order.
fn null_le(af: u32, payload: &[u8]) -> Vec<u8> {
    cat(&[&af.to_le_bytes(), payload])
}

/// OpenBSD loop: address family in network order.
fn loop_be(af: u32, payload: &[u8]) -> Vec<u8> {
    cat(&[&af.to_be_bytes(), payload])
}

/// PPP in HDLC framing (address 0xff, control 0x03), then the protocol.
fn ppp(proto: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&[0xff, 0x03], &proto.to_be_bytes(), payload])
}

/// IPv4 with options (padded to 4 bytes), flags+fragment offset field.
fn ipv4(proto: u8, options: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    let ihl = 5 + opts.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut v = vec![0x40 | ihl as u8, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[0x12, 0x34]);
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&V4_A);
    v.extend_from_slice(&V4_B);
    v.extend_from_slice(&opts);
    v.extend_from_slice(payload);
    v
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&V6_A);
    v.extend_from_slice(&V6_B);
    v.extend_from_slice(payload);
    v
}

/// A generic IPv6 extension header (hop-by-hop, routing, destination
/// options) of `8 * (units + 1)` bytes.
fn ext6(next: u8, units: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![next, units];
    v.resize(8 * (usize::from(units) + 1), 0);
    // Pad options: PadN over the rest.
    if v.len() > 2 {
        v[2] = 1;
        v[3] = (v.len() - 4) as u8;
    }
    v.extend_from_slice(payload);
    v
}

/// IPv6 fragment header: offset in 8-byte units, more-fragments flag.
fn frag6(next: u8, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let off = (offset << 3) | u16::from(more);
    let mut v = vec![next, 0];
    v.extend_from_slice(&off.to_be_bytes());
    v.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn tcp(sport: u16, dport: u16, flags: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    while opts.len() % 4 != 0 {
        opts.push(1); // NOP
    }
    let off = (5 + opts.len() / 4) as u16;
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&0x0102_0304_u32.to_be_bytes());
    v.extend_from_slice(&0x0a0b_0c0d_u32.to_be_bytes());
    v.extend_from_slice(&((off << 12) | (flags & 0x1ff)).to_be_bytes());
    v.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
    v.extend_from_slice(&opts);
    v.extend_from_slice(payload);
    v
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

fn icmp(t: u8, c: u8, rest: &[u8]) -> Vec<u8> {
    cat(&[&[t, c, 0, 0], rest])
}

fn arp(op: u16) -> Vec<u8> {
    let mut v = vec![0, 1, 0x08, 0x00, 6, 4];
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&MAC_A);
    v.extend_from_slice(&V4_A);
    v.extend_from_slice(&[0; 6]);
    v.extend_from_slice(&V4_B);
    v
}

fn gre(proto: u16, with_key: bool, payload: &[u8]) -> Vec<u8> {
    let flags: u16 = if with_key { 0x2000 } else { 0 };
    let mut v = cat(&[&flags.to_be_bytes(), &proto.to_be_bytes()]);
    if with_key {
        v.extend_from_slice(&[0, 0, 0, 42]);
    }
    v.extend_from_slice(payload);
    v
}

/// A DNS message with one question (and `an` answers pointing at it).
fn dns_msg(flags: u16, name: &str, qtype: u16, answers: u16) -> Vec<u8> {
    let mut v = vec![0x12, 0x34];
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&[0, 1]);
    v.extend_from_slice(&answers.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&dns_name(name));
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&[0, 1]);
    for _ in 0..answers {
        v.extend_from_slice(&[0xc0, 12]);
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34]);
    }
    v
}

fn dns_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v
}

fn dns_header(flags: u16, qd: u16) -> Vec<u8> {
    let mut v = vec![0xab, 0xcd];
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&qd.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    v
}

fn http_get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fuzz/1.0\r\nAccept: */*\r\n\r\n")
        .into_bytes()
}

/// A TLS record holding a ClientHello with the given extensions.
fn tls_hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(32);
    body.extend_from_slice(&[0x11; 32]); // session id
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]); // cipher suites
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    for (t, data) in exts {
        ext.extend_from_slice(&t.to_be_bytes());
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// The server_name extension body for one host name.
fn sni_ext(name: &str) -> (u16, Vec<u8>) {
    let n = name.as_bytes();
    let mut v = ((n.len() + 3) as u16).to_be_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(&(n.len() as u16).to_be_bytes());
    v.extend_from_slice(n);
    (0, v)
}

fn tls_sni(name: &str) -> Vec<u8> {
    tls_hello(&[
        (0xff01, vec![0]),
        sni_ext(name),
        (0x000a, vec![0, 4, 0, 0x1d, 0, 0x17]),
        (0x0010, b"\x00\x0c\x02h2\x08http/1.1".to_vec()),
    ])
}

/// Cuts `v` to `n` bytes (or leaves it when shorter).
fn cut(v: &[u8], n: usize) -> Vec<u8> {
    v[..n.min(v.len())].to_vec()
}

// ------------------------------------------------------------ parse_frame

/// Network-layer packets (starting at the IP or ARP header) with their
/// ether type.
fn l3_packets() -> Vec<(&'static str, u16, Vec<u8>)> {
    let syn_opts = [
        2, 4, 0x05, 0xb4, // MSS 1460
        4, 2, // SACK permitted
        8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps
        1, 3, 3, 7, // NOP, window scale 7
    ];
    let dns_q = dns_msg(0x0100, "www.example.com", 1, 0);
    let dns_r = dns_msg(0x8180, "www.example.com", 1, 2);
    let mdns = dns_msg(0x0000, "_services._dns-sd._udp.local", 12, 0);
    let mut dns_tcp = (dns_q.len() as u16).to_be_bytes().to_vec();
    dns_tcp.extend_from_slice(&dns_q);
    let inner = ipv4(17, &[], 0, &udp(5000, 53, &dns_q));
    let hbh_chain = ext6(
        43,
        0,
        &ext6(
            60,
            1,
            &ext6(44, 0, &frag6(17, 0, true, &udp(5353, 5353, &mdns))),
        ),
    );
    vec![
        (
            "v4-tcp-syn-opts",
            ETH_IPV4,
            ipv4(6, &[], 0x4000, &tcp(40000, 80, 0x002, &syn_opts, &[])),
        ),
        (
            "v4-tcp-http",
            ETH_IPV4,
            ipv4(
                6,
                &[],
                0x4000,
                &tcp(
                    40001,
                    8080,
                    0x018,
                    &[],
                    &http_get("example.com", "/index.html?q=1"),
                ),
            ),
        ),
        (
            "v4-tcp-tls",
            ETH_IPV4,
            ipv4(
                6,
                &[],
                0x4000,
                &tcp(40002, 443, 0x018, &[], &tls_sni("secure.example.org")),
            ),
        ),
        (
            "v4-tcp-dns",
            ETH_IPV4,
            ipv4(6, &[], 0, &tcp(40003, 53, 0x018, &[], &dns_tcp)),
        ),
        (
            "v4-tcp-allflags",
            ETH_IPV4,
            ipv4(6, &[], 0, &tcp(1, 2, 0x1ff, &[], b"x")),
        ),
        (
            "v4-udp-dns-query",
            ETH_IPV4,
            ipv4(17, &[], 0, &udp(53000, 53, &dns_q)),
        ),
        (
            "v4-udp-dns-resp",
            ETH_IPV4,
            ipv4(17, &[], 0, &udp(53, 53000, &dns_r)),
        ),
        (
            "v4-udp-mdns",
            ETH_IPV4,
            ipv4(17, &[], 0, &udp(5353, 5353, &mdns)),
        ),
        (
            "v4-icmp-echo",
            ETH_IPV4,
            ipv4(1, &[], 0, &icmp(8, 0, &[0, 1, 0, 1, 0xaa, 0xbb])),
        ),
        (
            "v4-icmp-unreach",
            ETH_IPV4,
            ipv4(1, &[], 0, &icmp(3, 3, &cat(&[&[0; 4], &cut(&inner, 28)]))),
        ),
        (
            "v4-igmp",
            ETH_IPV4,
            ipv4(2, &[0x94, 0x04, 0, 0], 0, &[0x16, 0, 0, 0, 239, 1, 2, 3]),
        ),
        (
            "v4-gre",
            ETH_IPV4,
            ipv4(47, &[], 0, &gre(0x0800, true, &inner)),
        ),
        (
            "v4-opts-rr",
            ETH_IPV4,
            ipv4(
                17,
                &[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0],
                0,
                &udp(1, 2, b"hi"),
            ),
        ),
        (
            "v4-frag-first",
            ETH_IPV4,
            ipv4(17, &[], 0x2000, &udp(5000, 53, &dns_q)),
        ),
        (
            "v4-frag-later",
            ETH_IPV4,
            ipv4(17, &[], 185, b"later fragment bytes"),
        ),
        ("v4-proto-other", ETH_IPV4, ipv4(132, &[], 0, &[0; 12])),
        (
            "v6-tcp-syn",
            ETH_IPV6,
            ipv6(6, &tcp(40000, 443, 0x002, &syn_opts, &[])),
        ),
        ("v6-udp-dns", ETH_IPV6, ipv6(17, &udp(40000, 53, &dns_q))),
        (
            "v6-icmp6-echo",
            ETH_IPV6,
            ipv6(58, &icmp(128, 0, &[0, 1, 0, 1])),
        ),
        (
            "v6-icmp6-ns",
            ETH_IPV6,
            ipv6(58, &icmp(135, 0, &cat(&[&[0; 4], &V6_B]))),
        ),
        ("v6-ext-chain", ETH_IPV6, ipv6(0, &hbh_chain)),
        (
            "v6-frag-later",
            ETH_IPV6,
            ipv6(44, &frag6(17, 100, false, b"tail bytes")),
        ),
        (
            "v6-hbh-http",
            ETH_IPV6,
            ipv6(
                0,
                &ext6(
                    6,
                    0,
                    &tcp(40005, 80, 0x018, &[], &http_get("[2001:db8::2]", "/")),
                ),
            ),
        ),
        ("v6-nonext", ETH_IPV6, ipv6(59, &[])),
        ("arp-request", ETH_ARP, arp(1)),
        ("arp-reply", ETH_ARP, arp(2)),
    ]
}

/// Wraps a network-layer packet in every link type that can carry it.
fn wrap_all(ether_type: u16, l3: &[u8]) -> Vec<(&'static str, LinkType, Vec<u8>)> {
    let mut v = vec![
        ("eth", LinkType::ETHERNET, eth(&[], ether_type, l3)),
        (
            "vlan",
            LinkType::ETHERNET,
            eth(&[(0x8100, 0x2064)], ether_type, l3),
        ),
        (
            "qinq",
            LinkType::ETHERNET,
            eth(&[(0x88a8, 0x0ffe), (0x8100, 0x0007)], ether_type, l3),
        ),
        ("sll", LinkType::LINUX_SLL, sll(ether_type, l3)),
        ("sll2", LinkType::LINUX_SLL2, sll2(ether_type, l3)),
    ];
    let (af_null, af_loop, ppp_proto, raw_ver) = match ether_type {
        ETH_IPV4 => (2, 2, 0x0021, LinkType::IPV4),
        ETH_IPV6 => (30, 24, 0x0057, LinkType::IPV6),
        _ => return v,
    };
    v.extend([
        ("raw", LinkType::RAW, l3.to_vec()),
        ("rawold", LinkType::RAW_OLD, l3.to_vec()),
        ("rawver", raw_ver, l3.to_vec()),
        ("null", LinkType::NULL, null_le(af_null, l3)),
        ("loop", LinkType::LOOP, loop_be(af_loop, l3)),
        ("ppp", LinkType::PPP, ppp(ppp_proto, l3)),
    ]);
    v
}

fn frame_seed(out: &mut Seeds, name: String, link: LinkType, truncated: bool, frame: &[u8]) {
    let data = FrameInput::encode(link, truncated, frame).expect("link type in LINKS");
    out.push((name, data));
}

/// Frames whose header fields lie: bad lengths, offsets and versions.
fn bogus_frames() -> Vec<(&'static str, LinkType, Vec<u8>)> {
    let udp_dns = udp(5000, 53, &dns_msg(0x0100, "a.b", 1, 0));
    let good4 = ipv4(17, &[], 0, &udp_dns);
    let with = |mut v: Vec<u8>, at: usize, bytes: &[u8]| {
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    let tcp_http = tcp(40000, 80, 0x18, &[], &http_get("h", "/"));
    let good_tcp4 = ipv4(6, &[], 0, &tcp_http);
    let mut deep6 = udp(1, 2, b"deep");
    for _ in 0..40 {
        deep6 = ext6(if deep6.len() == 12 { 17 } else { 60 }, 0, &deep6);
    }
    let ptr_loop = cat(&[&dns_header(0x0100, 1), &[0xc0, 12, 0, 1, 0, 1]]);
    vec![
        ("v4-ihl-4", LinkType::IPV4, with(good4.clone(), 0, &[0x44])),
        ("v4-ihl-15", LinkType::IPV4, with(good4.clone(), 0, &[0x4f])),
        (
            "v4-version-5",
            LinkType::IPV4,
            with(good4.clone(), 0, &[0x55]),
        ),
        (
            "v4-totlen-max",
            LinkType::IPV4,
            with(good4.clone(), 2, &[0xff, 0xff]),
        ),
        (
            "v4-totlen-short",
            LinkType::IPV4,
            with(good4.clone(), 2, &[0, 10]),
        ),
        (
            "v4-totlen-zero",
            LinkType::IPV4,
            with(good4.clone(), 2, &[0, 0]),
        ),
        (
            "v4-udp-len-3",
            LinkType::IPV4,
            with(good4.clone(), 24, &[0, 3]),
        ),
        (
            "v4-udp-len-max",
            LinkType::IPV4,
            with(good4.clone(), 24, &[0xff, 0xff]),
        ),
        (
            "v4-tcp-off-2",
            LinkType::IPV4,
            with(good_tcp4.clone(), 32, &[0x20]),
        ),
        (
            "v4-tcp-off-15",
            LinkType::IPV4,
            with(good_tcp4.clone(), 32, &[0xf0]),
        ),
        (
            "v4-opt-len-0",
            LinkType::IPV4,
            ipv4(17, &[7, 0, 4, 0], 0, &udp(1, 2, &[])),
        ),
        ("v4-trailer", LinkType::IPV4, cat(&[&good4, &[0xee; 18]])),
        (
            "v4-gre-nested",
            LinkType::IPV4,
            ipv4(
                47,
                &[],
                0,
                &gre(
                    0x0800,
                    false,
                    &ipv4(
                        47,
                        &[],
                        0,
                        &gre(0x86dd, true, &ipv6(58, &icmp(128, 0, &[]))),
                    ),
                ),
            ),
        ),
        (
            "v4-gre-bad-flags",
            LinkType::IPV4,
            ipv4(47, &[], 0, &[0xff, 0xff, 0x08, 0x00, 1, 2]),
        ),
        (
            "v4-dns-bitstring-empty-name",
            LinkType::IPV4,
            ipv4(17, &[], 0, &udp(5000, 53, &DNS_EMPTY_BITSTRING_NAME)),
        ),
        (
            "v4-dns-ptr-loop",
            LinkType::IPV4,
            ipv4(17, &[], 0, &udp(53, 53, &ptr_loop)),
        ),
        (
            "v4-dns-label-cut",
            LinkType::IPV4,
            ipv4(
                17,
                &[],
                0,
                &udp(53, 53, &cat(&[&dns_header(0, 1), &[63, b'a', b'b']])),
            ),
        ),
        (
            "v4-http-no-crlf",
            LinkType::IPV4,
            ipv4(6, &[], 0, &tcp(1, 80, 0x18, &[], b"GET /only-a-path")),
        ),
        (
            "v4-tls-sni-overlong",
            LinkType::IPV4,
            ipv4(
                6,
                &[],
                0,
                &tcp(
                    1,
                    443,
                    0x18,
                    &[],
                    &tls_hello(&[(0, vec![0, 9, 0, 0, 200, b'a', b'b'])]),
                ),
            ),
        ),
        (
            "v6-version-4",
            LinkType::IPV6,
            with(ipv6(17, &udp_dns), 0, &[0x40]),
        ),
        (
            "v6-paylen-max",
            LinkType::IPV6,
            with(ipv6(17, &udp_dns), 4, &[0xff, 0xff]),
        ),
        (
            "v6-paylen-zero",
            LinkType::IPV6,
            with(ipv6(17, &udp_dns), 4, &[0, 0]),
        ),
        (
            "v6-ext-len-beyond",
            LinkType::IPV6,
            ipv6(0, &[17, 200, 1, 0, 0, 0, 0, 0]),
        ),
        ("v6-ext-deep", LinkType::IPV6, ipv6(60, &deep6)),
        ("v6-frag-cut", LinkType::IPV6, ipv6(44, &[17, 0, 0])),
        ("null-af-unknown", LinkType::NULL, null_le(99, &good4)),
        ("null-af-be", LinkType::NULL, loop_be(2, &good4)),
        (
            "ppp-no-hdlc",
            LinkType::PPP,
            cat(&[&[0x00, 0x21], &good4[..]]),
        ),
        ("ppp-proto-lcp", LinkType::PPP, ppp(0xc021, &[1, 1, 0, 4])),
        (
            "eth-8023-len",
            LinkType::ETHERNET,
            eth(&[], 0x0040, &[0xaa, 0xaa, 3, 0, 0, 0, 8, 0]),
        ),
        (
            "eth-vlan-cut",
            LinkType::ETHERNET,
            cat(&[&MAC_B, &MAC_A, &[0x81, 0x00, 0x00]]),
        ),
        (
            "eth-vlan-stack-8",
            LinkType::ETHERNET,
            eth(&[(0x8100, 1); 8], ETH_IPV4, &good4),
        ),
        (
            "eth-unknown-type",
            LinkType::ETHERNET,
            eth(&[], 0x88cc, &[2, 7, 4, 0, 0, 0, 0, 0, 0]),
        ),
        (
            "sll-unknown-proto",
            LinkType::LINUX_SLL,
            sll(0x0004, &[0x42; 20]),
        ),
        ("raw-version-0", LinkType::RAW, vec![0x00; 40]),
        (
            "unsupported-link",
            LinkType(147),
            eth(&[], ETH_IPV4, &good4),
        ),
    ]
}

fn parse_frame_seeds() -> Seeds {
    let mut out = Seeds::new();
    for (i, (name, ether_type, l3)) in l3_packets().into_iter().enumerate() {
        // Plain and VLAN-tagged Ethernet for every packet; every other link
        // type that can carry it for a few, one more (in turn) for the rest.
        let wraps = wrap_all(ether_type, &l3);
        let full = matches!(name, "v4-tcp-http" | "v6-ext-chain" | "arp-request");
        for (j, (lname, link, frame)) in wraps.iter().enumerate() {
            if full || j < 2 || j == 2 + i % (wraps.len() - 2) {
                frame_seed(
                    &mut out,
                    format!("craft-{lname}-{name}"),
                    *link,
                    false,
                    frame,
                );
            }
        }
        // Cut short by the snaplen at header boundaries (VLAN-tagged
        // Ethernet, wire_len > cap_len): every one for a few packets.
        let vlan = &wraps[1].2;
        let cuts: &[usize] = if i % 4 == 0 {
            &[0, 6, 13, 16, 17, 20, 30, 38, 40, 50, 58, 66, 78]
        } else {
            &[17, 30, 40, 58]
        };
        for &n in cuts {
            if n < vlan.len() {
                frame_seed(
                    &mut out,
                    format!("craft-cut{n}-{name}"),
                    LinkType::ETHERNET,
                    true,
                    &cut(vlan, n),
                );
            }
        }
    }
    for (name, link, frame) in bogus_frames() {
        frame_seed(&mut out, format!("craft-bogus-{name}"), link, false, &frame);
    }
    for (i, (link, frame)) in generated_frames().into_iter().enumerate() {
        frame_seed(&mut out, format!("gen-{i:03}"), link, false, &frame);
    }
    out
}

// ------------------------------------------------------------ file_reader

/// A classic pcap with one link type, any byte order and resolution.
fn pcap(big_endian: bool, nanos: bool, link: u32, frames: &[(u64, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut v = w32(magic).to_vec();
    v.extend_from_slice(&w16(2));
    v.extend_from_slice(&w16(4));
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&w32(65535));
    v.extend_from_slice(&w32(link));
    for &(ts_ns, wire, data) in frames {
        let sub = if nanos {
            ts_ns % 1_000_000_000
        } else {
            ts_ns % 1_000_000_000 / 1000
        };
        v.extend_from_slice(&w32((ts_ns / 1_000_000_000) as u32));
        v.extend_from_slice(&w32(sub as u32));
        v.extend_from_slice(&w32(data.len() as u32));
        v.extend_from_slice(&w32(wire));
        v.extend_from_slice(data);
    }
    v
}

/// A pcapng writer for seeds: blocks in either byte order.
struct Ng {
    be: bool,
    buf: Vec<u8>,
}

impl Ng {
    fn new(be: bool) -> Self {
        let mut ng = Ng {
            be,
            buf: Vec::new(),
        };
        let mut body = ng.u32(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&ng.u16(1));
        body.extend_from_slice(&ng.u16(0));
        body.extend_from_slice(&[0xff; 8]); // section length: unknown
        ng.block(0x0a0d_0d0a, &body);
        ng
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn block(&mut self, kind: u32, body: &[u8]) -> &mut Self {
        let mut b = body.to_vec();
        while b.len() % 4 != 0 {
            b.push(0);
        }
        let len = (b.len() + 12) as u32;
        let (k, l) = (self.u32(kind), self.u32(len));
        self.buf.extend_from_slice(&k);
        self.buf.extend_from_slice(&l);
        self.buf.extend_from_slice(&b);
        self.buf.extend_from_slice(&l);
        self
    }

    /// An option TLV, padded.
    fn opt(&self, code: u16, val: &[u8]) -> Vec<u8> {
        let mut v = self.u16(code).to_vec();
        v.extend_from_slice(&self.u16(val.len() as u16));
        v.extend_from_slice(val);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn idb(&mut self, link: u16, tsresol: Option<u8>, name: Option<&str>) -> &mut Self {
        let mut body = self.u16(link).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32(0));
        if let Some(n) = name {
            body.extend(self.opt(2, n.as_bytes()));
        }
        if let Some(r) = tsresol {
            body.extend(self.opt(9, &[r]));
        }
        if name.is_some() || tsresol.is_some() {
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.block(1, &body)
    }

    fn epb(&mut self, iface: u32, ts: u64, wire: u32, data: &[u8]) -> &mut Self {
        let mut body = self.u32(iface).to_vec();
        body.extend_from_slice(&self.u32((ts >> 32) as u32));
        body.extend_from_slice(&self.u32(ts as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(wire));
        body.extend_from_slice(data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        body.extend(self.opt(1, b"fuzz comment"));
        body.extend_from_slice(&[0, 0, 0, 0]);
        self.block(6, &body)
    }

    fn spb(&mut self, wire: u32, data: &[u8]) -> &mut Self {
        let mut body = self.u32(wire).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    fn bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

fn file_reader_seeds() -> Seeds {
    let l3 = l3_packets();
    let frame = |i: usize| eth(&[], l3[i].1, &l3[i].2);
    let f0 = frame(0);
    let f1 = frame(5);
    let f2 = frame(20);
    let raw = l3[1].2.clone();
    let ts = 1_700_000_000_123_456_789u64;
    let three: [(u64, u32, &[u8]); 3] = [
        (ts, f0.len() as u32, &f0),
        (ts + 1_000, f1.len() as u32, &f1),
        (ts + 2_000_000, f2.len() as u32 + 100, &f2),
    ];
    let mut out = Seeds::new();
    let mut add = |name: &str, data: Vec<u8>| out.push((format!("craft-{name}"), data));

    let le_us = pcap(false, false, 1, &three);
    add("pcap-le-us", le_us.clone());
    add("pcap-be-ns", pcap(true, true, 1, &three));
    add(
        "pcap-le-ns-raw",
        pcap(false, true, 101, &[(ts, raw.len() as u32, &raw)]),
    );
    add(
        "pcap-be-us-null",
        pcap(true, false, 0, &[(ts, 0, &null_le(2, &raw))]),
    );
    add("pcap-header-only", pcap(false, false, 1, &[]));
    add("pcap-cut-header", cut(&le_us, 20));
    add("pcap-cut-record-hdr", cut(&le_us, 24 + 10));
    add("pcap-cut-record-data", cut(&le_us, 24 + 16 + 20));
    let mut huge = le_us.clone();
    huge[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    add("pcap-huge-caplen", huge);
    let mut big_wire = le_us.clone();
    big_wire[24 + 12..24 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    add("pcap-huge-wirelen", big_wire);
    let mut bad_usec = le_us.clone();
    bad_usec[24 + 4..24 + 8].copy_from_slice(&2_000_000u32.to_le_bytes());
    add("pcap-usec-overflow", bad_usec);
    add("empty", Vec::new());
    add("garbage", b"this is not a capture file at all".to_vec());

    let mut ng = Ng::new(false);
    ng.idb(1, None, Some("eth0"))
        .idb(101, Some(9), Some("tun0"))
        .idb(113, Some(0x80 | 20), None)
        .epb(0, ts / 1000, f0.len() as u32, &f0)
        .epb(1, ts, raw.len() as u32, &raw)
        .epb(2, 1 << 20, 0, &sll(ETH_IPV4, &raw))
        .block(0x0bad_cafe, b"unknown block type")
        .block(
            4,
            &[1, 0, 8, 0, 10, 0, 0, 1, b'a', b'.', b'b', 0, 0, 0, 0, 0],
        )
        .epb(0, ts / 1000 + 5, f1.len() as u32, &f1);
    let le_ng = ng.bytes();
    add("pcapng-le-multi-iface", le_ng.clone());
    let mut ng = Ng::new(true);
    ng.idb(1, None, None)
        .spb(f2.len() as u32, &f2)
        .spb(5000, &f0)
        .epb(0, ts / 1000, f1.len() as u32, &f1);
    add("pcapng-be-spb", ng.bytes());
    let mut ng = Ng::new(false);
    ng.idb(1, None, None).epb(0, 0, 10, &f0[..10]);
    let second_section = Ng::new(true);
    let mut two = ng.bytes();
    two.extend(second_section.bytes());
    let mut tail = Ng::new(true);
    tail.buf.clear();
    tail.idb(228, Some(3), None)
        .epb(0, 1234, raw.len() as u32, &raw);
    two.extend(tail.bytes());
    add("pcapng-two-sections", two);
    add("pcapng-cut-block", cut(&le_ng, le_ng.len() - 7));
    add("pcapng-cut-shb", cut(&le_ng, 20));
    let mut bad_len = le_ng.clone();
    bad_len[4..8].copy_from_slice(&13u32.to_le_bytes());
    add("pcapng-shb-len-13", bad_len);
    let mut ng = Ng::new(false);
    ng.epb(0, 0, 10, &f0[..10]);
    add("pcapng-epb-no-idb", ng.bytes());
    let mut ng = Ng::new(false);
    ng.idb(1, None, None).epb(7, 0, 10, &f0[..10]);
    add("pcapng-epb-bad-iface", ng.bytes());
    let mut ng = Ng::new(false);
    ng.idb(1, None, None);
    let mut epb_huge = ng.bytes();
    let at = epb_huge.len();
    ng.epb(0, 0, f0.len() as u32, &f0);
    epb_huge = {
        let mut b = ng.bytes();
        b[at + 20..at + 24].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
        b
    };
    add("pcapng-epb-caplen-beyond-block", epb_huge);

    for (i, data) in generated_files().into_iter().enumerate() {
        out.push((format!("gen-file-{i}"), data));
    }
    out
}

// --------------------------------------------------------- app decoders

/// A DNS query whose name is a pointer into the header, at a zero-bit
/// bit-string label (`41 00`): tshark prints the name as `""`.
pub const DNS_EMPTY_BITSTRING_NAME: [u8; 18] = [
    0xff, 0xff, 0x41, 0x41, 0xcd, 0x00, 0x01, 0x61, 0x41, 0x00, 0x0c, 0x00, // header
    0xc0, 0x08, // name: pointer to offset 8
    0x00, 0x00, 0x00, 0x00, // type, class
];

fn dns_seeds() -> Seeds {
    let mut long = Vec::new();
    for _ in 0..5 {
        long.push(63u8);
        long.extend_from_slice(&[b'x'; 63]);
    }
    long.push(0);
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("query-a", dns_msg(0x0100, "www.example.com", 1, 0)),
        ("response-2an", dns_msg(0x8180, "www.example.com", 1, 2)),
        ("mdns-ptr", dns_msg(0x0000, "_http._tcp.local", 12, 0)),
        ("root", dns_msg(0x0100, "", 2, 0)),
        ("no-question", dns_header(0x8180, 0)),
        ("short-header", vec![0x12, 0x34, 0x01]),
        (
            "ptr-self-loop",
            cat(&[&dns_header(0x0100, 1), &[0xc0, 12, 0, 1, 0, 1]]),
        ),
        (
            "ptr-forward",
            cat(&[
                &dns_header(0x0100, 1),
                &[
                    3, b'w', b'w', b'w', 0xc0, 20, 0, 1, 0, 1, 3, b'c', b'o', b'm', 0,
                ],
            ]),
        ),
        (
            "ptr-beyond",
            cat(&[&dns_header(0x0100, 1), &[0xff, 0xff, 0, 1, 0, 1]]),
        ),
        (
            "ptr-ping-pong",
            cat(&[
                &dns_header(0x0100, 1),
                &[1, b'a', 0xc0, 16, 0, 1, 1, b'b', 0xc0, 12],
            ]),
        ),
        (
            "too-long",
            cat(&[&dns_header(0x0100, 1), &long, &[0, 1, 0, 1]]),
        ),
        (
            "label-ext-0x40",
            cat(&[&dns_header(0x0100, 1), &[0x41, 0, 0, 1, 0, 1]]),
        ),
        (
            "label-cut",
            cat(&[&dns_header(0x0100, 1), &[20, b'a', b'b']]),
        ),
        ("type-cut", cat(&[&dns_header(0x0100, 1), &[1, b'a', 0, 0]])),
        (
            "bitstring-pointer-empty-name",
            DNS_EMPTY_BITSTRING_NAME.to_vec(),
        ),
        (
            "bitstring-labels",
            cat(&[
                &dns_header(0x0100, 1),
                &[0x41, 12, 0xab, 0xc0, 0x41, 0, 0x55, 1, b'x', 0, 0, 1, 0, 1],
            ]),
        ),
        (
            "escapes",
            cat(&[
                &dns_header(0x0100, 1),
                &[
                    6, 0, b'\t', 0x7f, b'\\', 0xc3, 0xa9, 4, 0xf0, 0x9f, 0x98, 0x80, 3, 0xff, 0xfe,
                    b'.', 0, 0, 1, 0, 1,
                ],
            ]),
        ),
    ];
    seeds
        .into_iter()
        .map(|(n, d)| (format!("craft-{n}"), d))
        .collect()
}

fn http_seeds() -> Seeds {
    let seeds: Vec<(&str, &[u8])> = vec![
        ("get", b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        ("post-body", b"POST /api/v1/items?x=1 HTTP/1.0\r\nContent-Length: 5\r\nHost: api.example.com:8080\r\n\r\nhello"),
        ("head-no-host", b"HEAD / HTTP/1.1\r\nUser-Agent: x\r\n\r\n"),
        ("options-star", b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
        ("host-case-ws", b"GET / HTTP/1.1\r\nhOsT:    spaced.example   \r\n\r\n"),
        ("host-empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("lf-only", b"GET /lf HTTP/1.1\nHost: lf.example\n\n"),
        ("line-cut", b"GET /never-ends"),
        ("header-cut", b"PUT /x HTTP/1.1\r\nHost: cut.exa"),
        ("http09", b"GET /\r\n"),
        ("response", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("lowercase-method", b"get / HTTP/1.1\r\n\r\n"),
        ("no-version", b"GET /a b c\r\nHost: x\r\n\r\n"),
        ("utf8-path", "GET /caf\u{e9} HTTP/1.1\r\nHost: xn--caf-dma\r\n\r\n".as_bytes()),
        ("binary-path", b"GET /\xff\xfe HTTP/1.1\r\nHost: \xc3\x28\r\n\r\n"),
        ("empty", b""),
        ("space-only", b"GET  HTTP/1.1\r\n\r\n"),
    ];
    seeds
        .into_iter()
        .map(|(n, d)| (format!("craft-{n}"), d.to_vec()))
        .collect()
}

fn tls_seeds() -> Seeds {
    let full = tls_sni("www.example.com");
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("hello-sni", full.clone()),
        ("hello-no-ext", tls_hello(&[])),
        ("hello-no-sni", tls_hello(&[(0x000a, vec![0, 2, 0, 0x1d])])),
        (
            "hello-two-names",
            tls_hello(&[(0, vec![0, 10, 0, 0, 1, b'a', 0, 0, 3, b'b', b'c', b'd'])]),
        ),
        ("hello-sni-empty", tls_hello(&[sni_ext("")])),
        (
            "hello-sni-binary",
            tls_hello(&[sni_ext("\u{7f}\u{0}x\u{e9}")]),
        ),
        (
            "hello-sni-list-beyond",
            tls_hello(&[(0, vec![0xff, 0xff, 0, 0, 3, b'a'])]),
        ),
        (
            "hello-ext-len-beyond",
            tls_hello(&[(0x0017, vec![0; 3])])
                .into_iter()
                .chain([0, 0, 0xff, 0xff])
                .collect(),
        ),
        ("cut-in-random", cut(&full, 20)),
        ("cut-in-sni", cut(&full, full.len() - 30)),
        (
            "record-not-handshake",
            cat(&[&[0x17, 0x03, 0x03, 0, 5], b"hello"]),
        ),
        (
            "handshake-not-hello",
            cat(&[&[0x16, 0x03, 0x03, 0, 4, 2, 0, 0, 0]]),
        ),
        (
            "ssl2-hello",
            vec![
                0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
            ],
        ),
        ("version-bogus", {
            let mut v = full.clone();
            v[1] = 0x09;
            v
        }),
        ("session-id-beyond", {
            let mut v = full.clone();
            v[43] = 0xff;
            v
        }),
        ("empty", Vec::new()),
    ];
    seeds
        .into_iter()
        .map(|(n, d)| (format!("craft-{n}"), d))
        .collect()
}

// ------------------------------------------------------------- generator

/// Runs the generator on one scenario and keeps every `step`-th frame.
fn gen_frames(scenario: Scenario, packets: u64, step: usize, seed: u64) -> Vec<(u64, Vec<u8>)> {
    let cfg = GenConfig {
        packets,
        seed,
        scenarios: vec![scenario],
        // More IPv6 and VLAN than the default, so few frames cover them.
        ipv6_share: 0.3,
        vlan_share: 0.3,
        concurrency: 8,
        ..GenConfig::default()
    };
    let mut g = Generator::new(&cfg).expect("valid generator config");
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Some(f) = g.next_frame() {
        if i % step == 0 {
            out.push((f.ts_ns, f.data.to_vec()));
        }
        i += 1;
    }
    out
}

/// Frames from the traffic generator: a sample of normal traffic and a
/// few frames of each attack.
fn generated_frames() -> Vec<(LinkType, Vec<u8>)> {
    let mut frames = gen_frames(Scenario::Normal, 480, 6, 7);
    for s in Scenario::ALL.into_iter().filter(|&s| s != Scenario::Normal) {
        frames.extend(gen_frames(s, 40, 10, 7));
    }
    frames
        .into_iter()
        .map(|(_, f)| (LinkType::ETHERNET, f))
        .collect()
}

/// Small whole files from the traffic generator: its own pcap output,
/// the same frames through [`PcapWriter`] at microsecond resolution, and
/// in a pcapng with two interfaces.
fn generated_files() -> Vec<Vec<u8>> {
    let cfg = GenConfig {
        packets: 12,
        seed: 11,
        scenarios: vec![
            Scenario::Normal,
            Scenario::SynFlood,
            Scenario::DnsAmplification,
        ],
        vlan_share: 0.3,
        ipv6_share: 0.3,
        ..GenConfig::default()
    };
    let (mut pcap_out, mut labels) = (Vec::new(), Vec::new());
    gen::generate(&cfg, &mut pcap_out, &mut labels).expect("generate");

    let frames = gen_frames(Scenario::Normal, 10, 1, 12);
    let mut w = PcapWriter::with_options(Vec::new(), LinkType::ETHERNET, TsResolution::Micros)
        .expect("pcap header");
    for (ts, f) in &frames {
        w.write_frame(*ts, f.len() as u32, f).expect("frame");
    }
    let micros = w.into_inner().expect("flush");

    let mut ng = Ng::new(false);
    ng.idb(1, Some(9), Some("eth0")).idb(1, None, Some("eth1"));
    for (i, (ts, f)) in frames.iter().enumerate() {
        let iface = (i % 2) as u32;
        let ticks = if iface == 0 { *ts } else { ts / 1000 };
        ng.epb(iface, ticks, f.len() as u32, f);
    }
    vec![pcap_out, micros, ng.bytes()]
}
