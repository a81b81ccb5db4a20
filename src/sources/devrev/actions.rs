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
use crate::sources::actions::{
    ActionClient, Agent, Auth, TicketAction, TicketActions, id_text, same_email,
};
use crate::sources::{BoxFuture, FetchError};

/// The open stage a reopened ticket moves to in DevRev's default diagram.
const REOPEN_STAGE: &str = "queued";

#[derive(Debug)]
pub struct DevRevActions {
    client: ActionClient,
}

/// With the source's API client: a personal access token or a service account's.
pub fn from_client(c: &DevRevClient) -> Arc<dyn TicketActions> {
    Arc::new(DevRevActions {
        client: ActionClient::new(&c.base_url, Auth::Bearer(c.token.clone()), c.timeout),
    })
}

impl DevRevActions {
    async fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        self.client
            .write(http, Method::POST, path, &body, what)
            .await
            .map(drop)
    }
}

impl TicketActions for DevRevActions {
    fn kind(&self) -> &'static str {
        "devrev"
    }

    fn supports(&self, _: TicketAction) -> bool {
        true
    }

    fn add_note<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        body: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        let note = json!({ "type": "timeline_comment", "object": ticket, "body": body, "visibility": "internal" });
        Box::pin(self.post(
            http,
            "/timeline-entries.create",
            note,
            "adding a note to a DevRev ticket",
        ))
    }

    fn reopen<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        let body = json!({ "id": ticket, "type": "ticket", "stage": { "name": REOPEN_STAGE } });
        Box::pin(self.post(http, "/works.update", body, "reopening a DevRev ticket"))
    }

    fn assign<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: &'a str,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        let body = json!({ "id": ticket, "type": "ticket", "owned_by": { "set": [agent] } });
        Box::pin(self.post(http, "/works.update", body, "assigning a DevRev ticket"))
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
                    "/dev-users.list",
                    &[("email", email)],
                    "searching DevRev users by email",
                )
                .await?;
            Ok(found["dev_users"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|u| {
                    if !u["email"].as_str().is_some_and(|e| same_email(e, email)) {
                        return None;
                    }
                    Some(Agent {
                        id: id_text(&u["id"])?,
                        name: u["full_name"]
                            .as_str()
                            .or(u["display_name"].as_str())
                            .map(str::to_string),
                        email: email.to_string(),
                    })
                }))
        })
    }
}
