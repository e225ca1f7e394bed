//! The flattened forest gives exactly smartcore's predictions, and its
//! confidence is the share of trees voting for the winner.

use netanalyzer_ml::dataset::{load_cic_csv, Dataset, LabelMap};
use netanalyzer_ml::forest::{train_smartcore, FlatForest, ForestParams};
use smartcore::linalg::basic::matrix::DenseMatrix;

mod support;

fn synthetic(n: usize) -> Dataset {
    // Three classes on two noisy features plus a useless one.
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut s: u64 = 12345;
    let mut rnd = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as f64 / (1u64 << 31) as f64
    };
    for i in 0..n {
        let c = (i % 3) as u32;
        x.push(f64::from(c) * 10.0 + rnd() * 12.0);
        x.push(rnd() * 5.0 + if c == 2 { 3.0 } else { 0.0 });
        x.push(rnd());
        y.push(c);
    }
    Dataset {
        feature_names: vec![
            "flow_duration".into(),
            "fwd_packets".into(),
            "protocol".into(),
        ],
        class_names: vec!["Normal".into(), "DoS".into(), "DDoS".into()],
        x,
        y,
        ts: vec![0; n],
        original_labels: vec!["x".into(); n],
    }
}

fn check_exact(ds: &Dataset, p: &ForestParams) {
    let sc = train_smartcore(ds, p, &mut |_, _| {}).unwrap();
    let flat = FlatForest::from_smartcore(&sc, ds.width(), ds.class_names.len()).unwrap();
    flat.validate().unwrap();
    assert_eq!(flat.n_trees(), usize::from(p.n_trees));
    let m = DenseMatrix::new(ds.rows(), ds.width(), ds.x.clone(), false).unwrap();
    let want: Vec<u32> = sc.predict(&m).unwrap();
    let mut batch = Vec::new();
    flat.predict_batch(&ds.x, ds.width(), &mut batch);
    assert_eq!(batch.len(), ds.rows());
    for i in 0..ds.rows() {
        let p1 = flat.predict(ds.row(i));
        assert_eq!(p1.class as u32, want[i], "row {i}");
        assert_eq!(batch[i], p1, "row {i}");
        let votes = flat.tree_votes(ds.row(i));
        let n = votes.iter().filter(|&&v| v as usize == p1.class).count();
        assert!((p1.confidence - n as f64 / votes.len() as f64).abs() < 1e-12);
    }
}

#[test]
fn flat_equals_smartcore_synthetic() {
    let ds = synthetic(900);
    check_exact(
        &ds,
        &ForestParams {
            n_trees: 9,
            max_depth: Some(6),
            ..Default::default()
        },
    );
    check_exact(
        &ds,
        &ForestParams {
            n_trees: 4,
            max_depth: None,
            balance_classes: false,
            ..Default::default()
        },
    );
}

/// Every row of the real CIC file (train and test part).
#[test]
fn flat_equals_smartcore_on_cic() {
    let Some(p) = support::shared_mldata("cicids2017_improved_train.csv") else {
        return;
    };
    let ds = load_cic_csv(&[p], LabelMap::Coarse, &mut |_| {}).unwrap();
    let (train, _) = ds.time_split(0.3);
    let params = ForestParams {
        n_trees: 8,
        ..Default::default()
    };
    let sc = train_smartcore(&train, &params, &mut |_, _| {}).unwrap();
    let flat = FlatForest::from_smartcore(&sc, ds.width(), ds.class_names.len()).unwrap();
    flat.validate().unwrap();
    let m = DenseMatrix::new(ds.rows(), ds.width(), ds.x.clone(), false).unwrap();
    let want: Vec<u32> = sc.predict(&m).unwrap();
    let mut got = Vec::new();
    flat.predict_batch(&ds.x, ds.width(), &mut got);
    let diff = (0..ds.rows())
        .filter(|&i| got[i].class as u32 != want[i])
        .count();
    assert_eq!(diff, 0, "{diff} of {} rows differ", ds.rows());
    for i in (0..ds.rows()).step_by(97) {
        assert_eq!(flat.predict(ds.row(i)), got[i]);
    }
}
