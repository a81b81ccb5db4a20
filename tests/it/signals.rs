//! Signals sent to the real process, as an operator or a service manager
//! sends them (docs/operations.md lists what each one does).

use std::time::Duration;

use crate::daemon::{Daemon, http_get, post_signed};

#[test]
fn sighup_never_stops_the_daemon_and_sigterm_stops_it_cleanly() {
    let mut daemon = Daemon::start("", None);
    for _ in 0..3 {
        daemon.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped csatwatch: {}",
        daemon.logs()
    );
    let (status, body) = post_signed(daemon.addr, "after-sighup", 1).unwrap();
    assert_eq!(status, 200, "{body}");
    // Each SIGHUP reloads the settings (tests/it/reload.rs tests what that
    // applies); the file is unchanged, so they apply as they are.
    assert!(
        daemon
            .logs()
            .contains("SIGHUP received; reloading the settings"),
        "{}",
        daemon.logs()
    );

    daemon.signal(libc::SIGTERM);
    let status = daemon
        .wait_exit(Duration::from_secs(15))
        .expect("SIGTERM stops csatwatch");
    assert!(status.success(), "{status}: {}", daemon.logs());
    assert!(
        daemon.logs().contains("csatwatch stopped"),
        "{}",
        daemon.logs()
    );
    assert!(http_get(daemon.addr, "/healthz").is_err());
}

/// In the daemon the writer runs on a thread of its own (woken directly by
/// the database driver, not queued behind request handlers); SIGTERM still
/// ends it cleanly once what it holds is committed.
#[test]
fn the_daemons_writer_runs_on_a_thread_of_its_own() {
    let mut daemon = Daemon::start("", None);
    let (status, body) = post_signed(daemon.addr, "writer-thread", 1).unwrap();
    assert_eq!(status, 200, "{body}");
    let tasks = format!("/proc/{}/task", daemon.child.id());
    let names: Vec<String> = std::fs::read_dir(&tasks)
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect();
    // The kernel keeps 15 bytes of a thread's name.
    assert!(
        names.iter().any(|name| name == "csatwatch-write"),
        "no writer thread among {names:?}"
    );
    daemon.signal(libc::SIGTERM);
    let status = daemon
        .wait_exit(Duration::from_secs(15))
        .expect("SIGTERM stops csatwatch");
    assert!(status.success(), "{status}: {}", daemon.logs());
    assert!(!daemon.logs().contains("panicked"), "{}", daemon.logs());
}
