//! The model file: round trip, integrity, feature binding, Classifier.

use netanalyzer_core::{Classifier, FlowFeatures, FEATURES};
use netanalyzer_ml::dataset::Dataset;
use netanalyzer_ml::forest::{train_forest, ForestParams};
use netanalyzer_ml::model::{default_model, Model, TrainingInfo};
use netanalyzer_ml::MlError;

fn tiny(features: &[&str]) -> Dataset {
    let n = 200;
    let w = features.len();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = (i % 2) as u32;
        for j in 0..w {
            x.push(if j == 0 {
                f64::from(c) * 100.0 + (i % 7) as f64
            } else {
                (i * j % 13) as f64
            });
        }
        y.push(c);
    }
    Dataset {
        feature_names: features.iter().map(|s| s.to_string()).collect(),
        class_names: vec!["Normal".into(), "DoS".into()],
        x,
        y,
        ts: (0..n as i64).collect(),
        original_labels: (0..n)
            .map(|i| if i % 2 == 0 { "BENIGN" } else { "DoS Hulk" }.to_string())
            .collect(),
    }
}

fn model(features: &[&str]) -> Model {
    let ds = tiny(features);
    let p = ForestParams {
        n_trees: 5,
        ..Default::default()
    };
    let f = train_forest(&ds, &p, &mut |_, _| {}).unwrap();
    let info = TrainingInfo {
        description: "tiny".into(),
        ..Default::default()
    };
    Model::new(f, &ds, info, p, None)
}

#[test]
fn round_trip_and_integrity() {
    let m = model(&["fwd_packets", "flow_duration"]);
    let b = m.to_bytes();
    let back = Model::from_bytes(&b).unwrap();
    assert_eq!(back, m);
    assert!(m.version().starts_with("rf-"));
    assert_eq!(m.meta.model_hash.len(), 64);
    assert_eq!(m.meta.training.rows, 200);
    assert_eq!(m.meta.training.data_hash.len(), 64);
    assert!(m.meta.created_at.ends_with('Z') && m.meta.created_at.len() == 20);
    let dir = std::env::temp_dir().join(format!("ml_model_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.model");
    m.save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), m);
    std::fs::remove_dir_all(&dir).ok();
    // Garbage and truncation are refused.
    assert!(matches!(
        Model::from_bytes(b"nope"),
        Err(MlError::ModelFormat(_))
    ));
    assert!(Model::from_bytes(&b[..b.len() / 2]).is_err());
}

#[test]
fn bind_refuses_unknown_features_by_name() {
    let m = model(&["fwd_packets", "dst_port", "src_ip_entropy"]);
    let e = m.bind().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("dst_port") && msg.contains("src_ip_entropy"),
        "{msg}"
    );
    assert!(!msg.contains("fwd_packets"), "{msg}");
    match e {
        MlError::FeatureMismatch { missing } => assert_eq!(missing, ["dst_port", "src_ip_entropy"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn predict_flow_matches_classifier() {
    let m = model(&["fwd_packets", "flow_duration"]);
    let b = m.bind().unwrap();
    let mut f = FlowFeatures::default();
    for (v, want) in [(5.0, "Normal"), (105.0, "DoS")] {
        f.0[2] = v; // fwd_packets is core index 2
        let p = m.predict_flow(&b, &f);
        assert_eq!(m.class_name(p.class), want);
        assert!(p.confidence > 0.5 && p.confidence <= 1.0);
        let q = Classifier::predict(&m, &[v, 0.0]).unwrap();
        assert_eq!(p, q);
    }
    // NaN is cleaned, wrong width refused.
    assert!(Classifier::predict(&m, &[f64::NAN, f64::INFINITY]).is_ok());
    assert!(matches!(
        Classifier::predict(&m, &[1.0]),
        Err(MlError::FeatureWidth {
            got: 1,
            expected: 2
        })
    ));
    let mut out = Vec::new();
    m.predict_batch(&[vec![5.0, 0.0], vec![105.0, 0.0]], &mut out)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].class, out[1].class), (0, 1));
}

#[test]
fn default_model_loads_and_binds() {
    let m = default_model().unwrap();
    let b = m.bind().unwrap();
    assert!(m
        .meta
        .feature_names
        .iter()
        .all(|n| FEATURES.iter().any(|f| f.name == n)));
    let p = m.predict_flow(&b, &FlowFeatures::default());
    assert!(p.class < m.meta.class_names.len());
    assert!(m.to_bytes().len() < 2 << 20);
}
