//! Sending one claimed row. A send that went out is returned to be recorded
//! with the rest of its batch (one commit for the batch); any other outcome
//! is recorded at once in one write: retried later (honouring
//! `Retry-After`; marked in doubt when no answer came back), given up,
//! superseded or skipped.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Dispatcher, FlushReport, PostRef};
use crate::clock::ms;
use crate::domain::Sentiment;
use crate::sinks::{MessageKey, Posted, SinkError};
use crate::store::{AlertKind, DueAlert, EarlierRating, SentRecord, StoreResult};

/// What delivering one row came to.
#[derive(Debug)]
pub(super) enum Delivered {
    /// It went out; to be recorded with the batch.
    Sent(SentRecord),
    /// Its outcome is recorded already (or there was nothing to do).
    Done(FlushReport),
}

/// Where a message went in Slack: its channel id and `ts`.
type SlackPlace = (Option<String>, Option<String>);

/// What the sends of one batch share.
#[derive(Default)]
pub(super) struct Batch {
    /// Messages that went out, by row id, with Slack's channel id and
    /// `ts`: a follow-on whose parent was sent earlier in the same batch
    /// threads under it without waiting for the batch's commit.
    pub(super) sent: Mutex<HashMap<i64, SlackPlace>>,
    /// The customers' earlier ratings of its posts, by row id, read in one
    /// statement before the sends ([`Dispatcher::prefetch_stories`]); a
    /// post missing here reads its own.
    pub(super) stories: Mutex<HashMap<i64, Vec<EarlierRating>>>,
}

impl Dispatcher {
    pub(super) async fn deliver(
        &self,
        alert: &DueAlert,
        token: &str,
        batch: &Batch,
    ) -> StoreResult<Delivered> {
        if alert.kind != AlertKind::Post {
            return self.deliver_follow_on(alert, token, batch).await;
        }
        let mut report = FlushReport::default();
        if alert.rating_sentiment.0 == Sentiment::Positive
            && alert.sentiment.0 != Sentiment::Positive
        {
            // It turned positive before anyone was told: nothing to act on.
            if self
                .store
                .finish_alert(alert.id, token, "superseded", None)
                .await?
            {
                report.superseded += 1;
                metrics::counter!("csatwatch_alerts_total", "source" => alert.source.clone(), "state" => "superseded").increment(1);
            }
            return Ok(Delivered::Done(report));
        }
        let mut view = self.view(alert, &PostRef::of(alert));
        self.enrich(&mut view, alert, batch).await?;
        let started = self.clock.now_ms();
        let outcome = self.sink.post_alert(&view, key(alert)).await;
        self.sent_or_failed(alert, token, outcome, started, batch)
            .await
    }

    /// A send's outcome: to record with the batch, or a failure recorded now.
    pub(super) async fn sent_or_failed(
        &self,
        alert: &DueAlert,
        token: &str,
        outcome: Result<Posted, SinkError>,
        started: i64,
        batch: &Batch,
    ) -> StoreResult<Delivered> {
        let now = self.clock.now_ms();
        match outcome {
            Ok(posted) => {
                let channel = posted.channel.or_else(|| {
                    // A digest in webhook mode still records where it went.
                    (alert.kind == AlertKind::Digest).then(|| alert.channel.clone())
                });
                if let Ok(mut sent) = batch.sent.lock() {
                    sent.insert(alert.id, (channel.clone(), posted.ts.clone()));
                }
                Ok(Delivered::Sent(SentRecord {
                    id: alert.id,
                    sent_at_ms: now,
                    slack_channel: channel,
                    slack_ts: posted.ts,
                    post_of: (alert.kind == AlertKind::Post).then_some(alert.rating_id),
                }))
            }
            Err(error) => Ok(Delivered::Done(
                self.record_failure(alert, token, &error, started, now)
                    .await?,
            )),
        }
    }

    /// Counts and logs a send recorded with its batch.
    pub(super) fn sent_recorded(
        &self,
        alert: &DueAlert,
        record: &SentRecord,
        recorded: bool,
    ) -> FlushReport {
        let mut report = FlushReport::default();
        if !recorded {
            report.lost_claims += 1;
            tracing::warn!(
                alert_id = alert.id,
                "alert delivered after its claim was taken over; another replica may post it again"
            );
            return report;
        }
        report.sent += 1;
        match alert.kind {
            AlertKind::Post => {
                metrics::counter!("csatwatch_alerts_total", "source" => alert.source.clone(), "state" => "sent").increment(1);
                metrics::histogram!("csatwatch_alert_latency_seconds", "source" => alert.source.clone())
                    .record((record.sent_at_ms - alert.created_at).max(0) as f64 / 1000.0);
                tracing::info!(alert_id = alert.id, rating_id = alert.rating_id, channel = %alert.channel, sink = self.sink.name(), "alert delivered");
            }
            AlertKind::Digest => {
                tracing::info!(alert_id = alert.id, channel = %alert.channel, "storm digest delivered");
            }
            kind => {
                metrics::counter!("csatwatch_alert_follow_ons_total", "kind" => kind.as_str(), "state" => "sent").increment(1);
                tracing::info!(alert_id = alert.id, kind = kind.as_str(), channel = %alert.channel, "alert message updated in Slack");
            }
        }
        report
    }

    /// Records a failed send: retried later (honouring `Retry-After`, and
    /// in doubt since `started` when no answer came back), or given up (a
    /// permanent error, or past `alerts.give_up_after`).
    pub(super) async fn record_failure(
        &self,
        alert: &DueAlert,
        token: &str,
        error: &SinkError,
        started: i64,
        now: i64,
    ) -> StoreResult<FlushReport> {
        let mut report = FlushReport::default();
        metrics::counter!("csatwatch_sink_errors_total", "class" => error.class().to_string())
            .increment(1);
        let age = now - alert.created_at;
        // `invalid_blocks` and every other permanent error end here at once:
        // sending the same refused message again cannot help.
        if !error.is_retryable() || age >= ms(self.alerts().give_up_after) {
            if self
                .store
                .finish_alert(alert.id, token, "dead", Some(&error.to_string()))
                .await?
            {
                report.dead += 1;
                metrics::counter!("csatwatch_alerts_total", "source" => alert.source.clone(), "state" => "dead")
                    .increment(1);
                tracing::error!(
                    alert_id = alert.id,
                    rating_id = alert.rating_id,
                    kind = alert.kind.as_str(),
                    channel = %alert.channel,
                    attempts = alert.attempts + 1,
                    error = %error,
                    "alert could not be delivered and was given up; fix what `error` names (token, scope, channel: see docs/operations.md, Troubleshooting), the rating is recorded"
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
            let in_doubt = error.is_in_doubt().then_some(started);
            self.store
                .retry_alert(
                    alert.id,
                    token,
                    now + ms(delay),
                    &error.to_string(),
                    in_doubt,
                )
                .await?;
            report.retried += 1;
            tracing::warn!(alert_id = alert.id, kind = alert.kind.as_str(), channel = %alert.channel, error = %error, in_doubt = in_doubt.is_some(), retry_in_ms = ms(delay), "alert delivery failed; will retry");
        }
        Ok(report)
    }
}

/// The message key of a row: its id, and whether an earlier attempt may
/// have been delivered.
pub(super) fn key(alert: &DueAlert) -> MessageKey {
    MessageKey {
        outbox_id: alert.id,
        created_at_ms: alert.created_at,
        in_doubt_since_ms: alert.in_doubt_since,
    }
}
