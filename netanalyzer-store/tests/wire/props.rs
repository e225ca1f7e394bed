//! The property of the `batch_decode` fuzz target
//! (`fuzz/fuzz_targets/batch_decode.rs`), shared with the corpus replay in
//! `netanalyzer-store/tests/wire.rs`: both include this file by path, so a
//! corpus file is checked the same way under `cargo test` as under
//! `cargo fuzz run`. It may use only `std`, `netanalyzer_core` and
//! `netanalyzer_store`.
#![allow(dead_code)]

use netanalyzer_store::wire::{
    decode_body, encode_batch, encode_json, BodyFormat, Compression, DecodeLimits, DecodedBatch,
    RejectReason,
};
use netanalyzer_store::StoreError;

/// Bit of the first input byte: the body is JSON (else msgpack).
pub const SEL_JSON: u8 = 1;
/// Bit of the first input byte: the body is zstd-compressed.
pub const SEL_ZSTD: u8 = 2;

/// Limits of the fuzz runs: small, so a run spends its time decoding,
/// not allocating.
pub const LIMITS: DecodeLimits = DecodeLimits {
    max_decoded_bytes: 4 << 20,
    max_records: 10_000,
};

/// The reasons `decode_body` may give (the others are the server's).
/// `RejectReason::ALL` lists the decoder's nine reasons first, then the
/// server's own (media type, tokens).
pub const DECODER_REASONS: &[RejectReason] = RejectReason::ALL.split_at(9).0;

/// Splits a fuzz input into (format, zstd, body).
pub fn split(input: &[u8]) -> Option<(BodyFormat, bool, &[u8])> {
    let (&sel, body) = input.split_first()?;
    let format = if sel & SEL_JSON != 0 {
        BodyFormat::Json
    } else {
        BodyFormat::Msgpack
    };
    Some((format, sel & SEL_ZSTD != 0, body))
}

/// Builds a fuzz input from its parts (for the seed corpus).
pub fn join(format: BodyFormat, zstd: bool, body: &[u8]) -> Vec<u8> {
    let mut sel = 0;
    if format == BodyFormat::Json {
        sel |= SEL_JSON;
    }
    if zstd {
        sel |= SEL_ZSTD;
    }
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(sel);
    v.extend_from_slice(body);
    v
}

/// Decodes the input; returns the outcome after checking the properties:
///
/// - `decode_body` never panics and is deterministic;
/// - a rejection is a `BadBatch` with a decoder reason and a non-empty
///   detail;
/// - a decoded batch re-encodes (`encode_batch`, no compression, and
///   `encode_json`) to bodies that decode to an equal batch and equal
///   stats (a legacy batch is given a sensor id first: msgpack has no
///   legacy form); the re-encoded count is the number of records.
pub fn check_batch_decode(input: &[u8]) -> Option<Result<DecodedBatch, RejectReason>> {
    let (format, zstd, body) = split(input)?;
    let first = decode_body(body, format, zstd, &LIMITS);
    let second = decode_body(body, format, zstd, &LIMITS);
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "decode_body is not deterministic"
    );
    let decoded = match first {
        Ok(d) => d,
        Err(StoreError::BadBatch { reason, detail }) => {
            assert!(
                DECODER_REASONS.contains(&reason),
                "decoder gave the server's reason {reason:?}"
            );
            assert!(!detail.trim().is_empty(), "{reason:?} without a detail");
            return Some(Err(reason));
        }
        Err(other) => panic!("decode_body failed with a non-BadBatch error: {other}"),
    };
    let mut batch = decoded.batch.clone();
    if decoded.legacy {
        assert_eq!(format, BodyFormat::Json, "legacy form outside JSON");
        assert_eq!(
            (batch.sensor_id.as_str(), batch.stream_id, batch.seq),
            ("", 0, 0)
        );
        assert!(decoded.stats.is_none());
        batch.sensor_id = "legacy".into();
    }
    let unbounded = DecodeLimits {
        max_decoded_bytes: usize::MAX,
        max_records: LIMITS.max_records,
    };
    let enc = encode_batch(&batch, decoded.stats.as_ref(), Compression::None)
        .expect("a decoded batch re-encodes");
    assert!(!enc.zstd);
    assert_eq!(enc.count as usize, batch.records.len());
    let again = decode_body(&enc.body, BodyFormat::Msgpack, false, &unbounded)
        .expect("a re-encoded batch decodes");
    assert!(!again.legacy);
    assert_eq!(again.batch, batch, "msgpack re-encode changed the batch");
    assert_eq!(
        again.stats, decoded.stats,
        "msgpack re-encode changed stats"
    );
    let json = encode_json(&batch, decoded.stats.as_ref()).expect("json re-encodes");
    let again = decode_body(&json, BodyFormat::Json, false, &unbounded)
        .expect("a re-encoded json batch decodes");
    assert!(!again.legacy);
    assert_eq!(again.batch, batch, "json re-encode changed the batch");
    assert_eq!(again.stats, decoded.stats, "json re-encode changed stats");
    Some(Ok(decoded))
}
