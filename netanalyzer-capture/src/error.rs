use std::path::PathBuf;
use thiserror::Error;

/// Errors of the capture crate: a source that cannot go on. Per-packet
/// parse problems are not errors; they are counted in
/// [`netanalyzer_core::ParseStats`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The capture file could not be opened.
    #[error("cannot open capture file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading failed at the OS level.
    #[error("i/o error at byte offset {offset}: {source}")]
    Io {
        /// Byte offset in the file where the read started.
        offset: u64,
        /// Why.
        source: std::io::Error,
    },
    /// The file starts with neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file: unknown magic number {magic:#010x}")]
    UnknownFormat {
        /// The first four bytes, big-endian.
        magic: u32,
    },
    /// The file holds an impossible structure (e.g. a record length beyond
    /// any sane snaplen). Packets before `offset` were delivered.
    #[error("corrupt capture at byte offset {offset}: {reason}")]
    Corrupt {
        /// Byte offset of the bad record or block.
        offset: u64,
        /// What is wrong, for a human.
        reason: String,
    },
    /// The file ends in the middle of a record or block. Packets before
    /// `offset` were delivered.
    #[error("capture cut short at byte offset {offset}: {reason}")]
    CutShort {
        /// Byte offset of the incomplete record or block.
        offset: u64,
        /// What was being read.
        reason: String,
    },
    // Live capture and generator errors are added below.
}

impl CaptureError {
    /// Convenience constructor for [`CaptureError::Open`].
    pub fn open(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CaptureError::Open {
            path: path.into(),
            source,
        }
    }
}
