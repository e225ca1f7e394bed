//! `predict`: the default model's flattened forest, in flows/s.
//!
//! - `predict/single_flow`: `Model::predict_flow` on one flow's core
//!   features (gather through the binding, clean, vote), one at a time.
//! - `predict/batch`: `FlatForest::predict_batch` over the same flows as
//!   rows in the model's feature order (four rows walk each tree at once).
//!
//! The flows are real ones: the generator's mixed traffic with attacks
//! (the kind of traffic the default model was trained on, so the tree
//! paths are realistic) through the parser and `FlowAggregator`.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netanalyzer_benches::{gen_config, FrameSet};
use netanalyzer_capture::gen::Scenario;
use netanalyzer_core::{feature_index, Aggregator, FlowFeatures, FlowRecord};
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig};
use netanalyzer_ml::model::default_model;
use std::hint::black_box;

const ROWS: usize = 10_000;

/// Up to `ROWS` flows of generated normal traffic, floods and scans.
fn flows() -> Vec<FlowFeatures> {
    let scenarios = [
        Scenario::Normal,
        Scenario::SynFlood,
        Scenario::PortScan,
        Scenario::Slowloris,
        Scenario::DnsAmplification,
    ];
    let recs = FrameSet::generate(&gen_config(200_000, &scenarios)).records();
    let mut agg = FlowAggregator::new(FlowConfig::default());
    let mut out: Vec<FlowRecord> = Vec::new();
    for r in &recs {
        agg.ingest(r, &mut out);
    }
    agg.drain(&mut out);
    // Every n-th flow, so each kind of traffic is in the sample.
    let step = (out.len() / ROWS).max(1);
    out.iter()
        .step_by(step)
        .take(ROWS)
        .map(|f| f.features)
        .collect()
}

fn bench(c: &mut Criterion) {
    let model = default_model().expect("default model");
    let binding = model.bind().expect("binds");
    let flows = flows();
    let n = flows.len();
    // The same flows as rows in the model's own feature order.
    let cols: Vec<usize> = model
        .meta
        .feature_names
        .iter()
        .map(|name| feature_index(name).expect("a bound model names core features"))
        .collect();
    let w = cols.len();
    let data: Vec<f64> = flows
        .iter()
        .flat_map(|f| cols.iter().map(move |&c| f.0[c]))
        .collect();
    let mut g = c.benchmark_group("predict");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("single_flow", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(model.predict_flow(&binding, black_box(&flows[i])))
        })
    });
    g.throughput(Throughput::Elements(n as u64));
    let mut out = Vec::with_capacity(n);
    g.bench_function("batch", |b| {
        b.iter(|| {
            out.clear();
            model.forest().predict_batch(black_box(&data), w, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
