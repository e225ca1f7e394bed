//! The batch wire format against its contract (`docs/wire-format.md`):
//! round trips in both formats with and without zstd, every rejection the
//! decoder can give (with its reason and a detail a human can act on),
//! and the replay of the `batch_decode` fuzz corpus.
//!
//! The seed corpus `fuzz/corpus/batch_decode/` is written by the ignored
//! test `make_corpus`:
//!
//! ```text
//! cargo test -p netanalyzer-store --test wire -- --ignored make_corpus
//! ```

#[path = "wire/props.rs"]
mod props;

use netanalyzer_core::{MacAddr, PacketBatch, PacketRecord, Protocol};
use netanalyzer_store::wire::{
    decode_body, encode_batch, encode_json, BatchEncoder, BodyFormat, Compression, DecodeLimits,
    DecodedBatch, RejectReason, SensorStats, MAX_STRING_BYTES,
};
use netanalyzer_store::StoreError;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// ------------------------------------------------------------ fixtures

/// A record with every field set.
fn full(i: u64) -> PacketRecord {
    PacketRecord {
        ts_ns: 1_700_000_000_000_000_000 + i,
        iface: Some("eth0".into()),
        wire_len: 1514,
        cap_len: 1500,
        eth_src: Some(MacAddr([0, 0x1b, 0x21, 0xab, 0xcd, i as u8])),
        eth_dst: Some(MacAddr::BROADCAST),
        vlan_id: Some(4095),
        ether_type: Some(0x0800),
        ip_version: Some(4),
        src_ip: Some("192.0.2.1".parse().unwrap()),
        dst_ip: Some("2001:db8::ff".parse().unwrap()),
        ip_proto: Some(6),
        ttl: Some(255),
        is_fragment: Some(true),
        src_port: Some(65535),
        dst_port: Some(0),
        tcp_flags: Some(0x1ff),
        tcp_seq: Some(u32::MAX),
        tcp_ack: Some(0),
        tcp_window: Some(1024),
        payload_len: Some(1460),
        icmp_type: Some(3),
        icmp_code: Some(13),
        arp_op: Some(2),
        dns_qname: Some("www.example.com".into()),
        dns_qtype: Some(65535),
        dns_is_response: Some(false),
        http_method: Some("POST".into()),
        http_host: Some("example.com:8080".into()),
        http_path: Some("/api/v1?q=é".into()),
        tls_sni: Some("xn--nxasmq6b.example".into()),
        protocol: Protocol::Http,
    }
}

/// A record with no optional field set.
fn empty() -> PacketRecord {
    PacketRecord::default()
}

/// Strings that look like SQL injection: data, never errors.
const SQLISH: [&str; 6] = [
    "'; DROP TABLE raw_packets; --",
    "Robert'); DROP TABLE students;--",
    "\" OR 1=1 --",
    "$$; SELECT pg_sleep(10); $$",
    "\\x00\\' %s %d {} \\N",
    "a\tb\nc\r\\.",
];

fn sqlish() -> PacketRecord {
    PacketRecord {
        ts_ns: 5,
        iface: Some(SQLISH[5].into()),
        dns_qname: Some(SQLISH[0].into()),
        http_method: Some(SQLISH[1].into()),
        http_host: Some(SQLISH[2].into()),
        http_path: Some(SQLISH[3].into()),
        tls_sni: Some(SQLISH[4].into()),
        protocol: Protocol::Dns,
        ..Default::default()
    }
}

fn stats() -> SensorStats {
    SensorStats {
        packets: 1_000_000,
        kernel_dropped: Some(12),
        if_dropped: None,
        parse_errors: 3,
        spool_records: 40_000,
        spool_bytes: 9 << 20,
        dropped_records: 0,
    }
}

fn batch(records: Vec<PacketRecord>) -> PacketBatch {
    PacketBatch {
        sensor_id: "dc1.rack-2:eth0_a".into(),
        stream_id: i64::MAX as u64,
        seq: 7,
        records,
    }
}

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(b, 3).unwrap()
}

/// A batch as a JSON value (MAC and IP addresses as strings), to be
/// edited into a bad body.
fn envelope(records: Vec<PacketRecord>) -> Value {
    serde_json::from_slice(&encode_json(&batch(records), None).unwrap()).unwrap()
}

/// The JSON value as msgpack. Addresses stay strings there, which the
/// decoder also accepts.
fn mp(v: &Value) -> Vec<u8> {
    rmp_serde::to_vec(v).unwrap()
}

fn js(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn decode(body: &[u8], format: BodyFormat, z: bool) -> Result<DecodedBatch, StoreError> {
    decode_body(body, format, z, &limits())
}

fn rejection(r: Result<DecodedBatch, StoreError>) -> (RejectReason, String) {
    match r {
        Err(StoreError::BadBatch { reason, detail }) => (reason, detail),
        Err(e) => panic!("not a BadBatch: {e}"),
        Ok(d) => panic!("decoded, expected a rejection: {} records", d.batch.len()),
    }
}

// ------------------------------------------------------------ round trips

#[test]
fn round_trip_msgpack_and_json_with_and_without_zstd() {
    let sets = [
        vec![full(0)],
        vec![empty()],
        vec![],
        vec![full(1), empty(), sqlish(), full(2)],
    ];
    for records in sets {
        let b = batch(records);
        for st in [None, Some(stats())] {
            for c in [
                Compression::None,
                Compression::Zstd(1),
                Compression::Zstd(3),
            ] {
                let e = encode_batch(&b, st.as_ref(), c).unwrap();
                assert_eq!(e.zstd, c != Compression::None);
                assert_eq!(
                    (e.sensor_id.as_str(), e.stream_id, e.seq, e.count as usize),
                    (b.sensor_id.as_str(), b.stream_id, b.seq, b.len())
                );
                let d = decode(&e.body, BodyFormat::Msgpack, e.zstd).unwrap();
                assert_eq!(d.batch, b);
                assert_eq!(d.stats, st);
                assert!(!d.legacy);
            }
            let j = encode_json(&b, st.as_ref()).unwrap();
            for (body, z) in [(j.clone(), false), (zstd(&j), true)] {
                let d = decode(&body, BodyFormat::Json, z).unwrap();
                assert_eq!(d.batch, b);
                assert_eq!(d.stats, st);
                assert!(!d.legacy);
            }
        }
    }
}

#[test]
fn json_keeps_addresses_as_strings() {
    let v = envelope(vec![full(0)]);
    let r = &v["records"][0];
    assert_eq!(r["src_ip"], "192.0.2.1");
    assert_eq!(r["dst_ip"], "2001:db8::ff");
    assert_eq!(r["eth_dst"], "ff:ff:ff:ff:ff:ff");
    assert_eq!(v["v"], 1);
    assert_eq!(v["count"], 1);
}

#[test]
fn msgpack_addresses_are_bin() {
    let e = encode_batch(&batch(vec![full(9)]), None, Compression::None).unwrap();
    let has = |needle: &[u8]| e.body.windows(needle.len()).any(|w| w == needle);
    assert!(has(&[0xc4, 4, 192, 0, 2, 1]), "src_ip as bin 4");
    assert!(
        has(&[0xc4, 6, 0, 0x1b, 0x21, 0xab, 0xcd, 9]),
        "eth_src as bin 6"
    );
    let mut v6 = vec![0xc4, 16];
    v6.extend_from_slice(
        &"2001:db8::ff"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    assert!(has(&v6), "dst_ip as bin 16");
}

#[test]
fn encoder_output_equals_encode_batch() {
    for c in [Compression::None, Compression::Zstd(3)] {
        let mut enc = BatchEncoder::new("s-1", 99, c);
        for seq in 0..3u64 {
            let records: Vec<PacketRecord> = (0..(seq * 50 + 1)).map(full).collect();
            for r in &records {
                enc.push(r).unwrap();
            }
            assert_eq!(enc.len(), records.len());
            assert!(enc.buffered_bytes() > 0);
            let st = (seq == 1).then(stats);
            let got = enc.finish(seq, st.as_ref()).unwrap();
            assert!(enc.is_empty());
            assert_eq!(enc.buffered_bytes(), 0);
            let b = PacketBatch {
                sensor_id: "s-1".into(),
                stream_id: 99,
                seq,
                records,
            };
            assert_eq!(got, encode_batch(&b, st.as_ref(), c).unwrap());
        }
    }
}

#[test]
fn empty_finish_is_a_valid_empty_batch() {
    let mut enc = BatchEncoder::new("s", 1, Compression::default());
    let e = enc.finish(0, None).unwrap();
    assert_eq!(e.count, 0);
    assert!(e.zstd);
    assert!(decode(&e.body, BodyFormat::Msgpack, true)
        .unwrap()
        .batch
        .is_empty());
}

#[test]
fn sql_injection_strings_are_data() {
    let b = batch(vec![sqlish()]);
    let e = encode_batch(&b, None, Compression::None).unwrap();
    let d = decode(&e.body, BodyFormat::Msgpack, false).unwrap();
    assert_eq!(d.batch, b);
    let r = &d.batch.records[0];
    assert_eq!(r.dns_qname.as_deref(), Some(SQLISH[0]));
    assert_eq!(r.http_path.as_deref(), Some(SQLISH[3]));
    let d = decode(&encode_json(&b, None).unwrap(), BodyFormat::Json, false).unwrap();
    assert_eq!(d.batch, b);
}

#[test]
fn encoder_repairs_strings_the_server_would_refuse() {
    let mut r = full(0);
    r.dns_qname = Some("bad\0name".into());
    r.http_path = Some("x".repeat(MAX_STRING_BYTES + 10));
    let e = encode_batch(&batch(vec![r]), None, Compression::None).unwrap();
    let d = decode(&e.body, BodyFormat::Msgpack, false).unwrap();
    let got = &d.batch.records[0];
    assert_eq!(got.dns_qname.as_deref(), Some("bad\u{fffd}name"));
    assert_eq!(
        got.http_path.as_ref().map(String::len),
        Some(MAX_STRING_BYTES)
    );
    // The streaming encoder counts what it repaired, so it is reported.
    let mut enc = BatchEncoder::new("s1", 1, Compression::None);
    enc.push(&full(1)).unwrap();
    assert_eq!(enc.repaired(), 0);
    let mut bad = full(2);
    bad.tls_sni = Some("a\0b".into());
    enc.push(&bad).unwrap();
    assert_eq!(enc.repaired(), 1);
}

#[test]
fn json_legacy_array_is_accepted() {
    let records = vec![full(0), empty(), sqlish()];
    let body = serde_json::to_vec(&records).unwrap();
    let d = decode(&body, BodyFormat::Json, false).unwrap();
    assert!(d.legacy);
    assert_eq!(d.batch.sensor_id, "");
    assert_eq!((d.batch.stream_id, d.batch.seq), (0, 0));
    assert_eq!(d.batch.records, records);
    assert!(d.stats.is_none());
    // The old system's records left out absent fields.
    let d = decode(
        br#"[{"ts_ns":1,"wire_len":60,"cap_len":60,"protocol":"ARP","arp_op":1}]"#,
        BodyFormat::Json,
        false,
    )
    .unwrap();
    assert_eq!(d.batch.records[0].arp_op, Some(1));
    assert_eq!(d.batch.records[0].src_ip, None);
    // A bare array is not a msgpack body.
    let (reason, _) = rejection(decode(
        &rmp_serde::to_vec_named(&records).unwrap(),
        BodyFormat::Msgpack,
        false,
    ));
    assert_eq!(reason, RejectReason::MalformedMsgpack);
}

#[test]
fn unknown_envelope_keys_are_ignored_in_any_order() {
    let b = batch(vec![full(0), empty()]);
    let mut v = envelope(b.records.clone());
    v["future"] = json!({"nested": [1, 2, {"x": null}], "s": "t"});
    v["zzz"] = json!(-1);
    // serde_json's map is sorted: `count` and `records` come before `v`.
    let d = decode(&js(&v), BodyFormat::Json, false).unwrap();
    assert_eq!(d.batch, b);
    let d = decode(&mp(&v), BodyFormat::Msgpack, false).unwrap();
    assert_eq!(d.batch, b);
    // Unknown stats keys too.
    v["stats"] = json!({"packets": 5, "new_counter": 1});
    let d = decode(&js(&v), BodyFormat::Json, false).unwrap();
    assert_eq!(d.stats.unwrap().packets, 5);
}

#[test]
fn ttl_300_in_json_is_out_of_range_and_names_the_field() {
    let mut v = envelope(vec![empty(), empty()]);
    v["records"][1]["ttl"] = json!(300);
    let (reason, detail) = rejection(decode(&js(&v), BodyFormat::Json, false));
    assert_eq!(reason, RejectReason::OutOfRange);
    assert!(detail.contains("records[1].ttl"), "{detail}");
    assert!(detail.contains("300"), "{detail}");
}

#[test]
fn zstd_bomb_is_too_large_without_inflating_it_all() {
    // 64 MiB of zeros inflate from a few KiB; the limit is 1 MiB.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..64 {
        std::io::Write::write_all(&mut enc, &chunk).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let lim = DecodeLimits {
        max_decoded_bytes: 1 << 20,
        max_records: 10,
    };
    let (reason, detail) = rejection(decode_body(&bomb, BodyFormat::Msgpack, true, &lim));
    assert_eq!(reason, RejectReason::TooLarge);
    assert!(detail.contains("1048576"), "{detail}");
}

#[test]
fn truncated_zstd_is_bad_zstd() {
    let e = encode_batch(&batch(vec![full(0); 50]), None, Compression::Zstd(3)).unwrap();
    for cut in [1, 4, e.body.len() / 2, e.body.len() - 1] {
        let (reason, detail) = rejection(decode(&e.body[..cut], BodyFormat::Msgpack, true));
        assert_eq!(reason, RejectReason::BadZstd, "cut at {cut}: {detail}");
    }
}

// ------------------------------------------------------------ rejections

/// One bad body: its name (the corpus file name), format, zstd, bytes,
/// the reason it must get and a piece of the detail.
struct Case {
    name: &'static str,
    format: BodyFormat,
    zstd: bool,
    body: Vec<u8>,
    reason: RejectReason,
    detail: &'static str,
}

fn case(
    name: &'static str,
    format: BodyFormat,
    body: Vec<u8>,
    reason: RejectReason,
    detail: &'static str,
) -> Case {
    Case {
        name,
        format,
        zstd: false,
        body,
        reason,
        detail,
    }
}

/// Every rejection the decoder gives, at least once per reason.
fn bad_cases() -> Vec<Case> {
    use BodyFormat::{Json as J, Msgpack as M};
    use RejectReason::*;
    let good = encode_batch(&batch(vec![full(0), empty()]), None, Compression::None)
        .unwrap()
        .body;
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = envelope((0..10).map(full).collect());
        f(&mut v);
        v
    };
    let mut cases =
        vec![
        case("mp-garbage", M, vec![0xc1, 0x00], MalformedMsgpack, ""),
        case("mp-empty", M, vec![], MalformedMsgpack, ""),
        case("mp-cut", M, good[..good.len() - 3].to_vec(), MalformedMsgpack, "records[1]"),
        case(
            "mp-trailing",
            M,
            [good.as_slice(), &[0xc0]].concat(),
            MalformedMsgpack,
            "1 bytes follow the envelope",
        ),
        case(
            "mp-unknown-record-field",
            M,
            mp(&edit(&|v| v["records"][3]["color"] = json!("red"))),
            MalformedMsgpack,
            "records[3]",
        ),
        case(
            "mp-missing-seq",
            M,
            mp(&edit(&|v| drop(v.as_object_mut().unwrap().remove("seq")))),
            MalformedMsgpack,
            "seq",
        ),
        case(
            "mp-duplicate-key",
            M,
            {
                // Two `seq` keys: write the map by hand.
                let mut b = Vec::new();
                rmp::encode::write_map_len(&mut b, 7).unwrap();
                for (k, n) in [("v", 1u64), ("seq", 1), ("seq", 2)] {
                    rmp::encode::write_str(&mut b, k).unwrap();
                    rmp::encode::write_uint(&mut b, n).unwrap();
                }
                b
            },
            MalformedMsgpack,
            "twice",
        ),
        case("json-garbage", J, b"{\"v\":1,".to_vec(), MalformedJson, "EOF"),
        case("json-not-object", J, b"\"batch\"".to_vec(), MalformedJson, ""),
        case(
            "json-legacy-trailing",
            J,
            b"[] x".to_vec(),
            MalformedJson,
            "trailing",
        ),
        case(
            "json-bad-protocol",
            J,
            js(&edit(&|v| v["records"][2]["protocol"] = json!("QUIC"))),
            MalformedJson,
            "records[2].protocol",
        ),
        case(
            "json-bad-ip",
            J,
            js(&edit(&|v| v["records"][0]["src_ip"] = json!("10.0.0.300"))),
            MalformedJson,
            "records[0].src_ip",
        ),
        case("zstd-garbage", M, b"not zstd at all".to_vec(), BadZstd, "zstd"),
        case("zstd-empty", M, vec![], BadZstd, "zstd"),
        case(
            "zstd-cut",
            M,
            zstd(&good)[..10].to_vec(),
            BadZstd,
            "not a complete zstd stream",
        ),
        case(
            "version-2",
            M,
            mp(&edit(&|v| v["v"] = json!(2))),
            BadVersion,
            "v=2 is not supported",
        ),
        case(
            "version-negative",
            J,
            js(&edit(&|v| v["v"] = json!(-1))),
            BadVersion,
            "v=-1",
        ),
        case(
            "version-missing",
            J,
            js(&edit(&|v| drop(v.as_object_mut().unwrap().remove("v")))),
            BadVersion,
            "no `v` key",
        ),
        case(
            "count-10-of-9",
            M,
            mp(&edit(&|v| drop(v["records"].as_array_mut().unwrap().pop()))),
            CountMismatch,
            "count says 10 but 9 records follow",
        ),
        case(
            "count-json",
            J,
            js(&edit(&|v| v["count"] = json!(11))),
            CountMismatch,
            "count says 11 but 10 records follow",
        ),
        case(
            "stream-over-i64",
            M,
            mp(&edit(&|v| v["stream_id"] = json!(u64::MAX))),
            OutOfRange,
            "stream_id 18446744073709551615 is over i64::MAX",
        ),
        case(
            "seq-over-i64",
            J,
            js(&edit(&|v| v["seq"] = json!(1u64 << 63))),
            OutOfRange,
            "seq 9223372036854775808",
        ),
        case(
            "seq-negative",
            J,
            js(&edit(&|v| v["seq"] = json!(-1))),
            OutOfRange,
            "seq",
        ),
        case(
            "ts-over-i64",
            M,
            mp(&edit(&|v| v["records"][4]["ts_ns"] = json!(u64::MAX))),
            OutOfRange,
            "record 4: ts_ns",
        ),
        case(
            "ip-version-5",
            M,
            mp(&edit(&|v| v["records"][0]["ip_version"] = json!(5))),
            OutOfRange,
            "record 0: ip_version is 5",
        ),
        case(
            "ttl-300-mp",
            M,
            mp(&edit(&|v| v["records"][9]["ttl"] = json!(300))),
            OutOfRange,
            "records[9].ttl",
        ),
        case(
            "ttl-300-json",
            J,
            js(&edit(&|v| v["records"][9]["ttl"] = json!(300))),
            OutOfRange,
            "records[9].ttl",
        ),
        case(
            "wire-len-negative",
            J,
            js(&edit(&|v| v["records"][1]["wire_len"] = json!(-5))),
            OutOfRange,
            "records[1].wire_len",
        ),
        case(
            "nul-mp",
            M,
            mp(&edit(&|v| v["records"][7]["dns_qname"] = json!("evil\u{0}.com"))),
            BadString,
            "record 7: field dns_qname holds a NUL byte at byte 4; PostgreSQL text cannot store it",
        ),
        case(
            "nul-json",
            J,
            br#"[{"ts_ns":1,"wire_len":1,"cap_len":1,"protocol":"HTTP","http_host":"a\u0000b"}]"#
                .to_vec(),
            BadString,
            "record 0: field http_host holds a NUL byte",
        ),
        case(
            "long-string",
            J,
            js(&edit(&|v| v["records"][2]["tls_sni"] = json!("a".repeat(70_000)))),
            BadString,
            "record 2: field tls_sni is 70000 bytes long",
        ),
        case(
            "sensor-empty",
            M,
            mp(&edit(&|v| v["sensor_id"] = json!(""))),
            BadSensorId,
            "sensor_id is empty",
        ),
        case(
            "sensor-space",
            J,
            js(&edit(&|v| v["sensor_id"] = json!("my sensor"))),
            BadSensorId,
            "holds ' '",
        ),
        case(
            "sensor-65",
            M,
            mp(&edit(&|v| v["sensor_id"] = json!("s".repeat(65)))),
            BadSensorId,
            "65 bytes",
        ),
        case(
            "too-many-records-mp",
            M,
            {
                // An array header that claims 200,000 records, then nothing.
                let mut b = Vec::new();
                rmp::encode::write_map_len(&mut b, 6).unwrap();
                for (k, n) in [("v", 1u64), ("stream_id", 1), ("seq", 1), ("count", 200_000)] {
                    rmp::encode::write_str(&mut b, k).unwrap();
                    rmp::encode::write_uint(&mut b, n).unwrap();
                }
                rmp::encode::write_str(&mut b, "sensor_id").unwrap();
                rmp::encode::write_str(&mut b, "s").unwrap();
                rmp::encode::write_str(&mut b, "records").unwrap();
                rmp::encode::write_array_len(&mut b, 200_000).unwrap();
                b
            },
            TooLarge,
            "200000 records; at most 100000",
        ),
        case(
            "too-many-records-json",
            J,
            format!(
                "[{}]",
                vec![r#"{"ts_ns":0,"wire_len":0,"cap_len":0,"protocol":"TCP"}"#; 100_001].join(",")
            )
            .into_bytes(),
            TooLarge,
            "more than 100000",
        ),
    ];
    for c in &mut cases {
        if c.name.starts_with("zstd-") {
            c.zstd = true;
        }
    }
    cases
}

#[test]
fn every_decoder_reason_with_its_detail() {
    let mut seen = HashSet::new();
    let mut failed = Vec::new();
    for c in bad_cases() {
        let (reason, detail) = rejection(decode(&c.body, c.format, c.zstd));
        println!("{}: {reason}: {detail}", c.name);
        if reason != c.reason || !detail.contains(c.detail) {
            failed.push(format!(
                "{}: got {reason:?} {detail:?}, want {:?} containing {:?}",
                c.name, c.reason, c.detail
            ));
        }
        // The Display form is the 4xx body's `reason` text.
        let e = StoreError::BadBatch {
            reason,
            detail: detail.clone(),
        };
        assert!(e
            .to_string()
            .starts_with(&format!("bad batch ({})", reason.as_str())));
        seen.insert(reason);
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let want: HashSet<_> = props::DECODER_REASONS.iter().copied().collect();
    assert_eq!(seen, want, "a decoder reason without a test");
    // The other three are the server's (HTTP headers, not the body).
    for r in RejectReason::ALL {
        assert_eq!(
            !want.contains(&r),
            matches!(
                r,
                RejectReason::UnsupportedMediaType
                    | RejectReason::Unauthorized
                    | RejectReason::Forbidden
            )
        );
    }
}

#[test]
fn plain_body_over_the_limit_is_too_large() {
    let e = encode_batch(&batch(vec![full(0); 100]), None, Compression::None).unwrap();
    let lim = DecodeLimits {
        max_decoded_bytes: e.body.len() - 1,
        max_records: 1000,
    };
    let (reason, _) = rejection(decode_body(&e.body, BodyFormat::Msgpack, false, &lim));
    assert_eq!(reason, RejectReason::TooLarge);
    let lim = DecodeLimits {
        max_decoded_bytes: e.body.len(),
        max_records: 99,
    };
    let (reason, _) = rejection(decode_body(&e.body, BodyFormat::Msgpack, false, &lim));
    assert_eq!(reason, RejectReason::TooLarge);
    let lim = DecodeLimits {
        max_decoded_bytes: e.body.len(),
        max_records: 100,
    };
    assert!(decode_body(&e.body, BodyFormat::Msgpack, false, &lim).is_ok());
}

#[test]
fn legacy_json_is_exempt_from_the_sensor_id_check() {
    let d = decode(b"[]", BodyFormat::Json, false).unwrap();
    assert!(d.legacy && d.batch.is_empty());
}

// ------------------------------------------------------------ fuzz corpus

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/batch_decode")
}

/// The seeds: good batches of every shape, and every bad case.
fn seeds() -> Vec<(String, Vec<u8>)> {
    use BodyFormat::{Json, Msgpack};
    let mut out = Vec::new();
    let shapes: [(&str, Vec<PacketRecord>); 4] = [
        ("full", vec![full(0)]),
        ("empty-record", vec![empty()]),
        ("no-records", vec![]),
        ("mixed", vec![full(1), empty(), sqlish(), full(2), empty()]),
    ];
    for (name, records) in shapes {
        let b = batch(records);
        for (sname, st) in [("", None), ("-stats", Some(stats()))] {
            let plain = encode_batch(&b, st.as_ref(), Compression::None).unwrap();
            out.push((
                format!("gen-mp-{name}{sname}"),
                props::join(Msgpack, false, &plain.body),
            ));
            let z = encode_batch(&b, st.as_ref(), Compression::Zstd(3)).unwrap();
            out.push((
                format!("gen-mp-zstd-{name}{sname}"),
                props::join(Msgpack, true, &z.body),
            ));
            let j = encode_json(&b, st.as_ref()).unwrap();
            out.push((
                format!("gen-json-{name}{sname}"),
                props::join(Json, false, &j),
            ));
        }
        let legacy = serde_json::to_vec(&b.records).unwrap();
        out.push((
            format!("gen-json-legacy-{name}"),
            props::join(Json, false, &legacy),
        ));
        out.push((
            format!("gen-json-zstd-legacy-{name}"),
            props::join(Json, true, &zstd(&legacy)),
        ));
    }
    let mut v = envelope(vec![full(0)]);
    v["future"] = json!({"a": [1, {"b": null}]});
    out.push((
        "craft-mp-unknown-key".into(),
        props::join(Msgpack, false, &mp(&v)),
    ));
    out.push((
        "craft-json-unknown-key".into(),
        props::join(Json, false, &js(&v)),
    ));
    for c in bad_cases() {
        if c.body.len() > 64 << 10 {
            continue; // the 100,001-record array: too big for a seed
        }
        out.push((
            format!("craft-bad-{}", c.name),
            props::join(c.format, c.zstd, &c.body),
        ));
    }
    out
}

#[test]
fn seeds_pass_the_property() {
    for (name, data) in seeds() {
        let r = catch_unwind(AssertUnwindSafe(|| props::check_batch_decode(&data)));
        assert!(r.is_ok(), "seed {name} broke the property");
    }
}

#[test]
fn replay_batch_decode_corpus() {
    let mut files = Vec::new();
    for dir in [
        corpus_dir(),
        corpus_dir().join("../../artifacts/batch_decode"),
    ] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    let (mut ok, mut rejected) = (0, 0);
    let mut failed = Vec::new();
    for p in &files {
        let data = fs::read(p).unwrap();
        match catch_unwind(AssertUnwindSafe(|| props::check_batch_decode(&data))) {
            Ok(Some(Ok(_))) => ok += 1,
            Ok(_) => rejected += 1,
            Err(_) => failed.push(p.display().to_string()),
        }
    }
    assert!(
        failed.is_empty(),
        "inputs broke the property:\n{}",
        failed.join("\n")
    );
    assert!(
        files.len() >= 40 && ok >= 20 && rejected >= 20,
        "corpus too small ({} files, {ok} decode, {rejected} rejected); run make_corpus",
        files.len()
    );
}

/// Writes the seeds to `fuzz/corpus/batch_decode/`: `gen-*` and `craft-*`
/// files are replaced, others (minimized fuzzer finds) kept.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the seeds"]
fn make_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).unwrap();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("gen-") || name.starts_with("craft-") {
            fs::remove_file(&p).unwrap();
        }
    }
    let mut total = 0;
    let seeds = seeds();
    for (name, data) in &seeds {
        fs::write(dir.join(name), data).unwrap();
        total += data.len();
    }
    println!("batch_decode: {} files, {total} bytes", seeds.len());
}

// ------------------------------------------------------------ docs

/// The tiny batch of the worked example in `docs/wire-format.md`.
fn doc_example() -> PacketBatch {
    PacketBatch {
        sensor_id: "s1".into(),
        stream_id: 1,
        seq: 0,
        records: vec![PacketRecord {
            ts_ns: 1_700_000_000_000_000_000,
            wire_len: 98,
            cap_len: 98,
            eth_src: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            eth_dst: Some(MacAddr([2, 0, 0, 0, 0, 2])),
            ether_type: Some(0x0800),
            ip_version: Some(4),
            src_ip: Some("10.0.0.1".parse().unwrap()),
            dst_ip: Some("10.0.0.2".parse().unwrap()),
            ip_proto: Some(1),
            ttl: Some(64),
            is_fragment: Some(false),
            payload_len: Some(56),
            icmp_type: Some(8),
            icmp_code: Some(0),
            protocol: Protocol::Icmp,
            ..Default::default()
        }],
    }
}

/// The hex dump in `docs/wire-format.md`, 16 bytes a line.
const DOC_EXAMPLE_HEX: &str = "
87 a1 76 01 a9 73 65 6e 73 6f 72 5f 69 64 a2 73
31 a9 73 74 72 65 61 6d 5f 69 64 01 a3 73 65 71
00 a5 63 6f 75 6e 74 01 a5 73 74 61 74 73 c0 a7
72 65 63 6f 72 64 73 91 de 00 20 a5 74 73 5f 6e
73 cf 17 97 9c fe 36 2a 00 00 a5 69 66 61 63 65
c0 a8 77 69 72 65 5f 6c 65 6e 62 a7 63 61 70 5f
6c 65 6e 62 a7 65 74 68 5f 73 72 63 c4 06 02 00
00 00 00 01 a7 65 74 68 5f 64 73 74 c4 06 02 00
00 00 00 02 a7 76 6c 61 6e 5f 69 64 c0 aa 65 74
68 65 72 5f 74 79 70 65 cd 08 00 aa 69 70 5f 76
65 72 73 69 6f 6e 04 a6 73 72 63 5f 69 70 c4 04
0a 00 00 01 a6 64 73 74 5f 69 70 c4 04 0a 00 00
02 a8 69 70 5f 70 72 6f 74 6f 01 a3 74 74 6c 40
ab 69 73 5f 66 72 61 67 6d 65 6e 74 c2 a8 73 72
63 5f 70 6f 72 74 c0 a8 64 73 74 5f 70 6f 72 74
c0 a9 74 63 70 5f 66 6c 61 67 73 c0 a7 74 63 70
5f 73 65 71 c0 a7 74 63 70 5f 61 63 6b c0 aa 74
63 70 5f 77 69 6e 64 6f 77 c0 ab 70 61 79 6c 6f
61 64 5f 6c 65 6e 38 a9 69 63 6d 70 5f 74 79 70
65 08 a9 69 63 6d 70 5f 63 6f 64 65 00 a6 61 72
70 5f 6f 70 c0 a9 64 6e 73 5f 71 6e 61 6d 65 c0
a9 64 6e 73 5f 71 74 79 70 65 c0 af 64 6e 73 5f
69 73 5f 72 65 73 70 6f 6e 73 65 c0 ab 68 74 74
70 5f 6d 65 74 68 6f 64 c0 a9 68 74 74 70 5f 68
6f 73 74 c0 a9 68 74 74 70 5f 70 61 74 68 c0 a7
74 6c 73 5f 73 6e 69 c0 a8 70 72 6f 74 6f 63 6f
6c a4 49 43 4d 50
";

fn hex_lines(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| {
            c.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn worked_example_of_the_docs() {
    let e = encode_batch(&doc_example(), None, Compression::None).unwrap();
    let hex = hex_lines(&e.body);
    println!("{} bytes\n{hex}", e.body.len());
    println!(
        "{}",
        String::from_utf8(encode_json(&doc_example(), None).unwrap()).unwrap()
    );
    assert_eq!(hex, DOC_EXAMPLE_HEX.trim());
}
