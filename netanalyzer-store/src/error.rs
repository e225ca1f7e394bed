use std::path::PathBuf;
use thiserror::Error;

/// Errors of the store crate: an output that cannot be created or written.
///
/// Every variant names the path it concerns; standard output is named
/// `-`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An output directory could not be created.
    #[error("cannot create output directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output file could not be created.
    #[error("cannot create output file {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing or flushing an output failed.
    #[error("cannot write to {path}: {source}")]
    Write {
        /// The file (`-` for standard output).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output specification (`jsonl:PATH`, `csv:DIR`, `null`) could not
    /// be understood.
    #[error("invalid output {spec:?}: {reason}")]
    InvalidSpec {
        /// What was given.
        spec: String,
        /// What is wrong, for a human.
        reason: &'static str,
    },
    /// A setting is out of range.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// What is wrong, for a human.
        reason: &'static str,
    },
    // -- wire variants (wire/) --
    // -- transport variants (transport/) --
    // -- pg variants (pg/) --
    // -- server variants (server/) --
}

impl StoreError {
    /// Whether this is a write to a closed pipe (e.g. `jsonl:-` piped into
    /// `head`). Command-line tools usually stop quietly on it.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, StoreError::Write { source, .. }
            if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn write(path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}
