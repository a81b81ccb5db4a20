//! Scheduled digests and drop alerts: posted exactly once per period (or
//! episode) with two replicas on one database, across a restart, late
//! within the grace window and not after it. The clock is driven by hand.

use csatwatch::clock::ManualClock;
use serde_json::Value;
use wiremock::MockServer;

use crate::reports::{Seed, ms, seed, seed_known};
use crate::support::{TestApp, TestDatabase, backends, settings, slack_ok, slack_posts};

const DIGEST: &str = r##"
[reports]
timezone = "Europe/Berlin"
min_sample = 3
[[digests]]
name = "weekly-leads"
schedule = "weekly"
weekday = "monday"
at = "09:00"
channel = "#leads"
grace = "6h"
"##;

const DROP: &str = r##"
[[drop_alerts]]
name = "csat-drop"
metric = "csat"
window = "7d"
baseline = "28d"
per = ["overall"]
at = "08:00"
channel = "#leads"
"##;

async fn posts_to(server: &MockServer, channel: &str) -> Vec<Value> {
    slack_posts(server)
        .await
        .into_iter()
        .filter(|p| p["channel"] == channel)
        .collect()
}

async fn run_both(apps: &[&TestApp]) {
    // Both replicas look at the same moment, then both try to send.
    let (s0, s1) = (apps[0].app.scheduler(), apps[1].app.scheduler());
    let (a, b) = tokio::join!(s0.tick(), s1.tick());
    a.unwrap();
    b.unwrap();
    let (a, b) = tokio::join!(s0.send_due(), s1.send_due());
    a.unwrap();
    b.unwrap();
}

fn set(apps: &[&TestApp], at: &str) {
    for app in apps {
        app.clock.set(ms(at));
    }
}

#[tokio::test]
async fn a_weekly_digest_is_posted_once_by_two_replicas_and_across_a_restart() {
    for backend in backends() {
        let slack = slack_ok().await;
        let db = TestDatabase::new(backend).await;
        let s = settings(&db.url, Some(&slack.uri()), DIGEST);
        // Monday 2026-11-16, 08:59 in Berlin: the digest is due at 09:00.
        let start = ManualClock::new(ms("2026-11-16T07:59:00Z"));
        let one = TestApp::spawn(s.clone(), start).await;
        let two = TestApp::spawn(s.clone(), ManualClock::new(ms("2026-11-16T07:59:00Z"))).await;
        seed_known(&one.app.store).await;

        run_both(&[&one, &two]).await;
        assert_eq!(
            posts_to(&slack, "#leads").await.len(),
            0,
            "{backend:?}: not yet due"
        );

        set(&[&one, &two], "2026-11-16T08:00:30Z");
        run_both(&[&one, &two]).await;
        run_both(&[&one, &two]).await;
        let posts = posts_to(&slack, "#leads").await;
        assert_eq!(posts.len(), 1, "{backend:?}: once, with two replicas");
        let text = posts[0]["blocks"].to_string();
        assert!(
            posts[0]["text"].as_str().unwrap().contains("2026-W46"),
            "{}",
            posts[0]
        );
        // W46 in Berlin: a and e, both positive now.
        assert!(text.contains("*CSAT* 100.0% (n=2)"), "{text}");
        assert!(text.contains("*NPS* +0 (n=3)"), "{text}");
        assert!(text.contains("*CES* 4.00 (n=2)"), "{text}");
        // h and j are negative and nobody followed them up; e recovered.
        assert!(text.contains("tickets/h|zendesk h"), "{text}");
        assert!(text.contains("tickets/j|zendesk j"), "{text}");
        assert!(!text.contains("tickets/e|"), "{text}");
        assert!(text.contains("*Followed up:* 0 of 3"), "{text}");
        assert!(text.contains("Tech 100.0% (n=2), low sample"), "{text}");
        assert!(
            !text.contains("late"),
            "no customer comment in a digest: {text}"
        );

        // A restarted replica does not send it again.
        two.stop().await;
        let three = TestApp::spawn(s.clone(), ManualClock::new(ms("2026-11-16T09:30:00Z"))).await;
        one.clock.set(ms("2026-11-16T09:30:00Z"));
        run_both(&[&one, &three]).await;
        assert_eq!(posts_to(&slack, "#leads").await.len(), 1, "{backend:?}");

        // Next Monday it is due again; missed by 3 hours it is sent late.
        set(&[&one, &three], "2026-11-23T11:00:00Z");
        run_both(&[&one, &three]).await;
        assert_eq!(
            posts_to(&slack, "#leads").await.len(),
            2,
            "{backend:?}: sent late"
        );
        // Missed by more than the grace window: skipped.
        set(&[&one, &three], "2026-11-30T15:30:00Z");
        run_both(&[&one, &three]).await;
        assert_eq!(
            posts_to(&slack, "#leads").await.len(),
            2,
            "{backend:?}: too late"
        );
        let messages = one.app.store.report_messages().await.unwrap();
        assert_eq!(messages.len(), 2);
        assert!(
            messages
                .iter()
                .all(|m| m.state == "sent" && m.attempts == 1)
        );
        one.stop().await;
        three.stop().await;
    }
}

/// `n` five-point ratings at `at`, the first `positive` of them positive.
async fn seed_many(
    store: &csatwatch::store::Store,
    prefix: &str,
    at: &str,
    n: usize,
    positive: usize,
) {
    for i in 0..n {
        let key = format!("{prefix}-{i}");
        let version = if i < positive {
            (5, "positive")
        } else {
            (1, "negative")
        };
        seed(store, &Seed::new(&key, "five_point", &[version], at)).await;
    }
}

#[tokio::test]
async fn a_drop_is_announced_once_per_episode_and_its_recovery_once() {
    for backend in backends() {
        let slack = slack_ok().await;
        let db = TestDatabase::new(backend).await;
        let s = settings(&db.url, Some(&slack.uri()), DROP);
        let one = TestApp::spawn(s.clone(), ManualClock::new(ms("2026-11-30T07:00:00Z"))).await;
        let two = TestApp::spawn(s.clone(), ManualClock::new(ms("2026-11-30T07:00:00Z"))).await;
        let store = &one.app.store;
        // Baseline (Oct 26 – Nov 22): 90 of 100 positive. Window
        // (Nov 23 – 29): 20 of 40. z ≈ −4.9.
        seed_many(store, "base", "2026-11-12T10:00:00Z", 100, 90).await;
        seed_many(store, "low", "2026-11-26T10:00:00Z", 40, 20).await;

        set(&[&one, &two], "2026-11-30T08:00:30Z");
        run_both(&[&one, &two]).await;
        run_both(&[&one, &two]).await;
        let posts = posts_to(&slack, "#leads").await;
        assert_eq!(posts.len(), 1, "{backend:?}: one drop alert");
        let text = posts[0]["text"].as_str().unwrap();
        assert!(text.contains("CSAT dropped: overall"), "{text}");
        assert!(
            text.contains("50.0% (n=40) against 90.0% (n=100)"),
            "{text}"
        );

        // The next day the window is still low: same episode, no new post.
        set(&[&one, &two], "2026-12-01T08:00:30Z");
        run_both(&[&one, &two]).await;
        assert_eq!(posts_to(&slack, "#leads").await.len(), 1, "{backend:?}");

        // 200 happy customers on Dec 1: good at the Dec 2 evaluation, and
        // again on Dec 3: recovered then (recover_after = 2 by default).
        seed_many(store, "happy", "2026-12-01T10:00:00Z", 200, 200).await;
        set(&[&one, &two], "2026-12-02T08:00:30Z");
        run_both(&[&one, &two]).await;
        run_both(&[&one, &two]).await;
        assert_eq!(
            posts_to(&slack, "#leads").await.len(),
            1,
            "{backend:?}: one good day is not a recovery yet"
        );
        set(&[&one, &two], "2026-12-03T08:00:30Z");
        run_both(&[&one, &two]).await;
        run_both(&[&one, &two]).await;
        let posts = posts_to(&slack, "#leads").await;
        assert_eq!(posts.len(), 2, "{backend:?}: one recovery");
        assert!(
            posts[1]["text"]
                .as_str()
                .unwrap()
                .contains("CSAT recovered: overall")
        );
        one.stop().await;
        two.stop().await;
    }
}

#[tokio::test]
async fn a_small_or_insignificant_dip_raises_nothing() {
    for backend in backends() {
        let slack = slack_ok().await;
        let db = TestDatabase::new(backend).await;
        let s = settings(&db.url, Some(&slack.uri()), DROP);
        let app = TestApp::spawn(s, ManualClock::new(ms("2026-11-30T08:00:30Z"))).await;
        // 80 % against 90 %, but only 10 responses in the window.
        seed_many(&app.app.store, "base", "2026-11-12T10:00:00Z", 100, 90).await;
        seed_many(&app.app.store, "few", "2026-11-26T10:00:00Z", 10, 2).await;
        app.app.run_report_schedules().await.unwrap();
        assert_eq!(posts_to(&slack, "#leads").await.len(), 0, "{backend:?}");
        app.stop().await;
    }
}

/// A reload (what SIGHUP runs) that moves a digest to another channel: the
/// period already written is not sent again, and the next one goes to the
/// new channel. Messages stay keyed by kind, name and period.
#[tokio::test]
async fn a_reloaded_digest_channel_takes_the_next_period_and_nothing_is_sent_twice() {
    for backend in backends() {
        let slack = slack_ok().await;
        let db = TestDatabase::new(backend).await;
        let old = settings(&db.url, Some(&slack.uri()), DIGEST);
        let one = TestApp::spawn(old.clone(), ManualClock::new(ms("2026-11-16T08:00:30Z"))).await;
        seed_known(&one.app.store).await;
        one.app.run_report_schedules().await.unwrap();
        assert_eq!(posts_to(&slack, "#leads").await.len(), 1, "{backend:?}");

        let mut new = old.clone();
        new.digests[0].channel = Some("#leads-moved".into());
        let sources = csatwatch::sources::SourceRegistry::from_settings(&new).unwrap();
        let restart = csatwatch::reload::apply(&one.app, &old, &new, sources);
        assert!(restart.is_empty(), "{backend:?}: {restart:?}");

        // The same period, after the reload: already written, not again.
        one.clock.set(ms("2026-11-16T09:00:00Z"));
        one.app.run_report_schedules().await.unwrap();
        assert_eq!(
            posts_to(&slack, "#leads-moved").await.len(),
            0,
            "{backend:?}"
        );

        // The next Monday: the new channel.
        one.clock.set(ms("2026-11-23T08:00:30Z"));
        one.app.run_report_schedules().await.unwrap();
        assert_eq!(
            posts_to(&slack, "#leads-moved").await.len(),
            1,
            "{backend:?}"
        );
        assert_eq!(posts_to(&slack, "#leads").await.len(), 1, "{backend:?}");
        one.stop().await;
    }
}

#[tokio::test]
async fn a_flapping_metric_recovers_only_after_recover_after_good_days_in_a_row() {
    use csatwatch::reports::Figures;
    use csatwatch::reports::drops::{self, Evaluation};
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let s = settings(
            &db.url,
            None,
            &DROP.replace("at = \"08:00\"", "at = \"08:00\"\nrecover_after = 3"),
        );
        let d = &s.drop_alerts[0];
        assert_eq!(d.recover_after, 3);
        let store = crate::reports::test_store(&db).await;
        let day = |fires, recovers| Evaluation {
            group: "overall".into(),
            window: Figures::default(),
            baseline: Figures::default(),
            comparison: None,
            fires,
            recovers,
        };
        let (drop, good, neither) = ((true, false), (false, true), (false, false));
        // A drop; two good days; still dropped (the count starts again);
        // two good days; a day in between (again); three good days: the
        // recovery. Then a new episode.
        let days = [
            drop, good, good, drop, good, good, neither, good, good, good, drop, good,
        ];
        let mut posted = Vec::new();
        for (i, (fires, recovers)) in days.into_iter().enumerate() {
            let now = ms("2026-11-01T08:00:00Z") + i as i64 * 86_400_000;
            let n = drops::apply(&store, &s, d, &[day(fires, recovers)], now)
                .await
                .unwrap();
            if n > 0 {
                posted.push(i);
            }
        }
        let kinds: Vec<String> = store
            .report_messages()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.kind)
            .collect();
        assert_eq!(kinds, ["drop", "recovery", "drop"], "{backend:?}");
        assert_eq!(posted, [0, 9, 10], "{backend:?}");
        store.close().await;
    }
}
