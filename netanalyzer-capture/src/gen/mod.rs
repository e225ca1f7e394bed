//! Deterministic, seeded traffic generator: realistic mixed background
//! traffic plus optional attack scenarios, written as a pcap and a CSV of
//! per-flow ground-truth labels.
//!
//! - **Deterministic**: the same [`GenConfig`] always gives byte-identical
//!   pcap and labels files. The PRNG (xoshiro256** seeded by SplitMix64)
//!   is written here, so no dependency upgrade can change a fixture.
//! - **Timeline**: packet `i` is stamped `start_ts_ns + i * 1e9 / pps`
//!   plus a jitter below half a period, so timestamps strictly increase and
//!   the average rate is exactly `pps`.
//! - **Background** ([`Scenario::Normal`]): a pool of `concurrency` flows
//!   interleaved at random: HTTP/1.1 and TLS sessions over TCP (handshake,
//!   request/response with consistent seq/ack, FIN or RST close, a few
//!   refused), DNS A/AAAA queries and answers, ICMP echo, ARP and IPv6
//!   neighbour discovery. About `ipv6_share` of flows use IPv6 and
//!   `vlan_share` carry an 802.1Q tag.
//! - **Attacks**: see [`Scenario`]. Each targets the victim
//!   `www.example.com` (`203.0.113.10`) except the port scan
//!   (`203.0.113.20`).
//! - **Mixing** ([`Mix`]): by default every packet slot picks a scenario
//!   by weight (`--scenario normal:3,syn-flood:1` gives 75 % / 25 %
//!   of packets); with [`Mix::Phases`] the packets are split into equal
//!   consecutive phases in list order, and during an attack phase normal
//!   traffic continues with 25 % of the packets if `normal` is listed.
//! - Only private and documentation address ranges appear (see the
//!   `hosts` module docs); MACs are per host.
//!
//! ```
//! use netanalyzer_capture::gen::{generate, GenConfig, Scenario};
//! let cfg = GenConfig {
//!     packets: 1000,
//!     scenarios: vec![Scenario::Normal, Scenario::SynFlood],
//!     ..GenConfig::default()
//! };
//! let (mut pcap, mut labels) = (Vec::new(), Vec::new());
//! let summary = generate(&cfg, &mut pcap, &mut labels)?;
//! assert_eq!(summary.packets, 1000);
//! # Ok::<(), netanalyzer_capture::CaptureError>(())
//! ```
use crate::{CaptureError, PcapWriter};
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod app;
mod attacks;
mod background;
mod build;
mod hosts;
mod labels;
mod rng;
mod tcp;

pub use labels::{FlowLabel, ProtoName, LABELS_HEADER};

use attacks::{DnsAmp, Flood, PortScan, Slowloris};
use background::NormalFlow;
use rng::Rng;

/// A kind of traffic, selectable by name (`normal`, `syn-flood`,
/// `udp-flood`, `icmp-flood`, `port-scan`, `slowloris`,
/// `dns-amplification`). The name is also the label in the labels file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Realistic mixed background traffic.
    Normal,
    /// TCP SYNs to the victim's port 80 from random spoofed sources
    /// (`10/8`, `198.18/15`), random ports, TTLs, windows: one flow each.
    SynFlood,
    /// UDP datagrams of one fixed size to random victim ports from
    /// spoofed sources.
    UdpFlood,
    /// ICMP echo requests to the victim from spoofed sources.
    IcmpFlood,
    /// A TCP SYN scan over every port in scrambled order (RST/ACK from
    /// closed ports, SYN/ACK then the scanner's RST from open ones, silence
    /// from filtered ones) interleaved with a UDP scan answered by ICMP
    /// port unreachable.
    PortScan,
    /// 150 slow HTTP connections each sending a partial request head and
    /// then one header line per turn, until the server resets them.
    Slowloris,
    /// Spoofed DNS ANY queries (source = victim) to open resolvers and
    /// their 1.2-1.45 kB answers to the victim.
    DnsAmplification,
}

impl Scenario {
    /// Every scenario, in declaration order.
    pub const ALL: [Scenario; 7] = [
        Scenario::Normal,
        Scenario::SynFlood,
        Scenario::UdpFlood,
        Scenario::IcmpFlood,
        Scenario::PortScan,
        Scenario::Slowloris,
        Scenario::DnsAmplification,
    ];

    /// The name used on the command line and in the labels file.
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal",
            Scenario::SynFlood => "syn-flood",
            Scenario::UdpFlood => "udp-flood",
            Scenario::IcmpFlood => "icmp-flood",
            Scenario::PortScan => "port-scan",
            Scenario::Slowloris => "slowloris",
            Scenario::DnsAmplification => "dns-amplification",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = CaptureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let s = match s.as_str() {
            "dns-amp" => "dns-amplification",
            "syn" => "syn-flood",
            "scan" => "port-scan",
            other => other,
        };
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| CaptureError::InvalidConfig {
                reason: format!(
                    "unknown scenario {s:?} (expected one of: {})",
                    Scenario::ALL.map(Scenario::name).join(", ")
                ),
            })
    }
}

/// Parses a scenario list such as `normal,syn-flood` or
/// `normal:3,port-scan:1` into scenarios and weights (1 when omitted).
///
/// # Errors
/// [`CaptureError::InvalidConfig`] for an unknown name, a bad weight or
/// an empty list.
pub fn parse_scenarios(list: &str) -> Result<(Vec<Scenario>, Vec<f64>), CaptureError> {
    let mut scenarios = Vec::new();
    let mut weights = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, weight) = match item.split_once([':', '=']) {
            Some((n, w)) => {
                let w: f64 = w.trim().parse().map_err(|_| CaptureError::InvalidConfig {
                    reason: format!("bad weight in scenario {item:?}"),
                })?;
                (n, w)
            }
            None => (item, 1.0),
        };
        scenarios.push(name.parse()?);
        weights.push(weight);
    }
    if scenarios.is_empty() {
        return Err(CaptureError::InvalidConfig {
            reason: "empty scenario list".into(),
        });
    }
    Ok((scenarios, weights))
}

/// How the listed scenarios share the packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mix {
    /// Every packet slot picks a scenario at random by weight, so all run
    /// concurrently for the whole capture.
    #[default]
    Shares,
    /// Equal consecutive phases in list order (weights ignored); normal
    /// traffic keeps 25 % of the packets during attack phases when
    /// `normal` is listed.
    Phases,
}

impl FromStr for Mix {
    type Err = CaptureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "shares" | "share" => Ok(Mix::Shares),
            "phases" | "phase" => Ok(Mix::Phases),
            other => Err(CaptureError::InvalidConfig {
                reason: format!("unknown mix {other:?} (expected shares or phases)"),
            }),
        }
    }
}

/// Share of packets normal traffic keeps during an attack phase.
const BACKGROUND_IN_ATTACK_PHASE: f64 = 0.25;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Exact number of frames to write. Default 100 000.
    pub packets: u64,
    /// Timestamp rate in packets per second (average; must be > 0).
    /// Default 10 000.
    pub pps: f64,
    /// PRNG seed: same config and seed, same bytes. Default 1.
    pub seed: u64,
    /// Timestamp of the first packet, ns since the Unix epoch.
    /// Default 2024-01-01T00:00:00Z.
    pub start_ts_ns: u64,
    /// Scenarios to mix (at least one). Default `[Normal]`.
    pub scenarios: Vec<Scenario>,
    /// Relative weight per scenario for [`Mix::Shares`]; empty means
    /// equal weights, otherwise one non-negative weight per scenario.
    pub weights: Vec<f64>,
    /// How scenarios share the packets. Default [`Mix::Shares`].
    pub mix: Mix,
    /// Fraction of background flows over IPv6 (0..=1). Default 0.15.
    pub ipv6_share: f64,
    /// Fraction of background flows with an 802.1Q tag (0..=1). Default 0.10.
    pub vlan_share: f64,
    /// Concurrent background flows interleaved (>= 1). Default 64.
    pub concurrency: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            packets: 100_000,
            pps: 10_000.0,
            seed: 1,
            start_ts_ns: 1_704_067_200_000_000_000,
            scenarios: vec![Scenario::Normal],
            weights: Vec::new(),
            mix: Mix::Shares,
            ipv6_share: 0.15,
            vlan_share: 0.10,
            concurrency: 64,
        }
    }
}

impl GenConfig {
    /// Checks the config.
    ///
    /// # Errors
    /// [`CaptureError::InvalidConfig`] naming the bad field.
    pub fn validate(&self) -> Result<(), CaptureError> {
        let bad = |reason: String| Err(CaptureError::InvalidConfig { reason });
        if !(self.pps.is_finite() && self.pps > 0.0) {
            return bad(format!("pps must be a positive number, got {}", self.pps));
        }
        if self.scenarios.is_empty() {
            return bad("at least one scenario is required".into());
        }
        if !self.weights.is_empty() {
            if self.weights.len() != self.scenarios.len() {
                return bad(format!(
                    "{} weights for {} scenarios",
                    self.weights.len(),
                    self.scenarios.len()
                ));
            }
            if self.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                || self.weights.iter().sum::<f64>() <= 0.0
            {
                return bad("weights must be non-negative with a positive sum".into());
            }
        }
        for (name, v) in [
            ("ipv6_share", self.ipv6_share),
            ("vlan_share", self.vlan_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be within 0..=1, got {v}"));
            }
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        Ok(())
    }
}

/// Counts for one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioSummary {
    /// The scenario.
    pub scenario: Scenario,
    /// Frames it produced.
    pub packets: u64,
    /// Frame bytes it produced.
    pub bytes: u64,
    /// Flows (label rows) it produced.
    pub flows: u64,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSummary {
    /// Frames written.
    pub packets: u64,
    /// Frame bytes written.
    pub bytes: u64,
    /// Label rows written.
    pub flows: u64,
    /// Timestamp of the first frame (0 when none).
    pub first_ts_ns: u64,
    /// Timestamp of the last frame (0 when none).
    pub last_ts_ns: u64,
    /// Per configured scenario, in configuration order.
    pub scenarios: Vec<ScenarioSummary>,
}

impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.last_ts_ns.saturating_sub(self.first_ts_ns) as f64 / 1e9;
        writeln!(
            f,
            "{} packets, {} bytes, {} flows, {:.3} s of traffic",
            self.packets, self.bytes, self.flows, secs
        )?;
        for s in &self.scenarios {
            writeln!(
                f,
                "  {:<18} {:>10} packets {:>12} bytes {:>9} flows",
                s.scenario.name(),
                s.packets,
                s.bytes,
                s.flows
            )?;
        }
        Ok(())
    }
}

/// Shared state the flow state machines write into.
pub(crate) struct Ctx {
    pub rng: Rng,
    /// The frame being built (reused).
    pub frame: Vec<u8>,
    /// Scratch space for rendering message heads (reused).
    pub scratch: Vec<u8>,
    /// Timestamp of the frame being built.
    pub ts: u64,
    pub plan: hosts::Plan,
    /// Finished flows not yet taken by the caller.
    pub done: Vec<FlowLabel>,
    pub ipv6_share: f64,
    pub vlan_share: f64,
}

impl Ctx {
    /// Accounts the frame just built in `label`.
    #[inline]
    pub(crate) fn account(&self, label: &mut FlowLabel) {
        if label.packets == 0 {
            label.first_ts_ns = self.ts;
        }
        label.last_ts_ns = self.ts;
        label.packets += 1;
        label.bytes += self.frame.len() as u64;
    }

    /// Hands over a finished flow (flows without packets are dropped).
    #[inline]
    pub(crate) fn finish(&mut self, label: FlowLabel) {
        if label.packets > 0 {
            self.done.push(label);
        }
    }

    /// Hands over the flow when `done`; returns `done` (a flow's "finished"
    /// answer to the scheduler).
    #[inline]
    pub(crate) fn finish_if(&mut self, done: bool, label: FlowLabel) -> bool {
        if done {
            self.finish(label);
        }
        done
    }
}

/// One generated frame, borrowed from the generator.
#[derive(Debug, Clone, Copy)]
pub struct GenFrame<'a> {
    /// Timestamp, ns since the Unix epoch.
    pub ts_ns: u64,
    /// The Ethernet frame (its length is also the wire length).
    pub data: &'a [u8],
    /// The scenario that produced it.
    pub scenario: Scenario,
}

/// The generator as an iterator-like state machine: call
/// [`next_frame`](Generator::next_frame) until it returns `None`, take
/// finished flow labels with [`take_labels`](Generator::take_labels) as
/// you go, then call [`finish`](Generator::finish) for the flows still
/// open. [`generate`] does all of this.
pub struct Generator {
    ctx: Ctx,
    packets: u64,
    start_ts_ns: u64,
    /// Nanoseconds per packet in 32.32 fixed point.
    period_fp: u128,
    jitter_ns: u64,
    slot: u64,
    mix: Mix,
    scenarios: Vec<Scenario>,
    /// Cumulative normalized weights, parallel to `scenarios`.
    cumulative: Vec<f64>,
    normal_listed: bool,
    normal: Vec<Option<NormalFlow>>,
    floods: [Option<Flood>; 3],
    scan: Option<PortScan>,
    slow: Option<Slowloris>,
    amp: Option<DnsAmp>,
    summary: GenSummary,
    finished: bool,
}

impl Generator {
    /// Prepares a run.
    ///
    /// # Errors
    /// [`CaptureError::InvalidConfig`] when [`GenConfig::validate`] fails.
    pub fn new(cfg: &GenConfig) -> Result<Generator, CaptureError> {
        cfg.validate()?;
        let mut ctx = Ctx {
            rng: Rng::new(cfg.seed),
            frame: Vec::with_capacity(2048),
            scratch: Vec::with_capacity(2048),
            ts: cfg.start_ts_ns,
            plan: hosts::Plan::new(),
            done: Vec::with_capacity(64),
            ipv6_share: cfg.ipv6_share,
            vlan_share: cfg.vlan_share,
        };
        let weights: Vec<f64> = if cfg.weights.is_empty() {
            vec![1.0; cfg.scenarios.len()]
        } else {
            cfg.weights.clone()
        };
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        let has = |s: Scenario| cfg.scenarios.contains(&s);
        let mut floods = [None, None, None];
        for (slot, sc) in [Scenario::SynFlood, Scenario::UdpFlood, Scenario::IcmpFlood]
            .into_iter()
            .enumerate()
        {
            if has(sc) {
                floods[slot] = Some(Flood::new(&mut ctx, sc));
            }
        }
        let scan = has(Scenario::PortScan).then(|| PortScan::new(&mut ctx));
        let period_fp = ((1e9 / cfg.pps) * 4_294_967_296.0) as u128;
        let period_ns = (period_fp >> 32) as u64;
        Ok(Generator {
            ctx,
            packets: cfg.packets,
            start_ts_ns: cfg.start_ts_ns,
            period_fp,
            jitter_ns: period_ns / 2,
            slot: 0,
            mix: cfg.mix,
            scenarios: cfg.scenarios.clone(),
            cumulative,
            normal_listed: has(Scenario::Normal),
            normal: (0..cfg.concurrency).map(|_| None).collect(),
            floods,
            scan,
            slow: has(Scenario::Slowloris).then(Slowloris::new),
            amp: has(Scenario::DnsAmplification).then(DnsAmp::new),
            summary: GenSummary {
                packets: 0,
                bytes: 0,
                flows: 0,
                first_ts_ns: 0,
                last_ts_ns: 0,
                scenarios: dedup(&cfg.scenarios)
                    .into_iter()
                    .map(|scenario| ScenarioSummary {
                        scenario,
                        packets: 0,
                        bytes: 0,
                        flows: 0,
                    })
                    .collect(),
            },
            finished: false,
        })
    }

    fn pick(&mut self) -> Scenario {
        match self.mix {
            Mix::Shares => {
                if self.scenarios.len() == 1 {
                    return self.scenarios[0];
                }
                let x = self.ctx.rng.f64();
                let i = self.cumulative.iter().position(|&c| x < c);
                self.scenarios[i.unwrap_or(self.scenarios.len() - 1)]
            }
            Mix::Phases => {
                let n = self.scenarios.len() as u128;
                let phase = (u128::from(self.slot) * n / u128::from(self.packets.max(1))) as usize;
                let sc = self.scenarios[phase.min(self.scenarios.len() - 1)];
                if sc != Scenario::Normal
                    && self.normal_listed
                    && self.ctx.rng.chance(BACKGROUND_IN_ATTACK_PHASE)
                {
                    Scenario::Normal
                } else {
                    sc
                }
            }
        }
    }

    fn step_normal(&mut self) {
        let i = self.ctx.rng.index(self.normal.len());
        let ctx = &mut self.ctx;
        let flow = self.normal[i].get_or_insert_with(|| NormalFlow::new(ctx));
        if flow.step(ctx) {
            self.normal[i] = None;
        }
    }

    /// Builds the next frame, or `None` once `packets` frames were made.
    pub fn next_frame(&mut self) -> Option<GenFrame<'_>> {
        if self.slot >= self.packets {
            return None;
        }
        let base = ((u128::from(self.slot) * self.period_fp) >> 32) as u64;
        let jitter = self.ctx.rng.below(self.jitter_ns);
        let ts = self.start_ts_ns.saturating_add(base).saturating_add(jitter);
        self.ctx.ts = ts;
        let sc = self.pick();
        let ctx = &mut self.ctx;
        match sc {
            Scenario::Normal => self.step_normal(),
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood => {
                let k = sc.index() - Scenario::SynFlood.index();
                if let Some(f) = self.floods[k].as_mut() {
                    f.emit(ctx);
                }
            }
            Scenario::PortScan => {
                if let Some(s) = self.scan.as_mut() {
                    s.emit(ctx);
                }
            }
            Scenario::Slowloris => {
                if let Some(s) = self.slow.as_mut() {
                    s.emit(ctx);
                }
            }
            Scenario::DnsAmplification => {
                if let Some(s) = self.amp.as_mut() {
                    s.emit(ctx);
                }
            }
        }
        let len = self.ctx.frame.len() as u64;
        let s = &mut self.summary;
        if s.packets == 0 {
            s.first_ts_ns = ts;
        }
        s.last_ts_ns = ts;
        s.packets += 1;
        s.bytes += len;
        if let Some(e) = s.scenarios.iter_mut().find(|e| e.scenario == sc) {
            e.packets += 1;
            e.bytes += len;
        }
        self.slot += 1;
        Some(GenFrame {
            ts_ns: ts,
            data: &self.ctx.frame,
            scenario: sc,
        })
    }

    /// Closes the labels of every flow still open (call once after the
    /// last frame; later calls do nothing).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let ctx = &mut self.ctx;
        for f in self.normal.iter_mut().filter_map(Option::take) {
            f.abandon(ctx);
        }
        if let Some(s) = self.scan.take() {
            s.abandon(ctx);
        }
        if let Some(s) = self.slow.take() {
            s.abandon(ctx);
        }
        if let Some(s) = self.amp.take() {
            s.abandon(ctx);
        }
    }

    /// Takes the labels of flows finished so far.
    pub fn take_labels(&mut self) -> std::vec::Drain<'_, FlowLabel> {
        for l in &self.ctx.done {
            self.summary.flows += 1;
            if let Some(e) = self
                .summary
                .scenarios
                .iter_mut()
                .find(|e| e.scenario == l.scenario)
            {
                e.flows += 1;
            }
        }
        self.ctx.done.drain(..)
    }

    /// Counts so far (flows count the labels already taken).
    pub fn summary(&self) -> &GenSummary {
        &self.summary
    }
}

fn dedup(list: &[Scenario]) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::with_capacity(list.len());
    for &s in list {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Writes the pcap (nanosecond, Ethernet) to `pcap` and the labels CSV
/// (with [`LABELS_HEADER`]) to `labels`. Both writers are buffered
/// internally.
///
/// # Errors
/// [`CaptureError::InvalidConfig`] for a bad config, [`CaptureError::Write`]
/// when an output fails.
pub fn generate<W: Write, L: Write>(
    cfg: &GenConfig,
    pcap: W,
    labels: L,
) -> Result<GenSummary, CaptureError> {
    let mut g = Generator::new(cfg)?;
    let werr = |what: &'static str| move |source| CaptureError::Write { what, source };
    let mut pw = PcapWriter::new(pcap).map_err(werr("pcap"))?;
    let mut lw = BufWriter::with_capacity(1 << 18, labels);
    writeln!(lw, "{LABELS_HEADER}").map_err(werr("labels"))?;
    while let Some(f) = g.next_frame() {
        let wire = f.data.len() as u32;
        pw.write_frame(f.ts_ns, wire, f.data)
            .map_err(werr("pcap"))?;
        if !g.ctx.done.is_empty() {
            for l in g.take_labels() {
                l.write_csv(&mut lw).map_err(werr("labels"))?;
            }
        }
    }
    g.finish();
    for l in g.take_labels() {
        l.write_csv(&mut lw).map_err(werr("labels"))?;
    }
    pw.into_inner().map_err(werr("pcap"))?;
    lw.flush().map_err(werr("labels"))?;
    Ok(g.summary.clone())
}

/// The default labels path for a pcap path: `out.pcap` → `out.labels.csv`.
pub fn default_labels_path(pcap: &Path) -> PathBuf {
    pcap.with_extension("labels.csv")
}

/// [`generate`] into files (created or truncated).
///
/// # Errors
/// [`CaptureError::Create`] when a file cannot be created, otherwise as
/// [`generate`].
pub fn generate_files(
    cfg: &GenConfig,
    pcap: &Path,
    labels: &Path,
) -> Result<GenSummary, CaptureError> {
    cfg.validate()?;
    let create = |p: &Path| {
        File::create(p).map_err(|source| CaptureError::Create {
            path: p.to_path_buf(),
            source,
        })
    };
    let pf = create(pcap)?;
    let lf = create(labels)?;
    generate(cfg, pf, lf)
}
