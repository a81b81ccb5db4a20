//! Intercom's API: where it is and the access token.

use std::time::Duration;

use secrecy::SecretString;

use crate::sources::{BoxFuture, FetchError, HelpdeskApi, PollPage, PollRequest};

/// How to call Intercom's API.
// Debug shows no secret: SecretString prints as [REDACTED].
#[derive(Clone, Debug)]
pub struct IntercomClient {
    /// `https://api.intercom.io` (or the EU/AU region's), no trailing slash.
    pub base_url: String,
    pub token: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
}

impl HelpdeskApi for IntercomClient {
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

    /// Intercom allows a private app 10,000 requests a minute; polling
    /// takes a twentieth.
    fn default_requests_per_minute(&self) -> u32 {
        500
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let client = IntercomClient {
            base_url: "https://api.intercom.io".into(),
            token: SecretString::from("tok-very-secret".to_string()),
            timeout: Duration::from_secs(1),
            ticket_url: None,
        };
        let shown = format!("{client:?}");
        assert!(!shown.contains("tok-very-secret"), "{shown}");
        assert!(shown.contains("api.intercom.io"), "{shown}");
    }
}
