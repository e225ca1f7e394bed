//! TLS detection from the first bytes of a TCP payload, on any port, and
//! the server name (SNI) of a ClientHello.
//!
//! [`decode`] accepts a payload that starts with a plausible TLS record
//! header: content type 20..=24 (change_cipher_spec, alert, handshake,
//! application_data, heartbeat) and version 3.0 to 3.4 (0x0300..=0x0304).
//! For a handshake record whose first message is a ClientHello it walks to
//! the extensions and returns the `server_name` extension's `host_name`.
//!
//! A ClientHello often spans several TCP segments. The walk then tells two
//! cases apart: the captured bytes simply end (no SNI yet, not malformed),
//! or a length field cannot be right because it runs past the length of
//! the structure around it (malformed). SSLv2-compatible hellos (first
//! byte 0x80) are not TLS records and are ignored.

use super::Cursor;

/// Record content types accepted: change_cipher_spec (20) to heartbeat (24).
const CONTENT_TYPES: std::ops::RangeInclusive<u8> = 20..=24;
/// Handshake content type.
const HANDSHAKE: u8 = 22;
/// ClientHello handshake type.
const CLIENT_HELLO: u8 = 1;
/// The server_name extension (RFC 6066).
const EXT_SERVER_NAME: u16 = 0;
/// The host_name entry of a server_name list.
const NAME_TYPE_HOST: u8 = 0;
/// Largest legal record length: 2^14 plus 2048 bytes of expansion.
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// The first TLS record of a payload, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsView<'a> {
    /// The record's content type (20..=24; 22 is handshake).
    pub content_type: u8,
    /// The record is a handshake whose first message is a ClientHello.
    pub is_client_hello: bool,
    /// The `host_name` of the ClientHello's `server_name` extension, when
    /// it was captured in full, is non-empty and is UTF-8.
    pub sni: Option<&'a str>,
    /// A length field of the ClientHello is impossible (it runs past the
    /// structure that holds it), or the server name is not UTF-8. A
    /// ClientHello that is merely cut short is not malformed.
    pub malformed: bool,
}

/// Decodes the TLS record at the start of `payload`.
///
/// Returns `None` unless the first five bytes are a plausible record
/// header (content type 20..=24, major version 3, minor 0..=4, a length
/// TLS allows: at most 2^14 + 2048). A segment in the middle of a record
/// stream often starts with ciphertext that looks like a header; the length
/// check rejects most of those, as tshark treats them as continuation
/// data rather than a broken record. Only the
/// first record is looked at; for a ClientHello the walk stops at the
/// record's end (a hello continued in a second record yields no SNI when
/// the name lies in the second part).
pub fn decode(payload: &[u8]) -> Option<TlsView<'_>> {
    let header = payload.get(..5)?;
    let content_type = header[0];
    if !CONTENT_TYPES.contains(&content_type) || header[1] != 3 || header[2] > 4 {
        return None;
    }
    let record_len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if record_len > MAX_RECORD_LEN {
        return None;
    }
    let mut view = TlsView {
        content_type,
        is_client_hello: false,
        sni: None,
        malformed: false,
    };
    if content_type != HANDSHAKE {
        return Some(view);
    }
    let body = payload.get(5..).unwrap_or(&[]);
    let body = body.get(..record_len).unwrap_or(body);
    let mut c = Cursor::new(body);
    let Some(handshake_type) = c.u8() else {
        return Some(view);
    };
    if handshake_type != CLIENT_HELLO {
        return Some(view);
    }
    view.is_client_hello = true;
    match client_hello_sni(body) {
        Ok(sni) => view.sni = sni,
        Err(Stop::Truncated) => {}
        Err(Stop::Impossible) => view.malformed = true,
    }
    Some(view)
}

/// Why the ClientHello walk stopped before finding an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The captured bytes end.
    Truncated,
    /// A length runs past the structure that holds it.
    Impossible,
}

/// A reader that knows two ends: where the captured bytes stop and where
/// the enclosing structure says its content stops.
struct Bounded<'a> {
    c: Cursor<'a>,
    /// Declared end of the current structure (offset into the buffer).
    limit: usize,
}

impl<'a> Bounded<'a> {
    /// Reads `n` bytes: impossible past `limit`, truncated past the data.
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        if self.c.pos().saturating_add(n) > self.limit {
            return Err(Stop::Impossible);
        }
        self.c.take(n).ok_or(Stop::Truncated)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Stop> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Declares a nested structure of `len` bytes from here; returns the
    /// outer limit, to restore with [`Bounded::leave`].
    fn enter(&mut self, len: usize) -> Result<usize, Stop> {
        let end = self.c.pos().saturating_add(len);
        if end > self.limit {
            return Err(Stop::Impossible);
        }
        Ok(std::mem::replace(&mut self.limit, end))
    }

    fn leave(&mut self, outer: usize) {
        self.limit = outer;
    }

    fn at_limit(&self) -> bool {
        self.c.pos() >= self.limit
    }
}

/// Walks a ClientHello handshake message (`hs` starts at its type byte,
/// ends at the record's end) to the server name.
fn client_hello_sni(hs: &[u8]) -> Result<Option<&str>, Stop> {
    let mut r = Bounded {
        c: Cursor::new(hs),
        limit: usize::MAX,
    };
    r.take(1)?; // handshake type
    let len = r.take(3)?;
    let hello_len = (usize::from(len[0]) << 16) | (usize::from(len[1]) << 8) | usize::from(len[2]);
    // The message may continue in a later record, so it is bounded by its
    // own length only; the record end shows up as the data ending.
    r.enter(hello_len)?;
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    let session_id_len = r.u8()?;
    if session_id_len > 32 {
        return Err(Stop::Impossible);
    }
    r.take(usize::from(session_id_len))?;
    let suites_len = r.u16()?;
    r.take(usize::from(suites_len))?;
    let compression_len = r.u8()?;
    r.take(usize::from(compression_len))?;
    if r.at_limit() {
        // A hello without extensions (SSL 3.0 style).
        return Ok(None);
    }
    let extensions_len = r.u16()?;
    r.enter(usize::from(extensions_len))?;
    // Each turn consumes at least the 4-byte extension header.
    while !r.at_limit() {
        let ext_type = r.u16()?;
        let ext_len = usize::from(r.u16()?);
        if ext_type != EXT_SERVER_NAME {
            r.take(ext_len)?;
            continue;
        }
        let ext_start = r.c.pos();
        let outer = r.enter(ext_len)?;
        if !r.at_limit() {
            let list_len = usize::from(r.u16()?);
            r.enter(list_len)?;
            // Each turn consumes at least the 3-byte entry header.
            while !r.at_limit() {
                let name_type = r.u8()?;
                let name_len = usize::from(r.u16()?);
                let name = r.take(name_len)?;
                if name_type == NAME_TYPE_HOST {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    return std::str::from_utf8(name)
                        .map(Some)
                        .map_err(|_| Stop::Impossible);
                }
            }
        }
        // No host_name in this extension (an empty one, as servers send,
        // or other name types): go on after it.
        r.leave(outer);
        let consumed = r.c.pos().saturating_sub(ext_start);
        r.take(ext_len.saturating_sub(consumed))?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testutil::{assert_within, XorShift};

    fn ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
        out.extend(ty.to_be_bytes());
        out.extend((data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }

    fn with_len16(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }

    /// A ClientHello shaped like Firefox 115's: TLS 1.3 with a legacy
    /// session id, 17 cipher suites and its extensions in its order.
    /// Returns the record and the offset just past the host name.
    fn firefox_client_hello(host: &str) -> (Vec<u8>, usize) {
        let mut exts = Vec::new();
        let mut sni = vec![0];
        sni.extend(with_len16(host.as_bytes()));
        ext(&mut exts, 0, &with_len16(&sni));
        let sni_end_in_exts = exts.len();
        ext(&mut exts, 23, &[]); // extended_master_secret
        ext(&mut exts, 65281, &[0]); // renegotiation_info
        ext(
            &mut exts,
            10,
            &with_len16(&[0, 0x1d, 0, 0x17, 0, 0x18, 0, 0x19, 1, 0, 1, 1]),
        ); // supported_groups
        ext(&mut exts, 11, &[1, 0]); // ec_point_formats
        ext(&mut exts, 35, &[]); // session_ticket
        let mut alpn = vec![2];
        alpn.extend(b"h2");
        alpn.push(8);
        alpn.extend(b"http/1.1");
        ext(&mut exts, 16, &with_len16(&alpn)); // ALPN
        ext(&mut exts, 5, &[1, 0, 0, 0, 0]); // status_request
        ext(&mut exts, 34, &with_len16(&[4, 3, 5, 3, 6, 3, 2, 3])); // delegated_credentials
        let mut ks = vec![0, 0x1d, 0, 32];
        ks.extend([0x5a; 32]);
        ks.extend([0, 0x17, 0, 65, 4]);
        ks.extend([0xa5; 64]);
        ext(&mut exts, 51, &with_len16(&ks)); // key_share
        ext(&mut exts, 43, &[4, 3, 4, 3, 3]); // supported_versions
        ext(
            &mut exts,
            13,
            &with_len16(&[
                4, 3, 5, 3, 6, 3, 8, 4, 8, 5, 8, 6, 4, 1, 5, 1, 6, 1, 2, 3, 2, 1,
            ]),
        ); // signature_algorithms
        ext(&mut exts, 45, &[1, 1]); // psk_key_exchange_modes
        ext(&mut exts, 28, &[0x40, 1]); // record_size_limit
        ext(&mut exts, 21, &[0; 139]); // padding

        let suites: [u16; 17] = [
            0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009,
            0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let mut hello = vec![3, 3];
        hello.extend([0x11; 32]); // random
        hello.push(32);
        hello.extend([0x22; 32]); // session id
        hello.extend(((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            hello.extend(s.to_be_bytes());
        }
        hello.extend([1, 0]); // compression: null
        hello.extend((exts.len() as u16).to_be_bytes());
        let exts_start = hello.len();
        hello.extend(&exts);

        let mut hs = vec![1];
        hs.extend(&(hello.len() as u32).to_be_bytes()[1..]);
        let hello_start = hs.len();
        hs.extend(&hello);

        let mut rec = vec![22, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        let hs_start = rec.len();
        rec.extend(&hs);
        (rec, hs_start + hello_start + exts_start + sni_end_in_exts)
    }

    #[test]
    fn browser_client_hello() {
        let (rec, _) = firefox_client_hello("www.iit.cnr.it");
        let v = decode(&rec).unwrap();
        assert_eq!(v.content_type, 22);
        assert!(v.is_client_hello);
        assert_eq!(v.sni, Some("www.iit.cnr.it"));
        assert!(!v.malformed);
    }

    #[test]
    fn client_hello_cut_at_every_offset() {
        let (rec, sni_end) = firefox_client_hello("api-global.netflix.com");
        for n in 0..=rec.len() {
            let v = decode(&rec[..n]);
            if n < 5 {
                assert_eq!(v, None, "cut at {n}");
                continue;
            }
            let v = v.unwrap();
            assert_eq!(v.content_type, 22);
            assert!(!v.malformed, "cut at {n}");
            assert_eq!(v.is_client_hello, n >= 6, "cut at {n}");
            let want = (n >= sni_end).then_some("api-global.netflix.com");
            assert_eq!(v.sni, want, "cut at {n}");
        }
    }

    #[test]
    fn impossible_lengths_are_malformed() {
        let (rec, _) = firefox_client_hello("example.com");
        // Session id longer than 32.
        let mut bad = rec.clone();
        bad[5 + 4 + 2 + 32] = 33;
        assert!(decode(&bad).unwrap().malformed);
        // Extensions block longer than the hello.
        let ext_len_at = 5 + 4 + 2 + 32 + 1 + 32 + 2 + 34 + 2;
        let mut bad = rec.clone();
        bad[ext_len_at] = 0xff;
        let v = decode(&bad).unwrap();
        assert!(v.malformed);
        assert_eq!(v.sni, None);
        // The SNI list length larger than the extension.
        let mut bad = rec.clone();
        bad[ext_len_at + 2 + 4] = 0x7f;
        assert!(decode(&bad).unwrap().malformed);
        // A "record" longer than TLS allows is no record header at all
        // (ciphertext at the start of a continuation segment).
        let mut bad = rec.clone();
        bad[3] = 0xff;
        assert_eq!(decode(&bad), None);
        let continuation = [0x15, 0x03, 0x02, 0xc1, 0x07, 0x9a, 0x33];
        assert_eq!(decode(&continuation), None);
        // A non-UTF-8 host name.
        let (mut bad, sni_end) = firefox_client_hello("ab");
        bad[sni_end - 1] = 0xff;
        let v = decode(&bad).unwrap();
        assert_eq!((v.sni, v.malformed), (None, true));
    }

    #[test]
    fn hello_without_sni_or_extensions() {
        let mut hello = vec![3, 1];
        hello.extend([0; 32]);
        hello.push(0);
        hello.extend([0, 2, 0, 0x2f, 1, 0]);
        let mut rec = vec![
            22,
            3,
            1,
            0,
            (hello.len() + 4) as u8,
            1,
            0,
            0,
            hello.len() as u8,
        ];
        rec.extend(&hello);
        let v = decode(&rec).unwrap();
        assert!(v.is_client_hello);
        assert_eq!((v.sni, v.malformed), (None, false));
    }

    #[test]
    fn server_hello_and_other_records() {
        // ServerHello (TLS 1.2) with an empty server_name extension.
        let mut sh = vec![3, 3];
        sh.extend([0x33; 32]);
        sh.push(0);
        sh.extend([0xc0, 0x2f, 0]);
        sh.extend([0, 4, 0, 0, 0, 0]);
        let mut rec = vec![22, 3, 3, 0, (sh.len() + 4) as u8, 2, 0, 0, sh.len() as u8];
        rec.extend(&sh);
        let v = decode(&rec).unwrap();
        assert_eq!(
            v,
            TlsView {
                content_type: 22,
                is_client_hello: false,
                sni: None,
                malformed: false
            }
        );
        // Application data, change cipher spec, alert, heartbeat.
        for (ty, body) in [
            (23u8, &[1u8, 2, 3][..]),
            (20, &[1]),
            (21, &[2, 40]),
            (24, &[1, 0x40, 0]),
        ] {
            let mut rec = vec![ty, 3, 3, 0, body.len() as u8];
            rec.extend_from_slice(body);
            let v = decode(&rec).unwrap();
            assert_eq!(
                (v.content_type, v.is_client_hello, v.malformed),
                (ty, false, false)
            );
        }
    }

    #[test]
    fn non_tls_payloads() {
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(decode(b"SSH-2.0-OpenSSH_9.2\r\n"), None);
        assert_eq!(decode(&[22, 3, 5, 0, 1, 1]), None); // version 3.5
        assert_eq!(decode(&[22, 2, 0, 0, 1, 1]), None); // SSL 2 version
        assert_eq!(decode(&[25, 3, 3, 0, 1, 1]), None); // unknown type
        assert_eq!(decode(&[0x80, 0x2e, 0x01, 0x03, 0x01]), None); // SSLv2 hello
        assert_eq!(decode(&[22, 3, 1, 0]), None); // header cut short
        assert_eq!(decode(&[]), None);
    }

    #[test]
    fn random_inputs_never_panic_and_borrow() {
        let (rec, _) = firefox_client_hello("fuzz.example");
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let mut buf = Vec::new();
        let mut found = 0;
        for i in 0..100_000 {
            buf.clear();
            if i % 2 == 0 {
                // Mutate a real hello: flip a few bytes, cut it somewhere.
                buf.extend_from_slice(&rec[..rng.below(rec.len() + 1)]);
                for _ in 0..rng.below(4) {
                    if !buf.is_empty() {
                        let at = rng.below(buf.len());
                        buf[at] = rng.next() as u8;
                    }
                }
            } else {
                buf.extend([22, 3, rng.below(5) as u8]);
                let len = rng.below(300);
                buf.extend((0..len).map(|_| rng.next() as u8));
            }
            if let Some(v) = decode(&buf) {
                if let Some(s) = v.sni {
                    found += 1;
                    assert!(v.is_client_hello);
                    assert_within(&buf, s);
                }
            }
        }
        assert!(found > 1000);
    }
}
