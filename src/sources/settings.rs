//! The keys every `[[sources]]` table shares, and the reading of one table:
//! the shared keys here, the rest by the kind's own `<Kind>Settings` (serde,
//! `deny_unknown_fields`), so a key that belongs to another helpdesk is
//! refused with its name by serde, not by hand.
//!
//! The registry (`registry.rs`) drives this for every table; a kind's
//! builder gets a [`SourceTable`] and asks it for its settings.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::settings::{ConfigProblem, RawSource, optional_duration, read_every, resolve_secret};

/// The keys every kind reads. A kind's own keys are in its `<Kind>Settings`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct SharedSettings {
    /// The name in the webhook URL: `POST /webhooks/{name}`.
    pub name: String,
    /// Which helpdesk: one of [`super::KINDS`].
    pub kind: String,
    /// The webhook signing secret (or token, for helpdesks that cannot sign).
    #[schemars(with = "Option<String>")]
    pub secret: Option<SecretString>,
    /// Read the secret from this file instead (systemd credentials,
    /// Kubernetes and Docker secrets).
    pub secret_file: Option<PathBuf>,
    /// How far a signed timestamp may be from now. Default `5m`; kinds whose
    /// helpdesk signs no timestamp refuse it.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub replay_window: Option<Duration>,
    /// Overrides the scale's negative threshold: values at or below it are
    /// negative (e.g. 3 on a five-point scale).
    pub negative_at_or_below: Option<i64>,
    /// A link to the ticket, with `{conversation_id}` replaced, used when the
    /// delivery carries none: `https://acme.zendesk.com/agent/tickets/{conversation_id}`.
    pub ticket_url: Option<String>,
    /// How often to poll the helpdesk's API for ratings (needs
    /// `[sources.api]`), e.g. `"5m"`. Unset: no polling.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub poll_interval: Option<Duration>,
    /// How far back each poll re-reads, to catch ratings changed after they
    /// were first given. Default: the helpdesk's own (its page under
    /// docs/helpdesks/ says).
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub poll_overlap: Option<Duration>,
    /// The most API requests polling may make per minute. Default: a share
    /// of the helpdesk's documented rate limit (its page says which), so
    /// polling never starves the team's other integrations.
    pub poll_requests_per_minute: Option<u32>,
    /// On the very first poll, how far back to read. Default `alerts.max_age`
    /// (older history is what `csatwatch backfill` is for).
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub poll_start: Option<Duration>,
}

/// The shared keys, removed from a table before the kind reads the rest.
pub const SHARED_KEYS: &[&str] = &[
    "name",
    "kind",
    "secret",
    "secret_file",
    "replay_window",
    "negative_at_or_below",
    "ticket_url",
    "poll_interval",
    "poll_overlap",
    "poll_requests_per_minute",
    "poll_start",
];

/// The poll keys: they need `[sources.api]`.
pub const POLL_KEYS: &[&str] = &[
    "poll_interval",
    "poll_overlap",
    "poll_requests_per_minute",
    "poll_start",
];

/// Five minutes: the tolerance Standard Webhooks' reference library uses.
pub const DEFAULT_REPLAY_WINDOW_MS: i64 = 5 * 60 * 1000;

/// One `[[sources]]` table being built: its key (`sources[2]`), its shared
/// keys (with the secret already read from `secret_file`), and the rest of
/// the table for the kind.
pub struct SourceTable {
    pub key: String,
    pub shared: SharedSettings,
    rest: config::Value,
    has_api: bool,
}

impl SourceTable {
    /// Reads the shared keys of `raw`. Problems name their key.
    pub fn read(key: String, raw: &RawSource) -> Result<SourceTable, Vec<ConfigProblem>> {
        match SourceTable::read_all(key, raw) {
            (table, problems) if problems.is_empty() => Ok(table),
            (_, problems) => Err(problems),
        }
    }

    /// Reads the shared keys of `raw`, reporting every problem among them
    /// (not only serde's first): a key at fault is set aside, so the table
    /// is returned with what could be read and the kind can still check
    /// its own keys in the same run.
    pub fn read_all(key: String, raw: &RawSource) -> (SourceTable, Vec<ConfigProblem>) {
        // A missing `name` or `kind` is reported here and read as "", so
        // serde (which stops at the first missing field) reads on.
        let mut value = raw.value().clone();
        if let Ok(mut table) = value.clone().into_table() {
            for required in ["name", "kind"] {
                table
                    .entry(required.to_string())
                    .or_insert_with(|| config::Value::new(None, String::new()));
            }
            value = config::Value::new(None, config::ValueKind::Table(table));
        }
        let (mut shared, mut problems): (SharedSettings, _) = read_every(&key, value);
        if raw.value().clone().into_table().is_ok() {
            if shared.name.trim().is_empty() {
                problems.push(ConfigProblem::new(
                    format!("{key}.name"),
                    "is required: the name in the webhook URL (POST /webhooks/{name}), e.g. name = \"support\"",
                ));
            }
            if shared.kind.trim().is_empty() {
                problems.push(ConfigProblem::new(
                    format!("{key}.kind"),
                    format!(
                        "is required: which helpdesk sends to this source; use one of: {}",
                        super::kind_names().join(", ")
                    ),
                ));
            }
        }
        shared.secret = resolve_secret(
            &format!("{key}.secret"),
            shared.secret.take(),
            shared.secret_file.as_deref(),
            &mut problems,
        );
        let mut table = raw.value().clone().into_table().unwrap_or_default();
        for shared_key in SHARED_KEYS {
            table.remove(*shared_key);
        }
        let has_api = table.contains_key("api");
        let table = SourceTable {
            key,
            shared,
            rest: config::Value::new(None, config::ValueKind::Table(table)),
            has_api,
        };
        (table, problems)
    }

    /// The kind's own keys, read into its `<Kind>Settings`, and the
    /// problems found: every key the kind does not know (another
    /// helpdesk's, a typo) is refused with its name, and every mistyped
    /// one; what could be read is returned so the kind checks the rest too.
    pub fn settings<T: DeserializeOwned + Default>(&self) -> (T, Vec<ConfigProblem>) {
        read_every(&self.key, self.rest.clone())
    }

    /// A duration key of `[sources.api]` as written, when it is set and
    /// reads as a duration (a bad one is reported by the kind's own reader).
    pub fn api_duration(&self, name: &str) -> Option<Duration> {
        let table = self.rest.clone().into_table().ok()?;
        let api = table.get("api")?.clone().into_table().ok()?;
        let text = api.get(name)?.clone().into_string().ok()?;
        crate::settings::parse_duration(&text).ok()
    }

    /// Whether the table has `[sources.api]`.
    pub fn has_api(&self) -> bool {
        self.has_api
    }

    /// `{key}.{name}`, for problems.
    pub fn key_of(&self, name: &str) -> String {
        format!("{}.{name}", self.key)
    }

    /// The replay window in milliseconds: the configured one or five minutes.
    pub fn replay_window_ms(&self) -> i64 {
        self.shared
            .replay_window
            .map_or(DEFAULT_REPLAY_WINDOW_MS, |w| {
                i64::try_from(w.as_millis()).unwrap_or(i64::MAX)
            })
    }

    /// A zero window would refuse every delivery, which is never what was meant.
    pub fn check_replay_window(&self) -> Option<ConfigProblem> {
        self.shared.replay_window.filter(|w| w.is_zero()).map(|_| {
            ConfigProblem::new(
                self.key_of("replay_window"),
                "is 0s, which would refuse every signed delivery as a replay; give a window like \"5m\" (the default), or remove the key",
            )
        })
    }

    /// For helpdesks that sign no timestamp: `replay_window` would be
    /// silently ignored, so it is refused.
    pub fn refuse_replay_window(&self, why: &str) -> Option<ConfigProblem> {
        self.shared.replay_window.map(|_| {
            ConfigProblem::new(
                self.key_of("replay_window"),
                format!(
                    "does not apply to {} sources: {why}; remove it",
                    self.shared.kind
                ),
            )
        })
    }

    /// The `ticket_url` template's problem, if any.
    pub fn check_ticket_url(&self) -> Option<ConfigProblem> {
        super::check_ticket_url(&self.key, self.shared.ticket_url.as_deref())
    }

    /// The secret, or the problem saying where the helpdesk shows it.
    pub fn require_secret(&self, where_to_find: &str) -> Result<SecretString, ConfigProblem> {
        self.shared.secret.clone().ok_or_else(|| {
            let message = if self.shared.secret_file.is_some() {
                "is required, and secret_file gave none (see the problem reported for it)"
                    .to_string()
            } else {
                format!("is required: {where_to_find}; or set secret_file to a file holding it")
            };
            ConfigProblem::new(self.key_of("secret"), message)
        })
    }

    /// For helpdesks that cannot sign and send a fixed token header instead
    /// (the generic `token` scheme): the token (the secret), the header
    /// (`signature_header`, default `X-Csatwatch-Token`), and the problems.
    /// `whose` names what sends it: "the automation rule's".
    pub fn token_scheme(
        &self,
        signature_header: Option<&str>,
        whose: &str,
        problems: &mut Vec<ConfigProblem>,
    ) -> Option<(SecretString, super::signature::Scheme)> {
        let secret = self
            .require_secret(&format!(
                "the token {whose} webhook sends in its X-Csatwatch-Token header (generate one with: openssl rand -hex 32)"
            ))
            .map_err(|p| problems.push(p))
            .ok();
        problems.extend(
            self.refuse_replay_window("the helpdesk sends a fixed token, no signed timestamp"),
        );
        let header = signature_header
            .unwrap_or(super::signature::DEFAULT_TOKEN_HEADER)
            .trim()
            .to_string();
        if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            problems.push(ConfigProblem::new(
                self.key_of("signature_header"),
                "is not a valid HTTP header name; e.g. X-Csatwatch-Token",
            ));
            return None;
        }
        Some((
            secret?,
            super::signature::Scheme::Token {
                header,
                prefix: None,
            },
        ))
    }

    /// A secret of the kind's own keys, given inline or as `…_file`
    /// (`name` is its key under the table, e.g. `api.token`).
    pub fn secret(
        &self,
        name: &str,
        inline: Option<SecretString>,
        file: Option<&std::path::Path>,
        problems: &mut Vec<ConfigProblem>,
    ) -> Option<SecretString> {
        resolve_secret(&self.key_of(name), inline, file, problems)
    }
}

/// `[sources.api]` of the helpdesks whose API takes one bearer token
/// (Intercom, DevRev, HubSpot): its base URL and the token.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenApiSettings {
    /// The API's base URL, e.g. `https://api.intercom.io`.
    pub base_url: String,
    /// The access token, sent as `Authorization: Bearer`.
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// Read the token from this file instead.
    pub token_file: Option<PathBuf>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub request_timeout: Option<Duration>,
}

/// A token API's settings, read: base URL (no trailing slash), token and
/// the timeout of one call.
pub struct TokenApi {
    pub base_url: String,
    pub token: SecretString,
    pub timeout: Duration,
}

impl SourceTable {
    /// Reads a [`TokenApiSettings`]: `example` is a base URL for the
    /// message, `token_help` says where the helpdesk shows the token.
    pub fn token_api(
        &self,
        api: TokenApiSettings,
        example: &str,
        token_help: &str,
        problems: &mut Vec<ConfigProblem>,
    ) -> Option<TokenApi> {
        let token = self.secret("api.token", api.token, api.token_file.as_deref(), problems);
        if token.is_none() && api.token_file.is_none() {
            problems.push(ConfigProblem::new(
                self.key_of("api.token"),
                format!("is required: {token_help}; or set token_file"),
            ));
        }
        let base_url = super::http_api::base_url(&self.key, &api.base_url, example)
            .map_err(|p| problems.push(p))
            .ok()?;
        Some(TokenApi {
            base_url,
            token: token?,
            timeout: api_timeout(api.request_timeout),
        })
    }
}

/// `[sources.api]` keys every kind with an API reads; each kind's API
/// settings repeat these two (serde cannot flatten into a table that
/// refuses unknown keys).
pub fn api_timeout(request_timeout: Option<Duration>) -> Duration {
    request_timeout.unwrap_or(Duration::from_secs(10))
}
