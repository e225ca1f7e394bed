//! Flow features, model training and classifiers for netanalyzer.
//!
//! This crate grows with the flow-aggregation issue: a smartcore random
//! forest implementing [`netanalyzer_core::Classifier`], its model file,
//! and CIC-IDS2017 feature extraction. Today it holds the crate's error
//! type so dependants can name it.
#![forbid(unsafe_code)]

use thiserror::Error;

/// Errors of the ml crate.
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
}
