//! The on-disk spool: a directory of segment files, one sealed batch each.
//!
//! File names carry a counter, `seg-<20 digits>.nab`, so a directory
//! listing sorted by name is the send order, across restarts. New batches
//! are appended with a counter above every existing one; a batch the sender
//! could not deliver from memory is *prepended* with a counter below every
//! existing one (it is older than anything spooled meanwhile). A fresh spool
//! starts at [`BASE`], leaving room for prepends.
//!
//! Several sender threads replay the spool at once. Each *claims* the
//! oldest segment no other sender holds ([`Spool::claim`]); on an
//! acknowledgement it removes that very segment, on a rejection it moves it
//! aside, on a retryable failure it releases the claim so the segment is
//! the first one claimed again. So no segment is ever sent twice at the
//! same time, and replay starts oldest first; with K senders the
//! acknowledgements may come back reordered within a window of K segments.
//! Claims live in memory only.
//!
//! Every file is written under a temporary name, fsynced, renamed, and the
//! directory fsynced: a crash leaves either the whole segment or a
//! `*.tmp` file that the next open deletes.
//!
//! Segment layout (little endian), [`HEADER_LEN`] bytes then the sensor id
//! then the body:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `NABS` |
//! | 4 | 2 | format version (1) |
//! | 6 | 2 | flags: bit 0 = body is zstd |
//! | 8 | 8 | stream id |
//! | 16 | 8 | seq |
//! | 24 | 4 | record count |
//! | 28 | 2 | sensor id length |
//! | 30 | 2 | reserved (0) |
//! | 32 | 8 | body length |
//! | 40 | 4 | crc32 of the body |
//! | 44 | 4 | crc32 of bytes 0..44 and the sensor id |
//!
//! A file whose length, magic, version or checksums do not match is torn or
//! corrupt: it is moved to `corrupt/` and counted, never sent, never fatal.

use crate::wire::EncodedBatch;
use crate::StoreError;
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Magic bytes at the start of every segment.
pub(crate) const MAGIC: [u8; 4] = *b"NABS";
/// Segment format version.
pub(crate) const VERSION: u16 = 1;
/// Fixed header length.
pub(crate) const HEADER_LEN: usize = 48;
/// First counter of a fresh spool: room below it for prepends.
pub(crate) const BASE: u64 = 1_000_000_000_000;
const FLAG_ZSTD: u16 = 1;

/// One segment in the index.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) counter: u64,
    pub(crate) path: PathBuf,
    /// Records in the batch.
    pub(crate) count: u32,
    /// File size.
    pub(crate) bytes: u64,
    /// A sender is sending it now (see [`Spool::claim`]).
    pub(crate) claimed: bool,
}

/// Why a segment cannot be used.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Torn or corrupt: quarantine it.
    Corrupt(String),
    /// The file cannot be read at all.
    Io(io::Error),
}

/// The spool directory and its in-memory index, oldest first.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    segs: VecDeque<Segment>,
    bytes: u64,
    records: u64,
    next_tail: u64,
    next_head: u64,
    /// Segments found corrupt at open.
    pub(crate) corrupt_at_open: u64,
}

fn spool_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Spool {
        path: path.to_path_buf(),
        source,
    }
}

impl Spool {
    /// Opens (creates) the spool directory: deletes leftover temporary
    /// files, indexes the segments, quarantines those with a bad header.
    pub(crate) fn open(dir: &Path) -> Result<Spool, StoreError> {
        fs::create_dir_all(dir).map_err(|e| spool_err(dir, e))?;
        let mut found = Vec::new();
        let mut corrupt = 0;
        for entry in fs::read_dir(dir).map_err(|e| spool_err(dir, e))? {
            let entry = entry.map_err(|e| spool_err(dir, e))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                // A write that did not finish before a crash.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(counter) = parse_name(name) else {
                continue;
            };
            match read_header_of(&path) {
                Ok((count, bytes)) => found.push(Segment {
                    counter,
                    path,
                    count,
                    bytes,
                    claimed: false,
                }),
                Err(ReadError::Corrupt(why)) => {
                    tracing::warn!(segment = %path.display(), "corrupt spool segment: {why}");
                    quarantine(dir, &path, "corrupt")?;
                    corrupt += 1;
                }
                Err(ReadError::Io(e)) => return Err(spool_err(&path, e)),
            }
        }
        found.sort_by_key(|s| s.counter);
        let next_head = found.first().map_or(BASE - 1, |s| s.counter - 1);
        let next_tail = found.last().map_or(BASE, |s| s.counter + 1);
        let bytes = found.iter().map(|s| s.bytes).sum();
        let records = found.iter().map(|s| u64::from(s.count)).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            segs: found.into(),
            bytes,
            records,
            next_tail,
            next_head,
            corrupt_at_open: corrupt,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.segs.len()
    }
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
    pub(crate) fn records(&self) -> u64 {
        self.records
    }
    /// Segments not claimed by a sender.
    #[cfg(test)]
    pub(crate) fn unclaimed(&self) -> usize {
        self.segs.iter().filter(|s| !s.claimed).count()
    }

    /// Claims the oldest unclaimed segment for one sender: no other sender
    /// gets it until it is [released](Spool::release), removed or moved
    /// aside. Claims live in memory only; a new [`Spool::open`] starts with
    /// none.
    pub(crate) fn claim(&mut self) -> Option<Segment> {
        let seg = self.segs.iter_mut().find(|s| !s.claimed)?;
        seg.claimed = true;
        Some(seg.clone())
    }

    /// Gives a claimed segment back (its send will be retried).
    pub(crate) fn release(&mut self, counter: u64) {
        if let Some(i) = self.index_of(counter) {
            self.segs[i].claimed = false;
        }
    }

    /// Where `counter` is in the index (the index is sorted by counter:
    /// appends take the largest counter, prepends the smallest).
    fn index_of(&self, counter: u64) -> Option<usize> {
        self.segs.binary_search_by_key(&counter, |s| s.counter).ok()
    }

    /// Drops `counter` from the index (the caller deleted or moved it, or
    /// it vanished).
    pub(crate) fn forget(&mut self, counter: u64) -> Option<Segment> {
        let seg = self.segs.remove(self.index_of(counter)?)?;
        self.bytes -= seg.bytes;
        self.records -= u64::from(seg.count);
        Some(seg)
    }

    /// Deletes segment `counter` (acknowledged).
    pub(crate) fn remove(&mut self, counter: u64) -> Result<(), StoreError> {
        if let Some(seg) = self.forget(counter) {
            match fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(spool_err(&seg.path, e)),
            }
        }
        Ok(())
    }

    /// Moves segment `counter` into the subdirectory `sub` (`rejected`,
    /// `corrupt`).
    pub(crate) fn move_aside(&mut self, counter: u64, sub: &str) -> Result<(), StoreError> {
        if let Some(seg) = self.forget(counter) {
            quarantine(&self.dir, &seg.path, sub)?;
        }
        Ok(())
    }

    /// Appends a batch as the newest segment.
    pub(crate) fn push_back(&mut self, b: &EncodedBatch) -> Result<(), StoreError> {
        let counter = self.next_tail;
        self.next_tail += 1;
        let seg = self.write_segment(counter, b)?;
        self.add(seg, false);
        Ok(())
    }

    /// Prepends a batch as the oldest segment.
    pub(crate) fn push_front(&mut self, b: &EncodedBatch) -> Result<(), StoreError> {
        let counter = self.next_head;
        self.next_head = self.next_head.saturating_sub(1);
        let seg = self.write_segment(counter, b)?;
        self.add(seg, true);
        Ok(())
    }

    fn add(&mut self, seg: Segment, front: bool) {
        self.bytes += seg.bytes;
        self.records += u64::from(seg.count);
        if front {
            self.segs.push_front(seg);
        } else {
            self.segs.push_back(seg);
        }
    }

    /// Writes a batch straight into the subdirectory `sub` (a batch from
    /// memory the server rejected).
    pub(crate) fn write_aside(&mut self, sub: &str, b: &EncodedBatch) -> Result<(), StoreError> {
        let dir = self.dir.join(sub);
        fs::create_dir_all(&dir).map_err(|e| spool_err(&dir, e))?;
        let name = format!("{}-{:020}-{:020}.nab", b.sensor_id, b.stream_id, b.seq);
        write_atomic(&dir, &name, b).map(|_| ())
    }

    fn write_segment(&mut self, counter: u64, b: &EncodedBatch) -> Result<Segment, StoreError> {
        let name = seg_name(counter);
        let bytes = write_atomic(&self.dir, &name, b)?;
        Ok(Segment {
            counter,
            path: self.dir.join(name),
            count: b.count,
            bytes,
            claimed: false,
        })
    }
}

/// `seg-<counter>.nab`.
pub(crate) fn seg_name(counter: u64) -> String {
    format!("seg-{counter:020}.nab")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".nab")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Moves `path` into `dir/sub/`, keeping its name.
fn quarantine(dir: &Path, path: &Path, sub: &str) -> Result<(), StoreError> {
    let to = dir.join(sub);
    fs::create_dir_all(&to).map_err(|e| spool_err(&to, e))?;
    let name = path.file_name().unwrap_or_default();
    fs::rename(path, to.join(name)).map_err(|e| spool_err(path, e))
}

/// Encodes the segment header for `b`.
pub(crate) fn encode_header(b: &EncodedBatch) -> Vec<u8> {
    let sensor = b.sensor_id.as_bytes();
    let sensor_len = u16::try_from(sensor.len()).unwrap_or(u16::MAX);
    let sensor = &sensor[..usize::from(sensor_len)];
    let mut h = Vec::with_capacity(HEADER_LEN + sensor.len());
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    let flags = if b.zstd { FLAG_ZSTD } else { 0 };
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&b.stream_id.to_le_bytes());
    h.extend_from_slice(&b.seq.to_le_bytes());
    h.extend_from_slice(&b.count.to_le_bytes());
    h.extend_from_slice(&sensor_len.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&(b.body.len() as u64).to_le_bytes());
    h.extend_from_slice(&crc32fast::hash(&b.body).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h);
    crc.update(sensor);
    h.extend_from_slice(&crc.finalize().to_le_bytes());
    h.extend_from_slice(sensor);
    h
}

/// Writes header + body to `dir/name` crash-safely; returns the file size.
fn write_atomic(dir: &Path, name: &str, b: &EncodedBatch) -> Result<u64, StoreError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let header = encode_header(b);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&header)?;
        f.write_all(&b.body)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(spool_err(&path, e));
    }
    Ok((header.len() + b.body.len()) as u64)
}

/// The parsed fixed header.
struct Header {
    zstd: bool,
    stream_id: u64,
    seq: u64,
    count: u32,
    sensor_len: usize,
    body_len: u64,
    body_crc: u32,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn parse_header(h: &[u8; HEADER_LEN]) -> Result<Header, ReadError> {
    let bad = |s: &str| Err(ReadError::Corrupt(s.to_owned()));
    if h[0..4] != MAGIC {
        return bad("bad magic");
    }
    if le_u16(h, 4) != VERSION {
        return bad("unknown segment version");
    }
    Ok(Header {
        zstd: le_u16(h, 6) & FLAG_ZSTD != 0,
        stream_id: le_u64(h, 8),
        seq: le_u64(h, 16),
        count: le_u32(h, 24),
        sensor_len: usize::from(le_u16(h, 28)),
        body_len: le_u64(h, 32),
        body_crc: le_u32(h, 40),
    })
}

fn check_header_crc(h: &[u8; HEADER_LEN], sensor: &[u8]) -> Result<(), ReadError> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[..44]);
    crc.update(sensor);
    if crc.finalize() != le_u32(h, 44) {
        return Err(ReadError::Corrupt("header checksum mismatch".into()));
    }
    Ok(())
}

/// Reads and checks a header; returns (count, file size). The body
/// checksum is checked when the segment is read for sending.
fn read_header_of(path: &Path) -> Result<(u32, u64), ReadError> {
    let mut f = File::open(path).map_err(ReadError::Io)?;
    let len = f.metadata().map_err(ReadError::Io)?.len();
    let mut h = [0u8; HEADER_LEN];
    if len < HEADER_LEN as u64 {
        return Err(ReadError::Corrupt("shorter than the header".into()));
    }
    f.read_exact(&mut h).map_err(ReadError::Io)?;
    let hd = parse_header(&h)?;
    let mut sensor = vec![0u8; hd.sensor_len];
    if len < (HEADER_LEN + hd.sensor_len) as u64 {
        return Err(ReadError::Corrupt("shorter than the header".into()));
    }
    f.read_exact(&mut sensor).map_err(ReadError::Io)?;
    check_header_crc(&h, &sensor)?;
    if len != (HEADER_LEN + hd.sensor_len) as u64 + hd.body_len {
        return Err(ReadError::Corrupt(format!(
            "length {len} does not match the header (torn write?)"
        )));
    }
    Ok((hd.count, len))
}

/// Reads a whole segment back into the batch it holds, checking every
/// checksum.
pub(crate) fn read_segment(path: &Path) -> Result<EncodedBatch, ReadError> {
    let data = fs::read(path).map_err(ReadError::Io)?;
    decode_segment(&data)
}

/// Decodes segment bytes (see the module docs for the layout).
pub(crate) fn decode_segment(data: &[u8]) -> Result<EncodedBatch, ReadError> {
    let Some(h) = data.get(..HEADER_LEN) else {
        return Err(ReadError::Corrupt("shorter than the header".into()));
    };
    let mut arr = [0u8; HEADER_LEN];
    arr.copy_from_slice(h);
    let hd = parse_header(&arr)?;
    let Some(sensor) = data.get(HEADER_LEN..HEADER_LEN + hd.sensor_len) else {
        return Err(ReadError::Corrupt("shorter than the header".into()));
    };
    check_header_crc(&arr, sensor)?;
    let body = &data[HEADER_LEN + hd.sensor_len..];
    if body.len() as u64 != hd.body_len {
        return Err(ReadError::Corrupt(format!(
            "body is {} bytes, header says {} (torn write?)",
            body.len(),
            hd.body_len
        )));
    }
    if crc32fast::hash(body) != hd.body_crc {
        return Err(ReadError::Corrupt("body checksum mismatch".into()));
    }
    let sensor_id = String::from_utf8(sensor.to_vec())
        .map_err(|_| ReadError::Corrupt("sensor id is not utf-8".into()))?;
    Ok(EncodedBatch {
        sensor_id,
        stream_id: hd.stream_id,
        seq: hd.seq,
        count: hd.count,
        body: body.to_vec(),
        zstd: hd.zstd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64) -> EncodedBatch {
        EncodedBatch {
            sensor_id: "s1".into(),
            stream_id: 7,
            seq,
            count: 3,
            body: vec![seq as u8; 10],
            zstd: seq % 2 == 0,
        }
    }

    #[test]
    fn header_round_trip_and_corruption() {
        let b = batch(4);
        let mut data = encode_header(&b);
        data.extend_from_slice(&b.body);
        assert_eq!(decode_segment(&data).unwrap(), b);
        for i in 0..data.len() {
            let mut d = data.clone();
            d[i] ^= 0x40;
            assert!(decode_segment(&d).is_err(), "flip at {i}");
        }
        assert!(decode_segment(&data[..data.len() - 1]).is_err());
    }

    #[test]
    fn order_survives_reopen_and_prepend() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.push_back(&batch(1)).unwrap();
        s.push_back(&batch(2)).unwrap();
        s.push_front(&batch(0)).unwrap();
        assert_eq!((s.len(), s.records()), (3, 9));
        let mut s = Spool::open(dir.path()).unwrap();
        let mut seqs = Vec::new();
        while let Some(seg) = s.claim() {
            seqs.push(read_segment(&seg.path).unwrap().seq);
            s.remove(seg.counter).unwrap();
        }
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!((s.bytes(), s.records()), (0, 0));
    }

    #[test]
    fn claims_hand_each_segment_to_one_sender_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        for seq in 1..=4 {
            s.push_back(&batch(seq)).unwrap();
        }
        let a = s.claim().unwrap();
        let b = s.claim().unwrap();
        assert!(a.counter < b.counter);
        assert_eq!(s.unclaimed(), 2);
        // A put-back from memory is older than everything: claimed next.
        s.push_front(&batch(0)).unwrap();
        let c = s.claim().unwrap();
        assert_eq!(read_segment(&c.path).unwrap().seq, 0);
        // Released: claimable again, before the newer ones.
        s.release(a.counter);
        assert_eq!(s.claim().unwrap().counter, a.counter);
        s.remove(b.counter).unwrap();
        s.move_aside(c.counter, "rejected").unwrap();
        assert!(
            !b.path.exists()
                && dir
                    .path()
                    .join("rejected")
                    .join(c.path.file_name().unwrap())
                    .exists()
        );
        let d = s.claim().unwrap();
        assert_eq!(read_segment(&d.path).unwrap().seq, 3);
        assert_eq!(s.claim().unwrap().counter, d.counter + 1);
        assert!(s.claim().is_none());
        assert_eq!((s.len(), s.records()), (3, 9));
        // Claims are not persisted.
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!(s.unclaimed(), 3);
        assert_eq!(s.claim().unwrap().counter, a.counter);
    }

    #[test]
    fn names_parse() {
        assert_eq!(parse_name(&seg_name(42)), Some(42));
        assert_eq!(parse_name("seg-42.nab"), None);
        assert_eq!(parse_name("seg-0000000000000000004x.nab"), None);
    }
}
