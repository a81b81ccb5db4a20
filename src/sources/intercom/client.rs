//! Intercom's API: where it is and the access token.

use std::time::Duration;

use secrecy::SecretString;

use crate::sources::{BoxFuture, FetchError, HelpdeskApi, PollPage, PollRequest};

/// How to call Intercom's API.
#[derive(Clone)]
pub struct IntercomClient {
    /// `https://api.intercom.io` (or the EU/AU region's), no trailing slash.
    pub base_url: String,
    pub token: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl std::fmt::Debug for IntercomClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntercomClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl HelpdeskApi for IntercomClient {
    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(super::poller::poll_page(
            self,
            self.ticket_url.as_deref(),
            http,
            request,
        ))
    }

    /// The search filters on the modification time, so a change is found
    /// anyway: the overlap only covers the search index's lag.
    fn default_overlap(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }

    /// Intercom allows a private app 10,000 requests a minute; polling
    /// takes a twentieth.
    fn default_requests_per_minute(&self) -> u32 {
        500
    }
}
