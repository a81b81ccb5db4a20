//! Freshdesk: an automation rule posts our body with a token header. The
//! rule body usually names only the ticket and the rating is fetched; the
//! fetch scenarios are below; its API emulation runs the scenarios of
//! `polling.rs`.

use super::{SECRET, Webhook, fixture, token_headers};

pub fn webhook() -> Webhook {
    Webhook {
        source: "freshdesk-body",
        // A rule body that carries the rating itself (no API needed).
        toml: "[[sources]]\nname = \"freshdesk-body\"\nkind = \"freshdesk\"\nsecret = \"helpdesk-test-secret\"\nrating_in_body = true\n",
        secret: SECRET,
        sign: token_headers,
        ratings: None,
        rated: fixture("freshdesk/rule_negative.json"),
        rating_pointer: "/rating/value",
    }
}

/// Webhooks that name a rating, fetched from the emulated API.
mod fetched {

    use std::time::Duration;

    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, ResponseTemplate};

    use crate::helpdesks::fetch::*;
    use crate::support::*;

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
}

/// Freshdesk's API emulated under the poller; every scenario of `polling.rs`
/// runs against it.
mod api {
    // `GET /api/v2/surveys/satisfaction_ratings`, emulated: basic auth
    // `api_key:X`, `created_since` filtering on creation, numbered pages
    // with a `Link: <…>; rel="next"` header while more wait, a 429 with
    // `Retry-After`; and `GET /api/v2/tickets/{id}/satisfaction_ratings`,
    // which the webhook's fetch reads.

    use serde_json::{Value, json};
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use crate::polling::*;
    use crate::support::*;

    const TOKEN: &str = "fd-webhook-token";
    const LIST: &str = "/api/v2/surveys/satisfaction_ratings";

    #[derive(Clone, Copy)]
    pub struct Freshdesk;

    fn render(r: &Rating) -> Value {
        let score = (!r.unanswered).then_some(if r.bad { -103 } else { 103 });
        json!({
            "id": r.item, "survey_id": 1, "user_id": 2, "agent_id": 17, "group_id": null,
            "ticket_id": r.conversation, "feedback": r.comment,
            "ratings": {"default_question": score},
            "created_at": rfc3339(r.created_ms), "updated_at": rfc3339(r.modified_ms),
        })
    }

    struct Api(Shared);

    impl Respond for Api {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let mut state = self.0.lock().unwrap();
            if std::mem::take(&mut state.throttle_next) {
                return ResponseTemplate::new(429).insert_header("Retry-After", "1");
            }
            // The per-ticket list a webhook's fetch reads.
            if let Some(ticket) = request.url.path().strip_prefix("/api/v2/tickets/") {
                let ticket: u64 = ticket.split('/').next().unwrap().parse().unwrap();
                let found: Vec<Value> = state
                    .ratings
                    .iter()
                    .filter(|r| r.conversation == ticket)
                    .map(render)
                    .collect();
                return ResponseTemplate::new(200).set_body_json(found);
            }
            let since = parse_rfc3339(&query(request, "created_since").expect("created_since"));
            let page: usize = query(request, "page").map_or(1, |p| p.parse().unwrap());
            if page > 1 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let per_page: usize = query(request, "per_page").unwrap().parse().unwrap();
            let size = per_page.min(state.page_size);
            let mut matching: Vec<&Rating> = state
                .ratings
                .iter()
                .filter(|r| r.created_ms >= since)
                .collect();
            matching.sort_by_key(|r| (r.created_ms, r.item));
            let (items, next) = page_of(&matching, (page - 1) * size, size);
            let body: Vec<Value> = items.iter().map(|r| render(r)).collect();
            let mut response = ResponseTemplate::new(200)
                .set_body_json(body)
                .insert_header("X-RateLimit-Remaining", "199");
            if next.is_some() {
                let link = format!(
                    "<{LIST}?page={}&per_page={per_page}>; rel=\"next\"",
                    page + 1
                );
                response = response.insert_header("Link", link.as_str());
            }
            response
        }
    }

    impl Helpdesk for Freshdesk {
        const SOURCE: &'static str = "fd";

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"fd\"\nkind = \"freshdesk\"\nsecret = \"{TOKEN}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nrequest_timeout = \"2s\"\napi_key = \"fd-api-key\"\n"
            )
        }

        async fn mount(self, api: &MockServer, state: Shared) {
            // Anything else (the agent and group names an alert looks up) is a 404.
            Mock::given(method("GET"))
                .and(path_regex(
                    r"^/api/v2/(surveys/satisfaction_ratings|tickets/\d+/satisfaction_ratings)$",
                ))
                .respond_with(Api(state))
                .mount(api)
                .await;
        }

        fn is_page(self, request: &Request) -> bool {
            request.url.path() == LIST
        }

        fn window_start_ms(self, request: &Request) -> Option<i64> {
            Some(parse_rfc3339(&query(request, "created_since")?))
        }

        fn check_page_request(self, request: &Request) {
            assert_eq!(
                header(request, "authorization"),
                Some(basic("fd-api-key:X"))
            );
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            // The recommended rule body: the ticket only; the app fetches.
            let body = json!({"csatwatch": 1, "ticket": {"id": r.conversation.to_string()}});
            let headers = [("X-Csatwatch-Token".to_string(), TOKEN.to_string())];
            app.post("fd", &headers, body.to_string().as_bytes())
                .await
                .0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (r.conversation.to_string(), r.item.to_string())
        }

        fn second_start_ms(self, _first: &Rating, first_poll_ms: i64) -> i64 {
            // Created-time filter: a day before the first window's end.
            (first_poll_ms - 24 * 3600 * 1000).div_euclid(1000) * 1000
        }

        fn default_url(self, api: &str, r: &Rating) -> Option<String> {
            Some(format!("{api}/a/tickets/{}", r.conversation))
        }
    }

    polling_scenarios!(Freshdesk);

    #[tokio::test]
    async fn a_freshdesk_rule_body_with_the_rating_but_no_id_is_fetched_so_the_poll_finds_the_same_rating()
     {
        for backend in backends() {
            let rig = Rig::new(Freshdesk, backend, 10, |now| {
                vec![Rating::new(7, true, now - 60_000)]
            })
            .await;
            let rating = rig.state.lock().unwrap().ratings[0].clone();
            // Freshdesk renders the value, not the rating's id: keyed by
            // nothing, it would be a second rating beside the polled one.
            let body = json!({"ticket": {"id": rating.conversation.to_string()}, "rating": {"value": "-103"}});
            let headers = vec![("X-Csatwatch-Token".to_string(), TOKEN.to_string())];
            let (status, answer) = rig
                .app
                .post("fd", &headers, body.to_string().as_bytes())
                .await;
            assert_eq!(status, 200, "{backend:?}: {answer}");
            let report = rig.poll().await.unwrap();
            assert_eq!((report.new, report.alerts), (0, 0), "{backend:?}");
            assert_eq!(rig.app.app.store.count_ratings().await.unwrap(), 1);
            assert_eq!(rig.posts().await, 1);
            rig.stop().await;
        }
    }
}

/// Ratings an older version stored on the scale's old token (`freshdesk`)
/// are renamed by migration 0015, on both backends, so reports group them
/// with the new ones.
#[tokio::test]
async fn ratings_stored_on_the_old_scale_token_are_renamed_by_the_migration() {
    use csatwatch::clock::ManualClock;

    use super::{FIXTURE_NOW_MS, sources_toml};
    use crate::support::*;

    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let spawn = || {
            TestApp::spawn(
                settings(&db.url, None, &sources_toml()),
                ManualClock::new(FIXTURE_NOW_MS),
            )
        };
        let app = spawn().await;
        let body = fixture("freshdesk/rule_negative.json");
        let (status, answer) = app
            .post("freshdesk-body", &token_headers(SECRET, 0, body), body)
            .await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        app.stop().await;
        // What a version before the rename left behind.
        execute_sql(&db.url, "UPDATE ratings SET scale = 'freshdesk'").await;
        execute_sql(&db.url, "DELETE FROM _sqlx_migrations WHERE version = 15").await;
        let app = spawn().await;
        let stored = app
            .app
            .store
            .rating("freshdesk-body", "433", "")
            .await
            .unwrap();
        assert_eq!(
            stored.map(|r| r.scale).as_deref(),
            Some("signed_seven_point"),
            "{backend:?}"
        );
        app.stop().await;
    }
}
