//! Sinks deliver alerts. Slack first; the log when nothing is configured.
//! A sink renders an [`AlertView`] and reports [`Posted`] or a [`SinkError`]
//! that tells the dispatcher whether to retry. Adding a sink (Teams, a
//! generic webhook) means a new variant here and nothing in the pipeline or
//! the dispatcher: the dispatcher says what to deliver (an alert, an update
//! of it, an escalation, a digest and its items) and the sink renders it.
//!
//! Every message of an outbox row carries a [`MessageKey`]. A sink that can
//! find its own messages again (Slack, by message metadata) does so before
//! repeating a send whose outcome was unknown, so a slow receiver does not
//! produce a duplicate.

pub mod slack;

use std::time::Duration;

use serde::Serialize;

use crate::domain::{Score, Sentiment};

/// Everything a sink needs to render one alert, read from the store at send time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    pub alert_id: i64,
    /// The configured source's name (`zendesk`) and its kind.
    pub source: String,
    pub source_kind: String,
    pub conversation_id: String,
    pub rating_key: String,
    pub score: Score,
    pub sentiment: Sentiment,
    /// Customer text: rendered as plain text, never logged.
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    pub tags: Vec<String>,
    pub url: Option<String>,
    /// When this version of the rating was given, Unix milliseconds.
    pub rated_at_ms: i64,
    /// Where it goes, and who to mention (`@here`, `U0123`, `S0123`).
    pub channel: String,
    pub mentions: Vec<String>,
    pub rule: Option<String>,
    /// A sample from `csatwatch send-test-alert`, labelled as such.
    pub test: bool,
    /// Who pressed "I'm on it", and when.
    pub acknowledged: Option<Acted>,
    /// Who pressed "Followed up", and when.
    pub followed_up: Option<Acted>,
    /// Raised for a negative rating that has since turned positive.
    pub recovered: bool,
    /// What its helpdesk lets a person do from the alert: `note`, `reopen`,
    /// `assign` (empty without API credentials).
    pub ticket_actions: Vec<String>,
    /// The recorded outcome of the follow-up (`resolved`, …).
    pub outcome: Option<String>,
    /// The customer's earlier ratings, when they gave any.
    pub story: Option<CustomerStory>,
}

/// The customer's story: their other ratings within a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerStory {
    /// Their negative ratings in the window, this one included if negative.
    pub negatives: i64,
    pub window_days: i64,
    /// Their latest earlier ratings, newest first: label, negative, when.
    pub recent: Vec<(String, bool, i64)>,
}

/// A person's click on an alert button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acted {
    /// The Slack user id (`U0123…`), rendered as a mention.
    pub user_id: String,
    /// Their Slack user name, shown where the id cannot be.
    pub user_name: Option<String>,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// What a sink returns on success. A bot-token post returns the channel id
/// and message `ts` (kept to update the message later); a webhook post
/// returns neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Posted {
    pub channel: Option<String>,
    pub ts: Option<String>,
}

/// The outbox row a message belongs to, and whether an earlier attempt to
/// send it may have been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageKey {
    /// The outbox row's id.
    pub outbox_id: i64,
    /// When the row was created (Unix ms): with the id, it tells this
    /// installation's messages from another's in the same channel.
    pub created_at_ms: i64,
    /// When an earlier attempt got no answer (Unix ms): look for the
    /// message from then on before sending it again.
    pub in_doubt_since_ms: Option<i64>,
}

/// A failed delivery, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Try again later: rate limited, a 5xx, a timeout, a network error.
    /// `retry_after` is the receiver's own hint (`Retry-After`).
    #[error("{reason} (will retry)")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help until someone changes something: a wrong token,
    /// a missing channel, a missing scope, a message Slack refuses.
    #[error("{reason}")]
    Permanent { reason: String },
    /// No answer came back after the request was sent (a timeout, a
    /// dropped connection): it may have been delivered. Retried, and the
    /// retry first looks for the message.
    #[error("{reason} (may have been delivered; will check, then retry)")]
    InDoubt { reason: String },
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SinkError::Retryable { .. } | SinkError::InDoubt { .. }
        )
    }

    /// Whether the failed request may have been delivered.
    pub fn is_in_doubt(&self) -> bool {
        matches!(self, SinkError::InDoubt { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SinkError::Retryable { retry_after, .. } => *retry_after,
            SinkError::Permanent { .. } | SinkError::InDoubt { .. } => None,
        }
    }

    /// A short class for metrics and logs: `ratelimited`, `server_error`, `channel_not_found`, …
    pub fn class(&self) -> &str {
        let reason = match self {
            SinkError::Retryable { reason, .. }
            | SinkError::Permanent { reason }
            | SinkError::InDoubt { reason } => reason,
        };
        reason.split(':').next().unwrap_or("error").trim()
    }
}

/// Where alerts are delivered.
#[derive(Debug, Clone)]
pub enum Sink {
    Slack(slack::SlackClient),
    /// No Slack configured: alerts are written to the log at WARN (ids and
    /// scores only), so a first run works without Slack.
    Log,
}

impl Sink {
    pub async fn post(&self, alert: &AlertView) -> Result<Posted, SinkError> {
        match self {
            Sink::Slack(client) => client.post_alert(alert).await,
            Sink::Log => {
                tracing::warn!(
                    alert_id = alert.alert_id,
                    source = %alert.source,
                    conversation_id = %alert.conversation_id,
                    score = %alert.score.label(),
                    sentiment = %alert.sentiment,
                    channel = %alert.channel,
                    url = alert.url.as_deref().unwrap_or(""),
                    test = alert.test,
                    "negative rating (no Slack configured, so the alert is logged)"
                );
                Ok(Posted::default())
            }
        }
    }

    /// Re-renders a posted alert in place (`chat.update`). Only a bot can;
    /// the dispatcher skips updates of messages without a `ts`.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        alert: &AlertView,
    ) -> Result<(), SinkError> {
        match self {
            Sink::Slack(client) => client.update_alert(channel, ts, alert).await,
            Sink::Log => {
                tracing::warn!(
                    alert_id = alert.alert_id,
                    channel,
                    "alert updated (no Slack configured, so logged)"
                );
                Ok(())
            }
        }
    }

    /// Posts a rendered message (a digest, or a thread reply under
    /// `thread_ts`).
    pub async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        body: serde_json::Value,
    ) -> Result<Posted, SinkError> {
        match self {
            Sink::Slack(client) => client.post_message(channel, thread_ts, body).await,
            Sink::Log => {
                // The fallback text holds names, never comments; still, log only the shape.
                tracing::warn!(
                    channel,
                    thread = thread_ts.is_some(),
                    "message (no Slack configured, so logged)"
                );
                Ok(Posted::default())
            }
        }
    }

    /// Posts an outbox row's alert, at most once per [`MessageKey`] where
    /// the sink can tell (see the module docs).
    pub async fn post_alert(
        &self,
        alert: &AlertView,
        key: MessageKey,
    ) -> Result<Posted, SinkError> {
        match self {
            Sink::Slack(client) => client.post_alert_once(alert, key).await,
            Sink::Log => self.post(alert).await,
        }
    }

    /// The thread reply under an updated alert saying what changed.
    pub async fn reply_update(
        &self,
        channel: &str,
        ts: &str,
        change: &str,
        alert: &AlertView,
        key: MessageKey,
    ) -> Result<Posted, SinkError> {
        match self {
            Sink::Slack(client) => {
                let body = slack::threads::update_reply(change, alert);
                client.post_message_once(channel, Some(ts), body, key).await
            }
            Sink::Log => self.log_message(channel, true),
        }
    }

    /// The thread reply of an escalation: mentions `alert.mentions`, says
    /// how long nobody acted (`waited`, in words).
    pub async fn reply_escalation(
        &self,
        channel: &str,
        ts: &str,
        alert: &AlertView,
        waited: &str,
        key: MessageKey,
    ) -> Result<Posted, SinkError> {
        match self {
            Sink::Slack(client) => {
                let body = slack::threads::escalation_reply(alert, waited);
                client.post_message_once(channel, Some(ts), body, key).await
            }
            Sink::Log => self.log_message(channel, true),
        }
    }

    /// One message for a storm: `members` worst first.
    pub async fn post_digest(
        &self,
        channel: &str,
        members: &[AlertView],
        mentions: &[String],
        key: MessageKey,
    ) -> Result<Posted, SinkError> {
        match self {
            Sink::Slack(client) => {
                let body = slack::threads::digest(members, mentions);
                client.post_message_once(channel, None, body, key).await
            }
            Sink::Log => {
                tracing::warn!(
                    channel,
                    members = members.len(),
                    "alert storm digest (no Slack configured, so logged)"
                );
                Ok(Posted::default())
            }
        }
    }

    /// One rating of a digest, in the digest's thread.
    pub async fn reply_digest_item(
        &self,
        channel: &str,
        ts: &str,
        alert: &AlertView,
        key: MessageKey,
    ) -> Result<Posted, SinkError> {
        match self {
            Sink::Slack(client) => {
                let body = slack::threads::digest_item(alert);
                client.post_message_once(channel, Some(ts), body, key).await
            }
            Sink::Log => self.log_message(channel, true),
        }
    }

    fn log_message(&self, channel: &str, thread: bool) -> Result<Posted, SinkError> {
        tracing::warn!(channel, thread, "message (no Slack configured, so logged)");
        Ok(Posted::default())
    }

    pub fn name(&self) -> &'static str {
        match self {
            Sink::Slack(client) => client.mode_name(),
            Sink::Log => "log",
        }
    }
}
