//! [`PacketFeed`]: exactly-once reading of committed packet batches.

use super::decode::RowDecoder;
use super::Position;
use crate::pg::partition::civil_from_days;
use crate::pg::RAW_PACKETS_COLUMNS;
use crate::StoreError;
use netanalyzer_core::PacketRecord;
use postgres::{Client, IsolationLevel};
use std::fmt::Write as _;
use std::io::BufRead;

/// The final ledger rows after a position, in read order. `xid` is below
/// the oldest transaction still running (`pg_snapshot_xmin`), so every
/// row it returns is committed and no other row can ever appear before
/// it.
const LEDGER_SQL: &str = "SELECT id, xid::text, records, \
    (extract(epoch FROM min_ts) * 1000000)::int8, \
    (extract(epoch FROM max_ts) * 1000000)::int8 \
    FROM ingest_batches \
    WHERE (xid, id) > ($1::text::xid8, $2::int8) \
      AND xid < pg_snapshot_xmin(pg_current_snapshot()) \
    ORDER BY xid, id LIMIT $3";

/// Everything committed after a position (final or not): for the lag.
const LAG_SQL: &str = "SELECT count(*), coalesce(sum(records), 0)::int8, \
    coalesce(extract(epoch FROM clock_timestamp() - min(received_at)), 0)::float8 \
    FROM ingest_batches WHERE (xid, id) > ($1::text::xid8, $2::int8)";

/// Most batches looked at per poll, whatever `max_rows` says.
const MAX_BATCHES_PER_POLL: i64 = 100_000;

/// What one [`PacketFeed::poll`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Batches consumed (0: nothing new is final yet).
    pub batches: u64,
    /// Rows passed to the callback.
    pub rows: u64,
    /// The feed's position after the poll (unchanged when `batches` is 0).
    pub position: Position,
}

/// How far a consumer is behind the ingest ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lag {
    /// Rows of the batches committed after the position.
    pub rows: u64,
    /// Those batches.
    pub batches: u64,
    /// Seconds since the oldest of them was received (0 when there is
    /// none).
    pub seconds: f64,
}

/// One ledger row to read.
#[derive(Debug, Clone, Copy)]
struct LedgerRow {
    id: i64,
    xid: u64,
    records: i64,
    /// `min_ts`, `max_ts` in µs since the Unix epoch (`None` for batches
    /// written before schema version 3).
    range: Option<(i64, i64)>,
}

/// Reads the packets of committed batches, exactly once, in ledger order.
///
/// Holds the position and the reused buffers (the record, the COPY
/// decoder's pending bytes, the SQL text); the connection is passed to
/// each call, so it can be shared with [`commit`](super::commit).
#[derive(Debug)]
pub struct PacketFeed {
    position: Position,
    decoder: RowDecoder,
    pending: Vec<u8>,
    batches: Vec<LedgerRow>,
    sql: String,
}

impl PacketFeed {
    /// A feed that reads the batches after `position` (the default
    /// position reads from the start of the ledger).
    pub fn new(position: Position) -> PacketFeed {
        PacketFeed {
            position,
            decoder: RowDecoder::default(),
            pending: Vec::new(),
            batches: Vec::new(),
            sql: String::new(),
        }
    }

    /// The position after the last batch read.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Reads the batches committed after the position whose transactions
    /// are all finished (`xid` below the snapshot's `xmin`, so a batch
    /// committed late by a concurrent writer is never skipped), whole
    /// batches up to about `max_rows` rows (at least one batch), in
    /// `(xid, id)` order, rows in `ts` order within a batch, through one
    /// `COPY (...) TO STDOUT (FORMAT binary)`. Calls `f(sensor_id, record)`
    /// for each row, reusing one record, then advances the position.
    ///
    /// Runs in one read-only REPEATABLE READ transaction. Batches written
    /// before schema version 3 (no `batch_id` on their rows) count as read
    /// with no rows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Postgres`] when the database fails,
    /// [`StoreError::CopyDecode`] when a row cannot be decoded; the
    /// position is unchanged then (rows already passed to `f` will be
    /// passed again by the next poll: discard what `f` built).
    pub fn poll(
        &mut self,
        c: &mut Client,
        max_rows: u64,
        f: &mut dyn FnMut(&str, &PacketRecord),
    ) -> Result<PollOutcome, StoreError> {
        let mut tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg("feed: begin"))?;
        // The COPY sorts up to max_rows rows: keep it in memory.
        tx.batch_execute("SET LOCAL work_mem = '64MB'")
            .map_err(pg("feed: set work_mem"))?;
        let limit = i64::try_from(max_rows)
            .unwrap_or(i64::MAX)
            .clamp(1, MAX_BATCHES_PER_POLL);
        let rows = tx
            .query(
                LEDGER_SQL,
                &[
                    &self.position.xid.to_string(),
                    &self.position.batch_id,
                    &limit,
                ],
            )
            .map_err(pg("feed: read ingest_batches"))?;
        self.batches.clear();
        let mut total: u64 = 0;
        for row in &rows {
            if !self.batches.is_empty() && total >= max_rows {
                break;
            }
            let xid: &str = row.try_get(1).map_err(pg("feed: read ingest_batches"))?;
            let xid = xid
                .parse::<u64>()
                .map_err(|_| bad_ledger(format!("xid {xid:?}")))?;
            let records: i32 = row.try_get(2).map_err(pg("feed: read ingest_batches"))?;
            let min: Option<i64> = row.try_get(3).map_err(pg("feed: read ingest_batches"))?;
            let max: Option<i64> = row.try_get(4).map_err(pg("feed: read ingest_batches"))?;
            self.batches.push(LedgerRow {
                id: row.try_get(0).map_err(pg("feed: read ingest_batches"))?,
                xid,
                records: i64::from(records),
                range: min.zip(max),
            });
            total += u64::try_from(records).unwrap_or(0);
        }
        let Some(last) = self.batches.last().copied() else {
            tx.commit().map_err(pg("feed: commit"))?;
            return Ok(PollOutcome {
                batches: 0,
                rows: 0,
                position: self.position,
            });
        };
        let range = self
            .batches
            .iter()
            .filter(|b| b.records > 0)
            .filter_map(|b| b.range)
            .reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)));
        self.decoder.reset();
        if let Some((lo, hi)) = range {
            self.build_copy_sql(lo, hi);
            let mut reader = tx.copy_out(self.sql.as_str()).map_err(pg("feed: copy"))?;
            self.pending.clear();
            loop {
                let chunk = reader.fill_buf().map_err(io_err)?;
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len();
                if self.pending.is_empty() {
                    let used = self.decoder.feed(chunk, f)?;
                    self.pending.extend_from_slice(&chunk[used..]);
                } else {
                    self.pending.extend_from_slice(chunk);
                    let used = self.decoder.feed(&self.pending, f)?;
                    self.pending.drain(..used);
                }
                reader.consume(n);
            }
            if !self.decoder.finished || !self.pending.is_empty() {
                return Err(StoreError::CopyDecode {
                    source_table: "raw_packets",
                    detail: "the copy stream ended in the middle of a row".into(),
                });
            }
        }
        tx.commit().map_err(pg("feed: commit"))?;
        let rows = self.decoder.rows;
        if rows != total {
            tracing::warn!(
                expected = total,
                read = rows,
                "packet rows missing for their batches (dropped by retention, or written before schema version 3)"
            );
        }
        self.position = Position {
            xid: last.xid,
            batch_id: last.id,
        };
        Ok(PollOutcome {
            batches: self.batches.len() as u64,
            rows,
            position: self.position,
        })
    }

    /// How far the position is behind the ledger: rows and batches
    /// committed after it (final or not) and the seconds since the oldest
    /// of them was received (0 when none).
    ///
    /// # Errors
    ///
    /// [`StoreError::Postgres`] when the query fails.
    pub fn lag(&self, c: &mut Client) -> Result<Lag, StoreError> {
        let row = c
            .query_one(
                LAG_SQL,
                &[&self.position.xid.to_string(), &self.position.batch_id],
            )
            .map_err(pg("feed: lag"))?;
        let batches: i64 = row.try_get(0).map_err(pg("feed: lag"))?;
        let rows: i64 = row.try_get(1).map_err(pg("feed: lag"))?;
        let seconds: f64 = row.try_get(2).map_err(pg("feed: lag"))?;
        Ok(Lag {
            rows: u64::try_from(rows).unwrap_or(0),
            batches: u64::try_from(batches).unwrap_or(0),
            seconds: seconds.max(0.0),
        })
    }

    /// The COPY of the rows of `self.batches`. COPY takes no parameters:
    /// only integers and timestamps formatted here are inlined.
    fn build_copy_sql(&mut self, lo_us: i64, hi_us: i64) {
        let s = &mut self.sql;
        s.clear();
        s.push_str("COPY (SELECT ");
        for (i, col) in RAW_PACKETS_COLUMNS[..super::decode::READ_COLUMNS]
            .iter()
            .enumerate()
        {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str("r.");
            s.push_str(col);
        }
        s.push_str(" FROM raw_packets r JOIN unnest('{");
        for (i, b) in self.batches.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{}", b.id);
        }
        s.push_str(
            "}'::bigint[]) WITH ORDINALITY o(id, ord) ON r.batch_id = o.id WHERE r.ts BETWEEN ",
        );
        push_ts_literal(s, lo_us);
        s.push_str(" AND ");
        push_ts_literal(s, hi_us);
        s.push_str(" ORDER BY o.ord, r.ts, r.ts_ns_rem) TO STDOUT (FORMAT binary)");
    }
}

/// Appends `'YYYY-MM-DD HH:MM:SS.ffffff+00'::timestamptz` for a time in
/// µs since the Unix epoch.
pub(crate) fn push_ts_literal(s: &mut String, unix_us: i64) {
    const US_PER_DAY: i64 = 86_400_000_000;
    let day = unix_us.div_euclid(US_PER_DAY);
    let in_day = unix_us.rem_euclid(US_PER_DAY);
    let (y, m, d) = civil_from_days(day);
    let secs = in_day / 1_000_000;
    let _ = write!(
        s,
        "'{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}+00'::timestamptz",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1_000_000
    );
}

fn pg(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |source| StoreError::Postgres { context, source }
}

fn bad_ledger(detail: String) -> StoreError {
    StoreError::CopyDecode {
        source_table: "ingest_batches",
        detail,
    }
}

/// An error of the COPY reader: the driver's, unwrapped from the
/// `io::Error` it comes in.
fn io_err(e: std::io::Error) -> StoreError {
    if e.get_ref().is_some_and(|i| i.is::<postgres::Error>()) {
        if let Some(Ok(source)) = e.into_inner().map(|i| i.downcast::<postgres::Error>()) {
            return StoreError::Postgres {
                context: "feed: copy",
                source: *source,
            };
        }
        return StoreError::CopyDecode {
            source_table: "raw_packets",
            detail: "copy stream failed".into(),
        };
    }
    StoreError::CopyDecode {
        source_table: "raw_packets",
        detail: format!("copy stream: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_literals() {
        let mut s = String::new();
        push_ts_literal(&mut s, 1_710_028_800_000_000 + 3_723_000_042);
        assert_eq!(s, "'2024-03-10 01:02:03.000042+00'::timestamptz");
        s.clear();
        push_ts_literal(&mut s, -1);
        assert_eq!(s, "'1969-12-31 23:59:59.999999+00'::timestamptz");
    }
}
