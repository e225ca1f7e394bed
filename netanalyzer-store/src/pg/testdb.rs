//! Throwaway databases for tests (public so other crates' tests use them).

use super::{connect, migrate, EmbeddedOptions, EmbeddedPostgres};
use crate::StoreError;
use postgres::Client;
use std::hash::{BuildHasher, Hasher};

/// Environment variable naming an existing server to test against (a
/// conninfo with rights to create databases).
pub const TEST_PG_ENV: &str = "NETANALYZER_TEST_PG";

/// A migrated, throwaway database for one test.
///
/// With `NETANALYZER_TEST_PG` set (a conninfo), a database
/// `netanalyzer_test_<random>` is created on that server and dropped
/// (`WITH (FORCE)`) when this value drops. Otherwise an
/// [`EmbeddedPostgres`] cluster runs in a temporary directory with
/// `durable: false`, and is stopped and deleted on drop.
#[derive(Debug)]
pub struct TestDb {
    conninfo: String,
    embedded: Option<EmbeddedPostgres>,
    /// (admin conninfo, database name) of a database to drop.
    external: Option<(String, String)>,
    // Declared last: removed after the cluster has stopped.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Creates the database and migrates it.
    ///
    /// # Errors
    ///
    /// Whatever prevents it: [`StoreError::PostgresNotInstalled`], a failed
    /// connection, a failed `initdb`, ...
    pub fn start() -> Result<TestDb, StoreError> {
        match std::env::var(TEST_PG_ENV) {
            Ok(admin) if !admin.trim().is_empty() => Self::start_external(admin),
            _ => Self::start_embedded(),
        }
    }

    /// [`start`](Self::start), or `None` after printing
    /// `skipping: <reason>` to stderr, so a test can return early on a
    /// machine without PostgreSQL.
    ///
    /// # Panics
    ///
    /// When the environment variable `CI` is `true`: CI must not skip.
    pub fn require() -> Option<TestDb> {
        match Self::start() {
            Ok(db) => Some(db),
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("no test database under CI=true: {e}");
                }
                eprintln!("skipping: {e}");
                None
            }
        }
    }

    /// The libpq connection string of the database.
    pub fn conninfo(&self) -> String {
        self.conninfo.clone()
    }

    /// A new connection to the database.
    ///
    /// # Panics
    ///
    /// When the connection fails (this is test support).
    pub fn client(&self) -> Client {
        match connect(&self.conninfo) {
            Ok(c) => c,
            Err(e) => panic!("connect to test database: {e}"),
        }
    }

    /// The embedded cluster, when the database lives in one (not with
    /// `NETANALYZER_TEST_PG`): fault tests restart it.
    pub fn embedded(&mut self) -> Option<&mut EmbeddedPostgres> {
        self.embedded.as_mut()
    }

    fn start_external(admin: String) -> Result<TestDb, StoreError> {
        let name = format!("netanalyzer_test_{:016x}", random_u64());
        let mut c = connect(&admin)?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(super::pg_err("create test database"))?;
        let conninfo = with_dbname(&admin, &name);
        let db = TestDb {
            conninfo,
            embedded: None,
            external: Some((admin, name)),
            _dir: None,
        };
        migrate(&mut db.try_client()?)?;
        Ok(db)
    }

    fn start_embedded() -> Result<TestDb, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix("netanalyzer-pg-")
            .tempdir()
            .map_err(|e| StoreError::Embedded {
                detail: format!("create temp dir: {e}"),
            })?;
        // The cluster may run as `postgres`: let it through the 0700 dir.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).map_err(
                |e| StoreError::Embedded {
                    detail: format!("chmod temp dir: {e}"),
                },
            )?;
        }
        let pg = EmbeddedPostgres::start(EmbeddedOptions {
            data_dir: dir.path().join("data"),
            durable: false,
        })?;
        let db = TestDb {
            conninfo: pg.conninfo(),
            embedded: Some(pg),
            external: None,
            _dir: Some(dir),
        };
        migrate(&mut db.try_client()?)?;
        Ok(db)
    }

    fn try_client(&self) -> Result<Client, StoreError> {
        connect(&self.conninfo)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(pg) = self.embedded.take() {
            drop(pg);
        }
        if let Some((admin, name)) = self.external.take() {
            if let Ok(mut c) = connect(&admin) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// `conninfo` pointing at database `name` instead (the later key wins,
/// for both the key=value and the URL forms).
fn with_dbname(conninfo: &str, name: &str) -> String {
    let c = conninfo.trim();
    if c.starts_with("postgres://") || c.starts_with("postgresql://") {
        let sep = if c.contains('?') { '&' } else { '?' };
        format!("{c}{sep}dbname={name}")
    } else {
        format!("{c} dbname={name}")
    }
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbname_is_overridden() {
        assert_eq!(
            with_dbname("host=/x user=u", "t"),
            "host=/x user=u dbname=t"
        );
        assert_eq!(
            with_dbname("postgres://u@h/db", "t"),
            "postgres://u@h/db?dbname=t"
        );
        assert_eq!(
            with_dbname("postgres://u@h/db?sslmode=disable", "t"),
            "postgres://u@h/db?sslmode=disable&dbname=t"
        );
        let cfg: postgres::Config = with_dbname("host=/x dbname=a", "t").parse().unwrap();
        assert_eq!(cfg.get_dbname(), Some("t"));
        let cfg: postgres::Config = with_dbname("postgres://u@h/a", "t").parse().unwrap();
        assert_eq!(cfg.get_dbname(), Some("t"));
    }
}
