//! Unit tests on pcap and pcapng streams built in code.

use super::*;
use crate::CaptureError;
use netanalyzer_core::{PacketRecord, Source, SourceEvent};
use std::io::Read;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum E {
    L,
    B,
}

fn w16(v: &mut Vec<u8>, e: E, x: u16) {
    v.extend(if e == E::L {
        x.to_le_bytes()
    } else {
        x.to_be_bytes()
    });
}
fn w32(v: &mut Vec<u8>, e: E, x: u32) {
    v.extend(if e == E::L {
        x.to_le_bytes()
    } else {
        x.to_be_bytes()
    });
}
fn w64(v: &mut Vec<u8>, e: E, x: u64) {
    v.extend(if e == E::L {
        x.to_le_bytes()
    } else {
        x.to_be_bytes()
    });
}
fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

/// A classic pcap file: records are (sec, frac, data, wire_len).
fn pcap_file(e: E, nsec: bool, link: u32, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let mut v = Vec::new();
    w32(&mut v, e, if nsec { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, e, 2);
    w16(&mut v, e, 4);
    w32(&mut v, e, 0);
    w32(&mut v, e, 0);
    w32(&mut v, e, 65535);
    w32(&mut v, e, link);
    for &(sec, frac, data, wire) in recs {
        pcap_rec(&mut v, e, sec, frac, data.len() as u32, wire);
        v.extend(data);
    }
    v
}
fn pcap_rec(v: &mut Vec<u8>, e: E, sec: u32, frac: u32, caplen: u32, wire: u32) {
    for x in [sec, frac, caplen, wire] {
        w32(v, e, x);
    }
}

fn block(e: E, btype: u32, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    pad4(&mut b);
    let len = 12 + b.len() as u32;
    let mut v = Vec::new();
    w32(&mut v, e, btype);
    w32(&mut v, e, len);
    v.extend(b);
    w32(&mut v, e, len);
    v
}
fn shb(e: E) -> Vec<u8> {
    let mut b = Vec::new();
    w32(&mut b, e, 0x1A2B_3C4D);
    w16(&mut b, e, 1);
    w16(&mut b, e, 0);
    w64(&mut b, e, u64::MAX);
    block(e, 0x0A0D_0D0A, &b)
}
fn opt(e: E, code: u16, val: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    w16(&mut v, e, code);
    w16(&mut v, e, val.len() as u16);
    v.extend(val);
    pad4(&mut v);
    v
}
fn idb(e: E, link: u16, snaplen: u32, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    w16(&mut b, e, link);
    w16(&mut b, e, 0);
    w32(&mut b, e, snaplen);
    for o in opts {
        b.extend(o);
    }
    if !opts.is_empty() {
        b.extend([0; 4]);
    }
    block(e, 1, &b)
}
fn epb(e: E, iface: u32, ticks: u64, data: &[u8], wire: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for x in [
        iface,
        (ticks >> 32) as u32,
        ticks as u32,
        data.len() as u32,
        wire,
    ] {
        w32(&mut b, e, x);
    }
    b.extend(data);
    block(e, 6, &b)
}
fn spb(e: E, data: &[u8], wire: u32) -> Vec<u8> {
    let mut b = Vec::new();
    w32(&mut b, e, wire);
    b.extend(data);
    block(e, 3, &b)
}
fn pb(e: E, iface: u16, ticks: u64, data: &[u8], wire: u32) -> Vec<u8> {
    let mut b = Vec::new();
    w16(&mut b, e, iface);
    w16(&mut b, e, 0);
    for x in [(ticks >> 32) as u32, ticks as u32, data.len() as u32, wire] {
        w32(&mut b, e, x);
    }
    b.extend(data);
    block(e, 2, &b)
}

#[derive(Debug, PartialEq, Eq)]
struct F {
    ts: u64,
    wire: u32,
    link: u32,
    iface: u32,
    data: Vec<u8>,
}

fn read_with<R: Read>(r: R) -> (Vec<F>, Option<CaptureError>) {
    let mut rd = match FrameReader::new(r) {
        Ok(rd) => rd,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    loop {
        match rd.next_frame() {
            Ok(Some(f)) => out.push(F {
                ts: f.ts_ns,
                wire: f.wire_len,
                link: f.link.0,
                iface: f.iface,
                data: f.data.to_vec(),
            }),
            Ok(None) => return (out, None),
            Err(e) => {
                // Stays finished after an error.
                assert!(rd.next_frame().unwrap().is_none());
                assert!(rd.next_frame().unwrap().is_none());
                return (out, Some(e));
            }
        }
    }
}

/// Reads `bytes` whole and in odd-sized pieces; both must agree.
fn read_all(bytes: &[u8]) -> (Vec<F>, Option<CaptureError>) {
    let whole = read_with(bytes);
    let trickled = read_with(Trickle {
        data: bytes,
        pos: 0,
        n: 0,
    });
    assert_eq!(whole.0, trickled.0);
    assert_eq!(
        whole.1.as_ref().map(|e| e.to_string()),
        trickled.1.as_ref().map(|e| e.to_string())
    );
    whole
}

/// A reader that returns 1..=7 bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    n: usize,
}
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.n = self.n % 7 + 1;
        let k = self.n.min(buf.len()).min(self.data.len() - self.pos);
        buf[..k].copy_from_slice(&self.data[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

fn offset_of(e: &CaptureError) -> u64 {
    match e {
        CaptureError::Corrupt { offset, .. } | CaptureError::CutShort { offset, .. } => *offset,
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn pcap_all_four_magics() {
    for e in [E::L, E::B] {
        for nsec in [false, true] {
            let file = pcap_file(
                e,
                nsec,
                1,
                &[(1_700_000_000, 999_999, b"abc", 60), (5, 1, b"", 0)],
            );
            let (frames, err) = read_all(&file);
            assert!(err.is_none(), "{err:?}");
            let unit = if nsec { 1 } else { 1000 };
            assert_eq!(
                frames,
                vec![
                    F {
                        ts: 1_700_000_000 * 1_000_000_000 + 999_999 * unit,
                        wire: 60,
                        link: 1,
                        iface: 0,
                        data: b"abc".to_vec()
                    },
                    F {
                        ts: 5_000_000_000 + unit,
                        wire: 0,
                        link: 1,
                        iface: 0,
                        data: vec![]
                    },
                ]
            );
            let r = FrameReader::new(&file[..]).unwrap();
            assert_eq!(r.format(), FileFormat::Pcap);
            let ifs = r.interfaces();
            assert_eq!(ifs.len(), 1);
            assert_eq!(
                (ifs[0].link, ifs[0].snaplen, ifs[0].tsresol),
                (LinkType::ETHERNET, 65535, if nsec { 9 } else { 6 })
            );
        }
    }
}

#[test]
fn pcap_link_type_masks_fcs_bits_and_bytes_read_advances() {
    let file = pcap_file(E::L, false, 0x1000_0000 | 113, &[(1, 0, b"xy", 2)]);
    let mut r = FrameReader::new(&file[..]).unwrap();
    assert_eq!(r.bytes_read(), 24);
    assert_eq!(r.next_frame().unwrap().unwrap().link, LinkType::LINUX_SLL);
    assert_eq!(r.bytes_read(), file.len() as u64);
}

#[test]
fn pcap_cut_short_in_header_and_in_data() {
    let file = pcap_file(E::L, false, 1, &[(1, 0, b"abcd", 4), (2, 0, b"efgh", 4)]);
    // Mid-data of record 2 (which starts at 24 + 20 = 44).
    let (frames, err) = read_all(&file[..file.len() - 1]);
    assert_eq!(frames.len(), 1);
    let err = err.unwrap();
    assert!(
        matches!(err, CaptureError::CutShort { offset: 44, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("offset 44"), "{err}");
    // Mid-header of record 2.
    let (frames, err) = read_all(&file[..50]);
    assert_eq!(frames.len(), 1);
    assert!(matches!(
        err,
        Some(CaptureError::CutShort { offset: 44, .. })
    ));
    // Mid-file-header, and empty.
    assert!(matches!(
        read_all(&file[..10]).1,
        Some(CaptureError::CutShort { offset: 0, .. })
    ));
    assert!(matches!(
        read_all(&[]).1,
        Some(CaptureError::CutShort { offset: 0, .. })
    ));
}

#[test]
fn pcap_huge_caplen_is_corrupt_without_allocating() {
    for caplen in [u32::MAX, MAX_PACKET + 1, 16_711_424] {
        let mut file = pcap_file(E::B, true, 1, &[(1, 0, b"ok", 2)]);
        pcap_rec(&mut file, E::B, 2, 0, caplen, 60);
        file.extend([0; 64]);
        let (frames, err) = read_all(&file);
        assert_eq!(frames.len(), 1);
        let err = err.unwrap();
        assert!(
            matches!(err, CaptureError::Corrupt { offset: 42, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&caplen.to_string()));
    }
    // The largest legal packet is fine.
    let big = vec![7u8; MAX_PACKET as usize];
    let (frames, err) = read_all(&pcap_file(E::L, false, 1, &[(1, 0, &big, 70_000)]));
    assert!(err.is_none());
    assert_eq!(frames[0].data.len(), MAX_PACKET as usize);
}

#[test]
fn unknown_magic_and_bad_version() {
    let e = FrameReader::new(&b"GIF89a.........................."[..]).unwrap_err();
    assert!(matches!(
        e,
        CaptureError::UnknownFormat { magic: 0x4749_4638 }
    ));
    let mut file = pcap_file(E::L, false, 1, &[]);
    file[4] = 1;
    assert!(matches!(
        FrameReader::new(&file[..]),
        Err(CaptureError::Corrupt { .. })
    ));
}

#[test]
fn pcapng_both_orders_resolutions_and_interfaces() {
    for e in [E::L, E::B] {
        let mut f = shb(e);
        f.extend(idb(e, 1, 0, &[opt(e, 2, b"eth0"), opt(e, 9, &[9])]));
        f.extend(idb(e, 113, 96, &[opt(e, 9, &[0x80 | 20])]));
        f.extend(idb(e, 101, 65535, &[]));
        let mut off = Vec::new();
        w64(&mut off, e, (-10i64) as u64);
        f.extend(idb(e, 228, 0, &[opt(e, 9, &[3]), opt(e, 14, &off)]));
        f.extend(idb(e, 229, 0, &[opt(e, 9, &[12])]));
        f.extend(epb(e, 0, 1_700_000_000_123_456_789, b"n", 1));
        f.extend(epb(e, 1, 3 << 20 | 1 << 19, b"half", 40));
        f.extend(epb(e, 2, 1_700_000_000_000_001, b"u", 1));
        f.extend(epb(e, 3, 12_345, b"ms", 2));
        f.extend(epb(e, 4, 1_000_000_000_000_999, b"ps", 2));
        let (frames, err) = read_all(&f);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<_> = frames.iter().map(|x| (x.ts, x.link, x.iface)).collect();
        assert_eq!(
            got,
            vec![
                (1_700_000_000_123_456_789, 1, 0),
                (3_500_000_000, 113, 1),
                (1_700_000_000_000_001_000, 101, 2),
                (12_345_000_000 - 10_000_000_000, 228, 3),
                (1_000_000_000_000, 229, 4),
            ]
        );
        assert_eq!(frames[1].data, b"half");
        assert_eq!(frames[1].wire, 40);
        let r = FrameReader::new(&f[..]).unwrap();
        assert_eq!(r.format(), FileFormat::Pcapng);
        // All IDBs before the first packet are read by `new`.
        let ifs = r.interfaces();
        assert_eq!(ifs.len(), 5);
        assert_eq!(ifs[0].name.as_deref(), Some("eth0"));
        assert_eq!(
            (ifs[0].tsresol, ifs[1].tsresol, ifs[2].tsresol),
            (9, 0x94, 6)
        );
        assert_eq!((ifs[1].snaplen, ifs[3].tsoffset), (96, -10));
    }
}

#[test]
fn pcapng_sections_change_order_and_reset_interfaces() {
    let mut f = shb(E::L);
    f.extend(idb(E::L, 1, 0, &[]));
    f.extend(idb(E::L, 113, 0, &[]));
    f.extend(epb(E::L, 1, 1, b"a", 1));
    f.extend(shb(E::B));
    f.extend(idb(E::B, 101, 0, &[opt(E::B, 2, b"wan")]));
    f.extend(epb(E::B, 0, 2, b"b", 1));
    let (frames, err) = read_all(&f);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        frames.iter().map(|x| (x.link, x.iface)).collect::<Vec<_>>(),
        vec![(113, 1), (101, 0)]
    );
    // Interface 1 of the first section does not exist in the second.
    let bad_at = f.len() as u64;
    f.extend(epb(E::B, 1, 3, b"c", 1));
    let (frames, err) = read_all(&f);
    assert_eq!(frames.len(), 2);
    assert_eq!(offset_of(&err.unwrap()), bad_at);
}

#[test]
fn pcapng_simple_and_obsolete_packet_blocks_and_skipped_blocks() {
    let e = E::B;
    let mut f = shb(e);
    f.extend(block(e, 4, &[0; 8])); // NRB
    f.extend(idb(e, 1, 4, &[]));
    f.extend(spb(e, b"abcdef", 60)); // snaplen 4 wins
    f.extend(spb(e, b"ab", 2));
    f.extend(block(e, 5, &[0; 20])); // ISB
    f.extend(block(e, 0x0A, &[0; 8])); // DSB
    f.extend(block(e, 0x0BAD, &[1; 13])); // custom
    f.extend(block(e, 0x4000_0BAD, &[])); // custom, do not copy
    f.extend(block(e, 0x1234, &[2; 3])); // unknown
    f.extend(pb(e, 0, 7, b"old", 3));
    let (frames, err) = read_all(&f);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        frames,
        vec![
            F {
                ts: 0,
                wire: 60,
                link: 1,
                iface: 0,
                data: b"abcd".to_vec()
            },
            F {
                ts: 0,
                wire: 2,
                link: 1,
                iface: 0,
                data: b"ab".to_vec()
            },
            F {
                ts: 7_000,
                wire: 3,
                link: 1,
                iface: 0,
                data: b"old".to_vec()
            },
        ]
    );
}

#[test]
fn pcapng_spb_without_interface_is_corrupt() {
    let mut f = shb(E::L);
    f.extend(spb(E::L, b"ab", 2));
    let err = FrameReader::new(&f[..]).unwrap().next_frame().unwrap_err();
    assert_eq!(offset_of(&err), 28);
}

#[test]
fn pcapng_bogus_lengths() {
    let e = E::L;
    let mut head = shb(e);
    head.extend(idb(e, 1, 0, &[]));
    head.extend(epb(e, 0, 1, b"good", 4));
    let at = head.len() as u64;
    let with = |tail: Vec<u8>| {
        let mut f = head.clone();
        f.extend(tail);
        read_all(&f)
    };
    let hdr = |btype: u32, len: u32| {
        let mut v = Vec::new();
        w32(&mut v, e, btype);
        w32(&mut v, e, len);
        v.extend([0; 40]);
        v
    };
    // Not a multiple of 4, below the minimum, a 4 GB packet block: corrupt.
    for (btype, len) in [(6, 34), (6, 8), (6, 28), (1, 16), (7, 13), (6, 0xFFFF_FFFC)] {
        let (frames, err) = with(hdr(btype, len));
        assert_eq!(frames.len(), 1);
        let err = err.unwrap();
        assert!(
            matches!(err, CaptureError::Corrupt { .. }),
            "{btype} {len}: {err}"
        );
        assert_eq!(offset_of(&err), at);
    }
    // A 4 GB unknown block is skipped by streaming: it is cut short.
    let (frames, err) = with(hdr(0x99, 0xFFFF_FFFC));
    assert_eq!(frames.len(), 1);
    assert!(matches!(err, Some(CaptureError::CutShort { .. })));
    // caplen beyond the block, and caplen 4 GB.
    for caplen in [100, u32::MAX] {
        let mut b = epb(e, 0, 1, b"xxxx", 4);
        b[20..24].copy_from_slice(&caplen.to_le_bytes());
        let err = with(b).1.unwrap();
        assert!(matches!(err, CaptureError::Corrupt { .. }), "{err}");
    }
    // Trailing length differs.
    let mut b = epb(e, 0, 1, b"xxxx", 4);
    let n = b.len();
    b[n - 4] ^= 4;
    assert!(matches!(with(b).1, Some(CaptureError::Corrupt { .. })));
    // Unknown byte-order magic in a second section.
    let mut b = shb(e);
    b[8] = 0;
    assert!(matches!(with(b).1, Some(CaptureError::Corrupt { .. })));
    // Cut short mid-block and mid-header.
    let b = epb(e, 0, 1, b"xxxx", 4);
    for keep in [3, 20, b.len() - 1] {
        let (frames, err) = with(b[..keep].to_vec());
        assert_eq!(frames.len(), 1);
        let err = err.unwrap();
        assert!(matches!(err, CaptureError::CutShort { .. }), "{err}");
        assert_eq!(offset_of(&err), at);
    }
}

#[test]
fn records_straddling_chunk_boundaries() {
    // ~3 MiB of packets of varied sizes, so records cross every 1 MiB edge.
    let mut datas = Vec::new();
    let mut total = 0;
    let mut i = 0u32;
    while total < 3 << 20 {
        let len = (i as usize * 7919) % 3000;
        datas.push(vec![(i % 251) as u8; len]);
        total += len + 16;
        i += 1;
    }
    let recs: Vec<_> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| (i as u32, 0, &d[..], d.len() as u32))
        .collect();
    let file = pcap_file(E::L, false, 1, &recs);
    let (frames, err) = read_with(&file[..]);
    assert!(err.is_none());
    assert_eq!(frames.len(), datas.len());
    for (f, d) in frames.iter().zip(&datas) {
        assert_eq!(&f.data, d);
    }
}

#[test]
fn mutated_files_never_panic_or_hang() {
    let mut ng = shb(E::L);
    ng.extend(idb(
        E::L,
        1,
        0,
        &[opt(E::L, 2, b"eth0"), opt(E::L, 9, &[9])],
    ));
    ng.extend(epb(E::L, 0, 1, b"abcdefgh", 8));
    ng.extend(spb(E::L, b"abcd", 4));
    ng.extend(block(E::L, 5, &[0; 16]));
    ng.extend(pb(E::L, 0, 1, b"ab", 2));
    let pc = pcap_file(E::B, false, 1, &[(1, 2, b"abcd", 4), (3, 4, b"efgh", 4)]);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for base in [ng, pc] {
        for _ in 0..3000 {
            let mut f = base.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % f.len();
                f[at] = (seed >> 40) as u8;
            }
            let cut = (seed >> 20) as usize % (f.len() + 1);
            let (frames, _) = read_with(&f[..cut]);
            assert!(frames.len() <= 5);
            assert!(frames.iter().all(|x| x.data.len() <= MAX_PACKET as usize));
        }
    }
}

#[test]
fn file_source_fills_metadata_and_caches_iface_names() {
    let e = E::L;
    let mut f = shb(e);
    f.extend(idb(e, 1, 0, &[opt(e, 2, b"eth0")]));
    f.extend(idb(e, 1, 0, &[]));
    f.extend(epb(e, 0, 5, &[0; 14], 64));
    f.extend(epb(e, 1, 6, &[0; 14], 14));
    f.extend(epb(e, 0, 7, &[0; 10], 10));
    f.extend(b"junk");
    let mut src = FileSource::from_reader(std::io::Cursor::new(f)).unwrap();
    assert_eq!(src.format(), FileFormat::Pcapng);
    assert_eq!(src.file_len(), None);
    let mut rec = PacketRecord::default();
    let mut ifaces = Vec::new();
    for (ts, wire, cap) in [(5_000, 64, 14), (6_000, 14, 14), (7_000, 10, 10)] {
        assert_eq!(src.next_into(&mut rec).unwrap(), SourceEvent::Packet);
        assert_eq!((rec.ts_ns, rec.wire_len, rec.cap_len), (ts, wire, cap));
        ifaces.push(rec.iface.clone().unwrap());
    }
    assert_eq!(&*ifaces[0], "eth0");
    assert_eq!(&*ifaces[1], "1");
    assert!(std::sync::Arc::ptr_eq(&ifaces[0], &ifaces[2]));
    let err = src.next_into(&mut rec).unwrap_err();
    assert!(matches!(err, CaptureError::CutShort { .. }));
    assert_eq!(src.next_into(&mut rec).unwrap(), SourceEvent::End);
    let stats = src.stats();
    assert_eq!((stats.packets, stats.wire_bytes), (3, 88));

    let pc = pcap_file(E::L, true, 1, &[(1, 1, &[0; 20], 20)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.pcap");
    std::fs::write(&path, &pc).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert_eq!(src.file_len(), Some(pc.len() as u64));
    assert_eq!(src.next_into(&mut rec).unwrap(), SourceEvent::Packet);
    assert_eq!((rec.ts_ns, rec.iface.as_deref()), (1_000_000_001, None));
    assert_eq!(src.bytes_read(), pc.len() as u64);
    assert_eq!(src.next_into(&mut rec).unwrap(), SourceEvent::End);
    assert!(matches!(
        FileSource::open(dir.path().join("missing")),
        Err(CaptureError::Open { .. })
    ));
}
