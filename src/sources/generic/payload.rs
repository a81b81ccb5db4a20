//! Reading any JSON body into a rating by JSON pointers (RFC 6901), as the
//! operator configured in `[sources.fields]`. Each error names the field and
//! its pointer, never the customer's text.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::GenericFields;
use crate::domain::{RatingEvent, Scale, Score};
use crate::settings::ConfigProblem;
use crate::sources::{ParseError, Parsed, describe_value, fill_ticket_url, scalar_text};

/// Why a delivery with no score is answered 202: e.g. a survey sent but not
/// answered yet.
pub const NO_SCORE: &str = "no score in the delivery";

/// The configured pointers, checked. Optional ones are `None` when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pointers {
    pub conversation_id: String,
    pub score: String,
    pub scale: Option<String>,
    pub rating_key: Option<String>,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    pub tags: Option<String>,
    pub url: Option<String>,
    pub rated_at: Option<String>,
    pub updated_at: Option<String>,
    pub delivery_id: Option<String>,
}

impl Pointers {
    /// Checks `[sources.fields]`: the two required pointers are present and
    /// not empty, and every pointer is empty or starts with `/`.
    pub fn from_settings(
        key: &str,
        fields: Option<&GenericFields>,
    ) -> Result<Self, Vec<ConfigProblem>> {
        let empty = GenericFields::default();
        let f = fields.unwrap_or(&empty);
        let mut problems = Vec::new();
        let mut check = |name: &str, pointer: &Option<String>, required: bool| -> Option<String> {
            let field_key = format!("{key}.fields.{name}");
            let example = if name == "score" {
                "/rating/score"
            } else {
                "/ticket/id"
            };
            match pointer.as_deref() {
                None | Some("") if required => {
                    problems.push(ConfigProblem::new(
                        field_key,
                        format!("is required: a JSON pointer to the {name} in the body, e.g. {name} = \"{example}\""),
                    ));
                    None
                }
                None => None,
                Some(p) if p.is_empty() || p.starts_with('/') => Some(p.to_string()),
                Some(p) => {
                    problems.push(ConfigProblem::new(
                        field_key,
                        format!("{p:?} is not a JSON pointer: start it with '/', e.g. \"/{p}\" (use ~1 for a '/' inside a name)"),
                    ));
                    None
                }
            }
        };
        let pointers = Pointers {
            conversation_id: check("conversation_id", &f.conversation_id, true).unwrap_or_default(),
            score: check("score", &f.score, true).unwrap_or_default(),
            scale: check("scale", &f.scale, false),
            rating_key: check("rating_key", &f.rating_key, false),
            comment: check("comment", &f.comment, false),
            agent: check("agent", &f.agent, false),
            team: check("team", &f.team, false),
            customer: check("customer", &f.customer, false),
            company: check("company", &f.company, false),
            brand: check("brand", &f.brand, false),
            tags: check("tags", &f.tags, false),
            url: check("url", &f.url, false),
            rated_at: check("rated_at", &f.rated_at, false),
            updated_at: check("updated_at", &f.updated_at, false),
            delivery_id: check("delivery_id", &f.delivery_id, false),
        };
        if problems.is_empty() {
            Ok(pointers)
        } else {
            Err(problems)
        }
    }
}

/// Reads `body` by `pointers`. `default_scale` applies when the body names
/// none; `ticket_url` fills the link when the body carries none.
pub fn read(
    body: &Value,
    pointers: &Pointers,
    default_scale: Scale,
    ticket_url: Option<&str>,
) -> Result<Parsed, ParseError> {
    let at = |pointer: &Option<String>| {
        pointer
            .as_deref()
            .and_then(|p| body.pointer(p))
            .filter(|v| !v.is_null())
    };

    let score_value = match body.pointer(&pointers.score) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => Some(v),
    };
    let Some(score_value) = score_value else {
        return Ok(Parsed::NoRating {
            reason: NO_SCORE.to_string(),
        });
    };

    let conversation_id = match body.pointer(&pointers.conversation_id) {
        Some(v @ (Value::String(_) | Value::Number(_))) => scalar_text(v),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(wrong_type(
                "conversation_id",
                &pointers.conversation_id,
                other,
                "a string or a number",
            ));
        }
    }
    .ok_or_else(|| {
        ParseError::new(format!(
            "conversation_id ({}) is missing or empty",
            pointers.conversation_id
        ))
    })?;

    let scale = match at(&pointers.scale) {
        None => default_scale,
        Some(v) => {
            let name = scalar_text(v).unwrap_or_default();
            name.parse::<Scale>().map_err(|_| {
                ParseError::new(format!(
                    "scale ({}) is {}; use one of binary, two_point, three_point, five_point, freshdesk, nps, ces",
                    pointers.scale.as_deref().unwrap_or_default(),
                    describe_value(v)
                ))
            })?
        }
    };
    let score = read_score(score_value, &pointers.score, scale)?;

    let text = |name: &str, pointer: &Option<String>| -> Result<Option<String>, ParseError> {
        match at(pointer) {
            None => Ok(None),
            Some(v @ (Value::String(_) | Value::Number(_))) => Ok(scalar_text(v)),
            Some(other) => Err(wrong_type(
                name,
                pointer.as_deref().unwrap_or_default(),
                other,
                "text",
            )),
        }
    };

    let mut event = RatingEvent::new(conversation_id, score);
    event.rating_key = text("rating_key", &pointers.rating_key)?.unwrap_or_default();
    event.comment = text("comment", &pointers.comment)?;
    event.agent = text("agent", &pointers.agent)?;
    event.team = text("team", &pointers.team)?;
    event.customer = text("customer", &pointers.customer)?;
    event.company = text("company", &pointers.company)?;
    event.brand = text("brand", &pointers.brand)?;
    event.tags = read_tags(
        at(&pointers.tags),
        pointers.tags.as_deref().unwrap_or_default(),
    )?;
    event.url = text("url", &pointers.url)?
        .or_else(|| ticket_url.map(|t| fill_ticket_url(t, &event.conversation_id)));
    event.rated_at_ms = read_time(
        "rated_at",
        at(&pointers.rated_at),
        pointers.rated_at.as_deref(),
    )?;
    event.updated_at_ms = read_time(
        "updated_at",
        at(&pointers.updated_at),
        pointers.updated_at.as_deref(),
    )?;
    let delivery_id = text("delivery_id", &pointers.delivery_id)?;
    Ok(Parsed::Ratings {
        delivery_id,
        ratings: vec![event],
    })
}

fn wrong_type(name: &str, pointer: &str, value: &Value, expected: &str) -> ParseError {
    let found = match value {
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null => "null",
        Value::String(_) => "text",
        Value::Number(_) => "a number",
    };
    ParseError::new(format!(
        "{name} ({pointer}) is {found}; expected {expected}"
    ))
}

/// A number, or a word the scale knows ("bad", "Not good"), on `scale`.
fn read_score(value: &Value, pointer: &str, scale: Scale) -> Result<Score, ParseError> {
    let raw = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => {
            return Err(wrong_type(
                "score",
                pointer,
                other,
                "a number or a word such as good or bad",
            ));
        }
    };
    scale
        .parse_value(&raw)
        .and_then(|v| Score::new(scale, v))
        .ok_or_else(|| {
            ParseError::new(format!(
                "score {} is not on the {scale} scale ({})",
                match value {
                    Value::Number(n) => n.to_string(),
                    other => describe_value(other),
                },
                scale_values(scale)
            ))
        })
}

/// The values of each scale, for error messages and the docs' table.
pub fn scale_values(scale: Scale) -> &'static str {
    match scale {
        Scale::Binary => "0..=1, or good/bad",
        Scale::TwoPoint => "1..=2, or bad/good",
        Scale::ThreePoint => "1..=3, or not good/okay/great",
        Scale::FivePoint => "1..=5",
        Scale::SignedSevenPoint => "103, 102, 101, 100, -101, -102, -103",
        Scale::Nps => "0..=10",
        Scale::Ces => "1..=7",
    }
}

/// An array of strings, or one comma-separated string.
fn read_tags(value: Option<&Value>, pointer: &str) -> Result<Vec<String>, ParseError> {
    let split = |s: &str| {
        s.split(',')
            .filter_map(|t| scalar_text(&Value::from(t)))
            .collect::<Vec<_>>()
    };
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(split(s)),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(_) | Value::Number(_) => Ok(scalar_text(v)),
                other => Err(wrong_type("tags", pointer, other, "an array of strings")),
            })
            .filter_map(Result::transpose)
            .collect(),
        Some(other) => Err(wrong_type(
            "tags",
            pointer,
            other,
            "an array of strings or a comma-separated string",
        )),
    }
}

/// RFC 3339 text, or Unix seconds (below 1e11, i.e. before the year 5138)
/// or milliseconds, as a number or as digits in a string (templates render
/// everything as text).
fn read_time(
    name: &str,
    value: Option<&Value>,
    pointer: Option<&str>,
) -> Result<Option<i64>, ParseError> {
    let Some(value) = value else { return Ok(None) };
    let from_number = |n: f64| -> Option<i64> {
        (n.is_finite() && n >= 0.0).then_some(if n < 1e11 { n * 1000.0 } else { n } as i64)
    };
    let ms = match value {
        Value::Number(n) => n.as_f64().and_then(from_number),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match OffsetDateTime::parse(s, &Rfc3339) {
                Ok(at) => i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok(),
                Err(_) => s.parse::<f64>().ok().and_then(from_number),
            }
        }
        _ => None,
    };
    ms.map(Some).ok_or_else(|| {
        ParseError::new(format!(
            "{name} ({}) is not an RFC 3339 time or Unix seconds or milliseconds",
            pointer.unwrap_or_default()
        ))
    })
}
