//! The HTTP transport against a scripted HTTP/1.1 server on loopback:
//! batching, keep-alive, outages with spool and replay, Retry-After,
//! restarts, the spool-full policies, drain timeout, corrupt segments and
//! fatal answers, and several requests in flight (`senders`). Records carry
//! their index in `ts_ns`, so the server's log proves no loss and no
//! duplicates. Tests of strict order set `senders = 1`; with K senders the
//! order is only guaranteed within a window of K ([`assert_window`]).

use netanalyzer_core::{PacketRecord, Protocol, Sink};
use netanalyzer_store::transport::testing::{Reply, ScriptedServer, ServerLog};
use netanalyzer_store::transport::{HttpSink, HttpSinkConfig, SpoolFullPolicy};
use netanalyzer_store::wire::Compression;
use netanalyzer_store::StoreError;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SENSOR: &str = "test-sensor";

fn record(i: u64) -> PacketRecord {
    PacketRecord {
        ts_ns: i,
        wire_len: 60,
        cap_len: 60,
        protocol: Protocol::Tcp,
        ..PacketRecord::default()
    }
}

fn config(server: &ScriptedServer, spool: &Path, batch: usize) -> HttpSinkConfig {
    let mut c = HttpSinkConfig::new(server.url(), SENSOR, spool);
    c.batch_size = batch;
    c.batch_interval = Duration::from_secs(3600);
    c.drain_timeout = Duration::from_secs(10);
    c.request_timeout = Duration::from_secs(2);
    c
}

fn write_range(sink: &mut HttpSink, range: std::ops::Range<u64>) {
    for i in range {
        sink.write(&record(i)).unwrap();
    }
}

/// Every record id the server stored, asserting each arrived once.
fn stored_ids(log: &ServerLog) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    for b in &log.stored {
        for &t in &b.ts {
            assert!(ids.insert(t), "record {t} stored twice");
        }
    }
    ids
}

/// With `k` senders, replay starts oldest first and completes reordered
/// within a window of `k`: the i-th batch the server stored is at most the
/// (i + k)-th oldest. `order` lists the send order (oldest first) as
/// (stream, seq).
fn assert_window(log: &ServerLog, order: &[(u64, u64)], k: usize) {
    assert_eq!(log.stored.len(), order.len());
    for (i, b) in log.stored.iter().enumerate() {
        let rank = order
            .iter()
            .position(|&o| o == (b.stream_id, b.seq))
            .unwrap();
        assert!(
            rank < i + k,
            "stored #{i} is the {rank}th oldest batch, beyond a window of {k}"
        );
    }
}

/// With the server down, writes records `0..n` in batches of 10 with one
/// sender (so batch i is segment i) and gives up draining at once: every
/// batch stays in the spool. Returns the config, to start again with.
fn spool_while_down(server: &ScriptedServer, spool: &Path, n: u64) -> HttpSinkConfig {
    let mut cfg = config(server, spool, 10);
    cfg.drain_timeout = Duration::from_millis(200);
    cfg.senders = 1;
    let mut first = HttpSink::new(cfg.clone()).unwrap();
    write_range(&mut first, 0..n);
    assert!(first.close().is_err());
    cfg
}

fn all(n: u64) -> BTreeSet<u64> {
    (0..n).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nab"))
        .collect();
    v.sort();
    v
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn batches_at_n_records_over_one_connection() {
    let server = ScriptedServer::start();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 100);
    cfg.senders = 1; // strict order, one connection
    let mut sink = HttpSink::new(cfg).unwrap();
    write_range(&mut sink, 0..1000);
    sink.close().unwrap();

    let log = server.log();
    assert_eq!(
        log.stored
            .iter()
            .map(|b| (b.seq, b.count))
            .collect::<Vec<_>>(),
        (0..10).map(|s| (s, 100)).collect::<Vec<_>>()
    );
    assert!(log.stored.iter().all(|b| b.sensor_id == SENSOR));
    assert!(log
        .stored
        .iter()
        .all(|b| b.stream_id == sink.stats().stream_id));
    assert_eq!(stored_ids(&log), all(1000));
    assert!(log.requests.iter().all(|r| {
        r.content_encoding.as_deref() == Some("zstd")
            && r.content_type.as_deref() == Some("application/vnd.netanalyzer.batch+msgpack")
            && r.authorization.is_none()
    }));
    // Keep-alive: one agent, one connection for every batch.
    assert_eq!(server.connections(), 1);
    let st = sink.stats();
    assert_eq!((st.batches_acked, st.records_acked), (10, 1000));
    assert_eq!((st.spool_batches, st.queue_depth, st.retries), (0, 0, 0));
    assert_eq!(files_in(spool.path()), 0);
}

#[test]
fn batches_at_t_on_tick_and_in_write() {
    let server = ScriptedServer::start();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 1_000_000);
    cfg.batch_interval = Duration::from_millis(150);
    cfg.compression = Compression::None;
    cfg.token = Some("s3cret".into());
    let mut sink = HttpSink::new(cfg).unwrap();

    // An idle source: tick() seals the batch once the interval passed.
    write_range(&mut sink, 0..10);
    sink.tick().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    sink.tick().unwrap();
    assert!(server.wait_for(Duration::from_secs(5), |l| l.stored.len() == 1));

    // A busy source: write() reads the clock every 256 records.
    sink.write(&record(10)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    write_range(&mut sink, 11..311);
    assert!(server.wait_for(Duration::from_secs(5), |l| l.stored.len() == 2));
    sink.close().unwrap();

    let log = server.log();
    let counts: Vec<usize> = log.stored.iter().map(|b| b.count).collect();
    assert_eq!(counts, [10, 257, 44]);
    assert_eq!(stored_ids(&log), all(311));
    assert!(log.requests.iter().all(|r| {
        r.content_encoding.is_none() && r.authorization.as_deref() == Some("Bearer s3cret")
    }));
}

#[test]
fn outage_spools_and_replays_in_order() {
    outage_spools_and_replays(1);
}

#[test]
fn outage_spools_and_replays_oldest_first_with_two_senders() {
    outage_spools_and_replays(2);
}

fn outage_spools_and_replays(senders: usize) {
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 50);
    cfg.senders = senders;
    let mut sink = HttpSink::new(cfg).unwrap();
    write_range(&mut sink, 0..500);
    sink.flush().unwrap();
    // Everything ends up on disk while the server is unreachable.
    let end = Instant::now() + Duration::from_secs(5);
    while sink.stats().spool_batches < 10 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let st = sink.stats();
    assert_eq!((st.spool_batches, st.spool_records), (10, 500));
    assert!(st.retries >= 1 && st.last_error.is_some(), "{st:?}");
    assert_eq!(segments(spool.path()).len(), 10);

    // Writing goes on during the outage.
    write_range(&mut sink, 500..600);
    server.up();
    sink.close().unwrap();

    let log = server.log();
    assert_eq!(stored_ids(&log), all(600));
    let seqs: Vec<u64> = log.stored.iter().map(|b| b.seq).collect();
    if senders == 1 {
        assert_eq!(seqs, (0..12).collect::<Vec<_>>(), "replayed in order");
    }
    let stream = sink.stream_id();
    let order: Vec<(u64, u64)> = (0..12).map(|s| (stream, s)).collect();
    assert_window(&log, &order, senders);
    assert_eq!(log.duplicates, 0, "no batch sent twice");
    let st = sink.stats();
    assert_eq!((st.records_acked, st.spool_batches), (600, 0));
    assert!(segments(spool.path()).is_empty());
}

#[test]
fn busy_server_retry_after_is_honoured() {
    let server = ScriptedServer::start();
    server.push(&[Reply::Busy(503, 1), Reply::Busy(429, 1)]);
    let spool = tempfile::tempdir().unwrap();
    let mut sink = HttpSink::new(config(&server, spool.path(), 10)).unwrap();
    write_range(&mut sink, 0..10);
    sink.close().unwrap();

    let log = server.log();
    let statuses: Vec<u16> = log.requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 429, 200]);
    for w in log.requests.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    }
    assert_eq!(stored_ids(&log), all(10));
    assert_eq!(sink.stats().retries, 2);
}

#[test]
fn restart_sends_the_old_segments_first() {
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 100);
    cfg.drain_timeout = Duration::from_millis(300);
    cfg.senders = 1; // strict order
    let mut first = HttpSink::new(cfg.clone()).unwrap();
    let old_stream = first.stream_id();
    write_range(&mut first, 0..300);
    assert!(matches!(
        first.close(),
        Err(StoreError::DrainTimeout {
            remaining_records: 300,
            remaining_batches: 3,
            ..
        })
    ));
    drop(first);
    assert_eq!(segments(spool.path()).len(), 3);

    server.up();
    cfg.drain_timeout = Duration::from_secs(10);
    let mut second = HttpSink::new(cfg).unwrap();
    assert_ne!(second.stream_id(), old_stream);
    write_range(&mut second, 300..350);
    second.close().unwrap();

    let log = server.log();
    let order: Vec<(u64, u64)> = log.stored.iter().map(|b| (b.stream_id, b.seq)).collect();
    let new_stream = second.stream_id();
    assert_eq!(
        order,
        [
            (old_stream, 0),
            (old_stream, 1),
            (old_stream, 2),
            (new_stream, 0)
        ]
    );
    assert_eq!(stored_ids(&log), all(350));
    assert!(segments(spool.path()).is_empty());
}

#[test]
fn a_resent_batch_is_harmless() {
    // The acknowledgement of a stored batch is lost (the server stored it,
    // then the connection died): the restarted sensor resends it, the
    // server answers duplicate.
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = spool_while_down(&server, spool.path(), 10);
    let seg = segments(spool.path()).remove(0);
    let copy = std::fs::read(&seg).unwrap();
    server.up();
    cfg.drain_timeout = Duration::from_secs(10);
    let mut again = HttpSink::new(cfg.clone()).unwrap();
    again.close().unwrap();
    drop(again);
    std::fs::write(&seg, copy).unwrap();
    let mut third = HttpSink::new(cfg).unwrap();
    third.close().unwrap();
    assert_eq!(third.stats().batches_duplicate, 1);
    let log = server.log();
    assert_eq!((log.duplicates, log.stored.len()), (1, 1));
    assert_eq!(stored_ids(&log), all(10));
}

#[test]
fn spool_full_drop_newest_counts_every_dropped_record() {
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 100);
    cfg.compression = Compression::None;
    cfg.spool_full = SpoolFullPolicy::DropNewest;
    cfg.spool_max_bytes = 20_000; // a few batches of 100 records
    let mut sink = HttpSink::new(cfg).unwrap();
    write_range(&mut sink, 0..2000);
    sink.flush().unwrap();
    let st = sink.stats();
    assert!(st.dropped_records > 0, "{st:?}");
    assert_eq!(st.dropped_records, st.dropped_batches * 100);
    server.up();
    let end = Instant::now() + Duration::from_secs(10);
    while sink.stats().spool_batches > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Written after the drops, once the spool has room: reports them.
    write_range(&mut sink, 2000..2010);
    sink.close().unwrap();

    let st = sink.stats();
    let log = server.log();
    let stored = stored_ids(&log);
    assert_eq!(stored.len() as u64 + st.dropped_records, 2010, "{st:?}");
    assert!(stored.contains(&2009));
    assert_eq!(st.records_acked, stored.len() as u64);
    // The sensor reports its drops to the server with the next batches.
    let reported = log
        .stored
        .iter()
        .filter_map(|b| b.stats.as_ref())
        .map(|s| s.dropped_records)
        .max();
    assert!(reported.unwrap_or(0) > 0);
}

#[test]
fn spool_full_block_waits_for_the_server() {
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 100);
    cfg.compression = Compression::None;
    cfg.spool_max_bytes = 20_000;
    let mut sink = HttpSink::new(cfg).unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let w = Arc::clone(&written);
    let writer = std::thread::spawn(move || {
        for i in 0..2000 {
            sink.write(&record(i)).unwrap();
            w.store(i + 1, Ordering::SeqCst);
        }
        sink.close().unwrap();
        sink
    });
    std::thread::sleep(Duration::from_millis(500));
    let before = written.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(written.load(Ordering::SeqCst), before, "write() must block");
    assert!(before < 2000);
    server.up();
    let sink = writer.join().unwrap();
    let log = server.log();
    assert_eq!(stored_ids(&log), all(2000));
    let st = sink.stats();
    assert_eq!((st.dropped_records, st.records_acked), (0, 2000));
}

#[test]
fn drain_timeout_reports_exactly_what_is_left() {
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 100);
    cfg.drain_timeout = Duration::from_millis(300);
    let mut sink = HttpSink::new(cfg).unwrap();
    write_range(&mut sink, 0..250);
    let t0 = Instant::now();
    match sink.close() {
        Err(StoreError::DrainTimeout {
            remaining_records,
            remaining_batches,
            spool_dir,
        }) => {
            assert_eq!((remaining_records, remaining_batches), (250, 3));
            assert_eq!(spool_dir, spool.path());
        }
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(segments(spool.path()).len(), 3);
    let e = StoreError::DrainTimeout {
        remaining_records: 250,
        remaining_batches: 3,
        spool_dir: "/x".into(),
    };
    assert_eq!(
        e.to_string(),
        "250 records in 3 batches remain in the spool at /x"
    );
}

#[test]
fn corrupt_segments_are_quarantined() {
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = spool_while_down(&server, spool.path(), 40);
    let segs = segments(spool.path());
    assert_eq!(segs.len(), 4);
    // A flipped bit in a body (found at replay), a torn file (found at
    // open), and garbage under a segment name.
    let mut data = std::fs::read(&segs[1]).unwrap();
    let last = data.len() - 1;
    data[last] ^= 1;
    std::fs::write(&segs[1], data).unwrap();
    let data = std::fs::read(&segs[2]).unwrap();
    std::fs::write(&segs[2], &data[..data.len() / 2]).unwrap();
    std::fs::write(
        spool.path().join("seg-00000000000000000001.nab"),
        b"not a segment",
    )
    .unwrap();
    std::fs::write(spool.path().join("seg-x.nab.tmp"), b"torn").unwrap();

    server.up();
    cfg.drain_timeout = Duration::from_secs(10);
    let mut sink = HttpSink::new(cfg).unwrap();
    sink.close().unwrap();
    assert_eq!(sink.stats().corrupt_segments, 3);
    assert_eq!(files_in(&spool.path().join("corrupt")), 3);
    assert!(segments(spool.path()).is_empty());
    let log = server.log();
    let ids = stored_ids(&log);
    assert_eq!(ids, (0..10).chain(30..40).collect());
}

#[test]
fn unauthorized_is_fatal_and_keeps_the_batch() {
    let server = ScriptedServer::start();
    server.set_default(Reply::Status(401));
    let spool = tempfile::tempdir().unwrap();
    let mut sink = HttpSink::new(config(&server, spool.path(), 10)).unwrap();
    write_range(&mut sink, 0..10);
    assert!(server.wait_for(Duration::from_secs(5), |l| !l.requests.is_empty()));
    let end = Instant::now() + Duration::from_secs(5);
    let err = loop {
        match sink.write(&record(10)) {
            Err(e) => break e,
            Ok(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Ok(_) => panic!("no error after 401"),
        }
    };
    assert!(
        matches!(err, StoreError::Rejected { status: 401, .. }),
        "{err}"
    );
    assert!(matches!(
        sink.close(),
        Err(StoreError::Rejected { status: 401, .. })
    ));
    let st = sink.stats();
    assert_eq!(st.records_acked, 0);
    assert!(st.spool_records >= 10, "{st:?}");
    assert_eq!(server.log().requests.len(), 1, "no retry after 401");
}

#[test]
fn bad_request_moves_the_batch_aside() {
    let server = ScriptedServer::start();
    server.push(&[Reply::Status(400)]);
    let spool = tempfile::tempdir().unwrap();
    let mut sink = HttpSink::new(config(&server, spool.path(), 10)).unwrap();
    write_range(&mut sink, 0..30);
    sink.close().unwrap();
    let st = sink.stats();
    assert_eq!((st.rejected_batches, st.rejected_records), (1, 10));
    assert_eq!(st.records_acked, 20);
    assert_eq!(files_in(&spool.path().join("rejected")), 1);
    // With two senders, either of the first two batches may reach the
    // server first and get the 400.
    let log = server.log();
    let ids = stored_ids(&log);
    assert_eq!(ids.len(), 20);
    let missing: Vec<u64> = all(30).difference(&ids).copied().collect();
    assert!(
        missing == (0..10).collect::<Vec<_>>() || missing == (10..20).collect::<Vec<_>>(),
        "{missing:?}"
    );
}

#[test]
fn k_senders_keep_k_requests_in_flight() {
    for k in [1, 2, 4] {
        let server = ScriptedServer::start();
        server.set_delay(Duration::from_millis(150));
        let spool = tempfile::tempdir().unwrap();
        let mut cfg = config(&server, spool.path(), 10);
        cfg.senders = k;
        let mut sink = HttpSink::new(cfg).unwrap();
        write_range(&mut sink, 0..120);
        sink.close().unwrap();
        // Each answer takes 150 ms, so the senders overlap: the server saw
        // exactly k requests at once (a gauge, not a timing).
        assert_eq!(server.max_concurrent(), k, "senders = {k}");
        // One keep-alive connection per sender, shared agent.
        assert!(
            server.connections() <= k,
            "{} connections",
            server.connections()
        );
        let log = server.log();
        assert_eq!(stored_ids(&log), all(120));
        assert_eq!(log.duplicates, 0);
    }
}

#[test]
fn four_senders_outage_and_restart_deliver_every_record_once() {
    let mut server = ScriptedServer::start();
    server.set_delay(Duration::from_millis(20));
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 50);
    cfg.senders = 4;
    cfg.drain_timeout = Duration::from_millis(500);
    let mut first = HttpSink::new(cfg.clone()).unwrap();
    write_range(&mut first, 0..1000);
    // The outage starts with requests in flight: some are stored but
    // their acknowledgement is lost.
    assert!(server.wait_for(Duration::from_secs(10), |l| l.stored.len() >= 5));
    server.down();
    write_range(&mut first, 1000..2000);
    let remaining = match first.close() {
        Err(StoreError::DrainTimeout {
            remaining_records, ..
        }) => remaining_records,
        other => panic!("{other:?}"),
    };
    let st = first.stats();
    assert_eq!(st.records_acked + remaining, 2000, "{st:?}");
    assert!(remaining > 0);
    drop(first);

    server.up();
    server.reset_max_concurrent();
    cfg.drain_timeout = Duration::from_secs(10);
    let mut second = HttpSink::new(cfg).unwrap();
    write_range(&mut second, 2000..2500);
    second.close().unwrap();
    let st = second.stats();
    assert_eq!(st.records_acked, remaining + 500, "{st:?}");
    assert_eq!((st.spool_batches, st.queue_depth), (0, 0));
    assert!(segments(spool.path()).is_empty());
    let log = server.log();
    assert_eq!(stored_ids(&log), all(2500), "every record exactly once");
    // Only a batch whose acknowledgement the outage cut is sent again.
    assert!(log.duplicates <= 4, "{} duplicates", log.duplicates);
    assert!(server.max_concurrent() >= 2, "the replay ran in parallel");
}

/// `cargo test --release -p netanalyzer-store --test transport -- --ignored
/// --nocapture throughput`: records/s of write() and of the whole path to
/// the scripted server (which decodes every body, on the same machine).
#[test]
#[ignore = "measurement; run in release"]
fn throughput() {
    let server = ScriptedServer::start();
    let spool = tempfile::tempdir().unwrap();
    let mut sink = HttpSink::new(config(&server, spool.path(), 10_000)).unwrap();
    let n = 1_000_000;
    let mut rec = record(0);
    rec.src_ip = Some("10.0.0.1".parse().unwrap());
    rec.dst_ip = Some("10.0.0.2".parse().unwrap());
    rec.src_port = Some(40_000);
    rec.dst_port = Some(443);
    rec.ip_version = Some(4);
    rec.ip_proto = Some(6);
    let t0 = Instant::now();
    for i in 0..n {
        rec.ts_ns = i;
        sink.write(&rec).unwrap();
    }
    let wrote = t0.elapsed();
    sink.close().unwrap();
    let all = t0.elapsed();
    let st = sink.stats();
    assert_eq!(st.records_acked, n);
    println!(
        "write(): {:.0} records/s; acknowledged end to end: {:.0} records/s; spooled {} records on the way",
        n as f64 / wrote.as_secs_f64(),
        n as f64 / all.as_secs_f64(),
        st.records_spooled_total
    );
}

#[test]
fn wait_for_queue_keeps_a_slow_server_off_the_disk_but_spools_an_outage() {
    // A slow but healthy server: with wait_for_queue the writer waits for
    // room in the memory queue, nothing touches the spool.
    let server = ScriptedServer::start();
    server.set_delay(Duration::from_millis(30));
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 10);
    cfg.queue_batches = 1;
    cfg.wait_for_queue = true;
    let mut sink = HttpSink::new(cfg.clone()).unwrap();
    write_range(&mut sink, 0..200);
    sink.close().unwrap();
    assert_eq!(sink.stats().records_spooled_total, 0);
    assert_eq!(sink.stats().records_acked, 200);
    assert_eq!(stored_ids(&server.log()), all(200));

    // The same sink settings through an outage: batches go to the spool
    // (waiting would never end), then are replayed.
    let mut server = ScriptedServer::start();
    server.down();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, spool.path(), 10);
    cfg.queue_batches = 1;
    cfg.wait_for_queue = true;
    let mut sink = HttpSink::new(cfg).unwrap();
    write_range(&mut sink, 0..100);
    assert!(sink.stats().records_spooled_total > 0);
    server.up();
    sink.close().unwrap();
    assert_eq!(stored_ids(&server.log()), all(100));
}
