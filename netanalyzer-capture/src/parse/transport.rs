//! Transport layer (TCP, UDP, ICMP, ICMPv6, IGMP, GRE) and the dispatch to
//! the application decoders.
use super::bytes::{be16, be32, skip};
use super::{Ctx, LayerResult};
use crate::app;
use netanalyzer_core::{MalformedKind, Protocol};

/// The protocol name of an IP protocol number, before any application
/// decoding.
pub(super) fn protocol_of(proto: u8) -> Protocol {
    match proto {
        1 => Protocol::Icmp,
        2 => Protocol::Igmp,
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        47 => Protocol::Gre,
        58 => Protocol::Icmpv6,
        _ => Protocol::Other,
    }
}

/// Decodes the transport header `proto` at the start of `d`, the IP payload
/// (bounded by the IP length, so Ethernet padding is not payload).
pub(super) fn dispatch(cx: &mut Ctx<'_>, proto: u8, d: &[u8]) -> LayerResult {
    cx.rec.ip_proto = Some(proto);
    cx.rec.protocol = protocol_of(proto);
    match proto {
        6 => tcp(cx, d),
        17 => udp(cx, d),
        1 | 58 => icmp(cx, d),
        2 => igmp(cx, d),
        47 => gre(cx, d),
        _ => {
            cx.rec.payload_len = Some(d.len() as u32);
            Ok(())
        }
    }
}

/// Whether a port carries DNS-format messages: DNS, mDNS, LLMNR.
fn is_dns_port(p: u16) -> bool {
    matches!(p, 53 | 5353 | 5355)
}

fn tcp(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let rec = &mut *cx.rec;
    rec.src_port = be16(d, 0);
    rec.dst_port = be16(d, 2);
    rec.tcp_seq = be32(d, 4);
    rec.tcp_ack = be32(d, 8);
    rec.tcp_flags = be16(d, 12).map(|f| f & 0x01ff);
    rec.tcp_window = be16(d, 14);
    if d.len() < 20 {
        return Err(MalformedKind::TcpTruncated);
    }
    let doff = usize::from(d[12] >> 4) * 4;
    if doff < 20 {
        return Err(MalformedKind::TcpBad);
    }
    if d.len() < doff {
        return Err(if cx.snapped {
            MalformedKind::TcpTruncated
        } else {
            MalformedKind::TcpBad
        });
    }
    let payload = &d[doff..];
    rec.payload_len = Some(payload.len() as u32);
    if payload.is_empty() {
        return Ok(());
    }
    let (sport, dport) = (be16(d, 0).unwrap_or(0), be16(d, 2).unwrap_or(0));
    if is_dns_port(sport) || is_dns_port(dport) {
        // DNS over TCP: a 2-byte length prefix. A segment that does not
        // start a message (a continuation) fails to decode; that is not a
        // malformed packet, so failures are not counted here.
        if payload.len() >= 14 {
            dns(cx, &payload[2..], false)?;
        }
        return Ok(());
    }
    if let Some(tls) = app::tls::decode(payload) {
        cx.rec.protocol = Protocol::Tls;
        if let Some(sni) = tls.sni {
            cx.rec.tls_sni = Some(owned_text(sni));
        }
        if tls.malformed && !cx.snapped {
            return Err(MalformedKind::TlsBad);
        }
        return Ok(());
    }
    http(cx, payload);
    Ok(())
}

/// Copies a decoded text field into the record, writing a NUL byte as
/// `\\000` (tshark's escape). Records travel to PostgreSQL, whose `text`
/// cannot hold NUL: a hostile SNI or Host header must not make a whole
/// batch unstorable. (HTTP methods and paths cannot contain control bytes;
/// DNS names are escaped by their decoder.)
fn owned_text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\\000")
    } else {
        s.to_owned()
    }
}

/// Fills the HTTP fields from a request; a response only names the protocol.
fn http(cx: &mut Ctx<'_>, payload: &[u8]) {
    if let Some(req) = app::http::decode_request(payload) {
        let rec = &mut *cx.rec;
        rec.protocol = Protocol::Http;
        rec.http_method = Some(req.method.to_owned());
        rec.http_path = Some(req.path.to_owned());
        rec.http_host = req.host.map(owned_text);
    } else if app::http::is_response(payload) {
        cx.rec.protocol = Protocol::Http;
    }
}

fn udp(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let rec = &mut *cx.rec;
    rec.src_port = be16(d, 0);
    rec.dst_port = be16(d, 2);
    let (Some(sport), Some(dport), Some(ulen)) = (rec.src_port, rec.dst_port, be16(d, 4)) else {
        return Err(MalformedKind::UdpTruncated);
    };
    if d.len() < 8 {
        return Err(MalformedKind::UdpTruncated);
    }
    let ulen = usize::from(ulen);
    // The UDP length bounds the payload when it is sane; otherwise the IP
    // length (already applied to `d`) does.
    let end = if (8..=d.len()).contains(&ulen) {
        ulen
    } else {
        d.len()
    };
    let payload = &d[8..end];
    rec.payload_len = Some(payload.len() as u32);
    if payload.is_empty() {
        return Ok(());
    }
    if is_dns_port(sport) || is_dns_port(dport) {
        return dns(cx, payload, true);
    }
    if sport == 1900 || dport == 1900 {
        // SSDP: HTTP/1.1 requests over UDP (HTTPU).
        http(cx, payload);
    }
    Ok(())
}

/// Fills the DNS fields from a DNS message. `count` says whether a decode
/// failure is a malformed packet (UDP) or possibly a continuation (TCP).
fn dns(cx: &mut Ctx<'_>, msg: &[u8], count: bool) -> LayerResult {
    match app::dns::decode(msg) {
        Ok(v) => {
            let rec = &mut *cx.rec;
            rec.protocol = Protocol::Dns;
            rec.dns_is_response = Some(v.is_response);
            if let Some(q) = v.question {
                rec.dns_qtype = Some(q.qtype);
                let mut name = String::new();
                q.name.write_to(&mut name);
                rec.dns_qname = Some(name);
            }
            Ok(())
        }
        Err(kind) if count && !cx.snapped => Err(kind),
        Err(_) => Ok(()),
    }
}

/// ICMP and ICMPv6: type and code; the payload is what follows the 8-byte
/// header (quoted packets of error messages are not decoded).
fn icmp(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let rec = &mut *cx.rec;
    rec.icmp_type = d.first().copied();
    rec.icmp_code = d.get(1).copied();
    if d.len() < 4 {
        return Err(MalformedKind::IcmpTruncated);
    }
    rec.payload_len = Some(skip(d, 8).len() as u32);
    Ok(())
}

/// IGMP: an 8-byte message (v3 reports and queries carry more after it).
fn igmp(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    if d.len() < 8 {
        return Err(MalformedKind::IgmpTruncated);
    }
    cx.rec.payload_len = Some(skip(d, 8).len() as u32);
    Ok(())
}

/// GRE (RFC 2784/2890) and enhanced GRE (PPTP, version 1): the header is
/// validated and skipped; the encapsulated packet is the payload.
fn gre(cx: &mut Ctx<'_>, d: &[u8]) -> LayerResult {
    let Some(flags) = be16(d, 0) else {
        return Err(MalformedKind::GreBad);
    };
    let opt = |bit: u16| if flags & bit != 0 { 4 } else { 0 };
    let len = match flags & 0x0007 {
        0 => 4 + opt(0xc000) + opt(0x2000) + opt(0x1000),
        1 => 8 + opt(0x1000) + opt(0x0080),
        _ => return Err(MalformedKind::GreBad),
    };
    if d.len() < len {
        return Err(MalformedKind::GreBad);
    }
    cx.rec.payload_len = Some(skip(d, len).len() as u32);
    Ok(())
}
