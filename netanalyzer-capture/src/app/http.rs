//! HTTP/1.x detection from the first bytes of a TCP payload, on any port.
//!
//! [`decode_request`] recognises a request line `METHOD SP target SP
//! HTTP/1.x` at the very start of the payload and then looks for the first
//! `Host` header in whatever part of the header block was captured.
//! [`is_response`] recognises a status line `HTTP/1.x NNN`.
//!
//! Both run on every TCP payload, so the first byte rejects almost all
//! non-HTTP data: a request must start with an upper-case letter, a
//! response with `H`.

/// Longest method name accepted (`UPDATEREDIRECTREF`).
const MAX_METHOD_LEN: usize = 17;

/// A recognised HTTP/1.x request, borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpRequestView<'a> {
    /// The method (`GET`, `POST`, ...), as sent.
    pub method: &'a str,
    /// The request target as sent (`/index.html`, `*`, `host:443`,
    /// `http://host/path`).
    pub path: &'a str,
    /// The value of the first `Host` header (name matched case-insensitively,
    /// value trimmed of spaces and tabs), as tshark prints `http.host`: the
    /// port stays when sent. `None` when no `Host` line was captured, or its
    /// value is empty or not UTF-8.
    pub host: Option<&'a str>,
}

/// Decodes the request line and `Host` header at the start of `payload`.
///
/// Returns `None` unless the payload starts with a complete request line:
/// a known method (RFC 9110 methods, PATCH, WebDAV, SSDP and a few other
/// methods tshark knows), one space, a non-empty target without spaces or
/// control bytes, one space and `HTTP/1.` plus a digit, then the end of the
/// line (or the end of the captured bytes). A request whose header block is
/// cut short still yields method and path; `host` is found only in the
/// captured bytes (a `Host` line cut short yields what was captured of it).
pub fn decode_request(payload: &[u8]) -> Option<HttpRequestView<'_>> {
    // Fast rejection: every method starts with an upper-case letter.
    if !payload.first()?.is_ascii_uppercase() {
        return None;
    }
    let head = payload.get(..MAX_METHOD_LEN + 1).unwrap_or(payload);
    let sp = head.iter().position(|&b| b == b' ')?;
    let method_bytes = payload.get(..sp)?;
    if !is_known_method(method_bytes) {
        return None;
    }
    let rest = payload.get(sp + 1..)?;
    let target_len = rest.iter().position(|&b| b <= b' ' || b == 0x7f)?;
    if target_len == 0 || rest.get(target_len) != Some(&b' ') {
        return None;
    }
    let target = rest.get(..target_len)?;
    let after = rest.get(target_len + 1..)?;
    let version = after.get(..8)?;
    if !version.starts_with(b"HTTP/1.") || !version[7].is_ascii_digit() {
        return None;
    }
    let line_rest = after.get(8..).unwrap_or(&[]);
    match line_rest.first() {
        None | Some(b'\r') | Some(b'\n') => {}
        Some(_) => return None,
    }
    let method = std::str::from_utf8(method_bytes).ok()?;
    let path = std::str::from_utf8(target).ok()?;
    Some(HttpRequestView {
        method,
        path,
        host: find_host(line_rest),
    })
}

/// Whether `payload` starts with an HTTP/1.x status line: `HTTP/1.x`, one
/// space and three digits.
pub fn is_response(payload: &[u8]) -> bool {
    match payload.get(..12) {
        Some([b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor, b' ', a, b, c]) => {
            minor.is_ascii_digit() && a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()
        }
        _ => false,
    }
}

/// Whether tshark's HTTP dissector knows `m` as a request method.
fn is_known_method(m: &[u8]) -> bool {
    matches!(
        m,
        b"GET"
            | b"PUT"
            | b"ACL"
            | b"HEAD"
            | b"POST"
            | b"COPY"
            | b"MOVE"
            | b"LOCK"
            | b"BIND"
            | b"LINK"
            | b"POLL"
            | b"PATCH"
            | b"TRACE"
            | b"MKCOL"
            | b"MERGE"
            | b"LABEL"
            | b"BCOPY"
            | b"BMOVE"
            | b"DELETE"
            | b"SEARCH"
            | b"UNLOCK"
            | b"REPORT"
            | b"NOTIFY"
            | b"UNBIND"
            | b"UNLINK"
            | b"UPDATE"
            | b"REBIND"
            | b"OPTIONS"
            | b"CONNECT"
            | b"CHECKIN"
            | b"BDELETE"
            | b"PROPFIND"
            | b"CHECKOUT"
            | b"M-SEARCH"
            | b"CCM_POST"
            | b"MKCALENDAR"
            | b"PROPPATCH"
            | b"SUBSCRIBE"
            | b"BPROPFIND"
            | b"MKACTIVITY"
            | b"UNCHECKOUT"
            | b"BPROPPATCH"
            | b"ORDERPATCH"
            | b"MKWORKSPACE"
            | b"UNSUBSCRIBE"
            | b"RPC_IN_DATA"
            | b"RPC_OUT_DATA"
            | b"X-MS-ENUMATTS"
            | b"VERSION-CONTROL"
            | b"BASELINE-CONTROL"
            | b"UPDATEREDIRECTREF"
    )
}

/// The value of the first `Host` header in `headers` (starting at the end of
/// the request line). Stops at the empty line that ends the header block.
fn find_host(headers: &[u8]) -> Option<&str> {
    let mut rest = headers;
    // Each turn consumes one line, so the loop ends.
    loop {
        // Skip the line terminator left by the previous line.
        rest = match rest {
            [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] | [b'\r', tail @ ..] => tail,
            _ => return None,
        };
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        if line.is_empty() {
            // End of the header block (or of the captured bytes).
            return None;
        }
        if let Some(value) = host_value(line) {
            let v = trim(value);
            if v.is_empty() {
                return None;
            }
            return std::str::from_utf8(v).ok();
        }
        rest = tail;
    }
}

/// The value of `line` when it is a `Host:` header line.
fn host_value(line: &[u8]) -> Option<&[u8]> {
    let (name, value) = (line.get(..4)?, line.get(4..)?);
    if !name.eq_ignore_ascii_case(b"host") {
        return None;
    }
    // tshark allows white space between the name and the colon.
    let value = trim_start(value);
    value.strip_prefix(b":")
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    s.get(n..).unwrap_or(&[])
}

fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let n = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    s.get(..n).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testutil::{assert_within, XorShift};

    const FIREFOX_GET: &[u8] = b"GET /wiki/Main_Page HTTP/1.1\r\n\
        Host: en.wikipedia.org\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n\
        Accept: text/html,application/xhtml+xml\r\n\
        Accept-Language: en-US,en;q=0.5\r\n\
        Accept-Encoding: gzip, deflate\r\n\
        Connection: keep-alive\r\n\r\n";

    #[test]
    fn browser_get() {
        let v = decode_request(FIREFOX_GET).unwrap();
        assert_eq!(v.method, "GET");
        assert_eq!(v.path, "/wiki/Main_Page");
        assert_eq!(v.host, Some("en.wikipedia.org"));
        assert!(!is_response(FIREFOX_GET));
    }

    #[test]
    fn every_common_method() {
        for m in [
            "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE", "PATCH",
            "PROPFIND", "MKCOL", "M-SEARCH", "NOTIFY",
        ] {
            let req = format!("{m} /x HTTP/1.0\r\nHost: h\r\n\r\n");
            let v = decode_request(req.as_bytes()).unwrap();
            assert_eq!((v.method, v.path, v.host), (m, "/x", Some("h")), "{m}");
        }
    }

    #[test]
    fn unknown_or_lowercase_methods_are_not_http() {
        for req in [
            &b"get / HTTP/1.1\r\n"[..],
            b"FETCH / HTTP/1.1\r\n",
            b"GETX / HTTP/1.1\r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET / HTTP/2.0\r\n",
            b"GET / HTTP/1.1x\r\n",
            b"GET /a b HTTP/1.1\r\n",
            b"GET /\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"",
            b"G",
        ] {
            assert_eq!(
                decode_request(req),
                None,
                "{:?}",
                String::from_utf8_lossy(req)
            );
        }
    }

    #[test]
    fn host_with_port_lowercase_name_and_spaces() {
        let v = decode_request(b"GET / HTTP/1.1\r\nhost:127.0.0.1:8000\r\n\r\n").unwrap();
        assert_eq!(v.host, Some("127.0.0.1:8000"));
        let v =
            decode_request(b"POST /f HTTP/1.1\r\nAccept: */*\r\nHOST :  \t a.example \t\r\n\r\n")
                .unwrap();
        assert_eq!(v.host, Some("a.example"));
        // Bare LF line ends.
        let v = decode_request(b"GET / HTTP/1.0\nX: y\nHost: lf.example\n\n").unwrap();
        assert_eq!(v.host, Some("lf.example"));
        // The first Host wins.
        let v = decode_request(b"GET / HTTP/1.1\r\nHost: one\r\nHost: two\r\n\r\n").unwrap();
        assert_eq!(v.host, Some("one"));
        // CONNECT with an authority target.
        let v =
            decode_request(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
                .unwrap();
        assert_eq!(
            (v.path, v.host),
            ("example.com:443", Some("example.com:443"))
        );
    }

    #[test]
    fn no_host_or_host_in_body() {
        let v = decode_request(b"GET / HTTP/1.0\r\nAccept: */*\r\n\r\nHost: body\r\n").unwrap();
        assert_eq!(v.host, None);
        let v = decode_request(b"GET / HTTP/1.1\r\nHostile: x\r\nX-Host: y\r\n\r\n").unwrap();
        assert_eq!(v.host, None);
        let v = decode_request(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").unwrap();
        assert_eq!(v.host, None);
    }

    #[test]
    fn cut_short_at_every_offset() {
        let line_end = FIREFOX_GET.iter().position(|&b| b == b'\r').unwrap();
        let host_line_end = line_end + 2 + "Host: en.wikipedia.org".len();
        for n in 0..=FIREFOX_GET.len() {
            let v = decode_request(&FIREFOX_GET[..n]);
            if n < line_end {
                assert_eq!(v, None, "cut at {n}");
                continue;
            }
            let v = v.unwrap();
            assert_eq!((v.method, v.path), ("GET", "/wiki/Main_Page"));
            if n >= host_line_end {
                assert_eq!(v.host, Some("en.wikipedia.org"), "cut at {n}");
            } else if let Some(h) = v.host {
                // A Host line cut short yields the captured part.
                assert!("en.wikipedia.org".starts_with(h), "cut at {n}: {h}");
            }
        }
    }

    #[test]
    fn responses() {
        assert!(is_response(b"HTTP/1.1 200 OK\r\n"));
        assert!(is_response(b"HTTP/1.0 404 Not Found\r\n"));
        assert!(is_response(b"HTTP/1.1 304"));
        assert!(!is_response(b"HTTP/1.1 20"));
        assert!(!is_response(b"HTTP/2 200\r\n"));
        assert!(!is_response(b"HTTP/1.1 2x0 OK\r\n"));
        assert!(!is_response(b"GET / HTTP/1.1\r\n"));
        assert!(!is_response(b""));
    }

    #[test]
    fn binary_payloads_are_not_http() {
        let tls = [
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        assert_eq!(decode_request(&tls), None);
        assert!(!is_response(&tls));
        assert_eq!(decode_request(&[0xff; 64]), None);
        assert_eq!(decode_request(b"GET \xff\xfe HTTP/1.1\r\n"), None);
    }

    #[test]
    fn random_inputs_never_panic_and_borrow() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let alphabet = b"GET POST HTTP/1.1\r\nHost: h:80\t\x00\xff";
        let mut buf = Vec::new();
        let mut hits = 0;
        for i in 0..100_000 {
            buf.clear();
            // Half the inputs start with a valid request line, so that the
            // header scan sees random bytes too.
            if i % 2 == 0 {
                buf.extend_from_slice(b"GET /p HTTP/1.1\r\n");
            }
            let len = rng.below(64);
            for _ in 0..len {
                let b = if rng.below(2) == 0 {
                    alphabet[rng.below(alphabet.len())]
                } else {
                    rng.next() as u8
                };
                buf.push(b);
            }
            if let Some(v) = decode_request(&buf) {
                hits += 1;
                assert_within(&buf, v.method);
                assert_within(&buf, v.path);
                if let Some(h) = v.host {
                    assert_within(&buf, h);
                }
            }
            let _ = is_response(&buf);
        }
        assert!(hits > 10_000);
    }
}
