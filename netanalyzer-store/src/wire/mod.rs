//! The batch wire format: a versioned msgpack (or JSON) envelope around a
//! [`PacketBatch`], optionally zstd-compressed.
//!
//! The full specification, for other tools, is `docs/wire-format.md`. In
//! short, a body is a msgpack map with string keys, in this order:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `v` | uint | [`WIRE_VERSION`] (1) |
//! | `sensor_id` | str | 1..=64 chars of `[A-Za-z0-9._:-]` |
//! | `stream_id` | uint | random per sensor start, `<= i64::MAX` |
//! | `seq` | uint | batch number within the stream, `<= i64::MAX` |
//! | `count` | uint | number of records |
//! | `stats` | map or nil | [`SensorStats`], optional |
//! | `records` | array of maps | [`PacketRecord`]s with named fields, last |
//!
//! `(sensor_id, stream_id, seq)` names a batch exactly; the server's
//! exactly-once bookkeeping relies on it.
//!
//! - [`BatchEncoder`] streams records into one reused buffer (no
//!   allocation per record once warm) and seals them into an
//!   [`EncodedBatch`]; [`encode_batch`] does the same for a whole
//!   [`PacketBatch`].
//! - [`decode_body`] is the validating decoder of the server: bounded zstd,
//!   msgpack or JSON (envelope or legacy bare array), then every check,
//!   each failure a [`StoreError::BadBatch`] with a [`RejectReason`].
//!
//! ```
//! use netanalyzer_core::PacketRecord;
//! use netanalyzer_store::wire::{decode_body, BatchEncoder, BodyFormat, Compression, DecodeLimits};
//!
//! let mut enc = BatchEncoder::new("sensor-1", 42, Compression::Zstd(3));
//! enc.push(&PacketRecord { ts_ns: 1, wire_len: 60, cap_len: 60, ..Default::default() })?;
//! let sealed = enc.finish(0, None)?;
//! assert!(enc.is_empty());
//! let back = decode_body(&sealed.body, BodyFormat::Msgpack, sealed.zstd, &DecodeLimits::default())?;
//! assert_eq!(back.batch.sensor_id, "sensor-1");
//! assert_eq!(back.batch.records.len(), 1);
//! # Ok::<(), netanalyzer_store::StoreError>(())
//! ```
//!
//! [`PacketRecord`]: netanalyzer_core::PacketRecord
//! [`PacketBatch`]: netanalyzer_core::PacketBatch

mod check;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use check::{sanitize_record, MAX_SENSOR_ID_CHARS, MAX_STRING_BYTES};
pub use decode::decode_body;
pub use encode::{encode_batch, encode_json, BatchEncoder};

/// The envelope version this crate writes and accepts.
pub const WIRE_VERSION: u32 = 1;

/// The Content-Type of a msgpack batch. The decoder side (the server)
/// also accepts `application/msgpack` and `application/x-msgpack`.
pub const CONTENT_TYPE_MSGPACK: &str = "application/vnd.netanalyzer.batch+msgpack";

/// The Content-Type of a JSON batch (envelope object or legacy array).
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Other Content-Types accepted as msgpack.
pub const CONTENT_TYPES_MSGPACK_ALIASES: [&str; 2] =
    ["application/msgpack", "application/x-msgpack"];

/// Body compression chosen by the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain body.
    None,
    /// zstd at the given level (1..=19 sensible; 3 is zstd's default and
    /// ours). Sent with `Content-Encoding: zstd`.
    Zstd(i32),
}

impl Default for Compression {
    /// `Zstd(3)`: about 8x smaller packet batches for little CPU.
    fn default() -> Self {
        Compression::Zstd(3)
    }
}

/// The serialization of a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// msgpack ([`CONTENT_TYPE_MSGPACK`]).
    Msgpack,
    /// JSON ([`CONTENT_TYPE_JSON`]).
    Json,
}

impl BodyFormat {
    /// The format of a Content-Type header value (parameters such as
    /// `; charset=utf-8` and letter case are ignored), or `None` when the
    /// type is not one we speak (answer 415).
    pub fn from_content_type(value: &str) -> Option<BodyFormat> {
        let mime = value.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case(CONTENT_TYPE_MSGPACK)
            || CONTENT_TYPES_MSGPACK_ALIASES
                .iter()
                .any(|a| mime.eq_ignore_ascii_case(a))
        {
            Some(BodyFormat::Msgpack)
        } else if mime.eq_ignore_ascii_case(CONTENT_TYPE_JSON) {
            Some(BodyFormat::Json)
        } else {
            None
        }
    }

    /// The canonical Content-Type of this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Msgpack => CONTENT_TYPE_MSGPACK,
            BodyFormat::Json => CONTENT_TYPE_JSON,
        }
    }
}

/// What the sensor reports about itself with each batch (optional in the envelope).
///
/// Missing keys decode as 0 / `None` and unknown keys are ignored, so
/// sensors and servers of different versions understand each other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SensorStats {
    /// Packets the sensor has read since it started.
    pub packets: u64,
    /// Packets the kernel dropped (live capture only).
    pub kernel_dropped: Option<u64>,
    /// Packets the interface dropped (live capture only).
    pub if_dropped: Option<u64>,
    /// Packets with a parse problem (counted, still logged).
    pub parse_errors: u64,
    /// Records waiting in the on-disk spool.
    pub spool_records: u64,
    /// Bytes of the on-disk spool.
    pub spool_bytes: u64,
    /// Records dropped by the spool-full policy since start.
    pub dropped_records: u64,
}

/// A decoded and validated batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch {
    /// The batch; for a legacy body `sensor_id` is `""`, `stream_id` and
    /// `seq` are 0.
    pub batch: netanalyzer_core::PacketBatch,
    /// The sensor's statistics, when the envelope carries them.
    pub stats: Option<SensorStats>,
    /// The body was a bare JSON array of records (the old system's
    /// format): no sensor, stream or sequence number in the body.
    pub legacy: bool,
}

/// Stable machine name for every rejection: used as the `reason` label in
/// metrics and the `error` field of 4xx bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The body is not msgpack, or not the envelope's shape.
    MalformedMsgpack,
    /// The body is not JSON, or not the envelope's shape.
    MalformedJson,
    /// `Content-Encoding: zstd` but the body is not a complete zstd stream.
    BadZstd,
    /// Decoded body over `max_decoded_bytes`, records over `max_records`,
    /// or (server) the raw body over its limit.
    TooLarge,
    /// `v` is missing or not [`WIRE_VERSION`].
    BadVersion,
    /// `count` differs from the number of records.
    CountMismatch,
    /// A number outside its allowed range.
    OutOfRange,
    /// A string holds a NUL byte or is longer than [`MAX_STRING_BYTES`].
    BadString,
    /// `sensor_id` is empty, too long, or holds other characters than
    /// `[A-Za-z0-9._:-]`.
    BadSensorId,
    /// (server) Content-Type is neither msgpack nor JSON.
    UnsupportedMediaType,
    /// (server) no bearer token.
    Unauthorized,
    /// (server) wrong token, or the token of another sensor.
    Forbidden,
}

impl RejectReason {
    /// Every reason, in declaration order.
    pub const ALL: [RejectReason; 12] = [
        RejectReason::MalformedMsgpack,
        RejectReason::MalformedJson,
        RejectReason::BadZstd,
        RejectReason::TooLarge,
        RejectReason::BadVersion,
        RejectReason::CountMismatch,
        RejectReason::OutOfRange,
        RejectReason::BadString,
        RejectReason::BadSensorId,
        RejectReason::UnsupportedMediaType,
        RejectReason::Unauthorized,
        RejectReason::Forbidden,
    ];

    /// The snake_case machine name (`"malformed_msgpack"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::MalformedMsgpack => "malformed_msgpack",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::BadZstd => "bad_zstd",
            RejectReason::TooLarge => "too_large",
            RejectReason::BadVersion => "bad_version",
            RejectReason::CountMismatch => "count_mismatch",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::BadString => "bad_string",
            RejectReason::BadSensorId => "bad_sensor_id",
            RejectReason::UnsupportedMediaType => "unsupported_media_type",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::Forbidden => "forbidden",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds of [`decode_body`]: memory stays bounded whatever the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest body after zstd decompression, bytes. Default 256 MiB:
    /// a 100,000-record batch is about 20 MiB, so ten times the room.
    pub max_decoded_bytes: usize,
    /// Most records in one batch. Default 100,000 (ten times the
    /// sensor's default batch size).
    pub max_records: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decoded_bytes: 256 << 20,
            max_records: 100_000,
        }
    }
}

/// A sealed batch, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// The sensor's identity, as in the body.
    pub sensor_id: String,
    /// The stream, as in the body.
    pub stream_id: u64,
    /// The batch number, as in the body.
    pub seq: u64,
    /// Number of records in the body.
    pub count: u32,
    /// The body: msgpack envelope, zstd-compressed when `zstd`.
    pub body: Vec<u8>,
    /// The body is zstd: send `Content-Encoding: zstd`.
    pub zstd: bool,
}

/// A new random stream id, in `1..=i64::MAX` (it must fit PostgreSQL's
/// `bigint`).
pub fn new_stream_id() -> u64 {
    // `i64::MAX as u64` is 2^63 - 1; the range is never empty.
    rand::random_range(1..=i64::MAX as u64)
}

pub(crate) fn bad(reason: RejectReason, detail: impl Into<String>) -> StoreError {
    StoreError::BadBatch {
        reason,
        detail: detail.into(),
    }
}
