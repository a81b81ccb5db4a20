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

/// DevRev's survey responses emulated under the poller; every scenario of
/// `polling.rs` runs against it.
mod api {
    // `POST /surveys.responses.list`, emulated: a bearer PAT, the
    // `modified_date` range, oldest change first, `cursor`/`next_cursor`
    // pages, `X-RateLimit-Remaining`, and a 429 with `Retry-After`.

    use csatwatch::clock::Clock as _;
    use csatwatch::sources::signature::hmac_sha256;
    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use crate::helpdesks::b64;
    use crate::polling::*;
    use crate::support::*;

    const SECRET: &str = "dr-webhook-secret";
    const LIST: &str = "/surveys.responses.list";

    #[derive(Clone, Copy)]
    pub struct DevRev;

    fn render(r: &Rating) -> Value {
        let (object, id) = DevRev.key(r);
        let score = if r.bad { 1 } else { 5 };
        json!({
            "id": id, "display_id": format!("SURVEY-RESP-{}", r.item), "object": object,
            "survey": "don:core:dvrv-us-1:devo/1abc:survey/3",
            "recipient": {"display_name": "Jordan Lee"},
            "response": {"rating": score, "comment": r.comment}, "response_score": score,
            "created_date": rfc3339(r.created_ms), "modified_date": rfc3339(r.modified_ms),
            "stage": "responded",
        })
    }

    fn body(request: &Request) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    struct List(Shared);

    impl Respond for List {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let mut state = self.0.lock().unwrap();
            if std::mem::take(&mut state.throttle_next) {
                return ResponseTemplate::new(429).insert_header("Retry-After", "1");
            }
            let body = body(request);
            let range = &body["modified_date"];
            let after = parse_rfc3339(range["after"].as_str().expect("modified_date.after"));
            let before = parse_rfc3339(range["before"].as_str().expect("modified_date.before"));
            let offset = body["cursor"]
                .as_str()
                .map_or(0, |c| c[1..].parse().unwrap());
            if offset > 0 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let mut matching: Vec<&Rating> = state
                .ratings
                .iter()
                .filter(|r| (after..=before).contains(&r.modified_ms))
                .collect();
            matching.sort_by_key(|r| (r.modified_ms, r.item));
            let limit = body["limit"].as_u64().unwrap() as usize;
            let (items, next) = page_of(&matching, offset, limit.min(state.page_size));
            let page: Vec<Value> = items.iter().map(|r| render(r)).collect();
            let next = next.map(|n| format!("o{n}"));
            let remaining = if state.nearly_spent { "1" } else { "99" };
            ResponseTemplate::new(200)
                .set_body_json(json!({"survey_responses": page, "next_cursor": next}))
                .insert_header("X-Ratelimit-Remaining", remaining)
        }
    }

    impl Helpdesk for DevRev {
        const SOURCE: &'static str = "dr";

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"dr\"\nkind = \"devrev\"\nsecret = \"{SECRET}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nrequest_timeout = \"2s\"\ntoken = \"dr-pat\"\n"
            )
        }

        async fn mount(self, api: &MockServer, state: Shared) {
            Mock::given(method("POST"))
                .and(path(LIST))
                .respond_with(List(state))
                .mount(api)
                .await;
        }

        fn is_page(self, request: &Request) -> bool {
            request.url.path() == LIST
        }

        fn window_start_ms(self, request: &Request) -> Option<i64> {
            Some(parse_rfc3339(
                body(request)["modified_date"]["after"].as_str()?,
            ))
        }

        fn check_page_request(self, request: &Request) {
            assert_eq!(
                header(request, "authorization").as_deref(),
                Some("Bearer dr-pat")
            );
            assert_eq!(request.method.as_str(), "POST");
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            let body = json!({
                "id": format!("evt-{}", r.item), "webhook_id": "wh",
                "timestamp": rfc3339(app.clock.now_ms()), "type": "survey_response_created",
                "survey_response_created": {"survey_response": render(r)},
            })
            .to_string()
            .into_bytes();
            let signature = b64(hmac_sha256(SECRET.as_bytes(), &[&body]));
            app.post("dr", &[("X-DevRev-Signature".into(), signature)], &body)
                .await
                .0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (
                format!("don:core:dvrv-us-1:devo/1abc:ticket/{}", r.conversation),
                format!("don:core:dvrv-us-1:devo/1abc:survey_response/{}", r.item),
            )
        }

        fn second_start_ms(self, _first: &Rating, first_poll_ms: i64) -> i64 {
            // A day (the default overlap) before the first window's end.
            (first_poll_ms - 24 * 3600 * 1000) / 1000 * 1000
        }
    }

    polling_scenarios!(DevRev);

    #[tokio::test]
    async fn a_nearly_spent_rate_limit_slows_the_poller_between_pages() {
        let rig = Rig::new(DevRev, Backend::Sqlite, 100, |now| {
            (1..=105)
                .map(|i| Rating::new(i, false, now - 3_600_000 + i as i64 * 1000))
                .collect()
        })
        .await;
        rig.state.lock().unwrap().nearly_spent = true;
        let started = std::time::Instant::now();
        let report = rig.poll().await.unwrap();
        assert_eq!(report.pages, 2);
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(10),
            "the second page waited: the helpdesk said its window was nearly spent"
        );
        rig.stop().await;
    }
}
