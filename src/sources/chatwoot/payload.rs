//! The `message_updated` body (`Message#webhook_data` merged with `event`)
//! and the CSAT answer in it. Field paths: `event`, `id` (message),
//! `content_type` = `input_csat`,
//! `content_attributes.submitted_values.csat_survey_response.{rating,
//! feedback_message}`, `content_attributes.assigned_agent_id`,
//! `conversation{display_id, id, meta{assignee, sender, team}}`,
//! `account{id}`, `sender`, `created_at`.
//!
//! The conversation is named by `display_id` (the number agents see and
//! the REST API uses) when sent, else `id` (which of the two `id` is, is
//! [U]). The rating key is the survey message's id: a changed answer
//! updates the same message, so it stays one rating.

use serde_json::Value;

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::{first_text, integer_at, text_at, time_at};
use crate::sources::{ParseError, Parsed, describe_value, fill_ticket_url};

const ANSWER: &str = "/content_attributes/submitted_values/csat_survey_response";

/// Reads a verified delivery. `signed_at_ms` is the signature timestamp,
/// used to order changes when the body carries no time of its own.
pub fn read(
    body: &Value,
    ticket_url: Option<&str>,
    signed_at_ms: Option<i64>,
) -> Result<Parsed, ParseError> {
    if !body.is_object() {
        return Err(ParseError::new(
            "the body is not a JSON object; expected a Chatwoot webhook",
        ));
    }
    let Some(event_name) = text_at(body, "/event") else {
        return Err(ParseError::new("event is missing"));
    };
    let no_rating = |reason: String| Ok(Parsed::NoRating { reason });
    if event_name != "message_updated" {
        return no_rating(format!("event {event_name:?} carries no rating"));
    }
    if text_at(body, "/content_type").as_deref() != Some("input_csat") {
        return no_rating("a message that is not a CSAT survey".to_string());
    }
    let answer = body.pointer(ANSWER).filter(|v| !v.is_null());
    let Some(value) = answer
        .map(|a| {
            integer_at(
                a,
                "/rating",
                "content_attributes.submitted_values.csat_survey_response.rating",
            )
        })
        .transpose()?
        .flatten()
    else {
        return no_rating("the survey was sent but not answered".to_string());
    };
    let score = Score::new(Scale::FivePoint, value).ok_or_else(|| {
        ParseError::new(format!(
            "content_attributes.submitted_values.csat_survey_response.rating is {}; expected 1 to 5",
            describe_value(&Value::from(value))
        ))
    })?;
    let Some(message_id) = text_at(body, "/id") else {
        return Err(ParseError::new("id (the survey message's id) is missing"));
    };
    let Some(conversation_id) = first_text(body, &["/conversation/display_id", "/conversation/id"])
    else {
        return Err(ParseError::new("conversation.display_id is missing"));
    };

    let mut event = RatingEvent::new(conversation_id.clone(), score);
    event.rating_key = message_id;
    event.comment = answer.and_then(|a| text_at(a, "/feedback_message"));
    event.agent = first_text(
        body,
        &[
            "/conversation/meta/assignee/name",
            "/conversation/meta/assignee/email",
        ],
    )
    .or_else(|| {
        // The agent at the time the survey was sent (Chatwoot copies it
        // into the message because automations may unassign on resolve).
        text_at(body, "/content_attributes/assigned_agent_id").map(|id| format!("agent {id}"))
    });
    event.team = text_at(body, "/conversation/meta/team/name");
    event.customer = first_text(
        body,
        &[
            "/conversation/meta/sender/name",
            "/conversation/meta/sender/email",
            "/sender/name",
            "/sender/email",
        ],
    );
    event.brand = text_at(body, "/inbox/name");
    event.tags = body
        .pointer("/conversation/labels")
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    event.url = ticket_url.map(|template| {
        let with_account = match text_at(body, "/account/id") {
            Some(account) => template.replace("{account_id}", &account),
            None => template.to_string(),
        };
        fill_ticket_url(&with_account, &conversation_id)
    });
    // The message's own update time where sent [U]; else the signed time.
    event.updated_at_ms = time_at(body, "/updated_at", "updated_at")?.or(signed_at_ms);
    Ok(Parsed::Ratings {
        delivery_id: None,
        ratings: vec![event],
    })
}
