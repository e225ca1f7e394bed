//! Daily partitions of `raw_packets` (and of `flows`): creation ahead of
//! time and retention.

use super::pg_err;
use crate::StoreError;
use postgres::Client;

/// Advisory lock key held (per transaction) while creating or dropping
/// partitions: "netapart".
const PARTITION_LOCK: i64 = 0x6e65_7461_7061_7274;

/// Advisory lock key held (per transaction) while indexing closed
/// partitions: "netaindx". Separate from [`PARTITION_LOCK`] so a long index
/// build never delays a writer creating today's partition.
const INDEX_LOCK: i64 = 0x6e65_7461_696e_6478;

const SECS_PER_DAY: i64 = 86_400;

/// The btree indexes built on a partition once its day is over: (name
/// suffix, indexed columns). The live partition only has the BRIN index on
/// `ts` defined on the parent table (see `docs/schema.md`).
pub const CLOSED_PARTITION_INDEXES: [(&str, &str); 3] = [
    ("src_ip", "src_ip"),
    ("dst_ip", "dst_ip"),
    ("protocol_ts", "protocol, ts"),
];

/// When partitions are created and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionPlan {
    /// Days after today whose partitions [`maintain`] creates in advance
    /// (default 3), so writers rarely create one on the hot path.
    pub ahead_days: u32,
    /// Partitions whose day is more than this many days before today are
    /// dropped by [`maintain`]; `None` (default) keeps everything. With
    /// `Some(7)` today and the 7 days before it are kept.
    pub retention_days: Option<u32>,
}

impl Default for PartitionPlan {
    fn default() -> Self {
        PartitionPlan {
            ahead_days: 3,
            retention_days: None,
        }
    }
}

/// What [`maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Number of partitions created.
    pub created: u32,
    /// Names of the partitions dropped by retention, oldest first.
    pub dropped: Vec<String>,
    /// Names of the closed partitions that got their btree indexes
    /// ([`CLOSED_PARTITION_INDEXES`]) during this run.
    pub indexed: Vec<String>,
    /// Number of `flows` partitions created.
    pub flows_created: u32,
    /// Names of the `flows` partitions dropped by retention, oldest first.
    pub flows_dropped: Vec<String>,
    /// Alerts deleted by retention (last seen before the oldest kept day).
    pub alerts_deleted: u64,
    /// `traffic_seconds` and `traffic_talkers` rows deleted by retention
    /// (before the oldest kept day).
    pub rollups_deleted: u64,
}

/// What [`maintain_flows`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowMaintenance {
    /// Number of `flows` partitions created.
    pub created: u32,
    /// Names of the `flows` partitions dropped by retention, oldest first.
    pub dropped: Vec<String>,
    /// Alerts deleted by retention.
    pub alerts_deleted: u64,
}

/// The day (days since 1970-01-01, UTC) of a timestamp in nanoseconds since
/// the Unix epoch.
pub fn day_of_ts_ns(ts_ns: u64) -> i64 {
    // u64::MAX / 86.4e12 is about 213 503: always fits.
    (ts_ns / 1_000_000_000 / SECS_PER_DAY as u64) as i64
}

/// The partition name of a day: `raw_packets_pYYYYMMDD`.
pub fn partition_name(day: i64) -> String {
    table_partition_name(RAW_PACKETS, day)
}

/// The `flows` partition name of a day: `flows_pYYYYMMDD`.
pub fn flow_partition_name(day: i64) -> String {
    table_partition_name(FLOWS, day)
}

/// The partitioned tables managed here.
pub(crate) const RAW_PACKETS: &str = "raw_packets";
/// The flows table (schema version 3).
pub(crate) const FLOWS: &str = "flows";

/// `<table>_pYYYYMMDD`.
fn table_partition_name(table: &str, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{table}_p{y:04}{m:02}{d:02}")
}

/// The day of a partition name made by [`partition_name`].
#[cfg(test)]
pub(crate) fn day_of_partition_name(name: &str) -> Option<i64> {
    day_of_table_partition(RAW_PACKETS, name)
}

/// The day of a partition name `<table>_pYYYYMMDD`.
fn day_of_table_partition(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = digits[..4].parse().ok()?;
    let m: u32 = digits[4..6].parse().ok()?;
    let d: u32 = digits[6..].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

/// Midnight UTC of a day as a PostgreSQL timestamptz literal.
fn day_literal(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02} 00:00:00+00")
}

/// Creates the partitions for the days `first_day..=last_day` (days since
/// 1970-01-01, UTC) that do not exist yet, and returns how many it created.
///
/// Runs in its own short transaction under an advisory lock, with
/// `CREATE TABLE IF NOT EXISTS`, so concurrent callers are safe. Do not
/// call it inside a transaction that already wrote to `raw_packets` from
/// another connection's point of view: creating a partition locks the
/// parent table.
///
/// # Errors
///
/// [`StoreError::Postgres`] when a statement fails;
/// [`StoreError::InvalidSetting`] when the range is reversed or longer
/// than 10 000 days.
pub fn ensure_partitions(
    client: &mut Client,
    first_day: i64,
    last_day: i64,
) -> Result<u32, StoreError> {
    if last_day < first_day || last_day - first_day > 10_000 {
        return Err(StoreError::InvalidSetting {
            name: "partition days",
            reason: "the range must be ascending and at most 10000 days long",
        });
    }
    let days: Vec<i64> = (first_day..=last_day).collect();
    ensure_partition_days(client, &days)
}

/// Creates the partitions of the given days (any order) that are missing.
pub(crate) fn ensure_partition_days(client: &mut Client, days: &[i64]) -> Result<u32, StoreError> {
    ensure_table_partition_days(client, RAW_PACKETS, days)
}

/// Creates the partitions of `table` (`raw_packets` or `flows`) for the
/// given days (any order) that are missing.
pub(crate) fn ensure_table_partition_days(
    client: &mut Client,
    table: &'static str,
    days: &[i64],
) -> Result<u32, StoreError> {
    if days.is_empty() {
        return Ok(0);
    }
    let mut tx = client.transaction().map_err(pg_err("partitions: begin"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .map_err(pg_err("partitions: lock"))?;
    let mut created = 0;
    for &day in days {
        let name = table_partition_name(table, day);
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .map_err(pg_err("partitions: look up"))?
            .get(0);
        if exists {
            continue;
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} \
             FOR VALUES FROM ('{}') TO ('{}')",
            day_literal(day),
            day_literal(day + 1)
        );
        tx.batch_execute(&sql)
            .map_err(pg_err("partitions: create"))?;
        created += 1;
    }
    tx.commit().map_err(pg_err("partitions: commit"))?;
    if created > 0 {
        tracing::info!(created, table, "created partitions");
    }
    Ok(created)
}

/// The days of the existing partitions named `raw_packets_pYYYYMMDD`,
/// ascending.
pub(crate) fn partition_days(client: &mut Client) -> Result<Vec<i64>, StoreError> {
    table_partition_days(client, RAW_PACKETS)
}

/// The days of the existing partitions named `<table>_pYYYYMMDD`,
/// ascending.
fn table_partition_days(client: &mut Client, table: &'static str) -> Result<Vec<i64>, StoreError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::text::regclass",
            &[&table],
        )
        .map_err(pg_err("partitions: list"))?;
    let mut days: Vec<i64> = rows
        .iter()
        .filter_map(|r| day_of_table_partition(table, r.get::<_, &str>(0)))
        .collect();
    days.sort_unstable();
    Ok(days)
}

/// Periodic upkeep: creates the partitions from today to
/// `today + ahead_days`, drops those whose day is before
/// `today - retention_days` (when set), and builds the btree indexes of
/// every closed partition (day before today) that lacks them (see
/// [`index_closed_partitions`]). `now_unix_secs` is the wall clock (passed
/// in so tests can move time). The rows of `traffic_seconds` and
/// `traffic_talkers` before the oldest kept day are deleted too. The `flows` partitions get the same
/// creation ahead and retention (see [`maintain_flows`], which applies a
/// different retention when called on its own).
///
/// Each drop is its own short transaction under the partition advisory
/// lock. Only partitions named `raw_packets_pYYYYMMDD` are considered.
///
/// # Errors
///
/// [`StoreError::Postgres`] when a statement fails (partitions handled
/// before the failure stay created or dropped).
pub fn maintain(
    client: &mut Client,
    plan: &PartitionPlan,
    now_unix_secs: i64,
) -> Result<MaintenanceReport, StoreError> {
    let today = now_unix_secs.div_euclid(SECS_PER_DAY);
    let created = ensure_partitions(client, today, today + i64::from(plan.ahead_days))?;
    let dropped = drop_old_partitions(client, RAW_PACKETS, today, plan.retention_days)?;
    let indexed = index_closed_partitions(client, today)?;
    let flows = maintain_flows(client, plan, now_unix_secs)?;
    let rollups_deleted = delete_old_rollups(client, today, plan.retention_days)?;
    Ok(MaintenanceReport {
        created,
        dropped,
        indexed,
        flows_created: flows.created,
        flows_dropped: flows.dropped,
        alerts_deleted: flows.alerts_deleted,
        rollups_deleted,
    })
}

/// Deletes the `traffic_seconds` and `traffic_talkers` rows of the days
/// before `today - retention_days` (when set); returns how many. Each
/// `DELETE` is a range on the first column of the table's primary key.
fn delete_old_rollups(
    client: &mut Client,
    today: i64,
    retention_days: Option<u32>,
) -> Result<u64, StoreError> {
    let Some(keep) = retention_days else {
        return Ok(0);
    };
    let oldest_kept_secs = (today - i64::from(keep)) * SECS_PER_DAY;
    let mut deleted = 0;
    for sql in [
        "DELETE FROM traffic_seconds WHERE sec < to_timestamp($1::bigint)",
        "DELETE FROM traffic_talkers WHERE minute < to_timestamp($1::bigint)",
    ] {
        deleted += client
            .execute(sql, &[&oldest_kept_secs])
            .map_err(pg_err("retention: delete rollups"))?;
    }
    if deleted > 0 {
        tracing::info!(rows = deleted, "deleted traffic rollups (retention)");
    }
    Ok(deleted)
}

/// Upkeep of the `flows` partitions (`flows_pYYYYMMDD`) and the `alerts`
/// table: creates the partitions of today to `today + plan.ahead_days`,
/// drops those whose day is before `today - plan.retention_days` (when
/// set) and deletes the alerts last seen before that day. [`maintain`]
/// calls it with its own plan; call it with another plan to keep flows
/// longer than packets.
///
/// # Errors
///
/// [`StoreError::Postgres`] when a statement fails (partitions handled
/// before the failure stay created or dropped).
pub fn maintain_flows(
    client: &mut Client,
    plan: &PartitionPlan,
    now_unix_secs: i64,
) -> Result<FlowMaintenance, StoreError> {
    let today = now_unix_secs.div_euclid(SECS_PER_DAY);
    let days: Vec<i64> = (today..=today + i64::from(plan.ahead_days)).collect();
    let created = ensure_table_partition_days(client, FLOWS, &days)?;
    let dropped = drop_old_partitions(client, FLOWS, today, plan.retention_days)?;
    let mut alerts_deleted = 0;
    if let Some(keep) = plan.retention_days {
        let oldest_kept_secs = (today - i64::from(keep)) * SECS_PER_DAY;
        alerts_deleted = client
            .execute(
                "DELETE FROM alerts WHERE last_ts < to_timestamp($1::bigint)",
                &[&oldest_kept_secs],
            )
            .map_err(pg_err("retention: delete alerts"))?;
        if alerts_deleted > 0 {
            tracing::info!(alerts = alerts_deleted, "deleted alerts (retention)");
        }
    }
    Ok(FlowMaintenance {
        created,
        dropped,
        alerts_deleted,
    })
}

/// Drops the partitions of `table` whose day is more than `retention_days`
/// before `today`, each in its own transaction under the partition lock;
/// returns their names, oldest first.
fn drop_old_partitions(
    client: &mut Client,
    table: &'static str,
    today: i64,
    retention_days: Option<u32>,
) -> Result<Vec<String>, StoreError> {
    let mut dropped = Vec::new();
    let Some(keep) = retention_days else {
        return Ok(dropped);
    };
    let oldest_kept = today - i64::from(keep);
    for day in table_partition_days(client, table)? {
        if day >= oldest_kept {
            break;
        }
        let name = table_partition_name(table, day);
        let mut tx = client.transaction().map_err(pg_err("retention: begin"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .map_err(pg_err("retention: lock"))?;
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
            .map_err(pg_err("retention: drop partition"))?;
        tx.commit().map_err(pg_err("retention: commit"))?;
        tracing::info!(partition = %name, "dropped partition (retention)");
        dropped.push(name);
    }
    Ok(dropped)
}

/// Builds the [`CLOSED_PARTITION_INDEXES`] on every partition whose day is
/// before `before_day` and that lacks one of them; returns the partitions
/// indexed. Each partition is indexed in its own transaction under an
/// advisory lock (so concurrent maintainers do not collide). The build
/// takes a SHARE lock on that partition only: late rows for that day wait
/// until it is done; writes to other days are not affected.
///
/// # Errors
///
/// [`StoreError::Postgres`] when a statement fails.
pub fn index_closed_partitions(
    client: &mut Client,
    before_day: i64,
) -> Result<Vec<String>, StoreError> {
    let mut indexed = Vec::new();
    for day in partition_days(client)? {
        if day >= before_day {
            break;
        }
        let name = partition_name(day);
        let have: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexname = ANY($2)",
                &[
                    &name,
                    &CLOSED_PARTITION_INDEXES
                        .iter()
                        .map(|(suffix, _)| format!("{name}_{suffix}"))
                        .collect::<Vec<_>>(),
                ],
            )
            .map_err(pg_err("index partitions: look up"))?
            .get(0);
        if have == CLOSED_PARTITION_INDEXES.len() as i64 {
            continue;
        }
        let mut tx = client
            .transaction()
            .map_err(pg_err("index partitions: begin"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INDEX_LOCK])
            .map_err(pg_err("index partitions: lock"))?;
        for (suffix, columns) in CLOSED_PARTITION_INDEXES {
            tx.batch_execute(&format!(
                "CREATE INDEX IF NOT EXISTS {name}_{suffix} ON {name} ({columns})"
            ))
            .map_err(pg_err("index partitions: create index"))?;
        }
        tx.commit().map_err(pg_err("index partitions: commit"))?;
        tracing::info!(partition = %name, "indexed closed partition");
        indexed.push(name);
    }
    Ok(indexed)
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day count since 1970-01-01 of a (year, month, day).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_days_round_trip() {
        assert_eq!(partition_name(0), "raw_packets_p19700101");
        assert_eq!(partition_name(19_723), "raw_packets_p20240101");
        assert_eq!(partition_name(19_782), "raw_packets_p20240229");
        for day in [-1000, 0, 59, 60, 19_723, 19_782, 100_000] {
            assert_eq!(day_of_partition_name(&partition_name(day)), Some(day));
        }
        assert_eq!(day_of_partition_name("raw_packets_p20240230"), None);
        assert_eq!(day_of_partition_name("raw_packets_default"), None);
        assert_eq!(flow_partition_name(19_723), "flows_p20240101");
        assert_eq!(
            day_of_table_partition(FLOWS, "flows_p20240101"),
            Some(19_723)
        );
        assert_eq!(day_of_table_partition(FLOWS, "raw_packets_p20240101"), None);
        assert_eq!(day_literal(19_723), "2024-01-01 00:00:00+00");
        assert_eq!(day_of_ts_ns(1_704_067_200_000_000_000), 19_723);
        assert_eq!(day_of_ts_ns(1_704_067_199_999_999_999), 19_722);
    }
}
