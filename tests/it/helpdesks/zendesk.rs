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

/// Zendesk's API emulated under the poller: every scenario of `polling.rs`
/// runs against it; the tests below are the ones only Zendesk's source runs
/// (max_age on a rating the API returned anyway, leases between replicas, a
/// 10,000-rating backfill, the backfill command, the lag gauge).
mod api {
    // Zendesk's `GET /api/v2/satisfaction_ratings`, emulated: basic auth
    // `{email}/token:{token}`, `start_time` (Unix seconds) filtering on the
    // rating's update time, `sort_order=asc`, cursor pages (`page[size]`,
    // `page[after]`, `meta.has_more`/`after_cursor`), and a 429 with
    // `Retry-After`. Surveys offered but not answered are listed.

    use std::time::Duration;

    use csatwatch::clock::{Clock as _, ManualClock};
    use serde_json::{Value, json};
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use crate::polling::*;
    use crate::support::*;

    const RATINGS: &str = "/api/v2/satisfaction_ratings";

    #[derive(Clone, Copy)]
    pub struct Zendesk;

    fn rating(r: &Rating) -> Value {
        let score = match (r.unanswered, r.bad) {
            (true, _) => "offered",
            (false, true) => "bad",
            (false, false) => "good",
        };
        json!({
            "id": r.item, "ticket_id": r.conversation, "score": score, "comment": r.comment,
            "assignee_id": 135, "group_id": 44, "requester_id": 7881,
            "created_at": rfc3339(r.created_ms), "updated_at": rfc3339(r.modified_ms),
            "url": format!("https://acme.zendesk.com/api/v2/satisfaction_ratings/{}.json", r.item)
        })
    }

    fn page(ratings: Vec<Value>, after: Option<&str>) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "satisfaction_ratings": ratings,
            "meta": {"has_more": after.is_some(), "after_cursor": after},
        }))
    }

    struct List(Shared);

    impl Respond for List {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let mut state = self.0.lock().unwrap();
            if std::mem::take(&mut state.throttle_next) {
                return ResponseTemplate::new(429).insert_header("Retry-After", "1");
            }
            let start_ms = query(request, "start_time")
                .expect("start_time")
                .parse::<i64>()
                .unwrap()
                * 1000;
            let end_ms = query(request, "end_time")
                .map_or(i64::MAX, |e| e.parse::<i64>().unwrap() * 1000 + 999);
            let offset: usize = query(request, "page[after]").map_or(0, |a| a.parse().unwrap());
            if offset > 0 && state.fail_after_first_page {
                return ResponseTemplate::new(500);
            }
            let size: usize = query(request, "page[size]").unwrap().parse().unwrap();
            let mut matching: Vec<&Rating> = state
                .ratings
                .iter()
                .filter(|r| (start_ms..=end_ms).contains(&r.modified_ms))
                .collect();
            matching.sort_by_key(|r| (r.modified_ms, r.conversation));
            let (items, next) = page_of(&matching, offset, size.min(state.page_size));
            page(
                items.iter().map(|r| rating(r)).collect(),
                next.map(|n| n.to_string()).as_deref(),
            )
        }
    }

    impl Helpdesk for Zendesk {
        const SOURCE: &'static str = "zd";
        const LISTS_UNANSWERED: bool = true;

        fn toml(self, api: &str) -> String {
            format!(
                "[[sources]]\nname = \"zd\"\nkind = \"zendesk\"\nsecret = \"{ZENDESK_SECRET}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nemail = \"ops@acme.example\"\ntoken = \"zd-api-token\"\n"
            )
        }

        async fn mount(self, api: &MockServer, state: Shared) {
            Mock::given(path(RATINGS))
                .respond_with(List(state))
                .mount(api)
                .await;
        }

        fn is_page(self, request: &Request) -> bool {
            request.url.path() == RATINGS
        }

        fn window_start_ms(self, request: &Request) -> Option<i64> {
            Some(query(request, "start_time")?.parse::<i64>().unwrap() * 1000)
        }

        fn check_page_request(self, request: &Request) {
            // ops@acme.example/token:zd-api-token
            assert_eq!(
                header(request, "authorization").as_deref(),
                Some("Basic b3BzQGFjbWUuZXhhbXBsZS90b2tlbjp6ZC1hcGktdG9rZW4=")
            );
            assert_eq!(query(request, "sort_order").as_deref(), Some("asc"));
        }

        async fn post_webhook(self, app: &TestApp, r: &Rating) -> u16 {
            let score = if r.bad { "bad" } else { "good" };
            let body =
                serde_json::to_vec(&zendesk_body(r.conversation, score, &r.comment)).unwrap();
            let headers = zendesk_headers(ZENDESK_SECRET, app.clock.now_ms(), &body);
            app.post("zd", &headers, &body).await.0
        }

        fn key(self, r: &Rating) -> (String, String) {
            (r.conversation.to_string(), String::new())
        }

        fn second_start_ms(self, first: &Rating, _first_poll_ms: i64) -> i64 {
            // A day before the newest change the first poll saw.
            (first.modified_ms - 24 * 3600 * 1000) / 1000 * 1000
        }

        fn default_url(self, api: &str, r: &Rating) -> Option<String> {
            Some(format!("{api}/agent/tickets/{}", r.conversation))
        }
    }

    polling_scenarios!(Zendesk);

    #[tokio::test]
    async fn a_first_poll_does_not_alert_on_ratings_older_than_max_age() {
        let (db, api, slack) = (
            TestDatabase::new(Backend::Sqlite).await,
            MockServer::start().await,
            slack_ok().await,
        );
        let clock = ManualClock::starting_now();
        // This API returns an old rating whatever the window asked for.
        let old = Rating::new(51, true, clock.now_ms() - 5 * 24 * 3600 * 1000);
        let recent = Rating::new(52, true, clock.now_ms());
        Mock::given(path(RATINGS))
            .respond_with(page(vec![rating(&old), rating(&recent)], None))
            .mount(&api)
            .await;
        let app = spawn(Zendesk, &api, &slack, &db, &clock).await;
        let report = poll(Zendesk, &app).await.unwrap();
        assert_eq!((report.new, report.alerts), (2, 1));
        app.stop().await;
    }

    #[tokio::test]
    async fn two_replicas_never_poll_one_source_at_once_and_one_takes_over_when_the_other_dies() {
        for backend in backends() {
            let (db, slack) = (TestDatabase::new(backend).await, slack_ok().await);
            let clock = ManualClock::starting_now();
            let rating = Rating::new(61, false, clock.now_ms());
            let (api, _state) = emulator(Zendesk, vec![rating], 10).await;
            let a = spawn(Zendesk, &api, &slack, &db, &clock).await;
            let b = spawn(Zendesk, &api, &slack, &db, &clock).await;
            assert!(!poll(Zendesk, &a).await.unwrap().not_leader);
            assert!(
                poll(Zendesk, &b).await.unwrap().not_leader,
                "{backend:?}: b waits while a holds the lease"
            );
            assert!(
                !poll(Zendesk, &a).await.unwrap().not_leader,
                "a renews its own lease"
            );
            assert_eq!(api.received_requests().await.unwrap().len(), 2);
            // a dies without releasing; its lease runs out and b takes over.
            clock.advance(Duration::from_secs(181));
            assert!(!poll(Zendesk, &b).await.unwrap().not_leader, "{backend:?}");
            assert!(poll(Zendesk, &a).await.unwrap().not_leader, "now a waits");
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

    /// `total` ratings a millisecond apart from `base_ms`, every third bad.
    fn history(total: u64, base_ms: i64) -> Vec<Rating> {
        (0..total)
            .map(|i| Rating::new(100_000 + i, i % 3 == 0, base_ms + i as i64))
            .collect()
    }

    #[tokio::test]
    async fn a_backfill_of_ten_thousand_ratings_records_them_all_and_posts_nothing() {
        // Recent ratings, so only "never alert during a backfill" keeps them quiet.
        let rig = Rig::new(Zendesk, Backend::Sqlite, 100, |now| {
            history(10_000, now - 3_600_000)
        })
        .await;
        let since = rig.clock.now_ms() - 365 * 24 * 3600 * 1000;
        let mut pages_seen = 0;
        let started = std::time::Instant::now();
        let report = rig.backfill(since, &mut |r| pages_seen = r.pages).await;
        let elapsed = started.elapsed();
        assert_eq!((report.pages, report.new, report.alerts), (100, 10_000, 0));
        assert_eq!(pages_seen, 100, "progress was reported after every page");
        assert_eq!(rig.app.app.store.count_ratings().await.unwrap(), 10_000);
        assert_eq!(rig.posts().await, 0);
        assert!(rig.app.app.store.all_alerts().await.unwrap().is_empty());
        // Running it again resumes at the end: nothing left to read.
        let again = rig.backfill(since, &mut |_| {}).await;
        assert_eq!(again.new, 0);
        eprintln!(
            "backfill: 10,000 ratings in {elapsed:?} ({:.0}/s)",
            10_000.0 / elapsed.as_secs_f64()
        );
        rig.stop().await;
    }

    #[tokio::test]
    async fn the_backfill_command_prints_plain_progress_and_a_summary() {
        let now = ManualClock::starting_now().now_ms();
        let (api, _state) = emulator(Zendesk, history(250, now - 3_600_000), 100).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"sqlite://{}/b.db\"\n{}",
                dir.path().display(),
                Zendesk.toml(&api.uri())
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
        assert_eq!(query(first, "start_time"), Some(since.to_string()));
    }

    #[tokio::test]
    async fn the_poller_lag_gauge_measures_time_since_the_last_page() {
        let rig = Rig::new(Zendesk, Backend::Sqlite, 10, |_| vec![]).await;
        rig.poll().await.unwrap();
        rig.clock.advance(Duration::from_secs(420));
        let gauges = rig.app.app.refresh_gauges().await.unwrap();
        assert_eq!(gauges.poll_lag_seconds, vec![("zd".to_string(), 420.0)]);
        rig.stop().await;
    }
}
