//! HubSpot (Service Hub feedback surveys), delivered by generic webhook
//! subscriptions on FEEDBACK_SUBMISSION (`object.creation`,
//! `object.propertyChange`); docs/helpdesks/hubspot.md has the set-up.
//!
//! Events carry only ids, so every rating is fetched from the CRM API with
//! the private app's token. Deliveries are signed with HubSpot's v3 scheme
//! over the full URL it called, rebuilt from `public_url`.
//!
//! - `signature.rs`: the v3 signature and its five-minute window.
//! - `payload.rs`: the event array and the feedback submission object.
//! - `client.rs`: the API (fetching a submission), the source's `HelpdeskApi`.
//! - `poller.rs`: the search by last-modified date (with `poll_interval`).

pub mod actions;
pub mod client;
pub mod payload;
pub mod poller;
pub mod signature;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;

use super::settings::TokenApiSettings;
use super::{
    HelpdeskApi, ParseError, Parsed, SignatureError, SourceTable, Webhook, WebhookRequest,
    parse_json,
};
use crate::settings::ConfigProblem;
use client::HubspotClient;

/// A HubSpot source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubspotSettings {
    /// The public base URL HubSpot calls, scheme and host (and a path
    /// prefix if a proxy adds one), e.g. `https://csat.example.com`.
    /// HubSpot signs the full URL it called; behind a proxy we only see the
    /// path, so the URL is rebuilt from this. Required.
    pub public_url: Option<String>,
    /// `[sources.api]`, required: HubSpot webhooks carry only ids.
    pub api: Option<TokenApiSettings>,
}

/// Builds a HubSpot source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    HubspotSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured HubSpot source.
#[derive(Debug)]
pub struct HubspotSource {
    secret: SecretString,
    public_url: String,
    window_ms: i64,
    client: HubspotClient,
}

impl HubspotSource {
    /// Builds the source from its table, reporting every problem with its key.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<HubspotSettings>();
        let secret = t
            .require_secret(
                "your HubSpot app's client secret (the app's Auth page), which signs every webhook",
            )
            .map_err(|p| problems.push(p))
            .ok();
        problems.extend(t.check_replay_window());
        problems.extend(t.check_ticket_url());
        let public_url = match own
            .public_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/'))
        {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.to_string())
            }
            _ => {
                problems.push(ConfigProblem::new(
                    t.key_of("public_url"),
                    "is required: the scheme and host HubSpot calls, e.g. https://csat.example.com (HubSpot signs the full URL, and behind a proxy we only see the path)",
                ));
                None
            }
        };
        let client = match own.api {
            None => {
                problems.push(ConfigProblem::new(
                    t.key_of("api"),
                    "is required: HubSpot webhooks carry only ids, so every rating is fetched; add [sources.api] with base_url = \"https://api.hubapi.com\" and token (a private app token with crm.objects.feedback_submissions.read)",
                ));
                None
            }
            Some(api) => t
                .token_api(
                    api,
                    "https://api.hubapi.com",
                    "the private app's access token (pat-…) with the crm.objects.feedback_submissions.read scope",
                    &mut problems,
                )
                .map(|api| HubspotClient {
                    base_url: api.base_url,
                    token: api.token,
                    timeout: api.timeout,
                    ticket_url: t.shared.ticket_url.clone(),
                }),
        };
        match (secret, public_url, client) {
            (Some(secret), Some(public_url), Some(client)) if problems.is_empty() => {
                Ok(HubspotSource {
                    secret,
                    public_url,
                    window_ms: t.replay_window_ms(),
                    client,
                })
            }
            _ => Err(problems),
        }
    }
}

impl Webhook for HubspotSource {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, &self.public_url, request, self.window_ms)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        payload::read_events(&parse_json(request.body)?)
    }

    /// HubSpot sources always have API credentials (webhooks need them).
    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        Some(actions::from_client(&self.client))
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        Some(&self.client)
    }
}
