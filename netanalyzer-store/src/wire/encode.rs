//! The sender side: a streaming msgpack encoder and the JSON form.

use super::check::{needs_sanitizing, sanitize_record};
use super::{bad, Compression, EncodedBatch, RejectReason, SensorStats, WIRE_VERSION};
use crate::StoreError;
use netanalyzer_core::{PacketBatch, PacketRecord};
use serde::Serialize;
use std::borrow::Cow;

fn encode_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    // Writing msgpack into a Vec fails only on a Serialize impl error: a
    // bug, reported with the stable reason closest to it.
    bad(
        RejectReason::MalformedMsgpack,
        format!("cannot encode {what}: {e}"),
    )
}

/// Streaming encoder: [`push`](Self::push) appends one record's msgpack
/// (named fields) to an internal buffer (no allocation per record once
/// warm); [`finish`](Self::finish) writes the envelope header + records and
/// compresses.
///
/// The records buffer and the zstd context are kept across batches, so a
/// long-running sensor allocates only each sealed body.
#[derive(Debug)]
pub struct BatchEncoder {
    sensor_id: String,
    stream_id: u64,
    compression: Compression,
    /// The msgpack of the pushed records, back to back.
    pub(super) records: Vec<u8>,
    count: u32,
    /// Scratch for the uncompressed envelope when compressing.
    scratch: Vec<u8>,
    /// Records whose strings were repaired, since the encoder was made.
    repaired: u64,
}

impl BatchEncoder {
    /// An empty encoder for one stream of one sensor.
    ///
    /// The sensor id and stream id are not checked here: the server
    /// checks them ([`RejectReason::BadSensorId`],
    /// [`RejectReason::OutOfRange`] over `i64::MAX`).
    pub fn new(sensor_id: &str, stream_id: u64, compression: Compression) -> Self {
        BatchEncoder {
            sensor_id: sensor_id.to_owned(),
            stream_id,
            compression,
            records: Vec::new(),
            count: 0,
            scratch: Vec::new(),
            repaired: 0,
        }
    }

    /// Appends one record.
    ///
    /// Strings the server would refuse (a NUL byte, over
    /// [`MAX_STRING_BYTES`](super::MAX_STRING_BYTES)) are repaired first
    /// with [`sanitize_record`] (on a copy: the only allocation, and only
    /// for such a record).
    ///
    /// # Errors
    ///
    /// [`StoreError::BadBatch`] with [`RejectReason::TooLarge`] when the
    /// encoder already holds `u32::MAX` records (the `count` key is a u32).
    pub fn push(&mut self, rec: &PacketRecord) -> Result<(), StoreError> {
        if self.count == u32::MAX {
            return Err(bad(
                RejectReason::TooLarge,
                "a batch holds at most u32::MAX records; finish() it first",
            ));
        }
        let rec = if needs_sanitizing(rec) {
            let mut fixed = rec.clone();
            sanitize_record(&mut fixed);
            self.repaired += 1;
            Cow::Owned(fixed)
        } else {
            Cow::Borrowed(rec)
        };
        let mark = self.records.len();
        if let Err(e) = rmp_serde::encode::write_named(&mut self.records, rec.as_ref()) {
            self.records.truncate(mark);
            return Err(encode_error("a record", e));
        }
        self.count += 1;
        Ok(())
    }

    /// Records whose strings [`push`](Self::push) had to repair (a NUL
    /// byte, or longer than the limit) since the encoder was made. The
    /// sensor's own parser never produces such strings; a non-zero count
    /// means records from elsewhere were altered, and it is reported.
    pub fn repaired(&self) -> u64 {
        self.repaired
    }

    /// Number of records pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of msgpack records buffered (before compression).
    pub fn buffered_bytes(&self) -> usize {
        self.records.len()
    }

    /// The sensor id this encoder writes.
    pub fn sensor_id(&self) -> &str {
        &self.sensor_id
    }

    /// The stream id this encoder writes.
    pub fn stream_id(&self) -> u64 {
        self.stream_id
    }

    /// Seals the buffered records as batch `seq`; the encoder is empty afterwards.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadBatch`] when `stats` cannot be encoded or zstd
    /// fails (neither happens with a sound build); the buffered records
    /// are dropped in that case too.
    pub fn finish(
        &mut self,
        seq: u64,
        stats: Option<&SensorStats>,
    ) -> Result<EncodedBatch, StoreError> {
        let count = self.count;
        self.count = 0;
        let result = match self.compression {
            Compression::None => {
                let mut body = Vec::with_capacity(self.records.len() + 128);
                self.write_envelope(&mut body, seq, count, stats)
                    .map(|()| body)
            }
            Compression::Zstd(level) => {
                let mut env = std::mem::take(&mut self.scratch);
                env.clear();
                env.reserve(self.records.len() + 128);
                let r = self
                    .write_envelope(&mut env, seq, count, stats)
                    .and_then(|()| {
                        zstd::bulk::compress(&env, level).map_err(|e| encode_error("zstd", e))
                    });
                self.scratch = env;
                r
            }
        };
        self.records.clear();
        Ok(EncodedBatch {
            sensor_id: self.sensor_id.clone(),
            stream_id: self.stream_id,
            seq,
            count,
            body: result?,
            zstd: matches!(self.compression, Compression::Zstd(_)),
        })
    }

    fn write_envelope(
        &self,
        out: &mut Vec<u8>,
        seq: u64,
        count: u32,
        stats: Option<&SensorStats>,
    ) -> Result<(), StoreError> {
        use rmp::encode as w;
        let io = |e| encode_error("the envelope", e);
        w::write_map_len(out, 7).map_err(io)?;
        w::write_str(out, "v").map_err(io)?;
        w::write_uint(out, u64::from(WIRE_VERSION)).map_err(io)?;
        w::write_str(out, "sensor_id").map_err(io)?;
        w::write_str(out, &self.sensor_id).map_err(io)?;
        w::write_str(out, "stream_id").map_err(io)?;
        w::write_uint(out, self.stream_id).map_err(io)?;
        w::write_str(out, "seq").map_err(io)?;
        w::write_uint(out, seq).map_err(io)?;
        w::write_str(out, "count").map_err(io)?;
        w::write_uint(out, u64::from(count)).map_err(io)?;
        w::write_str(out, "stats").map_err(io)?;
        match stats {
            Some(s) => {
                rmp_serde::encode::write_named(out, s).map_err(|e| encode_error("stats", e))?
            }
            None => w::write_nil(out).map_err(|e| encode_error("the envelope", e))?,
        }
        w::write_str(out, "records").map_err(io)?;
        w::write_array_len(out, count).map_err(io)?;
        out.extend_from_slice(&self.records);
        Ok(())
    }
}

/// Encodes a whole batch as msgpack: the same bytes as pushing every
/// record into a [`BatchEncoder`] and finishing it as `batch.seq`.
///
/// # Errors
///
/// As [`BatchEncoder::push`] and [`BatchEncoder::finish`].
pub fn encode_batch(
    batch: &PacketBatch,
    stats: Option<&SensorStats>,
    compression: Compression,
) -> Result<EncodedBatch, StoreError> {
    let mut enc = BatchEncoder::new(&batch.sensor_id, batch.stream_id, compression);
    for r in &batch.records {
        enc.push(r)?;
    }
    enc.finish(batch.seq, stats)
}

#[derive(Serialize)]
struct JsonEnvelope<'a> {
    v: u32,
    sensor_id: &'a str,
    stream_id: u64,
    seq: u64,
    count: usize,
    stats: Option<&'a SensorStats>,
    records: &'a [PacketRecord],
}

/// Encodes a batch as a JSON envelope object (the same keys as msgpack;
/// MAC and IP addresses as strings), uncompressed. For tools and tests;
/// the sensor sends msgpack. Strings are not repaired: what you give is
/// what is sent.
///
/// # Errors
///
/// [`StoreError::BadBatch`] if serde_json fails (it does not for a
/// [`PacketBatch`]).
pub fn encode_json(
    batch: &PacketBatch,
    stats: Option<&SensorStats>,
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&JsonEnvelope {
        v: WIRE_VERSION,
        sensor_id: &batch.sensor_id,
        stream_id: batch.stream_id,
        seq: batch.seq,
        count: batch.records.len(),
        stats,
        records: &batch.records,
    })
    .map_err(|e| {
        bad(
            RejectReason::MalformedJson,
            format!("cannot encode json: {e}"),
        )
    })
}
