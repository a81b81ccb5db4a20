//! The normalised rating every source produces and everything downstream reads.

use std::fmt;

use serde::Serialize;

use super::scale::{Scale, Sentiment, SurveyKind};

/// A configured source's name: the `{source}` in `POST /webhooks/{source}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SourceName(String);

impl SourceName {
    /// Names are 1 to 64 characters of `a-z`, `0-9`, `-` and `_`, so they are
    /// safe in a URL path, a metric label and a log line.
    pub fn parse(name: &str) -> Result<Self, String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(SourceName(name.to_string()))
        } else {
            Err(format!(
                "{name:?} is not a valid source name: use 1 to 64 characters of a-z, 0-9, '-' and '_'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A score on its own scale. `value` is always valid for `scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Score {
    pub scale: Scale,
    pub value: i64,
}

impl Score {
    /// A score, if `value` belongs to `scale`.
    pub fn new(scale: Scale, value: i64) -> Option<Score> {
        scale.contains(value).then_some(Score { scale, value })
    }

    pub fn label(&self) -> String {
        self.scale.label(self.value)
    }

    pub fn normalised(&self) -> f64 {
        self.scale.normalise(self.value)
    }

    pub fn survey(&self) -> SurveyKind {
        self.scale.survey()
    }
}

/// One rating as a helpdesk reported it, normalised. Sources build these;
/// the pipeline records them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingEvent {
    /// The ticket or conversation the rating is about (the helpdesk's id).
    pub conversation_id: String,
    /// The helpdesk's own id for the rating where it has one (Help Scout rates
    /// each reply), otherwise empty: one rating per conversation.
    pub rating_key: String,
    pub score: Score,
    /// The customer's comment: personal data, never logged.
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    pub tags: Vec<String>,
    /// A link a person can open to see the ticket.
    pub url: Option<String>,
    /// When the customer first rated, in Unix milliseconds, if the helpdesk says.
    pub rated_at_ms: Option<i64>,
    /// When this version of the rating was given (a change moves it), in Unix
    /// milliseconds, if the helpdesk says. Used to ignore stale deliveries.
    pub updated_at_ms: Option<i64>,
}

impl RatingEvent {
    /// A rating with only the required parts; sources fill in the rest.
    pub fn new(conversation_id: impl Into<String>, score: Score) -> Self {
        RatingEvent {
            conversation_id: conversation_id.into(),
            rating_key: String::new(),
            score,
            comment: None,
            agent: None,
            team: None,
            customer: None,
            company: None,
            brand: None,
            tags: Vec::new(),
            url: None,
            rated_at_ms: None,
            updated_at_ms: None,
        }
    }

    pub fn sentiment(&self, negative_at_or_below: Option<i64>) -> Sentiment {
        self.score
            .scale
            .sentiment(self.score.value, negative_at_or_below)
    }
}

/// Where a rating came in: decides whether it may alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Webhook,
    Poll,
    Backfill,
    Reprocess,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Webhook => "webhook",
            Via::Poll => "poll",
            Via::Backfill => "backfill",
            Via::Reprocess => "reprocess",
        }
    }

    /// Backfills import history for reports and never alert.
    pub fn may_alert(self) -> bool {
        !matches!(self, Via::Backfill)
    }
}

/// Trims a helpdesk string field: empty and whitespace-only become `None`.
pub fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_url_and_label_safe() {
        assert!(SourceName::parse("zendesk-eu_2").is_ok());
        assert!(SourceName::parse("").is_err());
        assert!(SourceName::parse("Zendesk").is_err());
        assert!(SourceName::parse("a/b").is_err());
        assert!(SourceName::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn a_score_outside_its_scale_is_refused() {
        assert!(Score::new(Scale::FivePoint, 0).is_none());
        assert!(Score::new(Scale::FivePoint, 5).is_some());
    }
}
