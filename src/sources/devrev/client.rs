//! DevRev's API: where it is and the token.

use std::time::Duration;

use secrecy::SecretString;

use crate::domain::Scale;
use crate::sources::{BoxFuture, FetchError, HelpdeskApi, PollPage, PollRequest};

/// How to call DevRev's API.
#[derive(Clone)]
pub struct DevRevClient {
    /// `https://api.devrev.ai`, no trailing slash.
    pub base_url: String,
    /// A personal access token (or a service account's), sent as Bearer.
    pub token: SecretString,
    pub timeout: Duration,
    /// The source's survey scale, for polled responses.
    pub scale: Scale,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl HelpdeskApi for DevRevClient {
    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(crate::sources::cursor::poll_window(self, http, request))
    }

    /// DevRev publishes no number; polling stays at a conservative pace.
    fn default_requests_per_minute(&self) -> u32 {
        30
    }
}
