//! Flow table benchmarks: a spoofed SYN flood against a capped table, and
//! parse + aggregate from a pcap beside `softflowd -r` on the same file.
//!
//! ```text
//! cargo build --release -p netanalyzer-benches --bin flowbench
//! taskset -c 1 target/release/flowbench --flood 10000000 [--max-flows 100000]
//! taskset -c 1 target/release/flowbench --speed [--packets 1000000] [--runs 5] [--pcap FILE]
//! ```
//!
//! **`--flood N`**: N frames of the generator's `syn-flood` scenario
//! (spoofed sources, random ports: one flow per packet) stamped at
//! 1,000,000 packets/s, parsed in chunks of 65,536 and fed to a
//! `FlowAggregator` with `max_flows` (default 100,000); only the `ingest`
//! calls are timed. Emitted records are consumed as they come. Prints
//! packets/s, the peak table entries, evictions by reason, and checks that
//! the records' packets add up to the packets ingested. A second pass over
//! the same packets runs under dhat's heap profiler (slower, not timed) and
//! prints the peak heap; the process's peak RSS (`VmHWM`) is printed too.
//! Fails (exit 1) when the table exceeded `max_flows`, a packet is missing
//! from the records, or the peak heap is over the cap
//! `max_flows × (2 × entry + accumulators + 128 B) + 16 MiB` (the entry
//! sizes from `FlowAggregator::entry_sizes`, as in `examples/tests/flow_flood.rs`).
//!
//! **`--speed`**: generates a `--packets`-packet capture of normal traffic
//! (seed 1, as `benches/e2e.sh`) unless `--pcap` names one, reads it once
//! to warm the page cache, then alternates `--runs` times: our
//! `FileSource` → `FlowAggregator` (default config, all 82 features, then
//! drain) in this process, and `softflowd -r FILE` (wall clock, as a child
//! process, so a `taskset` on this process pins both to the same core).
//! Prints the best and the mean of each and the ratio of the bests.
//!
//! The global allocator is dhat's: outside the profiled pass it forwards
//! to the system allocator (one uncontended lock per allocation; the flow
//! path allocates only for the records' optional strings and table growth).

use netanalyzer_capture::gen::{self, GenConfig, Generator, Scenario};
use netanalyzer_capture::parse::parse_frame;
use netanalyzer_capture::{FileSource, LinkType};
use netanalyzer_core::{
    Aggregator, EndReason, FlowRecord, PacketRecord, ParseStats, Source, SourceEvent,
};
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig, FlowStats};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Flood packet-time rate (packets/s).
const FLOOD_PPS: f64 = 1_000_000.0;
/// Frames parsed per flood chunk.
const CHUNK: usize = 65_536;

struct Args {
    flood: Option<u64>,
    max_flows: usize,
    speed: bool,
    packets: u64,
    runs: u32,
    pcap: Option<PathBuf>,
    softflowd: String,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        flood: None,
        max_flows: 100_000,
        speed: false,
        packets: 1_000_000,
        runs: 5,
        pcap: None,
        softflowd: "softflowd".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--flood" => a.flood = Some(val("--flood")?.parse()?),
            "--max-flows" => a.max_flows = val("--max-flows")?.parse()?,
            "--speed" => a.speed = true,
            "--packets" => a.packets = val("--packets")?.parse()?,
            "--runs" => a.runs = val("--runs")?.parse::<u32>()?.max(1),
            "--pcap" => a.pcap = Some(val("--pcap")?.into()),
            "--softflowd" => a.softflowd = val("--softflowd")?,
            "-h" | "--help" => {
                println!(
                    "usage: flowbench [--flood N [--max-flows M]] \
                     [--speed [--packets N] [--runs R] [--pcap FILE] [--softflowd BIN]]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.flood.is_none() && !a.speed {
        return Err("nothing to do: give --flood N and/or --speed".into());
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut ok = true;
    if let Some(n) = args.flood {
        ok &= flood(n, &args)?;
    }
    if args.speed {
        speed(&args)?;
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

// ------------------------------------------------------------------ flood

/// Feeds `n` flood packets, chunk by chunk, to `agg`; `on_chunk` gets
/// each parsed chunk and does the ingesting.
fn for_each_flood_chunk(n: u64, mut on_chunk: impl FnMut(&[PacketRecord])) -> Result<()> {
    let cfg = GenConfig {
        packets: n,
        pps: FLOOD_PPS,
        seed: 1,
        scenarios: vec![Scenario::SynFlood],
        ..GenConfig::default()
    };
    let mut g = Generator::new(&cfg)?;
    let mut chunk: Vec<PacketRecord> = vec![PacketRecord::default(); CHUNK];
    let mut stats = ParseStats::default();
    loop {
        let mut len = 0;
        while len < CHUNK {
            let Some(f) = g.next_frame() else { break };
            let rec = &mut chunk[len];
            rec.clear();
            rec.ts_ns = f.ts_ns;
            rec.wire_len = f.data.len() as u32;
            rec.cap_len = f.data.len() as u32;
            parse_frame(LinkType::ETHERNET, f.data, rec, &mut stats);
            len += 1;
        }
        if len == 0 {
            break;
        }
        on_chunk(&chunk[..len]);
        // The generator keeps finished-flow labels: drop them.
        g.take_labels().for_each(drop);
    }
    Ok(())
}

#[derive(Default)]
struct Consumed {
    records: u64,
    packets: u64,
    by_reason: [u64; 6],
}

impl Consumed {
    fn take(&mut self, out: &mut Vec<FlowRecord>) {
        for f in out.drain(..) {
            self.records += 1;
            self.packets += f.packets();
            if let Some(i) = EndReason::ALL.iter().position(|r| *r == f.end_reason) {
                self.by_reason[i] += 1;
            }
        }
    }
}

/// One pass of the flood: (ingest time, peak entries, consumed, stats).
/// `before_drain` runs after the last packet, before the final `drain`
/// (which hands every open flow to the caller at once).
fn flood_pass(
    n: u64,
    max_flows: usize,
    before_drain: &mut dyn FnMut(),
) -> Result<(Duration, usize, Consumed, FlowStats)> {
    let cfg = FlowConfig {
        max_flows,
        ..FlowConfig::default()
    };
    let mut agg = FlowAggregator::new(cfg);
    let mut out = Vec::with_capacity(1024);
    let mut consumed = Consumed::default();
    let mut busy = Duration::ZERO;
    let mut peak = 0usize;
    for_each_flood_chunk(n, |chunk| {
        let t0 = Instant::now();
        for rec in chunk {
            agg.ingest(rec, &mut out);
            if out.len() >= 1024 {
                consumed.take(&mut out);
            }
        }
        busy += t0.elapsed();
        consumed.take(&mut out);
        peak = peak.max(agg.len());
    })?;
    let st_before = agg.stats();
    before_drain();
    agg.drain(&mut out);
    consumed.take(&mut out);
    let mut st = agg.stats();
    st.peak_active = st.peak_active.max(st_before.peak_active);
    Ok((busy, peak, consumed, st))
}

fn flood(n: u64, args: &Args) -> Result<bool> {
    let max_flows = args.max_flows;
    println!(
        "flood: {n} spoofed SYNs at {FLOOD_PPS} packets/s of packet time, max_flows {max_flows}"
    );
    let t_all = Instant::now();
    let (busy, peak_sampled, c, st) = flood_pass(n, max_flows, &mut || {})?;
    let wall = t_all.elapsed();
    let rate = n as f64 / busy.as_secs_f64();
    println!(
        "  aggregate: {n} packets in {:.3} s of ingest ({:.3} s wall with generation and parsing): {:.0} packets/s",
        busy.as_secs_f64(),
        wall.as_secs_f64(),
        rate
    );
    println!(
        "  peak entries {} (stats.peak_active {}), flows created {}, records {}, by reason {}",
        peak_sampled,
        st.peak_active,
        st.flows_created,
        c.records,
        reasons(&c.by_reason)
    );
    println!(
        "  evicted embryonic {}, evicted oldest {}, unkeyed {}",
        st.evicted_embryonic, st.evicted_oldest, st.unkeyed
    );
    // Heap pass: the same packets under dhat's profiler.
    let heap_peak = {
        let _profiler = dhat::Profiler::builder().testing().build();
        let t0 = Instant::now();
        let mut h = None;
        flood_pass(n, max_flows, &mut || h = Some(dhat::HeapStats::get()))?;
        let h = h.ok_or("no heap stats")?;
        let end = dhat::HeapStats::get();
        println!(
            "  peak heap before the final drain (dhat, second pass, {:.1} s): {} B = {:.1} MiB, \
             {:.0} B per table entry; {} allocations; with the drained records: {:.1} MiB",
            t0.elapsed().as_secs_f64(),
            h.max_bytes,
            h.max_bytes as f64 / (1 << 20) as f64,
            h.max_bytes as f64 / st.peak_active.max(1) as f64,
            h.total_blocks,
            end.max_bytes as f64 / (1 << 20) as f64
        );
        h.max_bytes
    };
    if let Some(hwm) = vm_hwm_kib() {
        println!("  peak RSS (VmHWM) {:.1} MiB", hwm as f64 / 1024.0);
    }
    let (entry, acc) = FlowAggregator::entry_sizes();
    let cap = max_flows * (2 * entry + acc + 128) + (16 << 20);
    println!("  entry {entry} B, accumulators {acc} B: cap {cap} B");
    let mut ok = true;
    let mut check = |cond: bool, what: String| {
        println!("  {} {what}", if cond { "ok  " } else { "FAIL" });
        ok &= cond;
    };
    check(
        st.peak_active as usize <= max_flows && peak_sampled <= max_flows,
        format!(
            "table never above max_flows ({} <= {max_flows})",
            st.peak_active
        ),
    );
    check(
        st.packets == n && c.packets == st.packets - st.unkeyed,
        format!(
            "every packet in one record ({} record packets = {} ingested - {} unkeyed)",
            c.packets, st.packets, st.unkeyed
        ),
    );
    check(
        c.by_reason[4] == st.evicted_embryonic + st.evicted_oldest,
        format!(
            "evictions counted ({} evicted records = {} + {})",
            c.by_reason[4], st.evicted_embryonic, st.evicted_oldest
        ),
    );
    check(
        heap_peak <= cap,
        format!("peak heap {heap_peak} B under the cap {cap} B"),
    );
    Ok(ok)
}

fn reasons(v: &[u64; 6]) -> String {
    EndReason::ALL
        .iter()
        .zip(v)
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Peak resident set size of this process, KiB (Linux).
fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ------------------------------------------------------------------ speed

/// Parse + aggregate the whole file: (packets, records, time).
fn ours(pcap: &Path) -> Result<(u64, u64, Duration)> {
    let t0 = Instant::now();
    let mut src = FileSource::open(pcap)?;
    let mut agg = FlowAggregator::new(FlowConfig::default());
    let mut rec = PacketRecord::default();
    let mut out: Vec<FlowRecord> = Vec::with_capacity(1024);
    let (mut packets, mut records) = (0u64, 0u64);
    loop {
        match src.next_into(&mut rec)? {
            SourceEvent::Packet => {
                packets += 1;
                agg.ingest(&rec, &mut out);
                if !out.is_empty() {
                    records += out.len() as u64;
                    std::hint::black_box(&out);
                    out.clear();
                }
            }
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    agg.drain(&mut out);
    records += out.len() as u64;
    std::hint::black_box(&out);
    Ok((packets, records, t0.elapsed()))
}

/// `softflowd -r FILE` (wall clock) and the last lines of its report.
///
/// Run exactly so, with its default pid file and control socket: softflowd
/// 1.1.0 given `-c PATH` with a path longer than 12 bytes never exits at
/// the end of the file (it hangs in `accept` on the control socket).
/// A run taking longer than this is killed and reported as an error.
fn softflowd(bin: &str, pcap: &Path, tmp: &Path) -> Result<(Duration, String)> {
    const LIMIT: Duration = Duration::from_secs(300);
    let log = tmp.join("softflowd.log");
    let file = std::fs::File::create(&log)?;
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .arg("-r")
        .arg(pcap)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t0.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("softflowd did not finish in {} s", LIMIT.as_secs()).into());
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let wall = t0.elapsed();
    let text = std::fs::read_to_string(&log)?;
    if !status.success() {
        return Err(format!("softflowd failed ({status}): {text}").into());
    }
    let summary = text
        .lines()
        .filter(|l| {
            l.starts_with("Packets processed")
                || l.starts_with("Ignored packets")
                || l.starts_with("Flows expired")
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok((wall, summary))
}

fn stats_line(name: &str, packets: u64, times: &[Duration]) -> f64 {
    let best = times.iter().min().copied().unwrap_or_default();
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    let rate = packets as f64 / best.as_secs_f64();
    println!(
        "  {name:<34} best {:>8.1} ms, mean {:>8.1} ms over {} runs: {:>12.0} packets/s (best)",
        best.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        times.len(),
        rate
    );
    rate
}

fn speed(args: &Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let pcap = match &args.pcap {
        Some(p) => p.clone(),
        None => {
            let p = tmp.path().join(format!("normal-{}.pcap", args.packets));
            let cfg = GenConfig {
                packets: args.packets,
                seed: 1,
                scenarios: vec![Scenario::Normal],
                ..GenConfig::default()
            };
            gen::generate_files(&cfg, &p, &tmp.path().join("labels.csv"))?;
            p
        }
    };
    let size = std::fs::metadata(&pcap)?.len();
    // Warm the page cache.
    std::hint::black_box(std::fs::read(&pcap)?.len());
    println!(
        "speed: {} ({size} B), one process each, {} runs alternating",
        pcap.display(),
        args.runs
    );
    let have_softflowd = Command::new(&args.softflowd)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !have_softflowd {
        println!(
            "  softflowd ({}) not found: only our side is measured (apt-get install softflowd)",
            args.softflowd
        );
    }
    let (mut t_ours, mut t_sf) = (Vec::new(), Vec::new());
    let (mut packets, mut records, mut sf_summary) = (0, 0, String::new());
    for _ in 0..args.runs {
        let (p, r, t) = ours(&pcap)?;
        (packets, records) = (p, r);
        t_ours.push(t);
        if have_softflowd {
            let (t, s) = softflowd(&args.softflowd, &pcap, tmp.path())?;
            t_sf.push(t);
            sf_summary = s;
        }
    }
    println!("  packets {packets}, our flow records {records}");
    let r_ours = stats_line("netanalyzer parse + aggregate", packets, &t_ours);
    if have_softflowd {
        let r_sf = stats_line("softflowd -r FILE (wall)", packets, &t_sf);
        println!("  softflowd report: {sf_summary}");
        println!("  ratio (best rates): {:.2}x softflowd", r_ours / r_sf);
    }
    Ok(())
}
