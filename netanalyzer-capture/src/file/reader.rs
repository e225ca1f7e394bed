//! [`FrameReader`]: format detection and the frame loop.

use super::buf::ChunkBuf;
use super::{pcap, pcapng, FileFormat, FrameLoc, InterfaceInfo, RawFrame};
use crate::CaptureError;
use std::io::Read;

/// Iterates over the raw frames of a pcap or pcapng stream.
///
/// The stream is read in 1 MiB chunks into one buffer that is reused for
/// the whole file; each [`RawFrame`] borrows from it, so a frame is valid
/// until the next call. The buffer only grows for a pcapng block larger
/// than a chunk (at most 4 MiB).
///
/// ```
/// use netanalyzer_capture::FrameReader;
/// // A little-endian µs pcap header (Ethernet) and one 4-byte record.
/// let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
/// file.extend([0; 8]);
/// file.extend(65535u32.to_le_bytes());
/// file.extend(1u32.to_le_bytes());
/// for v in [10u32, 5, 4, 60] {
///     file.extend(v.to_le_bytes());
/// }
/// file.extend([1, 2, 3, 4]);
/// let mut r = FrameReader::new(&file[..])?;
/// let f = r.next_frame()?.expect("one frame");
/// assert_eq!((f.ts_ns, f.wire_len, f.data), (10_000_005_000, 60, &[1u8, 2, 3, 4][..]));
/// assert!(r.next_frame()?.is_none());
/// # Ok::<(), netanalyzer_capture::CaptureError>(())
/// ```
pub struct FrameReader<R> {
    buf: ChunkBuf<R>,
    format: Format,
    /// Classic pcap's single interface (pcapng keeps its own list).
    pcap_iface: Vec<InterfaceInfo>,
    done: bool,
}

/// A frame, the interface list, and the list's epoch.
pub(crate) type WithInterfaces<'a> = (RawFrame<'a>, &'a [InterfaceInfo], u64);

enum Format {
    Pcap(pcap::PcapHeader),
    Pcapng(pcapng::State),
}

impl<R: Read> FrameReader<R> {
    /// Detects the format from the first four bytes and reads the file
    /// header; for pcapng, also every block before the first packet, so
    /// that [`interfaces`](Self::interfaces) is filled.
    ///
    /// # Errors
    /// [`CaptureError::UnknownFormat`] for a foreign magic number,
    /// [`CaptureError::CutShort`] for a stream shorter than its header,
    /// [`CaptureError::Corrupt`] for a bad header, [`CaptureError::Io`].
    pub fn new(r: R) -> Result<Self, CaptureError> {
        let mut buf = ChunkBuf::new(r);
        let ok = buf
            .fill(4)
            .map_err(|source| CaptureError::Io { offset: 0, source })?;
        if !ok {
            return Err(CaptureError::CutShort {
                offset: 0,
                reason: format!("file header: {} of 4 bytes", buf.avail().len()),
            });
        }
        let b = buf.avail();
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if let Some((endian, nsec)) = pcap::magic(magic) {
            let (hdr, info) = pcap::read_header(&mut buf, endian, nsec)?;
            return Ok(FrameReader {
                buf,
                format: Format::Pcap(hdr),
                pcap_iface: vec![info],
                done: false,
            });
        }
        if magic != pcapng::SHB {
            return Err(CaptureError::UnknownFormat { magic });
        }
        let mut st = pcapng::State::new();
        while let Some(t) = pcapng::peek_type(&mut buf, &st)? {
            if pcapng::is_packet(t) {
                break;
            }
            // Only non-packet blocks are consumed here, so no frame is lost.
            if !matches!(pcapng::step(&mut buf, &mut st)?, pcapng::Step::Block) {
                break;
            }
        }
        Ok(FrameReader {
            buf,
            format: Format::Pcapng(st),
            pcap_iface: Vec::new(),
            done: false,
        })
    }

    /// The next frame, `Ok(None)` at the end of the file and forever after
    /// an error.
    ///
    /// # Errors
    /// [`CaptureError::Corrupt`] or [`CaptureError::CutShort`] with the
    /// byte offset of the bad record; [`CaptureError::Io`]. Every frame
    /// before it has been returned.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, CaptureError> {
        Ok(self.next_with_interfaces()?.map(|(f, _, _)| f))
    }

    /// [`next_frame`](Self::next_frame) plus the interface list and its
    /// epoch (which changes whenever the list does), borrowed together.
    #[inline]
    pub(crate) fn next_with_interfaces(
        &mut self,
    ) -> Result<Option<WithInterfaces<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let res = match &mut self.format {
            Format::Pcap(h) => pcap::next(&mut self.buf, h),
            Format::Pcapng(st) => pcapng::next(&mut self.buf, st),
        };
        let loc: FrameLoc = match res {
            Ok(Some(loc)) => loc,
            Ok(None) => {
                self.done = true;
                return Ok(None);
            }
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        let frame = RawFrame {
            ts_ns: loc.ts_ns,
            wire_len: loc.wire_len,
            link: loc.link,
            iface: loc.iface,
            data: self.buf.slice(loc.at, loc.len),
        };
        let (ifaces, epoch) = match &self.format {
            Format::Pcap(_) => (&self.pcap_iface[..], 0),
            Format::Pcapng(st) => (&st.ifaces[..], st.epoch),
        };
        Ok(Some((frame, ifaces, epoch)))
    }
}

impl<R> FrameReader<R> {
    /// The container format.
    pub fn format(&self) -> FileFormat {
        match self.format {
            Format::Pcap(_) => FileFormat::Pcap,
            Format::Pcapng(_) => FileFormat::Pcapng,
        }
    }

    /// Bytes of the stream consumed so far: the end of the last frame or
    /// skipped block (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.buf.offset()
    }

    /// The interfaces known now: classic pcap's one; for pcapng those of
    /// the current section seen so far (a later section replaces them).
    /// [`RawFrame::iface`] indexes this list.
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        match &self.format {
            Format::Pcap(_) => &self.pcap_iface,
            Format::Pcapng(st) => &st.ifaces,
        }
    }
}

impl<R> std::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("format", &self.format())
            .field("bytes_read", &self.bytes_read())
            .field("interfaces", &self.interfaces())
            .finish_non_exhaustive()
    }
}
