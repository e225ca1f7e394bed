//! Storage and transport for netanalyzer: record outputs, the msgpack
//! batch transport, the PostgreSQL store and the ingest server.
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
//! The modules below carry batches from a sensor to PostgreSQL:
//!
//! - [`wire`]: the versioned msgpack (or JSON) batch envelope, optionally
//!   zstd-compressed; encoder and validating decoder.
//! - [`transport`]: the sensor side, an HTTP sink with batching, retries
//!   and a bounded on-disk spool.
//! - [`pg`]: the PostgreSQL side, migrations, partitions, binary COPY with
//!   exactly-once batch bookkeeping, and an embedded cluster manager.
//! - [`server`]: the ingest server (axum) that decodes, authenticates and
//!   hands batches to writer threads.
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
pub mod flowdb;
mod output;
pub mod pg;
pub mod server;
pub mod transport;
pub mod wire;

pub use error::StoreError;
pub use output::{
    CsvOptions, CsvSink, JsonlSink, NullSink, Output, OutputSpec, SinkCounters, Tee, CSV_COLUMNS,
};
