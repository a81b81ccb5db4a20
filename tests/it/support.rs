//! The test harness: spawns the real app on port 0 with a temporary SQLite
//! file (or a fresh PostgreSQL database when `TEST_DATABASE_URL` is set),
//! a manual clock, and a wiremock server standing in for Slack.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use csatwatch::app::App;
use csatwatch::clock::{Clock, ManualClock};
use csatwatch::settings::Settings;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const ZENDESK_SECRET: &str = "zendesk-test-secret";
pub const GENERIC_SECRET: &str = "generic-test-secret";
pub const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when `TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        all.push(Backend::Postgres);
    }
    all
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A database for one test: a file in a temp folder, or a new PostgreSQL
/// database (dropped on a best-effort basis by name prefix in CI runs).
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/csatwatch.db", dir.path().display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                let name = format!("csatwatch_test_{}", uuid::Uuid::new_v4().simple());
                let conn = sqlx_connect(&admin).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&conn)
                    .await
                    .expect(
                        "CREATE DATABASE (is TEST_DATABASE_URL a role that may create databases?)",
                    );
                conn.close().await;
                let mut url = reqwest::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                TestDatabase {
                    url: url.to_string(),
                    _dir: None,
                }
            }
        }
    }
}

async fn sqlx_connect(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at TEST_DATABASE_URL does not answer: {e}"))
}

/// Settings for a test: a zendesk and two generic sources, Slack at `slack_url`.
pub fn settings(db_url: &str, slack_url: Option<&str>, extra_toml: &str) -> Settings {
    let slack = match slack_url {
        Some(url) => format!(
            "[slack]\nbot_token = \"xoxb-test-token\"\ndefault_channel = \"#csat\"\napi_base_url = \"{url}/api\"\nrequest_timeout = \"2s\"\n"
        ),
        None => String::new(),
    };
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536
[database]
url = "{db_url}"
{slack}
[alerts]
channel_interval = "10ms"
retry_initial = "1s"
retry_max = "1m"
claim_lease = "30s"
give_up_after = "1h"

[[sources]]
name = "zendesk"
kind = "zendesk"
secret = "{ZENDESK_SECRET}"

[[sources]]
name = "inhouse"
kind = "generic"
secret = "{GENERIC_SECRET}"
signature_header = "X-Signature"
signature_prefix = "sha256="
[sources.fields]
conversation_id = "/ticket/id"
score = "/rating/score"
comment = "/rating/comment"
agent = "/agent"
customer = "/customer"
url = "/url"
rated_at = "/rated_at"
updated_at = "/updated_at"

[[sources]]
name = "standard"
kind = "generic"
secret = "{STANDARD_SECRET}"
signature = "standard-webhooks"
scale = "nps"
[sources.fields]
conversation_id = "/conversation"
score = "/nps"
comment = "/comment"
{extra_toml}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.toml");
    std::fs::write(&path, toml).unwrap();
    Settings::load_with_env(Some(&path), std::iter::empty())
        .and_then(Settings::validate)
        .unwrap_or_else(|e| panic!("test settings: {e}"))
}

/// A running app.
pub struct TestApp {
    pub app: App,
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    cancel: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Builds and serves the app for `settings` with a manual clock; alerts
    /// go out only when the test calls `flush_alerts`.
    pub async fn spawn(settings: Settings, clock: ManualClock) -> TestApp {
        Self::spawn_with(settings, clock, false).await
    }

    /// As `spawn`, with the background dispatcher running as in production.
    pub async fn spawn_with(settings: Settings, clock: ManualClock, background: bool) -> TestApp {
        install_crypto();
        let app = App::build_with_clock(settings, Arc::new(clock.clone()) as Arc<dyn Clock>)
            .await
            .expect("the app builds");
        let listener = app.bind().await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(app.clone().serve_with(listener, cancel.clone(), background));
        TestApp {
            app,
            addr,
            clock,
            client: reqwest::Client::new(),
            cancel,
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Posts raw bytes with headers to `/webhooks/{source}`.
    pub async fn post(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url(&format!("/webhooks/{source}")))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts a correctly signed Zendesk delivery, signed "now".
    pub async fn post_zendesk(&self, body: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(body).unwrap();
        let headers = zendesk_headers(ZENDESK_SECRET, self.clock.now_ms(), &body);
        self.post("zendesk", &headers, &body).await
    }

    /// Waits until the running dispatcher has written its first heartbeat
    /// and opened its fast lane (tests of the lane post only then).
    pub async fn wait_for_lane(&self) {
        let lane = self.app.pipeline.lane();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while lane.claim(self.clock.now_ms()).is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the dispatcher never opened its lane"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Stops the app as SIGTERM would, and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

/// The Zendesk signature headers for `body` at `now_ms`.
pub fn zendesk_headers(secret: &str, now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    let ts = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mac = csatwatch::sources::signature::hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), body]);
    vec![
        (
            "X-Zendesk-Webhook-Signature".into(),
            base64::engine::general_purpose::STANDARD.encode(mac),
        ),
        ("X-Zendesk-Webhook-Signature-Timestamp".into(), ts),
    ]
}

/// The generic source's HMAC header for `body`.
pub fn generic_headers(body: &[u8]) -> Vec<(String, String)> {
    let mac = csatwatch::sources::signature::hmac_sha256(GENERIC_SECRET.as_bytes(), &[body]);
    vec![("X-Signature".into(), format!("sha256={}", hex::encode(mac)))]
}

/// Standard Webhooks headers for `body`.
pub fn standard_headers(id: &str, now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    let secret = SecretString::from(STANDARD_SECRET.to_string());
    let ts = now_ms / 1000;
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        (
            "webhook-signature".into(),
            csatwatch::sources::signature::sign_standard_webhooks(&secret, id, ts, body),
        ),
    ]
}

/// A body shaped like docs/helpdesks/zendesk.md's trigger template, rendered.
pub fn zendesk_body(ticket: u64, rating: &str, comment: &str) -> Value {
    json!({
        "csatwatch": 1,
        "ticket": {
            "id": ticket.to_string(),
            "link": format!("https://acme.zendesk.com/agent/tickets/{ticket}"),
            "title": "Refund not received",
            "tags": "billing vip",
            "brand": "Acme",
            "group": "Billing"
        },
        "assignee": {"name": "Sam Agent", "email": "sam@acme.example"},
        "requester": {"name": "Jane Customer", "email": "jane@customer.example", "organization": "Customer Ltd"},
        "satisfaction": {"current_rating": rating, "current_comment": comment},
        "updated_at": ""
    })
}

/// A wiremock Slack whose chat.postMessage answers `ok` with a fresh ts.
pub async fn slack_ok() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "channel": "C0CSAT", "ts": "1700000000.000100"
        })))
        .mount(&server)
        .await;
    server
}

/// The chat.postMessage bodies Slack received.
pub async fn slack_posts(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/api/chat.postMessage")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Runs `sql` (one statement) on the test database at `url`, beside the app:
/// for the tests that must set up what only an older version could have
/// written.
pub async fn execute_sql(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx_connect(url).await;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}
