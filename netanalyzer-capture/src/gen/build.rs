//! Frame builders: Ethernet (optionally 802.1Q), IPv4/IPv6, TCP, UDP,
//! ICMP/ICMPv6 and ARP, written into a caller-owned, reused `Vec<u8>`.
//!
//! A frame is built in order (link, network, transport header, payload),
//! then [`ip_finish`] patches lengths and every checksum, then [`pad`] adds
//! Ethernet padding. Flood templates patch a few fields of a finished frame
//! and call [`ip_finish`] again.

/// EtherType of IPv4.
pub(crate) const ETH_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub(crate) const ETH_IPV6: u16 = 0x86dd;
/// EtherType of ARP.
pub(crate) const ETH_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q tag.
pub(crate) const ETH_VLAN: u16 = 0x8100;

/// IP protocol numbers.
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ICMPV6: u8 = 58;

/// TCP flag bits.
pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const ACK: u8 = 0x10;

/// Minimum Ethernet frame length without the FCS.
pub(crate) const ETH_MIN: usize = 60;

/// An IP address of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// The link layer of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub src: [u8; 6],
    pub dst: [u8; 6],
    /// An 802.1Q VLAN id (12 bits), or none.
    pub vlan: Option<u16>,
}

impl Link {
    /// The same link in the other direction.
    pub(crate) fn reverse(self) -> Link {
        Link {
            src: self.dst,
            dst: self.src,
            vlan: self.vlan,
        }
    }
}

/// The network layer of one packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Net {
    pub src: Ip,
    pub dst: Ip,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification (IPv6: ignored).
    pub ident: u16,
    /// IPv6 flow label (20 bits; IPv4: ignored).
    pub flow_label: u32,
}

/// Writes the Ethernet header (with a VLAN tag when `link.vlan` is set).
#[inline]
pub(crate) fn eth(buf: &mut Vec<u8>, link: &Link, ether_type: u16) {
    buf.extend_from_slice(&link.dst);
    buf.extend_from_slice(&link.src);
    if let Some(vid) = link.vlan {
        buf.extend_from_slice(&ETH_VLAN.to_be_bytes());
        buf.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    buf.extend_from_slice(&ether_type.to_be_bytes());
}

/// The EtherType for a network header.
#[inline]
pub(crate) fn ether_type_of(ip: Ip) -> u16 {
    match ip {
        Ip::V4(_) => ETH_IPV4,
        Ip::V6(_) => ETH_IPV6,
    }
}

/// Writes Ethernet plus the IP header for `proto` with zero lengths and
/// checksum; returns the offset of the IP header for [`ip_finish`].
/// Both addresses of `net` must be of the same family.
#[inline]
pub(crate) fn eth_ip(buf: &mut Vec<u8>, link: &Link, net: &Net, proto: u8) -> usize {
    eth(buf, link, ether_type_of(net.src));
    let l3 = buf.len();
    match (net.src, net.dst) {
        (Ip::V4(s), Ip::V4(d)) => {
            let df = if proto == PROTO_TCP { 0x40 } else { 0x00 };
            buf.extend_from_slice(&[0x45, 0x00, 0, 0]);
            buf.extend_from_slice(&net.ident.to_be_bytes());
            buf.extend_from_slice(&[df, 0x00, net.ttl, proto, 0, 0]);
            buf.extend_from_slice(&s);
            buf.extend_from_slice(&d);
        }
        (s, d) => {
            let fl = net.flow_label & 0x000f_ffff;
            buf.extend_from_slice(&(0x6000_0000u32 | fl).to_be_bytes());
            buf.extend_from_slice(&[0, 0, proto, net.ttl]);
            buf.extend_from_slice(&v6_bytes(s));
            buf.extend_from_slice(&v6_bytes(d));
        }
    }
    l3
}

/// An address as 16 bytes (IPv4-mapped for a v4 address, which the
/// builders never mix with v6; kept total for robustness).
fn v6_bytes(ip: Ip) -> [u8; 16] {
    match ip {
        Ip::V6(a) => a,
        Ip::V4(a) => {
            let mut b = [0u8; 16];
            b[10] = 0xff;
            b[11] = 0xff;
            b[12..].copy_from_slice(&a);
            b
        }
    }
}

/// Writes a TCP header with zero checksum. `opts` must be a multiple of 4
/// bytes long (at most 40).
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tcp(
    buf: &mut Vec<u8>,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    opts: &[u8],
) {
    debug_assert!(opts.len() % 4 == 0 && opts.len() <= 40);
    let doff = ((20 + opts.len()) / 4) as u8;
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ack.to_be_bytes());
    buf.extend_from_slice(&[doff << 4, flags]);
    buf.extend_from_slice(&window.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    buf.extend_from_slice(opts);
}

/// Writes a UDP header with zero length and checksum (patched later).
#[inline]
pub(crate) fn udp(buf: &mut Vec<u8>, sport: u16, dport: u16) {
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
}

/// Writes an ICMP/ICMPv6 header: type, code, zero checksum, then the four
/// "rest of header" bytes (id and sequence for echo).
#[inline]
pub(crate) fn icmp(buf: &mut Vec<u8>, typ: u8, code: u8, rest: [u8; 4]) {
    buf.extend_from_slice(&[typ, code, 0, 0]);
    buf.extend_from_slice(&rest);
}

/// Completes an IP packet starting at `l3` whose bytes end at `end`
/// (exclusive; padding after it is not part of the packet): sets the IP
/// length fields, the IPv4 header checksum and the TCP/UDP/ICMP/ICMPv6
/// checksum. Existing checksum values are overwritten.
pub(crate) fn ip_finish(buf: &mut [u8], l3: usize, end: usize) {
    let ipv4 = buf[l3] >> 4 == 4;
    let (proto, l4, pseudo) = if ipv4 {
        let total = (end - l3) as u16;
        buf[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
        buf[l3 + 10] = 0;
        buf[l3 + 11] = 0;
        let c = checksum(&buf[l3..l3 + 20], 0);
        buf[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        let proto = buf[l3 + 9];
        let l4 = l3 + 20;
        let len = (end - l4) as u64;
        let pseudo = sum_words(&buf[l3 + 12..l3 + 20]) + u64::from(proto) + len;
        (proto, l4, pseudo)
    } else {
        let l4 = l3 + 40;
        let plen = (end - l4) as u16;
        buf[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
        let proto = buf[l3 + 6];
        let pseudo = sum_words(&buf[l3 + 8..l3 + 40]) + u64::from(proto) + u64::from(plen);
        (proto, l4, pseudo)
    };
    let at = match proto {
        PROTO_TCP => 16,
        PROTO_UDP => {
            let len = (end - l4) as u16;
            buf[l4 + 4..l4 + 6].copy_from_slice(&len.to_be_bytes());
            6
        }
        PROTO_ICMP | PROTO_ICMPV6 => 2,
        _ => return,
    };
    buf[l4 + at] = 0;
    buf[l4 + at + 1] = 0;
    let initial = if proto == PROTO_ICMP { 0 } else { pseudo };
    let mut c = checksum(&buf[l4..end], initial);
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    buf[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Pads a frame with zeros to the Ethernet minimum.
#[inline]
pub(crate) fn pad(buf: &mut Vec<u8>) {
    if buf.len() < ETH_MIN {
        buf.resize(ETH_MIN, 0);
    }
}

/// Writes a complete Ethernet ARP frame (request: `tha` zero, `dst` broadcast).
pub(crate) fn arp(
    buf: &mut Vec<u8>,
    link: &Link,
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) {
    eth(buf, link, ETH_ARP);
    buf.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]);
    buf.extend_from_slice(&op.to_be_bytes());
    buf.extend_from_slice(&sha);
    buf.extend_from_slice(&spa);
    buf.extend_from_slice(&tha);
    buf.extend_from_slice(&tpa);
    pad(buf);
}

/// Sum of big-endian 32-bit words (plus a trailing partial word, zero
/// padded) without folding. Summing 32-bit words and folding afterwards
/// gives the same one's-complement result as 16-bit words (RFC 1071).
#[inline]
fn sum_words(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    let mut s: u64 = 0;
    for c in &mut chunks {
        s += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    s + u64::from(u32::from_be_bytes(tail))
}

/// The Internet checksum of `data` plus an unfolded `initial` sum.
#[inline]
pub(crate) fn checksum(data: &[u8], initial: u64) -> u16 {
    let mut s = sum_words(data) + initial;
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold16(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
            s += w;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn checksum_matches_16bit_reference() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 37 % 251) as u8).collect();
        for n in [0, 1, 2, 3, 5, 20, 999, 1001] {
            assert_eq!(checksum(&data[..n], 0), fold16(&data[..n]), "len {n}");
        }
    }

    #[test]
    fn tcp_ipv4_frame_parses_and_verifies() {
        let mut buf = Vec::new();
        let link = Link {
            src: [2, 0, 0, 0, 0, 1],
            dst: [2, 0, 0, 0, 0, 2],
            vlan: Some(20),
        };
        let net = Net {
            src: Ip::V4([192, 168, 1, 10]),
            dst: Ip::V4([203, 0, 113, 5]),
            ttl: 64,
            ident: 7,
            flow_label: 0,
        };
        let l3 = eth_ip(&mut buf, &link, &net, PROTO_TCP);
        tcp(&mut buf, 40000, 80, 1, 2, ACK | PSH, 502, &[]);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let end = buf.len();
        ip_finish(&mut buf, l3, end);
        pad(&mut buf);
        let p = etherparse::SlicedPacket::from_ethernet(&buf).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            panic!("not ipv4")
        };
        let hdr = ip.header().to_header();
        assert_eq!(hdr.header_checksum, hdr.calc_header_checksum());
        let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else {
            panic!("not tcp")
        };
        let th = t.to_header();
        assert_eq!(
            th.checksum,
            th.calc_checksum_ipv4(&hdr, t.payload()).unwrap()
        );
    }

    #[test]
    fn udp_ipv6_frame_verifies() {
        let mut buf = Vec::new();
        let link = Link {
            src: [2, 0, 0, 0, 0, 1],
            dst: [2, 0, 0, 0, 0, 2],
            vlan: None,
        };
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[15] = 1;
        let mut b = a;
        b[15] = 2;
        let net = Net {
            src: Ip::V6(a),
            dst: Ip::V6(b),
            ttl: 64,
            ident: 0,
            flow_label: 0x12345,
        };
        let l3 = eth_ip(&mut buf, &link, &net, PROTO_UDP);
        udp(&mut buf, 5353, 53);
        buf.extend_from_slice(&[1, 2, 3, 4, 5]);
        let end = buf.len();
        ip_finish(&mut buf, l3, end);
        let p = etherparse::SlicedPacket::from_ethernet(&buf).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = p.net else {
            panic!("not ipv6")
        };
        let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
            panic!("not udp")
        };
        let uh = u.to_header();
        let want = uh
            .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
            .unwrap();
        assert_eq!(uh.checksum, want);
    }
}
