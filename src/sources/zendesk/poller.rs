//! Polling Zendesk's legacy satisfaction ratings:
//! `GET /api/v2/satisfaction_ratings?start_time=…&sort_order=asc&page[size]=100`
//! with cursor pagination (`meta.has_more`, `meta.after_cursor`,
//! `page[after]=…`).
//!
//! The cursor (our own JSON) keeps the window's start, Zendesk's page
//! cursor, and the newest `updated_at` seen. A new poll cycle starts again
//! from that high-water mark minus the overlap, because whether
//! `start_time` filters on creation or update time is unconfirmed and a
//! customer can change a rating after giving it.

use serde::{Deserialize, Serialize};

use super::client::ZendeskClient;
use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::cursor;
use crate::sources::http_api::get_json;
use crate::sources::json::time_ms;
use crate::sources::{FetchError, PollPage, PollRequest, fill_ticket_url};

/// Our poll cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// The window's start, Unix seconds.
    start_time: i64,
    /// Zendesk's cursor for the next page of this window.
    #[serde(default)]
    after: Option<String>,
    /// The newest `updated_at` seen (Unix ms).
    #[serde(default)]
    high_water_ms: i64,
}

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

/// Reads one page.
pub async fn poll_page(
    api: &ZendeskClient,
    http: &reqwest::Client,
    request: &PollRequest,
) -> Result<PollPage, FetchError> {
    let saved: Option<Cursor> = cursor::saved(request);
    let mut cursor = match saved {
        // Mid-window (the next page, or a run interrupted by a restart or an
        // error): carry on from Zendesk's page cursor.
        Some(saved) if !request.new_cycle || saved.after.is_some() => saved,
        Some(saved) => Cursor {
            // A new cycle: re-read from just before the newest change seen.
            start_time: ((saved.high_water_ms - request.overlap_ms) / 1000).max(saved.start_time),
            after: None,
            high_water_ms: saved.high_water_ms,
        },
        None => Cursor {
            start_time: request.since_ms / 1000,
            after: None,
            high_water_ms: 0,
        },
    };
    let mut query = vec![
        ("start_time".to_string(), cursor.start_time.to_string()),
        ("sort_order".to_string(), "asc".to_string()),
        ("page[size]".to_string(), "100".to_string()),
    ];
    if let Some(until) = request.until_ms {
        query.push(("end_time".to_string(), (until / 1000).to_string()));
    }
    if let Some(after) = &cursor.after {
        query.push(("page[after]".to_string(), after.clone()));
    }
    let url = format!("{}/api/v2/satisfaction_ratings", api.base_url);
    let list: ListPayload = get_json(
        http.get(&url)
            .query(&query)
            .header(reqwest::header::AUTHORIZATION, api.authorization()),
        api.timeout,
        "Zendesk satisfaction ratings",
    )
    .await?;
    let mut ratings = Vec::new();
    for rating in list.satisfaction_ratings {
        if let Some(event) = rating.into_event(api.ticket_url.as_deref(), &api.base_url) {
            cursor.high_water_ms = cursor.high_water_ms.max(event.updated_at_ms.unwrap_or(0));
            ratings.push(event);
        }
    }
    let (more, after) = match list.meta {
        Some(MetaPayload {
            has_more: true,
            after_cursor: Some(after),
        }) => (true, Some(after)),
        _ => (false, None),
    };
    cursor.after = after;
    Ok(PollPage {
        ratings,
        cursor: cursor::save(&cursor),
        more,
        remaining: None,
    })
}
