use thiserror::Error;

/// Errors of the ml crate. Messages are lowercase and say what to do.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MlError {
    /// A feature vector had the wrong width for the model.
    #[error("feature vector has {got} values, the model expects {expected}")]
    FeatureWidth {
        /// Values given.
        got: usize,
        /// Values the model takes.
        expected: usize,
    },
    // -- model variants --
    /// The model's features are not all computed by the aggregator.
    #[error("model features not computed by this aggregator: {missing:?}; retrain the model on core FEATURES names")]
    FeatureMismatch {
        /// Model feature names absent from core FEATURES.
        missing: Vec<String>,
    },
    /// A model file could not be read or decoded.
    #[error("cannot load model: {0}")]
    ModelFormat(String),
    /// A model file has a format version this build does not read.
    #[error("model format version {got} is not supported (this build reads {supported})")]
    ModelVersion {
        /// Version in the file.
        got: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    // -- dataset variants --
    /// A CSV file could not be parsed.
    #[error("{path}: {msg}")]
    Csv {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// A data set is unusable for training or evaluation.
    #[error("bad data set: {0}")]
    Dataset(String),
    // -- forest variants --
    /// Training failed.
    #[error("training failed: {0}")]
    Train(String),
    // -- eval variants --
    // -- flow variants --
    // -- alert variants --
}
