//! A minimal pcap writer. (Scaffold: the generator helper replaces it.)
use std::io::Write;

/// Writes classic pcap files.
pub struct PcapWriter<W: Write> {
    _w: W,
}

impl<W: Write> PcapWriter<W> {
    /// Wraps a writer (scaffold).
    pub fn new(w: W) -> Self {
        PcapWriter { _w: w }
    }
}
