//! The webhook answers, exactly per the table in DESIGN.md, on every
//! backend; the scenarios every helpdesk must pass run here once per
//! helpdesk listed in `helpdesks/`.

use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use serde_json::{Value, json};

use crate::helpdesks::{self, Webhook};
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

/// Every helpdesk whose webhook carries its rating, through the real app on
/// every backend: one alert for a negative rating, a duplicate for the same
/// delivery again, none for a positive one, a history row for a change
/// (alerting only on the move to negative), 401 for a bad signature, 202
/// for an event without a rating, and 400 with the body kept for a signed
/// delivery that cannot be read.
#[tokio::test]
async fn every_helpdesk_records_alerts_changes_and_refuses_as_the_table_says() {
    for helpdesk in helpdesks::webhooks() {
        if helpdesk.ratings.is_some() {
            record_alert_change_and_refuse(&helpdesk).await;
        }
    }
}

async fn record_alert_change_and_refuse(h: &Webhook) {
    let case = h.ratings.as_ref().expect("a helpdesk with ratings");
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), &helpdesks::sources_toml()),
            ManualClock::new(helpdesks::FIXTURE_NOW_MS),
        )
        .await;
        let post = |body: &'static [u8]| {
            let headers = (h.sign)(h.secret, app.clock.now_ms(), body);
            let app = &app;
            async move { app.post(h.source, &headers, body).await }
        };
        let ctx = format!("{} on {backend:?}", h.source);

        // A valid negative: recorded, one alert at Slack.
        let (status, answer) = post(case.negative).await;
        assert_eq!(status, 200, "{ctx}: {answer}");
        assert_eq!(
            answer["ratings"][0]["sentiment"], "negative",
            "{ctx}: {answer}"
        );
        app.app.flush_alerts().await.unwrap();
        assert_eq!(slack_posts(&slack).await.len(), 1, "{ctx}: one alert");
        let (conversation, key) = case.negative_key;
        assert!(
            app.app
                .store
                .rating(h.source, conversation, key)
                .await
                .unwrap()
                .is_some(),
            "{ctx}: stored under ({conversation}, {key:?})"
        );
        // The same delivery again is a duplicate and does not alert.
        let (status, answer) = post(case.negative).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate")),
            "{ctx}: {answer}"
        );

        // A valid positive: recorded, no alert.
        let (status, answer) = post(case.positive).await;
        assert_eq!(status, 200, "{ctx}: {answer}");
        assert_eq!(
            answer["ratings"][0]["sentiment"], "positive",
            "{ctx}: {answer}"
        );
        assert_eq!(answer["ratings"][0]["alerts"], 0, "{ctx}");

        // The positive changed to negative: the same rating, a history row,
        // and an alert for the move to negative.
        app.clock.advance(Duration::from_secs(60));
        let (status, answer) = post(case.changed).await;
        assert_eq!(status, 200, "{ctx}: {answer}");
        assert_eq!(
            answer["ratings"][0]["outcome"], "changed",
            "{ctx}: {answer}"
        );
        assert_eq!(answer["ratings"][0]["alerts"], 1, "{ctx}: {answer}");
        app.app.flush_alerts().await.unwrap();
        assert_eq!(
            slack_posts(&slack).await.len(),
            2,
            "{ctx}: the change alerted once"
        );
        let (conversation, key) = case.changed_key;
        let rating = app
            .app
            .store
            .rating(h.source, conversation, key)
            .await
            .unwrap()
            .unwrap();
        let history: Vec<String> = app
            .app
            .store
            .rating_history(rating.id)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.sentiment)
            .collect();
        assert_eq!(history, ["positive", "negative"], "{ctx}");

        // A bad signature: 401.
        let headers = (h.sign)("not-the-secret", app.clock.now_ms(), case.negative);
        let (status, _) = app.post(h.source, &headers, case.negative).await;
        assert_eq!(status, 401, "{ctx}: wrong secret");

        // A valid event without a rating: 202, nothing stored.
        let mut headers = (h.sign)(h.secret, app.clock.now_ms(), case.non_rating);
        for (name, value) in case.non_rating_headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_string(), value.to_string()));
        }
        let (status, answer) = app.post(h.source, &headers, case.non_rating).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (202, Some("ignored")),
            "{ctx}: {answer}"
        );

        // Signed but unreadable: 400 naming the field, and kept.
        let body: &'static [u8] = Box::leak(
            serde_json::to_vec(&case.malformed)
                .unwrap()
                .into_boxed_slice(),
        );
        let (status, answer) = post(body).await;
        assert_eq!(status, 400, "{ctx}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or("")
                .contains(case.malformed_field),
            "{ctx}: {answer}"
        );
        let failed = app
            .app
            .store
            .failed_deliveries(Some(h.source), 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "{ctx}");
        assert_eq!(failed[0].body, body, "{ctx}: the raw body is kept");

        assert_eq!(
            slack_posts(&slack).await.len(),
            2,
            "{ctx}: nothing else alerted"
        );
        app.stop().await;
    }
}

/// A signed delivery whose rating has the wrong type (an object, an array,
/// a boolean) is never "offered but not answered": every helpdesk answers
/// 400 naming the field, and keeps the body for `reprocess`.
#[tokio::test]
async fn a_rating_of_the_wrong_type_is_answered_400_and_kept_by_every_helpdesk() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = TestApp::spawn(
            settings(&db.url, None, &helpdesks::sources_toml()),
            ManualClock::new(helpdesks::FIXTURE_NOW_MS),
        )
        .await;
        for h in helpdesks::webhooks() {
            let mut kept = 0;
            for wrong in [json!({"x": 1}), json!(["bad"]), json!(true)] {
                let mut body: Value = serde_json::from_slice(h.rated).unwrap();
                *body
                    .pointer_mut(h.rating_pointer)
                    .unwrap_or_else(|| panic!("{}: no {}", h.source, h.rating_pointer)) =
                    wrong.clone();
                let body = serde_json::to_vec(&body).unwrap();
                let headers = (h.sign)(h.secret, app.clock.now_ms(), &body);
                let (status, answer) = app.post(h.source, &headers, &body).await;
                let ctx = format!("{} with {wrong} on {backend:?}", h.source);
                assert_eq!(status, 400, "{ctx}: {answer}");
                assert_eq!(answer["kept"], true, "{ctx}: {answer}");
                kept += 1;
            }
            let failed = app
                .app
                .store
                .failed_deliveries(Some(h.source), 10)
                .await
                .unwrap();
            assert_eq!(failed.len(), kept, "{}: every one kept", h.source);
        }
        app.stop().await;
    }
}

/// Zendesk renders its rating as a word; a number is refused, not read as
/// good (1) or bad (0), and kept for `reprocess`.
#[tokio::test]
async fn a_numeric_zendesk_rating_is_refused_not_guessed() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(
        settings(&db.url, None, ""),
        ManualClock::new(helpdesks::FIXTURE_NOW_MS),
    )
    .await;
    for value in [json!(1), json!("0")] {
        let mut body: Value =
            serde_json::from_slice(helpdesks::fixture("zendesk/bad_rating.json")).unwrap();
        body["satisfaction"]["current_rating"] = value.clone();
        let body = serde_json::to_vec(&body).unwrap();
        let headers = zendesk_headers(ZENDESK_SECRET, app.clock.now_ms(), &body);
        let (status, answer) = app.post("zendesk", &headers, &body).await;
        assert_eq!(status, 400, "{value}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or("")
                .contains("good or bad"),
            "{answer}"
        );
    }
    app.stop().await;
}
