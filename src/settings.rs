//! Typed settings: a TOML file under `CSATWATCH__SECTION__KEY` environment
//! overrides, read with the `config` crate, then validated in one pass that
//! reports every problem with the key it concerns and how to fix it.
//!
//! Every field's `///` comment is the operator's manual for that key;
//! `config/csatwatch.example.toml` repeats them with defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::{fmt, fs};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::domain::{Sentiment, SurveyKind};

mod insights;
pub use insights::{
    ApiTokenSettings, DigestSettings, DropAlertSettings, FilterSettings, ReadApiSettings,
    ReportSettings, parse_local_time, parse_weekday,
};

mod checks;

/// The file read when neither `--config` nor `CSATWATCH_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "config/csatwatch.toml";
/// The prefix of environment overrides: `CSATWATCH__SLACK__BOT_TOKEN`.
pub const ENV_PREFIX: &str = "CSATWATCH";

/// One thing wrong with the settings: the key, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// All the problems found, printed one per line.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the settings have {} problem(s):", self.problems.len())?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl From<ConfigProblem> for ConfigError {
    fn from(problem: ConfigProblem) -> Self {
        ConfigError {
            problems: vec![problem],
        }
    }
}

/// Everything csatwatch reads at start-up.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub slack: SlackSettings,
    #[serde(default)]
    pub alerts: AlertSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    /// The helpdesks that send ratings, one `[[sources]]` table each, as
    /// written: `crate::sources` reads and builds them.
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// Alert routing, one `[[rules]]` table each; first match wins.
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
    /// How figures are computed (time zone, minimum sample).
    #[serde(default)]
    pub reports: ReportSettings,
    /// The read API's bearer tokens.
    #[serde(default)]
    pub api: ReadApiSettings,
    /// Scheduled summaries, one `[[digests]]` table each.
    #[serde(default)]
    pub digests: Vec<DigestSettings>,
    /// Alerts on a significant drop of CSAT or NPS, one `[[drop_alerts]]` table each.
    #[serde(default)]
    pub drop_alerts: Vec<DropAlertSettings>,
    /// `[dashboard]`: the web pages served at `/dashboard`.
    #[serde(default)]
    pub dashboard: DashboardSettings,
    /// `[telemetry]`: OpenTelemetry traces (off unless `otlp_endpoint` is set).
    #[serde(default)]
    pub telemetry: TelemetrySettings,
}

/// `[server]`: the one HTTP listener.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address and port to listen on. Default `127.0.0.1:8080`; use
    /// `0.0.0.0:8080` in a container. A host name (`localhost:8080`) is
    /// resolved once at start-up, an IPv4 address preferred.
    #[serde(deserialize_with = "listen_address")]
    pub listen: SocketAddr,
    /// Largest webhook body accepted, in bytes; larger ones get 413 (at
    /// once when the `Content-Length` says so). Default 1 MiB.
    pub max_body_bytes: usize,
    /// A connection must deliver a request's headers within this long of
    /// opening (or of its previous response); slower clients are cut off.
    /// Default `10s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in flight and no bytes
    /// moving for this long is closed. Default `5s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub keep_alive_timeout: Duration,
    /// The most client connections open at once. Lowered at start-up to fit
    /// the open-file limit (which csatwatch raises to its hard limit), with
    /// room kept for the database and outgoing calls. At the cap the oldest
    /// idle connection is closed to make room; a connection with a request
    /// in flight never is. Default 10000.
    pub max_connections: usize,
    /// How long a request may take before it is answered 408. Default `15s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// How long shutdown waits for the alert being sent and other background
    /// work, after in-flight requests are answered (each request is bounded
    /// by `request_timeout`). Default `20s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            max_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            request_timeout: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created on first start) or
    /// `postgres://user:password@host/db`. Default `sqlite://data/csatwatch.db`.
    #[schemars(with = "String")]
    pub url: SecretString,
    /// Read the URL from this file instead (it may hold a password).
    pub url_file: Option<PathBuf>,
    /// Connections in the pool. Default 5 (SQLite writes are serialised anyway).
    /// The writer task and the alert dispatcher have 2 more each of their own.
    pub max_connections: u32,
    /// How long to wait for a free connection before giving up (and
    /// answering a webhook 503). SQLite also waits up to 5 s for its write
    /// lock. Default `5s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub acquire_timeout: Duration,
    /// SQLite only: when a commit counts as done. `full` (default): the
    /// write-ahead log is synced to disk at every commit, so a rating
    /// answered 2xx survives a crash of the process, of the operating system
    /// and a power loss. `normal`: synced only at checkpoints; survives a
    /// process crash, but the last commits before an OS crash or power loss
    /// can be lost. Group commit makes `full` cheap (one sync per batch).
    pub sqlite_synchronous: SqliteSync,
    /// PostgreSQL only: the server ends any statement that runs longer
    /// (`statement_timeout`), so nothing waits on a lock forever.
    /// Migrations are exempt. `0s` turns it off. Default `30s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub statement_timeout: Duration,
    /// PostgreSQL only: the server ends a session left idle inside a
    /// transaction for this long (`idle_in_transaction_session_timeout`),
    /// releasing its row locks. `0s` turns it off. Default `60s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub idle_in_transaction_timeout: Duration,
    /// SQLite: create the database file when it does not exist. Default
    /// `true` (the first start needs no set-up), and a WARN says so loudly.
    /// Set `false` in production: a missing file then stops start-up
    /// instead of starting an empty database over lost ratings.
    pub create_if_missing: bool,
}

/// `database.sqlite_synchronous`: SQLite's `PRAGMA synchronous` in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Power-loss durable: every commit is synced.
    #[default]
    #[serde(alias = "FULL")]
    Full,
    /// Crash-safe but not power-loss durable.
    #[serde(alias = "NORMAL")]
    Normal,
}

impl DatabaseSettings {
    pub fn url_is_sqlite(&self) -> bool {
        self.url.expose_secret().starts_with("sqlite:")
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: SecretString::from("sqlite://data/csatwatch.db".to_string()),
            url_file: None,
            max_connections: 5,
            acquire_timeout: Duration::from_secs(5),
            sqlite_synchronous: SqliteSync::Full,
            statement_timeout: Duration::from_secs(30),
            idle_in_transaction_timeout: Duration::from_secs(60),
            create_if_missing: true,
        }
    }
}

/// `[slack]`: where alerts go. With neither a bot token nor a webhook URL,
/// alerts are written to the log at WARN.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    /// A bot token (`xoxb-…`) with `chat:write`: posts with
    /// `chat.postMessage` to any channel (the mode that message updates,
    /// threads and buttons will need).
    #[schemars(with = "Option<String>")]
    pub bot_token: Option<SecretString>,
    pub bot_token_file: Option<PathBuf>,
    /// An incoming-webhook URL: the simplest set-up, one fixed channel, and
    /// messages cannot be updated or threaded.
    #[schemars(with = "Option<String>")]
    pub webhook_url: Option<SecretString>,
    pub webhook_url_file: Option<PathBuf>,
    /// The channel (name like `#csat-alerts`, or id `C0123…`) for alerts no
    /// rule routes elsewhere. Required with a bot token unless every rule names a channel.
    pub default_channel: Option<String>,
    /// The Web API base. Default `https://slack.com/api`; change for GovSlack
    /// (`https://slack-gov.com/api`) or a proxy.
    pub api_base_url: String,
    /// Timeout of one call to Slack. Default `10s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// The Slack app's Signing Secret (Basic Information → App Credentials):
    /// verifies button clicks on `POST /slack/interactions`. With a bot token
    /// and this set, alerts carry "I'm on it" and "Followed up" buttons.
    #[schemars(with = "Option<String>")]
    pub signing_secret: Option<SecretString>,
    pub signing_secret_file: Option<PathBuf>,
    /// Most messages (posts, updates, thread replies) sent to the whole
    /// workspace per minute, whatever the channel. Default 100.
    pub max_per_minute: u32,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            bot_token: None,
            bot_token_file: None,
            webhook_url: None,
            webhook_url_file: None,
            default_channel: None,
            api_base_url: "https://slack.com/api".to_string(),
            request_timeout: Duration::from_secs(10),
            signing_secret: None,
            signing_secret_file: None,
            max_per_minute: 100,
        }
    }
}

/// `[alerts]`: when an alert is raised and how hard it is delivered.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Only ratings given within this long alert; older ones are recorded
    /// silently. Default `72h`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub max_age: Duration,
    /// An alert still undelivered this long after it was raised is marked
    /// dead and logged at ERROR. Default `24h`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub give_up_after: Duration,
    /// Minimum gap between two messages to one channel (Slack allows about
    /// one per second). Default `1s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub channel_interval: Duration,
    /// First retry delay after a failed delivery; doubles each time, with
    /// jitter. Default `2s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub retry_initial: Duration,
    /// Longest delay between two retries. Default `10m`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub retry_max: Duration,
    /// How long a replica may hold a claimed alert before another may take
    /// it over (it should be longer than a Slack call). Default `2m`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub claim_lease: Duration,
    /// Messages one channel may take in a quick burst before the pace of one
    /// per `channel_interval` applies. Default 3.
    pub channel_burst: u32,
    /// Messages to one channel sent at the same time. 1 (the default)
    /// keeps each channel's messages in order; more lets a pace opened up
    /// (a tiny `channel_interval` with a large `channel_burst`) go as fast
    /// as Slack answers, in no guaranteed order within the channel. 1 to 64.
    pub channel_in_flight: u32,
    /// An alert nobody acknowledged ("I'm on it") or followed up within this
    /// long gets one thread reply mentioning `escalate_to`. Off by default;
    /// a rule's own `escalate_after` wins. Needs a bot token.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub escalate_after: Option<Duration>,
    /// Who an escalation mentions when the rule names no one: `@here`, a
    /// user id `U0123`, a user group id `S0123`.
    pub escalate_to: Vec<String>,
    /// `[alerts.storm]`: many alerts for one channel at once become one digest.
    pub storm: StormSettings,
    /// How long a new alert waits before it is sent, so a customer who
    /// corrects a rating (or an email link scanner's click corrected a moment
    /// later) produces one alert showing the final state, or none. Default
    /// `0s`: alert at once.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub settle: Duration,
    /// How far back the alert looks for the customer's earlier ratings (the
    /// "3rd negative in 90 days" line). Default `90d`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub history_window: Duration,
    /// How long an agent or team name read from a helpdesk's API is reused
    /// before it is read again. Default `1h`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub name_cache_ttl: Duration,
    /// Companies whose ratings count as VIP for rules with `vip = true`
    /// (compared case-insensitively).
    pub vip_companies: Vec<String>,
    /// Ticket tags that mark a VIP customer for rules with `vip = true`.
    pub vip_tags: Vec<String>,
}

/// `[alerts.storm]`: when more than `threshold` alerts wait for one channel,
/// all raised within `window`, one digest message (count, worst scores,
/// links) replaces them and each is listed in the digest's thread.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StormSettings {
    /// Waiting alerts per channel above which a digest is sent; 0 turns
    /// storm control off. Default 20.
    pub threshold: u32,
    /// Only alerts raised within this long count. Default `2m`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub window: Duration,
}

impl Default for StormSettings {
    fn default() -> Self {
        StormSettings {
            threshold: 20,
            window: Duration::from_secs(120),
        }
    }
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            max_age: Duration::from_secs(72 * 3600),
            give_up_after: Duration::from_secs(24 * 3600),
            channel_interval: Duration::from_secs(1),
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            claim_lease: Duration::from_secs(120),
            channel_burst: 3,
            channel_in_flight: 1,
            escalate_after: None,
            escalate_to: Vec::new(),
            storm: StormSettings::default(),
            settle: Duration::ZERO,
            history_window: Duration::from_secs(90 * 24 * 3600),
            name_cache_ttl: Duration::from_secs(3600),
            vip_companies: Vec::new(),
            vip_tags: Vec::new(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `auto` (human-readable on a terminal, JSON lines otherwise), `json` or `pretty`.
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `csatwatch=debug,sqlx=warn`. The
    /// `RUST_LOG` variable wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Auto,
            level: "info".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Raw webhook bodies are deleted after this long. Default `30d`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub raw_deliveries: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            raw_deliveries: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// One `[[sources]]` table as written: the sources read their own keys
/// (`crate::sources` builds them), so these settings name no helpdesk.
/// Its `Debug` shows only the name and kind: the table holds secrets.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct RawSource(config::Value);

impl RawSource {
    /// A table from a TOML text (for tests and tools).
    pub fn value(&self) -> &config::Value {
        &self.0
    }

    fn text(&self, key: &str) -> Option<String> {
        self.0
            .clone()
            .into_table()
            .ok()?
            .remove(key)?
            .into_string()
            .ok()
    }

    /// The `name` key, if it is text.
    pub fn name(&self) -> Option<String> {
        self.text("name")
    }

    /// The `kind` key, if it is text.
    pub fn kind(&self) -> Option<String> {
        self.text("kind")
    }
}

impl fmt::Debug for RawSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSource")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// One `[[rules]]` table: which ratings go to which channel. Every matcher
/// left out matches everything; a list matches any of its values.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// A name for logs and `check-config`. Default `rules[N]`.
    pub name: Option<String>,
    /// Source names.
    #[serde(default)]
    pub source: Vec<String>,
    /// `negative` (default), `neutral`, `positive`.
    #[serde(default)]
    pub sentiment: Vec<String>,
    /// `csat`, `nps`, `ces`.
    #[serde(default)]
    pub survey: Vec<String>,
    /// Matches when the score's value is at most this (on its own scale).
    pub score_at_or_below: Option<i64>,
    /// Matches when the rating has at least one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Team or group names.
    #[serde(default)]
    pub team: Vec<String>,
    #[serde(default)]
    pub brand: Vec<String>,
    #[serde(default)]
    pub agent: Vec<String>,
    /// `true`: only ratings with a comment; `false`: only without.
    pub has_comment: Option<bool>,
    /// The Slack channel (name or id). Default `slack.default_channel`.
    pub channel: Option<String>,
    /// Who to mention: `@here`, `@channel`, a user id `U0123`, a user group
    /// id `S0123`.
    #[serde(default)]
    pub mention: Vec<String>,
    /// Matched ratings raise no alert at all.
    #[serde(default)]
    pub mute: bool,
    /// Keep evaluating the following rules after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Escalate this rule's alerts when nobody acknowledged them within this
    /// long (overrides `alerts.escalate_after`).
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub escalate_after: Option<Duration>,
    /// Who the escalation mentions (default `alerts.escalate_to`).
    #[serde(default)]
    pub escalate_to: Vec<String>,
    /// Matches only when the same customer gave another negative rating
    /// within this long before (a repeat detractor), e.g. `"90d"`.
    #[serde(default, deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub repeat_negative: Option<Duration>,
    /// `true`: only VIP customers (company in `alerts.vip_companies` or a tag
    /// in `alerts.vip_tags`); `false`: only others.
    pub vip: Option<bool>,
    /// Also send the rated agent a direct message (found in Slack by the
    /// agent's email). Off by default; needs a bot token with `im:write` and
    /// `users:read.email`.
    #[serde(default)]
    pub dm_agent: bool,
}

impl Settings {
    /// Reads the file (if `path` is given it must exist; the default path may
    /// be absent) and the environment, without validating.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        match path {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigProblem::new(
                        "--config",
                        format!(
                            "{} does not exist; pass an existing file, or copy config/csatwatch.example.toml there",
                            path.display()
                        ),
                    )
                    .into());
                }
                builder = builder.add_source(
                    config::File::from(path)
                        .format(config::FileFormat::Toml)
                        .required(true),
                );
            }
            None => {
                builder = builder.add_source(
                    config::File::with_name(DEFAULT_CONFIG_PATH)
                        .format(config::FileFormat::Toml)
                        .required(false),
                );
            }
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .separator("__")
                .source(Some(env)),
        );
        let raw = builder.build().map_err(|e| {
            ConfigProblem::new(
                path.map(|p| p.display().to_string())
                    .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_string()),
                format!("cannot be read: {e}"),
            )
        })?;
        let root: config::Value = raw.try_deserialize().map_err(|e| {
            ConfigError::from(ConfigProblem::new(
                "settings",
                format!("cannot be read: {e}"),
            ))
        })?;
        match read_value::<Settings>("", root.clone()) {
            Ok(settings) => Ok(settings),
            Err(first) => Err(ConfigError {
                problems: every_type_problem(root).unwrap_or(first),
            }),
        }
    }

    /// Checks everything that can be checked without the network, and reads
    /// the `…_file` secrets. Every problem is reported, not just the first.
    /// The `[[sources]]` tables are checked by the sources themselves
    /// (`crate::sources::SourceRegistry`), which `check-config` and start-up
    /// both build.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let (settings, problems) = self.checked();
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// As [`Settings::validate`], returning the settings and every problem.
    pub fn checked(mut self) -> (Settings, Vec<ConfigProblem>) {
        let mut problems = Vec::new();

        if let Some(url) = resolve_secret(
            "database.url",
            Some(self.database.url.clone()),
            self.database.url_file.as_deref(),
            &mut problems,
        ) {
            self.database.url = url;
        }
        let db_url = self.database.url.expose_secret();
        if !(db_url.starts_with("sqlite:")
            || db_url.starts_with("postgres://")
            || db_url.starts_with("postgresql://"))
        {
            problems.push(ConfigProblem::new(
                "database.url",
                "must start with sqlite:// (a file) or postgres:// (a server); e.g. sqlite://data/csatwatch.db",
            ));
        }
        if self.database.max_connections == 0 {
            problems.push(ConfigProblem::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if let Err(e) = crate::telemetry::log_filter(&self.log.level) {
            problems.push(ConfigProblem::new("log.level", e));
        }

        self.slack.bot_token = resolve_secret(
            "slack.bot_token",
            self.slack.bot_token.take(),
            self.slack.bot_token_file.as_deref(),
            &mut problems,
        );
        self.slack.webhook_url = resolve_secret(
            "slack.webhook_url",
            self.slack.webhook_url.take(),
            self.slack.webhook_url_file.as_deref(),
            &mut problems,
        );
        self.slack.signing_secret = resolve_secret(
            "slack.signing_secret",
            self.slack.signing_secret.take(),
            self.slack.signing_secret_file.as_deref(),
            &mut problems,
        );
        if self.slack.max_per_minute == 0 {
            problems.push(ConfigProblem::new(
                "slack.max_per_minute",
                "must be at least 1 (Slack allows about one message per second per channel)",
            ));
        }
        if self.alerts.channel_burst == 0 {
            problems.push(ConfigProblem::new(
                "alerts.channel_burst",
                "must be at least 1",
            ));
        }
        if !(1..=64).contains(&self.alerts.channel_in_flight) {
            problems.push(ConfigProblem::new(
                "alerts.channel_in_flight",
                "must be between 1 (each channel's messages in order, the default) and 64",
            ));
        }
        if self.slack.bot_token.is_some() && self.slack.webhook_url.is_some() {
            problems.push(ConfigProblem::new(
                "slack",
                "both bot_token and webhook_url are set; keep one (a bot token can post to any channel, a webhook only to its own)",
            ));
        }
        if let Some(token) = &self.slack.bot_token
            && !token.expose_secret().starts_with("xox")
        {
            problems.push(ConfigProblem::new(
                "slack.bot_token",
                "does not look like a Slack token (they start with xoxb-); copy the Bot User OAuth Token from your Slack app's OAuth & Permissions page",
            ));
        }
        if let Some(url) = &self.slack.webhook_url
            && reqwest::Url::parse(url.expose_secret()).is_err()
        {
            problems.push(ConfigProblem::new(
                "slack.webhook_url",
                "is not a URL; copy it from your Slack app's Incoming Webhooks page (https://hooks.slack.com/services/…)",
            ));
        }
        if reqwest::Url::parse(&self.slack.api_base_url).is_err() {
            problems.push(ConfigProblem::new(
                "slack.api_base_url",
                "is not a URL; the default is https://slack.com/api",
            ));
        }
        if let Some(channel) = &self.slack.default_channel
            && channel.trim().is_empty()
        {
            problems.push(ConfigProblem::new(
                "slack.default_channel",
                "is empty; name a channel like #csat-alerts or give its id",
            ));
        }

        if self.alerts.retry_initial.is_zero() {
            problems.push(ConfigProblem::new(
                "alerts.retry_initial",
                "must be more than 0s",
            ));
        }
        if self.alerts.retry_max < self.alerts.retry_initial {
            problems.push(ConfigProblem::new(
                "alerts.retry_max",
                "must be at least alerts.retry_initial",
            ));
        }
        if self.alerts.claim_lease < self.slack.request_timeout * 2 {
            problems.push(ConfigProblem::new(
                "alerts.claim_lease",
                "must be at least twice slack.request_timeout, or a slow Slack call could be sent twice",
            ));
        }

        // The sources check their own tables (`crate::sources::registry`);
        // rules below only need their names.
        let source_names: Vec<String> = self.sources.iter().filter_map(RawSource::name).collect();

        let has_destination = self.slack.bot_token.is_some();
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}]");
            for s in &rule.sentiment {
                if let Err(e) = s.parse::<Sentiment>() {
                    problems.push(ConfigProblem::new(format!("{key}.sentiment"), e));
                }
            }
            for s in &rule.survey {
                if let Err(e) = s.parse::<SurveyKind>() {
                    problems.push(ConfigProblem::new(format!("{key}.survey"), e));
                }
            }
            for s in &rule.source {
                if !source_names.contains(s) {
                    problems.push(ConfigProblem::new(
                        format!("{key}.source"),
                        format!("no [[sources]] entry is named {s:?}"),
                    ));
                }
            }
            if rule.dm_agent && !has_destination {
                problems.push(ConfigProblem::new(
                    format!("{key}.dm_agent"),
                    "needs slack.bot_token (a direct message cannot go through an incoming webhook); set a bot token or remove dm_agent",
                ));
            }
            if rule.repeat_negative.is_some_and(|w| w.is_zero()) {
                problems.push(ConfigProblem::new(
                    format!("{key}.repeat_negative"),
                    "must be more than 0s, e.g. \"90d\"; remove it to match first-time detractors too",
                ));
            }
            if has_destination
                && !rule.mute
                && rule.channel.is_none()
                && self.slack.default_channel.is_none()
            {
                problems.push(ConfigProblem::new(
                    format!("{key}.channel"),
                    "is not set and there is no slack.default_channel; name a channel for this rule or set a default",
                ));
            }
        }
        if has_destination && self.rules.is_empty() && self.slack.default_channel.is_none() {
            problems.push(ConfigProblem::new(
                "slack.default_channel",
                "is required with a bot token when no [[rules]] name a channel; e.g. default_channel = \"#csat-alerts\"",
            ));
        }

        insights::validate(&mut self, &mut problems);
        checks::check(&self, &mut problems);
        self.validate_dashboard(&mut problems);
        self.validate_telemetry(&mut problems);

        (self, problems)
    }

    /// `[dashboard]`: reads the `…_file` secret.
    fn validate_dashboard(&mut self, problems: &mut Vec<ConfigProblem>) {
        self.dashboard.session_secret = resolve_secret(
            "dashboard.session_secret",
            self.dashboard.session_secret.take(),
            self.dashboard.session_secret_file.as_deref(),
            problems,
        );
        if let Some(secret) = &self.dashboard.session_secret
            && secret.expose_secret().len() < 32
        {
            problems.push(ConfigProblem::new(
                "dashboard.session_secret",
                "is shorter than 32 characters; use a long random value (e.g. `openssl rand -hex 32`)",
            ));
        }
        if self.dashboard.session_ttl < Duration::from_secs(60) {
            problems.push(ConfigProblem::new(
                "dashboard.session_ttl",
                "must be at least 1m; e.g. session_ttl = \"12h\"",
            ));
        }
    }

    /// `[telemetry]`: the endpoint's form, the ratio, the headers secret.
    fn validate_telemetry(&mut self, problems: &mut Vec<ConfigProblem>) {
        let t = &mut self.telemetry;
        t.headers = resolve_secret(
            "telemetry.headers",
            t.headers.take(),
            t.headers_file.as_deref(),
            problems,
        );
        if let Some(endpoint) = &t.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            problems.push(ConfigProblem::new(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL of an OTLP/HTTP receiver, e.g. otlp_endpoint = \"http://127.0.0.1:4318\" (the path /v1/traces is added)",
            ));
        }
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            problems.push(ConfigProblem::new(
                "telemetry.sample_ratio",
                "must be between 0.0 and 1.0 (1.0 keeps every trace, 0.1 one in ten)",
            ));
        }
        if t.service_name.trim().is_empty() {
            problems.push(ConfigProblem::new(
                "telemetry.service_name",
                "is empty; set a name such as \"csatwatch\" or remove the key",
            ));
        }
        if t.max_queue_size == 0 {
            problems.push(ConfigProblem::new(
                "telemetry.max_queue_size",
                "must be at least 1 (default 2048)",
            ));
        }
        if let Some(headers) = &t.headers
            && let Err(problem) = parse_otlp_headers(headers.expose_secret())
        {
            problems.push(ConfigProblem::new("telemetry.headers", problem));
        }
    }

    /// Where alerts go, in words, for start-up logs and `check-config`.
    pub fn sink_description(&self) -> &'static str {
        if self.slack.bot_token.is_some() {
            "Slack Web API (bot token): posts to each rule's channel"
        } else if self.slack.webhook_url.is_some() {
            "Slack incoming webhook: posts only; messages cannot be updated or threaded, and the channel is fixed by the webhook"
        } else {
            "the log (no slack.bot_token or slack.webhook_url set): alerts are written at WARN"
        }
    }
}

/// A secret given inline or as `…_file`; one of them, not both. The file's
/// trailing newline is dropped.
pub fn resolve_secret(
    key: &str,
    inline: Option<SecretString>,
    file: Option<&Path>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<SecretString> {
    match (inline, file) {
        (Some(_), Some(_)) if key == "database.url" => {
            // database.url always has a default; the file wins.
            read_secret_file(key, file?, problems)
        }
        (Some(_), Some(_)) => {
            problems.push(ConfigProblem::new(
                key,
                format!("both {key} and {key}_file are set; keep one"),
            ));
            None
        }
        (Some(inline), None) => {
            if inline.expose_secret().trim().is_empty() {
                problems.push(ConfigProblem::new(
                    key,
                    "is empty; set it or remove the key",
                ));
                None
            } else {
                Some(inline)
            }
        }
        (None, Some(path)) => read_secret_file(key, path, problems),
        (None, None) => None,
    }
}

fn read_secret_file(
    key: &str,
    path: &Path,
    problems: &mut Vec<ConfigProblem>,
) -> Option<SecretString> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let value = text.trim_end_matches(['\n', '\r']).to_string();
            if value.trim().is_empty() {
                problems.push(ConfigProblem::new(
                    format!("{key}_file"),
                    format!("{} is empty; write the secret into it", path.display()),
                ));
                None
            } else {
                Some(SecretString::from(value))
            }
        }
        Err(e) => {
            problems.push(ConfigProblem::new(
                format!("{key}_file"),
                format!(
                    "cannot read {}: {e}; check the path and its permissions",
                    path.display()
                ),
            ));
            None
        }
    }
}

/// Every type problem of the settings, not only serde's first: each
/// top-level key is read on its own (and each table of an array such as
/// `[[rules]]` on its own), so one run lists them all.
fn every_type_problem(root: config::Value) -> Option<Vec<ConfigProblem>> {
    let table = root.into_table().ok()?;
    let mut problems = Vec::new();
    for (key, value) in table {
        let alone = |value: config::Value| {
            let mut map = config::Map::new();
            map.insert(key.clone(), value);
            config::Value::new(None, config::ValueKind::Table(map))
        };
        match value.clone().into_array() {
            Ok(items) if !items.is_empty() => {
                for (i, item) in items.into_iter().enumerate() {
                    let one = alone(config::Value::new(
                        None,
                        config::ValueKind::Array(vec![item]),
                    ));
                    if let Err(mut found) = read_value::<Settings>("", one) {
                        for problem in &mut found {
                            problem.key = problem.key.replacen(
                                &format!("{key}[0]"),
                                &format!("{key}[{i}]"),
                                1,
                            );
                        }
                        problems.append(&mut found);
                    }
                }
            }
            _ => {
                if let Err(mut found) = read_value::<Settings>("", alone(value)) {
                    problems.append(&mut found);
                }
            }
        }
    }
    (!problems.is_empty()).then_some(problems)
}

/// As [`read_value`], but reports every problem of the table, not only
/// serde's first: the key at fault is set aside and the rest read again, so
/// one run lists every unknown or mistyped key. Returns what could be read
/// (the default when nothing could) and the problems.
pub fn read_every<T: serde::de::DeserializeOwned + Default>(
    prefix: &str,
    mut value: config::Value,
) -> (T, Vec<ConfigProblem>) {
    let mut problems = Vec::new();
    // Each round removes one key, so this ends; the bound is a safety net.
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(read) => return (read, problems),
            Err(e) => {
                let segments: Vec<String> = e
                    .path()
                    .iter()
                    .filter_map(|segment| match segment {
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        _ => None,
                    })
                    .collect();
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                problems.push(problem_for(prefix, &path, &message));
                if !remove_key(&mut value, &segments) {
                    break;
                }
            }
        }
    }
    (T::default(), problems)
}

/// Removes the key at `path` (table keys only); false when there is none.
fn remove_key(value: &mut config::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut table = match value.clone().into_table() {
        Ok(table) => table,
        Err(_) => return false,
    };
    let removed = match parents.split_first() {
        None => table.remove(last).is_some(),
        Some((first, rest)) => {
            let mut rest_path: Vec<String> = rest.to_vec();
            rest_path.push(last.clone());
            match table.get_mut(first) {
                Some(child) => remove_key(child, &rest_path),
                None => false,
            }
        }
    };
    if removed {
        *value = config::Value::new(None, config::ValueKind::Table(table));
    }
    removed
}

/// Deserializes `value`, naming the key of the problem found with `prefix`
/// before it (`sources[2]` + `api.account_id`) and saying how to fix it.
pub fn read_value<T: serde::de::DeserializeOwned>(
    prefix: &str,
    value: config::Value,
) -> Result<T, Vec<ConfigProblem>> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        vec![problem_for(prefix, &path, &message)]
    })
}

/// Turns a serde message at `path` into a problem with its full key.
fn problem_for(prefix: &str, path: &str, message: &str) -> ConfigProblem {
    let join = |parts: &[&str]| {
        parts
            .iter()
            .filter(|p| !p.is_empty() && **p != ".")
            .copied()
            .collect::<Vec<_>>()
            .join(".")
    };
    let field_in = |marker: &str| {
        message
            .strip_prefix(marker)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    if field_in("unknown field `").is_some() {
        // The path already ends with the unknown field.
        return ConfigProblem::new(
            join(&[prefix, path]),
            format!(
                "is not a known key here ({message}); remove it or fix its spelling (config/csatwatch.example.toml has every key; docs/helpdesks/ each kind's source keys)"
            ),
        );
    }
    if let Some(field) = field_in("missing field `") {
        return ConfigProblem::new(
            join(&[prefix, path, &field]),
            "is required; config/csatwatch.example.toml shows it",
        );
    }
    let key = join(&[prefix, path]);
    ConfigProblem::new(
        if key.is_empty() {
            "settings".to_string()
        } else {
            key
        },
        format!("{message}; config/csatwatch.example.toml shows how to write it"),
    )
}

/// Parses `"5m"`, `"72h"`, `"1s 500ms"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write it like \"30s\", \"5m\" or \"72h\"")
    })
}

/// `127.0.0.1:8080`, `[::]:8080`, or a host name and port resolved now.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let hint = "write an address and port for server.listen like \"127.0.0.1:8080\" (this machine only) or \"0.0.0.0:8080\" (every interface, as in a container)";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} has no port; {hint}"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("{text:?} is not a host and port; {hint}"));
    }
    use std::net::ToSocketAddrs as _;
    match text.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| format!("{text:?} resolves to no address; {hint}"))
        }
        Err(e) => Err(format!(
            "{text:?} is not an address, and its host name does not resolve ({e}); {hint}"
        )),
    }
}

fn listen_address<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_listen(&text).map_err(serde::de::Error::custom)
}

pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(toml.as_bytes()).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_with_env(Some(file.path()), env).and_then(Settings::validate)
    }

    #[test]
    fn the_example_config_is_valid() {
        let settings = Settings::load_with_env(
            Some(Path::new("config/csatwatch.example.toml")),
            std::iter::empty(),
        )
        .and_then(Settings::validate)
        .unwrap();
        assert!(!settings.sources.is_empty());
        // Its sources are checked by the sources' registry's own test.
    }

    #[test]
    fn closing_the_loop_keys_are_read_and_their_mistakes_named() {
        let s = load(
            "[slack]\nbot_token = \"xoxb-x\"\ndefault_channel = \"#c\"\n[alerts]\nsettle = \"2m\"\nvip_tags = [\"vip\"]\n[[rules]]\nrepeat_negative = \"90d\"\nvip = true\ndm_agent = true\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.alerts.settle, Duration::from_secs(120));
        assert_eq!(s.alerts.history_window, Duration::from_secs(90 * 86_400));
        assert_eq!(
            s.rules[0].repeat_negative,
            Some(Duration::from_secs(90 * 86_400))
        );
        assert!(s.rules[0].dm_agent);
        let err = load(
            "[[rules]]\nrepeat_negative = \"0s\"\ndm_agent = true\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("rules[0].dm_agent") && err.contains("slack.bot_token"),
            "{err}"
        );
        assert!(err.contains("rules[0].repeat_negative"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let s = load(
            "[alerts]\nmax_age = \"1h\"\n",
            &[
                ("CSATWATCH__ALERTS__MAX_AGE", "2h"),
                ("CSATWATCH__SLACK__DEFAULT_CHANNEL", "#x"),
            ],
        )
        .unwrap();
        assert_eq!(s.alerts.max_age, Duration::from_secs(7200));
        assert_eq!(s.slack.default_channel.as_deref(), Some("#x"));
    }

    #[test]
    fn a_secret_is_read_from_its_file_and_never_printed() {
        let mut secret = tempfile::NamedTempFile::new().unwrap();
        secret.write_all(b"xoxb-from-file\n").unwrap();
        let toml = format!(
            "[slack]\nbot_token_file = {:?}\ndefault_channel = \"#a\"\n",
            secret.path().display().to_string()
        );
        let s = load(&toml, &[]).unwrap();
        assert_eq!(
            s.slack.bot_token.as_ref().unwrap().expose_secret(),
            "xoxb-from-file"
        );
        assert!(!format!("{s:?}").contains("xoxb-from-file"));
    }

    #[test]
    fn secrets_are_not_mangled_by_type_guessing() {
        let s = load(
            "[alerts]\nmax_age = \"1h\"\n",
            &[(
                "CSATWATCH__SLACK__WEBHOOK_URL",
                "https://hooks.example/0012345",
            )],
        )
        .unwrap();
        assert_eq!(
            s.slack.webhook_url.unwrap().expose_secret(),
            "https://hooks.example/0012345"
        );
    }

    #[test]
    fn every_problem_names_its_key() {
        let err = load(
            "[slack]\nbot_token = \"nope\"\n[[rules]]\nsentiment = [\"angry\"]\nchannel = \"#c\"\n",
            &[],
        )
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"slack.bot_token"), "{err}");
        assert!(keys.contains(&"rules[0].sentiment"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let err = load("[alerts]\nmax_agee = \"1h\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("max_agee"), "{err}");
    }

    #[test]
    fn a_log_level_that_does_not_parse_stops_start_up_with_an_example() {
        let err = load("[log]\nlevel = \"csatwatch=loud\"\n", &[]).unwrap_err();
        assert_eq!(err.problems[0].key, "log.level", "{err}");
        assert!(
            err.to_string().contains("csatwatch=debug,sqlx=warn"),
            "{err}"
        );
        load("[log]\nlevel = \"warn,csatwatch=debug\"\n", &[]).unwrap();
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        let err = load("[alerts]\nmax_age = \"three days\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("\"72h\""), "{err}");
    }
}

/// `[dashboard]`: the pages at `/` behind the `[[api.tokens]]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// The key that signs session cookies (at least 32 characters). Unset: a
    /// random key per process, so a restart signs everyone out and replicas
    /// behind one load balancer do not accept each other's cookies; set the
    /// same value on every replica to avoid both.
    #[schemars(with = "Option<String>")]
    pub session_secret: Option<SecretString>,
    /// Read the session secret from this file instead.
    pub session_secret_file: Option<PathBuf>,
    /// How long a sign-in lasts. Default `12h`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` always (`true`), never (`false`), or
    /// only when the request came over TLS as told by a proxy's
    /// `X-Forwarded-Proto: https` (unset, the default).
    pub secure_cookie: Option<bool>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            session_secret: None,
            session_secret_file: None,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookie: None,
        }
    }
}

/// `[telemetry]`: OpenTelemetry traces over OTLP/HTTP (protobuf). Off unless
/// `otlp_endpoint` is set.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// The base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector,
    /// Jaeger, Tempo), e.g. `http://127.0.0.1:4318`; spans are POSTed to
    /// `{otlp_endpoint}/v1/traces`. Unset (the default): no traces.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute. Default `csatwatch`.
    pub service_name: String,
    /// The share of new traces kept, 0.0 to 1.0. Default `1.0`. A trace
    /// started by a webhook keeps its decision through the alert it sends.
    pub sample_ratio: f64,
    /// Headers sent with every export, `key=value` pairs separated by
    /// commas (as `OTEL_EXPORTER_OTLP_HEADERS`), e.g.
    /// `authorization=Bearer abc`. A secret: never logged.
    #[schemars(with = "Option<String>")]
    pub headers: Option<SecretString>,
    /// Read the headers from this file instead.
    pub headers_file: Option<PathBuf>,
    /// How long one export may take before it is abandoned. Default `10s`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub export_timeout: Duration,
    /// Finished spans waiting for export; when full, new spans are dropped
    /// (never the request). Default `2048`.
    pub max_queue_size: usize,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            service_name: "csatwatch".to_string(),
            sample_ratio: 1.0,
            headers: None,
            headers_file: None,
            export_timeout: Duration::from_secs(10),
            max_queue_size: 2048,
        }
    }
}

/// `key=value,key2=value2` into pairs; the problem in words otherwise
/// (never quoting the value: it may hold a token).
pub fn parse_otlp_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, pair) in text.split(',').enumerate() {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!(
                "pair {} has no `=`; write key=value pairs separated by commas, e.g. authorization=Bearer TOKEN",
                i + 1
            ));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "pair {} has an invalid header name; use letters, digits and `-`",
                i + 1
            ));
        }
        out.push((key.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(out)
}
