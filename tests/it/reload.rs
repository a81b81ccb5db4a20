//! `systemctl reload csatwatch`: a real process, a real SIGHUP. A valid
//! new settings file re-routes the next alert without a restart; a change
//! that needs a restart says so; an invalid file keeps the running settings
//! and logs each problem at ERROR; the process keeps serving throughout.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::exporter::parse_exposition;
use crate::ops::{Daemon, SECRET, TOKEN, canary_body, wait_for_posts};
use crate::support::*;

const ROTATED: &str = "a-rotated-webhook-secret-7f3e";

fn rule(channel: &str) -> String {
    format!("[[rules]]\nsentiment = [\"negative\"]\nchannel = \"{channel}\"\n")
}

fn hangup(daemon: &Daemon) {
    let pid = daemon.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits until a log line after the first `skip` ones matches; returns it.
fn wait_for_line(daemon: &Daemon, skip: usize, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(line) = daemon.log_lines().into_iter().skip(skip).find(&wanted) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no such line:\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn channel_of_post(slack: &wiremock::MockServer, n: usize) -> String {
    wait_for_posts(slack, n).await;
    slack_posts(slack).await[n - 1]["channel"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn sighup_applies_new_rules_reports_restart_keys_and_survives_a_bad_file() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let daemon = Daemon::start_with(&Daemon::config(&db.url, &slack, &rule("#first")), &[]);
    assert_eq!(daemon.post(&canary_body(1), SECRET, None).await, 200);
    assert_eq!(channel_of_post(&slack, 1).await, "#first");

    // A valid file: a new channel, a rotated webhook secret, and a new
    // listen address (not applied).
    let seen = daemon.log_lines().len();
    let config = Daemon::config(&db.url, &slack, &rule("#second"))
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"")
        .replace(SECRET, ROTATED);
    std::fs::write(daemon.config_path(), config).unwrap();
    hangup(&daemon);
    wait_for_line(&daemon, seen, |l| l["message"] == "settings reloaded");
    let restart = wait_for_line(&daemon, seen, |l| l["key"] == "server.listen");
    assert_eq!(restart["level"], "WARN", "{restart}");
    // Still on the old address, with the new rule and the new secret.
    assert_eq!(daemon.post(&canary_body(2), SECRET, None).await, 401);
    assert_eq!(daemon.post(&canary_body(2), ROTATED, None).await, 200);
    assert_eq!(channel_of_post(&slack, 2).await, "#second");

    // An invalid file: every problem at ERROR, nothing changes.
    let seen = daemon.log_lines().len();
    let bad = Daemon::config(&db.url, &slack, &rule("#third"))
        .replace("sentiment = [\"negative\"]", "sentiment = [\"grumpy\"]")
        .replace(
            &format!("secret = \"{SECRET}\""),
            "secret_file = \"/nonexistent/secret\"",
        );
    std::fs::write(daemon.config_path(), bad).unwrap();
    let problems = |daemon: &Daemon| {
        daemon
            .log_lines()
            .into_iter()
            .skip(seen)
            .filter(|l| l["level"] == "ERROR")
            .map(|l| l["key"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    hangup(&daemon);
    let error = wait_for_line(&daemon, seen, |l| {
        l["level"] == "ERROR" && l["key"] == "rules[0].sentiment"
    });
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("running settings stay"),
        "{error}"
    );
    // Every problem, the source's missing secret file too, in one reload.
    wait_for_line(&daemon, seen, |l| {
        l["level"] == "ERROR" && l["key"].as_str().unwrap_or("").starts_with("sources[0]")
    });
    assert!(problems(&daemon).len() >= 2, "{:?}", problems(&daemon));
    assert!(
        daemon
            .log_lines()
            .iter()
            .skip(seen)
            .all(|l| l["message"] != "settings reloaded"),
        "{}",
        daemon.logs()
    );
    assert_eq!(daemon.post(&canary_body(3), ROTATED, None).await, 200);
    assert_eq!(channel_of_post(&slack, 3).await, "#second");

    let text = daemon.metrics().await;
    let m = parse_exposition(&text).unwrap();
    let reloads = |outcome| m.value("csatwatch_config_reloads_total", &[("outcome", outcome)]);
    assert_eq!(
        (reloads("applied"), reloads("failed")),
        (Some(1.0), Some(1.0)),
        "{text}"
    );
    // Three alerts, each sent once: the reloads lost and repeated nothing.
    assert_eq!(slack_posts(&slack).await.len(), 3);
    daemon.terminate();
}

/// What SIGHUP applies beyond the rules, in a real process: a new Slack
/// default channel (the next alert goes there), a digest added (written and
/// posted at once, to its channel), paces; none of them reported as needing
/// a restart. Then a broken file: an ERROR per problem, the failed counter,
/// and the reloaded settings still in force.
#[tokio::test]
async fn sighup_applies_the_default_channel_digests_and_paces_and_keeps_them_on_a_bad_file() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let daemon = Daemon::start_with(&Daemon::config(&db.url, &slack, ""), &[]);
    assert_eq!(daemon.post(&canary_body(11), SECRET, None).await, 200);
    assert_eq!(channel_of_post(&slack, 1).await, "#csat");

    // Due every day at midnight, and late by less than its grace whenever
    // the test runs: written at the scheduler's first tick.
    let digest = "[[digests]]\nname = \"daily-leads\"\nschedule = \"daily\"\nat = \"00:00\"\n\
                  channel = \"#digest-room\"\ngrace = \"25h\"\n";
    let seen = daemon.log_lines().len();
    let config = Daemon::config(&db.url, &slack, digest)
        .replace(
            "default_channel = \"#csat\"",
            "default_channel = \"#csat-moved\"",
        )
        .replace(
            "channel_interval = \"10ms\"",
            "channel_interval = \"20ms\"\nchannel_burst = 3",
        );
    std::fs::write(daemon.config_path(), &config).unwrap();
    hangup(&daemon);
    wait_for_line(&daemon, seen, |l| l["message"] == "settings reloaded");
    let warned: Vec<Value> = daemon
        .log_lines()
        .into_iter()
        .skip(seen)
        .filter(|l| l["level"] == "WARN" && l.get("key").is_some())
        .collect();
    assert!(
        warned.is_empty(),
        "reported as needing a restart: {warned:?}"
    );
    // The digest, posted without a restart, to its own channel.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !slack_posts(&slack)
        .await
        .iter()
        .any(|p| p["channel"] == "#digest-room")
    {
        assert!(Instant::now() < deadline, "no digest:\n{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let posts = slack_posts(&slack).await.len();
    assert_eq!(daemon.post(&canary_body(12), SECRET, None).await, 200);
    assert_eq!(channel_of_post(&slack, posts + 1).await, "#csat-moved");

    // A broken file: two problems, two ERROR lines, nothing changes.
    let seen = daemon.log_lines().len();
    let bad = config
        .replace(
            "default_channel = \"#csat-moved\"",
            "default_channel = \"#csat-third\"",
        )
        .replace("channel_burst = 3", "channel_burst = 0")
        .replace("schedule = \"daily\"", "schedule = \"hourly\"");
    std::fs::write(daemon.config_path(), bad).unwrap();
    hangup(&daemon);
    wait_for_line(&daemon, seen, |l| {
        l["level"] == "ERROR" && l["key"] == "alerts.channel_burst"
    });
    wait_for_line(&daemon, seen, |l| {
        l["level"] == "ERROR" && l["key"].as_str().unwrap_or("").starts_with("digests[0]")
    });
    let posts = slack_posts(&slack).await.len();
    assert_eq!(daemon.post(&canary_body(13), SECRET, None).await, 200);
    assert_eq!(channel_of_post(&slack, posts + 1).await, "#csat-moved");
    let text = daemon.metrics().await;
    let m = parse_exposition(&text).unwrap();
    let reloads = |outcome| m.value("csatwatch_config_reloads_total", &[("outcome", outcome)]);
    assert_eq!(
        (reloads("applied"), reloads("failed")),
        (Some(1.0), Some(1.0)),
        "{text}"
    );
    daemon.terminate();
}

/// The bot token read from `slack.bot_token_file` (a secret manager
/// rotating it): SIGHUP reads the file again and the next post carries the
/// new token, without a restart and without logging either.
#[tokio::test]
async fn sighup_rereads_a_rotated_bot_token_file() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("bot_token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config = Daemon::config(&db.url, &slack, "").replace(
        &format!("bot_token = \"{TOKEN}\""),
        &format!("bot_token_file = \"{}\"", token_file.display()),
    );
    let daemon = Daemon::start_with(&config, &[]);
    let authorizations = || async {
        slack
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/api/chat.postMessage")
            .map(|r| r.headers["authorization"].to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(daemon.post(&canary_body(21), SECRET, None).await, 200);
    wait_for_posts(&slack, 1).await;
    assert_eq!(authorizations().await, [format!("Bearer {TOKEN}")]);

    let rotated = "xoxb-ROTATED-token-77aa01";
    std::fs::write(&token_file, format!("{rotated}\n")).unwrap();
    let seen = daemon.log_lines().len();
    hangup(&daemon);
    wait_for_line(&daemon, seen, |l| l["message"] == "settings reloaded");
    assert!(
        daemon
            .log_lines()
            .iter()
            .skip(seen)
            .all(|l| l["level"] != "WARN"),
        "{}",
        daemon.logs()
    );
    assert_eq!(daemon.post(&canary_body(22), SECRET, None).await, 200);
    wait_for_posts(&slack, 2).await;
    assert_eq!(authorizations().await[1], format!("Bearer {rotated}"));
    let logs = daemon.terminate();
    assert!(!logs.contains(rotated) && !logs.contains(TOKEN));
}
