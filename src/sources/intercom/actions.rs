//! Intercom actions (REST API, `Intercom-Version` as the poller sends it):
//! a note is `POST /conversations/{id}/reply` with `message_type: note`, a
//! reopen `POST /conversations/{id}/parts` with `message_type: open`, an
//! assignment the same endpoint with `message_type: assignment`. Every one
//! needs the acting admin's id (`admin_id`), so the clicking person must be
//! an Intercom admin with the same email. There is no admin search: agents
//! are found in `GET /admins`. Ratings name admins and teams by id only, so
//! names come from `GET /admins/{id}` and `GET /teams/{id}` (cached).

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::IntercomClient;
use super::poller::API_VERSION;
use crate::sources::FetchError;
use crate::sources::actions::{
    ActionClient, Auth, Call, Lookup, RestActions, RestCalls, TicketActions, UserSearch, segment,
    text_at,
};

#[derive(Debug)]
pub struct IntercomCalls;

/// With the source's API client: its access token ("Write conversations",
/// "Read admins").
pub fn from_client(c: &IntercomClient) -> Arc<dyn TicketActions> {
    let mut client = ActionClient::new(&c.base_url, Auth::Bearer(c.token.clone()), c.timeout);
    client.headers.push(("Intercom-Version", API_VERSION));
    RestActions::shared(client, IntercomCalls)
}

fn need_admin(agent: Option<&str>) -> Result<&str, FetchError> {
    agent.ok_or_else(|| {
        FetchError::permanent("Intercom needs the acting admin: no Intercom admin has your email")
    })
}

/// `POST /conversations/{id}/{tail}`.
fn post(ticket: &str, tail: &str, body: Value, what: &'static str) -> Call {
    let path = format!("/conversations/{}/{tail}", segment(ticket));
    Call::new(Method::POST, path, body, what)
}

/// An admin's record: `GET /admins/{id}`.
fn admin(id: &str, pointer: &'static str) -> Lookup {
    Lookup {
        path: format!("/admins/{}", segment(id)),
        pointer,
        what: "reading an Intercom admin",
    }
}

impl RestCalls for IntercomCalls {
    fn kind(&self) -> &'static str {
        "intercom"
    }

    fn note_needs_agent(&self) -> bool {
        true
    }

    fn reopen_needs_agent(&self) -> bool {
        true
    }

    fn note(&self, ticket: &str, body: &str, agent: Option<&str>) -> Result<Call, FetchError> {
        let admin = need_admin(agent)?;
        let note =
            json!({ "message_type": "note", "type": "admin", "admin_id": admin, "body": body });
        let what = "adding a note to an Intercom conversation";
        Ok(post(ticket, "reply", note, what))
    }

    fn reopen(&self, ticket: &str, agent: Option<&str>) -> Result<Call, FetchError> {
        let admin = need_admin(agent)?;
        let body = json!({ "message_type": "open", "admin_id": admin });
        Ok(post(ticket, "parts", body, "reopening an Intercom conversation"))
    }

    fn assign(&self, ticket: &str, agent: &str) -> Call {
        let body = json!({ "message_type": "assignment", "type": "admin", "admin_id": agent, "assignee_id": agent });
        post(ticket, "parts", body, "assigning an Intercom conversation")
    }

    fn user_search(&self, _email: &str) -> UserSearch {
        // There is no admin search: the list is read.
        UserSearch {
            path: "/admins".into(),
            query: Vec::new(),
            what: "listing Intercom admins",
            items: "/admins",
        }
    }

    fn read_user<'v>(&self, user: &'v Value) -> Option<(&'v str, Option<String>)> {
        Some((user["email"].as_str()?, text_at(user, "/name")))
    }

    fn agent_name(&self, id: &str) -> Option<Lookup> {
        Some(admin(id, "/name"))
    }

    fn agent_email(&self, id: &str) -> Option<Lookup> {
        Some(admin(id, "/email"))
    }

    fn team_name(&self, id: &str) -> Option<Lookup> {
        Some(Lookup {
            path: format!("/teams/{}", segment(id)),
            pointer: "/name",
            what: "reading an Intercom team",
        })
    }
}
