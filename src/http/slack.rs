//! `POST /slack/interactions`: clicks on an alert's buttons.
//!
//! Slack signs each request: `X-Slack-Signature: v0=<hex HMAC-SHA256>` of
//! `v0:{X-Slack-Request-Timestamp}:{raw body}` with the app's signing secret.
//! The signature is checked on the raw bytes, before the form is decoded, in
//! constant time, and a timestamp more than five minutes from now is refused.
//!
//! | case | status |
//! |---|---|
//! | "I'm on it" / "Followed up": recorded, message update enqueued | 200 |
//! | "Add note", "Reopen", "Assign to me", the outcome modal (`slack_actions`) | 200 |
//! | "Open ticket" (a link button Slack still reports), or anything else | 200 |
//! | missing, forged or stale signature | 401 |
//! | `slack.signing_secret` not set | 404 |
//! | signed but not a form with a JSON `payload` | 400 |
//! | database unavailable | 503 |
//!
//! Slack wants an answer within 3 seconds: the click is recorded in one
//! short transaction and the message is updated by the dispatcher, never
//! from here.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use secrecy::ExposeSecret as _;
use serde_json::Value;

use super::AppState;
use super::answer::Answer;
use crate::pipeline::ActionOutcome;
use crate::sinks::slack::message::{ACK_ACTION_ID, FOLLOWUP_ACTION_ID};
use crate::sources::signature::{check_window, verify_hmac_sha256};
use crate::store::RatingAction;

/// Slack's replay window.
const WINDOW_MS: i64 = 5 * 60 * 1000;

fn count(outcome: &'static str) {
    metrics::counter!("csatwatch_slack_interactions_total", "outcome" => outcome).increment(1);
}

/// The interactions handler.
pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let Some(secret) = state.settings.slack.signing_secret.as_ref() else {
        count("disabled");
        return Answer::NotFound("Slack interactivity is off: set slack.signing_secret");
    };
    if let Err(reason) = verify(
        secret.expose_secret().as_bytes(),
        &headers,
        &body,
        state.clock.now_ms(),
    ) {
        count("unauthorized");
        tracing::warn!(%reason, "Slack interaction refused: bad signature");
        return Answer::Unauthorized("invalid Slack signature");
    }
    let Some(payload) = payload(&body) else {
        count("invalid");
        return Answer::BadRequest("expected a form with a JSON `payload` field");
    };
    if let Some(response) = super::slack_actions::handle(&state, &payload).await {
        return response;
    }
    let Some(click) = Click::from_payload(&payload) else {
        // Another interaction type or button ("Open ticket" is a link and
        // needs nothing): Slack only needs the 200.
        count("ignored");
        return Answer::Empty;
    };
    match state
        .pipeline
        .record_action(
            click.alert_id,
            click.action,
            &click.user_id,
            click.user_name.as_deref(),
        )
        .await
    {
        Ok(outcome) => {
            let label = match outcome {
                ActionOutcome::Recorded { .. } => "recorded",
                ActionOutcome::AlreadyDone => "already_done",
                ActionOutcome::UnknownAlert => "unknown_alert",
            };
            count(label);
            tracing::info!(alert_id = click.alert_id, action = click.action.event_key(), user_id = %click.user_id, outcome = label, "Slack button click");
            Answer::Empty
        }
        Err(error) => {
            count("unavailable");
            tracing::error!(error = %error, alert_id = click.alert_id, "Slack button click not recorded: database unavailable; check that the database is up (GET /readyz); the person can click again");
            Answer::Unavailable("the database is unavailable; click again in a moment")
        }
    }
}

/// Checks Slack's v0 signature of `body` at `now_ms`.
pub fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ts = header("x-slack-request-timestamp").ok_or("no X-Slack-Request-Timestamp")?;
    let signature = header("x-slack-signature").ok_or("no X-Slack-Signature")?;
    let ts_secs: i64 = ts
        .trim()
        .parse()
        .map_err(|_| "X-Slack-Request-Timestamp is not a number")?;
    check_window(ts_secs.saturating_mul(1000), now_ms, WINDOW_MS).map_err(|e| e.to_string())?;
    let hex_mac = signature
        .trim()
        .strip_prefix("v0=")
        .ok_or("X-Slack-Signature is not v0=")?;
    let mac = hex::decode(hex_mac).map_err(|_| "X-Slack-Signature is not hex")?;
    if verify_hmac_sha256(secret, &[b"v0:", ts.as_bytes(), b":", body], &mac) {
        Ok(())
    } else {
        Err("signature mismatch".to_string())
    }
}

/// The JSON of the `payload` form field.
fn payload(body: &[u8]) -> Option<Value> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str(&v).ok())
}

/// A click on "I'm on it" or "Followed up".
#[derive(Debug, Clone, PartialEq, Eq)]
struct Click {
    alert_id: i64,
    action: RatingAction,
    user_id: String,
    user_name: Option<String>,
}

impl Click {
    /// From a `block_actions` payload: the first action that is one of ours.
    fn from_payload(payload: &Value) -> Option<Click> {
        if payload["type"] != "block_actions" {
            return None;
        }
        let user = &payload["user"];
        let user_id = user["id"].as_str()?.to_string();
        let user_name = ["username", "name"]
            .iter()
            .find_map(|k| user[*k].as_str())
            .map(str::to_string);
        payload["actions"].as_array()?.iter().find_map(|a| {
            let action = match a["action_id"].as_str()? {
                ACK_ACTION_ID => RatingAction::Acknowledge,
                FOLLOWUP_ACTION_ID => RatingAction::FollowUp,
                _ => return None,
            };
            let alert_id = a["value"].as_str()?.trim().parse().ok()?;
            Some(Click {
                alert_id,
                action,
                user_id: user_id.clone(),
                user_name: user_name.clone(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::signature::hmac_sha256;
    use serde_json::json;

    /// Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    #[test]
    fn slacks_published_example_verifies() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let mut headers = HeaderMap::new();
        headers.insert("x-slack-request-timestamp", "1531420618".parse().unwrap());
        headers.insert(
            "x-slack-signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
                .parse()
                .unwrap(),
        );
        assert_eq!(verify(secret, &headers, body, 1_531_420_618_000), Ok(()));
        assert!(verify(secret, &headers, b"tampered", 1_531_420_618_000).is_err());
        assert!(verify(secret, &headers, body, 1_531_420_618_000 + WINDOW_MS + 1000).is_err());
        let mac = hmac_sha256(b"other", &[b"v0:1531420618:", body]);
        headers.insert(
            "x-slack-signature",
            format!("v0={}", hex::encode(mac)).parse().unwrap(),
        );
        assert!(verify(secret, &headers, body, 1_531_420_618_000).is_err());
    }

    #[test]
    fn a_block_actions_payload_names_the_alert_the_action_and_the_user() {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U0JANE", "username": "jane", "name": "jane", "team_id": "T1"},
            "actions": [{"action_id": "csat_ack", "block_id": "csat_alert_7", "value": "7", "type": "button"}],
        });
        assert_eq!(
            Click::from_payload(&payload),
            Some(Click {
                alert_id: 7,
                action: RatingAction::Acknowledge,
                user_id: "U0JANE".into(),
                user_name: Some("jane".into())
            })
        );
        let open = json!({"type": "block_actions", "user": {"id": "U1"},
            "actions": [{"action_id": "csat_open_ticket", "type": "button", "url": "https://x"}]});
        assert_eq!(Click::from_payload(&open), None);
        assert_eq!(
            Click::from_payload(&json!({"type": "view_submission"})),
            None
        );
    }
}
