//! Intercom: the app's webhook topics `conversation.rating.added` and
//! `ticket.rating.provided` (docs/helpdesks/intercom.md has the set-up).
//!
//! - `signature.rs`: `X-Hub-Signature: sha1=<hex>` over the raw body.
//! - `payload.rs`: the notification envelope and its reading into a rating.
//!
//! Intercom sends no timestamp with the signature, so there is no replay
//! window; the notification `id` is the delivery id, so a replayed
//! delivery is recorded once.

pub mod payload;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::common::{refuse_foreign_keys, require_secret};
use super::{
    ParseError, Parsed, SignatureError, Source, WebhookRequest, check_ticket_url, parse_json,
};
use crate::settings::{ConfigProblem, SourceSettings};

/// A configured Intercom source.
pub struct IntercomSource {
    secret: SecretString,
    ticket_url: Option<String>,
}

impl IntercomSource {
    /// Builds the source from its `[[sources]]` entry, reporting every problem.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = refuse_foreign_keys(key, s, "intercom", &[]);
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        if s.replay_window.is_some() {
            problems.push(ConfigProblem::new(
                format!("{key}.replay_window"),
                "does not apply to intercom sources: Intercom signs no timestamp (replays are caught by the notification id)",
            ));
        }
        let secret = require_secret(
            key,
            s,
            "your app's client secret, from the Intercom Developer Hub → your app → Configure → Basic information",
        )
        .map_err(|p| problems.push(p))
        .ok();
        match secret {
            Some(secret) if problems.is_empty() => Ok(IntercomSource {
                secret,
                ticket_url: s.ticket_url.clone(),
            }),
            _ => Err(problems),
        }
    }
}

impl Source for IntercomSource {
    fn kind(&self) -> &'static str {
        "intercom"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        payload::read(&parse_json(request.body)?, self.ticket_url.as_deref())
    }
}
