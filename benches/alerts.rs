//! Alert drain: how fast a waiting outbox leaves for a Slack that answers
//! at once, with pacing and storm control opened up (as the side-by-side
//! harness runs it). 1,500 negatives are recorded through the real webhook
//! path, then one dispatcher flush is timed: alerts per second, for one
//! message in flight per channel (the default, in order) and for 8.
//! SQLite, and PostgreSQL when TEST_DATABASE_URL is set (its databases are
//! dropped afterwards). Prints medians of 3 runs.
//!
//!   cargo bench --bench alerts
//!   TEST_DATABASE_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench alerts

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use csatwatch::app::App;
use csatwatch::clock::{Clock, SystemClock};
use csatwatch::settings::Settings;
use tokio_util::sync::CancellationToken;

const ALERTS: usize = 1500;
const RUNS: usize = 3;
const SECRET: &str = "bench-secret";

fn settings(db_url: &str, slack_url: &str, in_flight: u32) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{db_url}\"\n\
             [slack]\nbot_token = \"xoxb-bench\"\ndefault_channel = \"#csat\"\napi_base_url = \"{slack_url}/api\"\nmax_per_minute = 1000000\n\
             [alerts]\nchannel_interval = \"1ms\"\nchannel_burst = 100000\nchannel_in_flight = {in_flight}\n\
             [alerts.storm]\nthreshold = 0\n\
             [[sources]]\nname = \"zendesk\"\nkind = \"zendesk\"\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    Settings::load_with_env(Some(&path), std::iter::empty())
        .unwrap()
        .validate()
        .unwrap()
}

fn body(run: usize, i: usize) -> Vec<u8> {
    format!(
        r#"{{"csatwatch":1,"ticket":{{"id":"{run}-{i}"}},"satisfaction":{{"current_rating":"bad","current_comment":"bench"}},"updated_at":""}}"#
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

/// A Slack that answers every `chat.postMessage` at once.
async fn instant_slack() -> String {
    let app = axum::Router::new().route(
        "/api/chat.postMessage",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"ok": true, "channel": "C0CSAT001", "ts": "1.1"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// One run: record the negatives, then time the flush. Alerts per second.
async fn one_run(db_url: &str, slack: &str, in_flight: u32, run: usize) -> f64 {
    let app = App::build_with_clock(
        settings(db_url, slack, in_flight),
        Arc::new(SystemClock) as Arc<dyn Clock>,
    )
    .await
    .unwrap();
    let listener = app.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app.clone().serve_with(listener, cancel.clone(), false));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/webhooks/zendesk");
    for chunk in (0..ALERTS).collect::<Vec<_>>().chunks(16) {
        let posts = chunk.iter().map(|&i| {
            let body = body(run, i);
            let (signature, ts) = sign(&body);
            client
                .post(&url)
                .header("X-Zendesk-Webhook-Signature", signature)
                .header("X-Zendesk-Webhook-Signature-Timestamp", ts)
                .header("content-type", "application/json")
                .body(body)
                .send()
        });
        for response in futures::future::join_all(posts).await {
            assert_eq!(response.unwrap().status(), 200);
        }
    }
    let started = Instant::now();
    let report = app.flush_alerts().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.sent, ALERTS, "{report:?}");
    cancel.cancel();
    server.await.unwrap().unwrap();
    ALERTS as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let slack = instant_slack().await;
    let admin = std::env::var("TEST_DATABASE_URL").ok();
    let mut backends = vec!["sqlite"];
    if admin.is_some() {
        backends.push("postgres");
    }
    println!("alert drain, {ALERTS} waiting alerts, pacing opened, medians of {RUNS}");
    println!("{:<10} {:>10} {:>12}", "backend", "in flight", "alerts/s");
    for backend in backends {
        for in_flight in [1, 8] {
            let mut rates = Vec::new();
            for run in 0..RUNS {
                let dir = tempfile::tempdir().unwrap();
                let (url, drop_name) = match (backend, &admin) {
                    ("postgres", Some(admin)) => {
                        let pool = sqlx::PgPool::connect(admin).await.unwrap();
                        let name =
                            format!("csatwatch_test_bench_{}", uuid::Uuid::new_v4().simple());
                        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                            .execute(&pool)
                            .await
                            .unwrap();
                        let mut url = reqwest::Url::parse(admin).unwrap();
                        url.set_path(&format!("/{name}"));
                        (url.to_string(), Some((pool, name)))
                    }
                    _ => (format!("sqlite://{}/bench.db", dir.path().display()), None),
                };
                rates.push(one_run(&url, &slack, in_flight, run).await);
                if let Some((pool, name)) = drop_name {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                }
            }
            println!("{backend:<10} {in_flight:>10} {:>12.0}", median(rates));
        }
    }
}
