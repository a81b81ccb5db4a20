//! Alert semantics end to end: one alert per negative rating, none for
//! duplicates or old ratings, retries that honour Slack, nothing lost or
//! repeated across restarts.

use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn a_replayed_webhook_does_not_post_a_second_alert() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        let body = zendesk_body(1, "bad", "Still waiting for my refund");
        assert_eq!(app.post_zendesk(&body).await.0, 200);
        app.app.flush_alerts().await.unwrap();
        // Same body signed a second later: a different request, the same delivery.
        app.clock.advance(Duration::from_secs(1));
        assert_eq!(app.post_zendesk(&body).await.1["status"], "duplicate");
        app.app.flush_alerts().await.unwrap();
        let posts = slack_posts(&slack).await;
        assert_eq!(posts.len(), 1, "{backend:?}");
        assert_eq!(posts[0]["channel"], "#csat");
        let ratings = app.app.store.count_ratings().await.unwrap();
        assert_eq!(ratings, 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_same_rating_in_a_different_delivery_is_one_rating() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        let mut body = zendesk_body(2, "bad", "Rude");
        assert_eq!(app.post_zendesk(&body).await.1["status"], "recorded");
        // A different body (the title changed) carrying the same rating.
        body["ticket"]["title"] = json!("Refund not received (reopened)");
        let (status, answer) = app.post_zendesk(&body).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate")),
            "{answer}"
        );
        app.app.flush_alerts().await.unwrap();
        assert_eq!(slack_posts(&slack).await.len(), 1);
        let rating = app
            .app
            .store
            .rating("zendesk", "2", "")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            app.app.store.rating_history(rating.id).await.unwrap().len(),
            1
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_rating_changed_from_good_to_bad_alerts_once_and_keeps_its_history() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        assert_eq!(app.post_zendesk(&zendesk_body(3, "good", "")).await.0, 200);
        app.app.flush_alerts().await.unwrap();
        assert!(
            slack_posts(&slack).await.is_empty(),
            "a good rating does not alert"
        );

        app.clock.advance(Duration::from_secs(60));
        let (_, answer) = app
            .post_zendesk(&zendesk_body(3, "bad", "Changed my mind"))
            .await;
        assert_eq!(answer["ratings"][0]["outcome"], "changed", "{answer}");
        // the comment is edited while still bad: a change, but no new alert
        app.clock.advance(Duration::from_secs(60));
        let (_, answer) = app
            .post_zendesk(&zendesk_body(3, "bad", "Changed my mind. Twice."))
            .await;
        assert_eq!(answer["ratings"][0]["outcome"], "changed");
        assert_eq!(answer["ratings"][0]["alerts"], 0);
        app.app.flush_alerts().await.unwrap();

        assert_eq!(slack_posts(&slack).await.len(), 1, "{backend:?}");
        let rating = app
            .app
            .store
            .rating("zendesk", "3", "")
            .await
            .unwrap()
            .unwrap();
        let history = app.app.store.rating_history(rating.id).await.unwrap();
        let versions: Vec<(i64, &str)> = history
            .iter()
            .map(|h| (h.score, h.sentiment.as_str()))
            .collect();
        assert_eq!(
            versions,
            [(1, "positive"), (0, "negative"), (0, "negative")]
        );
        assert_eq!(rating.revision, 3);
        app.stop().await;
    }
}

#[tokio::test]
async fn an_old_rating_is_recorded_without_an_alert() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        let four_days_ago = (app.clock.now_ms() / 1000) - 4 * 24 * 3600;
        let body = serde_json::to_vec(&json!({
            "ticket": {"id": "old-1"}, "rating": {"score": 1},
            "rated_at": four_days_ago, "updated_at": four_days_ago
        }))
        .unwrap();
        let (status, answer) = app.post("inhouse", &generic_headers(&body), &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["ratings"][0]["alerts"], 0);
        assert_eq!(
            answer["ratings"][0]["no_alert_reason"],
            "older than alerts.max_age"
        );
        app.app.flush_alerts().await.unwrap();
        assert!(slack_posts(&slack).await.is_empty(), "{backend:?}");
        assert_eq!(app.app.store.count_ratings().await.unwrap(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn slack_429_with_retry_after_is_waited_out_then_delivered() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .up_to_n_times(1)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "channel": "C1", "ts": "1.2"})),
        )
        .mount(&slack)
        .await;
    let app = TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
    )
    .await;
    assert_eq!(app.post_zendesk(&zendesk_body(4, "bad", "")).await.0, 200);
    let report = app.app.flush_alerts().await.unwrap();
    assert_eq!((report.sent, report.retried), (0, 1), "{report:?}");

    // Not before Retry-After, even though the backoff alone would allow it.
    app.clock.advance(Duration::from_secs(20));
    assert_eq!(app.app.flush_alerts().await.unwrap().sent, 0);
    assert_eq!(slack_posts(&slack).await.len(), 1);

    app.clock.advance(Duration::from_secs(11));
    let report = app.app.flush_alerts().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let alerts = app.app.store.all_alerts().await.unwrap();
    assert_eq!(alerts[0].state, "sent");
    assert_eq!(alerts[0].slack_ts.as_deref(), Some("1.2"));
    assert_eq!(alerts[0].attempts, 2);
    app.stop().await;
}

#[tokio::test]
async fn slack_down_for_a_while_then_up_loses_nothing() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(4)
            .mount(&slack)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"ok": true, "channel": "C1", "ts": "9.9"})),
            )
            .mount(&slack)
            .await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        for ticket in 10..13 {
            assert_eq!(
                app.post_zendesk(&zendesk_body(ticket, "bad", "")).await.0,
                200
            );
        }
        let mut sent = 0;
        for _ in 0..20 {
            sent += app.app.flush_alerts().await.unwrap().sent;
            app.clock.advance(Duration::from_secs(60));
        }
        assert_eq!(sent, 3, "{backend:?}");
        let ok_posts = slack.received_requests().await.unwrap().len() - 4;
        assert_eq!(
            ok_posts, 3,
            "each alert posted exactly once after Slack came back"
        );
        assert!(
            app.app
                .store
                .all_alerts()
                .await
                .unwrap()
                .iter()
                .all(|a| a.state == "sent")
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_permanent_slack_error_gives_up_at_once_and_keeps_the_rating() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": false, "error": "channel_not_found"})),
        )
        .mount(&slack)
        .await;
    let app = TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
    )
    .await;
    assert_eq!(app.post_zendesk(&zendesk_body(20, "bad", "")).await.0, 200);
    let report = app.app.flush_alerts().await.unwrap();
    assert_eq!(report.dead, 1, "{report:?}");
    app.clock.advance(Duration::from_secs(3600));
    app.app.flush_alerts().await.unwrap();
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        1,
        "never retried"
    );
    let alert = &app.app.store.all_alerts().await.unwrap()[0];
    assert_eq!(alert.state, "dead");
    assert!(
        alert
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("channel_not_found"),
        "{alert:?}"
    );
    assert_eq!(app.app.store.count_ratings().await.unwrap(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_alert_that_keeps_failing_is_given_up_after_give_up_after() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&slack)
        .await;
    let app = TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
    )
    .await;
    assert_eq!(app.post_zendesk(&zendesk_body(21, "bad", "")).await.0, 200);
    let mut dead = 0;
    for _ in 0..200 {
        dead += app.app.flush_alerts().await.unwrap().dead;
        app.clock.advance(Duration::from_secs(60));
    }
    assert_eq!(dead, 1);
    let alert = &app.app.store.all_alerts().await.unwrap()[0];
    assert_eq!(alert.state, "dead");
    // retry_max is 1m and give_up_after 1h in the test settings: about 60 tries, not 200.
    assert!((40..=70).contains(&alert.attempts), "{}", alert.attempts);
    app.stop().await;
}

#[tokio::test]
async fn undelivered_alerts_survive_a_restart_and_go_out_exactly_once() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let clock = ManualClock::starting_now();
        // First life: Slack is down.
        let down = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(502))
            .mount(&down)
            .await;
        let app = TestApp::spawn(settings(&db.url, Some(&down.uri()), ""), clock.clone()).await;
        for ticket in 30..33 {
            assert_eq!(
                app.post_zendesk(&zendesk_body(ticket, "bad", "")).await.0,
                200
            );
        }
        app.app.flush_alerts().await.unwrap();
        app.stop().await;

        // Second life: Slack is up.
        let up = slack_ok().await;
        clock.advance(Duration::from_secs(120));
        let app = TestApp::spawn(settings(&db.url, Some(&up.uri()), ""), clock.clone()).await;
        app.app.flush_alerts().await.unwrap();
        assert_eq!(slack_posts(&up).await.len(), 3, "{backend:?}");
        app.stop().await;

        // Third life: nothing is posted again.
        let again = slack_ok().await;
        clock.advance(Duration::from_secs(3600));
        let app = TestApp::spawn(settings(&db.url, Some(&again.uri()), ""), clock.clone()).await;
        app.app.flush_alerts().await.unwrap();
        assert!(
            slack_posts(&again).await.is_empty(),
            "{backend:?}: a delivered alert is never re-posted"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn alerts_go_out_right_after_commit_without_a_manual_flush() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let app = TestApp::spawn_with(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
        true,
    )
    .await;
    assert_eq!(app.post_zendesk(&zendesk_body(40, "bad", "")).await.0, 200);
    // The background dispatcher is woken by the commit; wait for its post
    // (bounded), without flushing by hand.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while slack_posts(&slack).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert within 10 s of the commit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn without_slack_alerts_are_logged_and_marked_sent() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
    assert_eq!(app.post_zendesk(&zendesk_body(50, "bad", "")).await.0, 200);
    app.app.flush_alerts().await.unwrap();
    let alerts = app.app.store.all_alerts().await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, "sent");
    app.stop().await;
}

#[tokio::test]
async fn rules_pick_the_channel_and_mentions() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let rules = r##"
[[rules]]
name = "vip"
source = ["zendesk"]
tags = ["vip"]
channel = "#csat-vip"
mention = ["@here"]

[[rules]]
name = "mute-standard"
source = ["standard"]
mute = true
"##;
    let app = TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), rules),
        ManualClock::starting_now(),
    )
    .await;
    assert_eq!(app.post_zendesk(&zendesk_body(60, "bad", "")).await.0, 200);
    let body = serde_json::to_vec(&json!({"conversation": "c-1", "nps": 0})).unwrap();
    let (status, answer) = app
        .post(
            "standard",
            &standard_headers("m-60", app.clock.now_ms(), &body),
            &body,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["ratings"][0]["no_alert_reason"], "muted by a rule");
    app.app.flush_alerts().await.unwrap();
    let posts = slack_posts(&slack).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["channel"], "#csat-vip");
    assert!(
        posts[0]["text"].as_str().unwrap().contains("<!here>"),
        "{}",
        posts[0]["text"]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_alert_for_a_rating_that_turned_positive_before_it_went_out_is_superseded() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), ""),
            ManualClock::starting_now(),
        )
        .await;
        assert_eq!(app.post_zendesk(&zendesk_body(70, "bad", "")).await.0, 200);
        app.clock.advance(Duration::from_secs(30));
        assert_eq!(
            app.post_zendesk(&zendesk_body(70, "good", "All sorted"))
                .await
                .0,
            200
        );
        let report = app.app.flush_alerts().await.unwrap();
        assert_eq!(
            (report.sent, report.superseded),
            (0, 1),
            "{backend:?}: {report:?}"
        );
        assert!(slack_posts(&slack).await.is_empty());
        assert_eq!(
            app.app.store.all_alerts().await.unwrap()[0].state,
            "superseded"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn raw_deliveries_past_retention_are_deleted_and_their_ratings_stay() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
        assert_eq!(app.post_zendesk(&zendesk_body(80, "bad", "")).await.0, 200);
        app.clock.advance(Duration::from_secs(29 * 24 * 3600));
        assert_eq!(
            app.app.apply_retention().await.unwrap(),
            0,
            "{backend:?}: kept for 30 days"
        );
        app.clock.advance(Duration::from_secs(2 * 24 * 3600));
        assert_eq!(app.app.apply_retention().await.unwrap(), 1, "{backend:?}");
        assert_eq!(app.app.store.count_deliveries("recorded").await.unwrap(), 0);
        assert_eq!(app.app.store.count_ratings().await.unwrap(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn retention_deletes_a_backlog_in_chunks_until_none_is_left() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
        for ticket in 90..95 {
            let body = zendesk_body(ticket, "good", "");
            assert_eq!(app.post_zendesk(&body).await.0, 200);
        }
        app.clock.advance(Duration::from_secs(31 * 24 * 3600));
        let before = app.clock.now_ms() - 30 * 24 * 3600 * 1000;
        // Five deliveries, two per statement: three statements.
        let deleted = app
            .app
            .store
            .delete_deliveries_before(before, 2)
            .await
            .unwrap();
        assert_eq!(deleted, 5, "{backend:?}");
        assert_eq!(app.app.store.count_deliveries("recorded").await.unwrap(), 0);
        assert_eq!(app.app.store.count_ratings().await.unwrap(), 5);
        // A chunk of 0 is taken as 1 and still ends.
        for ticket in 95..97 {
            let body = zendesk_body(ticket, "good", "");
            assert_eq!(app.post_zendesk(&body).await.0, 200);
        }
        app.clock.advance(Duration::from_secs(31 * 24 * 3600));
        let before = app.clock.now_ms() - 30 * 24 * 3600 * 1000;
        let deleted = tokio::time::timeout(
            Duration::from_secs(30),
            app.app.store.delete_deliveries_before(before, 0),
        )
        .await
        .expect("a chunk of 0 must not loop forever")
        .unwrap();
        assert_eq!(deleted, 2, "{backend:?}");
        app.stop().await;
    }
}

/// Deleting a delivery sets its history rows' `delivery_id` to NULL (the
/// foreign key's action): that lookup must use an index, or each deleted
/// delivery reads the whole history table while holding the write lock.
#[tokio::test]
async fn the_history_rows_of_a_deleted_delivery_are_found_by_index() {
    use sqlx::{Connection as _, Row as _};
    let lookup = "UPDATE rating_history SET delivery_id = NULL WHERE delivery_id = 1";
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
        let plan: Vec<String> = match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                let sql = format!("EXPLAIN QUERY PLAN {lookup}");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<String, _>("detail"))
                    .collect()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                // An empty table is read whole whatever the indexes; with
                // sequential scans priced out, the plan shows whether an
                // index can serve the lookup at all.
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let sql = format!("EXPLAIN {lookup}");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<String, _>(0))
                    .collect()
            }
        };
        assert!(
            plan.iter()
                .any(|line| line.contains("rating_history_delivery")),
            "{backend:?}: {plan:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_five_thousand_character_comment_posts_within_slack_limits_and_cannot_mention() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let app = TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
    )
    .await;
    let comment = format!(
        "<!channel> <@U123> <https://evil.example|click> {}",
        "é".repeat(5000)
    );
    assert_eq!(
        app.post_zendesk(&zendesk_body(90, "bad", &comment)).await.0,
        200
    );
    app.app.flush_alerts().await.unwrap();
    let posts = slack_posts(&slack).await;
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    let blocks = post["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    let mut saw_comment = false;
    for block in blocks {
        if let Some(text) = block["text"]["text"].as_str() {
            assert!(
                text.chars().count() <= 3000,
                "a section text of {} chars",
                text.chars().count()
            );
            if block["text"]["type"] == "mrkdwn" {
                assert!(
                    !text.contains("<!channel>") && !text.contains("<@U123>"),
                    "{text}"
                );
            } else if text.contains('é') {
                saw_comment = true;
            }
        }
    }
    assert!(saw_comment, "the comment is posted as plain text");
    assert!(!post["text"].as_str().unwrap().contains("<!channel>"));
    app.stop().await;
}

#[tokio::test]
async fn an_undated_change_to_an_old_rating_is_as_fresh_as_when_it_was_seen() {
    // Some APIs date only the first answer (Chatwoot's responses list): a
    // change to a five-day-old rating that arrives now is news now.
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let app = TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), ""),
        ManualClock::starting_now(),
    )
    .await;
    let five_days_ago = app.clock.now_ms() / 1000 - 5 * 24 * 3600;
    let body = |score: u8| {
        serde_json::to_vec(&json!({"ticket": {"id": "u-1"}, "rating": {"score": score}, "rated_at": five_days_ago}))
            .unwrap()
    };
    let (_, answer) = app
        .post("inhouse", &generic_headers(&body(4)), &body(4))
        .await;
    assert_eq!(answer["ratings"][0]["outcome"], "new");
    let (_, answer) = app
        .post("inhouse", &generic_headers(&body(1)), &body(1))
        .await;
    assert_eq!(answer["ratings"][0]["outcome"], "changed", "{answer}");
    assert_eq!(answer["ratings"][0]["alerts"], 1, "{answer}");
    // A first answer that old, negative from the start, stays quiet.
    let old = serde_json::to_vec(
        &json!({"ticket": {"id": "u-2"}, "rating": {"score": 1}, "rated_at": five_days_ago}),
    )
    .unwrap();
    let (_, answer) = app.post("inhouse", &generic_headers(&old), &old).await;
    assert_eq!(answer["ratings"][0]["alerts"], 0, "{answer}");
    app.stop().await;
}
