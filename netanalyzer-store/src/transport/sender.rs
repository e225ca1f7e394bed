//! The sender threads: `senders` of them share one ureq agent (keep-alive,
//! one connection each) and the channel. Each takes the channel first,
//! then claims the oldest unclaimed spool segment; backoff with full jitter
//! per thread, a `Retry-After` pauses them all; answers classified as in
//! the module docs.

use super::spool::{self, ReadError};
use super::{Fatal, HttpSinkConfig, Shared, State};
use crate::wire::{EncodedBatch, CONTENT_TYPE_MSGPACK};
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

/// First retry delay ceiling.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Largest retry delay ceiling.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Largest `Retry-After` honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// How long the idle sender waits on the channel before looking at the
/// spool and the shutdown flag again.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Largest response body read (error reasons are short).
const MAX_RESPONSE: u64 = 64 * 1024;

/// Exponential backoff with full jitter: attempt n sleeps a uniform random
/// time in `0..=min(cap, base * 2^n)`.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The ceiling of the next delay, then the jittered delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceil = BACKOFF_BASE
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(BACKOFF_CAP);
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(ceil.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=ms))
    }
}

/// What the server (or the network) said about one batch.
#[derive(Debug)]
enum Outcome {
    Acked {
        duplicate: bool,
    },
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Reject {
        status: u16,
        reason: String,
    },
    Fatal {
        status: u16,
        reason: String,
    },
}

pub(crate) struct SenderThread {
    agent: ureq::Agent,
    url: String,
    auth: Option<String>,
    rx: Receiver<EncodedBatch>,
    shared: Arc<Shared>,
    backoff: Backoff,
}

/// The agent every sender thread shares (clones share one connection
/// pool): keep-alive, up to `senders` idle connections kept open.
pub(crate) fn agent(cfg: &HttpSinkConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(cfg.request_timeout))
        .user_agent(concat!("netanalyzer-sensor/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections_per_host(cfg.senders)
        .max_idle_connections(cfg.senders.max(10))
        .build()
        .into()
}

impl SenderThread {
    pub(crate) fn new(
        cfg: &HttpSinkConfig,
        agent: ureq::Agent,
        rx: Receiver<EncodedBatch>,
        shared: Arc<Shared>,
    ) -> Self {
        SenderThread {
            agent,
            url: cfg.ingest_url(),
            auth: cfg.token.as_ref().map(|t| format!("Bearer {t}")),
            rx,
            shared,
            backoff: Backoff::default(),
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            let pause = {
                let mut st = self.shared.lock();
                if st.fatal.is_some() {
                    // Stop sending; wait for close/drop.
                    while !st.shutdown {
                        st = self.shared.wait_timeout(st, IDLE_POLL);
                    }
                }
                if st.shutdown {
                    return;
                }
                st.pause_until
                    .and_then(|t| t.checked_duration_since(Instant::now()))
            };
            // A `Retry-After` holds back every sender, not only the one
            // that got it.
            if let Some(d) = pause {
                self.wait(d);
                continue;
            }
            // Memory first: it is always older than the spool.
            match self.rx.try_recv() {
                Ok(b) => {
                    self.deliver_mem(b);
                    continue;
                }
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            let claimed = self.shared.lock().spool.claim();
            if let Some(seg) = claimed {
                self.deliver_seg(seg);
                continue;
            }
            match self.rx.recv_timeout(IDLE_POLL) {
                Ok(b) => self.deliver_mem(b),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Sends a batch from the channel.
    fn deliver_mem(&mut self, b: EncodedBatch) {
        let outcome = self.post(&b);
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        match outcome {
            Outcome::Acked { duplicate } => {
                st.pending_mem = st.pending_mem.saturating_sub(1);
                acked(&mut st, &b, duplicate);
                self.backoff.reset();
            }
            Outcome::Reject { status, reason } => {
                st.pending_mem = st.pending_mem.saturating_sub(1);
                let res = st.spool.write_aside("rejected", &b);
                rejected(&mut st, &b, status, &reason);
                if let Err(e) = res {
                    tracing::error!("cannot keep the rejected batch: {e}");
                }
            }
            Outcome::Retry { why, after } => {
                retrying(&mut st, why, after);
                self.put_back(&mut st, b);
                drop(st);
                shared.cond.notify_all();
                self.sleep(after);
                return;
            }
            Outcome::Fatal { status, reason } => {
                tracing::error!(status, %reason, "the server refused this sensor; stopping");
                self.put_back(&mut st, b);
                shared.set_fatal(&mut st, Fatal::Rejected { status, reason });
            }
        }
        shared.cond.notify_all();
    }

    /// Puts `b` and everything in the channel at the front of the spool,
    /// in order. Batches other senders hold end normally (acknowledged, or
    /// put back at the front by their own sender).
    fn put_back(&self, st: &mut MutexGuard<'_, State>, b: EncodedBatch) {
        let mut all = vec![b];
        all.extend(self.rx.try_iter());
        st.pending_mem = st.pending_mem.saturating_sub(all.len());
        for b in all.iter().rev() {
            match st.spool.push_front(b) {
                Ok(()) => st.stats.records_spooled_total += u64::from(b.count),
                Err(e) => {
                    let path = match &e {
                        crate::StoreError::Spool { path, .. } => path.clone(),
                        _ => st.spool.dir().to_path_buf(),
                    };
                    tracing::error!("cannot spool a batch: {e}");
                    self.shared.set_fatal(
                        st,
                        Fatal::Spool {
                            path,
                            msg: e.to_string(),
                        },
                    );
                }
            }
        }
    }

    /// Sends a segment this sender claimed.
    fn deliver_seg(&mut self, seg: spool::Segment) {
        let b = match spool::read_segment(&seg.path) {
            Ok(b) => b,
            Err(ReadError::Corrupt(why)) => {
                let mut st = self.shared.lock();
                tracing::warn!(segment = %seg.path.display(), "corrupt spool segment moved aside: {why}");
                st.stats.corrupt_segments += 1;
                if let Err(e) = st.spool.move_aside(seg.counter, "corrupt") {
                    self.fail_spool(&mut st, e);
                }
                self.shared.cond.notify_all();
                return;
            }
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut st = self.shared.lock();
                tracing::warn!(segment = %seg.path.display(), "spool segment vanished");
                st.spool.forget(seg.counter);
                self.shared.cond.notify_all();
                return;
            }
            Err(ReadError::Io(e)) => {
                let mut st = self.shared.lock();
                st.spool.release(seg.counter);
                let err = crate::StoreError::Spool {
                    path: seg.path.clone(),
                    source: e,
                };
                self.fail_spool(&mut st, err);
                return;
            }
        };
        let outcome = self.post(&b);
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        match outcome {
            Outcome::Acked { duplicate } => {
                acked(&mut st, &b, duplicate);
                if let Err(e) = st.spool.remove(seg.counter) {
                    self.fail_spool(&mut st, e);
                }
                self.backoff.reset();
            }
            Outcome::Reject { status, reason } => {
                rejected(&mut st, &b, status, &reason);
                if let Err(e) = st.spool.move_aside(seg.counter, "rejected") {
                    self.fail_spool(&mut st, e);
                }
            }
            Outcome::Retry { why, after } => {
                retrying(&mut st, why, after);
                // The oldest unclaimed again: the next claim takes it.
                st.spool.release(seg.counter);
                drop(st);
                shared.cond.notify_all();
                self.sleep(after);
                return;
            }
            Outcome::Fatal { status, reason } => {
                tracing::error!(status, %reason, "the server refused this sensor; stopping");
                st.spool.release(seg.counter);
                shared.set_fatal(&mut st, Fatal::Rejected { status, reason });
            }
        }
        shared.cond.notify_all();
    }

    fn fail_spool(&self, st: &mut State, e: crate::StoreError) {
        tracing::error!("spool failed: {e}");
        let path = match &e {
            crate::StoreError::Spool { path, .. } => path.clone(),
            _ => st.spool.dir().to_path_buf(),
        };
        self.shared.set_fatal(
            st,
            Fatal::Spool {
                path,
                msg: e.to_string(),
            },
        );
    }

    /// Sleeps this sender's next backoff delay (at least `after`), waking
    /// early on shutdown.
    fn sleep(&mut self, after: Option<Duration>) {
        let mut d = self.backoff.next_delay();
        if let Some(a) = after {
            d = d.max(a.min(RETRY_AFTER_CAP));
        }
        self.wait(d);
    }

    /// Waits `d`, waking early on shutdown.
    fn wait(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut st = self.shared.lock();
        loop {
            if st.shutdown {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            st = self.shared.wait_timeout(st, deadline - now);
        }
    }

    /// One POST; reads the whole response so the connection is reused.
    fn post(&self, b: &EncodedBatch) -> Outcome {
        let mut req = self
            .agent
            .post(&self.url)
            .header("content-type", CONTENT_TYPE_MSGPACK);
        if b.zstd {
            req = req.header("content-encoding", "zstd");
        }
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        let mut resp = match req.send(&b.body[..]) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    why: format!("POST {}: {e}", self.url),
                    after: None,
                }
            }
        };
        let status = resp.status().as_u16();
        let after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .unwrap_or_default();
        classify(status, &text, after)
    }
}

/// Counts a retryable failure; a `Retry-After` pauses every sender.
fn retrying(st: &mut State, why: String, after: Option<Duration>) {
    tracing::debug!(error = %why, "batch not delivered, will retry");
    st.stats.retries += 1;
    st.stats.last_error = Some(why);
    if let Some(a) = after {
        let until = Instant::now() + a.min(RETRY_AFTER_CAP);
        st.pause_until = Some(st.pause_until.map_or(until, |t| t.max(until)));
    }
}

fn acked(st: &mut State, b: &EncodedBatch, duplicate: bool) {
    st.stats.batches_acked += 1;
    st.stats.records_acked += u64::from(b.count);
    if duplicate {
        st.stats.batches_duplicate += 1;
    }
    st.last_ack = Instant::now();
}

fn rejected(st: &mut State, b: &EncodedBatch, status: u16, reason: &str) {
    st.stats.rejected_batches += 1;
    st.stats.rejected_records += u64::from(b.count);
    st.stats.last_error = Some(format!("http {status}: {reason}"));
    // Rejections are progress too: the batch left the queue for good.
    st.last_ack = Instant::now();
    if !st.reject_logged {
        st.reject_logged = true;
        tracing::error!(
            status,
            %reason,
            stream_id = b.stream_id,
            seq = b.seq,
            "the server rejected a batch for good; it is kept in {}/rejected (further rejections are only counted)",
            st.spool.dir().display()
        );
    }
}

/// The server's reason: `reason`, else `error`, of a JSON error body, else
/// the start of the body.
fn reason_of(status: u16, text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        for key in ["reason", "error"] {
            if let Some(s) = v.get(key).and_then(|r| r.as_str()) {
                return s.to_owned();
            }
        }
    }
    let t: String = text.trim().chars().take(200).collect();
    if t.is_empty() {
        format!("http status {status}")
    } else {
        t
    }
}

fn classify(status: u16, text: &str, after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => {
            let duplicate = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| {
                    v.get("status")
                        .and_then(|s| s.as_str())
                        .map(|s| s == "duplicate")
                })
                .unwrap_or(false);
            Outcome::Acked { duplicate }
        }
        400 | 413 | 415 => Outcome::Reject {
            status,
            reason: reason_of(status, text),
        },
        401 | 403 => Outcome::Fatal {
            status,
            reason: reason_of(status, text),
        },
        429 | 503 => Outcome::Retry {
            why: format!("http {status}: {}", reason_of(status, text)),
            after,
        },
        408 | 500..=599 => Outcome::Retry {
            why: format!("http {status}: {}", reason_of(status, text)),
            after: None,
        },
        _ => {
            tracing::warn!(status, "unexpected answer from the server; retrying");
            Outcome::Retry {
                why: format!("unexpected http {status}: {}", reason_of(status, text)),
                after: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let mut b = Backoff::default();
        for i in 0..40 {
            let d = b.next_delay();
            let ceil = BACKOFF_BASE.saturating_mul(1 << i.min(16)).min(BACKOFF_CAP);
            assert!(d <= ceil, "{i}: {d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= BACKOFF_BASE);
    }

    #[test]
    fn answers_are_classified() {
        assert!(matches!(
            classify(200, r#"{"status":"duplicate","records":3}"#, None),
            Outcome::Acked { duplicate: true }
        ));
        assert!(matches!(
            classify(200, r#"{"status":"stored"}"#, None),
            Outcome::Acked { duplicate: false }
        ));
        assert!(matches!(
            classify(413, "", None),
            Outcome::Reject { status: 413, .. }
        ));
        match classify(403, r#"{"error":"forbidden","reason":"wrong token"}"#, None) {
            Outcome::Fatal { status, reason } => {
                assert_eq!((status, reason.as_str()), (403, "wrong token"))
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            classify(503, "", Some(Duration::from_secs(2))),
            Outcome::Retry { after: Some(_), .. }
        ));
        assert!(matches!(classify(404, "", None), Outcome::Retry { .. }));
    }
}
