//! A buffered classic-pcap writer.
use crate::LinkType;
use std::io::{self, BufWriter, Write};

/// Timestamp resolution of a classic pcap file, chosen by its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsResolution {
    /// Nanoseconds (magic `0xa1b23c4d`). The default: no precision lost.
    #[default]
    Nanos,
    /// Microseconds (magic `0xa1b2c3d4`), for tools that only read the
    /// original format. Timestamps are truncated to whole microseconds.
    Micros,
}

/// Writes a classic (libpcap) capture file in the host-independent
/// little-endian byte order.
///
/// The header is written by [`PcapWriter::new`]/[`PcapWriter::with_options`];
/// each [`write_frame`](PcapWriter::write_frame) appends one 16-byte record
/// header plus the bytes. Output goes through a 1 MiB [`BufWriter`], so a
/// frame costs two buffer copies and no allocation. Call
/// [`flush`](PcapWriter::flush) or [`into_inner`](PcapWriter::into_inner) at
/// the end: dropping the writer flushes too, but silently ignores errors.
pub struct PcapWriter<W: Write> {
    out: BufWriter<W>,
    resolution: TsResolution,
    snaplen: u32,
    frames: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Default snap length written in the header; longer frames are cut.
    pub const DEFAULT_SNAPLEN: u32 = 262_144;

    /// A nanosecond-resolution Ethernet pcap.
    ///
    /// # Errors
    /// Writing the 24-byte file header failed.
    pub fn new(w: W) -> io::Result<Self> {
        Self::with_options(w, LinkType::ETHERNET, TsResolution::Nanos)
    }

    /// A pcap with the given link type and timestamp resolution.
    ///
    /// # Errors
    /// Writing the 24-byte file header failed.
    pub fn with_options(w: W, link: LinkType, resolution: TsResolution) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, w);
        let magic: u32 = match resolution {
            TsResolution::Nanos => 0xa1b2_3c4d,
            TsResolution::Micros => 0xa1b2_c3d4,
        };
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&magic.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        hdr[16..20].copy_from_slice(&Self::DEFAULT_SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&link.0.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter {
            out,
            resolution,
            snaplen: Self::DEFAULT_SNAPLEN,
            frames: 0,
        })
    }

    /// Appends one frame captured at `ts_ns` (nanoseconds since the Unix
    /// epoch) whose original length was `wire_len`. `data` longer than the
    /// snap length is cut; `wire_len` is raised to at least the captured
    /// length, so the record is always consistent.
    ///
    /// # Errors
    /// The underlying writer failed.
    pub fn write_frame(&mut self, ts_ns: u64, wire_len: u32, data: &[u8]) -> io::Result<()> {
        let cap = data.len().min(self.snaplen as usize);
        let data = &data[..cap];
        let cap_len = cap as u32;
        let secs = (ts_ns / 1_000_000_000) as u32;
        let frac = (ts_ns % 1_000_000_000) as u32;
        let frac = match self.resolution {
            TsResolution::Nanos => frac,
            TsResolution::Micros => frac / 1000,
        };
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&frac.to_le_bytes());
        rec[8..12].copy_from_slice(&cap_len.to_le_bytes());
        rec[12..16].copy_from_slice(&wire_len.max(cap_len).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(data)?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes buffered records to the underlying writer.
    ///
    /// # Errors
    /// The underlying writer failed.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    ///
    /// # Errors
    /// The final flush failed.
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(1_700_000_000_123_456_789, 64, &[0xaa; 60])
            .unwrap();
        let b = w.into_inner().unwrap();
        assert_eq!(b.len(), 24 + 16 + 60);
        assert_eq!(&b[0..4], &0xa1b2_3c4du32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(b[24..28].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(
            u32::from_le_bytes(b[28..32].try_into().unwrap()),
            123_456_789
        );
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 60);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 64);
    }

    #[test]
    fn micros_truncate() {
        let mut w =
            PcapWriter::with_options(Vec::new(), LinkType::RAW, TsResolution::Micros).unwrap();
        w.write_frame(1_000_001_001_999, 1, &[0x45]).unwrap();
        let b = w.into_inner().unwrap();
        assert_eq!(&b[0..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 101);
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 1_001);
    }
}
