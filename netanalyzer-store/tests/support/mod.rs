//! Fixtures shared by the integration tests that write to a real
//! PostgreSQL (`pg.rs`, `flowdb.rs`).
#![allow(dead_code)] // each test binary uses a part

use netanalyzer_core::{MacAddr, PacketBatch, PacketRecord, Protocol};
use postgres::Client;
use std::sync::Arc;

/// One day in nanoseconds.
pub const DAY_NS: u64 = 86_400 * 1_000_000_000;
/// 2024-03-10 00:00:00 UTC.
pub const BASE_NS: u64 = 1_710_028_800 * 1_000_000_000;

/// A record with every field set, most at the edge of their range.
pub fn full_record(ts_ns: u64) -> PacketRecord {
    PacketRecord {
        ts_ns,
        iface: Some(Arc::from("eth0")),
        wire_len: u32::MAX,
        cap_len: 1514,
        eth_src: Some(MacAddr([0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc])),
        eth_dst: Some(MacAddr::BROADCAST),
        vlan_id: Some(4095),
        ether_type: Some(0x86dd),
        ip_version: Some(6),
        src_ip: Some("2001:db8::1".parse().unwrap()),
        dst_ip: Some("fe80::abcd:ef01:2345:6789".parse().unwrap()),
        ip_proto: Some(u8::MAX),
        ttl: Some(255),
        is_fragment: Some(false),
        src_port: Some(u16::MAX),
        dst_port: Some(443),
        tcp_flags: Some(0x1ff),
        tcp_seq: Some(u32::MAX),
        tcp_ack: Some(u32::MAX - 1),
        tcp_window: Some(u16::MAX),
        payload_len: Some(u32::MAX),
        icmp_type: Some(255),
        icmp_code: Some(0),
        arp_op: Some(u16::MAX),
        dns_qname: Some("www.example.com".into()),
        dns_qtype: Some(u16::MAX),
        dns_is_response: Some(true),
        http_method: Some("GET".into()),
        http_host: Some("example.com".into()),
        http_path: Some("/a?b=c&d=é".into()),
        tls_sni: Some("sni.example".into()),
        protocol: Protocol::Tls,
    }
}

/// A batch of `records` from `sensor` (epoch 42) with sequence `seq`.
pub fn batch(sensor: &str, seq: u64, records: Vec<PacketRecord>) -> PacketBatch {
    let mut b = PacketBatch::new(sensor, 42, seq);
    b.records = records;
    b
}

/// The single `bigint` that `sql` selects.
pub fn count(client: &mut Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).unwrap().get(0)
}
