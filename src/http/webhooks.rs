//! `POST /webhooks/{source}`: verify, parse, record, answer.
//!
//! | case | status |
//! |---|---|
//! | recorded, or a duplicate of one already recorded | 200 |
//! | valid, but carries no rating | 202 |
//! | missing or wrong signature, stale timestamp | 401 |
//! | unknown source | 404 |
//! | body over `server.max_body_bytes` | 413 (from the body limit) |
//! | signed but unparseable (raw body kept for `reprocess`) | 400 |
//! | database unavailable | 503 |
//!
//! A 2xx is sent only after the transaction has committed (the writer task
//! commits many deliveries at once, see `pipeline::writer`); what a request
//! starts in the database runs to its end even if the client disconnects.
//! The body is never logged: it holds customer text.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use serde_json::json;
use tracing::Instrument as _;

use super::AppState;
use super::answer::Answer;
use crate::domain::Via;
use crate::intake::{self, Taken};
use crate::sources::WebhookRequest;
use crate::store::{NewDelivery, StoreError};

fn unavailable(error: &StoreError) -> Answer {
    tracing::error!(error = %error, "webhook not recorded: database unavailable; answering 503 so the helpdesk retries; check that the database is up and its disk is not full (GET /readyz)");
    Answer::Unavailable("the database is unavailable; nothing was recorded, retry later")
}

fn count(source: &str, outcome: &str) {
    metrics::counter!("csatwatch_deliveries_total", "source" => source.to_string(), "outcome" => outcome.to_string()).increment(1);
}

/// The webhook handler.
pub async fn receive(
    State(state): State<AppState>,
    Path(source_name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let Some(source) = state.sources.get(&source_name) else {
        return Answer::NotFound(
            "unknown source; the URL must end with a configured [[sources]] name",
        );
    };
    // The trace of one rating starts here (telemetry.otlp_endpoint): the
    // configured source's name and kind, never the body.
    // The request id too: log lines inside carry this span's fields.
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let span = tracing::info_span!(
        "webhook",
        source = source.name.as_str(),
        kind = source.kind(),
        request_id = %request_id,
        status = tracing::field::Empty,
    );
    let answer = receive_from(state, &source, method, uri, headers, body)
        .instrument(span.clone())
        .await;
    span.record("status", i64::from(answer.status().as_u16()));
    answer
}

/// [`receive`] for a configured source.
async fn receive_from(
    state: AppState,
    source: &crate::sources::ConfiguredSource,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let name = source.name.as_str();
    // Every write this handler leads to checks first that the SQLite file is
    // still ours (the writer's transactions, and the deliveries kept
    // unparsed or pending): a lost file answers 503 from there.
    let request = WebhookRequest {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
        now_ms: state.clock.now_ms(),
    };
    if let Err(error) = source.adapter.verify(&request) {
        count(name, "unauthorized");
        tracing::warn!(source = name, kind = source.kind(), reason = %error, "webhook refused: bad signature");
        return Answer::Unauthorized(
            "missing or invalid signature, or a timestamp outside the replay window",
        );
    }

    let parsed = source.adapter.parse(&request);
    let delivery = NewDelivery {
        source: name.to_string(),
        delivery_key: intake::delivery_key(parsed.as_ref().ok(), &body),
        received_at_ms: request.now_ms,
        via: Via::Webhook.as_str().to_string(),
        request_meta: intake::request_meta(&method, &uri, &headers),
        body: body.to_vec(),
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let (store, problem) = (state.store.clone(), error.0.clone());
            let saved = crate::store::to_completion(async move {
                store.save_failed_delivery(&delivery, &problem).await
            })
            .await;
            return match saved {
                Ok(id) => {
                    count(name, "unparseable");
                    tracing::warn!(source = name, delivery_id = id, problem = %error, "signed webhook could not be read; kept for `csatwatch reprocess`");
                    Answer::Unparseable {
                        problem: error.0,
                        delivery_id: id,
                    }
                }
                Err(e) => unavailable(&e),
            };
        }
    };
    // Recording runs to its end even if the client goes away meanwhile.
    let (task_state, task_source) = (state.clone(), source.clone());
    let taken = crate::store::to_completion(async move {
        intake::take(
            &task_source,
            &task_state.pipeline,
            &task_state.store,
            &task_state.http,
            delivery,
            parsed,
            &task_state.fetch_wake,
        )
        .await
    })
    .await;
    match taken {
        Err(e) => unavailable(&e),
        Ok(Taken::NoRating(reason)) => {
            count(name, "no_rating");
            tracing::debug!(source = name, reason = %reason, "webhook carries no rating");
            Answer::Ignored { reason }
        }
        Ok(Taken::Reply(body)) => {
            count(name, "handshake");
            Answer::Done(body)
        }
        Ok(Taken::Pending {
            delivery_id,
            reason,
        }) => {
            count(name, "pending");
            tracing::warn!(source = name, delivery_id, reason = %reason, "could not fetch the delivery's ratings yet; kept and retried in the background");
            Answer::Kept {
                status: "pending",
                delivery_id,
                reason: "the ratings will be fetched from the helpdesk's API in the background",
            }
        }
        Ok(Taken::FetchFailed {
            delivery_id,
            reason,
        }) => {
            count(name, "fetch_failed");
            tracing::error!(source = name, delivery_id, reason = %reason, "the delivery's ratings could not be fetched; check the source's API credentials, then run `csatwatch reprocess`");
            Answer::Kept {
                status: "kept",
                delivery_id,
                reason: "the ratings could not be fetched; the delivery is kept for reprocessing",
            }
        }
        Ok(Taken::Recorded(recorded)) => {
            let status = if recorded.is_duplicate() {
                "duplicate"
            } else {
                "recorded"
            };
            count(name, status);
            for r in &recorded.ratings {
                tracing::info!(
                    source = name,
                    rating_id = r.rating_id,
                    conversation_id = %r.conversation_id,
                    outcome = r.outcome.as_str(),
                    sentiment = %r.sentiment,
                    alerts = r.alerts,
                    "rating recorded"
                );
            }
            Answer::Done(json!({
                "status": status,
                "delivery_id": recorded.delivery_id,
                "ratings": recorded.ratings,
            }))
        }
    }
}
