//! Gorgias: a Rule calls an HTTP integration with our body and a token
//! header. Its fetch scenarios are below; its poller runs the scenarios of
//! `polling_windows.rs`.

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
