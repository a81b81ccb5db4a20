//! Help Scout: `X-HelpScout-Signature`, base64 HMAC-SHA1 of the body; the
//! event is named in `X-HelpScout-Event`.

use csatwatch::sources::signature::hmac_sha1;
use serde_json::json;

use super::{Ratings, SECRET, Webhook, b64, fixture};

pub fn sign(secret: &str, _now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    vec![
        (
            "X-HelpScout-Signature".into(),
            b64(hmac_sha1(secret.as_bytes(), &[body])),
        ),
        ("X-HelpScout-Event".into(), "satisfaction.ratings".into()),
    ]
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "helpscout",
        toml: "[[sources]]\nname = \"helpscout\"\nkind = \"helpscout\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("helpscout/negative.json"),
            negative_key: ("1560011", "3002084"),
            positive: fixture("helpscout/positive.json"),
            changed: fixture("helpscout/changed.json"),
            changed_key: ("1560020", "3002090"),
            // The body of Help Scout's test event is the SDK's; its header
            // says helpscout.test.
            non_rating: fixture("helpscout/test_event.json"),
            non_rating_headers: &[("X-HelpScout-Event", "helpscout.test")],
            malformed: json!({"id": 1, "conversationId": 2, "rating": "meh"}),
            malformed_field: "rating",
        }),
        rated: fixture("helpscout/negative.json"),
        rating_pointer: "/rating",
    }
}

/// The helpdesk's API emulated under the poller; every scenario of `polling.rs` runs against it.
mod api {
    // Help Scout, emulated: the OAuth2 client-credentials token endpoint
    // (tokens can be revoked), and the happiness ratings report filtered by
    // `start`/`end` on the rating's creation time, paged by `page`, sorted by
    // modification time; a 429 carries `X-RateLimit-Retry-After`.

    use base64::Engine as _;
    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use std::time::Duration;

    use csatwatch::clock::{Clock as _, ManualClock};

    use crate::polling::*;
    use crate::support::*;
    use csatwatch::sources::signature::hmac_sha1;

    const SECRET: &str = "helpscout-webhook-secret";
    const REPORT: &str = "/v2/reports/happiness/ratings";
    const TOKEN: &str = "/v2/oauth2/token";

    #[derive(Clone, Copy)]
    pub struct HelpScout;

    struct Token(Shared);

    impl Respond for Token {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let form: Vec<(String, String)> = url_pairs(&request.body);
            let has = |k: &str, v: &str| form.iter().any(|(a, b)| a == k && b == v);
            if !(has("grant_type", "client_credentials")
                && has("client_id", "hs-app-id")
                && has("client_secret", "hs-app-secret"))
            {
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"error": "invalid_client"}));
            }
            let mut state = self.0.lock().unwrap();
            state.tokens_issued += 1;
            let token = format!("hs-token-{}", state.tokens_issued);
            state.valid_token = Some(token.clone());
            ResponseTemplate::new(200).set_body_json(json!({
                "token_type": "bearer", "access_token": token, "expires_in": 7200
            }))
        }
    }

    fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
        let url =
            reqwest::Url::parse(&format!("form:/?{}", String::from_utf8_lossy(body))).unwrap();
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn row(r: &Rating) -> Value {
        json!({
            "id": r.conversation, "number": r.conversation + 1000, "threadid": r.item,
            "threadCreatedAt": rfc3339(r.created_ms - 60_000),
            "ratingId": if r.bad { 3 } else { 1 },
            "ratingCustomerId": 449_379, "ratingCustomerName": "John Doe",
            "ratingComments": r.comment, "ratingCreatedAt": rfc3339(r.created_ms),
            "ratingUserId": 77, "ratingUserName": "Priya Raman", "type": "email"
        })
    }

    struct Report(Shared);

    impl Respond for Report {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let mut state = self.0.lock().unwrap();
            let auth = request
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            if state.valid_token.as_ref().map(|t| format!("Bearer {t}")) != auth {
                return ResponseTemplate::new(401);
            }
            if std::mem::take(&mut state.throttle_next) {
                return ResponseTemplate::new(429).insert_header("X-RateLimit-Retry-After", "1");
            }
            let start = parse_rfc3339(&query(request, "start").expect("start is required"));
            let end = parse_rfc3339(&query(request, "end").expect("end is required"));
            assert_eq!(query(request, "sortField").as_deref(), Some("modifiedAt"));
            let page: usize = query(request, "page").map_or(1, |p| p.parse().unwrap());
            if page > 1 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let mut matching: Vec<&Rating> = state
                .ratings
                .iter()
                .filter(|r| r.created_ms >= start && r.created_ms <= end)
                .collect();
            matching.sort_by_key(|r| (r.modified_ms, r.conversation));
            let size = state.page_size;
            let pages = matching.len().div_ceil(size).max(1);
            let rows: Vec<Value> = matching
                .iter()
                .skip((page - 1) * size)
                .take(size)
                .map(|r| row(r))
                .collect();
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Remaining-Minute", "199")
                .set_body_json(
                    json!({"results": rows, "page": page, "pages": pages, "count": matching.len()}),
                )
        }
    }

    impl Helpdesk for HelpScout {
        const SOURCE: &'static str = "hs";

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"hs\"\nkind = \"helpscout\"\nsecret = \"{SECRET}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nclient_id = \"hs-app-id\"\nclient_secret = \"hs-app-secret\"\n"
            )
        }

        async fn mount(self, api: &MockServer, state: Shared) {
            Mock::given(method("POST"))
                .and(path(TOKEN))
                .respond_with(Token(state.clone()))
                .mount(api)
                .await;
            Mock::given(method("GET"))
                .and(path(REPORT))
                .respond_with(Report(state))
                .mount(api)
                .await;
        }

        fn is_page(self, request: &Request) -> bool {
            request.url.path() == REPORT
        }

        fn window_start_ms(self, request: &Request) -> Option<i64> {
            Some(parse_rfc3339(&query(request, "start")?))
        }

        fn check_page_request(self, request: &Request) {
            let auth = header(request, "authorization").unwrap_or_default();
            assert!(auth.starts_with("Bearer hs-token-"), "{auth}");
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            let body = serde_json::to_vec(&json!({
            "id": 80_000 + r.conversation, "conversationId": r.conversation, "conversationNumber": r.conversation + 1000,
            "threadId": r.item, "mailboxId": 1234,
            "rating": if r.bad { "not_good" } else { "great" }, "comments": r.comment,
            "customer": {"id": 449_379, "firstName": "John", "lastName": "Doe"},
            "user": {"id": 77, "firstName": "Priya", "lastName": "Raman"},
            "createdAt": rfc3339(r.created_ms), "modifiedAt": rfc3339(r.modified_ms)
        }))
        .unwrap();
            let signature = base64::engine::general_purpose::STANDARD
                .encode(hmac_sha1(SECRET.as_bytes(), &[&body]));
            let headers = [
                ("X-HelpScout-Signature".to_string(), signature),
                (
                    "X-HelpScout-Event".to_string(),
                    "satisfaction.ratings".to_string(),
                ),
            ];
            app.post("hs", &headers, &body).await.0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (r.conversation.to_string(), r.item.to_string())
        }

        fn second_start_ms(self, _first: &Rating, first_poll_ms: i64) -> i64 {
            // The report filters on creation: a day before the first window's end.
            (first_poll_ms - 24 * 3600 * 1000) / 1000 * 1000
        }
    }

    polling_scenarios!(HelpScout);

    #[tokio::test]
    async fn helpscout_a_token_is_reused_until_it_expires_and_renewed_once_after_a_401() {
        let (db, slack, clock) = (
            TestDatabase::new(Backend::Sqlite).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let (api, state) = crate::polling::emulator(
            HelpScout,
            vec![Rating::new(51, false, clock.now_ms() - 60_000)],
            10,
        )
        .await;
        let app = spawn(HelpScout, &api, &slack, &db, &clock).await;
        poll(HelpScout, &app).await.unwrap();
        poll(HelpScout, &app).await.unwrap();
        assert_eq!(
            state.lock().unwrap().tokens_issued,
            1,
            "the token is cached"
        );
        // Help Scout revokes it (a rotated secret): a 401, a new token, a retry.
        state.lock().unwrap().valid_token = Some("someone-else".into());
        poll(HelpScout, &app).await.unwrap();
        assert_eq!(state.lock().unwrap().tokens_issued, 2);
        let statuses: Vec<String> = pages(HelpScout, &api)
            .await
            .iter()
            .map(|r| {
                r.headers
                    .get("authorization")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            statuses[2..],
            ["Bearer hs-token-1", "Bearer hs-token-2"],
            "one retry with the new token"
        );
        // Past its two hours, the token is renewed before use.
        clock.advance(Duration::from_secs(7200));
        poll(HelpScout, &app).await.unwrap();
        assert_eq!(state.lock().unwrap().tokens_issued, 3);
        // Wrong credentials are a clear, permanent error.
        state.lock().unwrap().valid_token = Some("someone-else".into());
        let api_requests = api.received_requests().await.unwrap().len();
        Mock::given(method("POST"))
            .and(path(TOKEN))
            .respond_with(ResponseTemplate::new(401))
            .with_priority(1)
            .mount(&api)
            .await;
        let error = poll(HelpScout, &app).await.unwrap_err().to_string();
        assert!(error.contains("client_id and client_secret"), "{error}");
        assert!(
            !error.contains("hs-app-secret"),
            "the secret is never in a message"
        );
        assert_eq!(
            api.received_requests().await.unwrap().len(),
            api_requests + 2,
            "one refresh, no loop"
        );
        app.stop().await;
    }
}
