//! The bodies a Gorgias source accepts, and the `SatisfactionSurvey` object.
//!
//! Which variables a Gorgias HTTP integration can render for a Rule on
//! `satisfaction-survey-responded` is not documented [U], so three shapes
//! are read:
//!
//! 1. our template (docs/helpdesks/gorgias.md): `ticket`, `assignee`,
//!    `customer` and a `satisfaction_survey` object;
//! 2. the survey object itself: `{id, ticket_id, customer_id, score,
//!    body_text, scored_datetime, …}` (what `{{context}}`-style bodies or a
//!    relay would send);
//! 3. an Events API event: `{type, object_id, object_type, data: {…}}`.
//!
//! Gorgias keeps one survey per ticket, so the ticket is the conversation
//! and the rating key is empty: every shape names the same rating.

use serde_json::Value;

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::{rendered_rating, template_text, time_ms};
use crate::sources::{FetchRef, ParseError, Parsed, describe_value, scalar_text};

/// The kind of [`FetchRef`] this source fetches.
pub const SURVEY_REF: &str = "satisfaction_survey";

/// The event type of an answered survey.
pub const RESPONDED: &str = "satisfaction-survey-responded";

/// A survey as read from any shape, before it becomes a rating.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Survey {
    pub id: Option<String>,
    pub ticket_id: Option<String>,
    /// `None`: not in the body (fetch it); `Some(None)`: present but empty
    /// or null (an unanswered survey).
    pub score: Option<Option<String>>,
    pub body_text: Option<String>,
    pub scored_datetime: Option<String>,
    pub agent: Option<String>,
    pub customer: Option<String>,
    pub tags: Vec<String>,
    /// An Events API event's own id: the same across retries of one event.
    pub event_id: Option<String>,
}

/// Reads a delivery into a rating, a fetch of its survey, or no rating.
pub fn read_body(body: &Value) -> Result<Parsed, ParseError> {
    if !body.is_object() {
        return Err(ParseError::new(
            "the body is not a JSON object; paste the body from docs/helpdesks/gorgias.md",
        ));
    }
    let text = |pointer: &str| body.pointer(pointer).and_then(template_text);
    let survey = if let Some(kind) = body.get("type").and_then(Value::as_str) {
        if kind != RESPONDED {
            return Ok(Parsed::NoRating {
                reason: format!("a Gorgias {kind} event carries no answered survey"),
            });
        }
        Survey {
            id: text("/object_id"),
            ticket_id: text("/data/ticket_id"),
            score: optional_rating(body.pointer("/data/score"), "data.score")?,
            body_text: text("/data/body_text"),
            scored_datetime: text("/data/scored_datetime").or_else(|| text("/created_datetime")),
            event_id: text("/id"),
            ..Survey::default()
        }
    } else if body.get("ticket_id").is_some() {
        Survey {
            id: text("/id"),
            ticket_id: text("/ticket_id"),
            score: optional_rating(body.get("score"), "score")?,
            body_text: text("/body_text"),
            scored_datetime: text("/scored_datetime"),
            ..Survey::default()
        }
    } else {
        Survey {
            id: text("/satisfaction_survey/id"),
            ticket_id: text("/ticket/id"),
            score: optional_rating(
                body.pointer("/satisfaction_survey/score"),
                "satisfaction_survey.score",
            )?,
            body_text: text("/satisfaction_survey/body_text"),
            scored_datetime: text("/satisfaction_survey/scored_datetime"),
            agent: text("/assignee/name").or_else(|| text("/assignee/email")),
            customer: text("/customer/name").or_else(|| text("/customer/email")),
            tags: text("/ticket/tags")
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            event_id: None,
        }
    };
    survey.into_parsed()
}

impl Survey {
    fn into_parsed(self) -> Result<Parsed, ParseError> {
        match &self.score {
            Some(Some(_)) => {}
            Some(None) if self.id.is_none() => {
                return Ok(Parsed::NoRating {
                    reason: "the satisfaction survey has no score yet".to_string(),
                });
            }
            // No score in the body: the survey id names it, fetch it.
            _ => {
                return match self.id {
                    Some(id) => Ok(Parsed::Fetch {
                        delivery_id: self.event_id.map(|e| format!("gorgias-event:{e}")),
                        references: vec![FetchRef {
                            kind: SURVEY_REF.to_string(),
                            id,
                        }],
                    }),
                    None => Err(ParseError::new(
                        "the body has neither a survey score nor a survey id; include \"satisfaction_survey\": {\"id\": …, \"score\": …} as in docs/helpdesks/gorgias.md",
                    )),
                };
            }
        }
        self.into_event(None).map(|event| match event {
            Some(event) => Parsed::Ratings {
                delivery_id: None,
                ratings: vec![event],
            },
            None => Parsed::NoRating {
                reason: "the satisfaction survey has no score yet".to_string(),
            },
        })
    }

    /// The rating, `None` for an unanswered survey, or an error naming the
    /// field that cannot be read. `url` is the ticket link, if known.
    pub fn into_event(self, url: Option<String>) -> Result<Option<RatingEvent>, ParseError> {
        let Some(Some(raw)) = self.score else {
            return Ok(None);
        };
        let ticket_id = self.ticket_id.ok_or_else(|| {
            ParseError::new("ticket_id is missing or empty; a survey must name its ticket")
        })?;
        let value = Scale::FivePoint.parse_value(&raw).ok_or_else(|| {
            ParseError::new(format!(
                "score is {}; expected a whole number from 1 to 5",
                describe_value(&Value::from(raw.as_str()))
            ))
        })?;
        let score = Score::new(Scale::FivePoint, value).expect("parse_value checks the scale");
        let mut event = RatingEvent::new(ticket_id, score);
        event.comment = self.body_text;
        event.agent = self.agent;
        event.customer = self.customer;
        event.tags = self.tags;
        event.url = url;
        let scored = self.scored_datetime.as_deref().and_then(time_ms);
        event.rated_at_ms = scored;
        event.updated_at_ms = scored;
        Ok(Some(event))
    }
}

/// The survey object of `GET /api/satisfaction-surveys/{id}`.
pub fn survey_from_api(body: &Value) -> Survey {
    Survey {
        id: body.get("id").and_then(scalar_text),
        ticket_id: body.get("ticket_id").and_then(scalar_text),
        score: Some(body.get("score").and_then(scalar_text)),
        body_text: body.get("body_text").and_then(scalar_text),
        scored_datetime: body.get("scored_datetime").and_then(scalar_text),
        ..Survey::default()
    }
}

/// A score key: absent (`None`), or present and read by [`rendered_rating`]
/// (an object or an array is an error, never an unanswered survey).
fn optional_rating(
    value: Option<&Value>,
    field: &str,
) -> Result<Option<Option<String>>, ParseError> {
    value.map(|v| rendered_rating(Some(v), field)).transpose()
}
