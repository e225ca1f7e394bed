//! `netanalyzer-demo`: the whole system from one command. Starts
//! `netanalyzer-server` on a fresh embedded PostgreSQL, the aggregator
//! and the sniffer (the binaries beside this one), replays a generated
//! attack scenario at capture speed (or captures live with `-i`), prints
//! the dashboard URL and a running summary, and ends with a report of what
//! was logged, aggregated and detected. Run with `--help`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use netanalyzer_examples::demo::{write_pcap, Plan};
use netanalyzer_store::pg::{EmbeddedOptions, EmbeddedPostgres};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const AFTER_HELP: &str = "\
What it does:
  1. starts netanalyzer-server on a fresh embedded PostgreSQL cluster in
     DIR/pgdata (as root: /var/lib/netanalyzer/demo-pgdata when the postgres
     user cannot enter DIR), listening on --listen;
  2. starts netanalyzer-aggregator (continuous, commits every 250 ms) and
     netanalyzer-sniffer (--server, --sensor-id demo, --realtime);
  3. generates the scenario into DIR/demo.pcap, stamped from now + 2 s:
     normal traffic all along, a SYN flood (30,000 packets/s), a port scan
     and a slow HTTP attack (slowloris), and replays it at capture speed;
  4. prints the dashboard URL and, every 2 s, packets/s, packets logged,
     flows active and alerts by class (from /api/stats and /api/alerts);
  5. once the sniffer is done, waits for the aggregator to catch up, stops
     it (it ends the open flows and commits), and prints the report.

Logs of the children: DIR/server.log, DIR/aggregator.log, DIR/sniffer.log.
With -i IF the sniffer captures live on IF until Ctrl-C or --duration.
Ctrl-C once: stop capturing and report; twice: stop everything at once.

Exit status:
  0  every generated packet was logged, no drops, every --expect class raised
  1  error (a child failed: see its log)
  2  usage error
  3  packets were lost (generated != logged, or drops), or an expected alert
     class is missing";

/// Runs the whole system (server, aggregator, sniffer) on a generated
/// attack scenario, live, and reports what was logged and detected.
#[derive(Debug, Parser)]
#[command(name = "netanalyzer-demo", version, after_help = AFTER_HELP)]
struct Cli {
    /// Working directory: the capture, the children's logs, the spool and
    /// (if the postgres user can enter it) the cluster.
    #[arg(
        long,
        value_name = "DIR",
        env = "NETANALYZER_DEMO_DIR",
        default_value = "out/demo"
    )]
    dir: PathBuf,

    /// Address and port of the server (API and dashboard).
    #[arg(
        long,
        value_name = "ADDR:PORT",
        env = "NETANALYZER_DEMO_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    listen: SocketAddr,

    /// Seconds of generated traffic (the built-in scenario); with -i, how
    /// long to capture [default: 75, with -i until Ctrl-C].
    #[arg(long, value_name = "SECS", env = "NETANALYZER_DEMO_DURATION",
          value_parser = parse_positive)]
    duration: Option<f64>,

    /// Multiplies the scenario's packet rates (0.1 for a light run); rates
    /// keep a floor so every attack still looks like one.
    #[arg(long, value_name = "X", env = "NETANALYZER_DEMO_SCALE", default_value_t = 1.0,
          value_parser = parse_positive)]
    scale: f64,

    /// Seed of the generated scenario.
    #[arg(
        long,
        value_name = "N",
        env = "NETANALYZER_DEMO_SEED",
        default_value_t = 1
    )]
    seed: u64,

    /// Replay this capture (at capture speed) instead of the built-in
    /// scenario.
    #[arg(
        long,
        value_name = "FILE",
        env = "NETANALYZER_DEMO_PCAP",
        conflicts_with = "interface"
    )]
    pcap: Option<PathBuf>,

    /// Capture live on this interface instead of replaying (repeat for
    /// several).
    #[arg(
        short = 'i',
        long,
        value_name = "IF",
        env = "NETANALYZER_DEMO_INTERFACE",
        value_delimiter = ','
    )]
    interface: Vec<String>,

    /// Alert classes that must be raised, comma-separated ("" for none)
    /// [default: DDoS,PortScan,DoS for the built-in scenario, none otherwise].
    #[arg(long, value_name = "CLASSES", env = "NETANALYZER_DEMO_EXPECT")]
    expect: Option<String>,

    /// Print the final report as one JSON object on standard output (the
    /// rest goes to standard error).
    #[arg(long, env = "NETANALYZER_DEMO_JSON")]
    json: bool,

    /// Leave the server (and the dashboard) running after the report,
    /// until Ctrl-C.
    #[arg(long, env = "NETANALYZER_DEMO_KEEP_RUNNING")]
    keep_running: bool,

    /// The aggregator's --commit-ms: how soon flows and alerts are visible.
    #[arg(
        long,
        value_name = "MS",
        env = "NETANALYZER_DEMO_COMMIT_MS",
        default_value_t = 250
    )]
    commit_ms: u64,

    /// An extra argument for the sniffer (repeat for several), e.g.
    /// --sniffer-arg=--batch-size --sniffer-arg=5000.
    #[arg(
        long,
        value_name = "ARG",
        env = "NETANALYZER_DEMO_SNIFFER_ARG",
        allow_hyphen_values = true
    )]
    sniffer_arg: Vec<String>,
}

fn parse_positive(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("expected a positive number, got {s:?}")),
    }
}

/// Ctrl-C / SIGTERM presses so far.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

fn interrupted() -> bool {
    SIGNALS.load(Ordering::Relaxed) > 0
}

fn aborted() -> bool {
    SIGNALS.load(Ordering::Relaxed) > 1
}

fn main() -> ExitCode {
    let cli = match netanalyzer_examples::parse_cli::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // Our own progress is plain text; library logs only when asked for.
    if std::env::var_os("RUST_LOG").is_some() {
        netanalyzer_examples::init_logging();
    }
    if let Err(e) = ctrlc::set_handler(|| {
        SIGNALS.fetch_add(1, Ordering::SeqCst);
    }) {
        eprintln!("netanalyzer-demo: cannot install the Ctrl-C handler: {e}");
    }
    let mut children = Children::default();
    let result = run(&cli, &mut children);
    children.stop_all();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netanalyzer-demo: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------
// Child processes

/// A child process with its log file.
struct Child {
    name: &'static str,
    proc: std::process::Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Child {
    fn spawn(name: &'static str, bin: &Path, args: &[String], log: &Path) -> Result<Child> {
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(bin);
        // The children read NETANALYZER_* variables too: keep the demo's
        // own settings (and a DATABASE_URL) away from them.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("NETANALYZER_") || k == "DATABASE_URL" {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Own process group: Ctrl-C reaches the demo only, which stops
            // the children in order.
            .process_group(0);
        let proc = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Child {
            name,
            proc,
            log: log.to_path_buf(),
            status: None,
        })
    }

    /// The exit status once it has exited.
    fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.proc.try_wait().ok().flatten();
        }
        self.status
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args(["-s", sig, &self.proc.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Sends `sig` and waits up to `grace` for the exit, then kills.
    fn stop(&mut self, sig: &str, grace: Duration) -> Option<ExitStatus> {
        if self.poll().is_some() {
            return self.status;
        }
        self.signal(sig);
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            if self.poll().is_some() {
                return self.status;
            }
            if aborted() && t0.elapsed() > Duration::from_secs(2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.proc.kill();
        self.status = self.proc.wait().ok();
        self.status
    }

    /// "NAME exited with STATUS; see LOG" and the log's last lines.
    fn failure(&self, what: &str) -> anyhow::Error {
        let status = self.status.map_or_else(
            || "is still running".to_owned(),
            |s| format!("exited ({s})"),
        );
        anyhow::anyhow!(
            "{} {what}: it {status}; see {}{}",
            self.name,
            self.log.display(),
            tail(&self.log, 8)
        )
    }
}

/// The last `n` lines of a log, indented, for an error message.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut s = String::new();
    for l in &lines[lines.len().saturating_sub(n)..] {
        let _ = write!(s, "\n    {l}");
    }
    s
}

/// Every child started, stopped in reverse order on the way out.
#[derive(Default)]
struct Children {
    list: Vec<Child>,
}

impl Children {
    fn add(&mut self, c: Child) -> usize {
        self.list.push(c);
        self.list.len() - 1
    }

    fn get(&mut self, i: usize) -> &mut Child {
        &mut self.list[i]
    }

    fn stop_all(&mut self) {
        while let Some(mut c) = self.list.pop() {
            if c.poll().is_none() {
                c.stop("TERM", Duration::from_secs(30));
            }
        }
    }
}

// ---------------------------------------------------------------------
// The run

/// Where things are.
struct Layout {
    dir: PathBuf,
    pgdata: PathBuf,
    bin_dir: PathBuf,
}

fn sibling(bin_dir: &Path, name: &str) -> Result<PathBuf> {
    let p = bin_dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        bail!(
            "{name} is not beside netanalyzer-demo in {} (build them all: cargo build --release -p netanalyzer-examples --bins)",
            bin_dir.display()
        )
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The cluster's directory: DIR/pgdata, or as root, when the `postgres`
/// user cannot enter DIR, /var/lib/netanalyzer/demo-pgdata.
fn pick_pgdata(dir: &Path) -> PathBuf {
    let inside = dir.join("pgdata");
    if !is_root() {
        return inside;
    }
    let ok = Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        inside
    } else {
        PathBuf::from("/var/lib/netanalyzer/demo-pgdata")
    }
}

/// Refuses to wipe a cluster a postmaster still runs on.
fn fresh_dir(pgdata: &Path) -> Result<()> {
    if let Ok(pid) = std::fs::read_to_string(pgdata.join("postmaster.pid")) {
        let pid = pid.lines().next().unwrap_or("").trim().to_owned();
        if !pid.is_empty() && Path::new("/proc").join(&pid).exists() {
            bail!(
                "a PostgreSQL (pid {pid}) still runs on {}: is another demo running (--keep-running)? Stop it first",
                pgdata.display()
            );
        }
    }
    if pgdata.exists() {
        std::fs::remove_dir_all(pgdata)
            .with_context(|| format!("cannot remove the old cluster {}", pgdata.display()))?;
    }
    Ok(())
}

/// What is replayed or captured.
enum Input {
    Scenario(Plan),
    Pcap(PathBuf),
    Live(Vec<String>),
}

fn run(cli: &Cli, children: &mut Children) -> Result<ExitCode> {
    let started = Instant::now();
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let bin_dir = exe
        .parent()
        .context("my executable has no directory")?
        .to_path_buf();
    let server_bin = sibling(&bin_dir, "netanalyzer-server")?;
    let agg_bin = sibling(&bin_dir, "netanalyzer-aggregator")?;
    let sniffer_bin = sibling(&bin_dir, "netanalyzer-sniffer")?;
    std::fs::create_dir_all(&cli.dir)
        .with_context(|| format!("cannot create {}", cli.dir.display()))?;
    let dir = cli.dir.canonicalize()?;
    let lay = Layout {
        pgdata: pick_pgdata(&dir),
        dir,
        bin_dir,
    };
    fresh_dir(&lay.pgdata)?;
    let _ = std::fs::remove_dir_all(lay.dir.join("spool"));

    let input = if !cli.interface.is_empty() {
        Input::Live(cli.interface.clone())
    } else if let Some(p) = &cli.pcap {
        Input::Pcap(
            p.canonicalize()
                .with_context(|| format!("cannot read {}", p.display()))?,
        )
    } else {
        Input::Scenario(Plan::builtin(
            cli.duration.unwrap_or(75.0),
            cli.scale,
            cli.seed,
        ))
    };
    let expect: Vec<String> = match (&cli.expect, &input) {
        (Some(list), _) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, Input::Scenario(_)) => vec!["DDoS".into(), "PortScan".into(), "DoS".into()],
        (None, _) => Vec::new(),
    };

    // 1. The server on a fresh cluster.
    say(
        cli,
        &format!(
            "netanalyzer-demo: starting netanalyzer-server (PostgreSQL in {}; binaries from {})",
            lay.pgdata.display(),
            lay.bin_dir.display()
        ),
    );
    let server_log = lay.dir.join("server.log");
    let server = children.add(Child::spawn(
        "netanalyzer-server",
        &server_bin,
        &[
            "--listen".into(),
            cli.listen.to_string(),
            "--data-dir".into(),
            lay.pgdata.display().to_string(),
        ],
        &server_log,
    )?);
    let url = wait_listening(children.get(server))?;
    let conninfo = EmbeddedPostgres::start(EmbeddedOptions {
        data_dir: lay.pgdata.clone(),
        durable: true,
    })
    .context("cannot reach the server's PostgreSQL")?
    .detach();
    let mut db = postgres::Client::connect(&conninfo, postgres::NoTls)
        .with_context(|| format!("cannot connect to {conninfo}"))?;

    // 2. The aggregator, continuous.
    let agg = children.add(Child::spawn(
        "netanalyzer-aggregator",
        &agg_bin,
        &[
            "--data-dir".into(),
            lay.pgdata.display().to_string(),
            "--metrics-listen".into(),
            "127.0.0.1:0".into(),
            "--commit-ms".into(),
            cli.commit_ms.to_string(),
        ],
        &lay.dir.join("aggregator.log"),
    )?);

    // 3. The input, then the sniffer.
    let mut generated: Option<u64> = None;
    let mut phases = Vec::new();
    let mut sniff: Vec<String> = vec![
        "--server".into(),
        url.clone(),
        "--sensor-id".into(),
        "demo".into(),
        "--spool-dir".into(),
        lay.dir.join("spool").display().to_string(),
        "--batch-ms".into(),
        "250".into(),
    ];
    let mut start_at: Option<SystemTime> = None;
    match &input {
        Input::Scenario(plan) => {
            let t0 = SystemTime::now() + Duration::from_secs(2);
            let ts0 = u64::try_from(t0.duration_since(UNIX_EPOCH)?.as_nanos())?;
            let path = lay.dir.join("demo.pcap");
            let file =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let made = write_pcap(plan, ts0, file).context("generating the scenario")?;
            say(
                cli,
                &format!(
                    "netanalyzer-demo: generated {} packets ({:.0} s) into {}",
                    made.packets,
                    plan.secs(),
                    path.display()
                ),
            );
            for (p, n) in plan.phases.iter().zip(&made.per_phase) {
                say(
                    cli,
                    &format!(
                        "  {:<10} {:>5.1} s to {:>5.1} s  {:>8.0} packets/s  {:>8} packets",
                        p.scenario.name(),
                        p.start_secs,
                        p.start_secs + p.secs,
                        p.pps,
                        n
                    ),
                );
                phases.push(PhaseReport {
                    scenario: p.scenario.name(),
                    start_secs: p.start_secs,
                    end_secs: p.start_secs + p.secs,
                    pps: p.pps,
                    packets: *n,
                });
            }
            generated = Some(made.packets);
            sniff.extend(["-r".into(), path.display().to_string(), "--realtime".into()]);
            start_at = Some(t0);
        }
        Input::Pcap(p) => {
            generated = Some(count_frames(p)?);
            sniff.extend(["-r".into(), p.display().to_string(), "--realtime".into()]);
        }
        Input::Live(ifs) => {
            sniff.extend(["-i".into(), ifs.join(",")]);
        }
    }
    sniff.extend(cli.sniffer_arg.iter().cloned());
    if let Some(t0) = start_at {
        // Start the replay when its first packet is due, so capture time
        // and wall time agree (the dashboard shows "now").
        if let Ok(d) = t0.duration_since(SystemTime::now()) {
            std::thread::sleep(d.saturating_sub(Duration::from_millis(50)));
        }
    }
    let sniffer_log = lay.dir.join("sniffer.log");
    let sniffer = children.add(Child::spawn(
        "netanalyzer-sniffer",
        &sniffer_bin,
        &sniff,
        &sniffer_log,
    )?);

    // 4. The dashboard URL and a running summary.
    say(
        cli,
        &format!("\n  Dashboard: {url}/   (API: {url}/api/stats, {url}/api/alerts)\n"),
    );
    let api = Api::new(&url);
    let run_started = Instant::now();
    let deadline = match (&input, cli.duration) {
        (Input::Live(_), Some(d)) => Some(run_started + Duration::from_secs_f64(d)),
        _ => None,
    };
    let mut seen_alerts = BTreeSet::new();
    let mut next_line = run_started + Duration::from_secs(2);
    let mut stopped_sniffer = false;
    loop {
        if let Some(st) = children.get(sniffer).poll() {
            if !st.success() {
                // Lost records (5) and drain timeouts (3) are reported
                // below; anything else is an error.
                if !matches!(st.code(), Some(3 | 5)) && !stopped_sniffer {
                    return Err(children.get(sniffer).failure("failed"));
                }
            }
            break;
        }
        for (i, what) in [(server, "stopped"), (agg, "stopped")] {
            if children.get(i).poll().is_some() {
                return Err(children.get(i).failure(what));
            }
        }
        let over = deadline.is_some_and(|d| Instant::now() >= d);
        if (interrupted() || over) && !stopped_sniffer {
            say(
                cli,
                "netanalyzer-demo: stopping the sniffer (it sends what it has read)",
            );
            children.get(sniffer).signal("INT");
            stopped_sniffer = true;
        }
        if aborted() {
            bail!("interrupted twice: stopped everything");
        }
        if Instant::now() >= next_line {
            next_line += Duration::from_secs(2);
            let line = running_line(&api, &mut db, run_started, &mut seen_alerts);
            say(cli, &line);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sniffer_status = children.get(sniffer).status;
    let sniffer_summary = SnifferSummary::read(&sniffer_log);
    say(cli, &format!(
        "netanalyzer-demo: the sniffer is done ({} packets read); waiting for the aggregator to catch up",
        sniffer_summary.packets.map_or_else(|| "?".into(), |n| n.to_string())
    ));

    // 5. Aggregator catch-up, stop (drains open flows), report.
    catch_up(cli, &mut db, children.get(agg))?;
    let st = children.get(agg).stop("TERM", Duration::from_secs(120));
    if !st.is_some_and(|s| s.success()) {
        return Err(children.get(agg).failure("did not stop cleanly"));
    }
    let report = build_report(
        &mut db,
        ReportInput {
            mode: match &input {
                Input::Scenario(_) => "scenario",
                Input::Pcap(_) => "pcap",
                Input::Live(_) => "live",
            },
            url: format!("{url}/"),
            dir: lay.dir.display().to_string(),
            generated,
            phases,
            sniffer: sniffer_summary,
            sniffer_exit: sniffer_status.and_then(|s| s.code()),
            expect,
            elapsed: started.elapsed(),
        },
    )?;
    print_report(cli, &report);

    if cli.keep_running && !interrupted() {
        eprintln!(
            "\nnetanalyzer-demo: the server keeps running: {url}/ (Ctrl-C stops it; logs in {})",
            lay.dir.display()
        );
        while !interrupted() {
            if children.get(server).poll().is_some() {
                return Err(children.get(server).failure("stopped"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let st = children.get(server).stop("TERM", Duration::from_secs(60));
    if !st.is_some_and(|s| s.success()) {
        eprintln!(
            "netanalyzer-demo: warning: netanalyzer-server did not stop cleanly; see {}",
            server_log.display()
        );
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Human text: standard error.
fn say(_cli: &Cli, s: &str) {
    eprintln!("{s}");
}

/// Waits for "listening on http://ADDR" in the server's log.
fn wait_listening(server: &mut Child) -> Result<String> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if let Ok(text) = std::fs::read_to_string(&server.log) {
            if let Some(rest) = text.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("");
                return Ok(format!("http://{addr}"));
            }
        }
        if server.poll().is_some() {
            return Err(server.failure("did not start"));
        }
        if interrupted() {
            bail!("interrupted while the server was starting");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(server.failure("did not listen within 120 s"))
}

/// Frames in a capture file.
fn count_frames(path: &Path) -> Result<u64> {
    let mut src = netanalyzer_capture::FileSource::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut rec = netanalyzer_core::PacketRecord::default();
    use netanalyzer_core::{Source, SourceEvent};
    loop {
        match src.next_into(&mut rec) {
            Ok(SourceEvent::End) => break,
            Ok(_) => {}
            Err(e) => bail!("{}: {e}", path.display()),
        }
    }
    Ok(src.stats().packets)
}

/// Waits until the aggregator has consumed every stored row.
fn catch_up(cli: &Cli, db: &mut postgres::Client, agg: &mut Child) -> Result<()> {
    let t0 = Instant::now();
    let mut last_print = t0;
    loop {
        let row = db.query_one(
            "SELECT coalesce((SELECT sum(records) FROM ingest_batches), 0)::bigint,
                    coalesce((SELECT rows_processed FROM aggregator_state
                               WHERE consumer = 'default'), 0)::bigint",
            &[],
        )?;
        let (stored, done): (i64, i64) = (row.get(0), row.get(1));
        if done >= stored {
            return Ok(());
        }
        if agg.poll().is_some() {
            return Err(agg.failure("stopped before catching up"));
        }
        if aborted() || (interrupted() && t0.elapsed() > Duration::from_secs(30)) {
            bail!("interrupted while the aggregator was catching up ({done} of {stored} rows)");
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            say(cli, &format!("  aggregator: {done} of {stored} rows"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------
// The running summary

/// The dashboard API on the demo's server.
struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .into(),
            base: base.to_owned(),
        }
    }

    fn get(&self, path: &str) -> std::result::Result<Value, String> {
        let mut resp = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|e| e.to_string())?;
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

/// One line of the running summary, plus a line per new alert.
fn running_line(
    api: &Api,
    db: &mut postgres::Client,
    since: Instant,
    seen: &mut BTreeSet<String>,
) -> String {
    let secs = since.elapsed().as_secs();
    let logged = db
        .query_one(
            "SELECT coalesce(sum(records), 0)::bigint FROM ingest_batches",
            &[],
        )
        .map_or(-1, |r| r.get::<_, i64>(0));
    let mut s = format!("[{secs:>4} s] logged {logged:>9}");
    match api.get("/api/stats?window=60") {
        Ok(v) => {
            // The newest complete second: the last point may still fill.
            let series = v["series"].as_array().cloned().unwrap_or_default();
            let pps = series
                .iter()
                .rev()
                .skip(1)
                .find(|p| p["packets"].as_u64().unwrap_or(0) > 0)
                .and_then(|p| p["packets"].as_u64())
                .unwrap_or(0);
            let _ = write!(s, " | {pps:>7} packets/s");
            match v["flows_active"].as_u64() {
                Some(n) => {
                    let _ = write!(s, " | flows active {n:>7}");
                }
                None => s.push_str(" | flows active       -"),
            }
            let classes: Vec<String> = v["alerts_by_class"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            format!(
                                "{} {} ({})",
                                c["class"].as_str().unwrap_or("?"),
                                c["alerts"].as_u64().unwrap_or(0),
                                c["max_severity"].as_str().unwrap_or("?")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = write!(
                s,
                " | alerts: {}",
                if classes.is_empty() {
                    "none".to_owned()
                } else {
                    classes.join(", ")
                }
            );
        }
        Err(e) => {
            let _ = write!(s, " | /api/stats: {e}");
        }
    }
    if let Ok(v) = api.get("/api/alerts?limit=20") {
        let items = v["items"].as_array().cloned().unwrap_or_default();
        for a in items.iter().rev() {
            let id = a["alert_id"].as_str().unwrap_or("").to_owned();
            if id.is_empty() || !seen.insert(id) {
                continue;
            }
            let _ = write!(
                s,
                "\n         ALERT {} {} on {} from {} source(s), {} flows, confidence {:.2}",
                a["severity"].as_str().unwrap_or("?"),
                a["class"].as_str().unwrap_or("?"),
                a["target"].as_str().unwrap_or("?"),
                a["source_count"].as_u64().unwrap_or(0),
                a["flow_count"].as_u64().unwrap_or(0),
                a["confidence"].as_f64().unwrap_or(0.0)
            );
        }
    }
    s
}

// ---------------------------------------------------------------------
// The sniffer's summary

/// What the sniffer's end-of-run summary says (its log).
#[derive(Debug, Default, Clone, Serialize)]
struct SnifferSummary {
    packets: Option<u64>,
    kernel_dropped: Option<u64>,
    spool_dropped: Option<u64>,
    rejected: Option<u64>,
    acknowledged: Option<u64>,
}

impl SnifferSummary {
    fn read(log: &Path) -> SnifferSummary {
        let mut s = SnifferSummary::default();
        let Ok(f) = File::open(log) else { return s };
        let num = |rest: &str| {
            rest.split_whitespace()
                .next()
                .and_then(|w| w.parse::<u64>().ok())
        };
        for line in BufReader::new(f).lines().map_while(std::result::Result::ok) {
            let t = line.trim_start();
            if let Some(r) = t.strip_prefix("packets:") {
                s.packets = num(r);
            } else if let Some(r) = t.strip_prefix("kernel drops:") {
                s.kernel_dropped = num(r);
            } else if let Some(r) = t.strip_prefix("dropped:") {
                s.spool_dropped = num(r);
            } else if let Some(r) = t.strip_prefix("rejected:") {
                s.rejected = num(r);
            } else if let Some(r) = t.strip_prefix("server ") {
                if let Some(a) = r.split(": ").nth(1) {
                    s.acknowledged = num(a);
                }
            }
        }
        s
    }
}

// ---------------------------------------------------------------------
// The report

#[derive(Debug, Serialize)]
struct PhaseReport {
    scenario: &'static str,
    start_secs: f64,
    end_secs: f64,
    pps: f64,
    packets: u64,
}

#[derive(Debug, Serialize)]
struct AlertCount {
    class: String,
    severity: String,
    alerts: i64,
    packets: i64,
}

#[derive(Debug, Serialize)]
struct Drops {
    kernel: u64,
    spool_full: u64,
    rejected: u64,
    /// Reported by the server's `sensors` table, when it has one.
    server_reported: Option<u64>,
    total: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    problems: Vec<String>,
    mode: &'static str,
    dashboard_url: String,
    dir: String,
    generated_packets: Option<u64>,
    phases: Vec<PhaseReport>,
    sniffer_packets: Option<u64>,
    sniffer_acknowledged: Option<u64>,
    sniffer_exit: Option<i32>,
    logged_packets: u64,
    drops: Drops,
    flows: u64,
    packets_in_flows: u64,
    alerts_total: u64,
    alerts_by_class: BTreeMap<String, u64>,
    alerts: Vec<AlertCount>,
    expected_classes: Vec<String>,
    missing_classes: Vec<String>,
    peak_pps_1s: u64,
    peak_pps_10s: f64,
    capture_secs: u64,
    elapsed_secs: f64,
}

struct ReportInput {
    mode: &'static str,
    url: String,
    dir: String,
    generated: Option<u64>,
    phases: Vec<PhaseReport>,
    sniffer: SnifferSummary,
    sniffer_exit: Option<i32>,
    expect: Vec<String>,
    elapsed: Duration,
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn build_report(db: &mut postgres::Client, i: ReportInput) -> Result<Report> {
    let logged = u(db
        .query_one("SELECT count(*) FROM raw_packets", &[])?
        .get::<_, i64>(0));
    let row = db.query_one(
        "SELECT count(*), coalesce(sum(fwd_packets + bwd_packets), 0)::bigint FROM flows",
        &[],
    )?;
    let (flows, in_flows) = (u(row.get(0)), u(row.get(1)));
    let mut alerts = Vec::new();
    let mut by_class = BTreeMap::new();
    for r in db.query(
        "SELECT class, severity, count(*), coalesce(sum(packet_count), 0)::bigint FROM alerts
          GROUP BY 1, 2
          ORDER BY 1, array_position(ARRAY['critical','high','medium','low'], severity::text)",
        &[],
    )? {
        let a = AlertCount {
            class: r.get(0),
            severity: r.get(1),
            alerts: r.get(2),
            packets: r.get(3),
        };
        *by_class.entry(a.class.clone()).or_insert(0) += u(a.alerts);
        alerts.push(a);
    }
    // Packets per capture second, for the peak rate.
    let per_sec: Vec<(i64, i64)> = db
        .query(
            "SELECT extract(epoch FROM date_trunc('second', ts))::bigint, count(*)
               FROM raw_packets GROUP BY 1 ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let peak_1s = per_sec.iter().map(|p| u(p.1)).max().unwrap_or(0);
    let mut peak_10s = 0.0f64;
    for (k, &(s0, _)) in per_sec.iter().enumerate() {
        let sum: i64 = per_sec[k..]
            .iter()
            .take_while(|p| p.0 < s0 + 10)
            .map(|p| p.1)
            .sum();
        peak_10s = peak_10s.max(sum as f64 / 10.0);
    }
    let capture_secs = match (per_sec.first(), per_sec.last()) {
        (Some(a), Some(b)) => u(b.0 - a.0 + 1),
        _ => 0,
    };
    // The sensors table (dashboard rollups), when this server has it.
    let server_reported = db
        .query_opt(
            "SELECT (coalesce(sum(kernel_dropped), 0) + coalesce(sum(dropped_records), 0))::bigint
               FROM sensors",
            &[],
        )
        .ok()
        .flatten()
        .map(|r| u(r.get(0)));
    let s = &i.sniffer;
    let drops = Drops {
        kernel: s.kernel_dropped.unwrap_or(0),
        spool_full: s.spool_dropped.unwrap_or(0),
        rejected: s.rejected.unwrap_or(0),
        server_reported,
        total: s.kernel_dropped.unwrap_or(0)
            + s.spool_dropped.unwrap_or(0)
            + s.rejected.unwrap_or(0),
    };
    let mut problems = Vec::new();
    if let Some(g) = i.generated {
        if g != logged {
            problems.push(format!("{g} packets generated, {logged} logged"));
        }
    }
    if let Some(n) = s.packets.filter(|&n| n != logged) {
        problems.push(format!("the sniffer read {n} packets, {logged} logged"));
    }
    if drops.total > 0 || server_reported.is_some_and(|d| d > 0) {
        problems.push(format!(
            "drops: {} kernel, {} spool full, {} rejected (server reports {})",
            drops.kernel,
            drops.spool_full,
            drops.rejected,
            server_reported.map_or_else(|| "n/a".into(), |d| d.to_string())
        ));
    }
    if let Some(c) = i.sniffer_exit.filter(|&c| c != 0) {
        problems.push(format!("the sniffer exited with status {c}"));
    }
    if s.packets.is_none() {
        problems.push("the sniffer printed no summary".into());
    }
    let missing: Vec<String> = i
        .expect
        .iter()
        .filter(|c| !by_class.contains_key(*c))
        .cloned()
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "expected alert classes missing: {}",
            missing.join(", ")
        ));
    }
    Ok(Report {
        ok: problems.is_empty(),
        problems,
        mode: i.mode,
        dashboard_url: i.url,
        dir: i.dir,
        generated_packets: i.generated,
        phases: i.phases,
        sniffer_packets: s.packets,
        sniffer_acknowledged: s.acknowledged,
        sniffer_exit: i.sniffer_exit,
        logged_packets: logged,
        drops,
        flows,
        packets_in_flows: in_flows,
        alerts_total: by_class.values().sum(),
        alerts_by_class: by_class,
        alerts,
        expected_classes: i.expect,
        missing_classes: missing,
        peak_pps_1s: peak_1s,
        peak_pps_10s: peak_10s,
        capture_secs,
        elapsed_secs: i.elapsed.as_secs_f64(),
    })
}

fn print_report(cli: &Cli, r: &Report) {
    let mut s = String::from("\nnetanalyzer-demo report\n");
    let opt = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |n| n.to_string());
    let _ = writeln!(s, "  packets generated:   {}", opt(r.generated_packets));
    let _ = writeln!(s, "  packets read:        {}", opt(r.sniffer_packets));
    let _ = writeln!(
        s,
        "  packets logged:      {} (raw_packets)",
        r.logged_packets
    );
    let _ = writeln!(
        s,
        "  drops:               {} (kernel {}, spool full {}, rejected {})",
        r.drops.total, r.drops.kernel, r.drops.spool_full, r.drops.rejected
    );
    let _ = writeln!(
        s,
        "  flows:               {} holding {} packets",
        r.flows, r.packets_in_flows
    );
    let _ = writeln!(s, "  alerts:              {}", r.alerts_total);
    for a in &r.alerts {
        let _ = writeln!(
            s,
            "    {:<10} {:<9} {:>4} alert(s), {} packets",
            a.class, a.severity, a.alerts, a.packets
        );
    }
    let _ = writeln!(
        s,
        "  peak rate:           {} packets/s (1 s), {:.0} packets/s (10 s average), over {} s of traffic",
        r.peak_pps_1s, r.peak_pps_10s, r.capture_secs
    );
    let _ = writeln!(s, "  elapsed:             {:.1} s", r.elapsed_secs);
    let _ = writeln!(s, "  dashboard:           {}", r.dashboard_url);
    if r.ok {
        let _ = writeln!(
            s,
            "  result:              OK: every packet logged, no drops{}",
            if r.expected_classes.is_empty() {
                String::new()
            } else {
                format!(", alerts {} raised", r.expected_classes.join(", "))
            }
        );
    } else {
        for p in &r.problems {
            let _ = writeln!(s, "  PROBLEM:             {p}");
        }
    }
    eprint!("{s}");
    if cli.json {
        match serde_json::to_string(r) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("netanalyzer-demo: cannot encode the report: {e}"),
        }
    }
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
    fn reads_the_sniffer_summary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        std::fs::write(
            &p,
            "INFO stuff\nnetanalyzer-sniffer summary:\n  packets:      1234\n  kernel drops: n/a (file)\n  server http://127.0.0.1:1: 1234 records acknowledged in 3 batches (0 duplicate), 0 retries\n    spooled:    0 records\n    dropped:    7 records in 1 batches (spool full)\n",
        )
        .unwrap();
        let s = SnifferSummary::read(&p);
        assert_eq!(s.packets, Some(1234));
        assert_eq!(s.kernel_dropped, None);
        assert_eq!(s.spool_dropped, Some(7));
        assert_eq!(s.acknowledged, Some(1234));
    }
}
