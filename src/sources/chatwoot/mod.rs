//! Chatwoot: the `message_updated` webhook of an answered `input_csat`
//! message (docs/helpdesks/chatwoot.md has the set-up). Chatwoot has no
//! rating event of its own.
//!
//! - `signature.rs`: `X-Chatwoot-Signature: sha256=<hex>` over
//!   `"{X-Chatwoot-Timestamp}.{body}"` (Chatwoot 4.12 and later), and the
//!   choice of accepting unsigned deliveries from older versions.
//! - `payload.rs`: the message and its survey answer.

pub mod payload;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::common::refuse_foreign_keys;
use super::{
    ParseError, Parsed, SignatureError, Source, WebhookRequest, check_replay_window,
    check_ticket_url, parse_json, replay_window_ms,
};
use crate::settings::{ConfigProblem, SourceSettings};

/// The delivery's UUID, sent on signed and unsigned deliveries alike: a
/// replayed delivery is recorded once.
pub const DELIVERY_HEADER: &str = "X-Chatwoot-Delivery";

/// A configured Chatwoot source.
pub struct ChatwootSource {
    secret: Option<SecretString>,
    allow_unsigned: bool,
    replay_window_ms: i64,
    ticket_url: Option<String>,
}

impl ChatwootSource {
    /// Builds the source from its `[[sources]]` entry, reporting every problem.
    /// A secret is required unless `allow_unsigned = true`.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = refuse_foreign_keys(key, s, "chatwoot", &["allow_unsigned"]);
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        problems.extend(check_replay_window(key, s));
        let allow_unsigned = s.allow_unsigned.unwrap_or(false);
        if s.secret.is_none() && !allow_unsigned {
            let message = if s.secret_file.is_some() {
                "is required, and secret_file gave none (see the problem reported for it)"
            } else {
                "is required: the webhook's secret from Chatwoot (Settings → Integrations → Webhooks, Chatwoot 4.12 or later); or set secret_file. For an older Chatwoot that cannot sign, set allow_unsigned = true (read its risk in docs/helpdesks/chatwoot.md)"
            };
            problems.push(ConfigProblem::new(format!("{key}.secret"), message));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ChatwootSource {
            secret: s.secret.clone(),
            allow_unsigned,
            replay_window_ms: replay_window_ms(s),
            ticket_url: s.ticket_url.clone(),
        })
    }
}

impl Source for ChatwootSource {
    fn kind(&self) -> &'static str {
        "chatwoot"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(
            self.secret.as_ref(),
            self.allow_unsigned,
            request,
            self.replay_window_ms,
        )
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        let body = parse_json(request.body)?;
        let signed_at_ms = request
            .header(signature::TIMESTAMP_HEADER)
            .and_then(|t| t.trim().parse::<i64>().ok())
            .map(|s| s.saturating_mul(1000));
        let parsed = payload::read(&body, self.ticket_url.as_deref(), signed_at_ms)?;
        Ok(match parsed {
            Parsed::Ratings { ratings, .. } => Parsed::Ratings {
                delivery_id: request
                    .header(DELIVERY_HEADER)
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
                ratings,
            },
            other => other,
        })
    }
}
