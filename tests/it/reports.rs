//! Report figures against a real database with known answers: ratings on
//! several scales, a changed rating, follow-ups, empty periods, and a time
//! zone (Europe/Berlin) whose week starts an hour before the UTC week.
//! The CLI, API and export tests seed the same ratings with [`seed_known`].

use csatwatch::reports::{self, GroupBy, RatingFilter, ReportRequest, Trend};
use csatwatch::store::{HistoryRecord, NewAlert, RatingAction, RatingRecord, Store};
use jiff::civil::date;
use jiff::tz::TimeZone;
use secrecy::SecretString;
use std::time::Duration;

use crate::support::{TestDatabase, backends};

/// Unix ms of an RFC 3339 instant.
pub fn ms(at: &str) -> i64 {
    at.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// One rating to seed: its versions (score, sentiment) oldest first.
pub struct Seed<'a> {
    pub key: &'a str,
    pub scale: &'a str,
    pub versions: &'a [(i64, &'a str)],
    pub at: &'a str,
    pub team: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub tags: &'a [&'a str],
    pub comment: Option<&'a str>,
}

impl Seed<'_> {
    pub fn new<'a>(
        key: &'a str,
        scale: &'a str,
        versions: &'a [(i64, &'a str)],
        at: &'a str,
    ) -> Seed<'a> {
        Seed {
            key,
            scale,
            versions,
            at,
            team: None,
            agent: None,
            tags: &[],
            comment: None,
        }
    }
}

/// Writes a rating with all its versions as the pipeline would; returns its id.
pub async fn seed(store: &Store, s: &Seed<'_>) -> i64 {
    let rated_at = ms(s.at);
    let survey = match s.scale {
        "nps" => "nps",
        "ces" => "ces",
        _ => "csat",
    };
    let mut id = 0;
    for (i, (score, sentiment)) in s.versions.iter().enumerate() {
        let revision = i as i64 + 1;
        let record = RatingRecord {
            source: "zendesk".into(),
            conversation_id: s.key.into(),
            rating_key: String::new(),
            survey: survey.into(),
            scale: s.scale.into(),
            score: *score,
            normalised: 0.5,
            sentiment: (*sentiment).into(),
            comment: s.comment.map(str::to_string),
            agent: s.agent.map(str::to_string),
            team: s.team.map(str::to_string),
            customer: Some(format!("customer-{}", s.key)),
            company: None,
            brand: None,
            tags: serde_json::to_string(&s.tags).unwrap(),
            url: Some(format!("https://acme.zendesk.com/agent/tickets/{}", s.key)),
            rated_at,
            updated_at: rated_at + revision * 60_000,
        };
        let now = rated_at + revision * 60_000;
        let mut tx = store.begin().await.unwrap();
        if revision == 1 {
            id = tx.insert_rating(&record, now).await.unwrap().unwrap();
        } else {
            let current = tx
                .lock_rating(&record.source, &record.conversation_id, &record.rating_key)
                .await
                .unwrap()
                .unwrap();
            tx.update_rating(&current, &record, revision, now)
                .await
                .unwrap();
        }
        tx.insert_history(&HistoryRecord {
            rating_id: id,
            revision,
            score: *score,
            sentiment: (*sentiment).into(),
            comment: None,
            updated_at: now,
            recorded_at: now,
            via: "webhook".into(),
            delivery_id: None,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    id
}

/// Enqueues an alert post to `channel` for each `(rating id, revision)`,
/// in one transaction.
pub async fn enqueue_alerts(store: &Store, alerts: &[(i64, i64)], channel: &str, at: i64) {
    let mut tx = store.begin().await.unwrap();
    for &(rating_id, revision) in alerts {
        tx.enqueue_alert(&NewAlert {
            rating_id,
            revision,
            rule: None,
            channel: channel.into(),
            mentions: "[]".into(),
            sentiment: "negative".into(),
            created_at_ms: at,
            escalate_at: None,
            escalate_to: None,
            trace_parent: None,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Posts an alert for a rating (sent), then acknowledges and follows it up
/// the given minutes after it was first recorded.
pub async fn alert_and_follow_up(
    store: &Store,
    id: i64,
    first_seen: i64,
    ack_min: i64,
    follow_min: i64,
) {
    enqueue_alerts(store, &[(id, 1)], "#csat", first_seen).await;
    let claimed = store
        .claim_due_alerts(first_seen, 30_000, "t", 10)
        .await
        .unwrap();
    for a in claimed {
        assert!(
            store
                .mark_alert_sent(a.id, "t", first_seen, Some("C1"), Some("1.1"))
                .await
                .unwrap()
        );
    }
    let mut tx = store.begin().await.unwrap();
    tx.record_rating_action(
        id,
        RatingAction::Acknowledge,
        "U1",
        None,
        first_seen + ack_min * 60_000,
    )
    .await
    .unwrap();
    tx.record_rating_action(
        id,
        RatingAction::FollowUp,
        "U1",
        None,
        first_seen + follow_min * 60_000,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

pub async fn test_store(db: &TestDatabase) -> Store {
    let store = Store::connect_url(
        &SecretString::from(db.url.clone()),
        4,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    // As the daemon does at start-up: the known-answer tests in Berlin read
    // the rollup the seeding keeps, those in UTC the ratings.
    store.ensure_rollup("Europe/Berlin").await.unwrap();
    store
}

/// The known ratings (times in UTC; Berlin is UTC+1 in November):
///
/// | key | scale | versions | at (UTC) | Berlin week | UTC week |
/// |---|---|---|---|---|---|
/// | k1, k2 | five_point | 1 neg / 5 pos | Oct 28, 29 | W44 | W44 |
/// | b | five_point | 4 pos | Nov 3 | W45 | W45 |
/// | c | five_point | 3 neutral | Nov 4 | W45 | W45 |
/// | d | binary | 0 neg, alerted, ack +10 min, follow-up +30 min | Nov 5 | W45 | W45 |
/// | a | five_point | 5 pos | Nov 8 23:30 | W46 | W45 |
/// | e | five_point | 1 neg → 5 pos (changed) | Nov 10 | W46 | W46 |
/// | f, g, h | nps | 10, 7, 3 | Nov 11, 12 | W46 | W46 |
/// | i, j | ces | 6, 2 | Nov 12, 13 | W46 | W46 |
/// | l | five_point | 5 pos | Nov 15 23:30 | (after) | W46 |
pub async fn seed_known(store: &Store) {
    let billing = Some("Billing");
    let tech = Some("Tech");
    seed(
        store,
        &Seed::new(
            "k1",
            "five_point",
            &[(1, "negative")],
            "2026-10-28T12:00:00Z",
        ),
    )
    .await;
    seed(
        store,
        &Seed::new(
            "k2",
            "five_point",
            &[(5, "positive")],
            "2026-10-29T12:00:00Z",
        ),
    )
    .await;
    seed(
        store,
        &Seed {
            team: billing,
            agent: Some("Sam"),
            tags: &["vip"],
            ..Seed::new(
                "b",
                "five_point",
                &[(4, "positive")],
                "2026-11-03T10:00:00Z",
            )
        },
    )
    .await;
    seed(
        store,
        &Seed {
            team: billing,
            agent: Some("Sam"),
            ..Seed::new("c", "five_point", &[(3, "neutral")], "2026-11-04T10:00:00Z")
        },
    )
    .await;
    let d = seed(
        store,
        &Seed {
            team: billing,
            agent: Some("Kim"),
            comment: Some("Refund, \"late\"; again"),
            ..Seed::new("d", "binary", &[(0, "negative")], "2026-11-05T10:00:00Z")
        },
    )
    .await;
    alert_and_follow_up(store, d, ms("2026-11-05T10:01:00Z"), 10, 30).await;
    seed(
        store,
        &Seed {
            team: tech,
            tags: &["vip", "billing"],
            ..Seed::new(
                "a",
                "five_point",
                &[(5, "positive")],
                "2026-11-08T23:30:00Z",
            )
        },
    )
    .await;
    seed(
        store,
        &Seed {
            team: tech,
            ..Seed::new(
                "e",
                "five_point",
                &[(1, "negative"), (5, "positive")],
                "2026-11-10T09:00:00Z",
            )
        },
    )
    .await;
    seed(
        store,
        &Seed::new("f", "nps", &[(10, "positive")], "2026-11-11T09:00:00Z"),
    )
    .await;
    seed(
        store,
        &Seed::new("g", "nps", &[(7, "neutral")], "2026-11-12T09:00:00Z"),
    )
    .await;
    seed(
        store,
        &Seed::new("h", "nps", &[(3, "negative")], "2026-11-12T10:00:00Z"),
    )
    .await;
    seed(
        store,
        &Seed::new("i", "ces", &[(6, "positive")], "2026-11-12T11:00:00Z"),
    )
    .await;
    seed(
        store,
        &Seed::new("j", "ces", &[(2, "negative")], "2026-11-13T11:00:00Z"),
    )
    .await;
    seed(
        store,
        &Seed::new(
            "l",
            "five_point",
            &[(5, "positive")],
            "2026-11-15T23:30:00Z",
        ),
    )
    .await;
}

pub fn known_request(tz: &str, by: GroupBy) -> ReportRequest {
    ReportRequest {
        since: date(2026, 11, 2),
        until: date(2026, 11, 16),
        timezone: TimeZone::get(tz).unwrap(),
        by,
        filter: RatingFilter::default(),
        min_sample: 3,
    }
}

#[tokio::test]
async fn weekly_figures_in_berlin_have_known_answers() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        seed_known(&store).await;
        let report =
            reports::compute_report(&store, &known_request("Europe/Berlin", GroupBy::Week))
                .await
                .unwrap();
        let json = serde_json::to_value(&report).unwrap();
        let ctx = format!("{backend:?}: {json:#}");
        assert_eq!(json["timezone"], "Europe/Berlin", "{ctx}");
        assert_eq!(json["rows"].as_array().unwrap().len(), 2, "{ctx}");

        let w45 = &json["rows"][0];
        assert_eq!(w45["group"], "2026-W45", "{ctx}");
        assert_eq!(w45["csat"]["responses"], 3, "{ctx}");
        assert_eq!(w45["csat"]["positive"], 1, "{ctx}");
        assert_eq!(w45["csat"]["neutral"], 1, "{ctx}");
        assert_eq!(w45["csat"]["negative"], 1, "{ctx}");
        assert_eq!(w45["csat"]["percent"], 33.3, "{ctx}");
        // Wilson 1/3: [6.1, 79.2].
        assert_eq!(w45["csat"]["ci95"], serde_json::json!([6.1, 79.2]), "{ctx}");
        assert!(w45["nps"]["score"].is_null(), "{ctx}");
        assert_eq!(w45["nps"]["responses"], 0, "{ctx}");
        assert!(w45["ces"]["average"].is_null(), "{ctx}");
        let fu = &w45["follow_up"];
        assert_eq!(fu["negatives"], 1, "{ctx}");
        assert_eq!(fu["alerted"], 1, "{ctx}");
        assert_eq!(fu["acknowledged"], 1, "{ctx}");
        assert_eq!(fu["followed_up"], 1, "{ctx}");
        assert_eq!(fu["recovered"], 0, "{ctx}");
        assert_eq!(fu["median_minutes_to_ack"], 10.0, "{ctx}");
        assert_eq!(fu["median_minutes_to_follow_up"], 30.0, "{ctx}");
        assert_eq!(fu["by_outcome"]["unrecorded"], 1, "{ctx}");
        assert_eq!(w45["low_sample"], false, "{ctx}");
        // Against W44 (1 of 2 positive): 33.3 − 50.0, not significant.
        assert_eq!(w45["change"]["csat_points"], -16.7, "{ctx}");
        assert!(w45["change"]["csat_trend"].is_null(), "{ctx}");

        let w46 = &json["rows"][1];
        assert_eq!(w46["group"], "2026-W46", "{ctx}");
        // a (Monday 00:30 in Berlin) and e (changed, counted once as positive).
        assert_eq!(w46["csat"]["responses"], 2, "{ctx}");
        assert_eq!(w46["csat"]["percent"], 100.0, "{ctx}");
        assert_eq!(w46["nps"]["promoters"], 1, "{ctx}");
        assert_eq!(w46["nps"]["passives"], 1, "{ctx}");
        assert_eq!(w46["nps"]["detractors"], 1, "{ctx}");
        assert_eq!(w46["nps"]["score"], 0.0, "{ctx}");
        assert_eq!(w46["ces"]["responses"], 2, "{ctx}");
        assert_eq!(w46["ces"]["average"], 4.0, "{ctx}");
        assert_eq!(w46["ces"]["easy_percent"], 50.0, "{ctx}");
        // e (recovered), h (detractor), j (hard): ever negative.
        assert_eq!(w46["follow_up"]["negatives"], 3, "{ctx}");
        assert_eq!(w46["follow_up"]["recovered"], 1, "{ctx}");
        assert_eq!(w46["follow_up"]["alerted"], 0, "{ctx}");
        assert!(w46["follow_up"]["median_minutes_to_ack"].is_null(), "{ctx}");
        assert_eq!(w46["change"]["csat_points"], 66.7, "{ctx}");

        let total = &json["total"];
        assert_eq!(total["csat"]["responses"], 5, "{ctx}");
        assert_eq!(total["csat"]["percent"], 60.0, "{ctx}");
        assert_eq!(total["nps"]["responses"], 3, "{ctx}");
        assert_eq!(total["follow_up"]["negatives"], 4, "{ctx}");
        assert_eq!(total["follow_up"]["followed_up_percent"], 25.0, "{ctx}");
    }
}

#[tokio::test]
async fn the_same_ratings_fall_into_other_weeks_in_utc() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        seed_known(&store).await;
        let report = reports::compute_report(&store, &known_request("UTC", GroupBy::Week))
            .await
            .unwrap();
        let ctx = format!("{backend:?}");
        // a is Sunday night in UTC; l is inside the range in UTC only.
        assert_eq!(report.rows[0].figures.csat.responses, 4, "{ctx}");
        assert_eq!(report.rows[1].figures.csat.responses, 2, "{ctx}");
        assert_eq!(report.rows[1].figures.csat.positive, 2, "{ctx}");
        assert_eq!(report.total.figures.csat.responses, 6, "{ctx}");
    }
}

#[tokio::test]
async fn days_without_ratings_are_rows_with_null_measures() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        seed_known(&store).await;
        let report = reports::compute_report(&store, &known_request("Europe/Berlin", GroupBy::Day))
            .await
            .unwrap();
        assert_eq!(report.rows.len(), 14, "{backend:?}");
        let monday = &report.rows[0];
        assert_eq!(monday.group, "2026-11-02");
        assert_eq!(monday.figures.csat.responses, 0);
        assert_eq!(monday.figures.csat.percent, None);
        assert!(monday.low_sample);
        // Nov 9 in Berlin holds a (rated 23:30 UTC the day before).
        let nov9 = report
            .rows
            .iter()
            .find(|r| r.group == "2026-11-09")
            .unwrap();
        assert_eq!(nov9.figures.csat.responses, 1, "{backend:?}");
        let months =
            reports::compute_report(&store, &known_request("Europe/Berlin", GroupBy::Month))
                .await
                .unwrap();
        assert_eq!(months.rows.len(), 1);
        assert_eq!(months.rows[0].group, "2026-11");
        // October's two ratings, before the range, are the month's baseline.
        assert_eq!(
            months.rows[0].change.as_ref().unwrap().csat_points,
            Some(10.0)
        );
    }
}

#[tokio::test]
async fn groups_by_team_and_tag_and_filters() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        seed_known(&store).await;
        let by_team =
            reports::compute_report(&store, &known_request("Europe/Berlin", GroupBy::Team))
                .await
                .unwrap();
        let groups: Vec<_> = by_team.rows.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(groups, ["Billing", "Tech", "(none)"], "{backend:?}");
        assert_eq!(by_team.rows[0].figures.csat.responses, 3);
        assert_eq!(by_team.rows[1].figures.csat.percent, Some(100.0));
        assert!(by_team.rows[0].change.is_none());
        assert_eq!(by_team.total.figures.csat.responses, 5);

        let by_tag = reports::compute_report(&store, &known_request("Europe/Berlin", GroupBy::Tag))
            .await
            .unwrap();
        let tags: Vec<_> = by_tag
            .rows
            .iter()
            .map(|r| (r.group.as_str(), r.figures.csat.responses))
            .collect();
        assert_eq!(tags, [("billing", 1), ("vip", 2)], "{backend:?}");
        // A rating with two tags counts once in the total.
        assert_eq!(by_tag.total.figures.csat.responses, 5, "{backend:?}");

        let mut req = known_request("Europe/Berlin", GroupBy::Week);
        req.filter.team = vec!["billing".into()];
        let billing = reports::compute_report(&store, &req).await.unwrap();
        assert_eq!(billing.total.figures.csat.responses, 3, "{backend:?}");
        assert_eq!(billing.total.figures.nps.responses, 0);
        let mut req = known_request("Europe/Berlin", GroupBy::Agent);
        req.filter.tag = vec!["VIP".into()];
        let vip = reports::compute_report(&store, &req).await.unwrap();
        let agents: Vec<_> = vip.rows.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(agents, ["Sam", "(none)"], "{backend:?}");
    }
}

#[tokio::test]
async fn a_significant_drop_is_called_a_trend() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        // Week 1: 19 of 20 positive; week 2: 8 of 20. z ≈ −3.7.
        for i in 0..20 {
            let s = if i < 19 {
                (5, "positive")
            } else {
                (1, "negative")
            };
            let key = format!("w1-{i}");
            seed(
                &store,
                &Seed::new(&key, "five_point", &[s], "2026-11-03T10:00:00Z"),
            )
            .await;
            let s = if i < 8 {
                (5, "positive")
            } else {
                (1, "negative")
            };
            let key = format!("w2-{i}");
            seed(
                &store,
                &Seed::new(&key, "five_point", &[s], "2026-11-10T10:00:00Z"),
            )
            .await;
        }
        let report = reports::compute_report(&store, &known_request("UTC", GroupBy::Week))
            .await
            .unwrap();
        let change = report.rows[1].change.clone().unwrap();
        assert_eq!(change.csat_points, Some(-55.0), "{backend:?}");
        assert_eq!(change.csat_trend, Some(Trend::Down), "{backend:?}");
        assert!(change.csat_p_value.unwrap() < 0.001);
    }
}
