use super::{Counting, SinkCounters};
use crate::StoreError;
use netanalyzer_core::{Control, PacketRecord, Sink};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes one JSON object per record, one per line (JSON Lines).
///
/// The keys are exactly the [`PacketRecord`] field names, in declaration
/// order, every key always present; an absent field is `null` (never 0 or
/// `""`). Records are encoded with `serde_json::to_writer` straight into a
/// 64 KiB buffer: nothing is allocated per record.
///
/// ```
/// use netanalyzer_core::{PacketRecord, Sink};
/// use netanalyzer_store::JsonlSink;
///
/// let mut sink = JsonlSink::new(Vec::new(), "memory");
/// sink.write(&PacketRecord::default())?;
/// let bytes = sink.into_inner()?;
/// let line = String::from_utf8(bytes).unwrap();
/// assert!(line.starts_with("{\"ts_ns\":0,\"iface\":null,"));
/// assert!(line.ends_with("\"protocol\":\"OTHER\"}\n"));
/// # Ok::<(), netanalyzer_store::StoreError>(())
/// ```
pub struct JsonlSink<W: Write> {
    out: BufWriter<W>,
    path: PathBuf,
    counters: SinkCounters,
}

impl JsonlSink<File> {
    /// Creates (or truncates) the file at `path`.
    ///
    /// # Errors
    /// [`StoreError::Create`] when the file cannot be created.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(JsonlSink::new(file, path))
    }
}

impl JsonlSink<std::io::Stdout> {
    /// Writes to standard output (named `-` in errors).
    pub fn stdout() -> Self {
        JsonlSink::new(std::io::stdout(), "-")
    }
}

impl<W: Write> JsonlSink<W> {
    /// Wraps `writer`; `name` is the path (or `-`) that errors mention.
    pub fn new(writer: W, name: impl Into<PathBuf>) -> Self {
        JsonlSink {
            out: BufWriter::with_capacity(64 * 1024, writer),
            path: name.into(),
            counters: SinkCounters::default(),
        }
    }

    /// What was written so far.
    pub fn counters(&self) -> SinkCounters {
        self.counters
    }

    /// The path (or `-`) this sink writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// [`StoreError::Write`] when the final flush fails.
    pub fn into_inner(self) -> Result<W, StoreError> {
        let path = self.path;
        self.out
            .into_inner()
            .map_err(|e| StoreError::write(&path, e.into_error()))
    }
}

impl<W: Write> Sink<PacketRecord> for JsonlSink<W> {
    type Error = StoreError;

    fn write(&mut self, record: &PacketRecord) -> Result<Control, StoreError> {
        let mut w = Counting {
            inner: &mut self.out,
            bytes: &mut self.counters.bytes,
        };
        serde_json::to_writer(&mut w, record)
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| StoreError::write(&self.path, e))?;
        self.counters.records += 1;
        Ok(Control::Continue)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.out
            .flush()
            .map_err(|e| StoreError::write(&self.path, e))
    }
}
