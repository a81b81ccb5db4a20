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
use crate::sources::FetchError;
use crate::sources::actions::{
    ActionClient, Auth, Call, RestActions, RestCalls, TicketActions, UserSearch, numeric_id,
    segment, text_at,
};

#[derive(Debug)]
pub struct ChatwootCalls {
    account: String,
}

/// With the source's API client: a user's access token and the account id.
pub fn from_client(c: &ChatwootClient) -> Arc<dyn TicketActions> {
    let auth = Auth::Header("api_access_token", c.token.clone());
    let calls = ChatwootCalls {
        account: c.account_id.trim().to_string(),
    };
    RestActions::shared(ActionClient::new(&c.base_url, auth, c.timeout), calls)
}

impl ChatwootCalls {
    /// `POST …/conversations/{id}/{tail}`.
    fn post(&self, ticket: &str, tail: &str, body: Value, what: &'static str) -> Call {
        let path = format!(
            "/api/v1/accounts/{}/conversations/{}/{tail}",
            segment(&self.account),
            segment(ticket)
        );
        Call::new(Method::POST, path, body, what)
    }
}

impl RestCalls for ChatwootCalls {
    fn kind(&self) -> &'static str {
        "chatwoot"
    }

    fn note(&self, ticket: &str, body: &str, _: Option<&str>) -> Result<Call, FetchError> {
        let message = json!({ "content": body, "private": true, "message_type": "outgoing" });
        let what = "adding a note to a Chatwoot conversation";
        Ok(self.post(ticket, "messages", message, what))
    }

    fn reopen(&self, ticket: &str, _: Option<&str>) -> Result<Call, FetchError> {
        let what = "reopening a Chatwoot conversation";
        Ok(self.post(ticket, "toggle_status", json!({ "status": "open" }), what))
    }

    fn assign(&self, ticket: &str, agent: &str) -> Call {
        let body = json!({ "assignee_id": numeric_id(agent) });
        self.post(ticket, "assignments", body, "assigning a Chatwoot conversation")
    }

    fn user_search(&self, _email: &str) -> UserSearch {
        UserSearch {
            path: format!("/api/v1/accounts/{}/agents", segment(&self.account)),
            query: Vec::new(),
            what: "listing Chatwoot agents",
            items: "",
        }
    }

    fn read_user<'v>(&self, user: &'v Value) -> Option<(&'v str, Option<String>)> {
        Some((user["email"].as_str()?, text_at(user, "/name")))
    }
}
