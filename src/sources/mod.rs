//! Sources: one folder per helpdesk. A source knows its helpdesk's signature
//! scheme and payload shapes and turns a delivery into [`RatingEvent`]s;
//! nothing else in the crate knows a helpdesk's JSON.
//!
//! Adding a helpdesk means adding a folder here and one line in [`build`].

pub mod generic;
pub mod registry;
pub mod signature;
pub mod zendesk;

use std::sync::Arc;

use axum::http::{HeaderMap, Method, Uri};
use serde_json::Value;

use crate::domain::RatingEvent;
use crate::settings::{ConfigProblem, SourceSettings};

pub use registry::{ConfiguredSource, SourceRegistry};

/// One webhook delivery as received: the raw body bytes, never re-serialised.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub method: &'a Method,
    /// The request target as received (path and query), for schemes that sign it.
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// "Now" in Unix milliseconds, for replay windows.
    pub now_ms: i64,
}

impl<'a> WebhookRequest<'a> {
    /// A header's value as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a verified delivery contains.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// One or more ratings. `delivery_id` is the helpdesk's id for this
    /// delivery (the same across its retries) where it sends one; without it
    /// the body's hash identifies the delivery.
    Ratings {
        delivery_id: Option<String>,
        ratings: Vec<RatingEvent>,
    },
    /// A valid delivery that carries no rating (a ping, another topic, an
    /// unanswered survey). Answered 202 and not stored.
    NoRating { reason: String },
    /// A verification handshake: answered 200 with this JSON body.
    Reply(Value),
}

/// Why a delivery failed authentication: always a 401, never more detail to
/// the caller than "bad signature".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    MissingHeader(String),
    #[error("the signature does not match")]
    Mismatch,
    #[error("the timestamp is outside the replay window ({age_secs} s from now)")]
    Stale { age_secs: i64 },
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
}

/// Why a signed delivery could not be read. The message is returned to the
/// helpdesk in the 400 body, so it names the problem (a field, a value) and
/// never echoes customer text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        ParseError(message.into())
    }
}

/// A helpdesk adapter. Implementations are cheap to call and do no I/O.
pub trait Source: Send + Sync + 'static {
    /// The `kind` in settings, e.g. `"zendesk"`.
    fn kind(&self) -> &'static str;

    /// Checks the delivery's signature (and replay window) on the raw body,
    /// in constant time.
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError>;

    /// Reads a verified delivery.
    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError>;
}

/// The kinds this build knows, for messages.
pub const KINDS: &[&str] = &["zendesk", "generic"];

/// Builds the source a `[[sources]]` entry describes. `key` is the entry's
/// settings path (`sources[2]`) for messages.
pub fn build(key: &str, settings: &SourceSettings) -> Result<Arc<dyn Source>, Vec<ConfigProblem>> {
    match settings.kind.as_str() {
        "zendesk" => zendesk::ZendeskSource::from_settings(key, settings).map(|s| Arc::new(s) as _),
        "generic" => generic::GenericSource::from_settings(key, settings).map(|s| Arc::new(s) as _),
        other => Err(vec![ConfigProblem::new(
            format!("{key}.kind"),
            format!(
                "unknown source kind {other:?}; use one of: {}",
                KINDS.join(", ")
            ),
        )]),
    }
}

/// Reads a JSON body, naming the problem (line and column) if it is not JSON.
pub fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| {
        ParseError::new(format!(
            "the body is not valid JSON ({} at line {}, column {})",
            match e.classify() {
                serde_json::error::Category::Eof => "it ends early",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected data",
                serde_json::error::Category::Io => "read error",
            },
            e.line(),
            e.column()
        ))
    })
}
