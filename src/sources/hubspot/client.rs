//! HubSpot's CRM API, as far as feedback submissions go: a private app's
//! access token (scope `crm.objects.feedback_submissions.read`) as a
//! bearer token.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::payload::{PROPERTIES, SubmissionPayload};
use crate::sources::http_api::get_json;
use crate::sources::{
    BoxFuture, FetchError, FetchRef, Fetched, HelpdeskApi, PollPage, PollRequest, fill_ticket_url,
};

/// A HubSpot API client for one portal.
// Debug shows no secret: SecretString prints as [REDACTED].
#[derive(Clone, Debug)]
pub struct HubspotClient {
    /// `https://api.hubapi.com`, no trailing slash.
    pub base_url: String,
    pub token: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl HubspotClient {
    /// One submission with its properties and associated tickets, from
    /// `GET /crm/v3/objects/feedback_submissions/{id}`.
    pub async fn submission(
        &self,
        http: &reqwest::Client,
        id: &str,
        ticket_url: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FetchError::permanent(format!(
                "HubSpot object ids are numbers; {id:?} cannot be fetched"
            )));
        }
        let request = http
            // The property names are plain identifiers: no encoding needed.
            .get(format!(
                "{}/crm/v3/objects/feedback_submissions/{id}?properties={}&associations=tickets",
                self.base_url,
                PROPERTIES.join(",")
            ))
            .bearer_auth(self.token.expose_secret());
        let what = format!("HubSpot feedback submission {id}");
        let submission: SubmissionPayload = get_json(request, self.timeout, &what).await?;
        Ok(to_fetched(&submission, id, ticket_url, &what))
    }
}

/// A submission as both paths record it (the webhook's fetch and the
/// poller's search), so a rating seen both ways is one rating.
pub fn to_fetched(
    submission: &SubmissionPayload,
    id: &str,
    ticket_url: Option<&str>,
    what: &str,
) -> Fetched {
    match submission.to_event(id) {
        Ok(mut event) => {
            // HubSpot's record links need the portal id, which the
            // object does not carry: only the operator's template links.
            event.url = ticket_url.map(|t| fill_ticket_url(t, &event.conversation_id));
            Fetched::Rating(Box::new(event))
        }
        // An answer we cannot place on a scale is recorded as no
        // rating, with the reason, rather than retried for days.
        Err(reason) => Fetched::NoRating(format!("{what}: {reason}")),
    }
}

impl HelpdeskApi for HubspotClient {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(async move {
            if reference.kind != super::payload::SUBMISSION_REF {
                return Err(FetchError::permanent(format!(
                    "a HubSpot source cannot fetch a {:?}",
                    reference.kind
                )));
            }
            self.submission(http, &reference.id, self.ticket_url.as_deref())
                .await
        })
    }

    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(crate::sources::cursor::poll_high_water(self, http, request))
    }

    /// The search filters on the modification time, so a change is found
    /// anyway: the overlap only covers the search index's lag.
    fn default_overlap(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }

    /// A quarter of the search API's 4 requests a second per token.
    fn default_requests_per_minute(&self) -> u32 {
        60
    }
}
