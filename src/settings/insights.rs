//! Settings for reports and what is built on them: `[reports]`, the read
//! API's `[[api.tokens]]`, scheduled `[[digests]]` and `[[drop_alerts]]`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ConfigProblem, Settings, duration, resolve_secret};
use crate::domain::SurveyKind;
use crate::store::RatingFilter;

/// `[reports]`: how every figure is computed.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// The IANA time zone periods are computed in (days, ISO weeks, months)
    /// and digests and drop alerts are scheduled in. Default `UTC`.
    pub timezone: String,
    /// Groups with fewer responses are flagged `low_sample`, and drop alerts
    /// need at least this many in their window. Default 30.
    pub min_sample: u64,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            timezone: "UTC".into(),
            min_sample: 30,
        }
    }
}

impl ReportSettings {
    /// The time zone (validated at start-up, so UTC only in theory).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        crate::reports::period::parse_time_zone(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// `[api]`: the read API under `/api/v1` and the dashboard's login.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReadApiSettings {
    /// Bearer tokens, one `[[api.tokens]]` table each. None configured: the
    /// API answers 404 and says so in the log.
    pub tokens: Vec<ApiTokenSettings>,
}

/// One `[[api.tokens]]` entry. Several let one be revoked without the others.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenSettings {
    /// Who holds it (logged on use; the token never is).
    pub name: String,
    /// The token, at least 16 characters (e.g. `openssl rand -hex 32`).
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// Or a file to read it from.
    pub token_file: Option<PathBuf>,
}

/// The filters a digest or drop alert reads, like a rule's matchers.
#[derive(Debug, Clone, Default)]
pub struct FilterSettings {
    pub source: Vec<String>,
    pub team: Vec<String>,
    pub agent: Vec<String>,
    pub brand: Vec<String>,
    pub tags: Vec<String>,
    pub survey: Vec<String>,
}

impl FilterSettings {
    pub fn to_filter(&self) -> RatingFilter {
        RatingFilter {
            source: self.source.clone(),
            team: self.team.clone(),
            agent: self.agent.clone(),
            brand: self.brand.clone(),
            tag: self.tags.clone(),
            survey: self.survey.clone(),
            ..RatingFilter::default()
        }
    }
}

/// One `[[digests]]` entry: a summary posted daily or weekly.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestSettings {
    /// Unique; part of the key that makes each period's digest go out once.
    pub name: String,
    /// `daily` (yesterday's figures) or `weekly` (last ISO week's).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// For `weekly`: the day it is posted. Default `monday`.
    #[serde(default = "default_weekday")]
    pub weekday: String,
    /// Local time (`reports.timezone`) it is posted, `HH:MM`. Default `09:00`.
    #[serde(default = "default_at")]
    pub at: String,
    /// The Slack channel; default `slack.default_channel`.
    pub channel: Option<String>,
    /// A digest missed (csatwatch was down) is sent late within this long
    /// after its time, once; later it is skipped. Default `6h`.
    #[serde(default = "default_grace", deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub grace: Duration,
    /// Rank the worst and best `team`s or `agent`s. Default `team`.
    #[serde(default = "default_rank_by")]
    pub rank_by: String,
    /// Weeks shown in the sparkline. Default 8.
    #[serde(default = "default_weeks")]
    pub weeks: u32,
    /// Which ratings it covers, matched like a rule's (case-insensitive);
    /// empty lists match everything.
    #[serde(default)]
    pub source: Vec<String>,
    #[serde(default)]
    pub team: Vec<String>,
    #[serde(default)]
    pub agent: Vec<String>,
    #[serde(default)]
    pub brand: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub survey: Vec<String>,
}

/// One `[[drop_alerts]]` entry: CSAT or NPS over a rolling window
/// significantly below its own baseline.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropAlertSettings {
    /// Unique; names the alert in Slack and in its state rows.
    pub name: String,
    /// `csat` or `nps`. Default `csat`.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// The rolling window, whole local days. Default `7d`.
    #[serde(default = "default_window", deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// The baseline: the days just before the window. Default `28d`.
    #[serde(default = "default_baseline", deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub baseline: Duration,
    /// Responses the window needs; default `reports.min_sample`.
    pub min_sample: Option<u64>,
    /// Responses the baseline needs. Default 60.
    #[serde(default = "default_baseline_min_sample")]
    pub baseline_min_sample: u64,
    /// The smallest drop worth an alert, in points. Default 5 (CSAT) or 10 (NPS).
    pub min_drop: Option<f64>,
    /// Groups evaluated: any of `overall`, `team`, `source`. Default `["overall"]`.
    #[serde(default = "default_per")]
    pub per: Vec<String>,
    /// Local time (`reports.timezone`) of the daily evaluation. Default `09:00`.
    #[serde(default = "default_at")]
    pub at: String,
    /// Consecutive daily evaluations a dropped group must be back (no
    /// longer significantly below its baseline) before the recovery is
    /// posted, so a metric hovering at the threshold does not post drop,
    /// recovery, drop… Default 2; 1 recovers at the first good day.
    #[serde(default = "default_recover_after")]
    pub recover_after: u32,
    /// Where it goes; default: routed by `[[rules]]` like a negative rating
    /// of the group's source and team, else `slack.default_channel`.
    pub channel: Option<String>,
    /// Which ratings it covers, matched like a rule's (case-insensitive);
    /// empty lists match everything.
    #[serde(default)]
    pub source: Vec<String>,
    #[serde(default)]
    pub team: Vec<String>,
    #[serde(default)]
    pub agent: Vec<String>,
    #[serde(default)]
    pub brand: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub survey: Vec<String>,
}

macro_rules! filter_of {
    ($t:ty) => {
        impl $t {
            pub fn filter(&self) -> FilterSettings {
                FilterSettings {
                    source: self.source.clone(),
                    team: self.team.clone(),
                    agent: self.agent.clone(),
                    brand: self.brand.clone(),
                    tags: self.tags.clone(),
                    survey: self.survey.clone(),
                }
            }
        }
    };
}
filter_of!(DigestSettings);
filter_of!(DropAlertSettings);

fn default_schedule() -> String {
    "weekly".into()
}
fn default_weekday() -> String {
    "monday".into()
}
fn default_at() -> String {
    "09:00".into()
}
fn default_grace() -> Duration {
    Duration::from_secs(6 * 3600)
}
fn default_rank_by() -> String {
    "team".into()
}
fn default_weeks() -> u32 {
    8
}
fn default_metric() -> String {
    "csat".into()
}
fn default_window() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_baseline() -> Duration {
    Duration::from_secs(28 * 86_400)
}
fn default_baseline_min_sample() -> u64 {
    60
}
fn default_recover_after() -> u32 {
    2
}
fn default_per() -> Vec<String> {
    vec!["overall".into()]
}

/// Parses `HH:MM`.
pub fn parse_local_time(text: &str) -> Result<(i8, i8), String> {
    let fail = || format!("{text:?} is not a time of day; write it as HH:MM, e.g. \"09:00\"");
    let (h, m) = text.trim().split_once(':').ok_or_else(fail)?;
    let h: i8 = h.parse().map_err(|_| fail())?;
    let m: i8 = m.parse().map_err(|_| fail())?;
    if (0..24).contains(&h) && (0..60).contains(&m) {
        Ok((h, m))
    } else {
        Err(fail())
    }
}

/// Parses a weekday name (`monday` … `sunday`, or the first three letters).
pub fn parse_weekday(text: &str) -> Result<jiff::civil::Weekday, String> {
    use jiff::civil::Weekday::*;
    let t = text.trim().to_ascii_lowercase();
    let days = [
        ("mon", Monday),
        ("tue", Tuesday),
        ("wed", Wednesday),
        ("thu", Thursday),
        ("fri", Friday),
        ("sat", Saturday),
        ("sun", Sunday),
    ];
    days.iter()
        .find(|(p, _)| t.len() >= 3 && t.starts_with(p))
        .map(|(_, d)| *d)
        .ok_or_else(|| format!("{text:?} is not a weekday; use monday … sunday"))
}

fn whole_days(d: Duration) -> bool {
    !d.is_zero() && d.as_secs().is_multiple_of(86_400)
}

/// Checks `[reports]`, `[[api.tokens]]`, `[[digests]]` and `[[drop_alerts]]`.
pub(super) fn validate(s: &mut Settings, problems: &mut Vec<ConfigProblem>) {
    if let Err(e) = crate::reports::period::parse_time_zone(&s.reports.timezone) {
        problems.push(ConfigProblem::new("reports.timezone", e));
    }
    if s.reports.min_sample == 0 {
        problems.push(ConfigProblem::new(
            "reports.min_sample",
            "must be at least 1 (30 is the usual minimum for a percentage to mean much)",
        ));
    }

    let mut names = std::collections::HashSet::new();
    for (i, t) in s.api.tokens.iter_mut().enumerate() {
        let key = format!("api.tokens[{i}]");
        if t.name.trim().is_empty() || !names.insert(t.name.clone()) {
            problems.push(ConfigProblem::new(
                format!("{key}.name"),
                "must be set and unique: it says whose token was used",
            ));
        }
        t.token = resolve_secret(
            &format!("{key}.token"),
            t.token.take(),
            t.token_file.as_deref(),
            problems,
        );
        match &t.token {
            None => problems.push(ConfigProblem::new(
                format!("{key}.token"),
                "is required (or token_file); generate one with `openssl rand -hex 32`",
            )),
            Some(token) if token.expose_secret().trim().len() < 16 => {
                problems.push(ConfigProblem::new(
                    format!("{key}.token"),
                    "is shorter than 16 characters; generate one with `openssl rand -hex 32`",
                ))
            }
            Some(_) => {}
        }
    }

    let has_default = s.slack.default_channel.is_some();
    let mut names = std::collections::HashSet::new();
    for (i, d) in s.digests.iter().enumerate() {
        let key = format!("digests[{i}]");
        if d.name.trim().is_empty() || !names.insert(d.name.clone()) {
            problems.push(ConfigProblem::new(
                format!("{key}.name"),
                "must be set and unique among [[digests]]",
            ));
        }
        if !matches!(d.schedule.as_str(), "daily" | "weekly") {
            problems.push(ConfigProblem::new(
                format!("{key}.schedule"),
                format!("{:?} is not a schedule; use daily or weekly", d.schedule),
            ));
        }
        if let Err(e) = parse_weekday(&d.weekday) {
            problems.push(ConfigProblem::new(format!("{key}.weekday"), e));
        }
        if let Err(e) = parse_local_time(&d.at) {
            problems.push(ConfigProblem::new(format!("{key}.at"), e));
        }
        if d.channel.is_none() && !has_default {
            problems.push(ConfigProblem::new(
                format!("{key}.channel"),
                "is not set and there is no slack.default_channel; name a channel",
            ));
        }
        if !matches!(d.rank_by.as_str(), "team" | "agent") {
            problems.push(ConfigProblem::new(
                format!("{key}.rank_by"),
                "use team or agent",
            ));
        }
        if d.weeks == 0 || d.weeks > 52 {
            problems.push(ConfigProblem::new(
                format!("{key}.weeks"),
                "must be 1 to 52",
            ));
        }
        validate_filter(&key, &d.filter(), s, problems);
    }

    let mut names = std::collections::HashSet::new();
    for (i, d) in s.drop_alerts.iter().enumerate() {
        let key = format!("drop_alerts[{i}]");
        if d.name.trim().is_empty() || !names.insert(d.name.clone()) {
            problems.push(ConfigProblem::new(
                format!("{key}.name"),
                "must be set and unique among [[drop_alerts]]",
            ));
        }
        if !matches!(d.metric.as_str(), "csat" | "nps") {
            problems.push(ConfigProblem::new(
                format!("{key}.metric"),
                format!(
                    "{:?} is not a metric drop alerts watch; use csat or nps",
                    d.metric
                ),
            ));
        }
        if !whole_days(d.window) {
            problems.push(ConfigProblem::new(
                format!("{key}.window"),
                "must be whole days, e.g. \"7d\"",
            ));
        }
        if !whole_days(d.baseline) {
            problems.push(ConfigProblem::new(
                format!("{key}.baseline"),
                "must be whole days, e.g. \"28d\"",
            ));
        }
        if d.min_sample == Some(0) {
            problems.push(ConfigProblem::new(
                format!("{key}.min_sample"),
                "must be at least 1",
            ));
        }
        if d.recover_after == 0 || d.recover_after > 28 {
            problems.push(ConfigProblem::new(
                format!("{key}.recover_after"),
                format!(
                    "is {}; give the number of good daily evaluations before a recovery is posted, 1 to 28 (default 2)",
                    d.recover_after
                ),
            ));
        }
        if d.per.is_empty()
            || d.per
                .iter()
                .any(|p| !matches!(p.as_str(), "overall" | "team" | "source"))
        {
            problems.push(ConfigProblem::new(
                format!("{key}.per"),
                "list any of \"overall\", \"team\", \"source\"",
            ));
        }
        if let Err(e) = parse_local_time(&d.at) {
            problems.push(ConfigProblem::new(format!("{key}.at"), e));
        }
        validate_filter(&key, &d.filter(), s, problems);
        let has_slack = s.slack.bot_token.is_some() || s.slack.webhook_url.is_some();
        if has_slack && d.channel.is_none() && !has_default && s.rules.is_empty() {
            problems.push(ConfigProblem::new(
                format!("{key}.channel"),
                "is not set, no [[rules]] route it and there is no slack.default_channel; name a channel",
            ));
        }
    }
}

fn validate_filter(key: &str, f: &FilterSettings, s: &Settings, problems: &mut Vec<ConfigProblem>) {
    for survey in &f.survey {
        if let Err(e) = survey.parse::<SurveyKind>() {
            problems.push(ConfigProblem::new(format!("{key}.survey"), e));
        }
    }
    for source in &f.source {
        if !s
            .sources
            .iter()
            .any(|src| src.name().as_ref() == Some(source))
        {
            problems.push(ConfigProblem::new(
                format!("{key}.source"),
                format!("no [[sources]] entry is named {source:?}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_weekdays_parse() {
        assert_eq!(parse_local_time("09:30"), Ok((9, 30)));
        assert!(parse_local_time("24:00").is_err());
        assert!(parse_local_time("nine").is_err());
        assert_eq!(parse_weekday("Mon"), Ok(jiff::civil::Weekday::Monday));
        assert_eq!(parse_weekday("friday"), Ok(jiff::civil::Weekday::Friday));
        assert!(parse_weekday("mo").is_err());
    }
}
