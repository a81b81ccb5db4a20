//! Zendesk actions (Support API): a note is a private comment added with
//! `PUT /api/v2/tickets/{id}` (there is no comment-create endpoint), a
//! reopen sets `status: open` (a *closed* ticket cannot be reopened; Zendesk
//! answers 422), an assignment sets `assignee_id`, and agents are found with
//! `GET /api/v2/users/search?query=<email>`, keeping agents and admins only.
//! Ratings carry names already, so no name lookups.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::ZendeskClient;
use crate::sources::FetchError;
use crate::sources::actions::{
    ActionClient, Auth, Call, RestActions, RestCalls, TicketActions, UserSearch, numeric_id,
    segment, text_at,
};

#[derive(Debug)]
pub struct ZendeskCalls;

/// With the source's API client: an API token with `api.email` (basic
/// `{email}/token:{token}`), or an OAuth access token alone (bearer).
pub fn from_client(c: &ZendeskClient) -> Arc<dyn TicketActions> {
    let token = c.token.clone();
    let auth = match &c.email {
        Some(email) => Auth::Basic(format!("{}/token", email.trim()), token),
        None => Auth::Bearer(token),
    };
    RestActions::shared(ActionClient::new(&c.base_url, auth, c.timeout), ZendeskCalls)
}

/// A change to the ticket: `PUT /api/v2/tickets/{id}.json`.
fn update(ticket: &str, change: Value, what: &'static str) -> Call {
    let path = format!("/api/v2/tickets/{}.json", segment(ticket));
    Call::new(Method::PUT, path, json!({ "ticket": change }), what)
}

impl RestCalls for ZendeskCalls {
    fn kind(&self) -> &'static str {
        "zendesk"
    }

    fn note(&self, ticket: &str, body: &str, agent: Option<&str>) -> Result<Call, FetchError> {
        let mut comment = json!({ "body": body, "public": false });
        if let Some(agent) = agent.and_then(|a| a.parse::<i64>().ok()) {
            comment["author_id"] = json!(agent);
        }
        let what = "adding a note to a Zendesk ticket";
        Ok(update(ticket, json!({ "comment": comment }), what))
    }

    fn reopen(&self, ticket: &str, _: Option<&str>) -> Result<Call, FetchError> {
        let what = "reopening a Zendesk ticket";
        Ok(update(ticket, json!({ "status": "open" }), what))
    }

    fn assign(&self, ticket: &str, agent: &str) -> Call {
        let what = "assigning a Zendesk ticket";
        update(ticket, json!({ "assignee_id": numeric_id(agent) }), what)
    }

    fn user_search(&self, email: &str) -> UserSearch {
        UserSearch {
            path: "/api/v2/users/search.json".into(),
            query: vec![("query", email.to_string())],
            what: "searching Zendesk users by email",
            items: "/users",
        }
    }

    fn read_user<'v>(&self, user: &'v Value) -> Option<(&'v str, Option<String>)> {
        // End users share the search: only agents and admins can act.
        let agent = matches!(user["role"].as_str(), Some("agent" | "admin"));
        agent.then_some((user["email"].as_str()?, text_at(user, "/name")))
    }
}
