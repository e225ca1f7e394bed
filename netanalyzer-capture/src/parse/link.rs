//! Link layers: Ethernet / 802.3 + LLC/SNAP, VLAN tags, PPPoE, MPLS, Linux
//! SLL and SLL2, BSD null/loop, PPP.
use super::bytes::{array, be16, skip};
use super::{net, Ctx, LayerResult};
use netanalyzer_core::{MacAddr, MalformedKind};

/// Ethernet II, or IEEE 802.3 with a length field (LLC/SNAP decoded).
pub(super) fn ethernet(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    cx.rec.eth_dst = array::<6>(d, 0).map(MacAddr);
    cx.rec.eth_src = array::<6>(d, 6).map(MacAddr);
    let Some(et) = be16(d, 12) else {
        return Err(MalformedKind::LinkTruncated);
    };
    let mut d = skip(d, 14);
    let mut et = et;
    // 802.1Q / 802.1ad / QinQ (0x9100, 0x9200 pre-standard): keep the outermost id.
    let mut tags = 0;
    while matches!(et, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
        let (Some(tci), Some(inner)) = (be16(d, 0), be16(d, 2)) else {
            return Err(MalformedKind::VlanTruncated);
        };
        if tags == 0 {
            cx.rec.vlan_id = Some(tci & 0x0fff);
        }
        tags += 1;
        et = inner;
        d = skip(d, 4);
    }
    if et <= 1500 {
        // IEEE 802.3 length field: only LLC with a SNAP header carries an EtherType.
        match (array::<3>(d, 0), be16(d, 6)) {
            (Some([0xaa, 0xaa, 0x03]), Some(snap_type)) => {
                et = snap_type;
                d = skip(d, 8);
            }
            (Some([0xaa, 0xaa, 0x03]), None) => return Err(MalformedKind::LinkTruncated),
            _ => return Ok(()),
        }
    }
    cx.rec.ether_type = Some(et);
    by_ethertype(cx, et, d)
}

/// Dispatches the payload of an EtherType.
pub(super) fn by_ethertype(cx: &mut Ctx<'_>, et: u16, d: &[u8]) -> LayerResult {
    match et {
        0x0800 => net::ipv4(cx, d),
        0x86dd => net::ipv6(cx, d),
        0x0806 => net::arp(cx, d),
        0x8864 => pppoe_session(cx, d),
        0x8847 | 0x8848 => mpls(cx, d),
        0x8100 | 0x88a8 | 0x9100 => {
            // A tagged frame below a cooked header: read the tag, then go on.
            let (Some(tci), Some(inner)) = (be16(d, 0), be16(d, 2)) else {
                return Err(MalformedKind::VlanTruncated);
            };
            if cx.rec.vlan_id.is_none() {
                cx.rec.vlan_id = Some(tci & 0x0fff);
            }
            cx.rec.ether_type = Some(inner);
            if matches!(inner, 0x8100 | 0x88a8 | 0x9100) {
                // Deeper stacks below a cooked header are not followed.
                return Ok(());
            }
            by_ethertype(cx, inner, skip(d, 4))
        }
        _ => Ok(()),
    }
}

/// PPPoE session stage (RFC 2516): 6-byte header, then a PPP protocol.
fn pppoe_session(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let Some(proto) = be16(d, 6) else {
        return Err(MalformedKind::LinkTruncated);
    };
    ppp_protocol(cx, proto, skip(d, 8))
}

/// MPLS label stack, then IPv4/IPv6 guessed from the version nibble (as
/// tshark does); other payloads (pseudowires) are left undecoded.
fn mpls(cx: &mut Ctx<'_>, mut d: &[u8]) -> LayerResult {
    for _ in 0..16 {
        let Some(entry) = array::<4>(d, 0) else {
            return Err(MalformedKind::LinkTruncated);
        };
        d = skip(d, 4);
        if entry[2] & 0x01 != 0 {
            return match d.first().map(|b| b >> 4) {
                Some(4) => net::ipv4(cx, d),
                Some(6) => net::ipv6(cx, d),
                _ => Ok(()),
            };
        }
    }
    Ok(())
}

/// Linux cooked capture v1: 16-byte header, protocol at offset 14.
pub(super) fn sll(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let Some(proto) = be16(d, 14) else {
        return Err(MalformedKind::LinkTruncated);
    };
    cooked(cx, proto, skip(d, 16))
}

/// Linux cooked capture v2: 20-byte header, protocol at offset 0.
pub(super) fn sll2(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let proto = be16(d, 0);
    match (proto, d.len() >= 20) {
        (Some(p), true) => cooked(cx, p, skip(d, 20)),
        _ => Err(MalformedKind::LinkTruncated),
    }
}

/// The protocol field of a cooked header: an EtherType, or below 1536 a
/// Linux pseudo-protocol (802.2 LLC, Novell 802.3, CAN, ...) not decoded.
fn cooked(cx: &mut Ctx<'_>, proto: u16, d: &[u8]) -> LayerResult {
    cx.rec.ether_type = Some(proto);
    if proto < 0x0600 {
        return Ok(());
    }
    by_ethertype(cx, proto, d)
}

/// BSD null (host byte order) and OpenBSD loop (network byte order): a
/// 4-byte address family. Both byte orders are accepted for both link
/// types; AF_INET is 2 everywhere, AF_INET6 is 24 (NetBSD/OpenBSD), 28
/// (FreeBSD) or 30 (macOS).
pub(super) fn null(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let Some(fam) = array::<4>(d, 0) else {
        return Err(MalformedKind::LinkTruncated);
    };
    let family = if fam[0] == 0 && fam[1] == 0 {
        u32::from_be_bytes(fam)
    } else {
        u32::from_le_bytes(fam)
    };
    let d = skip(d, 4);
    match family {
        2 => net::ipv4(cx, d),
        24 | 28 | 30 => net::ipv6(cx, d),
        _ => Ok(()),
    }
}

/// PPP (DLT 9): optional `ff 03` address/control, then a 1- or 2-byte
/// protocol (protocol-field compression: an odd first byte is the whole
/// field).
pub(super) fn ppp(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let d = if d.starts_with(&[0xff, 0x03]) {
        skip(d, 2)
    } else {
        d
    };
    match d.first() {
        None => Err(MalformedKind::LinkTruncated),
        Some(&b) if b & 1 == 1 => ppp_protocol(cx, u16::from(b), skip(d, 1)),
        Some(_) => match be16(d, 0) {
            Some(p) => ppp_protocol(cx, p, skip(d, 2)),
            None => Err(MalformedKind::LinkTruncated),
        },
    }
}

/// Dispatches a PPP protocol number.
fn ppp_protocol(cx: &mut Ctx<'_>, proto: u16, d: &[u8]) -> LayerResult {
    match proto {
        0x0021 => net::ipv4(cx, d),
        0x0057 => net::ipv6(cx, d),
        _ => Ok(()),
    }
}
