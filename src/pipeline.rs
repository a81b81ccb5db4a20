//! The pipeline: the one place that decides. Given a source's ratings, it
//! works out in one transaction whether each is new, changed, a duplicate or
//! stale; records it and its history; and enqueues the alerts the rules ask
//! for. Webhooks, pollers, backfills and `reprocess` all come through here,
//! so a rating seen by two paths is one rating and at most one alert.

mod follow_ons;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub use follow_ons::ActionOutcome;
use serde::Serialize;
use tokio::sync::Notify;

use crate::clock::{Clock, ms};
use crate::domain::{RatingEvent, Sentiment, Via};
use crate::rules::{RatingFacts, Routing, Rules};
use crate::settings::Settings;
use crate::sources::ConfiguredSource;
use crate::store::{
    HistoryRecord, NewAlert, NewDelivery, RatingRecord, Store, StoreResult, StoreTx, StoredRating,
};

/// What happened to one rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingOutcome {
    /// First seen.
    New,
    /// A new version of a known rating (score or comment changed).
    Changed,
    /// Seen before, identical: a duplicate.
    Unchanged,
    /// Older than the version already recorded (an out-of-order delivery).
    Stale,
}

impl RatingOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RatingOutcome::New => "new",
            RatingOutcome::Changed => "changed",
            RatingOutcome::Unchanged => "unchanged",
            RatingOutcome::Stale => "stale",
        }
    }
}

/// The result for one rating of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingResult {
    pub rating_id: i64,
    pub conversation_id: String,
    pub outcome: RatingOutcome,
    pub sentiment: Sentiment,
    /// Alerts enqueued by this rating.
    pub alerts: usize,
    /// Updates of messages already posted for it (bot mode: `chat.update`
    /// and a thread reply).
    #[serde(skip_serializing_if = "is_zero")]
    pub updates: usize,
    /// Why no alert, when it is negative and none was enqueued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_alert_reason: Option<&'static str>,
}

/// The result of recording a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    /// The stored delivery's id; `None` for a duplicate delivery or a poll.
    pub delivery_id: Option<i64>,
    /// The same delivery was recorded before: nothing was done.
    pub duplicate_delivery: bool,
    pub ratings: Vec<RatingResult>,
}

impl Recorded {
    /// Whether this changed nothing (a retry of a delivery, or only
    /// ratings already recorded as they are).
    pub fn is_duplicate(&self) -> bool {
        self.duplicate_delivery
            || self
                .ratings
                .iter()
                .all(|r| matches!(r.outcome, RatingOutcome::Unchanged | RatingOutcome::Stale))
    }

    pub fn alerts(&self) -> usize {
        self.ratings.iter().map(|r| r.alerts).sum()
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Decides and records.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    /// Shared by every clone and replaced whole by a settings reload.
    rules: Arc<RwLock<Arc<Rules>>>,
    clock: Arc<dyn Clock>,
    max_age_ms: Arc<AtomicI64>,
    /// Woken after a commit that enqueued alerts, so they go out at once.
    wake: Arc<Notify>,
}

impl Pipeline {
    pub fn new(
        store: Store,
        settings: &Settings,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        Pipeline {
            store,
            rules: Arc::new(RwLock::new(Arc::new(Rules::from_settings(settings)))),
            clock,
            max_age_ms: Arc::new(AtomicI64::new(ms(settings.alerts.max_age))),
            wake,
        }
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the rules and `alerts.max_age` (a settings reload): every
    /// rating recorded from now on is routed by the new ones.
    pub fn apply_settings(&self, settings: &Settings) {
        let rules = Arc::new(Rules::from_settings(settings));
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules;
        self.max_age_ms
            .store(ms(settings.alerts.max_age), Ordering::Relaxed);
    }

    /// Records `ratings` from `source`, with the raw `delivery` they came in
    /// (none for polls), in one transaction. Returns after commit.
    pub async fn record(
        &self,
        source: &ConfiguredSource,
        delivery: Option<&NewDelivery>,
        ratings: &[RatingEvent],
        via: Via,
    ) -> StoreResult<Recorded> {
        let now = self.clock.now_ms();
        let started = std::time::Instant::now();
        let mut tx = self.store.begin().await?;
        let delivery_id = match delivery {
            Some(d) => match tx.insert_delivery(d).await? {
                Some(id) => Some(id),
                None => {
                    tx.commit().await?;
                    crate::telemetry::observe_db("record", started);
                    return Ok(Recorded {
                        delivery_id: None,
                        duplicate_delivery: true,
                        ratings: Vec::new(),
                    });
                }
            },
            None => None,
        };
        let mut results = Vec::with_capacity(ratings.len());
        for event in ratings {
            results.push(
                self.record_one(&mut tx, source, event, via, delivery_id, now)
                    .await?,
            );
        }
        tx.commit().await?;
        crate::telemetry::observe_db("record", started);
        let recorded = Recorded {
            delivery_id,
            duplicate_delivery: false,
            ratings: results,
        };
        for r in &recorded.ratings {
            metrics::counter!(
                "csatwatch_ratings_total",
                "source" => source.name.to_string(),
                "sentiment" => r.sentiment.as_str(),
                "outcome" => r.outcome.as_str(),
            )
            .increment(1);
        }
        if recorded.alerts() > 0 {
            metrics::counter!("csatwatch_alerts_total", "source" => source.name.to_string(), "state" => "raised")
                .increment(recorded.alerts() as u64);
        }
        if recorded.alerts() + recorded.ratings.iter().map(|r| r.updates).sum::<usize>() > 0 {
            self.wake.notify_one();
        }
        Ok(recorded)
    }

    async fn record_one(
        &self,
        tx: &mut StoreTx,
        source: &ConfiguredSource,
        event: &RatingEvent,
        via: Via,
        delivery_id: Option<i64>,
        now: i64,
    ) -> StoreResult<RatingResult> {
        let sentiment = event.sentiment(source.negative_at_or_below);
        // A version's time: the helpdesk's when it says, else when we saw it.
        let updated_at = event.updated_at_ms.or(event.rated_at_ms).unwrap_or(now);
        let record = RatingRecord {
            source: source.name.to_string(),
            conversation_id: event.conversation_id.clone(),
            rating_key: event.rating_key.clone(),
            survey: event.score.survey().as_str().to_string(),
            scale: event.score.scale.as_str().to_string(),
            score: event.score.value,
            normalised: event.score.normalised(),
            sentiment: sentiment.as_str().to_string(),
            comment: event.comment.clone(),
            agent: event.agent.clone(),
            team: event.team.clone(),
            customer: event.customer.clone(),
            company: event.company.clone(),
            brand: event.brand.clone(),
            tags: serde_json::to_string(&event.tags).unwrap_or_else(|_| "[]".into()),
            url: event.url.clone(),
            rated_at: event.rated_at_ms.unwrap_or(updated_at),
            updated_at,
        };
        let history = |rating_id: i64, revision: i64| HistoryRecord {
            rating_id,
            revision,
            score: record.score,
            sentiment: record.sentiment.clone(),
            comment: record.comment.clone(),
            updated_at,
            recorded_at: now,
            via: via.as_str().to_string(),
            delivery_id,
        };

        if let Some(rating_id) = tx.insert_rating(&record, now).await? {
            tx.insert_history(&history(rating_id, 1)).await?;
            let (alerts, no_alert_reason) = self
                .enqueue_alerts(
                    tx,
                    source,
                    event,
                    sentiment,
                    rating_id,
                    1,
                    updated_at,
                    via,
                    now,
                    &[],
                )
                .await?;
            return Ok(RatingResult {
                rating_id,
                conversation_id: event.conversation_id.clone(),
                outcome: RatingOutcome::New,
                sentiment,
                alerts,
                updates: 0,
                no_alert_reason,
            });
        }

        let current = tx
            .lock_rating(&record.source, &record.conversation_id, &record.rating_key)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound)?;
        let result = |outcome, alerts, updates, no_alert_reason| RatingResult {
            rating_id: current.id,
            conversation_id: event.conversation_id.clone(),
            outcome,
            sentiment,
            alerts,
            updates,
            no_alert_reason,
        };
        if event.updated_at_ms.is_some() && updated_at < current.updated_at {
            tx.touch_rating(current.id, now).await?;
            return Ok(result(RatingOutcome::Stale, 0, 0, None));
        }
        if same_version(&current, &record) {
            tx.touch_rating(current.id, now).await?;
            return Ok(result(RatingOutcome::Unchanged, 0, 0, None));
        }
        let revision = current.revision + 1;
        tx.update_rating(current.id, &record, revision, now).await?;
        tx.insert_history(&history(current.id, revision)).await?;
        // A message already posted (or about to be) for this rating is kept
        // current: an update per channel, never a second post there.
        let (updates, updated_channels) =
            follow_ons::enqueue_updates(tx, &current, &record, revision, via, now).await?;
        // Only a move into an alerting sentiment alerts; a comment added to
        // a rating that is already negative does not post a second message.
        let (alerts, no_alert_reason) = if current.sentiment != sentiment.as_str() {
            self.enqueue_alerts(
                tx,
                source,
                event,
                sentiment,
                current.id,
                revision,
                // A change the helpdesk gives no time for (a poll of an API
                // that only dates the first answer) happened no earlier
                // than when we first saw it: its freshness is now.
                event.updated_at_ms.unwrap_or(now),
                via,
                now,
                &updated_channels,
            )
            .await?
        } else {
            (0, None)
        };
        Ok(result(
            RatingOutcome::Changed,
            alerts,
            updates,
            no_alert_reason,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn enqueue_alerts(
        &self,
        tx: &mut StoreTx,
        source: &ConfiguredSource,
        event: &RatingEvent,
        sentiment: Sentiment,
        rating_id: i64,
        revision: i64,
        updated_at: i64,
        via: Via,
        now: i64,
        already_posted: &[String],
    ) -> StoreResult<(usize, Option<&'static str>)> {
        let facts = RatingFacts {
            source: source.name.as_str(),
            sentiment,
            survey: event.score.survey(),
            score: event.score.value,
            tags: &event.tags,
            team: event.team.as_deref(),
            brand: event.brand.as_deref(),
            agent: event.agent.as_deref(),
            has_comment: event.comment.is_some(),
        };
        let rules = self.rules();
        let routes = match rules.route(&facts) {
            Routing::Alert(routes) => routes,
            Routing::Muted { .. } => return Ok((0, Some("muted by a rule"))),
            Routing::NoAlert => return Ok((0, None)),
        };
        if !via.may_alert() {
            return Ok((0, Some("backfills never alert")));
        }
        if now - updated_at > self.max_age_ms.load(Ordering::Relaxed) {
            return Ok((0, Some("older than alerts.max_age")));
        }
        let mut enqueued = 0;
        for route in routes {
            if already_posted.contains(&route.channel) {
                continue;
            }
            let escalation = rules.escalation(route.rule.as_deref());
            let alert = NewAlert {
                rating_id,
                revision,
                rule: route.rule,
                channel: route.channel,
                mentions: serde_json::to_string(&route.mentions).unwrap_or_else(|_| "[]".into()),
                sentiment: sentiment.as_str().to_string(),
                created_at_ms: now,
                escalate_at: escalation.as_ref().map(|(after, _)| now + ms(*after)),
                escalate_to: escalation
                    .map(|(_, to)| serde_json::to_string(&to).unwrap_or_else(|_| "[]".into())),
            };
            if tx.enqueue_alert(&alert).await?.is_some() {
                enqueued += 1;
            }
        }
        Ok((enqueued, None))
    }
}

/// Whether a delivery repeats the recorded version: same score on the same
/// scale and the same comment.
fn same_version(current: &StoredRating, new: &RatingRecord) -> bool {
    current.score == new.score && current.scale == new.scale && current.comment == new.comment
}
