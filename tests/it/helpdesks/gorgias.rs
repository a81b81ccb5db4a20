//! Gorgias: a Rule calls an HTTP integration with our body and a token
//! header. Its fetch scenarios are below; its API emulation runs the scenarios
//! of `polling.rs`.

use super::{SECRET, Webhook, fixture, token_headers};

pub fn webhook() -> Webhook {
    Webhook {
        source: "gorgias-body",
        toml: "[[sources]]\nname = \"gorgias-body\"\nkind = \"gorgias\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign: token_headers,
        ratings: None,
        rated: fixture("gorgias/negative.json"),
        rating_pointer: "/satisfaction_survey/score",
    }
}

/// Webhooks that name a rating, fetched from the emulated API.
mod fetched {

    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, ResponseTemplate};

    use crate::helpdesks::fetch::*;
    use crate::support::*;

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
}

/// Gorgias's survey list emulated under the poller; every scenario of
/// `polling.rs` runs against it.
mod api {
    // `GET /api/satisfaction-surveys`, emulated: basic auth `email:api_key`,
    // no time filter, newest first (`order_by=created_datetime:desc`),
    // `cursor`/`meta.next_cursor` pages, the call-limit header, and a 429
    // with `Retry-after` (Gorgias's spelling). Unanswered surveys are listed.

    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use crate::polling::*;
    use crate::support::*;

    const TOKEN: &str = "gg-webhook-token";
    const LIST: &str = "/api/satisfaction-surveys";

    #[derive(Clone, Copy)]
    pub struct Gorgias;

    /// Gorgias writes times without a zone: `2026-11-23T14:00:00.000000`.
    fn gorgias_time(ms: i64) -> String {
        format!(
            "{}.000000",
            csatwatch::sources::http_api::rfc3339(ms).trim_end_matches('Z')
        )
    }

    fn score(r: &Rating) -> i64 {
        if r.bad { 1 } else { 5 }
    }

    fn render(r: &Rating) -> Value {
        let score = (!r.unanswered).then(|| score(r));
        json!({
            "id": r.item, "ticket_id": r.conversation, "customer_id": 777, "score": score,
            "body_text": r.comment, "created_datetime": gorgias_time(r.created_ms),
            "sent_datetime": gorgias_time(r.created_ms),
            "scored_datetime": score.map(|_| gorgias_time(r.modified_ms)),
            "meta": null, "uri": format!("/api/satisfaction-surveys/{}/", r.item),
        })
    }

    struct List(Shared);

    impl Respond for List {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let mut state = self.0.lock().unwrap();
            if std::mem::take(&mut state.throttle_next) {
                return ResponseTemplate::new(429).insert_header("Retry-after", "1");
            }
            assert_eq!(
                query(request, "order_by").as_deref(),
                Some("created_datetime:desc")
            );
            let offset: usize = query(request, "cursor").map_or(0, |c| c[1..].parse().unwrap());
            if offset > 0 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let limit: usize = query(request, "limit").unwrap().parse().unwrap();
            let mut all: Vec<&Rating> = state.ratings.iter().collect();
            all.sort_by_key(|r| std::cmp::Reverse((r.created_ms, r.item)));
            let (items, next) = page_of(&all, offset, limit.min(state.page_size));
            let data: Vec<Value> = items.iter().map(|r| render(r)).collect();
            let next = next.map(|n| format!("o{n}"));
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({"data": data, "meta": {"next_cursor": next, "prev_cursor": null}}),
                )
                .insert_header("X-Gorgias-Account-Api-Call-Limit", "1/40")
        }
    }

    impl Helpdesk for Gorgias {
        const SOURCE: &'static str = "gg";
        const LISTS_UNANSWERED: bool = true;

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"gg\"\nkind = \"gorgias\"\nsecret = \"{TOKEN}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nrequest_timeout = \"2s\"\nemail = \"ops@shop.example\"\napi_key = \"gg-key\"\n"
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

        fn window_start_ms(self, _request: &Request) -> Option<i64> {
            // No time filter: the poller stops at the first page that
            // reaches surveys older than its window.
            None
        }

        fn check_page_request(self, request: &Request) {
            assert_eq!(
                header(request, "authorization"),
                Some(basic("ops@shop.example:gg-key"))
            );
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            let body = json!({
                "csatwatch": 1, "ticket": {"id": r.conversation.to_string()},
                "satisfaction_survey": {"id": r.item.to_string(), "score": score(r).to_string(),
                    "body_text": r.comment, "scored_datetime": gorgias_time(r.modified_ms)},
            });
            let headers = [("X-Csatwatch-Token".to_string(), TOKEN.to_string())];
            app.post("gg", &headers, body.to_string().as_bytes())
                .await
                .0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (r.conversation.to_string(), String::new())
        }

        fn second_start_ms(self, _first: &Rating, _first_poll_ms: i64) -> i64 {
            unreachable!("Gorgias's requests carry no window")
        }

        fn default_url(self, api: &str, r: &Rating) -> Option<String> {
            Some(format!("{api}/app/ticket/{}", r.conversation))
        }
    }

    polling_scenarios!(Gorgias);
}
