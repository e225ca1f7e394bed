//! The demo's scenario: phases of generated traffic, each with its own
//! start, length and rate, merged into one time-ordered pcap.
//!
//! [`Plan::builtin`] is what `netanalyzer-demo` replays: normal traffic
//! for the whole run, and over it a SYN flood, a port scan and a slow
//! HTTP attack (slowloris), one after the other. Each phase is one
//! [`Generator`] (its own seed and rate, stamped from the phase start);
//! [`write_pcap`] merges their frames by timestamp.
//!
//! ```
//! use netanalyzer_examples::demo::{write_pcap, Plan};
//! let plan = Plan::builtin(10.0, 0.05, 1);
//! let mut pcap = Vec::new();
//! let made = write_pcap(&plan, 1_700_000_000_000_000_000, &mut pcap)?;
//! assert_eq!(made.packets, plan.packets());
//! # Ok::<(), netanalyzer_capture::CaptureError>(())
//! ```
use netanalyzer_capture::gen::{GenConfig, Generator, Scenario};
use netanalyzer_capture::{CaptureError, PcapWriter};
use std::io::Write;

/// One phase: a scenario at a constant rate over a span of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// What is generated.
    pub scenario: Scenario,
    /// Start, seconds after the first packet of the run.
    pub start_secs: f64,
    /// Length in seconds.
    pub secs: f64,
    /// Packets per second (average).
    pub pps: f64,
}

impl Phase {
    /// Packets this phase makes: `secs * pps`, rounded.
    pub fn packets(&self) -> u64 {
        (self.secs * self.pps).round().max(0.0) as u64
    }
}

/// The whole scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The phases, overlapping freely.
    pub phases: Vec<Phase>,
    /// Base seed; phase `i` uses `seed + i`.
    pub seed: u64,
}

/// Base rates of the built-in scenario at `scale` 1, and the floor under
/// each scaled rate (so a scaled-down run still looks like the attack).
const NORMAL_PPS: (f64, f64) = (1_500.0, 100.0);
const FLOOD_PPS: (f64, f64) = (30_000.0, 1_000.0);
const SCAN_PPS: (f64, f64) = (2_000.0, 500.0);
const SLOWLORIS_PPS: (f64, f64) = (200.0, 200.0);

impl Plan {
    /// The built-in scenario over `duration_secs` (fractions of it):
    /// normal traffic all along; a SYN flood from 12 % to 32 %; a port
    /// scan from 40 % to 55 %; slowloris from 62 % to 90 %. Rates are the
    /// base rates (normal 1,500/s, flood 30,000/s, scan 2,000/s, slowloris
    /// 200/s) times `scale`, with floors of 100, 1,000, 500 and 200/s.
    pub fn builtin(duration_secs: f64, scale: f64, seed: u64) -> Plan {
        let d = duration_secs.max(1.0);
        let rate = |(base, floor): (f64, f64)| (base * scale).max(floor);
        let phase = |scenario, from: f64, to: f64, pps| Phase {
            scenario,
            start_secs: d * from,
            secs: d * (to - from),
            pps,
        };
        Plan {
            phases: vec![
                phase(Scenario::Normal, 0.0, 1.0, rate(NORMAL_PPS)),
                phase(Scenario::SynFlood, 0.12, 0.32, rate(FLOOD_PPS)),
                phase(Scenario::PortScan, 0.40, 0.55, rate(SCAN_PPS)),
                phase(Scenario::Slowloris, 0.62, 0.90, rate(SLOWLORIS_PPS)),
            ],
            seed,
        }
    }

    /// Packets in all phases.
    pub fn packets(&self) -> u64 {
        self.phases.iter().map(Phase::packets).sum()
    }

    /// Seconds from the first phase start to the last phase end.
    pub fn secs(&self) -> f64 {
        self.phases
            .iter()
            .map(|p| p.start_secs + p.secs)
            .fold(0.0, f64::max)
    }
}

/// What [`write_pcap`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// Frames written.
    pub packets: u64,
    /// Frame bytes written.
    pub bytes: u64,
    /// Frames per phase, in plan order.
    pub per_phase: Vec<u64>,
    /// First and last timestamp, ns since the Unix epoch.
    pub first_ts_ns: u64,
    /// See `first_ts_ns`.
    pub last_ts_ns: u64,
}

/// One phase's generator and its frame waiting to be merged.
struct Lane {
    gen: Generator,
    ts_ns: u64,
    frame: Vec<u8>,
    live: bool,
}

impl Lane {
    fn advance(&mut self) {
        match self.gen.next_frame() {
            Some(f) => {
                self.ts_ns = f.ts_ns;
                self.frame.clear();
                self.frame.extend_from_slice(f.data);
            }
            None => self.live = false,
        }
        // Flow labels are not wanted here: drop them as they finish.
        self.gen.take_labels().for_each(drop);
    }
}

/// Generates every phase from `start_ts_ns` and writes the frames, merged
/// in timestamp order, as a nanosecond Ethernet pcap into `out`.
///
/// # Errors
/// [`CaptureError::InvalidConfig`] for a phase with a bad rate,
/// [`CaptureError::Write`] when `out` fails.
pub fn write_pcap<W: Write>(plan: &Plan, start_ts_ns: u64, out: W) -> Result<Made, CaptureError> {
    let mut lanes = Vec::with_capacity(plan.phases.len());
    for (i, p) in plan.phases.iter().enumerate() {
        let cfg = GenConfig {
            packets: p.packets(),
            pps: p.pps,
            seed: plan.seed.wrapping_add(i as u64),
            start_ts_ns: start_ts_ns.saturating_add((p.start_secs * 1e9) as u64),
            scenarios: vec![p.scenario],
            ..GenConfig::default()
        };
        let mut lane = Lane {
            gen: Generator::new(&cfg)?,
            ts_ns: 0,
            frame: Vec::with_capacity(2048),
            live: true,
        };
        lane.advance();
        lanes.push(lane);
    }
    let werr = |source| CaptureError::Write {
        what: "pcap",
        source,
    };
    let mut w = PcapWriter::new(std::io::BufWriter::with_capacity(1 << 20, out)).map_err(werr)?;
    let mut made = Made {
        packets: 0,
        bytes: 0,
        per_phase: vec![0; lanes.len()],
        first_ts_ns: 0,
        last_ts_ns: 0,
    };
    loop {
        let next = lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.live)
            .min_by_key(|(_, l)| l.ts_ns)
            .map(|(i, _)| i);
        let Some(i) = next else { break };
        let lane = &mut lanes[i];
        let len = lane.frame.len();
        w.write_frame(
            lane.ts_ns,
            u32::try_from(len).unwrap_or(u32::MAX),
            &lane.frame,
        )
        .map_err(werr)?;
        if made.packets == 0 {
            made.first_ts_ns = lane.ts_ns;
        }
        made.last_ts_ns = lane.ts_ns;
        made.packets += 1;
        made.bytes += len as u64;
        made.per_phase[i] += 1;
        lane.advance();
    }
    let mut inner = w.into_inner().map_err(werr)?;
    inner.flush().map_err(werr)?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netanalyzer_capture::FrameReader;

    #[test]
    fn builtin_plan_is_timed_and_scaled() {
        let p = Plan::builtin(75.0, 1.0, 1);
        assert_eq!(p.phases.len(), 4);
        assert!((p.secs() - 75.0).abs() < 1e-9);
        assert_eq!(p.phases[1].scenario, Scenario::SynFlood);
        assert_eq!(p.phases[1].packets(), 450_000);
        let small = Plan::builtin(20.0, 0.01, 1);
        assert_eq!(small.phases[0].pps, 100.0, "the floor holds");
        assert_eq!(small.phases[3].pps, 200.0);
    }

    #[test]
    fn frames_are_merged_in_time_order() {
        let plan = Plan::builtin(10.0, 0.05, 7);
        let start = 1_700_000_000_000_000_000;
        let mut buf = Vec::new();
        let made = write_pcap(&plan, start, &mut buf).unwrap();
        assert_eq!(made.packets, plan.packets());
        assert_eq!(made.per_phase.iter().sum::<u64>(), made.packets);
        assert!(made.first_ts_ns >= start);
        assert!(made.last_ts_ns < start + 10_000_000_000);
        let mut r = FrameReader::new(std::io::Cursor::new(buf)).unwrap();
        let mut last = 0;
        let mut n = 0;
        while let Some(frame) = r.next_frame().unwrap() {
            assert!(frame.ts_ns >= last, "frame {n} goes back in time");
            last = frame.ts_ns;
            n += 1;
        }
        assert_eq!(n, made.packets);
    }
}
