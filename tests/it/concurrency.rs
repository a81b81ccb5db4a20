//! Two app instances on one database: the same webhook delivered to both at
//! the same instant is one rating and one alert, by unique keys rather
//! than checks that race; and two dispatchers never send one alert twice.

use csatwatch::clock::ManualClock;

use crate::support::*;

#[tokio::test]
async fn the_same_webhook_at_two_instances_at_once_is_one_rating_and_one_alert() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let clock = ManualClock::starting_now();
        // Background dispatchers on: they race each other for the alerts.
        let a = TestApp::spawn_with(
            settings(&db.url, Some(&slack.uri()), ""),
            clock.clone(),
            true,
        )
        .await;
        let b = TestApp::spawn_with(
            settings(&db.url, Some(&slack.uri()), ""),
            clock.clone(),
            true,
        )
        .await;
        for ticket in 0..20u64 {
            // Two different request bodies carrying the same rating, and the
            // identical body twice: every combination must dedupe.
            let body = zendesk_body(900 + ticket, "bad", "Concurrent");
            let mut other = body.clone();
            other["ticket"]["title"] = serde_json::json!("retitled");
            let (ra, rb, rc) = tokio::join!(
                a.post_zendesk(&body),
                b.post_zendesk(&body),
                b.post_zendesk(&other)
            );
            for (status, answer) in [ra, rb, rc] {
                assert_eq!(status, 200, "{backend:?}: {answer}");
            }
        }
        let (fa, fb) = tokio::join!(a.app.flush_alerts(), b.app.flush_alerts());
        let sent = fa.unwrap().sent + fb.unwrap().sent;
        assert_eq!(
            a.app.store.count_ratings().await.unwrap(),
            20,
            "{backend:?}"
        );
        let alerts = a.app.store.all_alerts().await.unwrap();
        assert_eq!(alerts.len(), 20, "{backend:?}: one alert per rating");
        // The background dispatchers may have sent some; all were sent once.
        assert!(alerts.iter().all(|x| x.state == "sent"), "{backend:?}");
        assert!(sent <= 20);
        assert_eq!(
            slack_posts(&slack).await.len(),
            20,
            "{backend:?}: each alert posted exactly once"
        );
        a.stop().await;
        b.stop().await;
    }
}
