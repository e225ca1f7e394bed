use crate::{CoreError, MacAddr, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

/// The most specific protocol name of a packet.
///
/// Application names (DNS, HTTP, TLS) win over transport names, which win
/// over network names. Serializes as the upper-case name (`"ICMPv6"` keeps
/// its case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Protocol {
    /// Address Resolution Protocol.
    #[serde(rename = "ARP")]
    Arp,
    /// ICMP for IPv4.
    #[serde(rename = "ICMP")]
    Icmp,
    /// ICMP for IPv6.
    #[serde(rename = "ICMPv6")]
    Icmpv6,
    /// IGMP.
    #[serde(rename = "IGMP")]
    Igmp,
    /// TCP with no recognised application payload.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP with no recognised application payload.
    #[serde(rename = "UDP")]
    Udp,
    /// DNS (or mDNS) over UDP or TCP.
    #[serde(rename = "DNS")]
    Dns,
    /// An HTTP/1.x request.
    #[serde(rename = "HTTP")]
    Http,
    /// A TLS record (ClientHello carries `tls_sni`).
    #[serde(rename = "TLS")]
    Tls,
    /// Generic Routing Encapsulation.
    #[serde(rename = "GRE")]
    Gre,
    /// Anything else, including frames that could not be parsed.
    #[default]
    #[serde(rename = "OTHER")]
    Other,
}

impl Protocol {
    /// Every variant, in declaration order.
    pub const ALL: [Protocol; 11] = [
        Protocol::Arp,
        Protocol::Icmp,
        Protocol::Icmpv6,
        Protocol::Igmp,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Dns,
        Protocol::Http,
        Protocol::Tls,
        Protocol::Gre,
        Protocol::Other,
    ];

    /// The canonical name, as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Arp => "ARP",
            Protocol::Icmp => "ICMP",
            Protocol::Icmpv6 => "ICMPv6",
            Protocol::Igmp => "IGMP",
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Dns => "DNS",
            Protocol::Http => "HTTP",
            Protocol::Tls => "TLS",
            Protocol::Gre => "GRE",
            Protocol::Other => "OTHER",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| CoreError::UnknownProtocol(s.to_owned()))
    }
}

/// One captured packet, owned.
///
/// Field names are the JSON keys of the sniffer's `jsonl` output and the
/// msgpack keys of the wire format. A field that the packet does not carry
/// (or that was not captured) is `None`, serialized as `null`; 0 and `""`
/// always mean a real zero or empty value.
///
/// Tunnels: the IP fields describe the outermost IP header, as tshark's
/// first occurrence does. Ports are taken only from a first fragment.
///
/// Cost: the struct is plain data except for the optional strings (DNS,
/// HTTP and TLS names, allocated only when the packet carries them) and
/// `iface`, a shared `Arc<str>` that is cloned, not allocated, per packet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketRecord {
    // --- capture metadata ---
    /// Capture time, nanoseconds since the Unix epoch, at the file's precision.
    pub ts_ns: u64,
    /// Capture interface name, or the pcapng interface name/index.
    pub iface: Option<Arc<str>>,
    /// Length of the packet on the wire.
    pub wire_len: u32,
    /// Number of bytes captured (`<= wire_len` unless the file lies).
    pub cap_len: u32,

    // --- link layer ---
    /// Ethernet source address.
    pub eth_src: Option<MacAddr>,
    /// Ethernet destination address.
    pub eth_dst: Option<MacAddr>,
    /// The outermost 802.1Q VLAN id.
    pub vlan_id: Option<u16>,
    /// The EtherType after VLAN tags (or the SLL protocol type).
    pub ether_type: Option<u16>,

    // --- IP layer (outermost header) ---
    /// 4 or 6.
    pub ip_version: Option<u8>,
    /// IP source address. A string (`"10.0.0.1"`, `"::1"`) in
    /// human-readable formats (JSON), 4 or 16 raw bytes in binary ones
    /// (msgpack `bin`).
    #[serde(default, with = "ip_wire")]
    pub src_ip: Option<IpAddr>,
    /// IP destination address, encoded as `src_ip`.
    #[serde(default, with = "ip_wire")]
    pub dst_ip: Option<IpAddr>,
    /// Transport protocol number, after IPv6 extension headers.
    pub ip_proto: Option<u8>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: Option<u8>,
    /// Whether the IP packet is a fragment (first or later).
    pub is_fragment: Option<bool>,

    // --- transport ---
    /// TCP or UDP source port (first fragment only).
    pub src_port: Option<u16>,
    /// TCP or UDP destination port (first fragment only).
    pub dst_port: Option<u16>,
    /// All nine TCP flag bits, NS (0x100) through FIN (0x001).
    pub tcp_flags: Option<u16>,
    /// Raw TCP sequence number.
    pub tcp_seq: Option<u32>,
    /// Raw TCP acknowledgement number.
    pub tcp_ack: Option<u32>,
    /// Raw (unscaled) TCP window.
    pub tcp_window: Option<u16>,
    /// Transport payload bytes captured.
    pub payload_len: Option<u32>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// ARP operation (1 request, 2 reply, ...).
    pub arp_op: Option<u16>,

    // --- application ---
    /// DNS first question name, without the trailing dot.
    pub dns_qname: Option<String>,
    /// DNS first question type.
    pub dns_qtype: Option<u16>,
    /// DNS QR bit.
    pub dns_is_response: Option<bool>,
    /// HTTP/1.x request method.
    pub http_method: Option<String>,
    /// HTTP/1.x `Host` header.
    pub http_host: Option<String>,
    /// HTTP/1.x request target.
    pub http_path: Option<String>,
    /// TLS ClientHello server name.
    pub tls_sni: Option<String>,

    /// The most specific protocol name.
    pub protocol: Protocol,
}

impl PacketRecord {
    /// Number of serialized fields.
    pub const FIELD_COUNT: usize = 32;

    /// The field names in declaration (and serialization) order.
    pub const FIELD_NAMES: [&'static str; Self::FIELD_COUNT] = [
        "ts_ns",
        "iface",
        "wire_len",
        "cap_len",
        "eth_src",
        "eth_dst",
        "vlan_id",
        "ether_type",
        "ip_version",
        "src_ip",
        "dst_ip",
        "ip_proto",
        "ttl",
        "is_fragment",
        "src_port",
        "dst_port",
        "tcp_flags",
        "tcp_seq",
        "tcp_ack",
        "tcp_window",
        "payload_len",
        "icmp_type",
        "icmp_code",
        "arp_op",
        "dns_qname",
        "dns_qtype",
        "dns_is_response",
        "http_method",
        "http_host",
        "http_path",
        "tls_sni",
        "protocol",
    ];

    /// Resets every field to its absent value. Sources fill a reused
    /// record; the only per-packet allocations are the optional strings.
    pub fn clear(&mut self) {
        *self = PacketRecord::default();
    }

    /// The capture time.
    pub fn timestamp(&self) -> Timestamp {
        Timestamp(self.ts_ns)
    }
}

/// `Option<IpAddr>` as a string in human-readable formats and as 4 or 16
/// bytes in binary ones (serde's own binary form is an enum, which other
/// msgpack tools would have to know about).
mod ip_wire {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;
    use std::net::IpAddr;

    struct Ip(IpAddr);

    impl Serialize for Ip {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if s.is_human_readable() {
                self.0.serialize(s)
            } else {
                match self.0 {
                    IpAddr::V4(a) => s.serialize_bytes(&a.octets()),
                    IpAddr::V6(a) => s.serialize_bytes(&a.octets()),
                }
            }
        }
    }

    impl<'de> Deserialize<'de> for Ip {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Ip;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an IP address as a string, or 4 or 16 bytes")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Ip, E> {
                    v.parse().map(Ip).map_err(E::custom)
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Ip, E> {
                    if let Ok(b) = <[u8; 4]>::try_from(v) {
                        Ok(Ip(IpAddr::from(b)))
                    } else if let Ok(b) = <[u8; 16]>::try_from(v) {
                        Ok(Ip(IpAddr::from(b)))
                    } else {
                        Err(E::invalid_length(v.len(), &self))
                    }
                }
            }
            if d.is_human_readable() {
                IpAddr::deserialize(d).map(Ip)
            } else {
                d.deserialize_bytes(V)
            }
        }
    }

    pub(super) fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.serialize_some(&Ip(*ip)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        Option::<Ip>::deserialize(d).map(|o| o.map(|ip| ip.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_the_serialized_keys_in_order() {
        let v = serde_json::to_value(PacketRecord::default()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted_names = PacketRecord::FIELD_NAMES.to_vec();
        sorted_names.sort_unstable();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(sorted_keys, sorted_names);
        // Absent values serialize as null, never 0 or "".
        assert_eq!(v["src_port"], serde_json::Value::Null);
        assert_eq!(v["dns_qname"], serde_json::Value::Null);
        assert_eq!(v["protocol"], "OTHER");
    }

    #[test]
    fn protocol_names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
