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
use crate::sources::actions::{
    ActionClient, Agent, Auth, TicketAction, TicketActions, id_text, same_email, segment,
};
use crate::sources::{BoxFuture, FetchError};

#[derive(Debug)]
pub struct ZendeskActions {
    client: ActionClient,
}

/// With the source's API client: an API token with `api.email` (basic
/// `{email}/token:{token}`), or an OAuth access token alone (bearer).
pub fn from_client(c: &ZendeskClient) -> Arc<dyn TicketActions> {
    let token = c.token.clone();
    let auth = match &c.email {
        Some(email) => Auth::Basic(format!("{}/token", email.trim()), token),
        None => Auth::Bearer(token),
    };
    Arc::new(ZendeskActions {
        client: ActionClient::new(&c.base_url, auth, c.timeout),
    })
}

impl ZendeskActions {
    async fn update(
        &self,
        http: &reqwest::Client,
        ticket: &str,
        ticket_body: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        let path = format!("/api/v2/tickets/{}.json", segment(ticket));
        self.client
            .write(
                http,
                Method::PUT,
                &path,
                &json!({ "ticket": ticket_body }),
                what,
            )
            .await
            .map(drop)
    }
}

impl TicketActions for ZendeskActions {
    fn kind(&self) -> &'static str {
        "zendesk"
    }

    fn supports(&self, _: TicketAction) -> bool {
        true
    }

    fn add_note<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        body: &'a str,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            let mut comment = json!({ "body": body, "public": false });
            if let Some(agent) = agent.and_then(|a| a.parse::<i64>().ok()) {
                comment["author_id"] = json!(agent);
            }
            self.update(
                http,
                ticket,
                json!({ "comment": comment }),
                "adding a note to a Zendesk ticket",
            )
            .await
        })
    }

    fn reopen<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(self.update(
            http,
            ticket,
            json!({ "status": "open" }),
            "reopening a Zendesk ticket",
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
            self.update(
                http,
                ticket,
                json!({ "assignee_id": id }),
                "assigning a Zendesk ticket",
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
            let found = self
                .client
                .get(
                    http,
                    "/api/v2/users/search.json",
                    &[("query", email)],
                    "searching Zendesk users by email",
                )
                .await?;
            Ok(found["users"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|u| {
                    let role = u["role"].as_str().unwrap_or("");
                    let matches = u["email"].as_str().is_some_and(|e| same_email(e, email));
                    if !matches || !matches!(role, "agent" | "admin") {
                        return None;
                    }
                    Some(Agent {
                        id: id_text(&u["id"])?,
                        name: u["name"].as_str().map(str::to_string),
                        email: email.to_string(),
                    })
                }))
        })
    }
}
