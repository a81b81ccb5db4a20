//! What Slack's answers mean: each failure sorted into retry later
//! ([`SinkError::Retryable`]) or give up and tell the operator what to change
//! ([`SinkError::Permanent`], the reason starting with Slack's error code).
//! No I/O here; [`super::client`] makes the calls.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use super::text::fit;
use crate::sinks::SinkError;

/// HTTP 429 and 5xx mean the same in both modes: try again later.
pub fn rate_limit_or_server_error(status: StatusCode, wait: Option<Duration>) -> Option<SinkError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        Some(SinkError::Retryable {
            reason: "ratelimited: Slack answered HTTP 429".into(),
            retry_after: wait,
        })
    } else if status.is_server_error() {
        Some(SinkError::Retryable {
            reason: format!("server_error: HTTP {}", status.as_u16()),
            retry_after: wait,
        })
    } else {
        None
    }
}

/// The longest wait a `Retry-After` is taken at. The value comes from the
/// network: an absurd one (`18446744073709551615`) must not overflow the
/// clock arithmetic it feeds, nor park a channel for ever.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in whole seconds, the only form Slack sends, at most
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(capped_seconds)
}

/// `seconds` as a wait, at most [`MAX_RETRY_AFTER`].
pub fn capped_seconds(seconds: u64) -> Duration {
    Duration::from_secs(seconds).min(MAX_RETRY_AFTER)
}

/// Slack's error code, if the text looks like one; otherwise a neutral
/// placeholder, so a proxy's HTML page never lands in a log line.
pub fn error_code(text: &str) -> String {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { text } else { "unknown_error" }.to_string()
}

/// Sorts a Web API `{"ok": false, "error": code}` into retry or give up.
pub fn classify_api_error(
    code: &str,
    reply: &Value,
    wait: Option<Duration>,
    channel: Option<&str>,
) -> SinkError {
    let channel = channel.unwrap_or("the channel");
    let retryable = |reason: String| SinkError::Retryable {
        reason,
        retry_after: wait,
    };
    let advice = match code {
        "ratelimited" | "rate_limited" => {
            return retryable(format!("ratelimited: Slack answered {code}"));
        }
        "fatal_error" | "internal_error" | "service_unavailable" | "request_timeout" => {
            return retryable(format!("{code}: a problem on Slack's side"));
        }
        "channel_not_found" => format!(
            "no channel {channel} visible to the bot; check the rule's channel or slack.default_channel (for a private channel, invite the bot and use its id C…)"
        ),
        "not_in_channel" => format!(
            "invite the bot to {channel} with /invite @csatwatch, or add the chat:write.public scope and reinstall the app"
        ),
        "is_archived" => format!("{channel} is archived; unarchive it or route alerts elsewhere"),
        "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" => {
            "Slack refused the token; check slack.bot_token (the Bot User OAuth Token, xoxb-…) and that the app is still installed".to_string()
        }
        "missing_scope" => {
            // Slack names the scope it wanted; show it only if it looks like scope names.
            let needed = reply["needed"]
                .as_str()
                .filter(|s| s.len() <= 100 && s.bytes().all(|b| b.is_ascii_lowercase() || b":._,".contains(&b)))
                .filter(|s| !s.is_empty())
                .unwrap_or("chat:write");
            format!("add {needed} under OAuth & Permissions and reinstall the app")
        }
        "invalid_blocks" => format!(
            "Slack refused the message layout ({}); please report this csatwatch bug with the alert id",
            block_errors(reply)
        ),
        "msg_too_long" => "the message is too long for Slack; please report this csatwatch bug with the alert id".to_string(),
        c if c.starts_with("restricted_action") => format!(
            "a workspace setting stops the bot posting in {channel}; ask a Slack admin or route alerts elsewhere"
        ),
        _ => "Slack refused the message; see https://docs.slack.dev/reference/methods/chat.postMessage#errors".to_string(),
    };
    SinkError::Permanent {
        reason: format!("{code}: {advice}"),
    }
}

/// The JSON pointers Slack names for `invalid_blocks` (strings like
/// `must be less than 151 characters [json-pointer:/blocks/0/text]`, or
/// objects with `pointer` and `message`), a few and short.
pub fn block_errors(reply: &Value) -> String {
    let errors = reply["errors"].as_array().into_iter().flatten();
    let messages = reply
        .pointer("/response_metadata/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let found: Vec<String> = errors
        .chain(messages)
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => Some(format!(
                "{} at {}",
                o.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("invalid"),
                o.get("pointer").and_then(Value::as_str).unwrap_or("?")
            )),
            _ => None,
        })
        .take(5)
        .map(|s| fit(&s, 200))
        .collect();
    if found.is_empty() {
        "no details given".to_string()
    } else {
        found.join("; ")
    }
}

/// Sorts a failed incoming-webhook post (plain-text body, real status codes).
pub fn classify_webhook_error(status: StatusCode, text: &str) -> SinkError {
    let code = error_code(text.trim());
    let advice = match code.as_str() {
        "invalid_payload" => {
            "Slack refused the message body; please report this csatwatch bug with the alert id"
        }
        "action_prohibited" => "a workspace setting stops this webhook posting; ask a Slack admin",
        "channel_not_found" => {
            "the webhook's channel is gone; create a new webhook (Incoming Webhooks in your Slack app) and update slack.webhook_url"
        }
        "channel_is_archived" => {
            "the webhook's channel is archived; unarchive it, or create a new webhook and update slack.webhook_url"
        }
        "no_service" | "no_team" | "invalid_token" => {
            "the webhook was revoked or the URL is wrong; create a new one and update slack.webhook_url"
        }
        _ if status.is_success() => {
            "the answer is not Slack's `ok`; check slack.webhook_url is a hooks.slack.com URL"
        }
        _ => "Slack refused the webhook post; check slack.webhook_url",
    };
    SinkError::Permanent {
        reason: format!("{code}: {advice} (HTTP {})", status.as_u16()),
    }
}
