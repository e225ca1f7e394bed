//! Replays the committed `copy_decode` fuzz corpus with the fuzz target's
//! property checks. The seeds are real streams from PostgreSQL, written
//! by the ignored test `make_corpus` (it needs a database):
//!
//! ```text
//! cargo test -p netanalyzer-store --test copy_corpus -- --ignored make_corpus
//! ```

#[path = "copy/props.rs"]
mod props;

use netanalyzer_core::{MacAddr, PacketBatch, PacketRecord, Protocol};
use netanalyzer_store::pg::{PacketWriter, TestDb, RAW_PACKETS_COLUMNS};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/copy_decode")
}

#[test]
fn corpus_keeps_the_properties() {
    let mut n = 0;
    for e in std::fs::read_dir(corpus()).unwrap() {
        props::check_copy_decode(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 4, "the seed corpus is missing");
}

#[test]
fn a_real_stream_decodes_in_any_chunking() {
    let seed = std::fs::read(corpus().join("two-rows")).unwrap();
    let stream = &seed[1..];
    for chunk in [1, 2, 19, 64, stream.len()] {
        let mut rows = Vec::new();
        let n = netanalyzer_store::flowdb::decode_copy_stream(stream, chunk, &mut |s, r| {
            rows.push((s.to_owned(), r.clone()))
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(rows[0].0, "sensor-a");
        assert_eq!(rows[0].1.dns_qname.as_deref(), Some("www.example.com"));
        assert_eq!(rows[1].1.src_port, Some(40_000));
    }
    // Cut short: an error, never a panic or a partial success.
    assert!(netanalyzer_store::flowdb::decode_copy_stream(
        &stream[..stream.len() - 3],
        7,
        &mut |_, _| {}
    )
    .is_err());
}

fn full_record() -> PacketRecord {
    PacketRecord {
        ts_ns: 1_710_028_800_123_456_789,
        iface: Some(Arc::from("eth0")),
        wire_len: 1514,
        cap_len: 1514,
        eth_src: Some(MacAddr([0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc])),
        eth_dst: Some(MacAddr::BROADCAST),
        vlan_id: Some(7),
        ether_type: Some(0x86dd),
        ip_version: Some(6),
        src_ip: Some("2001:db8::1".parse().unwrap()),
        dst_ip: Some("2001:db8::2".parse().unwrap()),
        ip_proto: Some(17),
        ttl: Some(64),
        is_fragment: Some(false),
        src_port: Some(53),
        dst_port: Some(5353),
        payload_len: Some(40),
        dns_qname: Some("www.example.com".into()),
        dns_qtype: Some(28),
        dns_is_response: Some(true),
        protocol: Protocol::Dns,
        ..PacketRecord::default()
    }
}

fn small_record() -> PacketRecord {
    PacketRecord {
        ts_ns: 1_710_028_801_000_000_000,
        wire_len: 60,
        cap_len: 60,
        ip_version: Some(4),
        src_ip: Some("10.0.0.1".parse().unwrap()),
        dst_ip: Some("10.0.0.2".parse().unwrap()),
        ip_proto: Some(6),
        src_port: Some(40_000),
        dst_port: Some(80),
        tcp_flags: Some(0x02),
        protocol: Protocol::Tcp,
        ..PacketRecord::default()
    }
}

#[test]
#[ignore = "writes the seed corpus; needs PostgreSQL"]
fn make_corpus() {
    let db = TestDb::start().unwrap();
    let mut w = PacketWriter::new(db.client());
    let mut b = PacketBatch::new("sensor-a", 1, 1);
    b.records = vec![full_record(), small_record()];
    w.write_batch(&b).unwrap();
    let mut c = db.client();
    let cols = RAW_PACKETS_COLUMNS[..RAW_PACKETS_COLUMNS.len() - 1].join(", ");
    let mut stream = Vec::new();
    c.copy_out(&format!(
        "COPY (SELECT {cols} FROM raw_packets ORDER BY ts) TO STDOUT (FORMAT binary)"
    ))
    .unwrap()
    .read_to_end(&mut stream)
    .unwrap();
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    let with_seed = |seed: u8, s: &[u8]| [&[seed][..], s].concat();
    std::fs::write(dir.join("two-rows"), with_seed(6, &stream)).unwrap();
    std::fs::write(
        dir.join("two-rows-truncated"),
        with_seed(0, &stream[..stream.len() / 2]),
    )
    .unwrap();
    std::fs::write(dir.join("header-only"), with_seed(3, &stream[..19])).unwrap();
    std::fs::write(
        dir.join("trailer-only"),
        with_seed(1, &[&stream[..19], &[0xff, 0xff][..]].concat()),
    )
    .unwrap();
    let mut bad_count = stream.clone();
    bad_count[19] = 0;
    bad_count[20] = 3;
    std::fs::write(dir.join("bad-column-count"), with_seed(2, &bad_count)).unwrap();
}
