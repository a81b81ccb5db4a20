//! Acting on a ticket from its Slack alert: the [`TicketActions`] a helpdesk
//! offers through its API (add an internal note, reopen, assign, find an
//! agent by email, and names for agent and team ids), built per configured
//! source from its `[sources.api]` credentials, plus a [`NameCache`] so an
//! alert shows names instead of ids without one API call per alert.
//!
//! Each helpdesk's calls live in its folder's `actions.rs`; this file holds
//! what they share. Nothing here logs customer text: a note's body goes to
//! the helpdesk and nowhere else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::RequestBuilder;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use super::{BoxFuture, FetchError};

/// One of the things a person can do to a ticket from its alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketAction {
    /// Add an internal note (never shown to the customer).
    Note,
    /// Reopen the ticket or conversation.
    Reopen,
    /// Assign it to the clicking person's helpdesk agent.
    Assign,
}

impl TicketAction {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketAction::Note => "note",
            TicketAction::Reopen => "reopen",
            TicketAction::Assign => "assign",
        }
    }

    /// Whether repeating the call is harmless (so a failed attempt may be
    /// retried at once): reopening or assigning twice leaves the same state;
    /// a note sent twice shows twice.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, TicketAction::Note)
    }
}

/// The helpdesk calls behind the alert's buttons. Object-safe: sources keep
/// them behind `Arc<dyn TicketActions>`.
pub trait TicketActions: Send + Sync + std::fmt::Debug + 'static {
    /// The helpdesk kind, for messages.
    fn kind(&self) -> &'static str;

    /// Whether the helpdesk's API allows `action` with these credentials.
    fn supports(&self, action: TicketAction) -> bool;

    /// Whether a note needs the author's agent id (Intercom requires
    /// `admin_id`; elsewhere the author defaults to the credentials' owner).
    fn note_needs_agent(&self) -> bool {
        false
    }

    /// Whether reopening needs the actor's agent id (Intercom: `admin_id`).
    fn reopen_needs_agent(&self) -> bool {
        false
    }

    /// Adds an internal note to `ticket`, by `agent` where the API lets the
    /// author be set. `body` already names the Slack user.
    fn add_note<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        body: &'a str,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>>;

    /// Reopens `ticket` (as `agent` where the API needs an actor).
    fn reopen<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>>;

    /// Assigns `ticket` to the agent `agent`.
    fn assign<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: &'a str,
    ) -> BoxFuture<'a, Result<(), FetchError>>;

    /// The helpdesk agent whose email is `email` (case-insensitive), if any.
    fn find_agent<'a>(
        &'a self,
        http: &'a reqwest::Client,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Option<Agent>, FetchError>>;

    /// The name of agent `id`, where ratings carry only ids.
    fn agent_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        let _ = (http, id);
        Box::pin(async { Ok(None) })
    }

    /// The name of team or group `id`, where ratings carry only ids.
    fn team_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        let _ = (http, id);
        Box::pin(async { Ok(None) })
    }

    /// The email of agent `id`, where ratings carry only ids (to find the
    /// agent in Slack for a rule's `dm_agent`).
    fn agent_email<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        let _ = (http, id);
        Box::pin(async { Ok(None) })
    }

    /// Whether ratings of this helpdesk name agents and teams by id only
    /// (so the alert asks [`TicketActions::agent_name`] and `team_name`).
    fn resolves_names(&self) -> bool {
        false
    }
}

/// A helpdesk agent found by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub name: Option<String>,
    /// Some helpdesks' lists include invited or deactivated users.
    pub email: String,
}

/// The actions of every configured source that has API credentials, by
/// source name.
#[derive(Debug, Default)]
pub struct ActionRegistry {
    by_source: HashMap<String, Arc<dyn TicketActions>>,
    names: NameCache,
}

impl ActionRegistry {
    /// The actions of each configured source whose helpdesk has them and
    /// whose `[sources.api]` holds credentials. `name_ttl` is how long a
    /// resolved name is trusted.
    pub fn from_sources(sources: &super::SourceRegistry, name_ttl: Duration) -> ActionRegistry {
        let by_source = sources
            .iter()
            .filter_map(|s| {
                s.adapter
                    .actions()
                    .map(|a| (s.name.as_str().to_string(), a))
            })
            .collect();
        ActionRegistry {
            by_source,
            names: NameCache::new(name_ttl),
        }
    }

    /// A registry with the given actions (tests).
    pub fn with(actions: Vec<(String, Arc<dyn TicketActions>)>, name_ttl: Duration) -> Self {
        ActionRegistry {
            by_source: actions.into_iter().collect(),
            names: NameCache::new(name_ttl),
        }
    }

    /// The actions of the source named `source`, if it has any.
    pub fn get(&self, source: &str) -> Option<&Arc<dyn TicketActions>> {
        self.by_source.get(source)
    }

    /// Which actions the alert of a rating from `source` can offer.
    pub fn offered(&self, source: &str) -> Vec<TicketAction> {
        let Some(actions) = self.get(source) else {
            return Vec::new();
        };
        [
            TicketAction::Note,
            TicketAction::Reopen,
            TicketAction::Assign,
        ]
        .into_iter()
        .filter(|a| actions.supports(*a))
        .collect()
    }

    /// The display name of an agent (`team = false`) or team id of `source`:
    /// from the cache, or the helpdesk's API. `None` when the source does not
    /// resolve names or the lookup failed (the id is then shown; a failure is
    /// cached too, for a tenth of the TTL, so a broken API is not asked on
    /// every alert).
    pub async fn name(
        &self,
        http: &reqwest::Client,
        source: &str,
        id: &str,
        team: bool,
        now_ms: i64,
    ) -> Option<String> {
        let actions = self.get(source).filter(|a| a.resolves_names())?;
        let key = format!(
            "{source}\u{1f}{}\u{1f}{id}",
            if team { "team" } else { "agent" }
        );
        if let Some(hit) = self.names.get(&key, now_ms) {
            metrics::counter!("csatwatch_name_lookups_total", "result" => "cached").increment(1);
            return hit;
        }
        let found = if team {
            actions.team_name(http, id).await
        } else {
            actions.agent_name(http, id).await
        };
        match found {
            Ok(name) => {
                metrics::counter!("csatwatch_name_lookups_total", "result" => "fetched")
                    .increment(1);
                self.names.put(key, name.clone(), now_ms, false);
                name
            }
            Err(error) => {
                metrics::counter!("csatwatch_name_lookups_total", "result" => "failed")
                    .increment(1);
                tracing::warn!(source, team, error = %error, "name lookup failed; the alert shows the id");
                self.names.put(key, None, now_ms, true);
                None
            }
        }
    }
}

/// Names by key, each trusted for a TTL.
#[derive(Debug, Default)]
pub struct NameCache {
    ttl_ms: i64,
    entries: Mutex<HashMap<String, (Option<String>, i64)>>,
}

impl NameCache {
    pub fn new(ttl: Duration) -> Self {
        NameCache {
            ttl_ms: crate::clock::ms(ttl),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(name or None)` while fresh; `None` when absent or expired.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<Option<String>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| *until > now_ms)
            .map(|(name, _)| name.clone())
    }

    fn put(&self, key: String, name: Option<String>, now_ms: i64, failed: bool) {
        let ttl = if failed {
            self.ttl_ms / 10
        } else {
            self.ttl_ms
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: an account with more agents than this refetches some.
        if entries.len() >= 10_000 {
            entries.retain(|_, (_, until)| *until > now_ms);
        }
        entries.insert(key, (name, now_ms + ttl));
    }
}

/// How an action client authenticates.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// HTTP basic auth: user and password.
    Basic(String, SecretString),
    /// A header holding the token (Chatwoot's `api_access_token`).
    Header(&'static str, SecretString),
}

/// The API of one source, for its actions: base URL, credentials, timeout.
/// Debug shows the base URL only.
#[derive(Clone)]
pub struct ActionClient {
    pub base_url: String,
    pub auth: Auth,
    pub timeout: Duration,
    /// Extra headers every call carries (Intercom's API version).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Debug for ActionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ActionClient {
    pub fn new(base_url: &str, auth: Auth, timeout: Duration) -> Self {
        ActionClient {
            base_url: base_url.trim().trim_end_matches('/').to_string(),
            auth,
            timeout,
            headers: Vec::new(),
        }
    }

    /// A request to `{base_url}{path}` with the credentials.
    pub fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> RequestBuilder {
        let mut request = http
            .request(method, format!("{}{path}", self.base_url))
            .header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in &self.headers {
            request = request.header(*name, *value);
        }
        match &self.auth {
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password.expose_secret())),
            Auth::Header(name, token) => request.header(*name, token.expose_secret()),
        }
    }

    /// Sends a write with a JSON body; see [`send`].
    pub async fn write(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        what: &str,
    ) -> Result<Value, FetchError> {
        send(
            self.request(http, method, path).json(body),
            self.timeout,
            what,
        )
        .await
    }

    /// `GET` with a query, as JSON.
    pub async fn get(
        &self,
        http: &reqwest::Client,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Value, FetchError> {
        super::http_api::get_json(
            self.request(http, reqwest::Method::GET, path).query(query),
            self.timeout,
            what,
        )
        .await
    }
}

/// Sends a write (`POST`, `PUT`, `PATCH`) and reads its answer: any 2xx is
/// success (Help Scout answers 201 or 204 with no body, so the body is
/// `Value::Null` when empty or not JSON). Failures map as
/// [`super::http_api::status_error`] does.
pub async fn send(
    request: RequestBuilder,
    timeout: Duration,
    what: &str,
) -> Result<Value, FetchError> {
    let response = request.timeout(timeout).send().await.map_err(|e| {
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "failed"
        };
        FetchError::retryable(format!("{what} {why}"))
    })?;
    let status = response.status();
    if status.is_success() {
        let bytes = response.bytes().await.unwrap_or_default();
        return Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
    }
    let retry_after = super::http_api::retry_after(response.headers());
    Err(match status.as_u16() {
        400 | 409 | 422 => FetchError::permanent(format!(
            "the helpdesk refused {what} (HTTP {}); the ticket may be closed, merged or in a state that does not allow it",
            status.as_u16()
        )),
        _ => super::http_api::status_error(status, retry_after, what),
    })
}

/// Percent-encodes one path segment: ids come from payloads and must not
/// change the path.
pub fn segment(id: &str) -> String {
    super::fill_ticket_url("{conversation_id}", id.trim())
}

/// Whether two emails are the same address (case-insensitive, trimmed).
pub fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// A JSON id (string or number) as text.
pub fn id_text(value: &Value) -> Option<String> {
    super::scalar_text(value)
}

/// The error of a helpdesk that cannot do `action` through its API.
pub fn unsupported(kind: &str, action: TicketAction) -> FetchError {
    FetchError::permanent(format!(
        "{kind} does not support {} through its API",
        action.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_cache_expires_and_failures_expire_sooner() {
        let cache = NameCache::new(Duration::from_secs(100));
        cache.put("a".into(), Some("Dana".into()), 0, false);
        cache.put("b".into(), None, 0, true);
        assert_eq!(cache.get("a", 99_000), Some(Some("Dana".into())));
        assert_eq!(cache.get("a", 100_000), None);
        assert_eq!(cache.get("b", 9_000), Some(None));
        assert_eq!(cache.get("b", 10_000), None);
        assert_eq!(cache.get("c", 0), None);
    }

    #[test]
    fn only_notes_are_not_retried() {
        assert!(!TicketAction::Note.is_idempotent());
        assert!(TicketAction::Reopen.is_idempotent());
        assert!(TicketAction::Assign.is_idempotent());
    }
}
