//! Unit tests of the wire module: byte-level details. The contract tests
//! (every reject reason, round trips, corpus) are in `tests/wire.rs`.

use super::*;
use netanalyzer_core::{MacAddr, PacketBatch, PacketRecord, Protocol};
use std::net::IpAddr;

fn full() -> PacketRecord {
    PacketRecord {
        ts_ns: 1_700_000_000_123_456_789,
        iface: Some("eth0".into()),
        wire_len: 1514,
        cap_len: 1500,
        eth_src: Some(MacAddr([0, 0x1b, 0x21, 0xab, 0xcd, 0xef])),
        eth_dst: Some(MacAddr::BROADCAST),
        vlan_id: Some(100),
        ether_type: Some(0x86dd),
        ip_version: Some(6),
        src_ip: Some("2001:db8::1".parse().unwrap()),
        dst_ip: Some("10.0.0.1".parse().unwrap()),
        ip_proto: Some(6),
        ttl: Some(64),
        is_fragment: Some(false),
        src_port: Some(443),
        dst_port: Some(51000),
        tcp_flags: Some(0x1ff),
        tcp_seq: Some(u32::MAX),
        tcp_ack: Some(7),
        tcp_window: Some(65535),
        payload_len: Some(1400),
        icmp_type: Some(8),
        icmp_code: Some(0),
        arp_op: Some(1),
        dns_qname: Some("example.com".into()),
        dns_qtype: Some(28),
        dns_is_response: Some(true),
        http_method: Some("GET".into()),
        http_host: Some("example.com".into()),
        http_path: Some("/a?b=c".into()),
        tls_sni: Some("example.org".into()),
        protocol: Protocol::Tls,
    }
}

fn reason(r: Result<DecodedBatch, crate::StoreError>) -> RejectReason {
    match r {
        Err(crate::StoreError::BadBatch { reason, .. }) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn ip_is_bin_in_msgpack_and_string_in_json() {
    let r = PacketRecord {
        src_ip: Some("10.0.0.1".parse().unwrap()),
        dst_ip: Some("::1".parse().unwrap()),
        ..Default::default()
    };
    let mp = rmp_serde::to_vec_named(&r).unwrap();
    // bin8 of length 4, then the four octets.
    assert!(mp.windows(6).any(|w| w == [0xc4, 4, 10, 0, 0, 1]));
    let mut v6 = vec![0xc4, 16];
    v6.extend_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    assert!(mp.windows(18).any(|w| w == v6.as_slice()));
    let back: PacketRecord = rmp_serde::from_slice(&mp).unwrap();
    assert_eq!(back, r);
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["src_ip"], "10.0.0.1");
    assert_eq!(j["dst_ip"], "::1");
    assert_eq!(serde_json::from_value::<PacketRecord>(j).unwrap(), r);
}

#[test]
fn ip_of_wrong_length_is_malformed() {
    let mut r = rmp_serde::to_vec_named(&PacketRecord {
        src_ip: Some(IpAddr::from([1, 2, 3, 4])),
        ..Default::default()
    })
    .unwrap();
    let at = r
        .windows(6)
        .position(|w| w == [0xc4, 4, 1, 2, 3, 4])
        .unwrap();
    r[at + 1] = 3; // bin of 3 bytes, one byte of garbage left over
    assert!(rmp_serde::from_slice::<PacketRecord>(&r).is_err());
}

#[test]
fn envelope_header_is_in_contract_order() {
    let mut b = PacketBatch::new("s1", 5, 9);
    b.records.push(full());
    let e = encode_batch(&b, None, Compression::None).unwrap();
    let v: rmpv_like::Keys = rmpv_like::keys(&e.body);
    assert_eq!(
        v.0,
        [
            "v",
            "sensor_id",
            "stream_id",
            "seq",
            "count",
            "stats",
            "records"
        ]
    );
}

/// A tiny reader of the top-level map keys, with `rmp` only.
mod rmpv_like {
    pub struct Keys(pub Vec<String>);
    pub fn keys(mut b: &[u8]) -> Keys {
        let n = rmp::decode::read_map_len(&mut b).unwrap();
        let mut out = Vec::new();
        for _ in 0..n {
            let len = rmp::decode::read_str_len(&mut b).unwrap() as usize;
            out.push(String::from_utf8(b[..len].to_vec()).unwrap());
            b = &b[len..];
            // Skip the value with rmp-serde.
            let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(b));
            serde::de::IgnoredAny::deserialize(&mut de).unwrap();
            let used = de.position() as usize;
            b = &b[used..];
        }
        Keys(out)
    }
    use serde::Deserialize;
}

#[test]
fn encoder_reuses_its_buffer() {
    let mut enc = BatchEncoder::new("s1", 1, Compression::None);
    let r = full();
    for _ in 0..100 {
        enc.push(&r).unwrap();
    }
    let per = enc.buffered_bytes() / 100;
    enc.finish(0, None).unwrap();
    assert_eq!(enc.buffered_bytes(), 0);
    assert!(enc.is_empty());
    // Capacity is kept: pushing as many again must not grow it.
    let cap = enc.records.capacity();
    for _ in 0..100 {
        enc.push(&r).unwrap();
    }
    assert_eq!(enc.records.capacity(), cap);
    assert_eq!(enc.len(), 100);
    assert!(per > 100, "a full record is more than 100 bytes, got {per}");
}

#[test]
fn zstd_window_over_the_cap_is_refused() {
    // A frame whose header declares a 2^27 window (zstd --long=27).
    let data = vec![7u8; 1 << 16];
    // Streaming compression: no pledged size, so the window stays 2^27.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
        .unwrap();
    std::io::Write::write_all(&mut enc, &data).unwrap();
    let body = enc.finish().unwrap();
    let r = decode_body(&body, BodyFormat::Msgpack, true, &DecodeLimits::default());
    assert_eq!(reason(r), RejectReason::BadZstd);
}

#[test]
fn reject_reason_names_are_unique_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for r in RejectReason::ALL {
        let s = r.as_str();
        assert!(
            s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{s}"
        );
        assert!(seen.insert(s), "{s} twice");
        assert_eq!(r.to_string(), s);
    }
}

#[test]
fn content_types() {
    use BodyFormat::*;
    assert_eq!(
        BodyFormat::from_content_type(CONTENT_TYPE_MSGPACK),
        Some(Msgpack)
    );
    assert_eq!(
        BodyFormat::from_content_type("application/msgpack"),
        Some(Msgpack)
    );
    assert_eq!(
        BodyFormat::from_content_type("Application/X-Msgpack"),
        Some(Msgpack)
    );
    assert_eq!(
        BodyFormat::from_content_type("application/json; charset=utf-8"),
        Some(Json)
    );
    assert_eq!(BodyFormat::from_content_type("text/plain"), None);
    assert_eq!(BodyFormat::from_content_type(""), None);
}

#[test]
fn stream_ids_fit_bigint() {
    for _ in 0..1000 {
        let id = new_stream_id();
        assert!((1..=i64::MAX as u64).contains(&id));
    }
}

#[test]
fn path_names_the_field_of_an_out_of_range_value() {
    let body = br#"{"v":1,"sensor_id":"s","stream_id":1,"seq":0,"count":1,"records":[{"ts_ns":1,"wire_len":1,"cap_len":1,"ttl":300,"protocol":"TCP"}]}"#;
    let e = decode_body(body, BodyFormat::Json, false, &DecodeLimits::default()).unwrap_err();
    let s = e.to_string();
    assert!(s.contains("records[0].ttl"), "{s}");
    assert!(s.starts_with("bad batch (out_of_range)"), "{s}");
}
