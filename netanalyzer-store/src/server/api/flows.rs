//! `/api/flows`: flow records, newest `first_ts` first.

use super::cursor::Cursor;
use super::params::{ts_param, Params, Where};
use super::value::row_object;
use crate::StoreError;
use postgres::Client;
use serde_json::Value;

/// The columns of the flow JSON (`*_us` become `*_ms`), then the sort key.
const SELECT: &str = "SELECT flow_id::text AS flow_id, segment, \
    (extract(epoch FROM first_ts) * 1000000)::int8 AS first_ts_us, \
    (extract(epoch FROM last_ts) * 1000000)::int8 AS last_ts_us, sensor_id, ip_proto, \
    host(src_ip) AS src_ip, src_port, host(dst_ip) AS dst_ip, dst_port, vlan_id, \
    fwd_packets, bwd_packets, fwd_bytes, bwd_bytes, tcp_flags, end_reason, label, confidence, \
    ctid::text AS row_ctid FROM flows";

/// The SQL and parameters of one page.
pub(crate) fn sql(p: &Params, cursor: Option<&Cursor>) -> (String, Where) {
    let mut w = Where::default();
    let lo = w.arg(ts_param(p.from_us));
    let hi = w.arg(ts_param(p.to_us));
    w.and(format!("first_ts >= {lo} AND first_ts < {hi}"));
    if let Some(Cursor::Flow { ts_us, ctid }) = cursor {
        let t = w.arg(ts_param(*ts_us));
        let c = w.arg(ctid.clone());
        w.and(format!(
            "first_ts <= {t} AND (first_ts, ctid) < ({t}, {c}::text::tid)"
        ));
    }
    w.net_filters(p, "ip_proto IS NULL");
    if let Some(label) = &p.label {
        let a = w.arg(label.clone());
        w.and(format!("label = {a}"));
    }
    let n = w.arg((p.limit + 1) as i64);
    (
        format!(
            "{SELECT}{} ORDER BY first_ts DESC, ctid DESC LIMIT {n}",
            w.sql()
        ),
        w,
    )
}

/// One page: the flow JSON objects and the cursor after the last one when
/// there are more.
///
/// # Errors
/// [`StoreError::Postgres`] when the query fails.
pub(crate) fn page(
    c: &mut Client,
    p: &Params,
    cursor: Option<&Cursor>,
    plans: Option<&mut Vec<String>>,
) -> Result<(Vec<Value>, Option<Cursor>), StoreError> {
    let (sql, w) = sql(p, cursor);
    let (rows, more) = super::query_page(c, &sql, &w, p.limit, plans, "api: query flows")?;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in &rows {
        let mut obj = row_object(row);
        let first_us = obj
            .remove("first_ts_us")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let last_us = obj
            .remove("last_ts_us")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        obj.insert("first_ts_ms".into(), first_us.div_euclid(1000).into());
        obj.insert("last_ts_ms".into(), last_us.div_euclid(1000).into());
        let ctid = obj
            .remove("row_ctid")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        last = Some(Cursor::Flow {
            ts_us: first_us,
            ctid,
        });
        items.push(Value::Object(obj));
    }
    Ok((items, if more { last } else { None }))
}
