//! Polling Help Scout's happiness ratings report (Plus and Pro plans):
//! `GET /v2/reports/happiness/ratings?start=…&end=…&page=N&sortField=modifiedAt&sortOrder=ASC`.
//!
//! Help Scout has no "list ratings" endpoint; the report is the only
//! incremental source. Its rows have no rating id (`ratingId` is the value:
//! 1 great, 2 okay, 3 not good) but they do carry the conversation (`id`)
//! and the rated reply (`threadid`), which is what both this poller and the
//! webhook key a rating by, so a rating seen both ways is one rating.
//!
//! `start`/`end` filter on the rating's creation time, so each new cycle
//! re-reads `poll_overlap` (default a day) before the previous window's end
//! to catch ratings changed after they were given. The window's `end` is
//! fixed when the window starts, so its pages stay stable while it is read.

use serde::Deserialize;
use serde_json::Value;

use super::client::HelpScoutClient;
use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::cursor::{Page, Window, WindowPoller};
use crate::sources::http_api::rfc3339;
use crate::sources::json::full_name;
use crate::sources::json::time_ms;
use crate::sources::{FetchError, PollRequest, fill_ticket_url, scalar_text};

/// The report's path.
pub const REPORT_PATH: &str = "/v2/reports/happiness/ratings";

#[derive(Debug, Deserialize)]
struct ReportPayload {
    #[serde(default)]
    results: Vec<RowPayload>,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    pages: Option<u32>,
}

/// One report row (`singer-io/tap-helpscout`'s schema; ids may come as
/// numbers or strings).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowPayload {
    /// The conversation id.
    id: Option<Value>,
    #[serde(alias = "threadId")]
    threadid: Option<Value>,
    /// The rating's value, not an id: 1 great, 2 okay, 3 not good.
    rating_id: Option<Value>,
    rating_comments: Option<String>,
    rating_created_at: Option<String>,
    rating_user_name: Option<String>,
    rating_user_id: Option<Value>,
    rating_customer_name: Option<String>,
    rating_customer_id: Option<Value>,
}

impl RowPayload {
    /// The rating as the webhook records it (same conversation, key, scale,
    /// agent and link). `None` for a row without a known rating.
    fn into_event(self, ticket_url: Option<&str>) -> Option<RatingEvent> {
        let conversation_id = self.id.as_ref().and_then(scalar_text)?;
        let thread_id = self.threadid.as_ref().and_then(scalar_text)?;
        let value = match self.rating_id.as_ref()? {
            Value::String(word) if word.parse::<i64>().is_err() => {
                Scale::ThreePoint.parse_value(word)?
            }
            other => match scalar_text(other)?.parse::<i64>().ok()? {
                1 => 3,
                2 => 2,
                3 => 1,
                _ => return None,
            },
        };
        let score = Score::new(Scale::ThreePoint, value)?;
        let mut event = RatingEvent::new(conversation_id.clone(), score);
        event.rating_key = thread_id;
        event.comment = self.rating_comments.filter(|c| !c.trim().is_empty());
        event.agent = full_name(self.rating_user_name, None)
            .or_else(|| self.rating_user_id.as_ref().and_then(scalar_text));
        event.customer = full_name(self.rating_customer_name, None)
            .or_else(|| self.rating_customer_id.as_ref().and_then(scalar_text));
        let template =
            ticket_url.unwrap_or("https://secure.helpscout.net/conversation/{conversation_id}");
        event.url = Some(fill_ticket_url(template, &conversation_id));
        event.rated_at_ms = self.rating_created_at.as_deref().and_then(time_ms);
        // The report does not say when a rating was changed: no version
        // time, so the pipeline compares the score and comment instead.
        event.updated_at_ms = None;
        Some(event)
    }
}

impl WindowPoller for HelpScoutClient {
    /// A page number.
    type Next = u32;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        window: Window,
        next: Option<&u32>,
        request: &PollRequest,
    ) -> Result<Page<u32>, FetchError> {
        let page = next.copied().unwrap_or(1);
        let query = [
            ("start", rfc3339(window.start_ms)),
            // Whole seconds: the start rounds down and the end up, so no rating
            // given in a window's last second falls between two windows.
            ("end", rfc3339(window.until_ms + 999)),
            ("page", page.to_string()),
            // Oldest change first: a rating changed while the window is read
            // moves to its end and is read again rather than skipped.
            ("sortField", "modifiedAt".to_string()),
            ("sortOrder", "ASC".to_string()),
        ];
        let report: ReportPayload = self
            .get(
                http,
                REPORT_PATH,
                &query,
                request.now_ms,
                "the Help Scout happiness ratings report",
            )
            .await?;
        let ratings: Vec<RatingEvent> = report
            .results
            .into_iter()
            .filter_map(|row| row.into_event(self.ticket_url.as_deref()))
            .collect();
        let pages = report.pages.unwrap_or(1);
        let current = report.page.unwrap_or(page);
        Ok(Page::new(ratings, (current < pages).then_some(current + 1)))
    }
}
