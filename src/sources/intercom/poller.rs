//! Polling Intercom's rated conversations:
//! `POST /conversations/search` (API version 2.14), 150 per page, paged
//! with `pages.next.starting_after`.
//!
//! The query asks for conversations whose rating was given since the
//! window's start, or that changed since then and hold a rating:
//! `conversation_rating.replied_at > T OR (updated_at > T AND
//! conversation_rating.score > 0)`. Whether a changed rating moves
//! `replied_at` or only the conversation's `updated_at` is unconfirmed, so
//! both are asked for. Intercom's `>` is "greater or equal": the boundary
//! conversation comes back again, and the pipeline sees it as unchanged.
//!
//! Each conversation is read by the webhook's own code
//! ([`super::payload::read_item`]), so both paths record one rating.
//! Rate limits: `X-RateLimit-Remaining`, `X-RateLimit-Reset` (a Unix time)
//! and 429.

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::IntercomClient;
use super::payload::read_item;
use crate::domain::RatingEvent;
use crate::sources::cursor::{HighWaterCursor, HighWaterPoller, Page};
use crate::sources::http_api::{header_number, send_json};
use crate::sources::{FetchError, PollRequest};

/// The API version the poller speaks (its search fields and shapes).
pub const API_VERSION: &str = "2.14";
/// Intercom's largest page.
const PER_PAGE: u32 = 150;

#[derive(Debug, Deserialize)]
struct SearchPayload {
    #[serde(default)]
    conversations: Vec<Value>,
    #[serde(default)]
    pages: Option<Value>,
}

fn query(since_s: i64, until_s: Option<i64>) -> Value {
    let mut changed = vec![
        json!({"field": "updated_at", "operator": ">", "value": since_s}),
        json!({"field": "conversation_rating.score", "operator": ">", "value": 0}),
    ];
    let mut given =
        vec![json!({"field": "conversation_rating.replied_at", "operator": ">", "value": since_s})];
    if let Some(until) = until_s {
        changed.push(json!({"field": "updated_at", "operator": "<", "value": until}));
        given.push(
            json!({"field": "conversation_rating.replied_at", "operator": "<", "value": until}),
        );
    }
    json!({"operator": "OR", "value": [
        {"operator": "AND", "value": given},
        {"operator": "AND", "value": changed},
    ]})
}

/// The wait a 429 asks for: `Retry-After` if sent, else until
/// `X-RateLimit-Reset` (a Unix time in seconds), at least a second.
fn rate_limit_wait(headers: &reqwest::header::HeaderMap, now_ms: i64) -> std::time::Duration {
    crate::sources::http_api::retry_after(headers).unwrap_or_else(|| {
        let reset_s = headers
            .get("X-RateLimit-Reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
        let wait_ms = reset_s
            .map_or(1000, |r| r.saturating_mul(1000).saturating_sub(now_ms))
            .clamp(1000, crate::clock::ms(crate::sources::http_api::MAX_RETRY_AFTER));
        std::time::Duration::from_millis(wait_ms as u64)
    })
}

impl HighWaterPoller for IntercomClient {
    /// Intercom's `starting_after`.
    type After = String;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        cursor: &HighWaterCursor<String>,
        request: &PollRequest,
    ) -> Result<Page<String>, FetchError> {
        let mut pagination = json!({"per_page": PER_PAGE});
            if let Some(after) = &cursor.after {
                pagination["starting_after"] = Value::from(after.clone());
            }
            let body = json!({
                "query": query(cursor.start_ms / 1000, request.until_ms.map(|u| u / 1000)),
                "pagination": pagination,
            });
            let what = "Intercom conversations search";
        let search = http
            .post(format!("{}/conversations/search", self.base_url))
            .bearer_auth(self.token.expose_secret())
            .header("Intercom-Version", API_VERSION)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        let (found, headers): (SearchPayload, _) = send_json(search, self.timeout, what, |h, _| {
            Some(rate_limit_wait(h, request.now_ms))
        })
        .await?;
        let remaining = header_number(&headers, "X-RateLimit-Remaining");
        let mut ratings: Vec<RatingEvent> = Vec::new();
            let mut newest_s: Option<i64> = None;
            for conversation in &found.conversations {
                for at in ["/updated_at", "/conversation_rating/replied_at"] {
                    if let Some(t) = conversation.pointer(at).and_then(Value::as_i64) {
                        newest_s = newest_s.max(Some(t));
                    }
                }
                match read_item(conversation, false, None, self.ticket_url.as_deref(), None) {
                    Ok(Some(event)) => ratings.push(event),
                    Ok(None) => {}
                    // One odd conversation must not stop the poll; the error names
                    // the field, never customer text.
                    Err(e) => {
                        let id = conversation.pointer("/id").and_then(Value::as_str);
                        tracing::warn!(
                            conversation = id.unwrap_or("?"),
                            error = %e,
                            "an Intercom conversation's rating could not be read; skipped"
                        );
                    }
                }
            }
            let next = found
                .pages
                .as_ref()
                .and_then(|p| p.pointer("/next/starting_after"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let mut page = Page::new(ratings, next);
            page.newest_ms = newest_s.map(|s| s.saturating_mul(1000));
            page.remaining = remaining;
        Ok(page)
    }
}
