//! Intercom's `notification_event` envelope and the rating inside it.
//!
//! Field paths (OpenAPI 2.14 `conversation_rating`, webhook models page):
//! `topic`, `id` (the notification, same across Intercom's one retry),
//! `app_id`, `data.item.id` (the conversation or ticket),
//! `data.item.conversation_rating.{rating, remark, created_at, updated_at,
//! contact, teammate}`. Tickets' rating field is not documented [U]: it is
//! looked for under `conversation_rating`, `ticket_rating` and `rating`.

use serde_json::Value;

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::{first_text, integer_at, text_at, time_at};
use crate::sources::{ParseError, Parsed, describe_value, fill_ticket_url};

/// The topic of a conversation's rating.
pub const CONVERSATION_RATING: &str = "conversation.rating.added";
/// The topic of a ticket's rating.
pub const TICKET_RATING: &str = "ticket.rating.provided";

/// Reads a verified notification. `ticket_url` is the source's template,
/// which wins over the inbox link derived from `app_id`.
pub fn read(body: &Value, ticket_url: Option<&str>) -> Result<Parsed, ParseError> {
    if !body.is_object() {
        return Err(ParseError::new(
            "the body is not a JSON object; expected Intercom's notification_event",
        ));
    }
    let Some(topic) = text_at(body, "/topic") else {
        return Err(ParseError::new(
            "topic is missing; expected an Intercom notification_event",
        ));
    };
    let is_ticket = match topic.as_str() {
        CONVERSATION_RATING => false,
        TICKET_RATING => true,
        // `ping` (sent when the webhook is saved) and every other topic.
        other => {
            return Ok(Parsed::NoRating {
                reason: format!("topic {other:?} carries no rating"),
            });
        }
    };
    let item = body
        .pointer("/data/item")
        .filter(|v| v.is_object())
        .ok_or_else(|| ParseError::new("data.item is missing or not an object"))?;
    let app_id = text_at(body, "/app_id");
    let fallback_updated = time_at(body, "/created_at", "created_at")?;
    let Some(event) = read_item(
        item,
        is_ticket,
        app_id.as_deref(),
        ticket_url,
        fallback_updated,
    )?
    else {
        return Ok(Parsed::NoRating {
            reason: "the item has no rating yet".to_string(),
        });
    };
    Ok(Parsed::Ratings {
        delivery_id: text_at(body, "/id"),
        ratings: vec![event],
    })
}

/// Reads the rating of a conversation (or ticket) object, as the webhook
/// carries it in `data.item` and as `POST /conversations/search` returns
/// it, so the poller records exactly what the webhook would. `None` when
/// the item holds no rating yet. `app_id` links the inbox; without it (a
/// search result) only `ticket_url` gives a link. `fallback_updated_ms` is
/// the version time when the rating has no `updated_at`.
pub fn read_item(
    item: &Value,
    is_ticket: bool,
    app_id: Option<&str>,
    ticket_url: Option<&str>,
    fallback_updated_ms: Option<i64>,
) -> Result<Option<RatingEvent>, ParseError> {
    let Some(item_id) = text_at(item, "/id") else {
        return Err(ParseError::new("data.item.id is missing"));
    };
    let candidates: &[&str] = if is_ticket {
        &["ticket_rating", "conversation_rating", "rating"]
    } else {
        &["conversation_rating"]
    };
    let Some((field, rating)) = candidates
        .iter()
        .find_map(|name| item.get(*name).map(|v| (*name, v)))
    else {
        return Err(ParseError::new(format!(
            "data.item.{} is missing",
            candidates[0]
        )));
    };
    if rating.is_null() {
        return Ok(None);
    }
    if !rating.is_object() {
        return Err(ParseError::new(format!(
            "data.item.{field} is {}; expected an object",
            describe_value(rating)
        )));
    }
    let path = format!("data.item.{field}");
    let Some(value) = integer_at(rating, "/rating", &format!("{path}.rating"))? else {
        // Older API versions send the object with every field null when unrated.
        return Ok(None);
    };
    let score = Score::new(Scale::FivePoint, value).ok_or_else(|| {
        ParseError::new(format!(
            "{path}.rating is {}; expected 1 to 5",
            describe_value(&Value::from(value))
        ))
    })?;

    let mut event = RatingEvent::new(item_id.clone(), score);
    if is_ticket {
        // One rating per ticket: keyed by the ticket's number where sent.
        event.rating_key = first_text(item, &["/ticket_id", "/id"]).unwrap_or_default();
    }
    event.comment = text_at(rating, "/remark");
    event.agent = first_text(
        rating,
        &["/teammate/name", "/teammate/email", "/teammate/id"],
    )
    .or_else(|| text_at(item, "/admin_assignee_id"));
    event.team = first_text(item, &["/team_assignee/name", "/team_assignee_id"]);
    // Version 1.x names the customer `customer`, later versions `contact`.
    event.customer = first_text(
        rating,
        &[
            "/contact/name",
            "/contact/email",
            "/contact/id",
            "/customer/name",
            "/customer/email",
            "/customer/id",
        ],
    );
    event.tags = item
        .pointer("/tags/tags")
        .and_then(Value::as_array)
        .map(|tags| tags.iter().filter_map(|t| text_at(t, "/name")).collect())
        .unwrap_or_default();
    event.url = match (ticket_url, app_id) {
        (Some(template), _) => Some(fill_ticket_url(template, &item_id)),
        (None, Some(app)) => Some(fill_ticket_url(
            &format!(
                "https://app.intercom.com/a/inbox/{}/inbox/conversation/{{conversation_id}}",
                encode(app)
            ),
            &item_id,
        )),
        (None, None) => None,
    };
    // `created_at` is when the rating was requested; `replied_at` (search
    // naming) when given. A change moves `updated_at`.
    event.rated_at_ms = time_at(rating, "/replied_at", &format!("{path}.replied_at"))?;
    event.updated_at_ms = match time_at(rating, "/updated_at", &format!("{path}.updated_at"))? {
        Some(at) => Some(at),
        None => fallback_updated_ms,
    };
    Ok(Some(event))
}

/// An app id is alphanumeric; anything else is percent-encoded so it cannot
/// change the link's path.
fn encode(text: &str) -> String {
    fill_ticket_url("{conversation_id}", text)
}
