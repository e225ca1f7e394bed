//! The generic driver loop: pull records from a [`Source`], push them into
//! a [`Sink`]. No I/O and no clock of its own; the caller measures time and
//! draws progress from the callback.

use crate::{Control, PacketRecord, Sink, Source, SourceEvent};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// How [`pump`] runs.
#[derive(Debug, Clone, Copy)]
pub struct PumpOptions<'a> {
    /// Stop after this many packets were written (`None`: until the source
    /// ends). `Some(0)` reads nothing.
    pub max_packets: Option<u64>,
    /// Checked before every packet (one relaxed load); when it becomes
    /// `true` the pump stops, closes the sink and returns
    /// [`StopReason::Stopped`]. A Ctrl-C handler sets it.
    pub stop: Option<&'a AtomicBool>,
    /// Call the progress callback every this many packets (0 is taken as
    /// 1). It is also called on every [`SourceEvent::Idle`]. Default
    /// 16,384: a few dozen calls a second at millions of packets/s.
    pub progress_every: u64,
}

impl Default for PumpOptions<'_> {
    fn default() -> Self {
        PumpOptions {
            max_packets: None,
            stop: None,
            progress_every: 16_384,
        }
    }
}

/// Why [`pump`] stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The source reported [`SourceEvent::End`].
    End,
    /// [`PumpOptions::max_packets`] packets were written.
    MaxPackets,
    /// The [`PumpOptions::stop`] flag was set.
    Stopped,
    /// The sink returned [`Control::Stop`].
    SinkStopped,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::End => "end of input",
            StopReason::MaxPackets => "packet count reached",
            StopReason::Stopped => "stopped",
            StopReason::SinkStopped => "output stopped",
        })
    }
}

/// What a successful [`pump`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpReport {
    /// Packets written to the sink.
    pub packets: u64,
    /// Why the loop ended.
    pub reason: StopReason,
}

/// Why [`pump`] failed. In every case the sink was closed (flushed) before
/// returning, so the records written before the failure are kept.
#[derive(Debug)]
pub enum PumpError<SE, KE> {
    /// The source failed after `packets` packets were written.
    Source {
        /// The source's error.
        error: SE,
        /// Packets written before it.
        packets: u64,
        /// The sink's error from the final close, if that failed too.
        close: Option<KE>,
    },
    /// The sink failed (on write, tick or close) after `packets` packets.
    Sink {
        /// The sink's error.
        error: KE,
        /// Packets written successfully before it.
        packets: u64,
    },
}

impl<SE: fmt::Display, KE: fmt::Display> fmt::Display for PumpError<SE, KE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PumpError::Source { error, .. } => write!(f, "input failed: {error}"),
            PumpError::Sink { error, .. } => write!(f, "output failed: {error}"),
        }
    }
}

impl<SE, KE> std::error::Error for PumpError<SE, KE>
where
    SE: std::error::Error + 'static,
    KE: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PumpError::Source { error, .. } => Some(error),
            PumpError::Sink { error, .. } => Some(error),
        }
    }
}

/// Moves every packet of `source` into `sink`, then closes the sink.
///
/// The loop reuses one [`PacketRecord`]; it allocates nothing per packet.
/// `on_progress` is called with the source every
/// [`PumpOptions::progress_every`] packets and on every idle poll (after
/// [`Sink::tick`]), so a caller can read [`Source::stats`] or its own
/// counters (bytes read) and decide on its own clock whether to print.
///
/// # Errors
/// [`PumpError::Source`] when the source breaks (e.g. a corrupt file),
/// [`PumpError::Sink`] when the sink does. The sink is closed first in both
/// cases (best effort after a sink error).
pub fn pump<S, K>(
    source: &mut S,
    sink: &mut K,
    opts: &PumpOptions<'_>,
    mut on_progress: impl FnMut(&S),
) -> Result<PumpReport, PumpError<S::Error, K::Error>>
where
    S: Source + ?Sized,
    K: Sink<PacketRecord> + ?Sized,
{
    let every = opts.progress_every.max(1);
    let mut record = PacketRecord::default();
    let mut packets = 0u64;
    let mut until_progress = every;

    let reason = loop {
        if opts.max_packets.is_some_and(|max| packets >= max) {
            break StopReason::MaxPackets;
        }
        if opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break StopReason::Stopped;
        }
        match source.next_into(&mut record) {
            Ok(SourceEvent::Packet) => {
                let control = match sink.write(&record) {
                    Ok(c) => c,
                    Err(error) => return Err(sink_failed(sink, error, packets)),
                };
                packets += 1;
                until_progress -= 1;
                if until_progress == 0 {
                    until_progress = every;
                    on_progress(source);
                }
                if control == Control::Stop {
                    break StopReason::SinkStopped;
                }
            }
            Ok(SourceEvent::Idle) => {
                if let Err(error) = sink.tick() {
                    return Err(sink_failed(sink, error, packets));
                }
                on_progress(source);
            }
            Ok(SourceEvent::End) => break StopReason::End,
            Err(error) => {
                let close = sink.close().err();
                return Err(PumpError::Source {
                    error,
                    packets,
                    close,
                });
            }
        }
    };
    on_progress(source);
    sink.close()
        .map_err(|error| PumpError::Sink { error, packets })?;
    Ok(PumpReport { packets, reason })
}

fn sink_failed<SE, K: Sink<PacketRecord> + ?Sized>(
    sink: &mut K,
    error: K::Error,
    packets: u64,
) -> PumpError<SE, K::Error> {
    // Best effort: keep what can still be flushed; the first error wins.
    let _ = sink.close();
    PumpError::Sink { error, packets }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceStats;
    use std::collections::VecDeque;

    #[derive(Debug)]
    struct TestError(&'static str);
    impl fmt::Display for TestError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for TestError {}

    /// Scripted source: each step is a packet timestamp, an idle poll, or
    /// an error; then End.
    enum Step {
        Packet(u64),
        Idle,
        Fail,
    }

    struct ScriptSource {
        steps: VecDeque<Step>,
        stats: SourceStats,
        set_on_packet: Option<(u64, &'static AtomicBool)>,
    }

    impl ScriptSource {
        fn packets(n: u64) -> Self {
            ScriptSource {
                steps: (0..n).map(Step::Packet).collect(),
                stats: SourceStats::default(),
                set_on_packet: None,
            }
        }
    }

    impl Source for ScriptSource {
        type Error = TestError;
        fn next_into(&mut self, record: &mut PacketRecord) -> Result<SourceEvent, TestError> {
            match self.steps.pop_front() {
                Some(Step::Packet(ts)) => {
                    record.clear();
                    record.ts_ns = ts;
                    record.wire_len = 60;
                    self.stats.packets += 1;
                    self.stats.wire_bytes += 60;
                    if let Some((n, flag)) = self.set_on_packet {
                        if self.stats.packets == n {
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(SourceEvent::Packet)
                }
                Some(Step::Idle) => Ok(SourceEvent::Idle),
                Some(Step::Fail) => Err(TestError("corrupt")),
                None => Ok(SourceEvent::End),
            }
        }
        fn stats(&self) -> SourceStats {
            self.stats
        }
    }

    #[derive(Default)]
    struct VecSink {
        got: Vec<u64>,
        ticks: u32,
        closed: u32,
        stop_after: Option<usize>,
        fail_at: Option<usize>,
    }

    impl Sink for VecSink {
        type Error = TestError;
        fn write(&mut self, item: &PacketRecord) -> Result<Control, TestError> {
            if self.fail_at == Some(self.got.len()) {
                return Err(TestError("disk full"));
            }
            self.got.push(item.ts_ns);
            Ok(if self.stop_after == Some(self.got.len()) {
                Control::Stop
            } else {
                Control::Continue
            })
        }
        fn tick(&mut self) -> Result<(), TestError> {
            self.ticks += 1;
            Ok(())
        }
        fn close(&mut self) -> Result<(), TestError> {
            self.closed += 1;
            Ok(())
        }
    }

    #[test]
    fn copies_everything_and_closes_once() {
        let mut src = ScriptSource::packets(10);
        let mut sink = VecSink::default();
        let r = pump(&mut src, &mut sink, &PumpOptions::default(), |_| {}).unwrap();
        assert_eq!(
            r,
            PumpReport {
                packets: 10,
                reason: StopReason::End
            }
        );
        assert_eq!(sink.got, (0..10).collect::<Vec<_>>());
        assert_eq!(sink.closed, 1);
    }

    #[test]
    fn max_packets_stops_exactly() {
        let mut src = ScriptSource::packets(10);
        let mut sink = VecSink::default();
        let opts = PumpOptions {
            max_packets: Some(3),
            ..PumpOptions::default()
        };
        let r = pump(&mut src, &mut sink, &opts, |_| {}).unwrap();
        assert_eq!(
            r,
            PumpReport {
                packets: 3,
                reason: StopReason::MaxPackets
            }
        );
        assert_eq!(sink.got, vec![0, 1, 2]);
        // The source was not asked for a fourth packet.
        assert_eq!(src.stats().packets, 3);

        let mut sink = VecSink::default();
        let opts = PumpOptions {
            max_packets: Some(0),
            ..PumpOptions::default()
        };
        let r = pump(&mut src, &mut sink, &opts, |_| {}).unwrap();
        assert_eq!(r.packets, 0);
        assert_eq!(sink.closed, 1);
    }

    #[test]
    fn stop_flag_stops_and_closes() {
        static STOP: AtomicBool = AtomicBool::new(false);
        let mut src = ScriptSource::packets(100);
        src.set_on_packet = Some((5, &STOP));
        let mut sink = VecSink::default();
        let opts = PumpOptions {
            stop: Some(&STOP),
            ..PumpOptions::default()
        };
        let r = pump(&mut src, &mut sink, &opts, |_| {}).unwrap();
        assert_eq!(
            r,
            PumpReport {
                packets: 5,
                reason: StopReason::Stopped
            }
        );
        assert_eq!(sink.closed, 1);
    }

    #[test]
    fn sink_stop_is_honoured() {
        let mut src = ScriptSource::packets(10);
        let mut sink = VecSink {
            stop_after: Some(4),
            ..VecSink::default()
        };
        let r = pump(&mut src, &mut sink, &PumpOptions::default(), |_| {}).unwrap();
        assert_eq!(
            r,
            PumpReport {
                packets: 4,
                reason: StopReason::SinkStopped
            }
        );
    }

    #[test]
    fn progress_every_n_and_on_idle() {
        let mut src = ScriptSource::packets(0);
        src.steps = [
            Step::Packet(1),
            Step::Packet(2),
            Step::Idle,
            Step::Packet(3),
            Step::Packet(4),
            Step::Packet(5),
        ]
        .into_iter()
        .collect();
        let mut sink = VecSink::default();
        let opts = PumpOptions {
            progress_every: 2,
            ..PumpOptions::default()
        };
        let mut seen = Vec::new();
        pump(&mut src, &mut sink, &opts, |s| seen.push(s.stats().packets)).unwrap();
        // after 2 packets, on idle, after 4, and once at the end.
        assert_eq!(seen, vec![2, 2, 4, 5]);
        assert_eq!(sink.ticks, 1);
    }

    #[test]
    fn source_error_keeps_earlier_records_and_closes() {
        let mut src = ScriptSource::packets(0);
        src.steps = [
            Step::Packet(1),
            Step::Packet(2),
            Step::Fail,
            Step::Packet(3),
        ]
        .into_iter()
        .collect();
        let mut sink = VecSink::default();
        let err = pump(&mut src, &mut sink, &PumpOptions::default(), |_| {}).unwrap_err();
        match &err {
            PumpError::Source { packets, close, .. } => {
                assert_eq!(*packets, 2);
                assert!(close.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.to_string(), "input failed: corrupt");
        assert_eq!(sink.got, vec![1, 2]);
        assert_eq!(sink.closed, 1);
    }

    #[test]
    fn sink_error_is_reported_and_sink_closed() {
        let mut src = ScriptSource::packets(10);
        let mut sink = VecSink {
            fail_at: Some(3),
            ..VecSink::default()
        };
        let err = pump(&mut src, &mut sink, &PumpOptions::default(), |_| {}).unwrap_err();
        assert!(matches!(err, PumpError::Sink { packets: 3, .. }));
        assert_eq!(sink.closed, 1);
    }
}
