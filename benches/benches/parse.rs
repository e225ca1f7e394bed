//! `parse`: frame bytes → `PacketRecord` with
//! `netanalyzer_capture::parse::parse_frame`, in packets/s, one case per
//! kind of generated traffic. Each iteration parses every frame of the
//! case once into a reused record, exactly as `FileSource` does (clear,
//! capture metadata, parse), so the per-packet cost includes clearing the
//! record and the few string allocations of DNS/HTTP/TLS names.
//!
//! `parse_baseline/etherparse_normal` slices the same normal frames with
//! etherparse (`SlicedPacket::from_ethernet`, headers only: no record, no
//! application decoding), as a yardstick from a well-known zero-copy
//! parser.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netanalyzer_benches::{gen_config, FrameSet};
use netanalyzer_capture::gen::Scenario;
use netanalyzer_core::Protocol;
use std::hint::black_box;
use std::time::Duration;

/// Frames per case (per iteration) before filtering.
const FRAMES: u64 = 20_000;

fn cases() -> Vec<(&'static str, FrameSet)> {
    let normal = FrameSet::generate(&gen_config(FRAMES * 4, &[Scenario::Normal]));
    let dns = normal.only(&[Protocol::Dns]);
    let http_tls = normal.only(&[Protocol::Http, Protocol::Tls]);
    vec![
        ("normal", normal.first(FRAMES as usize)),
        (
            "syn_flood",
            FrameSet::generate(&gen_config(FRAMES, &[Scenario::SynFlood])),
        ),
        ("dns", dns),
        ("http_tls", http_tls),
        (
            "attacks_mix",
            FrameSet::generate(&gen_config(FRAMES, &Scenario::ALL)),
        ),
    ]
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, set) in cases() {
        eprintln!("parse/{name}: {}", set.describe());
        group.throughput(Throughput::Elements(set.len() as u64));
        group.bench_function(name, |b| b.iter(|| black_box(set.parse_all())));
    }
    group.finish();
}

/// Reads a few fields of every frame through etherparse's slices.
fn etherparse_all(set: &FrameSet) -> u64 {
    let mut acc = 0u64;
    for (_, data) in set.iter() {
        if let Ok(p) = etherparse::SlicedPacket::from_ethernet(black_box(data)) {
            acc += match p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => {
                    u64::from(t.source_port()) + u64::from(t.sequence_number())
                }
                Some(etherparse::TransportSlice::Udp(u)) => u64::from(u.source_port()),
                Some(_) => 1,
                None => 0,
            };
        }
    }
    acc
}

fn parse_baseline(c: &mut Criterion) {
    let set = FrameSet::generate(&gen_config(FRAMES, &[Scenario::Normal]));
    let mut group = c.benchmark_group("parse_baseline");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(set.len() as u64));
    group.bench_function("etherparse_normal", |b| {
        b.iter(|| black_box(etherparse_all(&set)))
    });
    group.finish();
}

criterion_group!(benches, parse, parse_baseline);
criterion_main!(benches);
