//! DevRev: the `survey_response_created` and `survey_response_updated`
//! webhook events, and the `verify` handshake (docs/helpdesks/devrev.md has
//! the set-up).
//!
//! - `signature.rs`: `X-DevRev-Signature`, HMAC-SHA256 of the raw body,
//!   hex or base64 [U], and the replay window on the envelope `timestamp`.
//! - `payload.rs`: the envelope and the survey response.
//! - `client.rs`: the API (with `[sources.api]`).
//! - `poller.rs`: `surveys.responses.list` through the client.

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
use crate::domain::Scale;
use crate::settings::ConfigProblem;
use client::DevRevClient;

/// A DevRev source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DevRevSettings {
    /// `five_point` (default, the CSAT snap-in) or `nps` (0–10 surveys).
    pub scale: Option<String>,
    /// `[sources.api]`: `surveys.responses.list` (polling).
    pub api: Option<TokenApiSettings>,
}

/// Builds a DevRev source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    DevRevSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured DevRev source.
pub struct DevRevSource {
    secret: SecretString,
    replay_window_ms: i64,
    scale: Scale,
    ticket_url: Option<String>,
    client: Option<DevRevClient>,
}

impl DevRevSource {
    /// Builds the source from its table, reporting every problem.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<DevRevSettings>();
        problems.extend(t.check_ticket_url());
        problems.extend(t.check_replay_window());
        let scale = match own.scale.as_deref().map(str::parse::<Scale>) {
            None => Scale::FivePoint,
            Some(Ok(scale @ (Scale::FivePoint | Scale::Nps))) => scale,
            Some(Err(e)) => {
                problems.push(ConfigProblem::new(t.key_of("scale"), e));
                Scale::FivePoint
            }
            Some(Ok(other)) => {
                problems.push(ConfigProblem::new(
                    t.key_of("scale"),
                    format!("{other} is not a DevRev survey scale; use five_point (the CSAT snap-in, default) or nps"),
                ));
                Scale::FivePoint
            }
        };
        let secret = t
            .require_secret("the secret DevRev returns when the webhook is created (webhooks.create answers it in webhook.secret)")
            .map_err(|p| problems.push(p))
            .ok();
        let client = own
            .api
            .and_then(|api| {
                t.token_api(
                    api,
                    "https://api.devrev.ai",
                    "a DevRev personal access token (Settings → Account → Personal access token)",
                    &mut problems,
                )
            })
            .map(|api| DevRevClient {
                base_url: api.base_url,
                token: api.token,
                timeout: api.timeout,
                scale,
                ticket_url: t.shared.ticket_url.clone(),
            });
        match secret {
            Some(secret) if problems.is_empty() => Ok(DevRevSource {
                secret,
                replay_window_ms: t.replay_window_ms(),
                scale,
                ticket_url: t.shared.ticket_url.clone(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

impl Webhook for DevRevSource {
    fn kind(&self) -> &'static str {
        "devrev"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request, self.replay_window_ms)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        payload::read(
            &parse_json(request.body)?,
            self.scale,
            self.ticket_url.as_deref(),
        )
    }

    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        self.client.as_ref().map(actions::from_client)
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
