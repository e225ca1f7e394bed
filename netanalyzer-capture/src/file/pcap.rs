//! Classic libpcap files.
//!
//! A 24-byte file header, then records of a 16-byte header (`ts_sec`,
//! `ts_frac`, `caplen`, `len`) and `caplen` bytes. The magic number gives
//! the byte order and the unit of `ts_frac`:
//!
//! | bytes on disk | order | `ts_frac` |
//! |---|---|---|
//! | `d4 c3 b2 a1` | little | µs |
//! | `a1 b2 c3 d4` | big | µs |
//! | `4d 3c b2 a1` | little | ns |
//! | `a1 b2 3c 4d` | big | ns |
//!
//! Timestamps are `ts_sec * 10^9 + ts_frac * unit` exactly, so nanosecond
//! files keep their precision (a `ts_frac` beyond one second carries over,
//! as tshark shows it). The link type is the low 16 bits of the header's
//! link-type field (the upper bits carry FCS flags). Only major version 2
//! is accepted, as libpcap does.
//!
//! Like libpcap, a record whose `caplen` exceeds [`MAX_PACKET`] is corrupt
//! (whatever the header's snaplen); `caplen > len` is passed through as
//! the file says. Wireshark additionally guesses among old variants of the
//! format with longer record headers when the first records look wrong;
//! this reader does not.

use super::buf::{ChunkBuf, Endian};
use super::{FrameLoc, InterfaceInfo, MAX_PACKET};
use crate::{CaptureError, LinkType};
use std::io::Read;

/// Size of the file header.
pub(super) const FILE_HEADER: usize = 24;
const REC_HEADER: usize = 16;

/// What the file header says.
#[derive(Debug, Clone, Copy)]
pub(super) struct PcapHeader {
    pub(super) endian: Endian,
    /// Nanoseconds per `ts_frac` unit: 1000 or 1.
    pub(super) frac_ns: u64,
    pub(super) link: LinkType,
}

/// Order and resolution for a pcap magic read as big-endian, if it is one.
pub(super) fn magic(m: u32) -> Option<(Endian, bool)> {
    match m {
        0xd4c3_b2a1 => Some((Endian::Little, false)),
        0xa1b2_c3d4 => Some((Endian::Big, false)),
        0x4d3c_b2a1 => Some((Endian::Little, true)),
        0xa1b2_3c4d => Some((Endian::Big, true)),
        _ => None,
    }
}

/// Reads the file header (the caller has matched the magic).
pub(super) fn read_header<R: Read>(
    buf: &mut ChunkBuf<R>,
    endian: Endian,
    nsec: bool,
) -> Result<(PcapHeader, InterfaceInfo), CaptureError> {
    let ok = buf
        .fill(FILE_HEADER)
        .map_err(|source| CaptureError::Io { offset: 0, source })?;
    if !ok {
        return Err(CaptureError::CutShort {
            offset: 0,
            reason: format!(
                "pcap file header: {} of {FILE_HEADER} bytes",
                buf.avail().len()
            ),
        });
    }
    let b = buf.avail();
    let major = endian.u16(b, 4);
    if major != 2 {
        return Err(CaptureError::Corrupt {
            offset: 4,
            reason: format!("unsupported pcap major version {major}"),
        });
    }
    let snaplen = endian.u32(b, 16);
    let link = LinkType(endian.u32(b, 20) & 0xffff);
    buf.consume(FILE_HEADER);
    let hdr = PcapHeader {
        endian,
        frac_ns: if nsec { 1 } else { 1000 },
        link,
    };
    Ok((
        hdr,
        InterfaceInfo::new(link, snaplen, if nsec { 9 } else { 6 }),
    ))
}

/// The next record, `Ok(None)` at a clean end of file.
#[inline]
pub(super) fn next<R: Read>(
    buf: &mut ChunkBuf<R>,
    h: &PcapHeader,
) -> Result<Option<FrameLoc>, CaptureError> {
    let offset = buf.offset();
    let io = |source| CaptureError::Io { offset, source };
    if !buf.fill(REC_HEADER).map_err(io)? {
        let held = buf.avail().len();
        if held == 0 {
            return Ok(None);
        }
        return Err(CaptureError::CutShort {
            offset,
            reason: format!("record header: {held} of {REC_HEADER} bytes"),
        });
    }
    let b = buf.avail();
    let e = h.endian;
    let sec = u64::from(e.u32(b, 0));
    let frac = u64::from(e.u32(b, 4));
    let caplen = e.u32(b, 8);
    let wire_len = e.u32(b, 12);
    if caplen > MAX_PACKET {
        return Err(CaptureError::Corrupt {
            offset,
            reason: format!(
                "record claims a {caplen}-byte packet, more than the maximum of {MAX_PACKET}"
            ),
        });
    }
    let len = caplen as usize;
    if !buf.fill(REC_HEADER + len).map_err(io)? {
        return Err(CaptureError::CutShort {
            offset,
            reason: format!(
                "packet data: {} of {caplen} bytes",
                buf.avail().len() - REC_HEADER
            ),
        });
    }
    let at = buf.pos() + REC_HEADER;
    buf.consume(REC_HEADER + len);
    Ok(Some(FrameLoc {
        ts_ns: sec * 1_000_000_000 + frac * h.frac_ns,
        wire_len,
        link: h.link,
        iface: 0,
        at,
        len,
    }))
}
