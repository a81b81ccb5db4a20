//! SQLite write-ahead-log checkpoints, off the write path.
//!
//! With SQLite's automatic checkpoints, the connection whose commit takes
//! the log past 1,000 pages copies them into the database file and syncs
//! it before its COMMIT returns. Under a steady 200 webhooks/s that made
//! one commit in a few hundred (a batch of webhooks, or the dispatcher's
//! record of an alert sent) wait 50–100 ms: the tail of webhook → Slack.
//!
//! So the pool's connections run with `wal_autocheckpoint = 0`, and one
//! task per database file runs passive checkpoints on a connection of its
//! own whenever the log was written since the last one (it looks every
//! [`INTERVAL`]: one `stat` while idle), and again at the next look when
//! a reader's older snapshot left frames uncopied. A passive checkpoint never blocks
//! a writer or a reader; durability is unchanged (a commit is on disk once
//! the log is synced, and a checkpoint syncs the database file before the
//! log is reused). SQLite still checkpoints when the last connection to
//! the file closes. `journal_size_limit` truncates a log that a burst grew.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio_util::sync::CancellationToken;

/// How often the task looks at the log.
const INTERVAL: Duration = Duration::from_millis(250);
/// The size a grown log is cut back to after a checkpoint.
pub(super) const JOURNAL_SIZE_LIMIT: &str = "67108864";

/// The checkpoint task of one database file; stops when dropped (with the
/// last clone of its store).
#[derive(Debug)]
pub(super) struct Checkpointer {
    cancel: CancellationToken,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Checkpointer {
    /// Starts the task for the file `options` open (never creating it).
    pub(super) fn start(options: &SqliteConnectOptions) -> Checkpointer {
        let cancel = CancellationToken::new();
        let mut wal = options.get_filename().as_os_str().to_owned();
        wal.push("-wal");
        tokio::spawn(run(
            options.clone().create_if_missing(false),
            PathBuf::from(wal),
            cancel.clone(),
        ));
        Checkpointer { cancel }
    }

    /// Stops the task (it finishes a checkpoint under way).
    pub(super) fn stop(&self) {
        self.cancel.cancel();
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

async fn run(options: SqliteConnectOptions, wal: PathBuf, cancel: CancellationToken) {
    let mut conn: Option<SqliteConnection> = None;
    let mut seen = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
        let now = modified(&wal);
        if now.is_none() || now == seen {
            continue;
        }
        if conn.is_none() {
            match options.connect().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(error = %e, "checkpoint: cannot open the database; trying again");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        // Written from here on is for the next checkpoint.
        seen = now;
        // (busy, frames in the log, frames copied): a reader still on an
        // older snapshot leaves the newer frames for later, so the next
        // look tries again even if nothing more is written.
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *c)
            .await
        {
            Ok((busy, log, copied)) if busy != 0 || copied < log => seen = None,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "checkpoint failed; trying again");
                seen = None;
                conn = None;
            }
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use secrecy::SecretString;

    use crate::store::Store;

    /// Pages of the database file itself (what checkpoints have copied).
    fn file_pages(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len() / 4096).unwrap_or(0)
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_by_the_task_not_by_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let url = SecretString::from(format!("sqlite://{}", path.display()));
        let store = Store::connect_url(&url, 2, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        let pool = store.sqlite_pool().expect("a SQLite store");
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(auto, 0, "commits must not checkpoint");
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(pool)
            .await
            .unwrap();
        // Well past the 1,000 pages an automatic checkpoint would start at.
        for _ in 0..40 {
            sqlx::query("INSERT INTO t SELECT hex(randomblob(500)) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT i FROM n)")
                .execute(pool)
                .await
                .unwrap();
        }
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(pages > 1_000, "{pages} pages");
        // The task copies them into the database file within a few looks.
        assert!(
            copied_within(&path, pages, std::time::Duration::from_secs(10)).await,
            "the database file holds {} of {pages} pages: no checkpoint ran",
            file_pages(&path)
        );
        store.close().await;
    }

    /// Waits (up to `within`) until the database file holds all `pages`.
    async fn copied_within(
        path: &std::path::Path,
        pages: i64,
        within: std::time::Duration,
    ) -> bool {
        let deadline = Instant::now() + within;
        while file_pages(path) < pages as u64 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        true
    }

    #[tokio::test]
    async fn frames_a_reader_held_back_are_copied_once_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let url = SecretString::from(format!("sqlite://{}", path.display()));
        let store = Store::connect_url(&url, 2, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        let pool = store.sqlite_pool().expect("a SQLite store");
        let fill = "INSERT INTO t SELECT hex(randomblob(500)) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n)";
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query(fill).execute(pool).await.unwrap();
        // A reader (a long report, say) holds the snapshot of now.
        let mut reader = pool.acquire().await.unwrap();
        sqlx::query("BEGIN").execute(&mut *reader).await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        // Written after it: a checkpoint now can copy only up to the reader.
        sqlx::query(fill).execute(pool).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(
            !copied_within(&path, pages, std::time::Duration::from_secs(1)).await,
            "the reader's snapshot should hold the last frames back"
        );
        sqlx::query("COMMIT").execute(&mut *reader).await.unwrap();
        drop(reader);
        // Nothing more is written: the task must still finish the copy.
        assert!(
            copied_within(&path, pages, std::time::Duration::from_secs(10)).await,
            "the database file holds {} of {pages} pages: the frames the reader held back were left in the log",
            file_pages(&path)
        );
        store.close().await;
    }
}
