//! Slack alerts a team can act on, end to end against a mock Slack that
//! implements chat.postMessage, chat.update, auth.test and
//! conversations.info: one message per rating kept current, buttons,
//! escalation, storm digests, and every class of Slack error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::settings::Settings;
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::*;

pub const SIGNING_SECRET: &str = "slack-signing-secret-for-tests";

/// Answers chat.postMessage with a fresh ts each time, like Slack.
struct FreshTs(AtomicU64);

impl Respond for FreshTs {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "channel": "C0CSAT", "ts": format!("1700000000.{n:06}")
        }))
    }
}

/// A mock Slack: chat.postMessage (fresh ts), chat.update, auth.test and
/// conversations.info (#csat exists, the bot is a member).
pub async fn mock_slack() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(FreshTs(AtomicU64::new(1)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat.update"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/auth.test"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-oauth-scopes", "chat:write")
                .set_body_json(json!({
                    "ok": true, "team": "Acme", "team_id": "T1", "user": "csatwatch",
                    "user_id": "U0BOT", "bot_id": "B0BOT", "url": "https://acme.slack.com/"
                })),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/conversations.info"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "channel": {"id": "C0CSAT", "name": "csat", "is_member": true, "is_archived": false}
        })))
        .mount(&server)
        .await;
    server
}

/// Every call to `method` (e.g. `chat.update`), as JSON bodies.
pub async fn calls(server: &MockServer, api_method: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == format!("/api/{api_method}"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Settings with a signing secret, so alerts carry ack buttons.
pub fn interactive(db: &str, slack: &MockServer, extra: &str) -> Settings {
    let mut s = settings(db, Some(&slack.uri()), extra);
    s.slack.signing_secret = Some(SecretString::from(SIGNING_SECRET.to_string()));
    s
}

/// A `block_actions` form body for a click on `action_id` of alert `alert_id`.
pub fn click_body(action_id: &str, alert_id: i64, user: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": "jane.lead", "name": "jane.lead", "team_id": "T1"},
        "channel": {"id": "C0CSAT"},
        "container": {"type": "message", "message_ts": "1700000000.000001"},
        "actions": [{"action_id": action_id, "block_id": format!("csat_alert_{alert_id}"),
                     "value": alert_id.to_string(), "type": "button", "action_ts": "1700000001.1"}],
    });
    let encoded: String = url_encode(&serde_json::to_string(&payload).unwrap());
    format!("payload={encoded}")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Posts a click signed with `secret` at `ts_secs`.
pub async fn post_click(app: &TestApp, body: &str, secret: &str, ts_secs: i64) -> u16 {
    let mac = csatwatch::sources::signature::hmac_sha256(
        secret.as_bytes(),
        &[
            b"v0:",
            ts_secs.to_string().as_bytes(),
            b":",
            body.as_bytes(),
        ],
    );
    app.client
        .post(app.url("/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts_secs.to_string())
        .header("x-slack-signature", format!("v0={}", hex::encode(mac)))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Top-level posts (not thread replies).
async fn top_level_posts(slack: &MockServer) -> Vec<Value> {
    calls(slack, "chat.postMessage")
        .await
        .into_iter()
        .filter(|b| b.get("thread_ts").is_none())
        .collect()
}

async fn thread_replies(slack: &MockServer) -> Vec<Value> {
    calls(slack, "chat.postMessage")
        .await
        .into_iter()
        .filter(|b| b.get("thread_ts").is_some())
        .collect()
}

#[tokio::test]
async fn a_changed_rating_updates_the_same_message_and_threads_a_reply_and_recovery_is_shown() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = mock_slack().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        app.post_zendesk(&zendesk_body(10, "bad", "Slow")).await;
        app.app.flush_alerts().await.unwrap();
        app.clock.advance(Duration::from_secs(60));
        let (_, answer) = app
            .post_zendesk(&zendesk_body(10, "bad", "Slow, and nobody called back"))
            .await;
        assert_eq!(answer["ratings"][0]["updates"], 1, "{answer}");
        assert_eq!(answer["ratings"][0]["alerts"], 0);
        let report = app.app.flush_alerts().await.unwrap();
        assert_eq!(report.sent, 1, "{backend:?}: {report:?}");

        let updates = calls(&slack, "chat.update").await;
        assert_eq!(updates.len(), 1, "{backend:?}");
        assert_eq!(updates[0]["ts"], "1700000000.000001");
        assert_eq!(updates[0]["channel"], "C0CSAT");
        assert!(updates[0].to_string().contains("nobody called back"));
        let replies = thread_replies(&slack).await;
        assert_eq!(replies[0]["thread_ts"], "1700000000.000001");
        assert!(
            replies[0]["text"]
                .as_str()
                .unwrap()
                .contains("Comment changed")
        );

        // It turns positive: shown as recovered, not deleted, not re-posted.
        app.clock.advance(Duration::from_secs(60));
        app.post_zendesk(&zendesk_body(10, "good", "Sorted, thanks"))
            .await;
        app.app.flush_alerts().await.unwrap();
        let updates = calls(&slack, "chat.update").await;
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[1]["ts"], "1700000000.000001");
        assert!(
            updates[1].to_string().contains("Recovered:* now Good"),
            "{}",
            updates[1]
        );
        let replies = thread_replies(&slack).await;
        assert!(
            replies[1]["text"]
                .as_str()
                .unwrap()
                .contains("Recovered: now Good")
        );
        assert_eq!(
            top_level_posts(&slack).await.len(),
            1,
            "{backend:?}: one message per rating"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn with_an_incoming_webhook_updates_are_skipped_not_errors() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let hook = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&hook)
            .await;
        let mut s = settings(&db.url, None, "");
        s.slack.webhook_url = Some(SecretString::from(format!("{}/hook", hook.uri())));
        let app = TestApp::spawn(s, ManualClock::starting_now()).await;
        app.post_zendesk(&zendesk_body(11, "bad", "Slow")).await;
        app.app.flush_alerts().await.unwrap();
        app.post_zendesk(&zendesk_body(11, "bad", "Slow!")).await;
        let report = app.app.flush_alerts().await.unwrap();
        assert_eq!(
            (report.skipped, report.dead, report.sent),
            (1, 0, 0),
            "{backend:?}: {report:?}"
        );
        assert_eq!(hook.received_requests().await.unwrap().len(), 1);
        let states: Vec<String> = app
            .app
            .store
            .all_alerts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.state)
            .collect();
        assert_eq!(states, ["sent", "skipped"]);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_signed_click_on_im_on_it_records_who_and_when_and_updates_the_message() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = mock_slack().await;
        let app = TestApp::spawn(
            interactive(&db.url, &slack, ""),
            ManualClock::starting_now(),
        )
        .await;
        app.post_zendesk(&zendesk_body(12, "bad", "Rude")).await;
        app.app.flush_alerts().await.unwrap();
        let posted = &top_level_posts(&slack).await[0];
        assert!(
            posted.to_string().contains("csat_ack"),
            "bot mode with a signing secret has buttons"
        );
        let alert = app.app.store.all_alerts().await.unwrap()[0].clone();

        let now_s = app.clock.now_ms() / 1000;
        let body = click_body("csat_ack", alert.id, "U0JANE");
        assert_eq!(post_click(&app, &body, SIGNING_SECRET, now_s).await, 200);
        // A second click (anyone's) changes nothing: the first wins.
        let again = click_body("csat_ack", alert.id, "U0BOB");
        assert_eq!(post_click(&app, &again, SIGNING_SECRET, now_s).await, 200);
        let actions = app.app.store.rating_actions(alert.rating_id).await.unwrap();
        assert_eq!(actions.acked_by.as_deref(), Some("U0JANE"));
        assert_eq!(actions.acked_by_name.as_deref(), Some("jane.lead"));
        assert_eq!(actions.acked_at, Some(app.clock.now_ms()));

        app.app.flush_alerts().await.unwrap();
        let updates = calls(&slack, "chat.update").await;
        assert_eq!(updates.len(), 1, "{backend:?}");
        let text = updates[0].to_string();
        assert!(
            text.contains("Acknowledged* by <@U0JANE> at <!date^"),
            "{text}"
        );
        assert!(!text.contains("csat_ack"), "the done button is gone");
        assert!(text.contains("csat_followup"));
        let replies = thread_replies(&slack).await;
        assert_eq!(replies.len(), 1);
        assert!(
            replies[0]["text"]
                .as_str()
                .unwrap()
                .contains("<@U0JANE> is on it")
        );

        // "Followed up" completes it: both buttons go.
        let body = click_body("csat_followup", alert.id, "U0JANE");
        assert_eq!(post_click(&app, &body, SIGNING_SECRET, now_s).await, 200);
        app.app.flush_alerts().await.unwrap();
        let updates = calls(&slack, "chat.update").await;
        let text = updates[1].to_string();
        assert!(text.contains("Followed up* by <@U0JANE>"), "{text}");
        assert!(!text.contains("csat_followup"));
        // "Open ticket" is a link; Slack still reports it and gets a plain 200.
        let open = click_body("csat_open_ticket", alert.id, "U0JANE");
        assert_eq!(post_click(&app, &open, SIGNING_SECRET, now_s).await, 200);
        app.stop().await;
    }
}

#[tokio::test]
async fn forged_and_stale_clicks_are_refused_and_change_nothing() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = mock_slack().await;
    let app = TestApp::spawn(
        interactive(&db.url, &slack, ""),
        ManualClock::starting_now(),
    )
    .await;
    app.post_zendesk(&zendesk_body(13, "bad", "Rude")).await;
    app.app.flush_alerts().await.unwrap();
    let alert = app.app.store.all_alerts().await.unwrap()[0].clone();
    let now_s = app.clock.now_ms() / 1000;
    let body = click_body("csat_ack", alert.id, "U0MALLORY");
    assert_eq!(post_click(&app, &body, "not-the-secret", now_s).await, 401);
    assert_eq!(
        post_click(&app, &body, SIGNING_SECRET, now_s - 301).await,
        401
    );
    assert_eq!(
        post_click(&app, &body, SIGNING_SECRET, now_s + 301).await,
        401
    );
    let unsigned = app
        .client
        .post(app.url("/slack/interactions"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let actions = app.app.store.rating_actions(alert.rating_id).await.unwrap();
    assert_eq!(actions.acked_by, None);
    assert_eq!(app.app.flush_alerts().await.unwrap().sent, 0);
    // Within the window on either side it is accepted.
    assert_eq!(
        post_click(&app, &body, SIGNING_SECRET, now_s - 299).await,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unacknowledged_alert_escalates_once_and_an_acknowledged_one_never() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = mock_slack().await;
        let rule = "[[rules]]\nname = \"all\"\nchannel = \"#csat\"\nescalate_after = \"30m\"\nescalate_to = [\"S0ONCALL\"]\n";
        let app = TestApp::spawn(
            interactive(&db.url, &slack, rule),
            ManualClock::starting_now(),
        )
        .await;
        app.post_zendesk(&zendesk_body(14, "bad", "Nobody?")).await;
        app.post_zendesk(&zendesk_body(15, "bad", "Also bad")).await;
        app.app.flush_alerts().await.unwrap();
        let alerts = app.app.store.all_alerts().await.unwrap();
        let acked = alerts
            .iter()
            .find(|a| a.rating_id != alerts[0].rating_id)
            .unwrap();
        let now_s = app.clock.now_ms() / 1000;
        let click = click_body("csat_ack", acked.id, "U0JANE");
        assert_eq!(post_click(&app, &click, SIGNING_SECRET, now_s).await, 200);
        app.app.flush_alerts().await.unwrap();

        app.clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(app.app.flush_alerts().await.unwrap().escalations, 0);
        app.clock.advance(Duration::from_secs(2 * 60));
        let report = app.app.flush_alerts().await.unwrap();
        assert_eq!(
            (report.escalations, report.sent),
            (1, 1),
            "{backend:?}: {report:?}"
        );
        app.clock.advance(Duration::from_secs(3600));
        assert_eq!(app.app.flush_alerts().await.unwrap().escalations, 0, "once");

        let escalations: Vec<Value> = thread_replies(&slack)
            .await
            .into_iter()
            .filter(|r| {
                r["text"]
                    .as_str()
                    .unwrap()
                    .contains("nobody has acknowledged")
            })
            .collect();
        assert_eq!(escalations.len(), 1, "{backend:?}");
        assert!(
            escalations[0]["text"]
                .as_str()
                .unwrap()
                .contains("<!subteam^S0ONCALL>")
        );
        assert!(escalations[0]["text"].as_str().unwrap().contains("31m"));
        app.stop().await;
    }
}

#[tokio::test]
async fn fifty_negatives_in_a_minute_to_one_channel_post_one_digest_with_each_in_its_thread() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = mock_slack().await;
        let storm = "[alerts.storm]\nthreshold = 10\nwindow = \"1m\"\n";
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), storm),
            ManualClock::starting_now(),
        )
        .await;
        for ticket in 0..50u64 {
            app.post_zendesk(&zendesk_body(1000 + ticket, "bad", "Storm"))
                .await;
            app.clock.advance(Duration::from_millis(1000));
        }
        let report = app.app.flush_alerts().await.unwrap();
        assert_eq!(
            (report.digests, report.sent),
            (1, 51),
            "{backend:?}: {report:?}"
        );

        let posts = top_level_posts(&slack).await;
        assert_eq!(posts.len(), 1, "{backend:?}: one digest, not 50 posts");
        assert!(
            posts[0]["text"]
                .as_str()
                .unwrap()
                .starts_with("50 negative ratings")
        );
        let replies = thread_replies(&slack).await;
        assert_eq!(replies.len(), 50);
        assert!(
            replies
                .iter()
                .all(|r| r["thread_ts"] == "1700000000.000001")
        );
        let alerts = app.app.store.all_alerts().await.unwrap();
        let digested = alerts.iter().filter(|a| a.state == "digested").count();
        assert_eq!(digested, 50);
        assert_eq!(app.app.store.count_ratings().await.unwrap(), 50);
        app.stop().await;
    }
}

/// How each Slack error is handled through the dispatcher.
#[tokio::test]
async fn each_slack_error_class_is_retried_or_stopped_as_it_should_be() {
    let cases: &[(&str, u16, Option<&str>, bool)] = &[
        ("ratelimited", 429, None, true),
        ("server_error", 503, None, true),
        ("ratelimited", 200, Some("ratelimited"), true),
        ("fatal_error", 200, Some("fatal_error"), true),
        ("channel_not_found", 200, Some("channel_not_found"), false),
        ("not_in_channel", 200, Some("not_in_channel"), false),
        ("is_archived", 200, Some("is_archived"), false),
        ("invalid_auth", 200, Some("invalid_auth"), false),
        ("token_revoked", 200, Some("token_revoked"), false),
        ("missing_scope", 200, Some("missing_scope"), false),
        ("invalid_blocks", 200, Some("invalid_blocks"), false),
    ];
    for &(class, status, code, retry) in cases {
        let db = TestDatabase::new(Backend::Sqlite).await;
        let slack = MockServer::start().await;
        let response = match code {
            Some(code) => {
                ResponseTemplate::new(status).set_body_json(json!({"ok": false, "error": code}))
            }
            None => ResponseTemplate::new(status).insert_header("Retry-After", "1"),
        };
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&slack)
            .await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        app.post_zendesk(&zendesk_body(20, "bad", "x")).await;
        let report = app.app.flush_alerts().await.unwrap();
        let alert = app.app.store.all_alerts().await.unwrap()[0].clone();
        let error = alert.last_error.clone().unwrap_or_default();
        assert!(error.starts_with(class), "{class}: {error}");
        if retry {
            assert_eq!(
                (report.retried, alert.state.as_str()),
                (1, "pending"),
                "{class}"
            );
        } else {
            assert_eq!((report.dead, alert.state.as_str()), (1, "dead"), "{class}");
            // Stopped for good: later flushes never send it again.
            app.clock.advance(Duration::from_secs(3600));
            app.app.flush_alerts().await.unwrap();
            assert_eq!(
                slack.received_requests().await.unwrap().len(),
                1,
                "{class} retried"
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn a_slack_that_times_out_is_retried() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slack)
        .await;
    let app = TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
    )
    .await;
    app.post_zendesk(&zendesk_body(21, "bad", "x")).await;
    let report = app.app.flush_alerts().await.unwrap();
    assert_eq!(report.retried, 1);
    let alert = app.app.store.all_alerts().await.unwrap()[0].clone();
    assert!(alert.last_error.unwrap().starts_with("timeout"));
    app.stop().await;
}

#[tokio::test]
async fn check_config_online_names_what_is_missing_for_each_channel() {
    install_crypto();
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = mock_slack().await;
    for (id, reply) in [
        ("C0GONE", json!({"ok": false, "error": "channel_not_found"})),
        (
            "C0OUT",
            json!({"ok": true, "channel": {"id": "C0OUT", "name": "vip", "is_member": false, "is_private": false}}),
        ),
        (
            "C0OLD",
            json!({"ok": true, "channel": {"id": "C0OLD", "name": "old", "is_member": true, "is_archived": true}}),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path("/api/conversations.info"))
            .and(wiremock::matchers::body_partial_json(
                json!({"channel": id}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(reply))
            .with_priority(1)
            .mount(&slack)
            .await;
    }
    let rules = "[[rules]]\nchannel = \"C0CSAT\"\ncontinue = true\n[[rules]]\nchannel = \"C0GONE\"\ncontinue = true\n[[rules]]\nchannel = \"C0OUT\"\ncontinue = true\n[[rules]]\nchannel = \"C0OLD\"\n";
    let s = settings(&db.url, Some(&slack.uri()), rules);
    let result = csatwatch::sinks::slack::preflight::check(&s).await;
    let text = result.lines.join("\n");
    assert!(
        text.contains("ok: token works: bot csatwatch in workspace Acme"),
        "{text}"
    );
    assert!(
        text.contains("ok: C0CSAT (#csat): the bot is a member"),
        "{text}"
    );
    assert!(text.contains("PROBLEM: C0GONE was not found"), "{text}");
    assert!(
        text.contains("PROBLEM: C0OUT (#vip): the bot is not a member; /invite"),
        "{text}"
    );
    assert!(text.contains("PROBLEM: C0OLD (#old) is archived"), "{text}");
    assert!(
        text.contains("note: #csat: names cannot be checked"),
        "{text}"
    );
    assert!(text.contains("slack.signing_secret is not set"), "{text}");
    // The mock grants chat:write only: a retry after a timeout cannot look.
    assert!(
        text.contains("note: the token lacks channels:history"),
        "{text}"
    );
    assert_eq!(result.problems, 3);

    let mut hook = settings(&db.url, None, "");
    hook.slack.webhook_url = Some(SecretString::from(
        "https://hooks.slack.com/services/T/B/x".to_string(),
    ));
    let text = csatwatch::sinks::slack::preflight::check(&hook)
        .await
        .lines
        .join("\n");
    assert!(
        text.contains("only the first post of each alert is possible"),
        "{text}"
    );
}
