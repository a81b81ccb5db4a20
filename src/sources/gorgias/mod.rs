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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::signature::Scheme;
use super::http_api::base_url;
use super::settings::api_timeout;
use super::{
    HelpdeskApi, ParseError, Parsed, SignatureError, SourceTable, Webhook, WebhookRequest,
    parse_json,
};
use crate::settings::{ConfigProblem, optional_duration};
use client::GorgiasClient;

/// A Gorgias source's own keys (the shared ones are in
/// [`crate::sources::settings::SharedSettings`]).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GorgiasSettings {
    /// The header the HTTP integration sends the token in. Default
    /// `X-Csatwatch-Token`.
    pub signature_header: Option<String>,
    /// `[sources.api]`: fetching surveys a body only names, and polling.
    pub api: Option<GorgiasApiSettings>,
}

/// `[sources.api]` of a Gorgias source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GorgiasApiSettings {
    /// `https://{account}.gorgias.com`.
    pub base_url: String,
    /// The email address of the user the API key belongs to.
    pub email: Option<String>,
    /// A REST API key (Settings → REST API), sent as basic auth `email:api_key`.
    #[schemars(with = "Option<String>")]
    pub api_key: Option<SecretString>,
    /// Read the API key from this file instead.
    pub api_key_file: Option<PathBuf>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub request_timeout: Option<Duration>,
}

/// Builds a Gorgias source from its table.
pub fn build(table: &SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    GorgiasSource::from_settings(table).map(|s| Arc::new(s) as _)
}

/// A configured Gorgias source.
#[derive(Debug)]
pub struct GorgiasSource {
    secret: SecretString,
    scheme: Scheme,
    ticket_url: Option<String>,
    client: Option<GorgiasClient>,
}

impl GorgiasSource {
    /// Builds the source from its table, reporting every problem with its key.
    pub fn from_settings(t: &SourceTable) -> Result<Self, Vec<ConfigProblem>> {
        let (own, mut problems) = t.settings::<GorgiasSettings>();
        problems.extend(t.check_ticket_url());
        let token = t.token_scheme(
            own.signature_header.as_deref(),
            "the HTTP integration's",
            &mut problems,
        );
        let client = own.api.and_then(|api| client(t, api, &mut problems));
        match token {
            Some((secret, scheme)) if problems.is_empty() => Ok(GorgiasSource {
                secret,
                scheme,
                ticket_url: t.shared.ticket_url.clone(),
                client,
            }),
            _ => Err(problems),
        }
    }
}

/// Reads `[sources.api]`: base URL, the user's email and a REST API key.
fn client(
    t: &SourceTable,
    api: GorgiasApiSettings,
    problems: &mut Vec<ConfigProblem>,
) -> Option<GorgiasClient> {
    let api_key = t.secret(
        "api.api_key",
        api.api_key,
        api.api_key_file.as_deref(),
        problems,
    );
    if api_key.is_none() && api.api_key_file.is_none() {
        problems.push(ConfigProblem::new(
            t.key_of("api.api_key"),
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
            t.key_of("api.email"),
            "is required: the email address of the Gorgias user the API key belongs to",
        ));
    }
    let base_url = base_url(&t.key, &api.base_url, "https://acme.gorgias.com")
        .map_err(|p| problems.push(p))
        .ok()?;
    Some(GorgiasClient {
        base_url,
        email: email?.to_string(),
        api_key: api_key?,
        timeout: api_timeout(api.request_timeout),
        ticket_url: t.shared.ticket_url.clone(),
    })
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

impl Webhook for GorgiasSource {
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
                *delivery_id = Some(super::receipt_delivery_id(references, request.now_ms));
            }
            _ => {}
        }
        Ok(parsed)
    }

    fn actions(&self) -> Option<Arc<dyn super::actions::TicketActions>> {
        self.client.as_ref().map(actions::from_client)
    }

    fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.client.as_ref().map(|c| c as &dyn HelpdeskApi)
    }
}
