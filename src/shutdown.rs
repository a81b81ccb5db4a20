//! SIGTERM and Ctrl-C become one cancellation token that every task watches.
//! Containers and systemd send SIGTERM; a terminal sends SIGINT. SIGHUP,
//! whose default action would kill the process, is caught and logged
//! (docs/operations.md lists what every signal does).
//!
//! Shutdown has a deadline: `server.request_timeout` (in-flight requests)
//! plus `server.shutdown_grace` (background work). Past it the process
//! exits with status 1 even if the database hangs (a commit that never
//! returns, a pool that never closes); nothing answered 2xx is lost by that,
//! since a 2xx is only sent after its commit.

use std::time::Duration;

use crate::settings::ServerSettings;

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        _ = terminate => tracing::info!("SIGTERM received; shutting down"),
        _ = token.cancelled() => return,
    }
    token.cancel();
}

/// How long shutdown may take at most, from the signal.
pub fn deadline(server: &ServerSettings) -> Duration {
    server.request_timeout + server.shutdown_grace
}

/// Once `token` is cancelled, waits `deadline` and then ends the process,
/// whatever is still running.
pub async fn exit_after_deadline(token: CancellationToken, deadline: Duration) {
    token.cancelled().await;
    tokio::time::sleep(deadline).await;
    tracing::error!(
        deadline_s = deadline.as_secs_f64(),
        "shutdown did not finish within server.request_timeout + server.shutdown_grace; exiting now (check whether the database is hanging). Nothing answered 2xx is lost: a 2xx is sent only after its commit"
    );
    std::process::exit(1);
}

/// Catches SIGHUP from the start of `serve`, so that it never kills the
/// daemon (its default action would: a closed terminal, a `systemctl
/// reload` during start-up, an operator's habit). Until the reloader
/// ([`crate::reload`]) takes over, each one is logged at INFO and ignored;
/// abort the returned handle once it has. Once caught, SIGHUP stays caught
/// for the life of the process (Tokio never restores the default action).
///
/// Must be called inside a Tokio runtime.
pub fn ignore_hangup() -> Option<tokio::task::AbortHandle> {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangup) => {
            let task = tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    tracing::info!(
                        "SIGHUP received and ignored: csatwatch is still starting; send it again once it is ready to reload the settings"
                    );
                }
            });
            return Some(task.abort_handle());
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot catch SIGHUP; a SIGHUP would stop csatwatch")
        }
    }
    None
}
