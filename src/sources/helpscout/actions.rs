//! Help Scout actions (Mailbox API 2.0, OAuth2 client credentials through
//! the poller's [`HelpScoutClient`]): a note is `POST
//! /v2/conversations/{id}/notes` (`user` sets the author), a reopen a JSON
//! Patch of `/status` to `active`, an assignment a JSON Patch of
//! `/assignTo`; users are found with `GET /v2/users?email=` (exact match).
//! Ratings carry names, so no name lookups.

use std::sync::Arc;

use reqwest::Method;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::client::HelpScoutClient;
use crate::clock::{Clock as _, SystemClock};
use crate::sources::actions::{
    Agent, TicketAction, TicketActions, agent_in_list, segment, send, text_at,
};
use crate::sources::json::full_name;
use crate::sources::{BoxFuture, FetchError};

#[derive(Debug)]
pub struct HelpScoutActions {
    client: HelpScoutClient,
}

/// With the source's API client's OAuth2 app (a client of its own, with
/// its own token).
pub fn from_client(c: &HelpScoutClient) -> Arc<dyn TicketActions> {
    let client = HelpScoutClient::new(
        c.base_url.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.timeout,
        c.ticket_url.clone(),
    );
    Arc::new(HelpScoutActions { client })
}

impl HelpScoutActions {
    async fn call(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, FetchError> {
        // Tokens expire in real time, whatever clock the app runs on.
        let token = self.client.token(http, SystemClock.now_ms()).await?;
        let mut request = http
            .request(method, format!("{}{path}", self.client.base_url))
            .query(query)
            .bearer_auth(token.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request, self.client.timeout, what).await
    }

    async fn patch(
        &self,
        http: &reqwest::Client,
        ticket: &str,
        path: &str,
        value: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        let body = json!({ "op": "replace", "path": path, "value": value });
        self.call(
            http,
            Method::PATCH,
            &format!("/v2/conversations/{}", segment(ticket)),
            &[],
            Some(&body),
            what,
        )
        .await
        .map(drop)
    }
}

impl TicketActions for HelpScoutActions {
    fn kind(&self) -> &'static str {
        "helpscout"
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
            let mut note = json!({ "text": body });
            if let Some(user) = agent.and_then(|a| a.parse::<i64>().ok()) {
                note["user"] = json!(user);
            }
            let path = format!("/v2/conversations/{}/notes", segment(ticket));
            self.call(
                http,
                Method::POST,
                &path,
                &[],
                Some(&note),
                "adding a note to a Help Scout conversation",
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
        Box::pin(self.patch(
            http,
            ticket,
            "/status",
            json!("active"),
            "reopening a Help Scout conversation",
        ))
    }

    fn assign<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: &'a str,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            let user: Value = agent
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(agent));
            self.patch(
                http,
                ticket,
                "/assignTo",
                user,
                "assigning a Help Scout conversation",
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
                .call(
                    http,
                    Method::GET,
                    "/v2/users",
                    &[("email", email)],
                    None,
                    "searching Help Scout users by email",
                )
                .await?;
            Ok(agent_in_list(&found, "/_embedded/users", email, |u| {
                let name = full_name(text_at(u, "/firstName"), text_at(u, "/lastName"));
                Some((u["email"].as_str()?, name))
            }))
        })
    }
}
