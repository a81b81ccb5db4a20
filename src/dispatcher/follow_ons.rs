//! Delivery of the outbox rows that follow a post: an update (the original
//! message re-rendered from the rating as it is now, then a short thread
//! reply saying what changed), an escalation (a thread reply), a storm
//! digest (one message) and its items (thread replies). What each looks
//! like is the sink's business; the dispatcher only says which it is.
//!
//! Each waits for the message it belongs to: while that is still pending it
//! is handed back; if that message has no `ts` (webhook or log mode, or it
//! was never delivered) there is nothing to edit or thread under, and the
//! row is recorded as `skipped`, not as an error.

use std::time::Duration;

use super::deliver::{Batch, Delivered, key};
use super::{Dispatcher, FlushReport, PostRef};
use crate::clock::ms;
use crate::store::{AlertKind, AlertState, DueAlert, Parent, StoreResult};

impl Dispatcher {
    pub(super) async fn deliver_follow_on(
        &self,
        alert: &DueAlert,
        token: &str,
        batch: &Batch,
    ) -> StoreResult<Delivered> {
        let mut report = FlushReport::default();
        if alert.kind == AlertKind::Digest {
            return self.deliver_digest(alert, token, batch).await;
        }
        let mut row = alert.parent.clone();
        if row.state.as_deref() == Some("pending")
            && let Some(id) = row.id
        {
            // Perhaps sent earlier in this very batch (recorded with it), or
            // by another batch since this one was read: look again.
            let in_batch = batch
                .sent
                .lock()
                .ok()
                .and_then(|sent| sent.get(&id).cloned());
            match in_batch {
                Some((channel, ts)) => {
                    row.state = Some("sent".into());
                    row.slack_channel = channel;
                    row.slack_ts = ts;
                }
                None => row = self.store.parent_row(id).await?,
            }
        }
        let parent = match row.typed() {
            Ok(Some(parent)) => parent,
            Ok(None) => {
                return self
                    .give_up(alert, token, "the message it belongs to is gone")
                    .await;
            }
            Err(why) => {
                return self
                    .give_up(alert, token, &format!("unreadable parent row: {why}"))
                    .await;
            }
        };
        if parent.state == AlertState::Pending {
            // The message is not out yet; come back once it may be.
            let later = self.clock.now_ms() + ms(self.alerts().channel_interval).max(1000);
            self.store
                .retry_alert(
                    alert.id,
                    token,
                    later,
                    "waiting for the message it belongs to",
                    None,
                )
                .await?;
            report.retried += 1;
            return Ok(Delivered::Done(report));
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
            return Ok(Delivered::Done(report));
        };
        // The post being updated, or the rating listed: rendered as it is now.
        let post = if alert.kind == AlertKind::DigestItem {
            PostRef::of(alert)
        } else {
            PostRef {
                id: parent.id,
                channel: parent.channel.clone(),
                mentions: parent.mentions.clone(),
                rule: parent.rule.clone(),
                sentiment: parent.sentiment,
            }
        };
        let mut view = self.view(alert, &post);
        self.enrich(&mut view, alert, batch).await?;
        if alert.kind == AlertKind::Escalation
            && (view.acknowledged.is_some() || view.followed_up.is_some())
        {
            // Someone took it between the decision and now.
            if self
                .store
                .finish_alert(alert.id, token, "superseded", None)
                .await?
            {
                report.superseded += 1;
            }
            return Ok(Delivered::Done(report));
        }
        let started = self.clock.now_ms();
        let outcome = match alert.kind {
            AlertKind::Update => {
                // Edit first: if the reply then fails, the retry edits again
                // (harmless: the same content) and replies.
                match self.sink.update(&channel, &ts, &view).await {
                    Ok(()) => {
                        let change = alert.change.as_deref().unwrap_or("Rating updated");
                        self.sink
                            .reply_update(&channel, &ts, change, &view, key(alert))
                            .await
                    }
                    Err(error) => Err(error),
                }
            }
            AlertKind::Escalation => {
                view.mentions = alert.mentions.0.clone();
                let waited = Duration::from_secs(
                    ((self.clock.now_ms() - parent.created_at).max(0) / 60_000 * 60) as u64,
                );
                let waited = humantime::format_duration(waited).to_string();
                self.sink
                    .reply_escalation(&channel, &ts, &view, &waited, key(alert))
                    .await
            }
            _ => {
                self.sink
                    .reply_digest_item(&channel, &ts, &view, key(alert))
                    .await
            }
        };
        // Recorded under the parent's channel id.
        let outcome = outcome.map(|posted| crate::sinks::Posted {
            channel: Some(channel.clone()),
            ts: posted.ts,
        });
        self.sent_or_failed(alert, token, outcome, started, batch)
            .await
    }

    /// Posts a storm's digest: the count and the worst few, with links.
    async fn deliver_digest(
        &self,
        alert: &DueAlert,
        token: &str,
        batch: &Batch,
    ) -> StoreResult<Delivered> {
        let members: Vec<_> = self
            .store
            .digest_member_views(alert.id)
            .await?
            .iter()
            .map(|m| self.view(m, &PostRef::of(m)))
            .collect();
        let started = self.clock.now_ms();
        let outcome = self
            .sink
            .post_digest(&alert.channel, &members, &alert.mentions.0, key(alert))
            .await;
        self.sent_or_failed(alert, token, outcome, started, batch)
            .await
    }

    async fn give_up(&self, alert: &DueAlert, token: &str, why: &str) -> StoreResult<Delivered> {
        let mut report = FlushReport::default();
        if self
            .store
            .finish_alert(alert.id, token, "dead", Some(why))
            .await?
        {
            report.dead += 1;
            tracing::error!(
                alert_id = alert.id,
                kind = alert.kind.as_str(),
                reason = why,
                "alert follow-on given up; fix what `reason` names (token, scope, channel: see docs/operations.md, Troubleshooting); the original alert stands"
            );
        }
        Ok(Delivered::Done(report))
    }
}

fn skip_reason(parent: &Parent) -> &'static str {
    if parent.state == AlertState::Sent {
        "the message has no ts to update or thread under (an incoming webhook can only post)"
    } else {
        "the message it belongs to was not delivered"
    }
}
