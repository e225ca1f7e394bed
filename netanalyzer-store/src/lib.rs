//! Record outputs for netanalyzer (and later the msgpack transport,
//! PostgreSQL sinks and the ingest server).
//!
//! Every output is a [`Sink<PacketRecord>`](netanalyzer_core::Sink):
//!
//! - [`JsonlSink`]: one JSON object per record and line, keys exactly the
//!   [`PacketRecord`](netanalyzer_core::PacketRecord) field names, `null`
//!   for absent fields.
//! - [`CsvSink`]: CSV files in a directory, rotated every
//!   [`CsvOptions::rotate_secs`] of packet time (deterministic on replay).
//! - [`NullSink`]: counts records, writes nothing.
//! - [`Tee`]: fans one stream out to several sinks.
//! - [`OutputSpec`]: the command-line form (`jsonl:PATH`, `jsonl:-`,
//!   `csv:DIR`, `null`) that builds an [`Output`].
//!
//! ```
//! use netanalyzer_core::{PacketRecord, Sink};
//! use netanalyzer_store::{CsvOptions, NullSink, OutputSpec, Tee};
//!
//! let mut out = Tee::new(vec![OutputSpec::Null.build(CsvOptions::default())?]);
//! out.write(&PacketRecord::default())?;
//! out.close()?;
//! assert_eq!(out.sinks()[0].counters().records, 1);
//! # let _ = NullSink::new();
//! # Ok::<(), netanalyzer_store::StoreError>(())
//! ```
//!
//! This crate depends on `netanalyzer-core` only, never on capture.
#![forbid(unsafe_code)]

mod error;
mod output;

pub use error::StoreError;
pub use output::{
    CsvOptions, CsvSink, JsonlSink, NullSink, Output, OutputSpec, SinkCounters, Tee, CSV_COLUMNS,
};
