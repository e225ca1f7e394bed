//! The hot-path invariant, measured: reading and parsing a capture
//! allocates nothing per packet except the record's optional strings (DNS
//! name, HTTP method/host/path, TLS SNI). A counting heap (dhat in testing
//! mode) wraps the whole test binary; after a warm-up, the number of heap
//! blocks allocated while reading must equal the number of strings the
//! records carry.
//!
//! One test per binary: dhat's profiler is process-global.

use netanalyzer_capture::gen::{self, GenConfig, Scenario};
use netanalyzer_capture::FileSource;
use netanalyzer_core::{PacketRecord, Source, SourceEvent};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const WARMUP: usize = 1_000;

/// Strings a record owns (each one heap block).
fn strings(r: &PacketRecord) -> u64 {
    [
        r.dns_qname.is_some(),
        r.http_method.is_some(),
        r.http_host.is_some(),
        r.http_path.is_some(),
        r.tls_sni.is_some(),
    ]
    .into_iter()
    .map(u64::from)
    .sum()
}

/// Reads the capture; returns (packets after warm-up, heap blocks
/// allocated while reading them, strings those records own).
fn measure(pcap: Vec<u8>) -> (u64, u64, u64) {
    let mut src = FileSource::from_reader(std::io::Cursor::new(pcap)).unwrap();
    let mut rec = PacketRecord::default();
    for _ in 0..WARMUP {
        assert_eq!(src.next_into(&mut rec).unwrap(), SourceEvent::Packet);
    }
    let before = dhat::HeapStats::get().total_blocks;
    let (mut packets, mut owned) = (0u64, 0u64);
    while src.next_into(&mut rec).unwrap() == SourceEvent::Packet {
        packets += 1;
        owned += strings(&rec);
    }
    let blocks = dhat::HeapStats::get().total_blocks - before;
    (packets, blocks, owned)
}

fn generated(scenarios: Vec<Scenario>, packets: u64) -> Vec<u8> {
    let cfg = GenConfig {
        packets,
        seed: 3,
        scenarios,
        ..GenConfig::default()
    };
    let mut pcap = Vec::new();
    gen::generate(&cfg, &mut pcap, std::io::sink()).unwrap();
    pcap
}

#[test]
fn reading_allocates_only_the_records_strings() {
    let _profiler = dhat::Profiler::builder().testing().build();

    // A flood carries no strings: not one allocation per packet.
    let flood = generated(
        vec![Scenario::SynFlood, Scenario::UdpFlood, Scenario::IcmpFlood],
        30_000,
    );
    let (packets, blocks, owned) = measure(flood);
    println!("floods: {packets} packets, {blocks} heap blocks, {owned} strings");
    assert_eq!(owned, 0);
    assert_eq!(
        blocks, 0,
        "{blocks} allocations over {packets} flood packets"
    );

    // Mixed traffic: one block per string the records own, nothing else.
    let normal = generated(vec![Scenario::Normal, Scenario::PortScan], 30_000);
    let (packets, blocks, owned) = measure(normal);
    println!("mixed: {packets} packets, {blocks} heap blocks, {owned} strings");
    assert!(owned > 100, "the mix carries DNS, HTTP and TLS names");
    assert_eq!(blocks, owned, "allocations beyond the records' strings");
}
