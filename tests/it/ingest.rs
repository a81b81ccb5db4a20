//! The write path under load: group commit (many webhooks per
//! transaction, each answered only after the commit that holds it), one bad
//! write never failing its neighbours, SQLite's durability setting, and
//! PostgreSQL's session timeouts.

use std::time::{Duration, Instant};

use csatwatch::clock::ManualClock;
use csatwatch::settings::{DatabaseSettings, Settings, SqliteSync};
use csatwatch::store::Store;

use crate::support::*;

/// Storm control off: these tests count one alert per negative rating.
const NO_STORM: &str = "[alerts.storm]\nthreshold = 0\n";

/// Settings with some `[database]` keys changed.
trait WithDatabase {
    fn with_database(self, change: impl FnOnce(&mut DatabaseSettings)) -> Self;
}

impl WithDatabase for Settings {
    fn with_database(mut self, change: impl FnOnce(&mut DatabaseSettings)) -> Self {
        change(&mut self.database);
        self
    }
}

/// The app on `db`, alerts to no Slack, storm control off.
async fn app_without_slack(db: &TestDatabase) -> TestApp {
    TestApp::spawn(
        settings(&db.url, None, NO_STORM),
        ManualClock::starting_now(),
    )
    .await
}

/// Runs one statement on the test's database from outside the app.
async fn execute(backend: Backend, url: &str, sql: &str) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn a_burst_of_webhooks_shares_transactions_and_every_answered_rating_is_kept() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), NO_STORM),
            ManualClock::starting_now(),
        )
        .await;
        let total = 300u64;
        // The same ticket twice in the burst (a changed comment racing its
        // first version, both positive) must stay one rating with two versions.
        let answers = futures::future::join_all((0..total).map(|i| {
            let app = &app;
            async move {
                let rating = if i % 3 == 0 { "bad" } else { "good" };
                let ticket = if i == total - 1 { 5_001 } else { 5_000 + i };
                let comment = if i == total - 1 { "changed" } else { "burst" };
                app.post_zendesk(&zendesk_body(ticket, rating, comment))
                    .await
            }
        }))
        .await;
        for (status, answer) in &answers {
            assert_eq!(*status, 200, "{backend:?}: {answer}");
        }
        let counts = app.app.pipeline.write_counts();
        assert_eq!(counts.writes, total, "{backend:?}");
        assert!(
            counts.batches < total,
            "{backend:?}: {counts:?}: concurrent webhooks must share transactions"
        );
        assert_eq!(
            app.app.store.count_ratings().await.unwrap(),
            (total - 1) as i64,
            "{backend:?}"
        );
        assert_eq!(
            app.app.store.count_deliveries("recorded").await.unwrap(),
            total as i64,
            "{backend:?}"
        );
        let twice = app
            .app
            .store
            .rating("zendesk", "5001", "")
            .await
            .unwrap()
            .expect("ticket 5001 is recorded");
        assert_eq!(twice.revision, 2, "{backend:?}: {twice:?}");
        assert_eq!(
            app.app.store.rating_history(twice.id).await.unwrap().len(),
            2,
            "{backend:?}"
        );
        // One alert per negative rating answered 200, and each answer says
        // which rating it recorded.
        assert_eq!((total - 1) % 3, 2, "the repeated ticket stays positive");
        let negatives = (0..total - 1).filter(|i| i % 3 == 0).count();
        let alerts = app.app.store.all_alerts().await.unwrap();
        assert_eq!(alerts.len(), negatives, "{backend:?}");
        let recorded: usize = answers
            .iter()
            .map(|(_, a)| a["ratings"].as_array().map_or(0, |r| r.len()))
            .sum();
        assert_eq!(recorded, total as usize, "{backend:?}");
        // Every first version has its history row, the batches with alerts
        // as the others (on PostgreSQL those rows go in the alerts' statement).
        for (_, answer) in answers
            .iter()
            .filter(|(_, a)| a["ratings"][0]["outcome"] == "new")
        {
            let rating = &answer["ratings"][0];
            let id = rating["rating_id"].as_i64().expect("a rating id");
            let history = app.app.store.rating_history(id).await.unwrap();
            let first = history
                .first()
                .unwrap_or_else(|| panic!("{backend:?}: no history of {answer}"));
            assert_eq!(
                (
                    first.rating_id,
                    first.revision,
                    first.sentiment.as_str(),
                    first.via.as_str()
                ),
                (id, 1, rating["sentiment"].as_str().unwrap(), "webhook"),
                "{backend:?}: {answer}"
            );
            assert!(first.delivery_id.is_some(), "{backend:?}: {first:?}");
        }
        app.app.flush_alerts().await.unwrap();
        assert_eq!(slack_posts(&slack).await.len(), negatives, "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn one_write_that_fails_does_not_fail_the_others_of_its_batch() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = app_without_slack(&db).await;
        // A database-level failure for one conversation only.
        let trigger = match backend {
            Backend::Sqlite => {
                "CREATE TRIGGER poison BEFORE INSERT ON ratings WHEN NEW.conversation_id = '666'
                 BEGIN SELECT RAISE(ABORT, 'poisoned rating'); END;"
            }
            Backend::Postgres => {
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.conversation_id = '666' THEN RAISE EXCEPTION 'poisoned rating'; END IF;
                 RETURN NEW; END $$;
                 CREATE TRIGGER poison BEFORE INSERT ON ratings FOR EACH ROW EXECUTE FUNCTION poison();"
            }
        };
        execute(backend, &db.url, trigger).await;
        let mut answers = Vec::new();
        for round in 0..5u64 {
            answers.extend(
                futures::future::join_all((0..40u64).map(|i| {
                    let app = &app;
                    async move {
                        let ticket = if i == 20 {
                            666
                        } else {
                            7_000 + round * 100 + i
                        };
                        (
                            ticket,
                            app.post_zendesk(&zendesk_body(ticket, "bad", "x")).await,
                        )
                    }
                }))
                .await,
            );
        }
        for (ticket, (status, answer)) in &answers {
            if *ticket == 666 {
                assert_eq!(
                    *status, 503,
                    "{backend:?}: the poisoned write fails: {answer}"
                );
            } else {
                assert_eq!(*status, 200, "{backend:?}: ticket {ticket}: {answer}");
            }
        }
        assert_eq!(
            app.app.store.count_ratings().await.unwrap(),
            5 * 39,
            "{backend:?}"
        );
        assert!(
            app.app
                .store
                .rating("zendesk", "666", "")
                .await
                .unwrap()
                .is_none(),
            "{backend:?}"
        );
        let counts = app.app.pipeline.write_counts();
        assert!(counts.retried >= 1, "{backend:?}: {counts:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn sqlite_syncs_every_commit_unless_told_normal() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(settings(&db.url, None, ""), ManualClock::starting_now()).await;
    assert_eq!(app.app.store.commit_durability().await.unwrap(), "full");
    app.stop().await;
    let normal = settings(&db.url, None, "")
        .with_database(|d| d.sqlite_synchronous = SqliteSync::Normal)
        .database;
    let store = Store::connect(&normal).await.unwrap();
    assert_eq!(store.commit_durability().await.unwrap(), "normal");
    store.close().await;
}

/// PostgreSQL-only tests say so when they cannot run.
fn postgres_or_say_why(test: &str) -> bool {
    let on = backends().contains(&Backend::Postgres);
    if !on {
        eprintln!("{test}: not run: it needs PostgreSQL (set TEST_DATABASE_URL)");
    }
    on
}

#[tokio::test]
async fn postgres_statement_timeout_answers_503_instead_of_waiting_on_a_lock() {
    if !postgres_or_say_why("postgres_statement_timeout") {
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    let app = TestApp::spawn(
        settings(&db.url, None, "").with_database(|d| {
            d.statement_timeout = Duration::from_secs(1);
        }),
        ManualClock::starting_now(),
    )
    .await;
    // Someone else holds the ratings table.
    let other = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut lock = other.begin().await.unwrap();
    sqlx::query("LOCK TABLE ratings IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let started = Instant::now();
    let (status, answer) = app.post_zendesk(&zendesk_body(1, "bad", "x")).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered after {:?}",
        started.elapsed()
    );
    lock.rollback().await.unwrap();
    let (status, answer) = app.post_zendesk(&zendesk_body(1, "bad", "x")).await;
    assert_eq!(status, 200, "{answer}");
    other.close().await;
    app.stop().await;
}

#[tokio::test]
async fn postgres_ends_a_session_left_idle_inside_a_transaction() {
    if !postgres_or_say_why("postgres_idle_in_transaction") {
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    let database = settings(&db.url, None, "")
        .with_database(|d| d.idle_in_transaction_timeout = Duration::from_millis(500))
        .database;
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    let tx = store.begin().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        tx.commit().await.is_err(),
        "the server must have ended the idle transaction"
    );
    store.close().await;
}

/// A mock Zendesk API serving `total` legacy ratings in pages of 100.
struct Pages {
    total: u64,
    base_ms: i64,
}

impl wiremock::Respond for Pages {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let start: u64 = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "page[after]")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let end = (start + 100).min(self.total);
        let at = time::OffsetDateTime::from_unix_timestamp(self.base_ms / 1000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let ratings: Vec<serde_json::Value> = (start..end)
            .map(|i| {
                let t = 100_000 + i;
                serde_json::json!({"id": t * 10, "ticket_id": t, "score": "good", "comment": "",
                    "created_at": at, "updated_at": at})
            })
            .collect();
        let after = (end < self.total).then(|| end.to_string());
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "satisfaction_ratings": ratings,
            "meta": {"has_more": after.is_some(), "after_cursor": after},
        }))
    }
}

#[tokio::test]
async fn a_page_that_fails_keeps_the_cursor_before_it_and_the_pages_behind_it_out() {
    use csatwatch::clock::Clock as _;
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let api = wiremock::MockServer::start().await;
        let clock = ManualClock::starting_now();
        wiremock::Mock::given(wiremock::matchers::path("/api/v2/satisfaction_ratings"))
            .respond_with(Pages {
                total: 1000,
                base_ms: clock.now_ms() - 3_600_000,
            })
            .mount(&api)
            .await;
        let source = format!(
            "[[sources]]\nname = \"zd\"\nkind = \"zendesk\"\nsecret = \"x\"\npoll_requests_per_minute = 100000\n\
             [sources.api]\nbase_url = \"{}\"\nemail = \"ops@acme.example\"\ntoken = \"t\"\n",
            api.uri()
        );
        let app = TestApp::spawn(settings(&db.url, None, &source), clock.clone()).await;
        // Page 5 (tickets 100400..100499) cannot be written.
        let (poison, cure) = match backend {
            Backend::Sqlite => (
                "CREATE TRIGGER poison BEFORE INSERT ON ratings WHEN NEW.conversation_id = '100450'
                 BEGIN SELECT RAISE(ABORT, 'poisoned rating'); END;",
                "DROP TRIGGER poison;",
            ),
            Backend::Postgres => (
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.conversation_id = '100450' THEN RAISE EXCEPTION 'poisoned rating'; END IF;
                 RETURN NEW; END $$;
                 CREATE TRIGGER poison BEFORE INSERT ON ratings FOR EACH ROW EXECUTE FUNCTION poison();",
                "DROP TRIGGER poison ON ratings;",
            ),
        };
        execute(backend, &db.url, poison).await;
        let zd = app.app.sources.get("zd").unwrap();
        let since = clock.now_ms() - 24 * 3600 * 1000;
        let cancel = tokio_util::sync::CancellationToken::new();
        let failed = app
            .app
            .pollers
            .backfill(&zd, since, None, &cancel, &mut |_| {})
            .await;
        assert!(failed.is_err(), "{backend:?}: {failed:?}");
        // Pages 1-4 are in, nothing behind the failed page is.
        assert_eq!(
            app.app.store.count_ratings().await.unwrap(),
            400,
            "{backend:?}"
        );
        execute(backend, &db.url, cure).await;
        let rest = app
            .app
            .pollers
            .backfill(&zd, since, None, &cancel, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(rest.new, 600, "{backend:?}: resumed after page 4: {rest:?}");
        assert_eq!(
            app.app.store.count_ratings().await.unwrap(),
            1000,
            "{backend:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn postgres_the_writer_records_while_every_pool_connection_is_taken() {
    if !postgres_or_say_why("postgres_the_writer_records_while_every_pool_connection_is_taken") {
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    let app = TestApp::spawn(
        settings(&db.url, None, "").with_database(|d| {
            d.max_connections = 1;
            d.acquire_timeout = Duration::from_secs(2);
        }),
        ManualClock::starting_now(),
    )
    .await;
    // The pool's one connection is busy (a long report, say): the writer
    // records on a connection of its own instead of timing out behind it.
    let held = app.app.store.begin().await.unwrap();
    let (status, answer) = app.post_zendesk(&zendesk_body(1, "bad", "x")).await;
    assert_eq!(status, 200, "{answer}");
    drop(held);
    assert_eq!(app.app.store.count_ratings().await.unwrap(), 1);
    app.stop().await;
}

/// The same delivery again is answered `duplicate` and its ratings are not
/// looked at, even once they are gone: not recorded again, and no failure
/// for a rating that is not there.
#[tokio::test]
async fn a_redelivery_stays_a_duplicate_after_its_rating_was_erased() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = app_without_slack(&db).await;
        let body = zendesk_body(8_001, "bad", "x");
        let (status, answer) = app.post_zendesk(&body).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("recorded")));
        execute(
            backend,
            &db.url,
            "DELETE FROM ratings WHERE conversation_id = '8001'",
        )
        .await;
        let (status, answer) = app.post_zendesk(&body).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate")),
            "{backend:?}: {answer}"
        );
        assert_eq!(answer["ratings"], serde_json::json!([]), "{answer}");
        assert!(
            app.app
                .store
                .rating("zendesk", "8001", "")
                .await
                .unwrap()
                .is_none(),
            "{backend:?}"
        );
        app.stop().await;
    }
}
