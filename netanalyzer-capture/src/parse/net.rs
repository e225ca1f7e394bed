//! Network layer: ARP, IPv4, IPv6 with extension headers.
use super::bytes::{array, be16, skip};
use super::{transport, Ctx, LayerResult};
use netanalyzer_core::{MalformedKind, Protocol};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// ARP: the operation, once the fixed part and both address pairs are there.
pub(super) fn arp(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    cx.rec.protocol = Protocol::Arp;
    let Some(op) = be16(d, 6) else {
        return Err(MalformedKind::ArpTruncated);
    };
    cx.rec.arp_op = Some(op);
    let addrs = 2 * (usize::from(d[4]) + usize::from(d[5]));
    if d.len() < 8 + addrs {
        return Err(MalformedKind::ArpTruncated);
    }
    Ok(())
}

/// Raw IP: IPv4 or IPv6 by the version nibble.
pub(super) fn ip_by_version(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    match d.first().map(|b| b >> 4) {
        Some(4) => ipv4(cx, d),
        Some(6) => ipv6(cx, d),
        Some(_) => Err(MalformedKind::Ipv4Bad),
        None => Err(MalformedKind::Ipv4Truncated),
    }
}

/// IPv4. Fields are filled as far as the header was captured (tshark shows
/// a partial header the same way). The payload is bounded by the total
/// length (Ethernet padding excluded); a total length of 0 is TCP
/// segmentation offload and means "the rest of the frame".
pub(super) fn ipv4(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let Some(&vihl) = d.first() else {
        return Err(MalformedKind::Ipv4Truncated);
    };
    if vihl >> 4 != 4 {
        return Err(MalformedKind::Ipv4Bad);
    }
    let rec = &mut *cx.rec;
    rec.ip_version = Some(4);
    let frag = be16(d, 6);
    if let Some(f) = frag {
        rec.is_fragment = Some(f & 0x3fff != 0);
    }
    rec.ttl = d.get(8).copied();
    rec.ip_proto = d.get(9).copied();
    rec.src_ip = array::<4>(d, 12).map(|a| IpAddr::V4(Ipv4Addr::from(a)));
    rec.dst_ip = array::<4>(d, 16).map(|a| IpAddr::V4(Ipv4Addr::from(a)));
    let (Some(total), Some(frag), Some(&proto)) = (be16(d, 2), frag, d.get(9)) else {
        return Err(MalformedKind::Ipv4Truncated);
    };
    if d.len() < 20 {
        return Err(MalformedKind::Ipv4Truncated);
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return Err(MalformedKind::Ipv4Bad);
    }
    if d.len() < ihl {
        return Err(MalformedKind::Ipv4Truncated);
    }
    if ihl > 20 {
        if let Some(dst) = source_route_destination(&d[20..ihl]) {
            cx.rec.dst_ip = Some(IpAddr::V4(Ipv4Addr::from(dst)));
        }
    }
    let total = usize::from(total);
    let (end, bad_len) = if total == 0 {
        (d.len(), false)
    } else if total < ihl {
        (d.len(), true)
    } else if total > d.len() {
        (d.len(), !cx.snapped)
    } else {
        (total, false)
    };
    let payload = d.get(ihl..end).unwrap_or(&[]);
    let result = if frag & 0x1fff != 0 {
        later_fragment(cx, proto, payload);
        Ok(())
    } else {
        transport::dispatch(cx, proto, payload)
    };
    if bad_len {
        return Err(MalformedKind::Ipv4Bad);
    }
    result
}

/// The final destination of a loose or strict source route option (the
/// last address of the route), which tshark reports as `ip.dst`: the
/// header's destination is only the next hop.
fn source_route_destination(mut opts: &[u8]) -> Option<[u8; 4]> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return None,
            1 => opts = skip(opts, 1),
            _ => {
                let len = usize::from(*opts.get(1)?);
                if len < 2 || len > opts.len() {
                    return None;
                }
                if matches!(kind, 0x83 | 0x89) && len >= 7 {
                    return array::<4>(opts, len - 4);
                }
                opts = skip(opts, len);
            }
        }
    }
    None
}

/// A non-first fragment: the protocol number is known, the transport
/// header is not there.
fn later_fragment(cx: &mut Ctx<'_>, proto: u8, payload: &[u8]) {
    cx.rec.ip_proto = Some(proto);
    cx.rec.payload_len = Some(payload.len() as u32);
    cx.rec.protocol = transport::protocol_of(proto);
}

/// IPv6 and its extension headers.
pub(super) fn ipv6(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let Some(&v) = d.first() else {
        return Err(MalformedKind::Ipv6Truncated);
    };
    if v >> 4 != 6 {
        return Err(MalformedKind::Ipv6Bad);
    }
    let rec = &mut *cx.rec;
    rec.ip_version = Some(6);
    rec.ip_proto = d.get(6).copied();
    rec.ttl = d.get(7).copied();
    rec.src_ip = array::<16>(d, 8).map(|a| IpAddr::V6(Ipv6Addr::from(a)));
    rec.dst_ip = array::<16>(d, 24).map(|a| IpAddr::V6(Ipv6Addr::from(a)));
    let (Some(plen), true) = (be16(d, 4), d.len() >= 40) else {
        return Err(MalformedKind::Ipv6Truncated);
    };
    rec.is_fragment = Some(false);
    let plen = usize::from(plen);
    let (end, bad_len) = if plen == 0 {
        // Jumbogram or segmentation offload: the rest of the frame.
        (d.len(), false)
    } else if 40 + plen > d.len() {
        (d.len(), !cx.snapped)
    } else {
        (40 + plen, false)
    };
    let mut nh = d[6];
    let mut p = d.get(40..end).unwrap_or(&[]);
    let mut first_fragment = true;
    let mut result = Ok(());
    for _ in 0..16 {
        let hdr_len = match nh {
            // hop-by-hop, routing, destination options, HIP, shim6: 8-octet units.
            0 | 43 | 60 | 139 | 140 => p.get(1).map(|&l| (usize::from(l) + 1) * 8),
            44 => {
                if let Some(off) = be16(p, 2) {
                    let later = off & 0xfff8 != 0;
                    cx.rec.is_fragment = Some(later || off & 1 != 0);
                    first_fragment = !later;
                }
                Some(8)
            }
            // AH: 4-octet units, plus 2.
            51 => p.get(1).map(|&l| (usize::from(l) + 2) * 4),
            // Mobility (RFC 6275): its payload proto is always 59, so the
            // mobility message itself is the upper layer; skip it only if
            // something follows.
            135 if p.first().is_some_and(|&n| n != 59) => {
                p.get(1).map(|&l| (usize::from(l) + 1) * 8)
            }
            _ => break,
        };
        let (Some(len), Some(&next)) = (hdr_len, p.first()) else {
            result = Err(MalformedKind::Ipv6ExtBad);
            break;
        };
        if p.len() < len {
            result = Err(MalformedKind::Ipv6ExtBad);
            break;
        }
        nh = next;
        p = skip(p, len);
        if !first_fragment {
            break;
        }
    }
    if result.is_ok() {
        result = if first_fragment {
            transport::dispatch(cx, nh, p)
        } else {
            later_fragment(cx, nh, p);
            Ok(())
        };
    } else {
        cx.rec.ip_proto = Some(nh);
    }
    if bad_len {
        return Err(MalformedKind::Ipv6Bad);
    }
    result
}
