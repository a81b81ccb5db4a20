//! DevRev: `X-DevRev-Signature`, HMAC-SHA256 of the body (base64 here), the
//! replay window on the envelope `timestamp`, and the `verify` handshake.

use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::sources::signature::hmac_sha256;
use serde_json::json;

use super::{FIXTURE_NOW_MS, Ratings, SECRET, Webhook, b64, fixture, sources_toml};
use crate::support::*;

pub fn sign(secret: &str, _now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    vec![(
        "X-DevRev-Signature".into(),
        b64(hmac_sha256(secret.as_bytes(), &[body])),
    )]
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "devrev",
        toml: "[[sources]]\nname = \"devrev\"\nkind = \"devrev\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("devrev/negative.json"),
            negative_key: (
                "don:core:dvrv-us-1:devo/1abc:ticket/318",
                "don:core:dvrv-us-1:devo/1abc:survey_response/41",
            ),
            positive: fixture("devrev/positive.json"),
            changed: fixture("devrev/changed.json"),
            changed_key: (
                "don:core:dvrv-us-1:devo/1abc:ticket/319",
                "don:core:dvrv-us-1:devo/1abc:survey_response/42",
            ),
            non_rating: fixture("devrev/work_updated.json"),
            non_rating_headers: &[],
            malformed: json!({"id": "e", "timestamp": "2026-11-23T14:06:00Z", "type": "survey_response_created",
                "survey_response_created": {"survey_response": {"id": "r", "response_score": 2}}}),
            malformed_field: "survey_response.object",
        }),
        rated: fixture("devrev/negative.json"),
        rating_pointer: "/survey_response_created/survey_response/response_score",
    }
}

#[tokio::test]
async fn devrevs_verify_handshake_is_answered_with_the_challenge() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(
        settings(&db.url, None, &sources_toml()),
        ManualClock::new(FIXTURE_NOW_MS),
    )
    .await;
    let body = fixture("devrev/verify.json");
    let (status, answer) = app.post("devrev", &[], body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"challenge": "DlvV0AeGiqy1uq1iTFBfgmTMRePbmBcsm7MMqJ4FwKM="})
    );
    // A stale envelope with a good signature is a replay: 401.
    app.clock.advance(Duration::from_secs(600));
    let negative = fixture("devrev/negative.json");
    let headers = sign(SECRET, app.clock.now_ms(), negative);
    assert_eq!(app.post("devrev", &headers, negative).await.0, 401);
    app.stop().await;
}
