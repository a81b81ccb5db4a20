//! Intake: from a verified, parsed delivery to recorded ratings. Shared by
//! the webhook handler, the background fetcher (deliveries whose ratings
//! must be fetched from a helpdesk API) and `csatwatch reprocess`, so all
//! three treat a delivery the same way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::{RatingEvent, Via};
use crate::pipeline::{Pipeline, Recorded};
use crate::sources::{
    ConfiguredSource, FetchError, Fetched, Parsed, SourceRegistry, WebhookRequest,
};
use crate::store::{NewDelivery, Store, StoreResult, StoredDelivery};

/// What a parsed delivery comes to once any fetches are done.
#[derive(Debug)]
pub enum Resolved {
    Ratings(Vec<RatingEvent>),
    NoRating(String),
    Reply(Value),
    /// A fetch failed in a way worth retrying: keep the delivery pending.
    Pending(FetchError),
    /// A fetch failed for good (unknown id, credentials refused).
    Failed(String),
}

/// Fetches what a [`Parsed::Fetch`] refers to, all or nothing: a delivery
/// is recorded only when every rating it names could be read.
pub async fn resolve(
    source: &ConfiguredSource,
    http: &reqwest::Client,
    parsed: Parsed,
) -> Resolved {
    match parsed {
        Parsed::Ratings { ratings, .. } => Resolved::Ratings(ratings),
        Parsed::NoRating { reason } => Resolved::NoRating(reason),
        Parsed::Reply(body) => Resolved::Reply(body),
        Parsed::Fetch { references, .. } => {
            let mut ratings = Vec::new();
            let mut reasons = Vec::new();
            for reference in &references {
                match source.fetch(http, reference).await {
                    Ok(Fetched::Rating(rating)) => ratings.push(*rating),
                    Ok(Fetched::NoRating(reason)) => reasons.push(reason),
                    Err(e) if e.retryable => return Resolved::Pending(e),
                    Err(e) => return Resolved::Failed(e.message),
                }
            }
            if ratings.is_empty() {
                Resolved::NoRating(reasons.join("; "))
            } else {
                Resolved::Ratings(ratings)
            }
        }
    }
}

/// The delivery key: the helpdesk's delivery id when the source found one,
/// else `sha256:<hex>` of the body.
pub fn delivery_key(parsed: Option<&Parsed>, body: &[u8]) -> String {
    match parsed {
        Some(Parsed::Ratings {
            delivery_id: Some(id),
            ..
        })
        | Some(Parsed::Fetch {
            delivery_id: Some(id),
            ..
        }) => format!("id:{id}"),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(body))),
    }
}

/// Headers never stored with a delivery: credentials.
fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || name.contains("token")
        || name.contains("secret")
        || name.contains("api-key")
        || name.contains("apikey")
        || name.contains("password")
}

/// The request line and non-secret headers, as stored with a delivery.
pub fn request_meta(method: &Method, uri: &Uri, headers: &HeaderMap) -> String {
    // Written straight out (every webhook pays for it), in the shape a
    // `json!` object had: keys sorted, a repeated header's last value.
    let kept: BTreeMap<&str, &str> = headers
        .iter()
        .filter(|(name, _)| !is_sensitive_header(name.as_str()))
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let mut out = Vec::with_capacity(
        64 + kept
            .iter()
            .map(|(n, v)| n.len() + v.len() + 6)
            .sum::<usize>(),
    );
    out.extend_from_slice(b"{\"headers\":{");
    for (i, (name, value)) in kept.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(&mut out, name);
        out.push(b':');
        push_json_string(&mut out, value);
    }
    out.extend_from_slice(b"},\"method\":");
    push_json_string(&mut out, method.as_str());
    out.extend_from_slice(b",\"uri\":");
    push_json_string(&mut out, &uri.to_string());
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// `s` as a JSON string literal (serde_json's escaping), appended to `out`.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A stored delivery's request line and headers, rebuilt for parsing again.
pub struct StoredRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl StoredRequest {
    pub fn from_meta(meta: &str) -> StoredRequest {
        let meta: Value = serde_json::from_str(meta).unwrap_or_default();
        let method = meta["method"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .unwrap_or(Method::POST);
        let uri = meta["uri"]
            .as_str()
            .and_then(|u| u.parse().ok())
            .unwrap_or_default();
        let mut headers = HeaderMap::new();
        if let Some(map) = meta["headers"].as_object() {
            for (k, v) in map {
                if let (Ok(name), Some(Ok(value))) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    v.as_str().map(HeaderValue::from_str),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        StoredRequest {
            method,
            uri,
            headers,
        }
    }

    pub fn request<'a>(&'a self, body: &'a [u8], now_ms: i64) -> WebhookRequest<'a> {
        WebhookRequest {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body,
            now_ms,
        }
    }
}

/// The outcome of handling one stored delivery again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    Recorded,
    StillPending,
    Failed,
    UnknownSource,
}

/// Handles a stored (pending or failed) delivery again: parse, fetch,
/// record. The delivery keeps its key, so recording it takes the stored
/// row over.
pub async fn retry_delivery(
    sources: &SourceRegistry,
    pipeline: &Pipeline,
    store: &Store,
    http: &reqwest::Client,
    delivery: &StoredDelivery,
    via: Via,
    next_attempt_at: impl Fn(i64) -> Option<i64>,
) -> StoreResult<Retried> {
    let Some(source) = &sources.get(&delivery.source) else {
        return Ok(Retried::UnknownSource);
    };
    let stored = StoredRequest::from_meta(&delivery.request_meta);
    let parsed = match source
        .adapter
        .parse(&stored.request(&delivery.body, delivery.received_at))
    {
        Ok(parsed) => parsed,
        Err(e) => {
            store.update_failed_delivery(delivery.id, &e.0).await?;
            return Ok(Retried::Failed);
        }
    };
    let resolved = resolve(source, http, parsed).await;
    let as_new = NewDelivery {
        source: delivery.source.clone(),
        delivery_key: delivery.delivery_key.clone(),
        received_at_ms: delivery.received_at,
        via: via.as_str().to_string(),
        request_meta: delivery.request_meta.clone(),
        body: delivery.body.clone(),
    };
    match resolved {
        Resolved::Ratings(ratings) => {
            pipeline
                .record(source, Some(&as_new), &ratings, via)
                .await?;
            Ok(Retried::Recorded)
        }
        Resolved::NoRating(_) | Resolved::Reply(_) => {
            pipeline.record(source, Some(&as_new), &[], via).await?;
            Ok(Retried::Recorded)
        }
        Resolved::Pending(e) => {
            let next = next_attempt_at(delivery.attempts);
            store
                .reschedule_pending_delivery(delivery.id, next, &e.message)
                .await?;
            Ok(if next.is_some() {
                Retried::StillPending
            } else {
                Retried::Failed
            })
        }
        Resolved::Failed(message) => {
            store
                .reschedule_pending_delivery(delivery.id, None, &message)
                .await?;
            store.update_failed_delivery(delivery.id, &message).await?;
            Ok(Retried::Failed)
        }
    }
}

/// Retries pending deliveries in the background: woken when one is saved,
/// and every 30 s. Backoff doubles from 30 s to an hour; after three days a
/// delivery is marked failed (and `reprocess` can still take it).
#[derive(Debug)]
pub struct Fetcher {
    pub sources: Arc<SourceRegistry>,
    pub pipeline: Pipeline,
    pub store: Store,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
}

/// How long a pending delivery is retried before it is marked failed.
pub const PENDING_GIVE_UP_MS: i64 = 3 * 24 * 3600 * 1000;

impl Fetcher {
    /// The next try after `attempts` tries, or `None` to give up.
    pub fn next_attempt(&self, received_at: i64, attempts: i64) -> Option<i64> {
        let now = self.clock.now_ms();
        if now - received_at >= PENDING_GIVE_UP_MS {
            return None;
        }
        let delay = (30_000i64 << attempts.clamp(0, 7)).min(3_600_000);
        Some(now + delay)
    }

    /// Handles every pending delivery that is due; returns how many were recorded.
    pub async fn run_once(&self) -> StoreResult<usize> {
        let mut recorded = 0;
        for delivery in self
            .store
            .due_pending_deliveries(self.clock.now_ms(), 50)
            .await?
        {
            let received_at = delivery.received_at;
            let outcome = retry_delivery(
                &self.sources,
                &self.pipeline,
                &self.store,
                &self.http,
                &delivery,
                Via::Webhook,
                |attempts| self.next_attempt(received_at, attempts),
            )
            .await?;
            match outcome {
                Retried::Recorded => {
                    recorded += 1;
                    tracing::info!(delivery_id = delivery.id, source = %delivery.source, "pending delivery fetched and recorded");
                }
                Retried::Failed => tracing::error!(
                    delivery_id = delivery.id,
                    source = %delivery.source,
                    "a delivery's ratings could not be fetched and it was given up; check the source's API credentials, then run `csatwatch reprocess`"
                ),
                Retried::StillPending => {
                    tracing::warn!(delivery_id = delivery.id, source = %delivery.source, "fetching a delivery's ratings failed again; will retry")
                }
                Retried::UnknownSource => {}
            }
        }
        Ok(recorded)
    }

    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "the fetcher cannot reach the database");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }
}

/// Records a freshly received delivery: what the webhook handler does once
/// the signature is checked. Returns what to answer.
pub async fn take(
    source: &ConfiguredSource,
    pipeline: &Pipeline,
    store: &Store,
    http: &reqwest::Client,
    delivery: NewDelivery,
    parsed: Parsed,
    fetch_wake: &Notify,
) -> StoreResult<Taken> {
    match resolve(source, http, parsed).await {
        Resolved::Ratings(ratings) => Ok(Taken::Recorded(
            pipeline
                .record(source, Some(&delivery), &ratings, Via::Webhook)
                .await?,
        )),
        Resolved::NoRating(reason) => Ok(Taken::NoRating(reason)),
        Resolved::Reply(body) => Ok(Taken::Reply(body)),
        Resolved::Pending(e) => {
            let retry_in = e
                .retry_after
                .map(|d| d.as_millis() as i64)
                .unwrap_or(30_000)
                .max(1_000);
            let id = store
                .save_pending_delivery(&delivery, &e.message, delivery.received_at_ms + retry_in)
                .await?;
            fetch_wake.notify_one();
            Ok(Taken::Pending {
                delivery_id: id,
                reason: e.message,
            })
        }
        Resolved::Failed(message) => {
            let id = store.save_failed_delivery(&delivery, &message).await?;
            Ok(Taken::FetchFailed {
                delivery_id: id,
                reason: message,
            })
        }
    }
}

/// What the webhook handler answers.
#[derive(Debug)]
pub enum Taken {
    Recorded(Recorded),
    NoRating(String),
    Reply(Value),
    /// Kept; its ratings are fetched again in the background (202).
    Pending {
        delivery_id: i64,
        reason: String,
    },
    /// Kept as failed; a fetch was refused for good (202 too: the helpdesk
    /// cannot fix it by retrying, and it may give up on the endpoint).
    FetchFailed {
        delivery_id: i64,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `request_meta` wrote before it was written out by hand: a
    /// `json!` object (sorted keys, a repeated header's last value).
    fn as_json_object(method: &Method, uri: &Uri, headers: &HeaderMap) -> String {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .filter(|(name, _)| !is_sensitive_header(name.as_str()))
            .filter_map(|(name, value)| {
                Some((
                    name.as_str().to_string(),
                    Value::String(value.to_str().ok()?.to_string()),
                ))
            })
            .collect();
        serde_json::json!({ "method": method.as_str(), "uri": uri.to_string(), "headers": headers })
            .to_string()
    }

    #[test]
    fn the_request_meta_is_the_json_object_it_always_was() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-zendesk-webhook-signature",
            HeaderValue::from_static("abc=="),
        );
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-repeated", HeaderValue::from_static("first"));
        headers.append(
            "x-repeated",
            HeaderValue::from_static("last \"quoted\" \\ back"),
        );
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.insert("x-api-token", HeaderValue::from_static("secret"));
        headers.insert(
            "x-binary",
            HeaderValue::from_bytes(b"caf\xc3\xa9").expect("opaque bytes are a header value"),
        );
        headers.insert("a-first", HeaderValue::from_static("1"));
        let uri: Uri = "/webhooks/zendesk?x=1&y=%22".parse().expect("a uri");
        let meta = request_meta(&Method::POST, &uri, &headers);
        assert_eq!(meta, as_json_object(&Method::POST, &uri, &headers));
        assert!(
            meta.contains(r#""x-repeated":"last \"quoted\" \\ back""#),
            "{meta}"
        );
        assert!(
            !meta.contains("secret"),
            "credentials are never stored: {meta}"
        );
        assert!(
            !meta.contains("x-binary"),
            "a header that is not text is left out: {meta}"
        );
        let empty = request_meta(&Method::GET, &Uri::from_static("/"), &HeaderMap::new());
        assert_eq!(
            empty,
            as_json_object(&Method::GET, &Uri::from_static("/"), &HeaderMap::new())
        );
        let stored = StoredRequest::from_meta(&meta);
        assert_eq!(stored.headers["content-type"], "application/json");
        assert_eq!(stored.uri, uri);
    }
}
