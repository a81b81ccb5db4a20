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

#[test]
fn completions_for_each_shell_need_no_settings() {
    for (shell, marker) in [
        ("bash", "complete -F _csatwatch"),
        ("zsh", "#compdef csatwatch"),
        ("fish", "complete -c csatwatch"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        // A settings file that does not exist: completions never read it.
        let out = csatwatch()
            .args([
                "--config",
                "/nonexistent/csatwatch.toml",
                "completions",
                shell,
            ])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("check-config") && script.contains("send-test-alert"));
        if shell == "bash" && std::path::Path::new("/bin/bash").exists() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("csatwatch.bash");
            std::fs::write(&path, script.as_bytes()).unwrap();
            let check = Command::new("/bin/bash")
                .arg("-n")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    let out = csatwatch().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[test]
fn man_prints_the_manual_page_and_writes_one_per_command() {
    let out = csatwatch()
        .args(["--config", "/nonexistent/csatwatch.toml", "man"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH csatwatch 1"), "{page}");
    assert!(
        page.contains("check\\-config") || page.contains("check-config"),
        "{page}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = csatwatch()
        .args(["man", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "csatwatch.1",
        "csatwatch-serve.1",
        "csatwatch-check-config.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
}

#[test]
fn a_failing_command_says_its_error_once() {
    // A PostgreSQL that refuses connections: `migrate` fails after the pool
    // gives up, and its message names the setting to check, once.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[database]\nurl = \"postgres://csatwatch@127.0.0.1:1/csatwatch\"\nacquire_timeout = \"1s\"\n",
    )
    .unwrap();
    let out = csatwatch()
        .args(["--config", path.to_str().unwrap(), "migrate"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database.url"), "{stderr}");
    for phrase in [
        "cannot apply database migrations",
        "while executing migrations",
        "pool timed out",
    ] {
        assert_eq!(
            stderr.matches(phrase).count(),
            1,
            "{phrase:?} in:\n{stderr}"
        );
    }

    // `serve` reports through its log (JSON here: stderr is not a
    // terminal), once, and says what to do.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let db = dir.path().join("c.db");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"{}\"\n[database]\nurl = \"sqlite://{}\"\n",
            busy.local_addr().unwrap(),
            db.display()
        ),
    )
    .unwrap();
    let out = csatwatch()
        .args(["--config", path.to_str().unwrap(), "serve"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("cannot listen on").count(), 1, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("cannot listen on"))
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["error"].as_str().unwrap().contains("server.listen"),
        "{line}"
    );
}
