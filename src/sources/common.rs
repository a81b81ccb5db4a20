//! Small helpers the helpdesk sources share: settings checks every fixed
//! helpdesk needs, and readers for the JSON values helpdesks send (ids as
//! numbers or text, times as RFC 3339 or Unix seconds).
//!
//! Nothing here knows a particular helpdesk.

use secrecy::SecretString;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ParseError, describe_value, scalar_text};
use crate::domain::non_empty;
use crate::settings::{ConfigProblem, SourceSettings};

/// The secret, or the problem saying where the helpdesk shows it.
pub fn require_secret(
    key: &str,
    s: &SourceSettings,
    where_to_find: &str,
) -> Result<SecretString, ConfigProblem> {
    s.secret.clone().ok_or_else(|| {
        let message = if s.secret_file.is_some() {
            "is required, and secret_file gave none (see the problem reported for it)".to_string()
        } else {
            format!("is required: {where_to_find}; or set secret_file to a file holding it")
        };
        ConfigProblem::new(format!("{key}.secret"), message)
    })
}

/// Keys that only some kinds read. A key the kind ignores would be a silent
/// surprise, so it is refused with its name unless `allowed` lists it.
pub fn refuse_foreign_keys(
    key: &str,
    s: &SourceSettings,
    kind: &str,
    allowed: &[&str],
) -> Vec<ConfigProblem> {
    let set = [
        ("scale", s.scale.is_some()),
        ("signature", s.signature.is_some()),
        ("signature_header", s.signature_header.is_some()),
        ("signature_prefix", s.signature_prefix.is_some()),
        ("signature_encoding", s.signature_encoding.is_some()),
        ("fields", s.fields.is_some()),
        ("allow_unsigned", s.allow_unsigned.is_some()),
    ];
    set.into_iter()
        .filter(|(name, is_set)| *is_set && !allowed.contains(name))
        .map(|(name, _)| {
            ConfigProblem::new(
                format!("{key}.{name}"),
                format!(
                    "does not apply to {kind} sources; remove it (docs/helpdesks/ lists each kind's keys)"
                ),
            )
        })
        .collect()
}

/// Text at a JSON pointer: strings trimmed, numbers written out, empty is `None`.
pub fn text_at(body: &Value, pointer: &str) -> Option<String> {
    body.pointer(pointer).and_then(scalar_text)
}

/// The first of `pointers` that holds text.
pub fn first_text(body: &Value, pointers: &[&str]) -> Option<String> {
    pointers.iter().find_map(|p| text_at(body, p))
}

/// "First Last" from two optional parts, or `None` if both are empty.
pub fn full_name(first: Option<String>, last: Option<String>) -> Option<String> {
    let joined = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    non_empty(Some(&joined))
}

/// A time as helpdesks send it: RFC 3339 text, or Unix seconds (below 1e11)
/// or milliseconds as a number or digits. `None` when absent or null; an
/// error naming `field` when present but unreadable.
pub fn time_at(body: &Value, pointer: &str, field: &str) -> Result<Option<i64>, ParseError> {
    let Some(value) = body.pointer(pointer).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let from_number = |n: f64| -> Option<i64> {
        (n.is_finite() && n >= 0.0).then_some(if n < 1e11 { n * 1000.0 } else { n } as i64)
    };
    let ms = match value {
        Value::Number(n) => n.as_f64().and_then(from_number),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => match OffsetDateTime::parse(s.trim(), &Rfc3339) {
            Ok(at) => i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok(),
            Err(_) => s.trim().parse::<f64>().ok().and_then(from_number),
        },
        _ => None,
    };
    ms.map(Some).ok_or_else(|| {
        ParseError::new(format!(
            "{field} is {}; expected an RFC 3339 time or Unix seconds",
            describe_value(value)
        ))
    })
}

/// An integer score at `pointer`: a JSON integer, or digits in a string.
/// `Ok(None)` when absent or null.
pub fn integer_at(body: &Value, pointer: &str, field: &str) -> Result<Option<i64>, ParseError> {
    let Some(value) = body.pointer(pointer).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let n = match value {
        // Templates render an unanswered value as empty text.
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| {
        ParseError::new(format!(
            "{field} is {}; expected a whole number",
            describe_value(value)
        ))
    })
}

/// Test helpers for the sources' own tests.
#[cfg(test)]
pub mod testing {
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    use crate::sources::WebhookRequest;

    /// Headers from name/value pairs.
    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    /// Runs `f` with a POST of `body` carrying `headers`, received at `now_ms`.
    pub fn with_request<R>(
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
        f: impl FnOnce(&WebhookRequest<'_>) -> R,
    ) -> R {
        let uri = Uri::from_static("/webhooks/test");
        let request = WebhookRequest {
            method: &Method::POST,
            uri: &uri,
            headers,
            body,
            now_ms,
        };
        f(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_read_in_every_form_and_errors_name_the_field() {
        let body = json!({"a": 1734537600, "b": "2024-12-18T16:00:00Z", "c": 1734537600000_i64, "d": "soon", "e": null});
        assert_eq!(time_at(&body, "/a", "a"), Ok(Some(1_734_537_600_000)));
        assert_eq!(time_at(&body, "/b", "b"), Ok(Some(1_734_537_600_000)));
        assert_eq!(time_at(&body, "/c", "c"), Ok(Some(1_734_537_600_000)));
        assert_eq!(time_at(&body, "/e", "e"), Ok(None));
        assert_eq!(time_at(&body, "/zz", "zz"), Ok(None));
        let err = time_at(&body, "/d", "data.when").unwrap_err();
        assert!(
            err.to_string().starts_with("data.when is \"soon\""),
            "{err}"
        );
    }

    #[test]
    fn integers_may_come_as_text() {
        let body = json!({"a": 2, "b": "4", "c": 2.5, "d": "two"});
        assert_eq!(integer_at(&body, "/a", "a"), Ok(Some(2)));
        assert_eq!(integer_at(&body, "/b", "b"), Ok(Some(4)));
        assert!(integer_at(&body, "/c", "c").is_err());
        assert!(
            integer_at(&body, "/d", "rating")
                .unwrap_err()
                .to_string()
                .starts_with("rating is")
        );
    }
}
