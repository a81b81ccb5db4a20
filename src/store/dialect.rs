//! The one seam between the two SQL dialects. Everything the store does
//! differently on SQLite and PostgreSQL is decided here, and nowhere else:
//!
//! - which pool a statement runs on: [`on_pool!`] and [`on_tx!`] compile one
//!   SQL body once per backend (the only code that matches on the backend);
//! - the few bits of SQL text that differ: [`Dialect`] (row-lock clauses,
//!   how a write transaction begins, JSON arrays, the catalogue queries of
//!   `migrate-data`, identity sequences), and which migrations apply.
//!
//! Every other file in `store/` writes one SQL body (`$1` placeholders work
//! in both) and asks `self.dialect()` for a fragment where it needs one.

use sqlx::pool::PoolConnection;
use sqlx::{Connection as _, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Dialect {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// A row-lock clause (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED`, …) on
    /// PostgreSQL; nothing on SQLite, whose `BEGIN IMMEDIATE` already holds
    /// the one write lock for the whole transaction and which has no such
    /// clause.
    pub fn row_lock(self, clause: &'static str) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => clause,
        }
    }

    /// `column` is one of the ids of parameter `$param`, bound as
    /// [`Dialect::id_list`] writes them: one parameter and one statement
    /// text however many ids there are. On PostgreSQL an `IN` list of n
    /// parameters is a new statement to prepare for each n, and planning
    /// it proves each partial index's predicate against every element
    /// (about 1.4 ms for 50 ids on `ratings`); an array parameter is
    /// planned in a tenth of that.
    pub(super) fn in_ids(self, column: &str, param: usize) -> String {
        match self {
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each(${param}))"),
            Dialect::Postgres => format!("{column} = ANY(CAST(${param} AS BIGINT[]))"),
        }
    }

    /// `ids` as the one parameter [`Dialect::in_ids`] reads: a JSON array
    /// on SQLite, an array literal on PostgreSQL.
    pub(super) fn id_list(self, ids: &[i64]) -> String {
        let joined = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        match self {
            Dialect::Sqlite => format!("[{joined}]"),
            Dialect::Postgres => format!("{{{joined}}}"),
        }
    }

    /// What ends a subquery that must be run as written, once per outer
    /// row, for the few rows a statement looks up by id: ` OFFSET 0` on
    /// PostgreSQL, whose planner does not flatten such a subquery nor turn
    /// an `EXISTS` into a hash of the whole table. On a table never
    /// analysed (a new database's first minute, autovacuum has not run)
    /// it otherwise estimates one row where there are thousands, and reads
    /// every sent alert to answer for fifty ratings. SQLite needs nothing.
    pub(super) fn per_row(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " OFFSET 0",
        }
    }

    /// A join that yields one row per element of the JSON array of strings
    /// in `column`, as `{alias}.value` (text). Both arguments are SQL the
    /// caller wrote, never input.
    pub(super) fn json_array_join(self, column: &str, alias: &str) -> String {
        match self {
            Dialect::Sqlite => format!(" JOIN json_each({column}) AS {alias}"),
            Dialect::Postgres => format!(
                " CROSS JOIN LATERAL jsonb_array_elements_text({column}::jsonb) AS {alias}(value)"
            ),
        }
    }

    /// One statement reading the newest `limit` earlier ratings of many
    /// customers, whose one parameter is a JSON array of `{"k", "source",
    /// "customer", "since", "except_id"}`; `None` where one subquery per
    /// customer joined by UNION ALL is the way (SQLite has no LATERAL).
    /// PostgreSQL plans fifty such subqueries in tens of milliseconds; this
    /// text is the same for every batch, so it is planned once.
    pub(super) fn stories_sql(self, limit: i64) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!(
                "SELECT q.k, e.id, e.scale, e.score, e.sentiment, e.rated_at
                 FROM jsonb_to_recordset(CAST($1 AS jsonb))
                     AS q(k bigint, source text, customer text, since bigint, except_id bigint)
                 CROSS JOIN LATERAL (
                     SELECT id, scale, score, sentiment, rated_at FROM ratings
                     WHERE source = q.source AND customer = q.customer
                       AND rated_at >= q.since AND id <> q.except_id
                     ORDER BY rated_at DESC, id DESC LIMIT {limit}) AS e"
            )),
        }
    }

    /// How a write transaction starts. On SQLite `BEGIN IMMEDIATE` takes the
    /// write lock up front so the busy timeout applies (a deferred
    /// transaction that reads then writes fails at once with BUSY_SNAPSHOT).
    pub(super) fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// What makes a commit durable, as text: SQLite's `synchronous` of the
    /// connection (`full`, `normal`, …), PostgreSQL's `synchronous_commit`.
    pub(super) fn commit_durability(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT CASE synchronous WHEN 0 THEN 'off' WHEN 1 THEN 'normal' WHEN 2 THEN 'full'
                 ELSE 'extra' END FROM pragma_synchronous()"
            }
            Dialect::Postgres => "SELECT current_setting('synchronous_commit')",
        }
    }

    /// The embedded migrations of this dialect.
    pub(super) fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The application's tables (not sqlx's own), one name per row.
    pub(super) fn list_tables(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name"
            }
            Dialect::Postgres => {
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                   AND table_name <> '_sqlx_migrations' ORDER BY table_name"
            }
        }
    }

    /// A table's columns (name, declared type) in order; `$1` is the table.
    pub(super) fn list_columns(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
            Dialect::Postgres => {
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
            }
        }
    }

    /// After rows were inserted with explicit ids, the statement that moves
    /// `table`'s id generator past them: PostgreSQL's identity sequence;
    /// nothing on SQLite, whose AUTOINCREMENT follows by itself.
    pub(super) fn reset_identity(self, table: &str) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)
                 WHERE pg_get_serial_sequence('{table}', 'id') IS NOT NULL"
            )),
        }
    }
}

/// The pool behind a store.
#[derive(Debug, Clone)]
pub(super) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    pub(super) fn dialect(&self) -> Dialect {
        match self {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Applies the dialect's migrations. On PostgreSQL on a connection of
    /// its own without `statement_timeout`, closed afterwards.
    pub(super) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let migrator = self.dialect().migrator();
        match self {
            Backend::Sqlite(pool) => migrator.run(pool).await,
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut *conn)
                    .await?;
                let ran = migrator.run(&mut *conn).await;
                let _ = sqlx::Connection::close(conn.detach()).await;
                ran
            }
        }
    }

    pub(super) async fn begin(&self) -> sqlx::Result<TxInner<'static>> {
        let begin = self.dialect().begin();
        Ok(match self {
            Backend::Sqlite(pool) => TxInner::Sqlite(pool.begin_with(begin).await?),
            Backend::Postgres(pool) => TxInner::Postgres(pool.begin_with(begin).await?),
        })
    }

    /// Closes the pool, waiting for the connections in use.
    pub(super) async fn close(&self) {
        match self {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Begins on the connection `held` keeps, taking one from the pool
    /// first when it keeps none.
    pub(super) async fn begin_on<'c>(
        &self,
        held: &'c mut HeldConnection,
    ) -> sqlx::Result<TxInner<'c>> {
        let begin = self.dialect().begin();
        let conn = match (held.0.take(), self) {
            (Some(conn), _) => conn,
            (None, Backend::Sqlite(pool)) => Held::Sqlite(pool.acquire().await?),
            (None, Backend::Postgres(pool)) => Held::Postgres(pool.acquire().await?),
        };
        Ok(match held.0.insert(conn) {
            Held::Sqlite(conn) => TxInner::Sqlite(conn.begin_with(begin).await?),
            Held::Postgres(conn) => TxInner::Postgres(conn.begin_with(begin).await?),
        })
    }
}

/// A pool connection kept from one transaction to the next (the writer
/// task's): a connection given back to its pool is pinged first, in a task
/// of its own, and one taken again waits for that; on SQLite a connection
/// that is not always the same one also drops its page cache.
#[derive(Debug, Default)]
pub struct HeldConnection(Option<Held>);

#[derive(Debug)]
enum Held {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl HeldConnection {
    /// Gives the connection back to its pool (the next transaction takes
    /// one again): when idle, and after a failure that may have broken it.
    pub fn release(&mut self) {
        self.0 = None;
    }
}

/// An open write transaction on either backend.
pub(super) enum TxInner<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>),
}

impl TxInner<'_> {
    pub(super) fn dialect(&self) -> Dialect {
        match self {
            TxInner::Sqlite(_) => Dialect::Sqlite,
            TxInner::Postgres(_) => Dialect::Postgres,
        }
    }

    pub(super) async fn commit(self) -> sqlx::Result<()> {
        match self {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        }
    }
}

/// Runs `$body` with `$pool` bound to the store's pool; the body is
/// compiled once per backend.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::dialect::Backend::Sqlite($pool) => $body,
            $crate::store::dialect::Backend::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection
/// (`&mut Connection`; reborrow with `&mut *$conn` per statement).
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::store::dialect::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::dialect::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;

    use super::HeldConnection;
    use crate::store::Store;

    #[test]
    fn id_lists_and_per_row_subqueries_are_written_for_each_dialect() {
        use crate::store::Dialect;
        use crate::store::reports::{ALERTED, RECOVERED, fenced};
        assert_eq!(Dialect::Sqlite.id_list(&[3, 1]), "[3,1]");
        assert_eq!(Dialect::Postgres.id_list(&[3, 1]), "{3,1}");
        assert_eq!(Dialect::Sqlite.id_list(&[]), "[]");
        assert_eq!(Dialect::Postgres.id_list(&[]), "{}");
        assert_eq!(
            Dialect::Sqlite.in_ids("a.id", 2),
            "a.id IN (SELECT value FROM json_each($2))"
        );
        assert_eq!(
            Dialect::Postgres.in_ids("a.id", 2),
            "a.id = ANY(CAST($2 AS BIGINT[]))"
        );
        // The fence goes inside the subquery, before its closing parenthesis.
        let alerted = fenced(ALERTED, Dialect::Postgres.per_row());
        assert!(
            alerted.ends_with("('sent', 'digested') OFFSET 0)"),
            "{alerted}"
        );
        let recovered = fenced(RECOVERED, Dialect::Postgres.per_row());
        assert!(recovered.ends_with("= 'negative' OFFSET 0)"), "{recovered}");
        assert_eq!(fenced(ALERTED, Dialect::Sqlite.per_row()), ALERTED);
    }

    /// Whether the transaction's connection carries the mark (a temporary
    /// table lives on one connection only); marks it when it does not.
    async fn mark_or_find(tx: &mut crate::store::StoreTx<'_>) -> bool {
        on_tx!(tx, |conn| {
            let found: Option<i64> = sqlx::query_scalar("SELECT n FROM temp.mark")
                .fetch_optional(&mut *conn)
                .await
                .unwrap_or(None);
            if found.is_none() {
                sqlx::query("CREATE TEMP TABLE IF NOT EXISTS mark (n INTEGER)")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                sqlx::query("INSERT INTO temp.mark VALUES (1)")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            found.is_some()
        })
    }

    #[tokio::test]
    async fn a_held_connection_serves_every_transaction_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let url = SecretString::from(format!("sqlite://{}/h.db", dir.path().display()));
        // A pool of two: while one is held, only the other is lent.
        let store = Store::connect_url(&url, 2, Duration::from_millis(300))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let mut held = HeldConnection::default();
        let mut tx = store.begin_on(&mut held).await.unwrap();
        assert!(!mark_or_find(&mut tx).await, "a new connection has no mark");
        tx.commit().await.unwrap();
        for _ in 0..3 {
            let mut other = store.begin().await.unwrap();
            assert!(!mark_or_find(&mut other).await, "the pool's other one");
            assert!(
                store.begin().await.is_err(),
                "the held connection is kept between transactions"
            );
            drop(other);
            let mut tx = store.begin_on(&mut held).await.unwrap();
            assert!(mark_or_find(&mut tx).await, "the same connection again");
            tx.commit().await.unwrap();
        }
        held.release();
        // Closing waits for every connection to be back in the pool.
        tokio::time::timeout(Duration::from_secs(5), store.close())
            .await
            .expect("the released connection is back in the pool");
    }
}
