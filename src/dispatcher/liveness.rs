//! Heartbeats, and taking over the claims of a dispatcher that died.
//!
//! Every running dispatcher renews its row in `dispatchers` every
//! [`HEARTBEAT`] (wall-clock time: this is about processes, not the app's
//! clock). Each beat also looks at the others' rows: one silent for
//! [`DEAD_AFTER`] is gone, and so is one on this machine (same host, boot
//! and PID namespace) whose process no longer exists, which a restarted
//! instance sees at once. Its claims are released and marked in doubt, so
//! they are sent within seconds instead of after `alerts.claim_lease`, and
//! not posted twice if the dead one got them out (see `sinks`).
//!
//! Fencing: a dispatcher wrongly taken for dead (a long pause) finds its
//! claim tokens gone and records nothing; the in-doubt check covers the
//! message it may have sent.

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::Dispatcher;
use crate::clock::ms;
use crate::store::DispatcherRow;

/// How often a dispatcher renews its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A dispatcher silent this long is taken for dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);

impl Dispatcher {
    /// Beats until `cancel`, taking over from dead dispatchers on each beat
    /// (the run loop wrote the first with [`Dispatcher::first_beat`] before
    /// it claimed anything).
    pub(super) async fn keep_alive(self: Arc<Self>, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(HEARTBEAT);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.beat().await {
                tracing::debug!(error = %e, "dispatcher heartbeat not written: database unavailable");
            }
        }
    }

    /// Beats until one is written (retrying from [`HEARTBEAT`] up to every
    /// 30 s while the database is unavailable); false when `cancel` came
    /// first.
    pub(super) async fn first_beat(&self, cancel: &CancellationToken) -> bool {
        let mut backoff = HEARTBEAT;
        loop {
            match self.beat().await {
                Ok(()) => return true,
                Err(e) => tracing::warn!(
                    error = %e,
                    retry_in_s = backoff.as_secs(),
                    "alert dispatcher cannot write its heartbeat; it claims no alert until it can"
                ),
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// One heartbeat: renew this dispatcher's row, then take over from any
    /// that is gone.
    pub async fn beat(&self) -> crate::store::StoreResult<()> {
        let now = wall_ms();
        let host = host_key();
        self.store
            .dispatcher_heartbeat(&self.instance, host, i64::from(std::process::id()), now)
            .await?;
        for other in self.store.dispatchers().await? {
            if other.instance == self.instance || !is_gone(&other, now, host) {
                continue;
            }
            let released = self
                .store
                .take_over_dispatcher(&other.instance, ms(self.alerts().claim_lease))
                .await?;
            metrics::counter!("csatwatch_dispatcher_takeovers_total").increment(1);
            tracing::warn!(
                dispatcher = %other.instance,
                released,
                silent_ms = now - other.heartbeat_at,
                "took over the claims of a dispatcher that stopped; they are sent now"
            );
            if released > 0 {
                self.wake.notify_one();
            }
        }
        Ok(())
    }
}

/// Whether the dispatcher of `row` is gone: silent too long, or on this
/// machine and its process does not exist.
fn is_gone(row: &DispatcherRow, now_ms: i64, host: &str) -> bool {
    if now_ms - row.heartbeat_at > ms(DEAD_AFTER) {
        return true;
    }
    // Another process of this PID namespace on this boot: /proc tells
    // whether it still runs. (A reused PID looks alive: the heartbeat
    // timeout still applies.) In-process replicas share our PID.
    row.host == host
        && row.pid != i64::from(std::process::id())
        && cfg!(target_os = "linux")
        && !std::path::Path::new(&format!("/proc/{}", row.pid)).exists()
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Host name, boot id and PID namespace: two processes with the same key
/// can see each other's PIDs. Without them, a key no other process has.
fn host_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let pidns = std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|p| p.display().to_string());
        match (
            read("/proc/sys/kernel/hostname"),
            read("/proc/sys/kernel/random/boot_id"),
            pidns,
        ) {
            (Some(host), Some(boot), Some(ns)) => format!("{host}/{boot}/{ns}"),
            _ => format!("unknown/{}", uuid::Uuid::new_v4().simple()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, pid: i64, heartbeat_at: i64) -> DispatcherRow {
        DispatcherRow {
            instance: "x".into(),
            host: host.into(),
            pid,
            started_at: 0,
            heartbeat_at,
        }
    }

    #[test]
    fn a_silent_dispatcher_is_gone_after_the_timeout_only() {
        let host = host_key();
        let me = i64::from(std::process::id());
        assert!(!is_gone(&row(host, me, 10_000), 14_000, host));
        assert!(is_gone(&row(host, me, 10_000), 15_001, host));
    }

    #[test]
    fn a_dispatcher_on_this_machine_whose_process_is_gone_is_gone_at_once() {
        let host = host_key();
        // PIDs are below 2^22 on Linux: this one cannot exist.
        assert!(is_gone(&row(host, 99_999_999, 10_000), 10_000, host));
        // Our own PID (an in-process replica) is alive.
        let me = i64::from(std::process::id());
        assert!(!is_gone(&row(host, me, 10_000), 10_000, host));
        // Another machine's PIDs mean nothing here.
        assert!(!is_gone(
            &row("elsewhere", 99_999_999, 10_000),
            10_000,
            host
        ));
    }
}
