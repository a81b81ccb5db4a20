//! The old one-struct source settings, for the kinds not yet moved to
//! their own `<Kind>Settings`. Removed once every kind reads its own keys.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{SourceTable, Webhook};
use crate::domain::Scale;
use crate::settings::{ConfigProblem, optional_duration, read_value};

type Old = fn(&str, &SourceSettings) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>>;

/// Builds a not-yet-moved kind from the whole table, as before.
pub fn build(t: &SourceTable, old: Old) -> Result<Arc<dyn Webhook>, Vec<ConfigProblem>> {
    let mut s: SourceSettings = read_value(&t.key, t.raw.clone())?;
    let key = t.key.clone();
    let mut problems = Vec::new();
    s.secret = t.shared.secret.clone();
    if let Some(api) = s.api.as_mut() {
        api.token = t.secret(
            "api.token",
            api.token.take(),
            api.token_file.as_deref(),
            &mut problems,
        );
        api.api_key = t.secret(
            "api.api_key",
            api.api_key.take(),
            api.api_key_file.as_deref(),
            &mut problems,
        );
        api.client_secret = t.secret(
            "api.client_secret",
            api.client_secret.take(),
            api.client_secret_file.as_deref(),
            &mut problems,
        );
    }
    if let Some(scale) = &s.scale
        && let Err(e) = scale.parse::<Scale>()
    {
        problems.push(ConfigProblem::new(format!("{key}.scale"), e));
    }
    match old(&key, &s) {
        Ok(source) if problems.is_empty() => Ok(source),
        Ok(_) => Err(problems),
        Err(mut found) => {
            problems.append(&mut found);
            Err(problems)
        }
    }
}

/// The replay window in milliseconds: the configured one or five minutes.
pub fn replay_window_ms(settings: &SourceSettings) -> i64 {
    settings
        .replay_window
        .map_or(super::settings::DEFAULT_REPLAY_WINDOW_MS, |w| {
            i64::try_from(w.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A zero window would refuse every delivery, which is never what was meant.
pub fn check_replay_window(key: &str, settings: &SourceSettings) -> Option<ConfigProblem> {
    settings.replay_window.filter(|w| w.is_zero()).map(|_| {
        ConfigProblem::new(
            format!("{key}.replay_window"),
            "must be more than 0s; the default is \"5m\"",
        )
    })
}

/// One `[[sources]]` table: a helpdesk (or anything that posts JSON).
/// Which keys apply depends on `kind`; docs/helpdesks/ has a page per kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// The name in the webhook URL: `POST /webhooks/{name}`.
    pub name: String,
    /// `zendesk`, `zendesk_csat`, `intercom`, `helpscout`, `chatwoot`,
    /// `devrev`, `freshdesk`, `gorgias`, `hubspot` or `generic`.
    pub kind: String,
    /// The webhook signing secret.
    pub secret: Option<SecretString>,
    /// Read the secret from this file instead (systemd credentials,
    /// Kubernetes and Docker secrets).
    pub secret_file: Option<PathBuf>,
    /// How far a signed timestamp may be from now. Default `5m`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub replay_window: Option<Duration>,
    /// Overrides the scale's negative threshold: values at or below it are
    /// negative (e.g. 3 on a five-point scale).
    pub negative_at_or_below: Option<i64>,
    /// A link to the ticket, with `{conversation_id}` replaced, used when the
    /// delivery carries none: `https://acme.zendesk.com/agent/tickets/{conversation_id}`.
    pub ticket_url: Option<String>,
    /// generic: the scale of the score when the body does not say. Default `five_point`.
    /// devrev: `five_point` (default, the CSAT snap-in) or `nps` (0–10 surveys).
    /// zendesk_csat: the scale when a delivery does not say how many options
    /// the survey has (`two_point`, `three_point` or `five_point`; default `five_point`).
    pub scale: Option<String>,
    /// generic: `hmac-sha256` (default), `standard-webhooks`, or `token`
    /// (the secret itself in `signature_header`, for senders that cannot sign).
    pub signature: Option<String>,
    /// generic, hmac-sha256: the header carrying the signature. Default `X-Signature`.
    pub signature_header: Option<String>,
    /// generic, hmac-sha256: a prefix before the signature, e.g. `sha256=`.
    pub signature_prefix: Option<String>,
    /// generic, hmac-sha256: `hex` (default) or `base64`.
    pub signature_encoding: Option<String>,
    /// generic: JSON pointers (RFC 6901) to the fields of the body.
    pub fields: Option<GenericFields>,
    /// hubspot: the public base URL HubSpot calls, scheme and host (and a
    /// path prefix if a proxy adds one), e.g. `https://csat.example.com`.
    /// HubSpot signs the full URL it called; behind a proxy we only see the
    /// path, so the URL is rebuilt from this.
    pub public_url: Option<String>,
    /// The helpdesk's API credentials: used to fetch ratings a webhook only
    /// names (HubSpot always, Freshdesk and Gorgias when the body carries no
    /// score), and later by the pollers.
    pub api: Option<ApiSettings>,
    /// How often to poll the helpdesk's API for ratings (needs the source's
    /// API credentials), e.g. `"5m"`. Unset: no polling.
    #[serde(default, deserialize_with = "optional_duration")]
    pub poll_interval: Option<Duration>,
    /// How far back each poll re-reads, to catch ratings changed after they
    /// were first given. Default: the helpdesk's own (e.g. 14 days for
    /// Chatwoot, 1 day elsewhere).
    #[serde(default, deserialize_with = "optional_duration")]
    pub poll_overlap: Option<Duration>,
    /// The most API requests polling may make per minute, so it never
    /// starves the team's other integrations of the helpdesk's rate limit.
    /// Default 30.
    pub poll_requests_per_minute: Option<u32>,
    /// On the very first poll, how far back to read. Default `alerts.max_age`
    /// (older history is what `csatwatch backfill` is for).
    #[serde(default, deserialize_with = "optional_duration")]
    pub poll_start: Option<Duration>,
    /// chatwoot: accept deliveries that carry no `X-Chatwoot-Signature`
    /// (Chatwoot before 4.12 never signs). Default `false`. Risk: anyone who
    /// learns the webhook URL can then post fake ratings and alerts; signed
    /// deliveries are still checked when a secret is set.
    pub allow_unsigned: Option<bool>,
}

/// `[sources.api]`: how to call a helpdesk's API. Which keys a helpdesk
/// needs is on its page under docs/helpdesks/; secrets may be given as
/// `…_file` like every other secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// The API's base URL, without a trailing path: `https://acme.freshdesk.com`,
    /// `https://acme.gorgias.com`, `https://api.hubapi.com`.
    pub base_url: String,
    /// A bearer token (HubSpot: the private app's access token).
    pub token: Option<SecretString>,
    /// Read the token from this file instead.
    pub token_file: Option<PathBuf>,
    /// An API key sent with HTTP basic auth (Freshdesk: the agent's API key,
    /// sent as `api_key:X`; Gorgias: the REST API key, sent as `email:api_key`).
    pub api_key: Option<SecretString>,
    /// Read the API key from this file instead.
    pub api_key_file: Option<PathBuf>,
    /// Gorgias: the email address of the user the API key belongs to.
    pub email: Option<String>,
    /// Chatwoot: the account's numeric id (the number after `/app/accounts/`
    /// in Chatwoot's address bar), needed to poll its CSAT responses.
    pub account_id: Option<String>,
    /// Help Scout: the OAuth2 app's App ID (client credentials flow; My Apps
    /// → Create App in Help Scout).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Help Scout: the OAuth2 app's App Secret.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// Read the client secret from this file instead.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// How long one API call may take before it is retried later. Default `10s`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub request_timeout: Option<Duration>,
}

impl ApiSettings {
    /// The timeout of one call: `request_timeout` or ten seconds.
    pub fn timeout(&self) -> Duration {
        self.request_timeout.unwrap_or(Duration::from_secs(10))
    }
}

/// `[sources.fields]` of a generic source: where each value sits in the body,
/// as a JSON pointer such as `/ticket/id`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericFields {
    /// Required: the ticket or conversation id.
    pub conversation_id: Option<String>,
    /// Required: the score (a number, or a word on binary/three-point scales).
    pub score: Option<String>,
    /// The scale's name in the body, if it varies per delivery.
    pub scale: Option<String>,
    /// The helpdesk's id of the rating, if a conversation can have several.
    pub rating_key: Option<String>,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    /// An array of strings, or one comma-separated string.
    pub tags: Option<String>,
    pub url: Option<String>,
    /// RFC 3339 text, or Unix seconds or milliseconds.
    pub rated_at: Option<String>,
    /// When this version of the rating was given, same formats.
    pub updated_at: Option<String>,
    /// A delivery id that stays the same across retries.
    pub delivery_id: Option<String>,
}

/// Refuses keys that do not apply to `kind`: set, they would be silently
/// ignored, which hides a mistake.
pub fn refuse_keys(key: &str, kind: &str, keys: &[(&str, bool)]) -> Vec<ConfigProblem> {
    keys.iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| {
            ConfigProblem::new(
                format!("{key}.{name}"),
                format!("does not apply to {kind} sources; remove it (docs/helpdesks/{kind}.md lists the keys)"),
            )
        })
        .collect()
}

/// The settings every token-header source shares (Freshdesk, Gorgias):
/// the keys it refuses, its required secret (`whose` names where the token
/// is pasted on the helpdesk's side), the ticket link template, and the
/// header name (default `X-Csatwatch-Token`). Returns the problems found and
/// the header.
pub fn token_source_settings(
    key: &str,
    kind: &str,
    s: &SourceSettings,
    whose: &str,
) -> (Vec<ConfigProblem>, String) {
    let mut problems = refuse_keys(
        key,
        kind,
        &[
            ("scale", s.scale.is_some()),
            ("signature", s.signature.is_some()),
            ("signature_prefix", s.signature_prefix.is_some()),
            ("signature_encoding", s.signature_encoding.is_some()),
            ("fields", s.fields.is_some()),
            ("replay_window", s.replay_window.is_some()),
            ("public_url", s.public_url.is_some()),
        ],
    );
    if s.secret.is_none() {
        problems.push(missing_token(key, s, whose));
    }
    problems.extend(super::check_ticket_url(key, s.ticket_url.as_deref()));
    let header = s
        .signature_header
        .clone()
        .unwrap_or_else(|| super::generic::signature::DEFAULT_TOKEN_HEADER.to_string());
    if axum::http::HeaderName::from_bytes(header.trim().as_bytes()).is_err() {
        problems.push(ConfigProblem::new(
            format!("{key}.signature_header"),
            "is not a valid HTTP header name; e.g. X-Csatwatch-Token",
        ));
    }
    (problems, header)
}

/// The problem for a token source without its secret, saying where it goes.
pub fn missing_token(key: &str, s: &SourceSettings, sender: &str) -> ConfigProblem {
    let message = if s.secret_file.is_some() {
        "is required, and secret_file gave none (see the problem reported for it)".to_string()
    } else {
        format!(
            "is required: the token {sender} webhook sends in its X-Csatwatch-Token header (generate one with: openssl rand -hex 32); or set secret_file to a file holding it"
        )
    };
    ConfigProblem::new(format!("{key}.secret"), message)
}
