//! The HTTP server: our own accept loop over hyper, because the daemon faces
//! the internet and axum's `serve` has no knobs for the limits that keep a
//! flood of bad clients from starving the real ones:
//!
//! - `server.header_read_timeout`: a connection must deliver a request's
//!   headers this long after it opens (or after its previous response); a
//!   client sending a byte a second is cut off (hyper's own timer).
//! - `server.keep_alive_timeout`: a connection with no request in flight
//!   and no bytes moving for this long is closed.
//! - `server.max_connections`: the most connections open at once, lowered at
//!   start-up to fit the open-file limit with room kept for the database,
//!   Slack and helpdesk calls. At the cap, the oldest connection with no
//!   request in flight is closed to make room for the new one, so idle
//!   sockets can never lock out a helpdesk; only when every connection is
//!   busy is the new one refused. Either way a WARN is logged (at most once
//!   a minute) and `csatwatch_http_connection_limit_total` counts it.
//!
//! What lives elsewhere: the routes and their layers ([`super::router`]).
//! Shutdown: the accept loop stops, every connection finishes the request it
//! is answering (bounded by `server.request_timeout`) and closes.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::settings::ServerSettings;

/// File descriptors kept free of client connections: the database pool,
/// Slack and helpdesk calls, the log, SQLite's WAL and shared-memory files.
pub const RESERVED_FILES: u64 = 256;

/// The limits one server runs with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    /// How long shutdown lets a connection finish the request it is on.
    pub drain: Duration,
}

impl Limits {
    /// The limits of `settings`, with the cap lowered to fit `open_files`
    /// (the process's soft limit on open files, when known).
    pub fn new(settings: &ServerSettings, open_files: Option<u64>, reserved: u64) -> Limits {
        let mut max_connections = settings.max_connections;
        if let Some(limit) = open_files {
            let fits = usize::try_from(limit.saturating_sub(reserved)).unwrap_or(usize::MAX);
            if fits < max_connections {
                tracing::warn!(
                    max_connections,
                    open_file_limit = limit,
                    lowered_to = fits.max(1),
                    "server.max_connections does not fit the open-file limit; lowered (raise LimitNOFILE= or `ulimit -n`)"
                );
                max_connections = fits.max(1);
            }
        }
        Limits {
            header_read_timeout: settings.header_read_timeout,
            keep_alive_timeout: settings.keep_alive_timeout,
            max_connections,
            drain: settings.request_timeout + Duration::from_secs(1),
        }
    }
}

/// Raises the soft limit on open files to the hard limit (each connection is
/// one), and returns the soft limit in force afterwards.
// `rlim_t` is u64 on Linux but not on every unix.
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                tracing::debug!(
                    from = as_u64(limit.rlim_cur),
                    to = as_u64(raised.rlim_cur),
                    "raised the open-file limit"
                );
                return Some(as_u64(raised.rlim_cur));
            }
        }
        Some(as_u64(limit.rlim_cur))
    }
    #[cfg(not(unix))]
    None
}

/// `rlim_t` is `u64` on 64-bit Linux, narrower or wider elsewhere.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
fn as_u64(value: libc::rlim_t) -> u64 {
    value as u64
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Connection {
    /// Requests inside the router now.
    in_flight: AtomicUsize,
    /// When bytes last moved, in ms since the server started.
    active_at_ms: AtomicU64,
    /// Fired to close the connection (eviction at the cap).
    evict: CancellationToken,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    /// By accept order: the first idle one found is the oldest.
    open: BTreeMap<u64, Arc<Connection>>,
    warned_at: Option<Instant>,
}

impl Registry {
    /// Closes the oldest connection with no request in flight; false when
    /// every connection is busy.
    fn evict_oldest_idle(&mut self) -> bool {
        let found = self
            .open
            .iter()
            .find(|(_, c)| c.in_flight.load(Ordering::SeqCst) == 0)
            .map(|(id, _)| *id);
        match found.and_then(|id| self.open.remove(&id)) {
            Some(connection) => {
                connection.evict.cancel();
                true
            }
            None => false,
        }
    }

    fn warn_at_cap(&mut self, max: usize, action: &'static str) {
        metrics::counter!("csatwatch_http_connection_limit_total", "action" => action).increment(1);
        let now = Instant::now();
        if self
            .warned_at
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60))
        {
            self.warned_at = Some(now);
            tracing::warn!(
                max_connections = max,
                action,
                "the connection cap (server.max_connections) is reached: idle connections are closed to make room, busy ones are kept; a flood of connections, or raise the cap"
            );
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let started = Instant::now();
    let tasks = TaskTracker::new();
    metrics::gauge!("csatwatch_http_connections_max").set(limits.max_connections as f64);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to
                // close rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (id, connection) = {
            let mut registry = registry.lock().expect("registry lock");
            if registry.open.len() >= limits.max_connections {
                if registry.evict_oldest_idle() {
                    registry.warn_at_cap(limits.max_connections, "evicted_idle");
                } else {
                    registry.warn_at_cap(limits.max_connections, "refused");
                    drop(stream);
                    continue;
                }
            }
            let id = registry.next_id;
            registry.next_id += 1;
            let connection = Arc::new(Connection {
                in_flight: AtomicUsize::new(0),
                active_at_ms: AtomicU64::new(elapsed_ms(started)),
                evict: CancellationToken::new(),
            });
            registry.open.insert(id, connection.clone());
            metrics::gauge!("csatwatch_http_connections").set(registry.open.len() as f64);
            (id, connection)
        };
        let _ = stream.set_nodelay(true);
        let registry = registry.clone();
        let router = router.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            serve_connection(stream, router, connection, limits, started, shutdown).await;
            let mut registry = registry.lock().expect("registry lock");
            registry.open.remove(&id);
            metrics::gauge!("csatwatch_http_connections").set(registry.open.len() as f64);
        });
    }
    drop(listener);
    tasks.close();
    // Every connection closes itself within `limits.drain`; the margin
    // covers the last writes.
    if tokio::time::timeout(limits.drain + Duration::from_secs(1), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after server.request_timeout; closed");
    }
    Ok(())
}

/// Errors that concern only the connection being accepted.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    connection: Arc<Connection>,
    limits: Limits,
    started: Instant,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Tracked {
        inner: stream,
        connection: connection.clone(),
        started,
    });
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let router = router.clone();
            let guard = InFlight::enter(connection.clone(), started);
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                drop(guard);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);

    let idle_check = limits.keep_alive_timeout.min(Duration::from_secs(1));
    // Set once a close is asked for: the connection gets this long to finish.
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let deadline = closing.unwrap_or_else(|| tokio::time::Instant::now() + idle_check);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Timeouts, resets and garbage from clients: routine.
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                return;
            }
            _ = connection.evict.cancelled(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + Duration::from_secs(1));
            }
            _ = shutdown.cancelled(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + limits.drain);
            }
            _ = tokio::time::sleep_until(deadline) => {
                if closing.is_some() {
                    return;
                }
                let idle_ms = elapsed_ms(started)
                    .saturating_sub(connection.active_at_ms.load(Ordering::SeqCst));
                if connection.in_flight.load(Ordering::SeqCst) == 0
                    && Duration::from_millis(idle_ms) >= limits.keep_alive_timeout
                {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            }
        }
    }
}

/// Counts a request in flight on its connection for as long as it lives.
struct InFlight {
    connection: Arc<Connection>,
    started: Instant,
}

impl InFlight {
    fn enter(connection: Arc<Connection>, started: Instant) -> InFlight {
        connection.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            connection,
            started,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.connection
            .active_at_ms
            .store(elapsed_ms(self.started), Ordering::SeqCst);
        self.connection.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A socket that notes when bytes last moved, for the idle timeout.
struct Tracked {
    inner: TcpStream,
    connection: Arc<Connection>,
    started: Instant,
}

impl Tracked {
    fn touch(&self) {
        self.connection
            .active_at_ms
            .store(elapsed_ms(self.started), Ordering::SeqCst);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_lowered_to_fit_the_open_file_limit() {
        let settings = ServerSettings::default();
        assert_eq!(Limits::new(&settings, Some(1000), 261).max_connections, 739);
        assert_eq!(Limits::new(&settings, Some(100), 261).max_connections, 1);
        assert_eq!(Limits::new(&settings, None, 261).max_connections, 10_000);
        assert_eq!(
            Limits::new(&settings, Some(1 << 20), 261).max_connections,
            10_000
        );
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_goes_and_busy_ones_stay() {
        let mut registry = Registry::default();
        let connection = |busy: usize| {
            Arc::new(Connection {
                in_flight: AtomicUsize::new(busy),
                active_at_ms: AtomicU64::new(0),
                evict: CancellationToken::new(),
            })
        };
        let (busy, idle_old, idle_new) = (connection(1), connection(0), connection(0));
        registry.open.insert(0, busy.clone());
        registry.open.insert(1, idle_old.clone());
        registry.open.insert(2, idle_new.clone());
        assert!(registry.evict_oldest_idle());
        assert!(idle_old.evict.is_cancelled());
        assert!(!busy.evict.is_cancelled() && !idle_new.evict.is_cancelled());
        assert!(registry.evict_oldest_idle());
        assert!(idle_new.evict.is_cancelled());
        assert!(
            !registry.evict_oldest_idle(),
            "a busy connection is never evicted"
        );
        assert!(!busy.evict.is_cancelled());
    }
}
