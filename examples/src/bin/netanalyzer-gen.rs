//! `netanalyzer-gen`: write a deterministic, seeded pcap of realistic
//! mixed traffic, optionally with attack scenarios, plus a CSV of per-flow
//! ground-truth labels. The logic lives in `netanalyzer_capture::gen`.

use anyhow::{Context, Result};
use clap::Parser;
use netanalyzer_capture::gen::{self, GenConfig, Mix, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const AFTER_HELP: &str = "\
Scenarios: normal, syn-flood, udp-flood, icmp-flood, port-scan, slowloris,
dns-amplification. List several with commas; give each a weight with
NAME:WEIGHT (default 1). With --mix shares (default) every packet picks a
scenario by weight, so all run at once: `--scenario normal:3,syn-flood`
makes about 75% normal and 25% SYN-flood packets. With --mix phases the
packets are split into equal consecutive phases in list order and normal
traffic keeps 25% of each attack phase when `normal` is listed.

Every flag can also be set with an environment variable: NETANALYZER_ and the
long flag in upper case, '-' as '_' (NETANALYZER_PACKETS, NETANALYZER_SCENARIO,
...). A flag on the command line wins. The same flags and seed always give
byte-identical files. Only private and documentation addresses are used.

Exit status: 0 success, 1 error (bad config, cannot write), 2 usage error.";

/// Writes a deterministic pcap of generated traffic and its flow labels.
#[derive(Debug, Parser)]
#[command(name = "netanalyzer-gen", version, after_help = AFTER_HELP)]
struct Cli {
    /// Number of frames to write (exact).
    #[arg(
        short = 'n',
        long,
        default_value_t = 100_000,
        env = "NETANALYZER_PACKETS"
    )]
    packets: u64,

    /// Timestamp rate in packets per second (average).
    #[arg(long, default_value_t = 10_000.0, env = "NETANALYZER_PPS")]
    pps: f64,

    /// Scenarios to mix, e.g. `normal,syn-flood` or `normal:3,port-scan:1`.
    #[arg(long, default_value = "normal", env = "NETANALYZER_SCENARIO")]
    scenario: String,

    /// How scenarios share the packets: `shares` or `phases`.
    #[arg(long, default_value = "shares", env = "NETANALYZER_MIX")]
    mix: String,

    /// PRNG seed.
    #[arg(long, default_value_t = 1, env = "NETANALYZER_SEED")]
    seed: u64,

    /// Output pcap (nanosecond timestamps, Ethernet).
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        default_value = "netanalyzer-gen.pcap",
        env = "NETANALYZER_OUTPUT"
    )]
    output: PathBuf,

    /// Labels CSV [default: OUTPUT with the extension .labels.csv].
    #[arg(long, value_name = "FILE", env = "NETANALYZER_LABELS")]
    labels: Option<PathBuf>,

    /// Timestamp of the first packet in ns since the Unix epoch
    /// [default: 2024-01-01T00:00:00Z].
    #[arg(long, value_name = "NS", env = "NETANALYZER_START_TS")]
    start_ts: Option<u64>,

    /// Fraction of background flows over IPv6.
    #[arg(long, default_value_t = 0.15, env = "NETANALYZER_IPV6_SHARE")]
    ipv6_share: f64,

    /// Fraction of background flows with an 802.1Q VLAN tag.
    #[arg(long, default_value_t = 0.10, env = "NETANALYZER_VLAN_SHARE")]
    vlan_share: f64,

    /// Concurrent background flows interleaved.
    #[arg(long, default_value_t = 64, env = "NETANALYZER_CONCURRENCY")]
    concurrency: usize,
}

fn run(cli: Cli) -> Result<()> {
    let (scenarios, weights): (Vec<Scenario>, Vec<f64>) =
        gen::parse_scenarios(&cli.scenario).context("parsing --scenario")?;
    let mix: Mix = cli.mix.parse().context("parsing --mix")?;
    let defaults = GenConfig::default();
    let cfg = GenConfig {
        packets: cli.packets,
        pps: cli.pps,
        seed: cli.seed,
        start_ts_ns: cli.start_ts.unwrap_or(defaults.start_ts_ns),
        scenarios,
        weights,
        mix,
        ipv6_share: cli.ipv6_share,
        vlan_share: cli.vlan_share,
        concurrency: cli.concurrency,
    };
    let labels = cli
        .labels
        .unwrap_or_else(|| gen::default_labels_path(&cli.output));
    let started = Instant::now();
    let summary = gen::generate_files(&cfg, &cli.output, &labels).with_context(|| {
        format!(
            "generating {} and {}",
            cli.output.display(),
            labels.display()
        )
    })?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} and {} in {:.2} s ({:.0} packets/s)",
        cli.output.display(),
        labels.display(),
        secs,
        summary.packets as f64 / secs.max(1e-9)
    );
    eprint!("{summary}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netanalyzer-gen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
