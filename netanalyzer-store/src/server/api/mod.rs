//! The query API (`/api/*`): JSON, paginated by keyset cursor, read
//! through a small pool of PostgreSQL connections.
//!
//! Every list answers `{"items": [...], "next_cursor": "<opaque>" | null}`
//! (newest first); pass `next_cursor` back as `cursor` with the same
//! filters for the next page. Parameters, limits and the JSON of each item
//! are documented in `docs/api.md`. Errors are
//! `{"error": "<label>", "reason": "<human text>"}`: 400 `bad_parameter`,
//! 401 `unauthorized`, 403 `forbidden`, 503 `busy` / `db_down` / `timeout`
//! (with `Retry-After`).
//!
//! # Design
//!
//! - Handlers check the read token, then the parameters, then run one
//!   blocking closure on a pooled connection (`QueryPool::run`). The
//!   whole page is read before the answer is written, so a slow or
//!   vanished client never holds a database connection.
//! - Pages are at most `params::MAX_LIMIT` (1000) items, and every query has a
//!   time window (default: the last 24 h) of bounded span, so no query is
//!   unbounded.

/// Alert rows as JSON (`ALERT_SELECT`, `alert_json`), shared with the
/// WebSocket snapshot.
pub(crate) mod alerts;
mod check;
mod cursor;
mod flows;
mod packets;
mod params;
pub mod stats;
mod value;

use super::auth::{check_read_token, AuthError};
use super::http::App;
use crate::StoreError;
use axum::extract::{Path, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cursor::Cursor;
use params::{Params, RawParams};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub use check::{check_query, check_query_at, cursor_round_trip, ApiEndpoint, CursorValues};

/// Longest wait for a free connection before answering 503 `busy`.
const BUSY_WAIT: Duration = Duration::from_secs(1);
/// Longest wait for a new connection to the database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A pool of PostgreSQL connections for queries (sync `postgres` clients,
/// used on tokio's blocking pool): at most `size` at once, opened lazily
/// and reopened after a failure, each with `statement_timeout`.
pub(crate) struct QueryPool {
    conninfo: Arc<str>,
    size: usize,
    timeout: Duration,
    slots: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<postgres::Client>>>,
    /// The API's counters (rendered by [`render_metrics`]).
    metrics: Arc<ApiMetrics>,
}

impl QueryPool {
    /// A pool of at most `size` connections to `conninfo`, opened lazily,
    /// each with `statement_timeout = timeout`.
    pub(crate) fn new(conninfo: &str, size: usize, timeout: Duration) -> Self {
        QueryPool {
            conninfo: conninfo.into(),
            size: size.max(1),
            timeout,
            slots: Arc::new(Semaphore::new(size.max(1))),
            idle: Arc::new(Mutex::new(Vec::new())),
            metrics: Arc::new(ApiMetrics::default()),
        }
    }

    /// Runs `f` on a pooled connection on the blocking pool.
    ///
    /// # Errors
    ///
    /// 503 `busy` when every connection stayed taken for a second; 503
    /// `db_down` when no connection can be opened or `f` fails (that
    /// connection is closed, the next call opens a new one); 503 `timeout`
    /// when the statement ran past `statement_timeout`.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut postgres::Client) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = match tokio::time::timeout(BUSY_WAIT, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(p)) => p,
            _ => {
                self.metrics.busy.fetch_add(1, Relaxed);
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!(
                        "all {} query connections stayed busy for {BUSY_WAIT:?}; retry later",
                        self.size
                    ),
                ));
            }
        };
        let (conninfo, idle, metrics, timeout) = (
            self.conninfo.clone(),
            self.idle.clone(),
            self.metrics.clone(),
            self.timeout,
        );
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            // Held until the connection is back in `idle` (or dropped).
            let _permit = permit;
            let pooled = idle.lock().ok().and_then(|mut v| v.pop());
            let mut client = match pooled {
                Some(c) if !c.is_closed() => c,
                _ => open(&conninfo, timeout).inspect_err(|_| {
                    metrics.db_errors.fetch_add(1, Relaxed);
                })?,
            };
            match f(&mut client) {
                Ok(v) => {
                    if let Ok(mut idle) = idle.lock() {
                        idle.push(client);
                    }
                    Ok(v)
                }
                Err(e) => {
                    metrics.db_errors.fetch_add(1, Relaxed);
                    if !is_timeout(&e) {
                        // Drop it: the next call connects afresh.
                        return Err(e);
                    }
                    if let Ok(mut idle) = idle.lock() {
                        idle.push(client);
                    }
                    Err(e)
                }
            }
        });
        let result = task.await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("query task failed: {e}"),
            )
        })?;
        self.metrics.query(started.elapsed());
        result.map_err(|e| {
            if is_timeout(&e) {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    format!(
                        "the query ran longer than {:?}; narrow the window or the filters",
                        self.timeout
                    ),
                )
            } else {
                tracing::debug!("api query failed: {e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "db_down",
                    format!("the database is unavailable; retry later ({e})"),
                )
            }
        })
    }

    /// Connections taken right now.
    fn in_use(&self) -> usize {
        self.size - self.slots.available_permits()
    }

    /// Open idle connections.
    fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |v| v.len())
    }
}

/// Opens one query connection with `statement_timeout` set.
fn open(conninfo: &str, timeout: Duration) -> Result<postgres::Client, StoreError> {
    let mut cfg: postgres::Config = conninfo.parse().map_err(|source| StoreError::Postgres {
        context: "api: parse conninfo",
        source,
    })?;
    cfg.connect_timeout(CONNECT_TIMEOUT);
    cfg.application_name("netanalyzer-api");
    let mut c = cfg
        .connect(postgres::NoTls)
        .map_err(crate::pg::pg_err("api: connect"))?;
    c.batch_execute(&format!(
        "SET statement_timeout = {}; SET default_transaction_read_only = on; \
         SET plan_cache_mode = force_custom_plan",
        timeout.as_millis().max(1)
    ))
    .map_err(crate::pg::pg_err("api: set statement_timeout"))?;
    Ok(c)
}

/// Whether the error is PostgreSQL cancelling a statement (the timeout).
fn is_timeout(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres { source, .. }
        if source.code() == Some(&postgres::error::SqlState::QUERY_CANCELED))
}

/// A refused or failed API request: `{"error": error, "reason": reason}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// HTTP status.
    pub(crate) status: StatusCode,
    /// Machine label, e.g. `bad_parameter`, `unauthorized`, `db_down`.
    pub(crate) error: &'static str,
    /// Human text.
    pub(crate) reason: String,
}

impl ApiError {
    /// A new error.
    pub(crate) fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            reason: reason.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(json!({ "error": self.error, "reason": self.reason })),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        } else if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Checks the read token (header `Authorization: Bearer`, or `token` from
/// the query string); Ok when reading is open (no read token configured).
///
/// # Errors
/// 401 `unauthorized` without a token, 403 `forbidden` with a wrong one.
pub(crate) fn check_read(
    app: &App,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(), ApiError> {
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    check_read_token(&app.dashboard.read_tokens, auth, query_token).map_err(|e| match e {
        AuthError::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a read token is required: send Authorization: Bearer <token> or ?token=<token>",
        ),
        AuthError::Unknown => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", "unknown read token")
        }
    })
}

/// The endpoints, as counted in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Flows,
    Alerts,
    RawPackets,
    RawPacketsLast,
    Last10,
    AllTraffic,
    Stats,
    Sensors,
}

impl Endpoint {
    const ALL: [Endpoint; 8] = [
        Endpoint::Flows,
        Endpoint::Alerts,
        Endpoint::RawPackets,
        Endpoint::RawPacketsLast,
        Endpoint::Last10,
        Endpoint::AllTraffic,
        Endpoint::Stats,
        Endpoint::Sensors,
    ];

    fn label(self) -> &'static str {
        match self {
            Endpoint::Flows => "flows",
            Endpoint::Alerts => "alerts",
            Endpoint::RawPackets => "raw_packets",
            Endpoint::RawPacketsLast => "raw_packets_last",
            Endpoint::Last10 => "last10",
            Endpoint::AllTraffic => "alltraffic",
            Endpoint::Stats => "stats",
            Endpoint::Sensors => "sensors",
        }
    }
}

/// The `/api/*` routes.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/flows", get(track(Endpoint::Flows, flows_handler)))
        .route("/api/alerts", get(track(Endpoint::Alerts, alerts_handler)))
        .route(
            "/api/raw_packets",
            get(track(Endpoint::RawPackets, raw_packets_handler)),
        )
        .route(
            "/api/raw_packets/last/{n}",
            get(track(Endpoint::RawPacketsLast, last_n_handler)),
        )
        .route("/api/last10", get(track(Endpoint::Last10, last10_handler)))
        .route(
            "/api/alltraffic",
            get(track(Endpoint::AllTraffic, alltraffic_handler)),
        )
        .route(
            "/api/stats",
            get(track(Endpoint::Stats, stats::stats_handler)),
        )
        .route(
            "/api/sensors",
            get(track(Endpoint::Sensors, stats::sensors_handler)),
        )
}

/// Wraps a handler so its answers are counted by endpoint and status, with
/// their latency.
fn track<H, T>(
    endpoint: Endpoint,
    handler: H,
) -> impl Fn(
    State<Arc<App>>,
    Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
       + Clone
       + Send
       + Sync
       + 'static
where
    H: Handler<T, Arc<App>> + Sync,
    T: 'static,
{
    move |State(app): State<Arc<App>>, req: Request| {
        let handler = handler.clone();
        Box::pin(async move {
            let started = Instant::now();
            let resp = handler.call(req, app.clone()).await;
            app.pool
                .metrics
                .request(endpoint, resp.status().as_u16(), started.elapsed());
            resp
        })
    }
}

/// Parameters of each list.
const FLOW_PARAMS: &[&str] = &[
    "from", "to", "ip", "src_ip", "dst_ip", "port", "proto", "label", "limit", "cursor",
];
const ALERT_PARAMS: &[&str] = &["from", "to", "severity", "class", "limit", "cursor"];
const PACKET_PARAMS: &[&str] = &[
    "from", "to", "ip", "src_ip", "dst_ip", "port", "proto", "limit", "cursor",
];
const LAST_N_PARAMS: &[&str] = &["from", "to", "ip", "src_ip", "dst_ip", "port", "proto"];

/// What a paginated list accepts: its parameters, its longest window and
/// the kind of its cursors.
#[derive(Clone, Copy, Debug)]
struct List {
    allowed: &'static [&'static str],
    max_span_us: i64,
    cursor_kind: char,
}

/// `/api/flows`.
const FLOWS: List = List {
    allowed: FLOW_PARAMS,
    max_span_us: params::MAX_SPAN_US,
    cursor_kind: 'f',
};
/// `/api/alerts`.
const ALERTS: List = List {
    allowed: ALERT_PARAMS,
    max_span_us: params::MAX_SPAN_US,
    cursor_kind: 'a',
};
/// `/api/raw_packets` and `/api/alltraffic`.
const PACKETS: List = List {
    allowed: PACKET_PARAMS,
    max_span_us: params::MAX_PACKET_SPAN_US,
    cursor_kind: 'p',
};

impl List {
    /// Checks the parameters and decodes the cursor: everything a list
    /// handler judges before it touches the database. [`check_query`]
    /// runs this same code, so the `api_query` fuzz target tests it.
    fn check(self, raw: &RawParams, now_us: i64) -> Result<(Params, Option<Cursor>), ApiError> {
        let p = raw.check(self.allowed, now_us, self.max_span_us)?;
        let cursor = p
            .cursor
            .as_deref()
            .map(|c| Cursor::decode(c, self.cursor_kind))
            .transpose()?;
        Ok((p, cursor))
    }
}

/// The token, then the query string's pairs (judged next by
/// [`List::check`] or [`RawParams::check`]).
fn admit(app: &App, headers: &HeaderMap, query: Option<&str>) -> Result<RawParams, ApiError> {
    let raw = RawParams::parse(query);
    // A query string that cannot be decoded has no token either.
    let token = raw.as_ref().ok().and_then(|r| r.token());
    check_read(app, headers, token)?;
    raw
}

fn page_json(items: Vec<Value>, next: Option<Cursor>) -> Response {
    axum::Json(json!({
        "items": items,
        "next_cursor": next.map(|c| c.encode()),
    }))
    .into_response()
}

/// Runs one page's query (its plan first, into `plans`, when asked): at
/// most `limit` rows, and whether the table holds more (the query asks for
/// `limit + 1`).
///
/// # Errors
/// [`StoreError::Postgres`] when the query fails.
fn query_page(
    c: &mut postgres::Client,
    sql: &str,
    w: &params::Where,
    limit: usize,
    plans: Option<&mut Vec<String>>,
    context: &'static str,
) -> Result<(Vec<postgres::Row>, bool), StoreError> {
    if let Some(plans) = plans {
        plans.push(explain_text(c, sql, &w.args())?);
    }
    let mut rows = c
        .query(sql, &w.args())
        .map_err(crate::pg::pg_err(context))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok((rows, more))
}

/// One page of a cursor-paginated table: `page` runs on a pooled
/// connection with the checked parameters and the decoded cursor.
type PageFn = fn(
    &mut postgres::Client,
    &Params,
    Option<&Cursor>,
    Option<&mut Vec<String>>,
) -> Result<(Vec<serde_json::Value>, Option<Cursor>), StoreError>;

/// Token, parameters and cursor of `list`, then one page from `page`.
async fn list_page(
    app: &App,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    list: &List,
    page: PageFn,
) -> Response {
    let run = async {
        let raw = admit(app, headers, uri.query())?;
        let (p, cursor) = list.check(&raw, params::now_us())?;
        let (items, next) = app
            .pool
            .run(move |c| page(c, &p, cursor.as_ref(), None))
            .await?;
        Ok::<_, ApiError>(page_json(items, next))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn flows_handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    list_page(&app, &headers, &uri, &FLOWS, flows::page).await
}

async fn alerts_handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    list_page(&app, &headers, &uri, &ALERTS, alerts::page).await
}

/// A page of packets for `p`, after `cursor`.
async fn packet_page(
    app: &App,
    p: Params,
    cursor: Option<Cursor>,
) -> Result<packets::PacketPage, ApiError> {
    app.pool
        .run(move |c| packets::page(c, &p, cursor.as_ref(), None))
        .await
}

async fn raw_packets_handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let run = async {
        let raw = admit(&app, &headers, uri.query())?;
        let (p, cursor) = PACKETS.check(&raw, params::now_us())?;
        let page = packet_page(&app, p, cursor).await?;
        Ok::<_, ApiError>(page_json(page.items, page.next))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn last_n_handler(
    State(app): State<Arc<App>>,
    Path(n): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let run = async {
        let mut p = admit(&app, &headers, uri.query())?.check(
            LAST_N_PARAMS,
            params::now_us(),
            params::MAX_PACKET_SPAN_US,
        )?;
        p.limit = match n.parse::<u64>() {
            Ok(n) if n >= 1 => usize::try_from(n)
                .unwrap_or(params::MAX_LIMIT)
                .min(params::MAX_LIMIT),
            _ => {
                return Err(params::bad(
                    "n",
                    format!(
                        "n {n:?} must be a positive number (capped at {})",
                        params::MAX_LIMIT
                    ),
                ))
            }
        };
        // No `cursor` among LAST_N_PARAMS: always the first page.
        let page = packet_page(&app, p, None).await?;
        Ok::<_, ApiError>(page_json(page.items, None))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn last10_handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let run = async {
        let mut p = admit(&app, &headers, uri.query())?.check(
            &[],
            params::now_us(),
            params::MAX_PACKET_SPAN_US,
        )?;
        p.limit = 10;
        let page = packet_page(&app, p, None).await?;
        Ok::<_, ApiError>(axum::Json(Value::Array(page.items)).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn alltraffic_handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let run = async {
        let raw = admit(&app, &headers, uri.query())?;
        let (p, cursor) = PACKETS.check(&raw, params::now_us())?;
        let page = packet_page(&app, p, cursor).await?;
        let mut resp = axum::Json(Value::Array(page.items)).into_response();
        if let Some(next) = page.next {
            let cursor = next.encode();
            // The same query with this cursor (the cursor is hex: no
            // escaping needed; other parameters are kept as sent).
            let mut query: Vec<&str> = uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("cursor="))
                .collect();
            let cursor_kv = format!("cursor={cursor}");
            query.push(&cursor_kv);
            let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"));
            if let (Ok(l), Ok(c)) = (HeaderValue::from_str(&link), HeaderValue::from_str(&cursor)) {
                resp.headers_mut().insert(header::LINK, l);
                resp.headers_mut().insert("x-next-cursor", c);
            }
        }
        Ok::<_, ApiError>(resp)
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of `sql`, as text.
fn explain_text(
    c: &mut postgres::Client,
    sql: &str,
    args: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<String, StoreError> {
    let rows = c
        .query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), args)
        .map_err(crate::pg::pg_err("api: explain"))?;
    let mut text = format!("{sql}\n");
    for r in rows {
        text.push_str(r.get::<_, &str>(0));
        text.push('\n');
    }
    Ok(text)
}

/// The query plans of one API request, for benchmarks and docs: runs the
/// queries `GET {path}?{query}` would run, on `client`, each under
/// `EXPLAIN (ANALYZE, BUFFERS)` (and again plainly, to follow the walk of
/// `/api/raw_packets`), and returns each statement followed by its plan.
/// `path` is one of `/api/flows`, `/api/alerts`, `/api/raw_packets`.
///
/// # Errors
/// The parameter error's reason, or the database error, as text.
pub fn explain(
    client: &mut postgres::Client,
    path: &str,
    query: Option<&str>,
) -> Result<Vec<String>, String> {
    let raw = RawParams::parse(query).map_err(|e| e.reason)?;
    let now = params::now_us();
    let mut plans = Vec::new();
    let db = |e: StoreError| e.to_string();
    match path {
        "/api/flows" => {
            let (p, cur) = FLOWS.check(&raw, now).map_err(|e| e.reason)?;
            flows::page(client, &p, cur.as_ref(), Some(&mut plans)).map_err(db)?;
        }
        "/api/alerts" => {
            let (p, cur) = ALERTS.check(&raw, now).map_err(|e| e.reason)?;
            alerts::page(client, &p, cur.as_ref(), Some(&mut plans)).map_err(db)?;
        }
        "/api/raw_packets" => {
            let (p, cur) = PACKETS.check(&raw, now).map_err(|e| e.reason)?;
            packets::page(client, &p, cur.as_ref(), Some(&mut plans)).map_err(db)?;
        }
        other => return Err(format!("no plans for {other}")),
    }
    Ok(plans)
}

/// Status codes counted apart; anything else is `other`.
const CODES: [u16; 7] = [200, 400, 401, 403, 404, 500, 503];
/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters of the API.
#[derive(Debug, Default)]
struct ApiMetrics {
    requests: [[AtomicU64; CODES.len() + 1]; Endpoint::ALL.len()],
    buckets: [[AtomicU64; BUCKETS.len()]; Endpoint::ALL.len()],
    micros: [AtomicU64; Endpoint::ALL.len()],
    count: [AtomicU64; Endpoint::ALL.len()],
    query_micros: AtomicU64,
    queries: AtomicU64,
    busy: AtomicU64,
    db_errors: AtomicU64,
}

impl ApiMetrics {
    fn request(&self, e: Endpoint, code: u16, took: Duration) {
        let i = Endpoint::ALL.iter().position(|x| *x == e).unwrap_or(0);
        let c = CODES.iter().position(|x| *x == code).unwrap_or(CODES.len());
        self.requests[i][c].fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        for (b, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i][b].fetch_add(1, Relaxed);
            }
        }
        self.micros[i].fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.count[i].fetch_add(1, Relaxed);
    }

    fn query(&self, took: Duration) {
        self.queries.fetch_add(1, Relaxed);
        self.query_micros
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// Appends the API's metrics (Prometheus text) to `out`.
pub(crate) fn render_metrics(app: &App, out: &mut String) {
    let m = &app.pool.metrics;
    let o = out;
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        o,
        "netanalyzer_api_requests_total",
        "counter",
        "Answered /api/* requests, by endpoint and HTTP status code.",
    );
    for (i, e) in Endpoint::ALL.iter().enumerate() {
        for (c, n) in m.requests[i].iter().enumerate() {
            let code = CODES.get(c).map_or("other".to_owned(), |c| c.to_string());
            let _ = writeln!(
                o,
                "netanalyzer_api_requests_total{{endpoint=\"{}\",code=\"{code}\"}} {}",
                e.label(),
                n.load(Relaxed)
            );
        }
    }
    family(
        o,
        "netanalyzer_api_request_duration_seconds",
        "histogram",
        "Time from request to answer of /api/* requests (token, parameters, query, JSON), by endpoint.",
    );
    for (i, e) in Endpoint::ALL.iter().enumerate() {
        let l = e.label();
        for (b, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "netanalyzer_api_request_duration_seconds_bucket{{endpoint=\"{l}\",le=\"{le}\"}} {}",
                m.buckets[i][b].load(Relaxed)
            );
        }
        let count = m.count[i].load(Relaxed);
        let _ = writeln!(
            o,
            "netanalyzer_api_request_duration_seconds_bucket{{endpoint=\"{l}\",le=\"+Inf\"}} {count}\n\
             netanalyzer_api_request_duration_seconds_sum{{endpoint=\"{l}\"}} {}\n\
             netanalyzer_api_request_duration_seconds_count{{endpoint=\"{l}\"}} {count}",
            m.micros[i].load(Relaxed) as f64 / 1e6
        );
    }
    family(
        o,
        "netanalyzer_api_query_seconds_total",
        "counter",
        "Seconds spent running queries on pooled connections (API, stats).",
    );
    let _ = writeln!(
        o,
        "netanalyzer_api_query_seconds_total {}",
        m.query_micros.load(Relaxed) as f64 / 1e6
    );
    let gauges: [(&str, &str, &str, u64); 6] = [
        (
            "netanalyzer_api_queries_total",
            "counter",
            "Queries run on pooled connections.",
            m.queries.load(Relaxed),
        ),
        (
            "netanalyzer_api_pool_busy_total",
            "counter",
            "Requests answered 503 busy: every query connection stayed taken for 1 s.",
            m.busy.load(Relaxed),
        ),
        (
            "netanalyzer_api_db_errors_total",
            "counter",
            "Failed query connections or queries (answered 503 db_down or timeout).",
            m.db_errors.load(Relaxed),
        ),
        (
            "netanalyzer_api_pool_in_use",
            "gauge",
            "Query connections taken right now.",
            app.pool.in_use() as u64,
        ),
        (
            "netanalyzer_api_pool_idle",
            "gauge",
            "Open query connections waiting for a query.",
            app.pool.idle() as u64,
        ),
        (
            "netanalyzer_api_pool_size",
            "gauge",
            "Most query connections (query_connections).",
            app.pool.size as u64,
        ),
    ];
    for (name, kind, help, v) in gauges {
        family(o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    }
}
