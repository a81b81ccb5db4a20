//! Freshdesk's two shapes: the body our automation rule sends (our design,
//! published in docs/helpdesks/freshdesk.md, rendered by Freshdesk's
//! placeholders), and the satisfaction rating object of its API v2.
//!
//! Nothing here does I/O; `client.rs` fetches.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::{rendered_rating, template_text, time_ms};
use crate::sources::{FetchRef, ParseError, Parsed, describe_value, fill_ticket_url, scalar_text};

/// The kind of [`FetchRef`] this source fetches: a ticket's ratings.
pub const TICKET_REF: &str = "ticket";

/// Reads the rule's rendered body. With a rating value in it, the rating is
/// recorded as is; with only the ticket id, it is fetched from the API.
pub fn read_rule_body(body: &Value, ticket_url: Option<&str>) -> Result<Parsed, ParseError> {
    if !body.is_object() {
        return Err(ParseError::new(
            "the body is not a JSON object; paste the rule body from docs/helpdesks/freshdesk.md",
        ));
    }
    let text = |pointer: &str| body.pointer(pointer).and_then(template_text);
    let ticket_id = match body.pointer("/ticket/id").and_then(scalar_text) {
        None => {
            return Err(ParseError::new(
                "ticket.id is missing or empty; the rule body must include \"ticket\": {\"id\": \"{{ticket.id}}\"}",
            ));
        }
        Some(id) if template_text(&Value::from(id.as_str())).is_none() => {
            return Err(ParseError::new(
                "ticket.id is an unrendered placeholder; send the body from an automation rule, not by hand",
            ));
        }
        Some(id) => id,
    };
    let Some(raw) = rendered_rating(body.pointer("/rating/value"), "rating.value")? else {
        // The usual case: Freshdesk has no documented rating placeholder.
        return Ok(Parsed::Fetch {
            delivery_id: None,
            references: vec![FetchRef {
                kind: TICKET_REF.to_string(),
                id: ticket_id,
            }],
        });
    };
    let value = Scale::SignedSevenPoint.parse_value(&raw).ok_or_else(|| {
        ParseError::new(format!(
            "rating.value is {}; expected one of 103, 102, 101, 100, -101, -102, -103",
            describe_value(&Value::from(raw.as_str()))
        ))
    })?;
    let score = Score::new(Scale::SignedSevenPoint, value).expect("parse_value checks the scale");
    let mut event = RatingEvent::new(ticket_id, score);
    event.rating_key = text("/rating/id").unwrap_or_default();
    event.comment = text("/rating/feedback");
    event.agent = text("/ticket/agent/name").or_else(|| text("/ticket/agent/email"));
    event.team = text("/ticket/group");
    event.customer = text("/ticket/requester/name").or_else(|| text("/ticket/requester/email"));
    event.company = text("/ticket/company");
    event.tags = text("/ticket/tags")
        .map(|t| split_tags(&t))
        .unwrap_or_default();
    event.url = text("/ticket/url")
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .or_else(|| ticket_url.map(|t| fill_ticket_url(t, &event.conversation_id)));
    event.updated_at_ms = text("/rating/updated_at").and_then(|t| time_ms(&t));
    Ok(Parsed::Ratings {
        delivery_id: None,
        ratings: vec![event],
    })
}

/// `{{ticket.tags}}` renders comma-separated [U]; Freshdesk tags may hold
/// spaces, so only commas split.
fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// A satisfaction rating as Freshdesk's API v2 returns it
/// (`GET /api/v2/tickets/{id}/satisfaction_ratings` answers an array).
#[derive(Debug, Clone, Deserialize)]
pub struct RatingPayload {
    pub id: Value,
    #[serde(default)]
    pub ticket_id: Value,
    #[serde(default)]
    pub agent_id: Value,
    #[serde(default)]
    pub group_id: Value,
    #[serde(default)]
    pub feedback: Option<String>,
    /// Keyed by question: `default_question` is the main CSAT question.
    #[serde(default)]
    pub ratings: serde_json::Map<String, Value>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl RatingPayload {
    fn updated_ms(&self) -> Option<i64> {
        self.updated_at
            .as_deref()
            .or(self.created_at.as_deref())
            .and_then(time_ms)
    }

    /// The rating event, or `None` if the main question is unanswered.
    /// `agent`/`team` are Freshdesk's numeric ids: the API rating carries
    /// no names, and looking them up would cost two more calls per rating.
    pub fn to_event(&self, ticket_id: &str, url: Option<String>) -> Option<RatingEvent> {
        let raw = self.ratings.get("default_question").and_then(scalar_text)?;
        let value = Scale::SignedSevenPoint.parse_value(&raw)?;
        let score = Score::new(Scale::SignedSevenPoint, value)?;
        let conversation = scalar_text(&self.ticket_id).unwrap_or_else(|| ticket_id.to_string());
        let mut event = RatingEvent::new(conversation, score);
        event.rating_key = scalar_text(&self.id).unwrap_or_default();
        event.comment = crate::domain::non_empty(self.feedback.as_deref());
        event.agent = scalar_text(&self.agent_id);
        event.team = scalar_text(&self.group_id);
        event.url = url;
        event.rated_at_ms = self.created_at.as_deref().and_then(time_ms);
        event.updated_at_ms = self.updated_ms();
        Some(event)
    }
}

/// The rating to record from a ticket's list: the most recently updated
/// one (a ticket can hold several; the newest is the one that just arrived).
pub fn latest(ratings: &[RatingPayload]) -> Option<&RatingPayload> {
    ratings
        .iter()
        .max_by_key(|r| (r.updated_ms().unwrap_or(0), r.id.as_i64().unwrap_or(0)))
}
