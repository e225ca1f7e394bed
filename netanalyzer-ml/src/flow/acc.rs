//! Per-segment feature accumulators and the 82 CICFlowMeter features.
//!
//! Everything is kept in integer nanoseconds and bytes (exact sums and sums
//! of squares) and converted to µs / f64 once, when the record is built.

use netanalyzer_core::{FlowFeatures, FEATURES, FEATURE_COUNT};
use serde::{Deserialize, Serialize};

/// "No time" marker.
pub(crate) const NONE: u64 = u64::MAX;
/// CICFlowMeter's subflow and bulk gap: 1 s.
pub(crate) const SUBFLOW_GAP_NS: u64 = 1_000_000_000;
/// CICFlowMeter's bulk gap: 1 s.
pub(crate) const BULK_GAP_NS: u64 = 1_000_000_000;

pub(crate) const FIN: u16 = 0x001;
pub(crate) const SYN: u16 = 0x002;
pub(crate) const RST: u16 = 0x004;
pub(crate) const PSH: u16 = 0x008;
pub(crate) const ACK: u16 = 0x010;
pub(crate) const URG: u16 = 0x020;
pub(crate) const ECE: u16 = 0x040;
pub(crate) const CWR: u16 = 0x080;

/// Exact running statistics of non-negative integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IStat {
    pub(crate) n: u64,
    pub(crate) sum: u64,
    /// Sum of squares, split in two words (msgpack has no 128-bit ints).
    sq_hi: u64,
    sq_lo: u64,
    min: u64,
    max: u64,
}

impl Default for IStat {
    fn default() -> Self {
        IStat {
            n: 0,
            sum: 0,
            sq_hi: 0,
            sq_lo: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl IStat {
    #[inline]
    pub(crate) fn add(&mut self, v: u64) {
        self.n += 1;
        self.sum = self.sum.saturating_add(v);
        let sq = self.sumsq().saturating_add(u128::from(v) * u128::from(v));
        self.sq_hi = (sq >> 64) as u64;
        self.sq_lo = sq as u64;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    #[inline]
    fn sumsq(&self) -> u128 {
        (u128::from(self.sq_hi) << 64) | u128::from(self.sq_lo)
    }

    /// Combines two statistics (for the both-directions length stats).
    pub(crate) fn merged(&self, o: &IStat) -> IStat {
        let sq = self.sumsq().saturating_add(o.sumsq());
        IStat {
            n: self.n + o.n,
            sum: self.sum.saturating_add(o.sum),
            sq_hi: (sq >> 64) as u64,
            sq_lo: sq as u64,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }

    pub(crate) fn min(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.min as f64
        }
    }

    pub(crate) fn max(&self) -> f64 {
        self.max as f64
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }

    /// Sample variance (n − 1), 0 below two values.
    pub(crate) fn var(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = u128::from(self.n);
        let s = u128::from(self.sum);
        let exact = n
            .checked_mul(self.sumsq())
            .zip(s.checked_mul(s))
            .map(|(a, b)| a.saturating_sub(b));
        match exact {
            Some(num) => num as f64 / (n * (n - 1)) as f64,
            None => {
                let nf = self.n as f64;
                let sf = self.sum as f64;
                ((self.sumsq() as f64 - sf * sf / nf) / (nf - 1.0)).max(0.0)
            }
        }
    }

    pub(crate) fn std(&self) -> f64 {
        self.var().sqrt()
    }
}

/// CICFlowMeter's bulk detector for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bulk {
    start: u64,
    last: u64,
    count_helper: u64,
    size_helper: u64,
    states: u64,
    packets: u64,
    bytes: u64,
    duration: u64,
}

impl Default for Bulk {
    fn default() -> Self {
        Bulk {
            start: NONE,
            last: NONE,
            count_helper: 0,
            size_helper: 0,
            states: 0,
            packets: 0,
            bytes: 0,
            duration: 0,
        }
    }
}

impl Bulk {
    /// One packet of this direction. `other_last` is the other direction's
    /// last bulk-candidate time: a data packet the other way since this
    /// candidate began breaks it ("consecutive" packets).
    #[inline]
    fn update(&mut self, other_last: u64, size: u64, t: u64) {
        if other_last != NONE && self.start != NONE && other_last > self.start {
            self.start = NONE;
        }
        if size == 0 {
            return;
        }
        if self.start == NONE || t.saturating_sub(self.last) > BULK_GAP_NS {
            self.start = t;
            self.last = t;
            self.count_helper = 1;
            self.size_helper = size;
            return;
        }
        self.count_helper += 1;
        self.size_helper += size;
        if self.count_helper == 4 {
            self.states += 1;
            self.packets += self.count_helper;
            self.bytes += self.size_helper;
            self.duration += t - self.start;
        } else if self.count_helper > 4 {
            self.packets += 1;
            self.bytes += size;
            self.duration += t - self.last;
        }
        self.last = t;
    }

    fn bytes_avg(&self) -> f64 {
        ratio(self.bytes as f64, self.states as f64)
    }
    fn packets_avg(&self) -> f64 {
        ratio(self.packets as f64, self.states as f64)
    }
    fn rate(&self) -> f64 {
        ratio(self.bytes as f64, self.duration as f64 / 1e9)
    }
}

/// `a / b`, 0 when `b` is 0.
#[inline]
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// What the accumulators need of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pkt {
    /// Packet time, ns (already clamped to never go back within a flow).
    pub(crate) ts: u64,
    pub(crate) wire: u32,
    pub(crate) payload: u32,
    pub(crate) hdr: u16,
    pub(crate) flags: u16,
    /// Direction relative to the flow: 0 forward, 1 backward.
    pub(crate) d: u8,
}

/// All feature accumulators of one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Acc {
    pub(crate) first_ts: u64,
    pub(crate) last_ts: u64,
    pub(crate) wire: [u64; 2],
    len: [IStat; 2],
    iat: [IStat; 2],
    flow_iat: IStat,
    last_dir_ts: [u64; 2],
    psh: [u32; 2],
    urg: [u32; 2],
    rst: [u32; 2],
    /// FIN SYN RST PSH ACK URG CWR ECE.
    flag_counts: [u32; 8],
    hdr_sum: [u64; 2],
    fwd_hdr_min: u64,
    fwd_act_data: u64,
    pub(crate) tcp_flags: u16,
    bulk: [Bulk; 2],
    subflows: u64,
    active: IStat,
    idle: IStat,
    start_active: u64,
    end_active: u64,
}

impl Acc {
    /// A segment holding just `p` (counted once in every statistic: the fix
    /// of CICFlowMeter's double-counted first packet).
    pub(crate) fn start(p: &Pkt) -> Acc {
        let mut a = Acc {
            first_ts: p.ts,
            last_ts: p.ts,
            wire: [0; 2],
            len: [IStat::default(); 2],
            iat: [IStat::default(); 2],
            flow_iat: IStat::default(),
            last_dir_ts: [NONE; 2],
            psh: [0; 2],
            urg: [0; 2],
            rst: [0; 2],
            flag_counts: [0; 8],
            hdr_sum: [0; 2],
            fwd_hdr_min: NONE,
            fwd_act_data: 0,
            tcp_flags: 0,
            bulk: [Bulk::default(); 2],
            subflows: 1,
            active: IStat::default(),
            idle: IStat::default(),
            start_active: p.ts,
            end_active: p.ts,
        };
        a.count(p);
        a
    }

    /// Resets to a segment holding just `p`, reusing the allocation.
    pub(crate) fn restart(&mut self, p: &Pkt) {
        *self = Acc::start(p);
    }

    /// Adds a later packet (`p.ts >= self.last_ts`).
    #[inline]
    pub(crate) fn add(&mut self, p: &Pkt, activity_timeout_ns: u64) {
        let t = p.ts;
        let gap = t - self.last_ts;
        self.flow_iat.add(gap);
        if gap > SUBFLOW_GAP_NS {
            self.subflows += 1;
        }
        // CICFlowMeter's active/idle split.
        if t - self.end_active > activity_timeout_ns {
            if self.end_active > self.start_active {
                self.active.add(self.end_active - self.start_active);
            }
            self.idle.add(t - self.end_active);
            self.start_active = t;
        }
        self.end_active = t;
        self.count(p);
        self.last_ts = t;
    }

    /// The per-packet counters shared by the first and later packets.
    #[inline]
    fn count(&mut self, p: &Pkt) {
        let d = usize::from(p.d);
        let t = p.ts;
        let prev = self.last_dir_ts[d];
        if prev != NONE {
            self.iat[d].add(t - prev);
        }
        self.last_dir_ts[d] = t;
        let size = u64::from(p.payload);
        let other_last = self.bulk[1 - d].last;
        self.bulk[d].update(other_last, size, t);
        self.wire[d] += u64::from(p.wire);
        self.len[d].add(size);
        self.hdr_sum[d] += u64::from(p.hdr);
        if d == 0 {
            self.fwd_hdr_min = self.fwd_hdr_min.min(u64::from(p.hdr));
            if size > 0 {
                self.fwd_act_data += 1;
            }
        }
        let f = p.flags;
        if f != 0 {
            self.tcp_flags |= f;
            self.psh[d] += u32::from(f & PSH != 0);
            self.urg[d] += u32::from(f & URG != 0);
            self.rst[d] += u32::from(f & RST != 0);
            for (i, bit) in [FIN, SYN, RST, PSH, ACK, URG, CWR, ECE]
                .into_iter()
                .enumerate()
            {
                self.flag_counts[i] += u32::from(f & bit != 0);
            }
        }
    }

    pub(crate) fn packets(&self, d: usize) -> u64 {
        self.len[d].n
    }
}

/// Flow-level values the accumulators do not hold.
pub(crate) struct Extra {
    pub(crate) protocol: f64,
    pub(crate) init_win: [i32; 2],
    pub(crate) icmp_type: i16,
    pub(crate) icmp_code: i16,
    /// First SYN of the conversation (NONE: none, or not TCP).
    pub(crate) syn_ts: u64,
    pub(crate) is_tcp: bool,
}

const US: f64 = 1_000.0;

/// Writes the features in [`FEATURES`] order; in debug builds each write
/// checks the name against the table.
struct W {
    f: [f64; FEATURE_COUNT],
    i: usize,
}

impl W {
    #[inline]
    fn put(&mut self, name: &str, v: f64) {
        debug_assert_eq!(FEATURES[self.i].name, name, "feature order");
        let _ = name;
        self.f[self.i] = if v.is_finite() { v } else { 0.0 };
        self.i += 1;
    }
    /// Statistics of ns values, written as µs mean/std/max/min.
    fn time_stats(&mut self, names: [&str; 4], s: &IStat) {
        self.put(names[0], s.mean() / US);
        self.put(names[1], s.std() / US);
        self.put(names[2], s.max() / US);
        self.put(names[3], s.min() / US);
    }
}

impl Acc {
    /// The 82 features of this segment.
    pub(crate) fn features(&self, x: &Extra) -> FlowFeatures {
        let mut w = W {
            f: [0.0; FEATURE_COUNT],
            i: 0,
        };
        let dur_ns = self.last_ts - self.first_ts;
        let dur_s = dur_ns as f64 / 1e9;
        let (nf, nb) = (self.len[0].n as f64, self.len[1].n as f64);
        let (bf, bb) = (self.len[0].sum as f64, self.len[1].sum as f64);
        let all = self.len[0].merged(&self.len[1]);
        w.put("protocol", x.protocol);
        w.put("flow_duration", dur_ns as f64 / US);
        w.put("fwd_packets", nf);
        w.put("bwd_packets", nb);
        w.put("fwd_bytes", bf);
        w.put("bwd_bytes", bb);
        for (d, names) in [
            [
                "fwd_pkt_len_max",
                "fwd_pkt_len_min",
                "fwd_pkt_len_mean",
                "fwd_pkt_len_std",
            ],
            [
                "bwd_pkt_len_max",
                "bwd_pkt_len_min",
                "bwd_pkt_len_mean",
                "bwd_pkt_len_std",
            ],
        ]
        .into_iter()
        .enumerate()
        {
            let s = &self.len[d];
            w.put(names[0], s.max());
            w.put(names[1], s.min());
            w.put(names[2], s.mean());
            w.put(names[3], s.std());
        }
        w.put("flow_bytes_per_s", ratio(bf + bb, dur_s));
        w.put("flow_packets_per_s", ratio(nf + nb, dur_s));
        w.time_stats(
            [
                "flow_iat_mean",
                "flow_iat_std",
                "flow_iat_max",
                "flow_iat_min",
            ],
            &self.flow_iat,
        );
        w.put("fwd_iat_total", self.iat[0].sum as f64 / US);
        w.time_stats(
            ["fwd_iat_mean", "fwd_iat_std", "fwd_iat_max", "fwd_iat_min"],
            &self.iat[0],
        );
        w.put("bwd_iat_total", self.iat[1].sum as f64 / US);
        w.time_stats(
            ["bwd_iat_mean", "bwd_iat_std", "bwd_iat_max", "bwd_iat_min"],
            &self.iat[1],
        );
        w.put("fwd_psh_flags", f64::from(self.psh[0]));
        w.put("bwd_psh_flags", f64::from(self.psh[1]));
        w.put("fwd_urg_flags", f64::from(self.urg[0]));
        w.put("bwd_urg_flags", f64::from(self.urg[1]));
        w.put("fwd_rst_flags", f64::from(self.rst[0]));
        w.put("bwd_rst_flags", f64::from(self.rst[1]));
        w.put("fwd_header_len", self.hdr_sum[0] as f64);
        w.put("bwd_header_len", self.hdr_sum[1] as f64);
        w.put("fwd_packets_per_s", ratio(nf, dur_s));
        w.put("bwd_packets_per_s", ratio(nb, dur_s));
        w.put("pkt_len_min", all.min());
        w.put("pkt_len_max", all.max());
        w.put("pkt_len_mean", all.mean());
        w.put("pkt_len_std", all.std());
        w.put("pkt_len_var", all.var());
        for (i, name) in [
            "fin_flag_count",
            "syn_flag_count",
            "rst_flag_count",
            "psh_flag_count",
            "ack_flag_count",
            "urg_flag_count",
            "cwr_flag_count",
            "ece_flag_count",
        ]
        .into_iter()
        .enumerate()
        {
            w.put(name, f64::from(self.flag_counts[i]));
        }
        w.put("down_up_ratio", ratio(nb, nf));
        w.put("avg_packet_size", ratio(bf + bb, nf + nb));
        w.put("fwd_seg_size_avg", ratio(bf, nf));
        w.put("bwd_seg_size_avg", ratio(bb, nb));
        w.put("fwd_bytes_bulk_avg", self.bulk[0].bytes_avg());
        w.put("fwd_packets_bulk_avg", self.bulk[0].packets_avg());
        w.put("fwd_bulk_rate_avg", self.bulk[0].rate());
        w.put("bwd_bytes_bulk_avg", self.bulk[1].bytes_avg());
        w.put("bwd_packets_bulk_avg", self.bulk[1].packets_avg());
        w.put("bwd_bulk_rate_avg", self.bulk[1].rate());
        let sf = self.subflows as f64;
        w.put("subflow_fwd_packets", ratio(nf, sf));
        w.put("subflow_fwd_bytes", ratio(bf, sf));
        w.put("subflow_bwd_packets", ratio(nb, sf));
        w.put("subflow_bwd_bytes", ratio(bb, sf));
        w.put("fwd_init_win_bytes", f64::from(x.init_win[0]));
        w.put("bwd_init_win_bytes", f64::from(x.init_win[1]));
        w.put("fwd_act_data_pkts", self.fwd_act_data as f64);
        w.put(
            "fwd_seg_size_min",
            if self.fwd_hdr_min == NONE {
                0.0
            } else {
                self.fwd_hdr_min as f64
            },
        );
        // The active period still open at the end of the segment counts.
        let mut active = self.active;
        if self.end_active > self.start_active {
            active.add(self.end_active - self.start_active);
        }
        w.time_stats(
            ["active_mean", "active_std", "active_max", "active_min"],
            &active,
        );
        w.time_stats(
            ["idle_mean", "idle_std", "idle_max", "idle_min"],
            &self.idle,
        );
        w.put("icmp_code", f64::from(x.icmp_code));
        w.put("icmp_type", f64::from(x.icmp_type));
        let tcp_time = if x.is_tcp && x.syn_ts != NONE {
            self.last_ts.saturating_sub(x.syn_ts) as f64 / US
        } else {
            0.0
        };
        w.put("total_tcp_flow_time", tcp_time);
        debug_assert_eq!(w.i, FEATURE_COUNT);
        FlowFeatures(w.f)
    }
}
