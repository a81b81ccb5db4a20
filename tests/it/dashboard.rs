//! The dashboard: access (tokens, session cookies, login CSRF), security
//! headers, escaping of customer text, and the negatives queue, on each
//! backend against the running app.

use std::time::Duration;

use csatwatch::clock::{Clock, ManualClock};
use csatwatch::store::{
    HistoryRecord, QueueFilter, QueueRow, RatingAction, RatingFilter, RatingRecord, Store,
};

use crate::support::{Backend, TestApp, TestDatabase, backends, settings};

pub const TOKEN: &str = "lead-token-0123456789abcdef";
pub const ACCESS_TOML: &str = r#"
[[api.tokens]]
name = "lead"
token = "lead-token-0123456789abcdef"

[[api.tokens]]
name = "ops"
token = "ops-token-0123456789abcdef"

[dashboard]
session_ttl = "1h"
"#;

/// A rating to seed straight into the store (as the pipeline writes it).
#[derive(Debug, Clone)]
pub struct Seed {
    pub conversation: String,
    pub scale: &'static str,
    pub score: i64,
    pub sentiment: &'static str,
    pub comment: Option<String>,
    pub agent: &'static str,
    pub team: &'static str,
    pub rated_at: i64,
}

impl Seed {
    pub fn negative(conversation: &str, rated_at: i64) -> Seed {
        Seed {
            conversation: conversation.to_string(),
            scale: "five_point",
            score: 1,
            sentiment: "negative",
            comment: Some("Nobody answered".into()),
            agent: "Sam",
            team: "Billing",
            rated_at,
        }
    }

    fn record(&self) -> RatingRecord {
        RatingRecord {
            source: "zendesk".into(),
            conversation_id: self.conversation.clone(),
            rating_key: "csat".into(),
            survey: match self.scale {
                "nps" => "nps",
                "ces" => "ces",
                _ => "csat",
            }
            .into(),
            scale: self.scale.into(),
            score: self.score,
            normalised: 0.0,
            sentiment: self.sentiment.into(),
            comment: self.comment.clone(),
            agent: Some(self.agent.into()),
            team: Some(self.team.into()),
            customer: Some("Jane Customer".into()),
            company: None,
            brand: None,
            tags: "[]".into(),
            url: Some(format!(
                "https://acme.zendesk.com/agent/tickets/{}",
                self.conversation
            )),
            rated_at: self.rated_at,
            updated_at: self.rated_at,
        }
    }
}

/// Writes `seed` as revision 1 and returns its id.
pub async fn seed(store: &Store, seed: &Seed) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let r = seed.record();
    let id = tx.insert_rating(&r, seed.rated_at).await.unwrap().unwrap();
    tx.insert_history(&history(id, 1, &r)).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// Writes a new version of rating `id`.
pub async fn change(store: &Store, id: i64, revision: i64, seed: &Seed) {
    let mut tx = store.begin().await.unwrap();
    let r = seed.record();
    let current = tx
        .lock_rating(&r.source, &r.conversation_id, &r.rating_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.id, id);
    tx.update_rating(&current, &r, revision, seed.rated_at)
        .await
        .unwrap();
    tx.insert_history(&history(id, revision, &r)).await.unwrap();
    tx.commit().await.unwrap();
}

/// Records an acknowledgement or follow-up as the Slack buttons do.
pub async fn act(store: &Store, id: i64, action: RatingAction, who: &str, at: i64) {
    let mut tx = store.begin().await.unwrap();
    tx.record_rating_action(id, action, "U1", Some(who), at)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn history(id: i64, revision: i64, r: &RatingRecord) -> HistoryRecord {
    HistoryRecord {
        rating_id: id,
        revision,
        score: r.score,
        sentiment: r.sentiment.clone(),
        comment: r.comment.clone(),
        updated_at: r.updated_at,
        recorded_at: r.updated_at,
        via: "webhook".into(),
        delivery_id: None,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn spawn(db: &TestDatabase, extra: &str) -> TestApp {
    TestApp::spawn(settings(&db.url, None, extra), ManualClock::starting_now()).await
}

/// Signs in through the form and returns the cookie pair `name=value`.
pub async fn sign_in(app: &TestApp, token: &str) -> String {
    let response = no_redirects()
        .post(app.url("/dashboard/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", token), ("next", "/dashboard/negatives")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/dashboard/negatives");
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    set.split(';').next().unwrap().to_string()
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut request = no_redirects().get(app.url(path));
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The overview of `since`..`until` for a signed-in `cookie`, which must
/// answer 200 and show every one of `texts`.
async fn overview_shows(
    backend: Backend,
    app: &TestApp,
    cookie: &str,
    since: impl std::fmt::Display,
    until: impl std::fmt::Display,
    texts: &[&str],
) -> String {
    let (status, body) = get(
        app,
        &format!("/dashboard?since={since}&until={until}"),
        Some(cookie),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for text in texts {
        assert!(
            body.contains(text),
            "{backend:?}: {text:?} on the overview: {body}"
        );
    }
    body
}

#[tokio::test]
async fn the_dashboard_is_off_and_says_so_without_tokens() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, "").await;
        for path in ["/dashboard", "/dashboard/negatives", "/dashboard/login"] {
            let (status, body) = get(&app, path, None).await;
            assert_eq!(status, 404, "{backend:?} {path}");
            assert!(body.contains("The dashboard is off"), "{body}");
            assert!(body.contains("[[api.tokens]]"));
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn requests_without_a_session_or_a_valid_token_are_refused() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let id = seed(&app.app.store, &Seed::negative("1", app.clock.now_ms())).await;
        let (status, _) = get(&app, "/", None).await;
        assert_eq!(status, 303, "/ sends to the dashboard");
        for path in [
            "/dashboard".to_string(),
            "/dashboard/negatives?format=csv".to_string(),
            format!("/dashboard/ratings/{id}"),
        ] {
            let (status, body) = get(&app, &path, None).await;
            assert_eq!(status, 401, "{backend:?} {path}");
            assert!(body.contains("name=\"token\""), "the login form: {body}");
            assert!(!body.contains("Nobody answered"));
            let wrong = no_redirects()
                .get(app.url(&path))
                .bearer_auth("lead-token-0123456789abcdeX")
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), 401, "{path}");
            let right = no_redirects()
                .get(app.url(&path))
                .bearer_auth("ops-token-0123456789abcdef")
                .send()
                .await
                .unwrap();
            assert_eq!(right.status(), 200, "{path}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn signing_in_gives_a_strict_http_only_cookie_and_signing_out_ends_it() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let bad = no_redirects()
            .post(app.url("/dashboard/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", "not-a-token-at-all")]))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
        assert!(bad.headers().get("set-cookie").is_none());

        let response = no_redirects()
            .post(app.url("/dashboard/login"))
            .header("x-forwarded-proto", "https")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", TOKEN), ("next", "https://evil.example/")]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(
            response.headers()["location"],
            "/dashboard",
            "no open redirect"
        );
        let set = response.headers()["set-cookie"].to_str().unwrap();
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=3600",
            "Secure",
        ] {
            assert!(set.contains(attribute), "{attribute} in {set}");
        }
        let cookie = sign_in(&app, TOKEN).await;
        let (status, body) = get(&app, "/dashboard", Some(&cookie)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("lead"), "the viewer's token name is shown");

        let out = no_redirects()
            .post(app.url("/dashboard/logout"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 303);
        assert!(
            out.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_forged_or_expired_session_cookie_is_refused() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let cookie = sign_in(&app, TOKEN).await;
        let value = cookie.split_once('=').unwrap().1.to_string();
        let parts: Vec<&str> = value.split('.').collect();
        assert_eq!(parts.len(), 3, "{value}");
        let forged = [
            // A later expiry with the old signature.
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1].parse::<i64>().unwrap() + 86_400_000,
                parts[2]
            ),
            // Another token's name ("ops") with lead's signature.
            format!("b3Bz.{}.{}", parts[1], parts[2]),
            // A made-up signature.
            format!("{}.{}.{}", parts[0], parts[1], "0".repeat(64)),
            "garbage".to_string(),
        ];
        for f in &forged {
            let (status, _) =
                get(&app, "/dashboard", Some(&format!("csatwatch_session={f}"))).await;
            assert_eq!(status, 401, "{backend:?} {f}");
        }
        let (status, _) = get(&app, "/dashboard", Some(&cookie)).await;
        assert_eq!(status, 200);
        app.clock.advance(Duration::from_secs(3601));
        let (status, _) = get(&app, "/dashboard", Some(&cookie)).await;
        assert_eq!(status, 401, "{backend:?}: expired after session_ttl");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let db = TestDatabase::new(backends()[0]).await;
    let app = spawn(&db, ACCESS_TOML).await;
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = no_redirects()
            .post(app.url("/dashboard/login"))
            .header(header, value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", TOKEN)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}");
        assert!(response.headers().get("set-cookie").is_none());
    }
    app.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let db = TestDatabase::new(backends()[0]).await;
    let app = spawn(&db, ACCESS_TOML).await;
    let cookie = sign_in(&app, TOKEN).await;
    for path in [
        "/dashboard",
        "/dashboard/login",
        "/dashboard/assets/app.css",
    ] {
        let response = no_redirects()
            .get(app.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    app.stop().await;
}

#[tokio::test]
async fn customer_text_with_html_renders_as_text() {
    const EVIL: &str = "<script>alert('x')</script><img src=x onerror=alert(1)> & \"quoted\"";
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let mut s = Seed::negative("<b>42</b>", app.clock.now_ms() - 60_000);
        s.comment = Some(EVIL.into());
        let id = seed(&app.app.store, &s).await;
        let cookie = sign_in(&app, TOKEN).await;
        for path in [
            "/dashboard/negatives".to_string(),
            format!("/dashboard/ratings/{id}"),
        ] {
            let (status, body) = get(&app, &path, Some(&cookie)).await;
            assert_eq!(status, 200, "{path}");
            assert!(
                !body.contains("<script>alert"),
                "{backend:?} {path}: {body}"
            );
            assert!(!body.contains("<img src=x"), "{path}");
            assert!(!body.contains("<b>42</b>"), "{path}");
            assert!(
                body.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;")
                    || body.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
                    || body.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"),
                "{path}: the comment is shown, escaped: {body}"
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn the_queue_shows_each_state_oldest_unhandled_first_and_filters_by_state() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let store = &app.app.store;
        let now = app.clock.now_ms();
        let hour = 3_600_000;
        let followed = seed(store, &Seed::negative("f-oldest", now - 90 * hour)).await;
        act(
            store,
            followed,
            RatingAction::FollowUp,
            "Fay",
            now - 80 * hour,
        )
        .await;
        let acked = seed(store, &Seed::negative("a-middle", now - 50 * hour)).await;
        act(
            store,
            acked,
            RatingAction::Acknowledge,
            "Ann",
            now - 40 * hour,
        )
        .await;
        let fresh = seed(store, &Seed::negative("n-newest", now - hour)).await;
        let old_new = seed(store, &Seed::negative("n-old", now - 70 * hour)).await;
        let recovered = seed(store, &Seed::negative("r-changed", now - 60 * hour)).await;
        let mut positive = Seed::negative("r-changed", now - 60 * hour);
        (positive.score, positive.sentiment) = (5, "positive");
        change(store, recovered, 2, &positive).await;
        let mut happy = Seed::negative("p-happy", now - 2 * hour);
        (happy.score, happy.sentiment) = (5, "positive");
        seed(store, &happy).await;
        let mut long_ago = Seed::negative("x-old", now - 40 * 24 * hour);
        long_ago.comment = None;
        seed(store, &long_ago).await;

        let cookie = sign_in(&app, TOKEN).await;
        let (status, body) = get(&app, "/dashboard/negatives", Some(&cookie)).await;
        assert_eq!(status, 200);
        let order: Vec<usize> = [old_new, acked, fresh, followed, recovered]
            .iter()
            .map(|id| {
                body.find(&format!("/dashboard/ratings/{id}\""))
                    .expect("listed")
            })
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{backend:?} order {order:?}"
        );
        assert!(!body.contains("p-happy") && !body.contains("x-old"));
        assert!(body.contains("5 in "), "{body}");
        for label in ["New", "Acknowledged", "Followed up", "Recovered"] {
            assert!(body.contains(&format!(">{label}</span>")), "{label}");
        }
        assert!(body.contains("acknowledged by Ann") && body.contains("followed up by Fay"));

        let (_, only_new) = get(&app, "/dashboard/negatives?state=new", Some(&cookie)).await;
        assert!(only_new.contains(&format!("/dashboard/ratings/{fresh}\"")));
        assert!(only_new.contains(&format!("/dashboard/ratings/{old_new}\"")));
        assert!(!only_new.contains(&format!("/dashboard/ratings/{acked}\"")));
        let (status, bad) = get(&app, "/dashboard/negatives?since=yesterday", Some(&cookie)).await;
        assert_eq!(status, 400);
        assert!(bad.contains("since must be a date"));

        let (status, csv) = get(
            &app,
            "/dashboard/negatives?state=new&team=Billing&format=csv",
            Some(&cookie),
        )
        .await;
        assert_eq!(status, 200);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].starts_with("rating_id,state,rated_at"));
        assert!(lines[1].starts_with(&format!("{old_new},new,")), "{csv}");
        assert!(lines[2].starts_with(&format!("{fresh},new,")), "{csv}");

        let (status, page) = get(
            &app,
            &format!("/dashboard/ratings/{recovered}"),
            Some(&cookie),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            page.contains("1/5") && page.contains("5/5"),
            "both versions: {page}"
        );
        let (status, _) = get(&app, "/dashboard/ratings/999999", Some(&cookie)).await;
        assert_eq!(status, 404);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_overview_shows_the_reports_figures_for_the_filtered_period() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let store = &app.app.store;
        let now = app.clock.now_ms();
        let hour = 3_600_000;
        let rating = |n: &str, scale: &'static str, score: i64, team: &'static str, at: i64| {
            let mut s = Seed::negative(n, at);
            (s.scale, s.score, s.team) = (scale, score, team);
            s.sentiment = match (scale, score) {
                ("five_point", 1..=2) | ("nps", 0..=6) | ("ces", 1..=3) => "negative",
                ("five_point", 3) | ("nps", 7..=8) | ("ces", 4) => "neutral",
                _ => "positive",
            };
            s
        };
        // This week: CSAT 4 of 5 positive (Billing 2 of 3, Returns 2 of 2),
        // NPS 10, 9, 3 (+33), CES 7 and 5 (6.00); two negatives, one followed up.
        let mut negative = 0;
        for (i, (scale, score, team)) in [
            ("five_point", 5, "Billing"),
            ("five_point", 4, "Billing"),
            ("five_point", 2, "Billing"),
            ("five_point", 5, "Returns"),
            ("five_point", 5, "Returns"),
            ("nps", 10, "Billing"),
            ("nps", 9, "Billing"),
            ("nps", 3, "Billing"),
            ("ces", 7, "Billing"),
            ("ces", 5, "Billing"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = seed(
                store,
                &rating(
                    &format!("w{i}"),
                    scale,
                    score,
                    team,
                    now - (i as i64 + 1) * hour,
                ),
            )
            .await;
            if (scale, score) == ("five_point", 2) {
                negative = id;
            }
        }
        act(store, negative, RatingAction::FollowUp, "Fay", now).await;
        // The week before: CSAT 1 of 2.
        seed(
            store,
            &rating("p1", "five_point", 5, "Billing", now - 8 * 24 * hour),
        )
        .await;
        seed(
            store,
            &rating("p2", "five_point", 1, "Billing", now - 8 * 24 * hour),
        )
        .await;

        let today = csatwatch::reports::period::local_date(now, &jiff::tz::TimeZone::UTC);
        let since = csatwatch::reports::period::add_days(today, -6);
        let until = csatwatch::reports::period::add_days(today, 1);
        let cookie = sign_in(&app, TOKEN).await;
        let body = overview_shows(
            backend,
            &app,
            &cookie,
            since,
            until,
            &[
                "80.0%",
                "5 responses · 95% interval",
                "+30.0 pts, not significant vs the 7 days before",
                "+33",
                "6.00 / 7",
                "of 2 negative rating(s)",
                "66.7%",
                "100.0%",
                "low sample",
            ],
        )
        .await;
        assert!(
            body.contains("<svg class=\"chart trend\""),
            "the trend chart"
        );

        let (_, billing) = get(
            &app,
            &format!("/dashboard?since={since}&until={until}&team=billing"),
            Some(&cookie),
        )
        .await;
        assert!(
            billing.contains("66.7%") && !billing.contains("80.0%"),
            "{backend:?}: team filter"
        );

        let (status, csv) = get(
            &app,
            &format!("/dashboard?since={since}&until={until}&format=csv"),
            Some(&cookie),
        )
        .await;
        assert_eq!(status, 200);
        let total: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(&total[..1], &["total"], "{csv}");
        assert_eq!((total[2], total[3]), ("5", "80"), "{csv}");
        assert!(
            csv.lines().any(|l| l.starts_with("team,Returns,2,100,")),
            "{csv}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn the_queue_shows_an_escalated_rating_and_every_time_in_the_reports_timezone() {
    use crate::support::{slack_ok, zendesk_body};
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let extra = format!(
            "{ACCESS_TOML}\n[reports]\ntimezone = \"Europe/Berlin\"\n[[rules]]\nname = \"all\"\nchannel = \"#csat\"\nescalate_after = \"30m\"\nescalate_to = [\"S0ONCALL\"]\n"
        );
        let app = TestApp::spawn(
            settings(&db.url, Some(&slack.uri()), &extra),
            ManualClock::new(1_795_996_800_000 + 9 * 3_600_000), // 2026-11-30 09:00 UTC
        )
        .await;
        assert_eq!(
            app.post_zendesk(&zendesk_body(31, "bad", "Nobody?"))
                .await
                .0,
            200
        );
        assert_eq!(
            app.post_zendesk(&zendesk_body(32, "bad", "Slow")).await.0,
            200
        );
        app.app.flush_alerts().await.unwrap();
        let alerts = app.app.store.all_alerts().await.unwrap();
        let (escalated, other) = (alerts[0].rating_id, alerts[1].rating_id);
        assert_ne!(escalated, other);
        act(
            &app.app.store,
            other,
            RatingAction::Acknowledge,
            "Ann",
            app.clock.now_ms(),
        )
        .await;
        app.clock.advance(Duration::from_secs(31 * 60));
        let report = app.app.flush_alerts().await.unwrap();
        assert_eq!(report.escalations, 1, "{backend:?}: {report:?}");

        let cookie = sign_in(&app, TOKEN).await;
        let (status, body) = get(&app, "/dashboard/negatives", Some(&cookie)).await;
        assert_eq!(status, 200);
        assert!(body.contains(">Escalated</span>"), "{backend:?}: {body}");
        assert!(body.contains(">Acknowledged</span>"), "{body}");
        let (_, only) = get(&app, "/dashboard/negatives?state=escalated", Some(&cookie)).await;
        assert!(only.contains(&format!("/dashboard/ratings/{escalated}\"")));
        assert!(!only.contains(&format!("/dashboard/ratings/{other}\"")));
        let (_, new) = get(&app, "/dashboard/negatives?state=new", Some(&cookie)).await;
        assert!(!new.contains(&format!("/dashboard/ratings/{escalated}\"")));

        // 09:00 UTC is 10:00 in Berlin in November: every page and the CSV
        // say the local time, none says UTC.
        assert!(body.contains("2026-11-30 10:00 CET"), "{backend:?}: {body}");
        let (_, page) = get(
            &app,
            &format!("/dashboard/ratings/{escalated}"),
            Some(&cookie),
        )
        .await;
        assert!(page.contains("2026-11-30 10:00 CET"), "{page}");
        assert!(
            page.contains("2026-11-30 10:31 CET"),
            "the escalation: {page}"
        );
        let (_, csv) = get(&app, "/dashboard/negatives?format=csv", Some(&cookie)).await;
        assert!(csv.contains("2026-11-30 10:00 CET"), "{csv}");
        for text in [&body, &page, &csv] {
            assert!(!text.contains(" UTC"), "{text}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn drop_alert_episodes_are_marked_on_the_trend_with_a_text_alternative() {
    use csatwatch::store::NewReportMessage;
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let store = &app.app.store;
        let now = app.clock.now_ms();
        let day = 86_400_000;
        for i in 0..60 {
            let mut s = Seed::negative(&format!("t{i}"), now - (i % 40) * day - 3_600_000);
            if i % 3 != 0 {
                (s.score, s.sentiment) = (5, "positive");
            }
            seed(store, &s).await;
        }
        // One episode from 20 to 13 days ago, one still open from 2 days
        // ago; another team's episode is not this view's.
        for (kind, group, at) in [
            ("drop", "overall", now - 20 * day),
            ("recovery", "overall", now - 13 * day),
            ("drop", "team:Returns", now - 30 * day),
            ("drop", "overall", now - 2 * day),
        ] {
            let mut tx = store.begin().await.unwrap();
            tx.insert_report_message(&NewReportMessage {
                kind,
                name: "csat-drop".into(),
                period: format!("{group}|{at}"),
                channel: "#leads".into(),
                body: "{}".into(),
                created_at_ms: at,
            })
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let cookie = sign_in(&app, TOKEN).await;
        let (status, body) = get(&app, "/dashboard", Some(&cookie)).await;
        assert_eq!(status, 200);
        let marks = body.matches("<title>Drop alert in").count();
        // 20..13 days ago touches one or two weeks; the open one one or two.
        assert!(
            (2..=4).contains(&marks),
            "{backend:?}: {marks} marks: {body}"
        );
        assert!(body.contains("period(s) had a drop alert"), "{body}");
        let cells = body.matches("<td>csat-drop: overall</td>").count();
        assert_eq!(cells, marks, "the table says what the chart marks");
        assert!(!body.contains("team Returns"), "{body}");
        let (_, returns) = get(&app, "/dashboard?team=Returns", Some(&cookie)).await;
        assert!(returns.contains("csat-drop: team Returns"), "{returns}");
        app.stop().await;
    }
}

/// The queue of a long period a page at a time: each page is the head of
/// the whole queue in its order, and its total counts every match, whether
/// the follow-up rollup or the ratings count them.
#[tokio::test]
async fn a_queue_page_counts_every_match_from_the_rollup_and_from_the_ratings() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let store = &app.app.store;
        let hour = 3_600_000;
        let day = 24 * hour;
        let today = app.clock.now_ms() / day * day;
        let at = |i: i64| today - 20 * day + i * 7 * hour;
        for i in 0..40 {
            let mut s = Seed::negative(&format!("q{i:02}"), at(i));
            if i % 7 == 3 {
                s.team = "Tech";
            }
            let id = seed(store, &s).await;
            match i % 5 {
                1 => act(store, id, RatingAction::Acknowledge, "Ann", at(i) + hour).await,
                2 => {
                    act(store, id, RatingAction::Acknowledge, "Ann", at(i) + hour).await;
                    act(store, id, RatingAction::FollowUp, "Fay", at(i) + 2 * hour).await;
                }
                3 => {
                    let mut happy = s.clone();
                    (happy.score, happy.sentiment) = (5, "positive");
                    change(store, id, 2, &happy).await;
                }
                _ => {}
            }
        }
        let mut long_ago = Seed::negative("q-old", today - 90 * day);
        long_ago.comment = None;
        seed(store, &long_ago).await;
        for team in [None, Some("tech")] {
            let queue = |state: Option<&str>, limit: i64| QueueFilter {
                since_ms: today - 30 * day,
                until_ms: today + day,
                filter: RatingFilter {
                    team: team.map(|t| vec![t.to_string()]).unwrap_or_default(),
                    ..Default::default()
                },
                state: state.map(str::to_string),
                limit,
            };
            let all = store.negatives_queue(&queue(None, 1000)).await.unwrap();
            assert_eq!(all.len(), if team.is_none() { 40 } else { 6 });
            for state in [
                None,
                Some("new"),
                Some("acknowledged"),
                Some("escalated"),
                Some("followed_up"),
                Some("recovered"),
            ] {
                let expected: Vec<(i64, String)> = all
                    .iter()
                    .filter(|r| state.is_none_or(|s| r.state == s))
                    .map(|r| (r.id, r.state.clone()))
                    .collect();
                for limit in [1, 5, 1000] {
                    for rollup in [true, false] {
                        store.set_rollup_reads(rollup);
                        let rows = store.negatives_queue(&queue(state, limit)).await.unwrap();
                        let got: Vec<(i64, String)> =
                            rows.iter().map(|r| (r.id, r.state.clone())).collect();
                        let head = &expected[..expected.len().min(limit as usize)];
                        let what = format!("{backend:?} {team:?} {state:?} limit {limit}");
                        assert_eq!(got, head, "{what}");
                        for r in &rows {
                            assert_eq!(r.total, expected.len() as i64, "{what} rollup {rollup}");
                        }
                    }
                }
            }
        }
        store.set_rollup_reads(true);
        // Unhandled first, oldest first; then the handled ones.
        let all = store
            .negatives_queue(&QueueFilter {
                since_ms: today - 30 * day,
                until_ms: today + day,
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let handled = |r: &QueueRow| ["followed_up", "recovered"].contains(&r.state.as_str());
        let split = all.iter().position(handled).unwrap();
        assert!(all[split..].iter().all(handled));
        assert!(
            all[..split]
                .windows(2)
                .all(|w| w[0].rated_at < w[1].rated_at)
        );
        assert!(
            all[split..]
                .windows(2)
                .all(|w| w[0].rated_at < w[1].rated_at)
        );
        assert_eq!(split, 24);
        app.stop().await;
    }
}

/// A period longer than the trend: the headline figures and their change
/// against the period before count the first and last day of each, read
/// in the one pass over the days that also draws the trend.
#[tokio::test]
async fn the_overview_of_a_long_period_counts_both_periods_to_their_edges() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let app = spawn(&db, ACCESS_TOML).await;
        let store = &app.app.store;
        let day = 86_400_000;
        let now = app.clock.now_ms();
        let today = csatwatch::reports::period::local_date(now, &jiff::tz::TimeZone::UTC);
        let until = csatwatch::reports::period::add_days(today, 1);
        let since = csatwatch::reports::period::add_days(until, -120);
        let since_ms = now / day * day + day - 120 * day;
        // This period: two positives, on its first and last day; the one
        // before: a positive on its first day and a negative on its last.
        for (name, at, score, sentiment) in [
            ("now-first", since_ms + 1_000, 5, "positive"),
            ("now-last", since_ms + 120 * day - 1_000, 5, "positive"),
            ("before-first", since_ms - 120 * day + 1_000, 5, "positive"),
            ("before-last", since_ms - 1_000, 1, "negative"),
        ] {
            let mut s = Seed::negative(name, at);
            (s.score, s.sentiment) = (score, sentiment);
            seed(store, &s).await;
        }
        let cookie = sign_in(&app, TOKEN).await;
        overview_shows(
            backend,
            &app,
            &cookie,
            since,
            until,
            &[
                "100.0%",
                "2 responses · 95% interval",
                "+50.0 pts, not significant vs the 120 days before",
            ],
        )
        .await;
        app.stop().await;
    }
}
