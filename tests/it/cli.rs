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

/// Every property name anywhere in a JSON Schema (its `$defs` included).
fn schema_keys(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| schema_keys(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| schema_keys(v, out)),
        _ => {}
    }
}

/// The keys of a TOML document, at every depth.
fn toml_keys(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            out.extend(map.keys().cloned());
            map.values().for_each(|v| toml_keys(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| toml_keys(v, out)),
        _ => {}
    }
}

#[test]
fn config_schema_is_the_checked_in_file_and_covers_the_example_and_the_docs() {
    let out = csatwatch()
        .args(["--config", "/nonexistent/csatwatch.toml", "config-schema"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let shipped = std::fs::read_to_string("config/csatwatch.schema.json").unwrap();
    assert!(
        printed == shipped,
        "config/csatwatch.schema.json is stale: run `cargo run -- config-schema > config/csatwatch.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(schema["type"], "object");
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused"
    );

    // The example file names the schema, and every key it sets is one.
    let example = std::fs::read_to_string("config/csatwatch.example.toml").unwrap();
    assert!(example.starts_with("#:schema ./csatwatch.schema.json\n"));
    let parsed: serde_json::Value = config::Config::builder()
        .add_source(config::File::from_str(&example, config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    let mut known = std::collections::BTreeSet::new();
    schema_keys(&schema, &mut known);
    let mut used = std::collections::BTreeSet::new();
    toml_keys(&parsed, &mut used);
    for key in &used {
        assert!(
            known.contains(key),
            "the example sets {key:?}, which the schema lacks"
        );
    }
    // And every key of the schema is documented in the reference.
    let docs = std::fs::read_to_string("docs/configuration.md").unwrap();
    for key in &known {
        assert!(
            [
                format!("`{key}`"),
                format!("`api.{key}`"),
                format!("`[{key}]`"),
                format!("`[[{key}]]`"),
                format!(".{key}]`"),
                format!(".{key}]]`"),
                format!("`storm.{key}`"),
                format!("`{key}`, "),
                format!(", `{key}`"),
            ]
            .iter()
            .any(|form| docs.contains(form.as_str())),
            "docs/configuration.md does not document `{key}`"
        );
    }
}
