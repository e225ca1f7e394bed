//! The receiver side: bounded zstd, the envelope (msgpack or JSON), checks.
//!
//! One serde visitor reads both formats. Rejections with a reason of their
//! own (version, too many records) are noted in a side channel ([`Ctx`])
//! before the serde error unwinds. Any other serde error is classified
//! (a range error is [`RejectReason::OutOfRange`], the rest
//! `Malformed*`), and, off the fast path, the body is decoded a second time
//! with path tracking so the detail names the field
//! (`records[17].ttl: invalid value: integer 300, expected u8`).

use super::check::check_batch;
use super::{bad, BodyFormat, DecodeLimits, DecodedBatch, RejectReason, SensorStats, WIRE_VERSION};
use crate::StoreError;
use netanalyzer_core::{PacketBatch, PacketRecord};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;
use std::io::Read;

/// Largest zstd window accepted (2^24 = 16 MiB). zstd levels 1..=19
/// never need more; a frame that asks for more (`--ultra`, `--long`) is
/// refused as [`RejectReason::BadZstd`] so a tiny body cannot make the
/// server allocate a 128 MiB window.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Deepest msgpack nesting read (unknown envelope keys are skipped, and
/// a skipped value could otherwise nest 1024 levels deep).
const MAX_DEPTH: usize = 32;

/// Full validating decode: optional zstd (bounded by
/// `limits.max_decoded_bytes`), msgpack or JSON (JSON: an envelope object,
/// or a bare array of records => `legacy = true`, sensor_id `""`, stream 0,
/// seq 0), then the checks of `docs/wire-format.md`.
///
/// Never panics, whatever `body` holds; memory is bounded by the limits.
///
/// # Errors
///
/// [`StoreError::BadBatch`] with the [`RejectReason`] and a detail that
/// says what to fix.
pub fn decode_body(
    body: &[u8],
    format: BodyFormat,
    zstd: bool,
    limits: &DecodeLimits,
) -> Result<DecodedBatch, StoreError> {
    let inflated;
    let plain: &[u8] = if zstd {
        inflated = unzstd(body, limits.max_decoded_bytes)?;
        &inflated
    } else if body.len() > limits.max_decoded_bytes {
        return Err(bad(
            RejectReason::TooLarge,
            format!(
                "body is {} bytes; at most {} are accepted",
                body.len(),
                limits.max_decoded_bytes
            ),
        ));
    } else {
        body
    };
    let env = match format {
        BodyFormat::Msgpack => parse::<Msgpack>(plain, limits),
        BodyFormat::Json => parse::<Json>(plain, limits),
    }?;
    let legacy = env.legacy;
    let (batch, count, stats) = env.into_batch();
    check_batch(&batch, count, legacy)?;
    Ok(DecodedBatch {
        batch,
        stats,
        legacy,
    })
}

/// Inflates a zstd body, reading at most `max + 1` bytes of output.
fn unzstd(body: &[u8], max: usize) -> Result<Vec<u8>, StoreError> {
    let zerr = |e: std::io::Error| {
        bad(
            RejectReason::BadZstd,
            format!("Content-Encoding is zstd but the body is not a complete zstd stream: {e}"),
        )
    };
    let mut dec = zstd::stream::read::Decoder::with_buffer(body).map_err(zerr)?;
    dec.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(zerr)?;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    dec.take(limit).read_to_end(&mut out).map_err(zerr)?;
    if out.len() > max {
        return Err(bad(
            RejectReason::TooLarge,
            format!("zstd body inflates to more than {max} bytes; send smaller batches"),
        ));
    }
    Ok(out)
}

/// What the visitor gathered.
#[derive(Default)]
struct Envelope {
    legacy: bool,
    sensor_id: Option<String>,
    stream_id: Option<u64>,
    seq: Option<u64>,
    count: Option<u64>,
    stats: Option<SensorStats>,
    records: Option<Vec<PacketRecord>>,
}

impl Envelope {
    fn into_batch(self) -> (PacketBatch, Option<u64>, Option<SensorStats>) {
        (
            PacketBatch {
                sensor_id: self.sensor_id.unwrap_or_default(),
                stream_id: self.stream_id.unwrap_or(0),
                seq: self.seq.unwrap_or(0),
                records: self.records.unwrap_or_default(),
            },
            self.count,
            self.stats,
        )
    }
}

/// Side channel: a rejection with its own reason, set before the serde
/// error it causes unwinds.
struct Ctx<'l> {
    limits: &'l DecodeLimits,
    body_len: usize,
    legacy_ok: bool,
    reject: RefCell<Option<(RejectReason, String)>>,
}

impl Ctx<'_> {
    fn fail<E: de::Error>(&self, reason: RejectReason, detail: String) -> E {
        let e = E::custom(&detail);
        *self.reject.borrow_mut() = Some((reason, detail));
        e
    }
}

/// One of the two body formats, with its serde deserializer.
trait Format: Copy {
    const MALFORMED: RejectReason;
    /// How a detail names the format.
    const NAME: &'static str;
    /// Runs `seed` over `plain`, checking that nothing follows; on error
    /// returns the detail and whether it is a range error.
    fn run(
        plain: &[u8],
        seed: EnvelopeSeed<'_, '_>,
        tracked: bool,
    ) -> Result<Envelope, (String, bool)>;
}

#[derive(Clone, Copy)]
struct Msgpack;
#[derive(Clone, Copy)]
struct Json;

fn is_range_message(msg: &str) -> bool {
    msg.contains("invalid value: integer") || msg.contains("numeric cast found out of range")
}

fn with_path(path: &serde_path_to_error::Path, msg: String) -> String {
    let p = path.to_string();
    if p.is_empty() || p == "." || p == "?" {
        msg
    } else {
        format!("{p}: {msg}")
    }
}

impl Format for Msgpack {
    const MALFORMED: RejectReason = RejectReason::MalformedMsgpack;
    const NAME: &'static str = "invalid msgpack batch";

    fn run(
        plain: &[u8],
        seed: EnvelopeSeed<'_, '_>,
        tracked: bool,
    ) -> Result<Envelope, (String, bool)> {
        use rmp_serde::decode::Error as E;
        let classify = |e: &E| matches!(e, E::OutOfRange) || is_range_message(&e.to_string());
        let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(plain));
        de.set_max_depth(MAX_DEPTH);
        let env = if tracked {
            let mut track = serde_path_to_error::Track::new();
            let r = seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
            r.map_err(|e| (with_path(&track.path(), e.to_string()), classify(&e)))?
        } else {
            seed.deserialize(&mut de)
                .map_err(|e| (e.to_string(), classify(&e)))?
        };
        let used = de.position();
        let left = (plain.len() as u64).saturating_sub(used);
        if left > 0 {
            return Err((
                format!("{left} bytes follow the envelope; a body holds exactly one msgpack map"),
                false,
            ));
        }
        Ok(env)
    }
}

impl Format for Json {
    const MALFORMED: RejectReason = RejectReason::MalformedJson;
    const NAME: &'static str = "invalid JSON batch";

    fn run(
        plain: &[u8],
        seed: EnvelopeSeed<'_, '_>,
        tracked: bool,
    ) -> Result<Envelope, (String, bool)> {
        let classify = |e: &serde_json::Error| is_range_message(&e.to_string());
        let mut de = serde_json::Deserializer::from_slice(plain);
        let env = if tracked {
            let mut track = serde_path_to_error::Track::new();
            let r = seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
            r.map_err(|e| (with_path(&track.path(), e.to_string()), classify(&e)))?
        } else {
            seed.deserialize(&mut de)
                .map_err(|e| (e.to_string(), classify(&e)))?
        };
        de.end().map_err(|e| (e.to_string(), false))?;
        Ok(env)
    }
}

fn parse<F: Format>(plain: &[u8], limits: &DecodeLimits) -> Result<Envelope, StoreError> {
    let ctx = Ctx {
        limits,
        body_len: plain.len(),
        legacy_ok: F::MALFORMED == RejectReason::MalformedJson,
        reject: RefCell::new(None),
    };
    let (msg, range) = match F::run(
        plain,
        EnvelopeSeed {
            ctx: &ctx,
            tracked: false,
        },
        false,
    ) {
        Ok(env) => return Ok(env),
        Err(e) => e,
    };
    if let Some((reason, detail)) = ctx.reject.take() {
        return Err(bad(reason, detail));
    }
    // Cold path: decode again with path tracking for a better detail.
    // Deterministic, so it fails the same way; if it somehow does not,
    // the first message stands.
    let (msg, range) = match F::run(
        plain,
        EnvelopeSeed {
            ctx: &ctx,
            tracked: true,
        },
        true,
    ) {
        Err(slow) if ctx.reject.borrow().is_none() => slow,
        _ => (msg, range),
    };
    if range {
        Err(bad(RejectReason::OutOfRange, msg))
    } else {
        Err(bad(F::MALFORMED, format!("{}: {msg}", F::NAME)))
    }
}

#[derive(Clone, Copy)]
struct EnvelopeSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
    /// Path tracking is on: the record index comes from the path, do not
    /// repeat it in the message.
    tracked: bool,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, '_> {
    type Value = Envelope;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_any(self)
    }
}

/// The envelope's keys.
enum Key {
    V,
    SensorId,
    StreamId,
    Seq,
    Count,
    Stats,
    Records,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope key (a string)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "v" => Key::V,
            "sensor_id" => Key::SensorId,
            "stream_id" => Key::StreamId,
            "seq" => Key::Seq,
            "count" => Key::Count,
            "stats" => Key::Stats,
            "records" => Key::Records,
            _ => Key::Other,
        })
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Key, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Ok(Key::Other),
        }
    }
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, name: &str, v: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom(format!(
            "the envelope holds the key `{name}` twice"
        )));
    }
    *slot = Some(v);
    Ok(())
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, '_> {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctx.legacy_ok {
            f.write_str("a batch envelope object or an array of records")
        } else {
            f.write_str("a batch envelope map")
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut env = Envelope::default();
        let mut version = None;
        let mut stats_seen = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::V => {
                    let v = map.next_value_seed(VersionSeed { ctx: self.ctx })?;
                    set_once(&mut version, "v", v)?;
                }
                Key::SensorId => {
                    let v: String = map.next_value()?;
                    set_once(&mut env.sensor_id, "sensor_id", v)?;
                }
                Key::StreamId => {
                    let v: u64 = map.next_value()?;
                    set_once(&mut env.stream_id, "stream_id", v)?;
                }
                Key::Seq => {
                    let v: u64 = map.next_value()?;
                    set_once(&mut env.seq, "seq", v)?;
                }
                Key::Count => {
                    let v: u64 = map.next_value()?;
                    set_once(&mut env.count, "count", v)?;
                }
                Key::Stats => {
                    if stats_seen {
                        return Err(de::Error::custom(
                            "the envelope holds the key `stats` twice",
                        ));
                    }
                    stats_seen = true;
                    env.stats = map.next_value::<Option<SensorStats>>()?;
                }
                Key::Records => {
                    let v = map.next_value_seed(RecordsSeed {
                        ctx: self.ctx,
                        tracked: self.tracked,
                    })?;
                    set_once(&mut env.records, "records", v)?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if version.is_none() {
            return Err(self.ctx.fail(
                RejectReason::BadVersion,
                "the envelope has no `v` key; this server speaks v=1".into(),
            ));
        }
        for (present, name) in [
            (env.sensor_id.is_some(), "sensor_id"),
            (env.stream_id.is_some(), "stream_id"),
            (env.seq.is_some(), "seq"),
            (env.count.is_some(), "count"),
            (env.records.is_some(), "records"),
        ] {
            if !present {
                return Err(de::Error::missing_field(name));
            }
        }
        Ok(env)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Envelope, A::Error> {
        if !self.ctx.legacy_ok {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        let records = RecordsSeed {
            ctx: self.ctx,
            tracked: self.tracked,
        }
        .visit_seq(seq)?;
        Ok(Envelope {
            legacy: true,
            records: Some(records),
            ..Envelope::default()
        })
    }
}

/// `v`: any integer; a wrong one is [`RejectReason::BadVersion`].
struct VersionSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for VersionSeed<'_, '_> {
    type Value = u32;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for VersionSeed<'_, '_> {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the version integer 1")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        if v == u64::from(WIRE_VERSION) {
            Ok(WIRE_VERSION)
        } else {
            Err(self.ctx.fail(
                RejectReason::BadVersion,
                format!(
                    "envelope version v={v} is not supported; this server speaks v={WIRE_VERSION}"
                ),
            ))
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(self.ctx.fail(
                RejectReason::BadVersion,
                format!(
                    "envelope version v={v} is not supported; this server speaks v={WIRE_VERSION}"
                ),
            )),
        }
    }
}

/// The records array, bounded by `max_records`.
#[derive(Clone, Copy)]
struct RecordsSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
    tracked: bool,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = Vec<PacketRecord>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = Vec<PacketRecord>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let max = self.ctx.limits.max_records;
        let too_many = |n: &dyn fmt::Display| {
            self.ctx.fail::<A::Error>(
                RejectReason::TooLarge,
                format!(
                    "the batch holds {n} records; at most {max} are accepted, send smaller batches"
                ),
            )
        };
        let hint = seq.size_hint();
        if let Some(n) = hint {
            if n > max {
                return Err(too_many(&n));
            }
        }
        // Every record takes at least a few bytes: do not trust a length
        // header further than the body could hold.
        let cap = hint.unwrap_or(0).min(self.ctx.body_len / 8).min(max);
        let mut out = Vec::with_capacity(cap);
        loop {
            if out.len() == max {
                return match seq.next_element::<IgnoredAny>()? {
                    Some(_) => Err(too_many(&format!("more than {max}"))),
                    None => Ok(out),
                };
            }
            let next = if self.tracked {
                seq.next_element::<PacketRecord>()?
            } else {
                let i = out.len();
                seq.next_element::<PacketRecord>()
                    .map_err(|e| de::Error::custom(format!("record {i}: {e}")))?
            };
            match next {
                Some(r) => out.push(r),
                None => return Ok(out),
            }
        }
    }
}
