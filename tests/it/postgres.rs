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

/// The TCP sockets of this process to port 5432, by fd, with whether
/// TCP_NODELAY is set on each.
fn postgres_sockets() -> std::collections::BTreeMap<i32, bool> {
    let mut found = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: an all-zero sockaddr_storage is valid; getpeername writes
        // at most `len` bytes, and fails on an fd that is no socket.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if unsafe { libc::getpeername(fd, (&raw mut addr).cast(), &raw mut len) } != 0
            || i32::from(addr.ss_family) != libc::AF_INET
        {
            continue;
        }
        // SAFETY: the family says the storage holds a sockaddr_in.
        let v4: libc::sockaddr_in = unsafe { std::ptr::read((&raw const addr).cast()) };
        if u16::from_be(v4.sin_port) != 5432 {
            continue;
        }
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
            found.insert(fd, value != 0);
        }
    }
    found
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
