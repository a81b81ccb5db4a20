//! Freshdesk, delivered by an automation rule ("Ticket updates", event
//! "Customer feedback is received") whose "Trigger webhook" action posts our
//! JSON body with a fixed secret header (docs/helpdesks/freshdesk.md).
//!
//! Freshdesk cannot sign, so the header is compared in constant time like
//! the generic `token` scheme. Freshdesk documents no placeholder for the
//! rating, so the body usually carries only the ticket: its rating is then
//! fetched from the API (`client.rs`), which also means a forged call
//! cannot invent a score.
//!
//! - `payload.rs`: the rule body and the API's rating object.
//! - `client.rs`: the API call.
//! - `poller.rs`: reading the account's ratings list (with `poll_interval`).

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
use client::FreshdeskClient;

/// A configured Freshdesk source.
#[derive(Debug)]
pub struct FreshdeskSource {
    secret: SecretString,
    scheme: Scheme,
    ticket_url: Option<String>,
    client: Option<FreshdeskClient>,
    /// `poll_interval` is set: ratings also arrive by poll, keyed by their
    /// id, so a webhook body without `rating.id` is fetched to learn it.
    polls: bool,
}

impl FreshdeskSource {
    /// Builds the source from its `[[sources]]` entry, reporting every
    /// problem with its key.
    pub fn from_settings(key: &str, s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        let (mut problems, header) =
            super::api::token_source_settings(key, "freshdesk", s, "the automation rule's");
        let client = match &s.api {
            None => None,
            Some(api) => {
                problems.extend(refuse_keys(
                    &format!("{key}.api"),
                    "freshdesk",
                    &[
                        ("token", api.token.is_some() || api.token_file.is_some()),
                        ("email", api.email.is_some()),
                        ("account_id", api.account_id.is_some()),
                    ],
                ));
                if api.api_key.is_none() && api.api_key_file.is_none() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.api.api_key"),
                        "is required: your Freshdesk API key (profile picture → Profile settings → View API key); or set api_key_file",
                    ));
                }
                match (
                    base_url(key, api, "https://acme.freshdesk.com"),
                    &api.api_key,
                ) {
                    (Ok(base_url), Some(api_key)) => Some(FreshdeskClient {
                        base_url,
                        api_key: api_key.clone(),
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
            Some(secret) if problems.is_empty() => Ok(FreshdeskSource {
                secret: secret.clone(),
                scheme: Scheme::Token {
                    header: header.trim().to_string(),
                    prefix: None,
                },
                ticket_url: s.ticket_url.clone(),
                polls: s.poll_interval.is_some() && client.is_some(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

impl Source for FreshdeskSource {
    fn kind(&self) -> &'static str {
        "freshdesk"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        self.scheme.verify(&self.secret, request)
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        let body = parse_json(request.body)?;
        Ok(
            match payload::read_rule_body(&body, self.ticket_url.as_deref())? {
                // A ticket-only body is the same bytes for every rating of
                // the ticket, so its hash cannot tell a changed rating from
                // a retry: the receipt time does. A retry then fetches and
                // finds the rating unchanged, which records nothing twice.
                Parsed::Fetch {
                    delivery_id: None,
                    references,
                } => Parsed::Fetch {
                    delivery_id: Some(super::api::receipt_delivery_id(&references, request.now_ms)),
                    references,
                },
                // A rendered value without the rating's id would be keyed
                // apart from the polled copy of the same rating (keyed by
                // id): fetch it, as for a ticket-only body.
                Parsed::Ratings { ratings, .. }
                    if self.polls && ratings.iter().any(|r| r.rating_key.is_empty()) =>
                {
                    let references: Vec<FetchRef> = ratings
                        .iter()
                        .map(|r| FetchRef {
                            kind: payload::TICKET_REF.to_string(),
                            id: r.conversation_id.clone(),
                        })
                        .collect();
                    Parsed::Fetch {
                        delivery_id: Some(super::api::receipt_delivery_id(
                            &references,
                            request.now_ms,
                        )),
                        references,
                    }
                }
                other => other,
            },
        )
    }

    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(async move {
            let Some(client) = &self.client else {
                return Err(FetchError::permanent(
                    "the rule body carries no rating and this source has no [sources.api] to fetch it with; add base_url and api_key (docs/helpdesks/freshdesk.md)",
                ));
            };
            if reference.kind != payload::TICKET_REF {
                return Err(FetchError::permanent(format!(
                    "a Freshdesk source cannot fetch a {:?}",
                    reference.kind
                )));
            }
            client
                .ticket_rating(http, &reference.id, self.ticket_url.as_deref())
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
                    "this Freshdesk source has no [sources.api] to poll with",
                )),
            }
        })
    }
}
