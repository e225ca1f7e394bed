use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a packet could not be parsed completely.
///
/// Per-packet problems are counted in [`ParseStats`], never logged one by
/// one. A packet with a problem still yields every field read before it.
/// "Truncated" means the capture stopped early (`cap_len < wire_len` or a
/// header longer than the bytes captured); "bad" means a header field holds
/// an impossible value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MalformedKind {
    /// The link type of the capture is not one the parser decodes.
    UnsupportedLinkType,
    /// The link-layer header (Ethernet, SLL, null, ...) was cut short.
    LinkTruncated,
    /// An 802.1Q / QinQ tag was cut short.
    VlanTruncated,
    /// An ARP packet was cut short.
    ArpTruncated,
    /// An IPv4 header was cut short.
    Ipv4Truncated,
    /// An IPv4 header held impossible values (version, IHL, total length).
    Ipv4Bad,
    /// An IPv6 header was cut short.
    Ipv6Truncated,
    /// An IPv6 header held impossible values (version, payload length
    /// beyond the frame).
    Ipv6Bad,
    /// An IPv6 extension header was cut short or malformed.
    Ipv6ExtBad,
    /// A TCP header was cut short.
    TcpTruncated,
    /// A TCP header held an impossible data offset.
    TcpBad,
    /// A UDP header was cut short.
    UdpTruncated,
    /// An ICMP or ICMPv6 header was cut short.
    IcmpTruncated,
    /// An IGMP message was cut short.
    IgmpTruncated,
    /// A GRE header was cut short or malformed.
    GreBad,
    /// A DNS message (on a DNS port) could not be decoded.
    DnsBad,
    /// A TLS ClientHello could not be decoded.
    TlsBad,
    /// An HTTP request line or header could not be decoded.
    HttpBad,
}

impl MalformedKind {
    /// Every kind, in declaration order (the index into [`ParseStats`]).
    pub const ALL: [MalformedKind; 18] = [
        MalformedKind::UnsupportedLinkType,
        MalformedKind::LinkTruncated,
        MalformedKind::VlanTruncated,
        MalformedKind::ArpTruncated,
        MalformedKind::Ipv4Truncated,
        MalformedKind::Ipv4Bad,
        MalformedKind::Ipv6Truncated,
        MalformedKind::Ipv6Bad,
        MalformedKind::Ipv6ExtBad,
        MalformedKind::TcpTruncated,
        MalformedKind::TcpBad,
        MalformedKind::UdpTruncated,
        MalformedKind::IcmpTruncated,
        MalformedKind::IgmpTruncated,
        MalformedKind::GreBad,
        MalformedKind::DnsBad,
        MalformedKind::TlsBad,
        MalformedKind::HttpBad,
    ];

    /// A stable snake_case name, used as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            MalformedKind::UnsupportedLinkType => "unsupported_link_type",
            MalformedKind::LinkTruncated => "link_truncated",
            MalformedKind::VlanTruncated => "vlan_truncated",
            MalformedKind::ArpTruncated => "arp_truncated",
            MalformedKind::Ipv4Truncated => "ipv4_truncated",
            MalformedKind::Ipv4Bad => "ipv4_bad",
            MalformedKind::Ipv6Truncated => "ipv6_truncated",
            MalformedKind::Ipv6Bad => "ipv6_bad",
            MalformedKind::Ipv6ExtBad => "ipv6_ext_bad",
            MalformedKind::TcpTruncated => "tcp_truncated",
            MalformedKind::TcpBad => "tcp_bad",
            MalformedKind::UdpTruncated => "udp_truncated",
            MalformedKind::IcmpTruncated => "icmp_truncated",
            MalformedKind::IgmpTruncated => "igmp_truncated",
            MalformedKind::GreBad => "gre_bad",
            MalformedKind::DnsBad => "dns_bad",
            MalformedKind::TlsBad => "tls_bad",
            MalformedKind::HttpBad => "http_bad",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for MalformedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters of parsed packets and of problems by kind. Cheap to update on
/// the hot path (an array increment), cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseStats {
    /// Packets handed to the parser.
    pub packets: u64,
    /// Packets with at least one problem.
    pub malformed_packets: u64,
    counts: [u64; MalformedKind::ALL.len()],
}

impl ParseStats {
    /// Counts one problem of `kind`. Call [`ParseStats::packet`] once per
    /// packet, with whether it had any problem.
    pub fn count(&mut self, kind: MalformedKind) {
        self.counts[kind.index()] += 1;
    }

    /// Counts one packet, malformed or not.
    pub fn packet(&mut self, malformed: bool) {
        self.packets += 1;
        self.malformed_packets += u64::from(malformed);
    }

    /// How many problems of `kind` were counted.
    pub fn get(&self, kind: MalformedKind) -> u64 {
        self.counts[kind.index()]
    }

    /// All problems counted.
    pub fn total_problems(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The non-zero counters, by kind.
    pub fn nonzero(&self) -> impl Iterator<Item = (MalformedKind, u64)> + '_ {
        MalformedKind::ALL
            .into_iter()
            .map(|k| (k, self.get(k)))
            .filter(|(_, n)| *n > 0)
    }

    /// Adds another set of counters into this one.
    pub fn merge(&mut self, other: &ParseStats) {
        self.packets += other.packets;
        self.malformed_packets += other.malformed_packets;
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order() {
        for (i, k) in MalformedKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i, "{k}");
        }
    }

    #[test]
    fn counts_and_merges() {
        let mut a = ParseStats::default();
        a.count(MalformedKind::TcpTruncated);
        a.packet(true);
        a.packet(false);
        let mut b = ParseStats::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!(b.packets, 4);
        assert_eq!(b.malformed_packets, 2);
        assert_eq!(b.get(MalformedKind::TcpTruncated), 2);
        assert_eq!(
            b.nonzero().collect::<Vec<_>>(),
            vec![(MalformedKind::TcpTruncated, 2)]
        );
    }
}
