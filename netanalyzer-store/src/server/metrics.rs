//! The server's counters and their Prometheus text rendering.
//!
//! Counters are atomics bumped once per request or batch, never per
//! record. Every metric is listed in `docs/metrics.md`.

use crate::wire::RejectReason;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Status codes `/ingest_packets` can answer; anything else is `other`.
const CODES: [u16; 8] = [200, 400, 401, 403, 413, 415, 500, 503];

/// Reject labels beyond [`RejectReason::ALL`].
const EXTRA_REJECTS: [&str; 2] = ["queue_full", "db_down"];

/// Batches the `copy_rows_per_second` gauge averages over.
const RECENT_BATCHES: usize = 32;

/// Why an ingest request was refused, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RejectLabel {
    /// A decoding or request problem.
    Reason(RejectReason),
    /// The writer queue (or the decode slots) were full.
    QueueFull,
    /// The database is down.
    DbDown,
}

impl RejectLabel {
    /// The `reason` label / `error` field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RejectLabel::Reason(r) => r.as_str(),
            RejectLabel::QueueFull => EXTRA_REJECTS[0],
            RejectLabel::DbDown => EXTRA_REJECTS[1],
        }
    }

    fn index(self) -> usize {
        let n = RejectReason::ALL.len();
        match self {
            RejectLabel::Reason(r) => RejectReason::ALL.iter().position(|x| *x == r).unwrap_or(0),
            RejectLabel::QueueFull => n,
            RejectLabel::DbDown => n + 1,
        }
    }
}

/// All server counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: [AtomicU64; CODES.len() + 1],
    batches_stored: AtomicU64,
    batches_duplicate: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    rejects: [AtomicU64; RejectReason::ALL.len() + EXTRA_REJECTS.len()],
    copy_rows: AtomicU64,
    copy_nanos: AtomicU64,
    recent: Mutex<VecDeque<(u64, Duration)>>,
    db_errors: AtomicU64,
    reconnects: AtomicU64,
    partitions_created: AtomicU64,
    partitions_dropped: AtomicU64,
}

/// Values that are read from elsewhere at render time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    pub(crate) queue_depth: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) db_up: bool,
}

impl Metrics {
    /// One answered ingest request.
    pub(crate) fn request(&self, code: u16) {
        let i = CODES.iter().position(|c| *c == code).unwrap_or(CODES.len());
        self.requests[i].fetch_add(1, Relaxed);
    }

    /// One refused ingest request.
    pub(crate) fn reject(&self, label: RejectLabel) {
        self.rejects[label.index()].fetch_add(1, Relaxed);
    }

    /// Body bytes read (as sent, before decompression).
    pub(crate) fn body_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Relaxed);
    }

    /// A batch committed with `rows` records, its transaction taking `took`.
    pub(crate) fn stored(&self, rows: u64, took: Duration) {
        self.batches_stored.fetch_add(1, Relaxed);
        self.records.fetch_add(rows, Relaxed);
        self.copy_rows.fetch_add(rows, Relaxed);
        self.copy_nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT_BATCHES {
                recent.pop_front();
            }
            recent.push_back((rows, took));
        }
    }

    /// A batch that was already stored (acknowledged, nothing written).
    pub(crate) fn duplicate(&self) {
        self.batches_duplicate.fetch_add(1, Relaxed);
    }

    /// A failed database operation.
    pub(crate) fn db_error(&self) {
        self.db_errors.fetch_add(1, Relaxed);
    }

    /// A connection re-established after a failure.
    pub(crate) fn reconnect(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    /// Partitions created and dropped by maintenance.
    pub(crate) fn partitions(&self, created: u64, dropped: u64) {
        self.partitions_created.fetch_add(created, Relaxed);
        self.partitions_dropped.fetch_add(dropped, Relaxed);
    }

    /// Rows per second over the last stored batches (0 before any).
    fn recent_rows_per_second(&self) -> f64 {
        let Ok(recent) = self.recent.lock() else {
            return 0.0;
        };
        let rows: u64 = recent.iter().map(|(r, _)| r).sum();
        let secs: f64 = recent.iter().map(|(_, d)| d.as_secs_f64()).sum();
        if secs > 0.0 {
            rows as f64 / secs
        } else {
            0.0
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self, g: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        header(
            o,
            "netanalyzer_ingest_requests_total",
            "counter",
            "Answered POST /ingest_packets requests, by HTTP status code.",
        );
        for (i, n) in self.requests.iter().enumerate() {
            let code = CODES.get(i).map_or("other".to_owned(), |c| c.to_string());
            let _ = writeln!(
                o,
                "netanalyzer_ingest_requests_total{{code=\"{code}\"}} {}",
                n.load(Relaxed)
            );
        }
        header(
            o,
            "netanalyzer_ingest_batches_total",
            "counter",
            "Batches acknowledged: stored (committed now) or duplicate (committed before).",
        );
        let _ = writeln!(
            o,
            "netanalyzer_ingest_batches_total{{outcome=\"stored\"}} {}\n\
             netanalyzer_ingest_batches_total{{outcome=\"duplicate\"}} {}",
            self.batches_stored.load(Relaxed),
            self.batches_duplicate.load(Relaxed)
        );
        counter(
            o,
            "netanalyzer_ingest_records_total",
            "Records committed to raw_packets (duplicates not counted).",
            self.records.load(Relaxed),
        );
        counter(
            o,
            "netanalyzer_ingest_bytes_total",
            "Request body bytes read, as sent (before zstd decompression).",
            self.bytes.load(Relaxed),
        );
        header(
            o,
            "netanalyzer_ingest_rejects_total",
            "counter",
            "Refused ingest requests, by reason (the error field of the answer).",
        );
        for (i, n) in self.rejects.iter().enumerate() {
            let label = match RejectReason::ALL.get(i) {
                Some(r) => r.as_str(),
                None => EXTRA_REJECTS[i - RejectReason::ALL.len()],
            };
            let _ = writeln!(
                o,
                "netanalyzer_ingest_rejects_total{{reason=\"{label}\"}} {}",
                n.load(Relaxed)
            );
        }
        gauge(
            o,
            "netanalyzer_ingest_queue_depth",
            "Decoded batches waiting for a writer.",
            g.queue_depth as f64,
        );
        gauge(
            o,
            "netanalyzer_ingest_queue_capacity",
            "Capacity of the writer queue, in batches.",
            g.queue_capacity as f64,
        );
        counter(
            o,
            "netanalyzer_store_copy_rows_total",
            "Rows written by committed batch transactions.",
            self.copy_rows.load(Relaxed),
        );
        header(
            o,
            "netanalyzer_store_copy_seconds_total",
            "counter",
            "Seconds spent in committed batch transactions (rows/s = rate of rows / rate of this).",
        );
        let _ = writeln!(
            o,
            "netanalyzer_store_copy_seconds_total {}",
            self.copy_nanos.load(Relaxed) as f64 / 1e9
        );
        gauge(
            o,
            "netanalyzer_store_copy_rows_per_second",
            "Rows per second of transaction time over the last 32 stored batches.",
            self.recent_rows_per_second(),
        );
        counter(
            o,
            "netanalyzer_store_db_errors_total",
            "Failed database operations (connect, write, maintenance).",
            self.db_errors.load(Relaxed),
        );
        gauge(
            o,
            "netanalyzer_store_db_up",
            "1 when the database answers, 0 while it is down.",
            if g.db_up { 1.0 } else { 0.0 },
        );
        counter(
            o,
            "netanalyzer_store_reconnects_total",
            "Database connections re-established after a failure.",
            self.reconnects.load(Relaxed),
        );
        counter(
            o,
            "netanalyzer_store_partitions_created_total",
            "Daily raw_packets partitions created by maintenance.",
            self.partitions_created.load(Relaxed),
        );
        counter(
            o,
            "netanalyzer_store_partitions_dropped_total",
            "Daily raw_packets partitions dropped by retention.",
            self.partitions_dropped.load(Relaxed),
        );
        out
    }
}

/// Appends one metric family in the Prometheus text format: `# HELP`,
/// `# TYPE` (`counter` or `gauge`) and one sample per `(labels, value)`;
/// `labels` is the text between the braces (`reason="x"`, values escaped
/// with [`escape_label_value`]), or empty for an unlabelled sample. Shared
/// by the server's and the aggregator's `/metrics`.
pub fn write_family<L: AsRef<str>>(
    o: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    series: &[(L, f64)],
) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in series {
        let labels = labels.as_ref();
        if labels.is_empty() {
            let _ = writeln!(o, "{name} {v}");
        } else {
            let _ = writeln!(o, "{name}{{{labels}}} {v}");
        }
    }
}

/// Escapes a label value for the Prometheus text format (`\`, `"`, newline).
pub fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    write_family::<&str>(o, name, kind, help, &[]);
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    header(o, name, "counter", help);
    let _ = writeln!(o, "{name} {v}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: f64) {
    write_family(o, name, "gauge", help, &[("", v)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_help_and_type() {
        let m = Metrics::default();
        m.request(200);
        m.request(418);
        m.reject(RejectLabel::QueueFull);
        m.reject(RejectLabel::Reason(RejectReason::BadZstd));
        m.stored(1000, Duration::from_millis(10));
        let text = m.render(Gauges {
            queue_depth: 1,
            queue_capacity: 8,
            db_up: true,
        });
        assert!(text.contains("netanalyzer_ingest_requests_total{code=\"200\"} 1\n"));
        assert!(text.contains("netanalyzer_ingest_requests_total{code=\"other\"} 1\n"));
        assert!(text.contains("netanalyzer_ingest_rejects_total{reason=\"queue_full\"} 1\n"));
        assert!(text.contains("netanalyzer_ingest_rejects_total{reason=\"bad_zstd\"} 1\n"));
        assert!(text.contains("netanalyzer_ingest_rejects_total{reason=\"db_down\"} 0\n"));
        assert!(text.contains("netanalyzer_store_copy_rows_per_second 100000\n"));
        assert!(text.contains("netanalyzer_store_db_up 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
