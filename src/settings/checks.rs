//! Checks of settings that parse but cannot work: a channel name Slack
//! would refuse, a mention that would render as plain text, a Slack URL in
//! clear text, a zero timeout or limit. Each problem names its key and the
//! fix; all of them are reported in one run with the rest of `validate`.
//!
//! Source-specific checks live with each source (`sources::build`).

use std::time::Duration;

use secrecy::ExposeSecret as _;

use super::{ConfigProblem, Settings};

/// Appends every problem found to `problems`.
pub fn check(settings: &Settings, problems: &mut Vec<ConfigProblem>) {
    check_durations(settings, problems);
    check_limits(settings, problems);
    if let Some(channel) = &settings.slack.default_channel {
        check_channel("slack.default_channel", channel, problems);
    }
    if let Some(url) = &settings.slack.webhook_url {
        check_https("slack.webhook_url", url.expose_secret(), problems);
    }
    check_mentions("alerts.escalate_to", &settings.alerts.escalate_to, problems);
    // Digests and drop alerts post where rules do: the same names work.
    for (i, digest) in settings.digests.iter().enumerate() {
        if let Some(channel) = &digest.channel {
            check_channel(&format!("digests[{i}].channel"), channel, problems);
        }
    }
    for (i, drop) in settings.drop_alerts.iter().enumerate() {
        if let Some(channel) = &drop.channel {
            check_channel(&format!("drop_alerts[{i}].channel"), channel, problems);
        }
    }
    for (i, rule) in settings.rules.iter().enumerate() {
        if let Some(channel) = &rule.channel {
            check_channel(&format!("rules[{i}].channel"), channel, problems);
        }
        check_mentions(&format!("rules[{i}].mention"), &rule.mention, problems);
        check_mentions(
            &format!("rules[{i}].escalate_to"),
            &rule.escalate_to,
            problems,
        );
        if rule.escalate_after.is_some_and(|d| d.is_zero()) {
            problems.push(ConfigProblem::new(
                format!("rules[{i}].escalate_after"),
                "is 0s, which would escalate every alert at once; give a delay like \"30m\", or remove the key",
            ));
        }
    }
}

fn check_durations(s: &Settings, problems: &mut Vec<ConfigProblem>) {
    let must_be_positive: [(&str, Duration, &str); 9] = [
        (
            "server.request_timeout",
            s.server.request_timeout,
            "\"15s\"",
        ),
        (
            "server.header_read_timeout",
            s.server.header_read_timeout,
            "\"10s\"",
        ),
        (
            "server.keep_alive_timeout",
            s.server.keep_alive_timeout,
            "\"5s\"",
        ),
        (
            "database.acquire_timeout",
            s.database.acquire_timeout,
            "\"5s\"",
        ),
        ("slack.request_timeout", s.slack.request_timeout, "\"10s\""),
        ("alerts.max_age", s.alerts.max_age, "\"72h\""),
        ("alerts.give_up_after", s.alerts.give_up_after, "\"24h\""),
        ("alerts.claim_lease", s.alerts.claim_lease, "\"2m\""),
        (
            "retention.raw_deliveries",
            s.retention.raw_deliveries,
            "\"30d\"",
        ),
    ];
    for (key, value, default) in must_be_positive {
        if value.is_zero() {
            problems.push(ConfigProblem::new(
                key,
                format!("is 0s, which cannot work; give a duration like {default} (the default), or remove the key"),
            ));
        }
    }
    if s.alerts.escalate_after.is_some_and(|d| d.is_zero()) {
        problems.push(ConfigProblem::new(
            "alerts.escalate_after",
            "is 0s, which would escalate every alert at once; give a delay like \"30m\", or remove the key to turn escalation off",
        ));
    }
    if s.alerts.storm.threshold > 0 && s.alerts.storm.window.is_zero() {
        problems.push(ConfigProblem::new(
            "alerts.storm.window",
            "is 0s, so no alert would ever count towards a storm; give a window like \"2m\" (the default), or set alerts.storm.threshold = 0 to turn storm control off",
        ));
    }
}

fn check_limits(s: &Settings, problems: &mut Vec<ConfigProblem>) {
    if s.server.max_body_bytes == 0 {
        problems.push(ConfigProblem::new(
            "server.max_body_bytes",
            "is 0, so every webhook would be refused; the default is 1048576 (1 MiB)",
        ));
    }
    if s.server.max_connections == 0 {
        problems.push(ConfigProblem::new(
            "server.max_connections",
            "is 0, so no connection could ever be served; the default is 10000",
        ));
    }
}

/// A channel id (`C0123ABCD`) or a name (`#csat-alerts`; the `#` is
/// optional): Slack names are letters, digits, `-`, `_` and `.`, at most
/// 80 characters, no spaces.
fn check_channel(key: &str, channel: &str, problems: &mut Vec<ConfigProblem>) {
    let name = channel.strip_prefix('#').unwrap_or(channel);
    if name.trim().is_empty() {
        // Reported by `validate` already for the default channel.
        if key != "slack.default_channel" {
            problems.push(ConfigProblem::new(
                key,
                "is empty; name a channel like \"#csat-alerts\" or give its id (C0123ABCD)",
            ));
        }
        return;
    }
    let valid = name.chars().count() <= 80
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        problems.push(ConfigProblem::new(
            key,
            format!(
                "{channel:?} is not a Slack channel name: names have no spaces or punctuation other than '-', '_' and '.' (like \"#csat-alerts\"); copy the name from Slack, or give the channel's id (C0123ABCD, from the channel's details)"
            ),
        ));
    }
}

/// `@here`, `@channel`, a user id (`U…`, `W…`) or a user group id (`S…`).
fn check_mentions(key: &str, mentions: &[String], problems: &mut Vec<ConfigProblem>) {
    for mention in mentions {
        if !is_mention(mention) {
            problems.push(ConfigProblem::new(
                key,
                format!(
                    "{mention:?} would not notify anyone: write \"@here\", \"@channel\", a user id (U0123ABCD: the person's profile → ⋮ → Copy member ID) or a user group id (S0123ABCD); names are not mentions"
                ),
            ));
        }
    }
}

/// The same id rule the message renderer uses to turn a mention into markup.
fn is_mention(mention: &str) -> bool {
    let is_id = |id: &str| {
        (2..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    matches!(mention, "@here" | "@channel")
        || (is_id(mention) && matches!(mention.as_bytes()[0], b'U' | b'W' | b'S'))
}

/// Slack URLs carry their secret in the path: never over plain http,
/// except to this machine (a local proxy or a test double).
fn check_https(key: &str, url: &str, problems: &mut Vec<ConfigProblem>) {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return; // reported by `validate`
    };
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if parsed.scheme() != "https" && !local {
        problems.push(ConfigProblem::new(
            key,
            "must start with https:// (Slack's are https://hooks.slack.com/services/…): over plain http the URL, which is the secret, travels in clear text",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(toml: &str) -> Vec<ConfigProblem> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        match Settings::load_with_env(Some(&path), std::iter::empty()).and_then(Settings::validate)
        {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn settings_that_cannot_work_are_all_reported_in_one_run_with_their_keys() {
        let problems = problems_of(
            r##"
[server]
request_timeout = "0s"
header_read_timeout = "0s"
[slack]
webhook_url = "http://hooks.slack.com/services/T0/B0/xyz"
default_channel = "#csat alerts!"
request_timeout = "0s"
[alerts]
give_up_after = "0s"
claim_lease = "1m"
[[rules]]
channel = "support team"
mention = ["bob", "@here", "U0123ABCD", "S0123ABCD", "u0123abcd"]
[[digests]]
name = "weekly"
schedule = "weekly"
channel = "#support leads!"
[[drop_alerts]]
name = "csat"
channel = "C0123ABCD"
[[drop_alerts]]
name = "nps"
metric = "nps"
channel = ""
"##,
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let has = |key: &str, fragment: &str| {
            problems
                .iter()
                .any(|p| p.key == key && p.message.contains(fragment))
        };
        assert!(has("server.request_timeout", "0s"), "{text:#?}");
        assert!(has("server.header_read_timeout", "\"10s\""), "{text:#?}");
        assert!(has("slack.request_timeout", "0s"), "{text:#?}");
        assert!(has("alerts.give_up_after", "0s"), "{text:#?}");
        assert!(has("slack.webhook_url", "https://"), "{text:#?}");
        assert!(has("slack.default_channel", "C0123ABCD"), "{text:#?}");
        assert!(has("rules[0].channel", "no spaces"), "{text:#?}");
        assert!(has("digests[0].channel", "no spaces"), "{text:#?}");
        assert!(has("drop_alerts[1].channel", "is empty"), "{text:#?}");
        assert!(
            !problems.iter().any(|p| p.key == "drop_alerts[0].channel"),
            "{text:#?}"
        );
        assert!(has("rules[0].mention", "\"bob\""), "{text:#?}");
        assert!(has("rules[0].mention", "\"u0123abcd\""), "{text:#?}");
        let mention_problems = problems
            .iter()
            .filter(|p| p.key == "rules[0].mention")
            .count();
        assert_eq!(mention_problems, 2, "@here and ids are fine: {text:#?}");
        assert!(
            !text.iter().any(|t| t.contains("xyz")),
            "the webhook URL is a secret: {text:#?}"
        );
    }

    #[test]
    fn good_channels_and_local_http_pass() {
        let problems = problems_of(
            "[slack]\nwebhook_url = \"http://127.0.0.1:9000/hook\"\n[[rules]]\nchannel = \"C0123ABCD\"\n[[rules]]\nchannel = \"#csat-vip_2.eu\"\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_host_name_as_listen_address_is_resolved_or_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisten = \"localhost:8080\"\n").unwrap();
        let settings = Settings::load_with_env(Some(&path), std::iter::empty())
            .and_then(Settings::validate)
            .unwrap();
        assert!(settings.server.listen.ip().is_loopback());
        assert_eq!(settings.server.listen.port(), 8080);

        std::fs::write(&path, "[server]\nlisten = \"8080\"\n").unwrap();
        let err = Settings::load_with_env(Some(&path), std::iter::empty()).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("127.0.0.1:8080"), "{err}");
        assert!(err.contains("listen"), "{err}");
    }
}
