//! Polling HubSpot's feedback submissions by last-modified date:
//! `POST /crm/v3/objects/feedback_submissions/search` with
//! `hs_lastmodifieddate GTE <window start>`, ascending, 100 per page, paged
//! with `after`; then one `POST /crm/v4/associations/feedback_submissions/tickets/batch/read`
//! per page, because search results carry no associations and the webhook
//! keys a rating by its ticket.
//!
//! Each submission goes through the webhook fetch's own mapping
//! ([`super::client::to_fetched`]): same conversation (the ticket, else the
//! submission), rating key (the submission) and scale.
//!
//! HubSpot's search stops at 10,000 results per query, so before `after`
//! reaches that, a new window starts at the last modified date read (GTE:
//! the boundary submissions come again and are seen as unchanged). The
//! search API allows 4 requests a second per token; a 429 without
//! `Retry-After` is waited out for a second (HubSpot's limits are per
//! second or per day; a daily one ends the run).

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client::{HubspotClient, to_fetched};
use super::payload::{PROPERTIES, SubmissionPayload};
use crate::sources::cursor::{HighWaterCursor, HighWaterPoller, Page};
use crate::sources::http_api::{retry_after, send_json};
use crate::sources::{FetchError, Fetched, PollRequest, scalar_text};

/// HubSpot's page size limit for search.
const PAGE_SIZE: u64 = 100;
/// HubSpot's search returns at most this many results per query.
const SEARCH_LIMIT: u64 = 10_000;

#[derive(Debug, Deserialize)]
struct SearchPayload {
    #[serde(default)]
    results: Vec<SubmissionPayload>,
    #[serde(default)]
    paging: Option<Value>,
}

/// POSTs `body` to `path` and reads JSON (207: some inputs failed, a
/// submission without tickets; the rest stand). A 429 without
/// `Retry-After` is waited out for a second, unless it is the daily limit:
/// then the next interval tries again.
async fn post_json<T: serde::de::DeserializeOwned>(
    client: &HubspotClient,
    http: &reqwest::Client,
    path: &str,
    body: &Value,
    what: &str,
) -> Result<T, FetchError> {
    let request = http
        .post(format!("{}{path}", client.base_url))
        .bearer_auth(client.token.expose_secret())
        .json(body);
    let (found, _) = send_json(request, client.timeout, what, |headers, body| {
        let daily = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| b.get("policyName")?.as_str().map(str::to_string))
            .is_some_and(|p| p.eq_ignore_ascii_case("DAILY"));
        match (retry_after(headers), daily) {
            (Some(wait), _) => Some(wait),
            (None, true) => None,
            (None, false) => Some(std::time::Duration::from_secs(1)),
        }
    })
    .await?;
    Ok(found)
}

/// The first ticket of each submission, from one batch read.
async fn tickets(
    client: &HubspotClient,
    http: &reqwest::Client,
    ids: &[String],
) -> Result<Map<String, Value>, FetchError> {
    let inputs: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    let answer: Value = post_json(
        client,
        http,
        "/crm/v4/associations/feedback_submissions/tickets/batch/read",
        &json!({"inputs": inputs}),
        "HubSpot feedback submission associations",
    )
    .await?;
    let mut found = Map::new();
    for result in answer
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let from = result.pointer("/from/id").and_then(scalar_text);
        let to = result.pointer("/to/0/toObjectId").and_then(scalar_text);
        if let (Some(from), Some(to)) = (from, to) {
            // The shape of `GET …/{id}?associations=tickets`, which the
            // webhook's mapping reads.
            found.insert(from, json!({"tickets": {"results": [{"id": to}]}}));
        }
    }
    Ok(found)
}

impl HighWaterPoller for HubspotClient {
    /// HubSpot's `after`.
    type After = String;

    async fn read_page(
        &self,
        http: &reqwest::Client,
        cursor: &HighWaterCursor<String>,
        request: &PollRequest,
    ) -> Result<Page<String>, FetchError> {
        let mut filters = vec![json!({
            "propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": cursor.start_ms.to_string()
        })];
        if let Some(until) = request.until_ms {
            filters.push(json!({
                "propertyName": "hs_lastmodifieddate", "operator": "LTE", "value": until.to_string()
            }));
        }
        let mut body = json!({
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": PROPERTIES,
            "limit": PAGE_SIZE,
        });
        if let Some(after) = &cursor.after {
            body["after"] = Value::from(after.clone());
        }
        let found: SearchPayload = post_json(
            self,
            http,
            "/crm/v3/objects/feedback_submissions/search",
            &body,
            "HubSpot feedback submissions search",
        )
        .await?;
        let ids: Vec<String> = found
            .results
            .iter()
            .filter_map(|s| scalar_text(&s.id))
            .collect();
        let associations = if ids.is_empty() {
            Map::new()
        } else {
            tickets(self, http, &ids).await?
        };
        let mut ratings = Vec::new();
        let mut newest_ms: Option<i64> = None;
        for mut submission in found.results {
            let Some(id) = scalar_text(&submission.id) else {
                continue;
            };
            if let Some(modified) = submission
                .properties
                .get("hs_lastmodifieddate")
                .and_then(scalar_text)
                .and_then(|t| crate::sources::json::time_ms(&t))
            {
                newest_ms = newest_ms.max(Some(modified));
            }
            submission.associations = associations.get(&id).cloned();
            let what = format!("HubSpot feedback submission {id}");
            match to_fetched(&submission, &id, self.ticket_url.as_deref(), &what) {
                Fetched::Rating(event) => ratings.push(*event),
                Fetched::NoRating(reason) => {
                    tracing::debug!(submission = %id, reason = %reason, "a HubSpot submission holds no rating we can place; skipped");
                }
            }
        }
        let next = found
            .paging
            .as_ref()
            .and_then(|p| p.pointer("/next/after"))
            .and_then(scalar_text);
        // Paging further would pass the 10,000-result cap: a new window
        // from the last modified date read.
        let capped = next
            .as_deref()
            .is_some_and(|after| after.parse::<u64>().is_ok_and(|a| a + PAGE_SIZE > SEARCH_LIMIT));
        let mut page = Page::new(ratings, next);
        page.newest_ms = newest_ms;
        if capped {
            let high_water_ms = cursor.high_water_ms.max(newest_ms.unwrap_or(i64::MIN));
            page.restart_at_ms = Some(if high_water_ms > cursor.start_ms {
                high_water_ms
            } else {
                // 10,000 submissions modified in one millisecond (a bulk
                // import): step past it rather than loop.
                tracing::warn!(
                    "more than 10,000 HubSpot submissions share one modified time; some may be skipped"
                );
                cursor.start_ms + 1
            });
        }
        Ok(page)
    }
}
