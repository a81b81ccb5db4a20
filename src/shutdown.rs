//! SIGTERM and Ctrl-C become one cancellation token that every task watches.
//! Containers and systemd send SIGTERM; a terminal sends SIGINT. SIGHUP,
//! whose default action would kill the process, is caught and logged
//! (docs/operations.md lists what every signal does).

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

/// Catches SIGHUP for the life of the process, so that it never kills the
/// daemon (its default action would: a closed terminal, a `systemctl
/// reload`, an operator's habit). Each one is logged at INFO. Call it first
/// thing in `serve`, before the slow parts of start-up.
///
/// Must be called inside a Tokio runtime. Settings are not reloaded: a
/// changed configuration needs a restart.
pub fn ignore_hangup() {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangup) => {
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    tracing::info!(
                        "SIGHUP received and ignored: settings are not reloaded; restart csatwatch to apply a changed configuration"
                    );
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot catch SIGHUP; a SIGHUP would stop csatwatch")
        }
    }
}
