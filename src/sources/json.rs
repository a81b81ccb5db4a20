//! The JSON readers the helpdesk sources share: bodies, ids as numbers or
//! text, times as RFC 3339 or Unix seconds, template-rendered values.
//!
//! Nothing here knows a particular helpdesk.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ParseError;
use crate::domain::non_empty;

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

/// Reads a JSON body, naming the problem (line and column) if it is not JSON.
pub fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| {
        ParseError::new(format!(
            "the body is not valid JSON ({} at line {}, column {})",
            match e.classify() {
                serde_json::error::Category::Eof => "it ends early",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected data",
                serde_json::error::Category::Io => "read error",
            },
            e.line(),
            e.column()
        ))
    })
}

/// A JSON scalar as text: strings trimmed (empty is `None`), numbers and
/// booleans written out. Helpdesk templates render ids as strings or numbers
/// depending on how the operator quoted them, so both are accepted.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => crate::domain::non_empty(Some(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Describes a value for an error message without echoing customer text:
/// numbers and short words are shown, longer text only by its length.
pub fn describe_value(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() <= 24 => format!("{s:?}"),
        Value::String(s) => format!("a text of {} characters", s.chars().count()),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// A value a helpdesk template rendered: text, or `None` if it rendered
/// empty or not at all (`{{…}}` left in place: a placeholder this account
/// does not have, or a typo in the template).
pub fn template_text(value: &serde_json::Value) -> Option<String> {
    scalar_text(value).filter(|t| !(t.starts_with("{{") && t.ends_with("}}")))
}

/// A rating value a helpdesk template rendered: text for a string or a
/// number; `Ok(None)` when absent, null, empty or left unrendered (`{{…}}`),
/// which is an unanswered survey. An object, an array or a boolean is never
/// a rating: it is an error naming `field`, so the delivery is answered 400
/// and kept for `reprocess`, never mistaken for an unanswered survey (202).
pub fn rendered_rating(value: Option<&Value>, field: &str) -> Result<Option<String>, ParseError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ (Value::String(_) | Value::Number(_))) => Ok(template_text(v)),
        Some(other) => Err(ParseError::new(format!(
            "{field} is {}; expected the rating as text or a number",
            describe_value(other)
        ))),
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
    fn a_rating_of_the_wrong_type_is_an_error_not_an_unanswered_survey() {
        let body = json!({"o": {"x": 1}, "a": ["bad"], "b": true, "s": " bad ", "n": 4, "e": "", "p": "{{x}}"});
        for pointer in ["/o", "/a", "/b"] {
            let err = rendered_rating(body.pointer(pointer), "score").unwrap_err();
            assert!(err.to_string().starts_with("score is "), "{err}");
        }
        assert_eq!(
            rendered_rating(body.pointer("/s"), "s"),
            Ok(Some("bad".into()))
        );
        assert_eq!(
            rendered_rating(body.pointer("/n"), "n"),
            Ok(Some("4".into()))
        );
        for pointer in ["/e", "/p", "/missing"] {
            assert_eq!(rendered_rating(body.pointer(pointer), "x"), Ok(None));
        }
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
