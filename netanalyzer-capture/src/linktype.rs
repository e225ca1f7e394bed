use std::fmt;

/// A pcap link-layer header type (`LINKTYPE_*`), as an open set: any `u32`
/// is representable, the ones the parser decodes have names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte host-order address family, then IP.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (RFC 1661), 2-byte protocol field, optionally with address/control.
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP (v4 or v6 by version nibble), as some platforms write DLT 12/14.
    pub const RAW_OLD: LinkType = LinkType(12);
    /// Raw IP (v4 or v6 by version nibble).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: a 4-byte network-order address family, then IP.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// 802.11 with a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            LinkType::NULL => "null",
            LinkType::ETHERNET => "ethernet",
            LinkType::PPP => "ppp",
            LinkType::RAW_OLD | LinkType::RAW => "raw",
            LinkType::LOOP => "loop",
            LinkType::LINUX_SLL => "linux_sll",
            LinkType::IEEE802_11_RADIOTAP => "ieee802_11_radiotap",
            LinkType::IPV4 => "ipv4",
            LinkType::IPV6 => "ipv6",
            LinkType::LINUX_SLL2 => "linux_sll2",
            _ => "unknown",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}
