//! The write path end to end, against the real `csatwatch` binary (this
//! profile's build, or BENCH_BIN), a mock Slack and a mock Zendesk API in
//! this process:
//!
//! - signed webhooks/s at 64 connections (every answer must be 200);
//! - rating → Slack latency during that burst (from each 200 to its post);
//! - webhook → Slack latency at a fixed 200 webhooks/s;
//! - `csatwatch backfill` ratings/s from a mock Zendesk API (pages of 100);
//! - start → first 200, idle and peak RSS of the daemon;
//!
//! on SQLite (`synchronous = full`, the default) and, when TEST_DATABASE_URL
//! is set, PostgreSQL (a database per run, dropped afterwards). Prints medians
//! of BENCH_RUNS runs (default 3).
//!
//!   cargo bench --bench ingest
//!   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench ingest
//!   BENCH_BACKENDS=postgres BENCH_RUNS=1 … cargo bench --bench ingest   (one backend)
//!   BENCH_BIN=/tmp/perf/csatwatch cargo bench --bench ingest   (another binary)
//!
//! The binary `cargo bench` builds is not the one `cargo build --release`
//! makes: the dev-dependencies' features join in, so rustc's names differ
//! and link/symbol-order.txt does not apply to it (its code is laid out as
//! before the order, about 3.5 MiB more idle RSS). For the released
//! binary's memory, build it and pass it as BENCH_BIN.
//!
//! Figures move with whatever else runs on the machine: compare runs made
//! side by side, not with numbers from another day.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use base64::Engine as _;

const SECRET: &str = "bench-secret";
const CONNECTIONS: usize = 64;
const FIXED_RATE: u64 = 200;
const FIXED_SECONDS: u64 = 10;
const BACKFILL: usize = 20_000;

/// The daemon under test: BENCH_BIN, else the binary this profile built.
fn daemon_binary() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_csatwatch").to_string())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A Zendesk trigger body; every third ticket is rated bad.
fn body(ticket: u64) -> Vec<u8> {
    let rating = if ticket.is_multiple_of(3) {
        "bad"
    } else {
        "good"
    };
    format!(
        r#"{{"csatwatch":1,"ticket":{{"id":"{ticket}","link":"https://x.zendesk.com/agent/tickets/{ticket}","title":"t","tags":"a b","brand":"B","group":"G"}},"assignee":{{"name":"Sam","email":"s@x"}},"requester":{{"name":"Jo","email":"j@x","organization":"O"}},"satisfaction":{{"current_rating":"{rating}","current_comment":"bench"}},"updated_at":""}}"#
    )
    .into_bytes()
}

/// A signed request: (body, signature, timestamp).
type Signed = (Vec<u8>, String, String);

fn signed(ticket: u64) -> Signed {
    let body = body(ticket);
    let ts = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mac =
        csatwatch::sources::signature::hmac_sha256(SECRET.as_bytes(), &[ts.as_bytes(), &body]);
    (
        body,
        base64::engine::general_purpose::STANDARD.encode(mac),
        ts,
    )
}

// ---- mock Slack: records when each ticket's alert arrived ----

type Posts = Arc<Mutex<HashMap<u64, Instant>>>;

async fn slack_method(
    State(posts): State<Posts>,
    body: axum::body::Bytes,
) -> axum::Json<serde_json::Value> {
    let at = Instant::now();
    let text = String::from_utf8_lossy(&body);
    // "… on ticket 123"
    if let Some(rest) = text.split("on ticket ").nth(1) {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(ticket) = digits.parse() {
            posts.lock().unwrap().entry(ticket).or_insert(at);
        }
    }
    axum::Json(serde_json::json!({"ok": true, "channel": "C0BENCH", "ts": "1700000000.000100"}))
}

async fn mock_slack() -> (String, Posts) {
    let posts: Posts = Arc::default();
    let app = axum::Router::new()
        .route("/api/{method}", post(slack_method))
        .with_state(posts.clone());
    (serve(app).await, posts)
}

// ---- mock Zendesk API: BACKFILL legacy CSAT ratings, pages of 100 ----

async fn mock_zendesk() -> String {
    let base = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut pages = HashMap::new();
    for start in (0..BACKFILL).step_by(100) {
        let end = (start + 100).min(BACKFILL);
        let ratings: Vec<serde_json::Value> = (start..end)
            .map(|i| {
                let at = (base + time::Duration::seconds(i as i64 / 10))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                let t = 100_000 + i;
                serde_json::json!({"id": t * 10, "ticket_id": t, "score": if i % 3 == 0 { "bad" } else { "good" },
                    "comment": "", "assignee_id": 135, "group_id": 44, "requester_id": 7881,
                    "created_at": at, "updated_at": at,
                    "url": format!("https://acme.zendesk.com/api/v2/satisfaction_ratings/{}.json", t * 10)})
            })
            .collect();
        let after = (end < BACKFILL).then(|| end.to_string());
        pages.insert(
            start.to_string(),
            serde_json::json!({"satisfaction_ratings": ratings, "meta": {"has_more": after.is_some(), "after_cursor": after}})
                .to_string(),
        );
    }
    let pages = Arc::new(pages);
    let app = axum::Router::new()
        .route(
            "/api/v2/satisfaction_ratings",
            get(
                |State(pages): State<Arc<HashMap<String, String>>>,
                 Query(q): Query<HashMap<String, String>>| async move {
                    let start = q.get("page[after]").cloned().unwrap_or_else(|| "0".into());
                    let body = pages.get(&start).cloned().unwrap_or_else(|| {
                        r#"{"satisfaction_ratings":[],"meta":{"has_more":false}}"#.into()
                    });
                    ([("content-type", "application/json")], body)
                },
            ),
        )
        .with_state(pages);
    serve(app).await
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

// ---- the daemon ----

struct Daemon {
    child: Child,
    url: String,
    started_ms: f64,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    async fn start(db_url: &str, slack: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("bench.toml");
        // Slack pacing and storm control opened up, as the side-by-side
        // harness does, and up to 64 messages to the channel at once (as
        // the flow posts them, in no order): every bad rating is posted at
        // once.
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{db_url}\"\n\
                 [log]\nlevel = \"warn\"\n\
                 [slack]\nbot_token = \"xoxb-bench\"\ndefault_channel = \"#csat\"\napi_base_url = \"{slack}/api\"\nmax_per_minute = 1000000\n\
                 [alerts]\nchannel_interval = \"1ms\"\nchannel_burst = 100000\nchannel_in_flight = 64\n[alerts.storm]\nthreshold = 0\n\
                 [[sources]]\nname = \"zendesk\"\nkind = \"zendesk\"\nsecret = \"{SECRET}\"\n"
            ),
        )
        .unwrap();
        let started = Instant::now();
        let child = Command::new(daemon_binary())
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{url}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the daemon did not start"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Daemon {
            child,
            url,
            started_ms: started.elapsed().as_secs_f64() * 1000.0,
            _dir: dir,
        }
    }

    /// (VmRSS, VmHWM) in MiB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

// ---- load ----

/// Posts `requests` (already signed) over `connections` keep-alive
/// connections as fast as they are answered; each must be 200. Returns the
/// elapsed time and when each ticket was answered.
async fn burst(
    url: &str,
    requests: Vec<(u64, Signed)>,
    connections: usize,
) -> (Duration, HashMap<u64, Instant>) {
    let queue = Arc::new(Mutex::new(requests));
    let answered = Arc::new(Mutex::new(HashMap::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (queue, answered) = (queue.clone(), answered.clone());
            // One client per worker: one keep-alive connection each.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let url = format!("{url}/webhooks/zendesk");
            tokio::spawn(async move {
                loop {
                    let Some((ticket, (body, signature, ts))) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let status = client
                        .post(&url)
                        .header("X-Zendesk-Webhook-Signature", signature)
                        .header("X-Zendesk-Webhook-Signature-Timestamp", ts)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16());
                    assert_eq!(status.ok(), Some(200), "every webhook must be answered 200");
                    answered.lock().unwrap().insert(ticket, Instant::now());
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let answered = std::mem::take(&mut *answered.lock().unwrap());
    (elapsed, answered)
}

/// Posts `count` webhooks at `rate` per second; when each was sent.
async fn fixed_rate(url: &str, first: u64, count: u64, rate: u64) -> HashMap<u64, Instant> {
    let client = reqwest::Client::new();
    let sent = Arc::new(Mutex::new(HashMap::new()));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut tasks = Vec::new();
    for ticket in first..first + count {
        tick.tick().await;
        let (client, sent, url) = (
            client.clone(),
            sent.clone(),
            format!("{url}/webhooks/zendesk"),
        );
        tasks.push(tokio::spawn(async move {
            let (body, signature, ts) = signed(ticket);
            let at = Instant::now();
            let response = client
                .post(&url)
                .header("X-Zendesk-Webhook-Signature", signature)
                .header("X-Zendesk-Webhook-Signature-Timestamp", ts)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            sent.lock().unwrap().insert(ticket, at);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    std::mem::take(&mut *sent.lock().unwrap())
}

/// Waits until every bad ticket of `from` has reached Slack; latencies in ms
/// (post time minus the ticket's time in `from`), and the span of the posts.
async fn slack_latencies(posts: &Posts, from: &HashMap<u64, Instant>) -> (Vec<f64>, Duration) {
    let bad: Vec<u64> = from
        .keys()
        .copied()
        .filter(|t| t.is_multiple_of(3))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = {
            let posts = posts.lock().unwrap();
            bad.iter().filter(|t| posts.contains_key(t)).count()
        };
        if seen == bad.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {seen} of {} alerts reached Slack",
            bad.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let posts = posts.lock().unwrap();
    let mut latencies: Vec<f64> = bad
        .iter()
        .map(|t| posts[t].saturating_duration_since(from[t]).as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let times: Vec<Instant> = bad.iter().map(|t| posts[t]).collect();
    let span = times
        .iter()
        .max()
        .unwrap()
        .duration_since(*times.iter().min().unwrap());
    (latencies, span)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---- databases ----

enum Db {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, name: String },
}

impl Db {
    async fn create(postgres_admin: Option<&str>) -> Db {
        match postgres_admin {
            None => Db::Sqlite(tempfile::tempdir().unwrap()),
            Some(admin) => Db::Postgres {
                admin: admin.to_string(),
                name: format!("csatwatch_bench_{}", uuid::Uuid::new_v4().simple()),
            },
        }
    }

    fn url(&self, file: &str) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}/{file}.db", dir.path().display()),
            Db::Postgres { admin, name } => {
                let mut url = reqwest::Url::parse(admin).unwrap();
                url.set_path(&format!("/{name}_{file}"));
                url.to_string()
            }
        }
    }

    /// PostgreSQL: the per-`file` database, created empty.
    async fn prepare(&self, file: &str) {
        if let Db::Postgres { admin, name } = self {
            let pool = sqlx::PgPool::connect(admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name}_{file}"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }

    /// Drops every database this run created.
    async fn drop_all(self, files: &[&str]) {
        if let Db::Postgres { admin, name } = self {
            let pool = sqlx::PgPool::connect(&admin).await.unwrap();
            for db in files.iter().map(|f| format!("{name}_{f}")) {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                )))
                .execute(&pool)
                .await;
            }
            pool.close().await;
        }
    }
}

// ---- one run ----

#[derive(Debug, Default, Clone)]
struct Run {
    start_ms: f64,
    idle_mib: f64,
    peak_mib: f64,
    burst_per_s: f64,
    burst_alerts_per_s: f64,
    burst_p50: f64,
    burst_p99: f64,
    fixed_p50: f64,
    fixed_p99: f64,
    backfill_per_s: f64,
}

async fn one_run(postgres_admin: Option<&str>, burst_size: usize) -> Run {
    let db = Db::create(postgres_admin).await;
    db.prepare("serve").await;
    db.prepare("backfill").await;
    let (slack, posts) = mock_slack().await;
    let daemon = Daemon::start(&db.url("serve"), &slack).await;
    let mut run = Run {
        start_ms: daemon.started_ms,
        ..Run::default()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    run.idle_mib = daemon.rss().0;

    // Fixed rate: webhook → Slack.
    let sent = fixed_rate(
        &daemon.url,
        1_000_000,
        FIXED_RATE * FIXED_SECONDS,
        FIXED_RATE,
    )
    .await;
    let (fixed, _) = slack_latencies(&posts, &sent).await;
    (run.fixed_p50, run.fixed_p99) = (pct(&fixed, 0.5), pct(&fixed, 0.99));

    // 64 connections: webhooks/s, and rating → Slack during the burst.
    let requests: Vec<_> = (2_000_000..2_000_000 + burst_size as u64)
        .map(|t| (t, signed(t)))
        .collect();
    let (elapsed, answered) = burst(&daemon.url, requests, CONNECTIONS).await;
    run.burst_per_s = burst_size as f64 / elapsed.as_secs_f64();
    let (during, span) = slack_latencies(&posts, &answered).await;
    (run.burst_p50, run.burst_p99) = (pct(&during, 0.5), pct(&during, 0.99));
    run.burst_alerts_per_s = during.len() as f64 / span.as_secs_f64().max(1e-3);
    run.peak_mib = daemon.rss().1;
    daemon.stop();

    // Backfill from the mock API.
    let api = mock_zendesk().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backfill.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[log]\nlevel = \"warn\"\n\
             [[sources]]\nname = \"zd\"\nkind = \"zendesk\"\nsecret = \"unused\"\npoll_requests_per_minute = 1000000\n\
             [sources.api]\nbase_url = \"{api}\"\nemail = \"ops@acme.example\"\ntoken = \"zd-api-token\"\n",
            db.url("backfill")
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let status = Command::new(daemon_binary())
            .args(["--config", config.to_str().unwrap()])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "csatwatch {args:?}: {status}");
    };
    cli(&["migrate"]);
    let started = Instant::now();
    tokio::task::block_in_place(|| cli(&["backfill", "--source", "zd", "--since", "2020-01-01"]));
    run.backfill_per_s = BACKFILL as f64 / started.elapsed().as_secs_f64();

    db.drop_all(&["serve", "backfill"]).await;
    run
}

fn median(runs: &[Run], field: impl Fn(&Run) -> f64) -> (f64, f64, f64) {
    let mut v: Vec<f64> = runs.iter().map(field).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let burst_size = env_usize("BENCH_BURST", 20_000);
    let admin = std::env::var("TEST_DATABASE_URL").ok();
    let mut backends = vec![("sqlite", None)];
    if let Some(admin) = admin.as_deref() {
        backends.push(("postgres", Some(admin)));
    }
    // BENCH_BACKENDS=postgres (or sqlite): one backend only.
    if let Ok(only) = std::env::var("BENCH_BACKENDS") {
        backends.retain(|(name, _)| only.split(',').any(|o| o.trim() == *name));
    }
    println!("daemon: {}", daemon_binary());
    let mut table = Vec::new();
    for (name, admin) in backends {
        let mut results = Vec::new();
        for i in 0..runs {
            let run = one_run(admin, burst_size).await;
            eprintln!("{name} run {}: {run:?}", i + 1);
            results.push(run);
        }
        table.push((name, results));
    }
    println!(
        "\ningest bench: medians of {runs} run(s) [min – max]; {burst_size} webhooks at {CONNECTIONS} connections, \
         {} at {FIXED_RATE}/s, backfill of {BACKFILL}; a third of the ratings bad",
        FIXED_RATE * FIXED_SECONDS
    );
    type Row = (&'static str, fn(&Run) -> f64, &'static str);
    let rows: [Row; 10] = [
        (
            "signed webhooks/s, 64 connections",
            |r| r.burst_per_s,
            "{:.0}",
        ),
        (
            "rating → Slack p50 during the burst, ms",
            |r| r.burst_p50,
            "{:.0}",
        ),
        (
            "rating → Slack p99 during the burst, ms",
            |r| r.burst_p99,
            "{:.0}",
        ),
        (
            "alerts posted/s during the burst",
            |r| r.burst_alerts_per_s,
            "{:.0}",
        ),
        ("webhook → Slack p50 at 200/s, ms", |r| r.fixed_p50, "{:.1}"),
        ("webhook → Slack p99 at 200/s, ms", |r| r.fixed_p99, "{:.1}"),
        ("backfill ratings/s", |r| r.backfill_per_s, "{:.0}"),
        ("start → first 200 (readyz), ms", |r| r.start_ms, "{:.0}"),
        ("idle RSS, MiB", |r| r.idle_mib, "{:.1}"),
        ("peak RSS, MiB", |r| r.peak_mib, "{:.1}"),
    ];
    print!("{:<42}", "");
    for (name, _) in &table {
        print!(" {name:>28}");
    }
    println!();
    for (label, field, format) in rows {
        print!("{label:<42}");
        for (_, results) in &table {
            let (m, lo, hi) = median(results, field);
            let cell = if format == "{:.1}" {
                format!("{m:.1} [{lo:.1} – {hi:.1}]")
            } else {
                format!("{m:.0} [{lo:.0} – {hi:.0}]")
            };
            print!(" {cell:>28}");
        }
        println!();
    }
}
