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
use crate::sources::actions::{
    ActionClient, Agent, Auth, TicketAction, TicketActions, id_text, same_email, segment,
};
use crate::sources::{BoxFuture, FetchError};

/// Freshdesk's status code for Open.
const OPEN: i64 = 2;

#[derive(Debug)]
pub struct FreshdeskActions {
    client: ActionClient,
}

/// With the source's API client: the agent's API key (basic `api_key:X`).
pub fn from_client(c: &FreshdeskClient) -> Arc<dyn TicketActions> {
    let user = secrecy::ExposeSecret::expose_secret(&c.api_key).to_string();
    let auth = Auth::Basic(user, SecretString::from("X".to_string()));
    Arc::new(FreshdeskActions {
        client: ActionClient::new(&c.base_url, auth, c.timeout),
    })
}

/// A numeric id as a number (Freshdesk refuses ids sent as strings).
fn number(id: &str) -> Value {
    id.trim()
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(id))
}

impl FreshdeskActions {
    async fn update(
        &self,
        http: &reqwest::Client,
        ticket: &str,
        body: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        let path = format!("/api/v2/tickets/{}", segment(ticket));
        self.client
            .write(http, Method::PUT, &path, &body, what)
            .await
            .map(drop)
    }

    async fn name(
        &self,
        http: &reqwest::Client,
        path: String,
        pointer: &str,
        what: &str,
    ) -> Result<Option<String>, FetchError> {
        match self.client.get(http, &path, &[], what).await {
            Ok(found) => Ok(found
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)),
            Err(e) if e.message.contains("HTTP 404") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl TicketActions for FreshdeskActions {
    fn kind(&self) -> &'static str {
        "freshdesk"
    }

    fn supports(&self, _: TicketAction) -> bool {
        true
    }

    fn resolves_names(&self) -> bool {
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
            let mut note = json!({ "body": body, "private": true });
            if let Some(agent) = agent {
                note["user_id"] = number(agent);
            }
            let path = format!("/api/v2/tickets/{}/notes", segment(ticket));
            self.client
                .write(
                    http,
                    Method::POST,
                    &path,
                    &note,
                    "adding a note to a Freshdesk ticket",
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
            json!({ "status": OPEN }),
            "reopening a Freshdesk ticket",
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
            json!({ "responder_id": number(agent) }),
            "assigning a Freshdesk ticket",
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
                    "/api/v2/agents",
                    &[("email", email)],
                    "searching Freshdesk agents by email",
                )
                .await?;
            Ok(found.as_array().into_iter().flatten().find_map(|a| {
                if !a
                    .pointer("/contact/email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| same_email(e, email))
                {
                    return None;
                }
                Some(Agent {
                    id: id_text(&a["id"])?,
                    name: a
                        .pointer("/contact/name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    email: email.to_string(),
                })
            }))
        })
    }

    fn agent_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.name(
            http,
            format!("/api/v2/agents/{}", segment(id)),
            "/contact/name",
            "reading a Freshdesk agent",
        ))
    }

    fn agent_email<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.name(
            http,
            format!("/api/v2/agents/{}", segment(id)),
            "/contact/email",
            "reading a Freshdesk agent",
        ))
    }

    fn team_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.name(
            http,
            format!("/api/v2/groups/{}", segment(id)),
            "/name",
            "reading a Freshdesk group",
        ))
    }
}
