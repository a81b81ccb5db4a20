//! SQLite's own allocations through mimalloc, without SQLite's memory
//! statistics.
//!
//! The process allocates with mimalloc (`src/main.rs`), but SQLite calls the
//! C library's `malloc` directly: a CPU profile under the 64-connection
//! burst put 3.5–4.5% of the samples in glibc's allocator on SQLite's
//! threads, the writer's among them. SQLite also counts every allocation in
//! process-wide statistics under one mutex that its threads share; nothing
//! here reads them (they serve `sqlite3_memory_used` and a soft heap
//! limit, neither used).
//!
//! Both are process-wide settings that SQLite accepts only before its first
//! connection opens: [`install`] runs once, before the first pool connects.
//! `sqlite3_config` is not thread-safe: nothing else may call into SQLite
//! while it runs. In the daemon and its commands every SQLite connection
//! opens through [`crate::store::Store`], after this; a process that opens
//! SQLite some other way first (some integration tests do) gets
//! `SQLITE_MISUSE` back and SQLite's own allocator.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use libsqlite3_sys as sqlite;

unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
    // SAFETY: mimalloc's malloc takes any size; SQLite never asks for a
    // negative one (treated as 0 here all the same).
    unsafe { libmimalloc_sys::mi_malloc(usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn free(block: *mut c_void) {
    // SAFETY: SQLite frees only what `malloc` or `realloc` here returned.
    unsafe { libmimalloc_sys::mi_free(block) }
}

unsafe extern "C" fn realloc(block: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as `malloc` and `free`.
    unsafe { libmimalloc_sys::mi_realloc(block, usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn size(block: *mut c_void) -> c_int {
    if block.is_null() {
        return 0;
    }
    // SAFETY: `block` came from `malloc` or `realloc` here.
    let usable = unsafe { libmimalloc_sys::mi_usable_size(block) };
    c_int::try_from(usable).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn roundup(size: c_int) -> c_int {
    // SQLite's own default rounds to 8 bytes, the alignment it needs.
    size.saturating_add(7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    sqlite::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// The allocator's functions, as SQLite takes them.
fn methods() -> sqlite::sqlite3_mem_methods {
    sqlite::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(realloc),
        xSize: Some(size),
        xRoundup: Some(roundup),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    }
}

/// What [`install`] found: `Ok` when both settings took, else SQLite's
/// answer (`SQLITE_MISUSE`: a connection had opened before).
static INSTALLED: OnceLock<Result<(), c_int>> = OnceLock::new();

/// Sets SQLite's allocator to mimalloc and turns its memory statistics off,
/// once per process; later calls return the first call's answer.
pub(super) fn install() -> Result<(), c_int> {
    *INSTALLED.get_or_init(|| {
        let methods = methods();
        // SAFETY: `sqlite3_config` is called before SQLite initialises (it
        // answers SQLITE_MISUSE otherwise, changing nothing), from the one
        // place that opens SQLite connections (module docs); SQLite copies
        // the methods before it returns, and they point at functions with
        // the signatures it expects.
        let rc =
            unsafe { sqlite::sqlite3_config(sqlite::SQLITE_CONFIG_MALLOC, &raw const methods) };
        if rc != sqlite::SQLITE_OK {
            return Err(rc);
        }
        let off: c_int = 0;
        // SAFETY: as above; the argument is an int.
        let rc = unsafe { sqlite::sqlite3_config(sqlite::SQLITE_CONFIG_MEMSTATUS, off) };
        if rc != sqlite::SQLITE_OK {
            return Err(rc);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::time::Duration;

    #[tokio::test]
    async fn sqlite_allocates_from_mimalloc_without_statistics_once_a_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let url = SecretString::from(format!("sqlite://{}/a.db", dir.path().display()));
        let store = crate::store::Store::connect_url(&url, 1, Duration::from_secs(5))
            .await
            .unwrap();
        // Every SQLite connection in this process opens through a store,
        // so the first open installed both settings.
        assert_eq!(install(), Ok(()));
        // SAFETY: a block from SQLite's allocator, freed by it.
        let block = unsafe { sqlite::sqlite3_malloc(100) };
        assert!(!block.is_null());
        // SAFETY: asks mimalloc whether it handed out `block`.
        let from_mimalloc = unsafe { libmimalloc_sys::mi_is_in_heap_region(block) };
        // SAFETY: `block` is SQLite's, freed once.
        unsafe { sqlite::sqlite3_free(block) };
        assert!(from_mimalloc, "SQLite's block came from another allocator");
        // Counting every allocation would show the open connection's pages.
        // SAFETY: a plain read of SQLite's statistics.
        assert_eq!(unsafe { sqlite::sqlite3_memory_used() }, 0);
        store.close().await;
    }
}
