//! Test support: a tiny scripted ingest server, public so tests in other
//! crates (the sniffer's) use it too.
//!
//! [`ScriptedServer`] is a real HTTP/1.1 server on `127.0.0.1` (std
//! `TcpListener`, one thread per connection, keep-alive, `Content-Length`
//! bodies). It decodes every body with [`wire::decode_body`] and, like the
//! real server, stores each `(sensor, stream, seq)` once and answers a
//! repeat with `{"status":"duplicate"}`. A test scripts its answers
//! (200, 503 or 429 with `Retry-After`, 400, 401), takes it down (closes
//! the listener and every connection) and brings it back on the same port.
//! A response delay ([`ScriptedServer::set_delay`], like a database commit)
//! and a gauge of the requests being answered at once
//! ([`ScriptedServer::max_concurrent`]) show how many requests a client
//! keeps in flight.
//!
//! Not for production: no limits beyond the decoder's, no TLS.

use crate::wire::{self, BodyFormat, DecodeLimits};
use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Decode and store (200 `stored`, or 200 `duplicate` for a triple
    /// seen before; 400 when the body does not decode).
    Store,
    /// This status with a JSON error body and no side effect.
    Status(u16),
    /// This status (503 or 429) with `Retry-After: secs`.
    Busy(u16, u32),
}

/// One batch the server stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    /// Sensor id from the envelope.
    pub sensor_id: String,
    /// Stream id.
    pub stream_id: u64,
    /// Sequence number.
    pub seq: u64,
    /// Records.
    pub count: usize,
    /// `ts_ns` of every record, in order (tests use it as a record id).
    pub ts: Vec<u64>,
    /// Sensor stats sent with the batch.
    pub stats: Option<wire::SensorStats>,
}

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct RequestLog {
    /// When it was answered.
    pub at: Instant,
    /// The status sent.
    pub status: u16,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
}

/// What the server saw so far.
#[derive(Debug, Default)]
pub struct ServerLog {
    /// Stored batches, in arrival order.
    pub stored: Vec<StoredBatch>,
    /// Every request answered, in order.
    pub requests: Vec<RequestLog>,
    /// Batches answered `duplicate`.
    pub duplicates: usize,
    seen: HashSet<(String, u64, u64)>,
}

impl ServerLog {
    /// Records stored.
    pub fn records(&self) -> usize {
        self.stored.iter().map(|b| b.count).sum()
    }
}

struct Inner {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    log: Mutex<ServerLog>,
    conns: Mutex<Vec<TcpStream>>,
    connections: AtomicUsize,
    delay: Mutex<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The scripted server. Stops (like [`ScriptedServer::down`]) on drop.
pub struct ScriptedServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    acceptor: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .field("up", &self.acceptor.is_some())
            .finish()
    }
}

impl ScriptedServer {
    /// Starts on a free port of 127.0.0.1, answering [`Reply::Store`].
    ///
    /// # Panics
    /// When no port can be bound.
    pub fn start() -> ScriptedServer {
        #[allow(clippy::expect_used)]
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        #[allow(clippy::expect_used)]
        let addr = listener.local_addr().expect("local addr");
        let mut s = ScriptedServer {
            addr,
            inner: Arc::new(Inner {
                script: Mutex::new(VecDeque::new()),
                default: Mutex::new(Reply::Store),
                log: Mutex::new(ServerLog::default()),
                conns: Mutex::new(Vec::new()),
                connections: AtomicUsize::new(0),
                delay: Mutex::new(Duration::ZERO),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
            }),
            acceptor: None,
        };
        s.serve(listener);
        s
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers with `r` from now on (after the queued replies).
    pub fn set_default(&self, r: Reply) {
        *lock(&self.inner.default) = r;
    }

    /// Queues replies for the next requests.
    pub fn push(&self, replies: &[Reply]) {
        lock(&self.inner.script).extend(replies.iter().copied());
    }

    /// Waits this long before answering each request (default none), as
    /// a server waiting for its database commit would. The batch is
    /// stored at the end of the wait, just before the answer.
    pub fn set_delay(&self, d: Duration) {
        *lock(&self.inner.delay) = d;
    }

    /// The most requests that were being answered at the same time (read
    /// completely, not yet answered), since start or
    /// [`ScriptedServer::reset_max_concurrent`].
    pub fn max_concurrent(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    /// Restarts the [`ScriptedServer::max_concurrent`] gauge.
    pub fn reset_max_concurrent(&self) {
        self.inner.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// The log, locked.
    pub fn log(&self) -> MutexGuard<'_, ServerLog> {
        lock(&self.inner.log)
    }

    /// Waits until `cond` holds on the log; false after `timeout`.
    pub fn wait_for(&self, timeout: Duration, cond: impl Fn(&ServerLog) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if cond(&self.log()) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes the listener and every open connection: clients get
    /// "connection refused" until [`ScriptedServer::up`].
    pub fn down(&mut self) {
        if let Some((stop, t)) = self.acceptor.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
        for c in lock(&self.inner.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Listens again on the same port.
    ///
    /// # Panics
    /// When the port cannot be bound again.
    pub fn up(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        let end = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot bind {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let inner = Arc::clone(&self.inner);
        let flag = Arc::clone(&stop);
        let _ = listener.set_nonblocking(true);
        let t = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_nodelay(true);
                        inner.connections.fetch_add(1, Ordering::SeqCst);
                        if let Ok(c) = s.try_clone() {
                            lock(&inner.conns).push(c);
                        }
                        let inner = Arc::clone(&inner);
                        std::thread::spawn(move || handle(s, &inner));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        self.acceptor = Some((stop, t));
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.down();
    }
}

struct Request {
    authorization: Option<String>,
    content_encoding: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut req = Request {
        authorization: None,
        content_encoding: None,
        content_type: None,
        body: Vec::new(),
    };
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        let v = v.trim().to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.parse().ok()?,
            "authorization" => req.authorization = Some(v),
            "content-encoding" => req.content_encoding = Some(v),
            "content-type" => req.content_type = Some(v),
            _ => {}
        }
    }
    req.body = vec![0; len];
    r.read_exact(&mut req.body).ok()?;
    Some(req)
}

fn handle(stream: TcpStream, inner: &Inner) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    while let Some(req) = read_request(&mut r) {
        let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = *lock(&inner.delay);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let reply = lock(&inner.script)
            .pop_front()
            .unwrap_or(*lock(&inner.default));
        let (status, extra, body) = answer(reply, &req, inner);
        inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        let text = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            413 => "Payload Too Large",
            429 => "Too Many Requests",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let head = format!(
            "HTTP/1.1 {status} {text}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
            body.len()
        );
        lock(&inner.log).requests.push(RequestLog {
            at: Instant::now(),
            status,
            authorization: req.authorization.clone(),
            content_encoding: req.content_encoding.clone(),
            content_type: req.content_type.clone(),
        });
        if out.write_all(head.as_bytes()).is_err() || out.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(reply: Reply, req: &Request, inner: &Inner) -> (u16, String, String) {
    let err = |status: u16, e: &str| {
        (
            status,
            String::new(),
            format!(r#"{{"error":"{e}","reason":"scripted {status}"}}"#),
        )
    };
    match reply {
        Reply::Status(s) => err(s, "scripted"),
        Reply::Busy(s, secs) => {
            let (s, _, b) = err(s, "busy");
            (s, format!("retry-after: {secs}\r\n"), b)
        }
        Reply::Store => {
            let zstd = req.content_encoding.as_deref() == Some("zstd");
            match wire::decode_body(
                &req.body,
                BodyFormat::Msgpack,
                zstd,
                &DecodeLimits::default(),
            ) {
                Err(e) => (
                    400,
                    String::new(),
                    format!(r#"{{"error":"bad_batch","reason":{:?}}}"#, e.to_string()),
                ),
                Ok(d) => {
                    let b = d.batch;
                    let n = b.records.len();
                    let mut log = lock(&inner.log);
                    if log.seen.insert((b.sensor_id.clone(), b.stream_id, b.seq)) {
                        log.stored.push(StoredBatch {
                            sensor_id: b.sensor_id,
                            stream_id: b.stream_id,
                            seq: b.seq,
                            count: n,
                            ts: b.records.iter().map(|r| r.ts_ns).collect(),
                            stats: d.stats,
                        });
                        (
                            200,
                            String::new(),
                            format!(r#"{{"status":"stored","records":{n}}}"#),
                        )
                    } else {
                        log.duplicates += 1;
                        (
                            200,
                            String::new(),
                            format!(r#"{{"status":"duplicate","records":{n}}}"#),
                        )
                    }
                }
            }
        }
    }
}
