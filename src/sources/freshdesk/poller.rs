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
use crate::sources::cursor::{self, Window};
use crate::sources::http_api::{get_json_and_headers, header_number, rfc3339};
use crate::sources::json::time_ms;
use crate::sources::{FetchError, PollPage, PollRequest, fill_ticket_url, scalar_text};
use secrecy::ExposeSecret;

/// Freshdesk's largest page.
const PER_PAGE: usize = 100;

/// Our poll cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    #[serde(flatten)]
    window: Window,
    /// The next page of this window; `None` once the window is read.
    #[serde(default)]
    page: Option<u32>,
    /// This cycle's pages came with `Link` headers, so a page without one
    /// is the last (even when full).
    #[serde(default)]
    linked: bool,
}

/// Whether a `Link` header names a next page.
fn has_next_link(link: &str) -> bool {
    link.split(',')
        .any(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
}

/// Reads one page.
pub async fn poll_page(
    client: &FreshdeskClient,
    ticket_url: Option<&str>,
    http: &reqwest::Client,
    request: &PollRequest,
) -> Result<PollPage, FetchError> {
    let saved: Option<Cursor> = cursor::saved(request);
    let resume = saved.as_ref().is_some_and(|c| c.page.is_some());
    let window = Window::for_request(saved.as_ref().map(|c| c.window), resume, request);
    let page = match &saved {
        Some(Cursor { page: Some(p), .. }) if resume => *p,
        _ => 1,
    };
    let url = format!("{}/api/v2/surveys/satisfaction_ratings", client.base_url);
    let (ratings, headers): (Vec<RatingPayload>, _) = get_json_and_headers(
        http.get(&url)
            .query(&[
                ("created_since", rfc3339(window.start_ms)),
                ("page", page.to_string()),
                ("per_page", PER_PAGE.to_string()),
            ])
            .basic_auth(client.api_key.expose_secret(), Some("X"))
            .header(reqwest::header::ACCEPT, "application/json"),
        client.timeout,
        "Freshdesk satisfaction ratings",
    )
    .await?;
    let linked_before = resume && saved.as_ref().is_some_and(|c| c.linked);
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
            let link = match ticket_url {
                Some(template) => fill_ticket_url(template, &ticket),
                None => format!("{}/a/tickets/{ticket}", client.base_url),
            };
            r.to_event(&ticket, Some(link))
        })
        .collect();
    let cursor = Cursor {
        window,
        page: more.then_some(page + 1),
        linked: linked_before || link.is_some(),
    };
    Ok(PollPage {
        ratings: events,
        cursor: cursor::save(&cursor),
        more,
        remaining: header_number(&headers, "x-ratelimit-remaining"),
    })
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
