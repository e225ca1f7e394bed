//! [`commit`]: flows, alerts and the checkpoint in one transaction.

use super::{Checkpoint, Position, ALERT_CHANNEL};
use crate::pg::day_of_ts_ns;
use crate::pg::partition::{ensure_table_partition_days, flow_partition_name, FLOWS};
use crate::pg::writer::{
    opt, put_i16, put_i32, put_i64, put_inet, put_mac, put_null, put_text, send_copy_chunk,
    COPY_HEADER, PG_EPOCH_OFFSET_US,
};
use crate::StoreError;
use netanalyzer_core::{Alert, FlowAddr, FlowProto, FlowRecord, FEATURE_COUNT};
use postgres::Client;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The columns [`commit`] writes into `flows`, in COPY order (the table
/// also has `inserted_at`, filled by its default).
pub const FLOWS_COLUMNS: [&str; 23] = [
    "first_ts",
    "last_ts",
    "sensor_id",
    "flow_id",
    "segment",
    "ip_proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "src_mac",
    "dst_mac",
    "vlan_id",
    "fwd_packets",
    "bwd_packets",
    "fwd_bytes",
    "bwd_bytes",
    "tcp_flags",
    "end_reason",
    "features",
    "label",
    "confidence",
    "model_version",
];

/// Everything one aggregator commit writes.
#[derive(Debug, Clone, Copy)]
pub struct FlowCommit<'a> {
    /// The consumer name (`aggregator_state.consumer`).
    pub consumer: &'a str,
    /// The feed's position: everything up to it is accounted for by this
    /// commit and the state.
    pub position: Position,
    /// The consumer's serialized state (open flows, alert windows).
    pub state: &'a [u8],
    /// The flows emitted since the last commit, with the sensor each came
    /// from.
    pub flows: &'a [(String, FlowRecord)],
    /// The version of the model that labelled them.
    pub model_version: &'a str,
    /// Alerts new or changed since the last commit.
    pub alerts: &'a [Alert],
    /// Packet rows consumed in total (saved in the checkpoint).
    pub rows: u64,
    /// Batches consumed in total.
    pub batches: u64,
    /// Flows open in the consumer's tables after this commit
    /// (`aggregator_state.active_flows`; `None` stores NULL: unknown).
    pub active_flows: Option<u64>,
}

/// What [`commit`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Rows copied into `flows`.
    pub flows: u64,
    /// Alerts inserted or updated (each also NOTIFYed).
    pub alerts: u64,
}

const UPSERT_ALERT_SQL: &str = "WITH up AS (
    INSERT INTO alerts (alert_id, window_start, first_ts, last_ts, class, severity, confidence,
        sources, source_count, target, flow_count, packet_count, model_version, flow_ids, revision)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (alert_id) DO UPDATE SET
        window_start = EXCLUDED.window_start, first_ts = EXCLUDED.first_ts,
        last_ts = EXCLUDED.last_ts, class = EXCLUDED.class, severity = EXCLUDED.severity,
        confidence = EXCLUDED.confidence, sources = EXCLUDED.sources,
        source_count = EXCLUDED.source_count, target = EXCLUDED.target,
        flow_count = EXCLUDED.flow_count, packet_count = EXCLUDED.packet_count,
        model_version = EXCLUDED.model_version, flow_ids = EXCLUDED.flow_ids,
        revision = EXCLUDED.revision, updated_at = now()
    RETURNING 1)
SELECT pg_notify($16, $17) FROM up";

/// Saves the checkpoint unless the stored position is already beyond it.
const SAVE_STATE_SQL: &str = "INSERT INTO aggregator_state (consumer, position_xid,
        position_batch_id, state, rows_processed, batches_processed, active_flows, updated_at)
    VALUES ($1, $2::text::xid8, $3, $4, $5, $6, $7, now())
    ON CONFLICT (consumer) DO UPDATE SET position_xid = EXCLUDED.position_xid,
        position_batch_id = EXCLUDED.position_batch_id, state = EXCLUDED.state,
        rows_processed = EXCLUDED.rows_processed,
        batches_processed = EXCLUDED.batches_processed,
        active_flows = EXCLUDED.active_flows, updated_at = now()
    WHERE (aggregator_state.position_xid, aggregator_state.position_batch_id)
       <= (EXCLUDED.position_xid, EXCLUDED.position_batch_id)";

const LOAD_STATE_SQL: &str = "SELECT position_xid::text, position_batch_id, state, \
    rows_processed, batches_processed FROM aggregator_state WHERE consumer = $1";

/// Most JSON-escaped bytes of one `sources` entry in an [`alert_json`].
const SOURCE_JSON_MAX: usize = 256;
/// Most JSON-escaped bytes of `class`, `target` and `model_version` each.
const FIELD_JSON_MAX: usize = 512;
/// Most `sources` entries in an [`alert_json`].
pub const ALERT_JSON_SOURCES: usize = 8;

/// Writes one commit of the aggregator, all or nothing, in one
/// transaction: binary COPY of the flows into `flows` (features as a
/// `float8[]` in core `FEATURES` order), an upsert per alert
/// (`ON CONFLICT (alert_id) DO UPDATE`, so an alert is one row whose
/// counts grow) with `pg_notify(ALERT_CHANNEL, payload)` for each, and the
/// `aggregator_state` row (position, state, counters). NOTIFYs are
/// delivered only if the transaction commits.
///
/// The `flows` partitions of the flows' days are created first, in their
/// own short transaction ([`ensure_flow_partitions`]).
///
/// # Errors
///
/// [`StoreError::PositionConflict`] when the stored position of this
/// consumer is beyond `fc.position` (two aggregators with one consumer
/// name); [`StoreError::ColumnOutOfRange`] when a count exceeds
/// `i64::MAX`; [`StoreError::Postgres`] when the database fails. Nothing
/// is written in every case (partitions aside).
pub fn commit(c: &mut Client, fc: &FlowCommit<'_>) -> Result<CommitOutcome, StoreError> {
    let mut buf = Vec::with_capacity(COPY_HEADER.len() + fc.flows.len() * 900);
    buf.extend_from_slice(COPY_HEADER);
    for (sensor, f) in fc.flows {
        encode_flow(&mut buf, sensor, f, fc.model_version)?;
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    let days: Vec<u64> = fc.flows.iter().map(|(_, f)| f.first_ts_ns).collect();
    ensure_flow_partitions(c, &days)?;

    let mut tx = c.transaction().map_err(pg("commit: begin"))?;
    if !fc.flows.is_empty() {
        let sql = format!(
            "COPY flows ({}) FROM STDIN (FORMAT binary)",
            FLOWS_COLUMNS.join(", ")
        );
        let mut w = tx.copy_in(sql.as_str()).map_err(pg("commit: copy flows"))?;
        send_copy_chunk(&mut w, &mut buf, "commit: copy flows", "flows (COPY)")?;
        w.finish().map_err(pg("commit: copy flows"))?;
    }
    if !fc.alerts.is_empty() {
        let upsert = tx
            .prepare(UPSERT_ALERT_SQL)
            .map_err(pg("commit: prepare alert upsert"))?;
        let updated_ms = now_ms();
        for a in fc.alerts {
            let flow_ids: Vec<i64> = a.flow_ids.iter().map(|&id| id as i64).collect();
            let payload = alert_payload(a, updated_ms);
            tx.execute(
                &upsert,
                &[
                    &(a.alert_id as i64),
                    &time(a.window_start_ns),
                    &time(a.first_ts_ns),
                    &time(a.last_ts_ns),
                    &a.class,
                    &a.severity.as_str(),
                    &a.confidence,
                    &a.sources,
                    &count(a.source_count, "alerts.source_count")?,
                    &a.target,
                    &count(a.flow_count, "alerts.flow_count")?,
                    &count(a.packet_count, "alerts.packet_count")?,
                    &a.model_version,
                    &flow_ids,
                    &count(a.revision, "alerts.revision")?,
                    &ALERT_CHANNEL,
                    &payload,
                ],
            )
            .map_err(pg("commit: upsert alert"))?;
        }
    }
    let saved = tx
        .execute(
            SAVE_STATE_SQL,
            &[
                &fc.consumer,
                &fc.position.xid.to_string(),
                &fc.position.batch_id,
                &fc.state,
                &count(fc.rows, "aggregator_state.rows_processed")?,
                &count(fc.batches, "aggregator_state.batches_processed")?,
                &fc.active_flows
                    .map(|n| count(n, "aggregator_state.active_flows"))
                    .transpose()?,
            ],
        )
        .map_err(pg("commit: save aggregator_state"))?;
    if saved == 0 {
        let stored = tx
            .query_one(LOAD_STATE_SQL, &[&fc.consumer])
            .map_err(pg("commit: read aggregator_state"))?;
        let stored_xid: &str = stored
            .try_get(0)
            .map_err(pg("commit: read aggregator_state"))?;
        let err = StoreError::PositionConflict {
            consumer: fc.consumer.to_owned(),
            stored_xid: stored_xid.parse().unwrap_or(u64::MAX),
            stored_batch_id: stored
                .try_get(1)
                .map_err(pg("commit: read aggregator_state"))?,
            xid: fc.position.xid,
            batch_id: fc.position.batch_id,
        };
        tx.rollback().map_err(pg("commit: rollback"))?;
        return Err(err);
    }
    tx.commit().map_err(pg("commit: commit"))?;
    Ok(CommitOutcome {
        flows: fc.flows.len() as u64,
        alerts: fc.alerts.len() as u64,
    })
}

/// The saved checkpoint of `consumer`, or `None` when it never committed.
///
/// # Errors
///
/// [`StoreError::Postgres`] when the query fails.
pub fn load_checkpoint(c: &mut Client, consumer: &str) -> Result<Option<Checkpoint>, StoreError> {
    let Some(row) = c
        .query_opt(LOAD_STATE_SQL, &[&consumer])
        .map_err(pg("load checkpoint"))?
    else {
        return Ok(None);
    };
    let xid: &str = row.try_get(0).map_err(pg("load checkpoint"))?;
    let rows: i64 = row.try_get(3).map_err(pg("load checkpoint"))?;
    let batches: i64 = row.try_get(4).map_err(pg("load checkpoint"))?;
    Ok(Some(Checkpoint {
        position: Position {
            xid: xid.parse().map_err(|_| StoreError::CopyDecode {
                source_table: "aggregator_state",
                detail: format!("position_xid {xid:?}"),
            })?,
            batch_id: row.try_get(1).map_err(pg("load checkpoint"))?,
        },
        state: row.try_get(2).map_err(pg("load checkpoint"))?,
        rows: u64::try_from(rows).unwrap_or(0),
        batches: u64::try_from(batches).unwrap_or(0),
    }))
}

/// Advisory lock class of consumer locks ("netacons" folded to 32 bits).
const CONSUMER_LOCK_CLASS: i32 = 0x6e65_7461;

/// Takes a session-level advisory lock on the consumer name, so a second
/// aggregator started with the same `--consumer` can refuse to run
/// (`false`: another session holds it). Released when the connection
/// closes. Takes no transaction id, so it does not hold back the feed's
/// horizon.
///
/// # Errors
///
/// [`StoreError::Postgres`] when the query fails.
pub fn lock_consumer(c: &mut Client, consumer: &str) -> Result<bool, StoreError> {
    c.query_one(
        "SELECT pg_try_advisory_lock($1, hashtext($2))",
        &[&CONSUMER_LOCK_CLASS, &consumer],
    )
    .map_err(pg("lock consumer"))?
    .try_get(0)
    .map_err(pg("lock consumer"))
}

/// Creates the missing daily `flows` partitions (`flows_pYYYYMMDD`) of the
/// given flow start times (ns since the Unix epoch), in one short
/// transaction under the partition advisory lock; nothing when all exist.
///
/// # Errors
///
/// [`StoreError::Postgres`] when a statement fails.
pub fn ensure_flow_partitions(c: &mut Client, first_ts_ns: &[u64]) -> Result<(), StoreError> {
    let mut days: Vec<i64> = first_ts_ns.iter().map(|&t| day_of_ts_ns(t)).collect();
    days.sort_unstable();
    days.dedup();
    if days.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = days.iter().map(|&d| flow_partition_name(d)).collect();
    let missing: Vec<i64> = c
        .query(
            "SELECT n FROM unnest($1::text[]) WITH ORDINALITY u(n, i) \
             WHERE to_regclass(n) IS NULL",
            &[&names],
        )
        .map_err(pg("flows partitions: look up"))?
        .iter()
        .filter_map(|r| {
            let n: &str = r.get(0);
            names.iter().position(|x| x == n).map(|i| days[i])
        })
        .collect();
    if !missing.is_empty() {
        ensure_table_partition_days(c, FLOWS, &missing)?;
    }
    Ok(())
}

/// The `NOTIFY` payload of an alert: [`alert_json`] as compact text.
///
/// At most about 3.5 KB whatever the alert holds (see [`alert_json`]), so
/// it stays under PostgreSQL's 8000-byte NOTIFY limit.
pub fn alert_payload(a: &Alert, updated_ms: u64) -> String {
    alert_json(a, updated_ms).to_string()
}

/// An alert as the query API and the dashboard WebSocket show it
/// (`docs/dashboard.md`, "WebSocket protocol"):
///
/// ```json
/// {"alert_id":"123","revision":3,"class":"DDoS","severity":"critical",
///  "target":"10.0.0.5","sources":["1.2.3.4"],"source_count":1,"flow_count":10,
///  "packet_count":100,"confidence":0.93,"window_start_ms":0,"first_ts_ms":0,
///  "last_ts_ms":0,"model_version":"m-1","updated_ms":0}
/// ```
///
/// `alert_id` is the `alerts.alert_id` bigint as a decimal string (exact
/// in JavaScript); times are integer ms since the Unix epoch; `updated_ms`
/// is given (the commit writes its wall time). Bounded: at most
/// [`ALERT_JSON_SOURCES`] `sources` of at most 256 escaped bytes each, and
/// `class`, `target`, `model_version` cut to 512 escaped bytes each (on a
/// char boundary); a non-finite confidence becomes 0.
pub fn alert_json(a: &Alert, updated_ms: u64) -> serde_json::Value {
    let sources: Vec<&str> = a
        .sources
        .iter()
        .take(ALERT_JSON_SOURCES)
        .map(|s| cut(s, SOURCE_JSON_MAX))
        .collect();
    serde_json::json!({
        "alert_id": (a.alert_id as i64).to_string(),
        "revision": a.revision,
        "class": cut(&a.class, FIELD_JSON_MAX),
        "severity": a.severity.as_str(),
        "target": cut(&a.target, FIELD_JSON_MAX),
        "sources": sources,
        "source_count": a.source_count,
        "flow_count": a.flow_count,
        "packet_count": a.packet_count,
        "confidence": if a.confidence.is_finite() { a.confidence } else { 0.0 },
        "window_start_ms": a.window_start_ns / 1_000_000,
        "first_ts_ms": a.first_ts_ns / 1_000_000,
        "last_ts_ms": a.last_ts_ns / 1_000_000,
        "model_version": cut(&a.model_version, FIELD_JSON_MAX),
        "updated_ms": updated_ms,
    })
}

/// The longest prefix of `s` (on a char boundary) whose JSON-escaped form
/// is at most `max` bytes.
fn cut(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// Wall time, ms since the Unix epoch (0 before 1970).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A time in ns since the Unix epoch as a `timestamptz` parameter (µs).
fn time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn count(v: u64, column: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::ColumnOutOfRange { column, value: v })
}

fn pg(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |source| StoreError::Postgres { context, source }
}

/// Element type OID of `float8`.
const FLOAT8_OID: i32 = 701;

/// Appends one `flows` row ([`FLOWS_COLUMNS`]) in binary COPY format.
fn encode_flow(
    buf: &mut Vec<u8>,
    sensor: &str,
    f: &FlowRecord,
    model_version: &str,
) -> Result<(), StoreError> {
    buf.extend_from_slice(&(FLOWS_COLUMNS.len() as i16).to_be_bytes());
    put_i64(buf, ts_us_pg(f.first_ts_ns));
    put_i64(buf, ts_us_pg(f.last_ts_ns));
    put_text(buf, Some(sensor));
    put_i64(buf, f.flow_id as i64);
    put_i64(buf, i64::from(f.segment));
    match f.proto {
        FlowProto::Ip(p) => put_i16(buf, i16::from(p)),
        FlowProto::Arp => put_null(buf),
    }
    let (src_ip, src_mac) = split_addr(f.src);
    let (dst_ip, dst_mac) = split_addr(f.dst);
    put_inet(buf, src_ip);
    put_i32(buf, i32::from(f.src_port));
    put_inet(buf, dst_ip);
    put_i32(buf, i32::from(f.dst_port));
    put_mac(buf, src_mac);
    put_mac(buf, dst_mac);
    opt(buf, f.vlan_id, |b, v| put_i32(b, i32::from(v)));
    put_i64(buf, count(f.fwd_packets, "flows.fwd_packets")?);
    put_i64(buf, count(f.bwd_packets, "flows.bwd_packets")?);
    put_i64(buf, count(f.fwd_bytes, "flows.fwd_bytes")?);
    put_i64(buf, count(f.bwd_bytes, "flows.bwd_bytes")?);
    put_i32(buf, i32::from(f.tcp_flags));
    put_text(buf, Some(f.end_reason.as_str()));
    // float8[]: ndim, has-nulls flag, element OID, (size, lower bound),
    // then each element as (length 8, IEEE 754 big-endian).
    let body = 20 + FEATURE_COUNT * 12;
    buf.extend_from_slice(&(body as i32).to_be_bytes());
    buf.extend_from_slice(&1i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&FLOAT8_OID.to_be_bytes());
    buf.extend_from_slice(&(FEATURE_COUNT as i32).to_be_bytes());
    buf.extend_from_slice(&1i32.to_be_bytes());
    for v in f.features.0 {
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    put_text(buf, f.label.as_deref());
    opt(buf, f.confidence, put_f64);
    put_text(buf, Some(model_version));
    Ok(())
}

fn split_addr(a: FlowAddr) -> (Option<std::net::IpAddr>, Option<netanalyzer_core::MacAddr>) {
    match a {
        FlowAddr::Ip(ip) => (Some(ip), None),
        FlowAddr::Mac(m) => (None, Some(m)),
    }
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&8i32.to_be_bytes());
    buf.extend_from_slice(&v.to_bits().to_be_bytes());
}

/// µs since 2000-01-01 of a time in ns since the Unix epoch.
fn ts_us_pg(ns: u64) -> i64 {
    (ns / 1000) as i64 - PG_EPOCH_OFFSET_US
}
