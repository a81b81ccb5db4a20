//! Zendesk's newer CSAT ("CSAT survey responses", 2-, 3- or 5-option
//! scales), delivered by a webhook signed exactly like the legacy one
//! (docs/helpdesks/zendesk_csat.md has the set-up).
//!
//! A separate kind rather than a mode of `zendesk`: an account runs one of
//! the two products at a time, the bodies share nothing, and the legacy
//! reader stays strict about its own template.
//!
//! - The signature is Zendesk's: [`crate::sources::zendesk::signature`].
//! - `payload.rs`: the survey response, in every shape it may arrive in.

pub mod payload;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;

use super::zendesk::signature;
use super::{ParseError, Parsed, SignatureError, SourceTable, Webhook, WebhookRequest, parse_json};
use crate::domain::Scale;
use crate::settings::ConfigProblem;

/// A Zendesk CSAT source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZendeskCsatSettings {
    /// The scale when a delivery does not say how many options the survey
    /// has: `two_point`, `three_point` or `five_point` (default).
    pub scale: Option<String>,
}

/// Builds a Zendesk CSAT source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    ZendeskCsatSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured Zendesk new-CSAT source.
pub struct ZendeskCsatSource {
    secret: SecretString,
    replay_window_ms: i64,
    default_scale: Scale,
    ticket_url: Option<String>,
}

impl ZendeskCsatSource {
    /// Builds the source from its table, reporting every problem.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<ZendeskCsatSettings>();
        problems.extend(t.check_ticket_url());
        problems.extend(t.check_replay_window());
        let default_scale = match own.scale.as_deref().map(str::parse::<Scale>) {
            None => Scale::FivePoint,
            Some(Ok(scale @ (Scale::TwoPoint | Scale::ThreePoint | Scale::FivePoint))) => scale,
            Some(Ok(other)) => {
                problems.push(ConfigProblem::new(
                    t.key_of("scale"),
                    format!("{other} is not a Zendesk CSAT scale; use two_point, three_point or five_point"),
                ));
                Scale::FivePoint
            }
            Some(Err(e)) => {
                problems.push(ConfigProblem::new(t.key_of("scale"), e));
                Scale::FivePoint
            }
        };
        let secret = t
            .require_secret("in Zendesk Admin Center → Apps and integrations → Webhooks, open your webhook and click \"Reveal secret\"")
            .map_err(|p| problems.push(p))
            .ok();
        match secret {
            Some(secret) if problems.is_empty() => Ok(ZendeskCsatSource {
                secret,
                replay_window_ms: t.replay_window_ms(),
                default_scale,
                ticket_url: t.shared.ticket_url.clone(),
            }),
            _ => Err(problems),
        }
    }
}

impl Webhook for ZendeskCsatSource {
    fn kind(&self) -> &'static str {
        "zendesk_csat"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request, self.replay_window_ms)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        payload::read(
            &parse_json(request.body)?,
            self.default_scale,
            self.ticket_url.as_deref(),
        )
    }
}
