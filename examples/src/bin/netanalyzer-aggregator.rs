//! `netanalyzer-aggregator`: turns the packet rows the ingest server
//! stored into classified flows and deduplicated alerts, exactly once.
//!
//! The logic lives in the crates: `netanalyzer_store::flowdb` (reading
//! `raw_packets` in commit order, the all-or-nothing commit of flows,
//! alerts and position), `netanalyzer_ml` (the flow table, the model, the
//! alert engine). This binary owns the loop: poll, aggregate per sensor,
//! classify, fold alerts, commit; plus the metrics endpoint, reconnects and
//! the graceful stop. See `docs/aggregator.md`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use netanalyzer_core::{Aggregator, Alert, EndReason, FlowRecord, PacketRecord, Timestamp};
use netanalyzer_ml::alert::{AlertConfig, AlertEngine, AlertState};
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig, FlowStats, FlowTableState};
use netanalyzer_ml::model::{default_model, FeatureBinding, Model};
use netanalyzer_store::flowdb::{self, FlowCommit, PacketFeed, Position};
use netanalyzer_store::pg::{self, EmbeddedOptions, EmbeddedPostgres, PartitionPlan};
use netanalyzer_store::server::{escape_label_value, write_family};
use netanalyzer_store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const AFTER_HELP: &str = "\
The aggregator reads the packet rows of raw_packets in the order their
batches were committed, aggregates them into bidirectional flows (one flow
table per sensor), classifies every flow with the model, folds attack flows
into alerts, and writes flows, alerts and its position in one transaction:
a restart (even after SIGKILL) resumes exactly where the last commit ended,
with the open flows restored, so no packet is skipped or counted twice.

Without --database-url (or DATABASE_URL) it uses the server's embedded
PostgreSQL in --data-dir: it adopts the running cluster (and never stops a
cluster it did not start), or starts it when it is down.

Every flag can also be set with an environment variable: NETANALYZER_ and the
long flag in upper case, '-' as '_' (NETANALYZER_CONSUMER, ...), except
--database-url which reads DATABASE_URL. Logs go to standard error; RUST_LOG
sets the level (default: info). SIGINT or SIGTERM ends every open flow
(end reason \"end\"), commits them and exits 0; a second one quits at once
(status 130) and the next start resumes from the last commit.

Exit status:
  0  stopped by SIGINT/SIGTERM, or --exit-when-idle caught up; open flows
     were drained and committed
  1  error: bad model, database unreachable at a stop, unreadable state, ...
  2  usage error: bad flags";

/// Reads stored packet rows, writes classified flows and alerts.
#[derive(Debug, Parser)]
#[command(name = "netanalyzer-aggregator", version, after_help = AFTER_HELP)]
struct Cli {
    /// PostgreSQL to use (libpq key=value string or postgres:// URL);
    /// tables are created when missing. Without it: the embedded cluster.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// Directory of the embedded PostgreSQL cluster, the server's
    /// --data-dir [default: $XDG_DATA_HOME/netanalyzer/postgres or
    /// ~/.local/share/netanalyzer/postgres].
    #[arg(long, value_name = "DIR", env = "NETANALYZER_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Model file (netanalyzer-ml train) [default: the model built into
    /// the binary].
    #[arg(long, value_name = "FILE", env = "NETANALYZER_MODEL")]
    model: Option<PathBuf>,

    /// Name of this reader's position in aggregator_state. Two aggregators
    /// with different names each read every row (and write flows twice).
    #[arg(
        long,
        value_name = "NAME",
        env = "NETANALYZER_CONSUMER",
        default_value = "default"
    )]
    consumer: String,

    /// Address of the HTTP endpoint serving /metrics (Prometheus text) and
    /// /health. Port 0 picks a free port (printed at start).
    #[arg(
        long,
        value_name = "ADDR:PORT",
        env = "NETANALYZER_METRICS_LISTEN",
        default_value = "127.0.0.1:9102"
    )]
    metrics_listen: SocketAddr,

    /// Longest time between commits while rows keep coming, in ms. A
    /// commit also happens whenever a poll finds nothing new.
    #[arg(long, value_name = "MS", env = "NETANALYZER_COMMIT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    commit_ms: u64,

    /// Rows read per poll at most (whole batches: one batch larger than
    /// this is still read whole).
    #[arg(long, value_name = "N", env = "NETANALYZER_MAX_ROWS_PER_POLL",
          default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_rows_per_poll: u64,

    /// Wait between polls once caught up, in ms.
    #[arg(long, value_name = "MS", env = "NETANALYZER_IDLE_POLL_MS", default_value_t = 250,
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_poll_ms: u64,

    /// Open flows per sensor at most (the flow table's memory cap); a full
    /// table evicts (embryonic entries first) and emits what it evicts.
    #[arg(long, value_name = "N", env = "NETANALYZER_MAX_FLOWS", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_flows: u64,

    /// Once caught up with what is stored, end every open flow, commit and
    /// exit 0 (for tests, batch jobs and the demo).
    #[arg(long, env = "NETANALYZER_EXIT_WHEN_IDLE")]
    exit_when_idle: bool,

    /// Drop daily flows partitions older than this many days
    /// [default: keep all].
    #[arg(long, value_name = "DAYS", env = "NETANALYZER_RETENTION_DAYS",
          value_parser = clap::value_parser!(u32).range(1..))]
    retention_days: Option<u32>,
}

/// Set by the first signal; a second one exits at once.
static STOP: AtomicBool = AtomicBool::new(false);

/// Version of the state blob saved with each commit.
const STATE_VERSION: u32 = 1;

/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a stop keeps trying to reach the database to commit the
/// drained flows.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// How often retention runs.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

fn main() -> ExitCode {
    netanalyzer_examples::service_main("netanalyzer-aggregator", run)
}

/// The loaded model and what every sensor pipeline shares.
struct Shared {
    model: Model,
    binding: FeatureBinding,
    flow_cfg: FlowConfig,
    alert_cfg: AlertConfig,
    consumer: String,
    commit_every: Duration,
    idle_poll: Duration,
    max_rows: u64,
    exit_when_idle: bool,
    retention_days: Option<u32>,
    metrics: Arc<Metrics>,
}

fn run(cli: Cli) -> Result<()> {
    let model = match &cli.model {
        Some(path) => Model::load(path)
            .with_context(|| format!("cannot load the model {}", path.display()))?,
        None => default_model().context("cannot load the built-in default model")?,
    };
    let binding = model
        .bind()
        .context("the model does not fit this aggregator's features")?;
    let flow_cfg = FlowConfig {
        max_flows: usize::try_from(cli.max_flows).context("--max-flows is too large")?,
        ..FlowConfig::default()
    };
    let metrics = Arc::new(Metrics::new(&model));

    // The database: a URL, or the embedded cluster (adopted when running).
    let (conninfo, _cluster) = match cli.database_url {
        Some(url) => (url, None),
        None => {
            let data_dir = cli.data_dir.unwrap_or_else(pg::default_data_dir);
            let (conninfo, cluster) = embedded_cluster(&data_dir)?;
            (conninfo, cluster)
        }
    };

    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("cannot install the SIGINT/SIGTERM handler")?;

    let listener = TcpListener::bind(cli.metrics_listen)
        .with_context(|| format!("cannot listen on {} for /metrics", cli.metrics_listen))?;
    let metrics_addr = listener.local_addr()?;
    serve_metrics(listener, Arc::clone(&metrics));
    eprintln!("metrics on http://{metrics_addr}/metrics");
    tracing::info!(
        model = model.version(),
        consumer = %cli.consumer,
        "aggregator started"
    );

    let shared = Shared {
        model,
        binding,
        flow_cfg,
        alert_cfg: AlertConfig::default(),
        consumer: cli.consumer,
        commit_every: Duration::from_millis(cli.commit_ms),
        idle_poll: Duration::from_millis(cli.idle_poll_ms),
        max_rows: cli.max_rows_per_poll,
        exit_when_idle: cli.exit_when_idle,
        retention_days: cli.retention_days,
        metrics,
    };
    supervise(&shared, &conninfo)
}

/// The embedded cluster of `data_dir`: adopted when a postmaster already
/// runs on it (then detached, so exiting never stops a cluster this
/// process did not start), else started and stopped at exit.
fn embedded_cluster(data_dir: &Path) -> Result<(String, Option<EmbeddedPostgres>)> {
    let cluster = EmbeddedPostgres::start(EmbeddedOptions {
        data_dir: data_dir.to_path_buf(),
        durable: true,
    })
    .with_context(|| {
        format!(
            "cannot use the embedded PostgreSQL in {}",
            data_dir.display()
        )
    })?;
    if cluster.adopted() {
        tracing::info!(data_dir = %data_dir.display(), "using the running embedded PostgreSQL");
        Ok((cluster.detach(), None))
    } else {
        tracing::info!(data_dir = %data_dir.display(), "started the embedded PostgreSQL");
        Ok((cluster.conninfo(), Some(cluster)))
    }
}

/// Connects, loads the checkpoint and runs the loop; on a database error
/// starts over (with backoff) from the last commit, so what was not
/// committed is read and aggregated again, never twice.
fn supervise(shared: &Shared, conninfo: &str) -> Result<()> {
    let mut backoff = Duration::from_millis(100);
    let mut stop_since: Option<Instant> = None;
    let mut connected_once = false;
    loop {
        let attempt = (|| -> Result<Exit> {
            let mut client = pg::connect(conninfo)?;
            pg::migrate(&mut client)?;
            lock_consumer(&mut client, &shared.consumer, !connected_once)?;
            if connected_once {
                shared.metrics.lock().reconnects += 1;
            }
            connected_once = true;
            shared.metrics.lock().db_up = true;
            let mut engine = Engine::load(shared, &mut client)?;
            engine.run(&mut client)
        })();
        match attempt {
            Ok(Exit::Done) => return Ok(()),
            Err(e) => {
                let mut m = shared.metrics.lock();
                m.db_errors += 1;
                m.db_up = false;
                drop(m);
                let conflict = matches!(
                    e.downcast_ref::<StoreError>(),
                    Some(StoreError::PositionConflict { .. })
                );
                if conflict || e.downcast_ref::<Fatal>().is_some() {
                    return Err(e);
                }
                tracing::warn!(
                    "database error, resuming from the last commit in {backoff:?}: {e:#}"
                );
            }
        }
        if STOP.load(Ordering::SeqCst) {
            let since = *stop_since.get_or_insert_with(Instant::now);
            if since.elapsed() > STOP_DEADLINE {
                bail!(
                    "stopped without committing the open flows: the database is unreachable \
                     (the next start resumes from the last commit)"
                );
            }
        }
        sleep_unless_stopped(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Takes the session advisory lock of `consumer`, so two aggregators
/// never consume under one name (each would write the flows of the rows
/// the other read: counted twice). The lock goes with the connection, also
/// when the process is killed. At the first start another holder is fatal
/// (after waiting a little for a killed predecessor's session to end); at
/// a reconnect it is retried (our own broken session may linger).
fn lock_consumer(client: &mut postgres::Client, consumer: &str, first: bool) -> Result<()> {
    let key = format!("netanalyzer-aggregator:{consumer}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )?
            .get(0);
        if got {
            return Ok(());
        }
        if Instant::now() >= deadline || STOP.load(Ordering::SeqCst) {
            let msg = format!(
                "another netanalyzer-aggregator is running as consumer {consumer:?}; \
                 give this one another --consumer"
            );
            if first {
                return Err(Fatal(msg).into());
            }
            bail!(msg);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An error that reconnecting cannot fix.
#[derive(Debug)]
struct Fatal(String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fatal {}

/// Why the loop ended.
enum Exit {
    /// Drained and committed: exit 0.
    Done,
}

/// Sleeps `d`, waking early on a stop request.
fn sleep_unless_stopped(d: Duration) {
    let until = Instant::now() + d;
    while !STOP.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// What the commit saves beside the position: every sensor's flow table
/// and the alert engine.
#[derive(Serialize, Deserialize)]
struct SavedState {
    version: u32,
    sensors: Vec<(String, FlowTableState)>,
    alerts: AlertState,
}

/// The aggregation state between two commits.
struct Engine<'s> {
    shared: &'s Shared,
    feed: PacketFeed,
    /// One flow table per sensor: flows are keyed within a sensor.
    tables: BTreeMap<String, FlowAggregator>,
    alerts: AlertEngine,
    /// Latest packet time over every sensor (ns).
    now_ns: u64,
    /// Rows and batches consumed since the consumer began (checkpointed).
    rows: u64,
    batches: u64,
    /// Classified flows not committed yet.
    pending_flows: Vec<(String, FlowRecord)>,
    /// Alerts new or changed since the last commit, latest revision per id.
    pending_alerts: BTreeMap<u64, Alert>,
    /// Of those, how many were raised for the first time.
    pending_new_alerts: u64,
    scratch: Vec<FlowRecord>,
    updates: Vec<Alert>,
    last_maintenance: Option<Instant>,
}

impl<'s> Engine<'s> {
    /// Rebuilds the state of the last commit (or a fresh one).
    fn load(shared: &'s Shared, client: &mut postgres::Client) -> Result<Engine<'s>> {
        let checkpoint = flowdb::load_checkpoint(client, &shared.consumer)?;
        let version = shared.model.version().to_owned();
        let mut engine = Engine {
            shared,
            feed: PacketFeed::new(Position::default()),
            tables: BTreeMap::new(),
            alerts: AlertEngine::new(shared.alert_cfg, version),
            now_ns: 0,
            rows: 0,
            batches: 0,
            pending_flows: Vec::new(),
            pending_alerts: BTreeMap::new(),
            pending_new_alerts: 0,
            scratch: Vec::new(),
            updates: Vec::new(),
            last_maintenance: None,
        };
        let Some(cp) = checkpoint else {
            tracing::info!(consumer = %shared.consumer, "no checkpoint: reading from the start");
            return Ok(engine);
        };
        let saved: SavedState = rmp_serde::from_slice(&cp.state).map_err(|e| {
            Fatal(format!(
                "the saved state of consumer {:?} cannot be read ({e}); \
                 use another --consumer to start over",
                shared.consumer
            ))
        })?;
        if saved.version != STATE_VERSION {
            return Err(Fatal(format!(
                "the saved state of consumer {:?} has version {}, this binary reads {}; \
                 use another --consumer to start over",
                shared.consumer, saved.version, STATE_VERSION
            ))
            .into());
        }
        for (sensor, state) in saved.sensors {
            let table = FlowAggregator::restore(shared.flow_cfg, state);
            engine.now_ns = engine.now_ns.max(table.now().0);
            engine.tables.insert(sensor, table);
        }
        engine.alerts = AlertEngine::restore(shared.alert_cfg, saved.alerts);
        engine.feed = PacketFeed::new(cp.position);
        engine.rows = cp.rows;
        engine.batches = cp.batches;
        tracing::info!(
            consumer = %shared.consumer,
            rows = cp.rows,
            open_flows = engine.open_flows(),
            "resuming from the checkpoint at xid {} batch {}",
            cp.position.xid,
            cp.position.batch_id
        );
        engine.publish_table_metrics();
        Ok(engine)
    }

    /// Polls, aggregates and commits until stopped or (with
    /// --exit-when-idle) caught up.
    fn run(&mut self, client: &mut postgres::Client) -> Result<Exit> {
        let sh = self.shared;
        let mut last_commit = Instant::now();
        // (start, rows at start) of the current catch-up.
        let mut behind: Option<(Instant, u64)> = None;
        let mut dirty = false;
        loop {
            if STOP.load(Ordering::SeqCst) {
                tracing::info!("stopping: ending the open flows");
                return self.finish(client);
            }
            self.maintain(client)?;
            let started = Instant::now();
            let outcome = self.poll(client)?;
            if outcome.rows > 0 || outcome.batches > 0 {
                behind.get_or_insert((started, self.rows - outcome.rows));
                dirty = true;
            }
            let caught_up = outcome.batches == 0;
            if dirty && (caught_up || last_commit.elapsed() >= sh.commit_every) {
                self.commit(client)?;
                last_commit = Instant::now();
                dirty = false;
                if !caught_up {
                    let lag = self.feed.lag(client)?;
                    sh.metrics.lock().lag = (lag.rows, lag.batches, lag.seconds);
                }
            }
            if caught_up {
                if let Some((t0, rows0)) = behind.take() {
                    let secs = t0.elapsed().as_secs_f64();
                    let rows = self.rows - rows0;
                    tracing::info!(
                        "caught up: {rows} rows in {secs:.3} s ({:.0} rows/s)",
                        rows as f64 / secs.max(1e-9)
                    );
                }
                let lag = self.feed.lag(client)?;
                sh.metrics.lock().lag = (lag.rows, lag.batches, lag.seconds);
                if sh.exit_when_idle && lag.rows == 0 && lag.batches == 0 {
                    tracing::info!("caught up and --exit-when-idle: ending the open flows");
                    return self.finish(client);
                }
                sleep_unless_stopped(sh.idle_poll);
            }
        }
    }

    /// Reads the next batches and feeds them to the sensors' tables.
    fn poll(&mut self, client: &mut postgres::Client) -> Result<flowdb::PollOutcome> {
        let sh = self.shared;
        let Engine {
            feed,
            tables,
            alerts,
            pending_flows,
            scratch,
            now_ns,
            ..
        } = self;
        let mut on_row = |sensor: &str, rec: &PacketRecord| {
            let table = match tables.get_mut(sensor) {
                Some(t) => t,
                None => tables
                    .entry(sensor.to_owned())
                    .or_insert_with(|| FlowAggregator::new(sh.flow_cfg)),
            };
            table.ingest(rec, scratch);
            *now_ns = (*now_ns).max(rec.ts_ns);
            if !scratch.is_empty() {
                for mut flow in scratch.drain(..) {
                    classify(sh, &mut flow);
                    alerts.observe(&flow);
                    pending_flows.push((sensor.to_owned(), flow));
                }
            }
        };
        let outcome = feed.poll(client, sh.max_rows, &mut on_row)?;
        self.rows += outcome.rows;
        self.batches += outcome.batches;
        {
            let mut m = sh.metrics.lock();
            m.rows_read += outcome.rows;
            m.batches_read += outcome.batches;
        }
        if outcome.batches > 0 {
            // A sensor that went quiet still has its flows timed out, by
            // the packet time of the others.
            let now = Timestamp(self.now_ns);
            for (sensor, table) in &mut self.tables {
                table.expire(now, &mut self.scratch);
                for mut flow in self.scratch.drain(..) {
                    classify(sh, &mut flow);
                    self.alerts.observe(&flow);
                    self.pending_flows.push((sensor.clone(), flow));
                }
            }
            self.alerts.expire(self.now_ns);
            self.collect_alerts();
        }
        Ok(outcome)
    }

    /// Moves the alert engine's updates to the pending set.
    fn collect_alerts(&mut self) {
        self.alerts.take_updates(&mut self.updates);
        for a in self.updates.drain(..) {
            if a.revision == 1 {
                self.pending_new_alerts += 1;
            }
            self.pending_alerts.insert(a.alert_id, a);
        }
    }

    /// Ends every open flow (end reason `end`), commits, and reports.
    fn finish(&mut self, client: &mut postgres::Client) -> Result<Exit> {
        let sh = self.shared;
        for (sensor, table) in &mut self.tables {
            table.drain(&mut self.scratch);
            for mut flow in self.scratch.drain(..) {
                classify(sh, &mut flow);
                self.alerts.observe(&flow);
                self.pending_flows.push((sensor.clone(), flow));
            }
        }
        self.collect_alerts();
        self.commit(client)?;
        let stats = self.flow_stats();
        eprintln!(
            "netanalyzer-aggregator: {} rows, {} batches consumed; {} flows emitted; \
             {} unkeyed packets; {} open flows",
            self.rows,
            self.batches,
            stats.emitted.iter().sum::<u64>(),
            stats.unkeyed,
            stats.active
        );
        Ok(Exit::Done)
    }

    /// Writes the pending flows and alerts with the position and state, in
    /// one transaction.
    fn commit(&mut self, client: &mut postgres::Client) -> Result<()> {
        let sh = self.shared;
        let saved = SavedState {
            version: STATE_VERSION,
            sensors: self
                .tables
                .iter()
                .map(|(s, t)| (s.clone(), t.snapshot()))
                .collect(),
            alerts: self.alerts.snapshot(),
        };
        let state = rmp_serde::to_vec_named(&saved).context("encode the state")?;
        let alerts: Vec<Alert> = self.pending_alerts.values().cloned().collect();
        let t0 = Instant::now();
        let out = flowdb::commit(
            client,
            &FlowCommit {
                consumer: &sh.consumer,
                position: self.feed.position(),
                state: &state,
                flows: &self.pending_flows,
                model_version: sh.model.version(),
                alerts: &alerts,
                rows: self.rows,
                batches: self.batches,
                active_flows: Some(self.open_flows() as u64),
            },
        )?;
        let took = t0.elapsed();
        {
            let mut m = sh.metrics.lock();
            m.commits += 1;
            m.commit_seconds += took.as_secs_f64();
            m.last_commit_seconds = took.as_secs_f64();
            m.flows_written += out.flows;
            m.state_bytes = state.len() as u64;
            for (_, f) in &self.pending_flows {
                if let Some(label) = &f.label {
                    *m.predictions.entry(label.clone()).or_insert(0) += 1;
                }
            }
            m.alerts_new += self.pending_new_alerts;
            m.alerts_updated +=
                alerts.len() as u64 - self.pending_new_alerts.min(alerts.len() as u64);
        }
        tracing::debug!(
            flows = out.flows,
            alerts = out.alerts,
            rows = self.rows,
            "committed in {took:?}"
        );
        self.pending_flows.clear();
        self.pending_alerts.clear();
        self.pending_new_alerts = 0;
        self.publish_table_metrics();
        Ok(())
    }

    /// Upkeep of the flows partitions, at start and hourly: today's and
    /// the next days' are created, those beyond --retention-days dropped.
    fn maintain(&mut self, client: &mut postgres::Client) -> Result<()> {
        if self
            .last_maintenance
            .is_some_and(|t| t.elapsed() < MAINTENANCE_EVERY)
        {
            return Ok(());
        }
        self.last_maintenance = Some(Instant::now());
        let plan = PartitionPlan {
            retention_days: self.shared.retention_days,
            ..PartitionPlan::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let done = pg::maintain_flows(client, &plan, now)?;
        if !done.dropped.is_empty() {
            tracing::info!("retention: dropped {}", done.dropped.join(", "));
        }
        Ok(())
    }

    fn open_flows(&self) -> usize {
        self.tables.values().map(FlowAggregator::len).sum()
    }

    /// The sum of every sensor's counters.
    fn flow_stats(&self) -> FlowStats {
        let mut s = FlowStats::default();
        for t in self.tables.values() {
            let x = t.stats();
            s.packets += x.packets;
            s.unkeyed += x.unkeyed;
            s.flows_created += x.flows_created;
            for (a, b) in s.emitted.iter_mut().zip(x.emitted) {
                *a += b;
            }
            s.evicted_embryonic += x.evicted_embryonic;
            s.evicted_oldest += x.evicted_oldest;
            s.active += x.active;
            s.embryonic += x.embryonic;
            s.peak_active += x.peak_active;
        }
        s
    }

    /// Copies the flow tables' counters (as of the last commit) to the
    /// metrics.
    fn publish_table_metrics(&self) {
        let stats = self.flow_stats();
        let mut m = self.shared.metrics.lock();
        m.table = stats;
        m.sensors = self.tables.len() as u64;
    }
}

/// Sets the flow's predicted label and confidence.
fn classify(sh: &Shared, flow: &mut FlowRecord) {
    let p = sh.model.predict_flow(&sh.binding, &flow.features);
    flow.label = Some(sh.model.class_name(p.class).to_owned());
    flow.confidence = Some(p.confidence);
}

/// The aggregator's counters, rendered as Prometheus text on /metrics.
/// Updated once per poll or commit, never per row.
struct Metrics {
    inner: Mutex<MetricValues>,
}

#[derive(Default)]
struct MetricValues {
    rows_read: u64,
    batches_read: u64,
    commits: u64,
    commit_seconds: f64,
    last_commit_seconds: f64,
    flows_written: u64,
    state_bytes: u64,
    predictions: BTreeMap<String, u64>,
    alerts_new: u64,
    alerts_updated: u64,
    /// The flow tables' counters as of the last commit (all sensors; they
    /// are part of the checkpoint, so they count since the consumer began).
    table: FlowStats,
    sensors: u64,
    /// Rows, batches and seconds behind the newest stored batch.
    lag: (u64, u64, f64),
    db_up: bool,
    db_errors: u64,
    reconnects: u64,
}

impl Metrics {
    fn new(model: &Model) -> Metrics {
        let mut v = MetricValues::default();
        for i in 0..model.meta.class_names.len() {
            v.predictions.insert(model.class_name(i).to_owned(), 0);
        }
        Metrics {
            inner: Mutex::new(v),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MetricValues> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Prometheus text exposition (format 0.0.4).
    fn render(&self) -> String {
        let m = self.lock();
        let mut o = String::with_capacity(4096);
        let t = &m.table;
        write_family(
            &mut o,
            "netanalyzer_aggregator_rows_read_total",
            "counter",
            "Packet rows read from raw_packets by this process.",
            &[("", m.rows_read as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_batches_read_total",
            "counter",
            "Ingest batches read by this process.",
            &[("", m.batches_read as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_lag_rows",
            "gauge",
            "Stored rows not consumed yet (measured when a poll finds nothing new).",
            &[("", m.lag.0 as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_lag_batches",
            "gauge",
            "Stored batches not consumed yet.",
            &[("", m.lag.1 as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_lag_seconds",
            "gauge",
            "Age of the oldest batch not consumed yet, in seconds (0 when caught up).",
            &[("", m.lag.2)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_flows_active",
            "gauge",
            "Open flows over every sensor's table, as of the last commit.",
            &[("", t.active as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_flows_embryonic",
            "gauge",
            "Of the open flows, TCP flows that saw only SYNs from their initiator.",
            &[("", t.embryonic as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_sensors",
            "gauge",
            "Sensors with a flow table.",
            &[("", m.sensors as f64)],
        );
        let emitted: Vec<(String, f64)> = EndReason::ALL
            .iter()
            .zip(t.emitted)
            .map(|(r, n)| (format!("reason=\"{}\"", r.as_str()), n as f64))
            .collect();
        write_family(
            &mut o,
            "netanalyzer_aggregator_flows_emitted_total",
            "counter",
            "Flow records committed, by end reason (since the consumer began).",
            &emitted,
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_flows_evicted_total",
            "counter",
            "Flows pushed out of a full table, by reason (since the consumer began).",
            &[
                ("reason=\"embryonic\"", t.evicted_embryonic as f64),
                ("reason=\"oldest\"", t.evicted_oldest as f64),
            ],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_packets_unkeyed_total",
            "counter",
            "Packets in no flow (neither IP nor ARP), since the consumer began.",
            &[("", t.unkeyed as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_flows_written_total",
            "counter",
            "Flow rows committed to the flows table by this process.",
            &[("", m.flows_written as f64)],
        );
        let preds: Vec<(String, f64)> = m
            .predictions
            .iter()
            .map(|(c, n)| (format!("class=\"{}\"", escape_label_value(c)), *n as f64))
            .collect();
        write_family(
            &mut o,
            "netanalyzer_aggregator_predictions_total",
            "counter",
            "Committed flows by predicted class (the model's class names).",
            &preds,
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_alerts_total",
            "counter",
            "Alert upserts committed (and NOTIFYed): new alerts and updates of open ones.",
            &[
                ("kind=\"new\"", m.alerts_new as f64),
                ("kind=\"updated\"", m.alerts_updated as f64),
            ],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_commits_total",
            "counter",
            "Commits of flows, alerts, position and state.",
            &[("", m.commits as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_commit_seconds_total",
            "counter",
            "Seconds spent in commits.",
            &[("", m.commit_seconds)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_commit_last_seconds",
            "gauge",
            "Duration of the last commit, in seconds.",
            &[("", m.last_commit_seconds)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_state_bytes",
            "gauge",
            "Size of the last checkpointed state (flow tables + alert engine).",
            &[("", m.state_bytes as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_db_up",
            "gauge",
            "1 while the database answers, 0 from a failure until the next connect.",
            &[("", if m.db_up { 1.0 } else { 0.0 })],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_db_errors_total",
            "counter",
            "Database failures (each one restarts from the last commit).",
            &[("", m.db_errors as f64)],
        );
        write_family(
            &mut o,
            "netanalyzer_aggregator_reconnects_total",
            "counter",
            "Connections re-established after a failure.",
            &[("", m.reconnects as f64)],
        );
        o
    }
}

/// Serves GET /metrics and /health on a background thread (one request
/// per connection).
fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(stream) = conn else { continue };
            let metrics = Arc::clone(&metrics);
            std::thread::spawn(move || {
                let _ = answer(stream, &metrics);
            });
        }
    });
}

fn answer(mut s: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/");
    let (status, ctype, body) = match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        "/health" => {
            if metrics.lock().db_up {
                (
                    "200 OK",
                    "application/json",
                    "{\"status\":\"ok\"}\n".to_owned(),
                )
            } else {
                (
                    "503 Service Unavailable",
                    "application/json",
                    "{\"status\":\"db_down\"}\n".to_owned(),
                )
            }
        }
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}
