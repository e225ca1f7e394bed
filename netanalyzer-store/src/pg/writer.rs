//! Binary COPY of packet batches with exactly-once bookkeeping.

use super::partition::{day_of_ts_ns, ensure_partition_days};
use super::pg_err;
use crate::StoreError;
use bytes::{BufMut, BytesMut};
use netanalyzer_core::{MacAddr, PacketBatch, PacketRecord};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, Statement, Transaction};
use std::collections::HashSet;
use std::error::Error;

/// The columns of `raw_packets`, in table (and COPY) order.
pub const RAW_PACKETS_COLUMNS: [&str; 34] = [
    "ts",
    "ts_ns_rem",
    "sensor_id",
    "iface",
    "wire_len",
    "cap_len",
    "eth_src",
    "eth_dst",
    "vlan_id",
    "ether_type",
    "ip_version",
    "src_ip",
    "dst_ip",
    "ip_proto",
    "ttl",
    "is_fragment",
    "src_port",
    "dst_port",
    "tcp_flags",
    "tcp_seq",
    "tcp_ack",
    "tcp_window",
    "payload_len",
    "icmp_type",
    "icmp_code",
    "arp_op",
    "dns_qname",
    "dns_qtype",
    "dns_is_response",
    "http_method",
    "http_host",
    "http_path",
    "tls_sni",
    "protocol",
];

/// The PostgreSQL type of each column of [`RAW_PACKETS_COLUMNS`].
const COLUMN_TYPES: [Type; 34] = [
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
];

const COPY_SQL: &str = "COPY raw_packets (ts, ts_ns_rem, sensor_id, iface, wire_len, cap_len, \
    eth_src, eth_dst, vlan_id, ether_type, ip_version, src_ip, dst_ip, ip_proto, ttl, \
    is_fragment, src_port, dst_port, tcp_flags, tcp_seq, tcp_ack, tcp_window, payload_len, \
    icmp_type, icmp_code, arp_op, dns_qname, dns_qtype, dns_is_response, http_method, \
    http_host, http_path, tls_sni, protocol) FROM STDIN (FORMAT binary)";

const INSERT_BATCH_SQL: &str = "INSERT INTO ingest_batches (sensor_id, stream_id, seq, records) \
    VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// A `timestamptz` in its binary form: microseconds since 2000-01-01 UTC.
#[derive(Debug, Clone, Copy)]
struct PgTimestamp(i64);

impl ToSql for PgTimestamp {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_i64(self.0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
    to_sql_checked!();
}

/// A `macaddr` in its binary form: the six octets.
#[derive(Debug, Clone, Copy)]
struct PgMac(MacAddr);

impl ToSql for PgMac {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(&self.0.octets());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::MACADDR
    }
    to_sql_checked!();
}

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
        }
    }

    /// Writes one batch, exactly once, in one transaction:
    /// `INSERT INTO ingest_batches ... ON CONFLICT DO NOTHING`; if the row
    /// already existed the transaction is rolled back and the result is
    /// [`WriteOutcome::Duplicate`]; otherwise the records are binary-COPYed
    /// into `raw_packets` with the batch's `sensor_id` and the transaction
    /// commits. When two connections write the same batch at once, the
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
    pub fn write_batch(&mut self, batch: &PacketBatch) -> Result<WriteOutcome, StoreError> {
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
        self.with_partitions(&batch.records, |w| {
            w.write_once(&key, &batch.sensor_id, &batch.records)
        })
    }

    /// Copies records into `raw_packets` in one transaction with no
    /// `ingest_batches` bookkeeping (partitions are still created as
    /// needed). This is the ceiling the ingest path is measured against;
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
        let outcome = self.with_partitions(records, |w| {
            let copy = w.copy_statement()?;
            let mut tx = w.client.transaction()?;
            let rows = copy_rows(&mut tx, &copy, sensor_id, records)?;
            tx.commit()?;
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
        F: FnMut(&mut Self) -> Result<WriteOutcome, postgres::Error>,
    {
        for attempt in 0..2 {
            self.ensure_days(records)?;
            match op(self) {
                Ok(outcome) => return Ok(outcome),
                Err(e) if attempt == 0 && e.code() == Some(&SqlState::CHECK_VIOLATION) => {
                    // "no partition of relation raw_packets found for row"
                    tracing::warn!(error = %e, "partition missing, recreating");
                    self.known_days.clear();
                }
                Err(e) => return Err(pg_err("write raw_packets")(e)),
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

    fn write_once(
        &mut self,
        key: &BatchKey<'_>,
        sensor_id: &str,
        records: &[PacketRecord],
    ) -> Result<WriteOutcome, postgres::Error> {
        let insert = self.insert_statement()?;
        let copy = self.copy_statement()?;
        let mut tx = self.client.transaction()?;
        let fresh = tx.execute(
            &insert,
            &[&key.sensor_id, &key.stream_id, &key.seq, &key.count],
        )?;
        if fresh == 0 {
            tx.rollback()?;
            return Ok(WriteOutcome::Duplicate);
        }
        let rows = copy_rows(&mut tx, &copy, sensor_id, records)?;
        tx.commit()?;
        Ok(WriteOutcome::Inserted { rows })
    }
}

/// The `ingest_batches` key of a batch, already converted.
struct BatchKey<'a> {
    sensor_id: &'a str,
    stream_id: i64,
    seq: i64,
    count: i32,
}

/// Binary-COPYs `records` into `raw_packets` inside `tx`.
fn copy_rows(
    tx: &mut Transaction<'_>,
    copy: &Statement,
    sensor_id: &str,
    records: &[PacketRecord],
) -> Result<u64, postgres::Error> {
    let sink = tx.copy_in(copy)?;
    let mut w = BinaryCopyInWriter::new(sink, &COLUMN_TYPES);
    for r in records {
        // All values live on the stack; the writer encodes them into its
        // own reused buffer.
        let ts = PgTimestamp((r.ts_ns / 1000) as i64 - PG_EPOCH_OFFSET_US);
        let ts_ns_rem = (r.ts_ns % 1000) as i16;
        let iface = r.iface.as_deref();
        let wire_len = i64::from(r.wire_len);
        let cap_len = i64::from(r.cap_len);
        let eth_src = r.eth_src.map(PgMac);
        let eth_dst = r.eth_dst.map(PgMac);
        let vlan_id = r.vlan_id.map(i32::from);
        let ether_type = r.ether_type.map(i32::from);
        let ip_version = r.ip_version.map(i16::from);
        let ip_proto = r.ip_proto.map(i16::from);
        let ttl = r.ttl.map(i16::from);
        let src_port = r.src_port.map(i32::from);
        let dst_port = r.dst_port.map(i32::from);
        let tcp_flags = r.tcp_flags.map(i32::from);
        let tcp_seq = r.tcp_seq.map(i64::from);
        let tcp_ack = r.tcp_ack.map(i64::from);
        let tcp_window = r.tcp_window.map(i32::from);
        let payload_len = r.payload_len.map(i64::from);
        let icmp_type = r.icmp_type.map(i16::from);
        let icmp_code = r.icmp_code.map(i16::from);
        let arp_op = r.arp_op.map(i32::from);
        let dns_qname = r.dns_qname.as_deref();
        let dns_qtype = r.dns_qtype.map(i32::from);
        let http_method = r.http_method.as_deref();
        let http_host = r.http_host.as_deref();
        let http_path = r.http_path.as_deref();
        let tls_sni = r.tls_sni.as_deref();
        let protocol = r.protocol.as_str();
        w.write(&[
            &ts,
            &ts_ns_rem,
            &sensor_id,
            &iface,
            &wire_len,
            &cap_len,
            &eth_src,
            &eth_dst,
            &vlan_id,
            &ether_type,
            &ip_version,
            &r.src_ip,
            &r.dst_ip,
            &ip_proto,
            &ttl,
            &r.is_fragment,
            &src_port,
            &dst_port,
            &tcp_flags,
            &tcp_seq,
            &tcp_ack,
            &tcp_window,
            &payload_len,
            &icmp_type,
            &icmp_code,
            &arp_op,
            &dns_qname,
            &dns_qtype,
            &r.dns_is_response,
            &http_method,
            &http_host,
            &http_path,
            &tls_sni,
            &protocol,
        ])?;
    }
    w.finish()
}
