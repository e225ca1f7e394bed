//! Integration tests of the record outputs.

use netanalyzer_core::{MacAddr, PacketRecord, Protocol, Sink};
use netanalyzer_store::{
    CsvOptions, CsvSink, JsonlSink, NullSink, OutputSpec, StoreError, Tee, CSV_COLUMNS,
};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A record with every field set.
fn full_record() -> PacketRecord {
    PacketRecord {
        ts_ns: 1_700_000_000_123_456_789,
        iface: Some("eth0".into()),
        wire_len: 1514,
        cap_len: 96,
        eth_src: Some(MacAddr([0, 0x11, 0x22, 0x33, 0x44, 0xab])),
        eth_dst: Some(MacAddr::BROADCAST),
        vlan_id: Some(100),
        ether_type: Some(0x86dd),
        ip_version: Some(6),
        src_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        dst_ip: Some(IpAddr::V6("2001:db8::1".parse().unwrap())),
        ip_proto: Some(6),
        ttl: Some(64),
        is_fragment: Some(false),
        src_port: Some(51000),
        dst_port: Some(80),
        tcp_flags: Some(0x018),
        tcp_seq: Some(u32::MAX),
        tcp_ack: Some(0),
        tcp_window: Some(65535),
        payload_len: Some(0),
        icmp_type: Some(3),
        icmp_code: Some(1),
        arp_op: Some(2),
        dns_qname: Some("example.com".into()),
        dns_qtype: Some(28),
        dns_is_response: Some(true),
        http_method: Some("GET".into()),
        http_host: Some("a,b.example".into()),
        http_path: Some("/say \"hi\"\nthere".into()),
        tls_sni: Some(String::new()),
        protocol: Protocol::Http,
    }
}

fn jsonl_of(records: &[PacketRecord]) -> (String, u64) {
    let mut sink = JsonlSink::new(Vec::new(), "memory");
    for r in records {
        sink.write(r).unwrap();
    }
    let counted = sink.counters().bytes;
    (
        String::from_utf8(sink.into_inner().unwrap()).unwrap(),
        counted,
    )
}

#[test]
fn jsonl_keys_are_exactly_the_field_names_in_order() {
    let (text, _) = jsonl_of(&[full_record(), PacketRecord::default()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        // serde_json::Map keeps keys sorted; read the order from the text.
        let obj: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        assert_eq!(obj.len(), CSV_COLUMNS.len());
        let mut pos = 0;
        for key in CSV_COLUMNS {
            let quoted = format!("\"{key}\":");
            let at = line[pos..]
                .find(&quoted)
                .unwrap_or_else(|| panic!("{key} missing or out of order"));
            pos += at + quoted.len();
            assert!(obj.contains_key(key));
        }
    }
    // Every name the core lists is a key.
    for key in PacketRecord::FIELD_NAMES {
        assert!(CSV_COLUMNS.contains(&key), "{key}");
    }
}

#[test]
fn jsonl_absent_fields_are_null_and_values_exact() {
    let (text, bytes) = jsonl_of(&[PacketRecord::default(), full_record()]);
    assert_eq!(bytes, text.len() as u64, "byte counter matches output");
    let mut lines = text.lines();
    let empty: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    for (k, v) in empty.as_object().unwrap() {
        match k.as_str() {
            "ts_ns" | "wire_len" | "cap_len" => assert_eq!(v, &Value::from(0)),
            "protocol" => assert_eq!(v, "OTHER"),
            _ => assert!(v.is_null(), "{k} should be null, is {v}"),
        }
    }
    let full: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(full["ts_ns"], 1_700_000_000_123_456_789u64);
    assert_eq!(full["eth_src"], "00:11:22:33:44:ab");
    assert_eq!(full["src_ip"], "::1");
    assert_eq!(full["dst_ip"], "2001:db8::1");
    assert_eq!(full["tcp_seq"], u32::MAX);
    assert_eq!(full["payload_len"], 0);
    assert_eq!(full["is_fragment"], false);
    assert_eq!(full["http_path"], "/say \"hi\"\nthere");
    assert_eq!(full["tls_sni"], "", "an empty string stays a string");
    assert_eq!(full["protocol"], "HTTP");
    // Round trip.
    let back: PacketRecord = serde_json::from_value(full).unwrap();
    assert_eq!(back, full_record());
}

/// A minimal RFC 4180 reader, to check what the sink writes.
/// Returns rows of cells; a quoted cell is `Some`, an unquoted empty one `None`.
fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut it = text.chars().peekable();
    loop {
        let mut cell = String::new();
        let quoted = it.peek() == Some(&'"');
        if quoted {
            it.next();
            loop {
                match it.next().expect("unterminated quote") {
                    '"' if it.peek() == Some(&'"') => {
                        it.next();
                        cell.push('"');
                    }
                    '"' => break,
                    c => cell.push(c),
                }
            }
        }
        let end = loop {
            match it.next() {
                Some(c @ (',' | '\n')) => break Some(c),
                None => break None,
                Some(c) => {
                    assert!(!quoted, "text after a closing quote");
                    cell.push(c);
                }
            }
        };
        row.push(if quoted || !cell.is_empty() {
            Some(cell)
        } else {
            None
        });
        match end {
            Some(',') => {}
            Some(_) => {
                rows.push(std::mem::take(&mut row));
                if it.peek().is_none() {
                    return rows;
                }
            }
            None => panic!("the last row lacks its newline"),
        }
    }
}

fn read_rows(path: &Path) -> Vec<Vec<Option<String>>> {
    parse_csv(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn csv_header_nulls_and_quoting() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = CsvSink::new(dir.path(), CsvOptions::default()).unwrap();
    sink.write(&full_record()).unwrap();
    sink.write(&PacketRecord {
        ts_ns: full_record().ts_ns + 1,
        ..PacketRecord::default()
    })
    .unwrap();
    sink.close().unwrap();
    assert_eq!(sink.files().len(), 1);
    let path = &sink.files()[0];
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        "packets-1700000000123456789.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(sink.counters().bytes, text.len() as u64);
    assert!(
        text.contains(",\"a,b.example\",\"/say \"\"hi\"\"\nthere\",\"\",HTTP\n"),
        "{text}"
    );

    let rows = read_rows(path);
    assert_eq!(rows.len(), 3);
    let header: Vec<String> = rows[0].iter().map(|c| c.clone().unwrap()).collect();
    assert_eq!(header, CSV_COLUMNS);
    let cell = |row: &Vec<Option<String>>, name: &str| {
        row[CSV_COLUMNS.iter().position(|c| *c == name).unwrap()].clone()
    };
    let full = &rows[1];
    assert_eq!(full.len(), CSV_COLUMNS.len());
    assert_eq!(cell(full, "eth_src").as_deref(), Some("00:11:22:33:44:ab"));
    assert_eq!(cell(full, "src_ip").as_deref(), Some("::1"));
    assert_eq!(cell(full, "is_fragment").as_deref(), Some("false"));
    assert_eq!(cell(full, "dns_is_response").as_deref(), Some("true"));
    assert_eq!(cell(full, "http_host").as_deref(), Some("a,b.example"));
    assert_eq!(
        cell(full, "http_path").as_deref(),
        Some("/say \"hi\"\nthere")
    );
    assert_eq!(
        cell(full, "tls_sni").as_deref(),
        Some(""),
        "empty string is quoted"
    );
    assert_eq!(cell(full, "tcp_seq").as_deref(), Some("4294967295"));
    let empty = &rows[2];
    assert_eq!(empty.len(), CSV_COLUMNS.len());
    for name in CSV_COLUMNS {
        let want = match name {
            "ts_ns" => Some("1700000000123456790"),
            "wire_len" | "cap_len" => Some("0"),
            "protocol" => Some("OTHER"),
            _ => None,
        };
        assert_eq!(cell(empty, name).as_deref(), want, "{name}");
    }
}

fn at(secs: u64, ms: u64) -> PacketRecord {
    PacketRecord {
        ts_ns: secs * 1_000_000_000 + ms * 1_000_000,
        ..PacketRecord::default()
    }
}

fn rotate_run(dir: &Path) -> Vec<(String, usize, String)> {
    let mut sink = CsvSink::new(dir, CsvOptions { rotate_secs: 30 }).unwrap();
    let t0 = 1_700_000_000;
    for r in [
        at(t0, 0),
        at(t0 + 10, 0),
        at(t0 + 29, 999),
        at(t0 + 30, 0), // exactly one window later: new file
        at(t0 + 25, 0), // goes backwards: stays in the current file
        at(t0 + 59, 0),
        at(t0 + 95, 500), // gap: the next file starts at this packet
    ] {
        sink.write(&r).unwrap();
    }
    sink.close().unwrap();
    assert_eq!(sink.counters().files, 3);
    assert_eq!(sink.counters().records, 7);
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names, sink.files());
    names
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                text.lines().count() - 1,
                text,
            )
        })
        .collect()
}

#[test]
fn csv_rotates_by_packet_time_deterministically() {
    let a = tempfile::tempdir().unwrap();
    let got = rotate_run(a.path());
    let summary: Vec<(&str, usize)> = got.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
    assert_eq!(
        summary,
        vec![
            ("packets-1700000000000000000.csv", 3),
            ("packets-1700000030000000000.csv", 3),
            ("packets-1700000095500000000.csv", 1),
        ]
    );
    for (_, _, text) in &got {
        assert!(text.starts_with("ts_ns,iface,wire_len,cap_len,eth_src,"));
    }
    // A replay gives the same files, byte for byte.
    let b = tempfile::tempdir().unwrap();
    assert_eq!(rotate_run(b.path()), got);
    // Writing again into the same directory overwrites, never appends.
    assert_eq!(rotate_run(a.path()), got);
}

#[test]
fn csv_without_records_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a/b");
    let mut sink = CsvSink::new(&sub, CsvOptions::default()).unwrap();
    sink.close().unwrap();
    assert!(sub.is_dir(), "the directory is created up front");
    assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0);
}

#[test]
fn errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();

    let err = CsvSink::new(file.join("sub"), CsvOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::CreateDir { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("cannot create output directory "), "{msg}");
    assert!(msg.contains("plain-file"), "{msg}");

    let err = JsonlSink::create(file.join("x.jsonl")).err().unwrap();
    assert!(
        err.to_string().starts_with("cannot create output file "),
        "{err}"
    );

    let err = CsvSink::new(dir.path(), CsvOptions { rotate_secs: 0 })
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "invalid setting rotate_secs: must be at least 1 second"
    );
}

#[test]
fn output_specs_parse_and_build() {
    let dir = tempfile::tempdir().unwrap();
    let jpath = dir.path().join("out.jsonl");
    let cpath = dir.path().join("csv");
    let specs: Vec<OutputSpec> = [
        format!("jsonl:{}", jpath.display()),
        format!("csv:{}", cpath.display()),
        "null".to_owned(),
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    assert!("jsonl:-".parse::<OutputSpec>().unwrap().is_stdout());
    for bad in ["", "jsonl", "jsonl:", "csv", "null:x", "tsv:x"] {
        let err = bad.parse::<OutputSpec>().unwrap_err();
        assert!(err.to_string().starts_with("invalid output "), "{err}");
    }

    let outputs = specs
        .iter()
        .map(|s| s.build(CsvOptions::default()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut tee = Tee::new(outputs);
    for i in 0..5 {
        tee.write(&at(1_700_000_000 + i, 0)).unwrap();
    }
    tee.close().unwrap();
    for out in tee.sinks() {
        assert_eq!(out.counters().records, 5, "{out:?}");
    }
    assert_eq!(std::fs::read_to_string(&jpath).unwrap().lines().count(), 5);
    assert_eq!(std::fs::read_dir(&cpath).unwrap().count(), 1);
}

#[test]
fn null_sink_counts() {
    let mut sink = NullSink::new();
    for _ in 0..3 {
        sink.write(&PacketRecord::default()).unwrap();
    }
    sink.close().unwrap();
    assert_eq!(sink.counters().records, 3);
    assert_eq!(sink.counters().bytes, 0);
    let _ = Ipv4Addr::LOCALHOST;
}
