//! `/api/raw_packets`, `/api/raw_packets/last/{n}`, and the legacy
//! `/api/last10` and `/api/alltraffic`.
//!
//! # How "newest first" is index-backed without a btree on `ts`
//!
//! Live partitions carry only the BRIN index on `ts` (a btree on `ts` costs
//! the ingest COPY, see `docs/schema.md`), and BRIN cannot return rows in
//! order. Packets arrive in time order, so a short window near the upper
//! bound holds the newest rows: the query is run on windows walking back
//! from the upper bound (`to`, or the cursor), 10 ms first and 8 times
//! longer each time, until a page is full or `from` is reached. Each window
//! is a BRIN bitmap scan of the block ranges holding it plus a top-N sort.
//! A window count is at most about 10 for a 7-day span. After an empty
//! window (a gap in the traffic), a wide window is not read in full: the
//! newest data in it is found first by bisection with `LIMIT 1` existence
//! probes (each stops at its first row), and the walk goes on from there
//! with a 10 ms window, so a page never sorts much more than it returns.
//! With a filter there is no bisection (a probe that finds no match reads
//! its whole window): the walk reads each window once, so a rare match
//! costs one pass over the window's rows.

use super::cursor::Cursor;
use super::params::{ts_param, Params, Where};
use super::value::row_object;
use crate::pg::RAW_PACKETS_COLUMNS;
use crate::StoreError;
use postgres::Client;
use serde_json::{Map, Value};

/// The first window of the walk back, µs.
const FIRST_WINDOW_US: i64 = 10_000;
/// How much longer each next window is.
const WINDOW_GROWTH: i64 = 8;

/// One page of packets: JSON objects and the cursor after the last one.
pub(crate) struct PacketPage {
    pub(crate) items: Vec<Value>,
    pub(crate) next: Option<Cursor>,
}

/// The SELECT list: every column but `batch_id`, in JSON-friendly types
/// (`ts` as µs, addresses as text), then the ctid.
fn select_list() -> String {
    let mut cols = Vec::with_capacity(RAW_PACKETS_COLUMNS.len() + 1);
    for c in RAW_PACKETS_COLUMNS {
        match c {
            "ts" => cols.push("(extract(epoch FROM ts) * 1000000)::int8 AS ts_us".to_owned()),
            "batch_id" => {}
            "src_ip" | "dst_ip" => cols.push(format!("host({c}) AS {c}")),
            "eth_src" | "eth_dst" => cols.push(format!("{c}::text AS {c}")),
            other => cols.push(other.to_owned()),
        }
    }
    cols.push("ctid::text AS row_ctid".to_owned());
    cols.join(", ")
}

/// The SQL of one window; `$1`/`$2` are the window's bounds.
fn window_sql(p: &Params, cursor: Option<&Cursor>) -> (String, Where) {
    let mut w = Where::default();
    let lo = w.arg(ts_param(0));
    let hi = w.arg(ts_param(0));
    w.and(format!("ts >= {lo} AND ts < {hi}"));
    if let Some(Cursor::Packet { ts_us, rem, ctid }) = cursor {
        let t = w.arg(ts_param(*ts_us));
        let r = w.arg(*rem);
        let c = w.arg(ctid.clone());
        w.and(format!(
            "(ts, ts_ns_rem, ctid) < ({t}, {r}, {c}::text::tid)"
        ));
    }
    w.net_filters(p, "protocol = 'ARP'");
    let sql = format!(
        "SELECT {} FROM raw_packets{} ORDER BY ts DESC, ts_ns_rem DESC, ctid DESC LIMIT $LIMIT",
        select_list(),
        w.sql()
    );
    (sql, w)
}

/// Reads one page, newest first: at most `p.limit` packets in
/// `[from, to)` after `cursor`.
///
/// # Errors
/// [`StoreError::Postgres`] when a query fails.
pub(crate) fn page(
    c: &mut Client,
    p: &Params,
    cursor: Option<&Cursor>,
    mut plans: Option<&mut Vec<String>>,
) -> Result<PacketPage, StoreError> {
    let want = p.limit + 1;
    let (sql, mut w) = window_sql(p, cursor);
    // "Is there a row in this window?": stops at the first row found.
    let exists_sql = format!("SELECT 1 FROM raw_packets{} LIMIT 1", w.sql());
    let limit_arg = w.arg(0i64);
    let sql = sql.replace("$LIMIT", &limit_arg);
    let stmt = c
        .prepare(&sql)
        .map_err(crate::pg::pg_err("api: prepare raw_packets"))?;
    let exists = c
        .prepare(&exists_sql)
        .map_err(crate::pg::pg_err("api: prepare raw_packets"))?;
    let mut upper = match cursor {
        Some(Cursor::Packet { ts_us, .. }) => (ts_us + 1).min(p.to_us),
        _ => p.to_us,
    };
    let mut width = FIRST_WINDOW_US;
    let mut last_empty = false;
    // Existence probes pay off only when most rows match: with a filter,
    // a probe of a window without a match reads all its rows, as the
    // window's query would.
    let bisect = p.ip.is_none()
        && p.src_ip.is_none()
        && p.dst_ip.is_none()
        && p.port.is_none()
        && p.proto.is_none();
    let mut rows = Vec::new();
    while rows.len() < want && upper > p.from_us {
        let lower = upper.saturating_sub(width).max(p.from_us);
        let lo = ts_param(lower);
        let hi = ts_param(upper);
        let mut args = w.args();
        args[0] = &lo;
        args[1] = &hi;
        let n = args.len();
        if bisect && last_empty && width > FIRST_WINDOW_US * WINDOW_GROWTH {
            // After an empty window (a gap in the traffic) the next wide
            // window may hold far more rows than a page: find the newest
            // data first, by bisection with cheap existence probes, and
            // walk on from there with a short window.
            let mut probe = |a: i64, b: i64| -> Result<bool, StoreError> {
                let (pa, pb) = (ts_param(a), ts_param(b));
                let mut args = w.args();
                args[0] = &pa;
                args[1] = &pb;
                if let Some(plans) = plans.as_deref_mut() {
                    plans.push(super::explain_text(c, &exists_sql, &args[..n - 1])?);
                }
                Ok(!c
                    .query(&exists, &args[..n - 1])
                    .map_err(crate::pg::pg_err("api: query raw_packets"))?
                    .is_empty())
            };
            if !probe(lower, upper)? {
                upper = lower;
                width = width.saturating_mul(WINDOW_GROWTH);
                continue;
            }
            // Data in [a, b); narrow b down to within one first window.
            let (mut a, mut b) = (lower, upper);
            while b - a > FIRST_WINDOW_US {
                let mid = a + (b - a) / 2;
                if probe(mid, b)? {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            upper = b;
            width = FIRST_WINDOW_US;
            last_empty = false;
            continue;
        }
        let left = (want - rows.len()) as i64;
        args[n - 1] = &left;
        if let Some(plans) = plans.as_deref_mut() {
            plans.push(super::explain_text(c, &sql, &args)?);
        }
        let got = c
            .query(&stmt, &args)
            .map_err(crate::pg::pg_err("api: query raw_packets"))?;
        last_empty = got.is_empty();
        rows.extend(got);
        upper = lower;
        width = width.saturating_mul(WINDOW_GROWTH);
    }
    let more = rows.len() > p.limit;
    rows.truncate(p.limit);
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in &rows {
        let mut obj = row_object(row);
        let ts_us = obj.get("ts_us").and_then(Value::as_i64).unwrap_or(0);
        let rem = obj.get("ts_ns_rem").and_then(Value::as_i64).unwrap_or(0);
        let ctid = obj
            .remove("row_ctid")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        last = Some(Cursor::Packet {
            ts_us,
            rem: rem as i16,
            ctid,
        });
        items.push(Value::Object(packet_json(obj, ts_us, rem)));
    }
    Ok(PacketPage {
        items,
        next: if more { last } else { None },
    })
}

/// The packet JSON: `ts_ms`, `ts_ns` (decimal string), `sensor_id`, then
/// the other `PacketRecord` fields under their names.
fn packet_json(mut obj: Map<String, Value>, ts_us: i64, rem: i64) -> Map<String, Value> {
    let mut out = Map::with_capacity(obj.len() + 1);
    out.insert("ts_ms".into(), Value::from(ts_us.div_euclid(1000)));
    out.insert(
        "ts_ns".into(),
        Value::from((i128::from(ts_us) * 1000 + i128::from(rem)).to_string()),
    );
    obj.remove("ts_us");
    obj.remove("ts_ns_rem");
    for (k, v) in obj {
        out.insert(k, v);
    }
    out
}
