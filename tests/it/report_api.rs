//! The read API and the `report` command against the known ratings of
//! `reports::seed_known`: bearer tokens, the report JSON, pages of
//! ratings, filters, and the CSV and NDJSON exports.

use std::process::Command;

use csatwatch::clock::ManualClock;
use serde_json::Value;

use crate::reports::{ms, seed_known};
use crate::support::{TestApp, TestDatabase, backends, settings};

const TOKEN: &str = "test-token-0123456789abcdef";

fn api_toml(extra: &str) -> String {
    format!(
        "[reports]\ntimezone = \"Europe/Berlin\"\nmin_sample = 3\n[[api.tokens]]\nname = \"bi\"\ntoken = \"{TOKEN}\"\n[[api.tokens]]\nname = \"other\"\ntoken = \"another-token-0123456789\"\n{extra}"
    )
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn spawn(backend: crate::support::Backend, toml: &str) -> (TestApp, TestDatabase) {
    let db = TestDatabase::new(backend).await;
    let app = TestApp::spawn(
        settings(&db.url, None, toml),
        ManualClock::new(ms("2026-11-20T12:00:00Z")),
    )
    .await;
    seed_known(&app.app.store).await;
    (app, db)
}

#[tokio::test]
async fn without_tokens_the_api_is_off_and_answers_404() {
    let db = TestDatabase::new(crate::support::Backend::Sqlite).await;
    let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
    let (status, _) = get(&app, "/api/v1/report", Some(TOKEN)).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_gets_401() {
    let db = TestDatabase::new(crate::support::Backend::Sqlite).await;
    let app = TestApp::spawn(
        settings(&db.url, None, &api_toml("")),
        ManualClock::starting_now(),
    )
    .await;
    for path in [
        "/api/v1/report",
        "/api/v1/ratings",
        "/api/v1/ratings?format=csv",
    ] {
        let (status, body) = get(&app, path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, _) = get(&app, path, Some("test-token-0123456789abcdeX")).await;
        assert_eq!(status, 401, "{path}");
        let (status, _) = get(&app, path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path}");
        let (status, _) = get(&app, path, Some("another-token-0123456789")).await;
        assert_eq!(status, 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_report_api_answers_the_known_figures() {
    for backend in backends() {
        let (app, _db) = spawn(backend, &api_toml("")).await;
        let (status, body) = get(
            &app,
            "/api/v1/report?since=2026-11-02&until=2026-11-16&by=week",
            Some(TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["timezone"], "Europe/Berlin");
        assert_eq!(json["by"], "week");
        assert_eq!(json["rows"][0]["group"], "2026-W45");
        assert_eq!(json["rows"][0]["csat"]["percent"], 33.3, "{backend:?}");
        assert_eq!(
            json["rows"][0]["csat"]["ci95"],
            serde_json::json!([6.1, 79.2])
        );
        assert_eq!(json["rows"][0]["low_sample"], false);
        assert_eq!(json["rows"][1]["csat"]["responses"], 2, "{backend:?}");
        assert_eq!(json["rows"][1]["nps"]["score"], 0.0);
        assert_eq!(json["rows"][1]["ces"]["average"], 4.0);
        assert_eq!(json["total"]["follow_up"]["negatives"], 4);

        let (status, body) = get(
            &app,
            "/api/v1/report?since=2026-11-02&until=2026-11-16&by=team&team=billing,tech",
            Some(TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        let groups: Vec<&str> = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["group"].as_str().unwrap())
            .collect();
        assert_eq!(groups, ["Billing", "Tech"]);

        for bad in [
            "by=year",
            "since=yesterday",
            "tema=x",
            "since=2026-11-16&until=2026-11-02",
        ] {
            let (status, body) = get(&app, &format!("/api/v1/report?{bad}"), Some(TOKEN)).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body.contains("error"), "{body}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn ratings_come_in_pages_with_a_cursor_and_filters() {
    for backend in backends() {
        let (app, _db) = spawn(backend, &api_toml("")).await;
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let path = match &cursor {
                Some(c) => format!("/api/v1/ratings?limit=5&cursor={c}"),
                None => "/api/v1/ratings?limit=5".to_string(),
            };
            let (status, body) = get(&app, &path, Some(TOKEN)).await;
            assert_eq!(status, 200, "{body}");
            let json: Value = serde_json::from_str(&body).unwrap();
            for r in json["ratings"].as_array().unwrap() {
                seen.push((
                    r["rated_at"].as_str().unwrap().to_string(),
                    r["conversation_id"].as_str().unwrap().to_string(),
                ));
            }
            match json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 13, "{backend:?}: {seen:?}");
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "newest first");
        assert_eq!(seen[0].1, "l");

        let (_, body) = get(&app, "/api/v1/ratings?sentiment=negative", Some(TOKEN)).await;
        let json: Value = serde_json::from_str(&body).unwrap();
        let mut ids: Vec<&str> = json["ratings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["conversation_id"].as_str().unwrap())
            .collect();
        ids.sort();
        // e turned positive: its latest version is what counts.
        assert_eq!(ids, ["d", "h", "j", "k1"], "{backend:?}");

        let (_, body) = get(
            &app,
            "/api/v1/ratings?has_comment=true&since=2026-11-01&until=2026-12-01",
            Some(TOKEN),
        )
        .await;
        let json: Value = serde_json::from_str(&body).unwrap();
        let d = &json["ratings"][0];
        assert_eq!(json["ratings"].as_array().unwrap().len(), 1);
        assert_eq!(d["comment"], "Refund, \"late\"; again");
        assert_eq!(d["acknowledged_by"], Value::Null);
        assert_eq!(d["acknowledged_at"], "2026-11-05T10:11:00Z");
        assert_eq!(d["followed_up_at"], "2026-11-05T10:31:00Z");
        assert_eq!(d["ticket_url"], "https://acme.zendesk.com/agent/tickets/d");

        let (_, body) = get(&app, "/api/v1/ratings?survey=nps&score_min=7", Some(TOKEN)).await;
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["ratings"].as_array().unwrap().len(), 2, "{backend:?}");

        for bad in [
            "limit=0",
            "cursor=zzz",
            "format=xml",
            "sentiment=angry",
            "has_comment=maybe",
        ] {
            let (status, body) = get(&app, &format!("/api/v1/ratings?{bad}"), Some(TOKEN)).await;
            assert_eq!(status, 400, "{bad}: {body}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn exports_hold_every_rating_once_with_its_latest_version() {
    for backend in backends() {
        let (app, _db) = spawn(backend, &api_toml("")).await;
        let (status, csv) = get(&app, "/api/v1/ratings?format=csv", Some(TOKEN)).await;
        assert_eq!(status, 200);
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 14, "{backend:?}: header + 13 ratings\n{csv}");
        assert!(lines[0].starts_with("id,source,conversation_id,"));
        // Oldest first; the comment quoted as RFC 4180 says.
        assert!(lines[1].contains(",k1,"), "{}", lines[1]);
        let d = lines.iter().find(|l| l.contains(",d,")).unwrap();
        assert!(d.contains(",\"Refund, \"\"late\"\"; again\","), "{d}");
        assert!(d.contains(",2026-11-05T10:00:00Z,"), "{d}");
        let e: Vec<&&str> = lines.iter().filter(|l| l.contains(",e,")).collect();
        assert_eq!(e.len(), 1, "a changed rating is one row");
        assert!(e[0].contains(",five_point,5,positive,"), "{}", e[0]);

        let (status, ndjson) = get(
            &app,
            "/api/v1/ratings?format=ndjson&team=Billing",
            Some(TOKEN),
        )
        .await;
        assert_eq!(status, 200);
        let rows: Vec<Value> = ndjson
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ids: Vec<&str> = rows
            .iter()
            .map(|r| r["conversation_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["b", "c", "d"], "{backend:?}");
        assert_eq!(rows[0]["tags"], serde_json::json!(["vip"]));
        assert_eq!(rows[2]["score"], 0);
        app.stop().await;
    }
}

#[test]
fn the_report_command_prints_the_same_figures_as_json_csv_and_a_table() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for backend in backends() {
        let db = runtime.block_on(TestDatabase::new(backend));
        runtime.block_on(async {
            let store = crate::reports::test_store(&db).await;
            seed_known(&store).await;
            store.close().await;
        });
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{}\"\n[reports]\ntimezone = \"Europe/Berlin\"\nmin_sample = 3\n",
                db.url
            ),
        )
        .unwrap();
        let run = |format: &str, by: &str| {
            let out = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
                .args(["--config", config.to_str().unwrap(), "report"])
                .args(["--since", "2026-11-02", "--until", "2026-11-16"])
                .args(["--by", by, "--format", format])
                .env_remove("CSATWATCH_CONFIG")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let json: Value = serde_json::from_str(&run("json", "week")).unwrap();
        assert_eq!(json["rows"][0]["csat"]["percent"], 33.3, "{backend:?}");
        assert_eq!(json["rows"][1]["group"], "2026-W46");
        assert_eq!(json["total"]["csat"]["responses"], 5);

        let csv = run("csv", "week");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[0].starts_with("group,csat_responses,"));
        assert!(
            lines[1].starts_with(
                "2026-W45,3,1,1,1,33.3,6.1,79.2,0,0,0,0,,,,0,,,,,1,1,1,1,0,100,10,30,false,-16.7,,"
            ),
            "{}",
            lines[1]
        );
        assert!(lines[3].starts_with("total,5,3,1,1,60,"), "{}", lines[3]);
        // CES 6 and 2: average 4 with its t-interval, the whole 1–7 scale.
        assert!(lines[2].contains(",2,4,1,7,50,"), "{}", lines[2]);

        let table = run("table", "week");
        assert!(table.contains("2026-W45"), "{table}");
        assert!(table.contains("33.3"), "{table}");
        assert!(table.contains("total"), "{table}");
        assert!(
            table.contains('▁') || table.contains('█'),
            "a sparkline:\n{table}"
        );

        let out = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "report",
                "--by",
                "year",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("by"));
    }
}

#[test]
fn check_config_explain_lists_digests_and_drop_alerts_with_their_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[slack]\nbot_token = \"xoxb-1\"\ndefault_channel = \"#csat\"\n[reports]\ntimezone = \"Europe/Berlin\"\n[[digests]]\nname = \"weekly-leads\"\nweekday = \"friday\"\nat = \"16:30\"\n[[drop_alerts]]\nname = \"csat-drop\"\nper = [\"overall\", \"team\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args([
            "--config",
            config.to_str().unwrap(),
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
    let digest = stdout
        .lines()
        .find(|l| l.contains("digest \"weekly-leads\""))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(digest.contains("weekly at 16:30 on friday"), "{digest}");
    assert!(digest.contains("to #csat: next "), "{digest}");
    assert!(digest.contains(" 16:30 "), "local time: {digest}");
    let drop = stdout
        .lines()
        .find(|l| l.contains("drop alert \"csat-drop\""))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(drop.contains("per overall, team"), "{drop}");
    assert!(drop.contains("next evaluation"), "{drop}");
    assert!(stdout.contains("read API (/api/v1): off"), "{stdout}");
}

#[test]
fn report_settings_mistakes_name_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[reports]\ntimezone = \"Mars/Olympus\"\n[[api.tokens]]\nname = \"bi\"\ntoken = \"short\"\n[[digests]]\nname = \"d\"\nschedule = \"hourly\"\nat = \"25:00\"\n[[drop_alerts]]\nname = \"x\"\nmetric = \"ces\"\nwindow = \"36h\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args(["--config", config.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "reports.timezone",
        "api.tokens[0].token",
        "digests[0].schedule",
        "digests[0].at",
        "digests[0].channel",
        "drop_alerts[0].metric",
        "drop_alerts[0].window",
    ] {
        assert!(stderr.contains(key), "{key} missing in:\n{stderr}");
    }
    assert!(!stderr.contains("\"short\""), "the token is never echoed");
}
