//! Delivery to Slack, in one of two modes:
//!
//! - **bot** (`slack.bot_token`): `chat.postMessage` to any channel; Slack
//!   returns the channel id and message `ts`, so the message can be updated
//!   and threaded later, and the "I'm on it" buttons can work.
//! - **webhook** (`slack.webhook_url`): a POST to an incoming-webhook URL;
//!   one fixed channel, the body `ok` and nothing else comes back.
//!
//! Every answer is sorted into [`SinkError::Retryable`] (rate limits, 5xx,
//! timeouts: the dispatcher backs off, honouring `Retry-After`) or
//! [`SinkError::Permanent`] (the reason starts with Slack's error code and
//! says what the operator should change). The token and the webhook URL are
//! secrets: they are never logged, and every error is scrubbed of them.
//! Rendering lives in [`super::message`]; retries and pacing in the dispatcher.
//!
//! Slack has no idempotency key, so the bot makes one: every outbox message
//! carries message `metadata` naming its outbox row. When an earlier attempt
//! got no answer ([`SinkError::InDoubt`]), the next one first reads the
//! channel's recent history (`conversations.history`, or
//! `conversations.replies` for a thread reply) from the time of that attempt,
//! and returns the message it finds instead of posting it again. That needs
//! the `channels:history` (and, for private channels, `groups:history`)
//! scope; without it, or for a channel known only by name, the retry posts
//! as before (at least once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use reqwest::redirect;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::{
    classify_api_error, classify_webhook_error, error_code, rate_limit_or_server_error, retry_after,
};
use super::message::{self, Buttons};
use crate::settings::SlackSettings;
use crate::sinks::{AlertView, MessageKey, Posted, SinkError};

/// The `event_type` of csatwatch's message metadata.
pub const METADATA_EVENT_TYPE: &str = "csatwatch_outbox_message";
/// How far back of an in-doubt attempt the history is read (clock skew).
const IN_DOUBT_MARGIN_MS: i64 = 120_000;
/// Pages of history read at most when looking for a message (200 each).
const HISTORY_PAGES: usize = 5;

const USER_AGENT: &str = concat!("csatwatch/", env!("CARGO_PKG_VERSION"));

/// Sends alerts to Slack with a bot token or an incoming webhook. Cheap to
/// clone: the HTTP client is shared.
#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    /// Shared by every clone, so a settings reload that rotates the token
    /// (or the webhook URL) reaches the dispatcher, the scheduler and the
    /// interactions at once.
    mode: Arc<std::sync::RwLock<Mode>>,
    /// Secrets replaced by a reload: still redacted from errors of sends
    /// that started before it.
    retired: Arc<Mutex<Vec<SecretString>>>,
    timeout: Duration,
    /// Whether clicks can come back (`slack.signing_secret` is set), so the
    /// "I'm on it" and "Followed up" buttons are worth showing.
    interactive: bool,
    /// Channel ids Slack answered for the names posted to (history needs ids).
    channel_ids: Arc<Mutex<HashMap<String, String>>>,
    /// Set once the token was found to lack a history scope (warned once).
    no_history_scope: Arc<AtomicBool>,
}

// `SecretString`'s Debug prints `[REDACTED]`, so deriving Debug is safe.
#[derive(Debug, Clone)]
enum Mode {
    Bot {
        token: SecretString,
        api_base_url: String,
        default_channel: Option<String>,
    },
    Webhook {
        url: SecretString,
    },
}

/// What a webhook cannot do, as a permanent error (the dispatcher checks
/// first and records such work as skipped).
fn not_in_webhook_mode(what: &str) -> SinkError {
    SinkError::Permanent {
        reason: format!(
            "not_supported: {what} needs slack.bot_token; an incoming webhook can only post"
        ),
    }
}

/// Who a bot token belongs to, from `auth.test` (`check-config --online`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AuthInfo {
    /// The workspace name and id.
    pub team: String,
    pub team_id: String,
    /// The bot user's name and id, and the bot id.
    pub user: String,
    pub user_id: String,
    pub bot_id: Option<String>,
    /// The workspace URL, `https://acme.slack.com/`.
    pub url: String,
}

impl SlackClient {
    /// A client for the configured mode, or `None` when neither a bot token
    /// nor a webhook URL is set (alerts then go to the log).
    pub fn new(settings: &SlackSettings) -> anyhow::Result<Option<SlackClient>> {
        let mode = match (&settings.bot_token, &settings.webhook_url) {
            (Some(token), _) => Mode::Bot {
                token: token.clone(),
                api_base_url: settings.api_base_url.trim_end_matches('/').to_string(),
                default_channel: settings.default_channel.clone(),
            },
            (None, Some(url)) => Mode::Webhook { url: url.clone() },
            (None, None) => return Ok(None),
        };
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(settings.request_timeout)
            // Slack never redirects these calls; following one would only
            // carry the message (and, for the bot, the token) somewhere else.
            .redirect(redirect::Policy::none())
            .build()
            .context("building the HTTP client for Slack")?;
        Ok(Some(SlackClient {
            http,
            mode: Arc::new(std::sync::RwLock::new(mode)),
            retired: Arc::default(),
            timeout: settings.request_timeout,
            interactive: settings.signing_secret.is_some(),
            channel_ids: Arc::default(),
            no_history_scope: Arc::default(),
        }))
    }

    /// The mode in force now (a reload may replace it).
    fn mode(&self) -> Mode {
        self.mode.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a settings reload: a new bot token (or token file's
    /// content), API base URL and default channel in bot mode, a new URL in
    /// webhook mode. Switching between the modes, `request_timeout` and
    /// `signing_secret` need a restart: `Err` names what.
    pub fn update(&self, settings: &SlackSettings) -> Result<(), &'static str> {
        let new = match (&settings.bot_token, &settings.webhook_url, self.mode()) {
            (Some(token), _, Mode::Bot { .. }) => Mode::Bot {
                token: token.clone(),
                api_base_url: settings.api_base_url.trim_end_matches('/').to_string(),
                default_channel: settings.default_channel.clone(),
            },
            (None, Some(url), Mode::Webhook { .. }) => Mode::Webhook { url: url.clone() },
            _ => return Err("slack.bot_token / slack.webhook_url (switching how alerts are sent)"),
        };
        let mut mode = self.mode.write().unwrap_or_else(|e| e.into_inner());
        let old = match &*mode {
            Mode::Bot { token, .. } => token.clone(),
            Mode::Webhook { url } => url.clone(),
        };
        if let Ok(mut retired) = self.retired.lock() {
            retired.push(old);
            // A few are enough: a send outlives at most one or two reloads.
            let excess = retired.len().saturating_sub(4);
            retired.drain(..excess);
        }
        *mode = new;
        Ok(())
    }

    /// `slack-bot` or `slack-webhook`, for logs and metrics.
    pub fn mode_name(&self) -> &'static str {
        match self.mode() {
            Mode::Bot { .. } => "slack-bot",
            Mode::Webhook { .. } => "slack-webhook",
        }
    }

    /// Whether posted messages can be updated and threaded later (bot mode).
    pub fn can_update(&self) -> bool {
        matches!(self.mode(), Mode::Bot { .. })
    }

    /// Posts one alert. Bot mode returns Slack's channel id and `ts`.
    pub async fn post_alert(&self, alert: &AlertView) -> Result<Posted, SinkError> {
        self.post_alert_keyed(alert, None).await
    }

    /// Posts an outbox row's alert; in bot mode, not again if an earlier
    /// attempt in doubt is found in the channel (see the module docs).
    pub async fn post_alert_once(
        &self,
        alert: &AlertView,
        key: MessageKey,
    ) -> Result<Posted, SinkError> {
        self.post_alert_keyed(alert, Some(key)).await
    }

    async fn post_alert_keyed(
        &self,
        alert: &AlertView,
        key: Option<MessageKey>,
    ) -> Result<Posted, SinkError> {
        let result = match &self.mode() {
            Mode::Bot {
                default_channel, ..
            } => {
                self.post_as_bot(alert, default_channel.as_deref(), key)
                    .await
            }
            Mode::Webhook { url } => self.post_to_webhook(url, alert).await,
        };
        if let Ok(posted) = &result {
            tracing::debug!(
                alert_id = alert.alert_id,
                channel = posted.channel.as_deref().unwrap_or(&alert.channel),
                ts = posted.ts.as_deref().unwrap_or(""),
                mode = self.mode_name(),
                "alert posted to Slack"
            );
        }
        result.map_err(|error| self.redact(error))
    }

    /// Calls `auth.test`: which workspace and bot the token belongs to.
    pub async fn auth_test(&self) -> Result<AuthInfo, SinkError> {
        if !self.can_update() {
            return Err(SinkError::Permanent {
                reason: "not_supported: auth.test needs slack.bot_token; check a webhook URL with `csatwatch send-test-alert`".into(),
            });
        }
        let reply = self.call_api("auth.test", &json!({}), None).await;
        let reply = reply.map_err(|error| self.redact(error))?;
        serde_json::from_value(reply).map_err(|_| SinkError::Permanent {
            reason: "unexpected_response: auth.test answered without team and user".into(),
        })
    }

    async fn post_as_bot(
        &self,
        alert: &AlertView,
        default_channel: Option<&str>,
        key: Option<MessageKey>,
    ) -> Result<Posted, SinkError> {
        let channel = [Some(alert.channel.as_str()), default_channel]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|c| !c.is_empty())
            .ok_or_else(|| SinkError::Permanent {
                reason: "no_channel: set slack.default_channel or a channel on the rule".into(),
            })?;
        let body = message::render(alert, self.buttons());
        self.post_body_as_bot(channel, None, body, key).await
    }

    /// The buttons a bot's alerts carry: "I'm on it" and "Followed up" only
    /// when their clicks can be verified and received.
    fn buttons(&self) -> Buttons {
        if self.interactive && self.can_update() {
            Buttons::AckAndFollowUp
        } else {
            Buttons::LinkOnly
        }
    }

    async fn post_body_as_bot(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        mut body: Value,
        key: Option<MessageKey>,
    ) -> Result<Posted, SinkError> {
        if let Some(key) = key {
            if let Some(since) = key.in_doubt_since_ms
                && let Some(found) = self.find_posted(channel, thread_ts, key, since).await?
            {
                metrics::counter!("csatwatch_in_doubt_checks_total", "outcome" => "found")
                    .increment(1);
                tracing::info!(
                    outbox_id = key.outbox_id,
                    channel = found.channel.as_deref().unwrap_or(channel),
                    "an earlier attempt had been posted; not posting again"
                );
                return Ok(found);
            }
            body["metadata"] = json!({
                "event_type": METADATA_EVENT_TYPE,
                "event_payload": { "outbox_id": key.outbox_id, "created_at": key.created_at_ms },
            });
        }
        body["channel"] = json!(channel);
        if let Some(ts) = thread_ts {
            // The parent's ts, never a reply's: Slack threads under the parent.
            body["thread_ts"] = json!(ts);
        }
        // A ticket link would otherwise unfurl into a preview of the helpdesk page.
        body["unfurl_links"] = json!(false);
        body["unfurl_media"] = json!(false);
        let reply = self
            .call_api("chat.postMessage", &body, Some(channel))
            .await?;
        let id = reply["channel"].as_str().unwrap_or(channel).to_string();
        if id != channel
            && let Ok(mut ids) = self.channel_ids.lock()
        {
            ids.insert(channel.to_string(), id.clone());
        }
        Ok(Posted {
            channel: Some(id),
            ts: reply["ts"].as_str().map(str::to_string),
        })
    }

    /// The channel id for `channel`: itself when it is one, or the id Slack
    /// answered for that name earlier.
    fn channel_id(&self, channel: &str) -> Option<String> {
        let looks_like_id = channel.len() >= 9
            && channel.starts_with(['C', 'G', 'D'])
            && channel
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if looks_like_id {
            return Some(channel.to_string());
        }
        self.channel_ids.lock().ok()?.get(channel).cloned()
    }

    /// Looks for the message of `key` in the channel (or in the thread of
    /// `thread_ts`) posted since `since_ms`, within a bounded window. `None`
    /// when it is not there, or when it cannot be looked for (no history
    /// scope, a channel known only by name): the caller then posts.
    async fn find_posted(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        key: MessageKey,
        since_ms: i64,
    ) -> Result<Option<Posted>, SinkError> {
        let unchecked = || {
            metrics::counter!("csatwatch_in_doubt_checks_total", "outcome" => "unchecked")
                .increment(1);
            Ok(None)
        };
        if self.no_history_scope.load(Ordering::Relaxed) {
            return unchecked();
        }
        let Some(id) = self.channel_id(channel) else {
            tracing::debug!(
                outbox_id = key.outbox_id,
                "channel id unknown; cannot check for an earlier post"
            );
            return unchecked();
        };
        let oldest = (since_ms - IN_DOUBT_MARGIN_MS).max(0);
        let mut query = vec![
            ("channel", id.clone()),
            (
                "oldest",
                format!("{}.{:03}000", oldest / 1000, oldest % 1000),
            ),
            ("limit", "200".to_string()),
            ("include_all_metadata", "true".to_string()),
        ];
        let method = match thread_ts {
            Some(ts) => {
                query.push(("ts", ts.to_string()));
                "conversations.replies"
            }
            None => "conversations.history",
        };
        let mut cursor: Option<String> = None;
        for _ in 0..HISTORY_PAGES {
            let mut page = query.clone();
            if let Some(c) = &cursor {
                page.push(("cursor", c.clone()));
            }
            let reply = match self.call_api_get(method, &page, Some(&id)).await {
                Ok(reply) => reply,
                Err(SinkError::Permanent { reason }) => {
                    if reason.starts_with("missing_scope") {
                        self.no_history_scope.store(true, Ordering::Relaxed);
                        tracing::warn!(
                            "the Slack token lacks channels:history/groups:history, so a retry after a timeout cannot check whether Slack posted already; add the scopes and reinstall the app (docs/slack.md)"
                        );
                    } else {
                        tracing::warn!(outbox_id = key.outbox_id, error = %self.redact(SinkError::Permanent { reason }), "cannot read the channel to check for an earlier post; posting");
                    }
                    return unchecked();
                }
                Err(other) => return Err(self.redact(other)),
            };
            let messages = reply["messages"].as_array().into_iter().flatten();
            for message in messages {
                let meta = &message["metadata"];
                if meta["event_type"] == METADATA_EVENT_TYPE
                    && meta["event_payload"]["outbox_id"] == json!(key.outbox_id)
                    && meta["event_payload"]["created_at"] == json!(key.created_at_ms)
                    && let Some(ts) = message["ts"].as_str()
                {
                    return Ok(Some(Posted {
                        channel: Some(id),
                        ts: Some(ts.to_string()),
                    }));
                }
            }
            cursor = reply
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        metrics::counter!("csatwatch_in_doubt_checks_total", "outcome" => "absent").increment(1);
        Ok(None)
    }

    /// Re-renders a posted alert in place (`chat.update`; bot mode only).
    /// `channel` is the channel id Slack returned with the post.
    pub async fn update_alert(
        &self,
        channel: &str,
        ts: &str,
        alert: &AlertView,
    ) -> Result<(), SinkError> {
        if !self.can_update() {
            return Err(not_in_webhook_mode("chat.update"));
        }
        let mut body = message::render(alert, self.buttons());
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        self.call_api("chat.update", &body, Some(channel))
            .await
            .map(drop)
            .map_err(|error| self.redact(error))
    }

    /// Posts a rendered message (`{"text", "blocks"}`): to `channel` in bot
    /// mode, in the thread of `thread_ts` if given; to the webhook's own
    /// channel in webhook mode, where threads are impossible.
    pub async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        body: Value,
    ) -> Result<Posted, SinkError> {
        self.post_message_keyed(channel, thread_ts, body, None)
            .await
    }

    /// As [`SlackClient::post_message`], for an outbox row's message: in bot
    /// mode, not again if an earlier attempt in doubt is found.
    pub async fn post_message_once(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        body: Value,
        key: MessageKey,
    ) -> Result<Posted, SinkError> {
        self.post_message_keyed(channel, thread_ts, body, Some(key))
            .await
    }

    async fn post_message_keyed(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        body: Value,
        key: Option<MessageKey>,
    ) -> Result<Posted, SinkError> {
        let result = match &self.mode() {
            Mode::Bot { .. } => self.post_body_as_bot(channel, thread_ts, body, key).await,
            Mode::Webhook { .. } if thread_ts.is_some() => {
                Err(not_in_webhook_mode("thread replies"))
            }
            Mode::Webhook { url } => self.post_body_to_webhook(url, &body).await,
        };
        result.map_err(|error| self.redact(error))
    }

    /// Calls `conversations.info` for `channel` (an id; names are looked up
    /// by Slack only for ids): whether it exists, is archived, and whether
    /// the bot is a member. For `check-config --online`.
    pub async fn channel_info(&self, channel: &str) -> Result<Value, SinkError> {
        if !self.can_update() {
            return Err(not_in_webhook_mode("conversations.info"));
        }
        self.call_api(
            "conversations.info",
            &json!({ "channel": channel }),
            Some(channel),
        )
        .await
        .map(|reply| reply["channel"].clone())
        .map_err(|error| self.redact(error))
    }

    /// The scopes the token was granted, from the `x-oauth-scopes` header
    /// of `auth.test` (empty if Slack did not send it).
    pub async fn granted_scopes(&self) -> Vec<String> {
        let Mode::Bot {
            token,
            api_base_url,
            ..
        } = &self.mode()
        else {
            return Vec::new();
        };
        let response = self
            .http
            .post(format!("{api_base_url}/auth.test"))
            .bearer_auth(token.expose_secret())
            .json(&json!({}))
            .send()
            .await;
        response
            .ok()
            .and_then(|r| {
                r.headers()
                    .get("x-oauth-scopes")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default()
    }

    /// One Web API call; `Ok` is the reply with `"ok": true`.
    pub(crate) async fn call_api(
        &self,
        method: &str,
        body: &Value,
        channel: Option<&str>,
    ) -> Result<Value, SinkError> {
        let Mode::Bot {
            token,
            api_base_url,
            ..
        } = &self.mode()
        else {
            unreachable!("Web API calls are made in bot mode only");
        };
        let request = self
            .http
            .post(format!("{api_base_url}/{method}"))
            .bearer_auth(token.expose_secret())
            .json(body);
        self.send_api(method, api_base_url, request, channel).await
    }

    /// One read-only Web API call with query parameters (the history
    /// methods take no JSON body).
    pub(crate) async fn call_api_get(
        &self,
        method: &str,
        query: &[(&str, String)],
        channel: Option<&str>,
    ) -> Result<Value, SinkError> {
        let Mode::Bot {
            token,
            api_base_url,
            ..
        } = &self.mode()
        else {
            unreachable!("Web API calls are made in bot mode only");
        };
        let request = self
            .http
            .get(format!("{api_base_url}/{method}"))
            .bearer_auth(token.expose_secret())
            .query(query);
        self.send_api(method, api_base_url, request, channel).await
    }

    async fn send_api(
        &self,
        method: &str,
        api_base_url: &str,
        request: reqwest::RequestBuilder,
        channel: Option<&str>,
    ) -> Result<Value, SinkError> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let header_wait = retry_after(response.headers());
        if let Some(error) = rate_limit_or_server_error(status, header_wait) {
            return Err(error);
        }
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let reply: Value = match serde_json::from_str(&text) {
            Ok(reply @ Value::Object(_)) => reply,
            _ => {
                return Err(SinkError::Permanent {
                    reason: format!(
                        "unexpected_response: HTTP {} from {method} is not a Slack answer; check slack.api_base_url ({api_base_url})",
                        status.as_u16()
                    ),
                });
            }
        };
        if reply["ok"] == json!(true) {
            return Ok(reply);
        }
        // Slack puts `retry_after` in some JSON bodies too; the header wins.
        let wait = header_wait.or_else(|| {
            reply["retry_after"]
                .as_u64()
                .map(super::errors::capped_seconds)
        });
        let code = error_code(reply["error"].as_str().unwrap_or(""));
        Err(classify_api_error(&code, &reply, wait, channel))
    }

    async fn post_to_webhook(
        &self,
        url: &SecretString,
        alert: &AlertView,
    ) -> Result<Posted, SinkError> {
        let body = message::render(alert, Buttons::LinkOnly);
        self.post_body_to_webhook(url, &body).await
    }

    async fn post_body_to_webhook(
        &self,
        url: &SecretString,
        body: &Value,
    ) -> Result<Posted, SinkError> {
        let response = self
            .http
            .post(url.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let header_wait = retry_after(response.headers());
        if let Some(error) = rate_limit_or_server_error(status, header_wait) {
            return Err(error);
        }
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if status.is_success() && text.trim() == "ok" {
            return Ok(Posted::default());
        }
        Err(classify_webhook_error(status, &text))
    }

    /// A request that got no complete answer. One that never connected is
    /// plainly retryable; one that was sent is in doubt: the retry looks for
    /// the message first (bot mode), and otherwise posts again, which
    /// DESIGN.md accepts over losing it.
    fn transport_error(&self, error: &reqwest::Error) -> SinkError {
        // reqwest's own Display includes the URL (a secret in webhook
        // mode), so only the innermost cause is shown, and scrubbed later.
        let mut cause: &dyn std::error::Error = error;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let reason = if error.is_timeout() {
            format!(
                "timeout: Slack did not answer within {}",
                humantime::format_duration(self.timeout)
            )
        } else if error.is_builder() {
            return SinkError::Permanent {
                reason: "invalid_url: check slack.webhook_url or slack.api_base_url".into(),
            };
        } else if error.is_connect() {
            // Nothing was sent: retrying cannot repeat a message.
            return SinkError::Retryable {
                reason: format!("network: could not connect to Slack ({cause})"),
                retry_after: None,
            };
        } else {
            format!("network: the request to Slack failed ({cause})")
        };
        // Sent, but no answer: Slack may have posted it.
        SinkError::InDoubt { reason }
    }

    /// Removes the token and the webhook URL (and its secret path) from an
    /// error, whatever produced it.
    fn redact(&self, error: SinkError) -> SinkError {
        let mut secrets: Vec<String> = self
            .retired
            .lock()
            .map(|r| r.iter().map(|s| s.expose_secret().to_string()).collect())
            .unwrap_or_default();
        match &self.mode() {
            Mode::Bot { token, .. } => secrets.push(token.expose_secret().to_string()),
            Mode::Webhook { url } => {
                secrets.push(url.expose_secret().to_string());
                if let Ok(parsed) = reqwest::Url::parse(url.expose_secret())
                    && parsed.path().len() > 1
                {
                    secrets.push(parsed.path().to_string());
                }
            }
        }
        let scrub = |mut reason: String| {
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                reason = reason.replace(secret.as_str(), "[redacted]");
            }
            reason
        };
        match error {
            SinkError::Retryable {
                reason,
                retry_after,
            } => SinkError::Retryable {
                reason: scrub(reason),
                retry_after,
            },
            SinkError::Permanent { reason } => SinkError::Permanent {
                reason: scrub(reason),
            },
            SinkError::InDoubt { reason } => SinkError::InDoubt {
                reason: scrub(reason),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::sinks::slack::message::tests::full_alert;

    const TOKEN: &str = "xoxb-1111-2222-sEcReTtOkEn";
    const WEBHOOK_PATH: &str = "/services/T0001/B0001/wEbHoOkSeCrEt";

    fn client(settings: SlackSettings) -> SlackClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        SlackClient::new(&settings)
            .unwrap()
            .expect("a configured client")
    }

    fn bot(server: &MockServer) -> SlackClient {
        client(SlackSettings {
            bot_token: Some(SecretString::from(TOKEN.to_string())),
            default_channel: Some("#fallback".to_string()),
            api_base_url: format!("{}/api/", server.uri()),
            ..SlackSettings::default()
        })
    }

    fn webhook_url(base: &str) -> String {
        format!("{base}{WEBHOOK_PATH}")
    }

    fn webhook(server: &MockServer) -> SlackClient {
        client(SlackSettings {
            webhook_url: Some(SecretString::from(webhook_url(&server.uri()))),
            ..SlackSettings::default()
        })
    }

    /// A server answering every Web API call with `response`.
    async fn slack_answering(response: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        server
    }

    fn api_error(code: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": code }))
    }

    #[tokio::test]
    async fn a_bot_post_carries_token_channel_and_text_and_keeps_the_ts() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_partial_json(json!({
                "channel": "#csat-alerts",
                "unfurl_links": false,
                "unfurl_media": false,
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "channel": "C0CSAT", "ts": "1772360100.000200",
            })))
            .expect(1)
            .mount(&server)
            .await;

        let posted = bot(&server).post_alert(&full_alert()).await.unwrap();

        assert_eq!(posted.channel.as_deref(), Some("C0CSAT"));
        assert_eq!(posted.ts.as_deref(), Some("1772360100.000200"));
        let request = &server.received_requests().await.unwrap()[0];
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert!(body["text"].as_str().unwrap().contains("Negative CSAT"));
        // No signing secret: clicks could not be verified, so no ack buttons.
        assert!(!body.to_string().contains(message::ACK_ACTION_ID));
        let agent = request.headers.get("user-agent").unwrap().to_str().unwrap();
        assert!(agent.starts_with("csatwatch/"));
    }

    #[tokio::test]
    async fn a_bot_with_a_signing_secret_posts_ack_buttons_and_updates_in_place() {
        let server = slack_answering(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "channel": "C0CSAT", "ts": "1772360100.000200",
        })))
        .await;
        let client = client(SlackSettings {
            bot_token: Some(SecretString::from(TOKEN.to_string())),
            api_base_url: server.uri(),
            signing_secret: Some(SecretString::from("s".to_string())),
            ..SlackSettings::default()
        });
        client.post_alert(&full_alert()).await.unwrap();
        client
            .update_alert("C0CSAT", "1772360100.000200", &full_alert())
            .await
            .unwrap();
        client
            .post_message("C0CSAT", Some("1772360100.000200"), json!({"text": "x"}))
            .await
            .unwrap();
        let requests = server.received_requests().await.unwrap();
        let bodies: Vec<(String, Value)> = requests
            .iter()
            .map(|r| {
                (
                    r.url.path().to_string(),
                    serde_json::from_slice(&r.body).unwrap(),
                )
            })
            .collect();
        assert_eq!(bodies[0].0, "/chat.postMessage");
        assert!(bodies[0].1.to_string().contains(message::ACK_ACTION_ID));
        assert_eq!(bodies[1].0, "/chat.update");
        assert_eq!(
            (&bodies[1].1["channel"], &bodies[1].1["ts"]),
            (&json!("C0CSAT"), &json!("1772360100.000200"))
        );
        assert_eq!(bodies[2].1["thread_ts"], "1772360100.000200");
    }

    #[tokio::test]
    async fn an_alert_without_a_channel_goes_to_the_default_channel() {
        let server = slack_answering(
            ResponseTemplate::new(200).set_body_json(json!({ "ok": true, "ts": "1.2" })),
        )
        .await;
        let alert = AlertView {
            channel: " ".to_string(),
            ..full_alert()
        };
        let posted = bot(&server).post_alert(&alert).await.unwrap();
        assert_eq!(posted.channel.as_deref(), Some("#fallback"));
    }

    #[tokio::test]
    async fn a_429_is_retried_after_slacks_retry_after() {
        let server =
            slack_answering(ResponseTemplate::new(429).insert_header("Retry-After", "7")).await;
        let error = bot(&server).post_alert(&full_alert()).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(error.class(), "ratelimited");
    }

    #[tokio::test]
    async fn slack_side_errors_in_a_200_body_are_retried() {
        for code in [
            "ratelimited",
            "rate_limited",
            "fatal_error",
            "internal_error",
            "service_unavailable",
            "request_timeout",
        ] {
            let server = slack_answering(api_error(code)).await;
            let error = bot(&server).post_alert(&full_alert()).await.unwrap_err();
            assert!(error.is_retryable(), "{code}: {error}");
        }
    }

    #[tokio::test]
    async fn a_503_is_retried() {
        let server = slack_answering(ResponseTemplate::new(503)).await;
        let error = bot(&server).post_alert(&full_alert()).await.unwrap_err();
        assert!(error.is_retryable());
        assert_eq!(error.to_string(), "server_error: HTTP 503 (will retry)");
    }

    #[tokio::test]
    async fn each_permanent_error_starts_with_its_code_and_says_what_to_do() {
        let cases = [
            ("channel_not_found", "slack.default_channel"),
            ("not_in_channel", "/invite @csatwatch"),
            ("is_archived", "archived"),
            ("invalid_auth", "slack.bot_token"),
            ("not_authed", "slack.bot_token"),
            ("account_inactive", "slack.bot_token"),
            ("token_revoked", "slack.bot_token"),
            ("missing_scope", "add chat:write under OAuth & Permissions"),
            ("msg_too_long", "report"),
            ("restricted_action", "Slack admin"),
            ("some_new_error", "docs.slack.dev"),
        ];
        for (code, advice) in cases {
            let server = slack_answering(api_error(code)).await;
            let error = bot(&server).post_alert(&full_alert()).await.unwrap_err();
            assert!(!error.is_retryable(), "{code}: {error}");
            assert_eq!(error.class(), code);
            assert!(error.to_string().contains(advice), "{code}: {error}");
        }
    }

    #[tokio::test]
    async fn invalid_blocks_names_slacks_pointer() {
        let server = slack_answering(ResponseTemplate::new(200).set_body_json(json!({
            "ok": false,
            "error": "invalid_blocks",
            "errors": ["must be less than 151 characters [json-pointer:/blocks/0/text]"],
        })))
        .await;
        let error = bot(&server).post_alert(&full_alert()).await.unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(error.class(), "invalid_blocks");
        assert!(error.to_string().contains("/blocks/0/text"), "{error}");
    }

    #[tokio::test]
    async fn auth_test_reports_workspace_and_bot() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/auth.test"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "url": "https://acme.slack.com/", "team": "Acme", "team_id": "T0001",
                "user": "csatwatch", "user_id": "U0BOT", "bot_id": "B0BOT",
            })))
            .mount(&server)
            .await;
        let info = bot(&server).auth_test().await.unwrap();
        assert_eq!(
            (info.team.as_str(), info.user.as_str()),
            ("Acme", "csatwatch")
        );
        assert_eq!(info.bot_id.as_deref(), Some("B0BOT"));
        assert!(webhook(&server).auth_test().await.is_err());
    }

    #[tokio::test]
    async fn a_webhook_post_sends_no_channel_and_no_ack_buttons() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(WEBHOOK_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .expect(1)
            .mount(&server)
            .await;
        let client = webhook(&server);
        assert_eq!(
            (client.mode_name(), client.can_update()),
            ("slack-webhook", false)
        );

        let posted = client.post_alert(&full_alert()).await.unwrap();

        assert_eq!(posted, Posted::default());
        let request = &server.received_requests().await.unwrap()[0];
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert!(body.get("channel").is_none());
        assert!(!body.to_string().contains(message::ACK_ACTION_ID));
        assert!(request.headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn webhook_errors_are_sorted_by_status() {
        let server =
            slack_answering(ResponseTemplate::new(404).set_body_string("channel_not_found")).await;
        let error = webhook(&server)
            .post_alert(&full_alert())
            .await
            .unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(error.class(), "channel_not_found");
        assert!(error.to_string().contains("slack.webhook_url"));

        let server =
            slack_answering(ResponseTemplate::new(500).set_body_string("rollup_error")).await;
        assert!(
            webhook(&server)
                .post_alert(&full_alert())
                .await
                .unwrap_err()
                .is_retryable()
        );

        let server =
            slack_answering(ResponseTemplate::new(429).insert_header("Retry-After", "3")).await;
        let error = webhook(&server)
            .post_alert(&full_alert())
            .await
            .unwrap_err();
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn a_slack_slower_than_the_timeout_is_retried() {
        let server =
            slack_answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
        let client = client(SlackSettings {
            bot_token: Some(SecretString::from(TOKEN.to_string())),
            api_base_url: server.uri(),
            request_timeout: Duration::from_millis(200),
            ..SlackSettings::default()
        });
        let error = client.post_alert(&full_alert()).await.unwrap_err();
        assert!(error.is_retryable());
        assert!(error.is_in_doubt(), "sent, no answer: it may be posted");
        assert_eq!(error.class(), "timeout");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_and_not_in_doubt() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let client = client(SlackSettings {
            bot_token: Some(SecretString::from(TOKEN.to_string())),
            api_base_url: closed,
            ..SlackSettings::default()
        });
        let error = client.post_alert(&full_alert()).await.unwrap_err();
        assert!(error.is_retryable());
        assert!(!error.is_in_doubt(), "{error}");
    }

    fn in_doubt(outbox_id: i64) -> MessageKey {
        MessageKey {
            outbox_id,
            created_at_ms: 1_700_000_000_000,
            in_doubt_since_ms: Some(1_700_000_100_000),
        }
    }

    #[tokio::test]
    async fn a_thread_reply_in_doubt_found_in_the_thread_is_not_posted_again() {
        let server = MockServer::start().await;
        let mine = json!({
            "ts": "1700000100.000200",
            "metadata": {
                "event_type": METADATA_EVENT_TYPE,
                "event_payload": { "outbox_id": 42, "created_at": 1_700_000_000_000i64 },
            },
        });
        // Another installation's row 42 in the same thread must not match.
        let theirs = json!({
            "ts": "1700000100.000100",
            "metadata": {
                "event_type": METADATA_EVENT_TYPE,
                "event_payload": { "outbox_id": 42, "created_at": 5 },
            },
        });
        Mock::given(method("GET"))
            .and(path("/api/conversations.replies"))
            .and(wiremock::matchers::query_param("channel", "C0CSAT001"))
            .and(wiremock::matchers::query_param("ts", "1700000000.000100"))
            .and(wiremock::matchers::query_param(
                "include_all_metadata",
                "true",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "ok": true, "messages": [theirs, mine], "has_more": false }),
            ))
            .mount(&server)
            .await;
        let bot = bot(&server);
        let posted = bot
            .post_message_once(
                "C0CSAT001",
                Some("1700000000.000100"),
                json!({ "text": "reply" }),
                in_doubt(42),
            )
            .await
            .unwrap();
        assert_eq!(posted.ts.as_deref(), Some("1700000100.000200"));
        let calls = server.received_requests().await.unwrap();
        assert!(
            calls
                .iter()
                .all(|r| r.url.path() != "/api/chat.postMessage"),
            "found, so not posted again"
        );

        // Not found (row 43): posted, with its metadata.
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "ok": true, "channel": "C0CSAT001", "ts": "9.9" })),
            )
            .mount(&server)
            .await;
        let posted = bot
            .post_message_once(
                "C0CSAT001",
                Some("1700000000.000100"),
                json!({ "text": "reply" }),
                in_doubt(43),
            )
            .await
            .unwrap();
        assert_eq!(posted.ts.as_deref(), Some("9.9"));
        let calls = server.received_requests().await.unwrap();
        let post: Value = calls
            .iter()
            .find(|r| r.url.path() == "/api/chat.postMessage")
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .unwrap();
        assert_eq!(post["metadata"]["event_payload"]["outbox_id"], 43);
        assert_eq!(post["thread_ts"], "1700000000.000100");
    }

    #[tokio::test]
    async fn a_channel_known_only_by_name_is_looked_up_by_the_id_slack_answered() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "ok": true, "channel": "C0CSAT001", "ts": "1.1" })),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/conversations.history"))
            .and(wiremock::matchers::query_param("channel", "C0CSAT001"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "ok": true, "messages": [], "has_more": false })),
            )
            .mount(&server)
            .await;
        let bot = bot(&server);
        // Before any post, the name cannot be read: no lookup, just a post.
        bot.post_message_once("#csat", None, json!({ "text": "a" }), in_doubt(1))
            .await
            .unwrap();
        let history = |calls: &[wiremock::Request]| {
            calls
                .iter()
                .filter(|r| r.url.path() == "/api/conversations.history")
                .count()
        };
        assert_eq!(history(&server.received_requests().await.unwrap()), 0);
        // Slack answered the id for #csat: the next doubt is checked there.
        bot.post_message_once("#csat", None, json!({ "text": "b" }), in_doubt(2))
            .await
            .unwrap();
        assert_eq!(history(&server.received_requests().await.unwrap()), 1);
    }

    #[tokio::test]
    async fn no_error_contains_the_token_or_the_webhook_url() {
        // Answers that echo the secret back, as a misbehaving proxy might.
        let echo = format!("{TOKEN} {WEBHOOK_PATH}");
        let server =
            slack_answering(ResponseTemplate::new(400).set_body_string(echo.as_str())).await;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let unreachable_hook = client(SlackSettings {
            webhook_url: Some(SecretString::from(webhook_url(&closed))),
            ..SlackSettings::default()
        });
        let unreachable_bot = client(SlackSettings {
            bot_token: Some(SecretString::from(TOKEN.to_string())),
            api_base_url: closed.clone(),
            ..SlackSettings::default()
        });
        let mut errors = vec![
            bot(&server).post_alert(&full_alert()).await.unwrap_err(),
            bot(&server).auth_test().await.unwrap_err(),
            webhook(&server)
                .post_alert(&full_alert())
                .await
                .unwrap_err(),
            unreachable_hook
                .post_alert(&full_alert())
                .await
                .unwrap_err(),
            unreachable_bot.post_alert(&full_alert()).await.unwrap_err(),
        ];
        // And the last line of defence, on an error that quotes both.
        let quoted = SinkError::Permanent {
            reason: format!("x: {}", webhook_url(&closed)),
        };
        errors.push(unreachable_hook.redact(quoted));
        errors.push(unreachable_bot.redact(SinkError::Permanent {
            reason: format!("x: Bearer {TOKEN}"),
        }));
        for error in errors {
            let text = format!("{error} {error:?}");
            assert!(!text.contains(TOKEN), "{text}");
            assert!(!text.contains("wEbHoOkSeCrEt"), "{text}");
        }
        assert!(!format!("{unreachable_bot:?} {unreachable_hook:?}").contains("SeCrEt"));
    }

    #[test]
    fn without_token_or_webhook_there_is_no_client() {
        assert!(
            SlackClient::new(&SlackSettings::default())
                .unwrap()
                .is_none()
        );
    }
}
