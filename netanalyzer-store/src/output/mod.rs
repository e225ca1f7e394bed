//! Record outputs: where the sniffer writes packet records.
//!
//! Each output is a [`Sink<PacketRecord>`](netanalyzer_core::Sink):
//! [`JsonlSink`] (one JSON object per line), [`CsvSink`] (CSV files rotated
//! by packet time) and [`NullSink`] (counts only). [`Tee`] fans one stream
//! out to several sinks; [`OutputSpec`] parses the command-line form
//! (`jsonl:PATH`, `jsonl:-`, `csv:DIR`, `null`) and builds an [`Output`].

mod csv;
mod jsonl;
mod null;
mod spec;
mod tee;

pub use self::csv::{CsvOptions, CsvSink, CSV_COLUMNS};
pub use self::jsonl::JsonlSink;
pub use self::null::NullSink;
pub use self::spec::{Output, OutputSpec};
pub use self::tee::Tee;

use std::io::{self, Write};

/// What an output has written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkCounters {
    /// Records accepted.
    pub records: u64,
    /// Bytes encoded (handed to the writer, including buffered bytes not
    /// yet flushed; exact after `close`).
    pub bytes: u64,
    /// Files opened (CSV: one per rotation window; JSONL and null: 0).
    pub files: u64,
}

/// Counts the bytes written through it. Used around a `BufWriter`, so the
/// count costs one add per `write` call of the encoder.
pub(crate) struct Counting<'a, W> {
    pub(crate) inner: &'a mut W,
    pub(crate) bytes: &'a mut u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.bytes += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        *self.bytes += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
