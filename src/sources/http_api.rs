//! What every helpdesk API client shares: checking `api.base_url`, and
//! turning an HTTP answer into a [`FetchError`] the fetcher can act on
//! (retry later, or give up with a message an operator can follow).
//!
//! Each helpdesk's own calls live in its folder's `client.rs`. Nothing here
//! logs: errors carry status codes and ids, never credentials or bodies.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::FetchError;
use crate::settings::ConfigProblem;

/// Checks `base_url`: an http(s) URL. The trailing slash is dropped so
/// paths can be appended as written.
pub fn base_url(key: &str, url: &str, example: &str) -> Result<String, ConfigProblem> {
    let trimmed = url.trim().trim_end_matches('/');
    match Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
            Ok(trimmed.to_string())
        }
        _ => Err(ConfigProblem::new(
            format!("{key}.api.base_url"),
            format!("must be an http(s) URL, e.g. {example}"),
        )),
    }
}

/// Sends `request` and reads a JSON answer, mapping failures:
///
/// - timeouts, connection errors, 5xx, 429 (with `Retry-After`) and an
///   answer that is not the expected JSON: retryable;
/// - 401 and 403: permanent, pointing at `[sources.api]`;
/// - 404 and other 4xx: permanent.
///
/// `what` names the object for messages (`HubSpot feedback submission 123`).
pub async fn get_json<T: DeserializeOwned>(
    request: RequestBuilder,
    timeout: Duration,
    what: &str,
) -> Result<T, FetchError> {
    get_json_and_headers(request, timeout, what)
        .await
        .map(|(body, _)| body)
}

/// As [`get_json`], also returning the answer's headers (pollers read
/// rate-limit and `Link` headers from them).
pub async fn get_json_and_headers<T: DeserializeOwned>(
    request: RequestBuilder,
    timeout: Duration,
    what: &str,
) -> Result<(T, reqwest::header::HeaderMap), FetchError> {
    send_json(request, timeout, what, |headers, _| retry_after(headers)).await
}

/// As [`get_json_and_headers`], for helpdesks with rate-limit rules of
/// their own: on a 429, `wait` reads how long to wait from the answer's
/// headers and body (Intercom's reset time, HubSpot's policy name); other
/// failures take `Retry-After` as usual.
pub async fn send_json<T: DeserializeOwned>(
    request: RequestBuilder,
    timeout: Duration,
    what: &str,
    wait: impl FnOnce(&reqwest::header::HeaderMap, &[u8]) -> Option<Duration>,
) -> Result<(T, reqwest::header::HeaderMap), FetchError> {
    let response = request.timeout(timeout).send().await.map_err(|e| {
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "failed"
        };
        // reqwest's own message can contain the URL, never credentials
        // (they travel in headers), but we keep the message short anyway.
        FetchError::retryable(format!("fetching {what} {why}"))
    })?;
    let status = response.status();
    if status.is_success() {
        let headers = response.headers().clone();
        return response
            .json::<T>()
            .await
            .map(|body| (body, headers))
            .map_err(|e| {
                FetchError::retryable(format!(
                    "the API's answer for {what} is not the expected JSON ({})",
                    if e.is_decode() {
                        "unexpected shape"
                    } else {
                        "cut short"
                    }
                ))
            });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        return Err(status_error(status, wait(&headers, &body), what));
    }
    Err(status_error(status, retry_after(response.headers()), what))
}

/// The error for a non-2xx status.
pub fn status_error(status: StatusCode, retry_after: Option<Duration>, what: &str) -> FetchError {
    let code = status.as_u16();
    match code {
        401 | 403 => FetchError::permanent(format!(
            "the API refused the credentials fetching {what} (HTTP {code}); check [sources.api] (the key or token, and its scopes or permissions)"
        )),
        404 => FetchError::permanent(format!("{what} was not found (HTTP 404)")),
        429 => FetchError {
            message: format!("the API's rate limit was reached fetching {what} (HTTP 429)"),
            retryable: true,
            retry_after,
        },
        500..=599 => FetchError {
            message: format!("the API failed fetching {what} (HTTP {code})"),
            retryable: true,
            retry_after,
        },
        _ => FetchError::permanent(format!("the API answered HTTP {code} fetching {what}")),
    }
}

/// `Retry-After` in seconds (Freshdesk, Gorgias and most others send
/// seconds; an HTTP date is ignored and the fetcher's backoff applies).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        // The helpdesk's number feeds clock arithmetic: an absurd one must
        // neither overflow it nor stop polling for ever.
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// A numeric header's value (`X-RateLimit-Remaining` and its spellings;
/// header names are case-insensitive).
pub fn header_number(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A time as RFC 3339 text in UTC, whole seconds (`2026-11-23T14:05:00Z`),
/// for APIs that filter on ISO-8601 times.
pub fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The longest wait a helpdesk's `Retry-After` is taken at.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_retry_or_give_up() {
        let e = status_error(StatusCode::INTERNAL_SERVER_ERROR, None, "x");
        assert!(e.retryable);
        let e = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7)),
            "x",
        );
        assert!(e.retryable);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        for code in [401, 403, 404, 400] {
            let e = status_error(StatusCode::from_u16(code).unwrap(), None, "x");
            assert!(!e.retryable, "{code}");
        }
        assert!(
            status_error(StatusCode::UNAUTHORIZED, None, "x")
                .message
                .contains("[sources.api]")
        );
    }

    #[test]
    fn a_base_url_must_be_http() {
        assert_eq!(
            base_url("s", "https://acme.freshdesk.com/", "e").unwrap(),
            "https://acme.freshdesk.com"
        );
        assert!(base_url("s", "acme.freshdesk.com", "e").is_err());
        assert!(base_url("s", "ftp://acme", "e").is_err());
    }
}
