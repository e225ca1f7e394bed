//! Binary COPY of packet batches with exactly-once bookkeeping.

use super::partition::{day_of_ts_ns, ensure_partition_days};
use super::pg_err;
use super::rollup::{BatchIdentity, Rollup, RollupStatements};
use crate::wire::SensorStats;
use crate::StoreError;
use netanalyzer_core::{MacAddr, PacketBatch, PacketRecord};
use postgres::error::SqlState;
use postgres::{Client, Statement, Transaction};
use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The columns of `raw_packets`, in table (and COPY) order: `ts` and
/// `ts_ns_rem` (the record's `ts_ns` split into µs and the ns remainder),
/// `sensor_id`, then every other record field under its own name, in
/// [`PacketRecord::FIELD_NAMES`] order, and last `batch_id` (the
/// `ingest_batches.id` of the batch the row came from; schema version 3).
pub const RAW_PACKETS_COLUMNS: [&str; PacketRecord::FIELD_COUNT + 3] = {
    let fields = PacketRecord::FIELD_NAMES;
    let mut out = [""; PacketRecord::FIELD_COUNT + 3];
    out[0] = "ts";
    out[1] = "ts_ns_rem";
    out[2] = "sensor_id";
    // fields[0] is ts_ns, stored as the first two columns.
    let mut i = 1;
    while i < fields.len() {
        out[i + 2] = fields[i];
        i += 1;
    }
    out[PacketRecord::FIELD_COUNT + 2] = "batch_id";
    out
};

/// The PostgreSQL type of each column of [`RAW_PACKETS_COLUMNS`] (what
/// [`encode_row`] writes; its test checks the bytes against the driver's
/// own encoding of these types).
#[cfg(test)]
const COLUMN_TYPES: [postgres::types::Type; 35] = {
    use postgres::types::Type;
    [
        Type::TIMESTAMPTZ, // ts
        Type::INT2,        // ts_ns_rem
        Type::TEXT,        // sensor_id
        Type::TEXT,        // iface
        Type::INT8,        // wire_len
        Type::INT8,        // cap_len
        Type::MACADDR,     // eth_src
        Type::MACADDR,     // eth_dst
        Type::INT4,        // vlan_id
        Type::INT4,        // ether_type
        Type::INT2,        // ip_version
        Type::INET,        // src_ip
        Type::INET,        // dst_ip
        Type::INT2,        // ip_proto
        Type::INT2,        // ttl
        Type::BOOL,        // is_fragment
        Type::INT4,        // src_port
        Type::INT4,        // dst_port
        Type::INT4,        // tcp_flags
        Type::INT8,        // tcp_seq
        Type::INT8,        // tcp_ack
        Type::INT4,        // tcp_window
        Type::INT8,        // payload_len
        Type::INT2,        // icmp_type
        Type::INT2,        // icmp_code
        Type::INT4,        // arp_op
        Type::TEXT,        // dns_qname
        Type::INT4,        // dns_qtype
        Type::BOOL,        // dns_is_response
        Type::TEXT,        // http_method
        Type::TEXT,        // http_host
        Type::TEXT,        // http_path
        Type::TEXT,        // tls_sni
        Type::TEXT,        // protocol
        Type::INT8,        // batch_id
    ]
};

const COPY_SQL: &str = "COPY raw_packets (ts, ts_ns_rem, sensor_id, iface, wire_len, cap_len, \
    eth_src, eth_dst, vlan_id, ether_type, ip_version, src_ip, dst_ip, ip_proto, ttl, \
    is_fragment, src_port, dst_port, tcp_flags, tcp_seq, tcp_ack, tcp_window, payload_len, \
    icmp_type, icmp_code, arp_op, dns_qname, dns_qtype, dns_is_response, http_method, \
    http_host, http_path, tls_sni, protocol, batch_id) FROM STDIN (FORMAT binary)";

/// Records the batch in the ledger and returns its id (no row when the
/// batch was already committed). `xid` defaults to the writing
/// transaction's id (see `docs/schema.md`, "Reading packets exactly once").
const INSERT_BATCH_SQL: &str = "INSERT INTO ingest_batches \
    (sensor_id, stream_id, seq, records, min_ts, max_ts) \
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id";

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
pub(crate) const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// What [`PacketWriter::write_batch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The batch was new: its rows are committed.
    Inserted {
        /// Rows written to `raw_packets`.
        rows: u64,
    },
    /// The batch `(sensor_id, stream_id, seq)` was already committed:
    /// nothing was written.
    Duplicate,
}

/// Writes packet batches to `raw_packets` over one owned connection.
///
/// Remembers which daily partitions exist, so the hot path does not look
/// them up; a partition that is missing (new day, or dropped by retention)
/// is created in its own short transaction before the batch's.
pub struct PacketWriter {
    client: Client,
    known_days: HashSet<i64>,
    missing_days: Vec<i64>,
    copy_stmt: Option<Statement>,
    insert_stmt: Option<Statement>,
    rollup_stmts: Option<RollupStatements>,
    /// The encoded rows of the COPY in progress, reused between batches.
    copy_buf: Vec<u8>,
    /// The rollups of the batch in progress, reused between batches.
    rollup: Rollup,
}

impl std::fmt::Debug for PacketWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketWriter")
            .field("known_days", &self.known_days.len())
            .field("closed", &self.client.is_closed())
            .finish_non_exhaustive()
    }
}

impl PacketWriter {
    /// Wraps a connection to a migrated database (see
    /// [`migrate`](super::migrate)).
    pub fn new(client: Client) -> Self {
        PacketWriter {
            client,
            known_days: HashSet::new(),
            missing_days: Vec::new(),
            copy_stmt: None,
            insert_stmt: None,
            rollup_stmts: None,
            copy_buf: Vec::new(),
            rollup: Rollup::default(),
        }
    }

    /// Writes one batch, exactly once, in one transaction: like
    /// [`write_batch_with_stats`](Self::write_batch_with_stats) with no
    /// sensor statistics (the `sensors` row keeps its stored ones).
    ///
    /// # Errors
    ///
    /// As [`write_batch_with_stats`](Self::write_batch_with_stats).
    pub fn write_batch(&mut self, batch: &PacketBatch) -> Result<WriteOutcome, StoreError> {
        self.write_batch_with_stats(batch, None)
    }

    /// Writes one batch and the statistics its sensor sent with it, exactly
    /// once, in one transaction:
    /// `INSERT INTO ingest_batches ... ON CONFLICT DO NOTHING`; if the row
    /// already existed the transaction is rolled back and the result is
    /// [`WriteOutcome::Duplicate`]; otherwise the records are binary-COPYed
    /// into `raw_packets` with the batch's `sensor_id`, the batch's
    /// rollups are added to `traffic_seconds` and `traffic_talkers`, the
    /// `sensors` row is upserted (with `stats` when given: they replace
    /// the stored ones unless an older batch of the same stream is
    /// committed late), and the transaction commits. When two connections write the same batch at once, the
    /// second blocks on the primary key until the first commits (then it
    /// is a duplicate) or rolls back (then it inserts).
    ///
    /// An `Ok` return means the batch is durable (as durable as the server's
    /// `synchronous_commit`).
    ///
    /// # Errors
    ///
    /// [`StoreError::ColumnOutOfRange`] when `stream_id` or `seq` exceed
    /// `i64::MAX` or the batch has more than `i32::MAX` records;
    /// [`StoreError::Postgres`] when the database fails (nothing of the
    /// batch is committed then; check [`is_closed`](Self::is_closed) to know
    /// whether to reconnect).
    pub fn write_batch_with_stats(
        &mut self,
        batch: &PacketBatch,
        stats: Option<&SensorStats>,
    ) -> Result<WriteOutcome, StoreError> {
        let stream_id =
            i64::try_from(batch.stream_id).map_err(|_| StoreError::ColumnOutOfRange {
                column: "ingest_batches.stream_id",
                value: batch.stream_id,
            })?;
        let seq = i64::try_from(batch.seq).map_err(|_| StoreError::ColumnOutOfRange {
            column: "ingest_batches.seq",
            value: batch.seq,
        })?;
        let count =
            i32::try_from(batch.records.len()).map_err(|_| StoreError::ColumnOutOfRange {
                column: "ingest_batches.records",
                value: batch.records.len() as u64,
            })?;
        let key = BatchKey {
            sensor_id: &batch.sensor_id,
            stream_id,
            seq,
            count,
        };
        check_text_lengths(&batch.sensor_id, &batch.records)?;
        self.with_partitions(&batch.records, |w| {
            w.write_once(&key, &batch.records, stats)
        })
    }

    /// Copies records into `raw_packets` in one transaction with no
    /// `ingest_batches` bookkeeping and no rollups (partitions are still
    /// created as needed). This is the ceiling the ingest path is measured against;
    /// it is not exactly-once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Postgres`] when the database fails (nothing is
    /// committed then).
    pub fn copy_bare(
        &mut self,
        sensor_id: &str,
        records: &[PacketRecord],
    ) -> Result<u64, StoreError> {
        check_text_lengths(sensor_id, records)?;
        let outcome = self.with_partitions(records, |w| {
            let copy = w.copy_statement().map_err(db)?;
            let mut tx = w.client.transaction().map_err(db)?;
            let rows = copy_rows(&mut tx, &copy, sensor_id, None, records, &mut w.copy_buf)?;
            tx.commit().map_err(db)?;
            Ok(WriteOutcome::Inserted { rows })
        })?;
        Ok(match outcome {
            WriteOutcome::Inserted { rows } => rows,
            WriteOutcome::Duplicate => 0,
        })
    }

    /// Whether the connection is closed (the server went away): the writer
    /// is useless then and should be replaced by one on a new connection.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The connection, e.g. for [`maintain`](super::maintain) or a health
    /// check. Do not leave a transaction open on it.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Gives the connection back.
    pub fn into_client(self) -> Client {
        self.client
    }

    /// Makes sure the partitions of `records` exist, runs `op`, and if it
    /// fails because a partition vanished (dropped by retention after we
    /// cached it), forgets the cache and tries once more.
    fn with_partitions<F>(
        &mut self,
        records: &[PacketRecord],
        mut op: F,
    ) -> Result<WriteOutcome, StoreError>
    where
        F: FnMut(&mut Self) -> Result<WriteOutcome, StoreError>,
    {
        for attempt in 0..2 {
            self.ensure_days(records)?;
            match op(self) {
                Ok(outcome) => return Ok(outcome),
                Err(StoreError::Postgres { source, .. })
                    if attempt == 0 && source.code() == Some(&SqlState::CHECK_VIOLATION) =>
                {
                    // "no partition of relation raw_packets found for row"
                    tracing::warn!(error = %source, "partition missing, recreating");
                    self.known_days.clear();
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Creates the partitions of the days of `records` not known to exist.
    fn ensure_days(&mut self, records: &[PacketRecord]) -> Result<(), StoreError> {
        self.missing_days.clear();
        let mut last = None;
        for r in records {
            let day = day_of_ts_ns(r.ts_ns);
            if last == Some(day) {
                continue;
            }
            last = Some(day);
            if !self.known_days.contains(&day) && !self.missing_days.contains(&day) {
                self.missing_days.push(day);
            }
        }
        if self.missing_days.is_empty() {
            return Ok(());
        }
        ensure_partition_days(&mut self.client, &self.missing_days)?;
        self.known_days.extend(self.missing_days.iter().copied());
        Ok(())
    }

    fn copy_statement(&mut self) -> Result<Statement, postgres::Error> {
        if let Some(s) = &self.copy_stmt {
            return Ok(s.clone());
        }
        let s = self.client.prepare(COPY_SQL)?;
        self.copy_stmt = Some(s.clone());
        Ok(s)
    }

    fn insert_statement(&mut self) -> Result<Statement, postgres::Error> {
        if let Some(s) = &self.insert_stmt {
            return Ok(s.clone());
        }
        let s = self.client.prepare(INSERT_BATCH_SQL)?;
        self.insert_stmt = Some(s.clone());
        Ok(s)
    }

    fn rollup_statements(&mut self) -> Result<RollupStatements, postgres::Error> {
        if let Some(s) = &self.rollup_stmts {
            return Ok(s.clone());
        }
        let s = RollupStatements::prepare(&mut self.client)?;
        self.rollup_stmts = Some(s.clone());
        Ok(s)
    }

    fn write_once(
        &mut self,
        key: &BatchKey<'_>,
        records: &[PacketRecord],
        stats: Option<&SensorStats>,
    ) -> Result<WriteOutcome, StoreError> {
        let insert = self.insert_statement().map_err(db)?;
        let copy = self.copy_statement().map_err(db)?;
        let rollup_stmts = self.rollup_statements().map_err(db)?;
        // Computed before the transaction, so it stays short.
        self.rollup.compute(records);
        let mut tx = self.client.transaction().map_err(db)?;
        let (min_ts, max_ts) = ts_range(records);
        let fresh = tx
            .query_opt(
                &insert,
                &[
                    &key.sensor_id,
                    &key.stream_id,
                    &key.seq,
                    &key.count,
                    &min_ts,
                    &max_ts,
                ],
            )
            .map_err(db)?;
        let Some(row) = fresh else {
            tx.rollback().map_err(db)?;
            return Ok(WriteOutcome::Duplicate);
        };
        let batch_id: i64 = row.try_get(0).map_err(db)?;
        let rows = copy_rows(
            &mut tx,
            &copy,
            key.sensor_id,
            Some(batch_id),
            records,
            &mut self.copy_buf,
        )?;
        let id = BatchIdentity {
            sensor_id: key.sensor_id,
            stream_id: key.stream_id,
            seq: key.seq,
        };
        self.rollup.write(&mut tx, &rollup_stmts, &id, stats)?;
        tx.commit().map_err(db)?;
        Ok(WriteOutcome::Inserted { rows })
    }
}

/// The first and last packet time of a batch, to the µs (what `ts` holds),
/// as `ingest_batches.min_ts` / `max_ts`; `None` for an empty batch.
fn ts_range(records: &[PacketRecord]) -> (Option<SystemTime>, Option<SystemTime>) {
    let mut it = records.iter().map(|r| r.ts_ns / 1000);
    let Some(first) = it.next() else {
        return (None, None);
    };
    let (lo, hi) = it.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let at = |us: u64| UNIX_EPOCH + Duration::from_micros(us);
    (Some(at(lo)), Some(at(hi)))
}

/// The `ingest_batches` key of a batch, already converted.
struct BatchKey<'a> {
    sensor_id: &'a str,
    stream_id: i64,
    seq: i64,
    count: i32,
}

/// Bytes of encoded rows gathered before they are handed to the driver:
/// one driver call (and one CopyData message) per chunk instead of one
/// per row.
const COPY_CHUNK: usize = 256 << 10;

/// The binary COPY signature, flags (0) and header extension length (0).
pub(crate) const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Binary-COPYs `records` into `raw_packets` inside `tx`, encoding the
/// rows (PostgreSQL's binary COPY format, the columns of
/// [`RAW_PACKETS_COLUMNS`]) into `buf`, which is reused
/// between batches.
fn copy_rows(
    tx: &mut Transaction<'_>,
    copy: &Statement,
    sensor_id: &str,
    batch_id: Option<i64>,
    records: &[PacketRecord],
    buf: &mut Vec<u8>,
) -> Result<u64, StoreError> {
    let mut w = tx.copy_in(copy).map_err(db)?;
    buf.clear();
    buf.extend_from_slice(COPY_HEADER);
    for r in records {
        encode_row(buf, sensor_id, batch_id, r);
        if buf.len() >= COPY_CHUNK {
            send_chunk(&mut w, buf)?;
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    send_chunk(&mut w, buf)?;
    w.finish().map_err(db)
}

/// What a failed write was doing.
const COPY_CONTEXT: &str = "write raw_packets";

/// A driver error of the write path.
fn db(source: postgres::Error) -> StoreError {
    pg_err(COPY_CONTEXT)(source)
}

/// Hands `buf` to the driver and sends it as one CopyData message.
fn send_chunk(w: &mut postgres::CopyInWriter<'_>, buf: &mut Vec<u8>) -> Result<(), StoreError> {
    send_copy_chunk(w, buf, COPY_CONTEXT, "raw_packets (COPY)")
}

/// Hands `buf` to the driver and sends it as one CopyData message; errors
/// carry `context` (driver errors) or `what` (I/O errors).
pub(crate) fn send_copy_chunk(
    w: &mut postgres::CopyInWriter<'_>,
    buf: &mut Vec<u8>,
    context: &'static str,
    what: &'static str,
) -> Result<(), StoreError> {
    let sent = w.write_all(buf).and_then(|()| w.flush());
    buf.clear();
    sent.map_err(|e| {
        // The writer wraps the driver's error in an io::Error: unwrap it.
        if e.get_ref().is_some_and(|i| i.is::<postgres::Error>()) {
            if let Some(Ok(source)) = e.into_inner().map(|i| i.downcast::<postgres::Error>()) {
                return StoreError::Postgres {
                    context,
                    source: *source,
                };
            }
            unreachable!("checked to be a postgres::Error just above");
        }
        StoreError::Write {
            path: what.into(),
            source: e,
        }
    })
}

/// Number of columns of a row, as the row header says.
const COLUMNS: i16 = RAW_PACKETS_COLUMNS.len() as i16;

/// Appends one row in binary COPY format. Every value is widened to a
/// PostgreSQL type that holds it (no unsigned types there).
fn encode_row(buf: &mut Vec<u8>, sensor_id: &str, batch_id: Option<i64>, r: &PacketRecord) {
    buf.extend_from_slice(&COLUMNS.to_be_bytes());
    // Microseconds since 2000-01-01 and the nanosecond remainder.
    put_i64(buf, (r.ts_ns / 1000) as i64 - PG_EPOCH_OFFSET_US);
    put_i16(buf, (r.ts_ns % 1000) as i16);
    put_text(buf, Some(sensor_id));
    put_text(buf, r.iface.as_deref());
    put_i64(buf, i64::from(r.wire_len));
    put_i64(buf, i64::from(r.cap_len));
    put_mac(buf, r.eth_src);
    put_mac(buf, r.eth_dst);
    opt(buf, r.vlan_id, |b, v| put_i32(b, i32::from(v)));
    opt(buf, r.ether_type, |b, v| put_i32(b, i32::from(v)));
    opt(buf, r.ip_version, |b, v| put_i16(b, i16::from(v)));
    put_inet(buf, r.src_ip);
    put_inet(buf, r.dst_ip);
    opt(buf, r.ip_proto, |b, v| put_i16(b, i16::from(v)));
    opt(buf, r.ttl, |b, v| put_i16(b, i16::from(v)));
    opt(buf, r.is_fragment, put_bool);
    opt(buf, r.src_port, |b, v| put_i32(b, i32::from(v)));
    opt(buf, r.dst_port, |b, v| put_i32(b, i32::from(v)));
    opt(buf, r.tcp_flags, |b, v| put_i32(b, i32::from(v)));
    opt(buf, r.tcp_seq, |b, v| put_i64(b, i64::from(v)));
    opt(buf, r.tcp_ack, |b, v| put_i64(b, i64::from(v)));
    opt(buf, r.tcp_window, |b, v| put_i32(b, i32::from(v)));
    opt(buf, r.payload_len, |b, v| put_i64(b, i64::from(v)));
    opt(buf, r.icmp_type, |b, v| put_i16(b, i16::from(v)));
    opt(buf, r.icmp_code, |b, v| put_i16(b, i16::from(v)));
    opt(buf, r.arp_op, |b, v| put_i32(b, i32::from(v)));
    put_text(buf, r.dns_qname.as_deref());
    opt(buf, r.dns_qtype, |b, v| put_i32(b, i32::from(v)));
    opt(buf, r.dns_is_response, put_bool);
    put_text(buf, r.http_method.as_deref());
    put_text(buf, r.http_host.as_deref());
    put_text(buf, r.http_path.as_deref());
    put_text(buf, r.tls_sni.as_deref());
    put_text(buf, Some(r.protocol.as_str()));
    opt(buf, batch_id, put_i64);
}

/// [`encode_row`] with `batch_id` 1, for the feed decoder's tests.
#[cfg(test)]
pub(crate) fn encode_row_for_test(buf: &mut Vec<u8>, sensor_id: &str, r: &PacketRecord) {
    encode_row(buf, sensor_id, Some(1), r);
}

/// A record with every field set, many at the edge of their range: the
/// fixture of the encoder's and the feed decoder's tests.
#[cfg(test)]
pub(crate) fn full_record_for_test() -> PacketRecord {
    PacketRecord {
        ts_ns: 1_700_000_000_123_456_789,
        iface: Some("eth0".into()),
        wire_len: u32::MAX,
        cap_len: 60,
        eth_src: Some(MacAddr([1, 2, 3, 4, 5, 6])),
        eth_dst: Some(MacAddr([0xff; 6])),
        vlan_id: Some(4095),
        ether_type: Some(0x86dd),
        ip_version: Some(6),
        src_ip: Some("2001:db8::1".parse().unwrap()),
        dst_ip: Some("10.0.0.1".parse().unwrap()),
        ip_proto: Some(255),
        ttl: Some(255),
        is_fragment: Some(true),
        src_port: Some(65535),
        dst_port: Some(0),
        tcp_flags: Some(0x1ff),
        tcp_seq: Some(u32::MAX),
        tcp_ack: Some(1),
        tcp_window: Some(65535),
        payload_len: Some(u32::MAX),
        icmp_type: Some(8),
        icmp_code: Some(0),
        arp_op: Some(2),
        dns_qname: Some("exämple.org".into()),
        dns_qtype: Some(65535),
        dns_is_response: Some(false),
        http_method: Some("GET".into()),
        http_host: Some(String::new()),
        http_path: Some("/x".into()),
        tls_sni: Some("a.b".into()),
        protocol: netanalyzer_core::Protocol::Icmpv6,
    }
}

/// A NULL field: length -1, no bytes.
pub(crate) fn put_null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

pub(crate) fn opt<T>(buf: &mut Vec<u8>, v: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        Some(v) => put(buf, v),
        None => put_null(buf),
    }
}

pub(crate) fn put_i16(buf: &mut Vec<u8>, v: i16) {
    buf.extend_from_slice(&2i32.to_be_bytes());
    buf.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_i32(buf: &mut Vec<u8>, v: i32) {
    buf.extend_from_slice(&4i32.to_be_bytes());
    buf.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&8i32.to_be_bytes());
    buf.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_bool(buf: &mut Vec<u8>, v: bool) {
    buf.extend_from_slice(&1i32.to_be_bytes());
    buf.push(u8::from(v));
}

/// `text`: the UTF-8 bytes. Callers keep strings under `i32::MAX` bytes
/// (checked by [`check_text_lengths`]).
pub(crate) fn put_text(buf: &mut Vec<u8>, v: Option<&str>) {
    let Some(s) = v else {
        return put_null(buf);
    };
    let len = i32::try_from(s.len()).unwrap_or(i32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// `macaddr`: the six octets.
pub(crate) fn put_mac(buf: &mut Vec<u8>, v: Option<MacAddr>) {
    let Some(m) = v else {
        return put_null(buf);
    };
    buf.extend_from_slice(&6i32.to_be_bytes());
    buf.extend_from_slice(&m.octets());
}

/// `inet`: family (2 = IPv4, 3 = IPv6), prefix bits, is_cidr (0),
/// address length, address.
pub(crate) fn put_inet(buf: &mut Vec<u8>, v: Option<IpAddr>) {
    match v {
        None => put_null(buf),
        Some(IpAddr::V4(a)) => {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&[2, 32, 0, 4]);
            buf.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            buf.extend_from_slice(&20i32.to_be_bytes());
            buf.extend_from_slice(&[3, 128, 0, 16]);
            buf.extend_from_slice(&a.octets());
        }
    }
}

/// Refuses a record string PostgreSQL's protocol cannot carry (over
/// `i32::MAX` bytes): [`StoreError::ColumnOutOfRange`] with its length.
fn check_text_lengths(sensor_id: &str, records: &[PacketRecord]) -> Result<(), StoreError> {
    const MAX: usize = i32::MAX as usize;
    if sensor_id.len() > MAX {
        return Err(StoreError::ColumnOutOfRange {
            column: "raw_packets.sensor_id",
            value: sensor_id.len() as u64,
        });
    }
    for r in records {
        for (column, s) in [
            ("raw_packets.iface", r.iface.as_deref()),
            ("raw_packets.dns_qname", r.dns_qname.as_deref()),
            ("raw_packets.http_method", r.http_method.as_deref()),
            ("raw_packets.http_host", r.http_host.as_deref()),
            ("raw_packets.http_path", r.http_path.as_deref()),
            ("raw_packets.tls_sni", r.tls_sni.as_deref()),
        ] {
            if let Some(s) = s.filter(|s| s.len() > MAX) {
                return Err(StoreError::ColumnOutOfRange {
                    column,
                    value: s.len() as u64,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use postgres::types::{IsNull, ToSql};

    /// The driver's encoding of one value of type `ty`.
    fn driver(v: &dyn ToSql, ty: &postgres::types::Type) -> Option<Vec<u8>> {
        let mut b = BytesMut::new();
        match v.to_sql_checked(ty, &mut b).unwrap() {
            IsNull::Yes => None,
            IsNull::No => Some(b.to_vec()),
        }
    }

    /// The fields of one encoded row.
    fn fields(mut row: &[u8]) -> Vec<Option<Vec<u8>>> {
        let n = i16::from_be_bytes([row[0], row[1]]);
        row = &row[2..];
        let mut out = Vec::new();
        for _ in 0..n {
            let len = i32::from_be_bytes(row[..4].try_into().unwrap());
            row = &row[4..];
            if len < 0 {
                out.push(None);
            } else {
                out.push(Some(row[..len as usize].to_vec()));
                row = &row[len as usize..];
            }
        }
        assert!(row.is_empty());
        out
    }

    #[test]
    fn rows_equal_the_driver_encoding() {
        let full = PacketRecord {
            http_path: Some("/'; DROP TABLE x; --".into()),
            ..full_record_for_test()
        };
        for r in [full, PacketRecord::default()] {
            let mut buf = Vec::new();
            encode_row(&mut buf, "s-1", Some(7), &r);
            let ts = (r.ts_ns / 1000) as i64 - PG_EPOCH_OFFSET_US;
            let rem = (r.ts_ns % 1000) as i16;
            let mac = |m: Option<MacAddr>| m.map(|m| m.octets().to_vec());
            let t = &COLUMN_TYPES;
            let want: Vec<Option<Vec<u8>>> = vec![
                driver(&ts, &postgres::types::Type::INT8),
                driver(&rem, &t[1]),
                driver(&"s-1", &t[2]),
                driver(&r.iface.as_deref(), &t[3]),
                driver(&i64::from(r.wire_len), &t[4]),
                driver(&i64::from(r.cap_len), &t[5]),
                mac(r.eth_src),
                mac(r.eth_dst),
                driver(&r.vlan_id.map(i32::from), &t[8]),
                driver(&r.ether_type.map(i32::from), &t[9]),
                driver(&r.ip_version.map(i16::from), &t[10]),
                driver(&r.src_ip, &t[11]),
                driver(&r.dst_ip, &t[12]),
                driver(&r.ip_proto.map(i16::from), &t[13]),
                driver(&r.ttl.map(i16::from), &t[14]),
                driver(&r.is_fragment, &t[15]),
                driver(&r.src_port.map(i32::from), &t[16]),
                driver(&r.dst_port.map(i32::from), &t[17]),
                driver(&r.tcp_flags.map(i32::from), &t[18]),
                driver(&r.tcp_seq.map(i64::from), &t[19]),
                driver(&r.tcp_ack.map(i64::from), &t[20]),
                driver(&r.tcp_window.map(i32::from), &t[21]),
                driver(&r.payload_len.map(i64::from), &t[22]),
                driver(&r.icmp_type.map(i16::from), &t[23]),
                driver(&r.icmp_code.map(i16::from), &t[24]),
                driver(&r.arp_op.map(i32::from), &t[25]),
                driver(&r.dns_qname.as_deref(), &t[26]),
                driver(&r.dns_qtype.map(i32::from), &t[27]),
                driver(&r.dns_is_response, &t[28]),
                driver(&r.http_method.as_deref(), &t[29]),
                driver(&r.http_host.as_deref(), &t[30]),
                driver(&r.http_path.as_deref(), &t[31]),
                driver(&r.tls_sni.as_deref(), &t[32]),
                driver(&r.protocol.as_str(), &t[33]),
                driver(&7i64, &t[34]),
            ];
            assert_eq!(want.len(), RAW_PACKETS_COLUMNS.len());
            assert_eq!(fields(&buf), want, "{r:?}");
        }
    }

    #[test]
    fn header_is_the_binary_copy_signature() {
        assert_eq!(&COPY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(COPY_HEADER.len(), 19);
    }
}
