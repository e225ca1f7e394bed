//! Folding classified flows into deduplicated alerts.
//!
//! [`AlertEngine`] keeps one [`Alert`] per (class, target, window): the
//! target is the flow's forward destination (`flow.dst`), except for a
//! reflection (see [`victim_and_source`]), and the windows
//! are fixed buckets of [`AlertConfig::window_ns`] on the flow's
//! `first_ts_ns`. Every flow of an attack class (not [`BENIGN_CLASS`]) with
//! a confidence of at least [`AlertConfig::min_confidence`] grows its
//! alert: flow and packet counts, distinct sources, the highest confidence,
//! first/last times, the first flow ids. [`AlertEngine::take_updates`]
//! hands out each alert that is new or changed since the previous call,
//! once: a flood of a million flows between two calls is one update of one
//! alert, not a million.
//!
//! **Scans seen as floods.** A lone SYN probe of a port scan and a lone
//! spoofed SYN-flood packet are the same one-packet flow, so the model may
//! call a scan DoS/DDoS. The fan-out tells them apart (as Zeek's scan
//! detection does): a scan is one source touching many ports of a target,
//! a spoofed flood many sources on one or a few ports. So for DoS/DDoS
//! flows the engine counts, per (source, target, window), the distinct
//! destination ports; once a pair reaches [`SCAN_PORTS`] its DoS/DDoS
//! flows count toward a `PortScan` alert instead. And a DoS/DDoS alert
//! whose flows all come from one source is held back (not handed out)
//! until it has [`MIN_SINGLE_SOURCE_FLOOD_FLOWS`] flows: if its source
//! turns out to be scanning, the held flows move into the `PortScan`
//! alert and the DoS/DDoS alert is never published. The tracking is
//! bounded: see [`FANOUT_SLOTS`] and [`MAX_FANOUT_PAIRS`].
//!
//! Pure and deterministic: no clock, no randomness (ids are FNV-1a
//! hashes), so replaying the same flows with the same `take_updates`
//! cadence gives identical alerts. `docs/alerts.md` documents the severity
//! table, the windows and the JSON shape.
//!
//! ```
//! use netanalyzer_ml::alert::{AlertConfig, AlertEngine};
//!
//! let mut engine = AlertEngine::new(AlertConfig::default(), "v1".into());
//! let mut updates = Vec::new();
//! engine.take_updates(&mut updates);
//! assert!(updates.is_empty());
//! ```

use netanalyzer_core::{Alert, FlowAddr, FlowRecord, Severity, BENIGN_CLASS};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How long after a window ends its alert is kept open for late flows
/// (300 s). A flow record is emitted after its first packet by at most
/// the active timeout plus the idle timeout (120 s + 120 s with the
/// default flow table), so a flow is practically never later than this.
/// Flows of a window already forgotten are counted in
/// [`AlertStats::late_flows`] and raise nothing (a fresh alert would reuse
/// the id and reset the stored counts).
pub const LATE_FLOW_GRACE_NS: u64 = 300_000_000_000;

/// Distinct sources are counted exactly up to this many per alert; beyond
/// it a HyperLogLog sketch (4096 one-byte registers, ~1.6% error) takes
/// over, so a spoofed flood cannot grow an alert without bound.
pub const EXACT_SOURCES: usize = 4096;

/// Distinct destination ports at which one source is taken to be scanning
/// a target (within one window): its DoS/DDoS flows to that target then
/// count toward a `PortScan` alert.
pub const SCAN_PORTS: usize = 16;

/// A DoS or DDoS alert whose flows all come from one source is held (not
/// handed out by `take_updates`) until it has this many flows, so the first
/// probes of a scan, before [`SCAN_PORTS`] tells it is one, raise no flood
/// alert. A second source releases it at once (a spoofed flood publishes as
/// soon as before). A held alert whose window is forgotten is dropped
/// unpublished ([`AlertStats::held_dropped`]).
pub const MIN_SINGLE_SOURCE_FLOOD_FLOWS: u64 = 32;

/// Slots of the fixed first-port table: a (source, target, window) pair
/// seen once is remembered here (hash tag + its port, 16 bytes a slot;
/// a newer pair in the same slot overwrites it). Only a pair seen again on
/// a *different* port enters the pair table, so a spoofed flood (one flow
/// per source, or one port) never does.
pub const FANOUT_SLOTS: usize = 8192;

/// At most this many (source, target, window) pairs have their distinct
/// ports tracked (each at most [`SCAN_PORTS`] ports); further pairs are not
/// tracked while the table is full ([`AlertStats::fanout_untracked`]).
/// Pairs are forgotten with their window.
pub const MAX_FANOUT_PAIRS: usize = 16_384;

/// Registers of the HyperLogLog sketch (2^12).
const HLL_BITS: u32 = 12;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// Alert engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Width of an alert window in ns, on the flow's first packet time.
    /// Default 300 s: long enough that a scan or flood is one alert, short
    /// enough that a new attack the next hour is a new one. 0 is taken as 1.
    pub window_ns: u64,
    /// Flows classified with a lower confidence raise nothing. Default 0.6
    /// (a clear majority of the forest's trees).
    pub min_confidence: f64,
    /// Distinct source addresses listed in an alert (all are counted in
    /// `source_count`). Default 16.
    pub max_sources: usize,
    /// Flow ids listed in an alert (the first ones). Default 100.
    pub max_flow_ids: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            window_ns: 300_000_000_000,
            min_confidence: 0.6,
            max_sources: 16,
            max_flow_ids: 100,
        }
    }
}

/// What the engine has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertStats {
    /// Flows passed to [`AlertEngine::observe`].
    pub flows_seen: u64,
    /// Flows folded into an alert.
    pub flows_alerted: u64,
    /// Flows without a label (no classifier ran).
    pub ignored_unlabelled: u64,
    /// Flows of the benign class.
    pub ignored_benign: u64,
    /// Flows below [`AlertConfig::min_confidence`].
    pub ignored_low_confidence: u64,
    /// Flows whose window was already forgotten (see [`LATE_FLOW_GRACE_NS`]).
    pub late_flows: u64,
    /// Alerts raised (distinct alert ids).
    pub raised: u64,
    /// Updates handed out by `take_updates` (first raises included).
    pub updates: u64,
    /// Alerts open now (their window not yet forgotten).
    pub open: u64,
    /// Alerts forgotten by `expire`.
    pub expired: u64,
    /// Alerts raised, by the severity they had when last updated
    /// (index = position in [`Severity::ALL`]).
    pub by_severity: [u64; 4],
    /// DoS/DDoS flows counted toward a `PortScan` alert because their
    /// source scans their target (see [`SCAN_PORTS`]), held flows moved
    /// included.
    #[serde(default)]
    pub scan_flows: u64,
    /// Single-source DoS/DDoS alerts held now (not yet handed out; not in
    /// `open`).
    #[serde(default)]
    pub held: u64,
    /// Held alerts moved into a `PortScan` alert (never handed out).
    #[serde(default)]
    pub held_to_scan: u64,
    /// Held alerts forgotten with their window before reaching
    /// [`MIN_SINGLE_SOURCE_FLOOD_FLOWS`] (never handed out).
    #[serde(default)]
    pub held_dropped: u64,
    /// DoS/DDoS flows of a new pair that could not be tracked because the
    /// pair table was full ([`MAX_FANOUT_PAIRS`]).
    #[serde(default)]
    pub fanout_untracked: u64,
}

/// The severity of an alert of `class` with these counts; `None` for the
/// benign class (`Normal`, or `BENIGN`/`benign` from CIC labels).
///
/// | class | severity |
/// |---|---|
/// | PortScan | low; medium from 1 000 flows or 10 sources |
/// | BruteForce | medium; high from 1 000 flows |
/// | DoS | high; critical from 100 000 flows |
/// | DDoS | high; critical from 10 sources |
/// | WebAttack | high |
/// | Botnet | high |
/// | Other, and any class not listed | medium |
///
/// Counts only grow, so an alert's severity never goes down.
pub fn severity_for(class: &str, flow_count: u64, source_count: u64) -> Option<Severity> {
    if is_benign(class) {
        return None;
    }
    Some(match class {
        "PortScan" if flow_count >= 1_000 || source_count >= 10 => Severity::Medium,
        "PortScan" => Severity::Low,
        "BruteForce" if flow_count >= 1_000 => Severity::High,
        "BruteForce" => Severity::Medium,
        "DoS" if flow_count >= 100_000 => Severity::Critical,
        "DoS" => Severity::High,
        "DDoS" if source_count >= 10 => Severity::Critical,
        "DDoS" => Severity::High,
        "WebAttack" | "Botnet" => Severity::High,
        _ => Severity::Medium,
    })
}

fn is_benign(class: &str) -> bool {
    class == BENIGN_CLASS
        || class.eq_ignore_ascii_case("benign")
        || class.eq_ignore_ascii_case("normal")
}

/// Bytes the responder must send per byte of the initiator before a DoS
/// or DDoS flow counts as a reflection (amplification factors of DNS,
/// NTP, SNMP, memcached are 10 to 50 000).
pub const REFLECTION_RATIO: u64 = 4;

/// Who a flow of `class` attacks, and from where: (target, source).
///
/// Normally the forward destination and source. A DoS or DDoS flow whose
/// responder sent more than [`REFLECTION_RATIO`] times the initiator's
/// bytes is a reflection: the "requests" carried the victim's address as
/// their (spoofed) source, so the victim is the forward source and the
/// attacking side is the reflector. Without this a DNS amplification seen
/// in both directions would raise one alert per open resolver instead of
/// one against its victim.
pub fn victim_and_source(class: &str, flow: &FlowRecord) -> (FlowAddr, FlowAddr) {
    let flood = matches!(class, "DoS" | "DDoS");
    if flood && flow.bwd_bytes > flow.fwd_bytes.saturating_mul(REFLECTION_RATIO) {
        (flow.src, flow.dst)
    } else {
        (flow.dst, flow.src)
    }
}

/// The id of the alert of `class` against `target` in the window starting
/// at `window_start_ns`: FNV-1a 64 of the three, with the top bit cleared
/// so it fits a signed 64-bit database column.
pub fn alert_id(class: &str, target: &str, window_start_ns: u64) -> u64 {
    let mut h = Fnv::new();
    h.bytes(class.as_bytes());
    h.bytes(&[0]);
    h.bytes(target.as_bytes());
    h.bytes(&[0]);
    h.bytes(&window_start_ns.to_le_bytes());
    h.finish() & (u64::MAX >> 1)
}

/// FNV-1a, 64 bits: deterministic across runs and platforms.
struct Fnv(u64);

impl Fnv {
    const fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        // A final avalanche (splitmix64) so the HyperLogLog sees well
        // spread bits even for addresses that differ in one byte.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn addr_hash(a: &FlowAddr) -> u64 {
    let mut h = Fnv::new();
    match a {
        FlowAddr::Ip(std::net::IpAddr::V4(v4)) => {
            h.bytes(&[4]);
            h.bytes(&v4.octets());
        }
        FlowAddr::Ip(std::net::IpAddr::V6(v6)) => {
            h.bytes(&[6]);
            h.bytes(&v6.octets());
        }
        FlowAddr::Mac(m) => {
            h.bytes(&[0]);
            h.bytes(&m.octets());
        }
    }
    h.finish()
}

/// Distinct source counter: exact up to [`EXACT_SOURCES`], then a
/// HyperLogLog sketch.
#[derive(Debug, Clone)]
enum SourceSet {
    Exact(HashSet<u64>),
    Sketch(Sketch),
}

/// HyperLogLog registers with the estimate's sum kept up to date in exact
/// fixed point (Σ 2^(64 − r)), so an update costs O(1) and a restored
/// sketch gives bit-identical estimates.
#[derive(Debug, Clone)]
struct Sketch {
    regs: Vec<u8>,
    sum: u128,
    zeros: u32,
}

impl Sketch {
    fn new(mut regs: Vec<u8>) -> Sketch {
        regs.resize(HLL_REGISTERS, 0);
        let sum = regs.iter().map(|&r| 1u128 << (64 - u32::from(r))).sum();
        let zeros = regs.iter().filter(|&&r| r == 0).count() as u32;
        Sketch { regs, sum, zeros }
    }

    /// True when a register grew.
    fn add(&mut self, h: u64) -> bool {
        let idx = (h >> (64 - HLL_BITS)) as usize;
        let rest = (h << HLL_BITS) | (1 << (HLL_BITS - 1));
        let rank = (rest.leading_zeros() + 1) as u8;
        let old = self.regs[idx];
        if rank <= old {
            return false;
        }
        self.regs[idx] = rank;
        self.sum -= 1u128 << (64 - u32::from(old));
        self.sum += 1u128 << (64 - u32::from(rank));
        if old == 0 {
            self.zeros -= 1;
        }
        true
    }

    fn estimate(&self) -> u64 {
        let m = HLL_REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum = self.sum as f64 / 18_446_744_073_709_551_616.0; // 2^64
        let raw = alpha * m * m / sum;
        let est = if raw <= 2.5 * m && self.zeros > 0 {
            m * (m / f64::from(self.zeros)).ln()
        } else {
            raw
        };
        est.round() as u64
    }
}

impl SourceSet {
    /// Adds a hash; true when it was (or, in the sketch, may have been)
    /// new.
    fn insert(&mut self, h: u64) -> bool {
        match self {
            SourceSet::Exact(set) => {
                let new = set.insert(h);
                if set.len() > EXACT_SOURCES {
                    let mut sketch = Sketch::new(Vec::new());
                    for &x in set.iter() {
                        sketch.add(x);
                    }
                    *self = SourceSet::Sketch(sketch);
                }
                new
            }
            SourceSet::Sketch(sketch) => sketch.add(h),
        }
    }

    fn count(&self) -> u64 {
        match self {
            SourceSet::Exact(set) => set.len() as u64,
            SourceSet::Sketch(sketch) => sketch.estimate(),
        }
    }

    fn to_state(&self) -> SourcesState {
        match self {
            SourceSet::Exact(set) => {
                let mut v: Vec<u64> = set.iter().copied().collect();
                v.sort_unstable();
                SourcesState::Exact(v)
            }
            SourceSet::Sketch(sketch) => SourcesState::Sketch(sketch.regs.clone()),
        }
    }

    fn from_state(s: SourcesState) -> SourceSet {
        match s {
            SourcesState::Exact(v) => SourceSet::Exact(v.into_iter().collect()),
            SourcesState::Sketch(regs) => SourceSet::Sketch(Sketch::new(regs)),
        }
    }
}

/// (class index into the engine's class table, target, window start).
type Key = (u32, FlowAddr, u64);

#[derive(Debug, Clone)]
struct Entry {
    alert: Alert,
    sources: SourceSet,
    dirty: bool,
    /// A single-source DoS/DDoS alert not yet handed out (see
    /// [`MIN_SINGLE_SOURCE_FLOOD_FLOWS`]).
    held: bool,
}

/// (source, target, window start).
type Pair = (FlowAddr, FlowAddr, u64);

/// Distinct destination ports per (source, target, window) of DoS/DDoS
/// flows, bounded: a fixed first-port table plus a capped pair table.
#[derive(Debug, Clone, Default)]
struct Fanout {
    /// `FANOUT_SLOTS` (tag, port) once used; tag 0 = empty.
    slots: Vec<(u64, u16)>,
    /// Sorted distinct ports, at most `SCAN_PORTS`.
    pairs: HashMap<Pair, Vec<u16>>,
}

/// What [`Fanout::observe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    No,
    /// The pair reached `SCAN_PORTS` with this flow.
    Started,
    /// The pair had reached it before.
    Ongoing,
}

impl Fanout {
    /// Notes `port` for `pair`; `untracked` is bumped when the pair table
    /// is full.
    fn observe(&mut self, pair: Pair, port: u16, untracked: &mut u64) -> Scan {
        if let Some(ports) = self.pairs.get_mut(&pair) {
            if ports.len() >= SCAN_PORTS {
                return Scan::Ongoing;
            }
            if let Err(i) = ports.binary_search(&port) {
                ports.insert(i, port);
                if ports.len() >= SCAN_PORTS {
                    return Scan::Started;
                }
            }
            return Scan::No;
        }
        let mut h = Fnv::new();
        h.bytes(&addr_hash(&pair.0).to_le_bytes());
        h.bytes(&addr_hash(&pair.1).to_le_bytes());
        h.bytes(&pair.2.to_le_bytes());
        let tag = h.finish() | 1;
        if self.slots.is_empty() {
            self.slots = vec![(0, 0); FANOUT_SLOTS];
        }
        let slot = &mut self.slots[(tag >> 1) as usize % FANOUT_SLOTS];
        if slot.0 == tag && slot.1 != port {
            // Seen before on another port: track the pair.
            if self.pairs.len() >= MAX_FANOUT_PAIRS {
                *untracked += 1;
                return Scan::No;
            }
            let mut ports = vec![slot.1, port];
            ports.sort_unstable();
            *slot = (0, 0);
            self.pairs.insert(pair, ports);
            // SCAN_PORTS > 2: not a scan yet.
            return Scan::No;
        }
        *slot = (tag, port);
        Scan::No
    }

    /// Forgets the pairs of windows starting at or before `cutoff`.
    fn expire(&mut self, cutoff: u64) {
        self.pairs.retain(|p, _| p.2 > cutoff);
    }
}

/// Whether a flow looks like a server's answer (from a well-known port to
/// an ephemeral one): the answers of a reflection seen one-way, whose
/// varying destination ports are the victim's, not a scan's.
fn is_answer(flow: &FlowRecord) -> bool {
    flow.src_port < 1024 && flow.dst_port >= 1024
}

/// Counts `source` in the entry's distinct sources.
fn add_source(entry: &mut Entry, source: &FlowAddr, max_sources: usize) {
    let a = &mut entry.alert;
    if entry.sources.insert(addr_hash(source)) {
        if a.sources.len() < max_sources {
            let s = source.to_string();
            if !a.sources.contains(&s) {
                a.sources.push(s);
            }
        }
        // Keep the count monotonic (the estimate may wobble).
        a.source_count = a.source_count.max(entry.sources.count());
    }
}

/// Folds classified flows into alerts. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct AlertEngine {
    cfg: AlertConfig,
    model_version: String,
    classes: Vec<String>,
    entries: HashMap<Key, Entry>,
    /// Keys changed since the last `take_updates`, in order of first change.
    dirty: Vec<Key>,
    /// Open windows, for `expire` in O(expired).
    windows: BTreeMap<u64, Vec<Key>>,
    /// Alerts forgotten while they had unpublished changes: handed out by
    /// the next `take_updates`.
    pending: Vec<Alert>,
    /// Windows starting before this are forgotten.
    watermark_ns: u64,
    stats: AlertStats,
    fanout: Fanout,
}

/// The whole state of an [`AlertEngine`], for checkpoints: serde, stable
/// (sorted) order, so equal engines give equal bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    model_version: String,
    classes: Vec<String>,
    entries: Vec<EntryState>,
    dirty: Vec<(u32, FlowAddr, u64)>,
    pending: Vec<Alert>,
    watermark_ns: u64,
    stats: AlertStats,
    /// Used first-port slots: (index, tag, port), by index.
    #[serde(default)]
    fanout_slots: Vec<(u32, u64, u16)>,
    /// Tracked pairs: (source, target, window start, sorted ports), sorted.
    #[serde(default)]
    fanout_pairs: Vec<(FlowAddr, FlowAddr, u64, Vec<u16>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EntryState {
    class: u32,
    target: FlowAddr,
    window_start_ns: u64,
    alert: Alert,
    sources: SourcesState,
    dirty: bool,
    #[serde(default)]
    held: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum SourcesState {
    Exact(Vec<u64>),
    Sketch(Vec<u8>),
}

impl AlertEngine {
    /// An empty engine; alerts carry `model_version`.
    pub fn new(cfg: AlertConfig, model_version: String) -> AlertEngine {
        AlertEngine {
            cfg,
            model_version,
            classes: Vec::new(),
            entries: HashMap::new(),
            dirty: Vec::new(),
            windows: BTreeMap::new(),
            pending: Vec::new(),
            watermark_ns: 0,
            stats: AlertStats::default(),
            fanout: Fanout::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AlertConfig {
        &self.cfg
    }

    /// The model version alerts carry.
    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// Sets the model version of the alerts raised from now on (after a
    /// restore with a new model); open alerts keep theirs.
    pub fn set_model_version(&mut self, version: String) {
        self.model_version = version;
    }

    fn window_ns(&self) -> u64 {
        self.cfg.window_ns.max(1)
    }

    /// Folds one classified flow in. Flows without a label, of the benign
    /// class, or below the confidence threshold are only counted. A flow
    /// with a label but no confidence counts as confidence 1.
    /// Allocates only when a new alert (or a new class name) appears, a
    /// (source, target, window) pair starts being tracked, or (once) for
    /// the first-port table.
    ///
    /// A DoS/DDoS flow (not a reflection, not a server's answer from a
    /// port below 1024 to one above) notes its destination port for its
    /// (source, target, window); from [`SCAN_PORTS`] distinct ports on, it
    /// counts as `PortScan`.
    pub fn observe(&mut self, flow: &FlowRecord) {
        self.stats.flows_seen += 1;
        let Some(class) = flow.label.as_deref() else {
            self.stats.ignored_unlabelled += 1;
            return;
        };
        if is_benign(class) {
            self.stats.ignored_benign += 1;
            return;
        }
        let confidence = flow.confidence.unwrap_or(1.0);
        // A NaN confidence is ignored too.
        if confidence.is_nan() || confidence < self.cfg.min_confidence {
            self.stats.ignored_low_confidence += 1;
            return;
        }
        let w = self.window_ns();
        let window_start = flow.first_ts_ns - flow.first_ts_ns % w;
        if window_start < self.watermark_ns {
            self.stats.late_flows += 1;
            return;
        }
        let (victim, source) = victim_and_source(class, flow);
        let mut class = class;
        if matches!(class, "DoS" | "DDoS") && victim == flow.dst && !is_answer(flow) {
            let pair = (source, victim, window_start);
            let scan = self
                .fanout
                .observe(pair, flow.dst_port, &mut self.stats.fanout_untracked);
            if scan != Scan::No {
                class = "PortScan";
                self.stats.scan_flows += 1;
            }
            if scan == Scan::Started {
                self.move_held_to_scan(source, victim, window_start);
            }
        }
        let class_idx = self.class_idx(class);
        let key: Key = (class_idx, victim, window_start);
        self.stats.flows_alerted += 1;
        let cfg = self.cfg;
        let entry = self.entry(key, flow.first_ts_ns, flow.last_ts_ns);
        let a = &mut entry.alert;
        a.flow_count += 1;
        a.packet_count += flow.packets();
        a.first_ts_ns = a.first_ts_ns.min(flow.first_ts_ns);
        a.last_ts_ns = a.last_ts_ns.max(flow.last_ts_ns);
        if confidence > a.confidence {
            a.confidence = confidence.min(1.0);
        }
        if a.flow_ids.len() < cfg.max_flow_ids {
            a.flow_ids.push(flow.flow_id);
        }
        add_source(entry, &source, cfg.max_sources);
        self.touch(key);
    }

    fn class_idx(&mut self, class: &str) -> u32 {
        match self.classes.iter().position(|c| c == class) {
            Some(i) => i as u32,
            None => {
                self.classes.push(class.to_owned());
                (self.classes.len() - 1) as u32
            }
        }
    }

    /// The entry of `key`, created (held when it is DoS/DDoS) if new.
    fn entry(&mut self, key: Key, first_ts_ns: u64, last_ts_ns: u64) -> &mut Entry {
        match self.entries.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let class = self.classes[key.0 as usize].clone();
                let target = key.1.to_string();
                let held = matches!(class.as_str(), "DoS" | "DDoS");
                let alert = Alert {
                    alert_id: alert_id(&class, &target, key.2),
                    window_start_ns: key.2,
                    first_ts_ns,
                    last_ts_ns,
                    class,
                    severity: Severity::Low,
                    confidence: 0.0,
                    sources: Vec::new(),
                    source_count: 0,
                    target,
                    flow_count: 0,
                    packet_count: 0,
                    model_version: self.model_version.clone(),
                    flow_ids: Vec::new(),
                    revision: 0,
                };
                if held {
                    self.stats.held += 1;
                } else {
                    self.stats.raised += 1;
                    self.stats.open += 1;
                }
                self.windows.entry(key.2).or_default().push(key);
                v.insert(Entry {
                    alert,
                    sources: SourceSet::Exact(HashSet::new()),
                    dirty: false,
                    held,
                })
            }
        }
    }

    /// After `key`'s alert changed: recomputes its severity, releases it
    /// when it stops being a held single-source flood, marks it dirty.
    fn touch(&mut self, key: Key) {
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        let a = &mut entry.alert;
        if let Some(sev) = severity_for(&a.class, a.flow_count, a.source_count) {
            a.severity = sev;
        }
        if entry.held {
            if a.source_count < 2 && a.flow_count < MIN_SINGLE_SOURCE_FLOOD_FLOWS {
                return;
            }
            entry.held = false;
            self.stats.held -= 1;
            self.stats.raised += 1;
            self.stats.open += 1;
        }
        if !entry.dirty {
            entry.dirty = true;
            self.dirty.push(key);
        }
    }

    /// `source` has just been found scanning `target`: its held DoS/DDoS
    /// alerts on `target` in this window (all their flows are its own)
    /// move into the `PortScan` alert, unpublished.
    fn move_held_to_scan(&mut self, source: FlowAddr, target: FlowAddr, window: u64) {
        let h = addr_hash(&source);
        for flood in ["DoS", "DDoS"] {
            let Some(ci) = self.classes.iter().position(|c| c == flood) else {
                continue;
            };
            let key: Key = (ci as u32, target, window);
            let only_source = matches!(
                self.entries.get(&key),
                Some(Entry { held: true, sources: SourceSet::Exact(set), .. })
                    if set.len() == 1 && set.contains(&h)
            );
            if !only_source {
                continue;
            }
            let Some(held) = self.entries.remove(&key) else {
                continue;
            };
            // Its key stays in `windows`; `expire` skips missing entries.
            self.stats.held -= 1;
            self.stats.held_to_scan += 1;
            self.stats.scan_flows += held.alert.flow_count;
            let h_alert = held.alert;
            let scan_key: Key = (self.class_idx("PortScan"), target, window);
            let cfg = self.cfg;
            let entry = self.entry(scan_key, h_alert.first_ts_ns, h_alert.last_ts_ns);
            let a = &mut entry.alert;
            a.flow_count += h_alert.flow_count;
            a.packet_count += h_alert.packet_count;
            a.first_ts_ns = a.first_ts_ns.min(h_alert.first_ts_ns);
            a.last_ts_ns = a.last_ts_ns.max(h_alert.last_ts_ns);
            if h_alert.confidence > a.confidence {
                a.confidence = h_alert.confidence;
            }
            for id in h_alert.flow_ids {
                if a.flow_ids.len() >= cfg.max_flow_ids {
                    break;
                }
                a.flow_ids.push(id);
            }
            add_source(entry, &source, cfg.max_sources);
            self.touch(scan_key);
        }
    }

    /// Appends every alert new or changed since the previous call, each
    /// once, in the order they first changed; each handed-out alert's
    /// `revision` is one more than the last one handed out (1 when new).
    pub fn take_updates(&mut self, out: &mut Vec<Alert>) {
        self.stats.updates += self.pending.len() as u64;
        out.append(&mut self.pending);
        for key in self.dirty.drain(..) {
            if let Some(e) = self.entries.get_mut(&key) {
                if e.dirty {
                    e.dirty = false;
                    e.alert.revision += 1;
                    self.stats.updates += 1;
                    out.push(e.alert.clone());
                }
            }
        }
    }

    /// Whether `take_updates` has something to hand out.
    pub fn has_updates(&self) -> bool {
        !self.dirty.is_empty() || !self.pending.is_empty()
    }

    /// Forgets the alerts whose window ended at least
    /// [`LATE_FLOW_GRACE_NS`] before `now_ns` (packet time). Their
    /// unpublished changes still go out with the next `take_updates`.
    pub fn expire(&mut self, now_ns: u64) {
        let w = self.window_ns();
        let Some(cutoff) = now_ns.checked_sub(w.saturating_add(LATE_FLOW_GRACE_NS)) else {
            return;
        };
        // Windows starting at or before `cutoff` ended a grace ago.
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            if start > cutoff {
                break;
            }
            let keys = entry.remove();
            for key in keys {
                if let Some(mut e) = self.entries.remove(&key) {
                    if e.held {
                        self.stats.held -= 1;
                        self.stats.held_dropped += 1;
                        continue;
                    }
                    self.stats.open -= 1;
                    self.stats.expired += 1;
                    self.count_severity(&e.alert);
                    if e.dirty {
                        e.alert.revision += 1;
                        self.pending.push(e.alert);
                    }
                }
            }
        }
        // Every window starting at or before `cutoff` is now forgotten,
        // also those that never had an alert.
        let watermark = self.watermark_ns.max(cutoff - cutoff % w + 1);
        if watermark != self.watermark_ns {
            self.fanout.expire(cutoff);
        }
        self.watermark_ns = watermark;
    }

    fn count_severity(&mut self, a: &Alert) {
        if let Some(i) = Severity::ALL.iter().position(|s| *s == a.severity) {
            self.stats.by_severity[i] += 1;
        }
    }

    /// Counters; `by_severity` includes the open alerts at their current
    /// severity.
    pub fn stats(&self) -> AlertStats {
        let mut s = self.stats;
        for e in self.entries.values().filter(|e| !e.held) {
            if let Some(i) = Severity::ALL.iter().position(|v| *v == e.alert.severity) {
                s.by_severity[i] += 1;
            }
        }
        s
    }

    /// The open alerts (any order), as last updated; held ones (see
    /// [`MIN_SINGLE_SOURCE_FLOOD_FLOWS`]) are not listed.
    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> + '_ {
        self.entries.values().filter(|e| !e.held).map(|e| &e.alert)
    }

    /// Pairs whose distinct ports are tracked now (at most
    /// [`MAX_FANOUT_PAIRS`]).
    pub fn fanout_pairs(&self) -> usize {
        self.fanout.pairs.len()
    }

    /// The whole state, for a checkpoint.
    pub fn snapshot(&self) -> AlertState {
        let mut entries: Vec<EntryState> = self
            .entries
            .iter()
            .map(|(k, e)| EntryState {
                class: k.0,
                target: k.1,
                window_start_ns: k.2,
                alert: e.alert.clone(),
                sources: e.sources.to_state(),
                dirty: e.dirty,
                held: e.held,
            })
            .collect();
        entries.sort_by(|a, b| {
            (a.window_start_ns, a.class, a.target).cmp(&(b.window_start_ns, b.class, b.target))
        });
        let mut fanout_pairs: Vec<(FlowAddr, FlowAddr, u64, Vec<u16>)> = self
            .fanout
            .pairs
            .iter()
            .map(|(p, ports)| (p.0, p.1, p.2, ports.clone()))
            .collect();
        fanout_pairs.sort_by_key(|a| (a.2, a.0, a.1));
        AlertState {
            model_version: self.model_version.clone(),
            classes: self.classes.clone(),
            entries,
            dirty: self.dirty.clone(),
            pending: self.pending.clone(),
            watermark_ns: self.watermark_ns,
            stats: self.stats,
            fanout_slots: self
                .fanout
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.0 != 0)
                .map(|(i, s)| (i as u32, s.0, s.1))
                .collect(),
            fanout_pairs,
        }
    }

    /// An engine continuing from `state` with the settings `cfg`.
    pub fn restore(cfg: AlertConfig, state: AlertState) -> AlertEngine {
        let mut engine = AlertEngine::new(cfg, state.model_version);
        engine.classes = state.classes;
        engine.watermark_ns = state.watermark_ns;
        engine.stats = state.stats;
        engine.pending = state.pending;
        engine.dirty = state.dirty;
        for e in state.entries {
            let key = (e.class, e.target, e.window_start_ns);
            engine.windows.entry(key.2).or_default().push(key);
            engine.entries.insert(
                key,
                Entry {
                    alert: e.alert,
                    sources: SourceSet::from_state(e.sources),
                    dirty: e.dirty,
                    held: e.held,
                },
            );
        }
        engine.stats.held = engine.entries.values().filter(|e| e.held).count() as u64;
        engine.stats.open = engine.entries.len() as u64 - engine.stats.held;
        if !state.fanout_slots.is_empty() {
            engine.fanout.slots = vec![(0, 0); FANOUT_SLOTS];
            for (i, tag, port) in state.fanout_slots {
                if let Some(s) = engine.fanout.slots.get_mut(i as usize) {
                    *s = (tag, port);
                }
            }
        }
        engine.fanout.pairs = state
            .fanout_pairs
            .into_iter()
            .map(|(s, t, w, ports)| ((s, t, w), ports))
            .collect();
        engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netanalyzer_core::{EndReason, FlowFeatures, FlowKey, FlowProto};
    use std::net::{IpAddr, Ipv4Addr};

    const S: u64 = 1_000_000_000;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> FlowAddr {
        FlowAddr::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    fn flow(src: FlowAddr, dst: FlowAddr, ts: u64, label: &str, conf: f64) -> FlowRecord {
        let key = FlowKey {
            proto: FlowProto::Ip(6),
            lo_addr: src.min(dst),
            lo_port: 1234,
            hi_addr: src.max(dst),
            hi_port: 80,
        };
        FlowRecord {
            flow_id: ts ^ 0x55,
            segment: 0,
            key,
            proto: FlowProto::Ip(6),
            src,
            src_port: 1234,
            dst,
            dst_port: 80,
            vlan_id: None,
            first_ts_ns: ts,
            last_ts_ns: ts + S,
            fwd_packets: 2,
            bwd_packets: 1,
            fwd_bytes: 120,
            bwd_bytes: 60,
            tcp_flags: 0x02,
            end_reason: EndReason::Idle,
            features: FlowFeatures::default(),
            label: Some(label.to_owned()),
            confidence: Some(conf),
        }
    }

    fn updates(e: &mut AlertEngine) -> Vec<Alert> {
        let mut v = Vec::new();
        e.take_updates(&mut v);
        v
    }

    #[test]
    fn a_flood_is_one_growing_alert() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m1".into());
        let target = ip(10, 0, 0, 1);
        for i in 0..100_000u64 {
            let src = ip(192, 168, (i >> 8) as u8, i as u8);
            e.observe(&flow(src, target, 1_000 * S + i * 1_000, "DDoS", 0.9));
        }
        let u = updates(&mut e);
        assert_eq!(u.len(), 1);
        let a = &u[0];
        assert_eq!(a.flow_count, 100_000);
        assert_eq!(a.packet_count, 300_000);
        assert_eq!(a.revision, 1);
        assert_eq!(a.class, "DDoS");
        assert_eq!(a.target, "10.0.0.1");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.sources.len(), 16);
        assert_eq!(a.flow_ids.len(), 100);
        assert_eq!(a.model_version, "m1");
        // 65,536 distinct sources: past the exact limit, estimated.
        let err = (a.source_count as f64 - 65_536.0).abs() / 65_536.0;
        assert!(err < 0.05, "source_count {}", a.source_count);
        assert!((a.confidence - 0.9).abs() < 1e-12);
        assert_eq!(a.window_start_ns, 900 * S);
        assert_eq!(a.alert_id, alert_id("DDoS", "10.0.0.1", 900 * S));
        // Nothing changed: nothing to hand out.
        assert!(updates(&mut e).is_empty());
        // A change: the same alert again, revision 2.
        e.observe(&flow(ip(1, 1, 1, 1), target, 1_001 * S, "DDoS", 0.95));
        let u = updates(&mut e);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].alert_id, a.alert_id);
        assert_eq!(u[0].revision, 2);
        assert_eq!(u[0].flow_count, 100_001);
        assert!((u[0].confidence - 0.95).abs() < 1e-12);
    }

    #[test]
    fn exact_source_count_below_the_limit() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        for i in 0..50u8 {
            for _ in 0..3 {
                e.observe(&flow(ip(10, 1, 0, i), ip(10, 0, 0, 1), 10 * S, "DoS", 1.0));
            }
        }
        let u = updates(&mut e);
        assert_eq!(u[0].source_count, 50);
        assert_eq!(u[0].sources.len(), 16);
        assert_eq!(u[0].sources[0], "10.1.0.0");
        assert_eq!(u[0].flow_count, 150);
    }

    #[test]
    fn one_alert_per_class_target_and_window() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let a = ip(10, 0, 0, 1);
        let b = ip(10, 0, 0, 2);
        let src = ip(10, 9, 9, 9);
        e.observe(&flow(src, a, 10 * S, "PortScan", 0.8));
        e.observe(&flow(src, a, 20 * S, "PortScan", 0.8)); // same window
        e.observe(&flow(src, b, 20 * S, "PortScan", 0.8)); // other target
        e.observe(&flow(src, a, 20 * S, "BruteForce", 0.8)); // other class
        e.observe(&flow(src, a, 310 * S, "PortScan", 0.8)); // next window
        let u = updates(&mut e);
        assert_eq!(u.len(), 4);
        assert_eq!(u[0].flow_count, 2);
        assert_eq!(u[0].first_ts_ns, 10 * S);
        assert_eq!(u[0].last_ts_ns, 21 * S);
        assert_eq!(u[3].window_start_ns, 300 * S);
        let ids: HashSet<u64> = u.iter().map(|a| a.alert_id).collect();
        assert_eq!(ids.len(), 4);
        assert!(u
            .iter()
            .all(|a| a.revision == 1 && a.alert_id <= i64::MAX as u64));
    }

    #[test]
    fn benign_unlabelled_and_unsure_flows_raise_nothing() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let (s, d) = (ip(1, 2, 3, 4), ip(5, 6, 7, 8));
        e.observe(&flow(s, d, S, "Normal", 1.0));
        e.observe(&flow(s, d, S, "BENIGN", 1.0));
        e.observe(&flow(s, d, S, "DoS", 0.59));
        e.observe(&flow(s, d, S, "DoS", f64::NAN));
        let mut f = flow(s, d, S, "DoS", 1.0);
        f.label = None;
        e.observe(&f);
        assert!(updates(&mut e).is_empty());
        let st = e.stats();
        assert_eq!(st.flows_seen, 5);
        assert_eq!(st.ignored_benign, 2);
        assert_eq!(st.ignored_low_confidence, 2);
        assert_eq!(st.ignored_unlabelled, 1);
        assert_eq!(st.raised, 0);
        // Exactly at the threshold counts.
        e.observe(&flow(s, d, S, "Botnet", 0.6));
        assert_eq!(updates(&mut e).len(), 1);
    }

    #[test]
    fn severity_table() {
        assert_eq!(severity_for("Normal", 1_000_000, 1000), None);
        assert_eq!(severity_for("PortScan", 10, 1), Some(Severity::Low));
        assert_eq!(severity_for("PortScan", 1_000, 1), Some(Severity::Medium));
        assert_eq!(severity_for("PortScan", 5, 10), Some(Severity::Medium));
        assert_eq!(severity_for("BruteForce", 10, 1), Some(Severity::Medium));
        assert_eq!(severity_for("BruteForce", 1_000, 1), Some(Severity::High));
        assert_eq!(severity_for("DoS", 1, 1), Some(Severity::High));
        assert_eq!(severity_for("DoS", 100_000, 1), Some(Severity::Critical));
        assert_eq!(severity_for("DDoS", 1, 9), Some(Severity::High));
        assert_eq!(severity_for("DDoS", 1, 10), Some(Severity::Critical));
        assert_eq!(severity_for("WebAttack", 1, 1), Some(Severity::High));
        assert_eq!(severity_for("Botnet", 1, 1), Some(Severity::High));
        assert_eq!(severity_for("Other", 1, 1), Some(Severity::Medium));
        assert_eq!(severity_for("Heartbleed", 1, 1), Some(Severity::Medium));
    }

    #[test]
    fn severity_grows_with_the_alert() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let d = ip(10, 0, 0, 1);
        e.observe(&flow(ip(1, 0, 0, 1), d, S, "PortScan", 1.0));
        assert_eq!(updates(&mut e)[0].severity, Severity::Low);
        for _ in 0..999 {
            e.observe(&flow(ip(1, 0, 0, 1), d, S, "PortScan", 1.0));
        }
        let u = updates(&mut e);
        assert_eq!((u[0].severity, u[0].revision), (Severity::Medium, 2));
    }

    #[test]
    fn expire_forgets_old_windows_and_refuses_late_flows() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let (s, d) = (ip(1, 1, 1, 1), ip(2, 2, 2, 2));
        e.observe(&flow(s, d, 10 * S, "BruteForce", 1.0));
        e.observe(&flow(s, d, 400 * S, "BruteForce", 1.0));
        // Window [0, 300) ends at 300 s; kept for the grace until 600 s.
        e.expire(599 * S);
        assert_eq!(e.stats().open, 2);
        e.observe(&flow(s, d, 20 * S, "BruteForce", 1.0)); // late but within grace
        e.expire(600 * S);
        let st = e.stats();
        assert_eq!((st.open, st.expired), (1, 1));
        // The forgotten alert's last change still goes out, once.
        let u = updates(&mut e);
        assert_eq!(u.len(), 2);
        assert_eq!(
            u.iter()
                .find(|a| a.window_start_ns == 0)
                .unwrap()
                .flow_count,
            2
        );
        // A flow of the forgotten window is counted, not alerted.
        e.observe(&flow(s, d, 299 * S, "BruteForce", 1.0));
        assert!(updates(&mut e).is_empty());
        assert_eq!(e.stats().late_flows, 1);
        // The open window still takes flows.
        e.observe(&flow(s, d, 450 * S, "BruteForce", 1.0));
        assert_eq!(updates(&mut e)[0].flow_count, 2);
    }

    #[test]
    fn snapshot_restore_continues_identically() {
        let run = |split: Option<usize>| {
            let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
            let mut out = Vec::new();
            for i in 0..6000u64 {
                if Some(i as usize) == split {
                    let bytes = rmp_serde::to_vec(&e.snapshot()).unwrap();
                    let st: AlertState = rmp_serde::from_slice(&bytes).unwrap();
                    e = AlertEngine::restore(AlertConfig::default(), st);
                }
                let src = ip(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
                let class = if i % 3 == 0 { "DoS" } else { "PortScan" };
                e.observe(&flow(
                    src,
                    ip(10, 0, 0, (i % 4) as u8),
                    i * S / 10,
                    class,
                    0.7,
                ));
                if i % 500 == 499 {
                    e.take_updates(&mut out);
                    e.expire(i * S / 10);
                }
            }
            e.take_updates(&mut out);
            (out, e.snapshot())
        };
        let (a, sa) = run(None);
        let (b, sb) = run(Some(4_321));
        let (c, sc) = run(Some(1_000));
        assert!(!a.is_empty());
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(sa, sb);
        assert_eq!(sa, sc);
        assert_eq!(
            rmp_serde::to_vec(&sa).unwrap(),
            rmp_serde::to_vec(&sb).unwrap()
        );
    }

    #[test]
    fn a_sketched_alert_survives_a_restore() {
        let mut a = AlertEngine::new(AlertConfig::default(), "m".into());
        let d = ip(10, 0, 0, 1);
        let feed = |e: &mut AlertEngine, from: u32, to: u32| {
            for i in from..to {
                let s = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
                e.observe(&flow(s, d, 5 * S, "DDoS", 1.0));
            }
        };
        feed(&mut a, 0, 10_000);
        let state: AlertState =
            rmp_serde::from_slice(&rmp_serde::to_vec(&a.snapshot()).unwrap()).unwrap();
        let mut b = AlertEngine::restore(AlertConfig::default(), state);
        feed(&mut a, 10_000, 30_000);
        feed(&mut b, 10_000, 30_000);
        let (ua, ub) = (updates(&mut a), updates(&mut b));
        assert_eq!(ua, ub);
        let n = ua[0].source_count as f64;
        assert!((n - 30_000.0).abs() / 30_000.0 < 0.05, "{n}");
    }

    #[test]
    fn hll_estimate_is_close() {
        let mut s = SourceSet::Exact(HashSet::new());
        for i in 0..200_000u32 {
            let a = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::from(i)));
            s.insert(addr_hash(&a));
        }
        let n = s.count() as f64;
        assert!((n - 200_000.0).abs() / 200_000.0 < 0.05, "{n}");
    }
    #[test]
    fn a_reflection_alerts_on_its_victim() {
        // Spoofed queries from the victim to three resolvers, each
        // answered with 30x the bytes: one alert, on the victim, with the
        // resolvers as its sources.
        let victim = ip(203, 0, 113, 10);
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        for r in 1..=3 {
            let mut f = flow(victim, ip(192, 0, 2, r), 10 * S + u64::from(r), "DDoS", 0.9);
            f.fwd_bytes = 80;
            f.bwd_bytes = 2_400;
            e.observe(&f);
        }
        // A one-way flood keeps the forward destination as its target,
        // and a lopsided flow of another class is not a reflection.
        e.observe(&flow(ip(10, 9, 9, 9), victim, 11 * S, "DDoS", 0.9));
        let mut scan = flow(victim, ip(192, 0, 2, 1), 12 * S, "PortScan", 0.9);
        scan.bwd_bytes = scan.fwd_bytes * 10 + 1;
        e.observe(&scan);
        let mut out = Vec::new();
        e.take_updates(&mut out);
        let ddos: Vec<&Alert> = out.iter().filter(|a| a.class == "DDoS").collect();
        assert_eq!(ddos.len(), 1, "{out:?}");
        assert_eq!(ddos[0].target, "203.0.113.10");
        assert_eq!(ddos[0].flow_count, 4);
        assert_eq!(ddos[0].source_count, 4);
        assert!(ddos[0].sources.contains(&"192.0.2.3".to_string()));
        let scan = out.iter().find(|a| a.class == "PortScan").unwrap();
        assert_eq!(scan.target, "192.0.2.1");
    }

    fn probe(src: FlowAddr, dst: FlowAddr, port: u16, ts: u64, label: &str) -> FlowRecord {
        let mut f = flow(src, dst, ts, label, 0.9);
        f.dst_port = port;
        f.key.hi_port = port;
        f.flow_id = ts ^ u64::from(port) << 48;
        f.fwd_packets = 1;
        f.bwd_packets = 0;
        f.bwd_bytes = 0;
        f
    }

    #[test]
    fn a_syn_scan_predicted_ddos_is_one_portscan_alert() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let (scanner, target) = (ip(10, 9, 9, 9), ip(10, 0, 0, 1));
        let mut out = Vec::new();
        for p in 0..1000u16 {
            // Every other probe DoS, to cover both flood classes.
            let class = if p % 7 == 0 { "DoS" } else { "DDoS" };
            e.observe(&probe(scanner, target, p, 10 * S + u64::from(p), class));
            // Updates taken often: the first probes must not leak out.
            e.take_updates(&mut out);
        }
        e.expire(10_000 * S);
        e.take_updates(&mut out);
        assert!(out.iter().all(|a| a.class == "PortScan"), "{out:?}");
        let last = out.last().unwrap();
        assert_eq!(last.flow_count, 1000);
        assert_eq!(last.source_count, 1);
        assert_eq!(last.target, "10.0.0.1");
        assert_eq!(last.severity, Severity::Medium);
        let ids: HashSet<u64> = out.iter().map(|a| a.alert_id).collect();
        assert_eq!(ids.len(), 1);
        let st = e.stats();
        assert_eq!(st.raised, 1);
        assert_eq!(st.scan_flows, 1000);
        assert_eq!(st.held_to_scan, 2);
        assert_eq!((st.held, st.held_dropped), (0, 0));
    }

    #[test]
    fn a_spoofed_syn_flood_is_still_ddos() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let target = ip(10, 0, 0, 1);
        let mut out = Vec::new();
        for i in 0..10_000u32 {
            let src = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)));
            e.observe(&probe(src, target, 80, 10 * S + u64::from(i), "DDoS"));
            if i % 1000 == 0 || i < 3 {
                e.take_updates(&mut out);
            }
        }
        e.take_updates(&mut out);
        assert!(out.iter().all(|a| a.class == "DDoS"));
        assert_eq!(out[0].flow_count, 2, "published at the second source");
        let last = out.last().unwrap();
        assert_eq!(last.flow_count, 10_000);
        // Past the exact limit: estimated.
        assert!(
            last.source_count.abs_diff(10_000) < 1_000,
            "{}",
            last.source_count
        );
        assert_eq!(last.severity, Severity::Critical);
        assert_eq!(e.fanout_pairs(), 0);
        assert_eq!(e.stats().scan_flows, 0);
    }

    #[test]
    fn a_single_source_dos_publishes_after_the_hold() {
        // Slowloris-like: one source, one port, 150 flows.
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let (src, target) = (ip(10, 9, 9, 9), ip(10, 0, 0, 1));
        let mut out = Vec::new();
        for i in 0..150u64 {
            e.observe(&flow(src, target, 10 * S + i, "DoS", 0.9));
            e.take_updates(&mut out);
            let n = out.len();
            if i + 1 < MIN_SINGLE_SOURCE_FLOOD_FLOWS {
                assert_eq!(n, 0, "held at {} flows", i + 1);
                assert_eq!(e.open_alerts().count(), 0);
            } else {
                assert!(n > 0);
            }
        }
        assert_eq!(out[0].flow_count, MIN_SINGLE_SOURCE_FLOOD_FLOWS);
        assert_eq!(out[0].revision, 1);
        let last = out.last().unwrap();
        assert_eq!((last.class.as_str(), last.flow_count), ("DoS", 150));
        assert_eq!(last.severity, Severity::High);
        // A few lone flows of one source, then its window is forgotten:
        // nothing goes out.
        for i in 0..5u64 {
            e.observe(&flow(src, ip(10, 0, 0, 2), 20 * S + i, "DoS", 0.9));
        }
        assert_eq!(e.stats().held, 1);
        e.expire(10_000 * S);
        let mut rest = Vec::new();
        e.take_updates(&mut rest);
        assert!(rest.iter().all(|a| a.target == "10.0.0.1"), "{rest:?}");
        let st = e.stats();
        assert_eq!((st.held, st.held_dropped, st.raised), (0, 1, 1));
    }

    #[test]
    fn fanout_memory_stays_bounded() {
        let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
        let target = ip(10, 0, 0, 1);
        // A million spoofed sources, each on one port: nothing tracked.
        for i in 0..1_000_000u32 {
            let src = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)));
            e.observe(&probe(src, target, 80, 10 * S, "DDoS"));
        }
        assert_eq!(e.fanout_pairs(), 0);
        assert_eq!(e.fanout.slots.len(), FANOUT_SLOTS);
        // Worst case: every source twice, on two ports: the table fills
        // to its cap and no further.
        for i in 0..100_000u32 {
            let src = FlowAddr::Ip(IpAddr::V4(Ipv4Addr::from(0x0c00_0000 + i)));
            e.observe(&probe(src, target, 80, 10 * S, "DDoS"));
            e.observe(&probe(src, target, 81, 10 * S, "DDoS"));
            assert!(e.fanout_pairs() <= MAX_FANOUT_PAIRS);
        }
        assert_eq!(e.fanout_pairs(), MAX_FANOUT_PAIRS);
        assert!(e.stats().fanout_untracked > 0);
        assert_eq!(e.fanout.slots.len(), FANOUT_SLOTS);
        // Forgotten with their window.
        e.expire(10_000 * S);
        assert_eq!(e.fanout_pairs(), 0);
    }

    #[test]
    fn scan_state_survives_a_restore() {
        let run = |split: Option<usize>| {
            let mut e = AlertEngine::new(AlertConfig::default(), "m".into());
            let mut out = Vec::new();
            for i in 0..3000u64 {
                if Some(i as usize) == split {
                    let bytes = rmp_serde::to_vec(&e.snapshot()).unwrap();
                    let st: AlertState = rmp_serde::from_slice(&bytes).unwrap();
                    e = AlertEngine::restore(AlertConfig::default(), st);
                }
                let ts = 10 * S + i * S / 10;
                let f = match i % 3 {
                    // A scan of two targets.
                    0 => probe(
                        ip(10, 9, 9, 9),
                        ip(10, 0, 0, (i % 2) as u8),
                        i as u16,
                        ts,
                        "DDoS",
                    ),
                    // A slow DoS.
                    1 => flow(ip(10, 8, 8, 8), ip(10, 0, 0, 5), ts, "DoS", 0.8),
                    // A spoofed flood.
                    _ => probe(
                        ip(11, 0, (i >> 8) as u8, i as u8),
                        ip(10, 0, 0, 6),
                        80,
                        ts,
                        "DDoS",
                    ),
                };
                e.observe(&f);
                if i % 7 == 6 {
                    e.take_updates(&mut out);
                    e.expire(ts);
                }
            }
            e.take_updates(&mut out);
            (out, e.snapshot())
        };
        let (a, sa) = run(None);
        assert!(a.iter().any(|x| x.class == "PortScan"));
        assert!(a.iter().any(|x| x.class == "DoS"));
        assert!(a.iter().any(|x| x.class == "DDoS"));
        assert!(a.iter().all(|x| x.class != "DoS" || x.target == "10.0.0.5"));
        for split in [5, 20, 40, 1_000, 2_222] {
            let (b, sb) = run(Some(split));
            assert_eq!(a, b, "split {split}");
            assert_eq!(
                rmp_serde::to_vec(&sa).unwrap(),
                rmp_serde::to_vec(&sb).unwrap()
            );
        }
    }
}
