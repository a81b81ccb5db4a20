//! Chatwoot: the `message_updated` webhook of an answered `input_csat`
//! message (docs/helpdesks/chatwoot.md has the set-up). Chatwoot has no
//! rating event of its own.
//!
//! - `signature.rs`: `X-Chatwoot-Signature: sha256=<hex>` over
//!   `"{X-Chatwoot-Timestamp}.{body}"` (Chatwoot 4.12 and later), and the
//!   choice of accepting unsigned deliveries from older versions.
//! - `payload.rs`: the message and its survey answer.
//! - `poller.rs`: reading the account's CSAT responses (with `[sources.api]`).

pub mod actions;
pub mod payload;
pub mod poller;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::common::refuse_foreign_keys;
use super::{
    BoxFuture, FetchError, ParseError, Parsed, PollPage, PollRequest, SignatureError, Source,
    WebhookRequest, check_replay_window, check_ticket_url, parse_json, replay_window_ms,
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
    api: Option<poller::ChatwootApi>,
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
        let api = s
            .api
            .as_ref()
            .and_then(|api| read_api(key, api, &mut problems));
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ChatwootSource {
            secret: s.secret.clone(),
            allow_unsigned,
            replay_window_ms: replay_window_ms(s),
            ticket_url: s.ticket_url.clone(),
            api,
        })
    }
}

/// Reads `[sources.api]`: `base_url`, `token` (a user's access token) and
/// `account_id`, all required to poll.
fn read_api(
    key: &str,
    api: &crate::settings::ApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<poller::ChatwootApi> {
    problems.extend(super::api::refuse_keys(
        &format!("{key}.api"),
        "chatwoot",
        &[
            (
                "api_key",
                api.api_key.is_some() || api.api_key_file.is_some(),
            ),
            ("email", api.email.is_some()),
        ],
    ));
    if api.token.is_none() && api.token_file.is_none() {
        problems.push(ConfigProblem::new(
            format!("{key}.api.token"),
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
            format!("{key}.api.account_id"),
            "is required to poll: the account's number, as in https://app.chatwoot.com/app/accounts/<account_id>/dashboard",
        ));
    }
    let base_url = super::api::base_url(key, api, "https://app.chatwoot.com")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(poller::ChatwootApi {
        base_url,
        account_id: account_id?.to_string(),
        token: api.token.clone()?,
        timeout: api.timeout(),
    })
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
                    "this Chatwoot source has no [sources.api] to poll with",
                )),
            }
        })
    }
}
