//! The HTTP edge under slow, idle and oversized clients, on real sockets:
//! they are cut off, and a signed webhook is still answered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::daemon::{Daemon, post_signed};
use crate::support::{TestApp, TestDatabase, backends, settings, zendesk_body};
use csatwatch::clock::ManualClock;

/// Reads until the server closes the connection (EOF or reset); returns
/// what was read, or `None` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A client that sends a request's headers one byte every `every`, and
/// never finishes them; returns how long the server kept it open.
async fn slow_header_client(addr: SocketAddr, every: Duration) -> Option<Duration> {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let dribble = tokio::spawn(async move {
        let headers = b"POST /webhooks/zendesk HTTP/1.1\r\nHost: csatwatch\r\nX-Padding: ";
        for byte in headers.iter().chain(std::iter::repeat(&b'a')) {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
    });
    let mut buf = [0u8; 256];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    };
    dribble.abort();
    closed
}

#[tokio::test]
async fn slow_header_clients_are_cut_off_while_signed_webhooks_are_answered() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let mut settings = settings(&db.url, None, "");
        settings.server.header_read_timeout = Duration::from_secs(1);
        let app = TestApp::spawn(settings, ManualClock::starting_now()).await;

        let slow: Vec<_> = (0..40)
            .map(|_| tokio::spawn(slow_header_client(app.addr, Duration::from_millis(100))))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for ticket in 0..5 {
            let (status, body) = app
                .post_zendesk(&zendesk_body(9000 + ticket, "bad", ""))
                .await;
            assert_eq!(
                (status, body["status"].clone()),
                (200, Value::from("recorded")),
                "{backend:?}"
            );
        }
        for client in slow {
            let open_for = client
                .await
                .unwrap()
                .expect("a slow client was never cut off");
            assert!(
                open_for >= Duration::from_millis(900) && open_for < Duration::from_secs(4),
                "{backend:?}: cut off after {open_for:?}, the header timeout is 1s"
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let db = TestDatabase::new(crate::support::Backend::Sqlite).await;
    let mut settings = settings(&db.url, None, "");
    settings.server.header_read_timeout = Duration::from_secs(30);
    settings.server.keep_alive_timeout = Duration::from_millis(500);
    let app = TestApp::spawn(settings, ManualClock::starting_now()).await;

    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: csatwatch\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let seen = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the idle connection is closed");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "kept alive for a while first ({:?})",
        started.elapsed()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_answered_413_at_once() {
    let db = TestDatabase::new(crate::support::Backend::Sqlite).await;
    let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // The support settings allow 64 KiB; the body never comes.
    stream
        .write_all(b"POST /webhooks/zendesk HTTP/1.1\r\nHost: csatwatch\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let seen = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed without waiting for the body");
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 413"), "{seen}");
    assert!(seen.contains("max_body_bytes"), "{seen}");
    app.stop().await;
}

#[tokio::test]
async fn idle_connections_over_the_cap_make_room_for_a_signed_webhook() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let mut settings = settings(&db.url, None, "");
        settings.server.max_connections = 20;
        let app = TestApp::spawn(settings, ManualClock::starting_now()).await;

        let mut idle = Vec::new();
        for _ in 0..60 {
            idle.push(TcpStream::connect(app.addr).await.unwrap());
        }
        let (status, body) = app.post_zendesk(&zendesk_body(7001, "bad", "")).await;
        assert_eq!(
            (status, body["status"].clone()),
            (200, Value::from("recorded")),
            "{backend:?}"
        );
        // The oldest idle connections were closed to make room.
        let oldest = closed_within(&mut idle[0], Duration::from_secs(2)).await;
        assert!(
            oldest.is_some_and(|seen| seen.is_empty()),
            "{backend:?}: the oldest idle connection is still open"
        );
        app.stop().await;
    }
}

/// The real process with a low open-file limit (soft and hard, so it cannot
/// raise it): more idle connections than it has descriptors for do not stop
/// a signed webhook from being recorded.
#[test]
fn idle_connections_beyond_the_file_limit_do_not_lock_out_a_signed_webhook() {
    csatwatch::http::server::raise_open_file_limit();
    let daemon = Daemon::start("", Some(400));
    let mut idle = Vec::new();
    for _ in 0..600 {
        match std::net::TcpStream::connect_timeout(&daemon.addr, Duration::from_secs(2)) {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    assert!(idle.len() >= 500, "opened only {} connections", idle.len());
    // Give the accept loop time to take them all.
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = post_signed(daemon.addr, "idle-flood-1", 1)
        .unwrap_or_else(|e| panic!("the webhook got no answer: {e}; logs: {}", daemon.logs()));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("recorded"), "{body}");
    assert!(
        daemon.logs().contains("server.max_connections"),
        "the cap is logged: {}",
        daemon.logs()
    );
}
