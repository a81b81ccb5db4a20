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
use crate::domain::Scale;
use crate::sources::cursor::{self, WindowCursor};
use crate::sources::http_api::{get_json_and_headers, header_number, rfc3339};
use crate::sources::json::text_at;
use crate::sources::{FetchError, PollPage, PollRequest};

#[derive(Debug, Deserialize)]
struct ListPayload {
    #[serde(default)]
    survey_responses: Vec<Value>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// Reads one page.
pub async fn poll_page(
    api: &DevRevClient,
    scale: Scale,
    ticket_url: Option<&str>,
    http: &reqwest::Client,
    request: &PollRequest,
) -> Result<PollPage, FetchError> {
    let position = WindowCursor::<String>::for_request(request);
    let window = position.window;
    let mut body = json!({
        "limit": 100,
        "modified_date": {
            "type": "range",
            "after": rfc3339(window.start_ms),
            "before": rfc3339(window.until_ms + 999),
        },
        "sort_by": ["modified_date:asc"],
    });
    if let Some(next) = &position.next {
        body["cursor"] = Value::from(next.as_str());
    }
    let (list, headers): (ListPayload, _) = get_json_and_headers(
        http.post(format!("{}/surveys.responses.list", api.base_url))
            .bearer_auth(api.token.expose_secret())
            .json(&body),
        api.timeout,
        "DevRev survey responses",
    )
    .await?;
    let mut ratings = Vec::with_capacity(list.survey_responses.len());
    for response in &list.survey_responses {
        match response_to_event(response, "survey_response", scale, ticket_url) {
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
    let more = next.is_some();
    Ok(PollPage {
        ratings,
        cursor: cursor::save(&WindowCursor { window, next }),
        more,
        remaining: header_number(&headers, "x-ratelimit-remaining"),
    })
}
