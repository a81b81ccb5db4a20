//! DevRev's webhook envelope `{id, webhook_id, timestamp, type, <type>: {…}}`
//! and the `survey_response` inside it (fern-api-docs openapi-public.yaml):
//! `id`, `display_id`, `object` (the ticket or conversation), `survey`,
//! `recipient{display_name, email}`, `response` (free-form, e.g.
//! `{"rating": 4}`), `response_score`, `created_date`, `modified_date`.
//!
//! The score: `response_score` where present, else `response.rating`. The
//! CSAT snap-in answers 5..1; `response_score` is documented as 1–10 for
//! CSAT and NPS [U], so the source has a scale (`five_point` by default,
//! `nps` for 0–10 surveys) and a value off that scale is a 400 naming the
//! setting, kept for `reprocess` once the setting is fixed.

use serde_json::{Value, json};

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::{first_text, integer_at, text_at, time_at};
use crate::sources::{ParseError, Parsed, describe_value, fill_ticket_url};

/// Reads a verified delivery.
pub fn read(body: &Value, scale: Scale, ticket_url: Option<&str>) -> Result<Parsed, ParseError> {
    if !body.is_object() {
        return Err(ParseError::new(
            "the body is not a JSON object; expected a DevRev webhook event",
        ));
    }
    let Some(kind) = text_at(body, "/type") else {
        return Err(ParseError::new("type is missing"));
    };
    match kind.as_str() {
        "verify" => {
            let Some(challenge) = first_text(body, &["/verify/challenge", "/challenge"]) else {
                return Err(ParseError::new("verify.challenge is missing"));
            };
            return Ok(Parsed::Reply(json!({ "challenge": challenge })));
        }
        "survey_response_created" | "survey_response_updated" => {}
        other => {
            return Ok(Parsed::NoRating {
                reason: format!("event {other:?} carries no rating"),
            });
        }
    }
    let response = body
        .get(kind.as_str())
        .and_then(|e| e.get("survey_response"))
        .filter(|r| r.is_object())
        .ok_or_else(|| ParseError::new(format!("{kind}.survey_response is missing")))?;
    let path = format!("{kind}.survey_response");
    if time_at(body, "/timestamp", "timestamp")?.is_none() {
        return Err(ParseError::new(
            "timestamp is missing; DevRev's envelope always carries one",
        ));
    }
    let Some(event) = response_to_event(response, &path, scale, ticket_url)? else {
        return Ok(Parsed::NoRating {
            reason: "the survey response holds no score yet".to_string(),
        });
    };
    Ok(Parsed::Ratings {
        delivery_id: text_at(body, "/id"),
        ratings: vec![event],
    })
}

/// One `survey_response` object (a webhook's, or one of
/// `surveys.responses.list`) as a rating: the object rated is the
/// conversation and the response id the key. `None` when it holds no score
/// yet; `path` names the object in error messages.
pub fn response_to_event(
    response: &Value,
    path: &str,
    scale: Scale,
    ticket_url: Option<&str>,
) -> Result<Option<RatingEvent>, ParseError> {
    let Some(response_id) = text_at(response, "/id") else {
        return Err(ParseError::new(format!("{path}.id is missing")));
    };
    let Some(object) = text_at(response, "/object") else {
        return Err(ParseError::new(format!("{path}.object is missing")));
    };
    let value = match integer_at(
        response,
        "/response_score",
        &format!("{path}.response_score"),
    )? {
        Some(v) => Some(v),
        None => integer_at(
            response,
            "/response/rating",
            &format!("{path}.response.rating"),
        )?,
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let score = Score::new(scale, value).ok_or_else(|| {
        ParseError::new(format!(
            "{path}.response_score is {}, off the {scale} scale; set scale = \"nps\" on this source for 0–10 surveys, then run csatwatch reprocess",
            describe_value(&Value::from(value))
        ))
    })?;

    let mut event = RatingEvent::new(object.clone(), score);
    event.rating_key = response_id;
    event.comment = first_text(
        response,
        &["/response/comment", "/response/feedback", "/response/text"],
    );
    event.customer = first_text(
        response,
        &[
            "/recipient/display_name",
            "/recipient/full_name",
            "/recipient/email",
            "/recipient/id",
        ],
    );
    event.url = ticket_url.map(|t| fill_ticket_url(t, &object));
    event.rated_at_ms = time_at(response, "/created_date", &format!("{path}.created_date"))?;
    event.updated_at_ms = time_at(response, "/modified_date", &format!("{path}.modified_date"))?
        .or(event.rated_at_ms);
    Ok(Some(event))
}
