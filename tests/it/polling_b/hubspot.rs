//! HubSpot, emulated: the feedback submissions search (`hs_lastmodifieddate`
//! GTE/LTE filters, ascending sort, `after` paging, and HubSpot's refusal
//! to page past 10,000 results), the batch read of ticket associations, the
//! single-object read the webhook's fetch uses, and the secondly 429.

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;
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
        ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": results}))
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

    fn window_start_ms(self, request: &Request) -> i64 {
        filter(&serde_json::from_slice(&request.body).unwrap(), "GTE").unwrap()
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

#[tokio::test]
async fn hubspot_a_first_poll_reads_every_page_and_alerts_recent_negatives() {
    a_first_poll_reads_every_page_and_alerts_recent_negatives(Hubspot).await;
}

#[tokio::test]
async fn hubspot_a_restart_mid_way_resumes_from_the_saved_cursor() {
    a_restart_mid_way_resumes_from_the_saved_cursor(Hubspot).await;
}

#[tokio::test]
async fn hubspot_a_secondly_429_is_waited_out() {
    a_429_is_waited_out_as_the_helpdesk_asks(Hubspot).await;
}

#[tokio::test]
async fn hubspot_a_rating_seen_by_webhook_and_by_poll_alerts_once() {
    a_rating_seen_by_webhook_and_by_poll_alerts_once(Hubspot).await;
}

#[tokio::test]
async fn hubspot_a_rating_changed_inside_the_overlap_window_is_picked_up() {
    a_rating_changed_inside_the_overlap_window_is_picked_up(Hubspot).await;
}

#[tokio::test]
async fn hubspot_a_small_backfill_records_all_and_posts_nothing() {
    a_small_backfill_records_all_and_posts_nothing(Hubspot).await;
}

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
    let (api, _state) = super::emulator(Hubspot, ratings, 100).await;
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
        .map(|r| Hubspot.window_start_ms(r))
        .collect();
    assert_eq!(starts.iter().filter(|s| **s == t - 1000).count(), 100);
    assert_eq!(
        starts.last(),
        Some(&(t + 9_999)),
        "the new window starts at the 10,000th"
    );
    app.stop().await;
}
