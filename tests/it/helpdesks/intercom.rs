//! Intercom: `X-Hub-Signature: sha1=<hex>` over the body, no timestamp.

use csatwatch::sources::signature::hmac_sha1;
use serde_json::json;

use super::{Ratings, SECRET, Webhook, fixture};

pub fn sign(secret: &str, _now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    vec![(
        "X-Hub-Signature".into(),
        format!(
            "sha1={}",
            hex::encode(hmac_sha1(secret.as_bytes(), &[body]))
        ),
    )]
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "intercom",
        toml: "[[sources]]\nname = \"intercom\"\nkind = \"intercom\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("intercom/negative.json"),
            negative_key: ("515", ""),
            positive: fixture("intercom/positive.json"),
            changed: fixture("intercom/changed.json"),
            changed_key: ("516", ""),
            non_rating: fixture("intercom/ping.json"),
            non_rating_headers: &[],
            malformed: json!({"topic": "conversation.rating.added", "data": {"item": {"id": "9", "conversation_rating": {"rating": 9}}}}),
            malformed_field: "data.item.conversation_rating.rating",
        }),
        rated: fixture("intercom/negative.json"),
        rating_pointer: "/data/item/conversation_rating/rating",
    }
}

/// The helpdesk's API emulated under the poller; every scenario of `polling.rs` runs against it.
mod api {
    // Intercom's `POST /conversations/search`, emulated: the bearer token and
    // `Intercom-Version` are required, the query's `>` times filter
    // (inclusively, as Intercom's do), pages follow `starting_after`, and a
    // 429 carries `X-RateLimit-Reset` (a Unix time).

    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use crate::polling::*;
    use crate::support::*;
    use csatwatch::sources::signature::hmac_sha1;

    const SECRET: &str = "intercom-client-secret";

    #[derive(Clone, Copy)]
    pub struct Intercom;

    fn conversation(r: &Rating) -> Value {
        json!({
            "type": "conversation",
            "id": r.conversation.to_string(),
            "created_at": r.created_ms / 1000 - 3600,
            "updated_at": r.modified_ms / 1000,
            "admin_assignee_id": 991_267_715,
            "conversation_rating": {
                "rating": if r.bad { 1 } else { 5 },
                "remark": if r.comment.is_empty() { Value::Null } else { Value::from(r.comment.clone()) },
                "created_at": r.created_ms / 1000 - 60,
                "replied_at": r.created_ms / 1000,
                "updated_at": r.modified_ms / 1000,
                "contact": {"type": "contact", "id": "6762f14a1bb69f9f2193bbb3"},
                "teammate": {"type": "admin", "id": "991267715"}
            }
        })
    }

    /// Every `{field, operator, value}` leaf of a search query.
    fn leaves(query: &Value, out: &mut Vec<(String, String, i64)>) {
        if let Some(field) = query.get("field").and_then(Value::as_str) {
            let op = query["operator"].as_str().unwrap_or("").to_string();
            out.push((field.to_string(), op, query["value"].as_i64().unwrap_or(0)));
        }
        for sub in query
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            leaves(sub, out);
        }
    }

    fn since_s(body: &Value) -> i64 {
        let mut all = Vec::new();
        leaves(&body["query"], &mut all);
        all.iter()
            .filter(|(f, op, _)| op == ">" && f != "conversation_rating.score")
            .map(|(_, _, v)| *v)
            .min()
            .expect("a time filter")
    }

    struct Search(Shared);

    impl Respond for Search {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let auth = request
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            let version = request
                .headers
                .get("intercom-version")
                .map(|v| v.to_str().unwrap().to_string());
            if auth.as_deref() != Some("Bearer ic-access-token")
                || version.as_deref() != Some("2.14")
            {
                return ResponseTemplate::new(401).set_body_json(json!({"type": "error.list"}));
            }
            let mut state = self.0.lock().unwrap();
            if std::mem::take(&mut state.throttle_next) {
                let reset = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 2;
                return ResponseTemplate::new(429)
                    .insert_header("X-RateLimit-Remaining", "0")
                    .insert_header("X-RateLimit-Reset", reset.to_string().as_str());
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let since = since_s(&body);
            let start: usize = body
                .pointer("/pagination/starting_after")
                .and_then(Value::as_str)
                .map_or(0, |s| s.parse().unwrap());
            if start > 0 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let per_page =
                (body["pagination"]["per_page"].as_u64().unwrap() as usize).min(state.page_size);
            let mut matching: Vec<&Rating> = state
                .ratings
                .iter()
                .filter(|r| r.created_ms / 1000 >= since || r.modified_ms / 1000 >= since)
                .collect();
            matching.sort_by_key(|r| (r.modified_ms, r.conversation));
            let end = (start + per_page).min(matching.len());
            let mut pages = json!({"type": "pages", "per_page": per_page});
            if end < matching.len() {
                pages["next"] = json!({"starting_after": end.to_string()});
            }
            ResponseTemplate::new(200)
            .insert_header("X-RateLimit-Remaining", "9000")
            .set_body_json(json!({
                "type": "conversation.list",
                "conversations": matching[start..end].iter().map(|r| conversation(r)).collect::<Vec<_>>(),
                "total_count": matching.len(),
                "pages": pages,
            }))
        }
    }

    impl Helpdesk for Intercom {
        const SOURCE: &'static str = "ic";

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"ic\"\nkind = \"intercom\"\nsecret = \"{SECRET}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\ntoken = \"ic-access-token\"\n"
            )
        }

        async fn mount(self, api: &MockServer, state: Shared) {
            Mock::given(method("POST"))
                .and(path("/conversations/search"))
                .respond_with(Search(state))
                .mount(api)
                .await;
        }

        fn is_page(self, request: &Request) -> bool {
            request.url.path() == "/conversations/search"
        }

        fn window_start_ms(self, request: &Request) -> Option<i64> {
            Some(since_s(&serde_json::from_slice(&request.body).unwrap()) * 1000)
        }

        fn check_page_request(self, request: &Request) {
            assert_eq!(
                header(request, "authorization").as_deref(),
                Some("Bearer ic-access-token")
            );
            assert_eq!(header(request, "intercom-version").as_deref(), Some("2.14"));
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            let body = serde_json::to_vec(&json!({
                "type": "notification_event", "app_id": "abc123",
                "id": format!("notif_{}", r.conversation), "topic": "conversation.rating.added",
                "created_at": r.modified_ms / 1000, "delivery_attempts": 1,
                "data": {"type": "notification_event_data", "item": conversation(r)}
            }))
            .unwrap();
            let signature = format!(
                "sha1={}",
                hex::encode(hmac_sha1(SECRET.as_bytes(), &[&body]))
            );
            app.post("ic", &[("X-Hub-Signature".into(), signature)], &body)
                .await
                .0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (r.conversation.to_string(), String::new())
        }

        fn second_start_ms(self, first: &Rating, _first_poll_ms: i64) -> i64 {
            // Ten minutes before the newest change the first poll saw.
            (first.modified_ms / 1000 - 600) * 1000
        }
    }

    polling_scenarios!(Intercom);
}
