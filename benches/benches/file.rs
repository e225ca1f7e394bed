//! File reading from an in-memory generated pcap (normal traffic), in
//! packets/s:
//! - `file_read`: `FrameReader` alone, frame slices out of the 1 MiB
//!   chunk buffer, no parsing;
//! - `file_source`: `FileSource::from_reader`, reading plus
//!   `parse_frame` into a reused record: the sniffer's input stage
//!   without any output.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netanalyzer_benches::{gen_config, pcap_bytes, FrameSet};
use netanalyzer_capture::gen::Scenario;
use netanalyzer_capture::{FileSource, FrameReader};
use netanalyzer_core::{PacketRecord, Source, SourceEvent};
use std::hint::black_box;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

const PACKETS: u64 = 100_000;

fn read_all(pcap: &[u8]) -> u64 {
    let mut r = FrameReader::new(pcap).expect("generated pcap header");
    let mut n = 0u64;
    while let Some(f) = r.next_frame().expect("generated pcap frame") {
        black_box(f.data);
        n += 1;
    }
    n
}

fn source_all(pcap: &Arc<[u8]>) -> u64 {
    let mut src = FileSource::from_reader(Cursor::new(Arc::clone(pcap))).expect("pcap header");
    let mut rec = PacketRecord::default();
    let mut n = 0u64;
    while src.next_into(&mut rec).expect("generated pcap frame") == SourceEvent::Packet {
        black_box(&rec);
        n += 1;
    }
    n
}

fn file(c: &mut Criterion) {
    let cfg = gen_config(PACKETS, &[Scenario::Normal]);
    let pcap: Arc<[u8]> = pcap_bytes(&cfg).into();
    eprintln!(
        "file: {} B pcap; {}",
        pcap.len(),
        FrameSet::generate(&cfg).describe()
    );
    assert_eq!(read_all(&pcap), PACKETS);
    assert_eq!(source_all(&pcap), PACKETS);

    for (name, which) in [("file_read", 0), ("file_source", 1)] {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
            .throughput(Throughput::Elements(PACKETS));
        group.bench_function("normal", |b| {
            b.iter(|| match which {
                0 => read_all(&pcap),
                _ => source_all(&pcap),
            })
        });
        group.finish();
    }
}

criterion_group!(benches, file);
criterion_main!(benches);
