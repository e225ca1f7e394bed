//! Fixtures for netanalyzer's criterion benches (`benches/benches/*.rs`).
//!
//! Every input is generated in code with [`netanalyzer_capture::gen`], so a
//! bench needs no file on disk and gives the same bytes on every machine:
//!
//! - [`FrameSet::generate`]: the frames of a generated capture, packed into
//!   one buffer (as a capture file or a ring buffer would hold them), for
//!   the parser alone;
//! - [`FrameSet::filter`]: the subset whose parsed record has one of some
//!   protocols (e.g. only DNS, only HTTP/TLS), for per-protocol cases;
//! - [`pcap_bytes`]: a whole nanosecond pcap in memory, for the file
//!   reader and [`netanalyzer_capture::FileSource`].
//!
//! ```
//! use netanalyzer_benches::{gen_config, FrameSet};
//! use netanalyzer_capture::gen::Scenario;
//! let frames = FrameSet::generate(&gen_config(200, &[Scenario::Normal]));
//! assert_eq!(frames.len(), 200);
//! assert_eq!(frames.parse_all(), 200);
//! ```
#![forbid(unsafe_code)]

use netanalyzer_capture::gen::{self, GenConfig, Generator, Scenario};
use netanalyzer_capture::parse::parse_frame;
use netanalyzer_capture::LinkType;
use netanalyzer_core::{PacketRecord, ParseStats, Protocol};
use netanalyzer_store::pg::{EmbeddedOptions, EmbeddedPostgres};
use std::ops::Range;

/// Seed of every bench fixture (the generator's default).
pub const SEED: u64 = 1;

/// A generator config for `packets` frames of the given scenarios (equal
/// shares, default IPv6 and VLAN shares, [`SEED`]).
pub fn gen_config(packets: u64, scenarios: &[Scenario]) -> GenConfig {
    GenConfig {
        packets,
        seed: SEED,
        scenarios: scenarios.to_vec(),
        ..GenConfig::default()
    }
}

/// One frame of a [`FrameSet`].
#[derive(Debug, Clone)]
pub struct FrameMeta {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Where the frame's bytes lie in [`FrameSet::bytes`].
    pub range: Range<usize>,
}

/// Ethernet frames packed back to back in one buffer.
#[derive(Debug, Clone, Default)]
pub struct FrameSet {
    /// Every frame's bytes, back to back.
    pub bytes: Vec<u8>,
    /// One entry per frame, in capture order.
    pub frames: Vec<FrameMeta>,
}

impl FrameSet {
    /// The frames the generator makes for `cfg`.
    ///
    /// # Panics
    /// When `cfg` is invalid (a bench setup bug).
    pub fn generate(cfg: &GenConfig) -> FrameSet {
        let mut g = Generator::new(cfg).expect("valid generator config");
        let mut set = FrameSet::default();
        while let Some(f) = g.next_frame() {
            let at = set.bytes.len();
            set.bytes.extend_from_slice(f.data);
            set.frames.push(FrameMeta {
                ts_ns: f.ts_ns,
                range: at..set.bytes.len(),
            });
        }
        set
    }

    /// The frames whose parsed record satisfies `keep`, in order.
    pub fn filter(&self, keep: impl Fn(&PacketRecord) -> bool) -> FrameSet {
        let mut out = FrameSet::default();
        let mut rec = PacketRecord::default();
        let mut stats = ParseStats::default();
        for (ts_ns, data) in self.iter() {
            fill(&mut rec, ts_ns, data);
            parse_frame(LinkType::ETHERNET, data, &mut rec, &mut stats);
            if keep(&rec) {
                let at = out.bytes.len();
                out.bytes.extend_from_slice(data);
                out.frames.push(FrameMeta {
                    ts_ns,
                    range: at..out.bytes.len(),
                });
            }
        }
        out
    }

    /// The first `n` frames.
    pub fn first(&self, n: usize) -> FrameSet {
        let frames = &self.frames[..n.min(self.len())];
        let end = frames.last().map_or(0, |f| f.range.end);
        FrameSet {
            bytes: self.bytes[..end].to_vec(),
            frames: frames.to_vec(),
        }
    }

    /// The frames whose record's protocol is one of `protocols`.
    pub fn only(&self, protocols: &[Protocol]) -> FrameSet {
        self.filter(|r| protocols.contains(&r.protocol))
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Total frame bytes.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// `(ts_ns, bytes)` of every frame.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.frames
            .iter()
            .map(|f| (f.ts_ns, &self.bytes[f.range.clone()]))
    }

    /// Parses every frame the way [`netanalyzer_capture::FileSource`]
    /// does (clear, capture metadata, [`parse_frame`]) into one reused
    /// record; returns the number of packets the stats counted. This is
    /// the body of the `parse` bench.
    pub fn parse_all(&self) -> u64 {
        let mut rec = PacketRecord::default();
        let mut stats = ParseStats::default();
        for (ts_ns, data) in self.iter() {
            fill(&mut rec, ts_ns, data);
            parse_frame(
                LinkType::ETHERNET,
                std::hint::black_box(data),
                &mut rec,
                &mut stats,
            );
            std::hint::black_box(&rec);
        }
        stats.packets
    }

    /// Parses every frame the way [`netanalyzer_capture::FileSource`]
    /// does, each into its own record: the input of the benches that start
    /// from parsed records.
    pub fn records(&self) -> Vec<PacketRecord> {
        let mut stats = ParseStats::default();
        self.iter()
            .map(|(ts_ns, data)| {
                let mut rec = PacketRecord::default();
                fill(&mut rec, ts_ns, data);
                parse_frame(LinkType::ETHERNET, data, &mut rec, &mut stats);
                rec
            })
            .collect()
    }

    /// How many frames have each protocol, most frequent first: printed
    /// by the benches so a reader knows what a case contains.
    pub fn protocol_mix(&self) -> Vec<(Protocol, usize)> {
        let mut rec = PacketRecord::default();
        let mut stats = ParseStats::default();
        let mut counts: Vec<(Protocol, usize)> = Vec::new();
        for (ts_ns, data) in self.iter() {
            fill(&mut rec, ts_ns, data);
            parse_frame(LinkType::ETHERNET, data, &mut rec, &mut stats);
            match counts.iter_mut().find(|(p, _)| *p == rec.protocol) {
                Some((_, n)) => *n += 1,
                None => counts.push((rec.protocol, 1)),
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts
    }

    /// A one-line description: frames, mean size, protocol shares.
    pub fn describe(&self) -> String {
        let n = self.len().max(1);
        let mix: Vec<String> = self
            .protocol_mix()
            .into_iter()
            .map(|(p, c)| format!("{p} {:.1}%", 100.0 * c as f64 / n as f64))
            .collect();
        format!(
            "{} frames, mean {:.0} B; {}",
            self.len(),
            self.total_bytes() as f64 / n as f64,
            mix.join(", ")
        )
    }
}

/// Resets `rec` and sets the capture metadata of one frame, as
/// [`netanalyzer_capture::FileSource`] does before parsing.
#[inline]
pub fn fill(rec: &mut PacketRecord, ts_ns: u64, data: &[u8]) {
    rec.clear();
    rec.ts_ns = ts_ns;
    rec.wire_len = data.len() as u32;
    rec.cap_len = data.len() as u32;
}

/// A whole generated capture (nanosecond pcap, Ethernet) in memory.
///
/// # Panics
/// When `cfg` is invalid (a bench setup bug).
pub fn pcap_bytes(cfg: &GenConfig) -> Vec<u8> {
    let mut pcap = Vec::new();
    gen::generate(cfg, &mut pcap, std::io::sink()).expect("generate into memory");
    pcap
}

/// Parses the arguments of a bench binary, all of the form `--NAME N`
/// with `N` a positive integer: each sets the value paired with its name
/// in `flags` (which hold the defaults). Anything else is an error.
pub fn parse_positive_flags(
    args: impl IntoIterator<Item = String>,
    flags: &mut [(&str, &mut u64)],
) -> Result<(), String> {
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let Some((name, value)) = flags.iter_mut().find(|(name, _)| *name == a) else {
            return Err(format!("unknown argument {a:?}"));
        };
        **value = it
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > 0)
            .ok_or(format!("{name} needs a positive number"))?;
    }
    Ok(())
}

/// An embedded PostgreSQL cluster with `durable: false` in a fresh
/// temporary directory, for the database benches (`catchup`,
/// `pg_index_cost`). The directory is removed after the cluster stops.
pub struct ScratchPostgres {
    /// The running cluster.
    pub pg: EmbeddedPostgres,
    // Declared after `pg`, so dropped after it: the cluster stops before
    // its directory goes.
    _dir: tempfile::TempDir,
}

impl ScratchPostgres {
    /// Starts a cluster in a new temporary directory named `prefix…`.
    pub fn start(prefix: &str) -> Result<Self, Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
        let pg = EmbeddedPostgres::start(EmbeddedOptions {
            data_dir: dir.path().join("data"),
            durable: false,
        })?;
        Ok(ScratchPostgres { pg, _dir: dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netanalyzer_capture::{FileSource, FrameReader};
    use netanalyzer_core::{Source, SourceEvent};

    #[test]
    fn frame_set_matches_the_pcap() {
        let cfg = gen_config(500, &[Scenario::Normal, Scenario::SynFlood]);
        let set = FrameSet::generate(&cfg);
        let pcap = pcap_bytes(&cfg);
        let mut r = FrameReader::new(&pcap[..]).unwrap();
        for (ts, data) in set.iter() {
            let f = r.next_frame().unwrap().unwrap();
            assert_eq!((f.ts_ns, f.data), (ts, data));
        }
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn parse_all_agrees_with_file_source() {
        let cfg = gen_config(500, &[Scenario::Normal]);
        let set = FrameSet::generate(&cfg);
        assert_eq!(set.parse_all(), 500);
        let mut src = FileSource::from_reader(std::io::Cursor::new(pcap_bytes(&cfg))).unwrap();
        let mut rec = PacketRecord::default();
        let mut expect = PacketRecord::default();
        let mut stats = ParseStats::default();
        for (ts, data) in set.iter() {
            assert_eq!(src.next_into(&mut rec).unwrap(), SourceEvent::Packet);
            fill(&mut expect, ts, data);
            parse_frame(LinkType::ETHERNET, data, &mut expect, &mut stats);
            assert_eq!(rec, expect);
        }
    }

    #[test]
    fn only_keeps_the_asked_protocols() {
        let set = FrameSet::generate(&gen_config(2000, &[Scenario::Normal]));
        let dns = set.only(&[Protocol::Dns]);
        assert!(!dns.is_empty() && dns.len() < set.len());
        assert!(dns.protocol_mix().iter().all(|(p, _)| *p == Protocol::Dns));
    }
}
