//! Reports over 1,000,000 ratings: seeds a year of ratings (multi-row
//! inserts), then times `GET /api/v1/report` for the usual questions and a
//! CSV export of every rating through the API, watching the process's
//! resident memory while it streams. SQLite always; PostgreSQL too when
//! TEST_DATABASE_URL is set. Prints medians.
//!
//!   cargo bench --bench reports
//!   TEST_DATABASE_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench reports
//!   RATINGS=100000 cargo bench --bench reports     # a smaller run

use std::time::{Duration, Instant};

use csatwatch::app::App;
use csatwatch::settings::Settings;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

const RUNS: usize = 5;
const TOKEN: &str = "bench-token-0123456789abcdef";
const BATCH: usize = 500;
/// 2026-12-01T00:00:00Z: the seeded year ends here.
const END_MS: i64 = 1_796_083_200_000;
const DAY_MS: i64 = 86_400_000;

fn settings(db_url: &str) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"120s\"\n[database]\nurl = \"{db_url}\"\nmax_connections = 5\n[reports]\ntimezone = \"Europe/Berlin\"\n[[api.tokens]]\nname = \"bench\"\ntoken = \"{TOKEN}\"\n"
        ),
    )
    .unwrap();
    Settings::load_with_env(Some(&path), std::iter::empty())
        .unwrap()
        .validate()
        .unwrap()
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
    pool.close().await;
    let mut url = reqwest::Url::parse(admin).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// One row of literal SQL values for rating `i` (all generated here).
fn row(i: usize, n: usize) -> String {
    // A cheap deterministic spread.
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let rated_at = END_MS - 365 * DAY_MS + (i as i64 * 365 * DAY_MS / n as i64);
    let team = h % 20;
    let agent = (h >> 8) % 200;
    let (survey, scale, score, sentiment) = match h % 10 {
        0 | 1 => {
            let s = ((h >> 16) % 11) as i64;
            let sent = if s >= 9 {
                "positive"
            } else if s >= 7 {
                "neutral"
            } else {
                "negative"
            };
            ("nps", "nps", s, sent)
        }
        2 => {
            let s = 1 + ((h >> 16) % 7) as i64;
            let sent = if s >= 5 {
                "positive"
            } else if s >= 4 {
                "neutral"
            } else {
                "negative"
            };
            ("ces", "ces", s, sent)
        }
        _ => {
            let s = 1 + ((h >> 16) % 5) as i64;
            let s = if (h >> 24).is_multiple_of(3) { 5 } else { s };
            let sent = if s >= 4 {
                "positive"
            } else if s == 3 {
                "neutral"
            } else {
                "negative"
            };
            ("csat", "five_point", s, sent)
        }
    };
    let acked = if sentiment == "negative" && (h >> 30).is_multiple_of(2) {
        format!("{}", rated_at + 60_000 * (5 + ((h >> 32) % 120) as i64))
    } else {
        "NULL".into()
    };
    let followed = if acked != "NULL" && (h >> 33).is_multiple_of(2) {
        format!("{}", rated_at + 60_000 * (60 + ((h >> 34) % 600) as i64))
    } else {
        "NULL".into()
    };
    format!(
        "('zendesk', 'c{i}', '', '{survey}', '{scale}', {score}, 0.5, '{sentiment}', 'Agent {agent}', 'Team {team}', 'Customer {i}', '[\"tag{}\"]', 'https://x.zendesk.com/agent/tickets/{i}', {rated_at}, {rated_at}, {rated_at}, {rated_at}, 1, {acked}, {followed})",
        h % 5
    )
}

/// Runs one statement on either backend's pool.
macro_rules! on_any {
    ($url:expr, |$pool:ident| $body:expr) => {
        if $url.starts_with("sqlite:") {
            let $pool = sqlx::SqlitePool::connect($url).await.unwrap();
            $body;
            $pool.close().await;
        } else {
            let $pool = sqlx::PgPool::connect($url).await.unwrap();
            $body;
            $pool.close().await;
        }
    };
}

async fn seed(url: &str, n: usize) -> Duration {
    let started = Instant::now();
    let store = csatwatch::store::Store::connect_url(
        &SecretString::from(url.to_string()),
        2,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    on_any!(url, |pool| {
        let mut i = 0;
        while i < n {
            // Several batches per transaction keep commits few.
            let mut tx = pool.begin().await.unwrap();
            for _ in 0..20 {
                if i >= n {
                    break;
                }
                let end = (i + BATCH).min(n);
                let values: Vec<String> = (i..end).map(|k| row(k, n)).collect();
                let sql = format!(
                    "INSERT INTO ratings (source, conversation_id, rating_key, survey, scale, score, normalised,
                        sentiment, agent, team, customer, tags, url, rated_at, updated_at, first_seen_at,
                        last_seen_at, revision, acked_at, followed_up_at) VALUES {}",
                    values.join(", ")
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                i = end;
            }
            tx.commit().await.unwrap();
        }
        if !url.starts_with("sqlite:") {
            // What autovacuum does soon after a bulk load.
            sqlx::query("ANALYZE ratings").execute(&pool).await.unwrap();
        }
    });
    started.elapsed()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Where a year's report by team goes: each store read on its own.
async fn store_reads(store: &csatwatch::store::Store) -> Vec<(&'static str, f64)> {
    use csatwatch::reports::period::start_of_day_ms;
    use csatwatch::store::{GroupColumn, RatingFilter};
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let range = [(
        start_of_day_ms(jiff::civil::date(2025, 12, 1), &tz).unwrap(),
        start_of_day_ms(jiff::civil::date(2026, 12, 1), &tz).unwrap(),
    )];
    let filter = RatingFilter::default();
    let mut out = Vec::new();
    for label in ["score counts", "follow-up counts", "follow-up times"] {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let group = GroupColumn::Team;
            match label {
                "score counts" => drop(store.report_score_counts(&range, group, &filter).await),
                "follow-up counts" => {
                    drop(store.report_follow_up_counts(&range, group, &filter).await)
                }
                _ => drop(store.report_follow_up_times(&range, group, &filter).await),
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        out.push((label, median(times)));
    }
    out
}

struct Results {
    reads: Vec<(&'static str, f64)>,
    seed_s: f64,
    rollup_s: f64,
    rollup_rows: i64,
    reports: Vec<(&'static str, f64)>,
    export_s: f64,
    export_rows: usize,
    export_mib: f64,
    rss_growth_mib: f64,
}

async fn one_backend(url: &str, n: usize) -> Results {
    let seed_time = seed(url, n).await;
    // The seed wrote the ratings behind the rollup's back: build it as the
    // daemon's start-up does, and time that.
    let store = csatwatch::store::Store::connect_url(
        &SecretString::from(url.to_string()),
        2,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    store.drop_rollup().await.unwrap();
    let rebuilding = Instant::now();
    let built = store.ensure_rollup("Europe/Berlin").await.unwrap();
    let rollup_s = rebuilding.elapsed().as_secs_f64();
    let reads = store_reads(&store).await;
    store.close().await;
    let app = App::build(settings(url)).await.unwrap();
    let listener = app.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app.clone().serve_with(listener, cancel.clone(), false));
    let client = reqwest::Client::new();
    let queries: [(&'static str, &str); 9] = [
        (
            "30 days by week (default)",
            "since=2026-11-01&until=2026-12-01&by=week",
        ),
        (
            "365 days by month",
            "since=2025-12-01&until=2026-12-01&by=month",
        ),
        (
            "365 days by day",
            "since=2025-12-01&until=2026-12-01&by=day",
        ),
        (
            "365 days by team",
            "since=2025-12-01&until=2026-12-01&by=team",
        ),
        (
            "90 days by agent, one team",
            "since=2026-09-01&until=2026-12-01&by=agent&team=Team%203",
        ),
        (
            "365 days by agent",
            "since=2025-12-01&until=2026-12-01&by=agent",
        ),
        (
            "365 days by week, one agent",
            "since=2025-12-01&until=2026-12-01&by=week&agent=Agent%2017",
        ),
        (
            "30 days by day (raw: tag filter)",
            "since=2026-11-01&until=2026-12-01&by=day&tag=tag1",
        ),
        (
            "30 days by tag (raw)",
            "since=2026-11-01&until=2026-12-01&by=tag",
        ),
    ];
    let mut reports = Vec::new();
    for (label, q) in queries {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let response = client
                .get(format!("http://{addr}/api/v1/report?{q}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{label}");
            let _ = response.bytes().await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        reports.push((label, median(times)));
    }

    let before = rss_kib();
    let mut peak = before;
    let started = Instant::now();
    let mut response = client
        .get(format!("http://{addr}/api/v1/ratings?format=csv"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (mut bytes, mut lines, mut chunks) = (0usize, 0usize, 0usize);
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        chunks += 1;
        if chunks.is_multiple_of(64) {
            peak = peak.max(rss_kib());
        }
    }
    let export_s = started.elapsed().as_secs_f64();
    peak = peak.max(rss_kib());
    cancel.cancel();
    let _ = server.await;
    Results {
        reads,
        seed_s: seed_time.as_secs_f64(),
        rollup_s,
        rollup_rows: built.rows,
        reports,
        export_s,
        export_rows: lines.saturating_sub(1),
        export_mib: bytes as f64 / 1_048_576.0,
        rss_growth_mib: (peak.saturating_sub(before)) as f64 / 1024.0,
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::var("RATINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![(
        "sqlite",
        format!("sqlite://{}/bench.db", dir.path().display()),
    )];
    if let Ok(admin) = std::env::var("TEST_DATABASE_URL") {
        backends.push(("postgres", postgres_database(&admin).await));
    }
    for (name, url) in backends {
        let r = one_backend(&url, n).await;
        println!(
            "\nreports on {name}: {n} ratings over 365 days (seeded in {:.1} s), GET /api/v1/report, median of {RUNS}",
            r.seed_s
        );
        println!(
            "  report rollup rebuilt in {:.1} s ({} rows)",
            r.rollup_s, r.rollup_rows
        );
        for (label, ms) in &r.reports {
            println!("  {label:<34} {ms:>8.1} ms");
        }
        for (label, ms) in &r.reads {
            println!("  store read, 365 days by team: {label:<16} {ms:>8.1} ms");
        }
        println!(
            "  export csv: {} rows, {:.1} MiB in {:.1} s ({:.0} rows/s); process RSS grew {:.1} MiB while streaming",
            r.export_rows,
            r.export_mib,
            r.export_s,
            r.export_rows as f64 / r.export_s,
            r.rss_growth_mib
        );
    }
}
