//! pcap and pcapng file reading. (Scaffold: the file-reader helper replaces it.)
use crate::{CaptureError, LinkType};
use netanalyzer_core::{PacketRecord, Source, SourceEvent, SourceStats};
use std::io::Read;
use std::path::Path;

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    Pcapng,
}

/// One frame as stored in a file, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Original length on the wire.
    pub wire_len: u32,
    /// Link type of the frame's interface.
    pub link: LinkType,
    /// Interface index (0 for classic pcap).
    pub iface: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Iterates over the raw frames of a pcap or pcapng stream.
pub struct FrameReader<R> {
    _r: R,
}

impl<R: Read> FrameReader<R> {
    /// Detects the format from the first bytes and reads the header.
    ///
    /// # Errors
    /// [`CaptureError::UnknownFormat`], or I/O and corruption errors.
    pub fn new(r: R) -> Result<Self, CaptureError> {
        Ok(FrameReader { _r: r })
    }

    /// The next frame, `Ok(None)` at a clean end of file.
    ///
    /// # Errors
    /// A corrupt or cut-short record, with its byte offset.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, CaptureError> {
        Ok(None)
    }
}

/// A [`Source`] over a capture file.
pub struct FileSource {
    stats: SourceStats,
}

impl FileSource {
    /// Opens a capture file.
    ///
    /// # Errors
    /// [`CaptureError::Open`], or a bad file header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let _ = path;
        Ok(FileSource {
            stats: SourceStats::default(),
        })
    }
}

impl Source for FileSource {
    type Error = CaptureError;
    fn next_into(&mut self, _record: &mut PacketRecord) -> Result<SourceEvent, CaptureError> {
        Ok(SourceEvent::End)
    }
    fn stats(&self) -> SourceStats {
        self.stats
    }
}
