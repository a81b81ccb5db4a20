//! The generic source: any sender that can POST JSON and sign it, with the
//! fields picked by JSON pointers (docs/helpdesks/generic.md has the set-up).
//!
//! - `signature.rs`: the hmac-sha256 and standard-webhooks schemes.
//! - `payload.rs`: the configured pointers and the reading of a body.

pub mod payload;
pub mod signature;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;

use super::{ParseError, Parsed, SignatureError, SourceTable, Webhook, WebhookRequest, parse_json};
use crate::domain::Scale;
use crate::settings::ConfigProblem;
use payload::Pointers;
use signature::Scheme;

/// A generic source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericSettings {
    /// The scale of the score when the body does not say. Default `five_point`.
    pub scale: Option<String>,
    /// `hmac-sha256` (default), `standard-webhooks`, or `token` (the secret
    /// itself in `signature_header`, for senders that cannot sign).
    pub signature: Option<String>,
    /// hmac-sha256 and token: the header carrying the signature. Default
    /// `X-Signature` (hmac-sha256) or `X-Csatwatch-Token` (token).
    pub signature_header: Option<String>,
    /// hmac-sha256 and token: a prefix before the value, e.g. `sha256=`.
    pub signature_prefix: Option<String>,
    /// hmac-sha256: `hex` (default) or `base64`.
    pub signature_encoding: Option<String>,
    /// JSON pointers (RFC 6901) to the fields of the body.
    pub fields: Option<GenericFields>,
}

/// `[sources.fields]` of a generic source: where each value sits in the body,
/// as a JSON pointer such as `/ticket/id`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericFields {
    /// Required: the ticket or conversation id.
    pub conversation_id: Option<String>,
    /// Required: the score (a number, or a word on binary/three-point scales).
    pub score: Option<String>,
    /// The scale's name in the body, if it varies per delivery.
    pub scale: Option<String>,
    /// The helpdesk's id of the rating, if a conversation can have several.
    pub rating_key: Option<String>,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    /// An array of strings, or one comma-separated string.
    pub tags: Option<String>,
    pub url: Option<String>,
    /// RFC 3339 text, or Unix seconds or milliseconds.
    pub rated_at: Option<String>,
    /// When this version of the rating was given, same formats.
    pub updated_at: Option<String>,
    /// A delivery id that stays the same across retries.
    pub delivery_id: Option<String>,
}

/// Builds a generic source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    GenericSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured generic source.
pub struct GenericSource {
    secret: SecretString,
    scheme: Scheme,
    pointers: Pointers,
    default_scale: Scale,
    ticket_url: Option<String>,
}

impl GenericSource {
    /// Builds the source from its table, reporting every problem with its
    /// key and a fix.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<GenericSettings>();
        let secret = t
            .require_secret("the shared secret the sender signs deliveries with (e.g. generate one with: openssl rand -hex 32)")
            .map_err(|p| problems.push(p))
            .ok();
        let scheme = signature::scheme_from_settings(t, &own)
            .map_err(|p| problems.extend(p))
            .ok();
        let pointers = Pointers::from_settings(&t.key, own.fields.as_ref())
            .map_err(|p| problems.extend(p))
            .ok();
        let default_scale = match own.scale.as_deref().map(str::parse::<Scale>) {
            None => Scale::FivePoint,
            Some(Ok(scale)) => scale,
            Some(Err(e)) => {
                problems.push(ConfigProblem::new(t.key_of("scale"), e));
                Scale::FivePoint
            }
        };
        problems.extend(t.check_ticket_url());
        match (secret, scheme, pointers) {
            (Some(secret), Some(scheme), Some(pointers)) if problems.is_empty() => {
                Ok(GenericSource {
                    secret,
                    scheme,
                    pointers,
                    default_scale,
                    ticket_url: t.shared.ticket_url.clone(),
                })
            }
            _ => Err(problems),
        }
    }
}

impl Webhook for GenericSource {
    fn kind(&self) -> &'static str {
        "generic"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        self.scheme.verify(&self.secret, request)
    }

    /// A configured `fields.delivery_id` wins over the scheme's own id: the
    /// operator said where the sender's id is.
    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        let body = parse_json(request.body)?;
        let parsed = payload::read(
            &body,
            &self.pointers,
            self.default_scale,
            self.ticket_url.as_deref(),
        )?;
        Ok(match parsed {
            Parsed::Ratings {
                delivery_id,
                ratings,
            } => Parsed::Ratings {
                delivery_id: delivery_id.or_else(|| self.scheme.delivery_id(request)),
                ratings,
            },
            other => other,
        })
    }
}
