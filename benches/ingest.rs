//! Ingest throughput: signed Zendesk webhooks through the real app (HTTP,
//! signature, parse, one transaction, outbox), on SQLite and, when
//! TEST_DATABASE_URL is set, PostgreSQL. Prints a table of medians.
//!
//!   cargo bench --bench ingest            # SQLite only
//!   TEST_DATABASE_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench ingest

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use csatwatch::app::App;
use csatwatch::clock::{Clock, SystemClock};
use csatwatch::settings::Settings;
use tokio_util::sync::CancellationToken;

const DELIVERIES: usize = 2000;
const CONCURRENCY: usize = 16;
const RUNS: usize = 5;
const SECRET: &str = "bench-secret";

fn settings(db_url: &str) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{db_url}\"\nmax_connections = 5\n[alerts]\nchannel_interval = \"0s\"\n[[sources]]\nname = \"zendesk\"\nkind = \"zendesk\"\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    Settings::load_with_env(Some(&path), std::iter::empty())
        .unwrap()
        .validate()
        .unwrap()
}

fn body(run: usize, i: usize) -> Vec<u8> {
    let rating = if i.is_multiple_of(3) { "bad" } else { "good" };
    format!(
        r#"{{"csatwatch":1,"ticket":{{"id":"{run}-{i}","link":"https://x.zendesk.com/agent/tickets/{i}","title":"t","tags":"a b","brand":"B","group":"G"}},"assignee":{{"name":"Sam","email":"s@x"}},"requester":{{"name":"Jo","email":"j@x","organization":"O"}},"satisfaction":{{"current_rating":"{rating}","current_comment":"bench"}},"updated_at":""}}"#
    )
    .into_bytes()
}

fn sign(body: &[u8]) -> (String, String) {
    let ts = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mac = csatwatch::sources::signature::hmac_sha256(SECRET.as_bytes(), &[ts.as_bytes(), body]);
    (base64::engine::general_purpose::STANDARD.encode(mac), ts)
}

async fn postgres_database(admin: &str) -> String {
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("TEST_DATABASE_URL answers");
    let name = format!("csatwatch_test_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    let mut url = reqwest::Url::parse(admin).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

struct RunResult {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_connections_seen: i64,
}

async fn one_run(db_url: &str, run: usize, admin: Option<&str>) -> RunResult {
    let app = App::build_with_clock(settings(db_url), Arc::new(SystemClock) as Arc<dyn Clock>)
        .await
        .unwrap();
    let listener = app.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app.clone().serve(listener, cancel.clone()));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/webhooks/zendesk");
    let bodies: Vec<Vec<u8>> = (0..DELIVERIES).map(|i| body(run, i)).collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let latencies = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(DELIVERIES)));
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, next, bodies, latencies) = (
            client.clone(),
            url.clone(),
            next.clone(),
            bodies.clone(),
            latencies.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= bodies.len() {
                    break;
                }
                let (signature, ts) = sign(&bodies[i]);
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("X-Zendesk-Webhook-Signature", signature)
                    .header("X-Zendesk-Webhook-Signature-Timestamp", ts)
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                latencies.lock().await.push(t.elapsed());
            }
        }));
    }
    let seen = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let watcher = admin.map(|admin| {
        let seen = seen.clone();
        let admin = admin.to_string();
        let name = reqwest::Url::parse(db_url)
            .unwrap()
            .path()
            .trim_start_matches('/')
            .to_string();
        tokio::spawn(async move {
            let pool = sqlx::PgPool::connect(&admin).await.unwrap();
            for _ in 0..500 {
                let n: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1")
                        .bind(&name)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                seen.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    if let Some(w) = watcher {
        w.abort();
    }
    let max_connections_seen = seen.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        app.store.count_ratings().await.unwrap() as usize,
        DELIVERIES
    );
    cancel.cancel();
    server.await.unwrap().unwrap();
    let mut l = latencies.lock().await.clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    RunResult {
        per_second: DELIVERIES as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_connections_seen,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let admin = std::env::var("TEST_DATABASE_URL").ok();
    let mut rows = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![("sqlite", None)];
    if let Some(admin) = admin.as_deref() {
        backends.push(("postgres", Some(admin)));
    }
    for (name, admin) in backends {
        let mut results = Vec::new();
        for run in 0..RUNS {
            let url = match admin {
                None => format!("sqlite://{}/bench-{run}.db", dir.path().display()),
                Some(admin) => postgres_database(admin).await,
            };
            results.push(one_run(&url, run, admin).await);
        }
        rows.push((
            name,
            median(results.iter().map(|r| r.per_second).collect()),
            median(results.iter().map(|r| r.p50_ms).collect()),
            median(results.iter().map(|r| r.p99_ms).collect()),
            results
                .iter()
                .map(|r| r.max_connections_seen)
                .max()
                .unwrap_or(0),
        ));
    }
    println!(
        "\ningest: {DELIVERIES} signed Zendesk webhooks per run, {CONCURRENCY} in flight, {RUNS} runs, medians"
    );
    println!(
        "{:<10} {:>14} {:>10} {:>10} {:>16}",
        "backend", "ratings/s", "p50 ms", "p99 ms", "max connections"
    );
    for (name, rps, p50, p99, conns) in &rows {
        let conns = if *name == "postgres" {
            conns.to_string()
        } else {
            "-".into()
        };
        println!("{name:<10} {rps:>14.0} {p50:>10.2} {p99:>10.2} {conns:>16}");
    }
    if rows.len() == 2 {
        println!(
            "postgres/sqlite throughput ratio: {:.2}",
            rows[1].1 / rows[0].1
        );
    }
}
