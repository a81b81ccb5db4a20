//! Freshdesk's API v2, as far as ratings go: HTTP basic auth with the
//! agent's API key as the user name and `X` as the password.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::payload::{RatingPayload, latest};
use crate::sources::http_api::get_json;
use crate::sources::{
    BoxFuture, FetchError, FetchRef, Fetched, HelpdeskApi, PollPage, PollRequest, fill_ticket_url,
};

/// A Freshdesk API client for one account.
// Debug shows no secret: SecretString prints as [REDACTED].
#[derive(Clone, Debug)]
pub struct FreshdeskClient {
    /// `https://acme.freshdesk.com`, no trailing slash.
    pub base_url: String,
    pub api_key: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl FreshdeskClient {
    /// A ticket's link: the source's `ticket_url`, else the agent portal's.
    pub(super) fn link(&self, ticket_id: &str) -> String {
        match &self.ticket_url {
            Some(template) => fill_ticket_url(template, ticket_id),
            None => format!("{}/a/tickets/{ticket_id}", self.base_url),
        }
    }

    /// The ticket's newest satisfaction rating, from
    /// `GET /api/v2/tickets/{id}/satisfaction_ratings` ("List all
    /// satisfaction ratings of a ticket"; the account-wide list has no
    /// ticket filter). An empty list is no rating yet.
    pub async fn ticket_rating(
        &self,
        http: &reqwest::Client,
        ticket_id: &str,
    ) -> Result<Fetched, FetchError> {
        if ticket_id.is_empty() || !ticket_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FetchError::permanent(format!(
                "Freshdesk ticket ids are numbers; {ticket_id:?} cannot be fetched"
            )));
        }
        let url = format!(
            "{}/api/v2/tickets/{ticket_id}/satisfaction_ratings",
            self.base_url
        );
        let request = http
            .get(url)
            .basic_auth(self.api_key.expose_secret(), Some("X"))
            .header(reqwest::header::ACCEPT, "application/json");
        let what = format!("the ratings of Freshdesk ticket {ticket_id}");
        let ratings: Vec<RatingPayload> = get_json(request, self.timeout, &what).await?;
        let link = self.link(ticket_id);
        Ok(
            match latest(&ratings).and_then(|r| r.to_event(ticket_id, Some(link))) {
                Some(event) => Fetched::Rating(Box::new(event)),
                None => Fetched::NoRating(format!(
                    "Freshdesk ticket {ticket_id} has no answered satisfaction rating yet"
                )),
            },
        )
    }
}

impl HelpdeskApi for FreshdeskClient {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(async move {
            if reference.kind != super::payload::TICKET_REF {
                return Err(FetchError::permanent(format!(
                    "a Freshdesk source cannot fetch a {:?}",
                    reference.kind
                )));
            }
            self.ticket_rating(http, &reference.id).await
        })
    }

    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(crate::sources::cursor::poll_window(self, http, request))
    }

    /// A quarter of the Growth plan's 200 requests a minute (a trial
    /// account has 50, and automation webhooks count against the same limit).
    fn default_requests_per_minute(&self) -> u32 {
        50
    }
}
