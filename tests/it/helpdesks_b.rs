//! Freshdesk, Gorgias and HubSpot end to end: the real app, a real
//! database per backend, and wiremock servers for Slack and for each
//! helpdesk's API (their webhooks often name a rating the app must fetch).

use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::sources::hubspot::signature::sign as hubspot_sign;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// 2026-11-23T14:05:00Z, a minute after the fixtures' ratings.
const NOW_MS: i64 = 1_795_442_700_000;
const FRESHDESK_TOKEN: &str = "freshdesk-it-token";
const GORGIAS_TOKEN: &str = "gorgias-it-token";
const HUBSPOT_SECRET: &str = "hubspot-it-client-secret";
const PUBLIC_URL: &str = "https://csat.example.com";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/{path}")).unwrap()
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

/// The three sources, their APIs at `api` (one wiremock for all three).
fn helpdesk_toml(api: &str) -> String {
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

struct Rig {
    app: TestApp,
    slack: wiremock::MockServer,
    api: MockServer,
    _db: TestDatabase,
}

async fn rig(backend: Backend) -> Rig {
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
    async fn token_post(&self, source: &str, token: &str, body: &[u8]) -> (u16, Value) {
        let headers = vec![("X-Csatwatch-Token".to_string(), token.to_string())];
        self.app.post(source, &headers, body).await
    }

    async fn hubspot_post(&self, body: &[u8], timestamp_ms: i64, secret: &str) -> (u16, Value) {
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
    async fn alerts(&self) -> usize {
        self.app.app.flush_alerts().await.unwrap();
        slack_posts(&self.slack).await.len()
    }

    async fn answer(&self, api_path: &str, response: ResponseTemplate) {
        self.api.reset().await;
        Mock::given(method("GET"))
            .and(path(api_path))
            .respond_with(response)
            .mount(&self.api)
            .await;
    }

    async fn history_len(&self, source: &str, conversation: &str, key: &str) -> usize {
        let store = &self.app.app.store;
        let rating = store
            .rating(source, conversation, key)
            .await
            .unwrap()
            .unwrap();
        store.rating_history(rating.id).await.unwrap().len()
    }
}

fn ok_json(path: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture_json(path))
}

#[tokio::test]
async fn freshdesk_ratings_are_fetched_or_read_and_only_the_move_to_negative_alerts() {
    for backend in backends() {
        let rig = rig(backend).await;
        let ticket_only = fixture("freshdesk/rule_ticket_only.json");
        let ratings_path = "/api/v2/tickets/432/satisfaction_ratings";

        // Positive, fetched with basic auth api_key:X: recorded, no alert.
        rig.api.reset().await;
        Mock::given(method("GET"))
            .and(path(ratings_path))
            .and(header("authorization", "Basic ZmQtYXBpLWtleTpY"))
            .respond_with(ok_json("freshdesk/api_ratings_positive.json"))
            .mount(&rig.api)
            .await;
        let (status, body) = rig
            .token_post("freshdesk", FRESHDESK_TOKEN, &ticket_only)
            .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(body["ratings"][0]["sentiment"], "positive");
        assert_eq!(rig.alerts().await, 0);

        // The same rule fires again after the customer changed the rating.
        rig.app.clock.advance(Duration::from_secs(60));
        rig.answer(ratings_path, ok_json("freshdesk/api_ratings_changed.json"))
            .await;
        let (status, body) = rig
            .token_post("freshdesk", FRESHDESK_TOKEN, &ticket_only)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ratings"][0]["outcome"], "changed");
        assert_eq!(rig.history_len("freshdesk", "432", "102").await, 2);
        assert_eq!(rig.alerts().await, 1);
        // A retry of that webhook finds nothing new and alerts nobody again.
        rig.app.clock.advance(Duration::from_secs(1));
        let (status, body) = rig
            .token_post("freshdesk", FRESHDESK_TOKEN, &ticket_only)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(rig.alerts().await, 1);

        // A body that carries the rating value is recorded without a fetch.
        let (status, body) = rig
            .token_post(
                "freshdesk",
                FRESHDESK_TOKEN,
                &fixture("freshdesk/rule_negative.json"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ratings"][0]["sentiment"], "negative");
        let (status, _) = rig
            .token_post(
                "freshdesk",
                FRESHDESK_TOKEN,
                &fixture("freshdesk/rule_positive.json"),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(rig.alerts().await, 2);

        // No answered rating yet: 202, nothing stored.
        rig.answer(
            "/api/v2/tickets/999/satisfaction_ratings",
            ok_json("freshdesk/api_ratings_none.json"),
        )
        .await;
        let (status, body) = rig
            .token_post(
                "freshdesk",
                FRESHDESK_TOKEN,
                br#"{"ticket": {"id": "999"}}"#,
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("ignored")),
            "{body}"
        );

        // Wrong or missing token: 401.
        let (status, _) = rig.token_post("freshdesk", "guess", &ticket_only).await;
        assert_eq!(status, 401);
        let (status, _) = rig.app.post("freshdesk", &[], &ticket_only).await;
        assert_eq!(status, 401);

        // Authenticated but unreadable: 400, kept.
        let (status, body) = rig
            .token_post(
                "freshdesk",
                FRESHDESK_TOKEN,
                br#"{"ticket": {"id": "1"}, "rating": {"value": "7"}}"#,
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["kept"], true);

        // An unknown ticket: 404 from the API, kept as failed.
        rig.answer(
            "/api/v2/tickets/404/satisfaction_ratings",
            ResponseTemplate::new(404),
        )
        .await;
        let (status, body) = rig
            .token_post(
                "freshdesk",
                FRESHDESK_TOKEN,
                br#"{"ticket": {"id": "404"}}"#,
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("kept")),
            "{body}"
        );
        let kept = rig
            .app
            .app
            .store
            .delivery(body["delivery_id"].as_i64().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.status, "failed");
        assert!(kept.error.unwrap().contains("404"));
        assert_eq!(rig.alerts().await, 2);
        rig.app.stop().await;
    }
}

#[tokio::test]
async fn gorgias_surveys_are_read_or_fetched_and_only_the_move_to_negative_alerts() {
    for backend in backends() {
        let rig = rig(backend).await;
        let post = |body: Vec<u8>| {
            let rig = &rig;
            async move { rig.token_post("gorgias", GORGIAS_TOKEN, &body).await }
        };
        let (status, body) = post(fixture("gorgias/positive.json")).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(rig.alerts().await, 0);
        let (status, body) = post(fixture("gorgias/negative.json")).await;
        assert_eq!(
            (status, &body["ratings"][0]["sentiment"]),
            (200, &json!("negative")),
            "{body}"
        );
        assert_eq!(rig.alerts().await, 1);

        // Ticket 600 rated 4, then changed to 2: one rating, two versions, one alert.
        let mut survey = fixture_json("gorgias/survey_object_changed.json");
        survey["ticket_id"] = json!(600);
        survey["score"] = json!(4);
        survey["scored_datetime"] = json!("2026-11-23T14:00:00.000000");
        let (status, _) = post(serde_json::to_vec(&survey).unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(rig.alerts().await, 1);
        survey["score"] = json!(2);
        survey["scored_datetime"] = json!("2026-11-23T14:03:00.000000");
        let (status, body) = post(serde_json::to_vec(&survey).unwrap()).await;
        assert_eq!(
            (status, &body["ratings"][0]["outcome"]),
            (200, &json!("changed")),
            "{body}"
        );
        assert_eq!(rig.history_len("gorgias", "600", "").await, 2);
        assert_eq!(rig.alerts().await, 2);

        // An event naming the survey: fetched with basic auth email:api_key.
        rig.api.reset().await;
        Mock::given(method("GET"))
            .and(path("/api/satisfaction-surveys/50"))
            .and(header(
                "authorization",
                "Basic b3BzQHNob3AuZXhhbXBsZTpnb3JnaWFzLWFwaS1rZXk=",
            ))
            .respond_with(ok_json("gorgias/api_survey_negative.json"))
            .mount(&rig.api)
            .await;
        let (status, body) = post(fixture("gorgias/survey_responded_event.json")).await;
        assert_eq!(status, 200, "{body}");
        // Ticket 500's rating from the template, now seen through the API.
        assert_eq!(body["ratings"][0]["outcome"], "unchanged", "{body}");
        assert_eq!(rig.alerts().await, 2);

        // Not an answer: 202. Wrong token: 401. Unreadable: 400, kept.
        let (status, _) = post(fixture("gorgias/survey_sent_event.json")).await;
        assert_eq!(status, 202);
        let (status, _) = rig
            .token_post("gorgias", "nope", &fixture("gorgias/negative.json"))
            .await;
        assert_eq!(status, 401);
        let (status, body) =
            post(br#"{"ticket": {"id": "1"}, "satisfaction_survey": {"score": "9"}}"#.to_vec())
                .await;
        assert_eq!((status, &body["kept"]), (400, &json!(true)), "{body}");
        // A survey the API does not know: kept as failed.
        rig.answer("/api/satisfaction-surveys/77", ResponseTemplate::new(404))
            .await;
        let (status, body) = post(br#"{"id": 77, "ticket_id": 9}"#.to_vec()).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("kept")),
            "{body}"
        );
        rig.app.stop().await;
    }
}

#[tokio::test]
async fn hubspot_submissions_are_fetched_and_only_the_move_to_negative_alerts() {
    for backend in backends() {
        let rig = rig(backend).await;
        let submission = "/crm/v3/objects/feedback_submissions/9001";
        rig.api.reset().await;
        Mock::given(method("GET"))
            .and(path(submission))
            .and(query_param("associations", "tickets"))
            .and(header("authorization", "Bearer pat-na1-it"))
            .respond_with(ok_json("hubspot/api_submission_neutral.json"))
            .mount(&rig.api)
            .await;
        let creation = fixture("hubspot/creation_event.json");
        let (status, body) = rig.hubspot_post(&creation, NOW_MS, HUBSPOT_SECRET).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(body["ratings"][0]["sentiment"], "neutral");
        assert_eq!(rig.alerts().await, 0);

        // The answer changes: HubSpot sends propertyChange events.
        rig.answer(submission, ok_json("hubspot/api_submission_negative.json"))
            .await;
        let change = fixture("hubspot/property_change_event.json");
        let (status, body) = rig.hubspot_post(&change, NOW_MS, HUBSPOT_SECRET).await;
        assert_eq!(
            (status, &body["ratings"][0]["outcome"]),
            (200, &json!("changed")),
            "{body}"
        );
        assert_eq!(rig.history_len("hubspot", "7700", "9001").await, 2);
        assert_eq!(rig.alerts().await, 1);
        // HubSpot retries the same events: a duplicate delivery.
        let (status, body) = rig.hubspot_post(&change, NOW_MS, HUBSPOT_SECRET).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
        assert_eq!(rig.alerts().await, 1);

        // Another object type: 202. Bad signature or stale timestamp: 401.
        let contact = fixture("hubspot/contact_event.json");
        let (status, _) = rig.hubspot_post(&contact, NOW_MS, HUBSPOT_SECRET).await;
        assert_eq!(status, 202);
        let (status, _) = rig.hubspot_post(&creation, NOW_MS, "wrong-secret").await;
        assert_eq!(status, 401);
        let (status, _) = rig
            .hubspot_post(&creation, NOW_MS - 6 * 60 * 1000, HUBSPOT_SECRET)
            .await;
        assert_eq!(status, 401);
        // Signed but unreadable: 400, kept.
        let (status, body) = rig
            .hubspot_post(
                br#"[{"eventId": 1, "objectTypeId": "0-19"}]"#,
                NOW_MS,
                HUBSPOT_SECRET,
            )
            .await;
        assert_eq!((status, &body["kept"]), (400, &json!(true)), "{body}");
        // A submission the API does not know: kept as failed.
        rig.answer(
            "/crm/v3/objects/feedback_submissions/9002",
            ResponseTemplate::new(404),
        )
        .await;
        let gone = String::from_utf8(creation.clone())
            .unwrap()
            .replace("9001", "9002")
            .replace("1001", "1009");
        let (status, body) = rig
            .hubspot_post(gone.as_bytes(), NOW_MS, HUBSPOT_SECRET)
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("kept")),
            "{body}"
        );
        rig.app.stop().await;
    }
}

#[tokio::test]
async fn a_failed_fetch_is_kept_pending_and_recorded_once_the_api_recovers() {
    for backend in backends() {
        let rig = rig(backend).await;
        let store = &rig.app.app.store;

        // HubSpot's API fails with a 500.
        let submission = "/crm/v3/objects/feedback_submissions/9001";
        rig.answer(submission, ResponseTemplate::new(500)).await;
        let (status, body) = rig
            .hubspot_post(
                &fixture("hubspot/creation_event.json"),
                NOW_MS,
                HUBSPOT_SECRET,
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("pending")),
            "{backend:?}: {body}"
        );
        // Freshdesk's API times out (request_timeout is 1s).
        rig.api.reset().await;
        Mock::given(method("GET"))
            .and(path("/api/v2/tickets/432/satisfaction_ratings"))
            .respond_with(
                ok_json("freshdesk/api_ratings_negative.json").set_delay(Duration::from_secs(3)),
            )
            .mount(&rig.api)
            .await;
        let (status, body) = rig
            .token_post(
                "freshdesk",
                FRESHDESK_TOKEN,
                &fixture("freshdesk/rule_ticket_only.json"),
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("pending")),
            "{body}"
        );
        assert_eq!(store.count_deliveries("pending").await.unwrap(), 2);
        assert_eq!(store.count_ratings().await.unwrap(), 0);

        // Not due yet: nothing is tried.
        assert_eq!(rig.app.app.fetcher.run_once().await.unwrap(), 0);

        // Both APIs recover; the fetcher's next round records both, once.
        rig.answer(submission, ok_json("hubspot/api_submission_negative.json"))
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v2/tickets/432/satisfaction_ratings"))
            .respond_with(ok_json("freshdesk/api_ratings_negative.json"))
            .mount(&rig.api)
            .await;
        rig.app.clock.advance(Duration::from_secs(31));
        assert_eq!(rig.app.app.fetcher.run_once().await.unwrap(), 2);
        assert_eq!(store.count_deliveries("pending").await.unwrap(), 0);
        assert_eq!(store.count_ratings().await.unwrap(), 2);
        assert_eq!(rig.alerts().await, 2);
        rig.app.clock.advance(Duration::from_secs(3600));
        assert_eq!(rig.app.app.fetcher.run_once().await.unwrap(), 0);
        assert_eq!(rig.alerts().await, 2);
        assert!(rig.app.clock.now_ms() > NOW_MS);
        rig.app.stop().await;
    }
}
