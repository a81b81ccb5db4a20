//! The SQLite file's identity. A running SQLite connection keeps writing into
//! the file it opened even after that file is deleted (`rm -rf data/`) or
//! replaced (a restore copied over it): every write "succeeds" into a file
//! nobody will ever read again, and the next start creates an empty one.
//! So the store remembers the device and inode it opened, and refuses to
//! work once the path no longer leads there: readyz and webhooks answer 503
//! (helpdesks retry), and an ERROR says what happened.
//!
//! Start-up is the other half: creating a new database is said loudly, and
//! refused with `database.create_if_missing = false`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The file a store opened, and whether it is still at its path.
#[derive(Debug)]
pub struct FileGuard {
    path: PathBuf,
    identity: (u64, u64),
    lost: AtomicBool,
}

impl FileGuard {
    /// Remembers what `path` is now (call it right after opening).
    pub fn new(path: &Path) -> std::io::Result<FileGuard> {
        Ok(FileGuard {
            path: path.to_path_buf(),
            identity: identity(path)?,
            lost: AtomicBool::new(false),
        })
    }

    /// `Err` with what happened once the path no longer leads to the file
    /// opened; from then on it never clears (only a restart reopens).
    pub fn check(&self) -> Result<(), String> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(self.problem("is no longer the one csatwatch opened"));
        }
        let what = match identity(&self.path) {
            Ok(now) if now == self.identity => return Ok(()),
            Ok(_) => "was replaced by another file",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted",
            // A transient stat failure (permissions on a parent changed,
            // the file system is gone): do not claim more than we know.
            Err(_) => "cannot be read any more",
        };
        let problem = self.problem(what);
        if !self.lost.swap(true, Ordering::SeqCst) {
            metrics::counter!("csatwatch_database_file_lost_total").increment(1);
            tracing::error!(
                path = %self.path.display(),
                "{problem}"
            );
        }
        Err(problem)
    }

    fn problem(&self, what: &str) -> String {
        format!(
            "the SQLite database file {} {what} while csatwatch was running; nothing more is written (webhooks get 503, so helpdesks retry). Restore the file from a backup, or restart csatwatch to open the file now at that path",
            self.path.display()
        )
    }
}

impl super::Store {
    /// Checks the SQLite file every `every` until `cancel`, so a deleted
    /// file is reported even when no webhook or readyz probe comes.
    pub async fn watch_file(
        self,
        every: std::time::Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        if self.file.is_none() {
            return;
        }
        loop {
            // The ERROR is logged by the guard, once.
            if self.check_file().is_err() {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    // No inode here: a deleted file is still noticed.
    std::fs::metadata(path).map(|_| (0, 0))
}

/// Before opening `path`: when it does not exist, refuses (with
/// `create_if_missing = false`) or says loudly that a new, empty database
/// is being created.
pub fn before_open(path: &Path, create_if_missing: bool) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if !create_if_missing {
        anyhow::bail!(
            "the SQLite database {} does not exist, and database.create_if_missing = false: restore it from a backup, correct database.url, or set database.create_if_missing = true to start an empty database",
            path.display()
        );
    }
    tracing::warn!(
        path = %path.display(),
        "creating a NEW, EMPTY SQLite database; if ratings were recorded before, the file is missing: stop csatwatch and restore it (set database.create_if_missing = false to refuse instead)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_noticed_and_stays_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, b"one").unwrap();
        let guard = FileGuard::new(&path).unwrap();
        assert_eq!(guard.check(), Ok(()));

        // A restore that copies a file over the path: another inode.
        let other = dir.path().join("restored");
        std::fs::write(&other, b"two").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(guard.check().unwrap_err().contains("replaced"));

        let deleted = FileGuard::new(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(deleted.check().unwrap_err().contains("deleted"));
        // Even when a file appears there again.
        std::fs::write(&path, b"three").unwrap();
        assert!(deleted.check().is_err());
    }

    #[test]
    fn a_missing_database_is_refused_without_create_if_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        let err = before_open(&path, false).unwrap_err().to_string();
        assert!(err.contains("database.create_if_missing"), "{err}");
        assert!(before_open(&path, true).is_ok());
    }
}
