//! The store: every SQL statement, and nothing else. Two backends behind one
//! interface: SQLite (embedded default, one file) and PostgreSQL (production,
//! several replicas). Callers never see which one they have.
//!
//! Most statements are the same text in both dialects (`$1` placeholders
//! work in both). Everything that differs lives in one seam,
//! [`dialect`]: the `on_pool!`/`on_tx!` macros that compile one body once
//! per backend, and [`Dialect`]'s few SQL fragments (row locks,
//! `BEGIN IMMEDIATE`, catalogue queries).
//!
//! Idempotency lives in the schema: unique keys plus `ON CONFLICT`, never a
//! check-then-insert that two replicas could race.

mod activity;
mod batch;
mod busy;
mod checkpoint;
mod copy;
mod dashboard;
mod deliveries;
pub(crate) mod dialect;
mod file_guard;
mod follow_up_rollup;
mod listing;
mod nodelay;
mod outbox;
mod polling;
mod ratings;
mod reports;
mod rollup;
mod scheduled;
mod sqlite_alloc;
mod threads;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use activity::{Activity, EarlierRating, FollowUpOutcome, NewActivity, StoryQuery};
pub use copy::CopyReport;
pub use dashboard::{QueueFilter, QueueRow};
pub use deliveries::{NewDelivery, StoredDelivery};
pub use file_guard::FileGuard;
pub use listing::{RatingQuery, RatingRow};
pub use outbox::{
    AlertKind, AlertRecord, AlertState, Candidate, Claimed, DispatcherRow, DueAlert, JsonList,
    NewAlert, OutboxStats, Parent, ParentRow, Parsed, SentRecord,
};
pub use ratings::{HistoryRecord, RatingRecord, StoredRating};
pub use reports::{
    DAY_MS, FollowUpCount, FollowUpTime, GroupColumn, Grouping, RatingFilter, ScoreCount,
};
pub use rollup::RollupBuild;
pub use scheduled::{NewReportMessage, ReportMessage};
pub use threads::{NewFollowOn, RatingAction, RatingActions};

pub use dialect::Dialect;
pub use dialect::HeldConnection;
use dialect::{Backend, TxInner, on_pool, on_tx};

use crate::settings::{DatabaseSettings, SqliteSync};

/// A store failure. Every one of them means "try again later" to a
/// helpdesk (503), since nothing was committed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or no connection came free in time.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The batch this write was to be committed with failed (group commit:
    /// many writes share one error, logged once).
    #[error("{0}")]
    Batch(std::sync::Arc<StoreError>),
    /// The SQLite file was deleted or replaced under the running daemon.
    #[error("{0}")]
    FileLost(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            sqlx::Error::Database(ref db)
                if db.code().as_deref() == Some("5") || db.code().as_deref() == Some("517") =>
            {
                // SQLITE_BUSY (and BUSY_SNAPSHOT): another writer held the
                // file for longer than the busy timeout.
                StoreError::Unavailable(e)
            }
            other => StoreError::Query(other),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Runs `work` (database work started by a request) to its end in a task of
/// its own, even when the caller is dropped: a webhook or Slack client that
/// disconnects cancels its wait for the answer, never a transaction half
/// way (which on PostgreSQL could leave a pooled connection inside an open
/// transaction holding row locks). A panic in `work` is resumed here.
pub async fn to_completion<T, F>(work: F) -> StoreResult<T>
where
    F: Future<Output = StoreResult<T>> + Send + 'static,
    T: Send + 'static,
{
    // The caller's span goes with the work: its log lines and trace spans
    // stay under the request that started it.
    let work = tracing::Instrument::in_current_span(work);
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed)),
    }
}

/// The database, shared by every task (a pool inside; cheap to clone).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite: the file opened, checked before every write transaction and
    /// by readyz ([`FileGuard`]).
    file: Option<Arc<FileGuard>>,
    /// The report rollup's state, shared by clones.
    rollup: Arc<rollup::RollupShared>,
    /// SQLite file: the task that checkpoints its log ([`checkpoint`]).
    checkpointer: Option<Arc<checkpoint::Checkpointer>>,
    /// The pools of its own that parts took ([`Store::with_own_pool`]):
    /// closed with the store's, so a shutdown waits for their work too.
    own_pools: Arc<std::sync::Mutex<Vec<Backend>>>,
}

/// Whether a pooled SQLite connection is pinged each time it is taken
/// from the pool (sqlx's default for every database). A SQLite connection
/// is a file handle in this process: it cannot go stale the way a network
/// connection does (a file deleted or replaced is caught by the
/// [`FileGuard`]), so the ping would only add a round trip to the
/// connection's thread before every statement and transaction, the
/// writer's included. PostgreSQL's pools keep it: there it finds the
/// connections a server restart or failover ended.
pub(super) const SQLITE_PING_BEFORE_ACQUIRE: bool = false;

/// The file behind a `sqlite:` URL; `None` for PostgreSQL and in-memory
/// databases.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// A write transaction. Dropped without [`StoreTx::commit`], it rolls back.
/// `'c`: the connection it borrows ([`Store::begin_on`]); `'static` when it
/// holds one of the pool's.
pub struct StoreTx<'c> {
    inner: TxInner<'c>,
    /// The rollup changes of this transaction's rating writes, written just
    /// before it commits; `None` when the database has no rollup.
    rollup: Option<rollup::RollupDelta>,
}

impl StoreTx<'_> {
    pub async fn commit(mut self) -> StoreResult<()> {
        self.flush_rollup().await?;
        self.inner.commit().await?;
        Ok(())
    }

    /// The dialect this transaction speaks.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}

impl Store {
    /// Connects (creating a SQLite file and its folder on first start). Does
    /// not migrate: call [`Store::migrate`].
    /// A SQLite file that does not exist yet is created with a loud WARN,
    /// or refused with `database.create_if_missing = false`.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Store> {
        let file = sqlite_file(settings.url.expose_secret());
        if let Some(path) = &file {
            file_guard::before_open(path, settings.create_if_missing)?;
        }
        let mut store = Self::connect_url_with(&settings.url, settings).await?;
        if let Some(path) = file {
            // The pool opened the file (and created it) on connecting.
            let guard = FileGuard::new(&path).map_err(|e| {
                anyhow::anyhow!("cannot read the SQLite database {}: {e}", path.display())
            })?;
            store.file = Some(Arc::new(guard));
        }
        Ok(store)
    }

    /// `Err` once the SQLite file was deleted or replaced under us; never
    /// for PostgreSQL.
    pub fn check_file(&self) -> StoreResult<()> {
        match &self.file {
            Some(guard) => guard.check().map_err(StoreError::FileLost),
            None => Ok(()),
        }
    }

    /// Connects to `url` with a pool of `max_connections` and every other
    /// `[database]` key at its default (tools and tests).
    pub async fn connect_url(
        url: &SecretString,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Store> {
        let settings = DatabaseSettings {
            max_connections,
            acquire_timeout,
            ..DatabaseSettings::default()
        };
        Self::connect_url_with(url, &settings).await
    }

    /// As [`Store::connect`], to `url` instead of `settings.url`
    /// (`migrate-data` opens two databases with the same settings).
    pub async fn connect_url_with(
        url: &SecretString,
        settings: &DatabaseSettings,
    ) -> anyhow::Result<Store> {
        use anyhow::Context as _;
        let url = url.expose_secret();
        let mut checkpointer = None;
        let backend = if url.starts_with("sqlite:") {
            if let Err(rc) = sqlite_alloc::install() {
                tracing::debug!(rc, "SQLite's allocator left as it was");
            }
            let synchronous = match settings.sqlite_synchronous {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            };
            let options = SqliteConnectOptions::from_str(url)
                .context("database.url is not a valid sqlite:// URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(busy::TIMEOUT)
                .foreign_keys(true)
                // Checkpoints run beside the writes, not inside a commit.
                .pragma("wal_autocheckpoint", "0")
                .pragma("journal_size_limit", checkpoint::JOURNAL_SIZE_LIMIT);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the database folder {}", parent.display())
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .test_before_acquire(SQLITE_PING_BEFORE_ACQUIRE)
                .after_connect(|conn, _| Box::pin(busy::install(conn)))
                .connect_with(options)
                .await
                .context("cannot open the SQLite database (database.url)")?;
            if sqlite_file(url).is_some() {
                checkpointer = Some(Arc::new(checkpoint::Checkpointer::start(
                    &pool.connect_options(),
                )));
            }
            Backend::Sqlite(pool)
        } else {
            let mut session = Vec::new();
            // A second line of defence behind the writer task: a session
            // left inside a transaction (a cancelled future, a hung client
            // library) is ended by the server, releasing its row locks, and
            // no statement waits on a lock forever. `0` turns either off.
            if !settings.statement_timeout.is_zero() {
                session.push((
                    "statement_timeout",
                    settings.statement_timeout.as_millis().to_string(),
                ));
            }
            if !settings.idle_in_transaction_timeout.is_zero() {
                session.push((
                    "idle_in_transaction_session_timeout",
                    settings.idle_in_transaction_timeout.as_millis().to_string(),
                ));
            }
            let options = PgConnectOptions::from_str(url)
                .context("database.url is not a valid postgres:// URL")?
                .application_name("csatwatch")
                .options(session);
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .after_connect(|conn, _| Box::pin(nodelay::set_nodelay(conn)))
                // Connect lazily: a replica that starts while the database is
                // down still serves /healthz and answers webhooks 503.
                .connect_lazy_with(options);
            Backend::Postgres(pool)
        };
        Ok(Store {
            backend,
            file: None,
            rollup: Arc::default(),
            checkpointer,
            own_pools: Arc::default(),
        })
    }

    /// The SQLite pool, for tests of connection settings.
    #[cfg(test)]
    pub(crate) fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.backend {
            Backend::Sqlite(pool) => Some(pool),
            Backend::Postgres(_) => None,
        }
    }

    /// The dialect this store speaks.
    pub fn dialect(&self) -> Dialect {
        self.backend.dialect()
    }

    /// Applies the embedded migrations. Safe when several replicas start at
    /// once: sqlx takes an advisory lock on PostgreSQL, and SQLite has one
    /// writer. On PostgreSQL they run on a connection of their own without
    /// `database.statement_timeout` (building an index on a large table may
    /// take longer), which is closed afterwards.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.backend.migrate().await?;
        Ok(())
    }

    /// Whether the database answers and every embedded migration is applied
    /// (for `/readyz`).
    pub async fn ready(&self) -> StoreResult<bool> {
        self.check_file()?;
        let expected = self.dialect().migrator().iter().count() as i64;
        let started = std::time::Instant::now();
        let applied: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(pool)
                .await?
        });
        crate::telemetry::observe_db("ping", started);
        Ok(applied >= expected)
    }

    /// What makes a commit durable (for the start-up log and tests): on
    /// SQLite its `synchronous` setting (`full` or `normal`, from
    /// `database.sqlite_synchronous`), on PostgreSQL the server's
    /// `synchronous_commit`.
    pub async fn commit_durability(&self) -> StoreResult<String> {
        let sql = self.dialect().commit_durability();
        let value = on_pool!(self, |pool| {
            sqlx::query_scalar(sql).fetch_one(pool).await?
        });
        Ok(value)
    }

    /// The plan of `sql` with `binds`, one line per step (tests: which
    /// index a statement walks, and whether it sorts). On PostgreSQL with
    /// sequential scans off: small test tables make them cheapest, and the
    /// question is whether an index can serve the statement.
    pub(crate) async fn explain(&self, sql: &str, binds: reports::Binds) -> StoreResult<String> {
        let lines: Vec<String> = match &self.backend {
            Backend::Sqlite(pool) => {
                let rows: Vec<(i64, i64, i64, String)> = reports::bind_all!(
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))),
                    binds
                )
                .fetch_all(pool)
                .await?;
                rows.into_iter().map(|r| r.3).collect()
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut *conn)
                    .await?;
                let rows: Vec<String> = reports::bind_all!(
                    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"))),
                    binds
                )
                .fetch_all(&mut *conn)
                .await?;
                sqlx::query("RESET enable_seqscan")
                    .execute(&mut *conn)
                    .await?;
                rows
            }
        };
        Ok(lines.join("\n"))
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.dialect().name()
    }

    /// Starts a write transaction (see [`Dialect::begin`]).
    pub async fn begin(&self) -> StoreResult<StoreTx<'static>> {
        self.check_file()?;
        let zone = self.rollup_zone().await?;
        Ok(StoreTx {
            inner: self.backend.begin().await?,
            rollup: zone.map(rollup::RollupDelta::new),
        })
    }

    /// As [`Store::begin`], on the connection `held` keeps (one of the
    /// pool's, taken now if it keeps none).
    pub async fn begin_on<'c>(&self, held: &'c mut HeldConnection) -> StoreResult<StoreTx<'c>> {
        self.check_file()?;
        let zone = self.rollup_zone().await?;
        Ok(StoreTx {
            inner: self.backend.begin_on(held).await?,
            rollup: zone.map(rollup::RollupDelta::new),
        })
    }

    /// A transaction that keeps no rollup changes (the rollup's own).
    pub(crate) async fn begin_plain(&self) -> StoreResult<StoreTx<'static>> {
        self.check_file()?;
        Ok(StoreTx {
            inner: self.backend.begin().await?,
            rollup: None,
        })
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop();
        }
        self.backend.close().await;
        let own = std::mem::take(&mut *self.own_pools.lock().unwrap_or_else(|e| e.into_inner()));
        for backend in own {
            backend.close().await;
        }
    }
}
