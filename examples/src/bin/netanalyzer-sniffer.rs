//! `netanalyzer-sniffer`: read packets from a capture file or live
//! interfaces, parse them into records and write them to one or more
//! outputs (JSON Lines, rotated CSV, nothing) and/or send them to an
//! ingest server (`--server`, with an on-disk spool).
//!
//! The logic lives in the crates: `netanalyzer_capture` (sources),
//! `netanalyzer_store` (outputs, the HTTP transport) and
//! `netanalyzer_core::pump` (the loop).
//! This binary parses flags, wires them together, draws progress and
//! prints the summary. Run with `--help` for the flags and exit codes.

use anyhow::{Context, Result};
use clap::{ArgGroup, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netanalyzer_capture::{CaptureError, FileSource, LiveConfig, LiveSource};
use netanalyzer_core::{
    pump, Control, PacketRecord, PumpError, PumpOptions, PumpReport, Sink, Source, SourceEvent,
    SourceStats,
};
use netanalyzer_store::transport::{HttpSink, HttpSinkConfig, SpoolFullPolicy, TransportStats};
use netanalyzer_store::wire::{Compression, SensorStats};
use netanalyzer_store::{CsvOptions, Output, OutputSpec, StoreError, Tee};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const AFTER_HELP: &str = "\
Every flag can also be set with an environment variable: NETANALYZER_ and the
long flag in upper case, '-' as '_' (NETANALYZER_READ, NETANALYZER_COUNT,
NETANALYZER_ROTATE_SECS, ...). Repeatable flags take a comma-separated list
there (NETANALYZER_OUTPUT=jsonl:-,csv:backup). A flag on the command line wins.

Logs, progress and the final summary go to standard error; RUST_LOG sets the
log level (default: info). Ctrl-C stops reading, flushes every output and
prints the summary; a second Ctrl-C quits at once (status 130).

With --server URL, records are sent in batches to URL/ingest_packets. Batches
the server does not take (down, busy) wait in the spool directory and are
sent, oldest first, when it answers again, also after a restart of the
sniffer. Up to --senders requests are in flight at once.
At the end the sniffer waits until the server has acknowledged every record;
it gives up when nothing was acknowledged for --drain-timeout seconds.
Without -o, --server writes no local output; -o csv:DIR keeps a local copy.

Exit status:
  0  success: the input ended, --count was reached, or Ctrl-C stopped it
     (also when standard output was closed early, e.g. by `| head`); with
     --server: and every record was acknowledged by the server
  1  error: an input or output could not be opened, the capture file is
     corrupt or cut short (the records before the bad offset are written),
     or an output failed
  2  usage error: bad or conflicting flags
  3  --server: drain timeout; the server acknowledged nothing for
     --drain-timeout seconds. \"N records in M batches remain in the spool
     at DIR\": they are sent on the next start with the same --spool-dir
  4  --server: the server refused this sensor (401/403: missing or wrong
     --token); the unsent batches stay in the spool
  5  --server: records were lost: dropped because the spool was full
     (--spool-full drop-newest) or rejected by the server as invalid (the
     batches are kept in SPOOL/rejected)";

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
    /// [default: jsonl:-, or none with --server]
    #[arg(
        short = 'o',
        long,
        value_name = "KIND:TARGET",
        env = "NETANALYZER_OUTPUT",
        value_delimiter = ','
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

    /// Send records to this ingest server (base URL, e.g.
    /// http://127.0.0.1:8000); combines with -o.
    #[arg(long, value_name = "URL", env = "NETANALYZER_SERVER")]
    server: Option<String>,

    /// This sensor's name on the server: 1 to 64 of [A-Za-z0-9._:-]
    /// [default: the host name].
    #[arg(long, value_name = "ID", env = "NETANALYZER_SENSOR_ID", value_parser = parse_sensor_id)]
    sensor_id: Option<String>,

    /// Bearer token for the server.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "NETANALYZER_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// Records per batch sent to the server.
    #[arg(
        long,
        value_name = "N",
        env = "NETANALYZER_BATCH_SIZE",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    batch_size: u64,

    /// A batch is sent at most this many milliseconds after its first record.
    #[arg(
        long,
        value_name = "MS",
        env = "NETANALYZER_BATCH_MS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    batch_ms: u64,

    /// Spool directory for batches the server has not acknowledged
    /// [default: $XDG_DATA_HOME or ~/.local/share, then
    /// netanalyzer/spool/SENSOR_ID].
    #[arg(long, value_name = "DIR", env = "NETANALYZER_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,

    /// Largest spool size in bytes; suffixes K, M, G, T (powers of 1024)
    /// are accepted, e.g. 512M.
    #[arg(
        long,
        value_name = "BYTES",
        env = "NETANALYZER_SPOOL_MAX_BYTES",
        default_value = "1G",
        value_parser = parse_size
    )]
    spool_max_bytes: u64,

    /// When the spool is full: block = stop reading until the server takes
    /// batches again (live capture: the kernel drops and counts packets);
    /// drop-newest = drop new batches and count their records.
    #[arg(
        long,
        value_name = "POLICY",
        env = "NETANALYZER_SPOOL_FULL",
        default_value = "block",
        value_parser = ["block", "drop-newest"]
    )]
    spool_full: String,

    /// At the end, give up waiting for the server after this many seconds
    /// without an acknowledgement (exit status 3; the rest stays spooled).
    #[arg(
        long,
        value_name = "SECS",
        env = "NETANALYZER_DRAIN_TIMEOUT",
        default_value_t = 60
    )]
    drain_timeout: u64,

    /// HTTP requests to the server in flight at once (sender threads, one
    /// keep-alive connection each). The server acknowledges a batch only
    /// after its database commit; 2 overlaps sending with committing.
    #[arg(
        long,
        value_name = "N",
        env = "NETANALYZER_SENDERS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u64).range(1..=64)
    )]
    senders: u64,

    /// Compression of the batches sent.
    #[arg(
        long,
        value_name = "zstd|none",
        env = "NETANALYZER_COMPRESS",
        default_value = "zstd",
        value_parser = ["zstd", "none"]
    )]
    compress: String,
}

/// `--sensor-id`: what the server accepts.
fn parse_sensor_id(s: &str) -> std::result::Result<String, String> {
    let ok = (1..=64).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 64 characters of A-Z a-z 0-9 . _ : -".into())
    }
}

/// `--spool-max-bytes`: a byte count with an optional binary suffix.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let digits = upper
        .trim_end_matches('B')
        .trim_end_matches('I')
        .trim_end_matches(['K', 'M', 'G', 'T']);
    let unit = &upper[digits.len()..];
    let mult: u64 = match unit {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("unknown size suffix {unit:?}; use K, M, G or T")),
    };
    let n: u64 = digits.trim().parse().map_err(|_| {
        format!("expected a number of bytes like 1073741824, 512M or 1G, got {s:?}")
    })?;
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

/// The host name, made into a valid sensor id.
fn default_sensor_id() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let id: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        "sensor".to_owned()
    } else {
        id
    }
}

/// `$XDG_DATA_HOME` or `~/.local/share`, then `netanalyzer/spool/ID`.
fn default_spool_dir(sensor_id: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("netanalyzer").join("spool").join(sensor_id)
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
    netanalyzer_examples::init_logging();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netanalyzer-sniffer: error: {e:#}");
            ExitCode::from(1)
        }
    }
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

/// One destination of the records: a local output or the ingest server.
enum Dest {
    Local(Output),
    Server(Box<ServerSink>),
}

/// The source's counters on their way to the HTTP sink. The pump's
/// progress callback sees the source but not the sink, so it posts them
/// here; the sink picks them up on its next write (one relaxed load per
/// record) and sends them with the next batch.
#[derive(Default)]
struct Mailbox {
    dirty: AtomicBool,
    stats: Mutex<SensorStats>,
}

impl Mailbox {
    fn post(&self, s: &SourceStats) {
        let stats = SensorStats {
            packets: s.packets,
            kernel_dropped: s.kernel_dropped,
            if_dropped: s.if_dropped,
            parse_errors: s.parse.malformed_packets,
            ..SensorStats::default()
        };
        if let Ok(mut m) = self.stats.lock() {
            *m = stats;
        }
        self.dirty.store(true, Ordering::Release);
    }
}

/// The HTTP sink and its mailbox.
struct ServerSink {
    sink: HttpSink,
    mailbox: Arc<Mailbox>,
}

impl ServerSink {
    fn pick_up(&mut self) {
        if self.mailbox.dirty.load(Ordering::Relaxed)
            && self.mailbox.dirty.swap(false, Ordering::Acquire)
        {
            if let Ok(m) = self.mailbox.stats.lock() {
                self.sink.set_sensor_stats(m.clone());
            }
        }
    }
}

impl Sink<PacketRecord> for Dest {
    type Error = StoreError;

    fn write(&mut self, record: &PacketRecord) -> Result<Control, StoreError> {
        match self {
            Dest::Local(o) => o.write(record),
            Dest::Server(s) => {
                s.pick_up();
                s.sink.write(record)
            }
        }
    }

    fn tick(&mut self) -> Result<(), StoreError> {
        match self {
            Dest::Local(o) => o.tick(),
            Dest::Server(s) => {
                s.pick_up();
                s.sink.tick()
            }
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match self {
            Dest::Local(o) => o.flush(),
            Dest::Server(s) => s.sink.flush(),
        }
    }

    fn close(&mut self) -> Result<(), StoreError> {
        match self {
            Dest::Local(o) => o.close(),
            Dest::Server(s) => {
                s.pick_up();
                s.sink.close()
            }
        }
    }
}

/// The HTTP sink for `--server`.
fn open_server(cli: &Cli, url: &str, mailbox: &Arc<Mailbox>) -> Result<Dest> {
    let sensor_id = cli.sensor_id.clone().unwrap_or_else(default_sensor_id);
    let spool_dir = cli
        .spool_dir
        .clone()
        .unwrap_or_else(|| default_spool_dir(&sensor_id));
    let mut cfg = HttpSinkConfig::new(url, sensor_id.clone(), spool_dir.clone());
    cfg.token = cli.token.clone();
    cfg.batch_size = usize::try_from(cli.batch_size).unwrap_or(usize::MAX);
    cfg.batch_interval = Duration::from_millis(cli.batch_ms);
    cfg.spool_max_bytes = cli.spool_max_bytes;
    cfg.spool_full = cli
        .spool_full
        .parse::<SpoolFullPolicy>()
        .context("--spool-full")?;
    cfg.drain_timeout = Duration::from_secs(cli.drain_timeout);
    cfg.senders = usize::try_from(cli.senders).unwrap_or(2);
    // A file loses nothing by waiting for the server; a live capture must
    // not stall, so it spills to the spool instead.
    cfg.wait_for_queue = cli.read.is_some();
    cfg.compression = match cli.compress.as_str() {
        "none" => Compression::None,
        _ => Compression::Zstd(3),
    };
    let sink = HttpSink::new(cfg).with_context(|| format!("cannot set up sending to {url}"))?;
    tracing::info!(
        server = url,
        sensor_id = %sensor_id,
        spool = %spool_dir.display(),
        stream_id = sink.stream_id(),
        "sending records to the ingest server"
    );
    Ok(Dest::Server(Box::new(ServerSink {
        sink,
        mailbox: Arc::clone(mailbox),
    })))
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if let Err(e) = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    }) {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }

    // With --server and no -o, the server is the only output.
    let specs: Vec<OutputSpec> = if cli.output.is_empty() && cli.server.is_none() {
        vec![OutputSpec::Jsonl("-".into())]
    } else {
        cli.output.clone()
    };
    let mut outputs = Vec::with_capacity(specs.len() + 1);
    for (i, spec) in specs.iter().enumerate() {
        if specs[..i].contains(spec) {
            anyhow::bail!("output {spec} is given twice");
        }
        let csv = CsvOptions {
            rotate_secs: cli.rotate_secs,
        };
        outputs.push(Dest::Local(
            spec.build(csv)
                .with_context(|| format!("cannot open output {spec}"))?,
        ));
    }
    let mailbox = Arc::new(Mailbox::default());
    if let Some(url) = &cli.server {
        outputs.push(open_server(cli, url, &mailbox)?);
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
    let result = pump(&mut input, &mut sink, &opts, |src| {
        if cli.server.is_some() {
            mailbox.post(&src.stats());
        }
        progress(src, bar.as_ref(), &mut last_log);
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
    let transport = sink.sinks().iter().find_map(|d| match d {
        Dest::Server(s) => Some(s.sink.stats()),
        Dest::Local(_) => None,
    });
    let mut status = 1;
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
        Err(PumpError::Sink { error, .. }) => {
            status = match error {
                StoreError::DrainTimeout { .. } => 3,
                StoreError::Rejected { .. } => 4,
                _ => 1,
            };
            (None, Some(output_error(&error)))
        }
    };
    let locals: Vec<&Output> = sink
        .sinks()
        .iter()
        .filter_map(|d| match d {
            Dest::Local(o) => Some(o),
            Dest::Server(_) => None,
        })
        .collect();
    eprint!(
        "{}",
        summary(
            &stats,
            filtered,
            elapsed,
            report.as_ref(),
            &locals,
            &specs,
            cli.server.as_deref().zip(transport.as_ref()),
        )
    );
    if let Some(msg) = failure {
        eprintln!("netanalyzer-sniffer: error: {msg}");
        return Ok(ExitCode::from(status));
    }
    if let Some(t) = transport
        .as_ref()
        .filter(|t| t.dropped_records + t.rejected_records > 0)
    {
        eprintln!(
            "netanalyzer-sniffer: error: {} records were lost: {} dropped (spool full), {} rejected by the server",
            t.dropped_records + t.rejected_records,
            t.dropped_records,
            t.rejected_records
        );
        return Ok(ExitCode::from(5));
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress: the bar for a file, a status line every 10 s for live capture.
fn progress(src: &Input, bar: Option<&ProgressBar>, last_log: &mut Instant) {
    match src {
        Input::File(f) => {
            if let Some(bar) = &bar {
                bar.set_position(f.bytes_read());
                bar.set_message(format!("{} packets", f.stats().packets));
            }
        }
        Input::Live(l) => {
            // Live: a status line every 10 s instead of a bar.
            if last_log.elapsed() >= Duration::from_secs(10) {
                *last_log = Instant::now();
                let s = l.stats();
                tracing::info!(
                    packets = s.packets,
                    kernel_dropped = s.kernel_dropped.unwrap_or(0),
                    if_dropped = s.if_dropped.unwrap_or(0),
                    "capturing"
                );
            }
        }
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
    outputs: &[&Output],
    specs: &[OutputSpec],
    server: Option<(&str, &TransportStats)>,
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
    if let Some((url, t)) = server {
        let _ = writeln!(
            s,
            "  server {url}: {} records acknowledged in {} batches ({} duplicate), {} retries",
            t.records_acked, t.batches_acked, t.batches_duplicate, t.retries
        );
        let _ = writeln!(
            s,
            "    spooled:    {} records in {} batches now ({} bytes), {} records spooled in all",
            t.spool_records, t.spool_batches, t.spool_bytes, t.records_spooled_total
        );
        let _ = writeln!(
            s,
            "    dropped:    {} records in {} batches (spool full)",
            t.dropped_records, t.dropped_batches
        );
        if t.rejected_records > 0 || t.corrupt_segments > 0 {
            let _ = writeln!(
                s,
                "    rejected:   {} records in {} batches (kept in the spool's rejected/), {} corrupt segments",
                t.rejected_records, t.rejected_batches, t.corrupt_segments
            );
        }
        if t.repaired_records > 0 {
            let _ = writeln!(
                s,
                "    repaired:   {} records had a NUL byte or an over-long string replaced before sending",
                t.repaired_records
            );
        }
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
