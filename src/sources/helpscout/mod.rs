//! Help Scout: the `satisfaction.ratings` webhook event (docs/helpdesks/helpscout.md
//! has the set-up).
//!
//! - `signature.rs`: `X-HelpScout-Signature`, base64 HMAC-SHA1 of the raw body.
//! - `payload.rs`: the Rating object (v2, and the deprecated v1 spelling).
//! - `client.rs`: the Mailbox API 2.0 client (OAuth2 client credentials).
//! - `poller.rs`: the happiness ratings report, through the client.
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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::http_api::base_url;
use super::settings::api_timeout;
use super::{
    HelpdeskApi, ParseError, Parsed, SignatureError, SourceTable, Webhook, WebhookRequest,
    parse_json,
};
use crate::settings::{ConfigProblem, optional_duration};
use client::HelpScoutClient;

/// The header naming the event, e.g. `satisfaction.ratings` or `helpscout.test`.
pub const EVENT_HEADER: &str = "X-HelpScout-Event";

/// A Help Scout source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelpScoutSettings {
    /// `[sources.api]`: reading the happiness ratings report (polling).
    pub api: Option<HelpScoutApiSettings>,
}

/// `[sources.api]` of a Help Scout source: an OAuth2 app (client
/// credentials flow; My Apps → Create App in Help Scout).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelpScoutApiSettings {
    /// `https://api.helpscout.net`.
    pub base_url: String,
    /// The OAuth2 app's App ID.
    pub client_id: Option<String>,
    /// The OAuth2 app's App Secret.
    #[schemars(with = "Option<String>")]
    pub client_secret: Option<SecretString>,
    /// Read the client secret from this file instead.
    pub client_secret_file: Option<PathBuf>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub request_timeout: Option<Duration>,
}

/// Builds a Help Scout source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    HelpScoutSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured Help Scout source.
pub struct HelpScoutSource {
    secret: SecretString,
    ticket_url: Option<String>,
    client: Option<HelpScoutClient>,
}

/// Reads `[sources.api]`: an OAuth2 app's client id and secret.
fn client(
    t: &SourceTable,
    api: HelpScoutApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<HelpScoutClient> {
    let client_id = api
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if client_id.is_none() {
        problems.push(ConfigProblem::new(
            t.key_of("api.client_id"),
            "is required to poll: the App ID of an OAuth2 app (Help Scout → your profile → My Apps → Create App)",
        ));
    }
    let client_secret = t.secret(
        "api.client_secret",
        api.client_secret,
        api.client_secret_file.as_deref(),
        problems,
    );
    if client_secret.is_none() && api.client_secret_file.is_none() {
        problems.push(ConfigProblem::new(
            t.key_of("api.client_secret"),
            "is required to poll: the App Secret of the same app; or set client_secret_file",
        ));
    }
    let base = base_url(&t.key, &api.base_url, "https://api.helpscout.net")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(HelpScoutClient::new(
        base,
        client_id?.to_string(),
        client_secret?,
        api_timeout(api.request_timeout),
        t.shared.ticket_url.clone(),
    ))
}

impl HelpScoutSource {
    /// Builds the source from its table, reporting every problem.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<HelpScoutSettings>();
        problems.extend(t.check_ticket_url());
        problems.extend(t.refuse_replay_window("Help Scout signs no timestamp"));
        let secret = t
            .require_secret("the secret you typed (40 characters or fewer) when creating the webhook in Help Scout → Manage → Apps → Webhooks")
            .map_err(|p| problems.push(p))
            .ok();
        let client = own.api.and_then(|api| client(t, api, &mut problems));
        match secret {
            Some(secret) if problems.is_empty() => Ok(HelpScoutSource {
                secret,
                ticket_url: t.shared.ticket_url.clone(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

impl Webhook for HelpScoutSource {
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

    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        self.client.as_ref().map(actions::from_client)
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
