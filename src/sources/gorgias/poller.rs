//! Polling Gorgias's survey list:
//! `GET /api/satisfaction-surveys?limit=100&order_by=created_datetime:desc&cursor=…`.
//!
//! The list has no time filter, so it is read newest first and each cycle
//! stops at the first page that reaches surveys created before its window
//! (the previous cycle's end minus `poll_overlap`, default 7 days: a
//! survey is created when it is sent and may be answered days later).
//! Unanswered surveys (`score` null) are skipped, as are surveys outside
//! the window. The `/api/events` feed (`created_datetime[gte]`) was not
//! chosen: its `satisfaction-survey-responded` events do not carry the
//! comment, which would cost one more call per rating.
//!
//! Each survey becomes the rating the webhook gives: the ticket is the
//! conversation and the key is empty (one survey per ticket).

use serde::Deserialize;
use serde_json::Value;

use super::client::GorgiasClient;
use super::payload::survey_from_api;
use crate::sources::cursor::{Page, Window, WindowPoller};
use crate::sources::http_api::get_json_and_headers;
use crate::sources::json::time_ms;
use crate::sources::{FetchError, PollRequest, scalar_text};
use secrecy::ExposeSecret;

#[derive(Debug, Deserialize)]
struct ListPayload {
    #[serde(default)]
    data: Vec<Value>,
    #[serde(default)]
    meta: Option<MetaPayload>,
}

#[derive(Debug, Deserialize)]
struct MetaPayload {
    #[serde(default)]
    next_cursor: Option<String>,
}

/// `X-Gorgias-Account-Api-Call-Limit: 10/40` → 30 calls left.
fn remaining(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let text = headers
        .get("x-gorgias-account-api-call-limit")?
        .to_str()
        .ok()?;
    let (used, limit) = text.split_once('/')?;
    let (used, limit): (u64, u64) = (used.trim().parse().ok()?, limit.trim().parse().ok()?);
    Some(limit.saturating_sub(used))
}

impl WindowPoller for GorgiasClient {
    /// Gorgias's `next_cursor`.
    type Next = String;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        window: Window,
        next: Option<&String>,
        _request: &PollRequest,
    ) -> Result<Page<String>, FetchError> {
        let mut query = vec![
            ("limit", "100".to_string()),
            ("order_by", "created_datetime:desc".to_string()),
        ];
        if let Some(next) = next {
            query.push(("cursor", next.clone()));
        }
        let url = format!("{}/api/satisfaction-surveys", self.base_url);
        let (list, headers): (ListPayload, _) = get_json_and_headers(
            http.get(&url)
                .query(&query)
                .basic_auth(&self.email, Some(self.api_key.expose_secret()))
                .header(reqwest::header::ACCEPT, "application/json"),
            self.timeout,
            "Gorgias satisfaction surveys",
        )
        .await?;
        let mut ratings = Vec::new();
        let mut reached_older = false;
        for item in &list.data {
            let created = item
                .get("created_datetime")
                .and_then(scalar_text)
                .as_deref()
                .and_then(time_ms);
            if created.is_some_and(|c| c < window.start_ms) {
                reached_older = true;
                continue;
            }
            if created.is_some_and(|c| c > window.until_ms) {
                continue;
            }
            let survey = survey_from_api(item);
            let id = survey.id.clone().unwrap_or_default();
            let url = survey.ticket_id.as_deref().map(|ticket| self.link(ticket));
            match survey.into_event(url) {
                Ok(Some(event)) => ratings.push(event),
                Ok(None) => {} // not answered yet
                Err(e) => {
                    tracing::warn!(survey_id = %id, error = %e, "a Gorgias survey that cannot be read was skipped")
                }
            }
        }
        let next = list
            .meta
            .and_then(|m| m.next_cursor)
            .filter(|n| !n.is_empty() && !reached_older);
        let mut page = Page::new(ratings, next);
        page.remaining = remaining(&headers);
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::remaining;

    #[test]
    fn the_call_limit_header_gives_the_calls_left() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("X-Gorgias-Account-Api-Call-Limit", "10/40".parse().unwrap());
        assert_eq!(remaining(&headers), Some(30));
    }
}
