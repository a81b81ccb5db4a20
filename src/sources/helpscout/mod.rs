//! Help Scout: the `satisfaction.ratings` webhook event (docs/helpdesks/helpscout.md
//! has the set-up).
//!
//! - `signature.rs`: `X-HelpScout-Signature`, base64 HMAC-SHA1 of the raw body.
//! - `payload.rs`: the Rating object (v2, and the deprecated v1 spelling).
//!
//! Help Scout rates each agent reply (thread) separately, so the rating id
//! is the rating key: one conversation can hold several ratings. There is
//! no signed timestamp and so no replay window; a replayed body is the same
//! delivery (its hash) and a stale version is ignored by `modifiedAt`.

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

/// The header naming the event, e.g. `satisfaction.ratings` or `helpscout.test`.
pub const EVENT_HEADER: &str = "X-HelpScout-Event";

/// A configured Help Scout source.
pub struct HelpScoutSource {
    secret: SecretString,
    ticket_url: Option<String>,
}

impl HelpScoutSource {
    /// Builds the source from its `[[sources]]` entry, reporting every problem.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = refuse_foreign_keys(key, s, "helpscout", &[]);
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        if s.replay_window.is_some() {
            problems.push(ConfigProblem::new(
                format!("{key}.replay_window"),
                "does not apply to helpscout sources: Help Scout signs no timestamp",
            ));
        }
        let secret = require_secret(
            key,
            s,
            "the secret you typed (40 characters or fewer) when creating the webhook in Help Scout → Manage → Apps → Webhooks",
        )
        .map_err(|p| problems.push(p))
        .ok();
        match secret {
            Some(secret) if problems.is_empty() => Ok(HelpScoutSource {
                secret,
                ticket_url: s.ticket_url.clone(),
            }),
            _ => Err(problems),
        }
    }
}

impl Source for HelpScoutSource {
    fn kind(&self) -> &'static str {
        "helpscout"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        // The event is named only in a header; without it the body decides.
        match request.header(EVENT_HEADER).map(str::trim) {
            None | Some("satisfaction.ratings") => {}
            Some(other) => {
                return Ok(Parsed::NoRating {
                    reason: format!("event {other:?} carries no rating"),
                });
            }
        }
        payload::read(&parse_json(request.body)?, self.ticket_url.as_deref())
    }
}
