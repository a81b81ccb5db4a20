//! The outbox dispatcher: claims due alerts, renders them from the rating
//! as it is now, delivers them through the sink, and records the outcome.
//!
//! Delivery is at least once: a claim is a lease with a fencing token, so a
//! replica that dies mid-send loses its claim when the lease runs out and
//! another sends the alert. Only a crash between Slack's answer and the
//! commit that records it can repeat a message.
//!
//! Retries back off exponentially with jitter and honour `Retry-After`; an
//! alert still failing after `alerts.give_up_after`, or refused for good
//! (`channel_not_found`, `invalid_auth`, …), is marked dead and logged at ERROR.

mod follow_ons;
mod pacing;
mod story;

pub use story::Enrichment;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, ms};
use crate::domain::{Scale, Score, Sentiment};
use crate::settings::AlertSettings;
use crate::sinks::{Acted, AlertView, Sink, SinkError};
use crate::sources::SourceRegistry;
use crate::store::{AlertRecord, Store, StoreResult, StoredRating};
use pacing::Pacer;

/// What one flush did, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
    pub superseded: usize,
    /// Sends whose claim had been taken over before they were recorded.
    pub lost_claims: usize,
    /// Updates and thread replies with nothing to do (webhook mode, or the
    /// message they belong to was never posted).
    pub skipped: usize,
    /// Storm digests that replaced waiting alerts.
    pub digests: usize,
    /// Escalations enqueued.
    pub escalations: usize,
}

impl FlushReport {
    fn add(&mut self, other: FlushReport) {
        self.sent += other.sent;
        self.retried += other.retried;
        self.dead += other.dead;
        self.superseded += other.superseded;
        self.lost_claims += other.lost_claims;
        self.skipped += other.skipped;
        self.digests += other.digests;
        self.escalations += other.escalations;
    }
}

/// Delivers the outbox.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    sink: Sink,
    clock: Arc<dyn Clock>,
    settings: AlertSettings,
    wake: Arc<Notify>,
    /// Prefix of this process's claim tokens.
    instance: String,
    source_kinds: HashMap<String, &'static str>,
    /// Per-channel and workspace pacing, and Slack's `Retry-After`.
    pacer: Pacer,
    /// Serialises flushes within this process (the run loop and a manual
    /// `flush` from tests or commands).
    flushing: Mutex<()>,
    /// Actions, outcome, the customer's story and names (closing the loop).
    enrichment: Option<Enrichment>,
}

const BATCH: i64 = 25;
/// Longest pacing wait a flush sleeps through; longer ones hand the alert
/// back to the outbox so other channels are not held up.
const MAX_PACING_WAIT: Duration = Duration::from_secs(5);

impl Dispatcher {
    pub fn new(
        store: Store,
        sink: Sink,
        clock: Arc<dyn Clock>,
        settings: AlertSettings,
        wake: Arc<Notify>,
        sources: &SourceRegistry,
    ) -> Self {
        Self::with_workspace_cap(store, sink, clock, settings, wake, sources, 100)
    }

    /// As [`Dispatcher::new`], with `slack.max_per_minute`.
    pub fn with_workspace_cap(
        store: Store,
        sink: Sink,
        clock: Arc<dyn Clock>,
        settings: AlertSettings,
        wake: Arc<Notify>,
        sources: &SourceRegistry,
        max_per_minute: u32,
    ) -> Self {
        Dispatcher {
            pacer: Pacer::new(
                settings.channel_interval,
                settings.channel_burst,
                max_per_minute,
            ),
            store,
            sink,
            clock,
            settings,
            wake,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            source_kinds: sources
                .iter()
                .map(|s| (s.name.to_string(), s.kind()))
                .collect(),
            flushing: Mutex::new(()),
            enrichment: None,
        }
    }

    /// Alerts also show the helpdesk actions, the follow-up outcome, the
    /// customer's story and names for ids; rules may DM the rated agent.
    pub fn with_enrichment(mut self, enrichment: Enrichment) -> Self {
        self.enrichment = Some(enrichment);
        self
    }

    /// What wakes the run loop (after something was enqueued).
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Runs until `cancel`: flushes whenever woken (right after a commit that
    /// enqueued alerts), when the next retry falls due, and every 30 s.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut db_backoff = Duration::from_secs(1);
        loop {
            let wait = match self.flush_until(&cancel).await {
                Ok(_) => {
                    db_backoff = Duration::from_secs(1);
                    self.until_next_due().await
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_s = db_backoff.as_secs(), "alert dispatcher cannot reach the database");
                    let wait = db_backoff;
                    db_backoff = (db_backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        match self.store.release_claims(&self.instance).await {
            Ok(n) if n > 0 => {
                tracing::info!(released = n, "released claimed alerts for another replica")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release claimed alerts; they are retried when their lease ends")
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let idle = Duration::from_secs(30);
        match self.store.next_alert_due_at().await {
            Ok(Some(at)) => {
                let ms = (at - self.clock.now_ms()).clamp(0, idle.as_millis() as i64);
                Duration::from_millis(ms as u64).max(Duration::from_millis(50))
            }
            _ => idle,
        }
    }

    /// Delivers every alert due now, and returns what it did.
    pub async fn flush(&self) -> StoreResult<FlushReport> {
        self.flush_until(&CancellationToken::new()).await
    }

    async fn flush_until(&self, cancel: &CancellationToken) -> StoreResult<FlushReport> {
        let _one_at_a_time = self.flushing.lock().await;
        let mut report = self.prepare().await?;
        while !cancel.is_cancelled() {
            let token = format!("{}:{}", self.instance, uuid::Uuid::new_v4().simple());
            let now = self.clock.now_ms();
            let batch = self
                .store
                .claim_due_alerts(now, ms(self.settings.claim_lease), &token, BATCH)
                .await?;
            if batch.is_empty() {
                break;
            }
            for alert in &batch {
                // Between alerts, not during one: the alert being sent at
                // shutdown is finished and recorded.
                if cancel.is_cancelled() {
                    break;
                }
                report.add(self.deliver(alert, &token).await?);
            }
            if (batch.len() as i64) < BATCH {
                break;
            }
        }
        // Fresh gauges right after a flush that changed the outbox; the
        // periodic task keeps them current in between (an idle wake-up
        // would only repeat its queries).
        if report != FlushReport::default() {
            let _ = crate::gauges::refresh(&self.store, self.clock.now_ms()).await;
        }
        Ok(report)
    }

    async fn deliver(&self, alert: &AlertRecord, token: &str) -> StoreResult<FlushReport> {
        if alert.kind != "post" {
            return self.deliver_follow_on(alert, token).await;
        }
        let mut report = FlushReport::default();
        let Some(rating) = self.store.rating_by_id(alert.rating_id).await? else {
            self.store
                .finish_alert(alert.id, token, "dead", Some("the rating no longer exists"))
                .await?;
            report.dead += 1;
            metrics::counter!("csatwatch_alerts_total", "source" => "unknown", "state" => "dead")
                .increment(1);
            return Ok(report);
        };
        let positive = Sentiment::Positive.as_str();
        if rating.sentiment == positive && alert.sentiment != positive {
            // It turned positive before anyone was told: nothing to act on.
            if self
                .store
                .finish_alert(alert.id, token, "superseded", None)
                .await?
            {
                report.superseded += 1;
                metrics::counter!("csatwatch_alerts_total", "source" => rating.source.clone(), "state" => "superseded").increment(1);
            }
            return Ok(report);
        }

        if !self.pace(alert, token, &alert.channel).await? {
            report.retried += 1;
            return Ok(report);
        }

        // Renew the claim right before the send: a batch that took longer
        // than the lease must not post an alert another replica now holds.
        let lease_end = self.clock.now_ms() + ms(self.settings.claim_lease);
        if !self.store.extend_claim(alert.id, token, lease_end).await? {
            report.lost_claims += 1;
            return Ok(report);
        }
        let view = self.full_view(alert, &rating).await?;
        let outcome = self.sink.post(&view).await;
        let now = self.clock.now_ms();
        match outcome {
            Ok(posted) => {
                let recorded = self
                    .store
                    .mark_alert_sent(
                        alert.id,
                        token,
                        now,
                        posted.channel.as_deref(),
                        posted.ts.as_deref(),
                    )
                    .await?;
                if recorded {
                    report.sent += 1;
                    metrics::counter!("csatwatch_alerts_total", "source" => rating.source.clone(), "state" => "sent").increment(1);
                    metrics::histogram!("csatwatch_alert_latency_seconds", "source" => rating.source.clone())
                        .record((now - alert.created_at).max(0) as f64 / 1000.0);
                    tracing::info!(alert_id = alert.id, rating_id = alert.rating_id, channel = %alert.channel, sink = self.sink.name(), "alert delivered");
                    self.notify_agent(alert, &rating, &view).await;
                } else {
                    report.lost_claims += 1;
                    tracing::warn!(
                        alert_id = alert.id,
                        "alert delivered after its claim was taken over; another replica may post it again"
                    );
                }
            }
            Err(error) => report.add(self.record_failure(alert, token, &error, now).await?),
        }
        Ok(report)
    }

    /// Records a failed send: retried later (honouring `Retry-After`), or
    /// given up (a permanent error, or past `alerts.give_up_after`).
    async fn record_failure(
        &self,
        alert: &AlertRecord,
        token: &str,
        error: &SinkError,
        now: i64,
    ) -> StoreResult<FlushReport> {
        let mut report = FlushReport::default();
        metrics::counter!("csatwatch_sink_errors_total", "class" => error.class().to_string())
            .increment(1);
        let age = now - alert.created_at;
        // `invalid_blocks` and every other permanent error end here at once:
        // sending the same refused message again cannot help.
        if !error.is_retryable() || age >= ms(self.settings.give_up_after) {
            if self
                .store
                .finish_alert(alert.id, token, "dead", Some(&error.to_string()))
                .await?
            {
                report.dead += 1;
                // A rare path: one more read to label the metric by source.
                let source = match self.store.rating_by_id(alert.rating_id).await {
                    Ok(Some(rating)) => rating.source,
                    _ => "unknown".to_string(),
                };
                metrics::counter!("csatwatch_alerts_total", "source" => source, "state" => "dead")
                    .increment(1);
                tracing::error!(
                    alert_id = alert.id,
                    rating_id = alert.rating_id,
                    kind = %alert.kind,
                    channel = %alert.channel,
                    attempts = alert.attempts + 1,
                    error = %error,
                    "alert could not be delivered and was given up; fix the cause, the rating is recorded"
                );
            }
        } else {
            let retry_after = error.retry_after();
            if let Some(after) = retry_after {
                self.pacer.block(&alert.channel, now + ms(after)).await;
            }
            let delay = self
                .backoff(alert.attempts)
                .max(retry_after.unwrap_or_default());
            self.store
                .reschedule_alert(alert.id, token, now + ms(delay), &error.to_string())
                .await?;
            report.retried += 1;
            tracing::warn!(alert_id = alert.id, kind = %alert.kind, channel = %alert.channel, error = %error, retry_in_ms = ms(delay), "alert delivery failed; will retry");
        }
        Ok(report)
    }

    /// Waits for a slot to post to `channel` (pace, burst, workspace cap).
    /// False when the alert was handed back for later instead: the channel
    /// is rate-limited by Slack, or the wait is too long to hold the flush.
    async fn pace(&self, alert: &AlertRecord, token: &str, channel: &str) -> StoreResult<bool> {
        let now = self.clock.now_ms();
        if let Some(until) = self.pacer.blocked_until(channel, now).await {
            self.store
                .reschedule_alert(
                    alert.id,
                    token,
                    until,
                    "waiting for the channel's rate limit",
                )
                .await?;
            return Ok(false);
        }
        let wait = self.pacer.reserve(channel).await;
        if wait > MAX_PACING_WAIT {
            self.store
                .reschedule_alert(
                    alert.id,
                    token,
                    now + ms(wait),
                    "waiting for the workspace's message cap",
                )
                .await?;
            return Ok(false);
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(true)
    }

    /// Work decided at the start of each flush: storms folded into digests,
    /// and escalations of alerts nobody acknowledged.
    async fn prepare(&self) -> StoreResult<FlushReport> {
        let mut report = FlushReport::default();
        let now = self.clock.now_ms();
        let storm = &self.settings.storm;
        if storm.threshold > 0 {
            let since = now - ms(storm.window);
            for channel in self
                .store
                .storm_channels(since, now, i64::from(storm.threshold))
                .await?
            {
                if let Some(digest_id) = self.store.collapse_storm(&channel, since, now).await? {
                    report.digests += 1;
                    metrics::counter!("csatwatch_storm_digests_total").increment(1);
                    tracing::warn!(%channel, digest_id, threshold = storm.threshold, "alert storm: waiting alerts folded into one digest");
                }
            }
        }
        report.escalations = self.store.enqueue_due_escalations(now).await? as usize;
        Ok(report)
    }

    /// The view of `alert` with who acknowledged and followed up its
    /// rating, and whether it recovered.
    async fn full_view(
        &self,
        alert: &AlertRecord,
        rating: &StoredRating,
    ) -> StoreResult<AlertView> {
        let mut view = self.view(alert, rating);
        let actions = self.store.rating_actions(rating.id).await?;
        let acted = |id: Option<String>, name: Option<String>, at: Option<i64>| {
            Some(Acted {
                user_id: id?,
                user_name: name,
                at_ms: at?,
            })
        };
        view.acknowledged = acted(actions.acked_by, actions.acked_by_name, actions.acked_at);
        view.followed_up = acted(
            actions.followed_up_by,
            actions.followed_up_by_name,
            actions.followed_up_at,
        );
        let positive = Sentiment::Positive.as_str();
        view.recovered = rating.sentiment == positive && alert.sentiment != positive;
        self.enrich(&mut view, rating).await?;
        Ok(view)
    }

    /// Exponential backoff with jitter: between half and all of
    /// `retry_initial × 2^attempts`, capped at `retry_max`.
    fn backoff(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(0, 20) as u32;
        let full = self
            .settings
            .retry_initial
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.settings.retry_max);
        let half = full / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    fn view(&self, alert: &AlertRecord, rating: &StoredRating) -> AlertView {
        let scale: Scale = rating.scale.parse().unwrap_or(Scale::FivePoint);
        AlertView {
            alert_id: alert.id,
            source: rating.source.clone(),
            source_kind: self
                .source_kinds
                .get(&rating.source)
                .copied()
                .unwrap_or("unknown")
                .to_string(),
            conversation_id: rating.conversation_id.clone(),
            rating_key: rating.rating_key.clone(),
            score: Score {
                scale,
                value: rating.score,
            },
            sentiment: rating.sentiment.parse().unwrap_or(Sentiment::Negative),
            comment: rating.comment.clone(),
            agent: rating.agent.clone(),
            team: rating.team.clone(),
            customer: rating.customer.clone(),
            company: rating.company.clone(),
            brand: rating.brand.clone(),
            tags: serde_json::from_str(&rating.tags).unwrap_or_default(),
            url: rating.url.clone(),
            rated_at_ms: rating.updated_at,
            channel: alert.channel.clone(),
            mentions: serde_json::from_str(&alert.mentions).unwrap_or_default(),
            rule: alert.rule.clone(),
            test: false,
            acknowledged: None,
            followed_up: None,
            recovered: false,
            ticket_actions: Vec::new(),
            outcome: None,
            story: None,
        }
    }
}

/// Posts a clearly labelled sample alert straight through the sink.
pub async fn send_test_alert(
    sink: &Sink,
    channel: &str,
    now_ms: i64,
) -> Result<crate::sinks::Posted, SinkError> {
    let view = AlertView {
        alert_id: 0,
        source: "test".into(),
        source_kind: "csatwatch".into(),
        conversation_id: "TEST-1".into(),
        rating_key: String::new(),
        score: Score {
            scale: Scale::Binary,
            value: 0,
        },
        sentiment: Sentiment::Negative,
        comment: Some(
            "This is a test alert from csatwatch send-test-alert. No customer is unhappy.".into(),
        ),
        agent: Some("Test Agent".into()),
        team: Some("Support".into()),
        customer: Some("Test Customer".into()),
        company: None,
        brand: None,
        tags: vec!["test".into()],
        url: None,
        rated_at_ms: now_ms,
        channel: channel.to_string(),
        mentions: Vec::new(),
        rule: None,
        test: true,
        acknowledged: None,
        followed_up: None,
        recovered: false,
        ticket_actions: Vec::new(),
        outcome: None,
        story: None,
    };
    sink.post(&view).await
}
