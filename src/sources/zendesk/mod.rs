//! Zendesk legacy CSAT, delivered by a ticket trigger that notifies a
//! webhook with our JSON body (docs/helpdesks/zendesk.md has the set-up).
//!
//! - `signature.rs`: Zendesk's signature headers and replay window.
//! - `payload.rs`: the trigger body and its reading into a rating.
//! - `client.rs`: the API (with `[sources.api]`): where and how to call it.
//! - `poller.rs`: reading pages of ratings through the client.
//!
//! The newer "CSAT survey responses" product is the `zendesk_csat` kind.

pub mod actions;
pub mod client;
pub mod payload;
pub mod poller;
pub mod signature;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::http_api::base_url;
use super::settings::api_timeout;
use super::{
    HelpdeskApi, ParseError, Parsed, SignatureError, SourceTable, Webhook, WebhookRequest,
    parse_json,
};
use crate::settings::{ConfigProblem, optional_duration};
use client::ZendeskClient;
use payload::TriggerPayload;

/// A Zendesk source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZendeskSettings {
    /// `[sources.api]`: reading ratings from Zendesk's API (polling).
    pub api: Option<ZendeskApiSettings>,
}

/// `[sources.api]` of a Zendesk source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZendeskApiSettings {
    /// `https://{subdomain}.zendesk.com`.
    pub base_url: String,
    /// An API token (Admin Center → Apps and integrations → Zendesk API),
    /// with `email`; or an OAuth access token alone.
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// Read the token from this file instead.
    pub token_file: Option<PathBuf>,
    /// The address of the agent the API token belongs to.
    pub email: Option<String>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub request_timeout: Option<Duration>,
}

/// Builds a Zendesk source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    ZendeskSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured Zendesk source.
pub struct ZendeskSource {
    secret: SecretString,
    replay_window_ms: i64,
    ticket_url: Option<String>,
    client: Option<ZendeskClient>,
}

impl ZendeskSource {
    /// Builds the source from its table (whose secret the registry has
    /// already read from `secret_file` if given). Reports every problem
    /// with its key.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<ZendeskSettings>();
        // The secret is the only proof a delivery came from Zendesk.
        let secret = t
            .require_secret("in Zendesk Admin Center → Apps and integrations → Webhooks, open your webhook and click \"Reveal secret\"")
            .map_err(|p| problems.push(p))
            .ok();
        problems.extend(t.check_replay_window());
        problems.extend(t.check_ticket_url());
        let client = own.api.and_then(|api| client(t, api, &mut problems));
        match secret {
            Some(secret) if problems.is_empty() => Ok(ZendeskSource {
                secret,
                replay_window_ms: t.replay_window_ms(),
                ticket_url: t.shared.ticket_url.clone(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

/// Reads `[sources.api]`.
fn client(
    t: &SourceTable,
    api: ZendeskApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<ZendeskClient> {
    let token = t.secret("api.token", api.token, api.token_file.as_deref(), problems);
    let had_token = token.is_some() || api.token_file.is_some();
    if !had_token {
        problems.push(ConfigProblem::new(
            t.key_of("api.token"),
            "is required to poll: a Zendesk API token (Admin Center → Apps and integrations → Zendesk API) with api.email set to the agent's address, or an OAuth access token alone; or set token_file",
        ));
    }
    let base_url = base_url(&t.key, &api.base_url, "https://acme.zendesk.com")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(ZendeskClient {
        base_url,
        email: api.email,
        token: token?,
        timeout: api_timeout(api.request_timeout),
        ticket_url: t.shared.ticket_url.clone(),
    })
}

impl Webhook for ZendeskSource {
    fn kind(&self) -> &'static str {
        "zendesk"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request, self.replay_window_ms)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        let body = parse_json(request.body)?;
        TriggerPayload::try_from(&body)?.into_parsed(self.ticket_url.as_deref())
    }

    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        self.client.as_ref().map(actions::from_client)
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
