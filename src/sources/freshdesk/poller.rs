//! Polling Freshdesk's account-wide list:
//! `GET /api/v2/surveys/satisfaction_ratings?created_since=…&page=N&per_page=100`.
//!
//! Freshdesk filters only on creation (`created_since`; there is no
//! `updated_since`), so every cycle re-reads the overlap window
//! (`poll_overlap`, default a day) to catch ratings changed after they were
//! given. Pages are numbered: a `Link: <…>; rel="next"` header is followed
//! where Freshdesk sends one (unconfirmed on this endpoint), else a page
//! shorter than `per_page` (or empty) is the last.
//!
//! The ratings are built exactly as the webhook's fetch builds them
//! ([`RatingPayload::to_event`]): the ticket is the conversation and the
//! rating id the key, so a rating seen both ways is one rating.

use serde::{Deserialize, Serialize};

use super::client::FreshdeskClient;
use super::payload::RatingPayload;
use crate::sources::cursor::{Page, Window, WindowPoller};
use crate::sources::http_api::{get_json_and_headers, header_number, rfc3339};
use crate::sources::json::time_ms;
use crate::sources::{FetchError, PollRequest, scalar_text};
use secrecy::ExposeSecret;

/// Freshdesk's largest page.
const PER_PAGE: usize = 100;

/// Where the next page of a window starts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NextPage {
    /// The page number, and whether this window's pages came with `Link`
    /// headers (then a page without one is the last, even when full).
    Linked { page: u32, linked: bool },
    /// A page number alone, as cursors were saved before.
    Number(u32),
}

impl NextPage {
    fn page(self) -> u32 {
        match self {
            NextPage::Linked { page, .. } | NextPage::Number(page) => page,
        }
    }

    fn linked(self) -> bool {
        matches!(self, NextPage::Linked { linked: true, .. })
    }
}

/// Whether a `Link` header names a next page.
fn has_next_link(link: &str) -> bool {
    link.split(',')
        .any(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
}

impl WindowPoller for FreshdeskClient {
    type Next = NextPage;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        window: Window,
        next: Option<&NextPage>,
        _request: &PollRequest,
    ) -> Result<Page<NextPage>, FetchError> {
        let page = next.map_or(1, |n| n.page());
        let url = format!("{}/api/v2/surveys/satisfaction_ratings", self.base_url);
        let (ratings, headers): (Vec<RatingPayload>, _) = get_json_and_headers(
            http.get(&url)
                .query(&[
                    ("created_since", rfc3339(window.start_ms)),
                    ("page", page.to_string()),
                    ("per_page", PER_PAGE.to_string()),
                ])
                .basic_auth(self.api_key.expose_secret(), Some("X"))
                .header(reqwest::header::ACCEPT, "application/json"),
            self.timeout,
            "Freshdesk satisfaction ratings",
        )
        .await?;
        let linked_before = next.is_some_and(|n| n.linked());
        let link = headers
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok());
        let more = match link {
            Some(link) => has_next_link(link),
            None if linked_before => false,
            None => ratings.len() >= PER_PAGE,
        };
        let events = ratings
            .iter()
            // `created_since` has no upper bound: a backfill's `--until` is kept here.
            .filter(|r| {
                r.created_at
                    .as_deref()
                    .and_then(time_ms)
                    .is_none_or(|at| at <= window.until_ms)
            })
            .filter_map(|r| {
                let ticket = scalar_text(&r.ticket_id)?;
                r.to_event(&ticket, Some(self.link(&ticket)))
            })
            .collect();
        let next = more.then_some(NextPage::Linked {
            page: page + 1,
            linked: linked_before || link.is_some(),
        });
        let mut page = Page::new(events, next);
        page.remaining = header_number(&headers, "x-ratelimit-remaining");
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::has_next_link;

    #[test]
    fn a_link_header_says_whether_a_next_page_waits() {
        assert!(has_next_link(
            "<https://acme.freshdesk.com/api/v2/surveys/satisfaction_ratings?page=3>; rel=\"next\""
        ));
        assert!(!has_next_link("<https://x/?page=1>; rel=\"prev\""));
    }
}
