//! The pipeline's decisions after an alert was raised: a later change to the
//! rating, or a click on "I'm on it" / "Followed up", enqueues an update of
//! every message posted for it (the dispatcher edits the message and threads
//! a short reply). Nothing here calls Slack, so a click is answered at once.

use std::str::FromStr as _;

use super::Pipeline;
use crate::domain::{Scale, Score, Sentiment, Via};
use crate::store::{NewFollowOn, RatingAction, RatingRecord, StoreResult, StoreTx, StoredRating};

/// What a button click did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOutcome {
    /// Recorded; this many messages will be updated.
    Recorded { updates: usize },
    /// Someone did it first; nothing changed.
    AlreadyDone,
    /// The button names no alert we know (deleted, or another installation's).
    UnknownAlert,
}

/// Enqueues an update of each live post of `current` for its new
/// `revision`. Returns how many, and their channels (which then get no
/// second post). Backfills change no message.
pub(super) async fn enqueue_updates(
    tx: &mut StoreTx<'_>,
    current: &StoredRating,
    new: &RatingRecord,
    revision: i64,
    via: Via,
    now: i64,
) -> StoreResult<(usize, Vec<String>)> {
    if !via.may_alert() {
        return Ok((0, Vec::new()));
    }
    let posts = tx.live_posts(current.id).await?;
    let change = describe_change(current, new);
    let mut updates = 0;
    let mut channels = Vec::new();
    for post in posts {
        if post.state == "pending" && post.attempts == 0 && post.next_attempt_at > now {
            // Still settling (`alerts.settle`): the post is rendered from the
            // rating as it is when it goes out, so no update is needed; its
            // channel still gets no second post.
            channels.push(post.channel);
            continue;
        }
        let update = NewFollowOn {
            rating_id: current.id,
            revision,
            channel: post.channel.clone(),
            kind: "update",
            event_key: format!("rev:{revision}"),
            parent_id: Some(post.id),
            change: Some(change.clone()),
            mentions: "[]".to_string(),
            sentiment: new.sentiment.clone(),
            rule: post.rule.clone(),
            created_at_ms: now,
        };
        if tx.enqueue_follow_on(&update).await?.is_some() {
            updates += 1;
        }
        channels.push(post.channel);
    }
    Ok((updates, channels))
}

/// The change in words for the thread reply: no customer text, which the
/// reply quotes from the rating itself.
pub fn describe_change(current: &StoredRating, new: &RatingRecord) -> String {
    let label = |scale: &str, value: i64| {
        let scale = Scale::from_str(scale).unwrap_or(Scale::FivePoint);
        Score { scale, value }.label()
    };
    let (old_label, new_label) = (
        label(&current.scale, current.score),
        label(&new.scale, new.score),
    );
    let positive = Sentiment::Positive.as_str();
    let negative = Sentiment::Negative.as_str();
    let mut parts = Vec::new();
    if new.sentiment == positive && current.sentiment != positive {
        parts.push(format!("Recovered: now {new_label} (was {old_label})"));
    } else if new.sentiment == negative && current.sentiment != negative {
        parts.push(format!("Negative again: now {new_label} (was {old_label})"));
    } else if (current.score, &current.scale) != (new.score, &new.scale) {
        parts.push(format!("Score changed: now {new_label} (was {old_label})"));
    }
    match (&current.comment, &new.comment) {
        (None, Some(_)) => parts.push("Comment added".to_string()),
        (Some(_), None) => parts.push("Comment removed".to_string()),
        (Some(a), Some(b)) if a != b => parts.push("Comment changed".to_string()),
        _ => {}
    }
    if parts.is_empty() {
        "Rating updated".to_string()
    } else {
        parts.join(" · ")
    }
}

impl Pipeline {
    /// Records a click on an alert's button (by Slack user `user_id`) and
    /// enqueues an update of every message of that rating, in one
    /// transaction. The first acknowledgement (or follow-up) wins.
    /// Runs to its end even when the click's request is dropped.
    pub async fn record_action(
        &self,
        alert_id: i64,
        action: RatingAction,
        user_id: &str,
        user_name: Option<&str>,
    ) -> StoreResult<ActionOutcome> {
        let (this, user_id, user_name) = (
            self.clone(),
            user_id.to_string(),
            user_name.map(str::to_string),
        );
        crate::store::to_completion(async move {
            this.record_action_now(alert_id, action, &user_id, user_name.as_deref())
                .await
        })
        .await
    }

    async fn record_action_now(
        &self,
        alert_id: i64,
        action: RatingAction,
        user_id: &str,
        user_name: Option<&str>,
    ) -> StoreResult<ActionOutcome> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let Some(alert) = tx.alert_by_id(alert_id).await? else {
            return Ok(ActionOutcome::UnknownAlert);
        };
        if !tx
            .record_rating_action(alert.rating_id, action, user_id, user_name, now)
            .await?
        {
            return Ok(ActionOutcome::AlreadyDone);
        }
        let mut updates = 0;
        for post in tx.live_posts(alert.rating_id).await? {
            let update = NewFollowOn {
                rating_id: post.rating_id,
                revision: post.revision,
                channel: post.channel.clone(),
                kind: "update",
                event_key: action.event_key().to_string(),
                parent_id: Some(post.id),
                change: Some(action.event_key().to_string()),
                mentions: "[]".to_string(),
                sentiment: post.sentiment.clone(),
                rule: post.rule.clone(),
                created_at_ms: now,
            };
            if tx.enqueue_follow_on(&update).await?.is_some() {
                updates += 1;
            }
        }
        tx.commit().await?;
        if updates > 0 {
            self.wake.notify_one();
        }
        Ok(ActionOutcome::Recorded { updates })
    }
}
