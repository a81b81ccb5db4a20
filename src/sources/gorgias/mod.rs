//! Gorgias, delivered by an HTTP integration that a Rule on the
//! `satisfaction-survey-responded` event calls (docs/helpdesks/gorgias.md).
//! HTTP integrations have no survey trigger of their own, and where a plan
//! has no such Rule, polling (`poller.rs`) is the only way.
//!
//! Gorgias cannot sign; its integrations send fixed custom headers, so the
//! token header is compared in constant time like the generic `token`
//! scheme. A body that names the survey without its score is completed
//! from the API (`client.rs`).
//!
//! - `payload.rs`: the accepted bodies and the survey object.
//! - `client.rs`: the API call.
//! - `poller.rs`: reading the survey list (with `poll_interval`).

pub mod actions;
pub mod client;
pub mod payload;
pub mod poller;

#[cfg(test)]
mod tests;

use secrecy::SecretString;

use super::api::{base_url, refuse_keys};
use super::generic::signature::Scheme;
use super::{
    BoxFuture, FetchError, FetchRef, Fetched, ParseError, Parsed, PollPage, PollRequest,
    SignatureError, Source, WebhookRequest, parse_json,
};
use crate::settings::{ConfigProblem, SourceSettings};
use client::GorgiasClient;

/// A configured Gorgias source.
#[derive(Debug)]
pub struct GorgiasSource {
    secret: SecretString,
    scheme: Scheme,
    ticket_url: Option<String>,
    client: Option<GorgiasClient>,
}

impl GorgiasSource {
    /// Builds the source from its `[[sources]]` entry, reporting every
    /// problem with its key.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let (mut problems, header) =
            super::api::token_source_settings(key, "gorgias", s, "the HTTP integration's");
        let client = match &s.api {
            None => None,
            Some(api) => {
                problems.extend(refuse_keys(
                    &format!("{key}.api"),
                    "gorgias",
                    &[
                        ("token", api.token.is_some() || api.token_file.is_some()),
                        ("account_id", api.account_id.is_some()),
                    ],
                ));
                if api.api_key.is_none() && api.api_key_file.is_none() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.api.api_key"),
                        "is required: a REST API key (Settings → REST API in Gorgias); or set api_key_file",
                    ));
                }
                let email = api
                    .email
                    .as_deref()
                    .map(str::trim)
                    .filter(|e| !e.is_empty());
                if email.is_none() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.api.email"),
                        "is required: the email address of the Gorgias user the API key belongs to",
                    ));
                }
                match (
                    base_url(key, api, "https://acme.gorgias.com"),
                    &api.api_key,
                    email,
                ) {
                    (Ok(base_url), Some(api_key), Some(email)) => Some(GorgiasClient {
                        base_url,
                        email: email.to_string(),
                        api_key: api_key.clone(),
                        timeout: api.timeout(),
                    }),
                    (Err(problem), _, _) => {
                        problems.push(problem);
                        None
                    }
                    _ => None,
                }
            }
        };
        match &s.secret {
            Some(secret) if problems.is_empty() => Ok(GorgiasSource {
                secret: secret.clone(),
                scheme: Scheme::Token {
                    header: header.trim().to_string(),
                    prefix: None,
                },
                ticket_url: s.ticket_url.clone(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

impl GorgiasSource {
    /// The ticket's link: the `ticket_url` template, else the account's
    /// ticket page when the API base URL is known.
    fn link(&self, ticket_id: &str) -> Option<String> {
        match (&self.ticket_url, &self.client) {
            (Some(template), _) => Some(super::fill_ticket_url(template, ticket_id)),
            (None, Some(client)) => Some(format!("{}/app/ticket/{ticket_id}", client.base_url)),
            (None, None) => None,
        }
    }
}

impl Source for GorgiasSource {
    fn kind(&self) -> &'static str {
        "gorgias"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        self.scheme.verify(&self.secret, request)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        let body = parse_json(request.body)?;
        let mut parsed = payload::read_body(&body)?;
        match &mut parsed {
            Parsed::Ratings { ratings, .. } => {
                for rating in ratings.iter_mut().filter(|r| r.url.is_none()) {
                    rating.url = self.link(&rating.conversation_id);
                }
            }
            // A body naming only the survey is the same bytes for a changed
            // score (see Freshdesk): the receipt time tells them apart.
            Parsed::Fetch {
                delivery_id: delivery_id @ None,
                references,
            } => {
                *delivery_id = Some(super::api::receipt_delivery_id(references, request.now_ms));
            }
            _ => {}
        }
        Ok(parsed)
    }

    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(async move {
            let Some(client) = &self.client else {
                return Err(FetchError::permanent(
                    "the body carries no survey score and this source has no [sources.api] to fetch it with; add base_url, email and api_key (docs/helpdesks/gorgias.md)",
                ));
            };
            if reference.kind != payload::SURVEY_REF {
                return Err(FetchError::permanent(format!(
                    "a Gorgias source cannot fetch a {:?}",
                    reference.kind
                )));
            }
            client
                .survey(http, &reference.id, self.ticket_url.as_deref())
                .await
        })
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
                    "this Gorgias source has no [sources.api] to poll with",
                )),
            }
        })
    }
}
