//! Zendesk's survey response, wherever it sits in the body. The webhook
//! payload of the "Survey response submitted" event is not published [U],
//! so every plausible shape is read:
//!
//! - our trigger body (docs/helpdesks/zendesk_csat.md): `ticket{…}`,
//!   `assignee`, `requester`, and `survey_response{id, rating, options,
//!   comment, updated_at}`;
//! - an event-webhook envelope (`type`, `subject: "zen:ticket:N"`, `detail`,
//!   `event`) holding the response under `survey_response`, `detail` or `event`;
//! - the API object (`GET /api/v2/guide/{locale}/survey_responses/{id}`):
//!   `id`, `answers[]`, `subject_zrns: ["zrn:ticket:99"]`, `expires_at`.
//!
//! The scale comes from the number of options (2, 3 or 5) where the body
//! says it, else from the source's `scale`.

use serde_json::Value;

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::{first_text, integer_at, text_at, time_at};
use crate::sources::{ParseError, Parsed, describe_value, fill_ticket_url};

/// Reads a verified delivery.
pub fn read(
    body: &Value,
    default_scale: Scale,
    ticket_url: Option<&str>,
) -> Result<Parsed, ParseError> {
    if !body.is_object() {
        return Err(ParseError::new(
            "the body is not a JSON object; paste the trigger body from docs/helpdesks/zendesk_csat.md",
        ));
    }
    if let Some(kind) = text_at(body, "/type")
        && (!kind.contains("survey") || kind.contains("offered"))
    {
        return Ok(Parsed::NoRating {
            reason: format!("event {kind:?} carries no survey answer"),
        });
    }
    let response = [
        "/survey_response",
        "/detail/survey_response",
        "/event/survey_response",
        "/detail",
        "/event",
        "",
    ]
    .iter()
    .filter_map(|p| body.pointer(p))
    .find(|r| r.get("answers").is_some() || r.get("rating").is_some())
    .ok_or_else(|| {
        ParseError::new("survey_response is missing (no object with answers or a rating)")
    })?;
    let Some(response_id) = text_at(response, "/id") else {
        return Err(ParseError::new("survey_response.id is missing"));
    };
    let Some(ticket_id) = text_at(body, "/ticket/id").or_else(|| ticket_from_zrns(body, response))
    else {
        return Err(ParseError::new(
            "ticket.id is missing (nor does subject_zrns name a ticket)",
        ));
    };
    if ticket_id.starts_with("{{") {
        return Err(ParseError::new(
            "ticket.id is an unrendered placeholder; send the body from a trigger, not by hand",
        ));
    }
    let Some(answer) = rating_answer(response) else {
        return Ok(Parsed::NoRating {
            reason: "the survey was offered or skipped, not answered".to_string(),
        });
    };
    let Some(value) = integer_at(answer, "/rating", "survey_response.rating")? else {
        return Ok(Parsed::NoRating {
            reason: "the survey was offered or skipped, not answered".to_string(),
        });
    };
    let scale = match options_count(answer)? {
        None => default_scale,
        Some(2) => Scale::TwoPoint,
        Some(3) => Scale::ThreePoint,
        Some(5) => Scale::FivePoint,
        Some(n) => {
            return Err(ParseError::new(format!(
                "survey_response.options is {n}; Zendesk CSAT scales have 2, 3 or 5 options"
            )));
        }
    };
    let score = Score::new(scale, value).ok_or_else(|| {
        ParseError::new(format!(
            "survey_response.rating is {}, off the {scale} scale",
            describe_value(&Value::from(value))
        ))
    })?;

    let mut event = RatingEvent::new(ticket_id.clone(), score);
    event.rating_key = response_id;
    event.comment = first_text(response, &["/comment"]).or_else(|| open_answer(response));
    event.agent = first_text(body, &["/assignee/name", "/assignee/email"]);
    event.team = text_at(body, "/ticket/group");
    event.brand = text_at(body, "/ticket/brand");
    event.customer = first_text(body, &["/requester/name", "/requester/email"])
        .or_else(|| text_at(response, "/responder_id"));
    event.url = text_at(body, "/ticket/link")
        .filter(|l| l.starts_with("http"))
        .or_else(|| ticket_url.map(|t| fill_ticket_url(t, &ticket_id)));
    event.rated_at_ms = time_at(answer, "/created_at", "survey_response.created_at")?;
    event.updated_at_ms = match time_at(answer, "/updated_at", "survey_response.updated_at")? {
        Some(at) => Some(at),
        None => time_at(response, "/updated_at", "survey_response.updated_at")?,
    };
    Ok(Parsed::Ratings {
        delivery_id: text_at(body, "/id").filter(|_| body.get("type").is_some()),
        ratings: vec![event],
    })
}

/// The answer holding the rating: the response itself (our trigger body)
/// or the first entry of `answers[]` with a `rating`.
fn rating_answer(response: &Value) -> Option<&Value> {
    if response.get("rating").is_some() {
        return Some(response);
    }
    response
        .get("answers")?
        .as_array()?
        .iter()
        .find(|a| a.get("rating").is_some_and(|r| !r.is_null()))
}

/// A free-text answer (`open_ended`) as the comment.
fn open_answer(response: &Value) -> Option<String> {
    response.get("answers")?.as_array()?.iter().find_map(|a| {
        (a.get("type").and_then(Value::as_str) == Some("open_ended"))
            .then(|| first_text(a, &["/text", "/value", "/comment"]))
            .flatten()
    })
}

/// How many options the rating question has, where the body says.
fn options_count(answer: &Value) -> Result<Option<i64>, ParseError> {
    if let Some(options) = answer
        .pointer("/question/options")
        .and_then(Value::as_array)
    {
        return Ok(Some(options.len() as i64));
    }
    for pointer in ["/options", "/scale", "/rating_scale", "/question/scale"] {
        if let Some(n) = integer_at(answer, pointer, "survey_response.options")? {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// The ticket in `zrn:ticket:99` / `zen:ticket:99` form.
fn ticket_from_zrns(body: &Value, response: &Value) -> Option<String> {
    let zrns = response
        .get("subject_zrns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .chain(body.get("subject").and_then(Value::as_str));
    zrns.into_iter().find_map(|z| {
        let id = z
            .strip_prefix("zrn:ticket:")
            .or_else(|| z.strip_prefix("zen:ticket:"))?;
        (!id.is_empty()).then(|| id.to_string())
    })
}
