//! A private PostgreSQL cluster run from the binaries installed on the
//! machine.

use crate::StoreError;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The database the embedded cluster serves.
const DB_NAME: &str = "netanalyzer";
/// The port number: only names the Unix socket (`.s.PGSQL.5432`), since the
/// cluster listens on no TCP address.
const PORT: u16 = 5432;
/// Longest socket directory we accept: the socket path
/// `<dir>/.s.PGSQL.5432` must stay under 100 bytes (sun_path is 108).
const MAX_SOCKET_DIR: usize = 100 - ".s.PGSQL.5432".len() - 1;
/// Our settings file, included from postgresql.conf.
const CONF_FILE: &str = "netanalyzer.conf";
const INCLUDE_LINE: &str = "include_if_exists = 'netanalyzer.conf'";

/// How to run the embedded cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// The cluster's data directory (PGDATA). Created with `initdb` when it
    /// holds no `PG_VERSION`. Default: [`default_data_dir`].
    pub data_dir: PathBuf,
    /// Whether commits are flushed to disk (`fsync`). `false` adds
    /// `fsync=off, synchronous_commit=off, full_page_writes=off`: fast,
    /// survives a crash of the process but not of the machine. For tests
    /// and benchmarks only. Default `true`.
    pub durable: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            data_dir: default_data_dir(),
            durable: true,
        }
    }
}

/// The default data directory of the embedded cluster:
/// `$XDG_DATA_HOME/netanalyzer/postgres`, else
/// `~/.local/share/netanalyzer/postgres`. When running as root with no
/// `XDG_DATA_HOME`, `/var/lib/netanalyzer/postgres` instead, since the
/// `postgres` user that runs the cluster cannot enter `/root`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("netanalyzer").join("postgres");
    }
    if is_root() {
        return PathBuf::from("/var/lib/netanalyzer/postgres");
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/netanalyzer/postgres")
}

/// A running PostgreSQL cluster in a data directory, managed by this
/// process.
///
/// [`start`](Self::start) creates the cluster if needed, starts it, or
/// adopts a postmaster already running on the directory (left behind by a
/// process that was killed), and makes sure the `netanalyzer` database
/// exists. The cluster listens only on a Unix socket in `<data_dir>/run`
/// (or a short directory under `/tmp` when that path is too long). When
/// this process is root, the binaries run as the `postgres` user through
/// `runuser`.
///
/// Dropping the handle stops the cluster (`pg_ctl stop -m fast`), ignoring
/// errors; [`stop`](Self::stop) reports them.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    opts: EmbeddedOptions,
    bin_dir: PathBuf,
    socket_dir: PathBuf,
    as_postgres: bool,
    running: bool,
    adopted: bool,
}

impl EmbeddedPostgres {
    /// Creates (if needed) and starts the cluster, or adopts the one
    /// already running on `opts.data_dir`.
    ///
    /// # Errors
    ///
    /// [`StoreError::PostgresNotInstalled`] when `initdb`/`pg_ctl` are not
    /// found (on `PATH` or under `/usr/lib/postgresql/*/bin`);
    /// [`StoreError::Embedded`] when a step fails (with the server log's
    /// tail); [`StoreError::Postgres`] when the database cannot be created.
    pub fn start(opts: EmbeddedOptions) -> Result<Self, StoreError> {
        let bin_dir = find_bin_dir()?;
        let as_postgres = is_root();
        let socket_dir = socket_dir_for(&opts.data_dir);
        let mut pg = EmbeddedPostgres {
            opts,
            bin_dir,
            socket_dir,
            as_postgres,
            running: false,
            adopted: false,
        };
        pg.start_inner()?;
        Ok(pg)
    }

    /// The libpq connection string of the `netanalyzer` database, e.g.
    /// `host=/data/run port=5432 user=postgres dbname=netanalyzer`.
    pub fn conninfo(&self) -> String {
        self.conninfo_for(DB_NAME)
    }

    /// The connection string of another database of the cluster.
    pub fn conninfo_for(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname={dbname}",
            self.socket_dir.display()
        )
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.opts.data_dir
    }

    /// Whether [`start`](Self::start) found the cluster already running
    /// and adopted it instead of starting it.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Lets go of the handle without stopping the cluster: for a process
    /// that shares a cluster another process runs (the aggregator beside
    /// the server). Returns the connection string.
    pub fn detach(mut self) -> String {
        let conninfo = self.conninfo();
        self.running = false;
        conninfo
    }

    /// Stops the cluster (`pg_ctl stop -m fast`: open transactions are
    /// rolled back, committed data is kept).
    ///
    /// # Errors
    ///
    /// [`StoreError::Embedded`] when `pg_ctl stop` fails.
    pub fn stop(mut self) -> Result<(), StoreError> {
        self.stop_inner()
    }

    /// Stops and starts the cluster again (for fault tests: connections
    /// break, committed data stays).
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop) and [`start`](Self::start).
    pub fn restart(&mut self) -> Result<(), StoreError> {
        self.stop_inner()?;
        self.start_inner()
    }

    fn start_inner(&mut self) -> Result<(), StoreError> {
        let data = self.opts.data_dir.clone();
        fs::create_dir_all(&data)
            .map_err(|e| embedded(format!("create {}: {e}", data.display())))?;
        if self.as_postgres {
            let (uid, gid) = postgres_ids()?;
            check_reachable(&data, uid)?;
            chown(&data, uid, gid)?;
        }
        set_mode(&data, 0o700)?;
        if !data.join("PG_VERSION").exists() {
            self.initdb()?;
        }
        self.write_config()?;
        fs::create_dir_all(&self.socket_dir)
            .map_err(|e| embedded(format!("create {}: {e}", self.socket_dir.display())))?;
        set_mode(&self.socket_dir, 0o700)?;
        if self.as_postgres {
            let (uid, gid) = postgres_ids()?;
            chown(&self.socket_dir, uid, gid)?;
        }

        if self.postmaster_alive() {
            tracing::info!(data_dir = %data.display(), "adopting running postgres");
            self.adopted = true;
        } else {
            // A postmaster.pid whose process is gone (or is not a postgres)
            // is stale: remove it so the start cannot trip on a reused pid.
            let pid_file = data.join("postmaster.pid");
            if pid_file.exists() {
                tracing::warn!(data_dir = %data.display(), "removing stale postmaster.pid");
                let _ = fs::remove_file(&pid_file);
            }
            let log = data.join("log");
            let out = self
                .pg_command("pg_ctl")
                .arg("start")
                .arg("-w")
                .args(["-t", "120"])
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .output()
                .map_err(|e| embedded(format!("run pg_ctl start: {e}")))?;
            if !out.status.success() {
                return Err(embedded(format!(
                    "pg_ctl start failed ({}): {}{}\nserver log tail:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim(),
                    log_tail(&log)
                )));
            }
        }
        self.running = true;
        self.ensure_database()
    }

    fn stop_inner(&mut self) -> Result<(), StoreError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let out = self
            .pg_command("pg_ctl")
            .arg("stop")
            .args(["-m", "fast", "-w", "-t", "120"])
            .arg("-D")
            .arg(&self.opts.data_dir)
            .output()
            .map_err(|e| embedded(format!("run pg_ctl stop: {e}")))?;
        if !out.status.success() {
            return Err(embedded(format!(
                "pg_ctl stop failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), StoreError> {
        let mut cmd = self.pg_command("initdb");
        cmd.arg("-D").arg(&self.opts.data_dir).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        if !self.opts.durable {
            cmd.arg("--no-sync");
        }
        let out = cmd
            .output()
            .map_err(|e| embedded(format!("run initdb: {e}")))?;
        if !out.status.success() {
            return Err(embedded(format!(
                "initdb {} failed ({}): {}",
                self.opts.data_dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tracing::info!(data_dir = %self.opts.data_dir.display(), "created postgres cluster");
        Ok(())
    }

    /// Writes `netanalyzer.conf` (socket only, durability) and makes sure
    /// postgresql.conf includes it.
    fn write_config(&self) -> Result<(), StoreError> {
        let data = &self.opts.data_dir;
        let sock = self.socket_dir.display().to_string().replace('\'', "''");
        let mut conf = format!(
            "# written by netanalyzer at every start; edits are lost\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{sock}'\n"
        );
        if !self.opts.durable {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf_path = data.join(CONF_FILE);
        fs::write(&conf_path, conf)
            .map_err(|e| embedded(format!("write {}: {e}", conf_path.display())))?;
        let main = data.join("postgresql.conf");
        let text = fs::read_to_string(&main)
            .map_err(|e| embedded(format!("read {}: {e}", main.display())))?;
        if !text.lines().any(|l| l.trim() == INCLUDE_LINE) {
            let mut text = text;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(INCLUDE_LINE);
            text.push('\n');
            fs::write(&main, text)
                .map_err(|e| embedded(format!("write {}: {e}", main.display())))?;
        }
        if self.as_postgres {
            let (uid, gid) = postgres_ids()?;
            chown(&conf_path, uid, gid)?;
        }
        Ok(())
    }

    /// Whether a live postmaster owns the data directory: the pid in
    /// `postmaster.pid` exists, is a postgres process, and `pg_ctl status`
    /// agrees.
    fn postmaster_alive(&self) -> bool {
        let Ok(text) = fs::read_to_string(self.opts.data_dir.join("postmaster.pid")) else {
            return false;
        };
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return false;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.trim().starts_with("postgres") {
            return false;
        }
        self.pg_command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.opts.data_dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Creates the `netanalyzer` database when missing. Retries the first
    /// connection for a while: an adopted postmaster may still be
    /// recovering.
    fn ensure_database(&self) -> Result<(), StoreError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut client = loop {
            match super::connect(&self.conninfo_for("postgres")) {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "waiting for postgres");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        };
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DB_NAME])
            .map_err(super::pg_err("look up database"))?
            .is_some();
        if !exists {
            match client.batch_execute(&format!("CREATE DATABASE {DB_NAME}")) {
                Ok(()) => {}
                Err(e) if e.code() == Some(&postgres::error::SqlState::DUPLICATE_DATABASE) => {}
                Err(e) => return Err(super::pg_err("create database")(e)),
            }
        }
        Ok(())
    }

    /// A command for one of the PostgreSQL binaries, run as `postgres`
    /// through `runuser` when we are root.
    fn pg_command(&self, program: &str) -> Command {
        let exe = self.bin_dir.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // The cwd may not be readable by the postgres user.
        cmd.current_dir("/");
        cmd.env_remove("PGDATA");
        cmd
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::warn!(error = %e, "stopping embedded postgres");
        }
    }
}

fn embedded(detail: String) -> StoreError {
    StoreError::Embedded { detail }
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, else the highest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> Result<PathBuf, StoreError> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("pg_ctl").is_file() && dir.join("initdb").is_file() {
                // Resolve symlinks (/usr/local/bin/pg_ctl -> .../15/bin):
                // pg_ctl finds `postgres` beside its real path anyway, but
                // the resolved directory reads better in logs.
                let real = fs::canonicalize(dir.join("pg_ctl"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| d.join("initdb").is_file())
                    .unwrap_or(dir);
                return Ok(real);
            }
        }
        searched.push("PATH".to_owned());
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let key: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            (bin.join("pg_ctl").is_file() && bin.join("initdb").is_file()).then_some((key, bin))
        })
        .collect();
    versions.sort();
    searched.push("/usr/lib/postgresql/*/bin".to_owned());
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| StoreError::PostgresNotInstalled {
            searched: searched.join(", "),
        })
}

/// `<data_dir>/run`, or `/tmp/netanalyzer-pg-<hash>` when that is too long
/// for a Unix socket path.
fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let abs = if data_dir.is_absolute() {
        data_dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(data_dir))
            .unwrap_or_else(|_| data_dir.to_path_buf())
    };
    let dir = abs.join("run");
    if dir.as_os_str().len() <= MAX_SOCKET_DIR {
        return dir;
    }
    // FNV-1a of the path: stable across runs, so a restarted process finds
    // the socket of the postmaster it adopts.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in abs.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from(format!("/tmp/netanalyzer-pg-{h:016x}"))
}

/// Whether the effective user is root (from /proc/self/status).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The uid and gid of the `postgres` user.
/// Checks that the `postgres` user (`uid`) can enter every directory above
/// `data`: a clear error instead of initdb's "permission denied" when the
/// data directory is under e.g. `/root` (mode 0700).
fn check_reachable(data: &Path, uid: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let abs = std::path::absolute(data).unwrap_or_else(|_| data.to_path_buf());
    for dir in abs.ancestors().skip(1) {
        let Ok(md) = fs::metadata(dir) else { continue };
        let mode = md.mode();
        let ok = if md.uid() == uid {
            mode & 0o100 != 0
        } else {
            // Group membership is not looked up: other's x bit, or the
            // group's for a group-owned dir, is what usually lets it in.
            mode & 0o001 != 0
        };
        if !ok {
            return Err(embedded(format!(
                "the `postgres` user that runs the embedded cluster cannot enter {} (mode {:o}); \
                 choose a --data-dir outside it (the default for root is /var/lib/netanalyzer/postgres) \
                 or allow it in (chmod o+x {})",
                dir.display(),
                mode & 0o7777,
                dir.display()
            )));
        }
    }
    Ok(())
}

fn postgres_ids() -> Result<(u32, u32), StoreError> {
    let id = |flag: &str| -> Result<u32, StoreError> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| embedded(format!("run id: {e}")))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                embedded(
                    "running as root, but there is no `postgres` user to run the cluster \
                     (the postgresql package creates it)"
                        .to_owned(),
                )
            })
    };
    Ok((id("-u")?, id("-g")?))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), StoreError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| embedded(format!("chown {} to postgres: {e}", path.display())))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| embedded(format!("chmod {}: {e}", path.display())))
}

/// The last few KiB of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return "(no log)".to_owned();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_dir_stays_short() {
        let short = socket_dir_for(Path::new("/var/lib/x"));
        assert_eq!(short, PathBuf::from("/var/lib/x/run"));
        let long = PathBuf::from(format!("/{}", "d".repeat(150)));
        let dir = socket_dir_for(&long);
        assert!(dir.starts_with("/tmp"));
        assert_eq!(dir, socket_dir_for(&long));
        assert!(dir.join(".s.PGSQL.5432").as_os_str().len() < 100);
    }
}
