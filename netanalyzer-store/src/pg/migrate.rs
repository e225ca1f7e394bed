//! Versioned schema migrations, embedded in the crate.

use super::pg_err;
use crate::StoreError;
use postgres::Client;

/// One schema migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The schema version this migration produces (1, 2, ...; in order).
    pub version: u32,
    /// A short description, stored in `schema_migrations`.
    pub description: &'static str,
    /// The SQL, run in one transaction.
    pub sql: &'static str,
}

/// Every migration, in the order they are applied.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "ingest_batches and partitioned raw_packets",
        sql: include_str!("../../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "raw_packets indexes",
        sql: include_str!("../../migrations/0002_indexes.sql"),
    },
    Migration {
        version: 3,
        description:
            "ingest_batches read positions, raw_packets.batch_id, flows, alerts, aggregator_state",
        sql: include_str!("../../migrations/0003_flows.sql"),
    },
    Migration {
        version: 4,
        description: "traffic rollups, sensors, aggregator active flows",
        sql: include_str!("../../migrations/0004_dashboard.sql"),
    },
    Migration {
        version: 5,
        description: "query API indexes",
        sql: include_str!("../../migrations/0005_api_indexes.sql"),
    },
];

/// Advisory lock key held (per transaction) while migrating: "netamigr".
const MIGRATE_LOCK: i64 = 0x6e65_7461_6d69_6772;

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    description text        NOT NULL
)";

/// Brings the schema up to the newest version and returns that version.
///
/// Creates `schema_migrations(version, applied_at, description)` if
/// missing, then applies each migration of [`MIGRATIONS`] whose version is
/// not recorded yet, each in one transaction that first takes a
/// transaction-level advisory lock, so two processes migrating the same
/// database at once apply each migration exactly once. Running it again
/// changes nothing.
///
/// # Errors
///
/// [`StoreError::Postgres`] when a statement fails; the failing migration
/// is rolled back, earlier ones stay applied.
pub fn migrate(client: &mut Client) -> Result<u32, StoreError> {
    {
        let mut tx = client.transaction().map_err(pg_err("migrate: begin"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .map_err(pg_err("migrate: lock"))?;
        tx.batch_execute(BOOTSTRAP)
            .map_err(pg_err("migrate: create schema_migrations"))?;
        tx.commit().map_err(pg_err("migrate: commit"))?;
    }
    for m in MIGRATIONS {
        let mut tx = client.transaction().map_err(pg_err("migrate: begin"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .map_err(pg_err("migrate: lock"))?;
        let version = i32::try_from(m.version).unwrap_or(i32::MAX);
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&version],
            )
            .map_err(pg_err("migrate: read schema_migrations"))?
            .is_some();
        if done {
            tx.rollback().map_err(pg_err("migrate: rollback"))?;
            continue;
        }
        tx.batch_execute(m.sql)
            .map_err(pg_err("migrate: apply migration"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[&version, &m.description],
        )
        .map_err(pg_err("migrate: record migration"))?;
        tx.commit().map_err(pg_err("migrate: commit"))?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "applied migration"
        );
    }
    schema_version(client)
}

/// The newest applied schema version (0 when `schema_migrations` is missing
/// or empty).
///
/// # Errors
///
/// [`StoreError::Postgres`] when the query fails.
pub fn schema_version(client: &mut Client) -> Result<u32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .map_err(pg_err("read schema version"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .map_err(pg_err("read schema version"))?;
    let v: i32 = row.get(0);
    Ok(u32::try_from(v).unwrap_or(0))
}
