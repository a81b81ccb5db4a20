//! Intercom, Help Scout, Chatwoot, DevRev and Zendesk's newer CSAT through
//! the real app, on every backend: each helpdesk's fixtures, signed as the
//! helpdesk signs them, must give one alert for a negative rating, none for
//! a positive one, a history row for a change (alerting only on the move to
//! negative), 401 for a bad signature, 202 for an event without a rating,
//! and 400 with the body kept for a signed delivery that cannot be read.

use std::time::Duration;

use base64::Engine as _;
use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::sources::signature::{hmac_sha1, hmac_sha256};
use serde_json::{Value, json};

use crate::support::*;

/// 2026-11-23T14:05:00Z: the time the fixtures were "sent".
const FIXTURE_NOW_MS: i64 = 1_795_442_700_000;
const SECRET: &str = "helpdesk-test-secret";

const SOURCES: &str = r#"
[[sources]]
name = "intercom"
kind = "intercom"
secret = "helpdesk-test-secret"

[[sources]]
name = "helpscout"
kind = "helpscout"
secret = "helpdesk-test-secret"

[[sources]]
name = "chatwoot"
kind = "chatwoot"
secret = "helpdesk-test-secret"
ticket_url = "https://chat.acme.example/app/accounts/{account_id}/conversations/{conversation_id}"

[[sources]]
name = "chatwoot-old"
kind = "chatwoot"
allow_unsigned = true

[[sources]]
name = "devrev"
kind = "devrev"
secret = "helpdesk-test-secret"

[[sources]]
name = "zendesk-csat"
kind = "zendesk_csat"
secret = "helpdesk-test-secret"
"#;

/// How each helpdesk signs a body at a given time.
#[derive(Clone, Copy)]
enum Signer {
    Intercom,
    HelpScout,
    Chatwoot,
    DevRev,
    Zendesk,
}

impl Signer {
    fn headers(self, secret: &str, now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
        let key = secret.as_bytes();
        match self {
            Signer::Intercom => vec![(
                "X-Hub-Signature".into(),
                format!("sha1={}", hex::encode(hmac_sha1(key, &[body]))),
            )],
            Signer::HelpScout => vec![
                ("X-HelpScout-Signature".into(), b64(hmac_sha1(key, &[body]))),
                ("X-HelpScout-Event".into(), "satisfaction.ratings".into()),
            ],
            Signer::Chatwoot => {
                let ts = (now_ms / 1000).to_string();
                let mac = hmac_sha256(key, &[ts.as_bytes(), b".", body]);
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
            Signer::DevRev => vec![("X-DevRev-Signature".into(), b64(hmac_sha256(key, &[body])))],
            Signer::Zendesk => zendesk_headers(secret, now_ms, body),
        }
    }
}

/// One helpdesk's fixtures and expectations.
struct Case {
    source: &'static str,
    signer: Signer,
    negative: &'static [u8],
    /// (conversation id, rating key) of the negative fixture.
    negative_key: (&'static str, &'static str),
    positive: &'static [u8],
    /// The positive fixture's rating, later changed to negative.
    changed: &'static [u8],
    changed_key: (&'static str, &'static str),
    non_rating: &'static [u8],
    /// Headers that replace the signer's for the non-rating event (Help
    /// Scout names its test event in a header).
    non_rating_headers: &'static [(&'static str, &'static str)],
    /// Signed, but unreadable: the error must name this field.
    malformed: Value,
    malformed_field: &'static str,
}

fn fixture(path: &str) -> &'static [u8] {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    Box::leak(
        std::fs::read(&full)
            .unwrap_or_else(|e| panic!("{full}: {e}"))
            .into_boxed_slice(),
    )
}

/// Runs every expectation of `case` against a fresh app on `backend`.
async fn exercise(case: Case) {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), SOURCES),
            ManualClock::new(FIXTURE_NOW_MS),
        )
        .await;
        let post = |body: &'static [u8]| {
            let headers = case.signer.headers(SECRET, app.clock.now_ms(), body);
            let app = &app;
            async move { app.post(case.source, &headers, body).await }
        };
        let ctx = format!("{} on {backend:?}", case.source);

        // A valid negative: recorded, one alert at Slack.
        let (status, answer) = post(case.negative).await;
        assert_eq!(status, 200, "{ctx}: {answer}");
        assert_eq!(
            answer["ratings"][0]["sentiment"], "negative",
            "{ctx}: {answer}"
        );
        app.app.flush_alerts().await.unwrap();
        assert_eq!(slack_posts(&slack).await.len(), 1, "{ctx}: one alert");
        let (conversation, key) = case.negative_key;
        assert!(
            app.app
                .store
                .rating(case.source, conversation, key)
                .await
                .unwrap()
                .is_some(),
            "{ctx}: stored under ({conversation}, {key:?})"
        );
        // The same delivery again is a duplicate and does not alert.
        let (status, answer) = post(case.negative).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate")),
            "{ctx}: {answer}"
        );

        // A valid positive: recorded, no alert.
        let (status, answer) = post(case.positive).await;
        assert_eq!(status, 200, "{ctx}: {answer}");
        assert_eq!(
            answer["ratings"][0]["sentiment"], "positive",
            "{ctx}: {answer}"
        );
        assert_eq!(answer["ratings"][0]["alerts"], 0, "{ctx}");

        // The positive changed to negative: the same rating, a history row,
        // and an alert for the move to negative.
        app.clock.advance(Duration::from_secs(60));
        let (status, answer) = post(case.changed).await;
        assert_eq!(status, 200, "{ctx}: {answer}");
        assert_eq!(
            answer["ratings"][0]["outcome"], "changed",
            "{ctx}: {answer}"
        );
        assert_eq!(answer["ratings"][0]["alerts"], 1, "{ctx}: {answer}");
        app.app.flush_alerts().await.unwrap();
        assert_eq!(
            slack_posts(&slack).await.len(),
            2,
            "{ctx}: the change alerted once"
        );
        let (conversation, key) = case.changed_key;
        let rating = app
            .app
            .store
            .rating(case.source, conversation, key)
            .await
            .unwrap()
            .unwrap();
        let history: Vec<String> = app
            .app
            .store
            .rating_history(rating.id)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.sentiment)
            .collect();
        assert_eq!(history, ["positive", "negative"], "{ctx}");

        // A bad signature: 401.
        let headers = case
            .signer
            .headers("not-the-secret", app.clock.now_ms(), case.negative);
        let (status, _) = app.post(case.source, &headers, case.negative).await;
        assert_eq!(status, 401, "{ctx}: wrong secret");

        // A valid event without a rating: 202, nothing stored.
        let mut headers = case
            .signer
            .headers(SECRET, app.clock.now_ms(), case.non_rating);
        for (name, value) in case.non_rating_headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_string(), value.to_string()));
        }
        let (status, answer) = app.post(case.source, &headers, case.non_rating).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (202, Some("ignored")),
            "{ctx}: {answer}"
        );

        // Signed but unreadable: 400 naming the field, and kept.
        let body: &'static [u8] = Box::leak(
            serde_json::to_vec(&case.malformed)
                .unwrap()
                .into_boxed_slice(),
        );
        let (status, answer) = post(body).await;
        assert_eq!(status, 400, "{ctx}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or("")
                .contains(case.malformed_field),
            "{ctx}: {answer}"
        );
        let failed = app
            .app
            .store
            .failed_deliveries(Some(case.source), 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "{ctx}");
        assert_eq!(failed[0].body, body, "{ctx}: the raw body is kept");

        assert_eq!(
            slack_posts(&slack).await.len(),
            2,
            "{ctx}: nothing else alerted"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn intercom_ratings_alert_change_and_refuse_as_the_table_says() {
    exercise(Case {
        source: "intercom",
        signer: Signer::Intercom,
        negative: fixture("intercom/negative.json"),
        negative_key: ("515", ""),
        positive: fixture("intercom/positive.json"),
        changed: fixture("intercom/changed.json"),
        changed_key: ("516", ""),
        non_rating: fixture("intercom/ping.json"),
        non_rating_headers: &[],
        malformed: json!({"topic": "conversation.rating.added", "data": {"item": {"id": "9", "conversation_rating": {"rating": 9}}}}),
        malformed_field: "data.item.conversation_rating.rating",
    })
    .await;
}

#[tokio::test]
async fn help_scout_ratings_alert_change_and_refuse_as_the_table_says() {
    exercise(Case {
        source: "helpscout",
        signer: Signer::HelpScout,
        negative: fixture("helpscout/negative.json"),
        negative_key: ("1560011", "3002084"),
        positive: fixture("helpscout/positive.json"),
        changed: fixture("helpscout/changed.json"),
        changed_key: ("1560020", "3002090"),
        // The body of Help Scout's test event is the SDK's; its header says helpscout.test.
        non_rating: fixture("helpscout/test_event.json"),
        non_rating_headers: &[("X-HelpScout-Event", "helpscout.test")],
        malformed: json!({"id": 1, "conversationId": 2, "rating": "meh"}),
        malformed_field: "rating",
    })
    .await;
}

#[tokio::test]
async fn chatwoot_ratings_alert_change_and_refuse_as_the_table_says() {
    exercise(Case {
        source: "chatwoot",
        signer: Signer::Chatwoot,
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
    })
    .await;
}

#[tokio::test]
async fn devrev_ratings_alert_change_and_refuse_as_the_table_says() {
    exercise(Case {
        source: "devrev",
        signer: Signer::DevRev,
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
    })
    .await;
}

#[tokio::test]
async fn zendesk_new_csat_ratings_alert_change_and_refuse_as_the_table_says() {
    exercise(Case {
        source: "zendesk-csat",
        signer: Signer::Zendesk,
        negative: fixture("zendesk_csat/negative.json"),
        negative_key: ("48300", "01HZX9R7C3V0KQ4W8T2M5N6P7A"),
        positive: fixture("zendesk_csat/positive.json"),
        changed: fixture("zendesk_csat/changed.json"),
        changed_key: ("48301", "01HZX9R7C3V0KQ4W8T2M5N6P7B"),
        non_rating: fixture("zendesk_csat/unanswered.json"),
        non_rating_headers: &[],
        malformed: json!({"ticket": {"id": "1"}, "survey_response": {"id": "r", "rating": 4, "options": 4}}),
        malformed_field: "survey_response.options",
    })
    .await;
}

#[tokio::test]
async fn devrevs_verify_handshake_is_answered_with_the_challenge() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(
        settings(&db.url, None, SOURCES),
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
    let headers = Signer::DevRev.headers(SECRET, app.clock.now_ms(), negative);
    assert_eq!(app.post("devrev", &headers, negative).await.0, 401);
    app.stop().await;
}

#[tokio::test]
async fn chatwoot_without_a_signature_is_refused_unless_the_source_allows_unsigned() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(
        settings(&db.url, None, SOURCES),
        ManualClock::new(FIXTURE_NOW_MS),
    )
    .await;
    let body = fixture("chatwoot/negative.json");
    assert_eq!(app.post("chatwoot", &[], body).await.0, 401);
    let (status, answer) = app.post("chatwoot-old", &[], body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ratings"][0]["sentiment"], "negative");
    // A stale signed timestamp on the strict source: 401.
    let headers = Signer::Chatwoot.headers(SECRET, app.clock.now_ms() - 10 * 60_000, body);
    assert_eq!(app.post("chatwoot", &headers, body).await.0, 401);
    app.stop().await;
}
