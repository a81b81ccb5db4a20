//! The scenarios every polling helpdesk must pass, written once against a
//! [`Helpdesk`] whose API is emulated (its filters by time, its pagination,
//! its auth and its rate-limit answers, over a shared list of ratings the
//! tests can change). Each helpdesk's emulator lives in
//! `helpdesks/<kind>.rs`, which runs every scenario for it, on every backend
//! where it touches the database:
//!
//! - a multi-page first run records every rating and alerts recent negatives;
//! - a restart mid-way resumes from the saved cursor;
//! - a 429 with the helpdesk's own retry header is waited out;
//! - a rating seen by webhook and by poll is one rating with one alert;
//! - a rating changed inside the overlap window is picked up;
//! - a small backfill records all and posts nothing (and reports its rate).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::polling::{PollError, PollReport};
use tokio_util::sync::CancellationToken;
use wiremock::{MockServer, Request};

use crate::support::*;

/// One rating in the emulated helpdesk.
#[derive(Debug, Clone)]
pub struct Rating {
    /// The conversation (Intercom, Help Scout) or ticket (HubSpot).
    pub conversation: u64,
    /// The rated thread (Help Scout) or the submission id (HubSpot).
    pub item: u64,
    pub bad: bool,
    pub comment: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl Rating {
    pub fn new(conversation: u64, bad: bool, at_ms: i64) -> Rating {
        Rating {
            conversation,
            item: conversation + 500_000,
            bad,
            comment: if bad {
                "Too slow".into()
            } else {
                String::new()
            },
            created_ms: at_ms,
            modified_ms: at_ms,
        }
    }
}

/// What the emulated API holds and how it misbehaves.
#[derive(Debug, Default)]
pub struct State {
    pub ratings: Vec<Rating>,
    /// The API's page size (at most what the client asks for).
    pub page_size: usize,
    /// Answer 500 to every page after the first.
    pub fail_after_first_page: bool,
    /// Answer the next data request with the helpdesk's 429.
    pub throttle_next: bool,
    /// Help Scout: the token currently valid, and how many were issued.
    pub valid_token: Option<String>,
    pub tokens_issued: usize,
}

pub type Shared = Arc<Mutex<State>>;

/// A helpdesk's emulator and its test source.
pub trait Helpdesk: Copy {
    /// The source's name in the test settings.
    const SOURCE: &'static str;
    /// The `[[sources]]` table, API at `api`.
    fn toml(self, api: &str) -> String;
    /// Mounts the emulated API.
    async fn mount(self, api: &MockServer, state: Shared);
    /// Whether a received request is a page of ratings (not a token or an
    /// association read).
    fn is_page(self, request: &Request) -> bool;
    /// The start of the time window a page request asked for (Unix ms).
    fn window_start_ms(self, request: &Request) -> i64;
    /// Delivers `rating` by the helpdesk's webhook, signed; returns the status.
    async fn post_webhook(self, app: &TestApp, rating: &Rating) -> u16;
    /// (conversation id, rating key) the webhook source records.
    fn key(self, rating: &Rating) -> (String, String);
    /// The window start the second poll must ask for, given the rating
    /// changed and the time of the first poll.
    fn second_start_ms(self, first: &Rating, first_poll_ms: i64) -> i64;
}

/// Settings with one polling source.
pub async fn spawn<H: Helpdesk>(
    h: H,
    api: &MockServer,
    slack: &MockServer,
    db: &TestDatabase,
    clock: &ManualClock,
) -> TestApp {
    TestApp::spawn(
        settings(&db.url, Some(&slack.uri()), &h.toml(&api.uri())),
        clock.clone(),
    )
    .await
}

pub async fn poll<H: Helpdesk>(_h: H, app: &TestApp) -> Result<PollReport, PollError> {
    let source = &app.app.sources.get(H::SOURCE).unwrap();
    app.app
        .pollers
        .poll_once(source, &CancellationToken::new())
        .await
}

pub async fn pages<H: Helpdesk>(h: H, api: &MockServer) -> Vec<Request> {
    let all = api.received_requests().await.unwrap();
    all.into_iter().filter(|r| h.is_page(r)).collect()
}

pub async fn emulator<H: Helpdesk>(
    h: H,
    ratings: Vec<Rating>,
    page_size: usize,
) -> (MockServer, Shared) {
    let api = MockServer::start().await;
    let state = Arc::new(Mutex::new(State {
        ratings,
        page_size,
        ..State::default()
    }));
    h.mount(&api, state.clone()).await;
    (api, state)
}

pub async fn a_first_poll_reads_every_page_and_alerts_recent_negatives<H: Helpdesk>(h: H) {
    for backend in backends() {
        let (db, slack, clock) = (
            TestDatabase::new(backend).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let t = clock.now_ms() - 3_600_000;
        let ratings: Vec<Rating> = (1..=5)
            .map(|i| Rating::new(i, i % 2 == 1 && i != 5, t + i as i64 * 1000))
            .collect();
        let (api, _state) = emulator(h, ratings.clone(), 2).await;
        let app = spawn(h, &api, &slack, &db, &clock).await;
        let report = poll(h, &app).await.unwrap();
        assert_eq!(
            (report.pages, report.ratings, report.new, report.alerts),
            (3, 5, 5, 2),
            "{backend:?}"
        );
        app.app.flush_alerts().await.unwrap();
        assert_eq!(slack_posts(&slack).await.len(), 2);
        let (conversation, key) = h.key(&ratings[0]);
        let stored = app
            .app
            .store
            .rating(H::SOURCE, &conversation, &key)
            .await
            .unwrap();
        assert_eq!(
            stored.unwrap().comment.as_deref(),
            Some("Too slow"),
            "{backend:?}"
        );
        app.stop().await;
    }
}

pub async fn a_restart_mid_way_resumes_from_the_saved_cursor<H: Helpdesk>(h: H) {
    for backend in backends() {
        let (db, slack, clock) = (
            TestDatabase::new(backend).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let t = clock.now_ms() - 60_000;
        let ratings = (1..=4)
            .map(|i| Rating::new(i, false, t + i as i64 * 1000))
            .collect();
        let (api, state) = emulator(h, ratings, 2).await;
        state.lock().unwrap().fail_after_first_page = true;
        let app = spawn(h, &api, &slack, &db, &clock).await;
        assert!(poll(h, &app).await.is_err(), "the second page failed");
        app.stop().await;
        state.lock().unwrap().fail_after_first_page = false;
        // The first process left its lease (as a crash would): the next one
        // takes over once it has run out.
        clock.advance(Duration::from_secs(181));
        let app = spawn(h, &api, &slack, &db, &clock).await;
        let report = poll(h, &app).await.unwrap();
        assert_eq!(
            (report.pages, report.new),
            (1, 2),
            "{backend:?}: resumed at page 2"
        );
        assert_eq!(app.app.store.count_ratings().await.unwrap(), 4);
        assert_eq!(pages(h, &api).await.len(), 3, "page 1 was not read again");
        app.stop().await;
    }
}

pub async fn a_429_is_waited_out_as_the_helpdesk_asks<H: Helpdesk>(h: H) {
    let (db, slack, clock) = (
        TestDatabase::new(Backend::Sqlite).await,
        slack_ok().await,
        ManualClock::starting_now(),
    );
    let (api, state) = emulator(h, vec![Rating::new(21, false, clock.now_ms())], 10).await;
    state.lock().unwrap().throttle_next = true;
    let app = spawn(h, &api, &slack, &db, &clock).await;
    let started = std::time::Instant::now();
    let report = poll(h, &app).await.unwrap();
    assert_eq!(report.new, 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited as asked"
    );
    assert_eq!(pages(h, &api).await.len(), 2);
    app.stop().await;
}

pub async fn a_rating_seen_by_webhook_and_by_poll_alerts_once<H: Helpdesk>(h: H) {
    for backend in backends() {
        let (db, slack, clock) = (
            TestDatabase::new(backend).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let rating = Rating::new(31, true, clock.now_ms() - 5_000);
        let (api, _state) = emulator(h, vec![rating.clone()], 10).await;
        let app = spawn(h, &api, &slack, &db, &clock).await;
        assert_eq!(h.post_webhook(&app, &rating).await, 200, "{backend:?}");
        app.app.flush_alerts().await.unwrap();
        let report = poll(h, &app).await.unwrap();
        assert_eq!(
            (report.ratings, report.new, report.alerts),
            (1, 0, 0),
            "{backend:?}"
        );
        app.app.flush_alerts().await.unwrap();
        assert_eq!(slack_posts(&slack).await.len(), 1);
        assert_eq!(app.app.store.count_ratings().await.unwrap(), 1);
        app.stop().await;
    }
}

pub async fn a_rating_changed_inside_the_overlap_window_is_picked_up<H: Helpdesk>(h: H) {
    for backend in backends() {
        let (db, slack, clock) = (
            TestDatabase::new(backend).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let first = Rating::new(41, false, clock.now_ms() - 600_000);
        let (api, state) = emulator(h, vec![first.clone()], 10).await;
        let app = spawn(h, &api, &slack, &db, &clock).await;
        let first_poll_ms = clock.now_ms();
        poll(h, &app).await.unwrap();
        // Five minutes later the customer turns it bad.
        clock.advance(Duration::from_secs(300));
        {
            let mut state = state.lock().unwrap();
            let r = &mut state.ratings[0];
            (r.bad, r.comment, r.modified_ms) =
                (true, "Actually no".into(), first.created_ms + 300_000);
        }
        let report = poll(h, &app).await.unwrap();
        assert_eq!((report.changed, report.alerts), (1, 1), "{backend:?}");
        let second = pages(h, &api).await.pop().unwrap();
        assert_eq!(
            h.window_start_ms(&second),
            h.second_start_ms(&first, first_poll_ms)
        );
        let (conversation, key) = h.key(&first);
        let stored = app
            .app
            .store
            .rating(H::SOURCE, &conversation, &key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            app.app.store.rating_history(stored.id).await.unwrap().len(),
            2
        );
        app.stop().await;
    }
}

pub async fn a_small_backfill_records_all_and_posts_nothing<H: Helpdesk>(h: H) {
    for backend in backends() {
        let (db, slack, clock) = (
            TestDatabase::new(backend).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let t = clock.now_ms() - 3_600_000;
        let total = 1_000;
        // Recent ratings, a third bad: only "backfills never alert" keeps them quiet.
        let ratings = (0..total)
            .map(|i| Rating::new(10_000 + i, i % 3 == 0, t + i as i64))
            .collect();
        let (api, _state) = emulator(h, ratings, 100).await;
        let app = spawn(h, &api, &slack, &db, &clock).await;
        let source = &app.app.sources.get(H::SOURCE).unwrap();
        let since = clock.now_ms() - 365 * 24 * 3600 * 1000;
        let started = std::time::Instant::now();
        let report = app
            .app
            .pollers
            .backfill(source, since, None, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(
            (report.new, report.alerts),
            (total as usize, 0),
            "{backend:?}"
        );
        app.app.flush_alerts().await.unwrap();
        assert!(slack_posts(&slack).await.is_empty());
        assert!(app.app.store.all_alerts().await.unwrap().is_empty());
        eprintln!(
            "{} backfill on {backend:?}: {total} ratings in {} pages, {elapsed:?} ({:.0}/s)",
            H::SOURCE,
            report.pages,
            total as f64 / elapsed.as_secs_f64()
        );
        app.stop().await;
    }
}

/// RFC 3339 in UTC with milliseconds, as the helpdesks write times.
pub fn rfc3339(at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(at_ms as i128 * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Unix ms from RFC 3339.
pub fn parse_rfc3339(text: &str) -> i64 {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}
