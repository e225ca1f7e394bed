//! PostgreSQL store tests against a real server: an embedded throwaway
//! cluster, or `NETANALYZER_TEST_PG`. Skipped (with a message) when
//! PostgreSQL is not installed, except under `CI=true`.

mod support;

use netanalyzer_core::{MacAddr, PacketRecord, Protocol};
use netanalyzer_store::pg::{
    self, EmbeddedOptions, EmbeddedPostgres, PacketWriter, PartitionPlan, TestDb, WriteOutcome,
    MIGRATIONS,
};
use netanalyzer_store::StoreError;
use postgres::Client;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Barrier};
use support::{batch, count, full_record, BASE_NS, DAY_NS};

fn ipv4_record(ts_ns: u64, i: u32) -> PacketRecord {
    PacketRecord {
        ts_ns,
        wire_len: 60,
        cap_len: 60,
        ip_version: Some(4),
        src_ip: Some(IpAddr::from([10, 0, (i >> 8) as u8, i as u8])),
        dst_ip: Some(IpAddr::from([192, 168, 1, 1])),
        ip_proto: Some(6),
        src_port: Some(40_000),
        dst_port: Some(80),
        protocol: Protocol::Tcp,
        ..PacketRecord::default()
    }
}

fn u<T: TryFrom<i64>>(v: Option<i64>) -> Option<T>
where
    T::Error: std::fmt::Debug,
{
    v.map(|v| T::try_from(v).unwrap())
}

/// Reads every row of `raw_packets` back as records (ordered by ts, ns),
/// converting each column by SQL so nothing is taken on trust.
fn read_back(client: &mut Client) -> Vec<(String, PacketRecord)> {
    let rows = client
        .query(
            "SELECT (extract(epoch FROM ts) * 1000000)::bigint, ts_ns_rem::bigint, sensor_id, iface,
                    wire_len, cap_len, eth_src::text, eth_dst::text, vlan_id::bigint,
                    ether_type::bigint, ip_version::bigint, src_ip, dst_ip, ip_proto::bigint,
                    ttl::bigint, is_fragment, src_port::bigint, dst_port::bigint,
                    tcp_flags::bigint, tcp_seq, tcp_ack, tcp_window::bigint, payload_len,
                    icmp_type::bigint, icmp_code::bigint, arp_op::bigint, dns_qname,
                    dns_qtype::bigint, dns_is_response, http_method, http_host, http_path,
                    tls_sni, protocol
             FROM raw_packets ORDER BY ts, ts_ns_rem, dns_qname NULLS FIRST",
            &[],
        )
        .unwrap();
    let mac = |s: Option<String>| {
        s.map(|s| {
            let mut o = [0u8; 6];
            for (i, p) in s.split(':').enumerate() {
                o[i] = u8::from_str_radix(p, 16).unwrap();
            }
            MacAddr(o)
        })
    };
    rows.iter()
        .map(|r| {
            let us: i64 = r.get(0);
            let rem: i64 = r.get(1);
            let rec = PacketRecord {
                ts_ns: u64::try_from(us).unwrap() * 1000 + u64::try_from(rem).unwrap(),
                iface: r.get::<_, Option<String>>(3).map(Arc::from),
                wire_len: u32::try_from(r.get::<_, i64>(4)).unwrap(),
                cap_len: u32::try_from(r.get::<_, i64>(5)).unwrap(),
                eth_src: mac(r.get(6)),
                eth_dst: mac(r.get(7)),
                vlan_id: u(r.get(8)),
                ether_type: u(r.get(9)),
                ip_version: u(r.get(10)),
                src_ip: r.get(11),
                dst_ip: r.get(12),
                ip_proto: u(r.get(13)),
                ttl: u(r.get(14)),
                is_fragment: r.get(15),
                src_port: u(r.get(16)),
                dst_port: u(r.get(17)),
                tcp_flags: u(r.get(18)),
                tcp_seq: u(r.get(19)),
                tcp_ack: u(r.get(20)),
                tcp_window: u(r.get(21)),
                payload_len: u(r.get(22)),
                icmp_type: u(r.get(23)),
                icmp_code: u(r.get(24)),
                arp_op: u(r.get(25)),
                dns_qname: r.get(26),
                dns_qtype: u(r.get(27)),
                dns_is_response: r.get(28),
                http_method: r.get(29),
                http_host: r.get(30),
                http_path: r.get(31),
                tls_sni: r.get(32),
                protocol: r.get::<_, &str>(33).parse().unwrap(),
            };
            (r.get(2), rec)
        })
        .collect()
}

#[test]
fn migrations_are_versioned_and_idempotent() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let newest = MIGRATIONS.last().unwrap().version;
    assert_eq!(pg::schema_version(&mut c).unwrap(), newest);
    // TestDb already migrated once: twice more changes nothing.
    assert_eq!(pg::migrate(&mut c).unwrap(), newest);
    assert_eq!(pg::migrate(&mut c).unwrap(), newest);
    let versions: Vec<i32> = c
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = MIGRATIONS.iter().map(|m| m.version as i32).collect();
    assert_eq!(versions, expected);
    // The packet table has exactly the contract's columns, in order.
    let cols: Vec<String> = c
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'raw_packets' ORDER BY ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(cols, pg::RAW_PACKETS_COLUMNS);
}

#[test]
fn concurrent_migrations_are_safe() {
    let Some(db) = TestDb::require() else { return };
    // Start from an empty schema, then migrate from two connections at once.
    db.client()
        .batch_execute("DROP TABLE raw_packets, ingest_batches, schema_migrations")
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (conninfo, barrier) = (db.conninfo(), barrier.clone());
            std::thread::spawn(move || {
                let mut c = pg::connect(&conninfo).unwrap();
                barrier.wait();
                pg::migrate(&mut c).unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), MIGRATIONS.last().unwrap().version);
    }
    let n = count(&mut db.client(), "SELECT count(*) FROM schema_migrations");
    assert_eq!(n, MIGRATIONS.len() as i64);
}

#[test]
fn batch_round_trips_every_column() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    let empty = PacketRecord {
        ts_ns: BASE_NS + 1,
        ..PacketRecord::default()
    };
    let mut v4 = full_record(BASE_NS + 123_456_789_987);
    v4.src_ip = Some("0.0.0.0".parse().unwrap());
    v4.dst_ip = Some("255.255.255.255".parse().unwrap());
    v4.dns_qname = Some("v4".into());
    v4.protocol = Protocol::Other;
    let full = full_record(BASE_NS + 123_456_789_999);
    let records = vec![empty, v4, full];
    assert_eq!(
        w.write_batch(&batch("sensor-1", 1, records.clone()))
            .unwrap(),
        WriteOutcome::Inserted { rows: 3 }
    );
    let back = read_back(&mut db.client());
    assert_eq!(back.len(), 3);
    for ((sensor, got), want) in back.iter().zip(&records) {
        assert_eq!(sensor, "sensor-1");
        assert_eq!(got, want);
    }
    // The bookkeeping row.
    let row = db
        .client()
        .query_one(
            "SELECT sensor_id, stream_id, seq, records FROM ingest_batches",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "sensor-1");
    assert_eq!(row.get::<_, i64>(1), 42);
    assert_eq!(row.get::<_, i64>(2), 1);
    assert_eq!(row.get::<_, i32>(3), 3);
}

#[test]
fn duplicate_batch_writes_nothing() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    let records: Vec<_> = (0..100)
        .map(|i| ipv4_record(BASE_NS + i, i as u32))
        .collect();
    let b = batch("sensor-1", 7, records);
    assert_eq!(
        w.write_batch(&b).unwrap(),
        WriteOutcome::Inserted { rows: 100 }
    );
    assert_eq!(w.write_batch(&b).unwrap(), WriteOutcome::Duplicate);
    // Another writer (as after a server restart) also sees the duplicate.
    let mut w2 = PacketWriter::new(db.client());
    assert_eq!(w2.write_batch(&b).unwrap(), WriteOutcome::Duplicate);
    let mut c = db.client();
    assert_eq!(count(&mut c, "SELECT count(*) FROM raw_packets"), 100);
    assert_eq!(count(&mut c, "SELECT count(*) FROM ingest_batches"), 1);
    // Same seq on another stream or sensor is a different batch.
    let mut other = b.clone();
    other.stream_id = 43;
    assert_eq!(
        w.write_batch(&other).unwrap(),
        WriteOutcome::Inserted { rows: 100 }
    );
    other.sensor_id = "sensor-2".into();
    assert_eq!(
        w.write_batch(&other).unwrap(),
        WriteOutcome::Inserted { rows: 100 }
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM raw_packets"), 300);
    // Out-of-range keys are refused before touching the database.
    other.seq = u64::MAX;
    assert!(matches!(
        w.write_batch(&other),
        Err(StoreError::ColumnOutOfRange { .. })
    ));
    assert!(!w.is_closed());
}

#[test]
fn concurrent_duplicates_insert_exactly_once() {
    let Some(db) = TestDb::require() else { return };
    for seq in 0..5u64 {
        let records: Vec<_> = (0..2000)
            .map(|i| ipv4_record(BASE_NS + seq * 10_000 + i, i as u32))
            .collect();
        let b = Arc::new(batch("sensor-1", seq, records));
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (b, barrier) = (b.clone(), barrier.clone());
                let mut w = PacketWriter::new(db.client());
                std::thread::spawn(move || {
                    barrier.wait();
                    w.write_batch(&b).unwrap()
                })
            })
            .collect();
        let mut outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        outcomes.sort_by_key(|o| matches!(o, WriteOutcome::Duplicate));
        assert_eq!(
            outcomes,
            [
                WriteOutcome::Inserted { rows: 2000 },
                WriteOutcome::Duplicate
            ]
        );
    }
    let mut c = db.client();
    assert_eq!(count(&mut c, "SELECT count(*) FROM raw_packets"), 5 * 2000);
    assert_eq!(count(&mut c, "SELECT count(*) FROM ingest_batches"), 5);
}

fn partitions(c: &mut Client) -> Vec<String> {
    let mut v: Vec<String> = c
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'raw_packets'::regclass",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    v.sort();
    v
}

#[test]
fn batch_spanning_three_days_creates_three_partitions() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    // Last nanosecond of day 1, then days 2 and 3.
    let records = vec![
        ipv4_record(BASE_NS + DAY_NS - 1, 1),
        ipv4_record(BASE_NS + DAY_NS, 2),
        ipv4_record(BASE_NS + 2 * DAY_NS + 5, 3),
        ipv4_record(BASE_NS + 5, 4),
    ];
    assert_eq!(
        w.write_batch(&batch("sensor-1", 1, records)).unwrap(),
        WriteOutcome::Inserted { rows: 4 }
    );
    let mut c = db.client();
    assert_eq!(
        partitions(&mut c),
        [
            "raw_packets_p20240310",
            "raw_packets_p20240311",
            "raw_packets_p20240312"
        ]
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM raw_packets_p20240310"),
        2
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM raw_packets_p20240311"),
        1
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM raw_packets_p20240312"),
        1
    );
    // Creating them again is a no-op.
    let day = pg::day_of_ts_ns(BASE_NS);
    assert_eq!(pg::ensure_partitions(&mut c, day, day + 2).unwrap(), 0);
    assert_eq!(pg::ensure_partitions(&mut c, day, day + 3).unwrap(), 1);
}

#[test]
fn retention_drops_old_partitions_only() {
    let Some(db) = TestDb::require() else { return };
    let mut c = db.client();
    let today = pg::day_of_ts_ns(BASE_NS);
    let now = (BASE_NS / 1_000_000_000) as i64 + 3600;
    // Ten old days with one row each, written through the writer.
    let mut w = PacketWriter::new(db.client());
    let records: Vec<_> = (1..=10u64)
        .map(|d| ipv4_record(BASE_NS - d * DAY_NS, d as u32))
        .collect();
    w.write_batch(&batch("sensor-1", 1, records)).unwrap();
    let plan = PartitionPlan {
        ahead_days: 2,
        retention_days: Some(3),
    };
    let report = pg::maintain(&mut c, &plan, now).unwrap();
    assert_eq!(report.created, 3, "today and 2 ahead");
    let expected_dropped: Vec<String> = (4..=10)
        .rev()
        .map(|d| pg::partition_name(today - d))
        .collect();
    assert_eq!(report.dropped, expected_dropped);
    let kept: Vec<String> = (-3..=2).map(|d| pg::partition_name(today + d)).collect();
    assert_eq!(partitions(&mut c), kept);
    assert_eq!(count(&mut c, "SELECT count(*) FROM raw_packets"), 3);
    // Closed days got their btree indexes; today and later only the BRIN.
    let closed: Vec<String> = (1..=3)
        .rev()
        .map(|d| pg::partition_name(today - d))
        .collect();
    assert_eq!(report.indexed, closed);
    let index_count = |c: &mut Client, part: &str| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = $1",
            &[&part],
        )
        .unwrap()
        .get(0)
    };
    for p in &closed {
        assert_eq!(
            index_count(&mut c, p),
            1 + pg::CLOSED_PARTITION_INDEXES.len() as i64,
            "{p}"
        );
    }
    assert_eq!(index_count(&mut c, &pg::partition_name(today)), 1);
    // Idempotent.
    let again = pg::maintain(&mut c, &plan, now).unwrap();
    assert_eq!(again, pg::MaintenanceReport::default());
    // No retention: nothing is dropped, ever.
    let keep_all = PartitionPlan::default();
    let r = pg::maintain(&mut c, &keep_all, now + 400 * 86_400).unwrap();
    assert!(r.dropped.is_empty());
    // The writer's cached partition was dropped: it recreates it.
    let old = vec![ipv4_record(BASE_NS - 10 * DAY_NS, 99)];
    assert_eq!(
        w.write_batch(&batch("sensor-1", 2, old)).unwrap(),
        WriteOutcome::Inserted { rows: 1 }
    );
}

#[test]
fn injection_looking_strings_are_stored_verbatim() {
    let Some(db) = TestDb::require() else { return };
    let mut w = PacketWriter::new(db.client());
    let nasty = [
        "'; DROP TABLE raw_packets; --",
        "\\\\x00\\'\"; DELETE FROM ingest_batches WHERE ''='",
        "$$; TRUNCATE raw_packets; $$",
        "Robert'); DROP TABLE students;-- ✓ \u{1F600}",
    ];
    let records: Vec<_> = nasty
        .iter()
        .enumerate()
        .map(|(i, s)| PacketRecord {
            ts_ns: BASE_NS + i as u64,
            iface: Some(Arc::from(*s)),
            dns_qname: Some((*s).to_owned()),
            http_method: Some((*s).to_owned()),
            http_host: Some((*s).to_owned()),
            http_path: Some((*s).to_owned()),
            tls_sni: Some((*s).to_owned()),
            ..PacketRecord::default()
        })
        .collect();
    let mut b = batch("sensor-1", 1, records.clone());
    b.sensor_id = "s'; DROP TABLE x; --".into();
    w.write_batch(&b).unwrap();
    let back = read_back(&mut db.client());
    assert_eq!(back.len(), nasty.len());
    for ((sensor, got), want) in back.iter().zip(&records) {
        assert_eq!(sensor, "s'; DROP TABLE x; --");
        assert_eq!(got, want);
    }
    assert_eq!(w.write_batch(&b).unwrap(), WriteOutcome::Duplicate);
}

/// A fresh data directory for an embedded cluster, or `None` (skip) when
/// PostgreSQL is not installed.
fn cluster_dir() -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    match EmbeddedPostgres::start(opts(dir.path())) {
        Ok(pg) => {
            pg.stop().unwrap();
            Some(dir)
        }
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("embedded postgres under CI=true: {e}");
            }
            eprintln!("skipping: {e}");
            None
        }
    }
}

fn opts(dir: &Path) -> EmbeddedOptions {
    EmbeddedOptions {
        data_dir: dir.join("data"),
        durable: false,
    }
}

fn write_some(pg: &EmbeddedPostgres, seq: u64, n: u32) {
    let mut c = pg::connect(&pg.conninfo()).unwrap();
    pg::migrate(&mut c).unwrap();
    let mut w = PacketWriter::new(c);
    let records: Vec<_> = (0..n)
        .map(|i| ipv4_record(BASE_NS + u64::from(i), i))
        .collect();
    assert_eq!(
        w.write_batch(&batch("sensor-1", seq, records)).unwrap(),
        WriteOutcome::Inserted { rows: u64::from(n) }
    );
}

fn rows(pg: &EmbeddedPostgres) -> i64 {
    count(
        &mut pg::connect(&pg.conninfo()).unwrap(),
        "SELECT count(*) FROM raw_packets",
    )
}

fn postmaster_pid(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("data/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[test]
fn embedded_stop_and_start_keep_data() {
    let Some(dir) = cluster_dir() else { return };
    let pg1 = EmbeddedPostgres::start(opts(dir.path())).unwrap();
    assert_eq!(pg1.data_dir(), dir.path().join("data"));
    assert!(pg1.conninfo().contains("dbname=netanalyzer"));
    write_some(&pg1, 1, 500);
    pg1.stop().unwrap();
    assert_eq!(postmaster_pid(dir.path()), None, "stopped");
    let mut pg2 = EmbeddedPostgres::start(opts(dir.path())).unwrap();
    assert_eq!(rows(&pg2), 500);
    // restart(): connections break, data stays.
    let mut c = pg::connect(&pg2.conninfo()).unwrap();
    pg2.restart().unwrap();
    assert!(c.simple_query("SELECT 1").is_err());
    assert_eq!(rows(&pg2), 500);
    write_some(&pg2, 2, 10);
    assert_eq!(rows(&pg2), 510);
    drop(pg2); // Drop stops it too.
    assert_eq!(postmaster_pid(dir.path()), None, "stopped by drop");
}

#[test]
fn embedded_adopts_a_running_postmaster() {
    let Some(dir) = cluster_dir() else { return };
    let pg1 = EmbeddedPostgres::start(opts(dir.path())).unwrap();
    write_some(&pg1, 1, 100);
    let pid = postmaster_pid(dir.path()).unwrap();
    // As if the owning process were SIGKILLed: nobody stops the postmaster.
    std::mem::forget(pg1);
    let pg2 = EmbeddedPostgres::start(opts(dir.path())).unwrap();
    assert_eq!(
        postmaster_pid(dir.path()),
        Some(pid),
        "same postmaster, adopted"
    );
    assert_eq!(rows(&pg2), 100);
    pg2.stop().unwrap();
    assert_eq!(postmaster_pid(dir.path()), None);
}

#[test]
fn embedded_starts_over_a_stale_pid_file() {
    let Some(dir) = cluster_dir() else { return };
    let pg1 = EmbeddedPostgres::start(opts(dir.path())).unwrap();
    write_some(&pg1, 1, 10);
    let pid_file = dir.path().join("data/postmaster.pid");
    let text = std::fs::read_to_string(&pid_file).unwrap();
    pg1.stop().unwrap();
    // A postmaster.pid naming a process that no longer exists (pid_max is
    // at most 2^22).
    let stale = text.replacen(text.lines().next().unwrap(), "4194303", 1);
    std::fs::write(&pid_file, stale).unwrap();
    let pg2 = EmbeddedPostgres::start(opts(dir.path())).unwrap();
    assert_eq!(rows(&pg2), 10);
    assert_ne!(postmaster_pid(dir.path()), Some(4_194_303));
}

#[test]
fn unreachable_data_dir_is_a_clear_error() {
    // As root the cluster runs as `postgres`, which cannot enter a 0700
    // directory of root's: say so, instead of initdb's "permission denied".
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    if !root {
        eprintln!("skipping: only root hands the cluster to the postgres user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let Err(err) = EmbeddedPostgres::start(EmbeddedOptions {
        data_dir: dir.path().join("data"),
        durable: false,
    }) else {
        panic!("started, but the postgres user cannot enter the directory");
    };
    let msg = err.to_string();
    assert!(msg.contains("cannot enter"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}
