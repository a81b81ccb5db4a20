//! Polling Zendesk's legacy satisfaction ratings:
//! `GET /api/v2/satisfaction_ratings?start_time=…&sort_order=asc&page[size]=100`
//! with cursor pagination (`meta.has_more`, `meta.after_cursor`,
//! `page[after]=…`).
//!
//! The cursor is the shared high-water one (`sources/cursor.rs`): the
//! window's start, Zendesk's page cursor, and the newest `updated_at` seen.
//! A new poll cycle starts again from that high-water mark minus the
//! overlap, because whether `start_time` filters on creation or update time
//! is unconfirmed and a customer can change a rating after giving it.

use serde::Deserialize;

use super::client::ZendeskClient;
use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::cursor::{HighWaterCursor, HighWaterPoller, Page};
use crate::sources::http_api::get_json;
use crate::sources::json::time_ms;
use crate::sources::{FetchError, PollRequest, fill_ticket_url};

#[derive(Debug, Deserialize)]
struct ListPayload {
    #[serde(default)]
    satisfaction_ratings: Vec<RatingPayload>,
    #[serde(default)]
    meta: Option<MetaPayload>,
}

#[derive(Debug, Deserialize)]
struct MetaPayload {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    after_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RatingPayload {
    ticket_id: Option<serde_json::Value>,
    score: Option<String>,
    comment: Option<String>,
    assignee_id: Option<serde_json::Value>,
    group_id: Option<serde_json::Value>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

fn id_text(value: &Option<serde_json::Value>) -> Option<String> {
    match value {
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

impl RatingPayload {
    /// A rating as the webhook would have recorded it: the ticket is the
    /// conversation and the key is empty, so both paths meet on one rating.
    /// Offered and unoffered surveys carry no rating.
    fn into_event(self, ticket_url: Option<&str>, base_url: &str) -> Option<RatingEvent> {
        let conversation_id = id_text(&self.ticket_id)?;
        let value = Scale::Binary.parse_value(self.score.as_deref()?)?;
        let score = Score::new(Scale::Binary, value)?;
        let mut event = RatingEvent::new(conversation_id.clone(), score);
        event.comment = self.comment.filter(|c| !c.trim().is_empty());
        event.agent = id_text(&self.assignee_id);
        event.team = id_text(&self.group_id);
        event.rated_at_ms = self.created_at.as_deref().and_then(time_ms);
        event.updated_at_ms = self
            .updated_at
            .as_deref()
            .and_then(time_ms)
            .or(event.rated_at_ms);
        event.url = Some(match ticket_url {
            Some(template) => fill_ticket_url(template, &conversation_id),
            None => format!("{base_url}/agent/tickets/{conversation_id}"),
        });
        Some(event)
    }
}

impl HighWaterPoller for ZendeskClient {
    /// Zendesk's `after_cursor`.
    type After = String;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        cursor: &HighWaterCursor<String>,
        request: &PollRequest,
    ) -> Result<Page<String>, FetchError> {
        let mut query = vec![
            ("start_time".to_string(), (cursor.start_ms / 1000).to_string()),
            ("sort_order".to_string(), "asc".to_string()),
            ("page[size]".to_string(), "100".to_string()),
        ];
        if let Some(until) = request.until_ms {
            query.push(("end_time".to_string(), (until / 1000).to_string()));
        }
        if let Some(after) = &cursor.after {
            query.push(("page[after]".to_string(), after.clone()));
        }
        let url = format!("{}/api/v2/satisfaction_ratings", self.base_url);
        let list: ListPayload = get_json(
            http.get(&url)
                .query(&query)
                .header(reqwest::header::AUTHORIZATION, self.authorization()),
            self.timeout,
            "Zendesk satisfaction ratings",
        )
        .await?;
        let ratings: Vec<RatingEvent> = list
            .satisfaction_ratings
            .into_iter()
            .filter_map(|r| r.into_event(self.ticket_url.as_deref(), &self.base_url))
            .collect();
        let next = match list.meta {
            Some(MetaPayload {
                has_more: true,
                after_cursor: Some(after),
            }) => Some(after),
            _ => None,
        };
        let mut page = Page::new(ratings, next);
        page.newest_ms = page.ratings.iter().filter_map(|e| e.updated_at_ms).max();
        Ok(page)
    }
}
