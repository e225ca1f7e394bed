//! Replays every capture of `../shared/pcaps` through [`FrameReader`] and
//! [`FileSource`] and compares, frame by frame, the timestamp, wire length
//! and captured length with tshark's oracle (`oracle/NAME.fields.tsv`,
//! columns 2-4). Broken files must yield the oracle's packets, then an
//! error that names the byte offset.

mod support;

use netanalyzer_capture::{CaptureError, FileSource, FrameReader};
use netanalyzer_core::{PacketRecord, Source, SourceEvent};
use std::fs::File;
use std::path::Path;

/// Files where this reader knowingly differs from tshark: (file, frames we
/// return, why).
const DEVIATIONS: &[(&str, usize, &str)] = &[(
    "corrupt-huge-caplen.pcap",
    1,
    "record 2 claims a 1.4 GB packet; libpcap stops after 1 packet. tshark instead \
     re-guesses the file as an old pcap variant with 24-byte record headers and shows \
     a garbage 2nd frame (negative timestamp) before failing",
)];

struct Row {
    file: String,
    packets: usize,
    read_error: bool,
}

fn manifest(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (file, packets, read_error) = (col("file"), col("packets"), col("read_error"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[file].to_owned(),
                packets: c[packets].parse().unwrap(),
                read_error: !c.get(read_error).unwrap_or(&"").trim().is_empty(),
            }
        })
        .collect()
}

/// Columns 2-4 (time, len, cap_len) of the oracle's data rows.
fn oracle(dir: &Path, file: &str) -> Vec<[String; 3]> {
    let (text, _) = support::read_oracle(dir, file, false);
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            [c[1].to_owned(), c[2].to_owned(), c[3].to_owned()]
        })
        .collect()
}

fn fmt_ts(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

#[test]
fn every_capture_matches_the_oracle() {
    let Some(dir) =
        netanalyzer_capture::testing::shared_pcaps_or_skip("the file reader corpus test")
    else {
        return;
    };
    let rows = manifest(&dir);
    assert!(!rows.is_empty());
    let (mut files, mut frames_total) = (0, 0);
    for row in &rows {
        let path = dir.join(&row.file);
        let expected = oracle(&dir, &row.file);
        let deviation = DEVIATIONS.iter().find(|d| d.0 == row.file);
        // pcapng-be-allblocks: tshark shows custom blocks as frames; compare
        // the count with capinfos' `packets` only.
        let rows_are_frames = expected.len() == row.packets;
        let want = deviation.map_or(row.packets, |d| d.1);

        let mut reader = FrameReader::new(File::open(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", row.file));
        let mut n = 0;
        let err = loop {
            match reader.next_frame() {
                Ok(Some(f)) => {
                    if rows_are_frames && n < want {
                        let [ts, len, cap] = &expected[n];
                        let ctx = format!("{} frame {}", row.file, n + 1);
                        // Empty for a Simple Packet Block (no timestamp).
                        if !ts.is_empty() {
                            assert_eq!(fmt_ts(f.ts_ns), *ts, "{ctx}: frame.time_epoch");
                        }
                        assert_eq!(f.wire_len.to_string(), *len, "{ctx}: frame.len");
                        assert_eq!(f.data.len().to_string(), *cap, "{ctx}: frame.cap_len");
                    }
                    n += 1;
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        assert_eq!(n, want, "{}: frame count", row.file);
        match (&err, row.read_error) {
            (None, false) => {}
            (Some(e), true) => {
                assert!(
                    matches!(
                        e,
                        CaptureError::Corrupt { .. } | CaptureError::CutShort { .. }
                    ),
                    "{}: {e}",
                    row.file
                );
                assert!(e.to_string().contains("byte offset"), "{}: {e}", row.file);
                eprintln!("{}: {n} frames, then: {e}", row.file);
            }
            (e, _) => panic!(
                "{}: error {e:?}, manifest read_error {}",
                row.file, row.read_error
            ),
        }
        assert!(
            reader.next_frame().unwrap().is_none(),
            "{}: not finished",
            row.file
        );

        // FileSource delivers the same frames and the same end.
        let mut src = FileSource::open(&path).unwrap();
        assert_eq!(
            src.file_len(),
            Some(std::fs::metadata(&path).unwrap().len())
        );
        let mut rec = PacketRecord::default();
        let src_err = loop {
            match src.next_into(&mut rec) {
                Ok(SourceEvent::Packet) => {}
                Ok(_) => break None,
                Err(e) => break Some(e),
            }
        };
        assert_eq!(
            src.stats().packets,
            n as u64,
            "{}: FileSource count",
            row.file
        );
        assert_eq!(
            src_err.map(|e| e.to_string()),
            err.map(|e| e.to_string()),
            "{}",
            row.file
        );
        files += 1;
        frames_total += n;
    }
    eprintln!("{files} captures, {frames_total} frames agree with the oracle");
    for (file, n, why) in DEVIATIONS {
        eprintln!("known deviation: {file}: {n} frame(s): {why}");
    }
}

/// `set_filter` keeps exactly the frames tcpdump's expression matches: on
/// generated traffic, "tcp port 80" keeps the untagged TCP segments to or
/// from port 80 (BPF needs `vlan` to look inside a tag) and counts the rest.
#[test]
fn offline_bpf_filter_keeps_matching_frames_only() {
    use netanalyzer_capture::gen::{self, GenConfig};
    let mut pcap = Vec::new();
    let cfg = GenConfig {
        packets: 5000,
        ..GenConfig::default()
    };
    gen::generate(&cfg, &mut pcap, std::io::sink()).unwrap();

    let read_all = |filter: Option<&str>| {
        let mut src = FileSource::from_reader(std::io::Cursor::new(pcap.clone())).unwrap();
        if let Some(f) = filter {
            src.set_filter(f).unwrap();
        }
        let mut rec = PacketRecord::default();
        let mut out = Vec::new();
        while src.next_into(&mut rec).unwrap() == SourceEvent::Packet {
            out.push(rec.clone());
        }
        (out, src.filtered(), src.stats())
    };
    let (all, none_filtered, _) = read_all(None);
    assert_eq!(none_filtered, 0);
    let (kept, filtered, stats) = read_all(Some("tcp port 80"));
    let expected: Vec<_> = all
        .iter()
        .filter(|r| {
            r.vlan_id.is_none()
                && r.ip_proto == Some(6)
                && (r.src_port == Some(80) || r.dst_port == Some(80))
        })
        .cloned()
        .collect();
    assert!(!expected.is_empty(), "the generator makes HTTP on port 80");
    assert_eq!(kept, expected);
    assert_eq!(filtered as usize, all.len() - kept.len());
    assert_eq!(stats.packets as usize, kept.len());
}

#[test]
fn offline_bpf_filter_syntax_error_is_clear() {
    let mut pcap = Vec::new();
    let mut w = netanalyzer_capture::PcapWriter::new(&mut pcap).unwrap();
    w.flush().unwrap();
    drop(w);
    let mut src = FileSource::from_reader(std::io::Cursor::new(pcap)).unwrap();
    let err = src.set_filter("tcp and and port 80").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("bad bpf filter \"tcp and and port 80\" for link type ethernet"),
        "{msg}"
    );
}
