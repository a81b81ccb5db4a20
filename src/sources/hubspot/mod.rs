//! HubSpot (Service Hub feedback surveys), delivered by generic webhook
//! subscriptions on FEEDBACK_SUBMISSION (`object.creation`,
//! `object.propertyChange`); docs/helpdesks/hubspot.md has the set-up.
//!
//! Events carry only ids, so every rating is fetched from the CRM API with
//! the private app's token. Deliveries are signed with HubSpot's v3 scheme
//! over the full URL it called, rebuilt from `public_url`.
//!
//! - `signature.rs`: the v3 signature and its five-minute window.
//! - `payload.rs`: the event array and the feedback submission object.
//! - `client.rs`: the API call.
//! - `poller.rs`: the search by last-modified date (with `poll_interval`).

pub mod actions;
pub mod client;
pub mod payload;
pub mod poller;
pub mod signature;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::api::{base_url, refuse_keys};
use super::{
    BoxFuture, FetchError, FetchRef, Fetched, ParseError, Parsed, PollPage, PollRequest,
    SignatureError, Source, WebhookRequest, check_replay_window, check_ticket_url, parse_json,
    replay_window_ms,
};
use crate::settings::{ConfigProblem, SourceSettings};
use client::HubspotClient;

/// A configured HubSpot source.
#[derive(Debug)]
pub struct HubspotSource {
    secret: SecretString,
    public_url: String,
    window_ms: i64,
    ticket_url: Option<String>,
    client: HubspotClient,
}

impl HubspotSource {
    /// Builds the source from its `[[sources]]` entry, reporting every
    /// problem with its key.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = refuse_keys(
            key,
            "hubspot",
            &[
                ("scale", s.scale.is_some()),
                ("signature", s.signature.is_some()),
                ("signature_header", s.signature_header.is_some()),
                ("signature_prefix", s.signature_prefix.is_some()),
                ("signature_encoding", s.signature_encoding.is_some()),
                ("fields", s.fields.is_some()),
            ],
        );
        if s.secret.is_none() {
            let message = if s.secret_file.is_some() {
                "is required, and secret_file gave none (see the problem reported for it)"
            } else {
                "is required: your HubSpot app's client secret (the app's Auth page), which signs every webhook; or set secret_file"
            };
            problems.push(ConfigProblem::new(format!("{key}.secret"), message));
        }
        problems.extend(check_replay_window(key, s));
        problems.extend(check_ticket_url(key, s.ticket_url.as_deref()));
        let public_url = match s
            .public_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/'))
        {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.to_string())
            }
            _ => {
                problems.push(ConfigProblem::new(
                    format!("{key}.public_url"),
                    "is required: the scheme and host HubSpot calls, e.g. https://csat.example.com (HubSpot signs the full URL, and behind a proxy we only see the path)",
                ));
                None
            }
        };
        let client = match &s.api {
            None => {
                problems.push(ConfigProblem::new(
                    format!("{key}.api"),
                    "is required: HubSpot webhooks carry only ids, so every rating is fetched; add [sources.api] with base_url = \"https://api.hubapi.com\" and token (a private app token with crm.objects.feedback_submissions.read)",
                ));
                None
            }
            Some(api) => {
                problems.extend(refuse_keys(
                    &format!("{key}.api"),
                    "hubspot",
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
                        "is required: the private app's access token (pat-…) with the crm.objects.feedback_submissions.read scope; or set token_file",
                    ));
                }
                match (base_url(key, api, "https://api.hubapi.com"), &api.token) {
                    (Ok(base_url), Some(token)) => Some(HubspotClient {
                        base_url,
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
        match (&s.secret, public_url, client) {
            (Some(secret), Some(public_url), Some(client)) if problems.is_empty() => {
                Ok(HubspotSource {
                    secret: secret.clone(),
                    public_url,
                    window_ms: replay_window_ms(s),
                    ticket_url: s.ticket_url.clone(),
                    client,
                })
            }
            _ => Err(problems),
        }
    }
}

impl Source for HubspotSource {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        signature::verify(&self.secret, &self.public_url, request, self.window_ms)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        payload::read_events(&parse_json(request.body)?)
    }

    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(async move {
            if reference.kind != payload::SUBMISSION_REF {
                return Err(FetchError::permanent(format!(
                    "a HubSpot source cannot fetch a {:?}",
                    reference.kind
                )));
            }
            self.client
                .submission(http, &reference.id, self.ticket_url.as_deref())
                .await
        })
    }

    /// HubSpot sources always have API credentials (webhooks need them).
    fn can_poll(&self) -> bool {
        true
    }

    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(poller::poll_page(
            &self.client,
            self.ticket_url.as_deref(),
            http,
            request,
        ))
    }
}
