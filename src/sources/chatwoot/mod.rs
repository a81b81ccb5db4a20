//! Chatwoot: the `message_updated` webhook of an answered `input_csat`
//! message (docs/helpdesks/chatwoot.md has the set-up). Chatwoot has no
//! rating event of its own.
//!
//! - `signature.rs`: `X-Chatwoot-Signature: sha256=<hex>` over
//!   `"{X-Chatwoot-Timestamp}.{body}"` (Chatwoot 4.12 and later), and the
//!   choice of accepting unsigned deliveries from older versions.
//! - `payload.rs`: the message and its survey answer.
//! - `client.rs`: the account's API (with `[sources.api]`).
//! - `poller.rs`: reading the account's CSAT responses through the client.

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
use client::ChatwootClient;

/// The delivery's UUID, sent on signed and unsigned deliveries alike: a
/// replayed delivery is recorded once.
pub const DELIVERY_HEADER: &str = "X-Chatwoot-Delivery";

/// A Chatwoot source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatwootSettings {
    /// Accept deliveries that carry no `X-Chatwoot-Signature` (Chatwoot
    /// before 4.12 never signs). Default `false`. Risk: anyone who learns
    /// the webhook URL can then post fake ratings and alerts; signed
    /// deliveries are still checked when a secret is set.
    pub allow_unsigned: Option<bool>,
    /// `[sources.api]`: reading the account's CSAT responses (polling).
    pub api: Option<ChatwootApiSettings>,
}

/// `[sources.api]` of a Chatwoot source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatwootApiSettings {
    /// `https://app.chatwoot.com` or your own installation's address.
    pub base_url: String,
    /// A user's access token (Profile settings → Access Token).
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// Read the token from this file instead.
    pub token_file: Option<PathBuf>,
    /// The account's numeric id (the number after `/app/accounts/` in
    /// Chatwoot's address bar).
    pub account_id: Option<String>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub request_timeout: Option<Duration>,
}

/// Builds a Chatwoot source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    ChatwootSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured Chatwoot source.
pub struct ChatwootSource {
    secret: Option<SecretString>,
    allow_unsigned: bool,
    replay_window_ms: i64,
    ticket_url: Option<String>,
    client: Option<ChatwootClient>,
}

impl ChatwootSource {
    /// Builds the source from its table, reporting every problem. A secret
    /// is required unless `allow_unsigned = true`.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<ChatwootSettings>();
        problems.extend(t.check_ticket_url());
        problems.extend(t.check_replay_window());
        let allow_unsigned = own.allow_unsigned.unwrap_or(false);
        if t.shared.secret.is_none() && !allow_unsigned {
            problems.extend(
                t.require_secret("the webhook's secret from Chatwoot (Settings → Integrations → Webhooks, Chatwoot 4.12 or later). For an older Chatwoot that cannot sign, set allow_unsigned = true (read its risk in docs/helpdesks/chatwoot.md)")
                    .err(),
            );
        }
        let client = own.api.and_then(|api| client(t, api, &mut problems));
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ChatwootSource {
            secret: t.shared.secret.clone(),
            allow_unsigned,
            replay_window_ms: t.replay_window_ms(),
            ticket_url: t.shared.ticket_url.clone(),
            client,
        })
    }
}

/// Reads `[sources.api]`: `base_url`, `token` (a user's access token) and
/// `account_id`, all required to poll.
fn client(
    t: &SourceTable,
    api: ChatwootApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<ChatwootClient> {
    let token = t.secret("api.token", api.token, api.token_file.as_deref(), problems);
    if token.is_none() && api.token_file.is_none() {
        problems.push(ConfigProblem::new(
            t.key_of("api.token"),
            "is required to poll: an access token (Profile settings → Access Token in Chatwoot), sent as api_access_token; or set token_file",
        ));
    }
    let account_id = api
        .account_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
    if account_id.is_none() {
        problems.push(ConfigProblem::new(
            t.key_of("api.account_id"),
            "is required to poll: the account's number, as in https://app.chatwoot.com/app/accounts/<account_id>/dashboard",
        ));
    }
    let base_url = base_url(&t.key, &api.base_url, "https://app.chatwoot.com")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(ChatwootClient {
        base_url,
        account_id: account_id?.to_string(),
        token: token?,
        timeout: api_timeout(api.request_timeout),
        ticket_url: t.shared.ticket_url.clone(),
    })
}

impl Webhook for ChatwootSource {
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

    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        self.client.as_ref().map(actions::from_client)
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
