//! The bidirectional flow table and the CICFlowMeter feature set.
//!
//! [`FlowAggregator`] implements [`netanalyzer_core::Aggregator`]: it turns
//! packet records into [`FlowRecord`]s carrying all 82
//! [`netanalyzer_core::FEATURES`]. Time comes only from packet timestamps,
//! so a replay gives identical records whenever `expire` is called.
//! `docs/features.md` defines every feature, the timeouts and the end
//! reasons.
//!
//! ```
//! use netanalyzer_core::{Aggregator, EndReason, PacketRecord};
//! use netanalyzer_ml::flow::{FlowAggregator, FlowConfig};
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! let mut agg = FlowAggregator::new(FlowConfig::default());
//! let mut out = Vec::new();
//! let mut p = PacketRecord {
//!     ts_ns: 1_000,
//!     wire_len: 60,
//!     src_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
//!     dst_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
//!     ip_version: Some(4),
//!     ip_proto: Some(17),
//!     src_port: Some(5000),
//!     dst_port: Some(53),
//!     payload_len: Some(18),
//!     ..PacketRecord::default()
//! };
//! agg.ingest(&p, &mut out);
//! p.ts_ns += 1_000_000;
//! std::mem::swap(&mut p.src_ip, &mut p.dst_ip);
//! std::mem::swap(&mut p.src_port, &mut p.dst_port);
//! agg.ingest(&p, &mut out);
//! agg.drain(&mut out);
//! assert_eq!(out.len(), 1);
//! assert_eq!((out[0].fwd_packets, out[0].bwd_packets), (1, 1));
//! assert_eq!(out[0].end_reason, EndReason::End);
//! assert_eq!(out[0].features.get("flow_duration"), Some(1_000.0)); // µs
//! ```

mod acc;
mod hash;
#[cfg(test)]
mod tests;

use acc::{Acc, Extra, Pkt, ACK, FIN, NONE, RST, SYN};
use hash::FxBuild;
use netanalyzer_core::{
    Aggregator, Direction, EndReason, FlowKey, FlowProto, FlowRecord, PacketRecord, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Flow table settings. All times are nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Hard cap on table entries (the memory cap). Default 1 000 000.
    pub max_flows: usize,
    /// TCP idle timeout. Default 120 s.
    pub tcp_idle_ns: u64,
    /// UDP idle timeout. Default 60 s.
    pub udp_idle_ns: u64,
    /// ICMP / ICMPv6 idle timeout. Default 30 s.
    pub icmp_idle_ns: u64,
    /// Idle timeout of other IP protocols and ARP. Default 60 s.
    pub other_idle_ns: u64,
    /// Idle timeout of an embryonic TCP flow (only SYNs from its
    /// initiator so far). Default 5 s: short, so a SYN flood cannot hold
    /// the table.
    pub embryonic_idle_ns: u64,
    /// Active timeout (CICFlowMeter's flow timeout): a packet more than
    /// this after its segment's first packet closes the segment
    /// ([`EndReason::Active`]) and opens the next one. Default 120 s.
    pub active_timeout_ns: u64,
    /// After FIN in both directions, how long (since the flow's last
    /// packet) to wait for the final ACKs. Default 1 s.
    pub fin_linger_ns: u64,
    /// CICFlowMeter's activity timeout splitting active and idle periods.
    /// Default 5 s. (The subflow and bulk gap is CICFlowMeter's fixed 1 s.)
    pub activity_timeout_ns: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1_000_000,
            tcp_idle_ns: 120_000_000_000,
            udp_idle_ns: 60_000_000_000,
            icmp_idle_ns: 30_000_000_000,
            other_idle_ns: 60_000_000_000,
            embryonic_idle_ns: 5_000_000_000,
            active_timeout_ns: 120_000_000_000,
            fin_linger_ns: 1_000_000_000,
            activity_timeout_ns: 5_000_000_000,
        }
    }
}

/// Counters of the flow table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStats {
    /// Packets ingested.
    pub packets: u64,
    /// Packets with no flow key (non-IP, non-ARP): counted, in no flow.
    pub unkeyed: u64,
    /// Conversations created (segments of a conversation reuse its entry).
    pub flows_created: u64,
    /// Records emitted, by [`EndReason`] (index = position in
    /// [`EndReason::ALL`]).
    pub emitted: [u64; 6],
    /// Evictions of an embryonic entry from a full table.
    pub evicted_embryonic: u64,
    /// Evictions of the least recently active (non-embryonic) entry.
    pub evicted_oldest: u64,
    /// Entries now.
    pub active: u64,
    /// Of which embryonic.
    pub embryonic: u64,
    /// Highest `active` seen.
    pub peak_active: u64,
}

/// The whole state of a [`FlowAggregator`], for checkpoints. Opaque;
/// serialize it with rmp-serde. Restoring it and going on gives exactly
/// the records an uninterrupted run gives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowTableState {
    version: u32,
    stats: FlowStats,
    now: u64,
    /// Entries of each list, head (least recent) first.
    lists: Vec<Vec<Entry>>,
}

const STATE_VERSION: u32 = 1;
const NIL: u32 = u32::MAX;
/// Lists of entries, each ordered by last activity and sharing one
/// timeout, so expiry only ever looks at list heads.
const EMBRYONIC: u8 = 0;
const TCP: u8 = 1;
const UDP: u8 = 2;
const ICMP: u8 = 3;
const OTHER: u8 = 4;
const LINGER: u8 = 5;
const LISTS: usize = 6;
/// Boxed accumulators kept for reuse (about 0.7 KiB each).
const POOL_MAX: usize = 4096;

/// TCP teardown tracking, per direction (0 forward, 1 backward).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Teardown {
    /// Bit d: a FIN was sent in direction d.
    fin: u8,
    /// Bit d: the FIN of direction d was acknowledged.
    acked: u8,
    /// Bit d: the FIN's sequence number was known.
    seq_known: u8,
    /// FIN seen both ways.
    closing: bool,
    /// The ACK number that acknowledges each direction's FIN.
    expect: [u32; 2],
}

impl Teardown {
    /// Updates with one packet; `Some` when the flow ends with it.
    fn update(&mut self, r: &PacketRecord, flags: u16, d: usize) -> Option<EndReason> {
        if flags & RST != 0 {
            return Some(EndReason::Rst);
        }
        let o = 1 - d;
        let obit = 1u8 << o;
        if flags & ACK != 0 && self.fin & obit != 0 && self.acked & obit == 0 {
            let ok = match r.tcp_ack {
                Some(a) if self.seq_known & obit != 0 => a.wrapping_sub(self.expect[o]) as i32 >= 0,
                _ => true,
            };
            if ok {
                self.acked |= obit;
            }
        }
        let dbit = 1u8 << d;
        if flags & FIN != 0 && self.fin & dbit == 0 {
            self.fin |= dbit;
            if let Some(seq) = r.tcp_seq {
                let syn = u32::from(flags & SYN != 0);
                self.expect[d] = seq
                    .wrapping_add(r.payload_len.unwrap_or(0))
                    .wrapping_add(1 + syn);
                self.seq_known |= dbit;
            }
        }
        if self.fin == 3 {
            if self.acked == 3 {
                return Some(EndReason::Fin);
            }
            self.closing = true;
        }
        None
    }
}

/// One conversation in the table. Small on purpose: a flow of one packet
/// keeps that packet inline (`first`); the ~0.7 KiB accumulators are boxed
/// only from the second packet on, so a spoofed SYN flood costs one
/// `Entry` per SYN.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    key: FlowKey,
    /// The forward direction (the first packet's) is the key's lo → hi.
    fwd_is_lo: bool,
    list: u8,
    #[serde(skip)]
    prev: u32,
    #[serde(skip)]
    next: u32,
    /// Table time ("now") of the last packet: the list order.
    touch: u64,
    flow_id: u64,
    segment: u32,
    vlan: Option<u16>,
    /// Bit d: a packet in direction d was seen (init windows are taken
    /// from the first one only).
    init_seen: u8,
    init_win: [i32; 2],
    icmp: [i16; 2],
    /// The conversation's first SYN, or NONE.
    syn_ts: u64,
    td: Teardown,
    /// The segment's first packet.
    first: Pkt,
    /// The segment's accumulators, from its second packet on.
    acc: Option<Box<Acc>>,
}

impl Entry {
    fn last_ts(&self) -> u64 {
        self.acc.as_ref().map_or(self.first.ts, |a| a.last_ts)
    }

    /// Conversation-level values: init windows (first packet each way
    /// only), ICMP type/code, first SYN.
    fn note(&mut self, r: &PacketRecord, d: usize, t: u64, flags: u16) {
        let bit = 1u8 << d;
        if self.init_seen & bit == 0 {
            self.init_seen |= bit;
            self.init_win[d] = r.tcp_window.map_or(-1, i32::from);
        }
        if self.icmp[0] < 0 {
            if let Some(ty) = r.icmp_type {
                self.icmp = [i16::from(ty), r.icmp_code.map_or(-1, i16::from)];
            }
        }
        if flags & SYN != 0 && self.syn_ts == NONE {
            self.syn_ts = t;
        }
    }

    fn record(&self, reason: EndReason) -> FlowRecord {
        let tmp;
        let acc: &Acc = match &self.acc {
            Some(a) => a,
            None => {
                tmp = Acc::start(&self.first);
                &tmp
            }
        };
        let k = &self.key;
        let (src, src_port, dst, dst_port) = if self.fwd_is_lo {
            (k.lo_addr, k.lo_port, k.hi_addr, k.hi_port)
        } else {
            (k.hi_addr, k.hi_port, k.lo_addr, k.lo_port)
        };
        let extra = Extra {
            protocol: match k.proto {
                FlowProto::Ip(p) => f64::from(p),
                FlowProto::Arp => 0.0,
            },
            init_win: self.init_win,
            icmp_type: self.icmp[0],
            icmp_code: self.icmp[1],
            syn_ts: self.syn_ts,
            is_tcp: k.proto == FlowProto::Ip(6),
        };
        FlowRecord {
            flow_id: self.flow_id,
            segment: self.segment,
            key: *k,
            proto: k.proto,
            src,
            src_port,
            dst,
            dst_port,
            vlan_id: self.vlan,
            first_ts_ns: acc.first_ts,
            last_ts_ns: acc.last_ts,
            fwd_packets: acc.packets(0),
            bwd_packets: acc.packets(1),
            fwd_bytes: acc.wire[0],
            bwd_bytes: acc.wire[1],
            tcp_flags: acc.tcp_flags,
            end_reason: reason,
            features: acc.features(&extra),
            label: None,
            confidence: None,
        }
    }
}

/// The TCP/UDP/ICMP header length estimate (see `docs/features.md`):
/// captured length − link header − IP header − payload, since the record
/// carries no header length.
fn header_len(r: &PacketRecord, proto: FlowProto) -> u16 {
    let est = || {
        let vlan = if r.vlan_id.is_some() { 4 } else { 0 };
        let link: i64 = if r.eth_src.is_some() {
            14 + vlan
        } else if r.ether_type.is_some() {
            16 // Linux cooked capture
        } else {
            0
        };
        let ip: i64 = if r.ip_version == Some(6) { 40 } else { 20 };
        // Captured bytes: `payload_len` counts captured payload only.
        let len = i64::from(if r.cap_len == 0 {
            r.wire_len
        } else {
            r.cap_len.min(r.wire_len)
        });
        let padded = r.eth_src.is_some() && r.wire_len <= 60 + vlan as u32;
        (
            len - link - ip - i64::from(r.payload_len.unwrap_or(0)),
            padded,
        )
    };
    match proto {
        FlowProto::Arp => 0,
        FlowProto::Ip(17) | FlowProto::Ip(1) | FlowProto::Ip(58) => 8,
        FlowProto::Ip(6) => {
            let (h, padded) = est();
            if padded {
                20
            } else {
                (h.clamp(20, 60) as u16) & !3
            }
        }
        FlowProto::Ip(_) => {
            let (h, _) = est();
            h.clamp(0, 0xffff) as u16
        }
    }
}

/// The flow table: a [`netanalyzer_core::Aggregator`] of [`FlowRecord`]s.
///
/// - Bidirectional: the first packet fixes the forward direction.
/// - Ends: idle timeout per protocol (embryonic TCP: 5 s), active timeout
///   (a segment is emitted, the conversation goes on as `segment + 1` with
///   the same `flow_id`), FIN both ways and acknowledged (or `fin_linger`
///   after the last packet), RST at once, eviction from a full table,
///   `drain`.
/// - Memory: at most `max_flows` entries; a full table evicts the oldest
///   embryonic entry, else the least recently active one, and emits it.
/// - Cost: expiry looks only at list heads (O(expired)); no allocation per
///   packet once warm (accumulator boxes are pooled).
#[derive(Debug)]
pub struct FlowAggregator {
    cfg: FlowConfig,
    stats: FlowStats,
    now: u64,
    map: HashMap<FlowKey, u32, FxBuild>,
    slab: Vec<Entry>,
    free: Vec<u32>,
    heads: [[u32; 2]; LISTS],
    timeouts: [u64; LISTS],
    /// Spare boxes, so a warm table allocates nothing per flow: boxing is
    /// the point (the boxes move into and out of entries).
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Acc>>,
}

impl FlowAggregator {
    /// An empty table.
    pub fn new(cfg: FlowConfig) -> FlowAggregator {
        FlowAggregator {
            cfg,
            stats: FlowStats::default(),
            now: 0,
            map: HashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            heads: [[NIL; 2]; LISTS],
            timeouts: [
                cfg.embryonic_idle_ns,
                cfg.tcp_idle_ns,
                cfg.udp_idle_ns,
                cfg.icmp_idle_ns,
                cfg.other_idle_ns,
                cfg.fin_linger_ns,
            ],
            pool: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// The latest packet time seen (never decreases).
    pub fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }

    /// Open entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no flow is open.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The whole state, for a checkpoint.
    pub fn snapshot(&self) -> FlowTableState {
        let lists = (0..LISTS)
            .map(|l| {
                let mut v = Vec::new();
                let mut i = self.heads[l][0];
                while i != NIL {
                    let e = &self.slab[i as usize];
                    v.push(e.clone());
                    i = e.next;
                }
                v
            })
            .collect();
        FlowTableState {
            version: STATE_VERSION,
            stats: self.stats,
            now: self.now,
            lists,
        }
    }

    /// Rebuilds a table from a checkpoint; going on gives exactly the
    /// records an uninterrupted run gives (with the same `cfg`).
    pub fn restore(cfg: FlowConfig, state: FlowTableState) -> FlowAggregator {
        let mut a = FlowAggregator::new(cfg);
        a.stats = state.stats;
        a.now = state.now;
        for (l, list) in state.lists.into_iter().enumerate().take(LISTS) {
            for mut e in list {
                e.list = l as u8;
                let idx = a.slab.len() as u32;
                a.map.insert(e.key, idx);
                a.slab.push(e);
                a.link(l as u8, idx);
            }
        }
        a.stats.active = a.map.len() as u64;
        a.stats.embryonic = a.count_list(EMBRYONIC);
        a
    }

    fn count_list(&self, l: u8) -> u64 {
        let mut n = 0;
        let mut i = self.heads[usize::from(l)][0];
        while i != NIL {
            n += 1;
            i = self.slab[i as usize].next;
        }
        n
    }

    /// Appends `idx` at the tail of list `l`.
    fn link(&mut self, l: u8, idx: u32) {
        let tail = self.heads[usize::from(l)][1];
        {
            let e = &mut self.slab[idx as usize];
            e.list = l;
            e.prev = tail;
            e.next = NIL;
        }
        if tail == NIL {
            self.heads[usize::from(l)][0] = idx;
        } else {
            self.slab[tail as usize].next = idx;
        }
        self.heads[usize::from(l)][1] = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (l, prev, next) = {
            let e = &self.slab[idx as usize];
            (usize::from(e.list), e.prev, e.next)
        };
        if prev == NIL {
            self.heads[l][0] = next;
        } else {
            self.slab[prev as usize].next = next;
        }
        if next == NIL {
            self.heads[l][1] = prev;
        } else {
            self.slab[next as usize].prev = prev;
        }
    }

    /// Moves `idx` to the tail of list `l` (its most recent end).
    fn relink(&mut self, idx: u32, l: u8) {
        let old = self.slab[idx as usize].list;
        if old == l && self.heads[usize::from(l)][1] == idx {
            return;
        }
        self.unlink(idx);
        if old == EMBRYONIC && l != EMBRYONIC {
            self.stats.embryonic -= 1;
        }
        self.link(l, idx);
    }

    /// Emits the entry's record and removes the entry.
    fn finish(&mut self, idx: u32, reason: EndReason, out: &mut Vec<FlowRecord>) {
        out.push(self.slab[idx as usize].record(reason));
        self.stats.emitted[reason as usize] += 1;
        self.unlink(idx);
        let e = &mut self.slab[idx as usize];
        if e.list == EMBRYONIC {
            self.stats.embryonic -= 1;
        }
        self.map.remove(&e.key);
        if let Some(b) = e.acc.take() {
            if self.pool.len() < POOL_MAX {
                self.pool.push(b);
            }
        }
        self.free.push(idx);
        self.stats.active -= 1;
    }

    /// Ends what timed out as of `self.now`: only list heads are looked at.
    fn expire_lists(&mut self, out: &mut Vec<FlowRecord>) {
        for l in 0..LISTS {
            let timeout = self.timeouts[l];
            let reason = if l == usize::from(LINGER) {
                EndReason::Fin
            } else {
                EndReason::Idle
            };
            loop {
                let h = self.heads[l][0];
                if h == NIL || self.now.saturating_sub(self.slab[h as usize].touch) <= timeout {
                    break;
                }
                self.finish(h, reason, out);
            }
        }
    }

    /// Makes room in a full table; false when the table is empty.
    fn evict_one(&mut self, out: &mut Vec<FlowRecord>) -> bool {
        let emb = self.heads[usize::from(EMBRYONIC)][0];
        if emb != NIL {
            self.stats.evicted_embryonic += 1;
            self.finish(emb, EndReason::Evicted, out);
            return true;
        }
        let mut best = NIL;
        let mut best_touch = u64::MAX;
        for l in 1..LISTS {
            let h = self.heads[l][0];
            if h != NIL && self.slab[h as usize].touch < best_touch {
                best = h;
                best_touch = self.slab[h as usize].touch;
            }
        }
        if best == NIL {
            return false;
        }
        self.stats.evicted_oldest += 1;
        self.finish(best, EndReason::Evicted, out);
        true
    }

    fn create(
        &mut self,
        key: FlowKey,
        lo_to_hi: bool,
        r: &PacketRecord,
        flags: u16,
        out: &mut Vec<FlowRecord>,
    ) {
        while self.map.len() >= self.cfg.max_flows.max(1) && self.evict_one(out) {}
        let list = match key.proto {
            FlowProto::Ip(6) if flags & (SYN | ACK | RST | FIN) == SYN => EMBRYONIC,
            FlowProto::Ip(6) => TCP,
            FlowProto::Ip(17) => UDP,
            FlowProto::Ip(1) | FlowProto::Ip(58) => ICMP,
            _ => OTHER,
        };
        let first = Pkt {
            ts: r.ts_ns,
            wire: r.wire_len,
            payload: r.payload_len.unwrap_or(0),
            hdr: header_len(r, key.proto),
            flags,
            d: 0,
        };
        let mut e = Entry {
            key,
            fwd_is_lo: lo_to_hi,
            list,
            prev: NIL,
            next: NIL,
            touch: self.now,
            flow_id: hash::flow_id(&key, r.ts_ns),
            segment: 0,
            vlan: r.vlan_id,
            init_seen: 0,
            init_win: [-1; 2],
            icmp: [-1; 2],
            syn_ts: NONE,
            td: Teardown::default(),
            first,
            acc: None,
        };
        e.note(r, 0, r.ts_ns, flags);
        let end = if key.proto == FlowProto::Ip(6) {
            e.td.update(r, flags, 0)
        } else {
            None
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = e;
                i
            }
            None => {
                self.slab.push(e);
                (self.slab.len() - 1) as u32
            }
        };
        self.map.insert(key, idx);
        self.stats.flows_created += 1;
        self.stats.active += 1;
        self.stats.peak_active = self.stats.peak_active.max(self.stats.active);
        if list == EMBRYONIC {
            self.stats.embryonic += 1;
        }
        self.link(list, idx);
        if let Some(reason) = end {
            self.finish(idx, reason, out);
        }
    }

    fn update(
        &mut self,
        idx: u32,
        lo_to_hi: bool,
        r: &PacketRecord,
        flags: u16,
        out: &mut Vec<FlowRecord>,
    ) {
        let cfg = self.cfg;
        let e = &mut self.slab[idx as usize];
        let d = usize::from(lo_to_hi != e.fwd_is_lo);
        let t = r.ts_ns.max(e.last_ts());
        let p = Pkt {
            ts: t,
            wire: r.wire_len,
            payload: r.payload_len.unwrap_or(0),
            hdr: header_len(r, e.key.proto),
            flags,
            d: d as u8,
        };
        let seg_first = e.acc.as_ref().map_or(e.first.ts, |a| a.first_ts);
        let mut list = e.list;
        if t - seg_first > cfg.active_timeout_ns {
            out.push(e.record(EndReason::Active));
            self.stats.emitted[EndReason::Active as usize] += 1;
            e.segment += 1;
            e.first = p;
            if let Some(b) = e.acc.take() {
                if self.pool.len() < POOL_MAX {
                    self.pool.push(b);
                }
            }
            if list == EMBRYONIC {
                list = TCP;
            }
        } else {
            match &mut e.acc {
                Some(a) => a.add(&p, cfg.activity_timeout_ns),
                None => {
                    let mut b = match self.pool.pop() {
                        Some(mut b) => {
                            b.restart(&e.first);
                            b
                        }
                        None => Box::new(Acc::start(&e.first)),
                    };
                    b.add(&p, cfg.activity_timeout_ns);
                    e.acc = Some(b);
                }
            }
        }
        e.note(r, d, t, flags);
        e.touch = self.now;
        let mut end = None;
        if e.key.proto == FlowProto::Ip(6) {
            end = e.td.update(r, flags, d);
            if list == EMBRYONIC && !(d == 0 && flags & (SYN | ACK | RST | FIN) == SYN) {
                list = TCP;
            }
            if e.td.closing {
                list = LINGER;
            }
        }
        self.relink(idx, list);
        if let Some(reason) = end {
            self.finish(idx, reason, out);
        }
    }

    /// Size in bytes of one table entry (without its boxed accumulators),
    /// and of the boxed accumulators of a flow of two packets or more.
    pub fn entry_sizes() -> (usize, usize) {
        (std::mem::size_of::<Entry>(), std::mem::size_of::<Acc>())
    }
}

impl Aggregator for FlowAggregator {
    type Output = FlowRecord;

    fn ingest(&mut self, r: &PacketRecord, out: &mut Vec<FlowRecord>) {
        self.stats.packets += 1;
        if r.ts_ns > self.now {
            self.now = r.ts_ns;
            self.expire_lists(out);
        }
        let Some((key, dir)) = FlowKey::from_record(r) else {
            self.stats.unkeyed += 1;
            return;
        };
        let flags = if key.proto == FlowProto::Ip(6) {
            r.tcp_flags.unwrap_or(0)
        } else {
            0
        };
        let lo_to_hi = dir == Direction::Forward;
        match self.map.get(&key) {
            Some(&idx) => self.update(idx, lo_to_hi, r, flags, out),
            None => self.create(key, lo_to_hi, r, flags, out),
        }
    }

    fn expire(&mut self, now: Timestamp, out: &mut Vec<FlowRecord>) {
        self.now = self.now.max(now.0);
        self.expire_lists(out);
    }

    fn drain(&mut self, out: &mut Vec<FlowRecord>) {
        for l in 0..LISTS {
            while self.heads[l][0] != NIL {
                self.finish(self.heads[l][0], EndReason::End, out);
            }
        }
    }
}
