//! Closing the loop from Slack, end to end against a mock Slack (views.open,
//! users.info, chat.postEphemeral, users.lookupByEmail, conversations.open)
//! and an emulated API for each helpdesk: "Add note", "Reopen" and "Assign
//! to me" for every helpdesk that supports them, the follow-up outcome
//! modal, refused forgeries, failures shown to the clicker only, the
//! customer's story, names for ids, the settle window and the agent's DM.

use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::domain::{RatingEvent, Scale, Score, Via};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::slack::{SIGNING_SECRET, calls, interactive, mock_slack};
use crate::support::*;

const DANA: &str = "U0DANA";
const TICKET: &str = "4242";

/// The mock Slack of `slack.rs` plus what closing the loop calls.
async fn loop_slack() -> MockServer {
    let server = mock_slack().await;
    let answers = [
        ("views.open", json!({"ok": true, "view": {"id": "V0MODAL"}})),
        (
            "users.info",
            json!({"ok": true, "user": {"id": DANA, "name": "dana", "profile": {"display_name": "Dana", "email": "Dana@Acme.example"}}}),
        ),
        (
            "chat.postEphemeral",
            json!({"ok": true, "message_ts": "1.2"}),
        ),
        (
            "users.lookupByEmail",
            json!({"ok": true, "user": {"id": "U0SAM"}}),
        ),
        (
            "conversations.open",
            json!({"ok": true, "channel": {"id": "D0SAM"}}),
        ),
    ];
    // users.info and users.lookupByEmail are GETs; the rest POSTs.
    for (api, answer) in answers {
        Mock::given(path(format!("/api/{api}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(&server)
            .await;
    }
    server
}

/// A signed interaction; returns the status and the body.
async fn interact(app: &TestApp, payload: &Value, secret: &str, ts_secs: i64) -> (u16, String) {
    let body = format!(
        "payload={}",
        form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
    );
    let mac = csatwatch::sources::signature::hmac_sha256(
        secret.as_bytes(),
        &[
            b"v0:",
            ts_secs.to_string().as_bytes(),
            b":",
            body.as_bytes(),
        ],
    );
    let response = app
        .client
        .post(app.url("/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts_secs.to_string())
        .header("x-slack-signature", format!("v0={}", hex::encode(mac)))
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn send(app: &TestApp, payload: &Value) -> (u16, String) {
    interact(app, payload, SIGNING_SECRET, app.clock.now_ms() / 1000).await
}

fn button(action_id: &str, alert_id: i64) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": DANA, "username": "dana", "name": "dana", "team_id": "T1"},
        "channel": {"id": "C0CSAT"},
        "trigger_id": "1337.42.abcdef",
        "container": {"type": "message", "message_ts": "1700000000.000001"},
        "actions": [{"action_id": action_id, "block_id": format!("csat_alert_{alert_id}"),
                     "value": alert_id.to_string(), "type": "button", "action_ts": "1700000001.1"}],
    })
}

fn submission(callback_id: &str, alert_id: i64, values: Value) -> Value {
    json!({
        "type": "view_submission",
        "user": {"id": DANA, "username": "dana", "name": "dana", "team_id": "T1"},
        "view": {
            "id": "V0MODAL",
            "callback_id": callback_id,
            "private_metadata": json!({"alert": alert_id}).to_string(),
            "state": {"values": values},
        },
    })
}

fn note_values(text: &str) -> Value {
    json!({"note": {"value": {"type": "plain_text_input", "value": text}}})
}

/// Records a rating for `source` as a webhook would.
async fn rate(
    app: &TestApp,
    source: &str,
    conversation: &str,
    score: i64,
    customer: Option<&str>,
    agent: Option<&str>,
    team: Option<&str>,
) -> i64 {
    let mut event = RatingEvent::new(conversation, Score::new(Scale::FivePoint, score).unwrap());
    event.customer = customer.map(str::to_string);
    event.company = customer.map(|_| "Globex".to_string());
    event.agent = agent.map(str::to_string);
    event.team = team.map(str::to_string);
    event.comment = Some("Nobody answered".into());
    event.rated_at_ms = Some(app.clock.now_ms());
    let configured = app
        .app
        .sources
        .get(source)
        .expect("configured source")
        .clone();
    let recorded = app
        .app
        .pipeline
        .record(&configured, None, &[event], Via::Webhook)
        .await
        .unwrap();
    recorded.ratings[0].rating_id
}

/// The post alert (kind `post`) of `rating_id`.
async fn post_of(app: &TestApp, rating_id: i64) -> csatwatch::store::AlertRecord {
    app.app
        .store
        .all_alerts()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.rating_id == rating_id && a.kind == "post")
        .expect("a post for the rating")
}

/// Every call to a read method (`users.info`, `users.lookupByEmail`: GET
/// with query parameters), its parameters as a JSON object.
async fn query_calls(server: &MockServer, api_method: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == format!("/api/{api_method}"))
        .map(|r| {
            let fields: serde_json::Map<String, Value> = r
                .url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), Value::from(v.into_owned())))
                .collect();
            Value::Object(fields)
        })
        .collect()
}

/// Thread replies' fallback texts.
async fn thread_texts(slack: &MockServer) -> Vec<String> {
    calls(slack, "chat.postMessage")
        .await
        .into_iter()
        .filter(|m| m.get("thread_ts").is_some())
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether `fragment`'s every key (recursively) is in `value` with an equal value.
fn contains(value: &Value, fragment: &Value) -> bool {
    match (value, fragment) {
        (Value::Object(v), Value::Object(f)) => f
            .iter()
            .all(|(k, fv)| v.get(k).is_some_and(|vv| contains(vv, fv))),
        _ => value == fragment,
    }
}

/// One helpdesk's emulated API and what each action must send it.
struct Desk {
    name: &'static str,
    config: String,
    /// (method, path, answer) the emulation serves.
    serves: Vec<(&'static str, String, Value)>,
    /// What "Add note", "Reopen" and "Assign to me" must each send:
    /// (method, path, JSON fragment of the body).
    note: (&'static str, String, Value),
    reopen: (&'static str, String, Value),
    assign: (&'static str, String, Value),
}

fn desks(api: &str) -> Vec<Desk> {
    let source = |name: &str, kind: &str, extra: &str, keys: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\nkind = \"{kind}\"\nsecret = \"helpdesk-test-secret\"\n{extra}[sources.api]\nbase_url = \"{api}\"\nrequest_timeout = \"2s\"\n{keys}\n"
        )
    };
    let dana = "dana@acme.example";
    vec![
        Desk {
            name: "zd",
            config: source(
                "zd",
                "zendesk",
                "",
                "email = \"ops@acme.example\"\ntoken = \"zd-token\"",
            ),
            serves: vec![
                (
                    "GET",
                    "/api/v2/users/search.json".into(),
                    json!({"users": [
                    {"id": 9, "email": dana, "role": "end-user", "name": "Dana the customer"},
                    {"id": 7001, "email": dana, "role": "agent", "name": "Dana"}]}),
                ),
                (
                    "PUT",
                    format!("/api/v2/tickets/{TICKET}.json"),
                    json!({"ticket": {}}),
                ),
            ],
            note: (
                "PUT",
                format!("/api/v2/tickets/{TICKET}.json"),
                json!({"ticket": {"comment": {"public": false, "author_id": 7001}}}),
            ),
            reopen: (
                "PUT",
                format!("/api/v2/tickets/{TICKET}.json"),
                json!({"ticket": {"status": "open"}}),
            ),
            assign: (
                "PUT",
                format!("/api/v2/tickets/{TICKET}.json"),
                json!({"ticket": {"assignee_id": 7001}}),
            ),
        },
        Desk {
            name: "ic",
            config: source("ic", "intercom", "", "token = \"ic-token\""),
            serves: vec![
                (
                    "GET",
                    "/admins".into(),
                    json!({"admins": [{"id": "814", "email": dana, "name": "Dana"}]}),
                ),
                ("POST", format!("/conversations/{TICKET}/reply"), json!({})),
                ("POST", format!("/conversations/{TICKET}/parts"), json!({})),
            ],
            note: (
                "POST",
                format!("/conversations/{TICKET}/reply"),
                json!({"message_type": "note", "type": "admin", "admin_id": "814"}),
            ),
            reopen: (
                "POST",
                format!("/conversations/{TICKET}/parts"),
                json!({"message_type": "open", "admin_id": "814"}),
            ),
            assign: (
                "POST",
                format!("/conversations/{TICKET}/parts"),
                json!({"message_type": "assignment", "assignee_id": "814"}),
            ),
        },
        Desk {
            name: "fd",
            config: source("fd", "freshdesk", "", "api_key = \"fd-key\""),
            serves: vec![
                (
                    "GET",
                    "/api/v2/agents".into(),
                    json!([{"id": 3001, "contact": {"email": dana, "name": "Dana"}}]),
                ),
                (
                    "POST",
                    format!("/api/v2/tickets/{TICKET}/notes"),
                    json!({"id": 1}),
                ),
                (
                    "PUT",
                    format!("/api/v2/tickets/{TICKET}"),
                    json!({"id": 4242}),
                ),
            ],
            note: (
                "POST",
                format!("/api/v2/tickets/{TICKET}/notes"),
                json!({"private": true, "user_id": 3001}),
            ),
            reopen: (
                "PUT",
                format!("/api/v2/tickets/{TICKET}"),
                json!({"status": 2}),
            ),
            assign: (
                "PUT",
                format!("/api/v2/tickets/{TICKET}"),
                json!({"responder_id": 3001}),
            ),
        },
        Desk {
            name: "hs",
            config: source(
                "hs",
                "helpscout",
                "",
                "client_id = \"hs-app\"\nclient_secret = \"hs-secret\"",
            ),
            serves: vec![
                (
                    "POST",
                    "/v2/oauth2/token".into(),
                    json!({"access_token": "hs-token", "expires_in": 7200}),
                ),
                (
                    "GET",
                    "/v2/users".into(),
                    json!({"_embedded": {"users": [{"id": 501, "email": dana, "firstName": "Dana", "lastName": "Lee"}]}}),
                ),
                (
                    "POST",
                    format!("/v2/conversations/{TICKET}/notes"),
                    Value::Null,
                ),
                ("PATCH", format!("/v2/conversations/{TICKET}"), Value::Null),
            ],
            note: (
                "POST",
                format!("/v2/conversations/{TICKET}/notes"),
                json!({"user": 501}),
            ),
            reopen: (
                "PATCH",
                format!("/v2/conversations/{TICKET}"),
                json!({"op": "replace", "path": "/status", "value": "active"}),
            ),
            assign: (
                "PATCH",
                format!("/v2/conversations/{TICKET}"),
                json!({"op": "replace", "path": "/assignTo", "value": 501}),
            ),
        },
        Desk {
            name: "cw",
            config: source(
                "cw",
                "chatwoot",
                "",
                "token = \"cw-token\"\naccount_id = \"7\"",
            ),
            serves: vec![
                (
                    "GET",
                    "/api/v1/accounts/7/agents".into(),
                    json!([{"id": 11, "email": dana, "name": "Dana"}]),
                ),
                (
                    "POST",
                    format!("/api/v1/accounts/7/conversations/{TICKET}/messages"),
                    json!({"id": 1}),
                ),
                (
                    "POST",
                    format!("/api/v1/accounts/7/conversations/{TICKET}/toggle_status"),
                    json!({"current_status": "open"}),
                ),
                (
                    "POST",
                    format!("/api/v1/accounts/7/conversations/{TICKET}/assignments"),
                    json!({"id": 11}),
                ),
            ],
            note: (
                "POST",
                format!("/api/v1/accounts/7/conversations/{TICKET}/messages"),
                json!({"private": true}),
            ),
            reopen: (
                "POST",
                format!("/api/v1/accounts/7/conversations/{TICKET}/toggle_status"),
                json!({"status": "open"}),
            ),
            assign: (
                "POST",
                format!("/api/v1/accounts/7/conversations/{TICKET}/assignments"),
                json!({"assignee_id": 11}),
            ),
        },
        Desk {
            name: "gg",
            config: source(
                "gg",
                "gorgias",
                "",
                "email = \"ops@shop.example\"\napi_key = \"gg-key\"",
            ),
            serves: vec![
                (
                    "GET",
                    "/api/users".into(),
                    json!({"data": [{"id": 21, "email": dana, "name": "Dana"}]}),
                ),
                (
                    "POST",
                    format!("/api/tickets/{TICKET}/messages"),
                    json!({"id": 1}),
                ),
                ("PUT", format!("/api/tickets/{TICKET}"), json!({"id": 4242})),
            ],
            note: (
                "POST",
                format!("/api/tickets/{TICKET}/messages"),
                json!({"channel": "internal-note", "from_agent": true, "sender": {"id": 21}}),
            ),
            reopen: (
                "PUT",
                format!("/api/tickets/{TICKET}"),
                json!({"status": "open"}),
            ),
            assign: (
                "PUT",
                format!("/api/tickets/{TICKET}"),
                json!({"assignee_user": {"id": 21}}),
            ),
        },
        Desk {
            name: "hub",
            config: source(
                "hub",
                "hubspot",
                "public_url = \"https://csat.acme.example/webhooks/hub\"\n",
                "token = \"pat-na1\"",
            ),
            serves: vec![
                (
                    "GET",
                    "/crm/v3/owners".into(),
                    json!({"results": [{"id": "31", "email": dana, "firstName": "Dana"}]}),
                ),
                ("POST", "/crm/v3/objects/notes".into(), json!({"id": "n1"})),
                (
                    "GET",
                    format!("/crm/v3/objects/tickets/{TICKET}"),
                    json!({"id": TICKET, "properties": {"hs_pipeline": "0"}}),
                ),
                (
                    "GET",
                    "/crm/v3/pipelines/tickets".into(),
                    json!({"results": [{"id": "0", "stages": [
                    {"id": "4", "displayOrder": 3, "metadata": {"ticketState": "CLOSED"}},
                    {"id": "2", "displayOrder": 1, "metadata": {"ticketState": "OPEN"}},
                    {"id": "1", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}}]}]}),
                ),
                (
                    "PATCH",
                    format!("/crm/v3/objects/tickets/{TICKET}"),
                    json!({"id": TICKET}),
                ),
            ],
            note: (
                "POST",
                "/crm/v3/objects/notes".into(),
                json!({"properties": {"hubspot_owner_id": "31"}}),
            ),
            reopen: (
                "PATCH",
                format!("/crm/v3/objects/tickets/{TICKET}"),
                json!({"properties": {"hs_pipeline_stage": "1"}}),
            ),
            assign: (
                "PATCH",
                format!("/crm/v3/objects/tickets/{TICKET}"),
                json!({"properties": {"hubspot_owner_id": "31"}}),
            ),
        },
        Desk {
            name: "dr",
            config: source("dr", "devrev", "", "token = \"dr-pat\""),
            serves: vec![
                (
                    "GET",
                    "/dev-users.list".into(),
                    json!({"dev_users": [{"id": "DEVU-1", "email": dana, "full_name": "Dana"}]}),
                ),
                (
                    "POST",
                    "/timeline-entries.create".into(),
                    json!({"timeline_entry": {}}),
                ),
                ("POST", "/works.update".into(), json!({"work": {}})),
            ],
            note: (
                "POST",
                "/timeline-entries.create".into(),
                json!({"type": "timeline_comment", "object": TICKET, "visibility": "internal"}),
            ),
            reopen: (
                "POST",
                "/works.update".into(),
                json!({"id": TICKET, "stage": {"name": "queued"}}),
            ),
            assign: (
                "POST",
                "/works.update".into(),
                json!({"id": TICKET, "owned_by": {"set": ["DEVU-1"]}}),
            ),
        },
    ]
}

async fn serve(helpdesk: &MockServer, serves: &[(&'static str, String, Value)]) {
    for (verb, route, answer) in serves {
        let response = if answer.is_null() {
            ResponseTemplate::new(204)
        } else {
            ResponseTemplate::new(200).set_body_json(answer.clone())
        };
        Mock::given(method(*verb))
            .and(path(route.as_str()))
            .respond_with(response)
            .mount(helpdesk)
            .await;
    }
}

/// The writes the helpdesk received after the first `skip` requests.
async fn writes_since(helpdesk: &MockServer, skip: usize) -> Vec<Request> {
    helpdesk
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .skip(skip)
        .filter(|r| r.method.as_str() != "GET" && r.url.path() != "/v2/oauth2/token")
        .collect()
}

async fn seen(helpdesk: &MockServer) -> usize {
    helpdesk.received_requests().await.unwrap_or_default().len()
}

fn assert_sent(
    writes: &[Request],
    (verb, route, fragment): &(&str, String, Value),
    desk: &str,
    what: &str,
) -> Value {
    assert_eq!(
        writes.len(),
        1,
        "{desk} {what}: one write, got {:?}",
        writes.iter().map(|r| r.url.path()).collect::<Vec<_>>()
    );
    let request = &writes[0];
    assert_eq!(request.method.as_str(), *verb, "{desk} {what}");
    assert_eq!(request.url.path(), route, "{desk} {what}");
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    assert!(
        contains(&body, fragment),
        "{desk} {what}: {body} lacks {fragment}"
    );
    body
}

#[tokio::test]
async fn every_helpdesk_takes_a_note_a_reopen_and_an_assignment_from_the_alert() {
    for backend in backends() {
        let helpdesk = MockServer::start().await;
        let all = desks(&helpdesk.uri());
        let config: String = all.iter().map(|d| d.config.clone()).collect();
        for desk in &all {
            serve(&helpdesk, &desk.serves).await;
        }
        let db = TestDatabase::new(backend).await;
        let slack = loop_slack().await;
        let app = TestApp::spawn(
            interactive(&db.url, &slack, &config),
            ManualClock::starting_now(),
        )
        .await;
        for desk in &all {
            let rating_id = rate(&app, desk.name, TICKET, 1, Some("Jane"), None, None).await;
            app.app.flush_alerts().await.unwrap();
            let alert = post_of(&app, rating_id).await;
            let posted = calls(&slack, "chat.postMessage")
                .await
                .last()
                .unwrap()
                .to_string();
            for id in ["csat_note", "csat_reopen", "csat_assign"] {
                assert!(posted.contains(id), "{} alert lacks {id}", desk.name);
            }

            // "Add note": the modal opens at once, the submission adds the note.
            let opened = calls(&slack, "views.open").await.len();
            assert_eq!(send(&app, &button("csat_note", alert.id)).await.0, 200);
            let views = calls(&slack, "views.open").await;
            assert_eq!(views.len(), opened + 1);
            assert_eq!(views[opened]["trigger_id"], "1337.42.abcdef");
            assert_eq!(views[opened]["view"]["callback_id"], "csat_note_modal");
            let before = seen(&helpdesk).await;
            let (status, body) = send(
                &app,
                &submission(
                    "csat_note_modal",
                    alert.id,
                    note_values("Called her, refund sent"),
                ),
            )
            .await;
            assert_eq!((status, body.as_str()), (200, ""), "{}", desk.name);
            let sent = assert_sent(
                &writes_since(&helpdesk, before).await,
                &desk.note,
                desk.name,
                "note",
            );
            let text = sent.to_string();
            assert!(
                text.contains("Called her, refund sent") && text.contains("Dana"),
                "{}: {text}",
                desk.name
            );

            let before = seen(&helpdesk).await;
            assert_eq!(send(&app, &button("csat_reopen", alert.id)).await.0, 200);
            assert_sent(
                &writes_since(&helpdesk, before).await,
                &desk.reopen,
                desk.name,
                "reopen",
            );

            let before = seen(&helpdesk).await;
            assert_eq!(send(&app, &button("csat_assign", alert.id)).await.0, 200);
            assert_sent(
                &writes_since(&helpdesk, before).await,
                &desk.assign,
                desk.name,
                "assign",
            );

            let activity = app.app.store.activity(rating_id).await.unwrap();
            let kinds: Vec<(&str, &str)> = activity
                .iter()
                .map(|a| (a.kind.as_str(), a.status.as_str()))
                .collect();
            assert_eq!(
                kinds,
                [("note", "done"), ("reopen", "done"), ("assign", "done")],
                "{}",
                desk.name
            );
            assert!(
                !format!("{activity:?}").contains("refund sent"),
                "the note's text is not kept"
            );

            app.app.flush_alerts().await.unwrap();
            let replies = thread_texts(&slack).await;
            let tail = &replies[replies.len() - 3..];
            assert!(
                tail[0].contains(&format!("Dana added a note to ticket {TICKET}")),
                "{}: {tail:?}",
                desk.name
            );
            assert!(
                tail[1].contains(&format!("Dana reopened ticket {TICKET}")),
                "{tail:?}"
            );
            assert!(
                tail[2].contains(&format!("Dana assigned ticket {TICKET}")),
                "{tail:?}"
            );
        }
        assert!(
            calls(&slack, "chat.postEphemeral").await.is_empty(),
            "no failures"
        );
        app.stop().await;
    }
}

/// A Zendesk source with API credentials at `api`.
fn zendesk_api(api: &str) -> String {
    format!(
        "[[sources]]\nname = \"zd\"\nkind = \"zendesk\"\nsecret = \"helpdesk-test-secret\"\n[sources.api]\nbase_url = \"{api}\"\nrequest_timeout = \"2s\"\nemail = \"ops@acme.example\"\ntoken = \"zd-token\"\n"
    )
}

#[tokio::test]
async fn a_failed_helpdesk_call_is_shown_to_the_clicker_only_and_changes_nothing() {
    for backend in backends() {
        let helpdesk = MockServer::start().await;
        let route = format!("/api/v2/tickets/{TICKET}.json");
        // The reopen: a closed ticket, refused for good.
        Mock::given(method("PUT"))
            .and(path(route.as_str()))
            .respond_with(
                ResponseTemplate::new(422).set_body_json(json!({"error": "RecordInvalid"})),
            )
            .up_to_n_times(1)
            .mount(&helpdesk)
            .await;
        // Then one 503: the next reopen is retried at once and works.
        Mock::given(method("PUT"))
            .and(path(route.as_str()))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&helpdesk)
            .await;
        Mock::given(method("PUT"))
            .and(path(route.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ticket": {}})))
            .mount(&helpdesk)
            .await;
        let db = TestDatabase::new(backend).await;
        let slack = loop_slack().await;
        let app = TestApp::spawn(
            interactive(&db.url, &slack, &zendesk_api(&helpdesk.uri())),
            ManualClock::starting_now(),
        )
        .await;
        let rating_id = rate(&app, "zd", TICKET, 1, Some("Jane"), None, None).await;
        app.app.flush_alerts().await.unwrap();
        let alert = post_of(&app, rating_id).await;
        let rating_before = app
            .app
            .store
            .rating_by_id(rating_id)
            .await
            .unwrap()
            .unwrap();

        assert_eq!(send(&app, &button("csat_reopen", alert.id)).await.0, 200);
        let ephemeral = calls(&slack, "chat.postEphemeral").await;
        assert_eq!(ephemeral.len(), 1, "{backend:?}");
        assert_eq!(ephemeral[0]["user"], DANA);
        assert_eq!(ephemeral[0]["channel"], "C0CSAT");
        let text = ephemeral[0]["text"].as_str().unwrap();
        assert!(
            text.contains("Reopening the ticket failed") && text.contains("HTTP 422"),
            "{text}"
        );
        assert_eq!(
            app.app
                .store
                .rating_by_id(rating_id)
                .await
                .unwrap()
                .unwrap(),
            rating_before
        );
        assert_eq!(
            app.app.store.rating_actions(rating_id).await.unwrap(),
            Default::default()
        );
        let activity = app.app.store.activity(rating_id).await.unwrap();
        assert_eq!(
            (activity[0].kind.as_str(), activity[0].status.as_str()),
            ("reopen", "failed")
        );
        let updates = app.app.flush_alerts().await.unwrap();
        assert_eq!(updates.sent, 0, "a failure threads nothing");

        // A 503 is temporary and reopening twice is harmless: retried once.
        assert_eq!(send(&app, &button("csat_reopen", alert.id)).await.0, 200);
        let puts = writes_since(&helpdesk, 0).await;
        assert_eq!(puts.len(), 3, "422, then 503 and its retry");
        assert_eq!(
            calls(&slack, "chat.postEphemeral").await.len(),
            1,
            "no new error"
        );
        let activity = app.app.store.activity(rating_id).await.unwrap();
        assert_eq!(activity[1].status, "done");

        // A note is never retried (it would show twice), and the modal says why.
        Mock::given(method("PUT"))
            .and(path(route.as_str()))
            .respond_with(ResponseTemplate::new(503))
            .with_priority(1)
            .mount(&helpdesk)
            .await;
        let (status, body) = send(
            &app,
            &submission("csat_note_modal", alert.id, note_values("Called")),
        )
        .await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["response_action"], "errors");
        assert!(
            answer["errors"]["note"]
                .as_str()
                .unwrap()
                .contains("HTTP 503"),
            "{answer}"
        );
        assert_eq!(writes_since(&helpdesk, 0).await.len(), 4, "one attempt");

        app.stop().await;
    }
}

#[tokio::test]
async fn assign_to_me_says_clearly_when_no_agent_has_the_clickers_email() {
    let helpdesk = MockServer::start().await;
    serve(
        &helpdesk,
        &[(
            "GET",
            "/api/v2/users/search.json".into(),
            json!({"users": []}),
        )],
    )
    .await;
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = loop_slack().await;
    let app = TestApp::spawn(
        interactive(&db.url, &slack, &zendesk_api(&helpdesk.uri())),
        ManualClock::starting_now(),
    )
    .await;
    let rating_id = rate(&app, "zd", TICKET, 1, None, None, None).await;
    app.app.flush_alerts().await.unwrap();
    let alert = post_of(&app, rating_id).await;
    assert_eq!(send(&app, &button("csat_assign", alert.id)).await.0, 200);
    let ephemeral = calls(&slack, "chat.postEphemeral").await;
    let text = ephemeral[0]["text"].as_str().unwrap();
    assert!(
        text.contains("no zendesk agent has your Slack email"),
        "{text}"
    );
    assert!(writes_since(&helpdesk, 0).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn followed_up_asks_what_happened_and_the_outcome_is_stored_and_shown() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = loop_slack().await;
        let app = TestApp::spawn(
            interactive(&db.url, &slack, ""),
            ManualClock::starting_now(),
        )
        .await;
        app.post_zendesk(&zendesk_body(51, "bad", "Rude")).await;
        app.app.flush_alerts().await.unwrap();
        let alert = app.app.store.all_alerts().await.unwrap()[0].clone();

        assert_eq!(send(&app, &button("csat_followup", alert.id)).await.0, 200);
        let views = calls(&slack, "views.open").await;
        assert_eq!(views[0]["view"]["callback_id"], "csat_outcome_modal");
        assert_eq!(
            app.app
                .store
                .rating_actions(alert.rating_id)
                .await
                .unwrap()
                .followed_up_by,
            None,
            "nothing recorded until the modal is submitted"
        );

        // A made-up outcome is refused under its field.
        let bad = json!({"outcome": {"value": {"type": "static_select", "selected_option": {"value": "made_up"}}}});
        let (status, body) = send(&app, &submission("csat_outcome_modal", alert.id, bad)).await;
        assert_eq!(status, 200);
        assert!(
            body.contains("\"response_action\":\"errors\"") && body.contains("outcome"),
            "{body}"
        );

        let values = json!({
            "outcome": {"value": {"type": "static_select", "selected_option": {"value": "reached_customer"}}},
            "note": {"value": {"type": "plain_text_input", "value": "Refund promised"}},
        });
        let (status, body) = send(&app, &submission("csat_outcome_modal", alert.id, values)).await;
        assert_eq!((status, body.as_str()), (200, ""));
        let outcome = app
            .app
            .store
            .follow_up_outcome(alert.rating_id)
            .await
            .unwrap();
        assert_eq!(
            outcome.follow_up_outcome.as_deref(),
            Some("reached_customer")
        );
        assert_eq!(outcome.follow_up_note.as_deref(), Some("Refund promised"));
        let actions = app.app.store.rating_actions(alert.rating_id).await.unwrap();
        assert_eq!(actions.followed_up_by.as_deref(), Some(DANA));
        assert_eq!(actions.followed_up_at, Some(app.clock.now_ms()));

        app.app.flush_alerts().await.unwrap();
        let update = calls(&slack, "chat.update")
            .await
            .last()
            .unwrap()
            .to_string();
        assert!(
            update.contains("Outcome:* Reached the customer"),
            "{update}"
        );
        assert!(update.contains("Followed up* by <@U0DANA>"), "{update}");
        let replies = thread_texts(&slack).await;
        assert!(
            replies
                .iter()
                .any(|r| r.contains("dana followed up: Reached the customer")),
            "{replies:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn forged_or_stale_modal_submissions_and_action_clicks_are_refused() {
    let helpdesk = MockServer::start().await;
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = loop_slack().await;
    let app = TestApp::spawn(
        interactive(&db.url, &slack, &zendesk_api(&helpdesk.uri())),
        ManualClock::starting_now(),
    )
    .await;
    let rating_id = rate(&app, "zd", TICKET, 1, None, None, None).await;
    app.app.flush_alerts().await.unwrap();
    let alert = post_of(&app, rating_id).await;
    let now = app.clock.now_ms() / 1000;
    let outcome = submission(
        "csat_outcome_modal",
        alert.id,
        json!({"outcome": {"value": {"selected_option": {"value": "resolved"}}}}),
    );
    for (secret, ts) in [
        ("forged-secret", now),
        (SIGNING_SECRET, now - 301),
        (SIGNING_SECRET, now + 301),
    ] {
        assert_eq!(interact(&app, &outcome, secret, ts).await.0, 401);
        assert_eq!(
            interact(&app, &button("csat_reopen", alert.id), secret, ts)
                .await
                .0,
            401
        );
    }
    assert_eq!(
        app.app.store.follow_up_outcome(rating_id).await.unwrap(),
        Default::default()
    );
    assert!(app.app.store.activity(rating_id).await.unwrap().is_empty());
    assert!(helpdesk.received_requests().await.unwrap().is_empty());
    assert!(calls(&slack, "views.open").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_repeat_detractor_alert_tells_the_customers_story_and_repeat_and_vip_rules_route_it() {
    let rules = r##"
[[rules]]
name = "repeat"
repeat_negative = "30d"
channel = "#repeat"
[[rules]]
name = "vip"
vip = true
channel = "#vip"
"##;
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = loop_slack().await;
        let mut settings = interactive(&db.url, &slack, rules);
        settings.alerts.vip_companies = vec!["Initech".into()];
        let app = TestApp::spawn(settings, ManualClock::starting_now()).await;
        let day = Duration::from_secs(86_400);
        // 60 days ago a negative (outside the rule's 30 days, inside the
        // story's 90), 10 days ago a positive, 5 days ago a negative.
        app.clock.set(app.clock.now_ms() - 60 * 86_400_000);
        rate(&app, "inhouse", "T-1", 1, Some("Jane Customer"), None, None).await;
        app.clock.advance(50 * day);
        rate(&app, "inhouse", "T-2", 5, Some("Jane Customer"), None, None).await;
        app.clock.advance(5 * day);
        let first = rate(&app, "inhouse", "T-3", 1, Some("Jane Customer"), None, None).await;
        app.clock.advance(5 * day);
        let latest = rate(&app, "inhouse", "T-4", 1, Some("Jane Customer"), None, None).await;
        let other = rate(&app, "inhouse", "T-5", 1, Some("Someone Else"), None, None).await;
        app.app.flush_alerts().await.unwrap();

        let app_ref = &app;
        let channel = |id| async move { post_of(app_ref, id).await.channel };
        assert_eq!(channel(latest).await, "#repeat", "{backend:?}");
        assert_eq!(
            channel(other).await,
            "#csat",
            "a first-time detractor takes the default route"
        );
        // The 60-day-old negative is outside the rule's window, so T-3 was not a repeat.
        assert_eq!(channel(first).await, "#csat");

        let posts = calls(&slack, "chat.postMessage").await;
        let latest_post = posts
            .iter()
            .find(|p| p["channel"] == "#repeat")
            .unwrap()
            .to_string();
        assert!(
            latest_post.contains("3rd negative in 90 days"),
            "{latest_post}"
        );
        assert!(
            latest_post.contains("Earlier ratings from this customer: 👎 1/5"),
            "{latest_post}"
        );
        let other_post = posts
            .iter()
            .rfind(|p| p["channel"] == "#csat")
            .unwrap()
            .to_string();
        assert!(
            !other_post.contains("Earlier ratings"),
            "no story for a first rating"
        );

        // VIP by company (Globex is set by `rate`; Initech is the VIP).
        let mut event = RatingEvent::new("T-6", Score::new(Scale::FivePoint, 1).unwrap());
        event.company = Some("initech".into());
        let source = app.app.sources.get("inhouse").unwrap().clone();
        let recorded = app
            .app
            .pipeline
            .record(&source, None, &[event], Via::Webhook)
            .await
            .unwrap();
        assert_eq!(
            post_of(&app, recorded.ratings[0].rating_id).await.channel,
            "#vip"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn agent_and_team_ids_show_as_names_looked_up_once_and_a_failed_lookup_shows_the_id() {
    let helpdesk = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/admins/814"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"type": "admin", "id": "814", "name": "Dana Admin"})),
        )
        .expect(1)
        .mount(&helpdesk)
        .await;
    Mock::given(method("GET"))
        .and(path("/teams/55"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&helpdesk)
        .await;
    let config = format!(
        "[[sources]]\nname = \"ic\"\nkind = \"intercom\"\nsecret = \"helpdesk-test-secret\"\n[sources.api]\nbase_url = \"{}\"\ntoken = \"ic-token\"\n",
        helpdesk.uri()
    );
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = loop_slack().await;
    let app = TestApp::spawn(
        interactive(&db.url, &slack, &config),
        ManualClock::starting_now(),
    )
    .await;
    rate(&app, "ic", "100", 1, None, Some("814"), Some("55")).await;
    app.app.flush_alerts().await.unwrap();
    rate(&app, "ic", "101", 1, None, Some("814"), Some("55")).await;
    app.app.flush_alerts().await.unwrap();
    let posts = calls(&slack, "chat.postMessage").await;
    assert_eq!(posts.len(), 2);
    for post in &posts {
        let text = post.to_string();
        assert!(text.contains("*Agent*\\nDana Admin"), "{text}");
        assert!(
            text.contains("*Team*\\n55"),
            "the id when the lookup failed: {text}"
        );
    }
    // A name is read again once its TTL (default 1h) has passed.
    app.clock.advance(Duration::from_secs(3601));
    helpdesk.verify().await;
    app.stop().await;
}

#[tokio::test]
async fn settle_waits_for_the_customer_to_change_their_mind() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = loop_slack().await;
        let mut settings = interactive(&db.url, &slack, "");
        settings.alerts.settle = Duration::from_secs(120);
        let app = TestApp::spawn(settings, ManualClock::starting_now()).await;
        // A scanner "clicks" bad, the customer corrects to good a minute later: no alert.
        app.post_zendesk(&zendesk_body(61, "bad", "")).await;
        assert_eq!(app.app.flush_alerts().await.unwrap().sent, 0, "held back");
        app.clock.advance(Duration::from_secs(60));
        app.post_zendesk(&zendesk_body(61, "good", "")).await;
        app.clock.advance(Duration::from_secs(61));
        let report = app.app.flush_alerts().await.unwrap();
        assert_eq!((report.sent, report.superseded), (0, 1), "{backend:?}");

        // Bad, then a comment added within the window: one alert with the final state.
        app.post_zendesk(&zendesk_body(62, "bad", "")).await;
        app.clock.advance(Duration::from_secs(30));
        app.post_zendesk(&zendesk_body(62, "bad", "Still waiting for my refund"))
            .await;
        assert_eq!(app.app.flush_alerts().await.unwrap().sent, 0);
        app.clock.advance(Duration::from_secs(91));
        assert_eq!(app.app.flush_alerts().await.unwrap().sent, 1);
        let posts = calls(&slack, "chat.postMessage").await;
        assert_eq!(posts.len(), 1, "one message, no thread reply");
        assert!(posts[0].to_string().contains("Still waiting for my refund"));
        assert!(calls(&slack, "chat.update").await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn a_rule_may_message_the_rated_agent_found_by_email() {
    let rules = "[[rules]]\nname = \"tell-agent\"\ndm_agent = true\nchannel = \"#csat\"\n";
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = loop_slack().await;
    let app = TestApp::spawn(
        interactive(&db.url, &slack, rules),
        ManualClock::starting_now(),
    )
    .await;
    let rating_id = rate(
        &app,
        "inhouse",
        "T-9",
        1,
        None,
        Some("sam@acme.example"),
        None,
    )
    .await;
    app.app.flush_alerts().await.unwrap();
    let lookups = query_calls(&slack, "users.lookupByEmail").await;
    assert_eq!(lookups[0]["email"], "sam@acme.example");
    assert_eq!(lookups.len(), 1);
    let opened = calls(&slack, "conversations.open").await;
    assert_eq!(opened[0]["users"], "U0SAM");
    let posts = calls(&slack, "chat.postMessage").await;
    let dm = posts
        .iter()
        .find(|p| p["channel"] == "D0SAM")
        .expect("a DM");
    assert!(dm["text"].as_str().unwrap().contains("ticket T-9"));
    assert!(
        !dm.to_string().contains("Nobody answered"),
        "no customer text in the DM"
    );
    let activity = app.app.store.activity(rating_id).await.unwrap();
    assert_eq!(
        (activity[0].kind.as_str(), activity[0].status.as_str()),
        ("dm", "done")
    );

    // Off by default: another rule's alert sends none.
    let quiet = TestDatabase::new(Backend::Sqlite).await;
    let slack2 = loop_slack().await;
    let app2 = TestApp::spawn(
        interactive(&quiet.url, &slack2, ""),
        ManualClock::starting_now(),
    )
    .await;
    rate(
        &app2,
        "inhouse",
        "T-9",
        1,
        None,
        Some("sam@acme.example"),
        None,
    )
    .await;
    app2.app.flush_alerts().await.unwrap();
    assert!(query_calls(&slack2, "users.lookupByEmail").await.is_empty());
    app.stop().await;
    app2.stop().await;
}

#[tokio::test]
async fn a_slow_helpdesk_is_not_cut_off_and_the_note_modal_shows_the_result_when_it_comes() {
    let helpdesk = MockServer::start().await;
    serve(
        &helpdesk,
        &[(
            "GET",
            "/api/v2/users/search.json".into(),
            json!({"users": []}),
        )],
    )
    .await;
    Mock::given(method("PUT"))
        .and(path(format!("/api/v2/tickets/{TICKET}.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ticket": {}}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&helpdesk)
        .await;
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = loop_slack().await;
    Mock::given(method("POST"))
        .and(path("/api/views.update"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&slack)
        .await;
    let app = TestApp::spawn(
        interactive(
            &db.url,
            &slack,
            &zendesk_api(&helpdesk.uri()).replace("\"2s\"", "\"10s\""),
        ),
        ManualClock::starting_now(),
    )
    .await;
    let rating_id = rate(&app, "zd", TICKET, 1, None, None, None).await;
    app.app.flush_alerts().await.unwrap();
    let alert = post_of(&app, rating_id).await;
    let started = std::time::Instant::now();
    let (status, body) = send(
        &app,
        &submission("csat_note_modal", alert.id, note_values("Slow")),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within Slack's 3 s"
    );
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response_action"], "update", "{answer}");
    // The call goes on; when it lands, the modal shows the result. (Waiting
    // on a real socket's 3 s delay: there is no clock to move here.)
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let update = loop {
        if let Some(update) = calls(&slack, "views.update").await.pop() {
            break update;
        }
        assert!(std::time::Instant::now() < deadline, "no views.update");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(update["view_id"], "V0MODAL");
    assert!(update["view"].to_string().contains("Done"), "{update}");
    let activity = app.app.store.activity(rating_id).await.unwrap();
    assert_eq!(
        (activity[0].kind.as_str(), activity[0].status.as_str()),
        ("note", "done")
    );
    app.stop().await;
}

#[tokio::test]
async fn an_agent_named_by_id_is_messaged_at_the_email_its_helpdesk_gives() {
    let helpdesk = MockServer::start().await;
    serve(
        &helpdesk,
        &[(
            "GET",
            "/admins/814".into(),
            json!({"id": "814", "name": "Sam", "email": "sam.admin@acme.example"}),
        )],
    )
    .await;
    let config = format!(
        "[[sources]]\nname = \"ic\"\nkind = \"intercom\"\nsecret = \"helpdesk-test-secret\"\n[sources.api]\nbase_url = \"{}\"\ntoken = \"ic-token\"\n[[rules]]\nname = \"tell-agent\"\ndm_agent = true\nchannel = \"#csat\"\n",
        helpdesk.uri()
    );
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = loop_slack().await;
    let app = TestApp::spawn(
        interactive(&db.url, &slack, &config),
        ManualClock::starting_now(),
    )
    .await;
    rate(&app, "ic", "300", 1, None, Some("814"), None).await;
    app.app.flush_alerts().await.unwrap();
    let lookups = query_calls(&slack, "users.lookupByEmail").await;
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0]["email"], "sam.admin@acme.example");
    assert!(
        calls(&slack, "chat.postMessage")
            .await
            .iter()
            .any(|p| p["channel"] == "D0SAM")
    );
    app.stop().await;
}

#[tokio::test]
async fn alerts_still_settling_are_not_folded_into_a_storm_digest_early() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = loop_slack().await;
        let mut settings = interactive(&db.url, &slack, "");
        settings.alerts.settle = Duration::from_secs(60);
        settings.alerts.storm.threshold = 2;
        settings.alerts.storm.window = Duration::from_secs(600);
        let app = TestApp::spawn(settings, ManualClock::starting_now()).await;
        for ticket in 71..74 {
            app.post_zendesk(&zendesk_body(ticket, "bad", "")).await;
        }
        let early = app.app.flush_alerts().await.unwrap();
        assert_eq!(
            (early.digests, early.sent),
            (0, 0),
            "{backend:?}: still settling"
        );
        app.clock.advance(Duration::from_secs(61));
        let report = app.app.flush_alerts().await.unwrap();
        // Once due, the storm is what it would have been without settling.
        assert_eq!(report.digests, 1, "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn check_config_online_names_the_scopes_closing_the_loop_needs() {
    install_crypto();
    let db = TestDatabase::new(Backend::Sqlite).await;
    // auth.test grants chat:write only.
    let slack = loop_slack().await;
    let rules = "[[rules]]\nname = \"tell-agent\"\ndm_agent = true\nchannel = \"C0CSAT\"\n";
    let settings = interactive(
        &db.url,
        &slack,
        &format!("{}{rules}", zendesk_api("https://acme.zendesk.example")),
    );
    let report = csatwatch::sinks::slack::preflight::check(&settings).await;
    let text = report.lines.join("\n");
    assert!(
        text.contains("dm_agent = true but the token lacks users:read.email"),
        "{text}"
    );
    assert!(text.contains("lacks im:write"), "{text}");
    assert!(text.contains("\"Assign to me\" cannot find"), "{text}");
    assert!(report.problems >= 2);
}
