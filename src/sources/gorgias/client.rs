//! Gorgias's REST API, as far as surveys go: HTTP basic auth with the
//! user's email and a REST API key.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::payload::survey_from_api;
use crate::sources::http_api::get_json;
use crate::sources::{
    BoxFuture, FetchError, FetchRef, Fetched, HelpdeskApi, PollPage, PollRequest, fill_ticket_url,
};

/// A Gorgias API client for one account.
// Debug shows no secret: SecretString prints as [REDACTED].
#[derive(Clone, Debug)]
pub struct GorgiasClient {
    /// `https://acme.gorgias.com`, no trailing slash.
    pub base_url: String,
    pub email: String,
    pub api_key: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl GorgiasClient {
    /// A ticket's link: the source's `ticket_url`, else the helpdesk's.
    pub(super) fn link(&self, ticket_id: &str) -> String {
        match &self.ticket_url {
            Some(template) => fill_ticket_url(template, ticket_id),
            None => format!("{}/app/ticket/{ticket_id}", self.base_url),
        }
    }

    /// One survey, from `GET /api/satisfaction-surveys/{id}`. A survey
    /// without a score is no rating yet.
    pub async fn survey(
        &self,
        http: &reqwest::Client,
        id: &str,
    ) -> Result<Fetched, FetchError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FetchError::permanent(format!(
                "Gorgias survey ids are numbers; {id:?} cannot be fetched"
            )));
        }
        let request = http
            .get(format!("{}/api/satisfaction-surveys/{id}", self.base_url))
            .basic_auth(&self.email, Some(self.api_key.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json");
        let what = format!("Gorgias satisfaction survey {id}");
        let body: Value = get_json(request, self.timeout, &what).await?;
        let survey = survey_from_api(&body);
        let url = survey.ticket_id.as_deref().map(|ticket| self.link(ticket));
        match survey.into_event(url) {
            Ok(Some(event)) => Ok(Fetched::Rating(Box::new(event))),
            Ok(None) => Ok(Fetched::NoRating(format!(
                "Gorgias satisfaction survey {id} has no score yet"
            ))),
            // The API answered something we cannot read: waiting will not
            // change it, so it is kept as failed with the field named.
            Err(e) => Err(FetchError::permanent(format!("{what}: {e}"))),
        }
    }
}

impl HelpdeskApi for GorgiasClient {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(async move {
            if reference.kind != super::payload::SURVEY_REF {
                return Err(FetchError::permanent(format!(
                    "a Gorgias source cannot fetch a {:?}",
                    reference.kind
                )));
            }
            self.survey(http, &reference.id).await
        })
    }

    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(crate::sources::cursor::poll_window(self, http, request))
    }

    /// Gorgias's list is read by survey creation; answers come days later.
    fn default_overlap(&self) -> std::time::Duration {
        std::time::Duration::from_secs(7 * 24 * 3600)
    }

    /// A quarter of what Gorgias allows an API key: 40 requests per 20 s
    /// (120 a minute).
    fn default_requests_per_minute(&self) -> u32 {
        30
    }
}
