//! The pipeline: the one place that decides. Given a source's ratings, it
//! works out in one transaction whether each is new, changed, a duplicate or
//! stale; records it and its history; and enqueues the alerts the rules ask
//! for. Webhooks, pollers, backfills and `reprocess` all come through here,
//! so a rating seen by two paths is one rating and at most one alert.

mod follow_ons;
mod writer;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub use follow_ons::ActionOutcome;
use serde::Serialize;
use tokio::sync::Notify;
pub use writer::{PageCursor, Pending, SendsRecorder, Sequence, WriteCounts};

use crate::clock::{Clock, ms};
use crate::dispatcher::Lane;
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

/// The rules in force, shared by every clone of the pipeline and the
/// dispatcher's enrichment, and replaced whole by a settings reload.
pub type SharedRules = Arc<RwLock<Arc<Rules>>>;

/// Decides and records.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    /// Shared by every clone and replaced whole by a settings reload.
    rules: Arc<RwLock<Arc<Rules>>>,
    clock: Arc<dyn Clock>,
    max_age_ms: Arc<AtomicI64>,
    /// `alerts.settle`: how long a new alert waits for a correction.
    settle_ms: Arc<AtomicI64>,
    /// Woken after a commit that enqueued alerts, so they go out at once.
    wake: Arc<Notify>,
    /// Where new alerts are handed to this process's dispatcher already
    /// claimed, while it runs and keeps up (see [`Lane`]).
    lane: Arc<Lane>,
    /// The queue of the writer task that records everything (see
    /// [`writer`]); `None` in the writer's own copy, which records directly.
    writer: Option<writer::Queue>,
}

/// What the pipeline needs to know about the source of a rating.
#[derive(Debug, Clone)]
struct SourceFacts {
    name: String,
    negative_at_or_below: Option<i64>,
}

impl SourceFacts {
    fn of(source: &ConfiguredSource) -> SourceFacts {
        SourceFacts {
            name: source.name.to_string(),
            negative_at_or_below: source.negative_at_or_below,
        }
    }
}

impl Pipeline {
    /// Builds the pipeline and starts its writer task (so it must be called
    /// inside a tokio runtime). The writer stops once every clone of the
    /// returned pipeline is dropped and its queue is empty.
    pub fn new(
        store: Store,
        settings: &Settings,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        let direct = Pipeline {
            store,
            rules: Arc::new(RwLock::new(Arc::new(Rules::from_settings(settings)))),
            clock,
            max_age_ms: Arc::new(AtomicI64::new(ms(settings.alerts.max_age))),
            settle_ms: Arc::new(AtomicI64::new(ms(settings.alerts.settle))),
            wake,
            lane: Arc::new(Lane::default()),
            writer: None,
        };
        // The writer's own connections: it keeps one from batch to batch
        // while more is queued (see `HeldConnection`), so on SQLite its
        // page cache stays warm (a connection drops its cache when another
        // one wrote since its last transaction); the other serves what the
        // writer does beside a batch (the rollup's time zone until it is
        // known, a hand-over refused, retries). Neither waits behind
        // request handlers for a pool connection.
        let queue = writer::start(Pipeline {
            store: direct.store.with_write_pool(2),
            ..direct.clone()
        });
        Pipeline {
            writer: Some(queue),
            ..direct
        }
    }

    /// The fast lane to this process's dispatcher, which opens it while
    /// its run loop runs.
    pub fn lane(&self) -> Arc<Lane> {
        self.lane.clone()
    }

    /// Where this process's dispatcher records the alerts it sent: on
    /// SQLite through the writer, in its next batch (see
    /// [`SendsRecorder`]); on PostgreSQL in a commit of its own, which runs
    /// beside the writer's (row locks, no database-wide write lock) rather
    /// than adding its statements to every batch.
    pub fn sends_recorder(&self) -> Option<SendsRecorder> {
        match self.store.dialect() {
            crate::store::Dialect::Sqlite => {
                self.writer.as_ref().map(writer::Queue::sends_recorder)
            }
            crate::store::Dialect::Postgres => None,
        }
    }

    /// The cell the rules live in (see [`SharedRules`]).
    pub fn shared_rules(&self) -> SharedRules {
        self.rules.clone()
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the rules, `alerts.max_age` and `alerts.settle` (a settings reload): every
    /// rating recorded from now on is routed by the new ones.
    pub fn apply_settings(&self, settings: &Settings) {
        let rules = Arc::new(Rules::from_settings(settings));
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules;
        self.max_age_ms
            .store(ms(settings.alerts.max_age), Ordering::Relaxed);
        self.settle_ms
            .store(ms(settings.alerts.settle), Ordering::Relaxed);
    }

    /// What the writer task has committed so far (group commit at work:
    /// `batches` well below `writes` under load).
    pub fn write_counts(&self) -> WriteCounts {
        self.writer
            .as_ref()
            .map(writer::Queue::stats)
            .unwrap_or_default()
    }

    /// Records `ratings` from `source`, with the raw `delivery` they came in
    /// (none for polls), and returns after the commit that holds them.
    ///
    /// The work is done by the writer task, which commits many deliveries
    /// and poll pages in one transaction (group commit). It runs to its end
    /// even when the caller goes away (a webhook client that disconnects):
    /// a cancelled request never leaves a transaction half done.
    pub async fn record(
        &self,
        source: &ConfiguredSource,
        delivery: Option<&NewDelivery>,
        ratings: &[RatingEvent],
        via: Via,
    ) -> StoreResult<Recorded> {
        let job = writer::Write {
            source: SourceFacts::of(source),
            delivery: delivery.cloned(),
            ratings: ratings.to_vec(),
            via,
            cursor: None,
            sequence: None,
            span: tracing::Span::current(),
            trace_parent: None,
        };
        match &self.writer {
            Some(queue) => queue.submit(job).await,
            None => {
                let recorded = self
                    .write_batch(std::slice::from_ref(&job))
                    .await?
                    .pop()
                    .expect("one result per write");
                self.count(&job.source, &recorded);
                Ok(recorded)
            }
        }
    }

    /// Counts what a committed write did, and wakes the dispatcher when it
    /// enqueued alerts or updates.
    fn count(&self, source: &SourceFacts, recorded: &Recorded) {
        for r in &recorded.ratings {
            metrics::counter!(
                "csatwatch_ratings_total",
                "source" => source.name.clone(),
                "sentiment" => r.sentiment.as_str(),
                "outcome" => r.outcome.as_str(),
            )
            .increment(1);
        }
        if recorded.alerts() > 0 {
            metrics::counter!("csatwatch_alerts_total", "source" => source.name.clone(), "state" => "raised")
                .increment(recorded.alerts() as u64);
        }
        if recorded.alerts() + recorded.ratings.iter().map(|r| r.updates).sum::<usize>() > 0 {
            self.wake.notify_one();
        }
    }

    /// Queues a poll page: its `ratings` and the `cursor` to save with them,
    /// in one transaction, behind every page queued before it. Returns once
    /// queued; [`Pending::wait`] waits for the commit. A poller keeps a few
    /// pages in flight this way, so fetching and committing overlap; when a
    /// page of `sequence` fails, the pages queued after it are refused.
    pub async fn queue_page(
        &self,
        source: &ConfiguredSource,
        ratings: Vec<RatingEvent>,
        via: Via,
        cursor: PageCursor,
        sequence: &Sequence,
    ) -> Pending {
        let write = writer::Write {
            source: SourceFacts::of(source),
            delivery: None,
            ratings,
            via,
            cursor: Some(cursor),
            sequence: Some(sequence.clone()),
            span: tracing::Span::current(),
            trace_parent: None,
        };
        match &self.writer {
            Some(queue) => queue.enqueue(write).await,
            None => Pending::done(
                self.write_batch(std::slice::from_ref(&write))
                    .await
                    .map(|mut r| r.pop().expect("one result per write")),
            ),
        }
    }

    /// The rating row `event` becomes, its sentiment, and its version's time.
    fn rating_record(
        source: &SourceFacts,
        event: &RatingEvent,
        now: i64,
    ) -> (RatingRecord, Sentiment, i64) {
        let sentiment = event.sentiment(source.negative_at_or_below);
        // A version's time: the helpdesk's when it says, else when we saw it.
        let updated_at = event.updated_at_ms.or(event.rated_at_ms).unwrap_or(now);
        let record = RatingRecord {
            source: source.name.clone(),
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
        (record, sentiment, updated_at)
    }

    /// Records a new version of a rating that already exists (the writer
    /// inserts first-seen ratings many at a time): a duplicate, a stale
    /// delivery, or a change with its history row and alerts.
    #[allow(clippy::too_many_arguments)]
    async fn record_existing(
        &self,
        tx: &mut StoreTx<'_>,
        source: &SourceFacts,
        event: &RatingEvent,
        via: Via,
        delivery_id: Option<i64>,
        now: i64,
        trace_parent: Option<&str>,
    ) -> StoreResult<RatingResult> {
        let (record, sentiment, updated_at) = Self::rating_record(source, event, now);
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
        tx.update_rating(&current, &record, revision, now).await?;
        tx.insert_history(&history_row(
            &record,
            current.id,
            revision,
            via,
            delivery_id,
            now,
        ))
        .await?;
        // A message already posted (or about to be) for this rating is kept
        // current: an update per channel, never a second post there.
        let (updates, updated_channels) =
            follow_ons::enqueue_updates(tx, &current, &record, revision, via, now).await?;
        // Only a move into an alerting sentiment alerts; a comment added to
        // a rating that is already negative does not post a second message.
        let (alerts, no_alert_reason) = if current.sentiment != sentiment.as_str() {
            // A change the helpdesk gives no time for (a poll of an API
            // that only dates the first answer) happened no earlier than
            // when we first saw it: its freshness is now.
            let changed_at = event.updated_at_ms.unwrap_or(now);
            let previous_negative_at = self
                .previous_negative_at(tx, source, event, changed_at, current.id)
                .await?;
            let planned = self.plan_alerts(
                source,
                event,
                sentiment,
                current.id,
                revision,
                changed_at,
                via,
                now,
                &updated_channels,
                previous_negative_at,
            );
            match planned {
                Ok(alerts) if alerts.is_empty() => (0, None),
                Ok(mut alerts) => {
                    for alert in &mut alerts {
                        alert.trace_parent = trace_parent.map(str::to_string);
                    }
                    // A changed rating's alerts take the usual path (due
                    // rows, claimed by the dispatcher), not the fast lane.
                    let enqueued = tx
                        .enqueue_alerts(&alerts, self.settle_ms(), None, &[])
                        .await?;
                    (enqueued.iter().flatten().count(), None)
                }
                Err(reason) => (0, reason),
            }
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

    /// `alerts.settle` in ms: how long a new alert is held back, so a quick
    /// correction is what gets posted (0: not held).
    fn settle_ms(&self) -> i64 {
        self.settle_ms.load(Ordering::Relaxed).max(0)
    }

    /// When the customer of `event` last gave another negative rating at
    /// this source within the `repeat_negative` window before `updated_at`
    /// (`None` when no rule asks, the event names no customer, or there is
    /// none). `rating_id` is the rating being decided (0 for one not
    /// inserted yet).
    async fn previous_negative_at(
        &self,
        tx: &mut StoreTx<'_>,
        source: &SourceFacts,
        event: &RatingEvent,
        updated_at: i64,
        rating_id: i64,
    ) -> StoreResult<Option<i64>> {
        match (self.rules().repeat_window(), event.customer.as_deref()) {
            (Some(window), Some(customer)) => {
                tx.previous_negative_at(
                    source.name.as_str(),
                    customer,
                    updated_at - ms(window),
                    rating_id,
                )
                .await
            }
            _ => Ok(None),
        }
    }

    /// The alerts the rules ask for when a rating revision turns
    /// `sentiment`, or why none (`None`: no rule alerts on it).
    /// `previous_negative_at` is what [`Pipeline::previous_negative_at`]
    /// found (the caller looks it up in its transaction first, so planning
    /// stays free of I/O).
    #[allow(clippy::too_many_arguments)]
    fn plan_alerts(
        &self,
        source: &SourceFacts,
        event: &RatingEvent,
        sentiment: Sentiment,
        rating_id: i64,
        revision: i64,
        updated_at: i64,
        via: Via,
        now: i64,
        already_posted: &[String],
        previous_negative_at: Option<i64>,
    ) -> Result<Vec<NewAlert>, Option<&'static str>> {
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
            company: event.company.as_deref(),
            previous_negative_ms_ago: previous_negative_at.map(|at| (updated_at - at).max(0)),
        };
        let rules = self.rules();
        let routes = match rules.route(&facts) {
            Routing::Alert(routes) => routes,
            Routing::Muted { .. } => return Err(Some("muted by a rule")),
            Routing::NoAlert => return Err(None),
        };
        if !via.may_alert() {
            return Err(Some("backfills never alert"));
        }
        if now - updated_at > self.max_age_ms.load(Ordering::Relaxed) {
            return Err(Some("older than alerts.max_age"));
        }
        Ok(routes
            .into_iter()
            .filter(|route| !already_posted.contains(&route.channel))
            .map(|route| {
                let escalation = rules.escalation(route.rule.as_deref());
                NewAlert {
                    rating_id,
                    revision,
                    rule: route.rule,
                    channel: route.channel,
                    mentions: serde_json::to_string(&route.mentions)
                        .unwrap_or_else(|_| "[]".into()),
                    sentiment: sentiment.as_str().to_string(),
                    created_at_ms: now,
                    escalate_at: escalation.as_ref().map(|(after, _)| now + ms(*after)),
                    escalate_to: escalation
                        .map(|(_, to)| serde_json::to_string(&to).unwrap_or_else(|_| "[]".into())),
                    trace_parent: None,
                }
            })
            .collect())
    }
}

/// The history row of `record` at `revision`.
fn history_row(
    record: &RatingRecord,
    rating_id: i64,
    revision: i64,
    via: Via,
    delivery_id: Option<i64>,
    now: i64,
) -> HistoryRecord {
    HistoryRecord {
        rating_id,
        revision,
        score: record.score,
        sentiment: record.sentiment.clone(),
        comment: record.comment.clone(),
        updated_at: record.updated_at,
        recorded_at: now,
        via: via.as_str().to_string(),
        delivery_id,
    }
}

/// Whether a delivery repeats the recorded version: same score on the same
/// scale and the same comment.
fn same_version(current: &StoredRating, new: &RatingRecord) -> bool {
    current.score == new.score && current.scale == new.scale && current.comment == new.comment
}
