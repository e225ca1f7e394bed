//! The aggregator's store (`flowdb`) against a real PostgreSQL: an embedded
//! throwaway cluster, or `NETANALYZER_TEST_PG`. Skipped (with a message)
//! when PostgreSQL is not installed, except under `CI=true`.

mod support;

use netanalyzer_core::{
    Alert, EndReason, FlowAddr, FlowFeatures, FlowKey, FlowProto, FlowRecord, MacAddr,
    PacketRecord, Protocol, Severity, FEATURE_COUNT,
};
use netanalyzer_store::flowdb::{self, FlowCommit, PacketFeed, Position, ALERT_CHANNEL};
use netanalyzer_store::pg::{self, PacketWriter, TestDb};
use netanalyzer_store::StoreError;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{batch, count, BASE_NS, DAY_NS};

/// [`support::full_record`] with an injection-looking HTTP path.
fn full_record(ts_ns: u64) -> PacketRecord {
    PacketRecord {
        http_path: Some("/a?b=c&d=é'; DROP TABLE flows; --".into()),
        ..support::full_record(ts_ns)
    }
}

/// A small IPv4 record carrying `tag` in `tcp_seq` and `row` in `tcp_ack`
/// (to identify it after reading).
fn tagged(ts_ns: u64, tag: u32, row: u32) -> PacketRecord {
    PacketRecord {
        ts_ns,
        iface: Some(Arc::from(if tag % 2 == 0 { "eth0" } else { "eth1" })),
        wire_len: 60 + row,
        cap_len: 60,
        ip_version: Some(4),
        src_ip: Some(IpAddr::from([10, 0, (tag >> 8) as u8, tag as u8])),
        dst_ip: Some(IpAddr::from([192, 168, 1, 1])),
        ip_proto: Some(6),
        src_port: Some(40_000),
        dst_port: Some(80),
        tcp_seq: Some(tag),
        tcp_ack: Some(row),
        protocol: Protocol::Tcp,
        ..PacketRecord::default()
    }
}

/// Everything the feed returns until it is caught up.
fn drain(feed: &mut PacketFeed, c: &mut Client, max_rows: u64) -> Vec<(String, PacketRecord)> {
    let mut out = Vec::new();
    loop {
        let got = feed
            .poll(c, max_rows, &mut |s, r| out.push((s.to_owned(), r.clone())))
            .unwrap();
        if got.batches == 0 {
            return out;
        }
    }
}

#[test]
fn feed_returns_exactly_the_written_records() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    let mut expected = Vec::new();
    // Batch 1: a full record, an empty one (every optional field NULL)
    // and IPv4 records; batch 2 spans two days; batch 3 another sensor.
    let b1 = vec![
        full_record(BASE_NS + 1),
        PacketRecord {
            ts_ns: BASE_NS + 2_000,
            ..PacketRecord::default()
        },
        tagged(BASE_NS + 3_999, 1, 0),
        tagged(BASE_NS + 1_000_000_123, 1, 1),
    ];
    let b2: Vec<_> = (0..50)
        .map(|i| tagged(BASE_NS + DAY_NS - 25_000 + i * 1000 + i % 7, 2, i as u32))
        .collect();
    let b3 = vec![full_record(BASE_NS + 5 * DAY_NS)];
    for (sensor, seq, recs) in [("s-1", 1, &b1), ("s-1", 2, &b2), ("s-two", 1, &b3)] {
        w.write_batch(&batch(sensor, seq, recs.clone())).unwrap();
        expected.extend(recs.iter().map(|r| (sensor.to_owned(), r.clone())));
    }
    // A duplicate writes nothing, so it is read once.
    w.write_batch(&batch("s-1", 1, b1.clone())).unwrap();

    let mut c = db.client();
    let mut feed = PacketFeed::new(Position::default());
    let lag = feed.lag(&mut c).unwrap();
    assert_eq!((lag.batches, lag.rows), (3, expected.len() as u64));
    assert!(lag.seconds >= 0.0);
    let got = drain(&mut feed, &mut c, 1_000_000);
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "row {i}");
    }
    let lag = feed.lag(&mut c).unwrap();
    assert_eq!((lag.batches, lag.rows, lag.seconds), (0, 0, 0.0));
    // The position is the last ledger row.
    let (xid, id): (String, i64) = {
        let r = c
            .query_one(
                "SELECT xid::text, id FROM ingest_batches ORDER BY xid DESC, id DESC LIMIT 1",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        feed.position(),
        Position {
            xid: xid.parse().unwrap(),
            batch_id: id
        }
    );
    // Small max_rows: whole batches, one per poll here.
    let mut feed = PacketFeed::new(Position::default());
    let mut sizes = Vec::new();
    loop {
        let o = feed.poll(&mut c, 1, &mut |_, _| {}).unwrap();
        if o.batches == 0 {
            break;
        }
        sizes.push((o.batches, o.rows));
    }
    assert_eq!(sizes, vec![(1, 4), (1, 50), (1, 1)]);
    // A new batch after the position is read alone.
    w.write_batch(&batch("s-1", 3, vec![tagged(BASE_NS + 9, 3, 0)]))
        .unwrap();
    let got = drain(&mut feed, &mut c, 1000);
    assert_eq!(got, vec![("s-1".to_owned(), tagged(BASE_NS + 9, 3, 0))]);
}

/// Connections waiting on a lock, other than ours.
fn lock_waiters(c: &mut Client) -> i64 {
    count(
        c,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
    )
}

#[test]
fn a_batch_committed_late_is_neither_skipped_nor_returned_early() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let day_a = pg::day_of_ts_ns(BASE_NS);
    pg::ensure_partitions(&mut c, day_a, day_a + 1).unwrap();
    // Writer A's COPY goes to day A's partition, which another session
    // holds locked: A inserts its ledger row (its xid and id are taken),
    // then waits in the middle of its transaction.
    let mut locker = db.client();
    let mut lock_tx = locker.transaction().unwrap();
    lock_tx
        .batch_execute(&format!(
            "LOCK TABLE {} IN SHARE MODE",
            pg::partition_name(day_a)
        ))
        .unwrap();
    let conninfo = db.conninfo();
    let writer_a = std::thread::spawn(move || {
        let mut w = PacketWriter::new(pg::connect(&conninfo).unwrap());
        let recs: Vec<_> = (0..10)
            .map(|i| tagged(BASE_NS + i, 100, i as u32))
            .collect();
        w.write_batch(&batch("A", 1, recs)).unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while lock_waiters(&mut c) == 0 {
        assert!(Instant::now() < deadline, "writer A never blocked");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A's ledger row exists (uncommitted): its id is below B's.
    // Writer B commits later batches on day B.
    let mut wb = PacketWriter::new(db.client());
    for seq in 1..=3u64 {
        let recs: Vec<_> = (0..5)
            .map(|i| tagged(BASE_NS + DAY_NS + seq * 100 + i, 200 + seq as u32, i as u32))
            .collect();
        wb.write_batch(&batch("B", seq, recs)).unwrap();
    }
    assert_eq!(count(&mut c, "SELECT count(*) FROM ingest_batches"), 3);
    let mut feed = PacketFeed::new(Position::default());
    let early = drain(&mut feed, &mut c, 1000);
    assert!(
        early.iter().all(|(s, _)| s != "A"),
        "A's batch was returned before it committed"
    );
    // A was first to write: nothing after it is final either.
    assert!(
        early.is_empty(),
        "got {} rows past a running writer",
        early.len()
    );
    let lag = feed.lag(&mut c).unwrap();
    assert_eq!((lag.batches, lag.rows), (3, 15));
    // A commits; the feed now gets A's batch, then B's, each once.
    lock_tx.rollback().unwrap();
    writer_a.join().unwrap();
    let late = drain(&mut feed, &mut c, 1000);
    let mut per_sensor: HashMap<String, usize> = HashMap::new();
    for (s, _) in early.iter().chain(&late) {
        *per_sensor.entry(s.clone()).or_default() += 1;
    }
    assert_eq!(per_sensor.get("A"), Some(&10));
    assert_eq!(per_sensor.get("B"), Some(&15));
    assert_eq!(late[0].0, "A", "A's transaction is older: it comes first");
    assert!(drain(&mut feed, &mut c, 1000).is_empty());
}

#[test]
fn a_later_transaction_committing_first_waits_for_the_older_one() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    // B takes its xid first and stays open; A writes and commits after.
    let mut b = db.client();
    let mut btx = b.transaction().unwrap();
    btx.batch_execute(
        "INSERT INTO ingest_batches (sensor_id, stream_id, seq, records) VALUES ('B', 1, 1, 0)",
    )
    .unwrap();
    let mut wa = PacketWriter::new(db.client());
    wa.write_batch(&batch("A", 1, vec![tagged(BASE_NS, 1, 0)]))
        .unwrap();
    let mut feed = PacketFeed::new(Position::default());
    assert!(drain(&mut feed, &mut c, 1000).is_empty());
    assert_eq!(feed.position(), Position::default());
    btx.commit().unwrap();
    let got = drain(&mut feed, &mut c, 1000);
    assert_eq!(got, vec![("A".to_owned(), tagged(BASE_NS, 1, 0))]);
}

/// xorshift64*: deterministic test randomness.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn concurrent_writers_every_batch_read_exactly_once() {
    let Some(db) = TestDb::require() else { return };
    const THREADS: u32 = 4;
    const BATCHES: u32 = 50; // per thread: 200 in all
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let conninfo = db.conninfo();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (u64::from(t + 1) * 7919));
                let mut w = PacketWriter::new(pg::connect(&conninfo).unwrap());
                let mut sizes = Vec::new();
                for seq in 0..BATCHES {
                    let big = rng.below(4) == 0;
                    let n = 1 + rng.below(if big { 3000 } else { 40 }) as u32;
                    let tag = t * 1000 + seq;
                    let base = BASE_NS + u64::from(tag) * 1_000_000;
                    let recs: Vec<_> = (0..n)
                        .map(|i| tagged(base + u64::from(i), tag, i))
                        .collect();
                    w.write_batch(&batch(&format!("w{t}"), u64::from(seq), recs))
                        .unwrap();
                    sizes.push((tag, n));
                    std::thread::sleep(Duration::from_micros(rng.below(3000)));
                }
                sizes
            })
        })
        .collect();
    let reader = {
        let conninfo = db.conninfo();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = pg::connect(&conninfo).unwrap();
            let mut feed = PacketFeed::new(Position::default());
            let mut seen: HashMap<(u32, u32), u32> = HashMap::new();
            let mut polls = 0u64;
            let mut last = Position::default();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let o = feed
                    .poll(&mut c, 500, &mut |_, r| {
                        *seen
                            .entry((r.tcp_seq.unwrap(), r.tcp_ack.unwrap()))
                            .or_default() += 1;
                    })
                    .unwrap();
                assert!(o.position >= last, "position went backwards");
                last = o.position;
                polls += 1;
                if o.batches == 0 {
                    if finished {
                        return (seen, polls);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let mut sizes = Vec::new();
    for w in writers {
        sizes.extend(w.join().unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let (seen, polls) = reader.join().unwrap();
    assert_eq!(sizes.len(), (THREADS * BATCHES) as usize);
    let total: u64 = sizes.iter().map(|&(_, n)| u64::from(n)).sum();
    assert_eq!(seen.len() as u64, total, "rows read");
    assert!(seen.values().all(|&n| n == 1), "a row was read twice");
    for (tag, n) in sizes {
        for i in 0..n {
            assert_eq!(seen.get(&(tag, i)), Some(&1), "batch {tag} row {i}");
        }
    }
    assert!(polls > 1);
    eprintln!("{total} rows in 200 batches read in {polls} polls");
}

fn flow(i: u64, first_ts_ns: u64) -> FlowRecord {
    let src = FlowAddr::Ip(IpAddr::from([10, 0, 0, i as u8]));
    let dst = FlowAddr::Ip("2001:db8::80".parse().unwrap());
    let (key, _) = FlowKey::new(FlowProto::Ip(6), src, 40_000, dst, 80);
    let mut features = FlowFeatures::default();
    for (k, v) in features.0.iter_mut().enumerate() {
        *v = k as f64 * 1.5 - i as f64;
    }
    features.0[FEATURE_COUNT - 1] = f64::MAX;
    FlowRecord {
        flow_id: u64::MAX - i,
        segment: 2,
        key,
        proto: FlowProto::Ip(6),
        src,
        src_port: 40_000,
        dst,
        dst_port: 80,
        vlan_id: Some(7),
        first_ts_ns,
        last_ts_ns: first_ts_ns + 5_000_000,
        fwd_packets: 3,
        bwd_packets: 2,
        fwd_bytes: 300,
        bwd_bytes: 2000,
        tcp_flags: 0x1b,
        end_reason: EndReason::Fin,
        features,
        label: Some("DoS".into()),
        confidence: Some(0.875),
    }
}

fn arp_flow(first_ts_ns: u64) -> FlowRecord {
    let src = FlowAddr::Mac(MacAddr([2, 0, 0, 0, 0, 1]));
    let dst = FlowAddr::Mac(MacAddr::BROADCAST);
    let (key, _) = FlowKey::new(FlowProto::Arp, src, 0, dst, 0);
    FlowRecord {
        flow_id: 1,
        segment: 0,
        key,
        proto: FlowProto::Arp,
        src,
        src_port: 0,
        dst,
        dst_port: 0,
        vlan_id: None,
        first_ts_ns,
        last_ts_ns: first_ts_ns,
        fwd_packets: 1,
        bwd_packets: 0,
        fwd_bytes: 42,
        bwd_bytes: 0,
        tcp_flags: 0,
        end_reason: EndReason::Idle,
        features: FlowFeatures::default(),
        label: None,
        confidence: None,
    }
}

fn alert(id: u64, revision: u64, flows: u64) -> Alert {
    Alert {
        alert_id: id,
        window_start_ns: BASE_NS,
        first_ts_ns: BASE_NS + 1_000,
        last_ts_ns: BASE_NS + 2_000_000 * revision,
        class: "DoS".into(),
        severity: Severity::High,
        confidence: 0.9,
        sources: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        source_count: 2,
        target: "2001:db8::80".into(),
        flow_count: flows,
        packet_count: flows * 5,
        model_version: "m-1".into(),
        flow_ids: vec![u64::MAX, 3],
        revision,
    }
}

#[test]
fn commit_is_all_or_nothing() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    assert!(flowdb::load_checkpoint(&mut c, "agg").unwrap().is_none());
    let flows = vec![
        ("s-1".to_owned(), flow(1, BASE_NS + 10)),
        ("s-2".to_owned(), flow(2, BASE_NS + 3 * DAY_NS)),
        ("s-1".to_owned(), arp_flow(BASE_NS + 20)),
    ];
    let alerts = vec![alert(u64::MAX - 5, 1, 2), alert(77, 1, 1)];
    let p1 = Position {
        xid: 1000,
        batch_id: 17,
    };
    // A snapshot taken before the commit sees none of it; one after sees
    // all of it. (The partitions are made first: creating one waits for
    // readers of `flows`, like this open snapshot.)
    let ts: Vec<u64> = flows.iter().map(|(_, f)| f.first_ts_ns).collect();
    flowdb::ensure_flow_partitions(&mut c, &ts).unwrap();
    let mut before = db.client();
    let mut snap = before
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    assert_eq!(
        snap.query_one("SELECT count(*) FROM flows", &[])
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    let out = flowdb::commit(
        &mut c,
        &FlowCommit {
            consumer: "agg",
            position: p1,
            state: b"state-1",
            flows: &flows,
            model_version: "m-1",
            alerts: &alerts,
            rows: 500,
            batches: 9,
            active_flows: None,
        },
    )
    .unwrap();
    assert_eq!((out.flows, out.alerts), (3, 2));
    let seen_by_old: i64 = snap
        .query_one(
            "SELECT (SELECT count(*) FROM flows) + (SELECT count(*) FROM alerts) \
             + (SELECT count(*) FROM aggregator_state)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(seen_by_old, 0);
    snap.rollback().unwrap();
    let cp = flowdb::load_checkpoint(&mut c, "agg").unwrap().unwrap();
    assert_eq!(
        (cp.position, cp.state.as_slice(), cp.rows, cp.batches),
        (p1, &b"state-1"[..], 500, 9)
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM flows"), 3);
    assert_eq!(count(&mut c, "SELECT count(*) FROM alerts"), 2);
    // Every flow column as written.
    let r = c
        .query_one(
            "SELECT (extract(epoch FROM first_ts) * 1000000)::int8, \
             (extract(epoch FROM last_ts) * 1000000)::int8, sensor_id, flow_id, segment, \
             ip_proto, src_ip, src_port, dst_ip, dst_port, src_mac::text, vlan_id, fwd_packets, \
             bwd_packets, fwd_bytes, bwd_bytes, tcp_flags, end_reason, features, label, \
             confidence, model_version FROM flows WHERE sensor_id = 's-2'",
            &[],
        )
        .unwrap();
    let f = &flows[1].1;
    assert_eq!(r.get::<_, i64>(0), (f.first_ts_ns / 1000) as i64);
    assert_eq!(r.get::<_, i64>(1), (f.last_ts_ns / 1000) as i64);
    assert_eq!(r.get::<_, i64>(3) as u64, f.flow_id);
    assert_eq!(r.get::<_, i64>(4), 2);
    assert_eq!(r.get::<_, Option<i16>>(5), Some(6));
    assert_eq!(
        r.get::<_, Option<IpAddr>>(6),
        Some("10.0.0.2".parse().unwrap())
    );
    assert_eq!(r.get::<_, i32>(7), 40_000);
    assert_eq!(
        r.get::<_, Option<IpAddr>>(8),
        Some("2001:db8::80".parse().unwrap())
    );
    assert_eq!(r.get::<_, i32>(9), 80);
    assert_eq!(r.get::<_, Option<String>>(10), None);
    assert_eq!(r.get::<_, Option<i32>>(11), Some(7));
    let counts: Vec<i64> = (12..16).map(|i| r.get(i)).collect();
    assert_eq!(counts, vec![3, 2, 300, 2000]);
    assert_eq!(r.get::<_, i32>(16), 0x1b);
    assert_eq!(r.get::<_, &str>(17), "fin");
    assert_eq!(r.get::<_, Vec<f64>>(18), f.features.0.to_vec());
    assert_eq!(r.get::<_, Option<&str>>(19), Some("DoS"));
    assert_eq!(r.get::<_, Option<f64>>(20), Some(0.875));
    assert_eq!(r.get::<_, &str>(21), "m-1");
    let arp: (Option<i16>, Option<IpAddr>, Option<String>, Option<f64>) = {
        let r = c
            .query_one(
                "SELECT ip_proto, src_ip, dst_mac::text, confidence FROM flows WHERE flow_id = 1",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(arp, (None, None, Some("ff:ff:ff:ff:ff:ff".into()), None));
    // Partitions of both days exist.
    for d in [0, 3] {
        let name = pg::flow_partition_name(pg::day_of_ts_ns(BASE_NS + d * DAY_NS));
        let n: i64 = c
            .query_one("SELECT count(*) FROM pg_class WHERE relname = $1", &[&name])
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{name}");
    }

    // A commit that fails in the middle (an alert text PostgreSQL refuses,
    // after the flows were copied) leaves nothing.
    let mut poisoned = alert(78, 1, 1);
    poisoned.class = "bad\0class".into();
    let p2 = Position {
        xid: 2000,
        batch_id: 30,
    };
    let err = flowdb::commit(
        &mut c,
        &FlowCommit {
            consumer: "agg",
            position: p2,
            state: b"state-2",
            flows: &flows,
            model_version: "m-1",
            alerts: &[alert(77, 2, 9), poisoned],
            rows: 900,
            batches: 12,
            active_flows: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Postgres { .. }), "{err}");
    let cp2 = flowdb::load_checkpoint(&mut c, "agg").unwrap().unwrap();
    assert_eq!(cp2, cp);
    assert_eq!(count(&mut c, "SELECT count(*) FROM flows"), 3);
    assert_eq!(
        count(&mut c, "SELECT flow_count FROM alerts WHERE alert_id = 77"),
        1
    );
    // A position behind the stored one is refused: two aggregators with
    // one name.
    let err = flowdb::commit(
        &mut c,
        &FlowCommit {
            consumer: "agg",
            position: Position {
                xid: 999,
                batch_id: 99,
            },
            state: b"x",
            flows: &flows,
            model_version: "m-1",
            alerts: &[],
            rows: 1,
            batches: 1,
            active_flows: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::PositionConflict { .. }), "{err}");
    assert_eq!(count(&mut c, "SELECT count(*) FROM flows"), 3);
    assert_eq!(flowdb::load_checkpoint(&mut c, "agg").unwrap().unwrap(), cp);
    // Another consumer has its own row.
    flowdb::commit(
        &mut c,
        &FlowCommit {
            consumer: "other",
            position: Position::default(),
            state: b"",
            flows: &[],
            model_version: "m-1",
            alerts: &[],
            rows: 0,
            batches: 0,
            active_flows: None,
        },
    )
    .unwrap();
    assert_eq!(count(&mut c, "SELECT count(*) FROM aggregator_state"), 2);
    // One live aggregator per consumer name.
    let mut a = db.client();
    assert!(flowdb::lock_consumer(&mut a, "agg").unwrap());
    assert!(!flowdb::lock_consumer(&mut c, "agg").unwrap());
    assert!(flowdb::lock_consumer(&mut c, "other").unwrap());
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flowdb::lock_consumer(&mut c, "agg").unwrap() {
        assert!(Instant::now() < deadline, "lock not released on disconnect");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn alerts_are_upserted_and_notified() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let mut listener = db.client();
    listener
        .batch_execute(&format!("LISTEN {ALERT_CHANNEL}"))
        .unwrap();
    let commit = |c: &mut Client, alerts: &[Alert], batch_id: i64| {
        flowdb::commit(
            c,
            &FlowCommit {
                consumer: "agg",
                position: Position { xid: 5, batch_id },
                state: b"s",
                flows: &[],
                model_version: "m-1",
                alerts,
                rows: 0,
                batches: 0,
                active_flows: None,
            },
        )
    };
    let id = u64::MAX - 1;
    commit(&mut c, &[alert(id, 1, 1)], 1).unwrap();
    commit(&mut c, &[alert(id, 2, 40)], 2).unwrap();
    // A failed commit notifies nothing.
    let mut bad = alert(9, 1, 1);
    bad.target = "\0".into();
    assert!(commit(&mut c, &[bad], 3).is_err());
    commit(&mut c, &[alert(10, 1, 3)], 4).unwrap();
    let mut got = Vec::new();
    let mut n = listener.notifications();
    let mut it = n.timeout_iter(Duration::from_secs(10));
    while got.len() < 3 {
        let Some(m) = it.next().unwrap() else { break };
        assert_eq!(m.channel(), ALERT_CHANNEL);
        got.push(serde_json::from_str::<serde_json::Value>(m.payload()).unwrap());
    }
    assert_eq!(got.len(), 3, "{got:?}");
    let db_id = (id as i64).to_string();
    assert_eq!(got[0]["alert_id"], db_id.as_str());
    assert_eq!(got[0]["revision"], 1);
    assert_eq!(got[0]["flow_count"], 1);
    assert_eq!(got[1]["alert_id"], db_id.as_str());
    assert_eq!(got[1]["revision"], 2);
    assert_eq!(got[1]["flow_count"], 40);
    assert_eq!(got[1]["packet_count"], 200);
    assert_eq!(got[1]["class"], "DoS");
    assert_eq!(got[1]["severity"], "high");
    assert_eq!(got[1]["target"], "2001:db8::80");
    assert_eq!(got[1]["model_version"], "m-1");
    assert_eq!(
        got[1]["sources"],
        serde_json::json!(["10.0.0.1", "10.0.0.2"])
    );
    assert_eq!(got[1]["window_start_ms"], BASE_NS / 1_000_000);
    assert_eq!(got[1]["last_ts_ms"], (BASE_NS + 4_000_000) / 1_000_000);
    assert!(got[1]["updated_ms"].as_u64().unwrap() > BASE_NS / 1_000_000);
    assert_eq!(got[2]["alert_id"], "10");
    assert!(it.next().unwrap().is_none(), "one notification per alert");
    drop(it);
    drop(n);
    // One row per alert, updated in place.
    let rows = c
        .query(
            "SELECT alert_id, revision, flow_count, packet_count, flow_ids, sources, \
             severity, updated_at >= created_at FROM alerts ORDER BY alert_id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.get::<_, i64>(0) as u64, id);
    assert_eq!(r.get::<_, i64>(1), 2);
    assert_eq!(r.get::<_, i64>(2), 40);
    assert_eq!(r.get::<_, i64>(3), 200);
    assert_eq!(r.get::<_, Vec<i64>>(4), vec![-1, 3]);
    assert_eq!(r.get::<_, Vec<String>>(5), vec!["10.0.0.1", "10.0.0.2"]);
    assert_eq!(r.get::<_, &str>(6), "high");
    assert!(r.get::<_, bool>(7));
    // A huge alert still fits a NOTIFY payload.
    let mut big = alert(11, 1, 1);
    big.target = "x".repeat(100_000);
    big.model_version = "é".repeat(10_000);
    big.class = "\u{1}".repeat(10_000);
    big.sources = (0..100).map(|_| "\"".repeat(1000)).collect();
    let payload = flowdb::alert_payload(&big, 1);
    assert!(payload.len() < 8000, "{}", payload.len());
    let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(v["sources"].as_array().unwrap().len(), 8);
    commit(&mut c, &[big], 5).unwrap();
}

#[test]
fn flow_partitions_follow_maintenance() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let now = (BASE_NS / 1_000_000_000) as i64;
    let today = pg::day_of_ts_ns(BASE_NS);
    flowdb::ensure_flow_partitions(&mut c, &[BASE_NS - 10 * DAY_NS, BASE_NS - DAY_NS]).unwrap();
    // Two alerts: one last seen 10 days ago (past retention), one today.
    let mut old = alert(1, 1, 1);
    old.window_start_ns = BASE_NS - 10 * DAY_NS;
    old.first_ts_ns = BASE_NS - 10 * DAY_NS;
    old.last_ts_ns = BASE_NS - 10 * DAY_NS + 1_000;
    let recent = alert(2, 1, 1);
    flowdb::commit(
        &mut c,
        &FlowCommit {
            consumer: "retention",
            position: Position::default(),
            state: &[],
            flows: &[],
            model_version: "m-1",
            alerts: &[old, recent],
            rows: 0,
            batches: 0,
            active_flows: None,
        },
    )
    .unwrap();
    let plan = pg::PartitionPlan {
        ahead_days: 2,
        retention_days: Some(3),
    };
    let report = pg::maintain(&mut c, &plan, now).unwrap();
    assert_eq!(report.alerts_deleted, 1);
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM alerts WHERE alert_id = 2"),
        1
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM alerts"), 1);
    assert_eq!(report.flows_created, 3);
    assert_eq!(
        report.flows_dropped,
        vec![pg::flow_partition_name(today - 10)]
    );
    let parts: Vec<String> = c
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'flows'::regclass ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<String> = (-1..=2)
        .map(|d| pg::flow_partition_name(today + d))
        .collect();
    assert_eq!(parts, want);
    let again = pg::maintain(&mut c, &plan, now).unwrap();
    assert_eq!(again, pg::MaintenanceReport::default());
}
