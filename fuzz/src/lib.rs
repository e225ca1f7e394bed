//! Shared code of the netanalyzer fuzz targets.
//!
//! The property checks live in `props.rs`, which the corpus replay test
//! (`netanalyzer-capture/tests/fuzz_corpus.rs`) includes by path, so a
//! corpus file is checked the same way under `cargo test` as under
//! `cargo fuzz run`.

pub mod props;
