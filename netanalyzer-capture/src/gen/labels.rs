//! Ground-truth flow labels and their CSV form.
use super::build::Ip;
use super::Scenario;
use netanalyzer_core::{FlowAddr, FlowKey, FlowProto, MacAddr};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The CSV header line of a labels file (without the newline).
pub const LABELS_HEADER: &str =
    "proto,src,sport,dst,dport,first_ts_ns,last_ts_ns,packets,bytes,label";

/// One generated flow and the scenario that produced it: a row of the
/// labels file.
///
/// The endpoints are as initiated (`src` sent the first packet). Flows are
/// keyed like [`FlowKey::from_record`]: ICMP/ICMPv6 by the address pair
/// (ports 0), ARP by the MAC pair (a request to broadcast and its reply are
/// two flows). Several rows may share a key (e.g. two ping sessions
/// between the same hosts); they never share a key across labels except by
/// chance collisions of spoofed flood sources with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLabel {
    /// IP protocol number, or ARP.
    pub proto: FlowProto,
    /// Initiator address (a MAC for ARP).
    pub src: FlowAddr,
    /// Initiator port (0 without ports).
    pub sport: u16,
    /// Responder address (a MAC for ARP).
    pub dst: FlowAddr,
    /// Responder port (0 without ports).
    pub dport: u16,
    /// Timestamp of the first packet, ns since the Unix epoch.
    pub first_ts_ns: u64,
    /// Timestamp of the last packet.
    pub last_ts_ns: u64,
    /// Frames in both directions.
    pub packets: u64,
    /// Frame bytes (on the wire, padding included) in both directions.
    pub bytes: u64,
    /// The scenario that produced the flow.
    pub scenario: Scenario,
}

pub(crate) fn ip_addr(ip: Ip) -> FlowAddr {
    match ip {
        Ip::V4(a) => FlowAddr::Ip(IpAddr::V4(Ipv4Addr::from(a))),
        Ip::V6(a) => FlowAddr::Ip(IpAddr::V6(Ipv6Addr::from(a))),
    }
}

impl FlowLabel {
    /// A fresh (zero packet) IP flow label.
    pub(crate) fn ip(
        proto: u8,
        src: Ip,
        sport: u16,
        dst: Ip,
        dport: u16,
        scenario: Scenario,
    ) -> Self {
        FlowLabel {
            proto: FlowProto::Ip(proto),
            src: ip_addr(src),
            sport,
            dst: ip_addr(dst),
            dport,
            first_ts_ns: 0,
            last_ts_ns: 0,
            packets: 0,
            bytes: 0,
            scenario,
        }
    }

    /// A fresh ARP flow label between two MACs.
    pub(crate) fn arp(src: [u8; 6], dst: [u8; 6], scenario: Scenario) -> Self {
        FlowLabel {
            proto: FlowProto::Arp,
            src: FlowAddr::Mac(MacAddr(src)),
            sport: 0,
            dst: FlowAddr::Mac(MacAddr(dst)),
            dport: 0,
            first_ts_ns: 0,
            last_ts_ns: 0,
            packets: 0,
            bytes: 0,
            scenario,
        }
    }

    /// The canonical flow key of this flow, as the flow aggregator computes
    /// it from any of its packets.
    pub fn key(&self) -> FlowKey {
        FlowKey::new(self.proto, self.src, self.sport, self.dst, self.dport).0
    }

    /// The protocol column: `tcp`, `udp`, `icmp`, `icmpv6`, `arp`, or the
    /// protocol number.
    pub fn proto_name(&self) -> ProtoName {
        ProtoName(self.proto)
    }

    /// Writes the row (with newline) in [`LABELS_HEADER`] order.
    ///
    /// # Errors
    /// The writer failed.
    pub fn write_csv<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut line = [0u8; 256];
        let mut n = 0;
        let mut put = |b: &[u8]| {
            line[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        };
        match self.proto {
            FlowProto::Ip(6) => put(b"tcp"),
            FlowProto::Ip(17) => put(b"udp"),
            FlowProto::Ip(1) => put(b"icmp"),
            FlowProto::Ip(58) => put(b"icmpv6"),
            FlowProto::Arp => put(b"arp"),
            FlowProto::Ip(p) => put_u64(&mut put, u64::from(p)),
        }
        put(b",");
        put_addr(&mut put, self.src);
        put(b",");
        put_u64(&mut put, u64::from(self.sport));
        put(b",");
        put_addr(&mut put, self.dst);
        put(b",");
        put_u64(&mut put, u64::from(self.dport));
        put(b",");
        put_u64(&mut put, self.first_ts_ns);
        put(b",");
        put_u64(&mut put, self.last_ts_ns);
        put(b",");
        put_u64(&mut put, self.packets);
        put(b",");
        put_u64(&mut put, self.bytes);
        put(b",");
        put(self.scenario.name().as_bytes());
        put(b"\n");
        w.write_all(&line[..n])
    }
}

/// Display helper for the protocol column of a label.
#[derive(Debug, Clone, Copy)]
pub struct ProtoName(FlowProto);

impl std::fmt::Display for ProtoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            FlowProto::Ip(6) => f.write_str("tcp"),
            FlowProto::Ip(17) => f.write_str("udp"),
            FlowProto::Ip(1) => f.write_str("icmp"),
            FlowProto::Ip(58) => f.write_str("icmpv6"),
            FlowProto::Arp => f.write_str("arp"),
            FlowProto::Ip(p) => write!(f, "{p}"),
        }
    }
}

fn put_u64(put: &mut impl FnMut(&[u8]), mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&buf[i..]);
}

fn put_addr(put: &mut impl FnMut(&[u8]), a: FlowAddr) {
    match a {
        FlowAddr::Ip(IpAddr::V4(v4)) => {
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    put(b".");
                }
                put_u64(put, u64::from(*o));
            }
        }
        FlowAddr::Ip(IpAddr::V6(v6)) => {
            // Rare enough that the formatter's cost does not matter; the
            // standard form is what every reader expects.
            let mut tmp = [0u8; 48];
            let mut cur = io::Cursor::new(&mut tmp[..]);
            let _ = write!(cur, "{v6}");
            let len = cur.position() as usize;
            put(&tmp[..len]);
        }
        FlowAddr::Mac(m) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, o) in m.0.iter().enumerate() {
                if i > 0 {
                    put(b":");
                }
                put(&[HEX[usize::from(o >> 4)], HEX[usize::from(o & 15)]]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_row_format() {
        let mut l = FlowLabel::ip(
            6,
            Ip::V4([192, 168, 1, 20]),
            40000,
            Ip::V4([203, 0, 113, 10]),
            443,
            Scenario::Normal,
        );
        l.first_ts_ns = 5;
        l.last_ts_ns = 10;
        l.packets = 3;
        l.bytes = 180;
        let mut out = Vec::new();
        l.write_csv(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "tcp,192.168.1.20,40000,203.0.113.10,443,5,10,3,180,normal\n"
        );
        let a = FlowLabel::arp([0xaa; 6], [0xff; 6], Scenario::Normal);
        let mut out = Vec::new();
        a.write_csv(&mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("arp,aa:aa:aa:aa:aa:aa,0,ff:ff:ff:ff:ff:ff,0,"));
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[2] = 0x0d;
        v6[3] = 0xb8;
        v6[15] = 1;
        let l = FlowLabel::ip(58, Ip::V6(v6), 0, Ip::V6(v6), 0, Scenario::Normal);
        let mut out = Vec::new();
        l.write_csv(&mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("icmpv6,2001:db8::1,0,"));
    }
}
