//! Polling DevRev's survey responses: `POST /surveys.responses.list` with a
//! `modified_date` range and DevRev's `cursor`, bearer PAT.
//!
//! DevRev filters on modification time, so a changed response is read
//! again by the next cycle without any re-scan; the overlap (`poll_overlap`,
//! default a day) only covers clock skew and late indexing. Pages follow
//! `next_cursor` until DevRev sends none.
//!
//! Each response becomes the rating the webhook gives
//! ([`response_to_event`]): the rated object is the conversation and the
//! response id the key, on the source's scale.

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::DevRevClient;
use super::payload::response_to_event;
use crate::sources::cursor::{Page, Window, WindowPoller};
use crate::sources::http_api::{get_json_and_headers, header_number, rfc3339};
use crate::sources::json::text_at;
use crate::sources::{FetchError, PollRequest};

#[derive(Debug, Deserialize)]
struct ListPayload {
    #[serde(default)]
    survey_responses: Vec<Value>,
    #[serde(default)]
    next_cursor: Option<String>,
}

impl WindowPoller for DevRevClient {
    /// DevRev's `next_cursor`.
    type Next = String;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        window: Window,
        next: Option<&String>,
        _request: &PollRequest,
    ) -> Result<Page<String>, FetchError> {
        let mut body = json!({
            "limit": 100,
            "modified_date": {
                "type": "range",
                "after": rfc3339(window.start_ms),
                "before": rfc3339(window.until_ms + 999),
            },
            "sort_by": ["modified_date:asc"],
        });
        if let Some(next) = next {
            body["cursor"] = Value::from(next.as_str());
        }
        let (list, headers): (ListPayload, _) = get_json_and_headers(
            http.post(format!("{}/surveys.responses.list", self.base_url))
                .bearer_auth(self.token.expose_secret())
                .json(&body),
            self.timeout,
            "DevRev survey responses",
        )
        .await?;
        let mut ratings = Vec::with_capacity(list.survey_responses.len());
        for response in &list.survey_responses {
            match response_to_event(response, "survey_response", self.scale, self.ticket_url.as_deref()) {
                Ok(Some(event)) => ratings.push(event),
                Ok(None) => {}
                // Off the scale: the webhook would keep it for `reprocess`; a
                // poll logs it and reads on, so one response cannot stop polling.
                Err(e) => tracing::warn!(
                    response_id = text_at(response, "/id").unwrap_or_default(),
                    error = %e,
                    "a DevRev survey response that cannot be read was skipped"
                ),
            }
        }
        let next = list.next_cursor.filter(|n| !n.is_empty());
        let mut page = Page::new(ratings, next);
        page.remaining = header_number(&headers, "x-ratelimit-remaining");
        Ok(page)
    }
}
