//! The frame parser: link layer → IP → transport → application, into a
//! [`PacketRecord`].
//!
//! The parser is hand-written, bounds-checked and allocation-free: every
//! layer borrows a sub-slice of the frame, writes the scalar fields it owns
//! straight into the caller's record, and hands the rest of the slice to the
//! next layer. The only allocations are the record's optional strings (DNS
//! name, HTTP method/host/path, TLS SNI), made once per packet that carries
//! them.
//!
//! Layers, in order:
//! - link ([`LinkType`]): Ethernet II and IEEE 802.3 with LLC/SNAP, 802.1Q /
//!   802.1ad / QinQ tags (outermost id kept), PPPoE session, MPLS, Linux SLL
//!   and SLL2, raw IP (DLT 12/101/228/229), BSD null and OpenBSD loop (either
//!   byte order of the family), PPP;
//! - network (`net`): ARP, IPv4 (options, fragments, TSO zero length), IPv6
//!   (hop-by-hop, routing, fragment, destination options, AH, mobility, HIP,
//!   shim6);
//! - transport (`transport`): TCP, UDP, ICMP, ICMPv6, IGMP, GRE;
//! - application, via [`crate::app`]: DNS on port 53, mDNS 5353 and LLMNR
//!   5355 (UDP and TCP), TLS records and HTTP/1.x on any TCP port, SSDP
//!   (HTTP/1.1 over UDP 1900).
//!
//! Contract: the record always describes the *outermost* IP header, and the
//! transport fields describe the header that directly follows it (after
//! IPv6 extension headers). Tunnel payloads (GRE, IP-in-IP, VXLAN) and the
//! packets quoted by ICMP errors are not decoded into the record, so a
//! record's 5-tuple is always one consistent header chain.
//!
//! A problem stops the parse at the layer where it is found; every field
//! read before it stays in the record. The first problem of a packet is
//! counted by [`MalformedKind`]; a frame cut by the snap length
//! (`cap_len < wire_len`) is only counted when a *header* is cut, and a cut
//! application payload is not counted at all.
use crate::LinkType;
use netanalyzer_core::{MalformedKind, PacketRecord, ParseStats};

mod bytes;
mod link;
mod net;
mod transport;

#[cfg(test)]
mod tests;

/// The result of one layer: `Err` carries the first problem found.
type LayerResult = Result<(), MalformedKind>;

/// Parses one captured frame of link type `link` into `rec`.
///
/// The caller has already cleared `rec` and set its capture metadata
/// (`ts_ns`, `iface`, `wire_len`, `cap_len`); this fills every other field
/// that the captured bytes carry. `rec.wire_len` is read to tell a frame
/// cut by the snap length (`data.len() < wire_len`) from a frame whose
/// headers lie about their lengths.
///
/// Never panics; problems are counted in `stats` by kind (at most one kind
/// per packet, the first found) and `stats.packet(..)` is called exactly
/// once.
pub fn parse_frame(link: LinkType, data: &[u8], rec: &mut PacketRecord, stats: &mut ParseStats) {
    let snapped = (data.len() as u64) < u64::from(rec.wire_len);
    let mut cx = Ctx { rec, snapped };
    let result = match link {
        LinkType::ETHERNET => link::ethernet(&mut cx, data),
        LinkType::LINUX_SLL => link::sll(&mut cx, data),
        LinkType::LINUX_SLL2 => link::sll2(&mut cx, data),
        LinkType::NULL | LinkType::LOOP => link::null(&mut cx, data),
        LinkType::RAW | LinkType::RAW_OLD | LinkType(14) => net::ip_by_version(&mut cx, data),
        LinkType::IPV4 => net::ipv4(&mut cx, data),
        LinkType::IPV6 => net::ipv6(&mut cx, data),
        LinkType::PPP => link::ppp(&mut cx, data),
        _ => Err(MalformedKind::UnsupportedLinkType),
    };
    match result {
        Ok(()) => stats.packet(false),
        Err(kind) => {
            stats.count(kind);
            stats.packet(true);
        }
    }
}

/// Parse state shared by the layers.
struct Ctx<'r> {
    /// The record being filled.
    rec: &'r mut PacketRecord,
    /// Whether the capture stopped before the end of the frame
    /// (`data.len() < wire_len`): lengths beyond the data are then expected.
    snapped: bool,
}
