//! The harness of the helpdesks whose webhooks often only name a rating
//! (Freshdesk, Gorgias, HubSpot): the real app, a real database per
//! backend, and wiremock servers for Slack and for the helpdesk's API. Each
//! helpdesk's scenarios are in its own file.

use csatwatch::clock::ManualClock;
use csatwatch::sources::hubspot::signature::sign as hubspot_sign;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// 2026-11-23T14:05:00Z, a minute after the fixtures' ratings.
pub const NOW_MS: i64 = 1_795_442_700_000;
pub const FRESHDESK_TOKEN: &str = "freshdesk-it-token";
pub const GORGIAS_TOKEN: &str = "gorgias-it-token";
pub const HUBSPOT_SECRET: &str = "hubspot-it-client-secret";
pub const PUBLIC_URL: &str = "https://csat.example.com";

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/{path}")).unwrap()
}

pub fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

/// The three sources, their APIs at `api` (one wiremock for all three).
pub fn helpdesk_toml(api: &str) -> String {
    format!(
        r#"
[[sources]]
name = "freshdesk"
kind = "freshdesk"
secret = "{FRESHDESK_TOKEN}"
[sources.api]
base_url = "{api}"
api_key = "fd-api-key"
request_timeout = "1s"

[[sources]]
name = "gorgias"
kind = "gorgias"
secret = "{GORGIAS_TOKEN}"
[sources.api]
base_url = "{api}"
email = "ops@shop.example"
api_key = "gorgias-api-key"
request_timeout = "1s"

[[sources]]
name = "hubspot"
kind = "hubspot"
secret = "{HUBSPOT_SECRET}"
public_url = "{PUBLIC_URL}"
[sources.api]
base_url = "{api}"
token = "pat-na1-it"
request_timeout = "1s"
"#
    )
}

pub struct Rig {
    pub app: TestApp,
    pub slack: wiremock::MockServer,
    pub api: MockServer,
    pub _db: TestDatabase,
}

pub async fn rig(backend: Backend) -> Rig {
    let db = TestDatabase::new(backend).await;
    let slack = slack_ok().await;
    let api = MockServer::start().await;
    let settings = settings(&db.url, Some(&slack.uri()), &helpdesk_toml(&api.uri()));
    let app = TestApp::spawn(settings, ManualClock::new(NOW_MS)).await;
    Rig {
        app,
        slack,
        api,
        _db: db,
    }
}

impl Rig {
    pub async fn token_post(&self, source: &str, token: &str, body: &[u8]) -> (u16, Value) {
        let headers = vec![("X-Csatwatch-Token".to_string(), token.to_string())];
        self.app.post(source, &headers, body).await
    }

    pub async fn hubspot_post(&self, body: &[u8], timestamp_ms: i64, secret: &str) -> (u16, Value) {
        let ts = timestamp_ms.to_string();
        let uri = format!("{PUBLIC_URL}/webhooks/hubspot");
        let headers = vec![
            (
                "X-HubSpot-Signature-v3".to_string(),
                hubspot_sign(secret.as_bytes(), "POST", &uri, body, &ts),
            ),
            ("X-HubSpot-Request-Timestamp".to_string(), ts),
        ];
        self.app.post("hubspot", &headers, body).await
    }

    /// Delivers due alerts; returns how many Slack has received in all.
    pub async fn alerts(&self) -> usize {
        self.app.app.flush_alerts().await.unwrap();
        slack_posts(&self.slack).await.len()
    }

    pub async fn answer(&self, api_path: &str, response: ResponseTemplate) {
        self.api.reset().await;
        Mock::given(method("GET"))
            .and(path(api_path))
            .respond_with(response)
            .mount(&self.api)
            .await;
    }

    pub async fn history_len(&self, source: &str, conversation: &str, key: &str) -> usize {
        let store = &self.app.app.store;
        let rating = store
            .rating(source, conversation, key)
            .await
            .unwrap()
            .unwrap();
        store.rating_history(rating.id).await.unwrap().len()
    }
}

pub fn ok_json(path: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture_json(path))
}
