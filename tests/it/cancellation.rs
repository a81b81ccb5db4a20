//! Clients that go away mid-request, and a database that hangs, against the
//! real binary: the database stays usable (no session left inside a
//! transaction), the outbox drains, `/readyz` stays 200, and SIGTERM ends
//! the process within `server.request_timeout + server.shutdown_grace`.

use std::io::Read as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::settings::Settings;
use csatwatch::store::Store;
use serde_json::Value;

use crate::support::*;

/// `csatwatch serve` as a child process, JSON logs in a file.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
    client: reqwest::Client,
}

impl Daemon {
    fn start(db_url: &str, slack_url: &str, extra_toml: &str) -> Daemon {
        install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("csatwatch.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"3s\"\nshutdown_grace = \"3s\"\n\
                 [database]\nurl = \"{db_url}\"\n{extra_toml}\n\
                 [log]\nformat = \"json\"\nlevel = \"info\"\n\
                 [slack]\nbot_token = \"xoxb-test\"\ndefault_channel = \"#csat\"\napi_base_url = \"{slack_url}/api\"\nmax_per_minute = 100000\n\
                 [alerts]\nchannel_interval = \"0s\"\n[alerts.storm]\nthreshold = 0\n\
                 [[sources]]\nname = \"zendesk\"\nkind = \"zendesk\"\nsecret = \"{ZENDESK_SECRET}\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child,
            dir,
            addr: String::new(),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while daemon.addr.is_empty() {
            assert!(Instant::now() < deadline, "not ready:\n{}", daemon.logs());
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("csatwatch exited {status}:\n{}", daemon.logs());
            }
            if let Some(line) = daemon
                .logs()
                .lines()
                .find(|l| l.contains("csatwatch is ready"))
            {
                let line: Value = serde_json::from_str(line).unwrap();
                daemon.addr = line["listen"].as_str().unwrap().to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("stderr.log")) {
            f.read_to_string(&mut text).unwrap();
        }
        text
    }

    /// Posts a signed negative-or-positive Zendesk delivery; `give_up`
    /// drops the request (and its connection) after that long.
    async fn post(&self, ticket: u64, rating: &str, give_up: Option<Duration>) -> Option<u16> {
        let body = serde_json::to_vec(&zendesk_body(ticket, rating, "x")).unwrap();
        let now = ManualClock::starting_now().now_ms();
        let mut request = self
            .client
            .post(self.url("/webhooks/zendesk"))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in zendesk_headers(ZENDESK_SECRET, now, &body) {
            request = request.header(k, v);
        }
        if let Some(after) = give_up {
            request = request.timeout(after);
        }
        request.send().await.ok().map(|r| r.status().as_u16())
    }

    /// Sends a whole signed delivery over a raw connection, then waits at
    /// most `give_up` for the answer and hangs up: a client that goes away
    /// while its delivery is being recorded. Whether it was answered.
    async fn post_and_hang_up(&self, ticket: u64, rating: &str, give_up: Duration) -> bool {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let body = serde_json::to_vec(&zendesk_body(ticket, rating, "x")).unwrap();
        let now = ManualClock::starting_now().now_ms();
        let mut head = format!(
            "POST /webhooks/zendesk HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in zendesk_headers(ZENDESK_SECRET, now, &body) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut answer = [0u8; 64];
        matches!(
            tokio::time::timeout(give_up, stream.read(&mut answer)).await,
            Ok(Ok(n)) if n > 0
        )
    }

    /// Sends SIGTERM; the exit status and how long it took.
    fn terminate(&mut self, wait_at_most: Duration) -> (ExitStatus, Duration) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < wait_at_most,
                "still running {:?} after SIGTERM:\n{}",
                started.elapsed(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn database_settings(url: &str) -> csatwatch::settings::DatabaseSettings {
    let settings: Settings = settings(url, None, "");
    settings.database
}

/// Sessions of database `url` that sit inside a transaction doing nothing.
async fn idle_in_transaction(url: &str) -> i64 {
    let name = url.rsplit('/').next().unwrap().to_string();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    let n = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
    )
    .bind(name)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cancelled_mid_flight_leave_the_database_usable_and_sigterm_exits_in_time() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let mut daemon = Daemon::start(&db.url, &slack.uri(), "");
        // Hundreds of clients that give up after 1 to 30 ms, most of them
        // while their delivery is being recorded.
        let answers = futures::future::join_all((0..400u64).map(|i| {
            let daemon = &daemon;
            async move {
                let rating = if i % 3 == 0 { "bad" } else { "good" };
                let give_up = Duration::from_millis(i % 40);
                daemon.post_and_hang_up(10_000 + i, rating, give_up).await
            }
        }))
        .await;
        let answered = answers.iter().filter(|a| **a).count();
        let store = Store::connect(&database_settings(&db.url)).await.unwrap();
        let started = Instant::now();
        eprintln!(
            "{backend:?}: {answered} of 400 answered before their client gave up, {} recorded",
            store.count_ratings().await.unwrap()
        );
        // The daemon goes on as if nothing happened.
        for i in 0..30u64 {
            let rating = if i % 3 == 0 { "bad" } else { "good" };
            assert_eq!(
                daemon.post(20_000 + i, rating, None).await,
                Some(200),
                "{backend:?}"
            );
        }
        eprintln!("{backend:?}: 30 more in {:?}", started.elapsed());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let alerts = store.all_alerts().await.unwrap();
            let ours = alerts.iter().filter(|a| a.state == "sent").count();
            if !alerts.is_empty() && ours == alerts.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{backend:?}: the outbox did not drain: {ours} of {} sent\n{}",
                alerts.len(),
                daemon.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("{backend:?}: drained after {:?}", started.elapsed());
        let ready = reqwest::get(daemon.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200, "{backend:?}");
        if backend == Backend::Postgres {
            assert_eq!(idle_in_transaction(&db.url).await, 0, "{backend:?}");
        }
        store.close().await;
        // request_timeout + shutdown_grace = 6 s, plus start-up slack.
        let (status, took) = daemon.terminate(Duration::from_secs(8));
        assert!(
            status.success(),
            "{backend:?}: {status} after {took:?}\n{}",
            daemon.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_within_its_deadline_while_the_database_hangs() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!(
            "sigterm_while_the_database_hangs: not run: it needs PostgreSQL (set TEST_DATABASE_URL)"
        );
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    let slack = slack_ok().await;
    // No server-side timeouts: only the shutdown deadline can end this.
    let mut daemon = Daemon::start(
        &db.url,
        &slack.uri(),
        "statement_timeout = \"0s\"\nidle_in_transaction_timeout = \"0s\"",
    );
    assert_eq!(daemon.post(1, "good", None).await, Some(200));
    let other = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut lock = other.begin().await.unwrap();
    sqlx::query("LOCK TABLE ratings IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    // A delivery whose commit now waits on the lock for ever.
    let stuck = daemon
        .post(2, "bad", Some(Duration::from_millis(500)))
        .await;
    assert_eq!(stuck, None, "the write must be stuck behind the lock");
    // request_timeout 3 s + shutdown_grace 3 s.
    let (status, took) = daemon.terminate(Duration::from_secs(9));
    assert!(
        !status.success(),
        "a forced exit is not a clean one: {status}"
    );
    assert!(took >= Duration::from_secs(5), "exited after {took:?}");
    assert!(
        daemon.logs().contains("shutdown did not finish within"),
        "{}",
        daemon.logs()
    );
    lock.rollback().await.unwrap();
    other.close().await;
}
