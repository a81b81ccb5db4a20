//! Zendesk (legacy good/bad CSAT): `X-Zendesk-Webhook-Signature`, base64
//! HMAC-SHA256 of timestamp + body. The source itself is in
//! `support::settings` (every app the tests spawn has it).

use serde_json::json;

use super::{Ratings, Webhook, fixture};
use crate::support::{ZENDESK_SECRET, zendesk_headers};

pub fn sign(secret: &str, now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    zendesk_headers(secret, now_ms, body)
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "zendesk",
        toml: "",
        secret: ZENDESK_SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("zendesk/bad_rating.json"),
            negative_key: ("48213", ""),
            positive: fixture("zendesk/good_rating.json"),
            changed: fixture("zendesk/changed_to_bad.json"),
            changed_key: ("48214", ""),
            non_rating: fixture("zendesk/offered.json"),
            non_rating_headers: &[],
            malformed: json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": "meh"}}),
            malformed_field: "satisfaction.current_rating",
        }),
        rated: fixture("zendesk/bad_rating.json"),
        rating_pointer: "/satisfaction/current_rating",
    }
}

/// Zendesk's API emulated under the poller: pagination, resuming, rate limits, the overlap window, leases, backfills.
mod api {
    // Pollers and backfills against a mock Zendesk API: pagination, resuming,
    // rate limits, the overlap window, leases, and one alert per rating
    // whichever way it came.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use csatwatch::clock::{Clock as _, ManualClock};
    use serde_json::{Value, json};
    use tokio_util::sync::CancellationToken;
    use wiremock::matchers::{method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use crate::support::*;

    const RATINGS: &str = "/api/v2/satisfaction_ratings";

    fn poll_source(api: &str) -> String {
        format!(
            "[[sources]]\nname = \"zd\"\nkind = \"zendesk\"\nsecret = \"{ZENDESK_SECRET}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nemail = \"ops@acme.example\"\ntoken = \"zd-api-token\"\n"
        )
    }

    fn rating(ticket: u64, score: &str, comment: &str, updated_ms: i64) -> Value {
        let at = time::OffsetDateTime::from_unix_timestamp(updated_ms / 1000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        json!({
            "id": ticket * 10, "ticket_id": ticket, "score": score, "comment": comment,
            "assignee_id": 135, "group_id": 44, "requester_id": 7881,
            "created_at": at, "updated_at": at,
            "url": format!("https://acme.zendesk.com/api/v2/satisfaction_ratings/{}.json", ticket * 10)
        })
    }

    fn page(ratings: Vec<Value>, after: Option<&str>) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "satisfaction_ratings": ratings,
            "meta": {"has_more": after.is_some(), "after_cursor": after},
        }))
    }

    async fn spawn(
        api: &MockServer,
        slack: &MockServer,
        db: &TestDatabase,
        clock: &ManualClock,
    ) -> TestApp {
        TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), &poll_source(&api.uri())),
            clock.clone(),
        )
        .await
    }

    async fn poll(
        app: &TestApp,
    ) -> Result<csatwatch::polling::PollReport, csatwatch::polling::PollError> {
        let source = &app.app.sources.get("zd").unwrap();
        app.app
            .pollers
            .poll_once(source, &CancellationToken::new())
            .await
    }

    #[tokio::test]
    async fn a_first_poll_reads_every_page_with_the_api_token_and_alerts_recent_negatives() {
        for backend in backends() {
            let (db, api, slack) = (
                TestDatabase::new(backend).await,
                MockServer::start().await,
                slack_ok().await,
            );
            let clock = ManualClock::starting_now();
            let t = clock.now_ms() - 3_600_000;
            Mock::given(method("GET"))
                .and(path(RATINGS))
                .and(query_param_is_missing("page[after]"))
                .respond_with(page(
                    vec![rating(1, "bad", "slow", t), rating(2, "good", "", t)],
                    Some("c1"),
                ))
                .mount(&api)
                .await;
            Mock::given(path(RATINGS))
                .and(query_param("page[after]", "c1"))
                .respond_with(page(
                    vec![rating(3, "bad", "", t + 1000), rating(4, "offered", "", t)],
                    Some("c2"),
                ))
                .mount(&api)
                .await;
            Mock::given(path(RATINGS))
                .and(query_param("page[after]", "c2"))
                .respond_with(page(vec![rating(5, "good", "thanks", t + 2000)], None))
                .mount(&api)
                .await;
            let app = spawn(&api, &slack, &db, &clock).await;
            let report = poll(&app).await.unwrap();
            assert_eq!(
                (report.pages, report.ratings, report.new, report.alerts),
                (3, 4, 4, 2),
                "{backend:?}"
            );
            let first = &api.received_requests().await.unwrap()[0];
            let auth = first
                .headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(
                auth,
                "Basic b3BzQGFjbWUuZXhhbXBsZS90b2tlbjp6ZC1hcGktdG9rZW4="
            ); // ops@acme.example/token:zd-api-token
            assert!(first.url.query().unwrap().contains("sort_order=asc"));
            app.app.flush_alerts().await.unwrap();
            assert_eq!(slack_posts(&slack).await.len(), 2);
            let rating = app.app.store.rating("zd", "1", "").await.unwrap().unwrap();
            assert_eq!(rating.comment.as_deref(), Some("slow"));
            assert_eq!(
                rating.url.as_deref(),
                Some(format!("{}/agent/tickets/1", api.uri()).as_str())
            );
            app.stop().await;
        }
    }

    #[tokio::test]
    async fn a_restart_mid_way_resumes_from_the_saved_cursor() {
        for backend in backends() {
            let (db, api, slack) = (
                TestDatabase::new(backend).await,
                MockServer::start().await,
                slack_ok().await,
            );
            let clock = ManualClock::starting_now();
            let t = clock.now_ms() - 60_000;
            Mock::given(path(RATINGS))
                .and(query_param_is_missing("page[after]"))
                .respond_with(page(vec![rating(11, "good", "", t)], Some("c1")))
                .expect(1)
                .mount(&api)
                .await;
            let broken = Mock::given(path(RATINGS))
                .and(query_param("page[after]", "c1"))
                .respond_with(ResponseTemplate::new(500))
                .mount_as_scoped(&api)
                .await;
            let app = spawn(&api, &slack, &db, &clock).await;
            assert!(poll(&app).await.is_err(), "the second page failed");
            app.stop().await;
            drop(broken);

            Mock::given(path(RATINGS))
                .and(query_param("page[after]", "c1"))
                .respond_with(page(vec![rating(12, "bad", "", t)], None))
                .mount(&api)
                .await;
            // The first process stopped without releasing its lease (as a crash
            // would): the new one takes over once the lease has run out.
            clock.advance(Duration::from_secs(181));
            let app = spawn(&api, &slack, &db, &clock).await;
            let report = poll(&app).await.unwrap();
            assert_eq!(
                (report.pages, report.new),
                (1, 1),
                "{backend:?}: resumed at page 2, page 1 not read again"
            );
            assert_eq!(app.app.store.count_ratings().await.unwrap(), 2);
            app.stop().await;
            api.verify().await;
        }
    }

    #[tokio::test]
    async fn a_429_with_retry_after_is_waited_out() {
        let (db, api, slack) = (
            TestDatabase::new(Backend::Sqlite).await,
            MockServer::start().await,
            slack_ok().await,
        );
        let clock = ManualClock::starting_now();
        Mock::given(path(RATINGS))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .mount(&api)
            .await;
        Mock::given(path(RATINGS))
            .respond_with(page(vec![rating(21, "good", "", clock.now_ms())], None))
            .mount(&api)
            .await;
        let app = spawn(&api, &slack, &db, &clock).await;
        let started = std::time::Instant::now();
        let report = poll(&app).await.unwrap();
        assert_eq!(report.new, 1);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "it waited as Zendesk asked"
        );
        assert_eq!(api.received_requests().await.unwrap().len(), 2);
        app.stop().await;
    }

    #[tokio::test]
    async fn a_rating_seen_by_webhook_and_by_poll_alerts_once() {
        for backend in backends() {
            let (db, api, slack) = (
                TestDatabase::new(backend).await,
                MockServer::start().await,
                slack_ok().await,
            );
            let clock = ManualClock::starting_now();
            let app = spawn(&api, &slack, &db, &clock).await;
            // The webhook first (its body is the trigger template)...
            let body = serde_json::to_vec(&zendesk_body(31, "bad", "Rude")).unwrap();
            let headers = zendesk_headers(ZENDESK_SECRET, clock.now_ms(), &body);
            assert_eq!(app.post("zd", &headers, &body).await.0, 200);
            app.app.flush_alerts().await.unwrap();
            // ...then the poll finds the same rating.
            Mock::given(path(RATINGS))
                .respond_with(page(
                    vec![rating(31, "bad", "Rude", clock.now_ms() - 5_000)],
                    None,
                ))
                .mount(&api)
                .await;
            let report = poll(&app).await.unwrap();
            assert_eq!(
                (report.ratings, report.new, report.alerts),
                (1, 0, 0),
                "{backend:?}"
            );
            app.app.flush_alerts().await.unwrap();
            assert_eq!(slack_posts(&slack).await.len(), 1);
            app.stop().await;
        }
    }

    #[tokio::test]
    async fn a_rating_changed_inside_the_overlap_window_is_picked_up() {
        for backend in backends() {
            let (db, api, slack) = (
                TestDatabase::new(backend).await,
                MockServer::start().await,
                slack_ok().await,
            );
            let clock = ManualClock::starting_now();
            let t1 = clock.now_ms() - 600_000;
            let first = Mock::given(path(RATINGS))
                .respond_with(page(vec![rating(41, "good", "", t1)], None))
                .mount_as_scoped(&api)
                .await;
            let app = spawn(&api, &slack, &db, &clock).await;
            poll(&app).await.unwrap();
            drop(first);
            // Five minutes later the customer changes it to bad.
            clock.advance(Duration::from_secs(300));
            Mock::given(path(RATINGS))
                .respond_with(page(
                    vec![rating(41, "bad", "Actually no", t1 + 300_000)],
                    None,
                ))
                .mount(&api)
                .await;
            let report = poll(&app).await.unwrap();
            assert_eq!((report.changed, report.alerts), (1, 1), "{backend:?}");
            // The second poll re-read from a day before the newest change seen.
            let second = api.received_requests().await.unwrap().pop().unwrap();
            let start: i64 = second
                .url
                .query_pairs()
                .find(|(k, _)| k == "start_time")
                .unwrap()
                .1
                .parse()
                .unwrap();
            assert_eq!(start, (t1 - 24 * 3600 * 1000) / 1000);
            let rating = app.app.store.rating("zd", "41", "").await.unwrap().unwrap();
            assert_eq!(
                app.app.store.rating_history(rating.id).await.unwrap().len(),
                2
            );
            app.stop().await;
        }
    }

    #[tokio::test]
    async fn a_first_poll_does_not_alert_on_ratings_older_than_max_age() {
        let (db, api, slack) = (
            TestDatabase::new(Backend::Sqlite).await,
            MockServer::start().await,
            slack_ok().await,
        );
        let clock = ManualClock::starting_now();
        let old = clock.now_ms() - 5 * 24 * 3600 * 1000;
        Mock::given(path(RATINGS))
            .respond_with(page(
                vec![
                    rating(51, "bad", "", old),
                    rating(52, "bad", "", clock.now_ms()),
                ],
                None,
            ))
            .mount(&api)
            .await;
        let app = spawn(&api, &slack, &db, &clock).await;
        let report = poll(&app).await.unwrap();
        assert_eq!((report.new, report.alerts), (2, 1));
        // The very first poll starts alerts.max_age back.
        let first = &api.received_requests().await.unwrap()[0];
        assert!(first.url.query().unwrap().contains(&format!(
            "start_time={}",
            (clock.now_ms() - 72 * 3600 * 1000) / 1000
        )));
        app.stop().await;
    }

    #[tokio::test]
    async fn two_replicas_never_poll_one_source_at_once_and_one_takes_over_when_the_other_dies() {
        for backend in backends() {
            let (db, api, slack) = (
                TestDatabase::new(backend).await,
                MockServer::start().await,
                slack_ok().await,
            );
            let clock = ManualClock::starting_now();
            Mock::given(path(RATINGS))
                .respond_with(page(vec![rating(61, "good", "", clock.now_ms())], None))
                .mount(&api)
                .await;
            let a = spawn(&api, &slack, &db, &clock).await;
            let b = spawn(&api, &slack, &db, &clock).await;
            assert!(!poll(&a).await.unwrap().not_leader);
            assert!(
                poll(&b).await.unwrap().not_leader,
                "{backend:?}: b waits while a holds the lease"
            );
            assert!(
                !poll(&a).await.unwrap().not_leader,
                "a renews its own lease"
            );
            assert_eq!(api.received_requests().await.unwrap().len(), 2);
            // a dies without releasing; its lease runs out and b takes over.
            clock.advance(Duration::from_secs(181));
            assert!(!poll(&b).await.unwrap().not_leader, "{backend:?}");
            assert!(poll(&a).await.unwrap().not_leader, "now a waits");
            let holder = b
                .app
                .store
                .lease_holder("poll:zd", clock.now_ms())
                .await
                .unwrap();
            assert_eq!(holder.as_deref(), Some(b.app.pollers.instance.as_str()));
            a.stop().await;
            b.stop().await;
        }
    }

    /// Serves `total` ratings in pages of 100, following `page[after]`.
    struct History {
        total: usize,
        base_ms: i64,
        served: Arc<AtomicUsize>,
    }

    impl Respond for History {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let start: usize = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "page[after]")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let end = (start + 100).min(self.total);
            let ratings = (start..end)
                .map(|i| {
                    rating(
                        100_000 + i as u64,
                        if i % 3 == 0 { "bad" } else { "good" },
                        "",
                        self.base_ms + i as i64,
                    )
                })
                .collect();
            self.served.fetch_add(end - start, Ordering::Relaxed);
            page(
                ratings,
                (end < self.total).then(|| end.to_string()).as_deref(),
            )
        }
    }

    #[tokio::test]
    async fn a_backfill_of_ten_thousand_ratings_records_them_all_and_posts_nothing() {
        let (db, api, slack) = (
            TestDatabase::new(Backend::Sqlite).await,
            MockServer::start().await,
            slack_ok().await,
        );
        let clock = ManualClock::starting_now();
        let served = Arc::new(AtomicUsize::new(0));
        Mock::given(path(RATINGS))
            .respond_with(History {
                total: 10_000,
                // Recent ratings, so only "never alert during a backfill" keeps them quiet.
                base_ms: clock.now_ms() - 3_600_000,
                served: served.clone(),
            })
            .mount(&api)
            .await;
        let app = spawn(&api, &slack, &db, &clock).await;
        let source = &app.app.sources.get("zd").unwrap();
        let since = clock.now_ms() - 365 * 24 * 3600 * 1000;
        let mut pages_seen = 0;
        let started = std::time::Instant::now();
        let report = app
            .app
            .pollers
            .backfill(source, since, None, &CancellationToken::new(), &mut |r| {
                pages_seen = r.pages
            })
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!((report.pages, report.new, report.alerts), (100, 10_000, 0));
        assert_eq!(pages_seen, 100, "progress was reported after every page");
        assert_eq!(app.app.store.count_ratings().await.unwrap(), 10_000);
        app.app.flush_alerts().await.unwrap();
        assert!(slack_posts(&slack).await.is_empty());
        assert!(app.app.store.all_alerts().await.unwrap().is_empty());
        // Running it again resumes at the end: nothing left to read.
        let again = app
            .app
            .pollers
            .backfill(source, since, None, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(again.new, 0);
        eprintln!(
            "backfill: 10,000 ratings in {elapsed:?} ({:.0}/s)",
            10_000.0 / elapsed.as_secs_f64()
        );
        app.stop().await;
    }

    #[tokio::test]
    async fn the_backfill_command_prints_plain_progress_and_a_summary() {
        let api = MockServer::start().await;
        let clock = ManualClock::starting_now();
        Mock::given(path(RATINGS))
            .respond_with(History {
                total: 250,
                base_ms: clock.now_ms() - 3_600_000,
                served: Arc::new(AtomicUsize::new(0)),
            })
            .mount(&api)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"sqlite://{}/b.db\"\n{}",
                dir.path().display(),
                poll_source(&api.uri())
            ),
        )
        .unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_csatwatch"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "backfill",
                "--source",
                "zd",
                "--since",
                "2026-01-01",
            ])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("250 rating(s) in 3 page(s) (250 new, 0 changed)"),
            "{stdout}"
        );
        assert!(stdout.contains("no alerts were raised"), "{stdout}");
        // The window asked for starts at --since.
        let first = &api.received_requests().await.unwrap()[0];
        let since = csatwatch::cli::parse_date("2026-01-01").unwrap() / 1000;
        assert!(
            first
                .url
                .query()
                .unwrap()
                .contains(&format!("start_time={since}"))
        );
    }

    #[tokio::test]
    async fn the_poller_lag_gauge_measures_time_since_the_last_page() {
        let (db, api, slack) = (
            TestDatabase::new(Backend::Sqlite).await,
            MockServer::start().await,
            slack_ok().await,
        );
        let clock = ManualClock::starting_now();
        Mock::given(path(RATINGS))
            .respond_with(page(vec![], None))
            .mount(&api)
            .await;
        let app = spawn(&api, &slack, &db, &clock).await;
        poll(&app).await.unwrap();
        clock.advance(Duration::from_secs(420));
        let gauges = app.app.refresh_gauges().await.unwrap();
        assert_eq!(gauges.poll_lag_seconds, vec![("zd".to_string(), 420.0)]);
        app.stop().await;
    }
}
