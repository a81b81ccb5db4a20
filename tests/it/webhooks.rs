//! The webhook answers, exactly per the table in DESIGN.md, on every backend.

use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn every_status_code_of_the_table_is_answered() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;

        // 200 recorded
        let (status, body) = app
            .post_zendesk(&zendesk_body(101, "bad", "Too slow"))
            .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(body["status"], "recorded");
        assert_eq!(body["ratings"][0]["sentiment"], "negative");

        // 200 duplicate: the same delivery again
        let (status, body) = app
            .post_zendesk(&zendesk_body(101, "bad", "Too slow"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "duplicate");

        // 202 no rating: the survey was offered, not answered
        let (status, body) = app.post_zendesk(&zendesk_body(102, "offered", "")).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "ignored");

        // 401 wrong signature
        let raw = serde_json::to_vec(&zendesk_body(103, "bad", "")).unwrap();
        let headers = zendesk_headers("not-the-secret", app.clock.now_ms(), &raw);
        let (status, body) = app.post("zendesk", &headers, &raw).await;
        assert_eq!(status, 401, "{body}");
        // 401 missing signature
        let (status, _) = app.post("zendesk", &[], &raw).await;
        assert_eq!(status, 401);
        // 401 a correct signature on a timestamp outside the window
        let headers = zendesk_headers(ZENDESK_SECRET, app.clock.now_ms() - 6 * 60 * 1000, &raw);
        let (status, _) = app.post("zendesk", &headers, &raw).await;
        assert_eq!(status, 401);

        // 404 unknown source
        let (status, _) = app.post("nonesuch", &[], b"{}").await;
        assert_eq!(status, 404);

        // 413 body over the limit (65536 in the test settings)
        let big = vec![b' '; 70_000];
        let (status, _) = app.post("zendesk", &[], &big).await;
        assert_eq!(status, 413);

        // 400 signed but unparseable, and kept for reprocessing
        let junk = br#"{"ticket": {"id": "104"}, "satisfaction": {"current_rating": "furious"}}"#;
        let headers = zendesk_headers(ZENDESK_SECRET, app.clock.now_ms(), junk);
        let (status, body) = app.post("zendesk", &headers, junk).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["kept"], true);
        assert!(
            body["error"].as_str().unwrap().contains("current_rating"),
            "{body}"
        );
        let kept = app
            .app
            .store
            .delivery(body["delivery_id"].as_i64().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.status, "failed");
        assert_eq!(kept.body, junk);
        // not JSON at all
        let headers = zendesk_headers(ZENDESK_SECRET, app.clock.now_ms(), b"not json");
        let (status, body) = app.post("zendesk", &headers, b"not json").await;
        assert_eq!(status, 400);
        assert!(
            body["error"].as_str().unwrap().contains("not valid JSON"),
            "{body}"
        );
        assert_eq!(app.app.store.count_deliveries("failed").await.unwrap(), 2);

        // health
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_database_outage_is_answered_503_and_loses_nothing_once_it_is_back() {
    // PostgreSQL only: it is the backend that can go away under a running app.
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
    let name = reqwest::Url::parse(&db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&std::env::var("TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    // Refuse new connections to the app's database and end the open ones.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let body = zendesk_body(201, "bad", "db down");
    let (status, answer) = app.post_zendesk(&body).await;
    assert_eq!(status, 503, "{answer}");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
    )))
    .execute(&admin)
    .await
    .unwrap();
    // The helpdesk retries: now it is recorded.
    let (status, answer) = app.post_zendesk(&body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "recorded");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn generic_sources_map_fields_with_either_signature_scheme() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        let now_s = app.clock.now_ms() / 1000;

        // HMAC header
        let body = serde_json::to_vec(&json!({
            "ticket": {"id": 5001},
            "rating": {"score": 1, "comment": "Nobody answered"},
            "agent": "Ana", "customer": "Bo", "url": "https://help.example/t/5001",
            "rated_at": now_s, "updated_at": now_s
        }))
        .unwrap();
        let (status, answer) = app.post("inhouse", &generic_headers(&body), &body).await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        let rating = app
            .app
            .store
            .rating("inhouse", "5001", "")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                rating.scale.as_str(),
                rating.score,
                rating.sentiment.as_str()
            ),
            ("five_point", 1, "negative")
        );
        assert_eq!(rating.comment.as_deref(), Some("Nobody answered"));
        assert_eq!(rating.agent.as_deref(), Some("Ana"));
        assert_eq!(rating.url.as_deref(), Some("https://help.example/t/5001"));
        assert_eq!(rating.rated_at, now_s * 1000);
        // a wrong HMAC
        let (status, _) = app
            .post(
                "inhouse",
                &[("X-Signature".into(), "sha256=00".into())],
                &body,
            )
            .await;
        assert_eq!(status, 401);

        // Standard Webhooks, NPS scale
        let body = serde_json::to_vec(&json!({"conversation": "c-9", "nps": 3, "comment": "meh"}))
            .unwrap();
        let headers = standard_headers("msg_1", app.clock.now_ms(), &body);
        let (status, answer) = app.post("standard", &headers, &body).await;
        assert_eq!(status, 200, "{answer}");
        let rating = app
            .app
            .store
            .rating("standard", "c-9", "")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                rating.survey.as_str(),
                rating.score,
                rating.sentiment.as_str()
            ),
            ("nps", 3, "negative")
        );
        // the same webhook-id again is a duplicate delivery
        let (status, answer) = app.post("standard", &headers, &body).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate"))
        );
        // stale Standard Webhooks timestamp
        let headers = standard_headers("msg_2", app.clock.now_ms() - 10 * 60 * 1000, &body);
        let (status, _) = app.post("standard", &headers, &body).await;
        assert_eq!(status, 401);

        app.app.flush_alerts().await.unwrap();
        assert_eq!(
            slack_posts(&slack).await.len(),
            2,
            "{backend:?}: one alert per negative rating"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn shutdown_finishes_in_flight_work_and_returns() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
    let (status, _) = app.post_zendesk(&zendesk_body(301, "bad", "")).await;
    assert_eq!(status, 200);
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the app stops promptly when cancelled");
}

#[tokio::test]
async fn a_kept_delivery_is_recorded_by_reprocess_once_the_settings_can_read_it() {
    let source = |scale: &str| {
        format!(
            "[[sources]]\nname = \"survey\"\nkind = \"generic\"\nsecret = \"{GENERIC_SECRET}\"\nsignature_prefix = \"sha256=\"\nscale = \"{scale}\"\n[sources.fields]\nconversation_id = \"/id\"\nscore = \"/score\"\n"
        )
    };
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let clock = ManualClock::starting_now();
        let app = TestApp::spawn(
            settings(&db.url, None, &source("five_point")),
            clock.clone(),
        )
        .await;
        // A 1..7 effort score sent to a source set up for 1..5.
        let body = br#"{"id": "e-1", "score": 7}"#;
        let (status, answer) = app.post("survey", &generic_headers(body), body).await;
        assert_eq!(status, 400, "{answer}");
        app.stop().await;

        let app = TestApp::spawn(settings(&db.url, None, &source("ces")), clock.clone()).await;
        let failed = app.app.store.failed_deliveries(None, 10).await.unwrap();
        assert_eq!(failed.len(), 1);
        let outcome = csatwatch::intake::retry_delivery(
            &app.app.sources,
            &app.app.pipeline,
            &app.app.store,
            &app.app.http,
            &failed[0],
            csatwatch::domain::Via::Reprocess,
            |_| None,
        )
        .await
        .unwrap();
        assert_eq!(outcome, csatwatch::intake::Retried::Recorded, "{backend:?}");
        let rating = app
            .app
            .store
            .rating("survey", "e-1", "")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((rating.survey.as_str(), rating.score), ("ces", 7));
        assert!(
            app.app
                .store
                .failed_deliveries(None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // The helpdesk retrying the same body now is a duplicate, not a second rating.
        let (status, answer) = app.post("survey", &generic_headers(body), body).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate")),
            "{answer}"
        );
        app.stop().await;
    }
}
