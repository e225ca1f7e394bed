//! `/api/stats` and `/api/sensors`: traffic over a window, and sensor
//! health, read from the rollup tables the ingest writer fills
//! (`traffic_seconds`, `traffic_talkers`, `sensors`; see docs/schema.md,
//! "Traffic rollups and sensors").
//!
//! [`query_stats`] and [`query_sensors`] are synchronous: the HTTP handlers
//! run them on the query pool, and the live ticker once a second. Every
//! query is a range on the first column of a primary key (or of
//! `alerts_last_ts`); the plans are in docs/schema.md and checked by
//! `tests/rollup.rs`.

use super::{check_read, ApiError};
use crate::server::http::App;
use crate::StoreError;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest window of `/api/stats`, seconds (one day).
pub const MAX_WINDOW_SECS: u32 = 86_400;
/// Window of `/api/stats` when `window` is absent, seconds.
pub const DEFAULT_WINDOW_SECS: u32 = 300;
/// Most points of [`Stats::series`]: the step grows with the window.
pub const MAX_POINTS: u32 = 600;
/// Entries of [`Stats::top_talkers`] and [`Stats::top_targets`].
pub const TOP_N: i64 = 10;
/// A sensor not seen for this long is `stale`.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// A sensor whose drop counters grew this recently is `degraded`.
pub const DROPS_RECENT: Duration = Duration::from_secs(60);
/// A sensor whose last batch was committed this long after its newest
/// packet is `degraded`.
pub const MAX_LAG: Duration = Duration::from_secs(10);
/// The span [`SensorHealth::records_per_sec`] is averaged over.
pub const RATE_SPAN_SECS: i64 = 10;

/// What `/api/stats` is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    /// Window length, seconds (clamped to `1..=`[`MAX_WINDOW_SECS`]).
    pub window_secs: u32,
    /// End of the window, ns since the Unix epoch (None = now); cut to
    /// the whole second: the window holds complete seconds only.
    pub to_ns: Option<u64>,
}

impl StatsQuery {
    /// Where the series starts and ends, in seconds since the epoch, and
    /// its step: `step = ceil(window / 600)`, `points = ceil(window /
    /// step)` buckets aligned on multiples of `step` (so they do not move
    /// as the window slides), the last one ending at or after `to` (so
    /// with a step over 1 s the series starts within one step of
    /// `to - window`).
    fn plan(&self, now_ns: u64) -> Plan {
        let window = i64::from(self.window_secs.clamp(1, MAX_WINDOW_SECS));
        let to = (self.to_ns.unwrap_or(now_ns) / 1_000_000_000) as i64;
        let step = (window + i64::from(MAX_POINTS) - 1) / i64::from(MAX_POINTS);
        let points = (window + step - 1) / step;
        let end = (to + step - 1).div_euclid(step) * step;
        Plan {
            window,
            to,
            step,
            points,
            from: end - points * step,
        }
    }
}

/// Seconds since the epoch of a [`StatsQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    window: i64,
    /// Rows with `sec < to` are counted.
    to: i64,
    step: i64,
    points: i64,
    /// Start of the first bucket.
    from: i64,
}

/// Traffic over a window (the JSON of `/api/stats` and the live `stats`
/// message).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    /// The window asked for, seconds.
    pub window_secs: u32,
    /// Seconds per point of `series`.
    pub step_secs: u32,
    /// Start of the first point, ms since the Unix epoch.
    pub from_ms: i64,
    /// End of the counted traffic (exclusive), ms since the Unix epoch.
    pub to_ms: i64,
    /// Every step of the window, oldest first, zeros filled.
    pub series: Vec<Point>,
    /// Traffic by protocol, most packets first.
    pub protocols: Vec<ProtocolCount>,
    /// Sources with the most bytes (at most 10).
    pub top_talkers: Vec<Talker>,
    /// Destinations with the most bytes (at most 10).
    pub top_targets: Vec<Talker>,
    /// Open flows summed over the aggregators (as of their last commit);
    /// `None` when no aggregator has reported one.
    pub flows_active: Option<i64>,
    /// Alerts seen in the window, by class, highest severity first.
    pub alerts_by_class: Vec<ClassCount>,
    /// Totals and per-second peaks over the window.
    pub totals: Totals,
}

/// One step of [`Stats::series`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Point {
    /// Start of the step, ms since the Unix epoch.
    pub t_ms: i64,
    /// Packets in the step.
    pub packets: u64,
    /// Bytes (on the wire) in the step.
    pub bytes: u64,
}

/// One protocol of [`Stats::protocols`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProtocolCount {
    /// `PacketRecord.protocol`'s name (`TCP`, `DNS`, ...).
    pub protocol: String,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One address of [`Stats::top_talkers`] / [`Stats::top_targets`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Talker {
    /// The address.
    pub ip: String,
    /// Packets counted for it (see docs/schema.md: the talkers are a
    /// heavy-hitter approximation).
    pub packets: u64,
    /// Bytes counted for it.
    pub bytes: u64,
}

/// One class of [`Stats::alerts_by_class`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClassCount {
    /// Alert class.
    pub class: String,
    /// Alerts of the class active in the window.
    pub alerts: u64,
    /// The highest severity among them.
    pub max_severity: String,
}

/// [`Stats::totals`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Packets in the window.
    pub packets: u64,
    /// Bytes in the window.
    pub bytes: u64,
    /// The busiest second's packets.
    pub peak_pps: u64,
    /// The busiest second's bits (bytes × 8).
    pub peak_bps: u64,
}

/// One sensor's health (the items of `/api/sensors`' `sensors` and the
/// live `sensor` message).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SensorHealth {
    /// The sensor.
    pub sensor_id: String,
    /// Its first batch's commit, ms since the Unix epoch.
    pub first_seen_ms: i64,
    /// Its last batch's commit, ms since the Unix epoch.
    pub last_seen_ms: i64,
    /// Records stored.
    pub records: u64,
    /// Batches stored.
    pub batches: u64,
    /// Records per second over the sensor's last 10 s of traffic (by its
    /// packet clock); 0 when stale.
    pub records_per_sec: f64,
    /// Packets the sensor has read since it started (its last report).
    pub packets_read: u64,
    /// Packets the kernel dropped (live capture only).
    pub kernel_dropped: Option<u64>,
    /// Packets the interface dropped (live capture only).
    pub if_dropped: Option<u64>,
    /// Packets with a parse problem.
    pub parse_errors: u64,
    /// Records waiting in the sensor's spool.
    pub spool_records: u64,
    /// Bytes of the sensor's spool.
    pub spool_bytes: u64,
    /// Records the sensor dropped (spool full).
    pub dropped_records: u64,
    /// Commit wall time minus the newest packet of the last batch, ms.
    pub ingest_lag_ms: Option<i64>,
    /// `ok`, `degraded` (drops in the last 60 s, a spool, or lag over
    /// 10 s) or `stale` (not seen for 30 s).
    pub status: &'static str,
}

/// One aggregator of `/api/sensors`' `aggregators`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AggregatorHealth {
    /// Its consumer name.
    pub consumer: String,
    /// Packet rows it has consumed.
    pub rows_processed: u64,
    /// Open flows at its last commit.
    pub active_flows: Option<i64>,
    /// Its last commit, ms since the Unix epoch.
    pub updated_ms: i64,
}

/// Series and protocol mix: per bucket and protocol.
const SERIES_SQL: &str = "SELECT (extract(epoch FROM sec)::bigint - $3) / $4, protocol, \
        sum(packets)::bigint, sum(bytes)::bigint \
    FROM traffic_seconds WHERE sec >= $1 AND sec < $2 GROUP BY 1, 2";

/// The busiest second (only needed when a step holds several).
const PEAK_SQL: &str = "SELECT coalesce(max(p), 0)::bigint, coalesce(max(b), 0)::bigint \
    FROM (SELECT sum(packets) AS p, sum(bytes) AS b FROM traffic_seconds \
          WHERE sec >= $1 AND sec < $2 GROUP BY sec) s";

/// Top addresses of one role.
const TALKERS_SQL: &str = "SELECT ip, sum(packets)::bigint AS p, sum(bytes)::bigint AS b \
    FROM traffic_talkers WHERE minute >= $1 AND minute < $2 AND role = $3 \
    GROUP BY ip ORDER BY b DESC, p DESC, ip LIMIT $4";

const FLOWS_ACTIVE_SQL: &str = "SELECT sum(active_flows)::bigint FROM aggregator_state";

/// Alerts whose span meets the window, by class.
const ALERTS_SQL: &str = "SELECT class, count(*), max(CASE severity WHEN 'critical' THEN 4 \
        WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)::int AS sev \
    FROM alerts WHERE last_ts >= $1 AND first_ts < $2 \
    GROUP BY class ORDER BY sev DESC, 2 DESC, class";

const SENSORS_SQL: &str = "SELECT s.sensor_id, \
        (extract(epoch FROM s.first_seen) * 1000)::bigint, \
        (extract(epoch FROM s.last_seen) * 1000)::bigint, \
        s.records, s.batches, s.packets_read, s.kernel_dropped, s.if_dropped, s.parse_errors, \
        s.spool_records, s.spool_bytes, s.dropped_records, s.ingest_lag_ms, \
        (extract(epoch FROM clock_timestamp() - s.last_seen) * 1000)::bigint, \
        (extract(epoch FROM clock_timestamp() - s.drops_at) * 1000)::bigint, \
        (SELECT coalesce(sum(t.packets), 0)::bigint FROM traffic_seconds t \
          WHERE t.sec > date_trunc('second', s.last_packet_ts) - make_interval(secs => $1) \
            AND t.sec <= s.last_packet_ts AND t.sensor_id = s.sensor_id) \
    FROM sensors s ORDER BY s.sensor_id";

const AGGREGATORS_SQL: &str = "SELECT consumer, rows_processed, active_flows, \
        (extract(epoch FROM updated_at) * 1000)::bigint \
    FROM aggregator_state ORDER BY consumer";

fn pg(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |source| StoreError::Postgres { context, source }
}

/// A `bigint` count as `u64` (negative reads as 0).
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Seconds since the epoch as a `timestamptz` parameter.
fn at(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Runs the stats queries (four or five short index range scans).
///
/// # Errors
/// [`StoreError::Postgres`] when a query fails.
pub fn query_stats(client: &mut postgres::Client, q: &StatsQuery) -> Result<Stats, StoreError> {
    let p = q.plan(now_ns());
    let (from, to) = (at(p.from), at(p.to));
    let mut series: Vec<Point> = (0..p.points)
        .map(|i| Point {
            t_ms: (p.from + i * p.step) * 1000,
            packets: 0,
            bytes: 0,
        })
        .collect();
    let mut protocols: HashMap<String, (u64, u64)> = HashMap::new();
    for row in client
        .query(SERIES_SQL, &[&from, &to, &p.from, &p.step])
        .map_err(pg("stats: series"))?
    {
        let i: i64 = row.try_get(0).map_err(pg("stats: series"))?;
        let proto: String = row.try_get(1).map_err(pg("stats: series"))?;
        let packets = unsigned(row.try_get(2).map_err(pg("stats: series"))?);
        let bytes = unsigned(row.try_get(3).map_err(pg("stats: series"))?);
        if let Some(pt) = usize::try_from(i).ok().and_then(|i| series.get_mut(i)) {
            pt.packets += packets;
            pt.bytes += bytes;
        }
        let e = protocols.entry(proto).or_default();
        e.0 += packets;
        e.1 += bytes;
    }
    let mut protocols: Vec<ProtocolCount> = protocols
        .into_iter()
        .map(|(protocol, (packets, bytes))| ProtocolCount {
            protocol,
            packets,
            bytes,
        })
        .collect();
    protocols.sort_by(|a, b| {
        (b.packets, b.bytes)
            .cmp(&(a.packets, a.bytes))
            .then_with(|| a.protocol.cmp(&b.protocol))
    });

    let mut totals = Totals {
        packets: series.iter().map(|s| s.packets).sum(),
        bytes: series.iter().map(|s| s.bytes).sum(),
        ..Totals::default()
    };
    if p.step == 1 {
        totals.peak_pps = series.iter().map(|s| s.packets).max().unwrap_or(0);
        totals.peak_bps = series.iter().map(|s| s.bytes).max().unwrap_or(0) * 8;
    } else {
        let row = client
            .query_one(PEAK_SQL, &[&from, &to])
            .map_err(pg("stats: peak"))?;
        totals.peak_pps = unsigned(row.try_get(0).map_err(pg("stats: peak"))?);
        totals.peak_bps = unsigned(row.try_get(1).map_err(pg("stats: peak"))?) * 8;
    }

    let minute_from = at(p.from - p.from.rem_euclid(60));
    let mut talkers = |role: i8| -> Result<Vec<Talker>, StoreError> {
        client
            .query(TALKERS_SQL, &[&minute_from, &to, &role, &TOP_N])
            .map_err(pg("stats: talkers"))?
            .iter()
            .map(|row| {
                let ip: IpAddr = row.try_get(0)?;
                Ok(Talker {
                    ip: ip.to_string(),
                    packets: unsigned(row.try_get(1)?),
                    bytes: unsigned(row.try_get(2)?),
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(pg("stats: talkers"))
    };
    let top_talkers = talkers(b's' as i8)?;
    let top_targets = talkers(b'd' as i8)?;

    let flows_active: Option<i64> = client
        .query_one(FLOWS_ACTIVE_SQL, &[])
        .and_then(|r| r.try_get(0))
        .map_err(pg("stats: flows active"))?;

    let alerts_by_class = client
        .query(ALERTS_SQL, &[&from, &to])
        .map_err(pg("stats: alerts"))?
        .iter()
        .map(|row| {
            let sev: i32 = row.try_get(2)?;
            Ok(ClassCount {
                class: row.try_get(0)?,
                alerts: unsigned(row.try_get(1)?),
                max_severity: ["unknown", "low", "medium", "high", "critical"]
                    .get(usize::try_from(sev).unwrap_or(0))
                    .copied()
                    .unwrap_or("unknown")
                    .to_owned(),
            })
        })
        .collect::<Result<_, postgres::Error>>()
        .map_err(pg("stats: alerts"))?;

    Ok(Stats {
        window_secs: u32::try_from(p.window).unwrap_or(MAX_WINDOW_SECS),
        step_secs: u32::try_from(p.step).unwrap_or(u32::MAX),
        from_ms: p.from * 1000,
        to_ms: p.to * 1000,
        series,
        protocols,
        top_talkers,
        top_targets,
        flows_active,
        alerts_by_class,
        totals,
    })
}

/// A sensor's status from its ages and counters (see
/// [`SensorHealth::status`]).
fn status(
    unseen_ms: i64,
    drops_ago_ms: Option<i64>,
    spool: u64,
    lag_ms: Option<i64>,
) -> &'static str {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if unseen_ms > ms(STALE_AFTER) {
        "stale"
    } else if drops_ago_ms.is_some_and(|a| a <= ms(DROPS_RECENT))
        || spool > 0
        || lag_ms.is_some_and(|l| l > ms(MAX_LAG))
    {
        "degraded"
    } else {
        "ok"
    }
}

/// Every sensor's health, by sensor id.
///
/// # Errors
/// [`StoreError::Postgres`] when a query fails.
pub fn query_sensors(client: &mut postgres::Client) -> Result<Vec<SensorHealth>, StoreError> {
    let span = RATE_SPAN_SECS as f64;
    client
        .query(SENSORS_SQL, &[&span])
        .map_err(pg("sensors"))?
        .iter()
        .map(|row| {
            let opt = |i: usize| -> Result<Option<u64>, postgres::Error> {
                Ok(row.try_get::<_, Option<i64>>(i)?.map(unsigned))
            };
            let unseen_ms: i64 = row.try_get(13)?;
            let spool_records = unsigned(row.try_get(9)?);
            let lag: Option<i64> = row.try_get(12)?;
            let status = status(unseen_ms, row.try_get(14)?, spool_records, lag);
            let recent = unsigned(row.try_get(15)?);
            Ok(SensorHealth {
                sensor_id: row.try_get(0)?,
                first_seen_ms: row.try_get(1)?,
                last_seen_ms: row.try_get(2)?,
                records: unsigned(row.try_get(3)?),
                batches: unsigned(row.try_get(4)?),
                records_per_sec: if status == "stale" {
                    0.0
                } else {
                    recent as f64 / span
                },
                packets_read: unsigned(row.try_get(5)?),
                kernel_dropped: opt(6)?,
                if_dropped: opt(7)?,
                parse_errors: unsigned(row.try_get(8)?),
                spool_records,
                spool_bytes: unsigned(row.try_get(10)?),
                dropped_records: unsigned(row.try_get(11)?),
                ingest_lag_ms: lag,
                status,
            })
        })
        .collect::<Result<_, postgres::Error>>()
        .map_err(pg("sensors"))
}

/// Every aggregator's progress, by consumer name.
///
/// # Errors
/// [`StoreError::Postgres`] when the query fails.
pub fn query_aggregators(
    client: &mut postgres::Client,
) -> Result<Vec<AggregatorHealth>, StoreError> {
    client
        .query(AGGREGATORS_SQL, &[])
        .map_err(pg("aggregators"))?
        .iter()
        .map(|row| {
            Ok(AggregatorHealth {
                consumer: row.try_get(0)?,
                rows_processed: unsigned(row.try_get(1)?),
                active_flows: row.try_get(2)?,
                updated_ms: row.try_get(3)?,
            })
        })
        .collect::<Result<_, postgres::Error>>()
        .map_err(pg("aggregators"))
}

/// `EXPLAIN` of every query of [`query_stats`] and [`query_sensors`] for
/// `q`, as `(name, plan text)`: how docs/schema.md and the tests show that
/// each one is an index range scan.
///
/// # Errors
/// [`StoreError::Postgres`] when a query fails.
pub fn explain_stats(
    client: &mut postgres::Client,
    q: &StatsQuery,
) -> Result<Vec<(&'static str, String)>, StoreError> {
    let p = q.plan(now_ns());
    let (from, to) = (at(p.from), at(p.to));
    let span = RATE_SPAN_SECS as f64;
    let role = b's' as i8;
    let queries: [(
        &'static str,
        &str,
        Vec<&(dyn postgres::types::ToSql + Sync)>,
    ); 6] = [
        ("series", SERIES_SQL, vec![&from, &to, &p.from, &p.step]),
        ("peak", PEAK_SQL, vec![&from, &to]),
        ("talkers", TALKERS_SQL, vec![&from, &to, &role, &TOP_N]),
        ("flows_active", FLOWS_ACTIVE_SQL, vec![]),
        ("alerts_by_class", ALERTS_SQL, vec![&from, &to]),
        ("sensors", SENSORS_SQL, vec![&span]),
    ];
    let mut out = Vec::new();
    for (name, sql, params) in queries {
        let plan = client
            .query(&format!("EXPLAIN {sql}"), &params)
            .map_err(pg("stats: explain"))?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(pg("stats: explain"))?
            .join("\n");
        out.push((name, plan));
    }
    Ok(out)
}

/// The JSON of `/api/sensors`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SensorsReply {
    /// Every sensor.
    pub sensors: Vec<SensorHealth>,
    /// Every aggregator.
    pub aggregators: Vec<AggregatorHealth>,
}

/// The query string's `(name, value)` pairs, each name at most once and
/// one of `allowed`.
pub(super) fn pairs(uri: &Uri, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|e| {
            super::params::bad("query", format!("cannot decode the query string: {e}"))
        })?;
    for (i, (k, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&k.as_str()) {
            return Err(super::params::bad(
                k,
                format!("unknown parameter {k:?} (allowed: {})", allowed.join(", ")),
            ));
        }
        if pairs[..i].iter().any(|(o, _)| o == k) {
            return Err(super::params::bad(k, format!("{k} is given twice")));
        }
    }
    Ok(pairs)
}

fn token(pairs: &[(String, String)]) -> Option<&str> {
    pairs
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
}

/// The [`StatsQuery`] of `window` (1..=86400 seconds, default 300) and
/// `to` (RFC 3339 or integer Unix ms, default now).
pub(super) fn stats_query(pairs: &[(String, String)]) -> Result<StatsQuery, ApiError> {
    let mut q = StatsQuery {
        window_secs: DEFAULT_WINDOW_SECS,
        to_ns: None,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "window" => {
                q.window_secs = v
                    .parse::<u32>()
                    .ok()
                    .filter(|w| (1..=MAX_WINDOW_SECS).contains(w))
                    .ok_or_else(|| {
                        super::params::bad(
                            "window",
                            format!("window {v:?} is not whole seconds in 1..={MAX_WINDOW_SECS}"),
                        )
                    })?;
            }
            "to" => {
                let us = super::params::time("to", v)?;
                let ns = unsigned(us).checked_mul(1000).ok_or_else(|| {
                    super::params::bad("to", format!("to {v:?} is past the year 2554"))
                })?;
                q.to_ns = Some(ns);
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The parameters of `/api/stats` (also checked by `api::check_query`).
pub(super) const STATS_PARAMS: &[&str] = &["window", "to", "token"];

/// `GET /api/stats?window=SECS&to=TIME`: [`Stats`] as JSON.
pub(crate) async fn stats_handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let run = async {
        let pairs = pairs(&uri, STATS_PARAMS);
        let tok = pairs.as_ref().ok().and_then(|p| token(p));
        check_read(&app, &headers, tok)?;
        let q = stats_query(&pairs?)?;
        let stats = app.pool.run(move |c| query_stats(c, &q)).await?;
        Ok::<_, ApiError>(axum::Json(stats).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/sensors`: [`SensorsReply`] as JSON.
pub(crate) async fn sensors_handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let run = async {
        let pairs = pairs(&uri, &["token"]);
        let tok = pairs.as_ref().ok().and_then(|p| token(p));
        check_read(&app, &headers, tok)?;
        pairs?;
        let reply = app
            .pool
            .run(|c| {
                Ok(SensorsReply {
                    sensors: query_sensors(c)?,
                    aggregators: query_aggregators(c)?,
                })
            })
            .await?;
        Ok::<_, ApiError>(axum::Json(reply).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(window: u32, to_s: u64) -> Plan {
        StatsQuery {
            window_secs: window,
            to_ns: Some(to_s * 1_000_000_000 + 999),
        }
        .plan(0)
    }

    #[test]
    fn step_keeps_the_series_under_600_points() {
        let p = plan(300, 1000);
        assert_eq!((p.step, p.points, p.from, p.to), (1, 300, 700, 1000));
        let p = plan(600, 1000);
        assert_eq!((p.step, p.points), (1, 600));
        let p = plan(601, 1000);
        assert_eq!((p.step, p.points), (2, 301));
        assert_eq!(p.from % 2, 0);
        assert!(p.from <= 1000 - 601 && p.from + p.points * p.step >= 1000);
        let p = plan(86_400, 1_700_000_123);
        assert_eq!((p.step, p.points), (144, 600));
        assert_eq!(p.from % 144, 0);
        for w in [
            1, 7, 599, 600, 601, 1199, 1200, 1201, 3600, 86_399, 86_400, 1_000_000,
        ] {
            let p = plan(w, 1_700_000_001);
            assert!(p.points <= 600 && p.points >= 1, "{w}");
            assert!(p.from + p.points * p.step >= p.to, "{w}");
            // Aligned buckets: the span starts within one step of
            // `to - window`.
            assert!((p.from - (p.to - p.window)).abs() < p.step, "{w}");
        }
        assert_eq!(plan(0, 10).window, 1);
    }

    #[test]
    fn status_rules() {
        assert_eq!(status(0, None, 0, Some(5)), "ok");
        assert_eq!(status(31_000, None, 0, Some(5)), "stale");
        assert_eq!(status(0, Some(1000), 0, None), "degraded");
        assert_eq!(status(0, Some(61_000), 0, None), "ok");
        assert_eq!(status(0, None, 3, None), "degraded");
        assert_eq!(status(0, None, 0, Some(10_001)), "degraded");
    }

    #[test]
    fn stats_params() {
        let p = |s: &str| -> Result<StatsQuery, ApiError> {
            let uri: Uri = format!("/api/stats?{s}").parse().unwrap();
            stats_query(&pairs(&uri, &["window", "to", "token"])?)
        };
        assert_eq!(p("").unwrap().window_secs, 300);
        assert_eq!(p("window=60&to=1000").unwrap().to_ns, Some(1_000_000_000));
        assert_eq!(
            p("to=1970-01-01T00:00:02Z").unwrap().to_ns,
            Some(2_000_000_000)
        );
        for bad in [
            "window=0",
            "window=86401",
            "window=x",
            "to=yesterday",
            "x=1",
            "window=1&window=2",
            "to=2600-01-01T00:00:00Z",
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.error),
                (400, "bad_parameter"),
                "{bad}"
            );
        }
    }
}
