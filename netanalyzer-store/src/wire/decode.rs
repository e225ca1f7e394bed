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
use serde::de::{self, Deserialize, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;
use std::io::Read;

/// Largest zstd window accepted (2^24 = 16 MiB). zstd levels 1..=19
/// never need more; a frame that asks for more (`--ultra`, `--long`) is
/// refused as [`RejectReason::BadZstd`] so a tiny body cannot make the
/// server allocate a 128 MiB window.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Largest output presized per input byte when inflating (zstd batches
/// of records inflate about 16 times).
const MAX_PRESIZE_RATIO: usize = 64;

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
    // Size the output once from the frame header (the sensor's encoder
    // writes it), so `read_to_end` does not grow and copy the buffer
    // step by step. The header is not trusted beyond a generous ratio of
    // the input nor beyond the limit: a lying header only costs a regrow.
    let hint = zstd::zstd_safe::get_frame_content_size(body)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(body.len().saturating_mul(MAX_PRESIZE_RATIO))
        .min(max.saturating_add(1));
    let mut out = Vec::with_capacity(hint);
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
        if tracked {
            return Msgpack::run_counting(plain, seed, true);
        }
        // Fast path: a reader over the slice hands out borrowed strings and
        // bytes instead of copying each into a scratch buffer.
        let mut de = rmp_serde::Deserializer::from_read_ref(plain);
        de.set_max_depth(MAX_DEPTH);
        let env = seed
            .deserialize(&mut de)
            .map_err(|e| (e.to_string(), msgpack_range(&e)))?;
        // That reader does not tell its position: probe for one more value.
        // Nothing left to read is the only success; anything else (bytes
        // after the envelope) is reported by the counting reader.
        match IgnoredAny::deserialize(&mut de) {
            Err(E::InvalidMarkerRead(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Ok(env)
            }
            _ => Msgpack::run_counting(plain, seed, false),
        }
    }
}

/// Whether a msgpack error is a range error.
fn msgpack_range(e: &rmp_serde::decode::Error) -> bool {
    matches!(e, rmp_serde::decode::Error::OutOfRange) || is_range_message(&e.to_string())
}

impl Msgpack {
    /// The decode over a reader that counts, so it can say how many bytes
    /// follow the envelope (the cold paths).
    fn run_counting(
        plain: &[u8],
        seed: EnvelopeSeed<'_, '_>,
        tracked: bool,
    ) -> Result<Envelope, (String, bool)> {
        let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(plain));
        de.set_max_depth(MAX_DEPTH);
        let env = if tracked {
            let mut track = serde_path_to_error::Track::new();
            let r = seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
            r.map_err(|e| (with_path(&track.path(), e.to_string()), msgpack_range(&e)))?
        } else {
            seed.deserialize(&mut de)
                .map_err(|e| (e.to_string(), msgpack_range(&e)))?
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
        let mut last_iface = None;
        loop {
            if out.len() == max {
                return match seq.next_element::<IgnoredAny>()? {
                    Some(_) => Err(too_many(&format!("more than {max}"))),
                    None => Ok(out),
                };
            }
            let record = RecordSeed {
                last_iface: &mut last_iface,
            };
            let next = if self.tracked {
                seq.next_element_seed(record)?
            } else {
                let i = out.len();
                seq.next_element_seed(record)
                    .map_err(|e| de::Error::custom(format!("record {i}: {e}")))?
            };
            match next {
                Some(r) => out.push(r),
                None => return Ok(out),
            }
        }
    }
}

/// The fields of a record, by their index in [`PacketRecord::FIELD_NAMES`].
#[derive(Clone, Copy)]
struct Field(usize);

/// Reads a record key; `next` is the field expected (the one after the
/// previous key: encoders write the fields in declaration order), tried
/// first.
struct FieldSeed {
    next: usize,
}

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(self)
    }
}

/// Record keys: the names, or their index (as serde's derive accepts);
/// anything else is an error, as with `deny_unknown_fields`.
impl Visitor<'_> for FieldSeed {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        match usize::try_from(v) {
            Ok(i) if i < PacketRecord::FIELD_COUNT => Ok(Field(i)),
            _ => Err(E::invalid_value(
                de::Unexpected::Unsigned(v),
                &"field index 0 <= i < 32",
            )),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        field_of(v.as_bytes(), self.next)
            .ok_or_else(|| E::unknown_field(v, &PacketRecord::FIELD_NAMES))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Field, E> {
        field_of(v, self.next).ok_or_else(|| {
            E::unknown_field(&String::from_utf8_lossy(v), &PacketRecord::FIELD_NAMES)
        })
    }
}

fn field_of(name: &[u8], next: usize) -> Option<Field> {
    if PacketRecord::FIELD_NAMES
        .get(next)
        .is_some_and(|f| f.as_bytes() == name)
    {
        return Some(Field(next));
    }
    PacketRecord::FIELD_NAMES
        .iter()
        .position(|f| f.as_bytes() == name)
        .map(Field)
}

/// One record. Behaves as `PacketRecord`'s derived `Deserialize` (same
/// keys, errors and defaults) but shares one `Arc<str>` between the
/// records of a batch that name the same interface, instead of allocating
/// one per record.
struct RecordSeed<'a> {
    last_iface: &'a mut Option<std::sync::Arc<str>>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = PacketRecord;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<PacketRecord, D::Error> {
        d.deserialize_struct("PacketRecord", &PacketRecord::FIELD_NAMES, self)
    }
}

/// The record's required fields (all others default to `None`).
const REQUIRED: [(usize, &str); 4] = [
    (0, "ts_ns"),
    (2, "wire_len"),
    (3, "cap_len"),
    (31, "protocol"),
];

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = PacketRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct PacketRecord")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PacketRecord, A::Error> {
        let mut r = PacketRecord::default();
        let mut seen = 0u32;
        let mut next = 0;
        while let Some(Field(i)) = map.next_key_seed(FieldSeed { next })? {
            next = i + 1;
            if seen & (1 << i) != 0 {
                return Err(de::Error::duplicate_field(PacketRecord::FIELD_NAMES[i]));
            }
            seen |= 1 << i;
            match i {
                1 => {
                    r.iface = map.next_value_seed(IfaceSeed {
                        last: &mut *self.last_iface,
                    })?
                }
                9 => r.src_ip = map.next_value_seed(IpSeed)?,
                10 => r.dst_ip = map.next_value_seed(IpSeed)?,
                _ => field_value(&mut r, i, &mut map)?,
            }
        }
        for (i, name) in REQUIRED {
            if seen & (1 << i) == 0 {
                return Err(de::Error::missing_field(name));
            }
        }
        Ok(r)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PacketRecord, A::Error> {
        let mut r = PacketRecord::default();
        for i in 0..PacketRecord::FIELD_COUNT {
            let present = match i {
                1 => seq
                    .next_element_seed(IfaceSeed {
                        last: &mut *self.last_iface,
                    })?
                    .map(|v| r.iface = v),
                9 => seq.next_element_seed(IpSeed)?.map(|v| r.src_ip = v),
                10 => seq.next_element_seed(IpSeed)?.map(|v| r.dst_ip = v),
                _ => field_element(&mut r, i, &mut seq)?,
            };
            if present.is_none() {
                return Err(de::Error::invalid_length(
                    i,
                    &"struct PacketRecord with 32 elements",
                ));
            }
        }
        Ok(r)
    }
}

/// Reads the value of plain field `i` (every field but iface and the IPs).
macro_rules! plain_fields {
    ($r:ident, $i:ident, $read:expr) => {
        match $i {
            0 => $r.ts_ns = $read,
            2 => $r.wire_len = $read,
            3 => $r.cap_len = $read,
            4 => $r.eth_src = $read,
            5 => $r.eth_dst = $read,
            6 => $r.vlan_id = $read,
            7 => $r.ether_type = $read,
            8 => $r.ip_version = $read,
            11 => $r.ip_proto = $read,
            12 => $r.ttl = $read,
            13 => $r.is_fragment = $read,
            14 => $r.src_port = $read,
            15 => $r.dst_port = $read,
            16 => $r.tcp_flags = $read,
            17 => $r.tcp_seq = $read,
            18 => $r.tcp_ack = $read,
            19 => $r.tcp_window = $read,
            20 => $r.payload_len = $read,
            21 => $r.icmp_type = $read,
            22 => $r.icmp_code = $read,
            23 => $r.arp_op = $read,
            24 => $r.dns_qname = $read,
            25 => $r.dns_qtype = $read,
            26 => $r.dns_is_response = $read,
            27 => $r.http_method = $read,
            28 => $r.http_host = $read,
            29 => $r.http_path = $read,
            30 => $r.tls_sni = $read,
            // 31; 1, 9 and 10 (iface, the IPs) are read by the callers.
            _ => $r.protocol = $read,
        }
    };
}

fn field_value<'de, A: MapAccess<'de>>(
    r: &mut PacketRecord,
    i: usize,
    map: &mut A,
) -> Result<(), A::Error> {
    plain_fields!(r, i, map.next_value()?);
    Ok(())
}

fn field_element<'de, A: SeqAccess<'de>>(
    r: &mut PacketRecord,
    i: usize,
    seq: &mut A,
) -> Result<Option<()>, A::Error> {
    plain_fields!(
        r,
        i,
        match seq.next_element()? {
            Some(v) => v,
            None => return Ok(None),
        }
    );
    Ok(Some(()))
}

/// `iface`: an optional string, shared with the previous record's when
/// equal.
struct IfaceSeed<'a> {
    last: &'a mut Option<std::sync::Arc<str>>,
}

impl<'de> DeserializeSeed<'de> for IfaceSeed<'_> {
    type Value = Option<std::sync::Arc<str>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for IfaceSeed<'_> {
    type Value = Option<std::sync::Arc<str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("option")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_string(IfaceStr { last: self.last }).map(Some)
    }
}

/// The string inside a present `iface`.
struct IfaceStr<'a> {
    last: &'a mut Option<std::sync::Arc<str>>,
}

impl Visitor<'_> for IfaceStr<'_> {
    type Value = std::sync::Arc<str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if let Some(a) = self.last.as_ref().filter(|a| ***a == *v) {
            return Ok(a.clone());
        }
        let a: std::sync::Arc<str> = v.into();
        *self.last = Some(a.clone());
        Ok(a)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
        }
    }
}

/// `src_ip` / `dst_ip`: as `PacketRecord`'s `ip_wire` (a string in
/// human-readable formats, 4 or 16 bytes in binary ones).
struct IpSeed;

impl<'de> DeserializeSeed<'de> for IpSeed {
    type Value = Option<std::net::IpAddr>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Option::<Ip>::deserialize(d).map(|o| o.map(|ip| ip.0))
    }
}

struct Ip(std::net::IpAddr);

impl<'de> Deserialize<'de> for Ip {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            std::net::IpAddr::deserialize(d).map(Ip)
        } else {
            d.deserialize_bytes(IpVisitor)
        }
    }
}

struct IpVisitor;

impl Visitor<'_> for IpVisitor {
    type Value = Ip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an IP address as a string, or 4 or 16 bytes")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ip, E> {
        v.parse().map(Ip).map_err(E::custom)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Ip, E> {
        if let Ok(b) = <[u8; 4]>::try_from(v) {
            Ok(Ip(std::net::IpAddr::from(b)))
        } else if let Ok(b) = <[u8; 16]>::try_from(v) {
            Ok(Ip(std::net::IpAddr::from(b)))
        } else {
            Err(E::invalid_length(v.len(), &self))
        }
    }
}

#[cfg(test)]
mod record_seed_tests {
    use super::*;
    use serde_json::json;

    fn full() -> PacketRecord {
        PacketRecord {
            ts_ns: 1_700_000_000_000_000_001,
            iface: Some("eth0".into()),
            wire_len: 60,
            cap_len: 60,
            eth_src: Some(netanalyzer_core::MacAddr([1, 2, 3, 4, 5, 6])),
            src_ip: Some("10.0.0.1".parse().unwrap()),
            dst_ip: Some("2001:db8::1".parse().unwrap()),
            ttl: Some(64),
            dns_qname: Some("example.org".into()),
            protocol: netanalyzer_core::Protocol::Dns,
            ..Default::default()
        }
    }

    fn seed_mp(b: &[u8]) -> Result<PacketRecord, String> {
        let mut last = None;
        let mut de = rmp_serde::Deserializer::from_read_ref(b);
        RecordSeed {
            last_iface: &mut last,
        }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())
    }

    fn seed_json(b: &[u8]) -> Result<PacketRecord, String> {
        let mut last = None;
        let mut de = serde_json::Deserializer::from_slice(b);
        RecordSeed {
            last_iface: &mut last,
        }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())
    }

    /// The seed gives what the derived `Deserialize` gives, values and
    /// error messages, for good and bad records in both formats.
    #[test]
    fn seed_equals_the_derived_deserialize() {
        let named = |v: &serde_json::Value| rmp_serde::to_vec_named(v).unwrap();
        let mut mp_cases = vec![
            rmp_serde::to_vec_named(&full()).unwrap(),
            rmp_serde::to_vec(&full()).unwrap(),
            rmp_serde::to_vec_named(&PacketRecord::default()).unwrap(),
            named(&json!({"wire_len": 1, "cap_len": 1, "protocol": "TCP"})),
            named(&json!({"ts_ns": 1, "wire_len": 1, "cap_len": 1, "protocol": "TCP", "x": 1})),
            named(&json!({"ts_ns": 1, "ts_ns": 2, "wire_len": 1, "cap_len": 1, "protocol": "TCP"})),
            named(&json!({"ts_ns": 1, "iface": 5, "wire_len": 1, "cap_len": 1, "protocol": "TCP"})),
            named(&json!({"ts_ns": 1, "ttl": 300, "wire_len": 1, "cap_len": 1, "protocol": "TCP"})),
            named(
                &json!({"ts_ns": 1, "src_ip": "1.2.3.4", "wire_len": 1, "cap_len": 1, "protocol": "TCP"}),
            ),
            named(&json!([1, "eth0", 3])),
            named(
                &json!({"ts_ns": 1, "iface": null, "src_ip": null, "wire_len": 1, "cap_len": 1, "protocol": "TCP"}),
            ),
            named(&json!(7)),
        ];
        // Integer keys, and iface as invalid UTF-8 bytes.
        mp_cases.push(vec![0x81, 0x00, 0x05]);
        mp_cases.push(vec![0x81, 0x40, 0x05]);
        mp_cases.push(vec![0x82, 0x01, 0xc4, 0x02, 0xff, 0xfe, 0x00, 0x05]);
        for b in &mp_cases {
            let want = rmp_serde::from_slice::<PacketRecord>(b).map_err(|e| e.to_string());
            assert_eq!(seed_mp(b), want, "{b:x?}");
        }
        let json_cases = [
            serde_json::to_vec(&full()).unwrap(),
            br#"{"ts_ns":1,"wire_len":1,"cap_len":1,"protocol":"TCP","src_ip":"::1","iface":"e\u0030"}"#.to_vec(),
            br#"{"ts_ns":1,"wire_len":1,"cap_len":1,"protocol":"TCP","src_ip":"nope"}"#.to_vec(),
            br#"{"ts_ns":1,"wire_len":1,"cap_len":1}"#.to_vec(),
            br#"{"ts_ns":1,"wire_len":1,"cap_len":1,"protocol":"TCP","zz":0}"#.to_vec(),
        ];
        for b in &json_cases {
            let want = serde_json::from_slice::<PacketRecord>(b).map_err(|e| e.to_string());
            assert_eq!(seed_json(b), want, "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn records_of_one_interface_share_its_name() {
        let batch = netanalyzer_core::PacketBatch {
            sensor_id: "s".into(),
            stream_id: 1,
            seq: 1,
            records: vec![full(), full(), PacketRecord::default(), full()],
        };
        let body = super::super::encode_batch(&batch, None, super::super::Compression::None)
            .unwrap()
            .body;
        let d = decode_body(&body, BodyFormat::Msgpack, false, &DecodeLimits::default()).unwrap();
        assert_eq!(d.batch, batch);
        let r = &d.batch.records;
        let (a, b) = (r[0].iface.as_ref().unwrap(), r[3].iface.as_ref().unwrap());
        assert!(std::sync::Arc::ptr_eq(a, b));
    }
}
