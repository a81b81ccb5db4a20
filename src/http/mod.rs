//! The HTTP interface: one listener, a few routes.
//!
//! - `POST /webhooks/{source}`: a helpdesk delivery ([`webhooks`]).
//! - `POST /slack/interactions`: alert button clicks ([`slack`]).
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` ([`health`]).
//! - `/` and `/dashboard/...`: the dashboard ([`crate::dashboard`]).
//! - `GET /api/v1/report`, `GET /api/v1/ratings` ([`api`]), behind the
//!   bearer tokens of [`auth`].
//!
//! Handlers answer with [`answer::Answer`], the one place outcomes become
//! status codes and JSON bodies.
//!
//! Every request gets an `x-request-id` (the caller's, or a new UUID),
//! logged on its span and returned in the response. A request whose
//! `Content-Length` is over `server.max_body_bytes` is answered 413 before
//! its body is read; a handler that panics is answered 500 and logged at
//! ERROR, never a dropped connection. The server itself (timeouts, the
//! connection cap) is [`server`].

pub mod answer;
pub mod api;
pub mod auth;
pub mod health;
pub mod server;
pub mod slack;
pub mod slack_actions;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::clock::Clock;
use crate::pipeline::Pipeline;
use crate::settings::Settings;
use crate::sources::SourceRegistry;
use crate::store::Store;

/// What every handler can reach: one `Arc`, so the clone axum makes for
/// every request is one reference count, not one per part.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub pipeline: Pipeline,
    pub sources: Arc<SourceRegistry>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// For sources that fetch ratings from their helpdesk's API.
    pub http: reqwest::Client,
    /// Wakes the background fetcher when a delivery is left pending.
    pub fetch_wake: Arc<tokio::sync::Notify>,
    /// What each source's helpdesk lets a person do from an alert.
    pub actions: Arc<crate::sources::actions::ActionRegistry>,
    /// The bot-token Slack client (modals, ephemeral replies, user lookups).
    pub slack: Option<crate::sinks::slack::SlackClient>,
    /// Wakes the dispatcher after an action enqueued a thread reply.
    pub alerts_wake: Arc<tokio::sync::Notify>,
    /// The `[[api.tokens]]` and the session key of the dashboard.
    pub access: Arc<crate::dashboard::Access>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The routes with their layers.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.server.max_body_bytes;
    let timeout = state.settings.server.request_timeout;
    let tokens = auth::ApiTokens::from_settings(&state.settings.api);
    if tokens.is_empty() {
        tracing::info!("the read API (/api/v1) is off: no [[api.tokens]] are configured");
    }
    let api = Router::new()
        .route("/report", get(api::report))
        .route("/ratings", get(api::ratings))
        .route_layer(axum::middleware::from_fn_with_state(
            tokens,
            auth::require_token,
        ));
    let routes = Router::new()
        .nest("/api/v1", api)
        .route(
            "/webhooks/{source}",
            post(webhooks::receive).layer(DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/slack/interactions",
            post(slack::interactions).layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(crate::dashboard::routes())
        // Inside the router, so each request's matched route is known.
        .route_layer(axum::middleware::from_fn(crate::exporter::track_http))
        .with_state(state);
    with_layers(routes, max_body, timeout)
}

/// The layers every route gets, outermost last: request ids, tracing, panic
/// catching, the early body-size check and the request timeout.
fn with_layers(routes: Router, max_body: usize, timeout: std::time::Duration) -> Router {
    routes
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::from_fn(
            move |request: Request<axum::body::Body>, next: axum::middleware::Next| async move {
                if declared_length(&request).is_some_and(|n| n > max_body as u64) {
                    return too_large(max_body);
                }
                next.run(request).await
            },
        ))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: query strings can carry tokens.
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The `Content-Length` the client declared, if any (and readable).
fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// 413 without reading the body, and the connection closed: the client
/// may still be sending it.
fn too_large(max_body: usize) -> Response {
    let mut response = (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(serde_json::json!({
            "error": format!("the body is larger than the limit of {max_body} bytes (server.max_body_bytes)")
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A panic in a handler: logged at ERROR (someone must fix the bug), and a
/// plain 500 to the client, whose connection stays usable.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    metrics::counter!("csatwatch_http_panics_total").increment(1);
    tracing::error!(panic = %message, "a request handler panicked; answered 500 (a bug: please report it)");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({ "error": "internal error; nothing was recorded" })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    fn test_router() -> Router {
        let routes = Router::new()
            .route(
                "/panic",
                get(|| async {
                    if true {
                        panic!("a bug in a handler");
                    }
                    "unreachable"
                }),
            )
            .route("/echo", post(|body: axum::body::Bytes| async move { body }));
        with_layers(routes, 16, std::time::Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500() {
        let request = Request::get("/panic")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = test_router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_413_before_the_body_is_read() {
        // A body that never ends: only the header can answer this in time.
        let (_tx, body) =
            tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        let stream = futures_stream(body);
        let request = Request::post("/echo")
            .header(header::CONTENT_LENGTH, "17")
            .body(axum::body::Body::from_stream(stream))
            .unwrap();
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            test_router().oneshot(request),
        )
        .await
        .expect("answered at once")
        .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let request = Request::post("/echo")
            .header(header::CONTENT_LENGTH, "16")
            .body(axum::body::Body::from(vec![b'x'; 16]))
            .unwrap();
        let response = test_router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    fn futures_stream(
        mut rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
    ) -> impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
