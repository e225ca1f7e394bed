//! The aggregator's side of PostgreSQL: reading packets exactly once and
//! writing flows, alerts and its checkpoint.
//!
//! - [`PacketFeed`] reads the `raw_packets` of the batches committed after
//!   a [`Position`], through one `COPY (...) TO STDOUT (FORMAT binary)` per
//!   poll, decoded into one reused
//!   [`PacketRecord`](netanalyzer_core::PacketRecord).
//! - [`commit`] writes, in one transaction, the flows (binary COPY into the
//!   daily-partitioned `flows`), the alerts (upserted by `alert_id`, each
//!   announced with `NOTIFY` on [`ALERT_CHANNEL`]) and the consumer's
//!   [`Checkpoint`] (position, serialized state, counters).
//! - [`load_checkpoint`] reads it back at start.
//!
//! # Architecture invariant
//!
//! A batch is read only once its writing transaction, and every older
//! transaction, has finished: the feed reads ledger rows whose `xid` is
//! below the snapshot's `xmin`, in `(xid, id)` order. No row can appear
//! below that horizon later, so a position never passes a batch that is
//! still to come. The position is saved in the same transaction as the
//! flows built from the batches before it: a restart neither skips nor
//! counts twice. `docs/schema.md` ("Reading packets exactly once") has the
//! argument in full.
//!
//! ```no_run
//! use netanalyzer_store::flowdb::{self, PacketFeed, Position};
//! # fn main() -> Result<(), netanalyzer_store::StoreError> {
//! let mut c = netanalyzer_store::pg::connect("host=/run/postgresql dbname=netanalyzer")?;
//! let start = flowdb::load_checkpoint(&mut c, "default")?
//!     .map_or(Position::default(), |cp| cp.position);
//! let mut feed = PacketFeed::new(start);
//! let got = feed.poll(&mut c, 100_000, &mut |sensor, rec| {
//!     let _ = (sensor, rec.ts_ns);
//! })?;
//! println!("{} rows in {} batches", got.rows, got.batches);
//! # Ok(()) }
//! ```

mod commit;
mod decode;
pub use decode::decode_copy_stream;
mod feed;

pub use commit::{
    alert_json, alert_payload, commit, ensure_flow_partitions, load_checkpoint, lock_consumer,
    CommitOutcome, FlowCommit, ALERT_JSON_SOURCES, FLOWS_COLUMNS,
};
pub use feed::{Lag, PacketFeed, PollOutcome};

use serde::{Deserialize, Serialize};

/// The `NOTIFY` channel on which [`commit`] announces new and updated
/// alerts. The payload is [`alert_payload`]'s compact JSON.
pub const ALERT_CHANNEL: &str = "netanalyzer_alerts";

/// How far a consumer has read the ingest ledger: every batch whose
/// `(xid, id)` is at or below `(xid, batch_id)` was consumed. The default,
/// `(0, 0)`, is before every batch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// The writing transaction's id (`ingest_batches.xid`, a 64-bit
    /// `xid8`) of the last batch consumed.
    pub xid: u64,
    /// Its ledger id (`ingest_batches.id`).
    pub batch_id: i64,
}

/// What a consumer saved with its last commit (see [`load_checkpoint`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Everything up to here was consumed.
    pub position: Position,
    /// The consumer's serialized state (open flows, alert windows), opaque
    /// to the store.
    pub state: Vec<u8>,
    /// Packet rows consumed in total.
    pub rows: u64,
    /// Batches consumed in total.
    pub batches: u64,
}
