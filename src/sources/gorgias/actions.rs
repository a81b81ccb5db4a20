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
use crate::sources::actions::{
    ActionClient, Agent, Auth, TicketAction, TicketActions, id_text, same_email, segment,
};
use crate::sources::{BoxFuture, FetchError};

#[derive(Debug)]
pub struct GorgiasActions {
    client: ActionClient,
}

/// With the source's API client: the REST API key and its user's email.
pub fn from_client(c: &GorgiasClient) -> Arc<dyn TicketActions> {
    let auth = Auth::Basic(c.email.trim().to_string(), c.api_key.clone());
    Arc::new(GorgiasActions {
        client: ActionClient::new(&c.base_url, auth, c.timeout),
    })
}

fn number(id: &str) -> Value {
    id.trim()
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(id))
}

impl GorgiasActions {
    async fn update(
        &self,
        http: &reqwest::Client,
        ticket: &str,
        body: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        let path = format!("/api/tickets/{}", segment(ticket));
        self.client
            .write(http, Method::PUT, &path, &body, what)
            .await
            .map(drop)
    }
}

impl TicketActions for GorgiasActions {
    fn kind(&self) -> &'static str {
        "gorgias"
    }

    fn supports(&self, _: TicketAction) -> bool {
        true
    }

    fn note_needs_agent(&self) -> bool {
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
            let agent = agent.ok_or_else(|| {
                FetchError::permanent(
                    "Gorgias needs the sending agent: no Gorgias user has your email",
                )
            })?;
            let note = json!({
                "channel": "internal-note",
                "via": "api",
                "from_agent": true,
                "sender": { "id": number(agent) },
                "body_text": body,
            });
            let path = format!("/api/tickets/{}/messages", segment(ticket));
            self.client
                .write(
                    http,
                    Method::POST,
                    &path,
                    &note,
                    "adding a note to a Gorgias ticket",
                )
                .await
                .map(drop)
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
            "reopening a Gorgias ticket",
        ))
    }

    fn assign<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: &'a str,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(self.update(
            http,
            ticket,
            json!({ "assignee_user": { "id": number(agent) } }),
            "assigning a Gorgias ticket",
        ))
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
                    "/api/users",
                    &[("limit", "100")],
                    "listing Gorgias users",
                )
                .await?;
            Ok(found["data"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|u| {
                    if !u["email"].as_str().is_some_and(|e| same_email(e, email)) {
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
