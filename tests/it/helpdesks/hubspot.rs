//! HubSpot: webhooks carry only ids (every rating is fetched from the CRM
//! API). Its fetch scenarios and its API emulation for `polling.rs` are below.

/// The helpdesk's API emulated under the poller; every scenario of `polling.rs` runs against it.
mod api {
    // HubSpot, emulated: the feedback submissions search (`hs_lastmodifieddate`
    // GTE/LTE filters, ascending sort, `after` paging, and HubSpot's refusal
    // to page past 10,000 results), the batch read of ticket associations, the
    // single-object read the webhook's fetch uses, and the secondly 429.

    use serde_json::{Value, json};
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use csatwatch::clock::{Clock as _, ManualClock};

    use tokio_util::sync::CancellationToken;

    use crate::polling::*;
    use crate::support::*;
    use csatwatch::sources::hubspot::signature::sign;

    const SECRET: &str = "hubspot-client-secret";
    const PUBLIC_URL: &str = "https://csat.example.com";
    const SEARCH: &str = "/crm/v3/objects/feedback_submissions/search";
    const ASSOCIATIONS: &str = "/crm/v4/associations/feedback_submissions/tickets/batch/read";

    #[derive(Clone, Copy)]
    pub struct Hubspot;

    fn submission(r: &Rating) -> Value {
        json!({
            "id": r.item.to_string(),
            "properties": {
                "hs_survey_type": "CSAT", "hs_survey_name": "Support CSAT",
                "hs_value": if r.bad { "0" } else { "2" },
                "hs_sentiment": if r.bad { "NEGATIVE" } else { "POSITIVE" },
                "hs_content": if r.comment.is_empty() { Value::Null } else { Value::from(r.comment.clone()) },
                "hs_submission_timestamp": rfc3339(r.created_ms), "hs_contact_id": "51",
                "hs_createdate": rfc3339(r.created_ms), "hs_lastmodifieddate": rfc3339(r.modified_ms),
                "hs_object_id": r.item.to_string()
            },
            "createdAt": rfc3339(r.created_ms), "updatedAt": rfc3339(r.modified_ms), "archived": false
        })
    }

    fn authorised(request: &Request) -> bool {
        request
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap())
            == Some("Bearer pat-na1-poll")
    }

    fn filter(body: &Value, operator: &str) -> Option<i64> {
        body.pointer("/filterGroups/0/filters")?
            .as_array()?
            .iter()
            .find(|f| f["propertyName"] == "hs_lastmodifieddate" && f["operator"] == operator)
            .and_then(|f| f["value"].as_str()?.parse().ok())
    }

    struct Search(Shared);

    impl Respond for Search {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            if !authorised(request) {
                return ResponseTemplate::new(401);
            }
            let mut state = self.0.lock().unwrap();
            if std::mem::take(&mut state.throttle_next) {
                return ResponseTemplate::new(429).set_body_json(json!({
                    "status": "error", "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT", "policyName": "SECONDLY"
                }));
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(body["sorts"][0]["direction"], "ASCENDING");
            let after: usize = body["after"].as_str().map_or(0, |a| a.parse().unwrap());
            if after >= 10_000 {
                return ResponseTemplate::new(400)
                    .set_body_json(json!({"status": "error", "message": "paging past 10,000"}));
            }
            if after > 0 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let (gte, lte) = (
                filter(&body, "GTE").unwrap(),
                filter(&body, "LTE").unwrap_or(i64::MAX),
            );
            let mut matching: Vec<&Rating> = state
                .ratings
                .iter()
                .filter(|r| r.modified_ms >= gte && r.modified_ms <= lte)
                .collect();
            matching.sort_by_key(|r| (r.modified_ms, r.item));
            let limit = (body["limit"].as_u64().unwrap() as usize).min(state.page_size);
            let end = (after + limit).min(matching.len());
            let mut answer = json!({
                "total": matching.len(),
                "results": matching[after.min(end)..end].iter().map(|r| submission(r)).collect::<Vec<_>>(),
            });
            if end < matching.len() {
                answer["paging"] = json!({"next": {"after": end.to_string(), "link": "?after="}});
            }
            ResponseTemplate::new(200).set_body_json(answer)
        }
    }

    struct Associations(Shared);

    impl Respond for Associations {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let state = self.0.lock().unwrap();
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let results: Vec<Value> = body["inputs"].as_array().unwrap().iter().filter_map(|input| {
            let id: u64 = input["id"].as_str()?.parse().ok()?;
            let r = state.ratings.iter().find(|r| r.item == id)?;
            Some(json!({"from": {"id": id.to_string()}, "to": [{"toObjectId": r.conversation, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 32}]}]}))
        }).collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "COMPLETE", "results": results}))
        }
    }

    /// `GET …/feedback_submissions/{id}?associations=tickets`, for the webhook.
    struct One(Shared);

    impl Respond for One {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let id: u64 = request
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let state = self.0.lock().unwrap();
            let r = state.ratings.iter().find(|r| r.item == id).unwrap();
            let mut object = submission(r);
            object["associations"] = json!({"tickets": {"results": [{"id": r.conversation.to_string(), "type": "feedback_submission_to_ticket"}]}});
            ResponseTemplate::new(200).set_body_json(object)
        }
    }

    impl Helpdesk for Hubspot {
        const SOURCE: &'static str = "hub";

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"hub\"\nkind = \"hubspot\"\nsecret = \"{SECRET}\"\npublic_url = \"{PUBLIC_URL}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\ntoken = \"pat-na1-poll\"\n"
            )
        }

        async fn mount(self, api: &MockServer, state: Shared) {
            Mock::given(method("POST"))
                .and(path(SEARCH))
                .respond_with(Search(state.clone()))
                .mount(api)
                .await;
            Mock::given(method("POST"))
                .and(path(ASSOCIATIONS))
                .respond_with(Associations(state.clone()))
                .mount(api)
                .await;
            Mock::given(method("GET"))
                .and(path_regex(r"^/crm/v3/objects/feedback_submissions/\d+$"))
                .respond_with(One(state))
                .mount(api)
                .await;
        }

        fn is_page(self, request: &Request) -> bool {
            request.url.path() == SEARCH
        }

        fn window_start_ms(self, request: &Request) -> Option<i64> {
            filter(&serde_json::from_slice(&request.body).unwrap(), "GTE")
        }

        fn check_page_request(self, request: &Request) {
            assert!(authorised(request));
            assert_eq!(request.method.as_str(), "POST");
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            let body = serde_json::to_vec(&json!([{
            "eventId": 1001, "subscriptionId": 2001, "portalId": 62515, "appId": 3001,
            "occurredAt": r.modified_ms, "subscriptionType": "object.creation", "attemptNumber": 0,
            "objectId": r.item, "objectTypeId": "0-19", "changeFlag": "CREATED", "changeSource": "SURVEYS"
        }]))
        .unwrap();
            let ts = app.clock.now_ms().to_string();
            let uri = format!("{PUBLIC_URL}/webhooks/hub");
            let headers = [
                (
                    "X-HubSpot-Signature-v3".to_string(),
                    sign(SECRET.as_bytes(), "POST", &uri, &body, &ts),
                ),
                ("X-HubSpot-Request-Timestamp".to_string(), ts),
            ];
            app.post("hub", &headers, &body).await.0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (r.conversation.to_string(), r.item.to_string())
        }

        fn second_start_ms(self, first: &Rating, _first_poll_ms: i64) -> i64 {
            first.modified_ms - 600_000
        }
    }

    polling_scenarios!(Hubspot);

    #[tokio::test]
    async fn hubspot_a_backfill_past_ten_thousand_results_moves_its_window_forward() {
        let (db, slack, clock) = (
            TestDatabase::new(Backend::Sqlite).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let t = clock.now_ms() - 3_600_000;
        let ratings = (0..10_050)
            .map(|i| Rating::new(20_000 + i, false, t + i as i64))
            .collect();
        let (api, _state) = crate::polling::emulator(Hubspot, ratings, 100).await;
        let app = spawn(Hubspot, &api, &slack, &db, &clock).await;
        let source = &app.app.sources.get("hub").unwrap();
        let report = app
            .app
            .pollers
            .backfill(
                source,
                t - 1000,
                None,
                &CancellationToken::new(),
                &mut |_| {},
            )
            .await
            .unwrap();
        // HubSpot refuses `after` = 10,000 (the emulator answers 400), so the
        // poller started a second query at the last modified date it read.
        assert_eq!(report.new, 10_050);
        let starts: Vec<i64> = pages(Hubspot, &api)
            .await
            .iter()
            .filter_map(|r| Hubspot.window_start_ms(r))
            .collect();
        assert_eq!(starts.iter().filter(|s| **s == t - 1000).count(), 100);
        assert_eq!(
            starts.last(),
            Some(&(t + 9_999)),
            "the new window starts at the 10,000th"
        );
        app.stop().await;
    }
}

/// Webhooks that name a rating, fetched from the emulated API.
mod fetched {

    use std::time::Duration;

    use csatwatch::clock::Clock as _;
    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};

    use crate::helpdesks::fetch::*;
    use crate::support::*;

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
                    ok_json("freshdesk/api_ratings_negative.json")
                        .set_delay(Duration::from_secs(3)),
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
}
