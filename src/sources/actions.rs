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

/// One REST write behind a button: what a kind's `actions.rs` supplies for
/// a note, a reopen or an assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: reqwest::Method,
    /// Below the API's base URL; ids in it go through [`segment`].
    pub path: String,
    pub body: Value,
    /// What it does, for messages: "reopening a Zendesk ticket".
    pub what: &'static str,
}

impl Call {
    pub fn new(method: reqwest::Method, path: String, body: Value, what: &'static str) -> Call {
        Call {
            method,
            path,
            body,
            what,
        }
    }
}

/// Where a helpdesk lists its users, to find the clicking person's agent.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSearch {
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub what: &'static str,
    /// The JSON pointer of the users' array in the answer (`""` for the
    /// answer itself).
    pub items: &'static str,
}

/// A text read with `GET {path}` at `pointer` (an agent's or a team's name).
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub path: String,
    pub pointer: &'static str,
    pub what: &'static str,
}

/// A helpdesk whose actions are each one REST call: its `actions.rs`
/// says which call, and [`RestActions`] makes it (the one implementation of
/// [`TicketActions`] they share).
pub trait RestCalls: Send + Sync + std::fmt::Debug + 'static {
    /// The helpdesk kind, for messages.
    fn kind(&self) -> &'static str;
    /// As [`TicketActions::note_needs_agent`].
    fn note_needs_agent(&self) -> bool {
        false
    }
    /// As [`TicketActions::reopen_needs_agent`].
    fn reopen_needs_agent(&self) -> bool {
        false
    }
    /// The call adding an internal note `body` to `ticket`, by `agent`
    /// where the API lets the author be set.
    fn note(&self, ticket: &str, body: &str, agent: Option<&str>) -> Result<Call, FetchError>;
    /// The call reopening `ticket` (as `agent` where the API needs an actor).
    fn reopen(&self, ticket: &str, agent: Option<&str>) -> Result<Call, FetchError>;
    /// The call assigning `ticket` to `agent`.
    fn assign(&self, ticket: &str, agent: &str) -> Call;
    /// Where to look for the agent whose email is `email`.
    fn user_search(&self, email: &str) -> UserSearch;
    /// A listed user's email and name; `None` for one who cannot act (an
    /// end user) or who has no email.
    fn read_user<'v>(&self, user: &'v Value) -> Option<(&'v str, Option<String>)>;
    /// Where agent names, agent emails and team names are read, for the
    /// helpdesks whose ratings name them by id only.
    fn agent_name(&self, _id: &str) -> Option<Lookup> {
        None
    }
    fn agent_email(&self, _id: &str) -> Option<Lookup> {
        None
    }
    fn team_name(&self, _id: &str) -> Option<Lookup> {
        None
    }
}

/// The [`TicketActions`] of a [`RestCalls`] helpdesk, over its API client.
#[derive(Debug)]
pub struct RestActions<C> {
    pub client: ActionClient,
    pub calls: C,
}

impl<C: RestCalls> RestActions<C> {
    /// As a source's actions.
    pub fn shared(client: ActionClient, calls: C) -> Arc<dyn TicketActions> {
        Arc::new(RestActions { client, calls })
    }

    async fn make(&self, http: &reqwest::Client, call: Call) -> Result<(), FetchError> {
        self.client
            .act(http, call.method, &call.path, &call.body, call.what)
            .await
    }

    async fn look_up(
        &self,
        http: &reqwest::Client,
        lookup: Option<Lookup>,
    ) -> Result<Option<String>, FetchError> {
        match lookup {
            Some(l) => self.client.text(http, &l.path, l.pointer, l.what).await,
            None => Ok(None),
        }
    }
}

impl<C: RestCalls> TicketActions for RestActions<C> {
    fn kind(&self) -> &'static str {
        self.calls.kind()
    }

    fn supports(&self, _: TicketAction) -> bool {
        true
    }

    fn note_needs_agent(&self) -> bool {
        self.calls.note_needs_agent()
    }

    fn reopen_needs_agent(&self) -> bool {
        self.calls.reopen_needs_agent()
    }

    fn resolves_names(&self) -> bool {
        self.calls.agent_name("").is_some()
    }

    fn add_note<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        body: &'a str,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move { self.make(http, self.calls.note(ticket, body, agent)?).await })
    }

    fn reopen<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move { self.make(http, self.calls.reopen(ticket, agent)?).await })
    }

    fn assign<'a>(
        &'a self,
        http: &'a reqwest::Client,
        ticket: &'a str,
        agent: &'a str,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(self.make(http, self.calls.assign(ticket, agent)))
    }

    fn find_agent<'a>(
        &'a self,
        http: &'a reqwest::Client,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Option<Agent>, FetchError>> {
        Box::pin(async move {
            let search = self.calls.user_search(email);
            let query: Vec<(&str, &str)> =
                search.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let found = self
                .client
                .get(http, &search.path, &query, search.what)
                .await?;
            Ok(agent_in_list(&found, search.items, email, |user| {
                self.calls.read_user(user)
            }))
        })
    }

    fn agent_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.look_up(http, self.calls.agent_name(id)))
    }

    fn agent_email<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.look_up(http, self.calls.agent_email(id)))
    }

    fn team_name<'a>(
        &'a self,
        http: &'a reqwest::Client,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, FetchError>> {
        Box::pin(self.look_up(http, self.calls.team_name(id)))
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

    /// Sends a write whose answer is not needed (a note, a status change).
    pub async fn act(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        what: &str,
    ) -> Result<(), FetchError> {
        self.write(http, method, path, body, what).await.map(drop)
    }

    /// The text at `pointer` of `GET {path}` (a user's or a team's name);
    /// `None` when it has none or the object is gone (a 404: a deleted
    /// agent has no name, and asking again soon will not change that).
    pub async fn text(
        &self,
        http: &reqwest::Client,
        path: &str,
        pointer: &str,
        what: &str,
    ) -> Result<Option<String>, FetchError> {
        match self.get(http, path, &[], what).await {
            Ok(found) => Ok(found
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)),
            Err(e) if e.message.contains("HTTP 404") => Ok(None),
            Err(e) => Err(e),
        }
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

/// The agent whose email is `email` in a helpdesk's list of users: the
/// array at `items` (a JSON pointer; `""` for the answer itself), each user
/// read by `read` into its email and name (`None` skips a user that is not
/// an agent). The id is the user's `id`.
pub fn agent_in_list<'v>(
    found: &'v Value,
    items: &str,
    email: &str,
    read: impl Fn(&'v Value) -> Option<(&'v str, Option<String>)>,
) -> Option<Agent> {
    found
        .pointer(items)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|user| {
            let (address, name) = read(user)?;
            if !same_email(address, email) {
                return None;
            }
            Some(Agent {
                id: id_text(&user["id"])?,
                name,
                email: email.to_string(),
            })
        })
}

/// The text at `pointer` of a JSON value.
pub fn text_at(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A numeric id as a JSON number, for APIs that refuse ids sent as strings
/// (Freshdesk, Gorgias); any other id as given.
pub fn numeric_id(id: &str) -> Value {
    id.trim()
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(id))
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
