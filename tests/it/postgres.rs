//! CI must run the PostgreSQL half of the suite, not skip it.

#[tokio::test]
async fn postgres_answers_when_ci_asks_for_it() {
    if std::env::var("CSATWATCH_REQUIRE_POSTGRES").is_ok() {
        let url = std::env::var("TEST_DATABASE_URL")
            .expect("CSATWATCH_REQUIRE_POSTGRES is set, so TEST_DATABASE_URL must be too");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at TEST_DATABASE_URL does not answer: {e}"));
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
}

/// This process's IPv4 TCP sockets: by fd, the port of the address
/// `name` gives (`libc::getpeername`: the far end's, `libc::getsockname`:
/// our own) and whether TCP_NODELAY is set.
fn tcp_sockets(
    name: unsafe extern "C" fn(
        libc::c_int,
        *mut libc::sockaddr,
        *mut libc::socklen_t,
    ) -> libc::c_int,
) -> std::collections::BTreeMap<i32, (u16, bool)> {
    let mut found = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: an all-zero sockaddr_storage is valid; `name` writes at
        // most `len` bytes, and fails on an fd that is no socket.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if unsafe { name(fd, (&raw mut addr).cast(), &raw mut len) } != 0
            || i32::from(addr.ss_family) != libc::AF_INET
        {
            continue;
        }
        // SAFETY: the family says the storage holds a sockaddr_in.
        let v4: libc::sockaddr_in = unsafe { std::ptr::read((&raw const addr).cast()) };
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        if rc == 0 {
            found.insert(fd, (u16::from_be(v4.sin_port), value != 0));
        }
    }
    found
}

/// The TCP sockets of this process to port 5432, by fd, with whether
/// TCP_NODELAY is set on each.
fn postgres_sockets() -> std::collections::BTreeMap<i32, bool> {
    tcp_sockets(libc::getpeername)
        .into_iter()
        .filter(|(_, (port, _))| *port == 5432)
        .map(|(fd, (_, nodelay))| (fd, nodelay))
        .collect()
}

/// sqlx 0.9.0 leaves Nagle's algorithm on (sqlx issue 4335): a statement
/// then waits ~40 ms for the server's delayed ACK. The store sets
/// TCP_NODELAY on each connection it opens.
#[tokio::test]
async fn the_stores_postgres_connections_have_tcp_nodelay() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CSATWATCH_REQUIRE_POSTGRES").is_err(),
            "TEST_DATABASE_URL is required"
        );
        return;
    };
    if !url.contains("127.0.0.1:5432") {
        return; // the socket scan below looks for port 5432 over IPv4
    }
    let before = postgres_sockets();
    let store = csatwatch::store::Store::connect_url(
        &secrecy::SecretString::from(url),
        1,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    store.commit_durability().await.unwrap();
    let opened: Vec<bool> = postgres_sockets()
        .into_iter()
        .filter(|(fd, _)| !before.contains_key(fd))
        .map(|(_, nodelay)| nodelay)
        .collect();
    store.close().await;
    // Other tests open connections meanwhile, some through raw sqlx pools
    // (without the option): the store's own one must be among the new ones.
    assert!(
        opened.contains(&true),
        "no new connection to PostgreSQL has TCP_NODELAY: {opened:?}"
    );
}

/// The TCP_NODELAY option of this process's socket whose local port is
/// `port`, if it has one.
fn nodelay_of_local_port(port: u16) -> Option<bool> {
    tcp_sockets(libc::getsockname)
        .into_values()
        .find(|(local, _)| *local == port)
        .map(|(_, nodelay)| nodelay)
}

/// The writer's and the dispatcher's pools of their own are opened like
/// the store's: every connection the daemon has to its database (a fresh
/// one, so no other test's) has TCP_NODELAY. Without it the writer's
/// batches waited ~40 ms each for a delayed ACK (860 webhooks/s).
#[tokio::test]
async fn every_postgres_connection_of_a_running_app_has_tcp_nodelay() {
    use crate::support::{Backend, TestApp, TestDatabase, backends, settings, slack_ok};
    use csatwatch::clock::ManualClock;
    if !backends().contains(&Backend::Postgres) {
        eprintln!("every_postgres_connection_has_tcp_nodelay: not run: it needs PostgreSQL");
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    if !db.url.contains("127.0.0.1:5432") {
        return; // the socket scan looks for local sockets over IPv4
    }
    let slack = slack_ok().await;
    let app = TestApp::spawn_with(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
        true,
    )
    .await;
    // A webhook (the writer) and its alert (the dispatcher's reads).
    let (status, answer) = app
        .post_zendesk(&crate::support::zendesk_body(9001, "bad", "slow"))
        .await;
    assert_eq!(status, 200, "{answer}");
    crate::alert_path::wait_for_posts(&slack, 1, "nodelay").await;
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    let ports: Vec<i32> = sqlx::query_scalar(
        "SELECT client_port FROM pg_stat_activity
         WHERE datname = $1 AND application_name = 'csatwatch' AND client_port IS NOT NULL",
    )
    .bind(&name)
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    // The pool's, the writer's and the dispatcher's at least.
    assert!(ports.len() >= 3, "{ports:?}");
    for port in ports {
        let port = u16::try_from(port).unwrap();
        assert_eq!(nodelay_of_local_port(port), Some(true), "local port {port}");
    }
    app.stop().await;
}
