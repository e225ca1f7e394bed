//! Conformance of the flow table against tshark's conversation tables, on
//! every capture of `../shared/pcaps` (see `docs/conformance.md`, section
//! "Flows against tshark's conversations").
//!
//! Each capture is read with `FileSource`, fed to a `FlowAggregator` with
//! the default config, then drained. The flow records are compared per
//! canonical key and per direction with `oracle/NAME.conv.txt`
//! (`tshark -q -z conv,tcp -z conv,udp -z conv,ipv4 -z conv,ipv6`):
//!
//! - **exact**: a TCP/UDP key with exactly one flow record and exactly one
//!   tshark row: packets per direction must be equal, bytes per direction
//!   must print the same as tshark prints them (exact below 10,000 bytes,
//!   then truncated kB/MB).
//! - **split**: several records (active timeout, idle timeout, FIN/RST
//!   then reuse of the ports) or several tshark rows (tshark opens a new
//!   TCP stream on a reused port): the sums per direction must match.
//! - **address**: the IPv4/IPv6 tables (per address pair, every
//!   protocol) against the sums of all our IP flows of that pair.
//!
//! A difference is accepted only when a rule on the capture's packets (not
//! on the outcome) puts the conversation in a documented class; every other
//! difference fails the test. Independently of tshark, every key's records
//! must sum to exactly the packets and bytes the capture has for that key
//! (every packet is in exactly one record).
//!
//! `cargo test -p netanalyzer-examples --test flow_conformance -- --nocapture`
//! prints the per-file table. When the corpus is missing the test is skipped
//! with a printed reason, unless `CI=true`, where it fails.

use netanalyzer_capture::testing::{read_capture, shared_pcaps_or_skip};
use netanalyzer_core::{
    Aggregator, EndReason, FlowAddr, FlowKey, FlowProto, FlowRecord, PacketRecord,
};
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

// ---------------------------------------------------------------- corpus

/// The capture names of MANIFEST.tsv, in its order.
fn manifest(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `oracle/NAME.conv.txt`, plain or gzip-compressed.
fn read_conv(dir: &Path, name: &str) -> Option<String> {
    let plain = dir.join("oracle").join(format!("{name}.conv.txt"));
    if plain.is_file() {
        return Some(std::fs::read_to_string(plain).unwrap());
    }
    let gz = dir.join("oracle").join(format!("{name}.conv.txt.gz"));
    if gz.is_file() {
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        return Some(s);
    }
    None
}

// ---------------------------------------------------------------- oracle

/// Which conversation table a row is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Table {
    Ipv4,
    Ipv6,
    Udp,
    Tcp,
}

/// Byte count as tshark prints it: exact below 10,000, otherwise
/// truncated to whole kB / MB / GB (SI), so it stands for a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Bytes {
    min: u64,
    max: u64,
}

impl Bytes {
    fn parse(num: &str, unit: &str) -> Bytes {
        let n: u64 = num.parse().unwrap();
        let mult = match unit {
            "bytes" => return Bytes { min: n, max: n },
            "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            other => panic!("unknown byte unit {other:?}"),
        };
        Bytes {
            min: n * mult,
            max: n * mult + mult - 1,
        }
    }

    fn add(self, o: Bytes) -> Bytes {
        Bytes {
            min: self.min + o.min,
            max: self.max + o.max,
        }
    }

    fn holds(self, v: u64) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

/// Counts of one conversation in canonical direction order: `lh` is from
/// the key's lower endpoint to its higher one, `hl` the other way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Dir<B> {
    lh_packets: u64,
    lh_bytes: B,
    hl_packets: u64,
    hl_bytes: B,
}

type Expected = Dir<Bytes>;
type Observed = Dir<u64>;

impl Expected {
    fn add(self, o: Expected) -> Expected {
        Expected {
            lh_packets: self.lh_packets + o.lh_packets,
            lh_bytes: self.lh_bytes.add(o.lh_bytes),
            hl_packets: self.hl_packets + o.hl_packets,
            hl_bytes: self.hl_bytes.add(o.hl_bytes),
        }
    }

    /// Whether `ours` agrees; with `undirected` (both endpoints equal) only
    /// the totals are compared.
    fn agrees(&self, ours: &Observed, undirected: bool) -> bool {
        if undirected {
            return self.lh_packets + self.hl_packets == ours.lh_packets + ours.hl_packets
                && self
                    .lh_bytes
                    .add(self.hl_bytes)
                    .holds(ours.lh_bytes + ours.hl_bytes);
        }
        self.lh_packets == ours.lh_packets
            && self.hl_packets == ours.hl_packets
            && self.lh_bytes.holds(ours.lh_bytes)
            && self.hl_bytes.holds(ours.hl_bytes)
    }
}

impl Observed {
    fn add(self, o: Observed) -> Observed {
        Observed {
            lh_packets: self.lh_packets + o.lh_packets,
            lh_bytes: self.lh_bytes + o.lh_bytes,
            hl_packets: self.hl_packets + o.hl_packets,
            hl_bytes: self.hl_bytes + o.hl_bytes,
        }
    }
}

/// A conversation key in both worlds: TCP/UDP tables by canonical
/// [`FlowKey`], address tables by the ordered address pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum ConvKey {
    Flow(FlowKey),
    Addr(Table, IpAddr, IpAddr),
}

impl ConvKey {
    fn undirected(&self) -> bool {
        match self {
            ConvKey::Flow(k) => k.lo_addr == k.hi_addr && k.lo_port == k.hi_port,
            ConvKey::Addr(_, a, b) => a == b,
        }
    }
}

impl std::fmt::Display for ConvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvKey::Flow(k) => write!(f, "{k}"),
            ConvKey::Addr(t, a, b) => write!(f, "{t:?} {a} <-> {b}"),
        }
    }
}

/// One row of a tshark conversation table, in canonical order.
#[derive(Debug, Clone)]
struct ConvRow {
    key: ConvKey,
    counts: Expected,
    /// "Relative Start" and "Duration" as printed.
    start: String,
    duration: String,
}

fn split_port(s: &str) -> (IpAddr, u16) {
    let (a, p) = s.rsplit_once(':').unwrap();
    (a.parse().unwrap(), p.parse().unwrap())
}

/// Parses `tshark -z conv,...` output: each table starts with a line
/// `<Name> Conversations`; a data row is
/// `A <-> B  frames bytes unit (B→A)  frames bytes unit (A→B)  total  start duration`.
fn parse_conv(text: &str) -> Vec<ConvRow> {
    let mut table = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_suffix(" Conversations") {
            table = Some(match name {
                "IPv4" => Table::Ipv4,
                "IPv6" => Table::Ipv6,
                "UDP" => Table::Udp,
                "TCP" => Table::Tcp,
                other => panic!("unknown conversation table {other:?}"),
            });
            continue;
        }
        if !t.contains(" <-> ") {
            continue;
        }
        let tok: Vec<&str> = t.split_whitespace().collect();
        assert_eq!(tok.len(), 14, "unexpected conversation row {t:?}");
        let table = table.expect("row before a table title");
        let ba = (tok[3].parse::<u64>().unwrap(), Bytes::parse(tok[4], tok[5]));
        let ab = (tok[6].parse::<u64>().unwrap(), Bytes::parse(tok[7], tok[8]));
        let (key, a_is_lo) = match table {
            Table::Tcp | Table::Udp => {
                let (a, pa) = split_port(tok[0]);
                let (b, pb) = split_port(tok[2]);
                let proto = FlowProto::Ip(if table == Table::Tcp { 6 } else { 17 });
                let (k, d) = FlowKey::new(proto, FlowAddr::Ip(a), pa, FlowAddr::Ip(b), pb);
                (ConvKey::Flow(k), d == netanalyzer_core::Direction::Forward)
            }
            Table::Ipv4 | Table::Ipv6 => {
                let a: IpAddr = tok[0].parse().unwrap();
                let b: IpAddr = tok[2].parse().unwrap();
                if a <= b {
                    (ConvKey::Addr(table, a, b), true)
                } else {
                    (ConvKey::Addr(table, b, a), false)
                }
            }
        };
        let (lh, hl) = if a_is_lo { (ab, ba) } else { (ba, ab) };
        rows.push(ConvRow {
            key,
            counts: Expected {
                lh_packets: lh.0,
                lh_bytes: lh.1,
                hl_packets: hl.0,
                hl_bytes: hl.1,
            },
            start: tok[12].to_owned(),
            duration: tok[13].to_owned(),
        });
    }
    rows
}

// ---------------------------------------------------------------- ours

/// One flow record's counts in canonical order.
fn observed(r: &FlowRecord) -> Observed {
    let fwd_is_lh = (r.src, r.src_port) == (r.key.lo_addr, r.key.lo_port);
    if fwd_is_lh {
        Observed {
            lh_packets: r.fwd_packets,
            lh_bytes: r.fwd_bytes,
            hl_packets: r.bwd_packets,
            hl_bytes: r.bwd_bytes,
        }
    } else {
        Observed {
            lh_packets: r.bwd_packets,
            lh_bytes: r.bwd_bytes,
            hl_packets: r.fwd_packets,
            hl_bytes: r.fwd_bytes,
        }
    }
}

/// The address-table key of a flow key (IP flows only).
fn addr_key(k: &FlowKey) -> Option<(ConvKey, bool)> {
    match (k.lo_addr, k.hi_addr) {
        (FlowAddr::Ip(a), FlowAddr::Ip(b)) => {
            let t = if a.is_ipv4() {
                Table::Ipv4
            } else {
                Table::Ipv6
            };
            // FlowKey orders by (address, port), so lo_addr <= hi_addr.
            Some((ConvKey::Addr(t, a, b), true))
        }
        _ => None,
    }
}

/// The packets' own per-key totals (no timeouts, no tshark): what every
/// key's records must sum to.
fn packet_totals(recs: &[PacketRecord]) -> (BTreeMap<FlowKey, Observed>, u64) {
    let mut m: BTreeMap<FlowKey, Observed> = BTreeMap::new();
    let mut unkeyed = 0;
    for r in recs {
        let Some((k, d)) = FlowKey::from_record(r) else {
            unkeyed += 1;
            continue;
        };
        let e = m.entry(k).or_default();
        let b = u64::from(r.wire_len);
        match d {
            netanalyzer_core::Direction::Forward => {
                e.lh_packets += 1;
                e.lh_bytes += b;
            }
            netanalyzer_core::Direction::Reverse => {
                e.hl_packets += 1;
                e.hl_bytes += b;
            }
        }
    }
    (m, unkeyed)
}

// ---------------------------------------------------------------- classes

/// Why a conversation may differ from tshark's, decided from the
/// capture's packets or its file (documented in docs/conformance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Class {
    /// The address pair carried IP fragments: tshark reassembles and counts
    /// the datagram once in the TCP/UDP table (at its last fragment); we
    /// key the first fragment by its ports and later ones with ports 0.
    Fragments,
    /// A tunnel (IP-in-IP, GRE, UDP tunnel port) between the pair, or a
    /// conversation only tshark has in a capture with tunnels: tshark also
    /// counts every inner packet, in the inner conversations.
    Tunnel,
    /// tshark frames the corrupt file differently (see the parser
    /// conformance, `FRAMED_DIFFERENTLY`).
    FramedDifferently,
    /// IPv6 type-0 routing header: tshark keys the UDP conversation on the
    /// final destination (the last address of the header), the record on
    /// the IPv6 header's destination.
    Ipv6RoutingHeader,
    /// tshark registers no IPv6 conversation for these packets (mobility
    /// header without a transport; a hop-by-hop header cut by the snap
    /// length): observed, the packets are otherwise decoded alike.
    NoTsharkConversation,
}

/// Captures whose every difference is in one class, with the class.
const FILE_CLASSES: [(&str, Class); 4] = [
    ("corrupt-huge-caplen.pcap", Class::FramedDifferently),
    ("ipv6-routing-header.pcap", Class::Ipv6RoutingHeader),
    ("rawip6-mobility.pcap", Class::NoTsharkConversation),
    (
        "malformed-ipv6-nexthdr-oobr.pcap",
        Class::NoTsharkConversation,
    ),
];

/// Per-capture facts the classes are decided from.
#[derive(Default)]
struct Facts {
    file_class: Option<Class>,
    frag_pairs: BTreeSet<(IpAddr, IpAddr)>,
    tunnel_pairs: BTreeSet<(IpAddr, IpAddr)>,
}

const IP_TUNNEL_PROTOS: [u8; 4] = [4, 41, 47, 97];
const UDP_TUNNEL_PORTS: [u16; 6] = [4789, 6081, 4790, 2152, 3544, 1701];

fn pair(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn facts(name: &str, recs: &[PacketRecord]) -> Facts {
    let mut f = Facts {
        file_class: FILE_CLASSES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c),
        ..Facts::default()
    };
    for r in recs {
        let (Some(s), Some(d)) = (r.src_ip, r.dst_ip) else {
            continue;
        };
        let p = pair(s, d);
        if r.is_fragment == Some(true) {
            f.frag_pairs.insert(p);
        }
        let proto = r.ip_proto.unwrap_or(0);
        if IP_TUNNEL_PROTOS.contains(&proto)
            || (proto == 17
                && [r.src_port, r.dst_port]
                    .iter()
                    .flatten()
                    .any(|p| UDP_TUNNEL_PORTS.contains(p)))
        {
            f.tunnel_pairs.insert(p);
        }
    }
    f
}

/// The classes that apply to a conversation key (`kind` is how it was
/// compared: a tshark-only row in a capture with tunnels is an inner one).
fn classes(f: &Facts, k: &ConvKey, kind: &str) -> Vec<Class> {
    let mut out: Vec<Class> = f.file_class.into_iter().collect();
    let p = match k {
        ConvKey::Flow(fk) => match (fk.lo_addr, fk.hi_addr) {
            (FlowAddr::Ip(a), FlowAddr::Ip(b)) => pair(a, b),
            _ => return out,
        },
        ConvKey::Addr(_, a, b) => pair(*a, *b),
    };
    if f.frag_pairs.contains(&p) {
        out.push(Class::Fragments);
    }
    if f.tunnel_pairs.contains(&p) || (kind == "tshark only" && !f.tunnel_pairs.is_empty()) {
        out.push(Class::Tunnel);
    }
    out
}

// ---------------------------------------------------------------- compare

#[derive(Default, Clone, Copy)]
struct FileTally {
    packets: u64,
    records: u64,
    exact: u64,
    exact_ok: u64,
    exact_time_ok: u64,
    /// Exact matches by the record's end reason (`EndReason::ALL` order).
    exact_by_reason: [u64; 6],
    split: u64,
    split_ok: u64,
    addr: u64,
    addr_ok: u64,
    ours_only: u64,
    tshark_only: u64,
    excused: u64,
    failed: u64,
}

impl std::ops::AddAssign for FileTally {
    fn add_assign(&mut self, o: FileTally) {
        self.packets += o.packets;
        self.records += o.records;
        self.exact += o.exact;
        self.exact_ok += o.exact_ok;
        self.exact_time_ok += o.exact_time_ok;
        for (a, b) in self.exact_by_reason.iter_mut().zip(o.exact_by_reason) {
            *a += b;
        }
        self.split += o.split;
        self.split_ok += o.split_ok;
        self.addr += o.addr;
        self.addr_ok += o.addr_ok;
        self.ours_only += o.ours_only;
        self.tshark_only += o.tshark_only;
        self.excused += o.excused;
        self.failed += o.failed;
    }
}

fn fmt_secs(ns: u64) -> (u64, u64) {
    (ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Runs the flow table over the records: every emitted record, then the
/// drained ones.
fn aggregate(recs: &[PacketRecord]) -> (Vec<FlowRecord>, netanalyzer_ml::flow::FlowStats) {
    let mut agg = FlowAggregator::new(FlowConfig::default());
    let mut out = Vec::new();
    for r in recs {
        agg.ingest(r, &mut out);
    }
    agg.drain(&mut out);
    assert!(agg.is_empty(), "drain left flows open");
    (out, agg.stats())
}

struct Diff {
    file: String,
    key: ConvKey,
    kind: &'static str,
    expected: Option<Expected>,
    ours: Option<Observed>,
    classes: Vec<Class>,
}

fn compare_file(
    name: &str,
    recs: &[PacketRecord],
    conv: &[ConvRow],
    diffs: &mut Vec<Diff>,
    class_counts: &mut BTreeMap<(Class, &'static str), u64>,
) -> FileTally {
    let mut t = FileTally {
        packets: recs.len() as u64,
        ..FileTally::default()
    };
    let (flows, stats) = aggregate(recs);
    t.records = flows.len() as u64;

    // Independent of tshark: conservation per key.
    let (totals, unkeyed) = packet_totals(recs);
    assert_eq!(stats.packets, recs.len() as u64, "{name}: stats.packets");
    assert_eq!(stats.unkeyed, unkeyed, "{name}: stats.unkeyed");
    let mut by_key: BTreeMap<FlowKey, Vec<&FlowRecord>> = BTreeMap::new();
    for f in &flows {
        assert_eq!(f.label, None, "{name}: label set by the aggregator");
        by_key.entry(f.key).or_default().push(f);
    }
    let mut sums: BTreeMap<FlowKey, Observed> = BTreeMap::new();
    for (k, v) in &by_key {
        let s = v
            .iter()
            .fold(Observed::default(), |a, r| a.add(observed(r)));
        sums.insert(*k, s);
    }
    assert_eq!(
        sums, totals,
        "{name}: flow records do not sum to the packets per key"
    );

    let facts = facts(name, recs);
    let first_ts = recs.iter().map(|r| r.ts_ns).min().unwrap_or(0);

    // Ours, by conversation key.
    let mut ours: BTreeMap<ConvKey, (Observed, Vec<&FlowRecord>)> = BTreeMap::new();
    for f in &flows {
        let o = observed(f);
        if matches!(f.key.proto, FlowProto::Ip(6 | 17)) {
            let e = ours.entry(ConvKey::Flow(f.key)).or_default();
            e.0 = e.0.add(o);
            e.1.push(f);
        }
        if let FlowProto::Ip(_) = f.key.proto {
            if let Some((ak, _)) = addr_key(&f.key) {
                let e = ours.entry(ak).or_default();
                e.0 = e.0.add(o);
            }
        }
    }
    // tshark, by conversation key.
    let mut theirs: BTreeMap<ConvKey, Vec<&ConvRow>> = BTreeMap::new();
    for row in conv {
        theirs.entry(row.key).or_default().push(row);
    }

    let keys: BTreeSet<ConvKey> = ours.keys().chain(theirs.keys()).copied().collect();
    for k in keys {
        let mine = ours.get(&k);
        let rows = theirs.get(&k);
        let (kind, ok) = match (mine, rows) {
            (Some(_), None) => {
                t.ours_only += 1;
                ("ours only", false)
            }
            (None, Some(_)) => {
                t.tshark_only += 1;
                ("tshark only", false)
            }
            (Some((o, recs_k)), Some(rows)) => {
                let exp = rows
                    .iter()
                    .fold(Expected::default(), |a, r| a.add(r.counts));
                let ok = exp.agrees(o, k.undirected());
                match k {
                    ConvKey::Addr(..) => {
                        t.addr += 1;
                        t.addr_ok += u64::from(ok);
                        ("address", ok)
                    }
                    ConvKey::Flow(_) if recs_k.len() == 1 && rows.len() == 1 => {
                        t.exact += 1;
                        t.exact_ok += u64::from(ok);
                        let r = recs_k[0];
                        assert_eq!(r.segment, 0, "{name}: a lone record is segment 0");
                        if ok {
                            let i = EndReason::ALL.iter().position(|x| *x == r.end_reason);
                            t.exact_by_reason[i.unwrap()] += 1;
                            let (ss, sn) = fmt_secs(r.first_ts_ns - first_ts);
                            let start = format!("{ss}.{sn:09}");
                            let dur = format!("{:.4}", (r.last_ts_ns - r.first_ts_ns) as f64 / 1e9);
                            if start == rows[0].start && dur == rows[0].duration {
                                t.exact_time_ok += 1;
                            }
                        }
                        ("exact", ok)
                    }
                    ConvKey::Flow(_) => {
                        t.split += 1;
                        t.split_ok += u64::from(ok);
                        ("split", ok)
                    }
                }
            }
            (None, None) => unreachable!(),
        };
        if ok {
            continue;
        }
        let cls = classes(&facts, &k, kind);
        if cls.is_empty() {
            t.failed += 1;
        } else {
            t.excused += 1;
            for c in &cls {
                *class_counts.entry((*c, kind)).or_default() += 1;
            }
        }
        diffs.push(Diff {
            file: name.to_owned(),
            key: k,
            kind,
            expected: rows.map(|rows| {
                rows.iter()
                    .fold(Expected::default(), |a, r| a.add(r.counts))
            }),
            ours: mine.map(|m| m.0),
            classes: cls,
        });
    }
    t
}

#[test]
fn flows_match_tshark_conversations() {
    let Some(dir) = shared_pcaps_or_skip("flow_conformance") else {
        return;
    };
    let mut total = FileTally::default();
    let mut diffs = Vec::new();
    let mut class_counts = BTreeMap::new();
    let mut skipped = Vec::new();
    println!(
        "{:<40} {:>7} {:>7} {:>11} {:>9} {:>9} {:>5} {:>5} {:>5} {:>5}",
        "file",
        "packets",
        "flows",
        "exact ok/n",
        "split",
        "address",
        "ours",
        "tsh",
        "excus",
        "FAIL"
    );
    for name in manifest(&dir) {
        let Some(conv_text) = read_conv(&dir, &name) else {
            skipped.push(format!("{name}: no oracle/NAME.conv.txt"));
            continue;
        };
        let conv = parse_conv(&conv_text);
        let (recs, _, err) = read_capture(&dir.join(&name));
        let t = compare_file(&name, &recs, &conv, &mut diffs, &mut class_counts);
        println!(
            "{:<40} {:>7} {:>7} {:>11} {:>9} {:>9} {:>5} {:>5} {:>5} {:>5}{}",
            name,
            t.packets,
            t.records,
            format!("{}/{}", t.exact_ok, t.exact),
            format!("{}/{}", t.split_ok, t.split),
            format!("{}/{}", t.addr_ok, t.addr),
            t.ours_only,
            t.tshark_only,
            t.excused,
            t.failed,
            err.map(|e| format!("  (read error: {e})"))
                .unwrap_or_default()
        );
        total += t;
    }
    println!(
        "\nTOTAL: {} packets, {} flow records; exact {}/{} (start+duration also equal: {}), split {}/{}, address {}/{}, ours-only {}, tshark-only {}, excused {}, unexplained {}",
        total.packets,
        total.records,
        total.exact_ok,
        total.exact,
        total.exact_time_ok,
        total.split_ok,
        total.split,
        total.addr_ok,
        total.addr,
        total.ours_only,
        total.tshark_only,
        total.excused,
        total.failed
    );
    let reasons: Vec<String> = EndReason::ALL
        .iter()
        .zip(total.exact_by_reason)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    println!("exact matches by end reason: {}", reasons.join(", "));
    for s in &skipped {
        println!("skipped {s}");
    }
    println!("\nexcused differences by class and kind (a conversation can be in several classes):");
    for ((c, kind), n) in &class_counts {
        println!("  {c:?} / {kind}: {n}");
    }
    let verbose = std::env::var("FLOW_CONFORMANCE_VERBOSE").is_ok();
    println!(
        "\ndifferences{}:",
        if verbose {
            ""
        } else {
            " (unexplained only; FLOW_CONFORMANCE_VERBOSE=1 for all)"
        }
    );
    for d in diffs.iter().filter(|d| verbose || d.classes.is_empty()) {
        println!(
            "  {} {} [{}] classes {:?}\n      tshark {:?}\n      ours   {:?}",
            d.file, d.key, d.kind, d.classes, d.expected, d.ours
        );
    }
    assert!(total.exact > 0, "no conversation compared");
    assert_eq!(
        total.failed, 0,
        "{} conversations differ from tshark without a documented class",
        total.failed
    );
}
