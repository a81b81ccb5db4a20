//! Zendesk legacy CSAT, delivered by a ticket trigger that notifies a
//! webhook with our JSON body (docs/helpdesks/zendesk.md has the set-up).
//!
//! - `signature.rs`: Zendesk's signature headers and replay window.
//! - `payload.rs`: the trigger body and its reading into a rating.
//! - `poller.rs`: reading ratings from the API (with `[sources.api]`).
//!
//! The newer "CSAT survey responses" product is the `zendesk_csat` kind.

pub mod actions;
pub mod payload;
pub mod poller;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::{
    BoxFuture, FetchError, ParseError, Parsed, PollPage, PollRequest, SignatureError, Source,
    WebhookRequest, check_replay_window, check_ticket_url, parse_json, replay_window_ms,
};
use crate::settings::{ConfigProblem, SourceSettings};
use payload::TriggerPayload;

/// A configured Zendesk source.
pub struct ZendeskSource {
    secret: SecretString,
    replay_window_ms: i64,
    ticket_url: Option<String>,
    api: Option<poller::ZendeskApi>,
}

impl ZendeskSource {
    /// Builds the source from its `[[sources]]` entry (whose secret the
    /// settings validation has already read from `secret_file` if given).
    /// Reports every problem with its key.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if s.secret.is_none() {
            problems.push(missing_secret(key, s));
        }
        problems.extend(check_replay_window(key, s));
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        // Generic-only keys would be silently ignored; say so instead.
        let generic_only = [
            ("scale", s.scale.is_some()),
            ("signature", s.signature.is_some()),
            ("signature_header", s.signature_header.is_some()),
            ("signature_prefix", s.signature_prefix.is_some()),
            ("signature_encoding", s.signature_encoding.is_some()),
            ("fields", s.fields.is_some()),
            ("allow_unsigned", s.allow_unsigned.is_some()),
        ];
        for (name, set) in generic_only {
            if set {
                problems.push(ConfigProblem::new(
                    format!("{key}.{name}"),
                    "applies to generic sources only; remove it (Zendesk's scale and signature are fixed)",
                ));
            }
        }
        let api = match &s.api {
            None => None,
            Some(api) => {
                problems.extend(super::api::refuse_keys(
                    &format!("{key}.api"),
                    "zendesk",
                    &[(
                        "api_key",
                        api.api_key.is_some() || api.api_key_file.is_some(),
                    )],
                ));
                if api.token.is_none() && api.token_file.is_none() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.api.token"),
                        "is required to poll: a Zendesk API token (Admin Center → Apps and integrations → Zendesk API) with api.email set to the agent's address, or an OAuth access token alone; or set token_file",
                    ));
                }
                match (
                    super::api::base_url(key, api, "https://acme.zendesk.com"),
                    &api.token,
                ) {
                    (Ok(base_url), Some(token)) => Some(poller::ZendeskApi {
                        base_url,
                        email: api.email.clone(),
                        token: token.clone(),
                        timeout: api.timeout(),
                    }),
                    (Err(problem), _) => {
                        problems.push(problem);
                        None
                    }
                    _ => None,
                }
            }
        };
        match &s.secret {
            Some(secret) if problems.is_empty() => Ok(ZendeskSource {
                secret: secret.clone(),
                replay_window_ms: replay_window_ms(s),
                ticket_url: s.ticket_url.clone(),
                api,
            }),
            _ => Err(problems),
        }
    }
}

/// The secret is the only proof a delivery came from Zendesk, so it is
/// required; the message says where to find it.
fn missing_secret(key: &str, s: &SourceSettings) -> ConfigProblem {
    let message = if s.secret_file.is_some() {
        "is required, and secret_file gave none (see the problem reported for it)"
    } else {
        "is required: in Zendesk Admin Center → Apps and integrations → Webhooks, open your webhook and click \"Reveal secret\"; or set secret_file to a file holding it"
    };
    ConfigProblem::new(format!("{key}.secret"), message)
}

impl Source for ZendeskSource {
    fn kind(&self) -> &'static str {
        "zendesk"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request, self.replay_window_ms)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        let body = parse_json(request.body)?;
        TriggerPayload::try_from(&body)?.into_parsed(self.ticket_url.as_deref())
    }

    fn can_poll(&self) -> bool {
        self.api.is_some()
    }

    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(async move {
            match &self.api {
                Some(api) => {
                    poller::poll_page(api, self.ticket_url.as_deref(), http, request).await
                }
                None => Err(FetchError::permanent(
                    "this Zendesk source has no [sources.api] to poll with",
                )),
            }
        })
    }
}
