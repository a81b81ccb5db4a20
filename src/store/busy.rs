//! SQLite's busy handler, replaced.
//!
//! SQLite has one writer at a time: a connection that finds the write lock
//! taken calls its busy handler and tries again. The handler that
//! `busy_timeout` installs sleeps 1, 2, 5, 10, 15, 20, 25, … ms between
//! tries. The lock is usually free again within one commit (about a
//! millisecond), but the waiter sleeps on: the dispatcher's record of an
//! alert sent, meeting the writer's batch of webhooks, came out 10–50 ms
//! late. This handler looks again every 100 µs for the first 10 ms, then
//! every millisecond, and gives up after the same [`TIMEOUT`].

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::SqliteConnection;

/// How long a connection waits for the write lock before its statement
/// fails with `SQLITE_BUSY` (503 to a webhook).
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);
/// Tries at the short interval before the long one.
const SHORT_TRIES: u64 = 100;
const SHORT: Duration = Duration::from_micros(100);
const LONG: Duration = Duration::from_millis(1);

/// Tries made since start, by every connection (tests read it).
static TRIES: AtomicU64 = AtomicU64::new(0);

/// The time waited before try `count` (0-based), by the schedule above.
fn waited(count: u64) -> Duration {
    let short = count.min(SHORT_TRIES);
    SHORT * short as u32 + LONG * count.saturating_sub(SHORT_TRIES) as u32
}

/// Called by SQLite on the connection's own thread while it waits.
/// Returns nonzero to try again, zero to fail with `SQLITE_BUSY`.
extern "C" fn on_busy(_: *mut c_void, count: c_int) -> c_int {
    let count = u64::try_from(count).unwrap_or(0);
    TRIES.fetch_add(1, Ordering::Relaxed);
    if waited(count) >= TIMEOUT {
        return 0;
    }
    std::thread::sleep(if count < SHORT_TRIES { SHORT } else { LONG });
    1
}

/// Installs the handler on a new pool connection.
pub(super) async fn install(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, locked against its
    // worker thread for the duration of the call; the handler is a plain
    // function with no state (its argument is null).
    let rc =
        unsafe { libsqlite3_sys::sqlite3_busy_handler(db, Some(on_busy), std::ptr::null_mut()) };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "sqlite3_busy_handler failed with code {rc}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    /// A store on a new SQLite file in `dir`, with two pool connections.
    async fn store_in(dir: &tempfile::TempDir) -> crate::store::Store {
        let url = SecretString::from(format!("sqlite://{}/b.db", dir.path().display()));
        crate::store::Store::connect_url(&url, 2, Duration::from_secs(5))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn pool_connections_wait_for_the_write_lock_with_this_handler() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;
        let pool = store.sqlite_pool().expect("a SQLite store").clone();
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        let holder = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let before = TRIES.load(Ordering::Relaxed);
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { sqlx::query("INSERT INTO t VALUES (1)").execute(&pool).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        holder.commit().await.unwrap();
        waiter
            .await
            .unwrap()
            .expect("the write waited for the lock");
        // SQLite's own handler would have slept without calling ours.
        assert!(
            TRIES.load(Ordering::Relaxed) - before > 10,
            "the waiting write did not go through this handler"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_pools_hand_out_connections_without_a_ping() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;
        let dispatcher = store.with_own_pool(1);
        let writer = store.with_write_pool(1);
        for store in [&store, &dispatcher, &writer] {
            let pool = store.sqlite_pool().expect("a SQLite store");
            assert!(
                !pool.options().get_test_before_acquire(),
                "a ping before every statement is a round trip to the connection's thread"
            );
        }
        store.close().await;
    }

    /// The writer's connections keep a batch's statement journal in memory;
    /// every other connection keeps SQLite's default (a temporary file once
    /// it outgrows 64 KiB), so a report sorting a year of ratings spills
    /// to disk, not to memory.
    #[tokio::test]
    async fn only_the_writers_sqlite_connections_keep_temporary_data_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;
        let writer = store.with_write_pool(1);
        let dispatcher = store.with_own_pool(1);
        for (store, expected) in [(&writer, 2), (&store, 0), (&dispatcher, 0)] {
            let pool = store.sqlite_pool().expect("a SQLite store");
            let (temp_store,): (i64,) = sqlx::query_as("PRAGMA temp_store")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(temp_store, expected, "0 is the default, 2 is memory");
        }
        store.close().await;
    }

    #[test]
    fn gives_up_after_the_timeout_and_not_before() {
        // 100 tries at 100 µs, then one per millisecond.
        assert_eq!(waited(0), Duration::ZERO);
        assert_eq!(waited(100), Duration::from_millis(10));
        assert_eq!(waited(110), Duration::from_millis(20));
        let last = SHORT_TRIES + (TIMEOUT - Duration::from_millis(10)).as_millis() as u64;
        assert_eq!(waited(last), TIMEOUT);
        assert_eq!(on_busy(std::ptr::null_mut(), last as c_int), 0);
        assert_eq!(on_busy(std::ptr::null_mut(), (last - 1) as c_int), 1);
    }
}
