//! The HTTP interface: one listener, a few routes.
//!
//! - `POST /webhooks/{source}`: a helpdesk delivery ([`webhooks`]).
//! - `POST /slack/interactions`: alert button clicks ([`slack`]).
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` ([`health`]).
//! - `GET /api/v1/report`, `GET /api/v1/ratings` ([`api`]), behind the
//!   bearer tokens of [`auth`].
//!
//! Every request gets an `x-request-id` (the caller's, or a new UUID),
//! logged on its span and returned in the response.

pub mod api;
pub mod auth;
pub mod health;
pub mod slack;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::clock::Clock;
use crate::pipeline::Pipeline;
use crate::settings::Settings;
use crate::sources::SourceRegistry;
use crate::store::Store;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
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
    Router::new()
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
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
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
