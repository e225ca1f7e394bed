//! `netanalyzer-sniffer --aggregate` end to end: a generated capture
//! (normal traffic + SYN flood + port scan) through the real binary, with
//! flows (`-o flows-jsonl:PATH`) and alerts (`--alerts jsonl:PATH`)
//! checked: every packet in exactly one flow record, the JSON shapes, the
//! expected alerts, identical results on a replay, and the usage errors.

mod support;

use netanalyzer_capture::gen::{self, GenConfig};
use netanalyzer_capture::FileSource;
use netanalyzer_core::{
    Aggregator, Alert, FlowAddr, FlowKey, FlowProto, FlowRecord, PacketRecord, Source, SourceEvent,
    COARSE_CLASSES, FEATURES,
};
use netanalyzer_ml::dataset::from_flows;
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig};
use netanalyzer_ml::forest::{train_forest, ForestParams};
use netanalyzer_ml::model::{default_model, Model, TrainingInfo};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const SCENARIOS: &str = "normal:2,syn-flood,port-scan";

/// The generator's scenario names as the coarse classes a model learns.
fn coarse(scenario: &str) -> &'static str {
    match scenario {
        "normal" => "Normal",
        "syn-flood" | "udp-flood" | "icmp-flood" | "slowloris" => "DoS",
        "dns-amplification" => "DDoS",
        "port-scan" => "PortScan",
        _ => "Other",
    }
}

/// Writes a capture and its labels; returns (pcap, labels csv).
fn generate(dir: &Path, name: &str, seed: u64, packets: u64) -> (PathBuf, PathBuf) {
    let (scenarios, weights) = gen::parse_scenarios(SCENARIOS).unwrap();
    let cfg = GenConfig {
        packets,
        seed,
        scenarios,
        weights,
        ..GenConfig::default()
    };
    let pcap = dir.join(format!("{name}.pcap"));
    let labels = dir.join(format!("{name}.labels.csv"));
    gen::generate_files(&cfg, &pcap, &labels).unwrap();
    (pcap, labels)
}

/// The labels CSV: flow key → scenario, and flows per destination per
/// scenario.
struct Labels {
    by_key: HashMap<FlowKey, String>,
    targets: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Labels {
    /// The destination of most of a scenario's flows (the attacked host;
    /// a scan also has a reply flow or two toward the scanner).
    fn main_target(&self, scenario: &str) -> &str {
        let (dst, _) = self.targets[scenario]
            .iter()
            .max_by_key(|(_, n)| **n)
            .unwrap();
        dst
    }
}

fn read_labels(path: &Path) -> Labels {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("proto,src,sport,dst,dport,first_ts_ns,last_ts_ns,packets,bytes,label")
    );
    let mut by_key = HashMap::new();
    let mut targets: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for line in lines {
        let c: Vec<&str> = line.split(',').collect();
        let proto = match c[0] {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "icmpv6" => 58,
            // ARP (MAC addresses) is normal traffic: unlabelled keys are.
            "arp" => continue,
            other => other.parse().unwrap(),
        };
        let src: IpAddr = c[1].parse().unwrap();
        let dst: IpAddr = c[3].parse().unwrap();
        let (key, _) = FlowKey::new(
            FlowProto::Ip(proto),
            FlowAddr::Ip(src),
            c[2].parse().unwrap(),
            FlowAddr::Ip(dst),
            c[4].parse().unwrap(),
        );
        let label = c[9].to_owned();
        *targets
            .entry(label.clone())
            .or_default()
            .entry(dst.to_string())
            .or_default() += 1;
        by_key.insert(key, label);
    }
    Labels { by_key, targets }
}

/// Reads a capture: (packets, packets without a flow key).
fn count_packets(pcap: &Path) -> (u64, u64) {
    let mut src = FileSource::open(pcap).unwrap();
    let mut rec = PacketRecord::default();
    let (mut n, mut unkeyed) = (0, 0);
    while let SourceEvent::Packet = src.next_into(&mut rec).unwrap() {
        n += 1;
        if FlowKey::from_record(&rec).is_none() {
            unkeyed += 1;
        }
    }
    (n, unkeyed)
}

/// Trains a small model on the flows of a capture (another seed than the
/// one tested), labelled by the generator, and writes it to `out`. With
/// `rename`, the model's feature 3 gets that name (a model from elsewhere).
fn train_model(pcap: &Path, labels: &Path, out: &Path, rename: Option<&str>) -> Model {
    let labels = read_labels(labels);
    let mut agg = FlowAggregator::new(FlowConfig::default());
    let mut src = FileSource::open(pcap).unwrap();
    let mut rec = PacketRecord::default();
    let mut flows: Vec<FlowRecord> = Vec::new();
    while let SourceEvent::Packet = src.next_into(&mut rec).unwrap() {
        agg.ingest(&rec, &mut flows);
    }
    agg.drain(&mut flows);
    let mut kept = Vec::new();
    let mut names = Vec::new();
    let mut per_class: HashMap<&str, usize> = HashMap::new();
    for f in flows {
        let class = labels.by_key.get(&f.key).map_or("Normal", |l| coarse(l));
        let n = per_class.entry(class).or_default();
        if *n < 600 {
            *n += 1;
            kept.push(f);
            names.push(class.to_owned());
        }
    }
    let mut ds = from_flows(&kept, &names);
    if let Some(name) = rename {
        ds.feature_names[3] = name.to_owned();
    }
    let params = ForestParams {
        n_trees: 8,
        max_depth: Some(10),
        balance_target: 300,
        ..ForestParams::default()
    };
    let forest = train_forest(&ds, &params, &mut |_, _| {}).unwrap();
    let info = TrainingInfo {
        description: "sniffer_aggregate test model".into(),
        sources: vec![SCENARIOS.into()],
        ..TrainingInfo::default()
    };
    let model = Model::new(forest, &ds, info, params, None);
    model.save(out).unwrap();
    model
}

/// One run of the sniffer: (flows, alerts, raw flow lines, raw alert lines).
struct Run {
    flows: Vec<Value>,
    alerts: Vec<Alert>,
    flow_bytes: Vec<u8>,
    alert_bytes: Vec<u8>,
    stderr: String,
}

fn run_sniffer(dir: &Path, tag: &str, pcap: &Path, model: Option<&Path>) -> Run {
    let flows = dir.join(format!("{tag}.flows.jsonl"));
    let alerts = dir.join(format!("{tag}.alerts.jsonl"));
    let mut cmd = support::sniffer();
    cmd.arg("-r").arg(pcap).arg("--aggregate");
    if let Some(m) = model {
        cmd.arg("--model").arg(m);
    }
    cmd.arg("-o")
        .arg(format!("flows-jsonl:{}", flows.display()))
        .arg("--alerts")
        .arg(format!("jsonl:{}", alerts.display()));
    let out = cmd.output().unwrap();
    if !out.status.success() {
        support::show(&out);
        panic!("sniffer failed");
    }
    assert!(out.stdout.is_empty(), "no packet output by default");
    let flow_bytes = std::fs::read(&flows).unwrap();
    let alert_bytes = std::fs::read(&alerts).unwrap();
    let flows = flow_bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let alerts = alert_bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    Run {
        flows,
        alerts,
        flow_bytes,
        alert_bytes,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Checks every flow line's shape and that the flows hold every keyed
/// packet exactly once; returns the flow count per label.
fn check_flows(run: &Run, packets: u64, unkeyed: u64, classes: &[String]) -> BTreeMap<String, u64> {
    let mut sum = 0;
    let mut ids = HashSet::new();
    let mut per_label = BTreeMap::new();
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    for f in &run.flows {
        let o = f.as_object().unwrap();
        for k in [
            "flow_id",
            "segment",
            "key",
            "proto",
            "ip_proto",
            "src",
            "src_port",
            "dst",
            "dst_port",
            "vlan_id",
            "first_ts_ns",
            "last_ts_ns",
            "fwd_packets",
            "bwd_packets",
            "fwd_bytes",
            "bwd_bytes",
            "tcp_flags",
            "end_reason",
            "features",
            "label",
            "confidence",
            "model_version",
        ] {
            assert!(o.contains_key(k), "flow line lacks {k}: {f}");
        }
        let feats = o["features"].as_object().unwrap();
        let keys: Vec<&str> = feats.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), names.len());
        for n in &names {
            assert!(feats[*n].as_f64().unwrap().is_finite(), "{n}");
        }
        let label = o["label"].as_str().unwrap();
        assert!(classes.iter().any(|c| c == label), "unknown label {label}");
        let conf = o["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&conf));
        assert!(["idle", "active", "fin", "rst", "evicted", "end"]
            .contains(&o["end_reason"].as_str().unwrap()));
        assert!(o["first_ts_ns"].as_u64() <= o["last_ts_ns"].as_u64());
        let n = o["fwd_packets"].as_u64().unwrap() + o["bwd_packets"].as_u64().unwrap();
        assert!(n >= 1);
        sum += n;
        let id = (
            o["flow_id"].as_u64().unwrap(),
            o["segment"].as_u64().unwrap(),
        );
        assert!(ids.insert(id), "flow record {id:?} twice");
        *per_label.entry(label.to_owned()).or_insert(0u64) += 1;
    }
    assert_eq!(
        sum,
        packets - unkeyed,
        "every packet with a flow key is in exactly one flow record"
    );
    per_label
}

/// Checks the alert updates: revisions count up per alert; returns the
/// last update of each alert.
fn check_alerts(run: &Run) -> Vec<Alert> {
    let mut last: BTreeMap<u64, Alert> = BTreeMap::new();
    for a in &run.alerts {
        assert!(COARSE_CLASSES.contains(&a.class.as_str()) && a.class != "Normal");
        assert!(a.flow_count >= 1 && a.packet_count >= a.flow_count);
        assert!(a.source_count >= a.sources.len() as u64 && !a.sources.is_empty());
        assert!(a.first_ts_ns <= a.last_ts_ns && a.window_start_ns <= a.first_ts_ns);
        let prev = last.get(&a.alert_id).map_or(0, |p| p.revision);
        assert_eq!(a.revision, prev + 1, "revisions of {} count up", a.alert_id);
        if let Some(p) = last.get(&a.alert_id) {
            assert!(a.flow_count > p.flow_count && a.severity >= p.severity);
        }
        last.insert(a.alert_id, a.clone());
    }
    last.into_values().collect()
}

fn summarize(alerts: &[Alert]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "  {} -> {} severity {} flows {} packets {} sources {} conf {:.2}\n",
                a.class,
                a.target,
                a.severity,
                a.flow_count,
                a.packet_count,
                a.source_count,
                a.confidence
            )
        })
        .collect()
}

#[test]
fn aggregate_flows_and_alerts_on_a_generated_attack() {
    let dir = tempfile::tempdir().unwrap();
    let (train_pcap, train_labels) = generate(dir.path(), "train", 11, 30_000);
    let model_path = dir.path().join("test.model");
    let model = train_model(&train_pcap, &train_labels, &model_path, None);

    let (pcap, labels) = generate(dir.path(), "test", 12, 30_000);
    let labels = read_labels(&labels);
    let (packets, unkeyed) = count_packets(&pcap);
    assert_eq!(packets, 30_000);

    let run = run_sniffer(dir.path(), "a", &pcap, Some(&model_path));
    eprintln!("{}", run.stderr);
    let per_label = check_flows(&run, packets, unkeyed, &model.meta.class_names);
    eprintln!("flows per label: {per_label:?}");
    let version = model.version();
    assert!(run
        .flows
        .iter()
        .all(|f| f["model_version"].as_str() == Some(version)));
    let alerts = check_alerts(&run);
    eprintln!("alerts:\n{}", summarize(&alerts));
    assert!(run.stderr.contains("aggregate:"), "summary: {}", run.stderr);
    assert!(run.stderr.contains("predicted:"));

    // The SYN flood raises a DoS alert on its target, the scan a PortScan
    // alert on its: one alert each (one window), not one per flow.
    for (scenario, class, min_sources) in [("syn-flood", "DoS", 1000), ("port-scan", "PortScan", 1)]
    {
        let target = labels.main_target(scenario);
        let hits: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.class == class && a.target == target)
            .collect();
        assert_eq!(hits.len(), 1, "one {class} alert on {target} ({scenario})");
        let a = hits[0];
        assert!(a.flow_count >= 100, "{class} alert folds the flows: {a:?}");
        assert!(
            a.source_count >= min_sources,
            "{class} sources: {}",
            a.source_count
        );
        assert!(a.sources.len() <= 16, "the source list is capped");
    }

    // Deterministic: the same capture gives byte-identical outputs.
    let again = run_sniffer(dir.path(), "b", &pcap, Some(&model_path));
    assert!(
        again.flow_bytes == run.flow_bytes,
        "flows differ between runs"
    );
    assert!(
        again.alert_bytes == run.alert_bytes,
        "alerts differ between runs"
    );
}

#[test]
fn aggregate_with_the_default_model() {
    let model = default_model().expect("the built-in model loads");
    let dir = tempfile::tempdir().unwrap();
    let (pcap, labels) = generate(dir.path(), "default", 12, 30_000);
    let labels = read_labels(&labels);
    let (packets, unkeyed) = count_packets(&pcap);
    let run = run_sniffer(dir.path(), "d", &pcap, None);
    let per_label = check_flows(&run, packets, unkeyed, &model.meta.class_names);
    let alerts = check_alerts(&run);
    eprintln!(
        "default model {}: flows per label {per_label:?}\nalerts:\n{}",
        model.version(),
        summarize(&alerts)
    );
    // The generator's floods come from spoofed sources: the default model
    // (trained on generated scenarios, docs/ml.md) calls them DDoS.
    for (scenario, classes) in [
        ("syn-flood", &["DoS", "DDoS"][..]),
        ("port-scan", &["PortScan"][..]),
    ] {
        let target = labels.main_target(scenario);
        let hit = alerts
            .iter()
            .any(|a| classes.contains(&a.class.as_str()) && a.target == target);
        assert!(
            hit,
            "default model: no {classes:?} alert on {target} ({scenario})"
        );
    }
}

#[test]
fn flows_output_needs_aggregate_and_a_fitting_model() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = generate(dir.path(), "small", 3, 200);

    let out = support::sniffer()
        .arg("-r")
        .arg(&pcap)
        .args(["-o", "flows-jsonl:x.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --aggregate"));

    for flag in [["--alerts", "jsonl:a.jsonl"], ["--model", "m.model"]] {
        let out = support::sniffer()
            .arg("-r")
            .arg(&pcap)
            .args(flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag:?} without --aggregate");
    }

    let out = support::sniffer()
        .arg("-r")
        .arg(&pcap)
        .args(["--aggregate", "-o", "parquet:x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flows-jsonl:PATH"));

    // A model trained on a feature this flow table does not compute.
    let (tp, tl) = generate(dir.path(), "t", 4, 3_000);
    let bad = dir.path().join("bad.model");
    train_model(&tp, &tl, &bad, Some("no_such_feature"));
    let out = support::sniffer()
        .arg("-r")
        .arg(&pcap)
        .arg("--aggregate")
        .arg("--model")
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not fit"), "{err}");
    assert!(err.contains("no_such_feature"), "{err}");
}

#[test]
fn aggregate_beside_the_server_keeps_every_packet_in_both() {
    let Some(db) = netanalyzer_store::pg::TestDb::require() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = generate(dir.path(), "both", 13, 20_000);
    let (packets, unkeyed) = count_packets(&pcap);
    let server = support::ServerProc::start(&["--database-url", &db.conninfo()]);
    let flows = dir.path().join("flows.jsonl");
    let out = support::sniffer()
        .arg("-r")
        .arg(&pcap)
        .args(["--server", &server.url(), "--sensor-id", "edge-agg"])
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .arg("--aggregate")
        .arg("-o")
        .arg(format!("flows-jsonl:{}", flows.display()))
        .output()
        .unwrap();
    support::show(&out);
    assert!(out.status.success(), "sniffer failed");
    // Every packet stored once, and every keyed packet in one flow line.
    let mut client = db.client();
    assert_eq!(support::db_counts(&mut client).rows, packets);
    let in_flows: u64 = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["fwd_packets"].as_u64().unwrap() + v["bwd_packets"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(in_flows, packets - unkeyed);
    server.stop();
}
