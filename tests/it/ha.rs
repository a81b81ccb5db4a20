//! Several replicas on one database: the high-availability set-up of
//! docs/high-availability.md, proven end to end.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use csatwatch::clock::ManualClock;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// These tests count individual posts: storm control (which would fold
/// many alerts to one channel into a digest) is off.
const NO_STORM: &str = "[alerts.storm]\nthreshold = 0\n";

/// Ticket ids from the Slack messages: how many times each was posted.
async fn posted_tickets(slack: &MockServer) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for post in slack_posts(slack).await {
        let text = post["text"].as_str().unwrap_or_default().to_string();
        let ticket = text.rsplit(' ').next().unwrap_or_default().to_string();
        *seen.entry(ticket).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn three_replicas_record_each_rating_once_and_alert_each_negative_once() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let clock = ManualClock::starting_now();
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(
                TestApp::spawn_with(
                    settings(&db.url, Some(&slack.uri()), NO_STORM),
                    clock.clone(),
                    true,
                )
                .await,
            );
        }

        // 1,000 deliveries, a third negative; every tenth one is also sent to
        // a second replica at the same instant (a helpdesk retry racing the
        // original), with different request bytes for the same rating.
        let total = 1000u64;
        let mut negatives = 0;
        let mut jobs = Vec::new();
        for i in 0..total {
            let rating = if i % 3 == 0 { "bad" } else { "good" };
            negatives += usize::from(rating == "bad");
            let body = zendesk_body(10_000 + i, rating, "ha");
            let first = &replicas[(i % 3) as usize];
            let second = &replicas[((i + 1) % 3) as usize];
            jobs.push(async move {
                if i % 10 == 0 {
                    let mut retitled = body.clone();
                    retitled["ticket"]["title"] = Value::from("retry");
                    let (a, b) =
                        tokio::join!(first.post_zendesk(&body), second.post_zendesk(&retitled));
                    vec![a, b]
                } else {
                    vec![first.post_zendesk(&body).await]
                }
            });
        }
        // 16 requests in flight at a time.
        let mut answers = Vec::new();
        let mut jobs = jobs.into_iter();
        loop {
            let chunk: Vec<_> = jobs.by_ref().take(16).collect();
            if chunk.is_empty() {
                break;
            }
            for result in futures::future::join_all(chunk).await {
                answers.extend(result);
            }
        }
        drop(jobs);
        assert!(
            answers.iter().all(|(status, _)| *status == 200),
            "{backend:?}: every delivery answered 200"
        );

        // Let the three background dispatchers drain the outbox.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let stats = replicas[0].app.store.outbox_stats().await.unwrap();
            if stats.pending == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend:?}: outbox not drained: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            replicas[0].app.store.count_ratings().await.unwrap(),
            total as i64,
            "{backend:?}"
        );
        let alerts = replicas[0].app.store.all_alerts().await.unwrap();
        assert_eq!(alerts.len(), negatives, "{backend:?}");
        assert!(alerts.iter().all(|a| a.state == "sent"));
        let posted = posted_tickets(&slack).await;
        assert_eq!(
            posted.len(),
            negatives,
            "{backend:?}: every negative posted"
        );
        assert!(
            posted.values().all(|n| *n == 1),
            "{backend:?}: none posted twice"
        );
        for replica in replicas {
            replica.stop().await;
        }
    }
}

#[tokio::test]
async fn alerts_claimed_by_a_replica_that_dies_are_sent_by_another_after_the_lease() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        // The doomed replica's Slack never answers in time, so it dies
        // holding its claims.
        let stuck = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(120)))
            .mount(&stuck)
            .await;
        let slack = slack_ok().await;

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("doomed.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{}\"\n[slack]\nbot_token = \"xoxb-doomed\"\ndefault_channel = \"#csat\"\napi_base_url = \"{}/api\"\nrequest_timeout = \"100s\"\n[alerts]\nclaim_lease = \"200s\"\nchannel_interval = \"10ms\"\n[alerts.storm]\nthreshold = 0\n[log]\nformat = \"json\"\n[[sources]]\nname = \"zendesk\"\nkind = \"zendesk\"\nsecret = \"{ZENDESK_SECRET}\"\n",
                db.url,
                stuck.uri()
            ),
        )
        .unwrap();
        // The survivor shares the database; it only flushes when told to.
        let clock = ManualClock::starting_now();
        let survivor = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), NO_STORM),
            clock.clone(),
        )
        .await;
        for ticket in 0..30 {
            assert_eq!(
                survivor
                    .post_zendesk(&zendesk_body(20_000 + ticket, "bad", ""))
                    .await
                    .0,
                200
            );
        }

        let mut doomed = tokio::process::Command::new(env!("CARGO_BIN_EXE_csatwatch"))
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Wait until it holds claims (its first send is hanging).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let held = survivor
                .app
                .store
                .all_alerts()
                .await
                .unwrap()
                .iter()
                .filter(|a| a.claim_token.is_some())
                .count();
            if held > 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend:?}: the doomed replica never claimed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        doomed.kill().await.unwrap();
        let held = survivor
            .app
            .store
            .all_alerts()
            .await
            .unwrap()
            .iter()
            .filter(|a| a.claim_token.is_some())
            .count();

        // Before the lease runs out, the alerts it claimed are not touched.
        let early = survivor.app.flush_alerts().await.unwrap();
        assert_eq!(early.sent, 30 - held, "{backend:?}: {early:?}, {held} held");
        // After it, every alert goes out exactly once.
        // The doomed replica's claims end at its own clock's now + 200 s.
        let lease_end = survivor
            .app
            .store
            .all_alerts()
            .await
            .unwrap()
            .iter()
            .filter_map(|a| a.claimed_until)
            .max()
            .unwrap();
        clock.set(lease_end + 1);
        let late = survivor.app.flush_alerts().await.unwrap();
        assert_eq!(
            early.sent + late.sent,
            30,
            "{backend:?}: {early:?} {late:?}"
        );
        let posted = posted_tickets(&slack).await;
        assert_eq!(posted.len(), 30);
        assert!(posted.values().all(|n| *n == 1));
        assert!(
            survivor
                .app
                .store
                .all_alerts()
                .await
                .unwrap()
                .iter()
                .all(|a| a.state == "sent")
        );
        survivor.stop().await;
    }
}

#[tokio::test]
async fn migrate_data_moves_a_sqlite_install_to_postgres_without_losing_or_repeating_anything() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let sqlite = TestDatabase::new(Backend::Sqlite).await;
    let postgres = TestDatabase::new(Backend::Postgres).await;
    let slack = slack_ok().await;
    let clock = ManualClock::starting_now();
    let app = TestApp::spawn(settings(&sqlite.url, Some(&slack.uri()), ""), clock.clone()).await;
    for ticket in 0..5 {
        assert_eq!(
            app.post_zendesk(&zendesk_body(30_000 + ticket, "good", ""))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        app.post_zendesk(&zendesk_body(30_000, "bad", "changed"))
            .await
            .0,
        200
    );
    // Unreadable but signed: kept as failed, and must survive the move.
    let junk = br#"{"ticket": {"id": "x"}, "satisfaction": {"current_rating": "??"}}"#;
    let headers = zendesk_headers(ZENDESK_SECRET, clock_now(&clock), junk);
    assert_eq!(app.post("zendesk", &headers, junk).await.0, 400);
    app.app.flush_alerts().await.unwrap();
    assert_eq!(slack_posts(&slack).await.len(), 1);
    app.stop().await;

    let workdir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args(["migrate-data", "--from", &sqlite.url, "--to", &postgres.url])
        .env_remove("CSATWATCH_CONFIG")
        .current_dir(workdir.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ratings: 5 rows copied"), "{stdout}");

    let app = TestApp::spawn(
        settings(&postgres.url, Some(&slack.uri()), ""),
        clock.clone(),
    )
    .await;
    let store = &app.app.store;
    assert_eq!(store.count_ratings().await.unwrap(), 5);
    let changed = store.rating("zendesk", "30000", "").await.unwrap().unwrap();
    assert_eq!(store.rating_history(changed.id).await.unwrap().len(), 2);
    assert_eq!(store.count_deliveries("failed").await.unwrap(), 1);
    // The alert already sent is not sent again...
    app.app.flush_alerts().await.unwrap();
    assert_eq!(slack_posts(&slack).await.len(), 1);
    // ...a replayed delivery is still a duplicate...
    let (_, answer) = app.post_zendesk(&zendesk_body(30_001, "good", "")).await;
    assert_eq!(answer["status"], "duplicate");
    // ...and new rows get fresh ids after the copied ones.
    let (status, answer) = app.post_zendesk(&zendesk_body(30_100, "bad", "new")).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["ratings"][0]["rating_id"].as_i64().unwrap() > changed.id);
    app.app.flush_alerts().await.unwrap();
    assert_eq!(slack_posts(&slack).await.len(), 2);

    // A second run refuses to write into a database that is no longer empty.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args(["migrate-data", "--from", &sqlite.url, "--to", &postgres.url])
        .env_remove("CSATWATCH_CONFIG")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty database"));
    app.stop().await;
}

fn clock_now(clock: &ManualClock) -> i64 {
    use csatwatch::clock::Clock as _;
    clock.now_ms()
}

/// A `csatwatch serve` process on `db_url` posting to the Slack at
/// `slack_url`, with a lease and a Slack timeout far longer than the test:
/// only a dead process's heartbeat can free its claims in time.
fn daemon(
    dir: &std::path::Path,
    name: &str,
    db_url: &str,
    slack_url: &str,
) -> tokio::process::Child {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{db_url}\"\n[slack]\nbot_token = \"xoxb-{name}\"\ndefault_channel = \"#csat\"\napi_base_url = \"{slack_url}/api\"\nrequest_timeout = \"100s\"\n[alerts]\nclaim_lease = \"200s\"\nchannel_interval = \"10ms\"\n[alerts.storm]\nthreshold = 0\n[log]\nformat = \"json\"\n[[sources]]\nname = \"zendesk\"\nkind = \"zendesk\"\nsecret = \"{ZENDESK_SECRET}\"\n",
        ),
    )
    .unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_csatwatch"))
        .args(["--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn alerts_of_a_killed_dispatcher_go_out_within_seconds_not_after_the_lease() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        // The doomed process's Slack never answers in time: it dies
        // holding claims, mid-send.
        let stuck = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(120)))
            .mount(&stuck)
            .await;
        let slack = slack_ok().await;
        let dir = tempfile::tempdir().unwrap();

        // Ten negatives wait in the outbox.
        let loader = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), NO_STORM),
            ManualClock::starting_now(),
        )
        .await;
        for ticket in 0..10 {
            let body = zendesk_body(40_000 + ticket, "bad", "");
            assert_eq!(loader.post_zendesk(&body).await.0, 200);
        }
        let store = loader.app.store.clone();
        let held = || async {
            store
                .all_alerts()
                .await
                .unwrap()
                .iter()
                .filter(|a| a.claim_token.is_some())
                .count()
        };

        let mut doomed = daemon(dir.path(), "doomed", &db.url, &stuck.uri());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while held().await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend:?}: the doomed process never claimed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // PostgreSQL: a replica is running when the other dies. SQLite: the
        // single instance is restarted after the crash.
        let mut survivor = if backend == Backend::Postgres {
            Some(daemon(dir.path(), "survivor", &db.url, &slack.uri()))
        } else {
            None
        };
        doomed.kill().await.unwrap();
        let crashed = tokio::time::Instant::now();
        let mut survivor = match survivor.take() {
            Some(s) => s,
            None => daemon(dir.path(), "restarted", &db.url, &slack.uri()),
        };

        // Every alert out within 10 s of the crash (and of the restart),
        // although the dead process's lease runs for 200 s.
        loop {
            let posted = posted_tickets(&slack).await;
            if posted.len() == 10 {
                assert!(posted.values().all(|n| *n == 1), "{backend:?}: {posted:?}");
                break;
            }
            assert!(
                crashed.elapsed() < Duration::from_secs(10),
                "{backend:?}: {} of 10 posted 10 s after the crash",
                posted.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let alerts = store.all_alerts().await.unwrap();
            if alerts.iter().all(|a| a.state == "sent") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend:?}: {alerts:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        survivor.kill().await.unwrap();
        loader.stop().await;
    }
}
