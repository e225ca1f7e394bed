//! Replay at capture speed: [`Paced`] wraps a [`Source`] (a capture file)
//! and hands each packet over no earlier than its capture timestamp says,
//! relative to the first packet: packet `p` is due at
//! `first_wall + (p.ts - first.ts) / speed`. `netanalyzer-sniffer
//! --realtime` / `--replay-speed X` use it so that a generated scenario
//! reaches the server, the aggregator and the dashboard as it would from a
//! live interface.
//!
//! - The schedule is absolute (from the first packet), so sleep overshoot
//!   never accumulates: a packet that is late goes at once, and the next
//!   ones catch up.
//! - No busy loop: the thread sleeps. Packets due within [`EARLY`] go at
//!   once (a sleep that short costs more than it is worth).
//! - A long wait is cut into sleeps of at most [`TICK`], each followed by
//!   a [`SourceEvent::Idle`], so the caller can flush batches by time and
//!   notice Ctrl-C. The packet read ahead is held in a spare record
//!   (swapped, not cloned): no per-packet allocation.
//! - Timestamps that go backwards are due at once.
//!
//! ```
//! use netanalyzer_core::{PacketRecord, Source, SourceEvent, SourceStats};
//! use netanalyzer_examples::pace::Paced;
//! # #[derive(Default)] struct Two(u64);
//! # impl Source for Two {
//! #     type Error = std::io::Error;
//! #     fn next_into(&mut self, r: &mut PacketRecord) -> std::io::Result<SourceEvent> {
//! #         self.0 += 1;
//! #         if self.0 > 2 { return Ok(SourceEvent::End) }
//! #         r.ts_ns = self.0 * 20_000_000;
//! #         Ok(SourceEvent::Packet)
//! #     }
//! #     fn stats(&self) -> SourceStats { SourceStats::default() }
//! # }
//! // Two packets 20 ms apart, replayed at twice their speed: about 10 ms.
//! let mut src = Paced::new(Two::default(), Some(2.0));
//! let mut rec = PacketRecord::default();
//! let t0 = std::time::Instant::now();
//! while src.next_into(&mut rec)? != SourceEvent::End {}
//! assert!(t0.elapsed() >= std::time::Duration::from_millis(10));
//! # Ok::<(), std::io::Error>(())
//! ```
use netanalyzer_core::{PacketRecord, Source, SourceEvent, SourceStats};
use std::time::{Duration, Instant};

/// Longest sleep before the caller gets an [`SourceEvent::Idle`].
pub const TICK: Duration = Duration::from_millis(100);
/// Packets due within this much are handed over without sleeping.
pub const EARLY: Duration = Duration::from_millis(1);

/// A source paced by its packets' timestamps (see the module docs).
#[derive(Debug)]
pub struct Paced<S> {
    inner: S,
    /// `None`: no pacing, a plain pass-through.
    speed: Option<f64>,
    /// Wall time and capture time of the first packet.
    first: Option<(Instant, u64)>,
    /// Whether `spare` holds a packet read ahead and not yet handed over.
    held: bool,
    /// Boxed: a record is large, and the wrapper sits in enums.
    spare: Box<PacketRecord>,
    /// When the held packet is due.
    due: Instant,
    /// When the caller last got an `Idle` (or the pacing started).
    last_idle: Instant,
}

impl<S> Paced<S> {
    /// Wraps `inner`; `speed` is the replay speed (1.0 = as captured,
    /// 2.0 = twice as fast), `None` for no pacing. A speed that is not a
    /// positive finite number means no pacing.
    pub fn new(inner: S, speed: Option<f64>) -> Paced<S> {
        let now = Instant::now();
        Paced {
            inner,
            speed: speed.filter(|s| s.is_finite() && *s > 0.0),
            first: None,
            held: false,
            spare: Box::default(),
            due: now,
            last_idle: now,
        }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The replay speed, `None` when not paced.
    pub fn speed(&self) -> Option<f64> {
        self.speed
    }

    fn due_of(&mut self, ts_ns: u64, speed: f64) -> Instant {
        let (wall, ts0) = *self.first.get_or_insert_with(|| (Instant::now(), ts_ns));
        let offset = ts_ns.saturating_sub(ts0) as f64 / speed;
        // Far beyond any capture (years): clamp instead of overflowing.
        wall + Duration::from_nanos(offset.min(1e18) as u64)
    }
}

impl<S: Source> Source for Paced<S> {
    type Error = S::Error;

    fn next_into(&mut self, record: &mut PacketRecord) -> Result<SourceEvent, S::Error> {
        let Some(speed) = self.speed else {
            return self.inner.next_into(record);
        };
        if self.held {
            std::mem::swap(record, &mut *self.spare);
            self.held = false;
        } else {
            match self.inner.next_into(record)? {
                SourceEvent::Packet => {}
                other => return Ok(other),
            }
            self.due = self.due_of(record.ts_ns, speed);
        }
        let now = Instant::now();
        if self.due <= now + EARLY {
            return Ok(SourceEvent::Packet);
        }
        let tick_at = (self.last_idle + TICK).max(now);
        let wake = self.due.min(tick_at);
        if wake > now {
            std::thread::sleep(wake - now);
        }
        if wake < self.due {
            // Woken for a tick: keep the packet and let the caller flush.
            std::mem::swap(record, &mut *self.spare);
            self.held = true;
            self.last_idle = Instant::now();
            return Ok(SourceEvent::Idle);
        }
        Ok(SourceEvent::Packet)
    }

    fn stats(&self) -> SourceStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// Packets at the given capture times (ms), then End.
    struct Script {
        ts_ms: Vec<u64>,
        next: usize,
    }

    impl Script {
        fn new(ts_ms: &[u64]) -> Script {
            Script {
                ts_ms: ts_ms.to_vec(),
                next: 0,
            }
        }
    }

    impl Source for Script {
        type Error = Infallible;
        fn next_into(&mut self, r: &mut PacketRecord) -> Result<SourceEvent, Infallible> {
            let Some(&ms) = self.ts_ms.get(self.next) else {
                return Ok(SourceEvent::End);
            };
            self.next += 1;
            r.ts_ns = 1_700_000_000_000_000_000 + ms * 1_000_000;
            r.src_port = Some(u16::try_from(self.next).unwrap());
            Ok(SourceEvent::Packet)
        }
        fn stats(&self) -> SourceStats {
            SourceStats {
                packets: self.next as u64,
                ..SourceStats::default()
            }
        }
    }

    /// Runs the source to the end: (arrival offset from start, capture ms
    /// offset, src_port) per packet, and the number of Idle events.
    fn run(src: &mut Paced<Script>) -> (Vec<(Duration, u64, u16)>, usize) {
        let mut rec = PacketRecord::default();
        let start = Instant::now();
        let mut got = Vec::new();
        let mut idles = 0;
        loop {
            match src.next_into(&mut rec).unwrap() {
                SourceEvent::Packet => got.push((
                    start.elapsed(),
                    (rec.ts_ns - 1_700_000_000_000_000_000) / 1_000_000,
                    rec.src_port.unwrap(),
                )),
                SourceEvent::Idle => idles += 1,
                SourceEvent::End => return (got, idles),
            }
        }
    }

    #[test]
    fn no_packet_goes_before_it_is_due_and_none_is_late() {
        let ts = [0, 30, 60, 60, 90, 250];
        let mut src = Paced::new(Script::new(&ts), Some(1.0));
        let (got, _) = run(&mut src);
        assert_eq!(got.len(), ts.len());
        for (i, (at, ms, port)) in got.iter().enumerate() {
            assert_eq!(*ms, ts[i], "order kept");
            assert_eq!(
                usize::from(*port),
                i + 1,
                "the held record is the packet read"
            );
            let due = Duration::from_millis(*ms);
            assert!(*at + EARLY >= due, "packet {i} at {at:?}, due {due:?}");
            assert!(
                *at < due + Duration::from_millis(40),
                "packet {i} late: {at:?}"
            );
        }
    }

    #[test]
    fn speed_scales_the_schedule() {
        let ts = [0, 100, 200, 400];
        let mut src = Paced::new(Script::new(&ts), Some(4.0));
        let t0 = Instant::now();
        let (got, _) = run(&mut src);
        let took = t0.elapsed();
        assert_eq!(got.len(), 4);
        assert!(took >= Duration::from_millis(99), "{took:?}");
        assert!(took < Duration::from_millis(200), "{took:?}");
    }

    #[test]
    fn a_long_gap_yields_idle_ticks() {
        let mut src = Paced::new(Script::new(&[0, 550, 560]), Some(1.0));
        let (got, idles) = run(&mut src);
        assert_eq!(got.len(), 3);
        // 550 ms of waiting in sleeps of at most TICK (100 ms).
        assert!((4..=7).contains(&idles), "{idles} idle events");
        assert_eq!(got[1].2, 2);
    }

    #[test]
    fn backwards_timestamps_go_at_once_and_unpaced_passes_through() {
        let mut src = Paced::new(Script::new(&[200, 100, 0]), Some(1.0));
        let t0 = Instant::now();
        let (got, idles) = run(&mut src);
        assert_eq!((got.len(), idles), (3, 0));
        assert!(t0.elapsed() < Duration::from_millis(50));

        let mut src = Paced::new(Script::new(&[0, 5_000]), None);
        let t0 = Instant::now();
        let (got, _) = run(&mut src);
        assert_eq!(got.len(), 2);
        assert!(t0.elapsed() < Duration::from_millis(50));
        assert_eq!(src.stats().packets, 2);
        assert_eq!(Paced::new(Script::new(&[]), Some(f64::NAN)).speed(), None);
    }
}
