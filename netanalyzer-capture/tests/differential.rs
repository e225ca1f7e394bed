//! Differential test of the hand-written frame parser against the
//! `etherparse` crate (`LaxSlicedPacket`), field by field, on every
//! Ethernet, raw-IP, BSD null/loop and Linux SLL frame of `../shared/pcaps` and on a
//! generated 200k-packet capture of mixed and attack traffic (see the
//! "Differential test against etherparse" section of
//! `docs/conformance.md` for the rules and every remaining class of
//! difference).
//!
//! Run with `cargo test -p netanalyzer-capture --test differential -- --nocapture`
//! to see the tables. When the corpus folder is missing the corpus test is
//! skipped with a printed reason, unless `CI=true`, where it fails.

mod support;
use etherparse::{
    err::Layer, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, LinkSlice, LinuxSllProtocolType,
    LinuxSllSlice, TransportSlice,
};
use netanalyzer_capture::gen::{generate, GenConfig, Scenario};
use netanalyzer_capture::parse::parse_frame;
use netanalyzer_capture::{FrameReader, LinkType};
use netanalyzer_core::{PacketRecord, ParseStats};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Minimum per-field agreement on the generated capture.
const MIN_AGREEMENT_GENERATED: f64 = 0.999;
/// Minimum per-field agreement on the shared corpus.
const MIN_AGREEMENT_CORPUS: f64 = 0.995;
/// Frames in the generated capture.
const GENERATED_PACKETS: u64 = 200_000;
/// Differing frames listed per field.
const SAMPLES: usize = 5;

/// The compared fields, in table order.
const FIELDS: [&str; 20] = [
    "eth_src",
    "eth_dst",
    "vlan_id",
    "ether_type",
    "ip_version",
    "src_ip",
    "dst_ip",
    "ttl",
    "ip_proto",
    "is_fragment",
    "src_port",
    "dst_port",
    "tcp_flags",
    "tcp_seq",
    "tcp_ack",
    "tcp_window",
    "icmp_type",
    "icmp_code",
    "payload_len",
    "arp_op",
];

/// Index of a field in [`FIELDS`].
#[derive(Clone, Copy)]
enum F {
    EthSrc,
    EthDst,
    VlanId,
    EtherType,
    IpVersion,
    SrcIp,
    DstIp,
    Ttl,
    IpProto,
    IsFragment,
    SrcPort,
    DstPort,
    TcpFlags,
    TcpSeq,
    TcpAck,
    TcpWindow,
    IcmpType,
    IcmpCode,
    PayloadLen,
    ArpOp,
}

/// The transport fields (after the IP header).
const TRANSPORT: [F; 9] = [
    F::SrcPort,
    F::DstPort,
    F::TcpFlags,
    F::TcpSeq,
    F::TcpAck,
    F::TcpWindow,
    F::IcmpType,
    F::IcmpCode,
    F::PayloadLen,
];

/// EtherTypes of VLAN tags as etherparse knows them.
const VLAN_TYPES: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// One field value, comparable across both decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    N(u64),
    Ip(IpAddr),
    Mac([u8; 6]),
}

/// One side's view of a frame: per field, `None` when the decoder did not
/// reach that layer (not compared), `Some(None)` when it decoded the layer
/// and the field is absent there, `Some(Some(v))` for a value.
type View = [Option<Option<V>>; FIELDS.len()];

/// etherparse's view plus the fields excused from comparison, with the
/// class of the legitimate difference.
struct Theirs {
    view: View,
    excuse: [Option<&'static str>; FIELDS.len()],
}

impl Theirs {
    fn new() -> Self {
        Theirs {
            view: [None; FIELDS.len()],
            excuse: [None; FIELDS.len()],
        }
    }

    fn set(&mut self, f: F, v: Option<V>) {
        self.view[f as usize] = Some(v);
    }

    fn excuse(&mut self, f: F, class: &'static str) {
        self.excuse[f as usize].get_or_insert(class);
    }
}

fn n<T: Into<u64>>(v: T) -> Option<V> {
    Some(V::N(v.into()))
}

/// Slices a frame with etherparse, as far as it goes.
fn slice(link: LinkType, data: &[u8]) -> Option<LaxSlicedPacket<'_>> {
    match link {
        LinkType::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok(),
        LinkType::RAW | LinkType::RAW_OLD | LinkType(14) | LinkType::IPV4 | LinkType::IPV6 => {
            LaxSlicedPacket::from_ip(data).ok()
        }
        LinkType::NULL | LinkType::LOOP => {
            // etherparse has no BSD loopback decoder: skip the 4-byte
            // address family (either byte order) and go on from IP.
            match null_family(data)? {
                2 | 24 | 28 | 30 => LaxSlicedPacket::from_ip(&data[4..]).ok(),
                _ => None,
            }
        }
        LinkType::LINUX_SLL => {
            // etherparse 0.21 has no lax SLL entry point: slice the cooked
            // header, then go on from its EtherType.
            let sll = LinuxSllSlice::from_slice(data).ok()?;
            match sll.protocol_type() {
                LinuxSllProtocolType::EtherType(et) => {
                    Some(LaxSlicedPacket::from_ether_type(et, sll.payload_slice()))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The address family of a BSD null/loop header, in either byte order.
fn null_family(data: &[u8]) -> Option<u32> {
    let fam: [u8; 4] = data.get(..4)?.try_into().ok()?;
    Some(if fam[0] == 0 && fam[1] == 0 {
        u32::from_be_bytes(fam)
    } else {
        u32::from_le_bytes(fam)
    })
}

/// Whether an IPv4 option list holds a loose or strict source route.
fn has_source_route(mut opts: &[u8]) -> bool {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return false,
            1 => opts = &opts[1..],
            _ => {
                let len = opts.get(1).map_or(0, |&l| usize::from(l));
                if matches!(kind, 0x83 | 0x89) {
                    return true;
                }
                if len < 2 || len > opts.len() {
                    return false;
                }
                opts = &opts[len..];
            }
        }
    }
    false
}

/// Excuses every IP and transport field: the IP version nibble disagrees
/// with the EtherType (or raw link type).
fn version_mismatch(t: &mut Theirs) {
    for i in F::IpVersion as usize..=F::PayloadLen as usize {
        t.excuse[i].get_or_insert("IP version nibble disagrees with the EtherType");
    }
}

/// etherparse's reading of a frame (`None`: it decoded nothing we compare).
fn theirs(link: LinkType, data: &[u8]) -> Option<Theirs> {
    let p = slice(link, data)?;
    let mut t = Theirs::new();
    let stop_layer = p.stop_err.as_ref().map(|(_, l)| *l);

    // Link layer.
    let link_et = match &p.link {
        Some(LinkSlice::Ethernet2(e)) => {
            t.set(F::EthSrc, Some(V::Mac(e.source())));
            t.set(F::EthDst, Some(V::Mac(e.destination())));
            Some(e.ether_type().0)
        }
        Some(LinkSlice::EtherPayload(e)) => Some(e.ether_type.0),
        _ => None,
    };
    let mut last_et = None;
    if let Some(link_et) = link_et {
        let first_vlan = p.link_exts.iter().find_map(|x| match x {
            LaxLinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
            LaxLinkExtSlice::Macsec(_) => None,
        });
        if first_vlan.is_some() || stop_layer != Some(Layer::VlanHeader) {
            t.set(F::VlanId, first_vlan.and_then(n));
        }
        if link_et == 0x9200 {
            // Pre-standard QinQ tag: we read it as a tag, etherparse does not.
            for f in [F::VlanId, F::EtherType] {
                t.excuse(f, "0x9200 tag unknown to etherparse");
            }
        }
        last_et = match p.link_exts.last() {
            Some(LaxLinkExtSlice::Vlan(v)) => Some(v.ether_type().0),
            Some(LaxLinkExtSlice::Macsec(_)) => None,
            None => Some(link_et),
        };
        match last_et {
            // A cut tag: etherparse stopped on it, we do not name a type.
            _ if stop_layer == Some(Layer::VlanHeader) => {}
            // IEEE 802.3 length field: etherparse stops; we read LLC/SNAP.
            Some(et) if et < 0x0600 => {}
            Some(et) => t.set(F::EtherType, n(et)),
            None => {}
        }
        if last_et.is_some_and(|et| VLAN_TYPES.contains(&et)) && link == LinkType::LINUX_SLL {
            t.excuse(F::EtherType, "VLAN stack below a cooked header");
        }
        if p.link_exts
            .iter()
            .any(|x| matches!(x, LaxLinkExtSlice::Macsec(_)))
        {
            for i in 0..FIELDS.len() {
                t.excuse[i].get_or_insert("MACsec");
            }
        }
    }

    // Network layer. etherparse picks IPv4/IPv6 by the version nibble
    // alone; we (and tshark) require it to match the EtherType or link type.
    let null = matches!(link, LinkType::NULL | LinkType::LOOP);
    let family = null_family(data).filter(|_| null);
    let expected_version = match (link, last_et, family) {
        (LinkType::IPV4, _, _) | (_, Some(0x0800), _) | (_, _, Some(2)) => Some(4),
        (LinkType::IPV6, _, _) | (_, Some(0x86dd), _) | (_, _, Some(24 | 28 | 30)) => Some(6),
        _ => None,
    };
    let ip_payload = match &p.net {
        None => return Some(t),
        Some(LaxNetSlice::Arp(a)) => {
            t.set(F::ArpOp, n(a.operation().0));
            for f in [
                F::IpVersion,
                F::SrcIp,
                F::DstIp,
                F::Ttl,
                F::IpProto,
                F::IsFragment,
            ] {
                t.set(f, None);
            }
            return Some(t);
        }
        Some(LaxNetSlice::Ipv4(ip)) => {
            if expected_version == Some(6) {
                version_mismatch(&mut t);
            }
            let h = ip.header();
            t.set(F::IpVersion, n(4u8));
            t.set(F::SrcIp, Some(V::Ip(h.source_addr().into())));
            t.set(F::DstIp, Some(V::Ip(h.destination_addr().into())));
            t.set(F::Ttl, n(h.ttl()));
            if has_source_route(h.options()) {
                t.excuse(F::DstIp, "IPv4 source route (final destination, as tshark)");
            }
            if h.protocol().0 == 51 {
                t.excuse(F::IpProto, "IPv4 AH (etherparse skips it)");
                for f in TRANSPORT {
                    t.excuse(f, "IPv4 AH (etherparse skips it)");
                }
            }
            ip.payload()
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            if expected_version == Some(4) {
                version_mismatch(&mut t);
            }
            let h = ip.header();
            t.set(F::IpVersion, n(6u8));
            t.set(F::SrcIp, Some(V::Ip(h.source_addr().into())));
            t.set(F::DstIp, Some(V::Ip(h.destination_addr().into())));
            t.set(F::Ttl, n(h.hop_limit()));
            ip.payload()
        }
    };
    t.set(F::ArpOp, None);
    t.set(F::IpProto, n(ip_payload.ip_number.0));
    t.set(F::IsFragment, Some(V::N(u64::from(ip_payload.fragmented))));
    if matches!(ip_payload.ip_number.0, 135 | 139 | 140) {
        // Mobility, HIP, shim6: extension headers we walk, etherparse does not.
        let next = ip_payload.payload.first().copied();
        if ip_payload.ip_number.0 != 135 || next.is_some_and(|nh| nh != 59) {
            t.excuse(F::IpProto, "IPv6 extension header unknown to etherparse");
            for f in TRANSPORT {
                t.excuse(f, "IPv6 extension header unknown to etherparse");
            }
        }
    }

    // Transport layer.
    let none = |t: &mut Theirs, fields: &[F]| fields.iter().for_each(|&f| t.set(f, None));
    match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            t.set(F::SrcPort, n(tcp.source_port()));
            t.set(F::DstPort, n(tcp.destination_port()));
            let bits = [
                tcp.ns(),
                tcp.cwr(),
                tcp.ece(),
                tcp.urg(),
                tcp.ack(),
                tcp.psh(),
                tcp.rst(),
                tcp.syn(),
                tcp.fin(),
            ];
            let flags = bits.iter().fold(0u16, |acc, &b| acc << 1 | u16::from(b));
            t.set(F::TcpFlags, n(flags));
            t.set(F::TcpSeq, n(tcp.sequence_number()));
            t.set(F::TcpAck, n(tcp.acknowledgment_number()));
            t.set(F::TcpWindow, n(tcp.window_size()));
            t.set(F::PayloadLen, n(tcp.payload().len() as u64));
            none(&mut t, &[F::IcmpType, F::IcmpCode]);
        }
        Some(TransportSlice::Udp(udp)) => {
            t.set(F::SrcPort, n(udp.source_port()));
            t.set(F::DstPort, n(udp.destination_port()));
            t.set(F::PayloadLen, n(udp.payload().len() as u64));
            none(
                &mut t,
                &[
                    F::TcpFlags,
                    F::TcpSeq,
                    F::TcpAck,
                    F::TcpWindow,
                    F::IcmpType,
                    F::IcmpCode,
                ],
            );
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
            t.set(F::IcmpType, n(icmp.type_u8()));
            t.set(F::IcmpCode, n(icmp.code_u8()));
            t.set(F::PayloadLen, n(icmp.payload().len() as u64));
            if matches!(icmp.type_u8(), 13 | 14) && icmp.code_u8() == 0 {
                t.excuse(
                    F::PayloadLen,
                    "ICMP timestamp (20-byte header in etherparse)",
                );
            }
            none(&mut t, &TRANSPORT[..6]);
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            t.set(F::IcmpType, n(icmp.type_u8()));
            t.set(F::IcmpCode, n(icmp.code_u8()));
            t.set(F::PayloadLen, n(icmp.payload().len() as u64));
            none(&mut t, &TRANSPORT[..6]);
        }
        Some(TransportSlice::Igmp(_)) => none(&mut t, &TRANSPORT[..8]),
        None => {
            // A complete, unfragmented IP payload of another protocol:
            // etherparse says there are no ports, TCP or ICMP fields.
            let known = matches!(ip_payload.ip_number.0, 1 | 2 | 6 | 17 | 58);
            if p.stop_err.is_none() && !ip_payload.fragmented && !known {
                none(&mut t, &TRANSPORT[..8]);
            }
        }
    }
    Some(t)
}

/// Our parser's view of a frame, in the same shape.
fn ours(r: &PacketRecord) -> View {
    let mut v: View = [None; FIELDS.len()];
    let mut set = |f: F, x: Option<V>| v[f as usize] = Some(x);
    set(F::EthSrc, r.eth_src.map(|m| V::Mac(m.0)));
    set(F::EthDst, r.eth_dst.map(|m| V::Mac(m.0)));
    set(F::VlanId, r.vlan_id.and_then(n));
    set(F::EtherType, r.ether_type.and_then(n));
    set(F::IpVersion, r.ip_version.and_then(n));
    set(F::SrcIp, r.src_ip.map(V::Ip));
    set(F::DstIp, r.dst_ip.map(V::Ip));
    set(F::Ttl, r.ttl.and_then(n));
    set(F::IpProto, r.ip_proto.and_then(n));
    set(F::IsFragment, r.is_fragment.and_then(n));
    set(F::SrcPort, r.src_port.and_then(n));
    set(F::DstPort, r.dst_port.and_then(n));
    set(F::TcpFlags, r.tcp_flags.and_then(n));
    set(F::TcpSeq, r.tcp_seq.and_then(n));
    set(F::TcpAck, r.tcp_ack.and_then(n));
    set(F::TcpWindow, r.tcp_window.and_then(n));
    set(F::IcmpType, r.icmp_type.and_then(n));
    set(F::IcmpCode, r.icmp_code.and_then(n));
    set(F::PayloadLen, r.payload_len.and_then(n));
    set(F::ArpOp, r.arp_op.and_then(n));
    v
}

#[derive(Default)]
struct Tally {
    agree: u64,
    compared: u64,
    excused: BTreeMap<&'static str, u64>,
    samples: Vec<String>,
}

/// Agreement over a set of frames.
struct Diff {
    name: &'static str,
    fields: Vec<Tally>,
    frames: u64,
    compared_frames: u64,
    by_link: BTreeMap<String, u64>,
    files: u64,
    file_errors: Vec<String>,
    stats: ParseStats,
    /// How frames are altered before both decoders see them.
    mode: Mode,
}

/// Frame alteration of a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As captured.
    Whole,
    /// Cut at a pseudo-random length (keeping the wire length), as a short
    /// snap length would.
    Cut,
    /// One pseudo-random byte of the first 80 flipped (lengths, versions,
    /// offsets and flags become inconsistent).
    Flip,
}

impl Diff {
    fn new(name: &'static str) -> Self {
        Diff {
            name,
            fields: FIELDS.iter().map(|_| Tally::default()).collect(),
            frames: 0,
            compared_frames: 0,
            by_link: BTreeMap::new(),
            files: 0,
            file_errors: Vec::new(),
            stats: ParseStats::default(),
            mode: Mode::Whole,
        }
    }

    /// Compares every frame of a pcap/pcapng stream; `label` names it in
    /// the samples.
    fn run(&mut self, label: &str, input: impl std::io::Read) {
        self.files += 1;
        let mut reader = match FrameReader::new(input) {
            Ok(r) => r,
            Err(e) => {
                self.file_errors.push(format!("{label}: {e}"));
                return;
            }
        };
        let mut no = 0u64;
        let mut rec = PacketRecord::default();
        let mut buf = Vec::new();
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    self.file_errors.push(format!("{label}: {e}"));
                    break;
                }
            };
            no += 1;
            self.frames += 1;
            let r = mix(no);
            buf.clear();
            let data = match self.mode {
                Mode::Whole => frame.data,
                Mode::Cut => &frame.data[..(r % (frame.data.len() as u64 + 1)) as usize],
                Mode::Flip => {
                    buf.extend_from_slice(frame.data);
                    if !buf.is_empty() {
                        let at = (r % buf.len().min(80) as u64) as usize;
                        buf[at] ^= (r >> 32) as u8 | 1;
                    }
                    &buf[..]
                }
            };
            *self.by_link.entry(frame.link.to_string()).or_default() += 1;
            let Some(t) = theirs(frame.link, data) else {
                continue;
            };
            self.compared_frames += 1;
            rec.clear();
            rec.ts_ns = frame.ts_ns;
            rec.wire_len = frame.wire_len;
            rec.cap_len = data.len() as u32;
            parse_frame(frame.link, data, &mut rec, &mut self.stats);
            self.compare(label, no, &t, &rec);
        }
    }

    /// Compares our record of frame `no` of `label` with etherparse's
    /// view of it.
    fn compare(&mut self, label: &str, no: u64, t: &Theirs, rec: &PacketRecord) {
        let o = ours(rec);
        for (i, tally) in self.fields.iter_mut().enumerate() {
            let Some(theirs) = t.view[i] else { continue };
            let ours = o[i].flatten();
            if theirs.is_none() && ours.is_none() {
                continue;
            }
            if let Some(class) = t.excuse[i] {
                *tally.excused.entry(class).or_default() += 1;
                continue;
            }
            tally.compared += 1;
            if ours == theirs {
                tally.agree += 1;
            } else if tally.samples.len() < SAMPLES {
                tally.samples.push(format!(
                    "{label} frame {no}: ours {ours:?}, etherparse {theirs:?}"
                ));
            }
        }
    }

    fn agreement(t: &Tally) -> f64 {
        if t.compared == 0 {
            1.0
        } else {
            t.agree as f64 / t.compared as f64
        }
    }

    /// Prints the table and asserts the minimum agreement per field.
    fn report(&self, min: f64) {
        println!(
            "\n== {}: {} files, {} frames, {} decoded by etherparse ==",
            self.name, self.files, self.frames, self.compared_frames
        );
        println!("frames by link type: {:?}", self.by_link);
        for e in &self.file_errors {
            println!("read error: {e}");
        }
        println!(
            "{:<12} {:>9} {:>9} {:>8} {:>10}",
            "field", "agree", "compared", "excused", "agreement"
        );
        for (name, t) in FIELDS.iter().zip(&self.fields) {
            println!(
                "{:<12} {:>9} {:>9} {:>8} {:>9.3}%",
                name,
                t.agree,
                t.compared,
                t.excused.values().sum::<u64>(),
                100.0 * Self::agreement(t)
            );
        }
        for (name, t) in FIELDS.iter().zip(&self.fields) {
            for (class, count) in &t.excused {
                println!("excused {name}: {count} x {class}");
            }
            for s in &t.samples {
                println!("differs {name}: {s}");
            }
        }
        let problems: Vec<_> = self.stats.nonzero().collect();
        println!("parse problems (our parser): {problems:?}");
        for (name, t) in FIELDS.iter().zip(&self.fields) {
            assert!(
                Self::agreement(t) >= min,
                "{}: {name} agreement {:.4} % below {:.1} %",
                self.name,
                100.0 * Self::agreement(t),
                100.0 * min
            );
        }
    }
}

/// SplitMix64 finalizer: a deterministic pseudo-random cut per frame.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn differential_corpus() {
    let Some(dir) =
        netanalyzer_capture::testing::shared_pcaps_or_skip("the differential corpus test")
    else {
        return;
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no captures in {}", dir.display());
    let mut whole = Diff::new("shared corpus");
    let mut cut = Diff::new("shared corpus, every frame cut short");
    cut.mode = Mode::Cut;
    let mut flip = Diff::new("shared corpus, one header byte flipped per frame");
    flip.mode = Mode::Flip;
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for diff in [&mut whole, &mut cut, &mut flip] {
            let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
            diff.run(&name, file);
        }
    }
    whole.report(MIN_AGREEMENT_CORPUS);
    cut.report(MIN_AGREEMENT_CORPUS);
    flip.report(MIN_AGREEMENT_CORPUS);
}

#[test]
fn differential_generated() {
    let cfg = GenConfig {
        packets: GENERATED_PACKETS,
        seed: 7,
        scenarios: Scenario::ALL.to_vec(),
        weights: vec![4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        ..GenConfig::default()
    };
    let (mut pcap, mut labels) = (Vec::new(), Vec::new());
    let summary = generate(&cfg, &mut pcap, &mut labels).unwrap();
    assert_eq!(summary.packets, GENERATED_PACKETS);
    print!("{summary}");
    let mut diff = Diff::new("generated capture");
    diff.run("generated", &pcap[..]);
    assert_eq!(diff.frames, GENERATED_PACKETS);
    diff.report(MIN_AGREEMENT_GENERATED);
    for mode in [Mode::Cut, Mode::Flip] {
        let mut diff = Diff::new(match mode {
            Mode::Cut => "generated capture, every frame cut short",
            _ => "generated capture, one header byte flipped per frame",
        });
        diff.mode = mode;
        diff.run("generated", &pcap[..]);
        diff.report(MIN_AGREEMENT_GENERATED);
    }
}

/// The harness itself: a frame built by etherparse agrees on every field,
/// the 9-bit flag value is assembled in the right order, and a wrong
/// record field is caught.
#[test]
fn harness_detects_differences() {
    let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .single_vlan(etherparse::VlanId::try_new(42).unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 63)
        .tcp(40000, 443, 1234, 512)
        .ns()
        .ece()
        .syn()
        .ack(99);
    let mut frame = Vec::new();
    builder.write(&mut frame, b"hello").unwrap();
    let t = theirs(LinkType::ETHERNET, &frame).unwrap();
    assert_eq!(
        t.view[F::TcpFlags as usize],
        Some(Some(V::N(0x100 | 0x040 | 0x010 | 0x002)))
    );
    assert_eq!(t.view[F::PayloadLen as usize], Some(Some(V::N(5))));
    let mut rec = PacketRecord {
        wire_len: frame.len() as u32,
        cap_len: frame.len() as u32,
        ..PacketRecord::default()
    };
    let mut diff = Diff::new("built frame");
    parse_frame(LinkType::ETHERNET, &frame, &mut rec, &mut diff.stats);
    diff.compare("built", 1, &t, &rec);
    for (name, tally) in FIELDS.iter().zip(&diff.fields) {
        assert_eq!(tally.agree, tally.compared, "{name}: {:?}", tally.samples);
        let expect_compared = !matches!(*name, "icmp_type" | "icmp_code" | "arp_op");
        assert_eq!(tally.compared > 0, expect_compared, "{name}");
    }
    rec.tcp_window = Some(513);
    rec.vlan_id = None;
    rec.icmp_type = Some(8);
    diff.compare("built", 2, &t, &rec);
    for (name, tally) in FIELDS.iter().zip(&diff.fields) {
        let wrong = matches!(*name, "tcp_window" | "vlan_id" | "icmp_type");
        assert_eq!(tally.samples.len(), usize::from(wrong), "{name}");
    }
}
