//! Per-batch traffic rollups, written by [`PacketWriter`](super::PacketWriter)
//! in the batch's own transaction: `traffic_seconds` (packets and bytes per
//! capture second and protocol), `traffic_talkers` (each batch's top
//! [`TOP_TALKERS`] sources and destinations per minute) and the `sensors`
//! row (totals, ingest lag, the envelope's [`SensorStats`]).
//!
//! A batch's rollups are computed once into maps reused between batches
//! (no allocation per record), then written with one multi-row
//! `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` per table,
//! adding to the existing sums. Keys are sorted before the upsert, so two
//! writers adding to the same rows lock them in the same order and never
//! deadlock. Because the upserts commit with the batch's `ingest_batches`
//! row, a batch is counted exactly once: a duplicate writes nothing.

use super::pg_err;
use crate::wire::SensorStats;
use crate::StoreError;
use netanalyzer_core::{PacketRecord, Protocol};
use postgres::{Client, Statement, Transaction};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sources (and destinations) per batch whose counts go to
/// `traffic_talkers`: the heavy hitters of the batch by bytes.
pub const TOP_TALKERS: usize = 16;

/// Adds a batch's per-second sums.
const UPSERT_SECONDS_SQL: &str = "INSERT INTO traffic_seconds AS t \
    (sec, sensor_id, protocol, packets, bytes) \
    SELECT u.sec, $1::text, u.protocol, u.packets, u.bytes \
    FROM unnest($2::timestamptz[], $3::text[], $4::bigint[], $5::bigint[]) \
        AS u(sec, protocol, packets, bytes) \
    ON CONFLICT (sec, sensor_id, protocol) DO UPDATE \
    SET packets = t.packets + excluded.packets, bytes = t.bytes + excluded.bytes";

/// Adds a batch's top talkers.
const UPSERT_TALKERS_SQL: &str = "INSERT INTO traffic_talkers AS t \
    (minute, sensor_id, role, ip, packets, bytes) \
    SELECT u.minute, $1::text, u.role, u.ip, u.packets, u.bytes \
    FROM unnest($2::timestamptz[], $3::\"char\"[], $4::inet[], $5::bigint[], $6::bigint[]) \
        AS u(minute, role, ip, packets, bytes) \
    ON CONFLICT (minute, role, ip, sensor_id) DO UPDATE \
    SET packets = t.packets + excluded.packets, bytes = t.bytes + excluded.bytes";

/// The stats of this batch replace the stored ones: they come from another
/// stream (the sensor restarted) or from a later batch of the same one.
macro_rules! fresh {
    () => {
        "($4::boolean AND (s.stats_stream IS DISTINCT FROM $12::bigint \
          OR s.stats_seq < $13::bigint))"
    };
}

/// A drop counter grew: compared with the stored one in the same stream,
/// with 0 after a restart.
macro_rules! grew {
    ($col:literal) => {
        concat!(
            "coalesce(excluded.",
            $col,
            ", 0) > CASE WHEN s.stats_stream IS NOT DISTINCT FROM $12::bigint THEN coalesce(s.",
            $col,
            ", 0) ELSE 0 END"
        )
    };
}

/// Keeps the stored value of a stats column unless this batch's are fresh.
macro_rules! stat {
    ($col:literal) => {
        concat!(
            $col,
            " = CASE WHEN ",
            fresh!(),
            " THEN excluded.",
            $col,
            " ELSE s.",
            $col,
            " END"
        )
    };
}

/// Upserts the sensor's row. `$3` is the newest packet time of the batch
/// (NULL when empty); the lag is the wall time now (right before COMMIT)
/// minus it.
const UPSERT_SENSOR_SQL: &str = concat!(
    "INSERT INTO sensors AS s (sensor_id, first_seen, last_seen, records, batches, \
        last_packet_ts, ingest_lag_ms, packets_read, kernel_dropped, if_dropped, parse_errors, \
        spool_records, spool_bytes, dropped_records, stats_stream, stats_seq, drops_at) \
    SELECT $1::text, clock_timestamp(), clock_timestamp(), $2::bigint, 1, $3::timestamptz, \
        (extract(epoch FROM clock_timestamp() - $3::timestamptz) * 1000)::bigint, \
        coalesce($5::bigint, 0), $6::bigint, $7::bigint, coalesce($8::bigint, 0), \
        coalesce($9::bigint, 0), coalesce($10::bigint, 0), coalesce($11::bigint, 0), \
        CASE WHEN $4::boolean THEN $12::bigint END, CASE WHEN $4::boolean THEN $13::bigint END, \
        CASE WHEN coalesce($6::bigint, 0) > 0 OR coalesce($7::bigint, 0) > 0 \
            OR coalesce($11::bigint, 0) > 0 THEN clock_timestamp() END \
    ON CONFLICT (sensor_id) DO UPDATE SET \
        last_seen = excluded.last_seen, \
        records = s.records + excluded.records, \
        batches = s.batches + 1, \
        last_packet_ts = greatest(s.last_packet_ts, excluded.last_packet_ts), \
        ingest_lag_ms = coalesce(excluded.ingest_lag_ms, s.ingest_lag_ms), \
        drops_at = CASE WHEN ",
    fresh!(),
    " AND (",
    grew!("kernel_dropped"),
    " OR ",
    grew!("if_dropped"),
    " OR ",
    grew!("dropped_records"),
    ") THEN clock_timestamp() ELSE s.drops_at END, ",
    stat!("packets_read"),
    ", ",
    stat!("kernel_dropped"),
    ", ",
    stat!("if_dropped"),
    ", ",
    stat!("parse_errors"),
    ", ",
    stat!("spool_records"),
    ", ",
    stat!("spool_bytes"),
    ", ",
    stat!("dropped_records"),
    ", ",
    stat!("stats_stream"),
    ", ",
    stat!("stats_seq"),
);

/// Packets and bytes.
type Counts = (u64, u64);

/// A `(minute, address)` talker key: minute in seconds since the epoch.
type TalkerKey = (i64, IpAddr);

/// Per-second counts of one capture second, by protocol.
#[derive(Clone, Copy)]
struct Second {
    sec: i64,
    by_proto: [Counts; Protocol::ALL.len()],
}

/// One role's (source or destination) per-address sums, with a one-entry
/// accumulator in front: consecutive records of one address (a burst, a
/// flow) cost one map lookup per run instead of one per record.
#[derive(Default)]
struct Talkers {
    map: HashMap<TalkerKey, Counts>,
    run: Option<(TalkerKey, Counts)>,
}

impl Talkers {
    fn clear(&mut self) {
        self.map.clear();
        self.run = None;
    }

    fn add(&mut self, key: TalkerKey, bytes: u64) {
        match &mut self.run {
            Some((k, c)) if *k == key => {
                c.0 += 1;
                c.1 += bytes;
            }
            run => {
                if let Some((k, c)) = run.replace((key, (1, bytes))) {
                    let e = self.map.entry(k).or_default();
                    e.0 += c.0;
                    e.1 += c.1;
                }
            }
        }
    }

    /// Flushes the accumulator and puts the top `n` by bytes (ties: more
    /// packets, then the smaller key) into `out`, sorted by key.
    fn top(&mut self, n: usize, out: &mut Vec<(TalkerKey, Counts)>) {
        if let Some((k, c)) = self.run.take() {
            let e = self.map.entry(k).or_default();
            e.0 += c.0;
            e.1 += c.1;
        }
        out.clear();
        out.extend(self.map.iter().map(|(k, c)| (*k, *c)));
        let rank = |a: &(TalkerKey, Counts), b: &(TalkerKey, Counts)| {
            (b.1 .1, b.1 .0).cmp(&(a.1 .1, a.1 .0)).then(a.0.cmp(&b.0))
        };
        if out.len() > n {
            out.select_nth_unstable_by(n - 1, rank);
            out.truncate(n);
        }
        out.sort_unstable_by_key(|e| e.0);
    }
}

/// The prepared upserts of one connection.
#[derive(Clone)]
pub(crate) struct RollupStatements {
    seconds: Statement,
    talkers: Statement,
    sensor: Statement,
}

impl RollupStatements {
    /// Prepares the three upserts on `client`.
    pub(crate) fn prepare(client: &mut Client) -> Result<Self, postgres::Error> {
        Ok(RollupStatements {
            seconds: client.prepare(UPSERT_SECONDS_SQL)?,
            talkers: client.prepare(UPSERT_TALKERS_SQL)?,
            sensor: client.prepare(UPSERT_SENSOR_SQL)?,
        })
    }
}

/// Where the batch's stats come from, for the `sensors` row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchIdentity<'a> {
    /// The batch's sensor.
    pub(crate) sensor_id: &'a str,
    /// Its stream (as stored in `ingest_batches`).
    pub(crate) stream_id: i64,
    /// Its sequence number.
    pub(crate) seq: i64,
}

/// The rollups of one batch, in maps reused between batches.
#[derive(Default)]
pub(crate) struct Rollup {
    seconds: Vec<Second>,
    second_index: HashMap<i64, usize>,
    src: Talkers,
    dst: Talkers,
    top: Vec<(TalkerKey, Counts)>,
    records: u64,
    max_ts_ns: Option<u64>,
}

impl Rollup {
    /// Computes the rollups of `records` (replacing the previous batch's).
    pub(crate) fn compute(&mut self, records: &[PacketRecord]) {
        self.seconds.clear();
        self.second_index.clear();
        self.src.clear();
        self.dst.clear();
        self.records = records.len() as u64;
        self.max_ts_ns = records.iter().map(|r| r.ts_ns).max();
        let mut last: Option<usize> = None;
        for r in records {
            let sec = (r.ts_ns / 1_000_000_000) as i64;
            let bytes = u64::from(r.wire_len);
            let i = match last {
                Some(i) if self.seconds[i].sec == sec => i,
                _ => {
                    let next = self.seconds.len();
                    let i = *self.second_index.entry(sec).or_insert(next);
                    if i == next {
                        self.seconds.push(Second {
                            sec,
                            by_proto: [(0, 0); Protocol::ALL.len()],
                        });
                    }
                    i
                }
            };
            last = Some(i);
            let c = &mut self.seconds[i].by_proto[proto_index(r.protocol)];
            c.0 += 1;
            c.1 += bytes;
            let minute = sec - sec.rem_euclid(60);
            if let Some(ip) = r.src_ip {
                self.src.add((minute, ip), bytes);
            }
            if let Some(ip) = r.dst_ip {
                self.dst.add((minute, ip), bytes);
            }
        }
        self.seconds.sort_unstable_by_key(|s| s.sec);
    }

    /// Writes the computed rollups and the sensor row inside `tx`.
    pub(crate) fn write(
        &mut self,
        tx: &mut Transaction<'_>,
        st: &RollupStatements,
        id: &BatchIdentity<'_>,
        stats: Option<&SensorStats>,
    ) -> Result<(), StoreError> {
        self.write_seconds(tx, st, id.sensor_id)?;
        self.write_talkers(tx, st, id.sensor_id)?;
        // Last: the sensor's row is the one both writers of a sensor
        // touch; locking it right before COMMIT keeps that wait short.
        self.write_sensor(tx, st, id, stats)
    }

    fn write_seconds(
        &self,
        tx: &mut Transaction<'_>,
        st: &RollupStatements,
        sensor_id: &str,
    ) -> Result<(), StoreError> {
        let n = self.seconds.len() * 2;
        let (mut secs, mut protos, mut packets, mut bytes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // Sorted by (sec, protocol index): the same order in every writer.
        for s in &self.seconds {
            for (p, c) in Protocol::ALL.iter().zip(s.by_proto) {
                if c.0 == 0 {
                    continue;
                }
                secs.push(at_secs(s.sec));
                protos.push(p.as_str());
                packets.push(sat(c.0));
                bytes.push(sat(c.1));
            }
        }
        if secs.is_empty() {
            return Ok(());
        }
        tx.execute(&st.seconds, &[&sensor_id, &secs, &protos, &packets, &bytes])
            .map_err(pg_err("write traffic_seconds"))?;
        Ok(())
    }

    fn write_talkers(
        &mut self,
        tx: &mut Transaction<'_>,
        st: &RollupStatements,
        sensor_id: &str,
    ) -> Result<(), StoreError> {
        let n = TOP_TALKERS * 2;
        let (mut minutes, mut roles, mut ips, mut packets, mut bytes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // Sorted by (minute, role, ip), the primary key's order.
        let mut rows: Vec<(i64, i8, IpAddr, Counts)> = Vec::with_capacity(n);
        for (role, talkers) in [(b'd' as i8, &mut self.dst), (b's' as i8, &mut self.src)] {
            talkers.top(TOP_TALKERS, &mut self.top);
            rows.extend(self.top.iter().map(|((m, ip), c)| (*m, role, *ip, *c)));
        }
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_unstable_by_key(|r| (r.0, r.1, r.2));
        for (m, role, ip, c) in rows {
            minutes.push(at_secs(m));
            roles.push(role);
            ips.push(ip);
            packets.push(sat(c.0));
            bytes.push(sat(c.1));
        }
        tx.execute(
            &st.talkers,
            &[&sensor_id, &minutes, &roles, &ips, &packets, &bytes],
        )
        .map_err(pg_err("write traffic_talkers"))?;
        Ok(())
    }

    fn write_sensor(
        &self,
        tx: &mut Transaction<'_>,
        st: &RollupStatements,
        id: &BatchIdentity<'_>,
        stats: Option<&SensorStats>,
    ) -> Result<(), StoreError> {
        let newest = self
            .max_ts_ns
            .map(|ns| UNIX_EPOCH + Duration::from_micros(ns / 1000));
        let s = stats.cloned().unwrap_or_default();
        let has = stats.is_some();
        let some = |v: u64| has.then(|| sat(v));
        tx.execute(
            &st.sensor,
            &[
                &id.sensor_id,
                &sat(self.records),
                &newest,
                &has,
                &some(s.packets),
                &s.kernel_dropped.filter(|_| has).map(sat),
                &s.if_dropped.filter(|_| has).map(sat),
                &some(s.parse_errors),
                &some(s.spool_records),
                &some(s.spool_bytes),
                &some(s.dropped_records),
                &id.stream_id,
                &id.seq,
            ],
        )
        .map_err(pg_err("write sensors"))?;
        Ok(())
    }
}

/// The index of `p` in [`Protocol::ALL`].
fn proto_index(p: Protocol) -> usize {
    p as usize
}

/// Seconds since the Unix epoch as a `timestamptz` parameter.
fn at_secs(s: i64) -> SystemTime {
    match u64::try_from(s) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()),
    }
}

/// A counter as `bigint`, saturating (sums of one batch never get near).
fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_index_is_the_position_in_all() {
        for (i, p) in Protocol::ALL.iter().enumerate() {
            assert_eq!(proto_index(*p), i);
        }
    }

    fn rec(ts_s: u64, proto: Protocol, src: [u8; 4], len: u32) -> PacketRecord {
        PacketRecord {
            ts_ns: ts_s * 1_000_000_000 + 5,
            wire_len: len,
            src_ip: Some(IpAddr::from(src)),
            dst_ip: Some(IpAddr::from([10, 0, 0, 1])),
            protocol: proto,
            ..PacketRecord::default()
        }
    }

    #[test]
    fn sums_per_second_and_protocol_in_key_order() {
        let mut r = Rollup::default();
        let recs = [
            rec(101, Protocol::Tcp, [1, 1, 1, 1], 100),
            rec(100, Protocol::Udp, [1, 1, 1, 1], 10),
            rec(101, Protocol::Tcp, [1, 1, 1, 2], 50),
            rec(100, Protocol::Tcp, [1, 1, 1, 1], 1),
        ];
        r.compute(&recs);
        assert_eq!(r.records, 4);
        assert_eq!(r.seconds.len(), 2);
        assert_eq!(r.seconds[0].sec, 100);
        let t = proto_index(Protocol::Tcp);
        let u = proto_index(Protocol::Udp);
        assert_eq!(r.seconds[0].by_proto[t], (1, 1));
        assert_eq!(r.seconds[0].by_proto[u], (1, 10));
        assert_eq!(r.seconds[1].by_proto[t], (2, 150));
        let mut top = Vec::new();
        r.src.top(1, &mut top);
        assert_eq!(top, vec![((60, IpAddr::from([1, 1, 1, 1])), (3, 111))]);
        r.dst.top(16, &mut top);
        assert_eq!(top, vec![((60, IpAddr::from([10, 0, 0, 1])), (4, 161))]);
    }

    #[test]
    fn top_is_bounded_and_exact() {
        let mut t = Talkers::default();
        for i in 0..10_000u32 {
            t.add((0, IpAddr::from(i.to_be_bytes())), 1);
        }
        for _ in 0..5 {
            t.add((0, IpAddr::from([9, 9, 9, 9])), 1000);
        }
        let mut out = Vec::new();
        t.top(TOP_TALKERS, &mut out);
        assert_eq!(out.len(), TOP_TALKERS);
        assert!(out.contains(&((0, IpAddr::from([9, 9, 9, 9])), (5, 5000))));
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
