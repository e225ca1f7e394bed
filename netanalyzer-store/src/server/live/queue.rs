//! One WebSocket client's bounded queue of outgoing messages.
//!
//! Policy (`docs/dashboard.md`, "WebSocket protocol"):
//!
//! - below `soft` (`client_queue`) messages, everything is queued;
//! - at `soft` or more, a new message first evicts the client's OLDEST
//!   queued `stats` message (counted); with no `stats` queued, a new
//!   `stats` is itself dropped (counted), while an `alert`, `sensor` or
//!   `snapshot` is still queued: they are never dropped;
//! - beyond `hard` messages the client is too far behind: the queue closes
//!   with [`CloseReason::Overflow`] and the client is disconnected (it
//!   reconnects and gets a fresh snapshot).

use axum::extract::ws::Utf8Bytes;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// The type of a message, as counted by `netanalyzer_ws_messages_sent_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The first message of a connection.
    Snapshot,
    /// A new or updated alert.
    Alert,
    /// Traffic stats, once a second.
    Stats,
    /// One sensor's health changed.
    Sensor,
}

impl Kind {
    /// Every kind, in label order.
    pub(crate) const ALL: [Kind; 4] = [Kind::Snapshot, Kind::Alert, Kind::Stats, Kind::Sensor];

    /// The `type` field of the message and the metric label.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::Alert => "alert",
            Kind::Stats => "stats",
            Kind::Sensor => "sensor",
        }
    }

    /// Index into [`Kind::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// One serialized message; the text is shared by every client it goes to.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    /// What it is.
    pub(crate) kind: Kind,
    /// The JSON text.
    pub(crate) text: Utf8Bytes,
}

/// Why a client's connection ended, as counted by
/// `netanalyzer_ws_disconnects_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed the connection (or it dropped).
    Closed,
    /// Reading or writing the socket failed.
    Error,
    /// Nothing (not even a pong) came from the client for too long.
    Timeout,
    /// Its queue went over the hard cap of alerts and sensor messages.
    Overflow,
    /// The server is shutting down.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in label order.
    pub(crate) const ALL: [CloseReason; 5] = [
        CloseReason::Closed,
        CloseReason::Error,
        CloseReason::Timeout,
        CloseReason::Overflow,
        CloseReason::Shutdown,
    ];

    /// The metric label.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Closed => "closed",
            CloseReason::Error => "error",
            CloseReason::Timeout => "timeout",
            CloseReason::Overflow => "overflow",
            CloseReason::Shutdown => "shutdown",
        }
    }

    /// Index into [`CloseReason::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// What [`ClientQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pushed {
    /// A `stats` message was dropped (the oldest queued, or the new one).
    pub(crate) stats_dropped: bool,
    /// The queue went over its hard cap and closed: disconnect the client.
    pub(crate) overflow: bool,
}

#[derive(Debug, Default)]
struct Inner {
    msgs: VecDeque<Msg>,
    stats_queued: usize,
    closed: Option<CloseReason>,
}

/// A client's bounded queue: the hub pushes (never waits), the client's
/// socket task takes.
#[derive(Debug)]
pub(crate) struct ClientQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    closing: Notify,
    soft: usize,
    hard: usize,
}

impl ClientQueue {
    /// An empty queue of `soft` messages, closing beyond `hard` (at least
    /// `soft`).
    pub(crate) fn new(soft: usize, hard: usize) -> Self {
        ClientQueue {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            closing: Notify::new(),
            soft: soft.max(1),
            hard: hard.max(soft.max(1)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves a consistent queue.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `m` by the policy of this module. Never blocks on the
    /// client; does nothing once closed.
    pub(crate) fn push(&self, m: Msg) -> Pushed {
        let mut out = Pushed::default();
        {
            let mut q = self.lock();
            if q.closed.is_some() {
                return out;
            }
            if q.msgs.len() >= self.soft {
                if q.stats_queued > 0 {
                    if let Some(i) = q.msgs.iter().position(|x| x.kind == Kind::Stats) {
                        q.msgs.remove(i);
                        q.stats_queued -= 1;
                        out.stats_dropped = true;
                    }
                } else if m.kind == Kind::Stats {
                    out.stats_dropped = true;
                    return out;
                }
                if q.msgs.len() >= self.hard {
                    q.closed = Some(CloseReason::Overflow);
                    q.msgs.clear();
                    q.stats_queued = 0;
                    out.overflow = true;
                    drop(q);
                    self.notify.notify_one();
                    self.closing.notify_one();
                    return out;
                }
            }
            if m.kind == Kind::Stats {
                q.stats_queued += 1;
            }
            q.msgs.push_back(m);
        }
        self.notify.notify_one();
        out
    }

    /// Closes the queue: the socket task ends with `reason` (the first
    /// reason given wins).
    pub(crate) fn close(&self, reason: CloseReason) {
        {
            let mut q = self.lock();
            if q.closed.is_none() {
                q.closed = Some(reason);
            }
        }
        self.notify.notify_one();
        self.closing.notify_one();
    }

    /// Waits until the queue is closed and returns why. Cancel-safe; meant
    /// for one waiter (the client's socket task).
    pub(crate) async fn wait_closed(&self) -> CloseReason {
        loop {
            let notified = self.closing.notified();
            if let Some(r) = self.closed() {
                return r;
            }
            notified.await;
        }
    }

    /// Why it was closed, if it was.
    pub(crate) fn closed(&self) -> Option<CloseReason> {
        self.lock().closed
    }

    /// Messages queued now.
    pub(crate) fn depth(&self) -> usize {
        self.lock().msgs.len()
    }

    /// Moves up to `max` queued messages into `out`, oldest first.
    ///
    /// # Errors
    ///
    /// The close reason once the queue is closed.
    pub(crate) fn take(&self, out: &mut Vec<Msg>, max: usize) -> Result<(), CloseReason> {
        let mut q = self.lock();
        if let Some(r) = q.closed {
            return Err(r);
        }
        let n = q.msgs.len().min(max);
        for m in q.msgs.drain(..n) {
            out.push(m);
        }
        q.stats_queued = q.msgs.iter().filter(|m| m.kind == Kind::Stats).count();
        Ok(())
    }

    /// Waits until messages are queued (moving up to `max` into `out`) or
    /// the queue closes. Cancel-safe.
    ///
    /// # Errors
    ///
    /// The close reason once the queue is closed.
    pub(crate) async fn next(&self, out: &mut Vec<Msg>, max: usize) -> Result<(), CloseReason> {
        loop {
            // `notify_one` stores a permit when nobody waits, so a push
            // between `take` and `notified` is not lost.
            let notified = self.notify.notified();
            self.take(out, max)?;
            if !out.is_empty() {
                return Ok(());
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: Kind, text: &str) -> Msg {
        Msg {
            kind,
            text: Utf8Bytes::from(text),
        }
    }

    fn texts(q: &ClientQueue) -> Vec<String> {
        let mut out = Vec::new();
        q.take(&mut out, usize::MAX).unwrap();
        out.iter().map(|m| m.text.to_string()).collect()
    }

    #[test]
    fn oldest_stats_dropped_alerts_kept() {
        let q = ClientQueue::new(3, 6);
        assert_eq!(q.push(msg(Kind::Stats, "s1")), Pushed::default());
        q.push(msg(Kind::Alert, "a1"));
        q.push(msg(Kind::Stats, "s2"));
        // Full: the oldest stats goes.
        let p = q.push(msg(Kind::Alert, "a2"));
        assert!(p.stats_dropped && !p.overflow);
        assert_eq!(q.depth(), 3);
        let p = q.push(msg(Kind::Stats, "s3"));
        assert!(p.stats_dropped);
        assert_eq!(texts(&q), ["a1", "a2", "s3"]);
    }

    #[test]
    fn alerts_go_over_soft_until_hard() {
        let q = ClientQueue::new(2, 4);
        for i in 0..4 {
            assert!(!q.push(msg(Kind::Alert, &format!("a{i}"))).overflow);
        }
        // No stats queued: a new stats is dropped, nothing else changes.
        let p = q.push(msg(Kind::Stats, "s"));
        assert!(p.stats_dropped && !p.overflow);
        assert_eq!(q.depth(), 4);
        let p = q.push(msg(Kind::Sensor, "x"));
        assert!(p.overflow);
        assert_eq!(q.closed(), Some(CloseReason::Overflow));
        assert_eq!(q.take(&mut Vec::new(), 1), Err(CloseReason::Overflow));
        // Closed: pushes are ignored, the first reason stays.
        assert_eq!(q.push(msg(Kind::Alert, "late")), Pushed::default());
        q.close(CloseReason::Shutdown);
        assert_eq!(q.closed(), Some(CloseReason::Overflow));
    }

    #[test]
    fn next_wakes_on_push_and_close() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let q = std::sync::Arc::new(ClientQueue::new(4, 8));
            let q2 = q.clone();
            let t = tokio::spawn(async move {
                let mut out = Vec::new();
                q2.next(&mut out, 10).await.unwrap();
                let first = out[0].text.to_string();
                out.clear();
                (first, q2.next(&mut out, 10).await)
            });
            tokio::task::yield_now().await;
            q.push(msg(Kind::Alert, "a"));
            tokio::task::yield_now().await;
            q.close(CloseReason::Shutdown);
            let (first, end) = t.await.unwrap();
            assert_eq!(first, "a");
            assert_eq!(end, Err(CloseReason::Shutdown));
        });
    }
}
