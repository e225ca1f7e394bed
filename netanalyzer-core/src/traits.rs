//! The four component traits. Every one is synchronous and push- or
//! pull-shaped so that a thread can drive it without an async runtime;
//! async services (the ingest server) wrap them at their edges.

use crate::{PacketRecord, ParseStats, Timestamp};

/// What [`Source::next_into`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEvent {
    /// The record was filled with the next packet.
    Packet,
    /// No packet arrived within the source's poll interval (live capture).
    /// The record is unspecified. The caller gets a chance to flush, check
    /// for shutdown and read [`Source::stats`], then calls again.
    Idle,
    /// The input is finished (end of file, or the source was stopped).
    End,
}

/// Counters a source keeps. Kernel counters are `None` where the source
/// has no kernel (files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceStats {
    /// Packets delivered to the caller.
    pub packets: u64,
    /// Sum of `wire_len` of those packets.
    pub wire_bytes: u64,
    /// Parse problems, by kind.
    pub parse: ParseStats,
    /// Packets the kernel received (libpcap `ps_recv`), summed over
    /// interfaces.
    pub kernel_received: Option<u64>,
    /// Packets the kernel dropped for lack of buffer space (`ps_drop`).
    pub kernel_dropped: Option<u64>,
    /// Packets the interface/driver dropped (`ps_ifdrop`).
    pub if_dropped: Option<u64>,
}

/// A producer of packet records: a capture file, a live interface.
///
/// Pull-shaped and allocation-free: the caller owns one record and passes
/// it in again and again; the source overwrites it. A malformed packet is
/// not an error: it is delivered with the fields that could be read and
/// counted in [`SourceStats::parse`]. An `Err` means the source itself
/// broke (a corrupt file, a vanished interface); the records delivered
/// before it stay valid.
///
/// ```
/// use netanalyzer_core::{PacketRecord, Source, SourceEvent};
///
/// fn count<S: Source>(src: &mut S) -> Result<u64, S::Error> {
///     let mut rec = PacketRecord::default();
///     let mut n = 0;
///     loop {
///         match src.next_into(&mut rec)? {
///             SourceEvent::Packet => n += 1,
///             SourceEvent::Idle => continue,
///             SourceEvent::End => return Ok(n),
///         }
///     }
/// }
/// ```
pub trait Source {
    /// The error that ends the source.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Fills `record` with the next packet.
    ///
    /// # Errors
    /// When the input cannot be read any further. Calling again after an
    /// error returns [`SourceEvent::End`] or the same error.
    fn next_into(&mut self, record: &mut PacketRecord) -> Result<SourceEvent, Self::Error>;

    /// The counters so far. Cheap; live sources refresh kernel counters
    /// about once a second.
    fn stats(&self) -> SourceStats;
}

impl<S: Source + ?Sized> Source for &mut S {
    type Error = S::Error;
    fn next_into(&mut self, record: &mut PacketRecord) -> Result<SourceEvent, Self::Error> {
        (**self).next_into(record)
    }
    fn stats(&self) -> SourceStats {
        (**self).stats()
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    type Error = S::Error;
    fn next_into(&mut self, record: &mut PacketRecord) -> Result<SourceEvent, Self::Error> {
        (**self).next_into(record)
    }
    fn stats(&self) -> SourceStats {
        (**self).stats()
    }
}

/// Whether a sink wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// The sink is done (e.g. a packet count was reached); the driver
    /// should stop feeding it and call [`Sink::close`].
    Stop,
}

/// A consumer of items, by default packet records: a JSON-lines file, CSV
/// files, the HTTP transport, a PostgreSQL COPY writer, a flow table.
///
/// Push-shaped, as ripgrep's `Sink`: the driver calls [`Sink::write`] for
/// each item by reference, so the sink encodes it straight into its own
/// buffer (no clone, no allocation per item) and batches as it likes.
/// [`Sink::tick`] is called when the source is idle so time-based batching
/// works without a clock in this crate. [`Sink::close`] must be called
/// once at the end; it flushes.
pub trait Sink<T: ?Sized = PacketRecord> {
    /// The error that stops the sink.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Takes one item.
    ///
    /// # Errors
    /// When the item cannot be accepted (I/O failure, full spool with a
    /// "fail" policy). The driver stops and reports it.
    fn write(&mut self, item: &T) -> Result<Control, Self::Error>;

    /// Gives a time-driven sink the chance to flush when no item arrives.
    ///
    /// # Errors
    /// As [`Sink::flush`].
    fn tick(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Pushes buffered items to their destination.
    ///
    /// # Errors
    /// When the destination refuses them.
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Flushes and releases resources. Called once, last.
    ///
    /// # Errors
    /// As [`Sink::flush`].
    fn close(&mut self) -> Result<(), Self::Error> {
        self.flush()
    }
}

impl<T: ?Sized, S: Sink<T> + ?Sized> Sink<T> for &mut S {
    type Error = S::Error;
    fn write(&mut self, item: &T) -> Result<Control, Self::Error> {
        (**self).write(item)
    }
    fn tick(&mut self) -> Result<(), Self::Error> {
        (**self).tick()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        (**self).flush()
    }
    fn close(&mut self) -> Result<(), Self::Error> {
        (**self).close()
    }
}

impl<T: ?Sized, S: Sink<T> + ?Sized> Sink<T> for Box<S> {
    type Error = S::Error;
    fn write(&mut self, item: &T) -> Result<Control, Self::Error> {
        (**self).write(item)
    }
    fn tick(&mut self) -> Result<(), Self::Error> {
        (**self).tick()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        (**self).flush()
    }
    fn close(&mut self) -> Result<(), Self::Error> {
        (**self).close()
    }
}

/// Turns packet records into flow records (or any other aggregate).
///
/// Three verbs, all driven by packet time, never a clock:
/// - [`Aggregator::ingest`] takes one packet. It may complete flows at
///   once (FIN in both directions, RST, eviction when the table is full,
///   interim updates of long flows) and pushes those to `out`.
/// - [`Aggregator::expire`] ends flows idle or active for too long as of
///   `now` (the latest packet time, or a live source's idle tick mapped
///   to packet time).
/// - [`Aggregator::drain`] ends every open flow (end of input).
///
/// The same code serves a pcap replay and a live capture, so both give
/// identical flows for identical packets.
pub trait Aggregator {
    /// What a completed (or updated) aggregate looks like.
    type Output;

    /// Takes one packet.
    fn ingest(&mut self, record: &PacketRecord, out: &mut Vec<Self::Output>);

    /// Emits what has timed out as of `now`.
    fn expire(&mut self, now: Timestamp, out: &mut Vec<Self::Output>);

    /// Emits everything still open and leaves the aggregator empty.
    fn drain(&mut self, out: &mut Vec<Self::Output>);
}

/// One classification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Index into [`Classifier::class_names`].
    pub class: usize,
    /// How sure the model is, in `[0, 1]` (for a forest: the fraction of
    /// trees voting for `class`).
    pub confidence: f64,
}

/// Labels a feature vector (one flow's features) with a class.
///
/// Features are passed in the order of [`Classifier::feature_names`]; a
/// caller must check those names against what it computes before use
/// (loading a model whose features do not match is refused).
pub trait Classifier {
    /// Why a prediction failed (e.g. a row of the wrong width).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The feature names, in input order.
    fn feature_names(&self) -> &[String];

    /// The class names, indexed by [`Prediction::class`].
    fn class_names(&self) -> &[String];

    /// Classifies one row.
    ///
    /// # Errors
    /// When `features.len()` differs from `feature_names().len()`.
    fn predict(&self, features: &[f64]) -> Result<Prediction, Self::Error>;

    /// Classifies many rows, appending to `out`. Override when the model
    /// is faster in bulk.
    ///
    /// # Errors
    /// As [`Classifier::predict`].
    fn predict_batch(
        &self,
        rows: &[Vec<f64>],
        out: &mut Vec<Prediction>,
    ) -> Result<(), Self::Error> {
        for r in rows {
            out.push(self.predict(r)?);
        }
        Ok(())
    }
}
