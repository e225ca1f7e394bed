//! pcap and pcapng file reading.
//!
//! [`FrameReader`] turns a byte stream into borrowed [`RawFrame`]s: it
//! detects the format from the magic number, reads the stream in 1 MiB
//! chunks into one reusable buffer and hands out slices of it, so reading
//! allocates nothing per packet. [`FileSource`] wraps it as a
//! [`netanalyzer_core::Source`] that parses every frame into a record.
//!
//! Format handling is documented where it happens: classic pcap in
//! `pcap.rs`, pcapng in `pcapng.rs`. Shared rules for broken files:
//!
//! - A length that cannot be right (a packet over [`MAX_PACKET`] bytes, a
//!   pcapng block that is too short, not a multiple of 4, larger than its
//!   content allows, or whose trailing length differs) ends the stream with
//!   [`CaptureError::Corrupt`] at the byte offset of that record or block.
//! - A stream that ends inside a record or block ends with
//!   [`CaptureError::CutShort`] at the offset where that record starts.
//! - Frames before the bad record are delivered first. After an error the
//!   reader returns `Ok(None)` forever. No length read from the file sizes
//!   an allocation before it has been checked against a fixed maximum.
//!
//! [`CaptureError::Corrupt`]: crate::CaptureError::Corrupt
//! [`CaptureError::CutShort`]: crate::CaptureError::CutShort

mod buf;
mod iface;
mod pcap;
mod pcapng;
mod reader;
mod source;
#[cfg(test)]
mod tests;

pub use iface::InterfaceInfo;
pub use reader::FrameReader;
pub use source::FileSource;

use crate::LinkType;

/// Largest captured packet accepted, in bytes (libpcap's and Wireshark's
/// limit for ordinary link types). A record claiming more is corrupt.
pub const MAX_PACKET: u32 = 262_144;

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic libpcap (`.pcap`), any of its four magic numbers.
    Pcap,
    /// pcapng (`.pcapng`).
    Pcapng,
}

/// One frame as stored in a file, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// Nanoseconds since the Unix epoch (0 when the file has none, as for a
    /// pcapng Simple Packet Block).
    pub ts_ns: u64,
    /// Original length on the wire.
    pub wire_len: u32,
    /// Link type of the frame's interface.
    pub link: LinkType,
    /// Interface index within the current pcapng section (0 for classic
    /// pcap).
    pub iface: u32,
    /// The captured bytes; `data.len()` is the captured length.
    pub data: &'a [u8],
}

/// Where [`FrameReader`]'s format code found a frame in the buffer.
#[derive(Debug, Clone, Copy)]
struct FrameLoc {
    ts_ns: u64,
    wire_len: u32,
    link: LinkType,
    iface: u32,
    /// Buffer index of the first captured byte.
    at: usize,
    len: usize,
}
