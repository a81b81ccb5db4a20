//! Intercom: the app's webhook topics `conversation.rating.added` and
//! `ticket.rating.provided` (docs/helpdesks/intercom.md has the set-up).
//!
//! - `signature.rs`: `X-Hub-Signature: sha1=<hex>` over the raw body.
//! - `payload.rs`: the notification envelope and its reading into a rating.
//! - `client.rs`: the API (with `[sources.api]`).
//! - `poller.rs`: searching rated conversations through the client.
//!
//! Intercom sends no timestamp with the signature, so there is no replay
//! window; the notification `id` is the delivery id, so a replayed
//! delivery is recorded once.

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
use client::IntercomClient;

/// An Intercom source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntercomSettings {
    /// `[sources.api]`: searching rated conversations (polling).
    pub api: Option<TokenApiSettings>,
}

/// Builds an Intercom source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    IntercomSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured Intercom source.
pub struct IntercomSource {
    secret: SecretString,
    ticket_url: Option<String>,
    client: Option<IntercomClient>,
}

impl IntercomSource {
    /// Builds the source from its table, reporting every problem.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<IntercomSettings>();
        problems.extend(t.check_ticket_url());
        problems.extend(t.refuse_replay_window(
            "Intercom signs no timestamp (replays are caught by the notification id)",
        ));
        let secret = t
            .require_secret("your app's client secret, from the Intercom Developer Hub → your app → Configure → Basic information")
            .map_err(|p| problems.push(p))
            .ok();
        let client = own
            .api
            .and_then(|api| {
                t.token_api(
                    api,
                    "https://api.intercom.io",
                    "the app's access token (Developer Hub → your app → Configure → Authentication), with the Read conversations permission",
                    &mut problems,
                )
            })
            .map(|api| IntercomClient {
                base_url: api.base_url,
                token: api.token,
                timeout: api.timeout,
                ticket_url: t.shared.ticket_url.clone(),
            });
        match secret {
            Some(secret) if problems.is_empty() => Ok(IntercomSource {
                secret,
                ticket_url: t.shared.ticket_url.clone(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

impl Webhook for IntercomSource {
    fn kind(&self) -> &'static str {
        "intercom"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        payload::read(&parse_json(request.body)?, self.ticket_url.as_deref())
    }

    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        self.client.as_ref().map(actions::from_client)
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
