//! HubSpot's shapes: the webhook body (a JSON array of events that carry
//! only ids) and the feedback submission object of the CRM API.
//!
//! How a submission becomes a score (HubSpot's scales are partly [U]):
//!
//! - `hs_survey_type` NPS: `hs_value` on the nps scale (0–10);
//! - CES: `hs_value` on the ces scale (1–7);
//! - CSAT (and anything else): HubSpot's own `hs_sentiment`
//!   (NEGATIVE / NEUTRAL / POSITIVE) on the three-point scale, because the
//!   CSAT answer's scale is unconfirmed and the sentiment is the one signal
//!   HubSpot defines for every survey. Without a sentiment, `hs_value` is
//!   read on the only evidence found, 0–2 (dissatisfied, neutral,
//!   satisfied), and 3–5 as a five-point answer.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::json::time_ms;
use crate::sources::{FetchRef, ParseError, Parsed, scalar_text};

/// The object type id of feedback submissions (commonly cited; [U]).
pub const FEEDBACK_SUBMISSION_TYPE: &str = "0-19";
/// The kind of [`FetchRef`] this source fetches.
pub const SUBMISSION_REF: &str = "feedback_submission";

/// The properties asked for with each fetch.
pub const PROPERTIES: &[&str] = &[
    "hs_survey_type",
    "hs_survey_name",
    "hs_value",
    "hs_content",
    "hs_sentiment",
    "hs_response_group",
    "hs_submission_timestamp",
    "hs_contact_id",
    "hs_createdate",
    "hs_lastmodifieddate",
];

/// Reads the webhook body: every feedback submission created or changed
/// becomes one fetch; other objects and deletions are ignored. The
/// delivery id is the events' ids, which stay the same across retries.
pub fn read_events(body: &Value) -> Result<Parsed, ParseError> {
    let events: Vec<&Value> = match body {
        Value::Array(events) => events.iter().collect(),
        Value::Object(_) => vec![body],
        _ => {
            return Err(ParseError::new(
                "the body is not a JSON array of HubSpot events",
            ));
        }
    };
    let mut event_ids = Vec::new();
    let mut references: Vec<FetchRef> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if !event.is_object() {
            return Err(ParseError::new(format!("event [{i}] is not a JSON object")));
        }
        if let Some(id) = event.get("eventId").and_then(scalar_text) {
            event_ids.push(id);
        }
        let subscription = event
            .get("subscriptionType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let is_feedback = event.get("objectTypeId").and_then(scalar_text).as_deref()
            == Some(FEEDBACK_SUBMISSION_TYPE)
            || subscription.starts_with("feedback_submission");
        if !is_feedback || subscription.ends_with("deletion") || subscription.contains("merge") {
            continue;
        }
        let id = event.get("objectId").and_then(scalar_text).ok_or_else(|| {
            ParseError::new(format!(
                "event [{i}] is a feedback submission event without an objectId"
            ))
        })?;
        if !references.iter().any(|r| r.id == id) {
            references.push(FetchRef {
                kind: SUBMISSION_REF.to_string(),
                id,
            });
        }
    }
    if references.is_empty() {
        return Ok(Parsed::NoRating {
            reason: format!(
                "none of the {} HubSpot event(s) is a feedback submission created or changed",
                events.len()
            ),
        });
    }
    event_ids.sort();
    Ok(Parsed::Fetch {
        delivery_id: (!event_ids.is_empty()).then(|| format!("hubspot:{}", event_ids.join(","))),
        references,
    })
}

/// `GET /crm/v3/objects/feedback_submissions/{id}`'s answer.
#[derive(Debug, Clone, Deserialize)]
pub struct SubmissionPayload {
    pub id: Value,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub associations: Option<Value>,
}

impl SubmissionPayload {
    fn property(&self, name: &str) -> Option<String> {
        self.properties.get(name).and_then(scalar_text)
    }

    /// The first associated ticket, if the answer lists one.
    pub fn ticket_id(&self) -> Option<String> {
        self.associations
            .as_ref()?
            .pointer("/tickets/results/0/id")
            .and_then(scalar_text)
    }

    /// The score, or why there is none (an answer we cannot place).
    pub fn score(&self) -> Result<Score, String> {
        let survey = self.property("hs_survey_type").unwrap_or_default();
        let value = self.property("hs_value");
        let number = value.as_deref().and_then(|v| v.parse::<f64>().ok());
        let on = |scale: Scale| {
            number
                .filter(|n| n.fract() == 0.0)
                .and_then(|n| Score::new(scale, n as i64))
                .ok_or_else(|| {
                    format!(
                        "a {survey} submission's hs_value is {}; expected a whole number on the {} scale",
                        value.as_deref().map_or("missing".to_string(), |v| format!("{v:?}")),
                        scale.as_str()
                    )
                })
        };
        match survey.to_ascii_uppercase().as_str() {
            "NPS" => on(Scale::Nps),
            "CES" => on(Scale::Ces),
            _ => match self
                .property("hs_sentiment")
                .map(|s| s.to_ascii_uppercase())
            {
                Some(s) if s == "NEGATIVE" => {
                    Ok(Score::new(Scale::ThreePoint, 1).expect("on scale"))
                }
                Some(s) if s == "NEUTRAL" => {
                    Ok(Score::new(Scale::ThreePoint, 2).expect("on scale"))
                }
                Some(s) if s == "POSITIVE" => {
                    Ok(Score::new(Scale::ThreePoint, 3).expect("on scale"))
                }
                _ => match number {
                    Some(n) if (0.0..=2.0).contains(&n) && n.fract() == 0.0 => {
                        Ok(Score::new(Scale::ThreePoint, n as i64 + 1).expect("on scale"))
                    }
                    _ => on(Scale::FivePoint),
                },
            },
        }
    }

    /// The rating. The conversation is the associated ticket where there is
    /// one, else the submission itself; the rating key is the submission.
    pub fn to_event(&self, fallback_id: &str) -> Result<RatingEvent, String> {
        let score = self.score()?;
        let id = scalar_text(&self.id).unwrap_or_else(|| fallback_id.to_string());
        let conversation = self.ticket_id().unwrap_or_else(|| id.clone());
        let mut event = RatingEvent::new(conversation, score);
        event.rating_key = id;
        event.comment = self.property("hs_content");
        event.customer = self
            .property("hs_contact_id")
            .map(|c| format!("contact {c}"));
        let submitted = self
            .property("hs_submission_timestamp")
            .or_else(|| self.property("hs_createdate"))
            .and_then(|t| time_ms(&t));
        event.rated_at_ms = submitted;
        event.updated_at_ms = self
            .property("hs_lastmodifieddate")
            .and_then(|t| time_ms(&t))
            .or(submitted);
        if let Some(survey) = self.property("hs_survey_name") {
            event.tags = vec![survey];
        }
        Ok(event)
    }
}
