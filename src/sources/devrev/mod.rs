//! DevRev: the `survey_response_created` and `survey_response_updated`
//! webhook events, and the `verify` handshake (docs/helpdesks/devrev.md has
//! the set-up).
//!
//! - `signature.rs`: `X-DevRev-Signature`, HMAC-SHA256 of the raw body,
//!   hex or base64 [U], and the replay window on the envelope `timestamp`.
//! - `payload.rs`: the envelope and the survey response.

pub mod payload;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::common::{refuse_foreign_keys, require_secret};
use super::{
    ParseError, Parsed, SignatureError, Source, WebhookRequest, check_replay_window,
    check_ticket_url, parse_json, replay_window_ms,
};
use crate::domain::Scale;
use crate::settings::{ConfigProblem, SourceSettings};

/// A configured DevRev source.
pub struct DevRevSource {
    secret: SecretString,
    replay_window_ms: i64,
    scale: Scale,
    ticket_url: Option<String>,
}

impl DevRevSource {
    /// Builds the source from its `[[sources]]` entry, reporting every problem.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = refuse_foreign_keys(key, s, "devrev", &["scale"]);
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        problems.extend(check_replay_window(key, s));
        let scale = match s.scale.as_deref().map(str::parse::<Scale>) {
            None => Scale::FivePoint,
            Some(Ok(scale @ (Scale::FivePoint | Scale::Nps))) => scale,
            // An unknown name is reported by the settings validation already.
            Some(Err(_)) => Scale::FivePoint,
            Some(Ok(other)) => {
                problems.push(ConfigProblem::new(
                    format!("{key}.scale"),
                    format!("{other} is not a DevRev survey scale; use five_point (the CSAT snap-in, default) or nps"),
                ));
                Scale::FivePoint
            }
        };
        let secret = require_secret(
            key,
            s,
            "the secret DevRev returns when the webhook is created (webhooks.create answers it in webhook.secret)",
        )
        .map_err(|p| problems.push(p))
        .ok();
        match secret {
            Some(secret) if problems.is_empty() => Ok(DevRevSource {
                secret,
                replay_window_ms: replay_window_ms(s),
                scale,
                ticket_url: s.ticket_url.clone(),
            }),
            _ => Err(problems),
        }
    }
}

impl Source for DevRevSource {
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
}
