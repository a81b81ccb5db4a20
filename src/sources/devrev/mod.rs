//! DevRev: the `survey_response_created` and `survey_response_updated`
//! webhook events, and the `verify` handshake (docs/helpdesks/devrev.md has
//! the set-up).
//!
//! - `signature.rs`: `X-DevRev-Signature`, HMAC-SHA256 of the raw body,
//!   hex or base64 [U], and the replay window on the envelope `timestamp`.
//! - `payload.rs`: the envelope and the survey response.
//! - `poller.rs`: `surveys.responses.list` (with `[sources.api]`).

pub mod actions;
pub mod payload;
pub mod poller;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::common::{refuse_foreign_keys, require_secret};
use super::{
    BoxFuture, FetchError, ParseError, Parsed, PollPage, PollRequest, SignatureError, Source,
    WebhookRequest, check_replay_window, check_ticket_url, parse_json, replay_window_ms,
};
use crate::domain::Scale;
use crate::settings::{ConfigProblem, SourceSettings};

/// A configured DevRev source.
pub struct DevRevSource {
    secret: SecretString,
    replay_window_ms: i64,
    scale: Scale,
    ticket_url: Option<String>,
    api: Option<poller::DevRevApi>,
}

impl DevRevSource {
    /// Builds the source from its `[[sources]]` entry, reporting every problem.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = refuse_foreign_keys(key, s, "devrev", &["scale"]);
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        problems.extend(check_replay_window(key, s));
        let scale = match s.scale.as_deref().map(str::parse::<Scale>) {
            None => Scale::FivePoint,
            Some(Ok(scale @ (Scale::FivePoint | Scale::Nps))) => scale,
            // An unknown name is reported by the settings validation already.
            Some(Err(_)) => Scale::FivePoint,
            Some(Ok(other)) => {
                problems.push(ConfigProblem::new(
                    format!("{key}.scale"),
                    format!("{other} is not a DevRev survey scale; use five_point (the CSAT snap-in, default) or nps"),
                ));
                Scale::FivePoint
            }
        };
        let secret = require_secret(
            key,
            s,
            "the secret DevRev returns when the webhook is created (webhooks.create answers it in webhook.secret)",
        )
        .map_err(|p| problems.push(p))
        .ok();
        let api = s.api.as_ref().and_then(|api| {
            problems.extend(super::api::refuse_keys(
                &format!("{key}.api"),
                "devrev",
                &[
                    ("api_key", api.api_key.is_some() || api.api_key_file.is_some()),
                    ("email", api.email.is_some()),
                    ("account_id", api.account_id.is_some()),
                ],
            ));
            if api.token.is_none() && api.token_file.is_none() {
                problems.push(ConfigProblem::new(
                    format!("{key}.api.token"),
                    "is required to poll: a DevRev personal access token (Settings → Account → Personal access token); or set token_file",
                ));
            }
            let base_url = super::api::base_url(key, api, "https://api.devrev.ai")
                .map_err(|p| problems.push(p))
                .ok()?;
            Some(poller::DevRevApi {
                base_url,
                token: api.token.clone()?,
                timeout: api.timeout(),
            })
        });
        match secret {
            Some(secret) if problems.is_empty() => Ok(DevRevSource {
                secret,
                replay_window_ms: replay_window_ms(s),
                scale,
                ticket_url: s.ticket_url.clone(),
                api,
            }),
            _ => Err(problems),
        }
    }
}

impl Source for DevRevSource {
    fn kind(&self) -> &'static str {
        "devrev"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, request, self.replay_window_ms)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        payload::read(
            &parse_json(request.body)?,
            self.scale,
            self.ticket_url.as_deref(),
        )
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
                    poller::poll_page(api, self.scale, self.ticket_url.as_deref(), http, request)
                        .await
                }
                None => Err(FetchError::permanent(
                    "this DevRev source has no [sources.api] to poll with",
                )),
            }
        })
    }
}
