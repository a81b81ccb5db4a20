//! The binary as an operator runs it: exit codes and messages.

use std::process::Command;

use crate::support::slack_ok;

fn csatwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_csatwatch"))
}

#[test]
fn check_config_accepts_the_example_and_exits_0() {
    let out = csatwatch()
        .args([
            "--config",
            "config/csatwatch.example.toml",
            "check-config",
            "--explain",
        ])
        .env_remove("CSATWATCH_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("settings are valid"), "{stdout}");
    assert!(stdout.contains("POST /webhooks/zendesk"), "{stdout}");
}

#[test]
fn a_config_mistake_stops_with_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[alerts]\nmax_age = \"soon\"\n").unwrap();
    let out = csatwatch()
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("max_age") && stderr.contains("\"72h\""),
        "{stderr}"
    );

    // The same validation stops `serve` before it binds anything.
    std::fs::write(&path, "[slack]\nbot_token = \"xoxb-1\"\n").unwrap();
    let out = csatwatch()
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("slack.default_channel"), "{stderr}");
}

/// Every problem of the file in one run, each with its key and its fix:
/// type errors in two sections and in two `[[sources]]` tables, poll keys
/// without an API, a key of another helpdesk, and a Freshdesk source whose
/// documented rule body cannot work without the API.
#[test]
fn check_config_lists_every_problem_at_once_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
max_body_bytes = "big"

[alerts]
channel_burst = "many"

[[sources]]
name = "zendesk"
kind = "zendesk"
secret = "s"
poll_interval = "5m"
scale = "five_point"

[[sources]]
name = "desk"
kind = "freshdesk"
secret = "t"

[[sources]]
name = "cw"
kind = "chatwoot"
secret = "s"
negative_at_or_below = "two"

[[sources]]
name = "cw2"
kind = "chatwoot"
secret = "s"
[sources.api]
base_url = "https://app.chatwoot.com"
token = "t"
api_key = "k"
"#,
    )
    .unwrap();
    let out = csatwatch()
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Type errors of the settings themselves come first (the file cannot be
    // read further); each names its key.
    for key in ["server.max_body_bytes", "alerts.channel_burst"] {
        assert!(stderr.contains(key), "{key} missing: {stderr}");
    }

    // With the types right, the sources' problems are all listed together.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("max_body_bytes = \"big\"", "max_body_bytes = 1000")
        .replace("channel_burst = \"many\"", "channel_burst = 2");
    std::fs::write(&path, text).unwrap();
    let out = csatwatch()
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (key, fix) in [
        ("sources[0].poll_interval", "[sources.api]"),
        ("sources[0].scale", "remove it"),
        ("sources[1].api", "rating_in_body"),
        (
            "sources[2].negative_at_or_below",
            "config/csatwatch.example.toml",
        ),
        ("sources[3].api.api_key", "remove it"),
        ("sources[3].api.account_id", "account"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("{key}:")))
            .unwrap_or_else(|| panic!("{key} missing: {stderr}"));
        assert!(line.contains(fix), "{key} without its fix: {line}");
    }
}

#[test]
fn version_and_help_explain_themselves() {
    let out = csatwatch().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("csatwatch "));
    let out = csatwatch().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "serve",
        "migrate",
        "check-config",
        "send-test-alert",
        "reprocess",
    ] {
        assert!(help.contains(command), "{help}");
    }
}

#[tokio::test]
async fn send_test_alert_posts_a_labelled_sample_to_slack() {
    let slack = slack_ok().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        format!(
            "[slack]\nbot_token = \"xoxb-1\"\ndefault_channel = \"#csat\"\napi_base_url = \"{}/api\"\n",
            slack.uri()
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args(["--config", path.to_str().unwrap(), "send-test-alert"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posts = crate::support::slack_posts(&slack).await;
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0]["text"].as_str().unwrap().contains("TEST"),
        "{}",
        posts[0]["text"]
    );
}

#[tokio::test]
async fn migrate_creates_the_sqlite_file_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let db = dir.path().join("nested/folder/csat.db");
    std::fs::write(
        &path,
        format!("[database]\nurl = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    let out = csatwatch()
        .args(["--config", path.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
}
