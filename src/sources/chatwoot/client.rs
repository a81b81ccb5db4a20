//! One Chatwoot account's API: where it is, the account and the token.

use std::time::Duration;

use secrecy::SecretString;

use crate::sources::{BoxFuture, FetchError, HelpdeskApi, PollPage, PollRequest};

/// How to call one Chatwoot account's API.
#[derive(Clone)]
pub struct ChatwootClient {
    /// `https://app.chatwoot.com` or a self-hosted address, no trailing slash.
    pub base_url: String,
    pub account_id: String,
    /// A user's (or agent bot's) access token, sent as `api_access_token`.
    pub token: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl HelpdeskApi for ChatwootClient {
    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(crate::sources::cursor::poll_window(self, http, request))
    }

    /// Chatwoot's list is read by creation time and a customer may answer
    /// the survey days later.
    fn default_overlap(&self) -> Duration {
        Duration::from_secs(14 * 24 * 3600)
    }

    /// Self-hosted Chatwoot allows 3,000 requests a minute per IP; Cloud's
    /// limit is unpublished, so polling stays modest.
    fn default_requests_per_minute(&self) -> u32 {
        60
    }
}
