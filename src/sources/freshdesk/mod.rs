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
//! - `client.rs`: the API (fetching a ticket's rating), the source's `HelpdeskApi`.
//! - `poller.rs`: reading the account's ratings list (with `poll_interval`).

pub mod actions;
pub mod client;
pub mod payload;
pub mod poller;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::signature::Scheme;
use super::http_api::base_url;
use super::settings::api_timeout;
use super::{
    FetchRef, HelpdeskApi, ParseError, Parsed, SignatureError, SourceTable, Webhook,
    WebhookRequest, parse_json,
};
use crate::settings::{ConfigProblem, optional_duration};
use client::FreshdeskClient;

/// A Freshdesk source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshdeskSettings {
    /// The header the automation rule sends the token in. Default
    /// `X-Csatwatch-Token`.
    pub signature_header: Option<String>,
    /// `true` when the rule body carries the rating itself (an account
    /// whose rule renders rating placeholders); then `[sources.api]` is
    /// optional. Default `false`: the documented body names only the
    /// ticket, so the rating is fetched and `[sources.api]` is required.
    pub rating_in_body: Option<bool>,
    /// `[sources.api]`: fetching ratings the rule body only names, and polling.
    pub api: Option<FreshdeskApiSettings>,
}

/// `[sources.api]` of a Freshdesk source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshdeskApiSettings {
    /// `https://{account}.freshdesk.com`.
    pub base_url: String,
    /// An agent's API key, sent with HTTP basic auth as `api_key:X`.
    #[schemars(with = "Option<String>")]
    pub api_key: Option<SecretString>,
    /// Read the API key from this file instead.
    pub api_key_file: Option<PathBuf>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub request_timeout: Option<Duration>,
}

/// Builds a Freshdesk source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    FreshdeskSource::from_settings(table).map(|s| Arc::new(s) as _)
}

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
    /// Builds the source from its table, reporting every problem with its key.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<FreshdeskSettings>();
        problems.extend(t.check_ticket_url());
        let token = t.token_scheme(
            own.signature_header.as_deref(),
            "the automation rule's",
            &mut problems,
        );
        let rating_in_body = own.rating_in_body.unwrap_or(false);
        let client = match own.api {
            None => {
                if !rating_in_body {
                    problems.push(ConfigProblem::new(
                        t.key_of("api"),
                        "is required: the documented rule body names only the ticket, so every rating is fetched from Freshdesk's API; add [sources.api] with base_url = \"https://<account>.freshdesk.com\" and api_key (profile picture → Profile settings → View API key). If your rule body carries the rating itself, set rating_in_body = true instead",
                    ));
                }
                None
            }
            Some(api) => {
                let api_key = t.secret(
                    "api.api_key",
                    api.api_key,
                    api.api_key_file.as_deref(),
                    &mut problems,
                );
                if api_key.is_none() && api.api_key_file.is_none() {
                    problems.push(ConfigProblem::new(
                        t.key_of("api.api_key"),
                        "is required: your Freshdesk API key (profile picture → Profile settings → View API key); or set api_key_file",
                    ));
                }
                match (
                    base_url(&t.key, &api.base_url, "https://acme.freshdesk.com"),
                    api_key,
                ) {
                    (Ok(base_url), Some(api_key)) => Some(FreshdeskClient {
                        base_url,
                        api_key,
                        timeout: api_timeout(api.request_timeout),
                        ticket_url: t.shared.ticket_url.clone(),
                    }),
                    (Err(problem), _) => {
                        problems.push(problem);
                        None
                    }
                    _ => None,
                }
            }
        };
        match token {
            Some((secret, scheme)) if problems.is_empty() => Ok(FreshdeskSource {
                secret,
                scheme,
                ticket_url: t.shared.ticket_url.clone(),
                polls: t.shared.poll_interval.is_some() && client.is_some(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

impl Webhook for FreshdeskSource {
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
                    delivery_id: Some(super::receipt_delivery_id(&references, request.now_ms)),
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
                        delivery_id: Some(super::receipt_delivery_id(&references, request.now_ms)),
                        references,
                    }
                }
                other => other,
            },
        )
    }

    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        self.client.as_ref().map(actions::from_client)
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
