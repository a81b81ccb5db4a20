//! Gorgias actions (REST API, basic auth `email:api_key`): a note is `POST
//! /api/tickets/{id}/messages` on channel `internal-note` sent by the agent
//! (`sender`), a reopen `PUT /api/tickets/{id}` with `status: open`, an
//! assignment the same PUT with `assignee_user`; agents are found by
//! listing `GET /api/users`. The note's exact field set and the user list's
//! shape are unconfirmed from Gorgias's own reference (third-party
//! connectors only); docs/closing-the-loop.md marks them.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::GorgiasClient;
use crate::sources::FetchError;
use crate::sources::actions::{
    ActionClient, Auth, Call, RestActions, RestCalls, TicketActions, UserSearch, numeric_id,
    segment, text_at,
};

#[derive(Debug)]
pub struct GorgiasCalls;

/// With the source's API client: the REST API key and its user's email.
pub fn from_client(c: &GorgiasClient) -> Arc<dyn TicketActions> {
    let auth = Auth::Basic(c.email.trim().to_string(), c.api_key.clone());
    RestActions::shared(ActionClient::new(&c.base_url, auth, c.timeout), GorgiasCalls)
}

/// A change to the ticket: `PUT /api/tickets/{id}`.
fn update(ticket: &str, change: Value, what: &'static str) -> Call {
    let path = format!("/api/tickets/{}", segment(ticket));
    Call::new(Method::PUT, path, change, what)
}

impl RestCalls for GorgiasCalls {
    fn kind(&self) -> &'static str {
        "gorgias"
    }

    fn note_needs_agent(&self) -> bool {
        true
    }

    fn note(&self, ticket: &str, body: &str, agent: Option<&str>) -> Result<Call, FetchError> {
        let agent = agent.ok_or_else(|| {
            FetchError::permanent("Gorgias needs the sending agent: no Gorgias user has your email")
        })?;
        let note = json!({
            "channel": "internal-note",
            "via": "api",
            "from_agent": true,
            "sender": { "id": numeric_id(agent) },
            "body_text": body,
        });
        let path = format!("/api/tickets/{}/messages", segment(ticket));
        let what = "adding a note to a Gorgias ticket";
        Ok(Call::new(Method::POST, path, note, what))
    }

    fn reopen(&self, ticket: &str, _: Option<&str>) -> Result<Call, FetchError> {
        let what = "reopening a Gorgias ticket";
        Ok(update(ticket, json!({ "status": "open" }), what))
    }

    fn assign(&self, ticket: &str, agent: &str) -> Call {
        let change = json!({ "assignee_user": { "id": numeric_id(agent) } });
        update(ticket, change, "assigning a Gorgias ticket")
    }

    fn user_search(&self, _email: &str) -> UserSearch {
        UserSearch {
            path: "/api/users".into(),
            query: vec![("limit", "100".to_string())],
            what: "listing Gorgias users",
            items: "/data",
        }
    }

    fn read_user<'v>(&self, user: &'v Value) -> Option<(&'v str, Option<String>)> {
        Some((user["email"].as_str()?, text_at(user, "/name")))
    }
}
