//! Sources: one folder per helpdesk. A source knows its helpdesk's signature
//! scheme and payload shapes and turns a delivery into [`RatingEvent`]s;
//! nothing else in the crate knows a helpdesk's JSON.
//!
//! Adding a helpdesk means adding a folder here and one line in [`KINDS`]
//! (docs/architecture.md has the whole recipe).

pub mod actions;
pub mod cursor;
pub mod http_api;
pub mod json;
pub mod registry;
pub mod settings;
pub mod signature;
#[cfg(test)]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use serde_json::Value;

use crate::domain::RatingEvent;
use crate::settings::ConfigProblem;

pub use json::{describe_value, parse_json, scalar_text};
pub use registry::{ConfiguredSource, PollPlan, SourceRegistry};
pub use settings::SourceTable;

/// Builds one kind's source from its table.
pub type Build = fn(&SourceTable) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>>;

/// One kind this build knows.
pub struct Kind {
    /// Its `kind` in settings.
    pub name: &'static str,
    /// Builds a source of this kind from its table.
    pub build: Build,
    /// The JSON Schema of its own keys (`<Kind>Settings`), for
    /// `csatwatch config-schema`.
    pub settings_schema: fn() -> schemars::Schema,
}

/// Declares each kind's module and its entry in [`KINDS`], so adding a
/// helpdesk is its folder and one line in the list below: the folder's
/// name and its settings type.
macro_rules! kinds {
    ($($kind:ident: $settings:ident),* $(,)?) => {
        $(pub mod $kind;)*

        /// Every kind this build knows.
        pub const KINDS: &[Kind] = &[$(Kind {
            name: stringify!($kind),
            build: $kind::build,
            settings_schema: || schemars::schema_for!($kind::$settings),
        }),*];
    };
}

kinds! {
    zendesk: ZendeskSettings,
    zendesk_csat: ZendeskCsatSettings,
    intercom: IntercomSettings,
    helpscout: HelpScoutSettings,
    chatwoot: ChatwootSettings,
    devrev: DevRevSettings,
    freshdesk: FreshdeskSettings,
    gorgias: GorgiasSettings,
    hubspot: HubspotSettings,
    generic: GenericSettings,
}

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

/// A boxed future, for the async methods of [`HelpdeskApi`] (which must
/// stay object-safe: sources live behind `Arc<dyn Webhook>`).
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

/// A helpdesk's webhook: what every source has. Implementations are cheap
/// to call and do no I/O.
pub trait Webhook: Send + Sync + 'static {
    /// The `kind` in settings, e.g. `"zendesk"`.
    fn kind(&self) -> &'static str;

    /// Checks the delivery's signature (and replay window) on the raw body,
    /// in constant time.
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), SignatureError>;

    /// Reads a verified delivery.
    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Parsed, ParseError>;

    /// The helpdesk's API, when this source has its credentials
    /// (`[sources.api]`): fetches and polls go through it.
    fn api(&self) -> Option<&dyn HelpdeskApi> {
        None
    }

    /// What a person can do to a ticket from its alert through this
    /// helpdesk's API (the kind's `actions.rs`); `None` without credentials
    /// or where the helpdesk has no such API.
    fn actions(&self) -> Option<Arc<dyn actions::TicketActions>> {
        None
    }
}

/// A helpdesk's API, for the sources that have one configured: fetching
/// what a delivery only names, and polling pages of ratings.
pub trait HelpdeskApi: Send + Sync {
    /// Fetches one rating a delivery referred to ([`Parsed::Fetch`]).
    /// Helpdesks whose deliveries never answer `Parsed::Fetch` keep this default.
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        reference: &'a FetchRef,
    ) -> BoxFuture<'a, Result<Fetched, FetchError>> {
        let _ = http;
        Box::pin(async move {
            Err(FetchError::permanent(format!(
                "this source cannot fetch {} {} from its API",
                reference.kind, reference.id
            )))
        })
    }

    /// Reads one page of ratings. Rate limits come back as a retryable
    /// [`FetchError`] with `retry_after`.
    fn poll_page<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: &'a PollRequest,
    ) -> BoxFuture<'a, Result<PollPage, FetchError>>;

    /// How far back a poll re-reads by default (`poll_overlap`): ratings
    /// change after they were created. One day unless the helpdesk says.
    fn default_overlap(&self) -> Duration {
        Duration::from_secs(24 * 3600)
    }

    /// Requests per minute polling may make by default
    /// (`poll_requests_per_minute`): a share of the helpdesk's documented
    /// rate limit, leaving the rest to the team's other integrations.
    fn default_requests_per_minute(&self) -> u32;
}

/// The kind names this build knows, for messages.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
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

/// A delivery id for a body that names what to fetch and nothing that
/// changes between two ratings: the references and the receipt time
/// (which a stored delivery keeps, so a background retry gets the same id).
pub fn receipt_delivery_id(references: &[FetchRef], now_ms: i64) -> String {
    let ids: Vec<&str> = references.iter().map(|r| r.id.as_str()).collect();
    format!("{}@{now_ms}", ids.join(","))
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
