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
use client::IntercomClient;

/// An Intercom source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntercomSettings {
    /// `[sources.api]`: searching rated conversations (polling).
    pub api: Option<IntercomApiSettings>,
}

/// `[sources.api]` of an Intercom source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntercomApiSettings {
    /// `https://api.intercom.io` (or `https://api.eu.intercom.io`, `https://api.au.intercom.io`).
    pub base_url: String,
    /// The app's access token, with the Read conversations permission.
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// Read the token from this file instead.
    pub token_file: Option<PathBuf>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub request_timeout: Option<Duration>,
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

/// Reads `[sources.api]`.
fn client(
    t: &SourceTable,
    api: IntercomApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<IntercomClient> {
    let token = t.secret("api.token", api.token, api.token_file.as_deref(), problems);
    if token.is_none() && api.token_file.is_none() {
        problems.push(ConfigProblem::new(
            t.key_of("api.token"),
            "is required to poll: the app's access token (Developer Hub → your app → Configure → Authentication), with the Read conversations permission; or set token_file",
        ));
    }
    let base_url = base_url(&t.key, &api.base_url, "https://api.intercom.io")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(IntercomClient {
        base_url,
        token: token?,
        timeout: api_timeout(api.request_timeout),
        ticket_url: t.shared.ticket_url.clone(),
    })
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
        let client = own.api.and_then(|api| client(t, api, &mut problems));
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

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
