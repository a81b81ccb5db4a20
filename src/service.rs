//! The service manager's side of running as a daemon: systemd's
//! `sd_notify` protocol (`Type=notify` in the unit).
//!
//! - `READY=1` once migrations are applied and the listener is bound, so
//!   `systemctl start` returns only when webhooks can be received;
//! - `WATCHDOG=1` from a loop that proves the daemon still works (below);
//! - `STOPPING=1` as soon as shutdown begins.
//!
//! Every call is a no-op without `NOTIFY_SOCKET` (a terminal, a container,
//! Kubernetes), so the same binary runs everywhere.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Tells the service manager that the daemon is ready, with a status line
/// `systemctl status` shows.
pub fn notify_ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager that shutdown has begun.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        // Not fatal: the unit's own timeouts will tell the operator.
        tracing::warn!(error = %e, "could not notify the service manager (NOTIFY_SOCKET)");
    }
}

/// The watchdog interval the service manager asked for (`WatchdogSec=`),
/// if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Sends `WATCHDOG=1` every half `interval`, each time after a database
/// round trip (the `/readyz` check) finished within a quarter of it, so two
/// pings are never more than three quarters of `interval` apart.
///
/// What this proves: the runtime schedules tasks, the connection pool hands
/// out connections, and the database answers. A wedged runtime, a
/// deadlocked pool or a database call that never returns stops the pings,
/// and systemd restarts the daemon. A database that answers with an error
/// (PostgreSQL refusing connections) also proves the process is alive, so
/// it keeps pinging: restarting cannot fix an outage outside the process,
/// and a restart loop would only turn webhooks' 503 (retried by helpdesks)
/// into refused connections. The outage is reported by `/readyz`, the logs
/// and the status line instead.
pub async fn run_watchdog(store: Store, interval: Duration, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(interval / 2);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let Ok(result) = tokio::time::timeout(interval / 4, store.ready()).await else {
            tracing::error!(
                waited_ms = (interval / 4).as_millis() as u64,
                "watchdog: the database check did not finish in time; not pinging systemd, which restarts the daemon if this persists"
            );
            continue;
        };
        let mut states = vec![NotifyState::Watchdog];
        match (&result, failing) {
            (Ok(true), true) => {
                failing = false;
                states.push(NotifyState::Status("ready"));
            }
            (Ok(false), false) => {
                failing = true;
                states.push(NotifyState::Status(
                    "not ready: migrations missing; run csatwatch migrate",
                ));
            }
            (Err(e), false) => {
                failing = true;
                tracing::warn!(error = %e, "watchdog: the database is unavailable; webhooks are answered 503 until it is back");
                states.push(NotifyState::Status(
                    "not ready: the database is unavailable",
                ));
            }
            _ => {}
        }
        send(&states);
    }
}
