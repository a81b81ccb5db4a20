//! The JSON body our Zendesk trigger sends, and its reading into a
//! [`RatingEvent`]. The body is our own design (docs/helpdesks/zendesk.md
//! publishes it); Zendesk renders every placeholder as a string.
//!
//! Signatures live in `signature.rs`; nothing here does I/O.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::rendered_rating;
use crate::sources::{ParseError, Parsed, describe_value, fill_ticket_url, scalar_text};

/// The body version this build reads (`"csatwatch": 1`).
pub const BODY_VERSION: i64 = 1;

/// The trigger body after rendering. Every field is text, as Zendesk renders
/// it; `None` where it rendered empty or was left out of the template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerPayload {
    pub ticket_id: Option<String>,
    pub ticket_link: Option<String>,
    pub tags: Option<String>,
    pub brand: Option<String>,
    pub group: Option<String>,
    pub assignee_name: Option<String>,
    pub assignee_email: Option<String>,
    pub requester_name: Option<String>,
    pub requester_email: Option<String>,
    pub organization: Option<String>,
    /// `None` when the template has no `satisfaction` object at all.
    pub current_rating: Option<Option<String>>,
    pub current_comment: Option<String>,
    pub updated_at: Option<String>,
}

impl TryFrom<&Value> for TriggerPayload {
    type Error = ParseError;

    /// Reads the rendered template. Unknown fields are ignored, so operators
    /// may add their own.
    fn try_from(body: &Value) -> Result<Self, ParseError> {
        if !body.is_object() {
            return Err(ParseError::new(
                "the body is not a JSON object; paste the trigger body from docs/helpdesks/zendesk.md",
            ));
        }
        if let Some(version) = body.get("csatwatch")
            && scalar_text(version).as_deref() != Some("1")
        {
            return Err(ParseError::new(format!(
                "csatwatch is {}; this version reads body version {BODY_VERSION}",
                describe_value(version)
            )));
        }
        let text = |pointer: &str| body.pointer(pointer).and_then(rendered_text);
        let current_rating = match body.get("satisfaction").filter(|s| s.is_object()) {
            Some(_) => Some(rendered_rating(
                body.pointer("/satisfaction/current_rating"),
                "satisfaction.current_rating",
            )?),
            None => None,
        };
        Ok(TriggerPayload {
            ticket_id: body.pointer("/ticket/id").and_then(scalar_text),
            ticket_link: text("/ticket/link"),
            tags: text("/ticket/tags"),
            brand: text("/ticket/brand"),
            group: text("/ticket/group"),
            assignee_name: text("/assignee/name"),
            assignee_email: text("/assignee/email"),
            requester_name: text("/requester/name"),
            requester_email: text("/requester/email"),
            organization: text("/requester/organization"),
            current_rating,
            current_comment: text("/satisfaction/current_comment"),
            updated_at: text("/updated_at"),
        })
    }
}

impl TriggerPayload {
    /// The rating this body reports, or why it reports none. `ticket_url` is
    /// the source's template, used when `{{ticket.link}}` rendered empty.
    pub fn into_parsed(self, ticket_url: Option<&str>) -> Result<Parsed, ParseError> {
        let conversation_id = match self.ticket_id {
            None => {
                return Err(ParseError::new(
                    "ticket.id is missing or empty; the trigger body must include \"ticket\": {\"id\": \"{{ticket.id}}\"}",
                ));
            }
            Some(id) if is_placeholder(&id) => {
                return Err(ParseError::new(
                    "ticket.id is an unrendered placeholder; send the body from a trigger, not by hand",
                ));
            }
            Some(id) => id,
        };
        let Some(rating) = self.current_rating else {
            return Err(ParseError::new(
                "satisfaction is missing; the trigger body must include \"satisfaction\": {\"current_rating\": \"{{satisfaction.current_rating}}\", …}",
            ));
        };
        let Some(value) = read_rating(rating.as_deref())? else {
            return Ok(Parsed::NoRating {
                reason: "the survey was offered but not answered".to_string(),
            });
        };
        let score =
            Score::new(Scale::Binary, value).expect("parse_value only returns values on the scale");

        let mut event = RatingEvent::new(conversation_id, score);
        event.comment = self.current_comment;
        event.agent = self.assignee_name.or(self.assignee_email);
        event.team = self.group;
        event.brand = self.brand;
        event.customer = self.requester_name.or(self.requester_email);
        event.company = self.organization;
        // Zendesk renders {{ticket.tags}} space-separated.
        event.tags = self
            .tags
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        event.url = self
            .ticket_link
            .map(|link| with_scheme(&link))
            .or_else(|| ticket_url.map(|t| fill_ticket_url(t, &event.conversation_id)));
        // Never fatal: the time only orders deliveries, and its rendering is
        // not confirmed for every account setting.
        event.updated_at_ms = self.updated_at.as_deref().and_then(parse_updated_at);
        Ok(Parsed::Ratings {
            delivery_id: None,
            ratings: vec![event],
        })
    }
}

/// A rendered placeholder value: text, or `None` if it rendered empty or did
/// not render at all (`{{…}}` left in place, e.g. a typo in the template).
fn rendered_text(value: &Value) -> Option<String> {
    scalar_text(value).filter(|t| !is_placeholder(t))
}

fn is_placeholder(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("{{") && t.ends_with("}}")
}

/// `Some(0 | 1)` for bad/good, `None` for a survey offered but unanswered.
/// `{{satisfaction.current_rating}}` may render as `bad` or as the UI label
/// `Bad, I'm unsatisfied` (unconfirmed), so both are read.
fn read_rating(raw: Option<&str>) -> Result<Option<i64>, ParseError> {
    let raw = raw.unwrap_or("").trim();
    let lower = raw.to_ascii_lowercase();
    if matches!(lower.as_str(), "" | "offered" | "unoffered") {
        return Ok(None);
    }
    // Zendesk renders the rating as a word. A number is refused rather than
    // read as good (1) or bad (0): on every other scale 1 is the worst
    // score, so guessing could turn a complaint into praise.
    if raw.parse::<f64>().is_ok() {
        return Err(ParseError::new(format!(
            "satisfaction.current_rating is {}; expected good or bad (numbers are refused: Zendesk renders the rating as a word)",
            describe_value(&Value::from(raw))
        )));
    }
    Scale::Binary.parse_value(raw).map(Some).ok_or_else(|| {
        ParseError::new(format!(
            "satisfaction.current_rating is {}; expected good or bad",
            describe_value(&Value::from(raw))
        ))
    })
}

/// `{{ticket.link}}` has been seen with and without a scheme; Slack needs one.
fn with_scheme(link: &str) -> String {
    if link.starts_with("https://") || link.starts_with("http://") {
        link.to_string()
    } else {
        format!("https://{link}")
    }
}

/// `{{ticket.updated_at_with_timestamp}}` renders ISO 8601 at minute
/// precision, e.g. `2013-12-12T05:35Z` [Zendesk placeholders reference];
/// RFC 3339 with seconds is read too. Anything else (a localised date
/// without a zone) is `None`, never an error.
pub fn parse_updated_at(text: &str) -> Option<i64> {
    let text = text.trim();
    let at = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let minutes = text.strip_suffix('Z')?;
        PrimitiveDateTime::parse(
            minutes,
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
        .ok()
        .map(PrimitiveDateTime::assume_utc)
    })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}
