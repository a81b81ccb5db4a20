//! HubSpot actions (CRM v3, private-app or OAuth bearer token): a note is
//! `POST /crm/v3/objects/notes` associated with the ticket (HubSpot notes
//! are always internal; `hubspot_owner_id` shows as the creator), a reopen
//! moves the ticket to the first stage of its pipeline whose
//! `metadata.ticketState` is `OPEN` (`GET /crm/v3/pipelines/tickets`, then
//! `PATCH /crm/v3/objects/tickets/{id}`), an assignment sets
//! `hubspot_owner_id`; owners are found with `GET /crm/v3/owners?email=`.
//! The note→ticket association type id 228 is unconfirmed.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::clock::{Clock as _, SystemClock};
use super::client::HubspotClient;
use crate::sources::actions::{
    ActionClient, Agent, Auth, TicketAction, TicketActions, agent_in_list, id_text, segment,
    text_at,
};
use crate::sources::json::full_name;
use crate::sources::{BoxFuture, FetchError};

/// HubSpot's default association type of a note to a ticket (unconfirmed).
const NOTE_TO_TICKET: i64 = 228;

#[derive(Debug)]
pub struct HubspotActions {
    client: ActionClient,
}

/// With the source's API client: the private app's access token (scopes
/// `tickets`, `crm.objects.owners.read`).
pub fn from_client(c: &HubspotClient) -> Arc<dyn TicketActions> {
    Arc::new(HubspotActions {
        client: ActionClient::new(&c.base_url, Auth::Bearer(c.token.clone()), c.timeout),
    })
}

impl HubspotActions {
    async fn patch(
        &self,
        http: &reqwest::Client,
        ticket: &str,
        properties: Value,
        what: &str,
    ) -> Result<(), FetchError> {
        let path = format!("/crm/v3/objects/tickets/{}", segment(ticket));
        let body = json!({ "properties": properties });
        self.client.act(http, Method::PATCH, &path, &body, what).await
    }

    /// The first open stage of the ticket's pipeline.
    async fn open_stage(&self, http: &reqwest::Client, ticket: &str) -> Result<String, FetchError> {
        let path = format!("/crm/v3/objects/tickets/{}", segment(ticket));
        let found = self
            .client
            .get(
                http,
                &path,
                &[("properties", "hs_pipeline")],
                "reading a HubSpot ticket",
            )
            .await?;
        let pipeline = found
            .pointer("/properties/hs_pipeline")
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_string();
        let pipelines = self
            .client
            .get(
                http,
                "/crm/v3/pipelines/tickets",
                &[],
                "reading HubSpot ticket pipelines",
            )
            .await?;
        let stages = pipelines["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["id"].as_str() == Some(pipeline.as_str()))
            .and_then(|p| p["stages"].as_array().cloned())
            .unwrap_or_default();
        let mut open: Vec<&Value> = stages
            .iter()
            .filter(|s| s.pointer("/metadata/ticketState").and_then(Value::as_str) == Some("OPEN"))
            .collect();
        open.sort_by_key(|s| s["displayOrder"].as_i64().unwrap_or(i64::MAX));
        open.first().and_then(|s| id_text(&s["id"])).ok_or_else(|| {
            FetchError::permanent(format!(
                "HubSpot pipeline {pipeline} has no open stage to reopen the ticket into"
            ))
        })
    }
}

impl TicketActions for HubspotActions {
    fn kind(&self) -> &'static str {
        "hubspot"
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
            let mut properties = json!({
                "hs_timestamp": SystemClock.now_ms().to_string(),
                "hs_note_body": body,
            });
            if let Some(owner) = agent {
                properties["hubspot_owner_id"] = json!(owner);
            }
            let note = json!({
                "properties": properties,
                "associations": [{
                    "to": { "id": ticket },
                    "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_TICKET }],
                }],
            });
            self.client
                .write(
                    http,
                    Method::POST,
                    "/crm/v3/objects/notes",
                    &note,
                    "adding a note to a HubSpot ticket",
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
        Box::pin(async move {
            let stage = self.open_stage(http, ticket).await?;
            self.patch(
                http,
                ticket,
                json!({ "hs_pipeline_stage": stage }),
                "reopening a HubSpot ticket",
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
        Box::pin(self.patch(
            http,
            ticket,
            json!({ "hubspot_owner_id": agent }),
            "assigning a HubSpot ticket",
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
                    "/crm/v3/owners",
                    &[("email", email)],
                    "searching HubSpot owners by email",
                )
                .await?;
            Ok(agent_in_list(&found, "/results", email, |o| {
                let name = full_name(text_at(o, "/firstName"), text_at(o, "/lastName"));
                Some((o["email"].as_str()?, name))
            }))
        })
    }
}
