//! Slack calls about people and private replies, for closing the loop:
//! `users.info` (the clicking person's name and email; the email needs
//! `users:read.email`), `users.lookupByEmail` (the rated agent's Slack user),
//! `conversations.open` + `chat.postMessage` (a direct message, `im:write`),
//! and `chat.postEphemeral` (a result only the clicking person sees).
//! Bot mode only; nothing here logs names or emails.

use serde_json::{Value, json};

use super::SlackClient;
use crate::sinks::SinkError;

/// A Slack user as `users.info` describes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackUser {
    pub id: String,
    /// The display name, else the real name, else the handle.
    pub name: Option<String>,
    /// Present only with the `users:read.email` scope.
    pub email: Option<String>,
}

fn bot_only(what: &str) -> SinkError {
    SinkError::Permanent {
        reason: format!("not_supported: {what} needs slack.bot_token"),
    }
}

impl SlackClient {
    /// Calls a Web API method in bot mode.
    async fn web(&self, method: &str, body: &Value) -> Result<Value, SinkError> {
        if !self.can_update() {
            return Err(bot_only(method));
        }
        self.call_api(method, body, None).await
    }

    /// Calls a read method in bot mode (query parameters: `users.info` and
    /// `users.lookupByEmail` read no JSON body).
    async fn read(&self, method: &str, query: &[(&str, String)]) -> Result<Value, SinkError> {
        if !self.can_update() {
            return Err(bot_only(method));
        }
        self.call_api_get(method, query, None).await
    }

    /// `users.info` for `user_id`.
    pub async fn user_info(&self, user_id: &str) -> Result<SlackUser, SinkError> {
        let reply = self
            .read("users.info", &[("user", user_id.to_string())])
            .await?;
        let user = &reply["user"];
        let text = |pointer: &str| {
            user.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(SlackUser {
            id: user_id.to_string(),
            name: text("/profile/display_name")
                .or_else(|| text("/profile/real_name"))
                .or_else(|| text("/real_name"))
                .or_else(|| text("/name")),
            email: text("/profile/email"),
        })
    }

    /// `users.lookupByEmail`: the Slack user id with `email`, `None` when
    /// Slack knows no such user (`users_not_found`).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<String>, SinkError> {
        match self
            .read("users.lookupByEmail", &[("email", email.to_string())])
            .await
        {
            Ok(reply) => Ok(reply
                .pointer("/user/id")
                .and_then(Value::as_str)
                .map(str::to_string)),
            Err(SinkError::Permanent { reason }) if reason.starts_with("users_not_found") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `body` (`{"text", "blocks"}`) to `user_id` as a direct message:
    /// `conversations.open`, then `chat.postMessage` to the returned channel.
    pub async fn direct_message(&self, user_id: &str, mut body: Value) -> Result<(), SinkError> {
        let opened = self
            .web("conversations.open", &json!({ "users": user_id }))
            .await?;
        let channel = opened
            .pointer("/channel/id")
            .and_then(Value::as_str)
            .ok_or_else(|| SinkError::Permanent {
                reason: "unexpected_response: conversations.open returned no channel".into(),
            })?
            .to_string();
        body["channel"] = json!(channel);
        body["unfurl_links"] = json!(false);
        self.web("chat.postMessage", &body).await.map(drop)
    }

    /// `chat.postEphemeral`: `text` shown to `user_id` only, in `channel`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user_id: &str,
        text: &str,
    ) -> Result<(), SinkError> {
        let body = json!({ "channel": channel, "user": user_id, "text": text });
        self.web("chat.postEphemeral", &body).await.map(drop)
    }

    /// `views.open` with `trigger_id`; returns the view's id.
    pub async fn open_view(&self, trigger_id: &str, view: Value) -> Result<String, SinkError> {
        let reply = self
            .web(
                "views.open",
                &json!({ "trigger_id": trigger_id, "view": view }),
            )
            .await?;
        Ok(reply
            .pointer("/view/id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// `views.update` of an open view (e.g. to say the work is done).
    pub async fn update_view(&self, view_id: &str, view: Value) -> Result<(), SinkError> {
        self.web("views.update", &json!({ "view_id": view_id, "view": view }))
            .await
            .map(drop)
    }
}
