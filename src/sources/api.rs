//! What every helpdesk API client shares: reading `[sources.api]`, and
//! turning an HTTP answer into a [`FetchError`] the fetcher can act on
//! (retry later, or give up with a message an operator can follow).
//!
//! Each helpdesk's own calls live in its folder's `client.rs`. Nothing here
//! logs: errors carry status codes and ids, never credentials or bodies.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::FetchError;
use crate::settings::{ApiSettings, ConfigProblem};

/// Checks `base_url`: an http(s) URL. The trailing slash is dropped so
/// paths can be appended as written.
pub fn base_url(key: &str, api: &ApiSettings, example: &str) -> Result<String, ConfigProblem> {
    let trimmed = api.base_url.trim().trim_end_matches('/');
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

/// The longest wait a helpdesk's `Retry-After` is taken at.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The settings every token-header source shares (Freshdesk, Gorgias):
/// the keys it refuses, its required secret (`whose` names where the token
/// is pasted on the helpdesk's side), the ticket link template, and the
/// header name (default `X-Csatwatch-Token`). Returns the problems found and
/// the header.
pub fn token_source_settings(
    key: &str,
    kind: &str,
    s: &crate::settings::SourceSettings,
    whose: &str,
) -> (Vec<ConfigProblem>, String) {
    let mut problems = refuse_keys(
        key,
        kind,
        &[
            ("scale", s.scale.is_some()),
            ("signature", s.signature.is_some()),
            ("signature_prefix", s.signature_prefix.is_some()),
            ("signature_encoding", s.signature_encoding.is_some()),
            ("fields", s.fields.is_some()),
            ("replay_window", s.replay_window.is_some()),
            ("public_url", s.public_url.is_some()),
        ],
    );
    if s.secret.is_none() {
        problems.push(missing_token(key, s, whose));
    }
    problems.extend(super::check_ticket_url(key, s.ticket_url.as_deref()));
    let header = s
        .signature_header
        .clone()
        .unwrap_or_else(|| super::generic::signature::DEFAULT_TOKEN_HEADER.to_string());
    if axum::http::HeaderName::from_bytes(header.trim().as_bytes()).is_err() {
        problems.push(ConfigProblem::new(
            format!("{key}.signature_header"),
            "is not a valid HTTP header name; e.g. X-Csatwatch-Token",
        ));
    }
    (problems, header)
}

/// Refuses keys that do not apply to `kind`: set, they would be silently
/// ignored, which hides a mistake.
pub fn refuse_keys(key: &str, kind: &str, keys: &[(&str, bool)]) -> Vec<ConfigProblem> {
    keys.iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| {
            ConfigProblem::new(
                format!("{key}.{name}"),
                format!("does not apply to {kind} sources; remove it (docs/helpdesks/{kind}.md lists the keys)"),
            )
        })
        .collect()
}

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
        let api = |url: &str| ApiSettings {
            base_url: url.into(),
            token: None,
            token_file: None,
            api_key: None,
            api_key_file: None,
            email: None,
            account_id: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            request_timeout: None,
        };
        assert_eq!(
            base_url("s", &api("https://acme.freshdesk.com/"), "e").unwrap(),
            "https://acme.freshdesk.com"
        );
        assert!(base_url("s", &api("acme.freshdesk.com"), "e").is_err());
        assert!(base_url("s", &api("ftp://acme"), "e").is_err());
    }
}

/// A helpdesk time as Unix milliseconds: RFC 3339 (`2015-08-28T09:08:16Z`),
/// the same without a zone read as UTC (Gorgias writes
/// `2024-03-16T14:00:00.000000`), or Unix seconds or milliseconds as digits
/// (HubSpot). `None` for anything else: times only order versions, so an
/// unreadable one is never fatal.
pub fn time_ms(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, PrimitiveDateTime};
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = text.parse().ok()?;
        // Seconds until the year 5138; milliseconds after.
        return if n < 100_000_000_000 {
            n.checked_mul(1000)
        } else {
            Some(n)
        };
    }
    let at = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        PrimitiveDateTime::parse(text, format)
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod time_tests {
    use super::time_ms;

    #[test]
    fn helpdesk_times_are_read_in_every_spelling() {
        assert_eq!(time_ms("2015-08-28T09:08:16Z"), Some(1_440_752_896_000));
        assert_eq!(
            time_ms("2015-08-28T09:08:16.000000"),
            Some(1_440_752_896_000)
        );
        assert_eq!(time_ms("2015-08-28T09:08:16"), Some(1_440_752_896_000));
        assert_eq!(time_ms("1440752896000"), Some(1_440_752_896_000));
        assert_eq!(time_ms("1440752896"), Some(1_440_752_896_000));
        assert_eq!(time_ms("yesterday"), None);
    }
}

/// A value a helpdesk template rendered: text, or `None` if it rendered
/// empty or not at all (`{{…}}` left in place: a placeholder this account
/// does not have, or a typo in the template).
pub fn template_text(value: &serde_json::Value) -> Option<String> {
    super::scalar_text(value).filter(|t| !(t.starts_with("{{") && t.ends_with("}}")))
}

/// The problem for a token source without its secret, saying where it goes.
pub fn missing_token(
    key: &str,
    s: &crate::settings::SourceSettings,
    sender: &str,
) -> ConfigProblem {
    let message = if s.secret_file.is_some() {
        "is required, and secret_file gave none (see the problem reported for it)".to_string()
    } else {
        format!(
            "is required: the token {sender} webhook sends in its X-Csatwatch-Token header (generate one with: openssl rand -hex 32); or set secret_file to a file holding it"
        )
    };
    ConfigProblem::new(format!("{key}.secret"), message)
}

/// A delivery id for a body that names what to fetch and nothing that
/// changes between two ratings: the references and the receipt time
/// (which a stored delivery keeps, so a background retry gets the same id).
pub fn receipt_delivery_id(references: &[super::FetchRef], now_ms: i64) -> String {
    let ids: Vec<&str> = references.iter().map(|r| r.id.as_str()).collect();
    format!("{}@{now_ms}", ids.join(","))
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
