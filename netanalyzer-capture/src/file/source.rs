//! [`FileSource`]: a capture file as a [`Source`] of parsed records.

use super::{FileFormat, FrameReader, InterfaceInfo};
use crate::{CaptureError, LinkType};
use netanalyzer_core::{PacketRecord, Source, SourceEvent, SourceStats};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

type BoxRead = Box<dyn Read + Send>;

/// A [`Source`] over a pcap or pcapng file: each call reads one frame and
/// parses it with [`crate::parse::parse_frame`].
///
/// Records carry `iface` for pcapng files: the interface's `if_name`, or
/// its index in decimal when it has none (one shared `Arc<str>` per
/// interface, so no allocation per packet). Classic pcap records have
/// `iface: None`. After an error the source returns [`SourceEvent::End`].
///
/// ```no_run
/// use netanalyzer_capture::FileSource;
/// use netanalyzer_core::{PacketRecord, Source, SourceEvent};
/// let mut src = FileSource::open("capture.pcapng")?;
/// let mut rec = PacketRecord::default();
/// while src.next_into(&mut rec)? == SourceEvent::Packet {
///     println!("{} {:?}", rec.ts_ns, rec.protocol);
/// }
/// # Ok::<(), netanalyzer_capture::CaptureError>(())
/// ```
pub struct FileSource {
    reader: FrameReader<BoxRead>,
    file_len: Option<u64>,
    /// `iface` value per interface, rebuilt when the reader's epoch moves.
    names: Vec<Arc<str>>,
    names_epoch: u64,
    stats: SourceStats,
    filter: Option<OfflineFilter>,
}

/// A BPF expression compiled by libpcap once per link type met in the file
/// (a pcapng file may mix link types).
struct OfflineFilter {
    expr: String,
    programs: Vec<(LinkType, pcap::BpfProgram)>,
    /// Frames the filter rejected.
    rejected: u64,
}

impl OfflineFilter {
    fn program(&mut self, link: LinkType) -> Result<&pcap::BpfProgram, CaptureError> {
        let i = match self.programs.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                let prog = compile(&self.expr, link)?;
                self.programs.push((link, prog));
                self.programs.len() - 1
            }
        };
        Ok(&self.programs[i].1)
    }
}

fn compile(expr: &str, link: LinkType) -> Result<pcap::BpfProgram, CaptureError> {
    let err = |source| CaptureError::OfflineFilter {
        filter: expr.to_owned(),
        link,
        source,
    };
    // The link type is a pcap LINKTYPE_ value; libpcap maps it to its DLT.
    let link_i32 = i32::try_from(link.0).unwrap_or(i32::MAX);
    let dead = pcap::Capture::dead(pcap::Linktype(link_i32)).map_err(err)?;
    dead.compile(expr, true).map_err(err)
}

impl FileSource {
    /// Opens a capture file and reads its header.
    ///
    /// # Errors
    /// [`CaptureError::Open`], or the errors of [`FrameReader::new`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| CaptureError::open(path, e))?;
        let len = file.metadata().ok().map(|m| m.len());
        let mut src = Self::from_reader(file)?;
        src.file_len = len;
        Ok(src)
    }

    /// Reads a capture from any byte stream (a pipe, a decompressor, a
    /// byte slice in tests). [`file_len`](Self::file_len) is then `None`.
    ///
    /// # Errors
    /// The errors of [`FrameReader::new`].
    pub fn from_reader(r: impl Read + Send + 'static) -> Result<Self, CaptureError> {
        let reader = FrameReader::new(Box::new(r) as BoxRead)?;
        Ok(FileSource {
            reader,
            file_len: None,
            names: Vec::new(),
            names_epoch: u64::MAX, // forces a build on the first packet
            stats: SourceStats::default(),
            filter: None,
        })
    }

    /// Delivers only the frames that match the BPF expression `expr`
    /// (tcpdump syntax), as `tcpdump -r FILE EXPR` does. The expression is
    /// compiled by libpcap for each link type of the file; frames that do
    /// not match are skipped before parsing and counted in
    /// [`filtered`](Self::filtered), not in [`Source::stats`].
    ///
    /// libpcap's offline matcher sees the captured length as the wire
    /// length, so `len`-based expressions (`greater N`) judge a snapped
    /// frame by what was captured.
    ///
    /// # Errors
    /// [`CaptureError::OfflineFilter`] when the expression does not compile
    /// for a link type already known from the file header. A link type met
    /// later in a pcapng file is compiled then, and the error ends the read.
    pub fn set_filter(&mut self, expr: &str) -> Result<(), CaptureError> {
        let mut f = OfflineFilter {
            expr: expr.to_owned(),
            programs: Vec::new(),
            rejected: 0,
        };
        for info in self.reader.interfaces() {
            f.program(info.link)?;
        }
        self.filter = Some(f);
        Ok(())
    }

    /// Frames skipped because they did not match [`set_filter`](Self::set_filter)'s
    /// expression.
    pub fn filtered(&self) -> u64 {
        self.filter.as_ref().map_or(0, |f| f.rejected)
    }

    /// The container format.
    pub fn format(&self) -> FileFormat {
        self.reader.format()
    }

    /// Bytes consumed so far, for a progress bar against
    /// [`file_len`](Self::file_len).
    pub fn bytes_read(&self) -> u64 {
        self.reader.bytes_read()
    }

    /// Size of the file when opened by path.
    pub fn file_len(&self) -> Option<u64> {
        self.file_len
    }

    /// The interfaces known so far (see [`FrameReader::interfaces`]).
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        self.reader.interfaces()
    }
}

fn names(ifaces: &[InterfaceInfo], format: FileFormat) -> Vec<Arc<str>> {
    if format == FileFormat::Pcap {
        return Vec::new();
    }
    ifaces
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.name {
            Some(n) => Arc::from(n.as_str()),
            None => Arc::from(i.to_string()),
        })
        .collect()
}

impl Source for FileSource {
    type Error = CaptureError;

    fn next_into(&mut self, rec: &mut PacketRecord) -> Result<SourceEvent, CaptureError> {
        rec.clear();
        let format = self.reader.format();
        let (frame, ifaces, epoch) = loop {
            let Some((frame, ifaces, epoch)) = self.reader.next_with_interfaces()? else {
                return Ok(SourceEvent::End);
            };
            let Some(f) = self.filter.as_mut() else {
                break (frame, ifaces, epoch);
            };
            if f.program(frame.link)?.filter(frame.data) {
                break (frame, ifaces, epoch);
            }
            f.rejected += 1;
        };
        if epoch != self.names_epoch {
            self.names = names(ifaces, format);
            self.names_epoch = epoch;
        }
        rec.ts_ns = frame.ts_ns;
        rec.wire_len = frame.wire_len;
        rec.cap_len = frame.data.len() as u32;
        rec.iface = self.names.get(frame.iface as usize).cloned();
        crate::parse::parse_frame(frame.link, frame.data, rec, &mut self.stats.parse);
        self.stats.packets += 1;
        self.stats.wire_bytes += u64::from(frame.wire_len);
        Ok(SourceEvent::Packet)
    }

    fn stats(&self) -> SourceStats {
        self.stats
    }
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("reader", &self.reader)
            .field("file_len", &self.file_len)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
