//! libpcap live capture: [`LiveSource`] over one or more interfaces.
//!
//! # Threading
//!
//! - **One interface** (the common case): no thread and no channel. Each
//!   [`Source::next_into`] call reads the next packet straight from
//!   libpcap's ring buffer and parses it into the caller's record, so the
//!   bytes are copied nowhere and no record is moved. When no packet came
//!   within the poll interval the call returns [`SourceEvent::Idle`].
//! - **Several interfaces**: one capture thread per interface. A reader
//!   per thread is the simplest correct way to wait on several handles
//!   without `unsafe` `poll(2)` on their descriptors, and it puts the
//!   parsing of each interface on its own core. Each thread parses into
//!   an owned [`PacketRecord`] (raw bytes never cross threads) and sends it
//!   with that packet's [`ParseStats`] over one bounded channel, so the
//!   counters the consumer sees match the records it received. When the
//!   channel is full the thread waits: the kernel buffer then fills and
//!   the kernel drops, which [`SourceStats::kernel_dropped`] reports.
//!   Packets of different interfaces are interleaved in arrival order at
//!   the channel, not sorted by timestamp.
//!
//! # Waiting
//!
//! Handles are non-blocking. An empty read sleeps with a backoff from
//! 50 µs up to 2 ms and reads again; a packet resets it. So a quiet
//! interface costs at most ~500 wake-ups a second, a busy one never
//! sleeps, and a packet waits at most 2 ms in the kernel buffer after a
//! quiet spell. Blocking reads cannot be used: libpcap's read timeout
//! does not fire on Linux while no packet arrives (measured with libpcap
//! 1.10: no return within 1.5 s on an idle `lo`, immediate mode or not),
//! so the source could not report `Idle` nor notice a stop; and waking a
//! blocked read with `pcap_breakloop` loses the packet being handed over
//! (measured: 3 of 3000).
//!
//! # Stopping
//!
//! [`LiveSource::stopper`] returns a [`LiveStopper`] that may be moved to a
//! Ctrl-C handler. After [`LiveStopper::stop`] the source delivers what is
//! already queued in the channel, polls the kernel counters a last time
//! and returns [`SourceEvent::End`], within a few milliseconds (one
//! interface) or one poll interval (several).
//!
//! # Kernel counters
//!
//! `pcap_stats` is polled about once per [`LiveConfig::stats_interval`] by
//! whoever reads the handle (the caller's thread or the capture thread),
//! and once more when capture ends. libpcap's 32-bit counters are widened
//! to 64 bits across wrap-around.
use crate::parse::parse_frame;
use crate::{CaptureError, LinkType};
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use netanalyzer_core::{PacketRecord, ParseStats, Source, SourceEvent, SourceStats};
use pcap::{Active, Capture, Precision};
use std::fmt;
use std::fs::OpenOptions;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// First sleep after an empty read.
const MIN_BACKOFF: Duration = Duration::from_micros(50);
/// Longest sleep between reads of a quiet interface.
const MAX_BACKOFF: Duration = Duration::from_millis(2);

/// Settings of a live capture. Every field has a usable default; only
/// [`LiveConfig::interfaces`] must be filled.
///
/// ```
/// use netanalyzer_capture::LiveConfig;
///
/// let cfg = LiveConfig {
///     filter: Some("tcp port 443".into()),
///     ..LiveConfig::new("eth0")
/// };
/// assert_eq!(cfg.interfaces, ["eth0"]);
/// assert_eq!(cfg.snaplen, 262_144);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// Interfaces to capture on, by libpcap name (`eth0`, `any`, `lo`).
    /// One or more; the same name twice is refused. Default: none.
    pub interfaces: Vec<String>,
    /// A BPF filter (tcpdump syntax) applied in the kernel to every
    /// interface. Default: `None`, every packet. Filtering in the kernel is
    /// far cheaper than parsing and discarding.
    pub filter: Option<String>,
    /// Bytes kept of each packet. Default: 262144, libpcap's own maximum,
    /// so whole frames (also jumbo and offloaded ones) are kept and every
    /// application field can be read. Lower it (e.g. 128) to save buffer
    /// space when only headers matter; a cut packet still yields every
    /// field that was captured.
    pub snaplen: u32,
    /// Put the interfaces into promiscuous mode. Default: `true`, a sensor
    /// on a mirror port must see frames addressed to other hosts.
    pub promisc: bool,
    /// Kernel capture buffer per interface, in bytes. Default: 32 MiB
    /// (libpcap's is 2 MB), enough for about a quarter second of a
    /// 1 Gbit/s line, so a short stall of the consumer does not drop.
    pub buffer_size: usize,
    /// libpcap immediate mode: hand over each packet as soon as it arrives
    /// instead of when a buffer block fills or the read timeout expires.
    /// Default: `true`, low latency and exact `Idle` timing; costs more
    /// wake-ups at very high rates.
    pub immediate: bool,
    /// How long without a packet before [`SourceEvent::Idle`] is returned;
    /// also libpcap's buffer timeout (without immediate mode, packets are
    /// handed over at the latest after it). Default: 100 ms. It bounds how
    /// late the caller flushes time-based batches and notices Ctrl-C.
    pub poll_interval: Duration,
    /// How often the kernel counters are polled. Default: 1 s; a poll is a
    /// system call, once a second costs nothing.
    pub stats_interval: Duration,
    /// Records queued between the capture threads and the consumer, used
    /// only with more than one interface. Default: 8192 (a few MB), about
    /// 8 ms at 1 Mpps: it evens out jitter, the kernel buffer absorbs
    /// longer stalls.
    pub channel_capacity: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interfaces: Vec::new(),
            filter: None,
            snaplen: 262_144,
            promisc: true,
            buffer_size: 32 << 20,
            immediate: true,
            poll_interval: Duration::from_millis(100),
            stats_interval: Duration::from_secs(1),
            channel_capacity: 8192,
        }
    }
}

impl LiveConfig {
    /// The defaults, capturing on one interface.
    pub fn new(interface: impl Into<String>) -> Self {
        LiveConfig {
            interfaces: vec![interface.into()],
            ..LiveConfig::default()
        }
    }
}

/// Kernel counters and properties of one interface of a [`LiveSource`].
/// Counters are cumulative since the interface was opened, as of the last
/// poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceStats {
    /// The interface name.
    pub name: Arc<str>,
    /// The link type libpcap reports for it.
    pub link: LinkType,
    /// Whether libpcap delivers nanosecond timestamps on it (else
    /// microseconds, scaled to ns in the record).
    pub ts_nanos: bool,
    /// Packets the kernel passed the filter and received (`ps_recv`).
    pub kernel_received: u64,
    /// Packets dropped for lack of buffer space (`ps_drop`).
    pub kernel_dropped: u64,
    /// Packets dropped by the interface or driver (`ps_ifdrop`).
    pub if_dropped: u64,
}

/// Ends a [`LiveSource`] from another thread (e.g. a Ctrl-C handler).
/// Cheap to clone; stopping twice is harmless.
#[derive(Debug, Clone)]
pub struct LiveStopper {
    flag: Arc<AtomicBool>,
}

impl LiveStopper {
    /// Asks the source to end: it delivers what is already queued, then
    /// returns [`SourceEvent::End`].
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether [`LiveStopper::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// A [`Source`] over one or more live interfaces, through libpcap.
///
/// ```no_run
/// use netanalyzer_capture::{LiveConfig, LiveSource};
/// use netanalyzer_core::{PacketRecord, Source, SourceEvent};
///
/// let mut src = LiveSource::open(&LiveConfig::new("eth0"))?;
/// let stopper = src.stopper(); // move into a Ctrl-C handler
/// let mut rec = PacketRecord::default();
/// loop {
///     match src.next_into(&mut rec)? {
///         SourceEvent::Packet => println!("{:?} {:?}", rec.src_ip, rec.protocol),
///         SourceEvent::Idle => {} // flush, check the clock
///         SourceEvent::End => break,
///     }
/// }
/// # drop(stopper);
/// println!("kernel drops: {:?}", src.stats().kernel_dropped);
/// # Ok::<(), netanalyzer_capture::CaptureError>(())
/// ```
pub struct LiveSource {
    mode: Mode,
    ifaces: Vec<IfaceInfo>,
    stop: Arc<AtomicBool>,
    stopper: LiveStopper,
    poll_interval: Duration,
    packets: u64,
    wire_bytes: u64,
    parse: ParseStats,
    done: bool,
}

enum Mode {
    Direct(Box<Iface>),
    Threads {
        rx: Receiver<Msg>,
        handles: Vec<JoinHandle<()>>,
    },
}

/// What the consumer keeps about each interface.
struct IfaceInfo {
    name: Arc<str>,
    link: LinkType,
    ts_nanos: bool,
    counters: Arc<KernelCounters>,
}

/// What a capture thread sends. Nearly every message is a packet, so the
/// packet is stored inline (the channel's slots are allocated once) and
/// the rare error pays the size.
#[allow(
    clippy::large_enum_variant,
    reason = "boxing the record would allocate per packet"
)]
enum Msg {
    Packet(PacketRecord, ParseStats),
    Failed(CaptureError),
}

impl LiveSource {
    /// Opens and activates every interface of `config`, installs the
    /// filter, and (with several interfaces) starts one capture thread
    /// each. Packets are buffered by the kernel from here on.
    ///
    /// # Errors
    /// [`CaptureError::LiveConfig`] for an empty or duplicate interface
    /// list or sizes libpcap cannot take; [`CaptureError::Live`] when
    /// libpcap cannot open an interface (no such device, no permission);
    /// [`CaptureError::Filter`] when the filter does not compile, naming
    /// the interface and the filter.
    pub fn open(config: &LiveConfig) -> Result<Self, CaptureError> {
        let settings = Settings::from_config(config)?;
        let mut opened = Vec::with_capacity(config.interfaces.len());
        for name in &config.interfaces {
            opened.push(Iface::open(name, config, &settings)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = LiveStopper {
            flag: Arc::clone(&stop),
        };
        let ifaces = opened
            .iter()
            .map(|i| IfaceInfo {
                name: Arc::clone(&i.name),
                link: i.link,
                ts_nanos: i.ts_nanos,
                counters: Arc::clone(&i.counters),
            })
            .collect();

        let mode = if opened.len() == 1 {
            match opened.pop() {
                Some(iface) => Mode::Direct(Box::new(iface)),
                None => unreachable_empty()?,
            }
        } else {
            let (tx, rx) = crossbeam_channel::bounded(config.channel_capacity.max(1));
            let mut handles = Vec::with_capacity(opened.len());
            for iface in opened {
                let tx = tx.clone();
                let stop = Arc::clone(&stop);
                let name = iface.name.to_string();
                let spawned = std::thread::Builder::new()
                    .name(format!("na-capture-{name}"))
                    .spawn(move || capture_thread(iface, &tx, &stop));
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        stopper.stop();
                        for h in handles {
                            let _ = h.join();
                        }
                        return Err(CaptureError::LiveConfig {
                            reason: format!("cannot start the capture thread for {name:?}: {e}"),
                        });
                    }
                }
            }
            Mode::Threads { rx, handles }
        };

        Ok(LiveSource {
            mode,
            ifaces,
            stop,
            stopper,
            poll_interval: config.poll_interval,
            packets: 0,
            wire_bytes: 0,
            parse: ParseStats::default(),
            done: false,
        })
    }

    /// A handle that ends this source from another thread.
    pub fn stopper(&self) -> LiveStopper {
        self.stopper.clone()
    }

    /// Ends the source, as [`LiveStopper::stop`].
    pub fn stop(&self) {
        self.stopper.stop();
    }

    /// Records waiting in the channel between the capture threads and the
    /// consumer (always 0 with one interface, which has no channel). A
    /// depth near [`LiveConfig::channel_capacity`] means the consumer is
    /// the bottleneck.
    pub fn queue_depth(&self) -> usize {
        match &self.mode {
            Mode::Direct(_) => 0,
            Mode::Threads { rx, .. } => rx.len(),
        }
    }

    /// Per-interface kernel counters, in the order of
    /// [`LiveConfig::interfaces`].
    pub fn iface_stats(&self) -> Vec<IfaceStats> {
        self.ifaces
            .iter()
            .map(|i| IfaceStats {
                name: Arc::clone(&i.name),
                link: i.link,
                ts_nanos: i.ts_nanos,
                kernel_received: i.counters.received.load(Ordering::Relaxed),
                kernel_dropped: i.counters.dropped.load(Ordering::Relaxed),
                if_dropped: i.counters.if_dropped.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Polls the kernel counters now instead of waiting for the next
    /// scheduled poll. With one interface this is immediate; with several
    /// the capture threads own the handles and poll on their own schedule
    /// (every [`LiveConfig::stats_interval`] and when capture ends), so this
    /// does nothing.
    pub fn refresh_stats(&mut self) {
        if let Mode::Direct(iface) = &mut self.mode {
            iface.poll_stats(now_ns());
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.stopper.stop();
        match &mut self.mode {
            Mode::Direct(iface) => iface.poll_stats(now_ns()),
            Mode::Threads { handles, .. } => {
                for h in handles.drain(..) {
                    let _ = h.join();
                }
            }
        }
    }
}

impl Source for LiveSource {
    type Error = CaptureError;

    fn next_into(&mut self, record: &mut PacketRecord) -> Result<SourceEvent, CaptureError> {
        if self.done {
            return Ok(SourceEvent::End);
        }
        match &mut self.mode {
            Mode::Direct(iface) => match iface.next(record, &mut self.parse, &self.stop) {
                Ok(Next::Packet) => {
                    self.packets += 1;
                    self.wire_bytes += u64::from(record.wire_len);
                    Ok(SourceEvent::Packet)
                }
                Ok(Next::Idle) => Ok(SourceEvent::Idle),
                Ok(Next::Stopped) => {
                    self.finish();
                    Ok(SourceEvent::End)
                }
                Err(e) => {
                    self.finish();
                    Err(e)
                }
            },
            Mode::Threads { rx, .. } => match rx.recv_timeout(self.poll_interval) {
                Ok(Msg::Packet(rec, ps)) => {
                    *record = rec;
                    self.parse.merge(&ps);
                    self.packets += 1;
                    self.wire_bytes += u64::from(record.wire_len);
                    Ok(SourceEvent::Packet)
                }
                Ok(Msg::Failed(e)) => {
                    self.finish();
                    Err(e)
                }
                Err(RecvTimeoutError::Timeout) => Ok(SourceEvent::Idle),
                // Every thread has ended (stopped) and the queue is empty.
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish();
                    Ok(SourceEvent::End)
                }
            },
        }
    }

    fn stats(&self) -> SourceStats {
        let (mut recv, mut drop, mut ifdrop) = (0u64, 0u64, 0u64);
        for i in &self.ifaces {
            recv += i.counters.received.load(Ordering::Relaxed);
            drop += i.counters.dropped.load(Ordering::Relaxed);
            ifdrop += i.counters.if_dropped.load(Ordering::Relaxed);
        }
        SourceStats {
            packets: self.packets,
            wire_bytes: self.wire_bytes,
            parse: self.parse,
            kernel_received: Some(recv),
            kernel_dropped: Some(drop),
            if_dropped: Some(ifdrop),
        }
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        if !self.done {
            self.finish();
        }
    }
}

impl fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.ifaces.iter().map(|i| &*i.name).collect();
        f.debug_struct("LiveSource")
            .field("interfaces", &names)
            .field("packets", &self.packets)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Never reached: `open` pops from a list of length one.
fn unreachable_empty() -> Result<Mode, CaptureError> {
    Err(CaptureError::LiveConfig {
        reason: "no interface opened".into(),
    })
}

/// The config's numbers, checked and converted to what libpcap takes.
struct Settings {
    snaplen: i32,
    buffer_size: i32,
    timeout_ms: i32,
    stats_interval_ns: u64,
}

impl Settings {
    fn from_config(c: &LiveConfig) -> Result<Self, CaptureError> {
        let bad = |reason: String| CaptureError::LiveConfig { reason };
        if c.interfaces.is_empty() {
            return Err(bad("no interface given".into()));
        }
        for (i, name) in c.interfaces.iter().enumerate() {
            if c.interfaces[..i].contains(name) {
                return Err(bad(format!("interface {name:?} listed twice")));
            }
        }
        let snaplen = i32::try_from(c.snaplen)
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| bad(format!("snaplen {} out of range 1..=2^31-1", c.snaplen)))?;
        let buffer_size = i32::try_from(c.buffer_size)
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| {
                bad(format!(
                    "buffer_size {} out of range 1..=2^31-1 bytes",
                    c.buffer_size
                ))
            })?;
        // 0 would mean "block forever" to libpcap: at least 1 ms.
        let timeout_ms = i32::try_from(c.poll_interval.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        let stats_interval_ns = u64::try_from(c.stats_interval.as_nanos()).unwrap_or(u64::MAX);
        Ok(Settings {
            snaplen,
            buffer_size,
            timeout_ms,
            stats_interval_ns,
        })
    }
}

/// Kernel counters of one interface, written by the reader of its handle.
#[derive(Default)]
struct KernelCounters {
    received: AtomicU64,
    dropped: AtomicU64,
    if_dropped: AtomicU64,
}

/// Widens a cumulative `u32` counter that may wrap.
#[derive(Default, Clone, Copy)]
struct Wide {
    last: u32,
    total: u64,
}

impl Wide {
    fn update(&mut self, now: u32) -> u64 {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.total
    }
}

/// One open interface: the handle and what a record needs from it.
struct Iface {
    cap: Capture<Active>,
    name: Arc<str>,
    link: LinkType,
    ts_nanos: bool,
    counters: Arc<KernelCounters>,
    wide: [Wide; 3],
    last_poll_ns: u64,
    stats_interval_ns: u64,
    poll_interval: Duration,
    /// Start of the current stretch without packets.
    idle_since: Option<Instant>,
    backoff: Duration,
}

/// What [`Iface::next`] got.
enum Next {
    Packet,
    Idle,
    Stopped,
}

impl Iface {
    fn open(name: &str, cfg: &LiveConfig, s: &Settings) -> Result<Self, CaptureError> {
        let live = |source| CaptureError::Live {
            iface: name.to_owned(),
            source,
        };
        let inactive = Capture::from_device(name).map_err(live)?;
        let mut cap = inactive
            .snaplen(s.snaplen)
            .promisc(cfg.promisc)
            .buffer_size(s.buffer_size)
            .immediate_mode(cfg.immediate)
            .timeout(s.timeout_ms)
            // Ignored by libpcap where unsupported; `probe_ts_nanos` tells.
            .precision(Precision::Nano)
            .open()
            .and_then(Capture::setnonblock)
            .map_err(live)?;
        if let Some(filter) = &cfg.filter {
            cap.filter(filter, true)
                .map_err(|source| CaptureError::Filter {
                    iface: name.to_owned(),
                    filter: filter.clone(),
                    source,
                })?;
        }
        let link = link_from_dlt(cap.get_datalink().0);
        let ts_nanos = probe_ts_nanos(&cap).unwrap_or(cfg!(target_os = "linux"));
        let mut iface = Iface {
            cap,
            name: Arc::from(name),
            link,
            ts_nanos,
            counters: Arc::new(KernelCounters::default()),
            wide: [Wide::default(); 3],
            last_poll_ns: 0,
            stats_interval_ns: s.stats_interval_ns,
            poll_interval: cfg.poll_interval,
            idle_since: None,
            backoff: MIN_BACKOFF,
        };
        iface.poll_stats(now_ns());
        Ok(iface)
    }

    /// Waits for the next packet and reads it into `rec`; returns
    /// [`Next::Idle`] after a poll interval without packets, and
    /// [`Next::Stopped`] as soon as `stop` is seen.
    fn next(
        &mut self,
        rec: &mut PacketRecord,
        ps: &mut ParseStats,
        stop: &AtomicBool,
    ) -> Result<Next, CaptureError> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(Next::Stopped);
            }
            if self.read_into(rec, ps)? {
                self.idle_since = None;
                self.backoff = MIN_BACKOFF;
                return Ok(Next::Packet);
            }
            let now = Instant::now();
            let since = *self.idle_since.get_or_insert(now);
            if now.duration_since(since) >= self.poll_interval {
                self.idle_since = Some(now);
                self.maybe_poll(now_ns());
                return Ok(Next::Idle);
            }
            std::thread::sleep(self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Reads one packet, if one is waiting, into `rec`: clears it, sets the
    /// capture metadata and parses the frame, counting into `ps`.
    fn read_into(
        &mut self,
        rec: &mut PacketRecord,
        ps: &mut ParseStats,
    ) -> Result<bool, CaptureError> {
        let ts_ns = match self.cap.next_packet() {
            Ok(pkt) => {
                let ts_ns = ts_to_ns(pkt.header.ts.tv_sec, pkt.header.ts.tv_usec, self.ts_nanos);
                rec.clear();
                rec.ts_ns = ts_ns;
                rec.iface = Some(Arc::clone(&self.name));
                rec.wire_len = pkt.header.len;
                rec.cap_len = pkt.header.caplen;
                parse_frame(self.link, pkt.data, rec, ps);
                ts_ns
            }
            // Non-blocking: nothing waiting. (NoMorePackets is libpcap's
            // PCAP_ERROR_BREAK; nobody calls pcap_breakloop, but it means
            // "nothing now" as well.)
            Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => return Ok(false),
            Err(source) => {
                return Err(CaptureError::Live {
                    iface: self.name.to_string(),
                    source,
                })
            }
        };
        // Packet time is wall-clock time: no clock read per packet.
        self.maybe_poll(ts_ns);
        Ok(true)
    }

    fn maybe_poll(&mut self, now_ns: u64) {
        if now_ns.abs_diff(self.last_poll_ns) >= self.stats_interval_ns {
            self.poll_stats(now_ns);
        }
    }

    /// Reads `pcap_stats`. A failure leaves the counters as they were: the
    /// counters are a report, not a reason to stop capturing.
    fn poll_stats(&mut self, now_ns: u64) {
        self.last_poll_ns = now_ns;
        if let Ok(st) = self.cap.stats() {
            let c = &self.counters;
            c.received
                .store(self.wide[0].update(st.received), Ordering::Relaxed);
            c.dropped
                .store(self.wide[1].update(st.dropped), Ordering::Relaxed);
            c.if_dropped
                .store(self.wide[2].update(st.if_dropped), Ordering::Relaxed);
        }
    }
}

/// The body of one capture thread (several interfaces).
fn capture_thread(mut iface: Iface, tx: &Sender<Msg>, stop: &AtomicBool) {
    let poll = iface.poll_interval;
    loop {
        let mut rec = PacketRecord::default();
        let mut ps = ParseStats::default();
        match iface.next(&mut rec, &mut ps, stop) {
            Ok(Next::Packet) => {
                if !send(tx, Msg::Packet(rec, ps), stop, poll) {
                    break;
                }
            }
            Ok(Next::Idle) => {}
            Ok(Next::Stopped) => break,
            Err(e) => {
                send(tx, Msg::Failed(e), stop, poll);
                break;
            }
        }
    }
    iface.poll_stats(now_ns());
}

/// Sends, waiting while the queue is full, unless stopped or the
/// consumer is gone. Returns whether the message was sent.
fn send(tx: &Sender<Msg>, mut msg: Msg, stop: &AtomicBool, poll: Duration) -> bool {
    loop {
        match tx.send_timeout(msg, poll) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(m)) => {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                msg = m;
            }
            Err(SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

/// Maps libpcap's `DLT_*` value to the file-format `LINKTYPE_*` value the
/// parser speaks. They are equal except for a few historical numbers.
fn link_from_dlt(dlt: i32) -> LinkType {
    match dlt {
        #[cfg(target_os = "openbsd")]
        12 => LinkType::LOOP,
        #[cfg(target_os = "openbsd")]
        14 => LinkType::RAW,
        #[cfg(not(target_os = "openbsd"))]
        12 => LinkType::RAW,
        d => LinkType(u32::try_from(d).unwrap_or(u32::MAX)),
    }
}

/// Whether the handle delivers nanosecond timestamps. The `pcap` crate
/// ignores the result of `pcap_set_tstamp_precision` and does not expose
/// `pcap_get_tstamp_precision`, but libpcap writes the handle's precision
/// into a savefile's magic number, so a header-only savefile tells.
/// `None` when the probe file cannot be made.
fn probe_ts_nanos(cap: &Capture<Active>) -> Option<bool> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "netanalyzer-tsprobe-{}-{}-{}.pcap",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        now_ns()
    ));
    // create_new: never follow a planted symlink; libpcap then truncates
    // the file we own.
    let created = OpenOptions::new().write(true).create_new(true).open(&path);
    let result = created.ok().and_then(|_| {
        let mut dump = cap.savefile(&path).ok()?;
        dump.flush().ok()?;
        drop(dump);
        let mut magic = [0u8; 4];
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .ok()?;
        match u32::from_ne_bytes(magic) {
            0xa1b2_3c4d => Some(true),
            0xa1b2_c3d4 => Some(false),
            _ => None,
        }
    });
    let _ = std::fs::remove_file(&path);
    result
}

/// Converts a pcap header timestamp to ns since the epoch; a time before
/// the epoch becomes 0.
fn ts_to_ns<S: TryInto<i64>, F: TryInto<i64>>(sec: S, frac: F, nanos: bool) -> u64 {
    let sec = u64::try_from(sec.try_into().unwrap_or(0)).unwrap_or(0);
    let frac = u64::try_from(frac.try_into().unwrap_or(0)).unwrap_or(0);
    let frac_ns = if nanos {
        frac
    } else {
        frac.saturating_mul(1000)
    };
    sec.saturating_mul(1_000_000_000).saturating_add(frac_ns)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_counter_survives_wrap() {
        let mut w = Wide::default();
        assert_eq!(w.update(10), 10);
        assert_eq!(w.update(u32::MAX), u64::from(u32::MAX));
        assert_eq!(w.update(4), u64::from(u32::MAX) + 5);
    }

    #[test]
    fn timestamps_scale_by_precision() {
        assert_eq!(ts_to_ns(2i64, 5i64, true), 2_000_000_005);
        assert_eq!(ts_to_ns(2i64, 5i64, false), 2_000_005_000);
        assert_eq!(ts_to_ns(-1i64, 5i64, true), 5);
    }

    #[test]
    fn dlt_maps_to_linktype() {
        assert_eq!(link_from_dlt(1), LinkType::ETHERNET);
        assert_eq!(link_from_dlt(276), LinkType::LINUX_SLL2);
        assert_eq!(link_from_dlt(113), LinkType::LINUX_SLL);
        assert_eq!(link_from_dlt(-1), LinkType(u32::MAX));
    }

    #[test]
    fn config_is_checked_before_opening() {
        let err = |c: LiveConfig| LiveSource::open(&c).unwrap_err().to_string();
        assert!(err(LiveConfig::default()).contains("no interface"));
        let twice = LiveConfig {
            interfaces: vec!["lo".into(), "lo".into()],
            ..LiveConfig::default()
        };
        assert!(err(twice).contains("listed twice"));
        let huge = LiveConfig {
            snaplen: u32::MAX,
            ..LiveConfig::new("lo")
        };
        assert!(err(huge).contains("snaplen"));
    }
}
