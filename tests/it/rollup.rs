//! The report rollup gives exactly the numbers of the raw definition (the
//! `ratings` rows), on both backends: ratings on every scale, changed
//! ratings that move between agents, teams, scales and sentiments,
//! unrecorded teams and agents, team names differing only in case, two
//! sources, a brand, and days on both sides of a DST change and of local
//! midnight in Europe/Berlin. Every `--by` with and without filters is
//! computed twice (rollup on, rollup off) and compared; the rollup kept by
//! the writes equals one rebuilt from the ratings; a time-zone change
//! rebuilds it; the group-commit writer keeps it too. The follow-up
//! rollup gives the raw follow-up figures after every kind of write that
//! changes them (a new negative, an alert sent or digested, an
//! acknowledgement, a follow-up with its outcome, a recovery, a rating
//! negative again, another team and agent) and after a rebuild, and on
//! PostgreSQL two transactions changing one rating at once count it once.

use csatwatch::reports::{self, GroupBy, RatingFilter, ReportRequest};
use csatwatch::store::{
    FollowUpCount, GroupColumn, Grouping, HistoryRecord, RatingAction, RatingRecord, SentRecord,
    Store, StoreTx,
};
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use std::time::Duration;

use crate::reports::{enqueue_alerts, ms, test_store};
use crate::support::{Backend, TestApp, TestDatabase, backends, settings, slack_ok, zendesk_body};
use csatwatch::clock::{Clock, ManualClock};

/// A cheap deterministic spread.
fn h(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17
}

fn record(i: u64, version: u64) -> RatingRecord {
    let x = h(i * 7 + version);
    let (survey, scale, score, sentiment) = match x % 6 {
        0 => {
            let s = (x >> 8) % 11;
            let sent = match s {
                9.. => "positive",
                7..=8 => "neutral",
                _ => "negative",
            };
            ("nps", "nps", s, sent)
        }
        1 => {
            let s = 1 + (x >> 8) % 7;
            (
                "ces",
                "ces",
                s,
                if s >= 5 {
                    "positive"
                } else if s == 4 {
                    "neutral"
                } else {
                    "negative"
                },
            )
        }
        2 => {
            let s = (x >> 8) % 2;
            (
                "csat",
                "binary",
                s,
                if s == 1 { "positive" } else { "negative" },
            )
        }
        3 => {
            let s = 1 + (x >> 8) % 3;
            (
                "csat",
                "three_point",
                s,
                ["negative", "neutral", "positive"][s as usize - 1],
            )
        }
        _ => {
            let s = 1 + (x >> 8) % 5;
            (
                "csat",
                "five_point",
                s,
                if s >= 4 {
                    "positive"
                } else if s == 3 {
                    "neutral"
                } else {
                    "negative"
                },
            )
        }
    };
    // 70 days from 2026-09-20, crossing Berlin's DST change on Oct 25;
    // many ratings between 22:00 and 24:00 UTC, the next day in Berlin.
    let day = ms("2026-09-20T00:00:00Z") + (i % 70) as i64 * 86_400_000;
    let minute = if i.is_multiple_of(3) {
        22 * 60 + (x % 120) as i64
    } else {
        (x % 1440) as i64
    };
    let rated_at = day + minute * 60_000;
    let team = match (x >> 12) % 5 {
        0 => None,
        1 => Some("Billing"),
        2 => Some("billing"),
        3 => Some("Tech"),
        _ => Some("Sales"),
    };
    let agent = match (x >> 15) % 6 {
        0 => None,
        n => Some(format!("Agent {n}")),
    };
    RatingRecord {
        source: if i.is_multiple_of(4) {
            "freshdesk".into()
        } else {
            "zendesk".into()
        },
        conversation_id: format!("c{i}"),
        rating_key: String::new(),
        survey: survey.into(),
        scale: scale.into(),
        score: score as i64,
        normalised: 0.5,
        sentiment: sentiment.into(),
        comment: None,
        agent,
        team: team.map(str::to_string),
        customer: Some(format!("customer-{}", i % 9)),
        company: None,
        brand: i.is_multiple_of(5).then(|| "Acme".to_string()),
        tags: "[]".into(),
        url: None,
        rated_at,
        updated_at: rated_at,
    }
}

fn history(id: i64, revision: i64, r: &RatingRecord) -> HistoryRecord {
    HistoryRecord {
        rating_id: id,
        revision,
        score: r.score,
        sentiment: r.sentiment.clone(),
        comment: None,
        updated_at: r.updated_at,
        recorded_at: r.updated_at,
        via: "webhook".into(),
        delivery_id: None,
    }
}

/// Seeds 420 ratings, 20 to a transaction (inserted many at once), and
/// changes every third one once and every seventh twice (some in the
/// transaction that inserted them), as the pipeline writes them.
async fn seed(store: &Store) {
    const N: u64 = 420;
    for chunk in (0..N).collect::<Vec<_>>().chunks(20) {
        let mut tx = store.begin().await.unwrap();
        let records: Vec<RatingRecord> = chunk.iter().map(|&i| record(i, 0)).collect();
        let refs: Vec<&RatingRecord> = records.iter().collect();
        let ids = tx.insert_ratings(&refs, 1).await.unwrap();
        for (&i, (r, id)) in chunk.iter().zip(records.iter().zip(&ids)) {
            let id = id.unwrap();
            tx.insert_history(&history(id, 1, r)).await.unwrap();
            if i.is_multiple_of(11) {
                // Changed in the transaction that inserted it.
                change(&mut tx, i, 1).await;
            }
        }
        tx.commit().await.unwrap();
    }
    for i in (0..N).filter(|i| i.is_multiple_of(3) || i.is_multiple_of(7)) {
        let mut tx = store.begin().await.unwrap();
        let mut revision = change(&mut tx, i, 2).await;
        if i.is_multiple_of(7) {
            revision = change(&mut tx, i, 3 + revision as u64).await;
        }
        assert!(revision > 1);
        tx.commit().await.unwrap();
    }
}

/// Writes version `version` of rating `i`: another score and sentiment,
/// and now and then another agent or team, or none recorded (which keeps
/// the one recorded before). Returns the revision written.
async fn change(tx: &mut StoreTx<'_>, i: u64, version: u64) -> i64 {
    let mut r = record(i, version);
    let first = record(i, 0);
    // A change never moves `rated_at`, and the source and key stay.
    r.rated_at = first.rated_at;
    r.updated_at = first.updated_at + version as i64 * 60_000;
    if version.is_multiple_of(2) {
        r.agent = None;
    }
    write_version(tx, &r).await
}

/// Writes `r` as the next version of its rating, as the pipeline does;
/// returns the revision written.
async fn write_version(tx: &mut StoreTx<'_>, r: &RatingRecord) -> i64 {
    let current = tx
        .lock_rating(&r.source, &r.conversation_id, &r.rating_key)
        .await
        .unwrap()
        .unwrap();
    let revision = current.revision + 1;
    tx.update_rating(&current, r, revision, r.updated_at)
        .await
        .unwrap();
    tx.insert_history(&history(current.id, revision, r))
        .await
        .unwrap();
    revision
}

fn filters() -> Vec<(&'static str, RatingFilter)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        ("none", RatingFilter::default()),
        (
            "team billing (both cases)",
            RatingFilter {
                team: s(&["billing"]),
                ..Default::default()
            },
        ),
        (
            "agent 2",
            RatingFilter {
                agent: s(&["agent 2"]),
                ..Default::default()
            },
        ),
        (
            "source, survey",
            RatingFilter {
                source: s(&["Zendesk"]),
                survey: s(&["csat", "nps"]),
                ..Default::default()
            },
        ),
        (
            "negatives, score 1..3, brand",
            RatingFilter {
                sentiment: s(&["negative"]),
                score_min: Some(1),
                score_max: Some(3),
                brand: s(&["acme"]),
                ..Default::default()
            },
        ),
    ]
}

fn request(
    since: Date,
    until: Date,
    tz: &TimeZone,
    by: GroupBy,
    filter: &RatingFilter,
) -> ReportRequest {
    ReportRequest {
        since,
        until,
        timezone: tz.clone(),
        by,
        filter: filter.clone(),
        min_sample: 5,
    }
}

/// Computes `req` with the rollups and without, requires the same JSON,
/// and returns the report.
async fn assert_rollup_agrees(store: &Store, req: &ReportRequest, what: &str) -> reports::Report {
    store.set_rollup_reads(true);
    let with = reports::compute_report(store, req).await.unwrap();
    store.set_rollup_reads(false);
    let raw = reports::compute_report(store, req).await.unwrap();
    store.set_rollup_reads(true);
    assert_eq!(
        serde_json::to_value(&with).unwrap(),
        serde_json::to_value(&raw).unwrap(),
        "{what}"
    );
    with
}

/// Every grouping and filter, with the rollup and without: the same JSON.
/// Returns how many of the reports read the rollup.
async fn compare_all(store: &Store, tz: &TimeZone, label: &str) -> usize {
    let mut from_rollup = 0;
    for (since, until) in [
        (date(2026, 9, 20), date(2026, 12, 1)),
        (date(2026, 10, 19), date(2026, 11, 2)),
        (date(2026, 10, 25), date(2026, 10, 26)),
    ] {
        for (name, filter) in filters() {
            for by in GroupBy::ALL {
                let req = request(since, until, tz, by, &filter);
                let with = assert_rollup_agrees(
                    store,
                    &req,
                    &format!("{label}: {since}..{until} by {by}, filter {name}"),
                )
                .await;
                let from = reports::period::start_of_day_ms(since, tz).unwrap();
                let to = reports::period::start_of_day_ms(until, tz).unwrap();
                let grouping: Grouping = match by.unit() {
                    Some(_) => Grouping::LocalDay(reports::day_offsets(tz, from, to)),
                    None => match by {
                        GroupBy::Agent => GroupColumn::Agent,
                        GroupBy::Team => GroupColumn::Team,
                        GroupBy::Source => GroupColumn::Source,
                        GroupBy::Survey => GroupColumn::Survey,
                        GroupBy::Brand => GroupColumn::Brand,
                        GroupBy::Customer => GroupColumn::Customer,
                        _ => GroupColumn::Tag,
                    }
                    .into(),
                };
                let reads = store
                    .report_reads_rollup(&[(from, to)], grouping, &filter)
                    .await
                    .unwrap();
                // Customer and tag stay on the ratings; all else reads the
                // rollup.
                assert_eq!(
                    reads,
                    !matches!(by, GroupBy::Customer | GroupBy::Tag),
                    "{label}: by {by}, filter {name}"
                );
                if reads {
                    from_rollup += 1;
                }
                // Something to compare: the whole range has ratings.
                if name == "none" {
                    assert!(with.total.figures.responses() > 0);
                }
            }
        }
    }
    from_rollup
}

#[tokio::test]
async fn the_rollup_gives_the_raw_numbers_for_every_grouping_and_filter() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        let built = store.ensure_rollup("Europe/Berlin").await.unwrap();
        assert!(!built.rebuilt, "test_store built it already");
        seed(&store).await;
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let read = compare_all(&store, &berlin, &format!("{backend:?} Berlin")).await;
        assert!(read > 100, "{read}");

        // In UTC the Berlin rollup cannot answer (its days end an hour or
        // two apart): the reports read the ratings, and still agree.
        let utc = TimeZone::UTC;
        let req = request(
            date(2026, 10, 1),
            date(2026, 11, 1),
            &utc,
            GroupBy::Week,
            &RatingFilter::default(),
        );
        let from = reports::period::start_of_day_ms(req.since, &utc).unwrap();
        let to = reports::period::start_of_day_ms(req.until, &utc).unwrap();
        assert!(
            !store
                .report_reads_rollup(&[(from, to)], GroupColumn::Team, &RatingFilter::default())
                .await
                .unwrap()
        );

        // The rollup the writes kept is the one a rebuild computes.
        let kept = store.rollup_rows().await.unwrap();
        assert!(kept.len() > 100);
        store.drop_rollup().await.unwrap();
        let rebuilt = store.ensure_rollup("Europe/Berlin").await.unwrap();
        assert_eq!((rebuilt.rebuilt, rebuilt.reason), (true, Some("missing")));
        assert_eq!(rebuilt.ratings, 420);
        assert_eq!(store.rollup_rows().await.unwrap(), kept, "{backend:?}");

        // Another time zone: rebuilt for it, and right in it.
        let again = store.ensure_rollup("UTC").await.unwrap();
        assert_eq!((again.rebuilt, again.reason), (true, Some("timezone")));
        assert!(
            store
                .report_reads_rollup(&[(from, to)], GroupColumn::Team, &RatingFilter::default())
                .await
                .unwrap()
        );
        let read = compare_all(&store, &utc, &format!("{backend:?} UTC")).await;
        assert!(read > 100, "{read}");
        // Unchanged: no rebuild.
        assert!(!store.ensure_rollup("UTC").await.unwrap().rebuilt);
        store.close().await;
    }
}

#[tokio::test]
async fn the_group_commit_writer_keeps_the_rollup() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let app = TestApp::spawn(
            settings(
                &db.url,
                Some(&slack.uri()),
                "[reports]\ntimezone = \"Europe/Berlin\"\n",
            ),
            ManualClock::starting_now(),
        )
        .await;
        // Concurrent webhooks share group commits: new ratings, and changes
        // of ratings (another score, another team and agent).
        let first: Vec<_> = (1..=12u64)
            .map(|t| zendesk_body(t, if t.is_multiple_of(3) { "bad" } else { "good" }, ""))
            .collect();
        let posts = first.iter().map(|b| app.post_zendesk(b));
        for (status, body) in futures::future::join_all(posts).await {
            assert_eq!(status, 200, "{body}");
        }
        app.clock.advance(Duration::from_secs(60));
        let changed: Vec<_> = (1..=12u64)
            .filter(|t| t.is_multiple_of(2))
            .map(|t| {
                let mut b = zendesk_body(
                    t,
                    if t.is_multiple_of(4) { "good" } else { "bad" },
                    "changed",
                );
                b["ticket"]["group"] = "Tech".into();
                b["assignee"]["name"] = "Kim Agent".into();
                b["updated_at"] = format!(
                    "{}",
                    jiff::Timestamp::from_millisecond(app.clock.now_ms()).unwrap()
                )
                .into();
                b
            })
            .collect();
        let posts = changed.iter().map(|b| app.post_zendesk(b));
        for (status, body) in futures::future::join_all(posts).await {
            assert_eq!(status, 200, "{body}");
        }
        let store = &app.app.store;
        let kept = store.rollup_rows().await.unwrap();
        let kept_follow_ups = store.follow_up_rollup_rows().await.unwrap();
        // Ratings 3, 6, 9, 12 were bad, 2 and 10 turned bad: six ever
        // negative, 12 (turned good) recovered.
        let ever: i64 = kept_follow_ups
            .iter()
            .filter(|r| r.0 == 3)
            .map(|r| r.4)
            .sum();
        assert_eq!(ever, 6, "{backend:?}: {kept_follow_ups:?}");
        // Three levels of twelve ratings, counted once each.
        let total: i64 = kept.iter().filter(|r| r.0 == 3).map(|r| r.6).sum();
        assert_eq!(total, 12, "{backend:?}: {kept:?}");
        assert!(
            kept.iter()
                .any(|r| r.0 == 3 && r.5.ends_with("/Tech/Kim Agent")),
            "{kept:?}"
        );
        store.drop_rollup().await.unwrap();
        assert!(store.ensure_rollup("Europe/Berlin").await.unwrap().rebuilt);
        assert_eq!(store.rollup_rows().await.unwrap(), kept, "{backend:?}");
        assert_eq!(
            store.follow_up_rollup_rows().await.unwrap(),
            kept_follow_ups,
            "{backend:?}"
        );
        app.stop().await;
    }
}

/// Follow-up counts per grouping and filter, sorted.
async fn follow_up_counts(
    store: &Store,
    range: (i64, i64),
    group: Grouping,
    filter: &RatingFilter,
) -> Vec<FollowUpCount> {
    let mut rows = store
        .report_follow_up_counts(&[range], group, filter)
        .await
        .unwrap();
    rows.sort_by(|a, b| {
        (
            &a.grp,
            a.alerted,
            a.acked,
            a.followed_up,
            a.recovered,
            &a.outcome,
        )
            .cmp(&(
                &b.grp,
                b.alerted,
                b.acked,
                b.followed_up,
                b.recovered,
                &b.outcome,
            ))
    });
    rows
}

/// Every follow-up count, grouped every way the rollup answers, with the
/// rollup and without; the follow-up figures of a report by week and by
/// agent; and the rollup the writes kept against a rebuilt one.
async fn compare_follow_ups(store: &Store, step: &str) {
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    for (since, until) in [
        (date(2026, 9, 20), date(2026, 12, 1)),
        (date(2026, 10, 19), date(2026, 11, 2)),
    ] {
        let from = reports::period::start_of_day_ms(since, &berlin).unwrap();
        let to = reports::period::start_of_day_ms(until, &berlin).unwrap();
        let mut groupings: Vec<Grouping> = [
            GroupColumn::Range,
            GroupColumn::Agent,
            GroupColumn::Team,
            GroupColumn::Source,
            GroupColumn::Survey,
            GroupColumn::Brand,
        ]
        .into_iter()
        .map(Grouping::from)
        .collect();
        groupings.push(Grouping::LocalDay(reports::day_offsets(&berlin, from, to)));
        for (name, filter) in filters() {
            for group in &groupings {
                store.set_rollup_reads(true);
                let with = follow_up_counts(store, (from, to), group.clone(), &filter).await;
                store.set_rollup_reads(false);
                let raw = follow_up_counts(store, (from, to), group.clone(), &filter).await;
                store.set_rollup_reads(true);
                assert_eq!(
                    with, raw,
                    "{step}: {since}..{until} {group:?}, filter {name}"
                );
            }
        }
        for by in [GroupBy::Week, GroupBy::Agent, GroupBy::Team] {
            let req = request(since, until, &berlin, by, &RatingFilter::default());
            assert_rollup_agrees(store, &req, &format!("{step}: {since}..{until} by {by}")).await;
        }
    }
    let kept = store.follow_up_rollup_rows().await.unwrap();
    store.drop_rollup().await.unwrap();
    assert!(store.ensure_rollup("Europe/Berlin").await.unwrap().rebuilt);
    assert_eq!(store.follow_up_rollup_rows().await.unwrap(), kept, "{step}");
}

/// The ids of seeded ratings negative now, in seeding order.
async fn negatives(store: &Store) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for i in 0..420u64 {
        let r = store.rating("zendesk", &format!("c{i}"), "").await.unwrap();
        let r = match r {
            Some(r) => r,
            None => store
                .rating("freshdesk", &format!("c{i}"), "")
                .await
                .unwrap()
                .unwrap(),
        };
        if r.sentiment == "negative" {
            out.push((r.id, r.revision));
        }
    }
    out
}

/// Writes a new version of seeded rating `i` with `sentiment` (and
/// `team`/`agent` when given) in a transaction of its own.
async fn new_version(
    store: &Store,
    i: u64,
    sentiment: &str,
    team: Option<&str>,
    agent: Option<&str>,
) {
    let mut r = record(i, 0);
    (r.survey, r.scale, r.score) = ("csat".into(), "binary".into(), 0);
    if sentiment != "negative" {
        r.score = 1;
    }
    r.sentiment = sentiment.into();
    r.team = team.map(str::to_string);
    r.agent = agent.map(str::to_string);
    r.updated_at += 3_600_000;
    let mut tx = store.begin().await.unwrap();
    write_version(&mut tx, &r).await;
    tx.commit().await.unwrap();
}

/// A batch of sends longer than one statement's rows: each row gets its own
/// Slack channel, `ts` and time, a row whose claim another dispatcher took
/// is not recorded, and the answers follow the input order.
#[tokio::test]
async fn a_batch_of_sends_records_each_row_under_its_own_claim() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        seed(&store).await;
        let now = ms("2026-12-01T00:00:00Z");
        let negatives = negatives(&store).await;
        for channel in ["#a", "#b", "#c", "#d", "#e"] {
            enqueue_alerts(&store, &negatives[..60], channel, now).await;
        }
        let claimed = store
            .claim_due_alerts(now, 30_000, "t", 1000)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 300, "{backend:?}");
        let lost = claimed[7].id;
        crate::support::execute_sql(
            &db.url,
            &format!("UPDATE alerts SET claim_token = 'other' WHERE id = {lost}"),
        )
        .await;
        let batch: Vec<SentRecord> = claimed
            .iter()
            .rev()
            .map(|a| SentRecord {
                id: a.id,
                sent_at_ms: now + a.id,
                slack_channel: (a.id % 2 == 0).then(|| format!("C{}", a.id)),
                slack_ts: Some(format!("{}.5", a.id)),
                post_of: (a.kind == "post").then_some(a.rating_id),
            })
            .collect();
        let recorded = store.mark_alerts_sent("t", &batch).await.unwrap();
        let expected: Vec<bool> = batch.iter().map(|s| s.id != lost).collect();
        assert_eq!(recorded, expected, "{backend:?}");
        for alert in store.all_alerts().await.unwrap() {
            if alert.id == lost {
                assert_eq!(alert.state, "pending", "{backend:?}");
                assert_eq!(alert.claim_token.as_deref(), Some("other"));
                assert_eq!(alert.slack_ts, None);
                continue;
            }
            assert_eq!(alert.state, "sent", "{backend:?} {}", alert.id);
            assert_eq!(alert.sent_at, Some(now + alert.id));
            assert_eq!(
                alert.slack_channel,
                (alert.id % 2 == 0).then(|| format!("C{}", alert.id))
            );
            assert_eq!(alert.slack_ts, Some(format!("{}.5", alert.id)));
            assert_eq!((alert.claim_token, alert.attempts), (None, 1));
        }
        compare_follow_ups(&store, &format!("{backend:?} batch sent")).await;
    }
}

#[tokio::test]
async fn the_follow_up_rollup_gives_the_raw_figures_after_every_kind_of_write() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        seed(&store).await;
        compare_follow_ups(&store, &format!("{backend:?} seeded")).await;
        let now = ms("2026-12-01T00:00:00Z");

        // A new negative.
        let mut tx = store.begin().await.unwrap();
        let mut fresh = record(1000, 0);
        (fresh.score, fresh.sentiment) = (0, "negative".into());
        (fresh.survey, fresh.scale) = ("csat".into(), "binary".into());
        tx.insert_ratings(&[&fresh], now).await.unwrap();
        tx.commit().await.unwrap();
        compare_follow_ups(&store, &format!("{backend:?} new negative")).await;

        // Alerts sent, one at a time and in a batch.
        let negatives = negatives(&store).await;
        assert!(negatives.len() > 60, "{}", negatives.len());
        enqueue_alerts(&store, &negatives[..20], "#csat", now).await;
        let claimed = store.claim_due_alerts(now, 30_000, "t", 100).await.unwrap();
        assert_eq!(claimed.len(), 20);
        for a in &claimed[..5] {
            assert!(
                store
                    .mark_alert_sent(a.id, "t", now, Some("C1"), Some("1.1"))
                    .await
                    .unwrap()
            );
        }
        let batch: Vec<SentRecord> = claimed[5..]
            .iter()
            .map(|a| SentRecord {
                id: a.id,
                sent_at_ms: now,
                slack_channel: Some("C1".into()),
                slack_ts: Some("1.2".into()),
                post_of: (a.kind == "post").then_some(a.rating_id),
            })
            .collect();
        let recorded = store.mark_alerts_sent("t", &batch).await.unwrap();
        assert!(recorded.iter().all(|r| *r));
        compare_follow_ups(&store, &format!("{backend:?} alerts sent")).await;

        // Alerts digested in a storm (some of ratings alerted already).
        enqueue_alerts(&store, &negatives[15..35], "#storm", now).await;
        let digest = store.collapse_storm("#storm", now - 1, now).await.unwrap();
        assert!(digest.is_some());
        compare_follow_ups(&store, &format!("{backend:?} alerts digested")).await;

        // Acknowledged; followed up; followed up with an outcome (one
        // followed up before, one not).
        let mut tx = store.begin().await.unwrap();
        for &(id, _) in &negatives[10..25] {
            tx.record_rating_action(id, RatingAction::Acknowledge, "U1", None, now + 60_000)
                .await
                .unwrap();
        }
        for &(id, _) in &negatives[20..30] {
            tx.record_rating_action(id, RatingAction::FollowUp, "U1", None, now + 120_000)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        compare_follow_ups(&store, &format!("{backend:?} acked, followed up")).await;
        let mut tx = store.begin().await.unwrap();
        for &(id, _) in &negatives[25..40] {
            tx.record_outcome(id, "resolved", None, "U2", None, now + 180_000)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        compare_follow_ups(&store, &format!("{backend:?} outcomes")).await;

        // Recovery, negative again, another team and agent. The seeded
        // index of a rating: its conversation id.
        let mut handled = Vec::new();
        for &(id, _) in &negatives[12..32] {
            let r = store.rating_by_id(id).await.unwrap().unwrap();
            handled.push(r.conversation_id[1..].parse::<u64>().unwrap());
        }
        for &i in &handled[..10] {
            new_version(&store, i, "positive", None, None).await;
        }
        compare_follow_ups(&store, &format!("{backend:?} recovered")).await;
        for &i in &handled[..5] {
            new_version(&store, i, "negative", None, None).await;
        }
        compare_follow_ups(&store, &format!("{backend:?} negative again")).await;
        for &i in &handled[3..15] {
            new_version(&store, i, "negative", Some("Escalations"), Some("Agent 9")).await;
        }
        compare_follow_ups(&store, &format!("{backend:?} team and agent")).await;

        // Something to compare: every state is in the rollup.
        let rows = store.follow_up_rollup_rows().await.unwrap();
        for (what, found) in [
            ("alerted", rows.iter().any(|r| r.3.starts_with("1/"))),
            ("acked", rows.iter().any(|r| r.3.contains("/1/"))),
            ("outcome", rows.iter().any(|r| r.3.ends_with("/resolved"))),
            ("recovered", rows.iter().any(|r| r.2.contains("/positive/"))),
            (
                "moved",
                rows.iter()
                    .any(|r| r.0 == 3 && r.2.ends_with("/Escalations/Agent 9")),
            ),
        ] {
            assert!(found, "{backend:?}: no {what} row in {rows:?}");
        }
        store.close().await;
    }
}

/// PostgreSQL: an acknowledgement and an alert send on one rating, in two
/// transactions at once, count it once (alerted and acknowledged): the
/// second transaction's touch waits for the first's lock on the rating and
/// then reads its committed state.
#[tokio::test]
async fn two_transactions_changing_one_rating_at_once_count_it_once() {
    for backend in backends() {
        if backend != Backend::Postgres {
            // SQLite has one writer: the two transactions cannot overlap.
            continue;
        }
        let db = TestDatabase::new(backend).await;
        let store = test_store(&db).await;
        let now = ms("2026-12-01T00:00:00Z");
        let mut r = record(1, 0);
        (r.survey, r.scale, r.score, r.sentiment) =
            ("csat".into(), "binary".into(), 0, "negative".into());
        let mut tx = store.begin().await.unwrap();
        let id = tx.insert_ratings(&[&r], now).await.unwrap()[0].unwrap();
        tx.commit().await.unwrap();
        enqueue_alerts(&store, &[(id, 1)], "#csat", now).await;
        let alert = store.claim_due_alerts(now, 60_000, "t", 10).await.unwrap()[0].id;

        let mut ack = store.begin().await.unwrap();
        ack.record_rating_action(id, RatingAction::Acknowledge, "U1", None, now)
            .await
            .unwrap();
        let sender = store.clone();
        let send = tokio::spawn(async move {
            sender
                .mark_alert_sent(alert, "t", now, Some("C1"), Some("1.1"))
                .await
                .unwrap()
        });
        // Until the send waits for the rating's lock (or, were there no
        // lock, has finished).
        let watch = sqlx::PgPool::connect(&db.url).await.unwrap();
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&watch)
            .await
            .unwrap();
            if waiting > 0 || send.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        watch.close().await;
        ack.commit().await.unwrap();
        assert!(send.await.unwrap());

        let rows = store.follow_up_rollup_rows().await.unwrap();
        let level3: Vec<_> = rows.iter().filter(|r| r.0 == 3).collect();
        assert_eq!(level3.len(), 1, "{rows:?}");
        assert_eq!(
            (level3[0].3.as_str(), level3[0].4),
            ("1/1/0/", 1),
            "{rows:?}"
        );
        store.drop_rollup().await.unwrap();
        store.ensure_rollup("Europe/Berlin").await.unwrap();
        assert_eq!(store.follow_up_rollup_rows().await.unwrap(), rows);
        store.close().await;
    }
}
