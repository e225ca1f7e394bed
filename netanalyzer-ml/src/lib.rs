//! Flow aggregation, flow features, classifiers and alerts for netanalyzer.
//!
//! Pure library code: no sockets, no database, no clock. Time comes from
//! packet timestamps only, so replaying a capture gives identical flows.
//!
//! - [`flow`]: the bidirectional flow table ([`flow::FlowAggregator`],
//!   a [`netanalyzer_core::Aggregator`]) and the CICFlowMeter features.
//! - [`dataset`]: labelled feature tables from CIC CSVs (all three column
//!   layouts) or from flows, coarse class mapping, time-based splits.
//! - [`forest`] + [`model`]: a smartcore random forest with per-tree votes,
//!   its flattened inference form and the model file.
//! - [`eval`]: precision, recall, F1, benign false-positive rate,
//!   confusion matrix.
//! - [`alert`]: folds classified flows into deduplicated alerts.
#![forbid(unsafe_code)]

pub mod alert;
pub mod dataset;
mod error;
pub mod eval;
pub mod flow;
pub mod forest;
pub mod model;

pub use error::MlError;
