//! Health and metrics: `/healthz` (the process answers), `/readyz` (the
//! database answers and every migration is applied), `/metrics`
//! (Prometheus text format).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ready().await {
        Ok(true) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": state.store.backend_name() })),
        )
            .into_response(),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": "database migrations are not all applied; run `csatwatch migrate`" })),
        )
            .into_response(),
        Err(crate::store::StoreError::FileLost(problem)) => (
            // Logged at ERROR once, where it was noticed.
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": problem })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "reason": "the database is unavailable" })),
            )
                .into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            crate::exporter::render(handle),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process\n",
        )
            .into_response(),
    }
}
