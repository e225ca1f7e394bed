//! DNS (and mDNS) messages: the header flags and the first question.
//!
//! [`decode`] reads the 12-byte header and, when `qdcount > 0`, expands
//! the first question's name once to check it and find where the type
//! follows; the name itself stays a borrowed [`NameView`] and is only
//! formatted when a record asks for it ([`NameView::write_to`]).
//!
//! The expansion mirrors tshark 4.0's `get_dns_name`, quirks included, so
//! that `dns_qname` matches `dns.qry.name` (checked on 60,000 generated
//! messages against tshark 4.0.17, no difference):
//! - labels are joined by `.` (a `.` inside a label is not escaped);
//! - the name prints as `<Root>` when its expansion starts with a zero byte
//!   (empty, or a first label starting with 0x00) and it takes at most two
//!   bytes in place (the root, or a single pointer);
//! - more than 253 bytes print as `<Name too long>`;
//! - the 255th compression pointer, or a pointer whose target is its own
//!   offset plus 4, ends the name as `<Name contains a pointer that loops>`;
//!   the question's type then follows the first pointer;
//! - an extended label type other than bit-string (0x42..0x7f) prints the
//!   whole name as `<Unknown extended label>` and the type follows that
//!   byte; bit-string labels (0x41) take room in the buffer but not in the
//!   printed length, as in tshark;
//! - the reserved type (0x80), an extended label as the first byte, or a
//!   name, type or class cut short is malformed and yields no question;
//! - bytes are printed as tshark's `format_text` does: printable ASCII as
//!   is; other ASCII as `\a \b \t \n \v \f \r` or a 3-digit octal
//!   escape; UTF-8 decoded leniently (overlong and old 5/6-byte forms
//!   accepted), printable characters kept, others as `\uXXXX` or
//!   `\UXXXXXXXX`; bytes that do not decode, surrogates and values above
//!   U+10FFFF as U+FFFD.
//!
//! mDNS (port 5353) uses the same format; there the top bit of the question
//! class asks for a unicast response ([`DnsQuestionView::unicast_response`]).

use std::fmt;

use netanalyzer_core::MalformedKind;

use super::unicode;
use super::Cursor;

/// Size of the fixed DNS header.
const HEADER_LEN: usize = 12;
/// Longest name tshark prints, in bytes (labels plus the dots between them).
const MAX_NAME_LEN: usize = 253;
/// How many compression pointers one name may follow; tshark 4.0.17
/// reports a loop at the next one (measured).
const MAX_POINTERS: u32 = 254;
/// Cap on labels visited while walking one name. Only a crafted message
/// that points many times at a long run of labels gets near it; at the cap
/// the name is reported as a loop. It bounds the walk to about 64 Ki steps.
const MAX_STEPS: u32 = 1 << 16;

/// tshark's text for a name whose pointers loop.
const LOOP_TEXT: &str = "<Name contains a pointer that loops>";
/// tshark's text for a name over [`MAX_NAME_LEN`] bytes.
const TOO_LONG_TEXT: &str = "<Name too long>";
/// tshark's text for a name with an unknown extended label type.
const UNKNOWN_EXTENDED_TEXT: &str = "<Unknown extended label>";
/// tshark's text for the root (empty) name.
const ROOT_TEXT: &str = "<Root>";

/// A decoded DNS message header and its first question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsView<'a> {
    /// The QR bit: the message is a response.
    pub is_response: bool,
    /// The first question, when the header counts at least one.
    pub question: Option<DnsQuestionView<'a>>,
}

/// The first question of a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsQuestionView<'a> {
    /// QTYPE (1 = A, 28 = AAAA, 12 = PTR, ...).
    pub qtype: u16,
    /// QCLASS as on the wire (for mDNS the top bit is the unicast-response
    /// bit; see [`DnsQuestionView::class`]).
    pub qclass: u16,
    /// The question name, borrowed from the message.
    pub name: NameView<'a>,
}

impl DnsQuestionView<'_> {
    /// The class without the mDNS unicast-response bit (1 = IN).
    pub const fn class(&self) -> u16 {
        self.qclass & 0x7fff
    }

    /// The mDNS unicast-response ("QU") bit: the top bit of QCLASS.
    pub const fn unicast_response(&self) -> bool {
        self.qclass & 0x8000 != 0
    }
}

/// What expanding a name found (tshark's cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    /// Printable labels (the first `len` bytes of the expansion buffer).
    Labels,
    /// The root name (also any name whose expansion starts with a zero
    /// byte and whose bytes in place are at most 2: tshark tests `*name`).
    Root,
    /// More than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// Too many compression pointers, or one tshark takes for a loop.
    Loops,
    /// An extended label type tshark does not know.
    UnknownExtended,
}

/// The result of expanding a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expanded {
    /// Offset (in the message) where the question's type follows.
    end: usize,
    kind: NameKind,
    /// How many bytes of the expansion buffer tshark prints.
    len: usize,
}

/// Size of tshark's name buffer (`MAX_DNAME_LEN`), terminating zero
/// included.
const NAME_BUF: usize = MAX_NAME_LEN + 2;

/// A domain name inside a DNS message: the message and the offset where the
/// name starts. Already checked by [`decode`]; printing it expands the name
/// again into a stack buffer (no allocation besides the output string).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NameView<'a> {
    msg: &'a [u8],
    offset: usize,
    kind: NameKind,
}

impl fmt::Debug for NameView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameView({:?} @ {})", self.to_string(), self.offset)
    }
}

impl NameView<'_> {
    /// Where the name starts in the message.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The name is the root (tshark prints `<Root>`).
    pub fn is_root(&self) -> bool {
        self.kind == NameKind::Root
    }

    /// The name's compression pointers loop (tshark prints
    /// `<Name contains a pointer that loops>`).
    pub fn loops(&self) -> bool {
        self.kind == NameKind::Loops
    }

    /// The name is longer than 253 bytes (tshark prints `<Name too long>`).
    pub fn too_long(&self) -> bool {
        self.kind == NameKind::TooLong
    }

    /// Appends the name as tshark 4.0 prints `dns.qry.name` (see the module
    /// documentation for the rules).
    pub fn write_to(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = self.write_fmt_to(out);
    }

    fn write_fmt_to<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        match self.kind {
            NameKind::Root => out.write_str(ROOT_TEXT),
            NameKind::Loops => out.write_str(LOOP_TEXT),
            NameKind::TooLong => out.write_str(TOO_LONG_TEXT),
            NameKind::UnknownExtended => out.write_str(UNKNOWN_EXTENDED_TEXT),
            NameKind::Labels => {
                let mut buf = [0u8; NAME_BUF];
                // decode() expanded this name already; expanding again
                // gives the same result.
                match expand(self.msg, self.offset, &mut buf) {
                    Some(e) if e.kind == NameKind::Labels => {
                        format_text(buf.get(..e.len).unwrap_or(&[]), out)
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for NameView<'_> {
    /// The name as tshark prints it (same as [`NameView::write_to`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_fmt_to(f)
    }
}

/// Decodes a DNS message: the header flags and the first question.
///
/// `msg` is the whole message (a UDP payload; over TCP the caller strips the
/// 2-byte length prefix). Compression pointers are offsets into `msg`.
///
/// # Errors
///
/// [`MalformedKind::DnsBad`] when the header is shorter than 12 bytes, or
/// the header counts a question whose name, type or class is cut short or
/// that tshark rejects (reserved label type, misplaced extended label);
/// tshark then prints no name either.
pub fn decode(msg: &[u8]) -> Result<DnsView<'_>, MalformedKind> {
    let mut c = Cursor::new(msg);
    let _id = c.u16().ok_or(MalformedKind::DnsBad)?;
    let flags = c.u16().ok_or(MalformedKind::DnsBad)?;
    let qdcount = c.u16().ok_or(MalformedKind::DnsBad)?;
    c.skip(HEADER_LEN - 6).ok_or(MalformedKind::DnsBad)?;
    let is_response = flags & 0x8000 != 0;
    if qdcount == 0 {
        return Ok(DnsView {
            is_response,
            question: None,
        });
    }
    let mut buf = [0u8; NAME_BUF];
    let e = expand(msg, HEADER_LEN, &mut buf).ok_or(MalformedKind::DnsBad)?;
    let mut c = Cursor::new(msg);
    c.skip(e.end).ok_or(MalformedKind::DnsBad)?;
    let qtype = c.u16().ok_or(MalformedKind::DnsBad)?;
    let qclass = c.u16().ok_or(MalformedKind::DnsBad)?;
    Ok(DnsView {
        is_response,
        question: Some(DnsQuestionView {
            qtype,
            qclass,
            name: NameView {
                msg,
                offset: HEADER_LEN,
                kind: e.kind,
            },
        }),
    })
}

/// tshark's name buffer: bytes are stored while room is left (`maxname`);
/// running out of room makes the name "too long".
struct NameBuf<'b> {
    buf: &'b mut [u8; NAME_BUF],
    /// Write position (`np`).
    pos: usize,
    /// Room left (`maxname`), one byte kept for the terminating zero.
    room: usize,
    /// Bytes that count as the name (`name_len`): label bytes and dots.
    len: usize,
}

impl NameBuf<'_> {
    /// Stores one label byte or dot, counted in the name's length.
    fn push(&mut self, b: u8) {
        if self.room > 0 {
            if let Some(slot) = self.buf.get_mut(self.pos) {
                *slot = b;
            }
            self.pos += 1;
            self.len += 1;
            self.room -= 1;
        }
    }

    /// Stores bit-string label text as tshark's `snprintf` calls do: it
    /// takes room but does not count in the name's length.
    fn print(&mut self, text: &[u8]) {
        if self.room == 0 {
            return;
        }
        if text.len() < self.room {
            if let Some(dst) = self.buf.get_mut(self.pos..self.pos + text.len()) {
                dst.copy_from_slice(text);
            }
            self.pos += text.len();
            self.room -= text.len();
        } else {
            // Cut short by snprintf; the name ends up "too long" anyway.
            self.room = 0;
        }
    }
}

/// Expands the name at `start` into `buf` as tshark 4.0's `get_dns_name`
/// does. Returns `None` where tshark throws (the name is cut short, uses
/// the reserved label type, or is otherwise rejected).
fn expand(msg: &[u8], start: usize, buf: &mut [u8; NAME_BUF]) -> Option<Expanded> {
    let mut nb = NameBuf {
        buf,
        pos: 0,
        room: NAME_BUF,
        len: 0,
    };
    let mut pos = start;
    // Bytes of the name in place (tshark's `len`), set at the first pointer.
    let mut in_place = None;
    let mut pointers = 0u32;
    let mut steps = 0u32;
    loop {
        let b = *msg.get(pos)?;
        pos += 1;
        if b == 0 {
            break;
        }
        steps += 1;
        if steps > MAX_STEPS {
            let len = in_place.unwrap_or_else(|| pos.saturating_sub(start));
            return Some(Expanded {
                end: start + len,
                kind: NameKind::Loops,
                len: 0,
            });
        }
        match b & 0xc0 {
            0x00 => {
                if nb.pos != 0 {
                    nb.push(b'.');
                } else {
                    nb.room = nb.room.saturating_sub(1);
                }
                let label = msg.get(pos..pos + usize::from(b))?;
                for &c in label {
                    nb.push(c);
                }
                pos += label.len();
            }
            0x40 if b & 0x3f == 0x01 => {
                // Bit-string label (RFC 2673): tshark prints "\[x<hex>/<n>]"
                // into the buffer without counting it in the name length.
                let bit_count = *msg.get(pos)?;
                pos += 1;
                let label_len = usize::from(bit_count).div_ceil(8);
                // (bit_count - 1) / 8 + 1 in C is 1 for a count of 0.
                let label_len = label_len.max(1);
                nb.print(b"\\[x");
                for _ in 0..label_len {
                    // tshark reads the byte only while there is room.
                    if nb.room > 0 {
                        let v = *msg.get(pos)?;
                        let hex = [HEX[usize::from(v >> 4)], HEX[usize::from(v & 0xf)]];
                        nb.print(&hex);
                    }
                    pos += 1;
                }
                let mut tail = [0u8; 5];
                let n = write_count(&mut tail, bit_count);
                nb.print(tail.get(..n).unwrap_or(&[]));
            }
            0x40 => {
                // Another extended label type: the whole name becomes
                // "<Unknown extended label>" and the type follows this byte,
                // even when a pointer led here.
                if pos < start + MIN_IN_PLACE {
                    return None;
                }
                return Some(Expanded {
                    end: pos,
                    kind: NameKind::UnknownExtended,
                    len: 0,
                });
            }
            0x80 => return None,
            _ => {
                let lo = *msg.get(pos)?;
                pos += 1;
                pointers += 1;
                let len = *in_place.get_or_insert_with(|| pos.saturating_sub(start));
                let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                // tshark's "pointer to itself" test compares the target
                // with the pointer's end plus 2, and calls that a loop.
                if pointers > MAX_POINTERS || target == pos + 2 {
                    return Some(Expanded {
                        end: start + len,
                        kind: NameKind::Loops,
                        len: 0,
                    });
                }
                pos = target;
            }
        }
    }
    let len = in_place.unwrap_or_else(|| pos.saturating_sub(start));
    if nb.room == 0 {
        return Some(Expanded {
            end: start + len,
            kind: NameKind::TooLong,
            len: 0,
        });
    }
    // get_dns_name: a buffer starting with a zero byte (empty, or a label
    // starting with 0x00) is the root when at most 2 bytes were used in
    // place; otherwise a short or empty name is rejected.
    let first = if nb.pos == 0 { 0 } else { nb.buf[0] };
    if first == 0 && len <= MIN_IN_PLACE {
        return Some(Expanded {
            end: start + len,
            kind: NameKind::Root,
            len: 0,
        });
    }
    if len < MIN_IN_PLACE || (len > MIN_IN_PLACE && nb.len == 0) {
        return None;
    }
    Some(Expanded {
        end: start + len,
        kind: NameKind::Labels,
        len: nb.len,
    })
}

/// tshark's `MIN_DNAME_LEN`: fewest bytes a non-root name uses in place.
const MIN_IN_PLACE: usize = 2;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `"/{n}]"` into `out`; returns the length.
fn write_count(out: &mut [u8; 5], n: u8) -> usize {
    let mut digits = [0u8; 3];
    let mut k = 0;
    let mut v = n;
    loop {
        digits[k] = b'0' + v % 10;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out[0] = b'/';
    for i in 0..k {
        out[1 + i] = digits[k - 1 - i];
    }
    out[1 + k] = b']';
    k + 2
}

/// Writes `raw` as Wireshark 4.0's `format_text` does.
fn format_text<W: fmt::Write>(raw: &[u8], out: &mut W) -> fmt::Result {
    let mut i = 0usize;
    // Each turn consumes at least one byte.
    while let Some(&c) = raw.get(i) {
        i += 1;
        if (0x20..0x7f).contains(&c) {
            // Runs of printable ASCII are the common case: copy them whole.
            let start = i - 1;
            while raw.get(i).is_some_and(|b| (0x20..0x7f).contains(b)) {
                i += 1;
            }
            // Only printable ASCII in this range, so it is valid UTF-8.
            if let Ok(s) = std::str::from_utf8(&raw[start..i]) {
                out.write_str(s)?;
            }
            continue;
        }
        if c < 0x80 {
            let esc = match c {
                0x07 => Some('a'),
                0x08 => Some('b'),
                0x09 => Some('t'),
                0x0a => Some('n'),
                0x0b => Some('v'),
                0x0c => Some('f'),
                0x0d => Some('r'),
                _ => None,
            };
            match esc {
                Some(e) => {
                    out.write_char('\\')?;
                    out.write_char(e)?;
                }
                None => write!(out, "\\{:03o}", c)?,
            }
            continue;
        }
        // The lead byte of a multi-byte sequence, old 5- and 6-byte forms
        // included; a stray continuation byte, 0xfe or 0xff is replaced.
        let (more, mask) = match c {
            0xc0..=0xdf => (1, 0x1f),
            0xe0..=0xef => (2, 0x0f),
            0xf0..=0xf7 => (3, 0x07),
            0xf8..=0xfb => (4, 0x03),
            0xfc..=0xfd => (5, 0x01),
            _ => {
                out.write_char(char::REPLACEMENT_CHARACTER)?;
                continue;
            }
        };
        let mut uc = u32::from(c & mask);
        let mut complete = true;
        for _ in 0..more {
            match raw.get(i) {
                Some(&n) if n & 0xc0 == 0x80 => {
                    uc = (uc << 6) | u32::from(n & 0x3f);
                    i += 1;
                }
                // Cut short, or not a continuation byte: that byte starts
                // the next character.
                _ => {
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            out.write_char(char::REPLACEMENT_CHARACTER)?;
            continue;
        }
        match char::from_u32(uc) {
            // Above U+10FFFF or a surrogate.
            None => out.write_char(char::REPLACEMENT_CHARACTER)?,
            Some(ch) if unicode::is_printable(uc) => out.write_char(ch)?,
            Some(_) if uc <= 0xffff => write!(out, "\\u{:04X}", uc)?,
            Some(_) => write!(out, "\\U{:08X}", uc)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testutil::XorShift;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn name(msg: &[u8]) -> String {
        let q = decode(msg).unwrap().question.unwrap();
        let mut s = String::new();
        q.name.write_to(&mut s);
        assert_eq!(s, q.name.to_string());
        s
    }

    /// A query with `qname` (wire form) and type A, class IN.
    fn query(qname: &[u8]) -> Vec<u8> {
        let mut m = hex("123401000001000000000000");
        m.extend_from_slice(qname);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m
    }

    fn label(s: &[u8]) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s);
        v
    }

    // Real messages from dns-lab.pcapng (UDP payloads).
    const A_QUERY: &str = "1a1601000001000000000000096d6963726f736f667403636f6d0000010001";
    const A_RESPONSE: &str = "1a1681800001000500000000096d6963726f736f667403636f6d0000010001\
        c00c000100010000012e0004682bc3fbc00c000100010000012e000417647aaf";
    const PTR_RESPONSE: &str = "fc5081800001000100000000023235033230360331313902373507696e2d\
        61646472046172706100000c0001c00c000c00010000384000250c617061636865322d72616e6b08\
        66756c6c7361696c09647265616d686f737403636f6d00";

    #[test]
    fn real_a_query_and_response() {
        let q = hex(A_QUERY);
        let v = decode(&q).unwrap();
        assert!(!v.is_response);
        let qq = v.question.unwrap();
        assert_eq!((qq.qtype, qq.qclass, qq.class()), (1, 1, 1));
        assert!(!qq.unicast_response());
        assert_eq!(name(&q), "microsoft.com");

        let r = hex(A_RESPONSE);
        let v = decode(&r).unwrap();
        assert!(v.is_response);
        assert_eq!(name(&r), "microsoft.com");

        let p = hex(PTR_RESPONSE);
        assert_eq!(decode(&p).unwrap().question.unwrap().qtype, 12);
        assert_eq!(name(&p), "25.206.119.75.in-addr.arpa");
    }

    #[test]
    fn aaaa_and_mdns_unicast_bit() {
        let mut m = hex("000000000001000000000000");
        m.extend(label(b"printer"));
        m.extend(label(b"local"));
        m.extend([0, 0, 28, 0x80, 1]);
        let q = decode(&m).unwrap().question.unwrap();
        assert_eq!(q.qtype, 28);
        assert_eq!(q.qclass, 0x8001);
        assert_eq!(q.class(), 1);
        assert!(q.unicast_response());
        assert_eq!(name(&m), "printer.local");
    }

    #[test]
    fn no_question() {
        let m = hex("000181800000000000000000");
        let v = decode(&m).unwrap();
        assert!(v.is_response);
        assert!(v.question.is_none());
    }

    #[test]
    fn short_header_is_bad() {
        for n in 0..12 {
            assert_eq!(decode(&hex(A_QUERY)[..n]), Err(MalformedKind::DnsBad));
        }
    }

    #[test]
    fn truncated_question_is_bad_at_every_cut() {
        let m = hex(A_QUERY);
        for n in 13..m.len() {
            assert_eq!(decode(&m[..n]), Err(MalformedKind::DnsBad), "cut at {n}");
        }
        assert!(decode(&m).is_ok());
    }

    #[test]
    fn root_name() {
        assert_eq!(name(&query(&[0])), "<Root>");
        assert!(decode(&query(&[0]))
            .unwrap()
            .question
            .unwrap()
            .name
            .is_root());
    }

    #[test]
    fn pointer_to_itself_and_indirect_loops() {
        // The name is a pointer to itself (offset 12).
        let m = query(&[0xc0, 12]);
        let q = decode(&m).unwrap().question.unwrap();
        assert!(q.name.loops());
        assert_eq!(name(&m), "<Name contains a pointer that loops>");
        assert_eq!(q.qtype, 1);
        // A label then a pointer back to the start: "abc.abc.abc...".
        let mut n = label(b"abc");
        n.extend([0xc0, 12]);
        assert_eq!(name(&query(&n)), "<Name contains a pointer that loops>");
        // Two pointers pointing at each other: type and class are read
        // right after the first one (tshark prints type 0xc00c here).
        let m = query(&[0xc0, 14, 0xc0, 12]);
        let q = decode(&m).unwrap().question.unwrap();
        assert!(q.name.loops());
        assert_eq!(q.qtype, 0xc00c);
    }

    #[test]
    fn pointer_chains_up_to_254_are_followed() {
        for (k, loops) in [(10, false), (254, false), (255, true), (300, true)] {
            // The name is a pointer to a chain of k-1 more pointers, then root.
            let base = 12 + 2 + 4;
            let mut m = hex("123401000001000000000000");
            m.extend((0xc000u16 | base as u16).to_be_bytes());
            m.extend([0, 1, 0, 1]);
            for i in 0..k - 1 {
                m.extend((0xc000u16 | (base + 2 * (i + 1)) as u16).to_be_bytes());
            }
            m.push(0);
            let expect = if loops {
                "<Name contains a pointer that loops>"
            } else {
                "<Root>"
            };
            assert_eq!(name(&m), expect, "{k} pointers");
        }
    }

    #[test]
    fn forward_pointer_and_compressed_suffix() {
        // www + pointer to "example.com" after the question.
        let mut n = label(b"www");
        n.extend([0xc0, 12 + 6 + 4]);
        let mut m = query(&n);
        m.extend(label(b"example"));
        m.extend(label(b"com"));
        m.push(0);
        assert_eq!(name(&m), "www.example.com");
    }

    #[test]
    fn pointer_out_of_range_is_bad() {
        assert_eq!(decode(&query(&[0xc0, 0xff])), Err(MalformedKind::DnsBad));
        assert_eq!(decode(&query(&[0xff, 0xff])), Err(MalformedKind::DnsBad));
        // Pointer into the header: reads a label that runs off the end.
        assert_eq!(decode(&query(&[0xc0, 0])), Err(MalformedKind::DnsBad));
    }

    #[test]
    fn label_types_over_63_are_bad() {
        // 70 = 0x46: an extended label type.
        let mut n = label(&[b'x'; 70]);
        n.push(0);
        assert_eq!(decode(&query(&n)), Err(MalformedKind::DnsBad));
        assert_eq!(decode(&query(&[0x80, 0])), Err(MalformedKind::DnsBad));
        assert_eq!(decode(&query(&[0x41, 1, 1, 0])), Err(MalformedKind::DnsBad));
    }

    #[test]
    fn tshark_quirks() {
        // Each case checked against tshark 4.0.17 on a crafted query.
        let t = [0u8, 1, 0, 1];
        let cat = |parts: &[&[u8]]| parts.concat();
        let cases: Vec<(Vec<u8>, Option<&str>, u16)> = vec![
            // A label starting with 0x00 in place prints; through a single
            // pointer it is the root (tshark tests the first byte).
            (cat(&[&label(b"\0"), &[0], &t]), Some("\\000"), 1),
            (
                cat(&[&[0xc0, 18], &t, &label(b"\0abc"), &[0]]),
                Some("<Root>"),
                1,
            ),
            (
                cat(&[&[0xc0, 18], &t, &label(b"x\0y"), &[0]]),
                Some("x\\000y"),
                1,
            ),
            // A pointer to its own offset plus 4 is taken for a loop.
            (
                cat(&[&label(b"c"), &[0xc0, 18], &t, &[0]]),
                Some(LOOP_TEXT),
                1,
            ),
            (cat(&[&[0xc0, 14], &[0], &t]), Some("<Root>"), 0),
            (cat(&[&[0xc0, 18], &t, &label(b"z"), &[0]]), Some("z"), 1),
            // Unknown extended label types: the type follows the byte.
            (
                cat(&[&label(b"ab"), &[0x46], b"xx", &t]),
                Some(UNKNOWN_EXTENDED_TEXT),
                0x7878,
            ),
            (
                cat(&[&[0xc0, 14, 0x46], &t]),
                Some(UNKNOWN_EXTENDED_TEXT),
                1,
            ),
            (cat(&[&[0x46], &t, &t]), None, 0),
            (cat(&[&label(b"ab"), &[0x80], &t]), None, 0),
            // Bit-string labels: the text takes room, not printed length.
            (
                cat(&[&label(b"ab"), &[0x41, 8, 0x55], &label(b"cd"), &[0], &t]),
                Some("ab\\[x"),
                1,
            ),
            (
                cat(&[&label(b"ab"), &[0x41, 0, 0x55, 0], &t]),
                Some("ab"),
                1,
            ),
            (
                cat(&[&[0x41, 8, 0x55], &label(b"cd"), &[0], &t]),
                Some("\\[x"),
                1,
            ),
            (cat(&[&[0x41, 1, 1, 0], &t]), None, 0),
        ];
        for (qname, want, qtype) in cases {
            let mut m = hex("123401000001000000000000");
            m.extend(&qname);
            match (decode(&m), want) {
                (Ok(v), Some(w)) => {
                    let q = v.question.unwrap();
                    assert_eq!(
                        (q.name.to_string().as_str(), q.qtype),
                        (w, qtype),
                        "{qname:x?}"
                    );
                }
                (Err(_), None) => {}
                (got, want) => panic!("{qname:x?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn names_over_253_bytes() {
        for (printed, expect_long) in [(253, false), (254, true), (320, true)] {
            let mut n = Vec::new();
            let mut left = printed;
            while left > 0 {
                let sep = usize::from(!n.is_empty());
                let l = (left - sep).min(63);
                n.extend(label(&vec![b'b'; l]));
                left -= l + sep;
            }
            n.push(0);
            let s = name(&query(&n));
            if expect_long {
                assert_eq!(s, "<Name too long>");
            } else {
                assert_eq!(s.len(), printed);
            }
        }
    }

    #[test]
    fn tshark_escapes() {
        // Each case checked against tshark 4.0.17 on a crafted query.
        let cases: &[(&[u8], &str)] = &[
            (b"a.b", "a.b"),
            (b"a\\b", "a\\b"),
            (b"a b", "a b"),
            (b"a\x01\x07\x09\x0a\x1f\x7f", "a\\001\\a\\t\\n\\037\\177"),
            (b"a\x00b", "a\\000b"),
            (b"caf\xc3\xa9", "caf\u{e9}"),
            (b"ab\x80\xffcd", "ab\u{fffd}\u{fffd}cd"),
            (b"\xe2\x82>", "\u{fffd}>"),
            (b"\xf0\x9f\x98\x80x", "\u{1f600}x"),
            (b"\xc0\x80", "\\u0000"),
            (b"\xc1\x81", "A"),
            (b"\xc1\xbf", "\\u007F"),
            (b"\xed\xa0\x80", "\u{fffd}"),
            (b"\xf4\x90\x80\x80", "\u{fffd}"),
            (b"\xf8\x88\x80\x80\x80", "\u{fffd}"),
            (b"\xfc\x80\x80\x80\x80\x80", "\\u0000"),
            (b"\xfe\xff\x80", "\u{fffd}\u{fffd}\u{fffd}"),
            (b"\xef\xbf\xbe", "\\uFFFE"),
            (b"\xc2\x9f", "\\u009F"),
            (b"\xc2\xa0", "\u{a0}"),
            (b"\xe2\x80\x8b", "\\u200B"),
            (b"\xcd\xb8", "\\u0378"),
            (b"\xf3\xa0\x80\x81", "\\U000E0001"),
            (b"\xf4\x8f\xbf\xbf", "\\U0010FFFF"),
            (b"\xe0\xb8\x81", "\u{e01}"),
            (b"x\xf0\x9f", "x\u{fffd}"),
        ];
        for (lab, want) in cases {
            let mut n = label(lab);
            n.push(0);
            assert_eq!(name(&query(&n)), *want, "label {lab:x?}");
        }
        // A sequence cut by the label boundary.
        let mut n = label(b"\xe2");
        n.extend(label(b"\x82\xac"));
        n.push(0);
        assert_eq!(name(&query(&n)), "\u{fffd}.\u{fffd}\u{fffd}");
    }

    #[test]
    fn iodine_tunnel_label() {
        // Frame 13 of attack-dns-tunnel-iodine.pcap: 20 bytes 0xbc..0xcf,
        // each a stray continuation or a lead byte followed by one.
        let mut lab = b"zi1aaA0123456789".to_vec();
        lab.extend(0xbcu8..=0xcf);
        let mut n = label(&lab);
        n.extend(label(b"pirate"));
        n.extend(label(b"sea"));
        n.push(0);
        let want = format!("zi1aaA0123456789{}.pirate.sea", "\u{fffd}".repeat(20));
        assert_eq!(name(&query(&n)), want);
    }

    #[test]
    fn random_messages_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buf = Vec::new();
        let mut s = String::new();
        for _ in 0..100_000 {
            buf.clear();
            let len = rng.below(96);
            buf.extend((0..len).map(|_| rng.next() as u8));
            // Make most messages carry one question, and bias the name
            // bytes toward small labels and pointers.
            if len > 12 {
                buf[4] = 0;
                buf[5] = 1;
                for b in &mut buf[12..] {
                    match rng.below(4) {
                        0 => *b &= 0x07,
                        1 => *b |= 0xc0,
                        2 => *b &= 0x1f,
                        _ => {}
                    }
                }
            }
            if let Ok(v) = decode(&buf) {
                if let Some(q) = v.question {
                    s.clear();
                    q.name.write_to(&mut s);
                    assert!(!s.is_empty());
                }
            }
        }
    }
}
