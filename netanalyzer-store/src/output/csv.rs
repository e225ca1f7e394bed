use super::{Counting, SinkCounters};
use crate::StoreError;
use netanalyzer_core::{Control, PacketRecord, Sink};
use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The CSV columns, in order: every [`PacketRecord`] field, named as its
/// JSON key (the same order as the JSON Lines output).
pub const CSV_COLUMNS: [&str; PacketRecord::FIELD_COUNT] = PacketRecord::FIELD_NAMES;

/// Settings of a [`CsvSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// Length of one file's window, in seconds of packet time (`ts_ns`).
    /// Default 30, as the old system kept its local backups. Must be at
    /// least 1. Packet time, not the wall clock, so a replay of the same
    /// capture yields the same files.
    pub rotate_secs: u64,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { rotate_secs: 30 }
    }
}

/// Writes records as CSV files in a directory, one file per window of
/// packet time.
///
/// # Files
/// A file is named `packets-<ts_ns>.csv` after its first record's
/// timestamp and holds the records from that time until
/// `rotate_secs` later; the first record at or past that point opens the
/// next file. A record whose time goes backwards stays in the current
/// file. An existing file of the same name is overwritten, so replaying a
/// capture twice gives the same files. No record, no file.
///
/// # Format
/// The first row is the header, [`CSV_COLUMNS`]. Rows end with `\n`.
/// Numbers are decimal, booleans `true`/`false`, addresses as in the JSON
/// output, `protocol` its name. **An absent field is an empty cell**; an
/// empty string is written quoted (`""`) so the two stay apart. Strings
/// holding a comma, a double quote, CR or LF are quoted, with inner quotes
/// doubled (RFC 4180).
///
/// ```
/// use netanalyzer_core::{PacketRecord, Sink};
/// use netanalyzer_store::{CsvOptions, CsvSink};
///
/// let dir = std::env::temp_dir().join(format!("na-csv-doc-{}", std::process::id()));
/// let mut sink = CsvSink::new(&dir, CsvOptions::default())?;
/// sink.write(&PacketRecord { ts_ns: 7, ..PacketRecord::default() })?;
/// sink.close()?;
/// let text = std::fs::read_to_string(dir.join("packets-7.csv")).unwrap();
/// assert!(text.starts_with("ts_ns,iface,wire_len,"));
/// assert!(text.ends_with("\n7,,0,0,,,,,,,,,,,,,,,,,,,,,,,,,,,,OTHER\n"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), netanalyzer_store::StoreError>(())
/// ```
pub struct CsvSink {
    dir: PathBuf,
    rotate_ns: u64,
    current: Option<CsvFile>,
    files: Vec<PathBuf>,
    counters: SinkCounters,
}

struct CsvFile {
    out: BufWriter<File>,
    path: PathBuf,
    ends_at: u64,
}

impl CsvSink {
    /// Creates `dir` (and its parents) if needed. Files are opened when
    /// records arrive.
    ///
    /// # Errors
    /// [`StoreError::InvalidSetting`] when `rotate_secs` is 0,
    /// [`StoreError::CreateDir`] when the directory cannot be created.
    pub fn new(dir: impl AsRef<Path>, opts: CsvOptions) -> Result<Self, StoreError> {
        if opts.rotate_secs == 0 {
            return Err(StoreError::InvalidSetting {
                name: "rotate_secs",
                reason: "must be at least 1 second",
            });
        }
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(CsvSink {
            dir,
            rotate_ns: opts.rotate_secs.saturating_mul(1_000_000_000),
            current: None,
            files: Vec::new(),
            counters: SinkCounters::default(),
        })
    }

    /// What was written so far.
    pub fn counters(&self) -> SinkCounters {
        self.counters
    }

    /// The directory files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files opened so far, oldest first.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn finish_current(&mut self) -> Result<(), StoreError> {
        if let Some(mut f) = self.current.take() {
            f.out.flush().map_err(|e| StoreError::write(&f.path, e))?;
        }
        Ok(())
    }

    fn open(&mut self, ts_ns: u64) -> Result<(), StoreError> {
        self.finish_current()?;
        let mut name = itoa::Buffer::new();
        let path = self.dir.join(format!("packets-{}.csv", name.format(ts_ns)));
        let file = File::create(&path).map_err(|source| StoreError::Create {
            path: path.clone(),
            source,
        })?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        let mut w = Counting {
            inner: &mut out,
            bytes: &mut self.counters.bytes,
        };
        write_header(&mut w).map_err(|e| StoreError::write(&path, e))?;
        self.files.push(path.clone());
        self.counters.files += 1;
        self.current = Some(CsvFile {
            out,
            path,
            ends_at: ts_ns.saturating_add(self.rotate_ns),
        });
        Ok(())
    }
}

impl Sink<PacketRecord> for CsvSink {
    type Error = StoreError;

    fn write(&mut self, record: &PacketRecord) -> Result<Control, StoreError> {
        let rotate = match &self.current {
            Some(f) => record.ts_ns >= f.ends_at,
            None => true,
        };
        if rotate {
            self.open(record.ts_ns)?;
        }
        // `open` always fills `current`.
        let Some(file) = self.current.as_mut() else {
            return Ok(Control::Continue);
        };
        let mut w = Counting {
            inner: &mut file.out,
            bytes: &mut self.counters.bytes,
        };
        write_row(&mut w, record).map_err(|e| StoreError::write(&file.path, e))?;
        self.counters.records += 1;
        Ok(Control::Continue)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match &mut self.current {
            Some(f) => f.out.flush().map_err(|e| StoreError::write(&f.path, e)),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), StoreError> {
        self.finish_current()
    }
}

/// Writes the header row.
fn write_header<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(CSV_COLUMNS.join(",").as_bytes())?;
    w.write_all(b"\n")
}

/// Writes one record as a CSV row, in [`CSV_COLUMNS`] order.
pub(crate) fn write_row<W: Write>(w: &mut W, r: &PacketRecord) -> io::Result<()> {
    let mut c = Cells { w, first: true };
    c.int(Some(r.ts_ns))?;
    c.str(r.iface.as_deref())?;
    c.int(Some(r.wire_len))?;
    c.int(Some(r.cap_len))?;
    c.display(r.eth_src.as_ref())?;
    c.display(r.eth_dst.as_ref())?;
    c.int(r.vlan_id)?;
    c.int(r.ether_type)?;
    c.int(r.ip_version)?;
    c.display(r.src_ip.as_ref())?;
    c.display(r.dst_ip.as_ref())?;
    c.int(r.ip_proto)?;
    c.int(r.ttl)?;
    c.bool(r.is_fragment)?;
    c.int(r.src_port)?;
    c.int(r.dst_port)?;
    c.int(r.tcp_flags)?;
    c.int(r.tcp_seq)?;
    c.int(r.tcp_ack)?;
    c.int(r.tcp_window)?;
    c.int(r.payload_len)?;
    c.int(r.icmp_type)?;
    c.int(r.icmp_code)?;
    c.int(r.arp_op)?;
    c.str(r.dns_qname.as_deref())?;
    c.int(r.dns_qtype)?;
    c.bool(r.dns_is_response)?;
    c.str(r.http_method.as_deref())?;
    c.str(r.http_host.as_deref())?;
    c.str(r.http_path.as_deref())?;
    c.str(r.tls_sni.as_deref())?;
    c.str(Some(r.protocol.as_str()))?;
    c.w.write_all(b"\n")
}

/// Writes cells separated by commas; `None` is an empty cell.
struct Cells<'a, W> {
    w: &'a mut W,
    first: bool,
}

impl<W: Write> Cells<'_, W> {
    fn sep(&mut self) -> io::Result<()> {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            self.w.write_all(b",")
        }
    }

    fn int<I: itoa::Integer>(&mut self, v: Option<I>) -> io::Result<()> {
        self.sep()?;
        match v {
            Some(v) => self.w.write_all(itoa::Buffer::new().format(v).as_bytes()),
            None => Ok(()),
        }
    }

    fn bool(&mut self, v: Option<bool>) -> io::Result<()> {
        self.sep()?;
        match v {
            Some(true) => self.w.write_all(b"true"),
            Some(false) => self.w.write_all(b"false"),
            None => Ok(()),
        }
    }

    /// For values whose text never needs quoting (addresses).
    fn display<D: Display>(&mut self, v: Option<&D>) -> io::Result<()> {
        self.sep()?;
        match v {
            Some(v) => write!(self.w, "{v}"),
            None => Ok(()),
        }
    }

    fn str(&mut self, v: Option<&str>) -> io::Result<()> {
        self.sep()?;
        match v {
            Some(s) => write_csv_str(self.w, s),
            None => Ok(()),
        }
    }
}

/// Writes `s` as one CSV cell: as is, or quoted when it is empty or holds
/// a comma, a double quote, CR or LF (inner quotes doubled).
fn write_csv_str<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    let needs_quotes = s.is_empty() || s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        return w.write_all(s.as_bytes());
    }
    w.write_all(b"\"")?;
    let mut rest = s;
    while let Some(i) = rest.find('"') {
        w.write_all(&rest.as_bytes()[..=i])?;
        w.write_all(b"\"")?;
        rest = &rest[i + 1..];
    }
    w.write_all(rest.as_bytes())?;
    w.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut v = Vec::new();
        write_csv_str(&mut v, s).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn quoting_follows_rfc4180() {
        assert_eq!(cell("example.com"), "example.com");
        assert_eq!(cell(""), "\"\"");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("\""), "\"\"\"\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(cell("ünïcode /path?q=1"), "ünïcode /path?q=1");
    }
}
