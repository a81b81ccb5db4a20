//! The one answer type at the HTTP edge: every handler returns an
//! [`Answer`], and this is the one place that maps an outcome to its status
//! code and JSON body. Bodies name the problem and never echo internals or
//! customer text.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a request's handling came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Done (recorded, a duplicate of one recorded, a handshake, a click):
    /// 200 with this body.
    Done(Value),
    /// Done, and the caller needs no body (Slack): an empty 200.
    Empty,
    /// A valid request that carries nothing to record: 202.
    Ignored { reason: String },
    /// Kept to finish later (`status`: `pending` or `kept`): 202.
    Kept {
        status: &'static str,
        delivery_id: i64,
        reason: &'static str,
    },
    /// Signed but unreadable, and kept for `reprocess`: 400 naming the problem.
    Unparseable { problem: String, delivery_id: i64 },
    /// Unreadable and not kept: 400.
    BadRequest(&'static str),
    /// Missing or wrong signature: 401.
    Unauthorized(&'static str),
    /// Nothing here (an unknown source, a feature switched off): 404.
    NotFound(&'static str),
    /// The database is unavailable; nothing was recorded: 503 with
    /// `Retry-After`, so the caller retries.
    Unavailable(&'static str),
}

impl Answer {
    /// The status this answer is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            Answer::Done(_) | Answer::Empty => StatusCode::OK,
            Answer::Ignored { .. } | Answer::Kept { .. } => StatusCode::ACCEPTED,
            Answer::Unparseable { .. } | Answer::BadRequest(_) => StatusCode::BAD_REQUEST,
            Answer::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Answer::NotFound(_) => StatusCode::NOT_FOUND,
            Answer::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Answer::Done(body) => (StatusCode::OK, body),
            Answer::Empty => return StatusCode::OK.into_response(),
            Answer::Ignored { reason } => (
                StatusCode::ACCEPTED,
                json!({ "status": "ignored", "reason": reason }),
            ),
            Answer::Kept {
                status,
                delivery_id,
                reason,
            } => (
                StatusCode::ACCEPTED,
                json!({ "status": status, "delivery_id": delivery_id, "reason": reason }),
            ),
            Answer::Unparseable {
                problem,
                delivery_id,
            } => (
                StatusCode::BAD_REQUEST,
                json!({ "error": problem, "delivery_id": delivery_id, "kept": true }),
            ),
            Answer::BadRequest(error) => (StatusCode::BAD_REQUEST, json!({ "error": error })),
            Answer::Unauthorized(error) => (StatusCode::UNAUTHORIZED, json!({ "error": error })),
            Answer::NotFound(error) => (StatusCode::NOT_FOUND, json!({ "error": error })),
            Answer::Unavailable(error) => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": error })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            }
        };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_status() {
        // `status()` (what a trace records) says what the response sends.
        let cases = [
            (Answer::Done(json!({})), 200),
            (Answer::Empty, 200),
            (
                Answer::Ignored {
                    reason: "ping".into(),
                },
                202,
            ),
            (
                Answer::Kept {
                    status: "pending",
                    delivery_id: 1,
                    reason: "later",
                },
                202,
            ),
            (
                Answer::Unparseable {
                    problem: "x".into(),
                    delivery_id: 1,
                },
                400,
            ),
            (Answer::BadRequest("x"), 400),
            (Answer::Unauthorized("x"), 401),
            (Answer::NotFound("x"), 404),
            (Answer::Unavailable("x"), 503),
        ];
        for (answer, status) in cases {
            let response = answer.clone().into_response();
            assert_eq!(response.status().as_u16(), status, "{answer:?}");
            assert_eq!(answer.status().as_u16(), status, "{answer:?}");
        }
        let unavailable = Answer::Unavailable("x").into_response();
        assert_eq!(unavailable.headers()[header::RETRY_AFTER], "5");
    }
}
