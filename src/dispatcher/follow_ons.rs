//! Delivery of the outbox rows that follow a post: an update (`chat.update`
//! of the original message re-rendered from the rating as it is now, then a
//! short thread reply saying what changed), an escalation (a thread reply),
//! a storm digest (one message) and its items (thread replies).
//!
//! Each waits for the message it belongs to: while that is still pending it
//! is handed back; if that message has no `ts` (webhook or log mode, or it
//! was never delivered) there is nothing to edit or thread under, and the
//! row is recorded as `skipped`, not as an error.

use std::time::Duration;

use super::{Dispatcher, FlushReport};
use crate::clock::ms;
use crate::sinks::slack::threads;
use crate::store::{AlertRecord, StoreResult};

impl Dispatcher {
    pub(super) async fn deliver_follow_on(
        &self,
        alert: &AlertRecord,
        token: &str,
    ) -> StoreResult<FlushReport> {
        let mut report = FlushReport::default();
        if alert.kind == "digest" {
            return self.deliver_digest(alert, token).await;
        }
        let parent = match alert.parent_id {
            Some(id) => self.store.alert(id).await?,
            None => None,
        };
        let Some(parent) = parent else {
            if self
                .store
                .finish_alert(
                    alert.id,
                    token,
                    "dead",
                    Some("the message it belongs to is gone"),
                )
                .await?
            {
                report.dead += 1;
            }
            return Ok(report);
        };
        if parent.state == "pending" {
            // The message is not out yet; come back once it may be.
            let later = self.clock.now_ms() + ms(self.settings.channel_interval).max(1000);
            self.store
                .reschedule_alert(
                    alert.id,
                    token,
                    later,
                    "waiting for the message it belongs to",
                )
                .await?;
            report.retried += 1;
            return Ok(report);
        }
        let (Some(channel), Some(ts)) = (parent.slack_channel.clone(), parent.slack_ts.clone())
        else {
            if self
                .store
                .finish_alert(alert.id, token, "skipped", Some(skip_reason(&parent)))
                .await?
            {
                report.skipped += 1;
            }
            return Ok(report);
        };
        // The post being updated, or the rating listed: rendered as it is now.
        let post = if alert.kind == "digest_item" {
            alert
        } else {
            &parent
        };
        let Some(rating) = self.store.rating_by_id(post.rating_id).await? else {
            self.store
                .finish_alert(alert.id, token, "dead", Some("the rating no longer exists"))
                .await?;
            report.dead += 1;
            return Ok(report);
        };
        let view = self.full_view(post, &rating).await?;
        if alert.kind == "escalation" && (view.acknowledged.is_some() || view.followed_up.is_some())
        {
            // Someone took it between the decision and now.
            if self
                .store
                .finish_alert(alert.id, token, "superseded", None)
                .await?
            {
                report.superseded += 1;
            }
            return Ok(report);
        }
        if !self.pace(alert, token, &channel).await? {
            report.retried += 1;
            return Ok(report);
        }
        let lease_end = self.clock.now_ms() + ms(self.settings.claim_lease);
        if !self.store.extend_claim(alert.id, token, lease_end).await? {
            report.lost_claims += 1;
            return Ok(report);
        }
        let reply = match alert.kind.as_str() {
            "update" => {
                // Edit first: if the reply then fails, the retry edits again
                // (harmless) and replies.
                if let Err(error) = self.sink.update(&channel, &ts, &view).await {
                    let now = self.clock.now_ms();
                    return self.record_failure(alert, token, &error, now).await;
                }
                if !self.pace(alert, token, &channel).await? {
                    report.retried += 1;
                    return Ok(report);
                }
                threads::update_reply(alert.change.as_deref().unwrap_or("Rating updated"), &view)
            }
            "escalation" => {
                let mut view = view;
                view.mentions = serde_json::from_str(&alert.mentions).unwrap_or_default();
                let waited = Duration::from_secs(
                    ((self.clock.now_ms() - parent.created_at).max(0) / 60_000 * 60) as u64,
                );
                threads::escalation_reply(&view, &humantime::format_duration(waited).to_string())
            }
            _ => threads::digest_item(&view),
        };
        let outcome = self.sink.post_message(&channel, Some(&ts), reply).await;
        let now = self.clock.now_ms();
        match outcome {
            Ok(posted) => {
                if self
                    .store
                    .mark_alert_sent(alert.id, token, now, Some(&channel), posted.ts.as_deref())
                    .await?
                {
                    report.sent += 1;
                    metrics::counter!("csatwatch_alert_follow_ons_total", "kind" => alert.kind.clone(), "state" => "sent").increment(1);
                    tracing::info!(alert_id = alert.id, kind = %alert.kind, parent_id = parent.id, %channel, "alert message updated in Slack");
                } else {
                    report.lost_claims += 1;
                }
            }
            Err(error) => report.add(self.record_failure(alert, token, &error, now).await?),
        }
        Ok(report)
    }

    /// Posts a storm's digest: the count and the worst few, with links.
    async fn deliver_digest(&self, alert: &AlertRecord, token: &str) -> StoreResult<FlushReport> {
        let mut report = FlushReport::default();
        let mut members = Vec::new();
        for post in self.store.digest_members(alert.id).await? {
            if let Some(rating) = self.store.rating_by_id(post.rating_id).await? {
                members.push(self.full_view(&post, &rating).await?);
            }
        }
        let mentions: Vec<String> = serde_json::from_str(&alert.mentions).unwrap_or_default();
        let body = threads::digest(&members, &mentions);
        if !self.pace(alert, token, &alert.channel).await? {
            report.retried += 1;
            return Ok(report);
        }
        let lease_end = self.clock.now_ms() + ms(self.settings.claim_lease);
        if !self.store.extend_claim(alert.id, token, lease_end).await? {
            report.lost_claims += 1;
            return Ok(report);
        }
        let outcome = self.sink.post_message(&alert.channel, None, body).await;
        let now = self.clock.now_ms();
        match outcome {
            Ok(posted) => {
                let channel = posted.channel.as_deref().or(Some(alert.channel.as_str()));
                if self
                    .store
                    .mark_alert_sent(alert.id, token, now, channel, posted.ts.as_deref())
                    .await?
                {
                    report.sent += 1;
                    tracing::info!(alert_id = alert.id, members = members.len(), channel = %alert.channel, "storm digest delivered");
                } else {
                    report.lost_claims += 1;
                }
            }
            Err(error) => report.add(self.record_failure(alert, token, &error, now).await?),
        }
        Ok(report)
    }
}

fn skip_reason(parent: &AlertRecord) -> &'static str {
    if parent.state == "sent" {
        "the message has no ts to update or thread under (an incoming webhook can only post)"
    } else {
        "the message it belongs to was not delivered"
    }
}
