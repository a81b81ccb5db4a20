//! Zendesk's API: where it is and how to authenticate.
//!
//! Auth: `email` + `token` → Basic `{email}/token:{token}`; `token` alone →
//! Bearer (an OAuth access token).

use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::sources::{BoxFuture, FetchError, HelpdeskApi, PollPage, PollRequest};

/// How to call Zendesk's API.
#[derive(Clone)]
pub struct ZendeskClient {
    pub base_url: String,
    pub email: Option<String>,
    pub token: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl ZendeskClient {
    pub(super) fn authorization(&self) -> String {
        match &self.email {
            Some(email) => {
                let pair = format!("{email}/token:{}", self.token.expose_secret());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
            None => format!("Bearer {}", self.token.expose_secret()),
        }
    }
}

impl HelpdeskApi for ZendeskClient {
    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(crate::sources::cursor::poll_high_water(self, http, request))
    }

    /// A quarter of the smallest plan's limit (Zendesk Team: 200 requests a
    /// minute, shared by the whole account).
    fn default_requests_per_minute(&self) -> u32 {
        50
    }
}
