//! Help Scout: the `satisfaction.ratings` webhook event (docs/helpdesks/helpscout.md
//! has the set-up).
//!
//! - `signature.rs`: `X-HelpScout-Signature`, base64 HMAC-SHA1 of the raw body.
//! - `payload.rs`: the Rating object (v2, and the deprecated v1 spelling).
//! - `client.rs`: the Mailbox API 2.0 client (OAuth2 client credentials).
//! - `poller.rs`: the happiness ratings report, with `[sources.api]`.
//!
//! Help Scout rates each agent reply (thread) separately, so the rated
//! thread's id is the rating key: one conversation can hold several
//! ratings. The thread, not the rating id, because the report the poller
//! reads has no rating id, and a rating seen by webhook and by poll must be
//! one rating. There is no signed timestamp and so no replay window; a
//! replayed body is the same delivery (its hash) and a stale version is
//! ignored by `modifiedAt`.

pub mod actions;
pub mod client;
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
use client::HelpScoutClient;

/// The header naming the event, e.g. `satisfaction.ratings` or `helpscout.test`.
pub const EVENT_HEADER: &str = "X-HelpScout-Event";

/// A configured Help Scout source.
pub struct HelpScoutSource {
    secret: SecretString,
    ticket_url: Option<String>,
    client: Option<HelpScoutClient>,
}

/// Reads `[sources.api]`: an OAuth2 app's client id and secret.
fn client(
    key: &str,
    api: &ApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<HelpScoutClient> {
    let api_key = format!("{key}.api");
    problems.extend(refuse_keys(
        &api_key,
        "helpscout",
        &[
            ("token", api.token.is_some() || api.token_file.is_some()),
            (
                "api_key",
                api.api_key.is_some() || api.api_key_file.is_some(),
            ),
            ("email", api.email.is_some()),
        ],
    ));
    let client_id = api
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if client_id.is_none() {
        problems.push(ConfigProblem::new(
            format!("{api_key}.client_id"),
            "is required to poll: the App ID of an OAuth2 app (Help Scout → your profile → My Apps → Create App)",
        ));
    }
    if api.client_secret.is_none() && api.client_secret_file.is_none() {
        problems.push(ConfigProblem::new(
            format!("{api_key}.client_secret"),
            "is required to poll: the App Secret of the same app; or set client_secret_file",
        ));
    }
    let base = base_url(key, api, "https://api.helpscout.net")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(HelpScoutClient::new(
        base,
        client_id?.to_string(),
        api.client_secret.clone()?,
        api.timeout(),
    ))
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
        let client = s
            .api
            .as_ref()
            .and_then(|api| client(key, api, &mut problems));
        match secret {
            Some(secret) if problems.is_empty() => Ok(HelpScoutSource {
                secret,
                ticket_url: s.ticket_url.clone(),
                client,
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

    fn can_poll(&self) -> bool {
        self.client.is_some()
    }

    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(async move {
            match &self.client {
                Some(client) => {
                    poller::poll_page(client, self.ticket_url.as_deref(), http, request).await
                }
                None => Err(FetchError::permanent(
                    "this Help Scout source has no [sources.api] to poll with",
                )),
            }
        })
    }
}
