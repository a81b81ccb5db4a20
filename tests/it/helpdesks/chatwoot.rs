//! Chatwoot: `X-Chatwoot-Signature: sha256=<hex>` over
//! `"{X-Chatwoot-Timestamp}.{body}"` (Chatwoot 4.12 and later), a delivery
//! UUID in `X-Chatwoot-Delivery`; older versions never sign.

use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::sources::signature::hmac_sha256;
use serde_json::json;

use super::{FIXTURE_NOW_MS, Ratings, SECRET, Webhook, fixture, sources_toml};
use crate::support::*;

pub fn sign(secret: &str, now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    let ts = (now_ms / 1000).to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body]);
    vec![
        (
            "X-Chatwoot-Signature".into(),
            format!("sha256={}", hex::encode(mac)),
        ),
        ("X-Chatwoot-Timestamp".into(), ts),
        (
            "X-Chatwoot-Delivery".into(),
            uuid::Uuid::new_v4().to_string(),
        ),
    ]
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "chatwoot",
        toml: r#"[[sources]]
name = "chatwoot"
kind = "chatwoot"
secret = "helpdesk-test-secret"
ticket_url = "https://chat.acme.example/app/accounts/{account_id}/conversations/{conversation_id}"

[[sources]]
name = "chatwoot-old"
kind = "chatwoot"
allow_unsigned = true
"#,
        secret: SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("chatwoot/negative.json"),
            negative_key: ("301", "90211"),
            positive: fixture("chatwoot/positive.json"),
            changed: fixture("chatwoot/changed.json"),
            changed_key: ("302", "90212"),
            non_rating: fixture("chatwoot/status_changed.json"),
            non_rating_headers: &[],
            malformed: json!({"event": "message_updated", "id": 5, "content_type": "input_csat",
                "content_attributes": {"submitted_values": {"csat_survey_response": {"rating": 7}}},
                "conversation": {"display_id": 9}}),
            malformed_field: "csat_survey_response.rating",
        }),
        rated: fixture("chatwoot/negative.json"),
        rating_pointer: "/content_attributes/submitted_values/csat_survey_response/rating",
    }
}

#[tokio::test]
async fn chatwoot_without_a_signature_is_refused_unless_the_source_allows_unsigned() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(
        settings(&db.url, None, &sources_toml()),
        ManualClock::new(FIXTURE_NOW_MS),
    )
    .await;
    let body = fixture("chatwoot/negative.json");
    assert_eq!(app.post("chatwoot", &[], body).await.0, 401);
    let (status, answer) = app.post("chatwoot-old", &[], body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ratings"][0]["sentiment"], "negative");
    // A stale signed timestamp on the strict source: 401.
    let headers = sign(SECRET, app.clock.now_ms() - 10 * 60_000, body);
    assert_eq!(app.post("chatwoot", &headers, body).await.0, 401);
    app.stop().await;
}
