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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, ms};
use crate::domain::{Scale, Score, Sentiment};
use crate::settings::AlertSettings;
use crate::sinks::{AlertView, Sink, SinkError};
use crate::sources::SourceRegistry;
use crate::store::{AlertRecord, Store, StoreResult, StoredRating};

/// What one flush did, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
    pub superseded: usize,
    /// Sends whose claim had been taken over before they were recorded.
    pub lost_claims: usize,
}

impl FlushReport {
    fn add(&mut self, other: FlushReport) {
        self.sent += other.sent;
        self.retried += other.retried;
        self.dead += other.dead;
        self.superseded += other.superseded;
        self.lost_claims += other.lost_claims;
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
    /// When each channel may next be posted to, in clock milliseconds
    /// (pacing and Slack's `Retry-After`).
    channel_ready: Mutex<HashMap<String, i64>>,
    /// Serialises flushes within this process (the run loop and a manual
    /// `flush` from tests or commands).
    flushing: Mutex<()>,
}

const BATCH: i64 = 25;

impl Dispatcher {
    pub fn new(
        store: Store,
        sink: Sink,
        clock: Arc<dyn Clock>,
        settings: AlertSettings,
        wake: Arc<Notify>,
        sources: &SourceRegistry,
    ) -> Self {
        Dispatcher {
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
            channel_ready: Mutex::new(HashMap::new()),
            flushing: Mutex::new(()),
        }
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
        let mut report = FlushReport::default();
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
        // Fresh gauges right after a flush; the periodic task keeps them
        // current in between.
        let _ = crate::gauges::refresh(&self.store, self.clock.now_ms()).await;
        Ok(report)
    }

    async fn deliver(&self, alert: &AlertRecord, token: &str) -> StoreResult<FlushReport> {
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

        // Pacing: about one message per second per channel, and a channel
        // Slack rate-limited waits out its Retry-After.
        let ready_at = self.channel_ready.lock().await.get(&alert.channel).copied();
        if let Some(ready_at) = ready_at {
            let wait_ms = ready_at - self.clock.now_ms();
            if wait_ms > ms(self.settings.channel_interval) {
                // A long wait (Retry-After): hand the slot back and retry later.
                self.store
                    .reschedule_alert(
                        alert.id,
                        token,
                        ready_at,
                        "waiting for the channel's rate limit",
                    )
                    .await?;
                report.retried += 1;
                return Ok(report);
            }
            if wait_ms > 0 {
                tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
            }
        }

        // Renew the claim right before the send: a batch that took longer
        // than the lease must not post an alert another replica now holds.
        let lease_end = self.clock.now_ms() + ms(self.settings.claim_lease);
        if !self.store.extend_claim(alert.id, token, lease_end).await? {
            report.lost_claims += 1;
            return Ok(report);
        }
        let view = self.view(alert, &rating);
        let outcome = self.sink.post(&view).await;
        let now = self.clock.now_ms();
        self.channel_ready.lock().await.insert(
            alert.channel.clone(),
            now + ms(self.settings.channel_interval),
        );
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
                } else {
                    report.lost_claims += 1;
                    tracing::warn!(
                        alert_id = alert.id,
                        "alert delivered after its claim was taken over; another replica may post it again"
                    );
                }
            }
            Err(error) => {
                metrics::counter!("csatwatch_sink_errors_total", "class" => error.class().to_string()).increment(1);
                let age = now - alert.created_at;
                if !error.is_retryable() || age >= ms(self.settings.give_up_after) {
                    if self
                        .store
                        .finish_alert(alert.id, token, "dead", Some(&error.to_string()))
                        .await?
                    {
                        report.dead += 1;
                        metrics::counter!("csatwatch_alerts_total", "source" => rating.source.clone(), "state" => "dead").increment(1);
                        tracing::error!(
                            alert_id = alert.id,
                            rating_id = alert.rating_id,
                            channel = %alert.channel,
                            attempts = alert.attempts + 1,
                            error = %error,
                            "alert could not be delivered and was given up; fix the cause, the rating is recorded"
                        );
                    }
                } else {
                    let retry_after = error.retry_after();
                    if let Some(after) = retry_after {
                        self.channel_ready
                            .lock()
                            .await
                            .insert(alert.channel.clone(), now + ms(after));
                    }
                    let delay = self
                        .backoff(alert.attempts)
                        .max(retry_after.unwrap_or_default());
                    self.store
                        .reschedule_alert(alert.id, token, now + ms(delay), &error.to_string())
                        .await?;
                    report.retried += 1;
                    tracing::warn!(alert_id = alert.id, channel = %alert.channel, error = %error, retry_in_ms = ms(delay), "alert delivery failed; will retry");
                }
            }
        }
        Ok(report)
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
    };
    sink.post(&view).await
}
