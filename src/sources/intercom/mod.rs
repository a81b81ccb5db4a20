//! Intercom: the app's webhook topics `conversation.rating.added` and
//! `ticket.rating.provided` (docs/helpdesks/intercom.md has the set-up).
//!
//! - `signature.rs`: `X-Hub-Signature: sha1=<hex>` over the raw body.
//! - `payload.rs`: the notification envelope and its reading into a rating.
//! - `poller.rs`: searching rated conversations, with `[sources.api]`.
//!
//! Intercom sends no timestamp with the signature, so there is no replay
//! window; the notification `id` is the delivery id, so a replayed
//! delivery is recorded once.

pub mod actions;
pub mod payload;
pub mod poller;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::api::{base_url, refuse_keys};
use super::common::{refuse_foreign_keys, require_secret};
use super::{
    BoxFuture, FetchError, ParseError, Parsed, PollPage, PollRequest, SignatureError, Source,
    WebhookRequest, check_ticket_url, parse_json,
};
use crate::settings::{ApiSettings, ConfigProblem, SourceSettings};

/// A configured Intercom source.
pub struct IntercomSource {
    secret: SecretString,
    ticket_url: Option<String>,
    api: Option<poller::IntercomApi>,
}

/// Reads `[sources.api]`: an access token with "Read conversations".
fn api(
    key: &str,
    api: &ApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<poller::IntercomApi> {
    problems.extend(refuse_keys(
        &format!("{key}.api"),
        "intercom",
        &[
            (
                "api_key",
                api.api_key.is_some() || api.api_key_file.is_some(),
            ),
            ("email", api.email.is_some()),
            ("client_id", api.client_id.is_some()),
            (
                "client_secret",
                api.client_secret.is_some() || api.client_secret_file.is_some(),
            ),
        ],
    ));
    if api.token.is_none() && api.token_file.is_none() {
        problems.push(ConfigProblem::new(
            format!("{key}.api.token"),
            "is required to poll: the app's access token (Developer Hub → your app → Configure → Authentication), with the Read conversations permission; or set token_file",
        ));
    }
    let base = base_url(key, api, "https://api.intercom.io")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(poller::IntercomApi {
        base_url: base,
        token: api.token.clone()?,
        timeout: api.timeout(),
    })
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
        let api = s.api.as_ref().and_then(|a| api(key, a, &mut problems));
        match secret {
            Some(secret) if problems.is_empty() => Ok(IntercomSource {
                secret,
                ticket_url: s.ticket_url.clone(),
                api,
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
                    "this Intercom source has no [sources.api] to poll with",
                )),
            }
        })
    }
}
