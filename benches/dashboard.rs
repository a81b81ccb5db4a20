//! Dashboard server time with 1,000,000 ratings: each page requested through
//! the real router in process (auth, queries, template, body), on SQLite
//! and, when TEST_DATABASE_URL is set, PostgreSQL. Prints medians.
//!
//!   cargo bench --bench dashboard
//!   TEST_DATABASE_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench dashboard
//!
//! `DASHBOARD_BENCH_RATINGS` changes the count (default 1,000,000);
//! `DASHBOARD_BENCH_REPORTS=1` also times each report the overview asks for.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use csatwatch::app::App;
use csatwatch::clock::{Clock, SystemClock};
use csatwatch::settings::Settings;
use tower::ServiceExt as _;

const TOKEN: &str = "bench-token-0123456789abcdef";
/// Requests per page (the overview's are slower: fewer).
const RUNS: usize = 7;
const OVERVIEW_RUNS: usize = 3;
const YEAR_MS: i64 = 365 * 86_400_000;

fn settings(db_url: &str) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"600s\"\n[database]\nurl = \"{db_url}\"\nmax_connections = 5\n[[api.tokens]]\nname = \"bench\"\ntoken = \"{TOKEN}\"\n"
        ),
    )
    .unwrap();
    Settings::load_with_env(Some(&path), std::iter::empty())
        .unwrap()
        .validate()
        .unwrap()
}

/// The columns and values of rating `i`, the same text in both dialects:
/// a year of ratings, two in five negative, half of those acknowledged and
/// a third followed up, 20 teams, 200 agents, 3 sources.
fn rating_select(now: i64, count: i64) -> String {
    let step = YEAR_MS / count;
    format!(
        "SELECT 'source' || (i % 3), 'c' || i, 'k', 'csat', 'five_point', 1 + (i * 7) % 5,
                ((i * 7) % 5) / 4.0,
                CASE WHEN 1 + (i * 7) % 5 <= 2 THEN 'negative' WHEN 1 + (i * 7) % 5 = 3 THEN 'neutral' ELSE 'positive' END,
                CASE WHEN i % 4 = 0 THEN 'It took days to get an answer' END,
                'Agent ' || (i % 200), 'Team ' || (i % 20), 'Customer ' || i, '[]',
                'https://acme.zendesk.com/agent/tickets/' || i,
                {now} - i * {step}, {now} - i * {step}, {now} - i * {step}, {now} - i * {step}, 1,
                CASE WHEN i % 2 = 0 THEN 'Ann' END, CASE WHEN i % 2 = 0 THEN {now} - i * {step} + 3600000 END,
                CASE WHEN i % 3 = 0 THEN 'Fay' END, CASE WHEN i % 3 = 0 THEN {now} - i * {step} + 7200000 END"
    )
}

const COLUMNS: &str =
    "source, conversation_id, rating_key, survey, scale, score, normalised, sentiment,
    comment, agent, team, customer, tags, url, rated_at, updated_at, first_seen_at, last_seen_at,
    revision, acked_by_name, acked_at, followed_up_by_name, followed_up_at";

// Every rating gets its first history row; negatives get their alert post.
const HISTORY: &str = "INSERT INTO rating_history (rating_id, revision, score, sentiment, comment, updated_at, recorded_at, via)
    SELECT id, 1, score, sentiment, comment, updated_at, updated_at, 'webhook' FROM ratings";
const ALERTS: &str = "INSERT INTO alerts (rating_id, revision, channel, sentiment, kind, event_key, state, next_attempt_at, created_at, sent_at, slack_channel, slack_ts)
    SELECT id, 1, '#csat', sentiment, 'post', 'rev:1', 'sent', rated_at, rated_at, rated_at, 'C0CSAT', '1700000000.000100'
    FROM ratings WHERE sentiment = 'negative'";

async fn seed_sqlite(url: &str, now: i64, count: i64) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let sql = format!(
        "INSERT INTO ratings ({COLUMNS}) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) {} FROM n",
        rating_select(now, count)
    );
    for s in [sql.as_str(), HISTORY, ALERTS, "ANALYZE"] {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn seed_postgres(url: &str, now: i64, count: i64) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let sql = format!(
        "INSERT INTO ratings ({COLUMNS}) {} FROM generate_series(1::bigint, {count}::bigint) AS n(i)",
        rating_select(now, count)
    );
    for s in [sql.as_str(), HISTORY, ALERTS, "ANALYZE"] {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn postgres_database(admin: &str) -> (String, String) {
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("TEST_DATABASE_URL answers");
    let name = format!(
        "csatwatch_test_bench_dash_{}",
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    let mut url = reqwest::Url::parse(admin).unwrap();
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

/// Median and worst server time of `path`, in ms, and the body size.
async fn measure(app: &App, path: &str, runs: usize) -> (f64, f64, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let started = Instant::now();
        let response = app.router().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            eprintln!("{path}: {status}");
        }
        size = body.len();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[times.len() / 2], times[times.len() - 1], size)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let count: i64 = std::env::var("DASHBOARD_BENCH_RATINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let admin = std::env::var("TEST_DATABASE_URL").ok();
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![("sqlite", None)];
    if let Some(admin) = admin.as_deref() {
        backends.push(("postgres", Some(admin)));
    }
    println!(
        "\ndashboard: {count} ratings over a year, server time per page, {RUNS} requests each"
    );
    println!(
        "{:<10} {:<58} {:>10} {:>10} {:>10}",
        "backend", "page", "median ms", "max ms", "bytes"
    );
    for (backend, admin) in backends {
        let (url, pg_name) = match admin {
            None => (
                format!("sqlite://{}/bench-dashboard.db", dir.path().display()),
                None,
            ),
            Some(admin) => {
                let (url, name) = postgres_database(admin).await;
                (url, Some(name))
            }
        };
        let app = App::build_with_clock(settings(&url), Arc::new(SystemClock) as Arc<dyn Clock>)
            .await
            .unwrap();
        let now = SystemClock.now_ms();
        let seeding = Instant::now();
        match admin {
            None => seed_sqlite(&url, now, count).await,
            Some(_) => seed_postgres(&url, now, count).await,
        }
        eprintln!(
            "{backend}: seeded {count} ratings in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        // The seed wrote the ratings behind the rollup's back (the daemon's
        // writes keep it): rebuild it as a start-up would.
        app.store.drop_rollup().await.unwrap();
        let rebuilding = Instant::now();
        let built = app.store.ensure_rollup("UTC").await.unwrap();
        println!(
            "{backend:<10} {:<58} {:>10.1}",
            format!("report rollup rebuilt ({} rows)", built.rows),
            rebuilding.elapsed().as_secs_f64() * 1000.0
        );
        let year_ago = time::OffsetDateTime::now_utc().date() - time::Duration::days(364);
        let since_year = format!("since={year_ago}");
        let pages = [
            "/dashboard/negatives".to_string(),
            "/dashboard/negatives?state=new&team=Team+3".to_string(),
            format!("/dashboard/negatives?{since_year}"),
            "/dashboard/negatives?format=csv".to_string(),
            "/dashboard/ratings/4".to_string(),
            "/dashboard".to_string(),
            "/dashboard?team=Team+3&agent=Agent+23".to_string(),
        ];
        // Where the overview's time goes: each report it asks for.
        let diagnose = std::env::var("DASHBOARD_BENCH_REPORTS").is_ok();
        let tz = jiff::tz::TimeZone::UTC;
        for (label, days, by) in [
            (
                "report by week, 12 weeks",
                84,
                csatwatch::reports::GroupBy::Week,
            ),
            (
                "report by team, 30 days",
                30,
                csatwatch::reports::GroupBy::Team,
            ),
            (
                "report by agent, 30 days",
                30,
                csatwatch::reports::GroupBy::Agent,
            ),
        ] {
            if !diagnose {
                break;
            }
            let req = csatwatch::reports::ReportRequest::last_days(now, tz.clone(), days, by);
            let started = Instant::now();
            csatwatch::reports::compute_report(&app.store, &req)
                .await
                .unwrap();
            println!(
                "{backend:<10} {label:<58} {:>10.1}",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        for page in &pages {
            let runs = if page.starts_with("/dashboard?") || page == "/dashboard" {
                OVERVIEW_RUNS
            } else {
                RUNS
            };
            let (median, max, bytes) = measure(&app, page, runs).await;
            println!("{backend:<10} {page:<58} {median:>10.1} {max:>10.1} {bytes:>10}");
        }
        app.store.close().await;
        if let (Some(admin), Some(name)) = (admin, pg_name) {
            let pool = sqlx::PgPool::connect(admin).await.unwrap();
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&pool)
            .await;
        }
    }
}
