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
    /// The generator configuration is invalid.
    #[error("invalid generator config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// An output file could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing generator output failed.
    #[error("cannot write {what}: {source}")]
    Write {
        /// Which output (`pcap`, `labels`).
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// libpcap refused to open, configure or read a live interface (no
    /// such device, no permission, the interface went away).
    #[error("live capture on interface {iface:?} failed: {source}")]
    Live {
        /// The interface name as given.
        iface: String,
        /// What libpcap said.
        source: pcap::Error,
    },
    /// A BPF filter did not compile or could not be installed.
    #[error("bad bpf filter {filter:?} on interface {iface:?}: {source}")]
    Filter {
        /// The interface the filter was for.
        iface: String,
        /// The filter expression as given.
        filter: String,
        /// What libpcap said (e.g. "syntax error").
        source: pcap::Error,
    },
    /// A BPF filter for a capture file did not compile for one of the
    /// file's link types.
    #[error("bad bpf filter {filter:?} for link type {link}: {source}")]
    OfflineFilter {
        /// The filter expression as given.
        filter: String,
        /// The link type it was compiled for.
        link: crate::LinkType,
        /// What libpcap said (e.g. "syntax error").
        source: pcap::Error,
    },
    /// A live capture setting is unusable (no interface, a size beyond
    /// what libpcap accepts).
    #[error("invalid live capture config: {reason}")]
    LiveConfig {
        /// What is wrong, for a human.
        reason: String,
    },
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
