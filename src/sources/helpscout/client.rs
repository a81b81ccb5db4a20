//! Help Scout's Mailbox API 2.0 client: OAuth2 client credentials
//! (`POST /v2/oauth2/token`), a bearer token cached until shortly before it
//! expires, and one fresh token on a 401 (Help Scout revokes tokens when the
//! app's secret is rotated or the user is deactivated).
//!
//! Rate limits are account-wide per minute; a 429 carries
//! `X-RateLimit-Retry-After` (seconds), not the standard `Retry-After`.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::sources::http_api::status_error;
use crate::sources::{BoxFuture, FetchError, HelpdeskApi, PollPage, PollRequest};

/// Help Scout's own rate-limit header (seconds until the minute resets).
pub const RETRY_AFTER_HEADER: &str = "X-RateLimit-Retry-After";

/// A token is renewed this long before Help Scout says it expires, so a
/// request never goes out with one that dies on the way.
const EXPIRY_MARGIN_MS: i64 = 60_000;

/// The API client of one Help Scout account.
// Debug shows no secret: SecretString prints as [REDACTED].
#[derive(Debug)]
pub struct HelpScoutClient {
    /// `https://api.helpscout.net`, no trailing slash.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub timeout: Duration,
    /// The source's `ticket_url` template, for ratings' links.
    pub ticket_url: Option<String>,
    token: Mutex<Option<CachedToken>>,
}

#[derive(Debug)]
struct CachedToken {
    token: SecretString,
    expires_at_ms: i64,
}

#[derive(Deserialize)]
struct TokenPayload {
    access_token: String,
    /// Seconds; Help Scout issues tokens for about two days.
    #[serde(default)]
    expires_in: Option<i64>,
}

fn transport_error(e: &reqwest::Error, what: &str) -> FetchError {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    FetchError::retryable(format!("{what} {why}"))
}

/// `X-RateLimit-Retry-After`, or the standard `Retry-After`, in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .or_else(|| crate::sources::http_api::retry_after(headers))
}

impl HelpdeskApi for HelpScoutClient {
    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        Box::pin(crate::sources::cursor::poll_window(self, http, request))
    }

    /// Help Scout publishes no per-plan numbers; its legacy API allowed 200
    /// requests a minute, of which polling takes a quarter.
    fn default_requests_per_minute(&self) -> u32 {
        50
    }
}

impl HelpScoutClient {
    pub fn new(
        base_url: String,
        client_id: String,
        client_secret: SecretString,
        timeout: Duration,
        ticket_url: Option<String>,
    ) -> Self {
        HelpScoutClient {
            base_url,
            client_id,
            client_secret,
            timeout,
            ticket_url,
            token: Mutex::new(None),
        }
    }

    /// A valid access token: the cached one, or a new one from the token
    /// endpoint. The lock is held while fetching so that two callers never
    /// ask for two tokens at once.
    pub(crate) async fn token(
        &self,
        http: &reqwest::Client,
        now_ms: i64,
    ) -> Result<SecretString, FetchError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.expires_at_ms > now_ms) {
            return Ok(t.token.clone());
        }
        let mut form = reqwest::Url::parse("form:/").expect("a valid URL");
        form.query_pairs_mut()
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose_secret());
        let what = "getting a Help Scout access token";
        let response = http
            .post(format!("{}/v2/oauth2/token", self.base_url))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.query().unwrap_or_default().to_string())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport_error(&e, what))?;
        let status = response.status();
        if matches!(status.as_u16(), 400 | 401 | 403) {
            return Err(FetchError::permanent(format!(
                "Help Scout refused the app's credentials (HTTP {}); check [sources.api] client_id and client_secret (My Apps in Help Scout), and that the app's user is active",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(status_error(status, retry_after(response.headers()), what));
        }
        let payload: TokenPayload = response.json().await.map_err(|_| {
            FetchError::retryable(format!("{what}: the answer has no access_token"))
        })?;
        let token = SecretString::from(payload.access_token);
        // Checked: the number comes from the network.
        let lifetime_ms = payload.expires_in.unwrap_or(3600).clamp(60, 24 * 3600) * 1000;
        *cached = Some(CachedToken {
            token: token.clone(),
            expires_at_ms: now_ms + lifetime_ms - EXPIRY_MARGIN_MS,
        });
        Ok(token)
    }

    /// `GET {base_url}{path}` with `query`, as JSON. A 401 drops the cached
    /// token and tries once more with a new one.
    pub async fn get<T: DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        path: &str,
        query: &[(&str, String)],
        now_ms: i64,
        what: &str,
    ) -> Result<T, FetchError> {
        let url = format!("{}{path}", self.base_url);
        for attempt in 0..2 {
            let token = self.token(http, now_ms).await?;
            let response = http
                .get(&url)
                .query(query)
                .bearer_auth(token.expose_secret())
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| transport_error(&e, &format!("fetching {what}")))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                // Expired early or revoked: forget it and get a new one.
                self.token.lock().await.take();
                continue;
            }
            if status.is_success() {
                return response.json::<T>().await.map_err(|_| {
                    FetchError::retryable(format!(
                        "the API's answer for {what} is not the expected JSON"
                    ))
                });
            }
            if status == StatusCode::FORBIDDEN {
                return Err(FetchError::permanent(format!(
                    "Help Scout refused {what} (HTTP 403): reports need the Plus or Pro plan, and the app's user needs access to reports"
                )));
            }
            return Err(status_error(status, retry_after(response.headers()), what));
        }
        Err(FetchError::permanent(format!(
            "Help Scout refused a fresh access token fetching {what} (HTTP 401); check [sources.api] client_id and client_secret"
        )))
    }
}
