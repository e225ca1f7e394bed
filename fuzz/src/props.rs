//! Property checks shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and
//! the corpus replay test (`netanalyzer-capture/tests/fuzz_corpus.rs`).
//!
//! This file is compiled twice: as `netanalyzer_fuzz::props` in the fuzz
//! package and as a `#[path]` module of the replay test, so the checks are
//! the same in both and stay out of the library's public API. It may use
//! only `std`, `netanalyzer_core` and `netanalyzer_capture`.
//!
//! Every `check_*` function takes the raw fuzz input and panics (through
//! `assert!`) when a property does not hold; a panic is a finding.
#![allow(dead_code)]

use netanalyzer_capture::app::{dns, http, tls};
use netanalyzer_capture::parse::parse_frame;
use netanalyzer_capture::{CaptureError, FileSource, FrameReader, LinkType};
use netanalyzer_core::{MalformedKind, PacketRecord, ParseStats, Protocol, Source, SourceEvent};
use std::net::IpAddr;
use std::sync::Arc;

/// Link types of the `parse_frame` target, selected by the low 7 bits of
/// the first input byte (modulo the length). The order is part of the
/// corpus format: append, never reorder.
pub const LINKS: [LinkType; 12] = [
    LinkType::ETHERNET,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::PPP,
    LinkType::RAW_OLD,
    // An undecoded link type (LINKTYPE_USER0): must be counted, not parsed.
    LinkType(147),
    // Raw IP as OpenBSD writes DLT 14.
    LinkType(14),
];

/// Bit of the first input byte that marks the frame as cut short by the
/// snaplen: `wire_len = cap_len + TRUNCATED_EXTRA` instead of `cap_len`.
pub const TRUNCATED_FLAG: u8 = 0x80;

/// How many bytes a "truncated" frame lost on the wire.
pub const TRUNCATED_EXTRA: u32 = 1000;

/// Upper bound on the length of `dns_qname`: a DNS name is at most 255
/// octets on the wire, and each may be escaped as `\DDD` (4 characters).
pub const DNS_QNAME_MAX: usize = 4 * 255;

/// Capture metadata the fuzz harness sets before parsing, as a source does.
const FUZZ_TS_NS: u64 = 1_700_000_000_123_456_789;

/// One `parse_frame` input: the link type, whether the capture was cut
/// short, and the frame bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameInput<'a> {
    /// The link type selected by the first byte.
    pub link: LinkType,
    /// Whether `wire_len` exceeds the captured length.
    pub truncated: bool,
    /// The frame, starting at its link-layer header.
    pub data: &'a [u8],
}

impl<'a> FrameInput<'a> {
    /// Splits a fuzz input into the selector byte and the frame.
    pub fn split(input: &'a [u8]) -> Option<Self> {
        let (&sel, data) = input.split_first()?;
        Some(FrameInput {
            link: LINKS[usize::from(sel & !TRUNCATED_FLAG) % LINKS.len()],
            truncated: sel & TRUNCATED_FLAG != 0,
            data,
        })
    }

    /// Encodes a frame as a fuzz input (the inverse of [`FrameInput::split`]);
    /// `None` when `link` is not in [`LINKS`].
    pub fn encode(link: LinkType, truncated: bool, frame: &[u8]) -> Option<Vec<u8>> {
        let idx = LINKS.iter().position(|&l| l == link)?;
        let sel = u8::try_from(idx).ok()? | if truncated { TRUNCATED_FLAG } else { 0 };
        let mut v = Vec::with_capacity(frame.len() + 1);
        v.push(sel);
        v.extend_from_slice(frame);
        Some(v)
    }
}

/// The `parse_frame` target: one selector byte, then a frame.
pub fn check_parse_frame(input: &[u8]) {
    let Some(fi) = FrameInput::split(input) else {
        return;
    };
    let cap_len = len_u32(fi.data);
    let wire_len = if fi.truncated {
        cap_len.saturating_add(TRUNCATED_EXTRA)
    } else {
        cap_len
    };
    check_frame(fi.link, fi.data, FUZZ_TS_NS, wire_len);
}

/// Parses `data` twice as a source would (metadata set, rest cleared) and
/// checks the record; returns it.
///
/// Properties: the parser never panics; it leaves the capture metadata
/// (`ts_ns`, `iface`, `wire_len`, `cap_len`) as the caller set it; it
/// counts exactly one packet, malformed iff at least one problem was
/// counted; every field respects [`check_record`]; and a second parse of
/// the same bytes gives an identical record and identical counters.
pub fn check_frame(link: LinkType, data: &[u8], ts_ns: u64, wire_len: u32) -> PacketRecord {
    let meta = PacketRecord {
        ts_ns,
        iface: Some(Arc::from("fuzz0")),
        wire_len,
        cap_len: len_u32(data),
        ..PacketRecord::default()
    };

    let mut rec = meta.clone();
    let mut stats = ParseStats::default();
    parse_frame(link, data, &mut rec, &mut stats);

    assert_eq!(
        stats.packets, 1,
        "parse_frame must count exactly one packet"
    );
    assert!(
        stats.total_problems() <= 1,
        "more than one problem counted for one packet: {stats:?}"
    );
    assert_eq!(
        stats.malformed_packets,
        u64::from(stats.total_problems() > 0),
        "malformed_packets must be 1 iff a problem was counted: {stats:?}"
    );
    check_record(&meta, &rec, data);

    let mut again = meta;
    let mut stats_again = ParseStats::default();
    parse_frame(link, data, &mut again, &mut stats_again);
    assert_eq!(rec, again, "parse_frame is not deterministic");
    assert_eq!(
        stats, stats_again,
        "parse_frame counters are not deterministic"
    );
    rec
}

/// Field-level properties of a parsed record: no field claims bytes beyond
/// the frame, and fields agree with each other where the record's contract
/// says they must.
pub fn check_record(meta: &PacketRecord, rec: &PacketRecord, data: &[u8]) {
    // The caller owns the capture metadata; cap_len is the bytes handed in.
    assert_eq!(rec.ts_ns, meta.ts_ns, "parser changed ts_ns");
    assert_eq!(rec.iface, meta.iface, "parser changed iface");
    assert_eq!(rec.wire_len, meta.wire_len, "parser changed wire_len");
    assert_eq!(rec.cap_len, meta.cap_len, "parser changed cap_len");
    assert_eq!(
        rec.cap_len,
        len_u32(data),
        "cap_len is not the captured length"
    );

    if let Some(p) = rec.payload_len {
        assert!(
            u64::from(p) <= data.len() as u64,
            "payload_len {p} > {} captured bytes",
            data.len()
        );
    }

    // HTTP and TLS strings are copied from the payload: each is a substring
    // of the frame, so never longer than it.
    for (name, s) in [
        ("http_method", &rec.http_method),
        ("http_host", &rec.http_host),
        ("http_path", &rec.http_path),
        ("tls_sni", &rec.tls_sni),
    ] {
        if let Some(s) = s {
            assert!(s.len() <= data.len(), "{name} longer than the frame");
            assert!(
                contains(data, s.as_bytes()),
                "{name} {s:?} is not in the frame"
            );
        }
    }
    if let Some(m) = &rec.http_method {
        assert!(!m.is_empty(), "empty http_method");
    }
    if let Some(p) = &rec.http_path {
        assert!(!p.is_empty(), "empty http_path");
    }
    if let Some(q) = &rec.dns_qname {
        assert!(q.len() <= DNS_QNAME_MAX, "dns_qname of {} chars", q.len());
    }

    match rec.ip_version {
        None => {
            assert!(
                rec.src_ip.is_none() && rec.dst_ip.is_none(),
                "address without ip_version"
            );
            assert!(rec.is_fragment.is_none(), "is_fragment without ip_version");
        }
        Some(v @ (4 | 6)) => {
            for ip in [rec.src_ip, rec.dst_ip].into_iter().flatten() {
                let fam = if matches!(ip, IpAddr::V4(_)) { 4 } else { 6 };
                assert_eq!(fam, v, "address {ip} in an IPv{v} record");
            }
        }
        Some(v) => panic!("ip_version {v}"),
    }
    // The transport fields describe the header right after the outermost
    // IP header (tunnels and ICMP-quoted packets are not decoded), and the
    // protocol name agrees with them.
    let tcp = [rec.tcp_seq.is_some(), rec.tcp_ack.is_some()];
    if rec.tcp_flags.is_some() || rec.tcp_window.is_some() || tcp.contains(&true) {
        assert_eq!(rec.ip_proto, Some(6), "TCP fields without ip_proto 6");
    }
    if rec.src_port.is_some() || rec.dst_port.is_some() {
        assert!(
            matches!(rec.ip_proto, Some(6 | 17)),
            "ports with ip_proto {:?}",
            rec.ip_proto
        );
    }
    if rec.icmp_type.is_some() || rec.icmp_code.is_some() {
        assert!(
            matches!(rec.ip_proto, Some(1 | 58)),
            "ICMP fields with ip_proto {:?}",
            rec.ip_proto
        );
    }
    if rec.arp_op.is_some() {
        assert!(rec.ip_version.is_none(), "arp_op in an IP packet");
    }
    let want_proto = match rec.protocol {
        Protocol::Tcp => Some(6),
        Protocol::Udp => Some(17),
        Protocol::Icmp => Some(1),
        Protocol::Icmpv6 => Some(58),
        Protocol::Igmp => Some(2),
        Protocol::Gre => Some(47),
        _ => None,
    };
    if want_proto.is_some() {
        assert_eq!(
            rec.ip_proto, want_proto,
            "protocol {} with ip_proto {:?}",
            rec.protocol, rec.ip_proto
        );
    }
    if matches!(rec.protocol, Protocol::Dns | Protocol::Http | Protocol::Tls) {
        assert!(
            matches!(rec.ip_proto, Some(6 | 17)),
            "protocol {} with ip_proto {:?}",
            rec.protocol,
            rec.ip_proto
        );
    }
    if rec.protocol == Protocol::Arp {
        assert!(rec.ip_version.is_none(), "ARP with an IP version");
    }
    for (field, set, proto) in [
        (
            "dns",
            rec.dns_qname.is_some() || rec.dns_qtype.is_some(),
            Protocol::Dns,
        ),
        (
            "http",
            rec.http_method.is_some() || rec.http_path.is_some(),
            Protocol::Http,
        ),
        ("tls_sni", rec.tls_sni.is_some(), Protocol::Tls),
    ] {
        if set {
            assert_eq!(
                rec.protocol, proto,
                "{field} fields in a {} record",
                rec.protocol
            );
        }
    }
    if let Some(f) = rec.tcp_flags {
        assert!(f <= 0x1ff, "tcp_flags {f:#x} has more than 9 bits");
    }
    if let Some(v) = rec.vlan_id {
        assert!(v <= 0x0fff, "vlan_id {v} has more than 12 bits");
    }
}

/// The `file_reader` target: arbitrary bytes as a capture file.
///
/// Properties: never panics and terminates; every frame's data fits in the
/// input; at most `input.len() / 16` frames (the smallest record, a pcap
/// record header or a pcapng simple packet block, is 16 bytes); an error
/// names an offset inside the input; after an error or the end, the next
/// call yields no frame. Each frame also goes through [`check_frame`].
/// Finally [`FileSource`] over the same bytes, delivered by short reads,
/// gives the same records (but for `iface`) and ends the same way.
pub fn check_file_reader(input: &[u8]) {
    let (records, outcome) = read_frames(input);
    check_file_source(input, &records, &outcome);
}

/// Reads `input` with [`FrameReader`], checking each frame; returns the
/// parsed records and how reading ended (`None` at a clean end, else the
/// error message).
fn read_frames(input: &[u8]) -> (Vec<PacketRecord>, Option<String>) {
    let mut records = Vec::new();
    let mut reader = match FrameReader::new(input) {
        Ok(r) => r,
        Err(e) => {
            check_error(&e, input);
            return (records, Some(e.to_string()));
        }
    };
    let max_frames = input.len() / 16;
    let outcome = loop {
        match reader.next_frame() {
            Ok(Some(f)) => {
                assert!(records.len() < max_frames, "more than {max_frames} frames");
                assert!(f.data.len() <= input.len(), "frame longer than the file");
                records.push(check_frame(f.link, f.data, f.ts_ns, f.wire_len));
            }
            Ok(None) => break None,
            Err(e) => {
                check_error(&e, input);
                break Some(e.to_string());
            }
        }
    };
    assert!(
        !matches!(reader.next_frame(), Ok(Some(_))),
        "a frame after the end or an error"
    );
    (records, outcome)
}

/// [`FileSource`] over `input`, fed through short reads of 1 to 7 bytes,
/// yields `records` (ignoring `iface`), counts them in its stats, and ends
/// with `outcome`.
fn check_file_source(input: &[u8], records: &[PacketRecord], outcome: &Option<String>) {
    let trickle = Trickle {
        data: input.to_vec(),
        pos: 0,
        chunk: 1 + input.len() % 7,
    };
    let mut src = match FileSource::from_reader(trickle) {
        Ok(s) => s,
        Err(e) => {
            assert!(
                records.is_empty(),
                "FileSource failed where FrameReader read frames"
            );
            assert_eq!(
                Some(e.to_string()),
                *outcome,
                "FileSource and FrameReader disagree"
            );
            return;
        }
    };
    let mut rec = PacketRecord::default();
    let mut n = 0usize;
    let end = loop {
        match src.next_into(&mut rec) {
            Ok(SourceEvent::Packet) => {
                let want = records
                    .get(n)
                    .expect("FileSource read more packets than FrameReader");
                let mut got = rec.clone();
                got.iface = want.iface.clone();
                assert_eq!(&got, want, "FileSource record {n} differs");
                n += 1;
            }
            Ok(SourceEvent::Idle) => panic!("a file source went idle"),
            Ok(SourceEvent::End) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    assert_eq!(
        n,
        records.len(),
        "FileSource and FrameReader packet counts differ"
    );
    assert_eq!(end, *outcome, "FileSource and FrameReader end differently");
    let stats = src.stats();
    assert_eq!(stats.packets, n as u64);
    assert_eq!(stats.parse.packets, n as u64);
}

/// A reader that returns at most `chunk` bytes per `read` call, as a pipe
/// or a decompressor may: the file reader must not depend on full reads.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// An error names an offset inside the input and renders a message.
fn check_error(e: &CaptureError, input: &[u8]) {
    let offset = match e {
        CaptureError::Io { offset, .. }
        | CaptureError::Corrupt { offset, .. }
        | CaptureError::CutShort { offset, .. } => Some(*offset),
        _ => None,
    };
    if let Some(o) = offset {
        assert!(
            o <= input.len() as u64,
            "error offset {o} beyond the {}-byte input: {e}",
            input.len()
        );
    }
    assert!(!e.to_string().is_empty());
}

/// Whether `needle` occurs in `hay` (an empty needle always does).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `part` lies inside `whole` in memory (a borrowed sub-slice).
pub fn within(whole: &[u8], part: &[u8]) -> bool {
    let w = whole.as_ptr_range();
    let p = part.as_ptr_range();
    w.start <= p.start && p.end <= w.end
}

fn len_u32(data: &[u8]) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}

/// The `app_dns` target: an arbitrary DNS message.
///
/// Properties: never panics; decoding is deterministic; success needs the
/// 12-byte header and the only error is `DnsBad`; the question's name
/// starts inside the message, prints (through `Display` and `write_to`
/// alike) at most [`DNS_QNAME_MAX`] characters, and prints the special
/// text when it is the root, loops or is too long (not the converse: a
/// label may spell `<Root>` itself). The name may print empty: tshark 4.0
/// prints `""` for a name that is only a pointer to a zero-bit bit-string
/// label (see the `fuzz_corpus` test).
pub fn check_app_dns(input: &[u8]) {
    let r = dns::decode(input);
    assert_eq!(r, dns::decode(input), "dns::decode is not deterministic");
    let view = match r {
        Ok(v) => v,
        Err(k) => {
            assert_eq!(k, MalformedKind::DnsBad, "unexpected error kind");
            return;
        }
    };
    assert!(input.len() >= 12, "a DNS header is 12 bytes");
    let Some(q) = view.question else {
        return;
    };
    let name = q.name;
    assert!(
        name.offset() < input.len(),
        "name offset beyond the message"
    );
    let mut s = String::new();
    name.write_to(&mut s);
    assert_eq!(s, name.to_string(), "write_to and Display differ");
    assert!(s.len() <= DNS_QNAME_MAX, "qname of {} chars", s.len());
    let specials = [name.is_root(), name.loops(), name.too_long()];
    assert!(
        specials.iter().filter(|&&b| b).count() <= 1,
        "name is {specials:?}"
    );
    // Only one way round: a label may spell one of these texts itself.
    for (flag, text) in [
        (name.is_root(), "<Root>"),
        (name.loops(), "<Name contains a pointer that loops>"),
        (name.too_long(), "<Name too long>"),
    ] {
        if flag {
            assert_eq!(s, text, "special name printed wrong");
        }
    }
}

/// The `app_http` target: an arbitrary TCP payload.
///
/// Properties: never panics; deterministic; a request is never also a
/// response; method, path and host are borrowed slices of the input; the
/// payload starts with `method SP path SP`; method and path are non-empty
/// and hold no spaces or control bytes; host is non-empty and holds no line
/// break.
pub fn check_app_http(input: &[u8]) {
    let r = http::decode_request(input);
    assert_eq!(
        r,
        http::decode_request(input),
        "decode_request is not deterministic"
    );
    let Some(v) = r else {
        return;
    };
    assert!(!http::is_response(input), "both a request and a response");
    assert!(!v.method.is_empty(), "empty method");
    assert!(!v.path.is_empty(), "empty path");
    for (name, s) in [("method", v.method), ("path", v.path)] {
        assert!(
            within(input, s.as_bytes()),
            "{name} does not borrow from the input"
        );
        assert!(
            !s.bytes().any(|b| b <= b' ' || b == 0x7f),
            "{name} {s:?} holds a space or control byte"
        );
    }
    let line = [v.method.as_bytes(), b" ", v.path.as_bytes(), b" "].concat();
    assert!(
        input.starts_with(&line),
        "payload does not start with the request line"
    );
    if let Some(h) = v.host {
        assert!(
            within(input, h.as_bytes()),
            "host does not borrow from the input"
        );
        assert!(!h.is_empty(), "empty host");
        assert!(!h.contains(['\r', '\n']), "host {h:?} holds a line break");
    }
}

/// The `app_tls` target: an arbitrary TCP payload.
///
/// Properties: never panics; deterministic; a view needs a 5-byte record
/// header with content type 20..=24; a ClientHello is a handshake record;
/// the SNI is non-empty, borrowed from the input, and only in a
/// ClientHello.
pub fn check_app_tls(input: &[u8]) {
    let r = tls::decode(input);
    assert_eq!(r, tls::decode(input), "tls::decode is not deterministic");
    let Some(v) = r else {
        return;
    };
    assert!(input.len() >= 5, "a TLS record header is 5 bytes");
    assert_eq!(v.content_type, input[0]);
    assert!(
        (20..=24).contains(&v.content_type),
        "content type {}",
        v.content_type
    );
    if v.is_client_hello {
        assert_eq!(
            v.content_type, 22,
            "a ClientHello outside a handshake record"
        );
    }
    if let Some(sni) = v.sni {
        assert!(v.is_client_hello, "SNI without a ClientHello");
        assert!(!sni.is_empty(), "empty SNI");
        assert!(
            within(input, sni.as_bytes()),
            "SNI does not borrow from the input"
        );
    }
}
