//! `/api/alerts`: alerts, newest `last_ts` first.

use super::cursor::Cursor;
use super::params::{ts_param, Params, Where};
use super::value::row_object;
use crate::StoreError;
use postgres::{Client, Row};
use serde_json::Value;

/// The SELECT of the alert JSON (most columns under their JSON names;
/// [`alert_json`] turns the `*_us` ones into `*_ms`). Public to the crate
/// so the WebSocket snapshot reads alerts the same way.
pub(crate) const ALERT_SELECT: &str = "SELECT alert_id::text AS alert_id, revision, class, \
    severity, target, sources[1:8] AS sources, source_count, flow_count, packet_count, \
    confidence, (extract(epoch FROM window_start) * 1000000)::int8 AS window_start_us, \
    (extract(epoch FROM first_ts) * 1000000)::int8 AS first_ts_us, \
    (extract(epoch FROM last_ts) * 1000000)::int8 AS last_ts_us, model_version, \
    (extract(epoch FROM updated_at) * 1000000)::int8 AS updated_us FROM alerts";

/// The alert JSON of a row read with [`ALERT_SELECT`], and its `last_ts` in
/// µs.
pub(crate) fn alert_json(row: &Row) -> (Value, i64) {
    let mut obj = row_object(row);
    let mut last_us = 0;
    for (us, ms) in [
        ("window_start_us", "window_start_ms"),
        ("first_ts_us", "first_ts_ms"),
        ("last_ts_us", "last_ts_ms"),
        ("updated_us", "updated_ms"),
    ] {
        let v = obj.remove(us).and_then(|v| v.as_i64()).unwrap_or(0);
        if us == "last_ts_us" {
            last_us = v;
        }
        obj.insert(ms.into(), v.div_euclid(1000).into());
    }
    if obj.get("confidence").is_some_and(Value::is_null) {
        obj.insert("confidence".into(), 0.0.into());
    }
    (Value::Object(obj), last_us)
}

/// The SQL and parameters of one page.
pub(crate) fn sql(p: &Params, cursor: Option<&Cursor>) -> (String, Where) {
    let mut w = Where::default();
    let lo = w.arg(ts_param(p.from_us));
    let hi = w.arg(ts_param(p.to_us));
    w.and(format!("last_ts >= {lo} AND last_ts < {hi}"));
    if let Some(Cursor::Alert { ts_us, id }) = cursor {
        let t = w.arg(ts_param(*ts_us));
        let i = w.arg(*id);
        w.and(format!(
            "last_ts <= {t} AND (last_ts, alert_id) < ({t}, {i})"
        ));
    }
    if !p.severity.is_empty() {
        let a = w.arg(p.severity.clone());
        w.and(format!("severity = ANY({a})"));
    }
    if let Some(class) = &p.class {
        let a = w.arg(class.clone());
        w.and(format!("class = {a}"));
    }
    let n = w.arg((p.limit + 1) as i64);
    (
        format!(
            "{ALERT_SELECT}{} ORDER BY last_ts DESC, alerts.alert_id DESC LIMIT {n}",
            w.sql()
        ),
        w,
    )
}

/// One page: the alert JSON objects and the cursor after the last one when
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
    let (rows, more) = super::query_page(c, &sql, &w, p.limit, plans, "api: query alerts")?;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in &rows {
        let (json, ts_us) = alert_json(row);
        let id = json["alert_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        last = Some(Cursor::Alert { ts_us, id });
        items.push(json);
    }
    Ok((items, if more { last } else { None }))
}
