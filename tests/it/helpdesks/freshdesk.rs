//! Freshdesk: an automation rule posts our body with a token header. The
//! rule body usually names only the ticket and the rating is fetched; the
//! fetch scenarios are below, its poller runs the scenarios of
//! `polling_windows.rs`.

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
