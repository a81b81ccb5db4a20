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

use super::poller::API_VERSION;
use super::client::IntercomClient;
use crate::sources::actions::{
    ActionClient, Agent, Auth, TicketAction, TicketActions, id_text, same_email, segment,
};
use crate::sources::{BoxFuture, FetchError};

#[derive(Debug)]
pub struct IntercomActions {
    client: ActionClient,
}

/// With the source's API client: its access token ("Write conversations",
/// "Read admins").
pub fn from_client(c: &IntercomClient) -> Arc<dyn TicketActions> {
    let mut client = ActionClient::new(&c.base_url, Auth::Bearer(c.token.clone()), c.timeout);
    client.headers.push(("Intercom-Version", API_VERSION));
    Arc::new(IntercomActions { client })
}

fn need_admin(agent: Option<&str>) -> Result<&str, FetchError> {
    agent.ok_or_else(|| {
        FetchError::permanent("Intercom needs the acting admin: no Intercom admin has your email")
    })
}

impl IntercomActions {
    async fn post(
        &self,
        http: &reqwest::Client,
        path: String,
        body: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        self.client
            .write(http, Method::POST, &path, &body, what)
            .await
            .map(drop)
    }

    async fn name(
        &self,
        http: &reqwest::Client,
        path: String,
        what: &str,
    ) -> Result<Option<String>, FetchError> {
        match self.client.get(http, &path, &[], what).await {
            Ok(found) => Ok(found["name"].as_str().map(str::to_string)),
            // Deleted admins and teams: no name, and no point asking again soon.
            Err(e) if e.message.contains("HTTP 404") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl TicketActions for IntercomActions {
    fn kind(&self) -> &'static str {
        "intercom"
    }

    fn supports(&self, _: TicketAction) -> bool {
        true
    }

    fn note_needs_agent(&self) -> bool {
        true
    }

    fn reopen_needs_agent(&self) -> bool {
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
            let admin = need_admin(agent)?;
            let body =
                json!({ "message_type": "note", "type": "admin", "admin_id": admin, "body": body });
            self.post(
                http,
                format!("/conversations/{}/reply", segment(ticket)),
                body,
                "adding a note to an Intercom conversation",
            )
            .await
        })
    }

    fn reopen<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            let admin = need_admin(agent)?;
            let body = json!({ "message_type": "open", "admin_id": admin });
            self.post(
                http,
                format!("/conversations/{}/parts", segment(ticket)),
                body,
                "reopening an Intercom conversation",
            )
            .await
        })
    }

    fn assign<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: &'a str,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            let body = json!({ "message_type": "assignment", "type": "admin", "admin_id": agent, "assignee_id": agent });
            self.post(
                http,
                format!("/conversations/{}/parts", segment(ticket)),
                body,
                "assigning an Intercom conversation",
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
                .get(http, "/admins", &[], "listing Intercom admins")
                .await?;
            Ok(found["admins"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|a| {
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

    fn agent_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.name(
            http,
            format!("/admins/{}", segment(id)),
            "reading an Intercom admin",
        ))
    }

    fn agent_email<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(async move {
            let found = self
                .client
                .get(
                    http,
                    &format!("/admins/{}", segment(id)),
                    &[],
                    "reading an Intercom admin",
                )
                .await?;
            Ok(found["email"].as_str().map(str::to_string))
        })
    }

    fn team_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.name(
            http,
            format!("/teams/{}", segment(id)),
            "reading an Intercom team",
        ))
    }
}
