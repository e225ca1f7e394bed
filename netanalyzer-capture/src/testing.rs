//! Test support for live capture, public so that tests of tools built on
//! this crate (and this workspace's end-to-end tests) share it: a network
//! namespace with veth pairs into it, and `tcpreplay` sending a capture
//! from inside it, so libpcap on the host end sees real packets that stay
//! inside the pair.
//!
//! Needs root, `ip` (iproute2) and `tcpreplay`. The `*_or_skip` and
//! [`privileged`] helpers print why a test skips; under `CI=true` as root a
//! missing tool or a namespace that cannot be made is a failure.
//!
//! ```no_run
//! use netanalyzer_capture::testing::{netns_or_skip, replay_result};
//! # let pcap = std::path::Path::new("traffic.pcap");
//! let Some(ns) = netns_or_skip("my_test", 1) else { return };
//! // ... start capturing on ns.host(0) ...
//! let sent = replay_result(ns.replay(0, pcap, 1000));
//! # let _ = sent;
//! ```

use crate::FileSource;
use netanalyzer_core::{PacketRecord, ParseStats, Source, SourceEvent};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether this runs under CI (`CI=true`), where a test that cannot set
/// up must fail instead of skipping.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The shared capture corpus (`../shared/pcaps` beside the workspace,
/// with its `MANIFEST.tsv`), or `None` after printing why `test` skips.
/// Under `CI=true` a missing corpus is a failure: CI always has it.
pub fn shared_pcaps_or_skip(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps");
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    assert!(!ci(), "CI=true but the corpus {} is missing", dir.display());
    println!(
        "skipping {test}: capture corpus {} not found",
        dir.display()
    );
    None
}

/// Every record of a capture file read with [`FileSource`], its parse
/// counters, and the read error (corrupt file) that ended it early, if
/// any, beside the records read before it.
pub fn read_capture(path: &Path) -> (Vec<PacketRecord>, ParseStats, Option<String>) {
    let mut src = match FileSource::open(path) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), ParseStats::default(), Some(e.to_string())),
    };
    let mut out = Vec::new();
    let mut rec = PacketRecord::default();
    let err = loop {
        match src.next_into(&mut rec) {
            Ok(SourceEvent::Packet) => out.push(rec.clone()),
            Ok(SourceEvent::Idle) => continue,
            Ok(SourceEvent::End) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    (out, src.stats().parse, err)
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2)) // effective uid
            .is_some_and(|uid| uid == "0")
    })
}

/// Whether `tool -V` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether privileged tests can run here; prints the reason when not, and
/// panics under CI as root when a tool is missing (CI installs them).
pub fn privileged(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        println!("skipping {test}: needs root to make network namespaces and open interfaces");
        return false;
    }
    if let Some(t) = tools.iter().find(|t| !have(t)) {
        assert!(
            !ci(),
            "{test}: `{t}` is missing under CI=true (apt-get install iproute2 tcpreplay)"
        );
        println!("skipping {test}: `{t}` is not installed");
        return false;
    }
    true
}

/// Runs a command; its standard output, or a message naming the command
/// and its standard error.
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace with veth pairs into it. Dropping it deletes the
/// links and the namespace, also when the test panics.
pub struct Netns {
    name: String,
    /// `(host end, namespace end)` per pair.
    pairs: Vec<(String, String)>,
}

impl Netns {
    /// Makes `na-test-<pid>-<n>` with `pairs` veth pairs, IPv6 off, all up.
    pub fn create(pairs: usize) -> Result<Netns, String> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut ns = Netns {
            name: format!("na-test-{pid}-{n}"),
            pairs: Vec::new(),
        };
        run(&["ip", "netns", "add", &ns.name])?;
        for k in 0..pairs {
            // Interface names are at most 15 bytes: "na" + pid + "h" + n + k.
            let host = format!("na{pid}h{n}{k}");
            let peer = format!("na{pid}n{n}{k}");
            run(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", &peer,
            ])?;
            ns.pairs.push((host.clone(), peer.clone()));
            run(&["ip", "link", "set", &peer, "netns", &ns.name])?;
            // No router solicitations or MLD reports: the BPF filter would
            // hide them anyway, but a quiet link makes any count exact.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1");
            let _ = ns.exec(&[
                "sh",
                "-c",
                &format!("echo 1 > /proc/sys/net/ipv6/conf/{peer}/disable_ipv6"),
            ]);
            run(&["ip", "link", "set", &host, "up"])?;
            ns.exec(&["ip", "link", "set", &peer, "up"])?;
        }
        Ok(ns)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all)
    }

    /// The host end of pair `k`: the interface to capture on.
    pub fn host(&self, k: usize) -> &str {
        &self.pairs[k].0
    }

    /// Starts `tcpreplay` on the namespace end of pair `k`, sending `file`
    /// at `pps` packets per second.
    pub fn replay(&self, k: usize, file: &Path, pps: u32) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "tcpreplay"])
            .arg(format!("--intf1={}", self.pairs[k].1))
            .arg(format!("--pps={pps}"))
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpreplay")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for (host, _) in &self.pairs {
            // Deleting one end deletes its peer.
            let _ = run(&["ip", "link", "del", host]);
        }
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Makes the namespace or decides to skip (printing why); under CI as root
/// a failure is a failure.
pub fn netns_or_skip(test: &str, pairs: usize) -> Option<Netns> {
    if !privileged(test, &["ip", "tcpreplay"]) {
        return None;
    }
    match Netns::create(pairs) {
        Ok(ns) => Some(ns),
        Err(e) if ci() => panic!("{test}: cannot make the network namespace under CI=true: {e}"),
        Err(e) => {
            println!("skipping {test}: cannot make a network namespace here: {e}");
            None
        }
    }
}

/// Waits for tcpreplay and returns how many packets it says it sent.
pub fn replay_result(child: Child) -> u64 {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcpreplay failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Successful packets:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no packet count in tcpreplay output: {stdout}"))
}
