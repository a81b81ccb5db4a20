//! Chatwoot actions (Application API under `/api/v1/accounts/{account_id}`,
//! `api_access_token` header): a note is a message with `private: true`
//! (the author is the token's user, so the body names the Slack user), a
//! reopen `POST …/toggle_status` with `status: open`, an assignment `POST
//! …/assignments` with `assignee_id`; agents are found in `GET …/agents`.
//! Whether the conversation id in paths is the per-account `display_id`
//! (what webhooks carry) is unconfirmed; csatwatch sends the id it has.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::ChatwootClient;
use crate::sources::actions::{
    ActionClient, Agent, Auth, TicketAction, TicketActions, id_text, same_email, segment,
};
use crate::sources::{BoxFuture, FetchError};

#[derive(Debug)]
pub struct ChatwootActions {
    client: ActionClient,
    account: String,
}

/// With the source's API client: a user's access token and the account id.
pub fn from_client(c: &ChatwootClient) -> Arc<dyn TicketActions> {
    let auth = Auth::Header("api_access_token", c.token.clone());
    Arc::new(ChatwootActions {
        client: ActionClient::new(&c.base_url, auth, c.timeout),
        account: c.account_id.trim().to_string(),
    })
}

impl ChatwootActions {
    async fn post(
        &self,
        http: &reqwest::Client,
        ticket: &str,
        tail: &str,
        body: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        let path = format!(
            "/api/v1/accounts/{}/conversations/{}/{tail}",
            segment(&self.account),
            segment(ticket)
        );
        self.client
            .write(http, Method::POST, &path, &body, what)
            .await
            .map(drop)
    }
}

impl TicketActions for ChatwootActions {
    fn kind(&self) -> &'static str {
        "chatwoot"
    }

    fn supports(&self, _: TicketAction) -> bool {
        true
    }

    fn add_note<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        body: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(self.post(
            http,
            ticket,
            "messages",
            json!({ "content": body, "private": true, "message_type": "outgoing" }),
            "adding a note to a Chatwoot conversation",
        ))
    }

    fn reopen<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(self.post(
            http,
            ticket,
            "toggle_status",
            json!({ "status": "open" }),
            "reopening a Chatwoot conversation",
        ))
    }

    fn assign<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: &'a str,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            let id: Value = agent
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(agent));
            self.post(
                http,
                ticket,
                "assignments",
                json!({ "assignee_id": id }),
                "assigning a Chatwoot conversation",
            )
            .await
        })
    }

    fn find_agent<'a>(
        &'a self,
        http: &'a reqwest::Client,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Option<Agent>, FetchError>> {
        Box::pin(async move {
            let path = format!("/api/v1/accounts/{}/agents", segment(&self.account));
            let found = self
                .client
                .get(http, &path, &[], "listing Chatwoot agents")
                .await?;
            Ok(found.as_array().into_iter().flatten().find_map(|a| {
                if !a["email"].as_str().is_some_and(|e| same_email(e, email)) {
                    return None;
                }
                Some(Agent {
                    id: id_text(&a["id"])?,
                    name: a["name"].as_str().map(str::to_string),
                    email: email.to_string(),
                })
            }))
        })
    }
}
