//! Freshdesk actions (API v2, basic auth `api_key:X`): a note is `POST
//! /api/v2/tickets/{id}/notes` (`private` defaults to true; sent anyway),
//! a reopen `PUT /api/v2/tickets/{id}` with `status: 2` (Open), an
//! assignment the same PUT with `responder_id`; agents are found with `GET
//! /api/v2/agents?email=`. Ratings name agents and groups by id only, so
//! names come from `GET /api/v2/agents/{id}` (`contact.name`) and `GET
//! /api/v2/groups/{id}` (cached). Whether a Closed (5) ticket may be
//! reopened through the API is unconfirmed; Freshdesk's answer is shown.

use std::sync::Arc;

use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::client::FreshdeskClient;
use crate::sources::FetchError;
use crate::sources::actions::{
    ActionClient, Auth, Call, Lookup, RestActions, RestCalls, TicketActions, UserSearch,
    numeric_id, segment, text_at,
};

/// Freshdesk's status code for Open.
const OPEN: i64 = 2;

#[derive(Debug)]
pub struct FreshdeskCalls;

/// With the source's API client: the agent's API key (basic `api_key:X`).
pub fn from_client(c: &FreshdeskClient) -> Arc<dyn TicketActions> {
    let user = secrecy::ExposeSecret::expose_secret(&c.api_key).to_string();
    let auth = Auth::Basic(user, SecretString::from("X".to_string()));
    RestActions::shared(ActionClient::new(&c.base_url, auth, c.timeout), FreshdeskCalls)
}

/// A change to the ticket: `PUT /api/v2/tickets/{id}`.
fn update(ticket: &str, change: Value, what: &'static str) -> Call {
    let path = format!("/api/v2/tickets/{}", segment(ticket));
    Call::new(Method::PUT, path, change, what)
}

/// An agent's record: `GET /api/v2/agents/{id}`.
fn agent(id: &str, pointer: &'static str) -> Lookup {
    Lookup {
        path: format!("/api/v2/agents/{}", segment(id)),
        pointer,
        what: "reading a Freshdesk agent",
    }
}

impl RestCalls for FreshdeskCalls {
    fn kind(&self) -> &'static str {
        "freshdesk"
    }

    fn note(&self, ticket: &str, body: &str, agent: Option<&str>) -> Result<Call, FetchError> {
        let mut note = json!({ "body": body, "private": true });
        if let Some(agent) = agent {
            note["user_id"] = numeric_id(agent);
        }
        let path = format!("/api/v2/tickets/{}/notes", segment(ticket));
        let what = "adding a note to a Freshdesk ticket";
        Ok(Call::new(Method::POST, path, note, what))
    }

    fn reopen(&self, ticket: &str, _: Option<&str>) -> Result<Call, FetchError> {
        let what = "reopening a Freshdesk ticket";
        Ok(update(ticket, json!({ "status": OPEN }), what))
    }

    fn assign(&self, ticket: &str, agent: &str) -> Call {
        let change = json!({ "responder_id": numeric_id(agent) });
        update(ticket, change, "assigning a Freshdesk ticket")
    }

    fn user_search(&self, email: &str) -> UserSearch {
        UserSearch {
            path: "/api/v2/agents".into(),
            query: vec![("email", email.to_string())],
            what: "searching Freshdesk agents by email",
            items: "",
        }
    }

    fn read_user<'v>(&self, user: &'v Value) -> Option<(&'v str, Option<String>)> {
        let email = user.pointer("/contact/email")?.as_str()?;
        Some((email, text_at(user, "/contact/name")))
    }

    fn agent_name(&self, id: &str) -> Option<Lookup> {
        Some(agent(id, "/contact/name"))
    }

    fn agent_email(&self, id: &str) -> Option<Lookup> {
        Some(agent(id, "/contact/email"))
    }

    fn team_name(&self, id: &str) -> Option<Lookup> {
        Some(Lookup {
            path: format!("/api/v2/groups/{}", segment(id)),
            pointer: "/name",
            what: "reading a Freshdesk group",
        })
    }
}
