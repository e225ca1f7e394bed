//! The flow table under a spoofed SYN flood: memory stays capped, every
//! packet lands in exactly one flow record, evictions are counted.
//!
//! 1,000,000 spoofed SYNs (random source address and port, one flow each,
//! 1M packets/s of packet time) go into a `FlowAggregator` with
//! `max_flows = 100_000`. Checked:
//!
//! - the table never holds more than `max_flows` entries (after every
//!   packet, and `peak_active`);
//! - the packets of all emitted records add up to the packets ingested
//!   minus the unkeyed ones (none here), and each record is a one-packet
//!   embryonic flow;
//! - evictions are counted by reason, and `flows_created` = records;
//! - the peak heap (dhat, testing mode) stays under [`heap_cap`]: a fixed
//!   per-entry budget times `max_flows`, plus a constant. The emitted
//!   records are consumed as they come (as the aggregator binary does), so
//!   the heap measured is the table's.
//!
//! The full 10M-packet run is `flowbench --flood 10000000` (release; see
//! docs/benchmarks.md). One test per binary: dhat's profiler is global.

use netanalyzer_core::{Aggregator, EndReason, FlowRecord, PacketRecord, Protocol};
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig};
use std::net::{IpAddr, Ipv4Addr};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Packets of the flood in the ordinary (debug) test suite.
const PACKETS: u64 = 1_000_000;
/// The table cap under test.
const MAX_FLOWS: usize = 100_000;
/// Fixed part of the heap budget (the test's own buffers included).
const FIXED_BYTES: usize = 16 << 20;

/// The documented memory cap for a table of `max_flows` entries, from the
/// table's own entry sizes: every entry may hold its slab slot twice (the
/// slab vector doubles), its boxed accumulators, and 128 bytes of hash
/// index (key + slot index, with hashbrown's load factor and doubling).
/// A flood's embryonic entries have no accumulators, so they stay far
/// below it.
fn heap_cap(max_flows: usize) -> usize {
    let (entry, acc) = FlowAggregator::entry_sizes();
    max_flows * (2 * entry + acc + 128) + FIXED_BYTES
}

/// SplitMix64: a tiny deterministic PRNG for the spoofed fields.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Rewrites `rec` into the `i`-th spoofed SYN (60-byte frame) to
/// 203.0.113.10:80 from a random 10/8 address and port, 1 µs apart.
fn spoofed_syn(rec: &mut PacketRecord, rng: &mut Rng, i: u64) {
    let r = rng.next();
    rec.ts_ns = 1_704_067_200_000_000_000 + i * 1_000;
    rec.wire_len = 60;
    rec.cap_len = 60;
    rec.ether_type = Some(0x0800);
    rec.ip_version = Some(4);
    rec.src_ip = Some(IpAddr::V4(Ipv4Addr::from(
        0x0a00_0000 | (r as u32 & 0x00ff_ffff),
    )));
    rec.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)));
    rec.ip_proto = Some(6);
    rec.ttl = Some(64);
    rec.is_fragment = Some(false);
    rec.src_port = Some(1024 + ((r >> 32) as u16 % 64_000));
    rec.dst_port = Some(80);
    rec.tcp_flags = Some(0x002);
    rec.tcp_seq = Some((r >> 16) as u32);
    rec.tcp_ack = Some(0);
    rec.tcp_window = Some(1024);
    rec.payload_len = Some(0);
    rec.protocol = Protocol::Tcp;
}

#[test]
fn syn_flood_stays_under_the_cap() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let cfg = FlowConfig {
        max_flows: MAX_FLOWS,
        ..FlowConfig::default()
    };
    let mut agg = FlowAggregator::new(cfg);
    let mut rng = Rng(42);
    let mut rec = PacketRecord::default();
    let mut out: Vec<FlowRecord> = Vec::with_capacity(64);
    let (mut emitted_packets, mut records) = (0u64, 0u64);
    let mut by_reason = [0u64; 6];
    let mut peak_len = 0usize;
    let mut consume = |out: &mut Vec<FlowRecord>| {
        for f in out.drain(..) {
            assert_eq!(
                f.packets(),
                f.fwd_packets,
                "a SYN flow has no backward packet"
            );
            assert_eq!((f.fwd_packets, f.fwd_bytes), (1, 60));
            emitted_packets += f.packets();
            records += 1;
            let i = EndReason::ALL
                .iter()
                .position(|r| *r == f.end_reason)
                .unwrap();
            by_reason[i] += 1;
        }
    };
    for i in 0..PACKETS {
        spoofed_syn(&mut rec, &mut rng, i);
        agg.ingest(&rec, &mut out);
        let len = agg.len();
        assert!(len <= MAX_FLOWS, "table holds {len} > {MAX_FLOWS} entries");
        peak_len = peak_len.max(len);
        consume(&mut out);
    }
    let before_drain = agg.stats();
    let heap = dhat::HeapStats::get();
    agg.drain(&mut out);
    consume(&mut out);
    let st = agg.stats();

    let (entry, acc) = FlowAggregator::entry_sizes();
    println!("entry {entry} B, accumulators {acc} B");
    println!(
        "flood: {PACKETS} SYNs, max_flows {MAX_FLOWS}: peak entries {peak_len} (stats {}), \
         records {records}, by reason {by_reason:?}, evicted embryonic {} oldest {}, \
         peak heap {} B ({:.0} B per table entry), cap {} B",
        st.peak_active,
        st.evicted_embryonic,
        st.evicted_oldest,
        heap.max_bytes,
        heap.max_bytes as f64 / peak_len.max(1) as f64,
        heap_cap(MAX_FLOWS)
    );

    // The cap holds.
    assert!(peak_len <= MAX_FLOWS);
    assert!(st.peak_active as usize <= MAX_FLOWS);
    assert_eq!(peak_len, MAX_FLOWS, "the flood fills the table");
    // Every packet is in exactly one record.
    assert_eq!(st.packets, PACKETS);
    assert_eq!(st.unkeyed, 0);
    assert_eq!(emitted_packets, st.packets - st.unkeyed);
    assert_eq!(records, PACKETS, "one record per spoofed flow");
    assert_eq!(st.flows_created, records);
    assert_eq!(st.emitted, by_reason, "emitted counters by reason");
    assert!(agg.is_empty() && st.active == 0);
    // Evictions are counted and were needed: 1M packets/s for 1 s with a
    // 5 s embryonic timeout cannot fit 100k entries without them. Every
    // flow is embryonic, so no other kind is evicted.
    let evicted = by_reason[4];
    assert_eq!(
        evicted,
        before_drain.evicted_embryonic + before_drain.evicted_oldest
    );
    assert_eq!(before_drain.evicted_oldest, 0, "only embryonic flows exist");
    assert_eq!(evicted, PACKETS - MAX_FLOWS as u64);
    assert_eq!(by_reason[5], MAX_FLOWS as u64, "drain emits the rest");
    // Memory stays under the documented cap.
    assert!(
        heap.max_bytes <= heap_cap(MAX_FLOWS),
        "peak heap {} B over the cap {} B",
        heap.max_bytes,
        heap_cap(MAX_FLOWS)
    );
}
