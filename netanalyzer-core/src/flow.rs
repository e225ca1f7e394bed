use crate::{MacAddr, PacketRecord};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// What a flow is keyed on above the endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FlowProto {
    /// An IP flow with this transport protocol number (open: any `u8`).
    Ip(u8),
    /// ARP traffic between a pair of hosts (keyed on MACs).
    Arp,
}

/// One endpoint address of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FlowAddr {
    /// An IP address (v4 or v6).
    Ip(IpAddr),
    /// A MAC address (for ARP "flows").
    Mac(MacAddr),
}

impl fmt::Display for FlowAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowAddr::Ip(ip) => ip.fmt(f),
            FlowAddr::Mac(m) => m.fmt(f),
        }
    }
}

/// Which way a packet travels relative to a [`FlowKey`]'s canonical order.
///
/// `Forward` means from `lo` to `hi`. The flow aggregator decides which
/// canonical direction is the flow's forward one (the first packet's) and
/// maps this accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// From the key's `lo` endpoint to its `hi` endpoint.
    Forward,
    /// From `hi` to `lo`.
    Reverse,
}

impl Direction {
    /// The other direction.
    pub const fn flip(self) -> Direction {
        match self {
            Direction::Forward => Direction::Reverse,
            Direction::Reverse => Direction::Forward,
        }
    }
}

/// A canonical, bidirectional flow key: the endpoints are ordered so both
/// directions of a conversation produce the same key (and hash).
///
/// Ports are 0 for protocols without ports (and for non-first fragments,
/// whose ports are unknown). ICMP flows are keyed on the address pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlowKey {
    /// Transport protocol, or ARP.
    pub proto: FlowProto,
    /// The smaller endpoint address.
    pub lo_addr: FlowAddr,
    /// The port of `lo_addr` (0 when the protocol has none).
    pub lo_port: u16,
    /// The larger endpoint address.
    pub hi_addr: FlowAddr,
    /// The port of `hi_addr` (0 when the protocol has none).
    pub hi_port: u16,
}

impl FlowKey {
    /// Builds the canonical key for a packet going `src -> dst`, and the
    /// packet's direction relative to it.
    pub fn new(
        proto: FlowProto,
        src: FlowAddr,
        src_port: u16,
        dst: FlowAddr,
        dst_port: u16,
    ) -> (FlowKey, Direction) {
        if (src, src_port) <= (dst, dst_port) {
            let key = FlowKey {
                proto,
                lo_addr: src,
                lo_port: src_port,
                hi_addr: dst,
                hi_port: dst_port,
            };
            (key, Direction::Forward)
        } else {
            let key = FlowKey {
                proto,
                lo_addr: dst,
                lo_port: dst_port,
                hi_addr: src,
                hi_port: src_port,
            };
            (key, Direction::Reverse)
        }
    }

    /// The key of a record: IP packets by (proto, addresses, ports), ARP by
    /// the Ethernet address pair. `None` for anything else (non-IP, non-ARP
    /// frames, or frames whose headers were not captured).
    pub fn from_record(r: &PacketRecord) -> Option<(FlowKey, Direction)> {
        match (r.src_ip, r.dst_ip, r.ip_proto) {
            (Some(s), Some(d), Some(p)) => Some(FlowKey::new(
                FlowProto::Ip(p),
                FlowAddr::Ip(s),
                r.src_port.unwrap_or(0),
                FlowAddr::Ip(d),
                r.dst_port.unwrap_or(0),
            )),
            _ if r.arp_op.is_some() => {
                let (s, d) = (r.eth_src?, r.eth_dst?);
                Some(FlowKey::new(
                    FlowProto::Arp,
                    FlowAddr::Mac(s),
                    0,
                    FlowAddr::Mac(d),
                    0,
                ))
            }
            _ => None,
        }
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.proto {
            FlowProto::Ip(n) => n.to_string(),
            FlowProto::Arp => "arp".to_owned(),
        };
        write!(
            f,
            "{p} {}:{} <-> {}:{}",
            self.lo_addr, self.lo_port, self.hi_addr, self.hi_port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn both_directions_give_one_key() {
        let a = FlowAddr::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let b = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let (k1, d1) = FlowKey::new(FlowProto::Ip(17), a, 53, b, 9999);
        let (k2, d2) = FlowKey::new(FlowProto::Ip(17), b, 9999, a, 53);
        assert_eq!(k1, k2);
        assert_eq!(d1, d2.flip());
    }

    #[test]
    fn same_address_orders_by_port() {
        let a = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let (k, d) = FlowKey::new(FlowProto::Ip(6), a, 9000, a, 80);
        assert_eq!((k.lo_port, k.hi_port, d), (80, 9000, Direction::Reverse));
    }

    #[test]
    fn arp_keys_on_macs() {
        let r = PacketRecord {
            arp_op: Some(1),
            eth_src: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            eth_dst: Some(MacAddr::BROADCAST),
            ..PacketRecord::default()
        };
        let (k, d) = FlowKey::from_record(&r).unwrap();
        assert_eq!(k.proto, FlowProto::Arp);
        assert_eq!(d, Direction::Forward);
        assert!(FlowKey::from_record(&PacketRecord::default()).is_none());
    }
}
