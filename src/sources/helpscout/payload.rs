//! Help Scout's Rating object, in both spellings:
//!
//! - v2 (Mailbox API 2.0, `GET /v2/ratings/{id}`; the v2 webhook body is
//!   assumed to mirror it [U]): `id`, `conversationId`, `threadId`,
//!   `rating` ∈ great/okay/not_good/unknown, `comments`, `customer{…}`,
//!   `user{…}` (the agent whose reply was rated), `createdAt`, `modifiedAt`.
//! - v1 (deprecated 2021 but still seen): `ticketId` instead of
//!   `conversationId`, `rating` ∈ Great/Okay/Bad, `customer.emails[]`,
//!   `mailbox{id,name}`, no `user`.
//!
//! Every spelling is read case-insensitively.

use serde_json::Value;

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::{first_text, full_name, text_at, time_at};
use crate::sources::{ParseError, Parsed, describe_value, fill_ticket_url};

/// Reads a verified Rating body.
pub fn read(body: &Value, ticket_url: Option<&str>) -> Result<Parsed, ParseError> {
    if !body.is_object() {
        return Err(ParseError::new(
            "the body is not a JSON object; expected Help Scout's Rating object",
        ));
    }
    let Some(rating_id) = text_at(body, "/id") else {
        return Err(ParseError::new("id (the rating's id) is missing"));
    };
    let Some(conversation_id) = first_text(body, &["/conversationId", "/ticketId"]) else {
        return Err(ParseError::new(
            "conversationId is missing (v1 bodies name it ticketId)",
        ));
    };
    let raw = body
        .get("rating")
        .ok_or_else(|| ParseError::new("rating is missing"))?;
    let word = raw.as_str().unwrap_or("").trim();
    if raw.is_null()
        || (raw.is_string() && (word.is_empty() || word.eq_ignore_ascii_case("unknown")))
    {
        return Ok(Parsed::NoRating {
            reason: "the rating is unknown".to_string(),
        });
    }
    let value = Scale::ThreePoint
        .parse_value(word)
        .filter(|_| raw.is_string())
        .ok_or_else(|| {
            ParseError::new(format!(
                "rating is {}; expected great, okay or not_good (v1: Great, Okay, Bad)",
                describe_value(raw)
            ))
        })?;
    let score = Score::new(Scale::ThreePoint, value).expect("parse_value stays on the scale");

    let mut event = RatingEvent::new(conversation_id.clone(), score);
    // The rated reply is the key (see the module docs of `helpscout`): the
    // report the poller reads names the thread, never the rating id. A body
    // without a thread falls back to the rating id.
    event.rating_key = text_at(body, "/threadId").unwrap_or(rating_id);
    event.comment = text_at(body, "/comments");
    event.agent = full_name(
        text_at(body, "/user/firstName"),
        text_at(body, "/user/lastName"),
    )
    .or_else(|| first_text(body, &["/user/email", "/user/id"]));
    event.customer = full_name(
        text_at(body, "/customer/firstName"),
        text_at(body, "/customer/lastName"),
    )
    .or_else(|| {
        first_text(
            body,
            &[
                "/customer/email",
                "/customer/emails/0/value",
                "/customer/id",
            ],
        )
    });
    // The mailbox (inbox) is the closest thing Help Scout has to a team.
    event.team = first_text(body, &["/mailbox/name"]);
    // Help Scout's agent UI opens a conversation by id [U for the short form].
    let template =
        ticket_url.unwrap_or("https://secure.helpscout.net/conversation/{conversation_id}");
    event.url = Some(fill_ticket_url(template, &conversation_id));
    event.rated_at_ms = time_at(body, "/createdAt", "createdAt")?;
    event.updated_at_ms = time_at(body, "/modifiedAt", "modifiedAt")?.or(event.rated_at_ms);
    Ok(Parsed::Ratings {
        delivery_id: None,
        ratings: vec![event],
    })
}
