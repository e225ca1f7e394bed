//! The axum side: routes, the ingest handler, health and metrics.

use super::auth::{AuthError, Tokens};
use super::metrics::{Gauges, RejectLabel};
use super::writer::{Job, Shared};
use crate::pg::WriteOutcome;
use crate::wire::{self, BodyFormat, DecodeLimits, RejectReason};
use crate::StoreError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use crossbeam_channel::{Sender, TrySendError};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{oneshot, Semaphore};

/// Most bytes of a refused (too large) body read and discarded.
const DRAIN_BYTES: usize = 64 << 20;
/// Longest time spent discarding a refused body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Sensor id given to legacy (bare JSON array) batches when ingest is open.
pub(crate) const LEGACY_SENSOR: &str = "legacy";

/// Everything a handler needs.
pub(crate) struct App {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tokens: Tokens,
    pub(crate) queue: Sender<Job>,
    pub(crate) queue_capacity: usize,
    pub(crate) decode_slots: Arc<Semaphore>,
    pub(crate) max_body_bytes: usize,
    pub(crate) limits: DecodeLimits,
    pub(crate) retry_after: HeaderValue,
    /// Connections for the query API and the live ticker.
    pub(crate) pool: Arc<super::api::QueryPool>,
    /// Dashboard WebSocket clients.
    pub(crate) hub: Arc<super::live::Hub>,
    /// Read-side settings (read tokens, limits).
    pub(crate) dashboard: super::config::DashboardConfig,
}

impl App {
    /// Every metric of the server (ingest, query API, WebSocket), in
    /// Prometheus text format.
    pub(crate) fn render_metrics(&self) -> String {
        let mut text = self.shared.metrics.render(self.gauges());
        super::api::render_metrics(self, &mut text);
        self.hub.render_metrics(&mut text);
        text
    }

    pub(crate) fn gauges(&self) -> Gauges {
        Gauges {
            queue_depth: self.queue.len(),
            queue_capacity: self.queue_capacity,
            db_up: self.shared.db_up(),
        }
    }
}

/// The routes.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ingest_packets", post(ingest))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(super::api::routes())
        .merge(super::live::routes())
        .merge(super::dashboard::routes())
        .with_state(app)
}

/// A refused request: status, machine label, human text.
struct Reject {
    status: StatusCode,
    label: RejectLabel,
    detail: String,
}

impl Reject {
    fn new(status: StatusCode, label: RejectLabel, detail: impl Into<String>) -> Self {
        Reject {
            status,
            label,
            detail: detail.into(),
        }
    }

    fn reason(reason: RejectReason, detail: impl Into<String>) -> Self {
        Reject::new(status_of(reason), RejectLabel::Reason(reason), detail)
    }

    fn queue_full(detail: impl Into<String>) -> Self {
        Reject::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RejectLabel::QueueFull,
            detail,
        )
    }

    fn db_down(detail: impl Into<String>) -> Self {
        Reject::new(StatusCode::SERVICE_UNAVAILABLE, RejectLabel::DbDown, detail)
    }
}

/// The HTTP status of a decoding or request problem.
fn status_of(reason: RejectReason) -> StatusCode {
    match reason {
        RejectReason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RejectReason::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RejectReason::Unauthorized => StatusCode::UNAUTHORIZED,
        RejectReason::Forbidden => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

async fn ingest(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let response = match ingest_batch(&app, &headers, body).await {
        Ok((outcome, records)) => {
            let status = match outcome {
                WriteOutcome::Inserted { .. } => "stored",
                WriteOutcome::Duplicate => "duplicate",
            };
            json(
                StatusCode::OK,
                serde_json::json!({ "status": status, "records": records }),
            )
        }
        Err(r) => {
            app.shared.metrics.reject(r.label);
            if r.status.is_server_error() {
                tracing::debug!("ingest refused ({}): {}", r.label.as_str(), r.detail);
            }
            let mut resp = json(
                r.status,
                serde_json::json!({ "error": r.label.as_str(), "reason": r.detail }),
            );
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, app.retry_after.clone());
            } else if r.status == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            resp
        }
    };
    app.shared.metrics.request(response.status().as_u16());
    response
}

/// Authenticates, reads, decodes and enqueues one batch, then waits for
/// its writer's answer (sent after COMMIT). Returns the outcome and the
/// number of records in the batch.
async fn ingest_batch(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<(WriteOutcome, usize), Reject> {
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let token_sensor = app.tokens.check(auth).map_err(|e| match e {
        AuthError::Missing => Reject::reason(
            RejectReason::Unauthorized,
            "missing or malformed Authorization header (expected: Bearer <token>)",
        ),
        AuthError::Unknown => Reject::reason(RejectReason::Forbidden, "unknown token"),
    })?;
    if !app.shared.db_up() {
        return Err(Reject::db_down(
            "the database is down; retry later (nothing was written)",
        ));
    }

    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = BodyFormat::from_content_type(content_type).ok_or_else(|| {
        Reject::reason(
            RejectReason::UnsupportedMediaType,
            format!(
                "Content-Type {content_type:?} is not supported (use {} or {})",
                wire::CONTENT_TYPE_MSGPACK,
                wire::CONTENT_TYPE_JSON
            ),
        )
    })?;
    let zstd = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => false,
        Some("zstd") => true,
        Some(other) => {
            return Err(Reject::reason(
                RejectReason::UnsupportedMediaType,
                format!("Content-Encoding {other:?} is not supported (use zstd or none)"),
            ))
        }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        drain(body).await;
        return Err(too_large(app.max_body_bytes));
    }

    // Bounded memory: at most `decode_slots` bodies are read and decoded
    // at once, each at most `max_body_bytes`.
    let _slot = app.decode_slots.clone().try_acquire_owned().map_err(|_| {
        Reject::queue_full("the server is busy decoding other batches; retry later")
    })?;
    let bytes = read_body(body, app.max_body_bytes, declared, format).await?;
    app.shared.metrics.body_bytes(bytes.len());

    let limits = app.limits;
    let decoded =
        tokio::task::spawn_blocking(move || wire::decode_body(&bytes, format, zstd, &limits))
            .await
            .map_err(|e| {
                Reject::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    RejectLabel::Reason(malformed(format)),
                    format!("decoder failed: {e}"),
                )
            })?
            .map_err(|e| match e {
                StoreError::BadBatch { reason, detail } => Reject::reason(reason, detail),
                other => Reject::reason(malformed(format), other.to_string()),
            })?;
    drop(_slot);

    let mut batch = decoded.batch;
    if decoded.legacy {
        // A bare JSON array: the old clients' format, with no identity.
        // It gets a fresh stream per request, so a retried legacy request
        // is stored again (legacy ingest has no exactly-once).
        batch.sensor_id = token_sensor.unwrap_or(LEGACY_SENSOR).to_owned();
        batch.stream_id = wire::new_stream_id();
        batch.seq = 0;
    } else if let Some(sensor) = token_sensor {
        if batch.sensor_id != sensor {
            return Err(Reject::reason(
                RejectReason::Forbidden,
                format!(
                    "this token belongs to sensor {sensor:?}, not to {:?}",
                    batch.sensor_id
                ),
            ));
        }
    }
    let records = batch.records.len();

    let (reply, answer) = oneshot::channel();
    app.queue
        .try_send(Job {
            batch,
            stats: decoded.stats,
            reply,
        })
        .map_err(|e| match e {
            TrySendError::Full(_) => Reject::queue_full(format!(
                "the writer queue is full ({} batches); retry later",
                app.queue_capacity
            )),
            TrySendError::Disconnected(_) => Reject::queue_full("the server is shutting down"),
        })?;
    match answer.await {
        Ok(Ok(outcome)) => Ok((outcome, records)),
        Ok(Err(e)) => Err(Reject::db_down(format!(
            "database write failed, nothing was stored; retry later: {e}"
        ))),
        Err(_) => Err(Reject::db_down("the writer stopped before answering")),
    }
}

fn malformed(format: BodyFormat) -> RejectReason {
    match format {
        BodyFormat::Msgpack => RejectReason::MalformedMsgpack,
        BodyFormat::Json => RejectReason::MalformedJson,
    }
}

fn too_large(limit: usize) -> Reject {
    Reject::reason(
        RejectReason::TooLarge,
        format!("request body over the limit of {limit} bytes; send smaller batches"),
    )
}

/// Reads the body, never holding more than `limit` bytes.
async fn read_body(
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
    format: BodyFormat,
) -> Result<Bytes, Reject> {
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut buf = Vec::with_capacity(hint);
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame
            .map_err(|e| Reject::reason(malformed(format), format!("cannot read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drop(buf);
                drain(body).await;
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// Reads and discards the rest of a refused body (at most [`DRAIN_BYTES`]
/// for at most [`DRAIN_TIME`]), so a client that writes its whole body
/// before reading the answer gets the 413 instead of a broken pipe. A
/// larger or slower body is cut off (the connection closes).
async fn drain(mut body: Body) {
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame.into_data() {
                match left.checked_sub(data.len()) {
                    Some(l) => left = l,
                    None => break,
                }
            }
        }
    })
    .await;
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let g = app.gauges();
    if g.db_up {
        json(
            StatusCode::OK,
            serde_json::json!({
                "status": "ok",
                "database": "up",
                "queue_depth": g.queue_depth,
                "queue_capacity": g.queue_capacity,
            }),
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "degraded", "database": "down" }),
        )
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
