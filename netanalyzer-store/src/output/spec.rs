use super::{CsvOptions, CsvSink, JsonlSink, NullSink, SinkCounters};
use crate::StoreError;
use netanalyzer_core::{Control, PacketRecord, Sink};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where records go, in the command-line form `KIND[:TARGET]`.
///
/// | form | meaning |
/// |---|---|
/// | `jsonl:PATH` | JSON Lines into the file `PATH` (created or truncated) |
/// | `jsonl:-` | JSON Lines to standard output |
/// | `csv:DIR` | CSV files in `DIR`, rotated by packet time ([`CsvSink`]) |
/// | `null` | nothing; records are only counted |
///
/// ```
/// use netanalyzer_store::OutputSpec;
///
/// let spec: OutputSpec = "csv:/tmp/backup".parse()?;
/// assert_eq!(spec, OutputSpec::Csv("/tmp/backup".into()));
/// assert_eq!(spec.to_string(), "csv:/tmp/backup");
/// assert!("parquet:x".parse::<OutputSpec>().is_err());
/// # Ok::<(), netanalyzer_store::StoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// JSON Lines into a file, or standard output when the path is `-`.
    Jsonl(PathBuf),
    /// CSV files in a directory.
    Csv(PathBuf),
    /// No output.
    Null,
}

impl OutputSpec {
    /// Whether this output writes to standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self, OutputSpec::Jsonl(p) if p.as_os_str() == "-")
    }

    /// Opens the output: creates the file or directory now, so a bad path
    /// fails before any packet is read.
    ///
    /// # Errors
    /// [`StoreError::Create`], [`StoreError::CreateDir`], or
    /// [`StoreError::InvalidSetting`] for a zero rotation period.
    pub fn build(&self, csv: CsvOptions) -> Result<Output, StoreError> {
        Ok(match self {
            OutputSpec::Jsonl(_) if self.is_stdout() => Output::Jsonl(JsonlSink::new(
                Box::new(std::io::stdout()) as Box<dyn Write + Send>,
                "-",
            )),
            OutputSpec::Jsonl(path) => {
                let file = JsonlSink::create(path)?.into_inner()?;
                Output::Jsonl(JsonlSink::new(
                    Box::new(file) as Box<dyn Write + Send>,
                    path,
                ))
            }
            OutputSpec::Csv(dir) => Output::Csv(CsvSink::new(dir, csv)?),
            OutputSpec::Null => Output::Null(NullSink::new()),
        })
    }
}

impl FromStr for OutputSpec {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let bad = |reason| StoreError::InvalidSpec {
            spec: s.to_owned(),
            reason,
        };
        let (kind, target) = match s.split_once(':') {
            Some((k, t)) => (k, Some(t)),
            None => (s, None),
        };
        match (kind, target) {
            ("null", None) => Ok(OutputSpec::Null),
            ("null", Some(_)) => Err(bad("null takes no target")),
            ("jsonl", Some(t)) if !t.is_empty() => Ok(OutputSpec::Jsonl(t.into())),
            ("csv", Some(t)) if !t.is_empty() => Ok(OutputSpec::Csv(t.into())),
            ("jsonl", _) => Err(bad("expected jsonl:PATH or jsonl:- for standard output")),
            ("csv", _) => Err(bad("expected csv:DIR")),
            _ => Err(bad("expected jsonl:PATH, jsonl:-, csv:DIR or null")),
        }
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputSpec::Jsonl(p) => write!(f, "jsonl:{}", p.display()),
            OutputSpec::Csv(p) => write!(f, "csv:{}", p.display()),
            OutputSpec::Null => f.write_str("null"),
        }
    }
}

/// A built output: one of the record sinks, dispatched statically.
pub enum Output {
    /// JSON Lines to a file or standard output.
    Jsonl(JsonlSink<Box<dyn Write + Send>>),
    /// Rotated CSV files.
    Csv(CsvSink),
    /// Nothing.
    Null(NullSink),
}

impl Output {
    /// What this output wrote so far.
    pub fn counters(&self) -> SinkCounters {
        match self {
            Output::Jsonl(s) => s.counters(),
            Output::Csv(s) => s.counters(),
            Output::Null(s) => s.counters(),
        }
    }

    /// Where it writes (`-` for standard output, empty for null).
    pub fn path(&self) -> &Path {
        match self {
            Output::Jsonl(s) => s.path(),
            Output::Csv(s) => s.dir(),
            Output::Null(_) => Path::new(""),
        }
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Output::Jsonl(_) => "jsonl",
            Output::Csv(_) => "csv",
            Output::Null(_) => "null",
        };
        f.debug_struct("Output")
            .field("kind", &kind)
            .field("path", &self.path())
            .field("counters", &self.counters())
            .finish()
    }
}

impl Sink<PacketRecord> for Output {
    type Error = StoreError;

    fn write(&mut self, record: &PacketRecord) -> Result<Control, StoreError> {
        match self {
            Output::Jsonl(s) => s.write(record),
            Output::Csv(s) => s.write(record),
            Output::Null(s) => s.write(record),
        }
    }

    fn tick(&mut self) -> Result<(), StoreError> {
        match self {
            Output::Jsonl(s) => s.tick(),
            Output::Csv(s) => s.tick(),
            Output::Null(s) => s.tick(),
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match self {
            Output::Jsonl(s) => s.flush(),
            Output::Csv(s) => s.flush(),
            Output::Null(s) => s.flush(),
        }
    }

    fn close(&mut self) -> Result<(), StoreError> {
        match self {
            Output::Jsonl(s) => s.close(),
            Output::Csv(s) => s.close(),
            Output::Null(s) => s.close(),
        }
    }
}
