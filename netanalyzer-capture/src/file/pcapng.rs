//! pcapng files (draft-ietf-opsawg-pcapng).
//!
//! A sequence of blocks `type:u32, total_len:u32, body, total_len:u32`.
//! Handled blocks:
//!
//! - **SHB** (`0x0A0D0D0A`): starts a section. Its byte-order magic sets
//!   the byte order of every block up to the next SHB, so sections of one
//!   file may differ. A new section drops all interfaces. Major version 1
//!   only.
//! - **IDB** (1): adds an interface: link type, snaplen, and the options
//!   `if_name` (2), `if_tsresol` (9; 10^-n or, high bit set, 2^-n seconds;
//!   default µs) and `if_tsoffset` (14; seconds added). Options that run
//!   past the block end are ignored from there on.
//! - **EPB** (6): a packet with interface id, 64-bit timestamp in the
//!   interface's units, captured and original length.
//! - **SPB** (3): a packet of interface 0 with only the original length: no
//!   timestamp (`ts_ns` 0); captured length is
//!   `min(original, block body, snaplen if non-zero)`.
//! - **Packet Block** (2, obsolete): like EPB with a 16-bit interface id.
//!
//! Every other block (name resolution, interface statistics, decryption
//! secrets, custom, unknown) is skipped without being held in memory, so
//! its length only has to be consistent, not small.
//!
//! Checks, each a [`CaptureError::Corrupt`] at the block's offset: total
//! length below 12 or the block type's minimum, not a multiple of 4, above
//! [`MAX_BLOCK`] for a block that is parsed, trailing length different from
//! the leading one, captured length above [`MAX_PACKET`] or beyond the
//! block, an unknown byte-order magic, an interface id with no IDB.

use super::buf::{ChunkBuf, Endian};
use super::{FrameLoc, InterfaceInfo, MAX_PACKET};
use crate::{CaptureError, LinkType};
use std::io::Read;

/// Block type of a Section Header Block, the same in both byte orders.
pub(super) const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// Largest block that is read whole (section and interface headers,
/// packet blocks with their options), in bytes.
pub(super) const MAX_BLOCK: u32 = 4 << 20;

/// Reader state that lives across blocks.
pub(super) struct State {
    pub(super) endian: Endian,
    /// Interfaces of the current section.
    pub(super) ifaces: Vec<InterfaceInfo>,
    /// Bumped whenever `ifaces` changes.
    pub(super) epoch: u64,
}

impl State {
    pub(super) fn new() -> Self {
        State {
            endian: Endian::Little,
            ifaces: Vec::new(),
            epoch: 0,
        }
    }
}

fn corrupt(offset: u64, reason: String) -> CaptureError {
    CaptureError::Corrupt { offset, reason }
}

/// Type of the next block without consuming it; `None` at end of stream or
/// when fewer than 8 bytes remain (the next [`next`] call reports that).
pub(super) fn peek_type<R: Read>(
    buf: &mut ChunkBuf<R>,
    st: &State,
) -> Result<Option<u32>, CaptureError> {
    let offset = buf.offset();
    if !buf
        .fill(8)
        .map_err(|source| CaptureError::Io { offset, source })?
    {
        return Ok(None);
    }
    Ok(Some(st.endian.u32(buf.avail(), 0)))
}

/// Whether a block type carries a packet.
pub(super) fn is_packet(btype: u32) -> bool {
    matches!(btype, EPB | SPB | PB)
}

/// Reads blocks until the next packet; `Ok(None)` at a clean end of file.
#[inline]
pub(super) fn next<R: Read>(
    buf: &mut ChunkBuf<R>,
    st: &mut State,
) -> Result<Option<FrameLoc>, CaptureError> {
    loop {
        match step(buf, st)? {
            Step::Frame(loc) => return Ok(Some(loc)),
            Step::Block => {}
            Step::End => return Ok(None),
        }
    }
}

/// What one block was.
pub(super) enum Step {
    /// A packet.
    Frame(FrameLoc),
    /// Any other block (already applied to the state).
    Block,
    /// Clean end of file.
    End,
}

/// Reads exactly one block.
pub(super) fn step<R: Read>(buf: &mut ChunkBuf<R>, st: &mut State) -> Result<Step, CaptureError> {
    let offset = buf.offset();
    let Some((btype, blen)) = block_header(buf, st, offset)? else {
        return Ok(Step::End);
    };
    let e = st.endian;
    if !matches!(btype, SHB | IDB | SPB | EPB | PB) {
        skip_block(buf, e, offset, btype, blen)?;
        return Ok(Step::Block);
    }
    if blen > MAX_BLOCK {
        return Err(corrupt(
            offset,
            format!(
                "block type {btype:#x} claims {blen} bytes, more than the maximum of {MAX_BLOCK}"
            ),
        ));
    }
    let total = blen as usize;
    let io = |source| CaptureError::Io { offset, source };
    if !buf.fill(total).map_err(io)? {
        let held = buf.avail().len();
        return Err(CaptureError::CutShort {
            offset,
            reason: format!("block type {btype:#x}: {held} of {blen} bytes"),
        });
    }
    let b = &buf.avail()[..total];
    let trailer = e.u32(b, total - 4);
    if trailer != blen {
        return Err(mismatch(offset, btype, blen, trailer));
    }
    let step = match btype {
        SHB => {
            let major = e.u16(b, 12);
            if major != 1 {
                let reason = format!("unsupported pcapng major version {major}");
                return Err(corrupt(offset, reason));
            }
            st.ifaces.clear();
            st.epoch += 1;
            Step::Block
        }
        IDB => {
            st.ifaces.push(parse_idb(e, b));
            st.epoch += 1;
            Step::Block
        }
        _ => Step::Frame(packet(st, b, btype, offset, buf.pos())?),
    };
    buf.consume(total);
    Ok(step)
}

/// Reads and checks a block's type and total length without consuming
/// them; a Section Header Block first switches the byte order. `None` at a
/// clean end of file.
fn block_header<R: Read>(
    buf: &mut ChunkBuf<R>,
    st: &mut State,
    offset: u64,
) -> Result<Option<(u32, u32)>, CaptureError> {
    let io = |source| CaptureError::Io { offset, source };
    if !buf.fill(8).map_err(io)? {
        let held = buf.avail().len();
        if held == 0 {
            return Ok(None);
        }
        return Err(CaptureError::CutShort {
            offset,
            reason: format!("block header: {held} of 8 bytes"),
        });
    }
    if st.endian.u32(buf.avail(), 0) == SHB {
        if !buf.fill(12).map_err(io)? {
            return Err(CaptureError::CutShort {
                offset,
                reason: "section header block: missing byte-order magic".into(),
            });
        }
        let b = buf.avail();
        st.endian = match [b[8], b[9], b[10], b[11]] {
            [0x1a, 0x2b, 0x3c, 0x4d] => Endian::Big,
            [0x4d, 0x3c, 0x2b, 0x1a] => Endian::Little,
            m => {
                let m = u32::from_be_bytes(m);
                let reason = format!("unknown byte-order magic {m:#010x}");
                return Err(corrupt(offset, reason));
            }
        };
    }
    let b = buf.avail();
    let btype = st.endian.u32(b, 0);
    let blen = st.endian.u32(b, 4);
    let min = match btype {
        SHB => 28,
        IDB => 20,
        SPB => 16,
        EPB | PB => 32,
        _ => 12,
    };
    if blen < min {
        return Err(corrupt(
            offset,
            format!("block type {btype:#x} has total length {blen}, below its minimum {min}"),
        ));
    }
    if blen % 4 != 0 {
        return Err(corrupt(
            offset,
            format!("block type {btype:#x} has total length {blen}, not a multiple of 4"),
        ));
    }
    Ok(Some((btype, blen)))
}

/// Streams past a block that is not parsed, then checks its trailer.
fn skip_block<R: Read>(
    buf: &mut ChunkBuf<R>,
    e: Endian,
    offset: u64,
    btype: u32,
    blen: u32,
) -> Result<(), CaptureError> {
    let cut = || CaptureError::CutShort {
        offset,
        reason: format!("block type {btype:#x} of {blen} bytes"),
    };
    let io = |source| CaptureError::Io { offset, source };
    if !buf.skip(u64::from(blen) - 4).map_err(io)? || !buf.fill(4).map_err(io)? {
        return Err(cut());
    }
    let trailer = e.u32(buf.avail(), 0);
    if trailer != blen {
        return Err(mismatch(offset, btype, blen, trailer));
    }
    buf.consume(4);
    Ok(())
}

/// An EPB, PB or SPB; `b` is the whole block, starting at buffer index `at`.
fn packet(
    st: &State,
    b: &[u8],
    btype: u32,
    offset: u64,
    at: usize,
) -> Result<FrameLoc, CaptureError> {
    let e = st.endian;
    let blen = b.len() as u32;
    if btype == SPB {
        let info = interface(st, 0, offset)?;
        let wire_len = e.u32(b, 8);
        let mut caplen = wire_len.min(blen - 16);
        if info.snaplen != 0 {
            caplen = caplen.min(info.snaplen);
        }
        if caplen > MAX_PACKET {
            return Err(corrupt(
                offset,
                format!("simple packet block holds {caplen} bytes, more than the maximum of {MAX_PACKET}"),
            ));
        }
        return Ok(FrameLoc {
            ts_ns: 0,
            wire_len,
            link: info.link,
            iface: 0,
            at: at + 12,
            len: caplen as usize,
        });
    }
    let iface = if btype == EPB {
        e.u32(b, 8)
    } else {
        u32::from(e.u16(b, 8))
    };
    let info = interface(st, iface, offset)?;
    let ticks = (u64::from(e.u32(b, 12)) << 32) | u64::from(e.u32(b, 16));
    let caplen = e.u32(b, 20);
    let wire_len = e.u32(b, 24);
    if caplen > MAX_PACKET || caplen > blen - 32 {
        return Err(corrupt(
            offset,
            format!("packet block of {blen} bytes claims a {caplen}-byte packet"),
        ));
    }
    Ok(FrameLoc {
        ts_ns: info.ts_to_ns(ticks),
        wire_len,
        link: info.link,
        iface,
        at: at + 28,
        len: caplen as usize,
    })
}

fn mismatch(offset: u64, btype: u32, blen: u32, trailer: u32) -> CaptureError {
    corrupt(
        offset,
        format!(
            "block type {btype:#x}: trailing length {trailer} differs from leading length {blen}"
        ),
    )
}

fn interface(st: &State, iface: u32, offset: u64) -> Result<&InterfaceInfo, CaptureError> {
    st.ifaces.get(iface as usize).ok_or_else(|| {
        corrupt(
            offset,
            format!(
                "packet for interface {iface}, but the section describes {} interface(s)",
                st.ifaces.len()
            ),
        )
    })
}

/// An IDB (`b` is the whole block, length already checked >= 20).
fn parse_idb(e: Endian, b: &[u8]) -> InterfaceInfo {
    let link = LinkType(u32::from(e.u16(b, 8)));
    let snaplen = e.u32(b, 12);
    let mut name = None;
    let mut tsresol = 6;
    let mut tsoffset = 0;
    let end = b.len() - 4;
    let mut p = 16;
    while p + 4 <= end {
        let code = e.u16(b, p);
        let len = usize::from(e.u16(b, p + 2));
        p += 4;
        if code == 0 || p + len > end {
            break;
        }
        let val = &b[p..p + len];
        match code {
            2 => {
                let s = String::from_utf8_lossy(val);
                name = Some(s.trim_end_matches('\0').to_owned());
            }
            9 if len >= 1 => tsresol = val[0],
            14 if len >= 8 => tsoffset = e.u64(val, 0) as i64,
            _ => {}
        }
        p += (len + 3) & !3;
    }
    let mut info = InterfaceInfo::new(link, snaplen, tsresol);
    info.name = name;
    info.tsoffset = tsoffset;
    info
}
