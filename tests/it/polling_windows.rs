//! The pollers whose helpdesk filters by a time window (`sources/cursor.rs`'s
//! `Window`): Freshdesk, Chatwoot, Gorgias and DevRev, against wiremock
//! servers that emulate each API's pagination, time filter and rate limit:
//! a multi-page first run, a restart that resumes from the saved cursor, a
//! 429 waited out, one rating (and one alert) whichever way it came, a
//! change inside the overlap window, and a backfill that never alerts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use csatwatch::clock::{Clock as _, ManualClock};
use csatwatch::sources::signature::hmac_sha256;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::*;

const TOKEN: &str = "poll-it-webhook-token";
const SECRET: &str = "poll-it-webhook-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Desk {
    Freshdesk,
    Chatwoot,
    Gorgias,
    DevRev,
}

/// One rating in the emulated helpdesk. `score` 0 is an unanswered survey.
#[derive(Debug, Clone)]
struct Item {
    id: u64,
    conversation: u64,
    score: i64,
    comment: String,
    created_ms: i64,
    modified_ms: i64,
}

impl Desk {
    fn source(self) -> &'static str {
        match self {
            Desk::Freshdesk => "fd",
            Desk::Chatwoot => "cw",
            Desk::Gorgias => "gg",
            Desk::DevRev => "dr",
        }
    }

    fn page_size(self) -> usize {
        if self == Desk::Chatwoot { 25 } else { 100 }
    }

    fn negative(self) -> i64 {
        if self == Desk::Freshdesk { -103 } else { 1 }
    }

    fn positive(self) -> i64 {
        if self == Desk::Freshdesk { 103 } else { 5 }
    }

    fn config(self, api: &str) -> String {
        let (kind, secret, keys) = match self {
            Desk::Freshdesk => ("freshdesk", TOKEN, "api_key = \"fd-api-key\"".to_string()),
            Desk::Chatwoot => (
                "chatwoot",
                SECRET,
                "token = \"cw-token\"\naccount_id = \"7\"".into(),
            ),
            Desk::Gorgias => (
                "gorgias",
                TOKEN,
                "email = \"ops@shop.example\"\napi_key = \"gg-key\"".into(),
            ),
            Desk::DevRev => ("devrev", SECRET, "token = \"dr-pat\"".into()),
        };
        format!(
            "[[sources]]\nname = \"{}\"\nkind = \"{kind}\"\nsecret = \"{secret}\"\npoll_interval = \"5m\"\npoll_requests_per_minute = 100000\n[sources.api]\nbase_url = \"{api}\"\nrequest_timeout = \"2s\"\n{keys}\n",
            self.source()
        )
    }

    /// The (conversation, rating key) the webhook source gives this item.
    fn key(self, item: &Item) -> (String, String) {
        let conversation = item.conversation.to_string();
        match self {
            Desk::Freshdesk => (conversation, item.id.to_string()),
            Desk::Chatwoot => (conversation, (item.id + 90_000).to_string()),
            Desk::Gorgias => (conversation, String::new()),
            Desk::DevRev => (
                format!("don:core:dvrv-us-1:devo/1abc:ticket/{}", item.conversation),
                format!("don:core:dvrv-us-1:devo/1abc:survey_response/{}", item.id),
            ),
        }
    }

    /// The item as the helpdesk's API renders it.
    fn render(self, item: &Item) -> Value {
        let score = (item.score != 0).then_some(item.score);
        match self {
            Desk::Freshdesk => json!({
                "id": item.id, "survey_id": 1, "user_id": 2, "agent_id": 17, "group_id": null,
                "ticket_id": item.conversation, "feedback": item.comment,
                "ratings": {"default_question": score},
                "created_at": rfc3339(item.created_ms), "updated_at": rfc3339(item.modified_ms),
            }),
            Desk::Chatwoot => json!({
                "id": item.id, "rating": score, "feedback_message": item.comment, "account_id": 7,
                "message_id": item.id + 90_000, "conversation_id": item.conversation,
                "contact": {"id": 55, "name": "Jordan Lee"},
                "assigned_agent": {"id": 12, "name": "Priya Raman"},
                "created_at": item.created_ms / 1000,
            }),
            Desk::Gorgias => json!({
                "id": item.id, "ticket_id": item.conversation, "customer_id": 777, "score": score,
                "body_text": item.comment, "created_datetime": gorgias_time(item.created_ms),
                "sent_datetime": gorgias_time(item.created_ms),
                "scored_datetime": score.map(|_| gorgias_time(item.modified_ms)),
                "meta": null, "uri": format!("/api/satisfaction-surveys/{}/", item.id),
            }),
            Desk::DevRev => {
                let (object, id) = self.key(item);
                json!({
                    "id": id, "display_id": format!("SURVEY-RESP-{}", item.id), "object": object,
                    "survey": "don:core:dvrv-us-1:devo/1abc:survey/3",
                    "recipient": {"display_name": "Jordan Lee"},
                    "response": {"rating": score, "comment": item.comment}, "response_score": score,
                    "created_date": rfc3339(item.created_ms), "modified_date": rfc3339(item.modified_ms),
                    "stage": "responded",
                })
            }
        }
    }

    /// The webhook delivery of `item`, with its authentication headers.
    fn webhook(self, item: &Item, now_ms: i64) -> (Vec<(String, String)>, Vec<u8>) {
        let token = vec![("X-Csatwatch-Token".to_string(), TOKEN.to_string())];
        match self {
            // The recommended rule body: the ticket only; the app fetches.
            Desk::Freshdesk => (token, json!({"csatwatch": 1, "ticket": {"id": item.conversation.to_string()}}).to_string().into_bytes()),
            Desk::Gorgias => (token, json!({
                "csatwatch": 1, "ticket": {"id": item.conversation.to_string()},
                "satisfaction_survey": {"id": item.id.to_string(), "score": item.score.to_string(),
                    "body_text": item.comment, "scored_datetime": gorgias_time(item.modified_ms)},
            }).to_string().into_bytes()),
            Desk::Chatwoot => {
                let body = json!({
                    "event": "message_updated", "id": item.id + 90_000, "content_type": "input_csat",
                    "content_attributes": {"submitted_values": {"csat_survey_response": {
                        "rating": item.score, "feedback_message": item.comment}}},
                    "account": {"id": 7},
                    "conversation": {"id": 12_345, "display_id": item.conversation},
                }).to_string().into_bytes();
                let ts = (now_ms / 1000).to_string();
                let mac = hmac_sha256(SECRET.as_bytes(), &[ts.as_bytes(), b".", &body]);
                (vec![
                    ("X-Chatwoot-Signature".into(), format!("sha256={}", hex::encode(mac))),
                    ("X-Chatwoot-Timestamp".into(), ts),
                    ("X-Chatwoot-Delivery".into(), uuid::Uuid::new_v4().to_string()),
                ], body)
            }
            Desk::DevRev => {
                let body = json!({
                    "id": format!("evt-{}", item.id), "webhook_id": "wh", "timestamp": rfc3339(now_ms),
                    "type": "survey_response_created",
                    "survey_response_created": {"survey_response": self.render(item)},
                }).to_string().into_bytes();
                let mac = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(SECRET.as_bytes(), &[&body]));
                (vec![("X-DevRev-Signature".into(), mac)], body)
            }
        }
    }
}

fn rfc3339(ms: i64) -> String {
    csatwatch::sources::http_api::rfc3339(ms)
}

/// Gorgias writes times without a zone: `2026-11-23T14:00:00.000000`.
fn gorgias_time(ms: i64) -> String {
    format!("{}.000000", rfc3339(ms).trim_end_matches('Z'))
}

fn ms(text: &str) -> i64 {
    csatwatch::sources::json::time_ms(text).unwrap()
}

/// The emulated helpdesk's state, shared with its responder.
#[derive(Clone, Default)]
struct State {
    items: Arc<Mutex<Vec<Item>>>,
    /// Answer this many requests with 429 and the helpdesk's retry header.
    throttle: Arc<AtomicUsize>,
    /// Fail every page but the first with a 500 (a dying connection).
    broken: Arc<AtomicBool>,
    /// The offset of every list page served.
    offsets: Arc<Mutex<Vec<usize>>>,
    /// DevRev: report only this many requests left in the window.
    nearly_spent: Arc<AtomicBool>,
}

struct Api {
    desk: Desk,
    state: State,
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let desk = self.desk;
        let state = &self.state;
        if state.throttle.load(Ordering::SeqCst) > 0 {
            state.throttle.fetch_sub(1, Ordering::SeqCst);
            let header = if desk == Desk::Gorgias {
                "Retry-after"
            } else {
                "Retry-After"
            };
            return ResponseTemplate::new(429).insert_header(header, "1");
        }
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string())
        };
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut items = state.items.lock().unwrap().clone();
        // The per-ticket endpoint a Freshdesk webhook fetches from.
        if let Some(ticket) = request.url.path().strip_prefix("/api/v2/tickets/") {
            let ticket: u64 = ticket.split('/').next().unwrap().parse().unwrap();
            let found: Vec<Value> = items
                .iter()
                .filter(|i| i.conversation == ticket)
                .map(|i| desk.render(i))
                .collect();
            return ResponseTemplate::new(200).set_body_json(found);
        }
        // Each API's filter and order, as documented.
        match desk {
            Desk::Freshdesk => {
                let since = ms(&query("created_since").expect("created_since"));
                items.retain(|i| i.created_ms >= since);
                items.sort_by_key(|i| i.created_ms);
            }
            Desk::Chatwoot => {
                if let (Some(since), Some(until)) = (query("since"), query("until")) {
                    let (since, until): (i64, i64) =
                        (since.parse().unwrap(), until.parse().unwrap());
                    items.retain(|i| (since..=until).contains(&(i.created_ms / 1000)));
                }
                items.sort_by_key(|i| i.created_ms);
            }
            Desk::Gorgias => items.sort_by_key(|i| std::cmp::Reverse(i.created_ms)),
            Desk::DevRev => {
                let after = ms(body["modified_date"]["after"]
                    .as_str()
                    .expect("modified_date.after"));
                let before = ms(body["modified_date"]["before"]
                    .as_str()
                    .expect("modified_date.before"));
                items.retain(|i| (after..=before).contains(&i.modified_ms));
                items.sort_by_key(|i| i.modified_ms);
            }
        }
        let size = desk.page_size();
        let offset = match desk {
            Desk::Freshdesk | Desk::Chatwoot => {
                (query("page").map_or(1, |p| p.parse::<usize>().unwrap()) - 1) * size
            }
            Desk::Gorgias => query("cursor").map_or(0, |c| c[1..].parse().unwrap()),
            Desk::DevRev => body["cursor"]
                .as_str()
                .map_or(0, |c| c[1..].parse().unwrap()),
        };
        state.offsets.lock().unwrap().push(offset);
        if offset > 0 && state.broken.load(Ordering::SeqCst) {
            return ResponseTemplate::new(500);
        }
        let end = (offset + size).min(items.len());
        let page: Vec<Value> = items[offset.min(end)..end]
            .iter()
            .map(|i| desk.render(i))
            .collect();
        let next = (end < items.len()).then(|| format!("o{end}"));
        match desk {
            Desk::Freshdesk => {
                let mut response = ResponseTemplate::new(200)
                    .set_body_json(page)
                    .insert_header("X-RateLimit-Remaining", "199");
                if next.is_some() {
                    let link = format!(
                        "<{}?page={}&per_page=100>; rel=\"next\"",
                        request.url.path(),
                        end / size + 1
                    );
                    response = response.insert_header("Link", link.as_str());
                }
                response
            }
            Desk::Chatwoot => ResponseTemplate::new(200).set_body_json(page),
            Desk::Gorgias => ResponseTemplate::new(200)
                .set_body_json(
                    json!({"data": page, "meta": {"next_cursor": next, "prev_cursor": null}}),
                )
                .insert_header("X-Gorgias-Account-Api-Call-Limit", "1/40"),
            Desk::DevRev => ResponseTemplate::new(200)
                .set_body_json(json!({"survey_responses": page, "next_cursor": next}))
                .insert_header(
                    "X-Ratelimit-Remaining",
                    if self.state.nearly_spent.load(Ordering::Relaxed) {
                        "1"
                    } else {
                        "99"
                    },
                ),
        }
    }
}

/// A test's world: the app, its database, Slack and the helpdesk.
struct Rig {
    desk: Desk,
    app: TestApp,
    api: MockServer,
    slack: MockServer,
    state: State,
    db: TestDatabase,
    clock: ManualClock,
}

impl Rig {
    async fn new(desk: Desk, backend: Backend) -> Rig {
        let (db, api, slack) = (
            TestDatabase::new(backend).await,
            MockServer::start().await,
            slack_ok().await,
        );
        let state = State::default();
        Mock::given(path_regex("^/(api/|surveys)"))
            .respond_with(Api {
                desk,
                state: state.clone(),
            })
            .mount(&api)
            .await;
        let clock = ManualClock::starting_now();
        let app = spawn(desk, &api, &slack, &db, &clock).await;
        Rig {
            desk,
            app,
            api,
            slack,
            state,
            db,
            clock,
        }
    }

    /// `n` ratings created a second apart from `start_ms`, every third negative.
    fn add(&self, n: usize, start_ms: i64) -> Vec<Item> {
        let mut items = self.state.items.lock().unwrap();
        let first = items.len() as u64;
        let added: Vec<Item> = (0..n as u64)
            .map(|i| Item {
                id: 1_000 + first + i,
                conversation: 500 + first + i,
                score: if (first + i).is_multiple_of(3) {
                    self.desk.negative()
                } else {
                    self.desk.positive()
                },
                comment: String::new(),
                created_ms: start_ms + i as i64 * 1000,
                modified_ms: start_ms + i as i64 * 1000,
            })
            .collect();
        items.extend(added.iter().cloned());
        added
    }

    async fn poll(&self) -> Result<csatwatch::polling::PollReport, csatwatch::polling::PollError> {
        poll(&self.app, self.desk).await
    }

    async fn posts(&self) -> usize {
        self.app.app.flush_alerts().await.unwrap();
        slack_posts(&self.slack).await.len()
    }
}

async fn spawn(
    desk: Desk,
    api: &MockServer,
    slack: &MockServer,
    db: &TestDatabase,
    clock: &ManualClock,
) -> TestApp {
    TestApp::spawn(
        // Storm control off: these tests count individual posts.
        settings(
            &db.url,
            Some(&slack.uri()),
            &format!("[alerts.storm]\nthreshold = 0\n{}", desk.config(&api.uri())),
        ),
        clock.clone(),
    )
    .await
}

async fn poll(
    app: &TestApp,
    desk: Desk,
) -> Result<csatwatch::polling::PollReport, csatwatch::polling::PollError> {
    let source = &app.app.sources.get(desk.source()).unwrap();
    app.app
        .pollers
        .poll_once(source, &CancellationToken::new())
        .await
}

/// The auth header each helpdesk expects.
fn assert_auth(desk: Desk, request: &Request) {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let b64 = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    match desk {
        Desk::Freshdesk => assert_eq!(header("authorization"), Some(b64("fd-api-key:X"))),
        Desk::Chatwoot => {
            assert_eq!(header("api_access_token").as_deref(), Some("cw-token"));
            assert_eq!(
                request.url.path(),
                "/api/v1/accounts/7/csat_survey_responses"
            );
        }
        Desk::Gorgias => assert_eq!(
            header("authorization"),
            Some(b64("ops@shop.example:gg-key"))
        ),
        Desk::DevRev => {
            assert_eq!(header("authorization").as_deref(), Some("Bearer dr-pat"));
            assert_eq!(request.method.as_str(), "POST");
        }
    }
}

async fn a_first_poll_reads_every_page_and_alerts_recent_negatives(desk: Desk) {
    for backend in backends() {
        let rig = Rig::new(desk, backend).await;
        let now = rig.clock.now_ms();
        // Older than the first window (alerts.max_age): never read.
        rig.add(1, now - 5 * 24 * 3600 * 1000);
        let size = desk.page_size();
        let recent = rig.add(2 * size + 3, now - 3_600_000);
        let negatives = recent.iter().filter(|i| i.score == desk.negative()).count();
        if desk == Desk::Gorgias {
            // A survey sent but not answered carries no rating.
            let unanswered = rig.add(1, now - 60_000);
            rig.state
                .items
                .lock()
                .unwrap()
                .iter_mut()
                .find(|i| i.id == unanswered[0].id)
                .unwrap()
                .score = 0;
        }
        let report = rig.poll().await.unwrap();
        assert_eq!(
            (report.pages, report.new, report.alerts),
            (3, recent.len(), negatives),
            "{desk:?} {backend:?}"
        );
        assert_eq!(
            rig.app.app.store.count_ratings().await.unwrap(),
            recent.len() as i64
        );
        assert_auth(desk, &rig.api.received_requests().await.unwrap()[0]);
        assert_eq!(rig.posts().await, negatives);
        rig.app.stop().await;
    }
}

async fn a_restart_mid_way_resumes_from_the_saved_cursor(desk: Desk) {
    for backend in backends() {
        let rig = Rig::new(desk, backend).await;
        let items = rig.add(desk.page_size() + 5, rig.clock.now_ms() - 3_600_000);
        rig.state.broken.store(true, Ordering::SeqCst);
        assert!(
            rig.poll().await.is_err(),
            "{desk:?}: the second page failed"
        );
        let Rig {
            app,
            api,
            slack,
            state,
            db,
            clock,
            ..
        } = rig;
        app.stop().await;
        state.broken.store(false, Ordering::SeqCst);
        state.offsets.lock().unwrap().clear();
        // The first process died holding its lease; the next takes over once it runs out.
        clock.advance(Duration::from_secs(181));
        let app = spawn(desk, &api, &slack, &db, &clock).await;
        let report = poll(&app, desk).await.unwrap();
        assert_eq!(
            (report.pages, report.new),
            (1, 5),
            "{desk:?} {backend:?}: resumed at page 2"
        );
        assert!(
            !state.offsets.lock().unwrap().contains(&0),
            "{desk:?}: page 1 was not read again"
        );
        assert_eq!(
            app.app.store.count_ratings().await.unwrap(),
            items.len() as i64
        );
        app.stop().await;
    }
}

async fn a_429_with_the_retry_header_is_waited_out(desk: Desk) {
    for backend in backends() {
        let rig = Rig::new(desk, backend).await;
        rig.add(1, rig.clock.now_ms() - 60_000);
        rig.state.throttle.store(1, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let report = rig.poll().await.unwrap();
        assert_eq!(report.new, 1, "{desk:?} {backend:?}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{desk:?}: it waited as asked"
        );
        assert_eq!(rig.api.received_requests().await.unwrap().len(), 2);
        rig.app.stop().await;
    }
}

async fn a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert(desk: Desk) {
    for backend in backends() {
        let rig = Rig::new(desk, backend).await;
        let now = rig.clock.now_ms();
        let mut item = rig.add(1, now - 120_000).remove(0);
        item.score = desk.negative();
        item.comment = "Nobody answered".into();
        *rig.state.items.lock().unwrap() = vec![item.clone()];
        let (headers, body) = desk.webhook(&item, now);
        let (status, answer) = rig.app.post(desk.source(), &headers, &body).await;
        assert_eq!(status, 200, "{desk:?} {backend:?}: {answer}");
        assert_eq!(rig.posts().await, 1);
        let report = rig.poll().await.unwrap();
        assert_eq!(
            (report.ratings, report.new, report.changed, report.alerts),
            (1, 0, 0, 0),
            "{desk:?} {backend:?}"
        );
        assert_eq!(rig.app.app.store.count_ratings().await.unwrap(), 1);
        let (conversation, key) = desk.key(&item);
        assert!(
            rig.app
                .app
                .store
                .rating(desk.source(), &conversation, &key)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(rig.posts().await, 1, "{desk:?}: one alert");
        rig.app.stop().await;
    }
}

async fn a_rating_changed_inside_the_overlap_window_is_picked_up(desk: Desk) {
    for backend in backends() {
        let rig = Rig::new(desk, backend).await;
        let now = rig.clock.now_ms();
        let mut item = rig.add(1, now - 600_000).remove(0);
        item.score = desk.positive();
        *rig.state.items.lock().unwrap() = vec![item.clone()];
        assert_eq!(rig.poll().await.unwrap().new, 1);
        // Five minutes later the customer changes it to negative. The API
        // filters on creation (except DevRev), so only the overlap finds it.
        rig.clock.advance(Duration::from_secs(300));
        {
            let mut items = rig.state.items.lock().unwrap();
            items[0].score = desk.negative();
            items[0].comment = "Actually no".into();
            items[0].modified_ms = rig.clock.now_ms();
        }
        let report = rig.poll().await.unwrap();
        assert_eq!(
            (report.changed, report.alerts),
            (1, 1),
            "{desk:?} {backend:?}"
        );
        let (conversation, key) = desk.key(&item);
        let store = &rig.app.app.store;
        let rating = store
            .rating(desk.source(), &conversation, &key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.rating_history(rating.id).await.unwrap().len(), 2);
        assert_eq!(rig.posts().await, 1);
        rig.app.stop().await;
    }
}

async fn a_backfill_records_everything_and_posts_nothing(desk: Desk) {
    for backend in backends() {
        let rig = Rig::new(desk, backend).await;
        let now = rig.clock.now_ms();
        // Not a multiple of a page: a full last page costs one more (empty) read
        // where the API says nothing of more pages (Chatwoot).
        const TOTAL: usize = 510;
        // Recent ratings, so only "a backfill never alerts" keeps them quiet.
        rig.add(TOTAL, now - 2 * 3_600_000);
        let source = &rig.app.app.sources.get(desk.source()).unwrap();
        let since = now - 365 * 24 * 3600 * 1000;
        let started = std::time::Instant::now();
        let report = rig
            .app
            .app
            .pollers
            .backfill(source, since, None, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(
            (report.new, report.alerts),
            (TOTAL, 0),
            "{desk:?} {backend:?}"
        );
        assert_eq!(report.pages, TOTAL.div_ceil(desk.page_size()));
        assert_eq!(
            rig.app.app.store.count_ratings().await.unwrap(),
            TOTAL as i64
        );
        assert_eq!(rig.posts().await, 0);
        assert!(rig.app.app.store.all_alerts().await.unwrap().is_empty());
        let again = rig
            .app
            .app
            .pollers
            .backfill(source, since, None, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            again.new, 0,
            "{desk:?}: a finished backfill has nothing left"
        );
        eprintln!(
            "backfill {desk:?} on {backend:?}: {TOTAL} ratings in {elapsed:?} ({:.0}/s)",
            TOTAL as f64 / elapsed.as_secs_f64()
        );
        rig.app.stop().await;
    }
}

macro_rules! per_helpdesk {
    ($scenario:ident: $($name:ident => $desk:expr),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $scenario($desk).await
            }
        )+
    };
}

per_helpdesk!(a_first_poll_reads_every_page_and_alerts_recent_negatives:
    freshdesk_a_first_poll_reads_every_page_and_alerts_recent_negatives => Desk::Freshdesk,
    chatwoot_a_first_poll_reads_every_page_and_alerts_recent_negatives => Desk::Chatwoot,
    gorgias_a_first_poll_reads_every_page_and_alerts_recent_negatives => Desk::Gorgias,
    devrev_a_first_poll_reads_every_page_and_alerts_recent_negatives => Desk::DevRev,
);
per_helpdesk!(a_restart_mid_way_resumes_from_the_saved_cursor:
    freshdesk_a_restart_mid_way_resumes_from_the_saved_cursor => Desk::Freshdesk,
    chatwoot_a_restart_mid_way_resumes_from_the_saved_cursor => Desk::Chatwoot,
    gorgias_a_restart_mid_way_resumes_from_the_saved_cursor => Desk::Gorgias,
    devrev_a_restart_mid_way_resumes_from_the_saved_cursor => Desk::DevRev,
);
per_helpdesk!(a_429_with_the_retry_header_is_waited_out:
    freshdesk_a_429_with_retry_after_is_waited_out => Desk::Freshdesk,
    chatwoot_a_429_with_retry_after_is_waited_out => Desk::Chatwoot,
    gorgias_a_429_with_retry_after_is_waited_out => Desk::Gorgias,
    devrev_a_429_with_retry_after_is_waited_out => Desk::DevRev,
);
per_helpdesk!(a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert:
    freshdesk_a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert => Desk::Freshdesk,
    chatwoot_a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert => Desk::Chatwoot,
    gorgias_a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert => Desk::Gorgias,
    devrev_a_rating_seen_by_webhook_and_by_poll_is_one_rating_and_one_alert => Desk::DevRev,
);
per_helpdesk!(a_rating_changed_inside_the_overlap_window_is_picked_up:
    freshdesk_a_rating_changed_inside_the_overlap_window_is_picked_up => Desk::Freshdesk,
    chatwoot_a_rating_changed_inside_the_overlap_window_is_picked_up => Desk::Chatwoot,
    gorgias_a_rating_changed_inside_the_overlap_window_is_picked_up => Desk::Gorgias,
    devrev_a_rating_changed_inside_the_overlap_window_is_picked_up => Desk::DevRev,
);
per_helpdesk!(a_backfill_records_everything_and_posts_nothing:
    freshdesk_a_backfill_records_everything_and_posts_nothing => Desk::Freshdesk,
    chatwoot_a_backfill_records_everything_and_posts_nothing => Desk::Chatwoot,
    gorgias_a_backfill_records_everything_and_posts_nothing => Desk::Gorgias,
    devrev_a_backfill_records_everything_and_posts_nothing => Desk::DevRev,
);

#[tokio::test]
async fn a_freshdesk_rule_body_with_the_rating_but_no_id_is_fetched_so_the_poll_finds_the_same_rating()
 {
    for backend in backends() {
        let rig = Rig::new(Desk::Freshdesk, backend).await;
        let mut item = rig.add(1, rig.clock.now_ms() - 60_000).remove(0);
        item.score = -103;
        *rig.state.items.lock().unwrap() = vec![item.clone()];
        // Freshdesk renders the value, not the rating's id: keyed by
        // nothing, it would be a second rating beside the polled one.
        let body =
            json!({"ticket": {"id": item.conversation.to_string()}, "rating": {"value": "-103"}});
        let headers = vec![("X-Csatwatch-Token".to_string(), TOKEN.to_string())];
        let (status, answer) = rig
            .app
            .post("fd", &headers, body.to_string().as_bytes())
            .await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        let report = rig.poll().await.unwrap();
        assert_eq!((report.new, report.alerts), (0, 0), "{backend:?}");
        assert_eq!(rig.app.app.store.count_ratings().await.unwrap(), 1);
        assert_eq!(rig.posts().await, 1);
        rig.app.stop().await;
    }
}

#[tokio::test]
async fn a_nearly_spent_rate_limit_slows_the_poller_between_pages() {
    let rig = Rig::new(Desk::DevRev, Backend::Sqlite).await;
    rig.add(Desk::DevRev.page_size() + 5, rig.clock.now_ms() - 3_600_000);
    rig.state.nearly_spent.store(true, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let report = rig.poll().await.unwrap();
    assert_eq!(report.pages, 2);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(10),
        "the second page waited: the helpdesk said its window was nearly spent"
    );
    rig.app.stop().await;
}
