//! Properties the ml decoders keep on any input, shared by the fuzz
//! targets (`fuzz/fuzz_targets/{model_decode,cic_csv}.rs`) and the corpus
//! replay in `netanalyzer-ml/tests/decode.rs`.

use netanalyzer_ml::dataset::{read_cic_csv, LabelMap};
use netanalyzer_ml::model::Model;

/// A model file either is refused with an error or decodes into a model
/// that predicts on any row without panicking or looping, and re-encodes
/// to bytes that decode to the same model.
pub fn check_model_decode(input: &[u8]) {
    let Ok(model) = Model::from_bytes(input) else {
        return;
    };
    let width = model.meta.feature_names.len();
    for fill in [0.0, -1.0, 1e12, f64::MAX] {
        let row = vec![fill; width];
        let p = model.forest().predict(&row);
        assert!(p.class < model.meta.class_names.len());
        assert!((0.0..=1.0).contains(&p.confidence));
    }
    let again = Model::from_bytes(&model.to_bytes()).expect("a decoded model re-encodes");
    assert_eq!(again.meta, model.meta);
    // A model may name features the aggregator lacks: bind refuses it
    // with an error, never a panic.
    let _ = model.bind();
}

/// A CIC CSV either is refused with an error or gives a consistent
/// dataset: a full matrix of finite values and a class for every row.
pub fn check_cic_csv(input: &[u8]) {
    for map in [LabelMap::Coarse, LabelMap::Original] {
        let Ok(ds) = read_cic_csv(vec![("fuzz".to_string(), input)], map, &mut |_| {}) else {
            continue;
        };
        let rows = ds.rows();
        assert!(rows > 0);
        assert_eq!(ds.x.len(), rows * ds.width());
        assert_eq!(ds.y.len(), rows);
        assert_eq!(ds.ts.len(), rows);
        assert!(ds.x.iter().all(|v| v.is_finite()), "a non-finite value");
        assert!(ds.y.iter().all(|&c| (c as usize) < ds.class_names.len()));
    }
}
