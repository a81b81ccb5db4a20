//! `[[sources]]` tables → built sources: the only place sources are built,
//! and the one place their problems are collected. `check-config` and
//! start-up both call [`SourceRegistry::from_settings`]; every problem is
//! reported once, with its key (`sources[2].api.account_id`) and its fix.
//!
//! The registry is also what `POST /webhooks/{source}` looks up.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::settings::POLL_KEYS;
use super::{FetchError, FetchRef, Fetched, HelpdeskApi, KINDS, SourceTable, Webhook, kind_names};
use crate::domain::SourceName;
use crate::settings::{ConfigError, ConfigProblem, Settings};

/// How a source with an API is polled: its settings, or the helpdesk's
/// defaults where unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPlan {
    /// `poll_interval`; `None`: the API is only used for fetches and backfills.
    pub interval: Option<Duration>,
    /// `poll_overlap`, or the helpdesk's default.
    pub overlap: Duration,
    /// `poll_requests_per_minute`, or the helpdesk's default.
    pub requests_per_minute: u32,
    /// `poll_start`; `None`: `alerts.max_age`.
    pub start: Option<Duration>,
}

/// One `[[sources]]` entry, built.
#[derive(Clone)]
pub struct ConfiguredSource {
    pub name: SourceName,
    pub adapter: Arc<dyn Webhook>,
    /// The per-source threshold (`negative_at_or_below`), if set.
    pub negative_at_or_below: Option<i64>,
    /// Set when the source has an API to poll.
    pub poll: Option<PollPlan>,
}

impl std::fmt::Debug for ConfiguredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredSource")
            .field("name", &self.name)
            .field("kind", &self.adapter.kind())
            .field("negative_at_or_below", &self.negative_at_or_below)
            .field("poll", &self.poll)
            .finish()
    }
}

impl ConfiguredSource {
    pub fn kind(&self) -> &'static str {
        self.adapter.kind()
    }

    /// The helpdesk's API, if this source has one.
    pub fn api(&self) -> Option<&dyn HelpdeskApi> {
        self.adapter.api()
    }

    /// Fetches what a delivery referred to, through the source's API.
    pub async fn fetch(
        &self,
        http: &reqwest::Client,
        reference: &FetchRef,
    ) -> Result<Fetched, FetchError> {
        match self.adapter.api() {
            Some(api) => api.fetch(http, reference).await,
            None => Err(FetchError::permanent(format!(
                "the delivery carries no rating and this source has no [sources.api] to fetch {} {} with; add it (docs/helpdesks/{}.md)",
                reference.kind,
                reference.id,
                self.kind()
            ))),
        }
    }
}

/// Every configured source. Shared (behind an `Arc`) by the webhook
/// handler, the fetcher and the pollers; a settings reload replaces its
/// contents in place ([`SourceRegistry::replace`]), so every holder sees the
/// new sources and secrets at once.
#[derive(Debug, Default)]
pub struct SourceRegistry {
    sources: RwLock<Arc<BTreeMap<String, ConfiguredSource>>>,
}

impl SourceRegistry {
    /// Builds every `[[sources]]` table, collecting every problem.
    pub fn from_settings(settings: &Settings) -> Result<SourceRegistry, ConfigError> {
        let mut sources = BTreeMap::new();
        let mut problems = Vec::new();
        for (i, raw) in settings.sources.iter().enumerate() {
            let key = format!("sources[{i}]");
            // Every problem of the shared keys, and then of the kind's own
            // keys, in one run; a key already reported is not reported
            // again by what follows from its absence.
            let (table, mut shared_problems) = SourceTable::read_all(key.clone(), raw);
            let reported = |name: &str| {
                let at = format!("{key}.{name}");
                shared_problems.iter().any(|p| p.key == at)
            };
            let name = if reported("name") {
                None
            } else {
                match SourceName::parse(&table.shared.name) {
                    Ok(name) => Some(name),
                    Err(e) => {
                        problems.push(ConfigProblem::new(format!("{key}.name"), e));
                        None
                    }
                }
            };
            if table.shared.kind.trim().is_empty() && !shared_problems.is_empty() {
                // No kind to read the rest with (it is missing, or the table
                // could not be read at all): what was found is all there is.
                problems.append(&mut shared_problems);
                continue;
            }
            let built = build(&table).map_err(|found| {
                found
                    .into_iter()
                    .filter(|p| !shared_problems.iter().any(|s| s.key == p.key))
                    .collect::<Vec<_>>()
            });
            let clean = shared_problems.is_empty();
            problems.append(&mut shared_problems);
            if name.is_some() && sources.contains_key(&table.shared.name) {
                problems.push(ConfigProblem::new(
                    format!("{key}.name"),
                    format!(
                        "{:?} is used by two sources; give each a different name",
                        table.shared.name
                    ),
                ));
            }
            match built {
                Ok(source) => {
                    if let (Some(name), true) = (name, clean) {
                        sources.insert(table.shared.name.clone(), source.configured(name));
                    }
                }
                Err(mut found) => problems.append(&mut found),
            }
        }
        if problems.is_empty() {
            Ok(SourceRegistry {
                sources: RwLock::new(Arc::new(sources)),
            })
        } else {
            Err(ConfigError { problems })
        }
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, ConfiguredSource>> {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, name: &str) -> Option<ConfiguredSource> {
        self.snapshot().get(name).cloned()
    }

    /// The sources configured now (a snapshot).
    pub fn iter(&self) -> impl Iterator<Item = ConfiguredSource> {
        self.snapshot()
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    /// Takes the sources of `other` (a settings reload): deliveries from
    /// now on are verified and parsed by them.
    pub fn replace(&self, other: SourceRegistry) {
        let new = other.snapshot();
        *self.sources.write().unwrap_or_else(|e| e.into_inner()) = new;
    }
}

/// A table built, before its name is known to be valid.
struct Built {
    adapter: Arc<dyn Webhook>,
    negative_at_or_below: Option<i64>,
    poll: Option<PollPlan>,
}

impl Built {
    fn configured(self, name: SourceName) -> ConfiguredSource {
        ConfiguredSource {
            name,
            adapter: self.adapter,
            negative_at_or_below: self.negative_at_or_below,
            poll: self.poll,
        }
    }
}

/// Builds one table with its kind's builder, then checks what only the
/// built source can tell (poll keys without an API to poll).
fn build(table: &SourceTable) -> Result<Built, Vec<ConfigProblem>> {
    let kind = table.shared.kind.trim();
    let Some(builder) = KINDS.iter().find(|k| k.name == kind).map(|k| k.build) else {
        return Err(vec![ConfigProblem::new(
            table.key_of("kind"),
            format!(
                "unknown source kind {kind:?}; use one of: {}",
                kind_names().join(", ")
            ),
        )]);
    };
    let mut problems = Vec::new();
    if table.shared.poll_requests_per_minute == Some(0) {
        problems.push(ConfigProblem::new(
            table.key_of("poll_requests_per_minute"),
            "must be at least 1; leave it out for the helpdesk's default",
        ));
    }
    check_durations(table, &mut problems);
    let built = builder(table);
    // Poll keys need an API to poll: checked even when the table has other
    // problems, so one run lists them all.
    let has_api = match &built {
        Ok(adapter) => adapter.api().is_some(),
        Err(_) => table.has_api(),
    };
    let shared = &table.shared;
    if !has_api {
        let set = [
            shared.poll_interval.is_some(),
            shared.poll_overlap.is_some(),
            shared.poll_requests_per_minute.is_some(),
            shared.poll_start.is_some(),
        ];
        for (poll_key, _) in POLL_KEYS.iter().zip(set).filter(|(_, set)| *set) {
            problems.push(ConfigProblem::new(
                table.key_of(poll_key),
                format!(
                    "needs [sources.api]: without the helpdesk's API credentials nothing polls; add [sources.api] (docs/helpdesks/{kind}.md lists its keys), or remove {poll_key}"
                ),
            ));
        }
    }
    let adapter = match built {
        Ok(adapter) => adapter,
        Err(mut found) => {
            found.append(&mut problems);
            return Err(found);
        }
    };
    let poll = adapter.api().map(|api| PollPlan {
        interval: shared.poll_interval,
        overlap: shared.poll_overlap.unwrap_or_else(|| api.default_overlap()),
        requests_per_minute: shared
            .poll_requests_per_minute
            .unwrap_or_else(|| api.default_requests_per_minute())
            .max(1),
        start: shared.poll_start,
    });
    if problems.is_empty() {
        Ok(Built {
            adapter,
            negative_at_or_below: shared.negative_at_or_below,
            poll,
        })
    } else {
        Err(problems)
    }
}

/// Durations of the table that cannot be zero: a zero poll interval polls
/// without pause, a zero API timeout fails every call. (A zero replay
/// window is refused by the kinds that read one.)
fn check_durations(table: &SourceTable, problems: &mut Vec<ConfigProblem>) {
    let shared = &table.shared;
    let zero = |d: Option<std::time::Duration>| d.is_some_and(|d| d.is_zero());
    if zero(shared.poll_interval) {
        problems.push(ConfigProblem::new(
            table.key_of("poll_interval"),
            "is 0s, which would poll the helpdesk without pause; give an interval like \"5m\", or remove the key to not poll",
        ));
    }
    if zero(table.api_duration("request_timeout")) {
        problems.push(ConfigProblem::new(
            table.key_of("api.request_timeout"),
            "is 0s, which would fail every API call at once; give a timeout like \"10s\" (the default), or remove the key",
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;

    /// Every problem `check-config` would list for this TOML.
    fn problems(toml: &str) -> Vec<ConfigProblem> {
        match load(toml) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    fn load(toml: &str) -> Result<SourceRegistry, Vec<ConfigProblem>> {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(toml.as_bytes()).unwrap();
        let settings = Settings::load_with_env(Some(file.path()), std::iter::empty())
            .map_err(|e| e.problems)?;
        let (settings, mut problems) = settings.checked();
        match SourceRegistry::from_settings(&settings) {
            Ok(registry) if problems.is_empty() => Ok(registry),
            Ok(_) => Err(problems),
            Err(mut e) => {
                problems.append(&mut e.problems);
                Err(problems)
            }
        }
    }

    fn keys(problems: &[ConfigProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn the_example_config_builds_every_source() {
        let settings = Settings::load_with_env(
            Some(Path::new("config/csatwatch.example.toml")),
            std::iter::empty(),
        )
        .and_then(Settings::validate)
        .unwrap();
        let registry = SourceRegistry::from_settings(&settings).unwrap();
        assert_eq!(registry.len(), settings.sources.len());
    }

    #[test]
    fn every_problem_of_every_table_is_listed_with_its_key() {
        let found = problems(
            "[slack]\nbot_token = \"nope\"\n\
             [[sources]]\nname = \"Bad Name\"\nkind = \"zendesk\"\n\
             [[sources]]\nname = \"ok\"\nkind = \"nosuchdesk\"\nsecret = \"s\"\n\
             [[sources]]\nname = \"n\"\nkind = \"zendesk\"\nsecret = \"s\"\nnegative_at_or_below = \"three\"\n",
        );
        let keys = keys(&found);
        for key in [
            "slack.bot_token",
            "sources[0].name",
            "sources[0].secret",
            "sources[1].kind",
            "sources[2].negative_at_or_below",
        ] {
            assert!(keys.contains(&key), "{key} missing from {found:?}");
        }
    }

    #[test]
    fn every_problem_of_one_table_is_listed_shared_keys_and_the_kinds_alike() {
        let found = problems(
            "[[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\n\
             negative_at_or_below = \"three\"\npoll_requests_per_minute = \"many\"\n\
             scale = \"five_point\"\n",
        );
        let mut keys = keys(&found);
        keys.sort();
        assert_eq!(
            keys,
            [
                "sources[0].negative_at_or_below",
                "sources[0].poll_requests_per_minute",
                "sources[0].scale"
            ],
            "{found:?}"
        );
        for problem in &found {
            eprintln!("{}: {}", problem.key, problem.message);
        }
        let message = |key: &str| {
            let p = found.iter().find(|p| p.key == format!("sources[0].{key}"));
            p.unwrap().message.clone()
        };
        assert!(
            message("negative_at_or_below").contains("integer"),
            "{found:?}"
        );
        assert!(
            message("poll_requests_per_minute").contains("integer"),
            "{found:?}"
        );
        assert!(message("scale").contains("remove it"), "{found:?}");
    }

    #[test]
    fn a_missing_kind_or_name_is_reported_once() {
        let found = problems("[[sources]]\nsecret = \"s\"\nreplay_window = 5\n");
        let mut keys = keys(&found);
        keys.sort();
        assert_eq!(
            keys,
            [
                "sources[0].kind",
                "sources[0].name",
                "sources[0].replay_window"
            ],
            "{found:?}"
        );
    }

    #[test]
    fn a_key_of_another_helpdesk_is_refused_with_its_name() {
        let found = problems(
            "[[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\nscale = \"five_point\"\n\
             [[sources]]\nname = \"z2\"\nkind = \"zendesk\"\nsecret = \"s\"\n\
             [sources.api]\nbase_url = \"https://acme.zendesk.com\"\ntoken = \"t\"\naccount_id = \"1\"\n",
        );
        assert_eq!(
            keys(&found),
            ["sources[0].scale", "sources[1].api.account_id"],
            "{found:?}"
        );
        assert!(
            found[0].message.contains("remove it"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn a_poll_key_without_an_api_is_refused() {
        let found = problems(
            "[[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\npoll_interval = \"5m\"\npoll_start = \"1d\"\n",
        );
        assert_eq!(
            keys(&found),
            ["sources[0].poll_interval", "sources[0].poll_start"],
            "{found:?}"
        );
        assert!(
            found[0].message.contains("[sources.api]"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn a_zero_window_interval_or_api_timeout_is_refused_once_with_its_key() {
        let found = problems(
            "[[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\n\
             replay_window = \"0s\"\npoll_interval = \"0s\"\n\
             [sources.api]\nbase_url = \"https://acme.zendesk.com\"\ntoken = \"t\"\nrequest_timeout = \"0s\"\n",
        );
        assert_eq!(
            keys(&found),
            [
                "sources[0].replay_window",
                "sources[0].poll_interval",
                "sources[0].api.request_timeout"
            ],
            "{found:?}"
        );
        assert!(
            found.iter().all(|p| p.message.contains("is 0s")),
            "{found:?}"
        );
        // A positive value of each is accepted.
        assert!(load(
            "[[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\n\
             replay_window = \"1m\"\npoll_interval = \"1m\"\n\
             [sources.api]\nbase_url = \"https://acme.zendesk.com\"\ntoken = \"t\"\nrequest_timeout = \"5s\"\n",
        )
        .is_ok());
    }

    #[test]
    fn a_source_with_an_api_polls_at_its_helpdesks_default_budget() {
        let registry = load(
            "[[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\npoll_interval = \"5m\"\n\
             [sources.api]\nbase_url = \"https://acme.zendesk.com\"\ntoken = \"t\"\n",
        )
        .unwrap();
        let plan = registry.get("z").unwrap().poll.unwrap();
        assert_eq!(plan.interval, Some(Duration::from_secs(300)));
        assert_eq!(plan.requests_per_minute, 50);
        assert_eq!(plan.overlap, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn two_sources_may_not_share_a_name() {
        let found = problems(
            "[[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\n\
             [[sources]]\nname = \"z\"\nkind = \"zendesk\"\nsecret = \"s\"\n",
        );
        assert_eq!(keys(&found), ["sources[1].name"], "{found:?}");
    }

    #[test]
    fn a_help_scout_client_secret_is_read_from_its_file_and_required_with_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hs");
        std::fs::write(&file, "app-secret-from-file\n").unwrap();
        let source = |api: &str| {
            format!(
                "[[sources]]\nname = \"hs\"\nkind = \"helpscout\"\nsecret = \"s\"\n[sources.api]\nbase_url = \"https://api.helpscout.net\"\n{api}"
            )
        };
        let registry = load(&source(&format!(
            "client_id = \"app\"\nclient_secret_file = {file:?}\n"
        )))
        .unwrap();
        assert!(registry.get("hs").unwrap().api().is_some());
        let found = problems(&source("client_secret = \"x\"\ntoken = \"t\"\n"));
        let keys = keys(&found);
        assert!(
            keys.contains(&"sources[0].api.client_id") && keys.contains(&"sources[0].api.token"),
            "{found:?}"
        );
        assert!(
            !format!("{found:?}").contains("\"x\""),
            "the secret is never echoed"
        );
    }
}
