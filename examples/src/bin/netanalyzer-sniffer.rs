//! `netanalyzer-sniffer`: read packets from a capture file or live
//! interfaces, parse them into records and write them to one or more
//! outputs (JSON Lines, rotated CSV, nothing).
//!
//! The logic lives in the crates: `netanalyzer_capture` (sources),
//! `netanalyzer_store` (outputs) and `netanalyzer_core::pump` (the loop).
//! This binary parses flags, wires them together, draws progress and
//! prints the summary. Run with `--help` for the flags and exit codes.

use anyhow::{Context, Result};
use clap::{ArgGroup, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netanalyzer_capture::{CaptureError, FileSource, LiveConfig, LiveSource};
use netanalyzer_core::{
    pump, PacketRecord, PumpError, PumpOptions, PumpReport, Source, SourceEvent, SourceStats,
};
use netanalyzer_store::{CsvOptions, Output, OutputSpec, StoreError, Tee};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const AFTER_HELP: &str = "\
Every flag can also be set with an environment variable: NETANALYZER_ and the
long flag in upper case, '-' as '_' (NETANALYZER_READ, NETANALYZER_COUNT,
NETANALYZER_ROTATE_SECS, ...). Repeatable flags take a comma-separated list
there (NETANALYZER_OUTPUT=jsonl:-,csv:backup). A flag on the command line wins.

Logs, progress and the final summary go to standard error; RUST_LOG sets the
log level (default: info). Ctrl-C stops reading, flushes every output and
prints the summary; a second Ctrl-C quits at once (status 130).

Exit status:
  0  success: the input ended, --count was reached, or Ctrl-C stopped it
     (also when standard output was closed early, e.g. by `| head`)
  1  error: an input or output could not be opened, the capture file is
     corrupt or cut short (the records before the bad offset are written),
     or an output failed
  2  usage error: bad or conflicting flags";

/// Reads packets from a capture file or live interfaces and writes one
/// record per packet.
#[derive(Debug, Parser)]
#[command(name = "netanalyzer-sniffer", version, after_help = AFTER_HELP)]
#[command(group(ArgGroup::new("input").required(true).args(["read", "interface"])))]
struct Cli {
    /// Read a pcap or pcapng capture file.
    #[arg(short = 'r', long, value_name = "FILE", env = "NETANALYZER_READ")]
    read: Option<PathBuf>,

    /// Capture live on this interface (libpcap name, e.g. eth0, any);
    /// repeat (or separate with commas) for several.
    #[arg(
        short = 'i',
        long,
        value_name = "IF",
        env = "NETANALYZER_INTERFACE",
        value_delimiter = ','
    )]
    interface: Vec<String>,

    /// BPF filter, tcpdump syntax; for a file, frames that do not match are
    /// skipped and counted.
    #[arg(short = 'f', long, value_name = "BPF", env = "NETANALYZER_FILTER")]
    filter: Option<String>,

    /// Bytes kept of each packet (live capture only) [default: 262144].
    #[arg(
        short = 's',
        long,
        value_name = "N",
        env = "NETANALYZER_SNAPLEN",
        value_parser = clap::value_parser!(u32).range(1..=262_144)
    )]
    snaplen: Option<u32>,

    /// Stop after N packets.
    #[arg(short = 'c', long, value_name = "N", env = "NETANALYZER_COUNT")]
    count: Option<u64>,

    /// Where records go; repeat (or separate with commas) to write several at once.
    /// jsonl:PATH = one JSON object per line into PATH; jsonl:- = to
    /// standard output; csv:DIR = CSV files in DIR, a new file every
    /// --rotate-secs of packet time; null = write nothing.
    #[arg(
        short = 'o',
        long,
        value_name = "KIND:TARGET",
        env = "NETANALYZER_OUTPUT",
        value_delimiter = ',',
        default_value = "jsonl:-"
    )]
    output: Vec<OutputSpec>,

    /// Seconds of packet time per CSV file.
    #[arg(
        long,
        value_name = "SECS",
        env = "NETANALYZER_ROTATE_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    rotate_secs: u64,
}

/// Set by Ctrl-C; checked by the pump before every packet.
static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if cli.read.is_some() && cli.snaplen.is_some() {
        use clap::{error::ErrorKind, CommandFactory};
        let e = Cli::command().error(
            ErrorKind::ArgumentConflict,
            "--snaplen applies to live capture (--interface) only",
        );
        let _ = e.print();
        return ExitCode::from(2);
    }
    init_logging();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netanalyzer-sniffer: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// The input: a file or live interfaces, behind one `Source`.
enum Input {
    File(FileSource),
    Live(LiveSource),
}

impl Source for Input {
    type Error = CaptureError;

    fn next_into(&mut self, record: &mut PacketRecord) -> Result<SourceEvent, CaptureError> {
        match self {
            Input::File(s) => s.next_into(record),
            Input::Live(s) => s.next_into(record),
        }
    }

    fn stats(&self) -> SourceStats {
        match self {
            Input::File(s) => s.stats(),
            Input::Live(s) => s.stats(),
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if let Err(e) = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    }) {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }

    let mut outputs = Vec::with_capacity(cli.output.len());
    for (i, spec) in cli.output.iter().enumerate() {
        if cli.output[..i].contains(spec) {
            anyhow::bail!("output {spec} is given twice");
        }
        let csv = CsvOptions {
            rotate_secs: cli.rotate_secs,
        };
        outputs.push(
            spec.build(csv)
                .with_context(|| format!("cannot open output {spec}"))?,
        );
    }
    let mut sink = Tee::new(outputs);

    let (mut input, what) = open_input(cli)?;
    let bar = progress_bar(&input);

    let opts = PumpOptions {
        max_packets: cli.count,
        stop: Some(&STOP),
        ..PumpOptions::default()
    };
    let start = Instant::now();
    let mut last_log = start;
    let result = pump(&mut input, &mut sink, &opts, |src| match src {
        Input::File(f) => {
            if let Some(bar) = &bar {
                bar.set_position(f.bytes_read());
                bar.set_message(format!("{} packets", f.stats().packets));
            }
        }
        Input::Live(l) => {
            // Live: a status line every 10 s instead of a bar.
            if last_log.elapsed() >= Duration::from_secs(10) {
                last_log = Instant::now();
                let s = l.stats();
                tracing::info!(
                    packets = s.packets,
                    kernel_dropped = s.kernel_dropped.unwrap_or(0),
                    if_dropped = s.if_dropped.unwrap_or(0),
                    "capturing"
                );
            }
        }
    });
    let elapsed = start.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let stats = input.stats();
    let filtered = match &input {
        Input::File(f) if cli.filter.is_some() => Some(f.filtered()),
        _ => None,
    };
    let (report, failure) = match result {
        Ok(report) => (Some(report), None),
        Err(PumpError::Source {
            error,
            packets: _,
            close,
        }) => {
            let mut msg = format!("reading {what}: {error}");
            if let Some(c) = close {
                let _ = write!(msg, "; also: {c}");
            }
            (None, Some(msg))
        }
        Err(PumpError::Sink { error, .. }) if error.is_broken_pipe() => {
            tracing::debug!("standard output closed: {error}");
            (None, None)
        }
        Err(PumpError::Sink { error, .. }) => (None, Some(output_error(&error))),
    };
    eprint!(
        "{}",
        summary(
            &stats,
            filtered,
            elapsed,
            report.as_ref(),
            sink.sinks(),
            &cli.output
        )
    );
    match failure {
        Some(msg) => {
            eprintln!("netanalyzer-sniffer: error: {msg}");
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

fn output_error(e: &StoreError) -> String {
    format!("writing output: {e}")
}

/// Opens the file or the interfaces; returns the source and a name for
/// messages.
fn open_input(cli: &Cli) -> Result<(Input, String)> {
    if let Some(path) = &cli.read {
        let mut src = FileSource::open(path)
            .with_context(|| format!("cannot read capture file {}", path.display()))?;
        if let Some(expr) = &cli.filter {
            src.set_filter(expr)
                .with_context(|| format!("cannot filter {}", path.display()))?;
        }
        tracing::info!(
            file = %path.display(),
            format = ?src.format(),
            bytes = src.file_len().unwrap_or(0),
            "reading capture file"
        );
        return Ok((Input::File(src), path.display().to_string()));
    }
    let mut cfg = LiveConfig {
        interfaces: cli.interface.clone(),
        filter: cli.filter.clone(),
        ..LiveConfig::default()
    };
    if let Some(n) = cli.snaplen {
        cfg.snaplen = n;
    }
    let names = cli.interface.join(",");
    let src = LiveSource::open(&cfg)
        .with_context(|| format!("cannot capture on interface(s) {names}"))?;
    tracing::info!(interfaces = %names, filter = cli.filter.as_deref().unwrap_or(""), "capturing live");
    Ok((Input::Live(src), format!("interface(s) {names}")))
}

/// A bar of bytes read over the file length, only for a file and only when
/// standard error is a terminal.
fn progress_bar(input: &Input) -> Option<ProgressBar> {
    let Input::File(f) = input else { return None };
    let len = f.file_len()?;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// The end-of-run summary, for standard error.
fn summary(
    stats: &SourceStats,
    filtered: Option<u64>,
    elapsed: Duration,
    report: Option<&PumpReport>,
    outputs: &[Output],
    specs: &[OutputSpec],
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        stats.packets as f64 / secs
    } else {
        0.0
    };
    let mut s = String::from("netanalyzer-sniffer summary:\n");
    let _ = writeln!(s, "  packets:      {}", stats.packets);
    let _ = writeln!(s, "  bytes:        {} (on the wire)", stats.wire_bytes);
    if let Some(n) = filtered {
        let _ = writeln!(s, "  filtered out: {n} (did not match --filter)");
    }
    if stats.parse.malformed_packets == 0 {
        let _ = writeln!(s, "  parse errors: none");
    } else {
        let kinds: Vec<String> = stats
            .parse
            .nonzero()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        let _ = writeln!(
            s,
            "  parse errors: {} packets ({})",
            stats.parse.malformed_packets,
            kinds.join(", ")
        );
    }
    match stats.kernel_dropped {
        Some(d) => {
            let _ = writeln!(
                s,
                "  kernel drops: {d} (received {}, interface dropped {})",
                stats.kernel_received.unwrap_or(0),
                stats.if_dropped.unwrap_or(0)
            );
        }
        None => {
            let _ = writeln!(s, "  kernel drops: n/a (file)");
        }
    }
    let _ = writeln!(s, "  seconds:      {secs:.3}");
    let _ = writeln!(s, "  packets/s:    {rate:.0}");
    if let Some(r) = report {
        let _ = writeln!(s, "  stopped:      {}", r.reason);
    }
    for (out, spec) in outputs.iter().zip(specs) {
        let c = out.counters();
        let _ = write!(s, "  output {spec}: {} records", c.records);
        if !matches!(out, Output::Null(_)) {
            let _ = write!(s, ", {} bytes", c.bytes);
        }
        if matches!(out, Output::Csv(_)) {
            let _ = write!(s, ", {} files", c.files);
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_env_var() {
        for arg in Cli::command().get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let want = format!("NETANALYZER_{}", id.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(want.as_str()),
                "{id}"
            );
        }
    }
}
