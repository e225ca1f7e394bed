//! Application payload encoders: DNS messages, HTTP/1.1 heads and bodies,
//! TLS records (ClientHello with SNI, ServerHello, encrypted-looking data).
//! Everything appends to a caller-owned `Vec<u8>`.
use super::rng::Rng;
use std::io::Write;

/// DNS query types used by the generator.
pub(crate) const QTYPE_A: u16 = 1;
pub(crate) const QTYPE_TXT: u16 = 16;
pub(crate) const QTYPE_AAAA: u16 = 28;
pub(crate) const QTYPE_ANY: u16 = 255;

/// Appends a domain name in DNS wire format (no compression).
pub(crate) fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

/// Appends an EDNS(0) OPT pseudo-record advertising `udp_size`.
fn dns_opt(out: &mut Vec<u8>, udp_size: u16) {
    out.push(0); // root name
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&udp_size.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // ext rcode, version, flags, rdlen
}

/// Appends a standard recursive query for `name`/`qtype` class IN.
pub(crate) fn dns_query(out: &mut Vec<u8>, id: u16, name: &str, qtype: u16, edns: bool) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    dns_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        dns_opt(out, 4096);
    }
}

/// Appends a response header plus the echoed question; answers follow.
fn dns_response_head(
    out: &mut Vec<u8>,
    id: u16,
    rcode: u8,
    name: &str,
    qtype: u16,
    an: u16,
    ar: u16,
) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(0x8180u16 | u16::from(rcode & 0x0f)).to_be_bytes()); // QR RD RA
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&an.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&ar.to_be_bytes());
    dns_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
}

/// Appends one answer record whose owner is the question name (pointer
/// 0xc00c).
fn dns_rr(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Appends an A/AAAA response with `answers` addresses (an empty slice and
/// `nxdomain` gives rcode 3).
pub(crate) fn dns_address_response(
    out: &mut Vec<u8>,
    id: u16,
    name: &str,
    qtype: u16,
    answers: &[[u8; 16]],
    nxdomain: bool,
    ttl: u32,
) {
    let rcode = if nxdomain { 3 } else { 0 };
    let n = if nxdomain { 0 } else { answers.len() as u16 };
    dns_response_head(out, id, rcode, name, qtype, n, 0);
    if nxdomain {
        return;
    }
    for a in answers {
        if qtype == QTYPE_AAAA {
            dns_rr(out, QTYPE_AAAA, ttl, a);
        } else {
            dns_rr(out, QTYPE_A, ttl, &a[..4]);
        }
    }
}

/// Appends a large ANY response as used for amplification: A, AAAA and
/// TXT records (SPF/verification strings) until the message is about
/// `target` bytes, plus an OPT record. The result stays below `target`.
pub(crate) fn dns_any_response(
    out: &mut Vec<u8>,
    id: u16,
    name: &str,
    target: usize,
    rng: &mut Rng,
) {
    let start = out.len();
    // Count: 2 A + 2 AAAA + k TXT, fill until target.
    let head_len = 12 + name.len() + 2 + 4;
    let fixed = 2 * (12 + 4) + 2 * (12 + 16) + 11;
    let txt_each = 12 + 1 + 240;
    let k = target.saturating_sub(head_len + fixed) / txt_each;
    dns_response_head(out, id, 0, name, QTYPE_ANY, (4 + k) as u16, 1);
    let mut rd = [0u8; 241];
    for i in 0..2u8 {
        dns_rr(out, QTYPE_A, 3600, &[198, 51, 100, 10 + i]);
    }
    for i in 0..2u8 {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = 0x10 + i;
        dns_rr(out, QTYPE_AAAA, 3600, &a);
    }
    const TXT: &[u8] = b"v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/24 ip6:2001:db8::/32 include:_spf.example.net include:_spf.example.org ~all google-site-verification=";
    for _ in 0..k {
        rd[0] = 240;
        let fixed_part = TXT.len().min(240);
        rd[1..1 + fixed_part].copy_from_slice(&TXT[..fixed_part]);
        for b in rd[1 + fixed_part..].iter_mut() {
            *b = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                [(rng.next_u64() & 63) as usize];
        }
        dns_rr(out, QTYPE_TXT, 300, &rd);
    }
    dns_opt(out, 4096);
    debug_assert!(out.len() - start <= target + 64);
}

/// Appends an HTTP/1.1 request head (and `body_len` bytes of form data).
pub(crate) fn http_request(
    out: &mut Vec<u8>,
    method: &str,
    host: &str,
    path: &str,
    ua: &str,
    body_len: usize,
) {
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
    );
    if body_len > 0 {
        let _ = write!(
            out,
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n\r\n"
        );
        for i in 0..body_len {
            out.push(b"user=alice&item=42&q=widgets&"[i % 29]);
        }
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends an HTTP/1.1 response head announcing `body_len` bytes.
pub(crate) fn http_response_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body_len: usize,
) {
    let reason = match status {
        200 => "OK",
        301 => "Moved Permanently",
        304 => "Not Modified",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nServer: nginx/1.24.0\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: {content_type}\r\nContent-Length: {body_len}\r\nConnection: keep-alive\r\nCache-Control: max-age=3600\r\n\r\n"
    );
}

/// HTML-ish filler for response bodies; byte `i` of a body is
/// `BODY[i % BODY.len()]`, so any slice can be produced on its own.
pub(crate) const BODY: &[u8] = b"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Example Domain</title></head><body><div><h1>Example Domain</h1><p>This domain is for use in illustrative examples in documents.</p><p><a href=\"https://www.iana.org/domains/example\">More information...</a></p></div></body></html>\n";

/// Appends body bytes `off..off + len` of the filler.
pub(crate) fn body_slice(out: &mut Vec<u8>, off: usize, len: usize) {
    let mut i = off % BODY.len();
    let mut left = len;
    while left > 0 {
        let n = left.min(BODY.len() - i);
        out.extend_from_slice(&BODY[i..i + n]);
        left -= n;
        i = 0;
    }
}

/// Cipher suites offered by the ClientHello (TLS 1.3 then 1.2 suites).
const CIPHERS: &[u16] = &[
    0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009, 0xc013,
    0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
];

/// Appends a TLS record holding a ClientHello for `sni`, shaped like a
/// current browser's: TLS 1.3 with 1.2 fallback, SNI, EMS, renegotiation
/// info, groups, point formats, session ticket, ALPN, status request,
/// signature algorithms, SCT, key share (x25519), PSK modes, supported
/// versions and padding to 512 bytes. Random fields come from `rng`.
pub(crate) fn tls_client_hello(out: &mut Vec<u8>, sni: &str, rng: &mut Rng) {
    let rec = out.len();
    out.extend_from_slice(&[0x16, 0x03, 0x01, 0, 0]);
    let hs = out.len();
    out.extend_from_slice(&[0x01, 0, 0, 0, 0x03, 0x03]);
    rng.extend(out, 32); // random
    out.push(32);
    rng.extend(out, 32); // legacy session id
    out.extend_from_slice(&((CIPHERS.len() * 2) as u16).to_be_bytes());
    for c in CIPHERS {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&[1, 0]); // compression: null
    let ext = out.len();
    out.extend_from_slice(&[0, 0]);
    // server_name
    let n = sni.len() as u16;
    out.extend_from_slice(&[0x00, 0x00]);
    out.extend_from_slice(&(n + 5).to_be_bytes());
    out.extend_from_slice(&(n + 3).to_be_bytes());
    out.push(0);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(sni.as_bytes());
    // extended_master_secret, renegotiation_info
    out.extend_from_slice(&[0x00, 0x17, 0, 0, 0xff, 0x01, 0, 1, 0]);
    // supported_groups: x25519, secp256r1, secp384r1, secp521r1, ffdhe2048
    out.extend_from_slice(&[
        0x00, 0x0a, 0, 12, 0, 10, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19, 0x01, 0x00,
    ]);
    // ec_point_formats: uncompressed
    out.extend_from_slice(&[0x00, 0x0b, 0, 2, 1, 0]);
    // session_ticket (empty)
    out.extend_from_slice(&[0x00, 0x23, 0, 0]);
    // ALPN: h2, http/1.1
    out.extend_from_slice(&[0x00, 0x10, 0, 14, 0, 12, 2, b'h', b'2', 8]);
    out.extend_from_slice(b"http/1.1");
    // status_request (OCSP)
    out.extend_from_slice(&[0x00, 0x05, 0, 5, 1, 0, 0, 0, 0]);
    // signature_algorithms
    out.extend_from_slice(&[0x00, 0x0d, 0, 18, 0, 16]);
    for s in [
        0x0403u16, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ] {
        out.extend_from_slice(&s.to_be_bytes());
    }
    // signed_certificate_timestamp
    out.extend_from_slice(&[0x00, 0x12, 0, 0]);
    // key_share: x25519 with a 32-byte key
    out.extend_from_slice(&[0x00, 0x33, 0, 38, 0, 36, 0x00, 0x1d, 0, 32]);
    rng.extend(out, 32);
    // psk_key_exchange_modes: psk_dhe_ke
    out.extend_from_slice(&[0x00, 0x2d, 0, 2, 1, 1]);
    // supported_versions: TLS 1.3, TLS 1.2
    out.extend_from_slice(&[0x00, 0x2b, 0, 5, 4, 0x03, 0x04, 0x03, 0x03]);
    // padding (RFC 7685) so the ClientHello body reaches 512 bytes
    let so_far = out.len() - hs + 4;
    let pad = 512usize.saturating_sub(so_far);
    out.extend_from_slice(&[0x00, 0x15]);
    out.extend_from_slice(&(pad as u16).to_be_bytes());
    out.resize(out.len() + pad, 0);
    let ext_len = (out.len() - ext - 2) as u16;
    out[ext..ext + 2].copy_from_slice(&ext_len.to_be_bytes());
    let hs_len = (out.len() - hs - 4) as u32;
    out[hs + 1..hs + 4].copy_from_slice(&hs_len.to_be_bytes()[1..]);
    let rec_len = (out.len() - rec - 5) as u16;
    out[rec + 3..rec + 5].copy_from_slice(&rec_len.to_be_bytes());
}

/// Appends a ServerHello record (TLS 1.3, x25519 key share) followed by a
/// ChangeCipherSpec record. Random fields come from `rng`.
pub(crate) fn tls_server_hello(out: &mut Vec<u8>, rng: &mut Rng) {
    let rec = out.len();
    out.extend_from_slice(&[0x16, 0x03, 0x03, 0, 0]);
    let hs = out.len();
    out.extend_from_slice(&[0x02, 0, 0, 0, 0x03, 0x03]);
    rng.extend(out, 32);
    out.push(32);
    rng.extend(out, 32);
    out.extend_from_slice(&[0x13, 0x01, 0x00]);
    out.extend_from_slice(&[
        0, 46, 0x00, 0x2b, 0, 2, 0x03, 0x04, 0x00, 0x33, 0, 36, 0x00, 0x1d, 0, 32,
    ]);
    rng.extend(out, 32);
    let hs_len = (out.len() - hs - 4) as u32;
    out[hs + 1..hs + 4].copy_from_slice(&hs_len.to_be_bytes()[1..]);
    let rec_len = (out.len() - rec - 5) as u16;
    out[rec + 3..rec + 5].copy_from_slice(&rec_len.to_be_bytes());
    out.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
}

/// Largest TLS application-data record payload used (16 KiB + AEAD tag).
const TLS_REC: usize = 16_384 + 17;

/// The nearest stream size `>= want` that [`tls_app_stream`] can lay out:
/// every record, the last one included, needs its 5-byte header and at
/// least one byte of ciphertext.
pub(crate) fn tls_stream_len(want: usize) -> usize {
    let unit = TLS_REC + 5;
    match want % unit {
        0 if want > 0 => want,
        tail if tail < 6 => want + (6 - tail),
        _ => want,
    }
}

/// Appends bytes `off..off + len` of a stream of application-data records
/// (`0x17 0x03 0x03 len` + random ciphertext) whose total size is `total`
/// bytes (headers included). Headers are computed from the offset, the
/// ciphertext comes from `rng`.
pub(crate) fn tls_app_stream(
    out: &mut Vec<u8>,
    off: usize,
    len: usize,
    total: usize,
    rng: &mut Rng,
) {
    let unit = TLS_REC + 5;
    debug_assert_eq!(
        tls_stream_len(total),
        total,
        "use tls_stream_len for the total"
    );
    debug_assert!(off + len <= total);
    let mut o = off;
    let end = off + len;
    while o < end {
        let r = o / unit;
        let within = o % unit;
        let rec_start = r * unit;
        let rec_len = (total - rec_start).min(unit) - 5;
        if within < 5 {
            let hdr = [0x17, 0x03, 0x03, (rec_len >> 8) as u8, rec_len as u8];
            let n = (5 - within).min(end - o);
            out.extend_from_slice(&hdr[within..within + n]);
            o += n;
        } else {
            let n = (rec_start + 5 + rec_len - o).min(end - o);
            rng.extend(out, n);
            o += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_stream_len_leaves_room_for_every_record_header() {
        let unit = TLS_REC + 5;
        for want in [
            0,
            1,
            5,
            6,
            60,
            unit - 1,
            unit,
            unit + 1,
            unit + 5,
            unit + 6,
            3 * unit + 2,
        ] {
            let total = tls_stream_len(want);
            assert!(total >= want && total <= want + 6, "{want} -> {total}");
            let tail = total % unit;
            assert!(tail == 0 || tail >= 6, "{want} -> {total}");
            let mut out = Vec::new();
            tls_app_stream(&mut out, 0, total, total, &mut Rng::new(1));
            assert_eq!(out.len(), total);
        }
    }

    #[test]
    fn client_hello_parses_with_sni() {
        let mut out = Vec::new();
        let mut rng = Rng::new(1);
        tls_client_hello(&mut out, "www.example.com", &mut rng);
        assert_eq!(out.len(), 5 + 512);
        assert_eq!(
            usize::from(u16::from_be_bytes([out[3], out[4]])),
            out.len() - 5
        );
        let needle = b"www.example.com";
        assert!(out.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn tls_stream_headers_line_up() {
        let mut rng = Rng::new(1);
        let total = 40_000;
        let mut whole = Vec::new();
        tls_app_stream(&mut whole, 0, total, total, &mut rng);
        let mut pieces = Vec::new();
        let mut o = 0;
        while o < total {
            let n = 1448.min(total - o);
            tls_app_stream(&mut pieces, o, n, total, &mut rng);
            o += n;
        }
        assert_eq!(whole.len(), total);
        assert_eq!(pieces.len(), total);
        // Walk the records.
        let mut p = 0;
        while p < total {
            assert_eq!(&pieces[p..p + 3], &[0x17, 0x03, 0x03]);
            p += 5 + usize::from(u16::from_be_bytes([pieces[p + 3], pieces[p + 4]]));
        }
        assert_eq!(p, total);
    }

    #[test]
    fn dns_messages_well_formed() {
        let mut q = Vec::new();
        dns_query(&mut q, 0x1234, "www.example.com", QTYPE_A, false);
        assert_eq!(q.len(), 12 + 17 + 4);
        let mut big = Vec::new();
        dns_any_response(&mut big, 1, "example.org", 1400, &mut Rng::new(3));
        assert!(big.len() <= 1472 && big.len() > 1100, "{}", big.len());
        let mut body = Vec::new();
        body_slice(&mut body, 5, 1000);
        assert_eq!(body.len(), 1000);
        assert_eq!(body[0], BODY[5]);
    }
}
