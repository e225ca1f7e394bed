//! Shared set-up for the end-to-end tests: the real binaries as child
//! processes, and reading back what PostgreSQL stored.
#![allow(dead_code)]

use netanalyzer_core::PacketRecord;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SNIFFER: &str = env!("CARGO_BIN_EXE_netanalyzer-sniffer");
pub const SERVER: &str = env!("CARGO_BIN_EXE_netanalyzer-server");

/// A command for one of our binaries with no NETANALYZER_* variable (nor
/// DATABASE_URL) inherited from the caller.
pub fn command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("NETANALYZER_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// The sniffer, quiet but for warnings and its summary.
pub fn sniffer() -> Command {
    command(SNIFFER)
}

/// Prints a finished command's status and standard error.
pub fn show(out: &Output) {
    eprintln!(
        "status {:?}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `netanalyzer-server`. Its standard error is echoed with a
/// `[server]` prefix. Dropping it stops it gracefully.
pub struct ServerProc {
    child: Option<Child>,
    addr: SocketAddr,
}

impl ServerProc {
    /// Starts the server with `args` (plus `--listen 127.0.0.1:0` unless
    /// given) and waits until it listens.
    pub fn start(args: &[&str]) -> ServerProc {
        let mut cmd = command(SERVER);
        cmd.env("RUST_LOG", "info");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(args).stderr(Stdio::piped()).stdout(Stdio::null());
        let mut child = cmd.spawn().expect("start netanalyzer-server");
        let stderr = child.stderr.take().unwrap();
        let found: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let found2 = Arc::clone(&found);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[server] {line}");
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("");
                    if let Ok(a) = addr.parse() {
                        *found2.lock().unwrap() = Some(a);
                    }
                }
            }
        });
        let t0 = Instant::now();
        loop {
            if let Some(addr) = *found.lock().unwrap() {
                return ServerProc {
                    child: Some(child),
                    addr,
                };
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!("netanalyzer-server exited at start: {st}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "netanalyzer-server did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sum of every series of a metric on `GET /metrics` (0 when absent or
    /// when the server does not answer).
    pub fn metric(&self, name: &str) -> f64 {
        metric(self.addr, name)
    }

    /// SIGKILL: no shutdown, no flush; an embedded postmaster survives.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the graceful exit (status 0).
    pub fn stop(mut self) {
        self.terminate(true);
    }

    fn terminate(&mut self, check: bool) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            if let Some(st) = c.try_wait().unwrap() {
                if check {
                    assert!(st.success(), "server exited with {st} after SIGTERM");
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        assert!(!check, "server did not stop within 60 s of SIGTERM");
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.terminate(false);
    }
}

/// A plain HTTP/1.1 GET on loopback; the body as text.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}

/// Sum of every series of a metric on `GET /metrics` of the endpoint at
/// `addr` (0 when absent or when nothing answers).
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    let Ok(body) = http_get(addr, "/metrics") else {
        return 0.0;
    };
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A TCP port on loopback that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 20 ms; panics after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sniffer running in the background, its standard error in a file.
pub struct BgSniffer {
    pub child: Child,
    pub jsonl: PathBuf,
    pub log: PathBuf,
}

impl BgSniffer {
    /// Waits for the exit (panics after `timeout`); the status and the
    /// standard error.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "sniffer still running after {timeout:?}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&self.log).unwrap_or_default(),
        };
        show(&out);
        out
    }
}

/// Number of spool segment files waiting in `dir`.
pub fn spool_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "nab"))
                .count()
        })
        .unwrap_or(0)
}

/// The first integer on the summary line that starts with `key` (after
/// indentation), e.g. `dropped` in `  dropped: 1234 records ...`.
pub fn summary_number(out: &Output, key: &str) -> u64 {
    let text = String::from_utf8_lossy(&out.stderr);
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix(key) {
            let digits: String = rest
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                return n;
            }
        }
    }
    panic!("no summary line starting with {key:?} in:\n{text}");
}

/// Row counts that prove exactly-once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Rows in raw_packets.
    pub rows: u64,
    /// Rows in ingest_batches.
    pub batches: u64,
    /// Sum of ingest_batches.records.
    pub batch_records: u64,
}

pub fn db_counts(client: &mut postgres::Client) -> Counts {
    let rows: i64 = client
        .query_one("SELECT count(*) FROM raw_packets", &[])
        .unwrap()
        .get(0);
    let r = client
        .query_one(
            "SELECT count(*), coalesce(sum(records), 0)::bigint FROM ingest_batches",
            &[],
        )
        .unwrap();
    let (batches, batch_records): (i64, i64) = (r.get(0), r.get(1));
    Counts {
        rows: rows as u64,
        batches: batches as u64,
        batch_records: batch_records as u64,
    }
}

/// Every row of raw_packets as the record it was made from: the columns
/// turned back into the record's JSON form and parsed, so a lost, added
/// or changed value anywhere shows as a difference.
pub fn stored_records(client: &mut postgres::Client) -> Vec<PacketRecord> {
    const SQL: &str = "SELECT json_build_object(
        'ts_ns', (extract(epoch FROM ts) * 1000000)::bigint * 1000 + ts_ns_rem,
        'iface', iface, 'wire_len', wire_len, 'cap_len', cap_len,
        'eth_src', eth_src::text, 'eth_dst', eth_dst::text,
        'vlan_id', vlan_id, 'ether_type', ether_type, 'ip_version', ip_version,
        'src_ip', host(src_ip), 'dst_ip', host(dst_ip), 'ip_proto', ip_proto,
        'ttl', ttl, 'is_fragment', is_fragment, 'src_port', src_port,
        'dst_port', dst_port, 'tcp_flags', tcp_flags, 'tcp_seq', tcp_seq,
        'tcp_ack', tcp_ack, 'tcp_window', tcp_window, 'payload_len', payload_len,
        'icmp_type', icmp_type, 'icmp_code', icmp_code, 'arp_op', arp_op,
        'dns_qname', dns_qname, 'dns_qtype', dns_qtype,
        'dns_is_response', dns_is_response, 'http_method', http_method,
        'http_host', http_host, 'http_path', http_path, 'tls_sni', tls_sni,
        'protocol', protocol)::text FROM raw_packets";
    client
        .query(SQL, &[])
        .unwrap()
        .iter()
        .map(|row| {
            let text: String = row.get(0);
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("stored row does not parse as a record ({e}): {text}"))
        })
        .collect()
}

/// The records of a `jsonl:` output.
pub fn jsonl_records(path: &Path) -> Vec<PacketRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts two multisets of records are equal, naming the first difference.
pub fn assert_same_records(expected: Vec<PacketRecord>, stored: Vec<PacketRecord>) {
    let key = |v: Vec<PacketRecord>| {
        let mut k: Vec<String> = v
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        k.sort_unstable();
        k
    };
    let (e, s) = (key(expected), key(stored));
    assert_eq!(e.len(), s.len(), "record counts differ");
    if let Some(i) = (0..e.len()).find(|&i| e[i] != s[i]) {
        panic!(
            "records differ (first of the sorted lists):\n sniffer: {}\n  stored: {}",
            e[i], s[i]
        );
    }
}

/// The captures of `../shared/pcaps` with whether MANIFEST.tsv lists a read
/// error for them. `None` (skip) when the folder is missing, which fails
/// under `CI=true`.
pub fn shared_pcaps() -> Option<Vec<(PathBuf, bool)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps");
    let manifest = dir.join("MANIFEST.tsv");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing under CI=true",
            manifest.display()
        );
        eprintln!("skipping: {} is missing", manifest.display());
        return None;
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, err) = (col("file"), col("read_error"));
    Some(
        lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    dir.join(f[file]),
                    !f.get(err).copied().unwrap_or("").is_empty(),
                )
            })
            .collect(),
    )
}

/// Whether a throwaway PostgreSQL can run here (`TestDb::require`, which
/// fails under `CI=true` when it cannot).
pub fn pg_available() -> bool {
    netanalyzer_store::pg::TestDb::require().is_some()
}

/// Runs a command to the end and shows its status and standard error.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run the command");
    show(&out);
    out
}

/// A finished command's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An Ethernet frame (02:..:01 → 02:..:02) carrying an IPv4 packet from
/// 10.0.0.1 to 10.0.0.2 with IP id `id`, protocol `proto` and payload `l4`
/// (the transport header and what follows), with a correct IP checksum.
pub fn eth_ipv4(id: u16, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // dst
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // src
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    let total = u16::try_from(20 + l4.len()).expect("a small packet");
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}
