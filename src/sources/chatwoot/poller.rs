//! Polling Chatwoot's CSAT responses:
//! `GET /api/v1/accounts/{account_id}/csat_survey_responses?since=…&until=…&page=N`
//! with the `api_access_token` header.
//!
//! Chatwoot applies `since`/`until` (Unix seconds) only when both are
//! given, and filters on `created_at`; an edit changes `updated_at`, which
//! the API does not expose. A customer can change an answer for 14 days,
//! so each cycle re-reads the overlap (`poll_overlap`, default 14 days).
//! Pages hold 25 responses, fixed: a shorter page is the last.
//!
//! Each response becomes the rating the `message_updated` webhook gives:
//! the conversation's `display_id` (the API's `conversation_id`) and the
//! survey message's id as the key.

use secrecy::ExposeSecret;
use serde_json::Value;

use super::client::ChatwootClient;
use crate::domain::{RatingEvent, Scale, Score};
use crate::sources::cursor::{Page, Window, WindowPoller};
use crate::sources::http_api::get_json;
use crate::sources::json::time_ms;
use crate::sources::json::{first_text, text_at};
use crate::sources::{FetchError, PollRequest, fill_ticket_url, scalar_text};

/// Chatwoot's fixed page size.
const PER_PAGE: usize = 25;

/// One response as `_csat_survey_response.json.jbuilder` renders it.
fn to_event(item: &Value, ticket_url: Option<&str>) -> Option<RatingEvent> {
    let value = item.get("rating").and_then(Value::as_i64)?;
    let score = Score::new(Scale::FivePoint, value)?;
    let conversation_id = text_at(item, "/conversation_id")?;
    let mut event = RatingEvent::new(conversation_id.clone(), score);
    event.rating_key = text_at(item, "/message_id")?;
    event.comment = text_at(item, "/feedback_message");
    event.agent = first_text(item, &["/assigned_agent/name", "/assigned_agent/email"]);
    event.customer = first_text(item, &["/contact/name", "/contact/email"]);
    event.url = ticket_url.map(|template| {
        let with_account = match text_at(item, "/account_id") {
            Some(account) => template.replace("{account_id}", &account),
            None => template.to_string(),
        };
        fill_ticket_url(&with_account, &conversation_id)
    });
    event.rated_at_ms = item
        .get("created_at")
        .and_then(scalar_text)
        .as_deref()
        .and_then(time_ms);
    // Only a newer Chatwoot might send `updated_at` [U]. Without it the
    // version has no time of its own, so a change found by a re-read is
    // never mistaken for an older copy of what a webhook recorded.
    event.updated_at_ms = item
        .get("updated_at")
        .and_then(scalar_text)
        .as_deref()
        .and_then(time_ms);
    Some(event)
}

impl WindowPoller for ChatwootClient {
    /// A page number.
    type Next = u32;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        window: Window,
        next: Option<&u32>,
        _request: &PollRequest,
    ) -> Result<Page<u32>, FetchError> {
        let page = next.copied().unwrap_or(1);
        let url = format!(
            "{}/api/v1/accounts/{}/csat_survey_responses",
            self.base_url, self.account_id
        );
        let items: Vec<Value> = get_json(
            http.get(&url)
                .query(&[
                    ("since", (window.start_ms / 1000).to_string()),
                    // Rounded up so a response in the window's last second is in.
                    ("until", ((window.until_ms + 999) / 1000).to_string()),
                    ("page", page.to_string()),
                    // Stable pages: Chatwoot sorts on created_at when asked.
                    ("sort", "created_at".to_string()),
                ])
                .header("api_access_token", self.token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json"),
            self.timeout,
            "Chatwoot CSAT survey responses",
        )
        .await?;
        let more = items.len() >= PER_PAGE;
        let mut ratings = Vec::with_capacity(items.len());
        for item in &items {
            match to_event(item, self.ticket_url.as_deref()) {
                Some(event) => ratings.push(event),
                None => tracing::warn!(
                    response_id = text_at(item, "/id").unwrap_or_default(),
                    "a Chatwoot CSAT response without a readable rating, conversation or message id was skipped"
                ),
            }
        }
        Ok(Page::new(ratings, more.then_some(page + 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_keyed_as_the_webhook_keys_it() {
        let item = serde_json::json!({
            "id": 5, "rating": 2, "feedback_message": "slow", "account_id": 7,
            "message_id": 90211, "conversation_id": 301, "created_at": 1_795_442_400,
            "assigned_agent": {"id": 12, "name": "Priya Raman"},
            "contact": {"id": 55, "name": "Jordan Lee"}
        });
        let event = to_event(
            &item,
            Some("https://c.example/app/accounts/{account_id}/conversations/{conversation_id}"),
        )
        .unwrap();
        assert_eq!(
            (event.conversation_id.as_str(), event.rating_key.as_str()),
            ("301", "90211")
        );
        assert_eq!(
            event.url.as_deref(),
            Some("https://c.example/app/accounts/7/conversations/301")
        );
        assert_eq!(event.rated_at_ms, Some(1_795_442_400_000));
        assert_eq!(event.updated_at_ms, None);
        assert!(
            to_event(
                &serde_json::json!({"rating": 9, "conversation_id": 1, "message_id": 2}),
                None
            )
            .is_none()
        );
    }
}
