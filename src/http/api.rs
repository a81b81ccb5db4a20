//! The read API under `/api/v1`, behind the bearer tokens of [`super::auth`]:
//!
//! - `GET /api/v1/report`: the same parameters and JSON as `csatwatch report`.
//! - `GET /api/v1/ratings`: ratings newest first, filtered, a page at a time
//!   (`limit`, `cursor`); with `format=csv` or `format=ndjson`, every
//!   matching rating streamed oldest first (an export), in constant memory.
//!
//! Bad parameters get a 400 naming the parameter; a database failure a 503.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::AppState;
use crate::reports::export::{CSV_HEADER, ExportRecord};
use crate::reports::params::{LISTING_KEYS, Params, listing_range, report_request};
use crate::reports::{self, ReportError};
use crate::store::{RatingQuery, RatingRow, StoreError};

/// An API failure, answered as JSON `{"error": …}`.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unavailable(StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
            }
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "API request failed on the database (503)");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "the database is unavailable; try again"})),
                )
                    .into_response()
            }
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Invalid(m) => ApiError::BadRequest(m),
            ReportError::Store(e) => ApiError::Unavailable(e),
        }
    }
}

/// `GET /api/v1/report`.
pub async fn report(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<reports::Report>, ApiError> {
    let params = Params::from_query(query.as_deref());
    if let Some(f) = params.get("format")
        && f != "json"
    {
        return Err(ApiError::BadRequest(format!(
            "format: {f:?}; the report API answers json (use the CLI for table or csv)"
        )));
    }
    let settings = &state.settings.reports;
    let req = report_request(
        &params,
        &settings.time_zone(),
        settings.min_sample,
        state.clock.now_ms(),
    )
    .map_err(ApiError::BadRequest)?;
    Ok(Json(reports::compute_report(&state.store, &req).await?))
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

fn encode_cursor(rated_at: i64, id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{rated_at}.{id}"))
}

fn decode_cursor(text: &str) -> Option<(i64, i64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let (a, b) = std::str::from_utf8(&raw).ok()?.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// `GET /api/v1/ratings`.
pub async fn ratings(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_query(query.as_deref());
    params.only(LISTING_KEYS).map_err(ApiError::BadRequest)?;
    let tz = state.settings.reports.time_zone();
    let (since_ms, until_ms) = listing_range(&params, &tz).map_err(ApiError::BadRequest)?;
    let q = RatingQuery {
        since_ms,
        until_ms,
        filter: params.filter().map_err(ApiError::BadRequest)?,
    };
    match params.get("format").unwrap_or("json") {
        "json" => {}
        "csv" => return Ok(export(state, q, Format::Csv)),
        "ndjson" => return Ok(export(state, q, Format::Ndjson)),
        other => {
            return Err(ApiError::BadRequest(format!(
                "format: {other:?}; use json, csv or ndjson"
            )));
        }
    }
    let limit = match params.get("limit") {
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit: {l:?}; use 1 to {MAX_LIMIT}"
                )));
            }
        },
        None => DEFAULT_LIMIT,
    };
    let after = match params.get("cursor") {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::BadRequest("cursor: not a cursor this API returned".into())
        })?),
        None => None,
    };
    let rows = state
        .store
        .list_ratings(&q, after, limit)
        .await
        .map_err(ApiError::Unavailable)?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| encode_cursor(r.rated_at, r.id)))
        .flatten();
    let ratings: Vec<ExportRecord> = rows.into_iter().map(ExportRecord::from).collect();
    Ok(Json(json!({"ratings": ratings, "next_cursor": next_cursor})).into_response())
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Csv,
    Ndjson,
}

/// Streams every matching rating. A task reads rows one at a time from the
/// database into a small channel; the response body drains it a batch at a
/// time into chunks. Memory stays bounded however many rows match, and a
/// client that stops reading stops the query.
fn export(state: AppState, q: RatingQuery, format: Format) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<RatingRow>(1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<u64, StoreError>>();
    tokio::spawn(async move {
        let _ = done_tx.send(state.store.export_ratings(&q, tx).await);
    });
    let header_row =
        matches!(format, Format::Csv).then(|| Bytes::from_static(CSV_HEADER.as_bytes()));
    let start = (rx, Some(done_rx), header_row);
    let stream = futures::stream::unfold(start, move |(mut rx, done, header_row)| async move {
        if let Some(h) = header_row {
            return Some((Ok(h), (rx, done, None)));
        }
        let mut batch = Vec::with_capacity(256);
        if rx.recv_many(&mut batch, 256).await == 0 {
            // The reader finished: cut the response short if it failed.
            return match done?.await {
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "export failed part-way; the response is cut short; check the database, then export again");
                    Some((
                        Err(std::io::Error::other("the export failed part-way")),
                        (rx, None, None),
                    ))
                }
                Ok(Ok(rows)) => {
                    tracing::info!(rows, "export streamed");
                    None
                }
                Err(_) => None,
            };
        }
        let mut buf = String::with_capacity(batch.len() * 256);
        for row in batch {
            let record = ExportRecord::from(row);
            match format {
                Format::Csv => record.write_csv(&mut buf),
                Format::Ndjson => record.write_ndjson(&mut buf),
            }
        }
        Some((
            Ok::<Bytes, std::io::Error>(Bytes::from(buf)),
            (rx, done, None),
        ))
    });
    let (content_type, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "ratings.csv"),
        Format::Ndjson => ("application/x-ndjson", "ratings.ndjson"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor(1_795_388_400_000, 42);
        assert_eq!(decode_cursor(&c), Some((1_795_388_400_000, 42)));
        assert_eq!(decode_cursor("nope"), None);
    }
}
