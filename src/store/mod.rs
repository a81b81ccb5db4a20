//! The store: every SQL statement, and nothing else. Two backends behind one
//! interface: SQLite (embedded default, one file) and PostgreSQL (production,
//! several replicas). Callers never see which one they have.
//!
//! Most statements are the same text in both dialects (`$1` placeholders
//! work in both); the [`on_pool!`] and [`on_tx!`] macros compile one body
//! once per backend. Where the dialects differ (row locks, `SKIP LOCKED`,
//! `BEGIN IMMEDIATE`), the method says so.
//!
//! Idempotency lives in the schema: unique keys plus `ON CONFLICT`, never a
//! check-then-insert that two replicas could race.

mod activity;
mod copy;
mod dashboard;
mod deliveries;
mod file_guard;
mod listing;
mod outbox;
mod polling;
mod ratings;
mod reports;
mod scheduled;
mod threads;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

pub use activity::{Activity, EarlierRating, FollowUpOutcome, NewActivity};
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
pub use scheduled::{NewReportMessage, ReportMessage};
pub use threads::{NewFollowOn, RatingAction, RatingActions};

use crate::settings::DatabaseSettings;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database, shared by every task (a pool inside; cheap to clone).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite: the file opened, checked before every write transaction and
    /// by readyz ([`FileGuard`]).
    file: Option<Arc<FileGuard>>,
}

/// The file behind a `sqlite:` URL; `None` for PostgreSQL and in-memory
/// databases.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// Runs `$body` with `$pool` bound to the backend's pool; the body is
/// compiled once per backend.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection
/// (`&mut Connection`; reborrow with `&mut *$conn` per statement).
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::store::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A write transaction. Dropped without [`StoreTx::commit`], it rolls back.
pub struct StoreTx {
    inner: TxInner,
}

impl StoreTx {
    pub async fn commit(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    fn is_postgres(&self) -> bool {
        matches!(self.inner, TxInner::Postgres(_))
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
        let mut store = Self::connect_url(
            &settings.url,
            settings.max_connections,
            settings.acquire_timeout,
        )
        .await?;
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

    pub async fn connect_url(
        url: &SecretString,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Store> {
        use anyhow::Context as _;
        let url = url.expose_secret();
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("database.url is not a valid sqlite:// URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the database folder {}", parent.display())
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await
                .context("cannot open the SQLite database (database.url)")?;
            Backend::Sqlite(pool)
        } else {
            let options = PgConnectOptions::from_str(url)
                .context("database.url is not a valid postgres:// URL")?
                .application_name("csatwatch");
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                // Connect lazily: a replica that starts while the database is
                // down still serves /healthz and answers webhooks 503.
                .connect_lazy_with(options);
            Backend::Postgres(pool)
        };
        Ok(Store {
            backend,
            file: None,
        })
    }

    /// Applies the embedded migrations. Safe when several replicas start at
    /// once: sqlx takes an advisory lock on PostgreSQL, and SQLite has one writer.
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers and every embedded migration is applied
    /// (for `/readyz`).
    pub async fn ready(&self) -> StoreResult<bool> {
        self.check_file()?;
        let expected = match &self.backend {
            Backend::Sqlite(_) => SQLITE_MIGRATIONS.iter().count(),
            Backend::Postgres(_) => POSTGRES_MIGRATIONS.iter().count(),
        } as i64;
        let started = std::time::Instant::now();
        let applied: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(pool)
                .await?
        });
        crate::telemetry::observe_db("ping", started);
        Ok(applied >= expected)
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so the
    /// write lock is taken up front and the busy timeout applies (a deferred
    /// transaction that reads then writes fails at once with BUSY_SNAPSHOT).
    pub async fn begin(&self) -> StoreResult<StoreTx> {
        self.check_file()?;
        let inner = match &self.backend {
            Backend::Sqlite(pool) => TxInner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(StoreTx { inner })
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}
