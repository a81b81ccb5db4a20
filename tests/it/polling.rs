//! The scenarios every polling helpdesk must pass, written once against a
//! [`Helpdesk`] whose API is emulated (its filters by time, its pagination,
//! its auth and its rate-limit answers, over a shared list of ratings the
//! tests can change). Each helpdesk's emulator lives in
//! `helpdesks/<kind>.rs`, which runs every scenario for it with
//! [`polling_scenarios!`], on every backend:
//!
//! - a multi-page first run starts `alerts.max_age` back, records every
//!   answered rating and alerts recent negatives;
//! - a restart mid-way resumes from the saved cursor;
//! - a 429 with the helpdesk's own retry header is waited out;
//! - a rating seen by webhook and by poll is one rating with one alert;
//! - a rating changed inside the overlap window is picked up;
//! - a backfill records all, posts nothing, reports its progress, and has
//!   nothing left when run again.

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
    /// The conversation (Intercom, Help Scout, Chatwoot) or ticket.
    pub conversation: u64,
    /// The rating's own id: the rated thread (Help Scout), the submission
    /// (HubSpot), the survey or response (Freshdesk, Gorgias, DevRev).
    pub item: u64,
    pub bad: bool,
    /// A survey sent but not answered (where the helpdesk lists those).
    pub unanswered: bool,
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
            unanswered: false,
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
    /// Report only one request left in the rate-limit window (where the
    /// helpdesk sends the number).
    pub nearly_spent: bool,
    /// Help Scout: the token currently valid, and how many were issued.
    pub valid_token: Option<String>,
    pub tokens_issued: usize,
}

pub type Shared = Arc<Mutex<State>>;

/// A helpdesk's emulator and its test source.
pub trait Helpdesk: Copy {
    /// The source's name in the test settings.
    const SOURCE: &'static str;
    /// The page size the helpdesk's API fixes whatever the client asks
    /// (Chatwoot's 25); `None` where the tests may choose it.
    const FIXED_PAGE: Option<usize> = None;
    /// Whether the API lists surveys sent but not answered (which carry no
    /// rating); the first-poll scenario then adds one.
    const LISTS_UNANSWERED: bool = false;
    /// The `[[sources]]` table, API at `api`.
    fn toml(self, api: &str) -> String;
    /// Mounts the emulated API.
    async fn mount(self, api: &MockServer, state: Shared);
    /// Whether a received request is a page of ratings (not a token, an
    /// association read or a webhook's fetch).
    fn is_page(self, request: &Request) -> bool;
    /// The start of the time window a page request asked for (Unix ms);
    /// `None` where the API takes no time filter (Gorgias reads newest
    /// first and stops on its own).
    fn window_start_ms(self, request: &Request) -> Option<i64>;
    /// Checks what only the helpdesk asks of a page request: its auth
    /// header, its path, its sort order.
    fn check_page_request(self, request: &Request);
    /// Delivers `rating` by the helpdesk's webhook, signed; returns the status.
    async fn post_webhook(self, app: &TestApp, rating: &Rating) -> u16;
    /// (conversation id, rating key) the webhook source records.
    fn key(self, rating: &Rating) -> (String, String);
    /// The window start the second poll must ask for, given the rating
    /// changed and the time of the first poll.
    fn second_start_ms(self, first: &Rating, first_poll_ms: i64) -> i64;
    /// The link a polled rating gets without a `ticket_url` (API at `api`),
    /// where the test checks it.
    fn default_url(self, _api: &str, _rating: &Rating) -> Option<String> {
        None
    }
}

/// Runs every scenario above for one helpdesk, as the tests of a module
/// `polling` beside its emulator (`helpdesks::<kind>::api::polling::<scenario>`).
macro_rules! polling_scenarios {
    ($h:expr) => {
        /// Every scenario of `tests/it/polling.rs`, for this helpdesk.
        mod polling {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn a_first_poll_reads_every_page_and_alerts_recent_negatives() {
                $crate::polling::a_first_poll_reads_every_page_and_alerts_recent_negatives($h)
                    .await;
            }
            #[tokio::test]
            async fn a_restart_mid_way_resumes_from_the_saved_cursor() {
                $crate::polling::a_restart_mid_way_resumes_from_the_saved_cursor($h).await;
            }
            #[tokio::test]
            async fn a_429_is_waited_out_as_the_helpdesk_asks() {
                $crate::polling::a_429_is_waited_out_as_the_helpdesk_asks($h).await;
            }
            #[tokio::test]
            async fn a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert() {
                $crate::polling::a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert(
                    $h,
                )
                .await;
            }
            #[tokio::test]
            async fn a_rating_changed_inside_the_overlap_window_is_picked_up() {
                $crate::polling::a_rating_changed_inside_the_overlap_window_is_picked_up($h).await;
            }
            #[tokio::test]
            async fn a_backfill_records_everything_and_posts_nothing() {
                $crate::polling::a_backfill_records_everything_and_posts_nothing($h).await;
            }
        }
    };
}
pub(crate) use polling_scenarios;

/// Settings with one polling source. Storm control is off: the scenarios
/// count individual posts.
pub async fn spawn<H: Helpdesk>(
    h: H,
    api: &MockServer,
    slack: &MockServer,
    db: &TestDatabase,
    clock: &ManualClock,
) -> TestApp {
    TestApp::spawn(
        settings(
            &db.url,
            Some(&slack.uri()),
            &format!("[alerts.storm]\nthreshold = 0\n{}", h.toml(&api.uri())),
        ),
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

/// The helpdesk's API holding `ratings`, `page_size` a page (or the
/// helpdesk's fixed size).
pub async fn emulator<H: Helpdesk>(
    h: H,
    ratings: Vec<Rating>,
    page_size: usize,
) -> (MockServer, Shared) {
    let api = MockServer::start().await;
    let state = Arc::new(Mutex::new(State {
        ratings,
        page_size: H::FIXED_PAGE.unwrap_or(page_size),
        ..State::default()
    }));
    h.mount(&api, state.clone()).await;
    (api, state)
}

/// The page size the scenarios get from the emulator.
pub fn page_size<H: Helpdesk>(_h: H, wanted: usize) -> usize {
    H::FIXED_PAGE.unwrap_or(wanted)
}

/// A test's world: the app, its database, Slack and the emulated helpdesk.
pub struct Rig<H: Helpdesk> {
    pub h: H,
    pub app: TestApp,
    pub api: MockServer,
    pub slack: MockServer,
    pub state: Shared,
    pub db: TestDatabase,
    pub clock: ManualClock,
}

impl<H: Helpdesk> Rig<H> {
    /// The app on `backend` with the helpdesk holding `ratings(now_ms)`.
    pub async fn new(
        h: H,
        backend: Backend,
        page_size: usize,
        ratings: impl FnOnce(i64) -> Vec<Rating>,
    ) -> Rig<H> {
        let (db, slack, clock) = (
            TestDatabase::new(backend).await,
            slack_ok().await,
            ManualClock::starting_now(),
        );
        let (api, state) = emulator(h, ratings(clock.now_ms()), page_size).await;
        let app = spawn(h, &api, &slack, &db, &clock).await;
        Rig {
            h,
            app,
            api,
            slack,
            state,
            db,
            clock,
        }
    }

    pub async fn poll(&self) -> Result<PollReport, PollError> {
        poll(self.h, &self.app).await
    }

    /// Stops the app as a crash would (its lease left behind) and starts a
    /// new one on the same database once the lease has run out.
    pub async fn restart(mut self) -> Rig<H> {
        self.app.stop().await;
        self.clock.advance(Duration::from_secs(181));
        self.app = spawn(self.h, &self.api, &self.slack, &self.db, &self.clock).await;
        self
    }

    /// Slack posts so far, after sending what is due.
    pub async fn posts(&self) -> usize {
        self.app.app.flush_alerts().await.unwrap();
        slack_posts(&self.slack).await.len()
    }

    pub async fn stored(&self, rating: &Rating) -> Option<csatwatch::store::StoredRating> {
        let (conversation, key) = self.h.key(rating);
        self.app
            .app
            .store
            .rating(H::SOURCE, &conversation, &key)
            .await
            .unwrap()
    }

    pub async fn backfill(
        &self,
        since_ms: i64,
        progress: &mut (dyn FnMut(&PollReport) + Send),
    ) -> PollReport {
        let source = &self.app.app.sources.get(H::SOURCE).unwrap();
        self.app
            .app
            .pollers
            .backfill(source, since_ms, None, &CancellationToken::new(), progress)
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }
}

pub async fn a_first_poll_reads_every_page_and_alerts_recent_negatives<H: Helpdesk>(h: H) {
    let size = page_size(h, 2);
    for backend in backends() {
        // Three pages in the window: the last holds one rating.
        let n = 2 * size as u64 + 1;
        let rig = Rig::new(h, backend, 2, |now| {
            // Older than the first window (alerts.max_age): never read.
            let mut all = vec![Rating::new(1, true, now - 5 * 24 * 3600 * 1000)];
            let t = now - 3_600_000;
            all.extend(
                (1..=n).map(|i| Rating::new(10 + i, i % 2 == 1 && i != n, t + i as i64 * 1000)),
            );
            if H::LISTS_UNANSWERED {
                // A survey sent but not answered carries no rating.
                all.last_mut().unwrap().unanswered = true;
            }
            all
        })
        .await;
        let recent: Vec<Rating> = rig.state.lock().unwrap().ratings[1..].to_vec();
        let answered = recent.iter().filter(|r| !r.unanswered).count();
        let negatives = recent.iter().filter(|r| r.bad).count();
        let report = rig.poll().await.unwrap();
        assert_eq!(
            (report.pages, report.ratings, report.new, report.alerts),
            (3, answered, answered, negatives),
            "{} {backend:?}",
            H::SOURCE
        );
        assert_eq!(
            rig.app.app.store.count_ratings().await.unwrap(),
            answered as i64
        );
        let first = pages(h, &rig.api).await.remove(0);
        h.check_page_request(&first);
        // The very first poll starts alerts.max_age (72 h) back.
        if let Some(start) = h.window_start_ms(&first) {
            let since = rig.clock.now_ms() - 72 * 3600 * 1000;
            assert!(
                start <= since && since - start < 1000,
                "{}: the first window starts at {start}, not {since}",
                H::SOURCE
            );
        }
        assert_eq!(rig.posts().await, negatives);
        let stored = rig.stored(&recent[0]).await.unwrap();
        assert_eq!(stored.comment.as_deref(), Some("Too slow"), "{backend:?}");
        if let Some(url) = h.default_url(&rig.api.uri(), &recent[0]) {
            assert_eq!(stored.url.as_deref(), Some(url.as_str()));
        }
        rig.stop().await;
    }
}

pub async fn a_restart_mid_way_resumes_from_the_saved_cursor<H: Helpdesk>(h: H) {
    let size = page_size(h, 2);
    for backend in backends() {
        let rig = Rig::new(h, backend, 2, |now| {
            (1..=size as u64 + 2)
                .map(|i| Rating::new(i, false, now - 60_000 + i as i64 * 1000))
                .collect()
        })
        .await;
        rig.state.lock().unwrap().fail_after_first_page = true;
        assert!(rig.poll().await.is_err(), "the second page failed");
        rig.state.lock().unwrap().fail_after_first_page = false;
        // The first process left its lease (as a crash would): the next one
        // takes over once it has run out.
        let rig = rig.restart().await;
        let report = rig.poll().await.unwrap();
        assert_eq!(
            (report.pages, report.new),
            (1, 2),
            "{} {backend:?}: resumed at page 2",
            H::SOURCE
        );
        assert_eq!(
            rig.app.app.store.count_ratings().await.unwrap(),
            size as i64 + 2
        );
        assert_eq!(
            pages(h, &rig.api).await.len(),
            3,
            "{}: page 1 was not read again",
            H::SOURCE
        );
        rig.stop().await;
    }
}

pub async fn a_429_is_waited_out_as_the_helpdesk_asks<H: Helpdesk>(h: H) {
    for backend in backends() {
        let rig = Rig::new(h, backend, 10, |now| {
            vec![Rating::new(21, false, now - 60_000)]
        })
        .await;
        rig.state.lock().unwrap().throttle_next = true;
        let started = std::time::Instant::now();
        let report = rig.poll().await.unwrap();
        assert_eq!(report.new, 1, "{} {backend:?}", H::SOURCE);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{}: it waited as asked",
            H::SOURCE
        );
        assert_eq!(pages(h, &rig.api).await.len(), 2);
        rig.stop().await;
    }
}

pub async fn a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert<H: Helpdesk>(h: H) {
    for backend in backends() {
        let rig = Rig::new(h, backend, 10, |now| {
            vec![Rating::new(31, true, now - 5_000)]
        })
        .await;
        let rating = rig.state.lock().unwrap().ratings[0].clone();
        assert_eq!(
            h.post_webhook(&rig.app, &rating).await,
            200,
            "{} {backend:?}",
            H::SOURCE
        );
        assert_eq!(rig.posts().await, 1);
        let report = rig.poll().await.unwrap();
        assert_eq!(
            (report.ratings, report.new, report.changed, report.alerts),
            (1, 0, 0, 0),
            "{} {backend:?}",
            H::SOURCE
        );
        assert_eq!(rig.app.app.store.count_ratings().await.unwrap(), 1);
        assert!(rig.stored(&rating).await.is_some(), "{}", H::SOURCE);
        assert_eq!(rig.posts().await, 1, "{}: one alert", H::SOURCE);
        rig.stop().await;
    }
}

pub async fn a_rating_changed_inside_the_overlap_window_is_picked_up<H: Helpdesk>(h: H) {
    for backend in backends() {
        let rig = Rig::new(h, backend, 10, |now| {
            vec![Rating::new(41, false, now - 600_000)]
        })
        .await;
        let first = rig.state.lock().unwrap().ratings[0].clone();
        let first_poll_ms = rig.clock.now_ms();
        assert_eq!(rig.poll().await.unwrap().new, 1);
        // Five minutes later the customer turns it bad. Most APIs filter on
        // creation, so only the overlap finds it.
        rig.clock.advance(Duration::from_secs(300));
        {
            let mut state = rig.state.lock().unwrap();
            let r = &mut state.ratings[0];
            (r.bad, r.comment, r.modified_ms) =
                (true, "Actually no".into(), first.created_ms + 300_000);
        }
        let report = rig.poll().await.unwrap();
        assert_eq!(
            (report.changed, report.alerts),
            (1, 1),
            "{} {backend:?}",
            H::SOURCE
        );
        let second = pages(h, &rig.api).await.pop().unwrap();
        if let Some(start) = h.window_start_ms(&second) {
            assert_eq!(
                start,
                h.second_start_ms(&first, first_poll_ms),
                "{}",
                H::SOURCE
            );
        }
        let stored = rig.stored(&first).await.unwrap();
        assert_eq!(
            rig.app
                .app
                .store
                .rating_history(stored.id)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(rig.posts().await, 1);
        rig.stop().await;
    }
}

pub async fn a_backfill_records_everything_and_posts_nothing<H: Helpdesk>(h: H) {
    // Not a multiple of a page: a full last page costs one more (empty) read
    // where the API says nothing of more pages (Chatwoot).
    const TOTAL: usize = 510;
    let size = page_size(h, 100);
    for backend in backends() {
        // Recent ratings, a third bad: only "backfills never alert" keeps them quiet.
        let rig = Rig::new(h, backend, 100, |now| {
            (0..TOTAL as u64)
                .map(|i| {
                    Rating::new(
                        10_000 + i,
                        i % 3 == 0,
                        now - 2 * 3_600_000 + i as i64 * 1000,
                    )
                })
                .collect()
        })
        .await;
        let since = rig.clock.now_ms() - 365 * 24 * 3600 * 1000;
        let mut pages_seen = 0;
        let started = std::time::Instant::now();
        let report = rig.backfill(since, &mut |r| pages_seen = r.pages).await;
        let elapsed = started.elapsed();
        assert_eq!(
            (report.pages, report.new, report.alerts),
            (TOTAL.div_ceil(size), TOTAL, 0),
            "{} {backend:?}",
            H::SOURCE
        );
        assert_eq!(
            pages_seen, report.pages,
            "progress was reported after every page"
        );
        assert_eq!(
            rig.app.app.store.count_ratings().await.unwrap(),
            TOTAL as i64
        );
        assert_eq!(rig.posts().await, 0);
        assert!(rig.app.app.store.all_alerts().await.unwrap().is_empty());
        let again = rig.backfill(since, &mut |_| {}).await;
        assert_eq!(
            again.new,
            0,
            "{}: a finished backfill has nothing left",
            H::SOURCE
        );
        eprintln!(
            "{} backfill on {backend:?}: {TOTAL} ratings in {} pages, {elapsed:?} ({:.0}/s)",
            H::SOURCE,
            report.pages,
            TOTAL as f64 / elapsed.as_secs_f64()
        );
        rig.stop().await;
    }
}

/// One page of `items` from `offset`, `size` long, and the next page's
/// offset while more remain.
pub fn page_of<T: Clone>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Option<usize>) {
    let end = (offset + size).min(items.len());
    let page = items[offset.min(end)..end].to_vec();
    (page, (end < items.len()).then_some(end))
}

/// A query parameter of a request.
pub fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A header of a request, as text.
pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// `Basic base64(user:password)`.
pub fn basic(pair: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
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
