//! Flow aggregation speed, in packets/s: records already parsed in memory
//! → `FlowAggregator` (default config, all 82 features), then `drain`.
//! One iteration feeds every record of the case to a fresh table.
//!
//! - `aggregate/normal`: 100,000 packets of the generator's normal mix
//!   (TCP sessions with HTTP/TLS, DNS, ICMP, ARP, IPv6, VLAN);
//! - `aggregate/syn_flood`: 100,000 spoofed SYNs (one flow per packet);
//! - `aggregate/syn_flood_capped`: the same into a table capped at 10,000
//!   entries, so nearly every packet evicts an embryonic flow.
//!
//! Parse + aggregate from a pcap, and the comparison with softflowd, is
//! `benches/src/bin/flowbench.rs --speed`.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use netanalyzer_benches::{gen_config, FrameSet};
use netanalyzer_capture::gen::Scenario;
use netanalyzer_core::{Aggregator, FlowRecord, PacketRecord};
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig};
use std::hint::black_box;
use std::time::Duration;

const PACKETS: u64 = 100_000;

/// The parsed records of a generated capture.
fn records(scenario: Scenario) -> Vec<PacketRecord> {
    FrameSet::generate(&gen_config(PACKETS, &[scenario])).records()
}

/// Feeds every record, drains; returns the packets counted in records.
fn run(mut agg: FlowAggregator, recs: &[PacketRecord]) -> u64 {
    let mut out: Vec<FlowRecord> = Vec::with_capacity(1024);
    let mut packets = 0;
    for r in recs {
        agg.ingest(r, &mut out);
        if out.len() >= 1024 {
            packets += out.iter().map(FlowRecord::packets).sum::<u64>();
            black_box(&out);
            out.clear();
        }
    }
    agg.drain(&mut out);
    packets + out.iter().map(FlowRecord::packets).sum::<u64>()
}

fn aggregate(c: &mut Criterion) {
    let normal = records(Scenario::Normal);
    let flood = records(Scenario::SynFlood);
    let capped = FlowConfig {
        max_flows: 10_000,
        ..FlowConfig::default()
    };
    // Every keyed packet comes back in exactly one record.
    for (recs, cfg) in [
        (&normal, FlowConfig::default()),
        (&flood, FlowConfig::default()),
        (&flood, capped),
    ] {
        let keyed = recs
            .iter()
            .filter(|r| netanalyzer_core::FlowKey::from_record(r).is_some())
            .count() as u64;
        assert_eq!(run(FlowAggregator::new(cfg), recs), keyed);
    }

    let mut group = c.benchmark_group("aggregate");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(PACKETS));
    for (name, recs, cfg) in [
        ("normal", &normal, FlowConfig::default()),
        ("syn_flood", &flood, FlowConfig::default()),
        ("syn_flood_capped", &flood, capped),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || FlowAggregator::new(cfg),
                |agg| run(agg, recs),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, aggregate);
criterion_main!(benches);
