//! Traffic rollups, talkers and sensors, written by the ingest writer in
//! the batch's transaction, and the `/api/stats` / `/api/sensors` queries
//! over them, against a real PostgreSQL (skipped without one, except
//! under `CI=true`).

mod support;

use netanalyzer_core::{PacketBatch, PacketRecord, Protocol};
use netanalyzer_store::pg::{PacketWriter, TestDb, WriteOutcome, TOP_TALKERS};
use netanalyzer_store::server::api::stats::{
    explain_stats, query_aggregators, query_sensors, query_stats, StatsQuery,
};
use netanalyzer_store::wire::SensorStats;
use postgres::Client;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};
use support::{batch, count, BASE_NS};

const SEC: u64 = 1_000_000_000;

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` records over `secs` seconds from `start_ns`, with varied protocols,
/// lengths and addresses (some without an IP: ARP).
fn records(rng: &mut Rng, start_ns: u64, secs: u64, n: usize) -> Vec<PacketRecord> {
    (0..n)
        .map(|_| {
            let x = rng.next();
            let protocol = Protocol::ALL[(x % Protocol::ALL.len() as u64) as usize];
            let ip = |v: u64| Some(IpAddr::from([10, 0, (v >> 8) as u8 % 4, v as u8 % 50]));
            PacketRecord {
                ts_ns: start_ns + (x >> 8) % (secs * SEC),
                wire_len: 40 + (x >> 20) as u32 % 1500,
                cap_len: 40,
                src_ip: if protocol == Protocol::Arp {
                    None
                } else {
                    ip(x >> 30)
                },
                dst_ip: if protocol == Protocol::Arp {
                    None
                } else {
                    ip(x >> 40)
                },
                protocol,
                ..PacketRecord::default()
            }
        })
        .collect()
}

/// (second, protocol) -> (packets, bytes) of `records`.
type Sums = BTreeMap<(i64, String), (i64, i64)>;

fn expected(all: &[&[PacketRecord]]) -> Sums {
    let mut m = Sums::new();
    for r in all.iter().flat_map(|b| b.iter()) {
        let e = m
            .entry(((r.ts_ns / SEC) as i64, r.protocol.as_str().to_owned()))
            .or_default();
        e.0 += 1;
        e.1 += i64::from(r.wire_len);
    }
    m
}

fn stored(c: &mut Client) -> Sums {
    c.query(
        "SELECT extract(epoch FROM sec)::bigint, protocol, sum(packets)::bigint, \
         sum(bytes)::bigint FROM traffic_seconds GROUP BY 1, 2",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
    .collect()
}

fn inserted(o: WriteOutcome) -> u64 {
    match o {
        WriteOutcome::Inserted { rows } => rows,
        WriteOutcome::Duplicate => panic!("unexpected duplicate"),
    }
}

#[test]
fn seconds_equal_the_records_and_a_duplicate_adds_nothing() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    let mut rng = Rng(7);
    let b1 = batch("s1", 1, records(&mut rng, BASE_NS, 5, 3000));
    let b2 = batch("s1", 2, records(&mut rng, BASE_NS + 3 * SEC, 5, 3000));
    let b3 = batch("s2", 1, records(&mut rng, BASE_NS + 2 * SEC, 2, 500));
    for b in [&b1, &b2, &b3] {
        assert_eq!(inserted(w.write_batch(b).unwrap()), b.records.len() as u64);
    }
    let want = expected(&[&b1.records, &b2.records, &b3.records]);
    let mut c = db.client();
    assert_eq!(stored(&mut c), want);
    // Per sensor too.
    let s2: i64 = count(
        &mut c,
        "SELECT sum(packets)::bigint FROM traffic_seconds WHERE sensor_id = 's2'",
    );
    assert_eq!(s2, 500);

    // The same batch again: a duplicate, nothing added anywhere.
    let talkers = count(&mut c, "SELECT sum(bytes)::bigint FROM traffic_talkers");
    assert_eq!(w.write_batch(&b2).unwrap(), WriteOutcome::Duplicate);
    assert_eq!(stored(&mut c), want);
    assert_eq!(
        count(&mut c, "SELECT sum(bytes)::bigint FROM traffic_talkers"),
        talkers
    );
    assert_eq!(
        count(&mut c, "SELECT batches FROM sensors WHERE sensor_id = 's1'"),
        2
    );
    assert_eq!(
        count(&mut c, "SELECT records FROM sensors WHERE sensor_id = 's1'"),
        6000
    );
    // An empty batch counts as a batch, adds no traffic.
    inserted(w.write_batch(&batch("s1", 3, Vec::new())).unwrap());
    assert_eq!(stored(&mut c), want);
    assert_eq!(
        count(&mut c, "SELECT batches FROM sensors WHERE sensor_id = 's1'"),
        3
    );
}

#[test]
fn two_writers_on_the_same_seconds_sum_exactly_without_deadlock() {
    let Some(db) = TestDb::require() else { return };
    const BATCHES: u64 = 30;
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (client, barrier) = (db.client(), barrier.clone());
            std::thread::spawn(move || {
                let mut w = PacketWriter::new(client);
                let mut rng = Rng(100 + t);
                let mut all = Vec::new();
                barrier.wait();
                for seq in 0..BATCHES {
                    // Same sensor, same 3 seconds, same few addresses:
                    // every batch of both writers updates the same rows.
                    let mut b = batch("busy", seq, records(&mut rng, BASE_NS, 3, 2000));
                    b.stream_id = 1000 + t;
                    inserted(w.write_batch(&b).unwrap());
                    all.push(b.records);
                }
                all
            })
        })
        .collect();
    let all: Vec<Vec<PacketRecord>> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let refs: Vec<&[PacketRecord]> = all.iter().map(Vec::as_slice).collect();
    let mut c = db.client();
    assert_eq!(stored(&mut c), expected(&refs));
    assert_eq!(
        count(
            &mut c,
            "SELECT batches FROM sensors WHERE sensor_id = 'busy'"
        ),
        2 * BATCHES as i64
    );
}

#[test]
fn talkers_stay_bounded_under_a_spoofed_flood() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    let rec = |i: u32, src: IpAddr, len: u32| PacketRecord {
        ts_ns: BASE_NS + u64::from(i % 1000) * 1_000_000,
        wire_len: len,
        src_ip: Some(src),
        dst_ip: Some(IpAddr::from([192, 168, 0, 1])),
        protocol: Protocol::Tcp,
        ..PacketRecord::default()
    };
    let mut flood: Vec<PacketRecord> = (0..10_000u32)
        .map(|i| rec(i, IpAddr::from((0x0a00_0000 + i).to_be_bytes()), 60))
        .collect();
    let heavy = IpAddr::from([1, 2, 3, 4]);
    flood.extend((0..50).map(|i| rec(i, heavy, 1000)));
    inserted(w.write_batch(&batch("edge", 1, flood)).unwrap());
    let mut c = db.client();
    let n = |c: &mut Client, role: &str| {
        count(
            c,
            &format!("SELECT count(*) FROM traffic_talkers WHERE role = '{role}'"),
        )
    };
    assert_eq!(n(&mut c, "s"), TOP_TALKERS as i64);
    assert_eq!(n(&mut c, "d"), 1);
    let row = c
        .query_one(
            "SELECT packets, bytes FROM traffic_talkers WHERE role = 's' AND ip = '1.2.3.4'",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (50, 50_000));
    // The destination's counts are exact: every packet of the batch.
    assert_eq!(
        count(
            &mut c,
            "SELECT packets FROM traffic_talkers WHERE role = 'd'"
        ),
        10_050
    );
    // A second flood batch adds at most 16 more sources.
    let flood2: Vec<PacketRecord> = (20_000..30_000u32)
        .map(|i| rec(i, IpAddr::from((0x0a00_0000 + i).to_be_bytes()), 60))
        .collect();
    inserted(w.write_batch(&batch("edge", 2, flood2)).unwrap());
    assert!(n(&mut c, "s") <= 2 * TOP_TALKERS as i64);
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn stats(packets: u64, kernel: Option<u64>, spool: u64) -> SensorStats {
    SensorStats {
        packets,
        kernel_dropped: kernel,
        if_dropped: None,
        parse_errors: packets / 100,
        spool_records: spool,
        spool_bytes: spool * 100,
        dropped_records: 0,
    }
}

fn write(
    w: &mut PacketWriter,
    stream: u64,
    seq: u64,
    recs: Vec<PacketRecord>,
    s: Option<&SensorStats>,
) {
    let mut b: PacketBatch = batch("live", seq, recs);
    b.stream_id = stream;
    inserted(w.write_batch_with_stats(&b, s).unwrap());
}

#[test]
fn sensors_row_keeps_the_newest_stats_and_reports_status() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    let mut c = db.client();
    let recent = |n: usize| {
        let now = now_ns();
        (0..n)
            .map(|i| PacketRecord {
                ts_ns: now - 2 * SEC + i as u64 * 1000,
                wire_len: 100,
                protocol: Protocol::Udp,
                ..PacketRecord::default()
            })
            .collect::<Vec<_>>()
    };
    write(&mut w, 1, 1, recent(100), Some(&stats(1000, Some(0), 0)));
    write(&mut w, 1, 2, recent(100), Some(&stats(2000, Some(0), 0)));
    // An older batch of the same stream committed late: its stats are not
    // shown, its records are counted.
    write(&mut w, 1, 0, recent(50), Some(&stats(500, Some(0), 0)));
    // No stats: the stored ones stay.
    write(&mut w, 1, 3, recent(50), None);
    let s = query_sensors(&mut c).unwrap();
    assert_eq!(s.len(), 1);
    let h = &s[0];
    assert_eq!(h.sensor_id, "live");
    assert_eq!((h.records, h.batches), (300, 4));
    assert_eq!((h.packets_read, h.parse_errors), (2000, 20));
    assert_eq!((h.kernel_dropped, h.if_dropped), (Some(0), None));
    assert_eq!(h.status, "ok", "{h:?}");
    // All 300 records are within the sensor's last 10 s.
    assert!((h.records_per_sec - 30.0).abs() < 1e-9, "{h:?}");
    let lag = h.ingest_lag_ms.unwrap();
    assert!((1900..10_000).contains(&lag), "lag {lag}");
    assert!(h.last_seen_ms >= h.first_seen_ms);

    // Kernel drops grow: degraded.
    write(&mut w, 1, 4, recent(1), Some(&stats(3000, Some(7), 0)));
    let h = &query_sensors(&mut c).unwrap()[0];
    assert_eq!((h.kernel_dropped, h.status), (Some(7), "degraded"));
    // The sensor restarts (new stream): lower counters replace the old,
    // a spool makes it degraded.
    c.execute("UPDATE sensors SET drops_at = NULL", &[])
        .unwrap();
    write(&mut w, 2, 0, recent(1), Some(&stats(10, Some(0), 5)));
    let h = &query_sensors(&mut c).unwrap()[0];
    assert_eq!(
        (h.packets_read, h.spool_records, h.spool_bytes),
        (10, 5, 500)
    );
    assert_eq!(h.status, "degraded");
    write(&mut w, 2, 1, recent(1), Some(&stats(20, Some(0), 0)));
    assert_eq!(query_sensors(&mut c).unwrap()[0].status, "ok");
    // Old packets: lag over 10 s.
    let mut old = recent(1);
    old[0].ts_ns -= 60 * SEC;
    write(&mut w, 2, 2, old, None);
    let h = &query_sensors(&mut c).unwrap()[0];
    assert!(h.ingest_lag_ms.unwrap() > 60_000);
    assert_eq!(h.status, "degraded");
    // Unseen for 40 s: stale, no rate.
    c.execute(
        "UPDATE sensors SET last_seen = now() - interval '40 s', ingest_lag_ms = 0",
        &[],
    )
    .unwrap();
    let h = &query_sensors(&mut c).unwrap()[0];
    assert_eq!((h.status, h.records_per_sec), ("stale", 0.0));
}

/// Known rows: 3 seconds of traffic, talkers, alerts, two aggregators.
fn known_data(c: &mut Client, t0: i64) {
    c.batch_execute(&format!(
        "INSERT INTO traffic_seconds VALUES
            (to_timestamp({t0}), 'a', 'TCP', 10, 1000),
            (to_timestamp({t0}), 'b', 'TCP', 5, 500),
            (to_timestamp({t0}), 'a', 'UDP', 1, 100),
            (to_timestamp({t0} + 2), 'a', 'DNS', 30, 3000),
            (to_timestamp({t0} - 1000), 'a', 'TCP', 999, 999);
         INSERT INTO traffic_talkers VALUES
            (to_timestamp({t0} - {t0} % 60), 'a', 's', '10.0.0.1', 10, 1000),
            (to_timestamp({t0} - {t0} % 60), 'b', 's', '10.0.0.1', 5, 500),
            (to_timestamp({t0} - {t0} % 60), 'a', 's', '10.0.0.2', 40, 3100),
            (to_timestamp({t0} - {t0} % 60), 'a', 'd', '2001:db8::1', 46, 4600);
         INSERT INTO alerts (alert_id, window_start, first_ts, last_ts, class, severity,
             confidence, sources, source_count, target, flow_count, packet_count,
             model_version, flow_ids, revision)
         SELECT i, to_timestamp({t0}), to_timestamp({t0}), to_timestamp({t0} + 1), c, s,
             0.9, ARRAY['1.2.3.4'], 1, '10.0.0.9', 1, 1, 'm', ARRAY[1::bigint], 1
         FROM (VALUES (1, 'DDoS', 'high'), (2, 'DDoS', 'critical'), (3, 'PortScan', 'medium'),
                      (4, 'Old', 'low')) v(i, c, s);
         UPDATE alerts SET first_ts = to_timestamp({t0} - 5000),
             last_ts = to_timestamp({t0} - 4000) WHERE class = 'Old';"
    ))
    .unwrap();
}

#[test]
fn stats_over_known_rows() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let t0: i64 = 1_710_000_000; // a multiple of 60 plus 0: 2024-03-09T16:00:00Z
    known_data(&mut c, t0);
    let q = StatsQuery {
        window_secs: 10,
        to_ns: Some((t0 as u64 + 5) * SEC + 123),
    };
    // No aggregator: flows_active is null.
    let s = query_stats(&mut c, &q).unwrap();
    assert_eq!(s.flows_active, None);
    c.batch_execute(
        "INSERT INTO aggregator_state (consumer, position_xid, position_batch_id, state,
             rows_processed, batches_processed, active_flows)
         VALUES ('x', '1', 0, '', 5, 1, 100), ('y', '1', 0, '', 7, 1, 23),
                ('z', '1', 0, '', 0, 0, NULL)",
    )
    .unwrap();
    let s = query_stats(&mut c, &q).unwrap();
    assert_eq!((s.window_secs, s.step_secs), (10, 1));
    assert_eq!((s.from_ms, s.to_ms), ((t0 - 5) * 1000, (t0 + 5) * 1000));
    assert_eq!(s.series.len(), 10);
    let points: Vec<(i64, u64, u64)> = s
        .series
        .iter()
        .map(|p| (p.t_ms / 1000 - t0, p.packets, p.bytes))
        .collect();
    let mut want: Vec<(i64, u64, u64)> = (-5..5).map(|i| (i, 0, 0)).collect();
    want[5] = (0, 16, 1600);
    want[7] = (2, 30, 3000);
    assert_eq!(points, want);
    let protos: Vec<(&str, u64, u64)> = s
        .protocols
        .iter()
        .map(|p| (p.protocol.as_str(), p.packets, p.bytes))
        .collect();
    assert_eq!(
        protos,
        [("DNS", 30, 3000), ("TCP", 15, 1500), ("UDP", 1, 100)]
    );
    let talk: Vec<(&str, u64, u64)> = s
        .top_talkers
        .iter()
        .map(|t| (t.ip.as_str(), t.packets, t.bytes))
        .collect();
    assert_eq!(talk, [("10.0.0.2", 40, 3100), ("10.0.0.1", 15, 1500)]);
    assert_eq!(s.top_targets.len(), 1);
    assert_eq!(s.top_targets[0].ip, "2001:db8::1");
    assert_eq!(s.flows_active, Some(123));
    let alerts: Vec<(&str, u64, &str)> = s
        .alerts_by_class
        .iter()
        .map(|a| (a.class.as_str(), a.alerts, a.max_severity.as_str()))
        .collect();
    assert_eq!(alerts, [("DDoS", 2, "critical"), ("PortScan", 1, "medium")]);
    assert_eq!(s.totals.packets, 46);
    assert_eq!(s.totals.bytes, 4600);
    assert_eq!((s.totals.peak_pps, s.totals.peak_bps), (30, 24_000));

    // The JSON has the contract's keys.
    let v = serde_json::to_value(&s).unwrap();
    for k in [
        "window_secs",
        "step_secs",
        "from_ms",
        "to_ms",
        "series",
        "protocols",
        "top_talkers",
        "top_targets",
        "flows_active",
        "alerts_by_class",
        "totals",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
    assert_eq!(v["series"][5]["t_ms"], t0 * 1000);
    assert_eq!(v["totals"]["peak_bps"], 24_000);

    // A day: 600 points of 144 s, the old row included; peaks are per
    // second, not per step.
    let s = query_stats(
        &mut c,
        &StatsQuery {
            window_secs: 86_400,
            to_ns: q.to_ns,
        },
    )
    .unwrap();
    assert_eq!((s.step_secs, s.series.len()), (144, 600));
    assert_eq!(s.totals.packets, 46 + 999);
    assert_eq!(s.totals.peak_pps, 999);
    assert_eq!(s.series.iter().map(|p| p.packets).sum::<u64>(), 1045);
    assert!(s
        .series
        .windows(2)
        .all(|w| w[1].t_ms - w[0].t_ms == 144_000));

    let aggs = query_aggregators(&mut c).unwrap();
    assert_eq!(aggs.len(), 3);
    assert_eq!(
        (aggs[0].consumer.as_str(), aggs[0].active_flows),
        ("x", Some(100))
    );
    assert_eq!(aggs[2].active_flows, None);
}

/// Every stats query is an index scan on a table large enough for the
/// planner to care. On PostgreSQL 15, with 200k `traffic_seconds` rows
/// (about 2 days of 1 sensor × 1 protocol) and 200k `traffic_talkers` rows:
///
/// ```text
/// series:  GroupAggregate -> Index Scan using traffic_seconds_pkey on traffic_seconds
///            Index Cond: ((sec >= $1) AND (sec < $2))
/// talkers: Limit -> Sort -> HashAggregate -> Index Scan using traffic_talkers_pkey
///            Index Cond: ((minute >= $1) AND (minute < $2) AND (role = $3))
/// alerts:  Index Scan using alerts_last_ts on alerts  Index Cond: (last_ts >= $1)
/// sensors: Seq Scan on sensors (one row per sensor) + SubPlan:
///            Index Scan using traffic_seconds_pkey  Index Cond: (sec > ... AND sec <= ... AND sensor_id = s.sensor_id)
/// ```
/// (the full plans are printed by this test with `--nocapture`).
#[test]
fn stats_queries_use_the_primary_keys() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let t0: i64 = 1_710_000_000;
    c.batch_execute(&format!(
        "INSERT INTO traffic_seconds SELECT to_timestamp({t0} - i), 'a', 'TCP', 1, 100
             FROM generate_series(0, 199999) i;
         INSERT INTO traffic_talkers SELECT to_timestamp({t0} - {t0} % 60 - (i / 100) * 60), 'a',
             CASE WHEN i % 2 = 0 THEN 's' ELSE 'd' END::\"char\",
             ('10.0.' || (i % 100) || '.1')::inet, 1, 100
             FROM generate_series(0, 199999) i;
         INSERT INTO alerts (alert_id, window_start, first_ts, last_ts, class, severity,
             confidence, sources, source_count, target, flow_count, packet_count,
             model_version, flow_ids, revision)
         SELECT i, to_timestamp({t0} - i * 10), to_timestamp({t0} - i * 10),
             to_timestamp({t0} - i * 10), 'DDoS', 'high', 0.9, ARRAY['1.2.3.4'], 1, 'x',
             1, 1, 'm', ARRAY[1::bigint], 1
         FROM generate_series(1, 50000) i;
         INSERT INTO sensors (sensor_id, first_seen, last_seen, records, batches,
             last_packet_ts) VALUES ('a', now(), now(), 1, 1, to_timestamp({t0}));
         ANALYZE traffic_seconds; ANALYZE traffic_talkers; ANALYZE alerts; ANALYZE sensors;"
    ))
    .unwrap();
    let q = StatsQuery {
        window_secs: 300,
        to_ns: Some(t0 as u64 * SEC),
    };
    let plans = explain_stats(&mut c, &q).unwrap();
    for (name, plan) in &plans {
        println!("-- {name}\n{plan}\n");
        let want = match *name {
            "series" | "peak" | "sensors" => "traffic_seconds_pkey",
            "talkers" => "traffic_talkers_pkey",
            "alerts_by_class" => "alerts_last_ts",
            // A handful of rows, one per aggregator.
            "flows_active" => continue,
            other => panic!("unexpected query {other}"),
        };
        assert!(plan.contains(want), "{name} does not use {want}:\n{plan}");
    }
}

#[test]
fn aggregator_commits_store_their_active_flows() {
    use netanalyzer_store::flowdb::{self, FlowCommit, Position};
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let mut commit = |pos: i64, active: Option<u64>| {
        flowdb::commit(
            &mut c,
            &FlowCommit {
                consumer: "agg",
                position: Position {
                    xid: 1,
                    batch_id: pos,
                },
                state: b"",
                flows: &[],
                model_version: "m",
                alerts: &[],
                rows: 10,
                batches: 1,
                active_flows: active,
            },
        )
        .unwrap();
    };
    commit(1, Some(42));
    commit(2, Some(40));
    let mut c = db.client();
    let aggs = query_aggregators(&mut c).unwrap();
    assert_eq!(aggs.len(), 1);
    assert_eq!(
        (aggs[0].rows_processed, aggs[0].active_flows),
        (10, Some(40))
    );
    let s = query_stats(
        &mut c,
        &StatsQuery {
            window_secs: 60,
            to_ns: None,
        },
    )
    .unwrap();
    assert_eq!(s.flows_active, Some(40));
}

#[test]
fn maintenance_deletes_rollups_past_retention() {
    use netanalyzer_store::pg::{self, PartitionPlan};
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let day = 86_400i64;
    let now = 1_710_028_800 + day / 2; // mid 2024-03-10
    let today = now - now % day;
    c.batch_execute(&format!(
        "INSERT INTO traffic_seconds VALUES
            (to_timestamp({today} - 8 * {day}), 'a', 'TCP', 1, 1),
            (to_timestamp({today} - 7 * {day}), 'a', 'TCP', 1, 1),
            (to_timestamp({today}), 'a', 'TCP', 1, 1);
         INSERT INTO traffic_talkers VALUES
            (to_timestamp({today} - 8 * {day} + 60), 'a', 's', '10.0.0.1', 1, 1),
            (to_timestamp({today} - 7 * {day}), 'a', 's', '10.0.0.1', 1, 1);"
    ))
    .unwrap();
    let plan = PartitionPlan {
        retention_days: Some(7),
        ..PartitionPlan::default()
    };
    let report = pg::maintain(&mut c, &plan, now).unwrap();
    assert_eq!(report.rollups_deleted, 2);
    assert_eq!(count(&mut c, "SELECT count(*) FROM traffic_seconds"), 2);
    assert_eq!(count(&mut c, "SELECT count(*) FROM traffic_talkers"), 1);
    // Without retention nothing is deleted.
    let report = pg::maintain(&mut c, &PartitionPlan::default(), now + 30 * day).unwrap();
    assert_eq!(report.rollups_deleted, 0);
}

/// Through the server: the envelope's stats reach the `sensors` row, and
/// `/api/sensors` and `/api/stats` answer from the rollups.
#[test]
fn server_stores_envelope_stats_and_answers_stats() {
    use netanalyzer_store::server::{DatabaseSource, Server, ServerConfig};
    use netanalyzer_store::wire::{self, Compression, CONTENT_TYPE_MSGPACK};
    let Some(db) = TestDb::require() else { return };
    let mut cfg = ServerConfig::new(DatabaseSource::Url(db.conninfo()));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    let now = now_ns();
    let recs: Vec<PacketRecord> = (0..200u64)
        .map(|i| PacketRecord {
            ts_ns: now - 3 * SEC + i * 1_000_000,
            wire_len: 100,
            src_ip: Some(IpAddr::from([10, 0, 0, 1])),
            dst_ip: Some(IpAddr::from([10, 0, 0, 2])),
            protocol: Protocol::Dns,
            ..PacketRecord::default()
        })
        .collect();
    let mut b = batch("http-sensor", 0, recs);
    b.stream_id = wire::new_stream_id();
    let st = stats(5000, Some(3), 0);
    let enc = wire::encode_batch(&b, Some(&st), Compression::None).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(format!("http://{addr}/ingest_packets"))
        .header("Content-Type", CONTENT_TYPE_MSGPACK)
        .send(&enc.body[..])
        .unwrap();
    assert_eq!(resp.status(), 200);
    let get = |path: &str| -> serde_json::Value {
        let mut r = agent.get(format!("http://{addr}{path}")).call().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    };
    let v = get("/api/sensors");
    let s = &v["sensors"][0];
    assert_eq!(s["sensor_id"], "http-sensor");
    assert_eq!(
        (s["records"].as_u64(), s["packets_read"].as_u64()),
        (Some(200), Some(5000))
    );
    assert_eq!(
        (s["kernel_dropped"].as_u64(), s["if_dropped"].is_null()),
        (Some(3), true)
    );
    assert_eq!(s["status"], "degraded");
    assert!(v["aggregators"].as_array().unwrap().is_empty());
    let v = get("/api/stats?window=60");
    assert_eq!(
        (v["window_secs"].as_u64(), v["step_secs"].as_u64()),
        (Some(60), Some(1))
    );
    assert_eq!(v["series"].as_array().unwrap().len(), 60);
    assert_eq!(v["totals"]["packets"], 200);
    assert_eq!(v["protocols"][0]["protocol"], "DNS");
    assert_eq!(v["top_talkers"][0]["ip"], "10.0.0.1");
    let mut bad = agent
        .get(format!("http://{addr}/api/stats?window=0"))
        .call()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value =
        serde_json::from_str(&bad.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"], "bad_parameter");
    server.shutdown().unwrap();
}
