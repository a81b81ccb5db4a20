//! The generic source: any sender that can POST JSON and sign it, with the
//! fields picked by JSON pointers (docs/helpdesks/generic.md has the set-up).
//!
//! - `signature.rs`: the hmac-sha256 and standard-webhooks schemes.
//! - `payload.rs`: the configured pointers and the reading of a body.

pub mod payload;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::legacy::SourceSettings;
use super::{
    ParseError, Parsed, SignatureError, Webhook, WebhookRequest, check_ticket_url, parse_json,
};
use crate::domain::Scale;
use crate::settings::ConfigProblem;
use payload::Pointers;
use signature::Scheme;

/// A configured generic source.
pub struct GenericSource {
    secret: SecretString,
    scheme: Scheme,
    pointers: Pointers,
    default_scale: Scale,
    ticket_url: Option<String>,
}

impl GenericSource {
    /// Builds the source from its `[[sources]]` entry, reporting every
    /// problem with its key and a fix.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if s.secret.is_none() {
            let message = if s.secret_file.is_some() {
                "is required, and secret_file gave none (see the problem reported for it)"
            } else {
                "is required: the shared secret the sender signs deliveries with; set secret, or secret_file to a file holding it (e.g. generate one with: openssl rand -hex 32)"
            };
            problems.push(ConfigProblem::new(format!("{key}.secret"), message));
        }
        let scheme = Scheme::from_settings(key, s)
            .map_err(|p| problems.extend(p))
            .ok();
        let pointers = Pointers::from_settings(key, s.fields.as_ref())
            .map_err(|p| problems.extend(p))
            .ok();
        // A bad `scale` is already reported by the settings validation for
        // every kind; repeating it here would list it twice.
        let default_scale = s
            .scale
            .as_deref()
            .and_then(|name| name.parse().ok())
            .unwrap_or(Scale::FivePoint);
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        match (&s.secret, scheme, pointers) {
            (Some(secret), Some(scheme), Some(pointers)) if problems.is_empty() => {
                Ok(GenericSource {
                    secret: secret.clone(),
                    scheme,
                    pointers,
                    default_scale,
                    ticket_url: s.ticket_url.clone(),
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
