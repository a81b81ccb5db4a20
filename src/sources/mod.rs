//! Sources: one folder per helpdesk. A source knows its helpdesk's signature
//! scheme and payload shapes and turns a delivery into [`RatingEvent`]s;
//! nothing else in the crate knows a helpdesk's JSON.
//!
//! Adding a helpdesk means adding a folder here and one line in [`build`].

pub mod actions;
pub mod api;
pub mod chatwoot;
pub mod common;
pub mod devrev;
pub mod freshdesk;
pub mod generic;
pub mod gorgias;
pub mod helpscout;
pub mod hubspot;
pub mod intercom;
pub mod registry;
pub mod signature;
pub mod window;
pub mod zendesk;
pub mod zendesk_csat;

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
    /// The delivery names ratings without carrying them (HubSpot sends ids,
    /// a Freshdesk rule may send only the ticket id): the source fetches
    /// each from its helpdesk's API with [`Source::fetch`] before they are
    /// recorded. If a fetch fails, the delivery is kept and fetched again in
    /// the background; the helpdesk is answered 202 either way.
    Fetch {
        delivery_id: Option<String>,
        references: Vec<FetchRef>,
    },
}

/// Something a source can fetch from its helpdesk's API: what kind of
/// object and its id, as the source itself understands them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRef {
    pub kind: String,
    pub id: String,
}

/// What a fetch found.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    Rating(Box<RatingEvent>),
    /// The object exists but holds no rating (an unanswered survey).
    NoRating(String),
}

/// Why a fetch failed. Never carries credentials or customer text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    /// Worth trying again later (a timeout, a 5xx, a 429); false for a 401
    /// or a 404 that will not change by itself.
    pub retryable: bool,
    /// The helpdesk's own hint (`Retry-After` and its variants).
    pub retry_after: Option<std::time::Duration>,
}

impl FetchError {
    pub fn retryable(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

/// One page request of a poll or a backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    /// Where the previous page stopped (the source's own format), or `None`
    /// on the very first page.
    pub cursor: Option<String>,
    /// The first page of a poll cycle: re-read `overlap_ms` before the
    /// cursor's time, because ratings the helpdesk filters by creation time
    /// can change afterwards.
    pub new_cycle: bool,
    pub overlap_ms: i64,
    /// With no cursor: read ratings from this time (Unix ms).
    pub since_ms: i64,
    /// Stop at this time (a backfill's `--until`); `None` for now.
    pub until_ms: Option<i64>,
    pub now_ms: i64,
}

/// One page read by a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPage {
    pub ratings: Vec<RatingEvent>,
    /// The cursor to save: the next page's start, or the high-water mark
    /// when the poll has caught up.
    pub cursor: String,
    /// More pages wait now.
    pub more: bool,
    /// Requests left in the helpdesk's current rate-limit window, when it says.
    pub remaining: Option<u64>,
}

/// A boxed future, for the async methods of [`Source`] (which must stay
/// object-safe: sources live behind `Arc<dyn Source>`).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

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

    /// Fetches one rating a delivery referred to ([`Parsed::Fetch`]) with
    /// the source's API credentials. Sources that never answer
    /// `Parsed::Fetch` keep this default.
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        let _ = http;
        Box::pin(async move {
            Err(FetchError::permanent(format!(
                "this source cannot fetch {} {} from an API",
                reference.kind, reference.id
            )))
        })
    }

    /// Whether this source polls its helpdesk's API: it has a poller and
    /// the API credentials it needs.
    fn can_poll(&self) -> bool {
        false
    }

    /// Reads one page of ratings from the helpdesk's API. Rate limits come
    /// back as a retryable [`FetchError`] with `retry_after`.
    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>> {
        let _ = (http, request);
        Box::pin(async move { Err(FetchError::permanent("this source cannot poll an API")) })
    }
}

/// The kinds this build knows, for messages.
pub const KINDS: &[&str] = &[
    "zendesk",
    "zendesk_csat",
    "intercom",
    "helpscout",
    "chatwoot",
    "devrev",
    "freshdesk",
    "gorgias",
    "hubspot",
    "generic",
];

/// Builds the source a `[[sources]]` entry describes. `key` is the entry's
/// settings path (`sources[2]`) for messages.
pub fn build(key: &str, settings: &SourceSettings) -> Result<Arc<dyn Source>, Vec<ConfigProblem>> {
    match settings.kind.as_str() {
        "zendesk" => zendesk::ZendeskSource::from_settings(key, settings).map(|s| Arc::new(s) as _),
        "generic" => generic::GenericSource::from_settings(key, settings).map(|s| Arc::new(s) as _),
        "freshdesk" => {
            freshdesk::FreshdeskSource::from_settings(key, settings).map(|s| Arc::new(s) as _)
        }
        "gorgias" => gorgias::GorgiasSource::from_settings(key, settings).map(|s| Arc::new(s) as _),
        "hubspot" => hubspot::HubspotSource::from_settings(key, settings).map(|s| Arc::new(s) as _),
        "intercom" => {
            intercom::IntercomSource::from_settings(key, settings).map(|s| Arc::new(s) as _)
        }
        "zendesk_csat" => {
            zendesk_csat::ZendeskCsatSource::from_settings(key, settings).map(|s| Arc::new(s) as _)
        }
        "chatwoot" => {
            chatwoot::ChatwootSource::from_settings(key, settings).map(|s| Arc::new(s) as _)
        }
        "devrev" => devrev::DevRevSource::from_settings(key, settings).map(|s| Arc::new(s) as _),
        "helpscout" => {
            helpscout::HelpScoutSource::from_settings(key, settings).map(|s| Arc::new(s) as _)
        }
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

/// A JSON scalar as text: strings trimmed (empty is `None`), numbers and
/// booleans written out. Helpdesk templates render ids as strings or numbers
/// depending on how the operator quoted them, so both are accepted.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => crate::domain::non_empty(Some(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Describes a value for an error message without echoing customer text:
/// numbers and short words are shown, longer text only by its length.
pub fn describe_value(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() <= 24 => format!("{s:?}"),
        Value::String(s) => format!("a text of {} characters", s.chars().count()),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// Checks a `ticket_url` template: it must be an http(s) URL naming
/// `{conversation_id}`, or every alert would link to the same page.
pub fn check_ticket_url(key: &str, template: Option<&str>) -> Option<ConfigProblem> {
    let template = template?;
    let looks_like_url = template.starts_with("https://") || template.starts_with("http://");
    if !looks_like_url || !template.contains("{conversation_id}") {
        return Some(ConfigProblem::new(
            format!("{key}.ticket_url"),
            "must be an http(s) URL containing {conversation_id}, e.g. https://acme.zendesk.com/agent/tickets/{conversation_id}",
        ));
    }
    None
}

/// Fills a `ticket_url` template. The id is percent-encoded so an id with a
/// space or a slash cannot change the link's path.
pub fn fill_ticket_url(template: &str, conversation_id: &str) -> String {
    let mut encoded = String::with_capacity(conversation_id.len());
    for byte in conversation_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    template.replace("{conversation_id}", &encoded)
}

/// The replay window in milliseconds: the configured one or five minutes.
pub fn replay_window_ms(settings: &SourceSettings) -> i64 {
    settings
        .replay_window
        .map_or(DEFAULT_REPLAY_WINDOW_MS, |w| {
            i64::try_from(w.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Five minutes: the tolerance Standard Webhooks' reference library uses.
pub const DEFAULT_REPLAY_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A zero window would refuse every delivery, which is never what was meant.
pub fn check_replay_window(key: &str, settings: &SourceSettings) -> Option<ConfigProblem> {
    settings.replay_window.filter(|w| w.is_zero()).map(|_| {
        ConfigProblem::new(
            format!("{key}.replay_window"),
            "must be more than 0s; the default is \"5m\"",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_become_text_and_containers_do_not() {
        assert_eq!(scalar_text(&Value::from(" 42 ")), Some("42".into()));
        assert_eq!(scalar_text(&Value::from(42)), Some("42".into()));
        assert_eq!(scalar_text(&Value::from("  ")), None);
        assert_eq!(scalar_text(&serde_json::json!({"a": 1})), None);
    }

    #[test]
    fn long_text_is_described_by_its_length_only() {
        let secret = "the customer wrote something private here";
        let described = describe_value(&Value::from(secret));
        assert!(!described.contains("private"), "{described}");
        assert_eq!(describe_value(&Value::from("bad")), "\"bad\"");
    }

    #[test]
    fn a_ticket_url_cannot_be_redirected_by_the_id() {
        assert_eq!(
            fill_ticket_url("https://x.example/t/{conversation_id}", "1/../admin"),
            "https://x.example/t/1%2F..%2Fadmin"
        );
        assert!(check_ticket_url("s", Some("https://x.example/t/")).is_some());
        assert!(check_ticket_url("s", Some("https://x.example/{conversation_id}")).is_none());
    }
}
