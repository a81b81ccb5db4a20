//! DevRev actions (public API, bearer token): a note is `POST
//! /timeline-entries.create` with `visibility: internal` (DevRev's default
//! is external, so it is always sent; the author is the token's identity,
//! so the body names the Slack user), a reopen `POST /works.update` to the
//! stage `queued`, an assignment the same call with `owned_by.set`; users
//! are found with `GET /dev-users.list?email=`. Which stage an org's ticket
//! diagram allows from `resolved` is unconfirmed; DevRev's refusal is shown.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::DevRevClient;
use crate::sources::FetchError;
use crate::sources::actions::{
    ActionClient, Auth, Call, RestActions, RestCalls, TicketActions, UserSearch, text_at,
};

/// The open stage a reopened ticket moves to in DevRev's default diagram.
const REOPEN_STAGE: &str = "queued";

#[derive(Debug)]
pub struct DevRevCalls;

/// With the source's API client: a personal access token or a service account's.
pub fn from_client(c: &DevRevClient) -> Arc<dyn TicketActions> {
    let auth = Auth::Bearer(c.token.clone());
    RestActions::shared(ActionClient::new(&c.base_url, auth, c.timeout), DevRevCalls)
}

impl RestCalls for DevRevCalls {
    fn kind(&self) -> &'static str {
        "devrev"
    }

    fn note(&self, ticket: &str, body: &str, _: Option<&str>) -> Result<Call, FetchError> {
        let note = json!({ "type": "timeline_comment", "object": ticket, "body": body, "visibility": "internal" });
        let what = "adding a note to a DevRev ticket";
        Ok(Call::new(Method::POST, "/timeline-entries.create".into(), note, what))
    }

    fn reopen(&self, ticket: &str, _: Option<&str>) -> Result<Call, FetchError> {
        let body = json!({ "id": ticket, "type": "ticket", "stage": { "name": REOPEN_STAGE } });
        let what = "reopening a DevRev ticket";
        Ok(Call::new(Method::POST, "/works.update".into(), body, what))
    }

    fn assign(&self, ticket: &str, agent: &str) -> Call {
        let body = json!({ "id": ticket, "type": "ticket", "owned_by": { "set": [agent] } });
        let what = "assigning a DevRev ticket";
        Call::new(Method::POST, "/works.update".into(), body, what)
    }

    fn user_search(&self, email: &str) -> UserSearch {
        UserSearch {
            path: "/dev-users.list".into(),
            query: vec![("email", email.to_string())],
            what: "searching DevRev users by email",
            items: "/dev_users",
        }
    }

    fn read_user<'v>(&self, user: &'v Value) -> Option<(&'v str, Option<String>)> {
        let name = text_at(user, "/full_name").or_else(|| text_at(user, "/display_name"));
        Some((user["email"].as_str()?, name))
    }
}
