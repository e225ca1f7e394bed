//! `netanalyzer-sniffer`: read packets from a capture file or live
//! interfaces, parse them into records and write them to one or more
//! outputs (JSON Lines, rotated CSV, nothing) and/or send them to an
//! ingest server (`--server`, with an on-disk spool). With `--aggregate`
//! it also runs the flow table and the classifier on the records (on a
//! thread of its own) and writes labelled flows and alerts.
//!
//! The logic lives in the crates: `netanalyzer_capture` (sources),
//! `netanalyzer_store` (outputs, the HTTP transport),
//! `netanalyzer_core::pump` (the loop) and `netanalyzer_examples::flows`
//! (flows, classification, alerts).
//! This binary parses flags, wires them together, draws progress and
//! prints the summary. Run with `--help` for the flags and exit codes.

use anyhow::{Context, Result};
use clap::{ArgGroup, Parser};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netanalyzer_capture::{CaptureError, FileSource, LiveConfig, LiveSource};
use netanalyzer_core::{
    pump, Alert, Control, FlowRecord, PacketRecord, PumpError, PumpOptions, PumpReport, Sink,
    Source, SourceEvent, SourceStats, Timestamp,
};
use netanalyzer_examples::flows::{emitted_by_reason, FlowJson, FlowPipeline};
use netanalyzer_examples::pace::Paced;
use netanalyzer_ml::alert::{AlertConfig, AlertStats};
use netanalyzer_ml::flow::{FlowConfig, FlowStats};
use netanalyzer_ml::model::{default_model, Model};
use netanalyzer_store::transport::{HttpSink, HttpSinkConfig, SpoolFullPolicy, TransportStats};
use netanalyzer_store::wire::{Compression, SensorStats};
use netanalyzer_store::{CsvOptions, Output, OutputSpec, StoreError, Tee};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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

With --realtime (or --replay-speed X) a capture file is replayed as it was
captured: packet p is handed on at first_wall + (p.ts - first.ts) / X,
sleeping in between (packets whose time has passed go at once, so the
replay catches up after a stall); batches are still sent every --batch-ms.
The demo (netanalyzer-demo) replays its generated scenario this way.

With --aggregate, the records also go (in batches, through a bounded queue)
to a thread that runs the flow table and the classifier (--model, default:
the model built into netanalyzer). -o flows-jsonl:PATH writes one JSON
object per flow record, --alerts jsonl:PATH one JSON object per alert update
(see docs/alerts.md). Flows are ended by packet time; at the end of input or
on Ctrl-C the open flows are ended too (end_reason \"end\"). --aggregate
writes no packet records unless an -o packet output is given.

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

    /// Replay a capture file at the speed it was captured: each packet is
    /// handed on when its timestamp, relative to the first packet's, is
    /// due (same as --replay-speed 1).
    #[arg(long, env = "NETANALYZER_REALTIME")]
    realtime: bool,

    /// Replay a capture file paced by its timestamps at this speed (2 =
    /// twice as fast as captured, 0.5 = half as fast); implies --realtime.
    #[arg(
        long,
        value_name = "X",
        env = "NETANALYZER_REPLAY_SPEED",
        value_parser = parse_speed
    )]
    replay_speed: Option<f64>,

    /// Where records go; repeat (or separate with commas) to write several at once.
    /// jsonl:PATH = one JSON object per line into PATH; jsonl:- = to
    /// standard output; csv:DIR = CSV files in DIR, a new file every
    /// --rotate-secs of packet time; null = write nothing;
    /// flows-jsonl:PATH (or flows-jsonl:-) = one JSON object per flow
    /// record (needs --aggregate).
    /// [default: jsonl:-, or none with --server or --aggregate]
    #[arg(
        short = 'o',
        long,
        value_name = "KIND:TARGET",
        env = "NETANALYZER_OUTPUT",
        value_delimiter = ','
    )]
    output: Vec<OutArg>,

    /// Run the flow table and the classifier on the records (in-process,
    /// on a thread of its own): labelled flows for -o flows-jsonl:PATH,
    /// alerts for --alerts, counts in the summary.
    #[arg(long, env = "NETANALYZER_AGGREGATE")]
    aggregate: bool,

    /// The model file that labels flows (from `netanalyzer-ml train`)
    /// [default: the model built into netanalyzer].
    #[arg(
        long,
        value_name = "PATH",
        env = "NETANALYZER_MODEL",
        requires = "aggregate"
    )]
    model: Option<PathBuf>,

    /// Where alert updates go: jsonl:PATH (or jsonl:- for standard
    /// output), one JSON object per new or changed alert.
    #[arg(
        long,
        value_name = "jsonl:PATH",
        env = "NETANALYZER_ALERTS",
        requires = "aggregate",
        value_parser = parse_alerts
    )]
    alerts: Option<PathBuf>,

    /// Most flows held open at once (the flow table's memory cap); a full
    /// table evicts (and emits) a flow per new one.
    #[arg(
        long,
        value_name = "N",
        env = "NETANALYZER_MAX_FLOWS",
        default_value_t = 1_000_000,
        requires = "aggregate",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    max_flows: u64,

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

/// One `-o` value: a packet record output or the flow output.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OutArg {
    /// Packet records (`jsonl:`, `csv:`, `null`).
    Packets(OutputSpec),
    /// Flow records as JSON Lines (`flows-jsonl:PATH`, `-` = standard output).
    Flows(PathBuf),
}

impl FromStr for OutArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(path) = s.strip_prefix("flows-jsonl:") {
            if path.is_empty() {
                return Err(
                    "expected flows-jsonl:PATH or flows-jsonl:- for standard output".into(),
                );
            }
            return Ok(OutArg::Flows(path.into()));
        }
        if s == "flows-jsonl" {
            return Err("expected flows-jsonl:PATH or flows-jsonl:- for standard output".into());
        }
        s.parse::<OutputSpec>()
            .map(OutArg::Packets)
            .map_err(|e| match e {
                StoreError::InvalidSpec { reason, .. }
                    if !s.contains(':') || !s.starts_with("jsonl:") && !s.starts_with("csv:") =>
                {
                    format!("{reason}, or flows-jsonl:PATH (with --aggregate)")
                }
                other => other.to_string(),
            })
    }
}

impl std::fmt::Display for OutArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutArg::Packets(p) => p.fmt(f),
            OutArg::Flows(p) => write!(f, "flows-jsonl:{}", p.display()),
        }
    }
}

/// `--alerts`: `jsonl:PATH` or `jsonl:-`.
fn parse_alerts(s: &str) -> std::result::Result<PathBuf, String> {
    match s.strip_prefix("jsonl:") {
        Some(p) if !p.is_empty() => Ok(p.into()),
        _ => Err("expected jsonl:PATH, or jsonl:- for standard output".into()),
    }
}

/// `--replay-speed`: a positive finite factor.
fn parse_speed(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "expected a positive number like 1, 2 or 0.5, got {s:?}"
        )),
    }
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
    let cli = match netanalyzer_examples::parse_cli::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
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
    if cli.read.is_none() && (cli.realtime || cli.replay_speed.is_some()) {
        use clap::{error::ErrorKind, CommandFactory};
        let e = Cli::command().error(
            ErrorKind::ArgumentConflict,
            "--realtime and --replay-speed pace a capture file (--read) only",
        );
        let _ = e.print();
        return ExitCode::from(2);
    }
    if !cli.aggregate && cli.output.iter().any(|o| matches!(o, OutArg::Flows(_))) {
        use clap::{error::ErrorKind, CommandFactory};
        let e = Cli::command().error(
            ErrorKind::MissingRequiredArgument,
            "-o flows-jsonl:PATH needs --aggregate (flows are made by the flow table)",
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

/// The input: a file (paced with --realtime) or live interfaces, behind
/// one `Source`. One per process: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Input {
    File(Paced<FileSource>),
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

/// One destination of the records: a local output, the ingest server or
/// the flow aggregation thread.
enum Dest {
    Local(Output),
    Server(Box<ServerSink>),
    Aggregate(Box<AggSink>),
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
            Dest::Aggregate(a) => a.write(record),
        }
    }

    fn tick(&mut self) -> Result<(), StoreError> {
        match self {
            Dest::Local(o) => o.tick(),
            Dest::Server(s) => {
                s.pick_up();
                s.sink.tick()
            }
            Dest::Aggregate(a) => a.tick(),
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match self {
            Dest::Local(o) => o.flush(),
            Dest::Server(s) => s.sink.flush(),
            Dest::Aggregate(_) => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), StoreError> {
        match self {
            Dest::Local(o) => o.close(),
            Dest::Server(s) => {
                s.pick_up();
                s.sink.close()
            }
            Dest::Aggregate(a) => a.close(),
        }
    }
}

/// Records per batch handed to the aggregation thread.
const AGG_BATCH: usize = 1024;
/// Batches queued for the aggregation thread at most (the bound that makes
/// capture wait, or a live capture drop in the kernel, when it falls behind).
const AGG_QUEUE: usize = 64;
/// A live capture hands a partial batch over after this long.
const AGG_LINGER: Duration = Duration::from_millis(200);
/// Alert updates are taken (written) at most once per this much packet time.
const ALERT_EVERY_NS: u64 = 1_000_000_000;

/// What the capture thread sends the aggregation thread.
enum AggMsg {
    /// The first `n` records of the batch.
    Batch(Vec<PacketRecord>, usize),
    /// A live source was idle: end flows by the time that passed.
    Idle(Instant),
}

/// What the aggregation thread did.
struct AggReport {
    model_version: String,
    flow_stats: FlowStats,
    alert_stats: AlertStats,
    predictions: Vec<(String, u64)>,
    flow_lines: u64,
    alert_lines: u64,
    /// Time spent classifying and writing (the thread's busy time).
    busy: Duration,
}

/// Where the aggregation thread writes: flows and alert updates.
struct AggOutputs {
    flows: Option<(PathBuf, Box<dyn Write + Send>)>,
    alerts: Option<(PathBuf, Box<dyn Write + Send>)>,
}

/// The capture side of `--aggregate`: batches records (copied into
/// recycled buffers, so nothing is allocated per packet) and sends them
/// to the aggregation thread over a bounded queue.
struct AggSink {
    tx: Option<Sender<AggMsg>>,
    recycled: Receiver<Vec<PacketRecord>>,
    batch: Vec<PacketRecord>,
    n: usize,
    /// Live capture: hand partial batches over after [`AGG_LINGER`].
    live: bool,
    batch_started: Instant,
    worker: Option<JoinHandle<std::result::Result<AggReport, StoreError>>>,
    report: Option<AggReport>,
    /// How long capture waited on a full queue, and how often.
    stalled: Duration,
    stalls: u64,
}

impl AggSink {
    fn start(pipeline: FlowPipeline, outputs: AggOutputs, live: bool) -> Result<AggSink> {
        let (tx, rx) = crossbeam_channel::bounded::<AggMsg>(AGG_QUEUE);
        let (recycle_tx, recycled) = crossbeam_channel::bounded(AGG_QUEUE + 2);
        let worker = std::thread::Builder::new()
            .name("aggregate".into())
            .spawn(move || aggregate_thread(pipeline, outputs, &rx, &recycle_tx))
            .context("cannot start the aggregation thread")?;
        Ok(AggSink {
            tx: Some(tx),
            recycled,
            batch: vec![PacketRecord::default(); AGG_BATCH],
            n: 0,
            live,
            batch_started: Instant::now(),
            worker: Some(worker),
            report: None,
            stalled: Duration::ZERO,
            stalls: 0,
        })
    }

    fn write(&mut self, record: &PacketRecord) -> std::result::Result<Control, StoreError> {
        self.batch[self.n].clone_from(record);
        self.n += 1;
        if self.n == AGG_BATCH
            || (self.live && self.n % 64 == 1 && self.batch_started.elapsed() >= AGG_LINGER)
        {
            self.send_batch()?;
        }
        Ok(Control::Continue)
    }

    fn tick(&mut self) -> std::result::Result<(), StoreError> {
        if self.n > 0 {
            self.send_batch()?;
        }
        self.send(AggMsg::Idle(Instant::now()))
    }

    fn send_batch(&mut self) -> std::result::Result<(), StoreError> {
        let next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| vec![PacketRecord::default(); AGG_BATCH]);
        let full = std::mem::replace(&mut self.batch, next);
        let n = std::mem::take(&mut self.n);
        self.batch_started = Instant::now();
        self.send(AggMsg::Batch(full, n))
    }

    fn send(&mut self, msg: AggMsg) -> std::result::Result<(), StoreError> {
        let Some(tx) = &self.tx else {
            return Err(self.failed());
        };
        let msg = match tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(m)) => m,
            Err(TrySendError::Disconnected(_)) => return Err(self.failed()),
        };
        let t0 = Instant::now();
        let sent = tx.send(msg).is_ok();
        self.stalled += t0.elapsed();
        self.stalls += 1;
        if sent {
            Ok(())
        } else {
            Err(self.failed())
        }
    }

    /// The thread stopped early: its error.
    fn failed(&mut self) -> StoreError {
        self.tx = None;
        match self.join() {
            Err(e) => e,
            Ok(()) => StoreError::Write {
                path: PathBuf::from("aggregate"),
                source: std::io::Error::other("the aggregation thread stopped"),
            },
        }
    }

    fn join(&mut self) -> std::result::Result<(), StoreError> {
        let Some(worker) = self.worker.take() else {
            return Ok(());
        };
        match worker.join() {
            Ok(Ok(report)) => {
                self.report = Some(report);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Write {
                path: PathBuf::from("aggregate"),
                source: std::io::Error::other("the aggregation thread panicked"),
            }),
        }
    }

    /// Hands over the last records, ends every open flow and waits for
    /// the thread to write them.
    fn close(&mut self) -> std::result::Result<(), StoreError> {
        if self.tx.is_some() && self.n > 0 {
            self.send_batch()?;
        }
        self.tx = None;
        self.join()
    }
}

/// The aggregation thread: records in, flows and alert updates out.
fn aggregate_thread(
    mut pipeline: FlowPipeline,
    mut outputs: AggOutputs,
    rx: &Receiver<AggMsg>,
    recycle: &Sender<Vec<PacketRecord>>,
) -> std::result::Result<AggReport, StoreError> {
    let mut flows: Vec<FlowRecord> = Vec::with_capacity(256);
    let mut alerts: Vec<Alert> = Vec::new();
    let mut lines = (0u64, 0u64);
    let mut busy = Duration::ZERO;
    let mut next_alerts_ns = 0u64;
    // Packet time and wall time of the last batch, to map idle time of a
    // live capture onto packet time.
    let mut last_batch = Instant::now();
    for msg in rx {
        let t0 = Instant::now();
        match msg {
            AggMsg::Batch(batch, n) => {
                for r in &batch[..n] {
                    pipeline.ingest(r, &mut flows);
                    // Alert updates by packet time, so a replay takes
                    // them at the same packets whatever the batching.
                    let now = pipeline.now().as_nanos();
                    if now >= next_alerts_ns {
                        next_alerts_ns = now.saturating_add(ALERT_EVERY_NS);
                        write_flows(&mut outputs, &mut flows, &pipeline, &mut lines.0)?;
                        pipeline.take_alerts(&mut alerts);
                        write_alerts(&mut outputs, &mut alerts, &mut lines.1)?;
                    }
                }
                write_flows(&mut outputs, &mut flows, &pipeline, &mut lines.0)?;
                let _ = recycle.try_send(batch);
                last_batch = t0;
            }
            AggMsg::Idle(at) => {
                let idle = at.saturating_duration_since(last_batch);
                let now = pipeline.now();
                if now.as_nanos() > 0 {
                    let ns = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
                    pipeline.expire(
                        Timestamp::from_nanos(now.as_nanos().saturating_add(ns)),
                        &mut flows,
                    );
                }
                write_flows(&mut outputs, &mut flows, &pipeline, &mut lines.0)?;
                pipeline.take_alerts(&mut alerts);
                write_alerts(&mut outputs, &mut alerts, &mut lines.1)?;
                flush_outputs(&mut outputs)?;
            }
        }
        busy += t0.elapsed();
    }
    // The capture side closed the queue: end of input or Ctrl-C.
    let t0 = Instant::now();
    pipeline.drain(&mut flows);
    write_flows(&mut outputs, &mut flows, &pipeline, &mut lines.0)?;
    pipeline.take_alerts(&mut alerts);
    write_alerts(&mut outputs, &mut alerts, &mut lines.1)?;
    flush_outputs(&mut outputs)?;
    busy += t0.elapsed();
    Ok(AggReport {
        model_version: pipeline.model_version().to_owned(),
        flow_stats: pipeline.flow_stats(),
        alert_stats: pipeline.alert_stats(),
        predictions: pipeline
            .predictions()
            .map(|(c, n)| (c.to_owned(), n))
            .collect(),
        flow_lines: lines.0,
        alert_lines: lines.1,
        busy,
    })
}

fn write_flows(
    outputs: &mut AggOutputs,
    flows: &mut Vec<FlowRecord>,
    pipeline: &FlowPipeline,
    lines: &mut u64,
) -> std::result::Result<(), StoreError> {
    if let Some((path, w)) = &mut outputs.flows {
        for flow in flows.iter() {
            let line = FlowJson {
                flow,
                model_version: pipeline.model_version(),
            };
            serde_json::to_writer(&mut *w, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|source| StoreError::Write {
                    path: path.clone(),
                    source,
                })?;
            *lines += 1;
        }
    }
    flows.clear();
    Ok(())
}

fn write_alerts(
    outputs: &mut AggOutputs,
    alerts: &mut Vec<Alert>,
    lines: &mut u64,
) -> std::result::Result<(), StoreError> {
    if let Some((path, w)) = &mut outputs.alerts {
        for a in alerts.iter() {
            serde_json::to_writer(&mut *w, a)
                .map_err(std::io::Error::from)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|source| StoreError::Write {
                    path: path.clone(),
                    source,
                })?;
            *lines += 1;
        }
        if !alerts.is_empty() {
            // Alerts are rare and wanted at once.
            w.flush().map_err(|source| StoreError::Write {
                path: path.clone(),
                source,
            })?;
        }
    }
    alerts.clear();
    Ok(())
}

fn flush_outputs(outputs: &mut AggOutputs) -> std::result::Result<(), StoreError> {
    for (path, w) in outputs.flows.iter_mut().chain(outputs.alerts.iter_mut()) {
        w.flush().map_err(|source| StoreError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A buffered writer to the file at `path`, or to standard output for `-`.
fn open_writer(path: &Path) -> Result<Box<dyn Write + Send>> {
    let inner: Box<dyn Write + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?,
        )
    };
    Ok(Box::new(std::io::BufWriter::with_capacity(
        64 * 1024,
        inner,
    )))
}

/// Loads the model, builds the pipeline and starts the aggregation thread.
fn open_aggregate(cli: &Cli) -> Result<Dest> {
    let (model, what) = match &cli.model {
        Some(path) => (
            Model::load(path).with_context(|| format!("cannot load model {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            default_model().context("the built-in default model is broken")?,
            "the built-in default model".to_owned(),
        ),
    };
    let cfg = FlowConfig {
        max_flows: usize::try_from(cli.max_flows).unwrap_or(usize::MAX),
        ..FlowConfig::default()
    };
    let version = model.version().to_owned();
    let pipeline = FlowPipeline::new(cfg, model, AlertConfig::default())
        .with_context(|| format!("cannot use {what}: it does not fit this flow table"))?;
    let flows = cli.output.iter().find_map(|o| match o {
        OutArg::Flows(p) => Some(p.clone()),
        OutArg::Packets(_) => None,
    });
    let outputs = AggOutputs {
        flows: match flows {
            Some(p) => Some((p.clone(), open_writer(&p)?)),
            None => None,
        },
        alerts: match &cli.alerts {
            Some(p) => Some((p.clone(), open_writer(p)?)),
            None => None,
        },
    };
    tracing::info!(model = %what, version = %version, "aggregating flows");
    Ok(Dest::Aggregate(Box::new(AggSink::start(
        pipeline,
        outputs,
        cli.read.is_none() || cli.realtime || cli.replay_speed.is_some(),
    )?)))
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

    // With --server and no -o, the server is the only output; with
    // --aggregate and no packet output, only flows and alerts are written.
    let specs: Vec<OutputSpec> = if cli.output.is_empty() && cli.server.is_none() && !cli.aggregate
    {
        vec![OutputSpec::Jsonl("-".into())]
    } else {
        cli.output
            .iter()
            .filter_map(|o| match o {
                OutArg::Packets(p) => Some(p.clone()),
                OutArg::Flows(_) => None,
            })
            .collect()
    };
    let flow_outputs: Vec<&PathBuf> = cli
        .output
        .iter()
        .filter_map(|o| match o {
            OutArg::Flows(p) => Some(p),
            OutArg::Packets(_) => None,
        })
        .collect();
    if flow_outputs.len() > 1 {
        anyhow::bail!("-o flows-jsonl is given more than once");
    }
    let stdout_users = specs.iter().filter(|s| s.is_stdout()).count()
        + flow_outputs.iter().filter(|p| p.as_os_str() == "-").count()
        + usize::from(cli.alerts.as_ref().is_some_and(|p| p.as_os_str() == "-"));
    if stdout_users > 1 {
        anyhow::bail!("only one output can go to standard output (-)");
    }
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
    if cli.aggregate {
        outputs.push(open_aggregate(cli)?);
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
        Input::File(f) if cli.filter.is_some() => Some(f.inner().filtered()),
        _ => None,
    };
    let transport = sink.sinks().iter().find_map(|d| match d {
        Dest::Server(s) => Some(s.sink.stats()),
        Dest::Local(_) | Dest::Aggregate(_) => None,
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
            Dest::Server(_) | Dest::Aggregate(_) => None,
        })
        .collect();
    let agg = sink.sinks().iter().find_map(|d| match d {
        Dest::Aggregate(a) => Some(&**a),
        Dest::Local(_) | Dest::Server(_) => None,
    });
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
    if let Some(a) = agg {
        eprint!(
            "{}",
            aggregate_summary(a, cli, flow_outputs.first().copied())
        );
    }
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
            let f = f.inner();
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
        let speed = cli.replay_speed.or(cli.realtime.then_some(1.0));
        if let Some(x) = speed {
            tracing::info!(
                speed = x,
                "replaying at capture speed (paced by timestamps)"
            );
        }
        return Ok((
            Input::File(Paced::new(src, speed)),
            path.display().to_string(),
        ));
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
    let len = f.inner().file_len()?;
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

/// The `--aggregate` part of the summary.
fn aggregate_summary(a: &AggSink, cli: &Cli, flows_path: Option<&PathBuf>) -> String {
    let mut s = String::new();
    let Some(r) = &a.report else {
        let _ = writeln!(s, "  aggregate:    did not finish (see the error)");
        return s;
    };
    let f = &r.flow_stats;
    let total: u64 = f.emitted.iter().sum();
    let reasons: Vec<String> = emitted_by_reason(f)
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    let _ = writeln!(s, "  aggregate:    model {}", r.model_version);
    let _ = writeln!(
        s,
        "    flows:      {total} emitted ({})",
        reasons.join(", ")
    );
    let _ = writeln!(
        s,
        "    table:      {} created, peak {} open (cap {}), evicted {} ({} embryonic, {} oldest), {} packets without a flow key",
        f.flows_created,
        f.peak_active,
        cli.max_flows,
        f.evicted_embryonic + f.evicted_oldest,
        f.evicted_embryonic,
        f.evicted_oldest,
        f.unkeyed
    );
    let preds: Vec<String> = r
        .predictions
        .iter()
        .map(|(c, n)| format!("{c}={n}"))
        .collect();
    let _ = writeln!(s, "    predicted:  {}", preds.join(", "));
    let al = &r.alert_stats;
    let sev: Vec<String> = netanalyzer_core::Severity::ALL
        .iter()
        .zip(al.by_severity)
        .map(|(v, n)| format!("{v}={n}"))
        .collect();
    let _ = writeln!(
        s,
        "    alerts:     {} raised ({}), {} updates, {} flows alerted",
        al.raised,
        sev.join(", "),
        al.updates,
        al.flows_alerted
    );
    if let Some(p) = flows_path {
        let _ = writeln!(
            s,
            "    output flows-jsonl:{}: {} records",
            p.display(),
            r.flow_lines
        );
    }
    if let Some(p) = &cli.alerts {
        let _ = writeln!(
            s,
            "    output alerts jsonl:{}: {} records",
            p.display(),
            r.alert_lines
        );
    }
    let _ = writeln!(
        s,
        "    thread:     busy {:.3} s; capture waited {:.3} s for it ({} times)",
        r.busy.as_secs_f64(),
        a.stalled.as_secs_f64(),
        a.stalls
    );
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
