//! The PostgreSQL store: migrations, partitions, binary COPY, embedded cluster.
//!
//! - [`connect`] opens a connection (libpq `key=value` string or
//!   `postgres://` URL, no TLS).
//! - [`migrate`] applies the versioned migrations embedded in the crate
//!   (`netanalyzer-store/migrations/*.sql`), each in its own transaction
//!   under an advisory lock, so several servers may start at once.
//! - [`ensure_partitions`] and [`maintain`] manage the daily partitions of
//!   `raw_packets` (`raw_packets_pYYYYMMDD`): created ahead of time, and
//!   dropped after the retention period of a [`PartitionPlan`]. Every
//!   partition has a BRIN index on `ts`; the btree indexes on `src_ip`,
//!   `dst_ip` and `(protocol, ts)` are built by [`maintain`] once a day is
//!   over ([`CLOSED_PARTITION_INDEXES`]), so the live partition's COPY stays
//!   near the no-index rate.
//! - [`PacketWriter`] writes one [`PacketBatch`](netanalyzer_core::PacketBatch)
//!   per transaction with binary COPY and records `(sensor, stream, seq)` in
//!   `ingest_batches` in the same transaction: a batch seen again writes
//!   nothing and reports [`WriteOutcome::Duplicate`]. In the same
//!   transaction it adds the batch's per-second traffic and top talkers to
//!   `traffic_seconds` / `traffic_talkers` and upserts its `sensors` row
//!   ([`PacketWriter::write_batch_with_stats`]), so those count each batch
//!   exactly once too.
//! - [`EmbeddedPostgres`] runs a private cluster from the PostgreSQL
//!   binaries installed on the machine (Unix socket only, in the data
//!   directory), adopting one left running by a killed process.
//! - [`TestDb`] gives tests a throwaway database.
//!
//! The schema is described in `docs/schema.md`.
//!
//! # Architecture invariant
//!
//! A batch's rows and its `ingest_batches` row are committed together or
//! not at all: that is what makes retries exactly-once.

mod embedded;
mod migrate;
pub(crate) mod partition;
mod rollup;
mod testdb;
pub(crate) mod writer;

pub use embedded::{default_data_dir, EmbeddedOptions, EmbeddedPostgres};
pub use migrate::{migrate, schema_version, MIGRATIONS};
pub use partition::{
    day_of_ts_ns, ensure_partitions, flow_partition_name, index_closed_partitions, maintain,
    maintain_flows, partition_name, FlowMaintenance, MaintenanceReport, PartitionPlan,
    CLOSED_PARTITION_INDEXES,
};
pub use rollup::TOP_TALKERS;
pub use testdb::TestDb;
pub use writer::{PacketWriter, WriteOutcome, RAW_PACKETS_COLUMNS};

use crate::StoreError;

/// Opens a connection to PostgreSQL without TLS.
///
/// `conninfo` is a libpq `key=value` string (`host=/run/pg port=5432
/// user=postgres dbname=netanalyzer`) or a `postgres://` URL. A `host` that
/// starts with `/` is a Unix socket directory.
///
/// # Errors
///
/// [`StoreError::Postgres`] when the string cannot be parsed or the server
/// cannot be reached or refuses the login.
pub fn connect(conninfo: &str) -> Result<postgres::Client, StoreError> {
    postgres::Client::connect(conninfo, postgres::NoTls).map_err(|source| StoreError::Postgres {
        context: "connect",
        source,
    })
}

/// Wraps a driver error with what was being done.
pub(crate) fn pg_err(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |source| StoreError::Postgres { context, source }
}
