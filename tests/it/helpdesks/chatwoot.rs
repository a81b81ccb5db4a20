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

/// Chatwoot's CSAT responses emulated under the poller; every scenario of
/// `polling.rs` runs against it.
mod api {
    // `GET /api/v1/accounts/{account_id}/csat_survey_responses`, emulated:
    // the `api_access_token` header, `since`/`until` (Unix seconds, applied
    // only when both are given) on creation, numbered pages of a fixed 25
    // with nothing saying whether more wait, and a 429 with `Retry-After`.

    use csatwatch::clock::Clock as _;
    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use crate::polling::*;
    use crate::support::*;

    const SECRET: &str = "cw-webhook-secret";
    const LIST: &str = "/api/v1/accounts/7/csat_survey_responses";

    #[derive(Clone, Copy)]
    pub struct Chatwoot;

    fn score(r: &Rating) -> i64 {
        if r.bad { 1 } else { 5 }
    }

    fn render(r: &Rating) -> Value {
        json!({
            "id": r.item, "rating": score(r), "feedback_message": r.comment, "account_id": 7,
            "message_id": r.item + 90_000, "conversation_id": r.conversation,
            "contact": {"id": 55, "name": "Jordan Lee"},
            "assigned_agent": {"id": 12, "name": "Priya Raman"},
            "created_at": r.created_ms / 1000,
        })
    }

    struct List(Shared);

    impl Respond for List {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let mut state = self.0.lock().unwrap();
            if std::mem::take(&mut state.throttle_next) {
                return ResponseTemplate::new(429).insert_header("Retry-After", "1");
            }
            let mut matching: Vec<&Rating> = state.ratings.iter().collect();
            if let (Some(since), Some(until)) = (query(request, "since"), query(request, "until")) {
                let (since, until): (i64, i64) = (since.parse().unwrap(), until.parse().unwrap());
                matching.retain(|r| (since..=until).contains(&(r.created_ms / 1000)));
            }
            matching.sort_by_key(|r| (r.created_ms, r.item));
            let page: usize = query(request, "page").map_or(1, |p| p.parse().unwrap());
            if page > 1 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let size = state.page_size;
            let (items, _) = page_of(&matching, (page - 1) * size, size);
            ResponseTemplate::new(200)
                .set_body_json(items.iter().map(|r| render(r)).collect::<Vec<_>>())
        }
    }

    impl Helpdesk for Chatwoot {
        const SOURCE: &'static str = "cw";
        const FIXED_PAGE: Option<usize> = Some(25);

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"cw\"\nkind = \"chatwoot\"\nsecret = \"{SECRET}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nrequest_timeout = \"2s\"\ntoken = \"cw-token\"\naccount_id = \"7\"\n"
            )
        }

        async fn mount(self, api: &MockServer, state: Shared) {
            Mock::given(method("GET"))
                .and(path(LIST))
                .respond_with(List(state))
                .mount(api)
                .await;
        }

        fn is_page(self, request: &Request) -> bool {
            request.url.path() == LIST
        }

        fn window_start_ms(self, request: &Request) -> Option<i64> {
            Some(query(request, "since")?.parse::<i64>().unwrap() * 1000)
        }

        fn check_page_request(self, request: &Request) {
            assert_eq!(
                header(request, "api_access_token").as_deref(),
                Some("cw-token")
            );
            assert_eq!(request.url.path(), LIST);
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            let body = json!({
                "event": "message_updated", "id": r.item + 90_000, "content_type": "input_csat",
                "content_attributes": {"submitted_values": {"csat_survey_response": {
                    "rating": score(r), "feedback_message": r.comment}}},
                "account": {"id": 7},
                "conversation": {"id": 12_345, "display_id": r.conversation},
            })
            .to_string()
            .into_bytes();
            let headers = super::sign(SECRET, app.clock.now_ms(), &body);
            app.post("cw", &headers, &body).await.0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (r.conversation.to_string(), (r.item + 90_000).to_string())
        }

        fn second_start_ms(self, _first: &Rating, first_poll_ms: i64) -> i64 {
            // The default overlap (14 days) reaches past the first window's
            // start (alerts.max_age back), where the window stops.
            (first_poll_ms - 72 * 3600 * 1000) / 1000 * 1000
        }
    }

    polling_scenarios!(Chatwoot);
}
