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

use secrecy::SecretString;

use super::legacy::SourceSettings;
use super::legacy::{refuse_foreign_keys, require_secret};
use super::zendesk::signature;
use super::{
    ParseError, Parsed, SignatureError, Webhook, WebhookRequest, check_ticket_url, parse_json,
};
use crate::domain::Scale;
use crate::settings::ConfigProblem;

/// A configured Zendesk new-CSAT source.
pub struct ZendeskCsatSource {
    secret: SecretString,
    replay_window_ms: i64,
    default_scale: Scale,
    ticket_url: Option<String>,
}

impl ZendeskCsatSource {
    /// Builds the source from its `[[sources]]` entry, reporting every problem.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = refuse_foreign_keys(key, s, "zendesk_csat", &["scale"]);
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        problems.extend(super::legacy::check_replay_window(key, s));
        let default_scale = match s.scale.as_deref().map(str::parse::<Scale>) {
            None | Some(Err(_)) => Scale::FivePoint,
            Some(Ok(scale @ (Scale::TwoPoint | Scale::ThreePoint | Scale::FivePoint))) => scale,
            Some(Ok(other)) => {
                problems.push(ConfigProblem::new(
                    format!("{key}.scale"),
                    format!("{other} is not a Zendesk CSAT scale; use two_point, three_point or five_point"),
                ));
                Scale::FivePoint
            }
        };
        let secret = require_secret(
            key,
            s,
            "in Zendesk Admin Center → Apps and integrations → Webhooks, open your webhook and click \"Reveal secret\"",
        )
        .map_err(|p| problems.push(p))
        .ok();
        match secret {
            Some(secret) if problems.is_empty() => Ok(ZendeskCsatSource {
                secret,
                replay_window_ms: super::legacy::replay_window_ms(s),
                default_scale,
                ticket_url: s.ticket_url.clone(),
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
