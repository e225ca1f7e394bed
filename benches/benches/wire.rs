//! `wire`: the batch wire format of `netanalyzer_store::wire`, in
//! records/s, on one 10,000-record batch of generated mixed traffic
//! (half normal traffic, half the six attack scenarios, parsed into records as the
//! sensor does).
//!
//! - `wire_encode/{msgpack,msgpack_zstd3}`: [`BatchEncoder`] push of every
//!   record into a warm encoder, then `finish` (envelope, and zstd level 3
//!   for the second case), as the sensor's HTTP sink does per batch;
//! - `wire_decode/{msgpack,msgpack_zstd3}`: `decode_body` of that body
//!   with the default limits (inflate, msgpack, every check), as the
//!   server does per request.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netanalyzer_benches::{fill, gen_config, FrameSet};
use netanalyzer_capture::gen::Scenario;
use netanalyzer_capture::parse::parse_frame;
use netanalyzer_capture::LinkType;
use netanalyzer_core::{PacketRecord, ParseStats};
use netanalyzer_store::wire::{
    decode_body, encode_batch, BatchEncoder, BodyFormat, Compression, DecodeLimits,
};
use std::hint::black_box;
use std::time::Duration;

/// Records per batch: the sensor's default batch size.
const RECORDS: usize = 10_000;

fn records() -> Vec<PacketRecord> {
    // Half normal traffic, half the six attacks.
    let mut cfg = gen_config(RECORDS as u64, &Scenario::ALL);
    cfg.weights = Scenario::ALL
        .iter()
        .map(|&s| if s == Scenario::Normal { 6.0 } else { 1.0 })
        .collect();
    let set = FrameSet::generate(&cfg);
    eprintln!("wire: {}", set.describe());
    let mut stats = ParseStats::default();
    set.iter()
        .map(|(ts, data)| {
            let mut rec = PacketRecord::default();
            fill(&mut rec, ts, data);
            rec.iface = Some("eth0".into());
            parse_frame(LinkType::ETHERNET, data, &mut rec, &mut stats);
            rec
        })
        .collect()
}

fn wire(c: &mut Criterion) {
    let records = records();
    assert_eq!(records.len(), RECORDS);
    let cases = [
        ("msgpack", Compression::None),
        ("msgpack_zstd3", Compression::Zstd(3)),
    ];

    let mut group = c.benchmark_group("wire_encode");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(RECORDS as u64));
    for (name, compression) in cases {
        let mut enc = BatchEncoder::new("bench-sensor", 1, compression);
        let mut seq = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                for r in &records {
                    enc.push(black_box(r)).expect("encode");
                }
                seq += 1;
                black_box(enc.finish(seq, None).expect("finish"))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("wire_decode");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(RECORDS as u64));
    let limits = DecodeLimits::default();
    for (name, compression) in cases {
        let batch = netanalyzer_core::PacketBatch {
            sensor_id: "bench-sensor".into(),
            stream_id: 1,
            seq: 0,
            records: records.clone(),
        };
        let body = encode_batch(&batch, None, compression).expect("encode");
        eprintln!(
            "wire/{name}: {} bytes for {RECORDS} records ({:.1} bytes/record)",
            body.body.len(),
            body.body.len() as f64 / RECORDS as f64
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                let d = decode_body(
                    black_box(&body.body),
                    BodyFormat::Msgpack,
                    body.zstd,
                    &limits,
                )
                .expect("decode");
                assert_eq!(d.batch.records.len(), RECORDS);
                d
            })
        });
    }
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
