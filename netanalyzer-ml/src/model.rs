//! The model file: a [`FlatForest`] plus what it takes, what it says and
//! where it came from, stored with rmp-serde.
//!
//! ```no_run
//! use netanalyzer_core::FlowFeatures;
//! let model = netanalyzer_ml::model::default_model()?;
//! let binding = model.bind()?; // refuses features the aggregator lacks
//! let p = model.predict_flow(&binding, &FlowFeatures::default());
//! println!("{} ({:.2})", model.class_name(p.class), p.confidence);
//! # Ok::<(), netanalyzer_ml::MlError>(())
//! ```

use crate::dataset::{clean, hex, Dataset};
use crate::eval::EvalReport;
use crate::forest::{FlatForest, ForestParams};
use crate::MlError;
use netanalyzer_core::{feature_index, Classifier, FlowFeatures, Prediction, FEATURE_COUNT};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The model file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Where a model's training data came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Free text: what the data is and how the model was trained.
    pub description: String,
    /// Input files (or scenario names).
    pub sources: Vec<String>,
    /// [`Dataset::hash`] of the training rows.
    pub data_hash: String,
    /// Training rows (before class balancing).
    pub rows: u64,
    /// Training rows per class.
    pub class_counts: Vec<(String, u64)>,
}

/// Everything about a model but its trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// [`FORMAT_VERSION`] of the file.
    pub format_version: u32,
    /// `rf-` + the first 12 hex digits of `model_hash`.
    pub model_version: String,
    /// sha256 (hex) of the forest's rmp-serde bytes.
    pub model_hash: String,
    /// Input features, in order (core [`netanalyzer_core::FEATURES`] names).
    pub feature_names: Vec<String>,
    /// Output classes, indexed by [`Prediction::class`].
    pub class_names: Vec<String>,
    /// The training data.
    pub training: TrainingInfo,
    /// Evaluation on held-out data, if any.
    pub metrics: Option<EvalReport>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Training parameters.
    pub params: ForestParams,
}

/// A trained classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Metadata.
    pub meta: ModelMeta,
    forest: FlatForest,
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    meta: ModelMeta,
    forest: FlatForest,
}

/// A model's features mapped onto core feature positions: made by
/// [`Model::bind`], used by [`Model::predict_flow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureBinding {
    /// For each model feature, its index in [`FlowFeatures`].
    pub core_index: Vec<usize>,
}

/// The current UTC time in RFC 3339 (`2024-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn forest_hash(f: &FlatForest) -> String {
    let bytes = rmp_serde::to_vec(f).unwrap_or_default();
    hex(&Sha256::digest(&bytes))
}

impl Model {
    /// Wraps a trained forest. Fills `model_version`, `model_hash`,
    /// `created_at` and `format_version`; `training` describes `train`.
    pub fn new(
        forest: FlatForest,
        train: &Dataset,
        mut training: TrainingInfo,
        params: ForestParams,
        metrics: Option<EvalReport>,
    ) -> Model {
        let model_hash = forest_hash(&forest);
        training.data_hash = train.hash();
        training.rows = train.rows() as u64;
        training.class_counts = train.class_counts();
        Model {
            meta: ModelMeta {
                format_version: FORMAT_VERSION,
                model_version: format!("rf-{}", &model_hash[..12]),
                model_hash,
                feature_names: train.feature_names.clone(),
                class_names: train.class_names.clone(),
                training,
                metrics,
                created_at: now_rfc3339(),
                params,
            },
            forest,
        }
    }

    /// The flattened forest.
    pub fn forest(&self) -> &FlatForest {
        &self.forest
    }

    /// Reads a model file.
    ///
    /// # Errors
    /// [`MlError::Io`] when unreadable, else as [`Model::from_bytes`].
    pub fn load(path: &Path) -> Result<Model, MlError> {
        let b = std::fs::read(path).map_err(|e| MlError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Model::from_bytes(&b)
    }

    /// Writes the model file.
    ///
    /// # Errors
    /// [`MlError::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), MlError> {
        std::fs::write(path, self.to_bytes()).map_err(|e| MlError::Io {
            path: path.display().to_string(),
            source: e,
        })
    }

    /// Decodes a model file and checks it: format version, hash, and that
    /// the forest fits the feature and class lists.
    ///
    /// # Errors
    /// [`MlError::ModelFormat`] for bytes that are not a valid model,
    /// [`MlError::ModelVersion`] for another format version.
    pub fn from_bytes(b: &[u8]) -> Result<Model, MlError> {
        let f: ModelFile =
            rmp_serde::from_slice(b).map_err(|e| MlError::ModelFormat(e.to_string()))?;
        if f.meta.format_version != FORMAT_VERSION {
            return Err(MlError::ModelVersion {
                got: f.meta.format_version,
                supported: FORMAT_VERSION,
            });
        }
        if forest_hash(&f.forest) != f.meta.model_hash {
            return Err(MlError::ModelFormat(
                "forest hash does not match model_hash (corrupt file?)".into(),
            ));
        }
        f.forest
            .validate()
            .map_err(|e| MlError::ModelFormat(format!("malformed forest: {e}")))?;
        if f.forest.n_features() != f.meta.feature_names.len()
            || f.forest.n_classes() != f.meta.class_names.len()
        {
            return Err(MlError::ModelFormat(
                "forest does not match the feature or class lists".into(),
            ));
        }
        Ok(Model {
            meta: f.meta,
            forest: f.forest,
        })
    }

    /// Encodes the model file (rmp-serde, named fields).
    pub fn to_bytes(&self) -> Vec<u8> {
        let f = ModelFile {
            meta: self.meta.clone(),
            forest: self.forest.clone(),
        };
        // Serialising plain structs into a Vec cannot fail.
        rmp_serde::to_vec_named(&f).unwrap_or_default()
    }

    /// Maps the model's features onto the aggregator's (core FEATURES).
    ///
    /// # Errors
    /// [`MlError::FeatureMismatch`] naming every model feature the
    /// aggregator does not compute.
    pub fn bind(&self) -> Result<FeatureBinding, MlError> {
        let mut core_index = Vec::with_capacity(self.meta.feature_names.len());
        let mut missing = Vec::new();
        for n in &self.meta.feature_names {
            match feature_index(n) {
                Some(i) => core_index.push(i),
                None => missing.push(n.clone()),
            }
        }
        if missing.is_empty() {
            Ok(FeatureBinding { core_index })
        } else {
            Err(MlError::FeatureMismatch { missing })
        }
    }

    /// Classifies one flow's features through a binding from
    /// [`Model::bind`] (of this model).
    pub fn predict_flow(&self, b: &FeatureBinding, f: &FlowFeatures) -> Prediction {
        let mut row = [0.0f64; FEATURE_COUNT];
        let n = b.core_index.len().min(FEATURE_COUNT);
        for (dst, &i) in row[..n].iter_mut().zip(&b.core_index) {
            *dst = clean(f.0.get(i).copied().unwrap_or(0.0));
        }
        self.forest.predict(&row[..n])
    }

    /// The model version (`rf-` + hash prefix).
    pub fn version(&self) -> &str {
        &self.meta.model_version
    }

    /// The name of a class index (`"?"` when out of range).
    pub fn class_name(&self, class: usize) -> &str {
        self.meta.class_names.get(class).map_or("?", String::as_str)
    }
}

impl Classifier for Model {
    type Error = MlError;

    fn feature_names(&self) -> &[String] {
        &self.meta.feature_names
    }

    fn class_names(&self) -> &[String] {
        &self.meta.class_names
    }

    fn predict(&self, features: &[f64]) -> Result<Prediction, MlError> {
        let expected = self.meta.feature_names.len();
        if features.len() != expected {
            return Err(MlError::FeatureWidth {
                got: features.len(),
                expected,
            });
        }
        if features.iter().all(|v| v.is_finite()) {
            Ok(self.forest.predict(features))
        } else {
            let row: Vec<f64> = features.iter().map(|&v| clean(v)).collect();
            Ok(self.forest.predict(&row))
        }
    }

    fn predict_batch(&self, rows: &[Vec<f64>], out: &mut Vec<Prediction>) -> Result<(), MlError> {
        let w = self.meta.feature_names.len();
        let mut flat = Vec::with_capacity(rows.len() * w);
        for r in rows {
            if r.len() != w {
                return Err(MlError::FeatureWidth {
                    got: r.len(),
                    expected: w,
                });
            }
            flat.extend(r.iter().map(|&v| clean(v)));
        }
        self.forest.predict_batch(&flat, w, out);
        Ok(())
    }
}

/// The model that ships with netanalyzer (`models/default.model`, see
/// docs/ml.md for what it was trained on and how to retrain it).
///
/// # Errors
/// As [`Model::from_bytes`] (only if the embedded file is broken).
pub fn default_model() -> Result<Model, MlError> {
    Model::from_bytes(include_bytes!("../models/default.model"))
}
