//! What follows an alert's first post: updates of it (a changed rating, an
//! acknowledgement), escalations and storm digests, all rows of the same
//! outbox so they share its claims, retries and pacing; and who acknowledged
//! or followed up a rating. Each follow-on row is idempotent by its
//! `(rating_id, channel, kind, event_key)` key.

use super::outbox::ALERT_COLUMNS;
use super::{AlertRecord, Store, StoreResult, StoreTx, on_pool, on_tx};

/// A row that edits, threads under or summarises other alerts.
#[derive(Debug, Clone)]
pub struct NewFollowOn {
    pub rating_id: i64,
    pub revision: i64,
    pub channel: String,
    /// `update`, `escalation`, `digest` or `digest_item`.
    pub kind: &'static str,
    pub event_key: String,
    pub parent_id: Option<i64>,
    pub change: Option<String>,
    pub mentions: String,
    pub sentiment: String,
    pub rule: Option<String>,
    pub created_at_ms: i64,
}

/// Who acted on a rating from Slack, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RatingActions {
    pub acked_by: Option<String>,
    pub acked_by_name: Option<String>,
    pub acked_at: Option<i64>,
    pub followed_up_by: Option<String>,
    pub followed_up_by_name: Option<String>,
    pub followed_up_at: Option<i64>,
}

/// A button on the alert message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingAction {
    /// "I'm on it".
    Acknowledge,
    /// "Followed up".
    FollowUp,
}

impl RatingAction {
    /// The event key of the update it causes: one per action per rating.
    pub fn event_key(self) -> &'static str {
        match self {
            RatingAction::Acknowledge => "ack",
            RatingAction::FollowUp => "followup",
        }
    }
}

impl StoreTx<'_> {
    /// The posts of a rating that were or will be sent (not dead, superseded
    /// or folded into a digest), oldest first.
    pub async fn live_posts(&mut self, rating_id: i64) -> StoreResult<Vec<AlertRecord>> {
        let rows = on_tx!(self, |conn| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts
                 WHERE rating_id = $1 AND kind = 'post' AND state IN ('pending', 'sent') ORDER BY id"
            )))
            .bind(rating_id)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows)
    }

    /// Enqueues a follow-on row; `None` if its event key already has one.
    pub async fn enqueue_follow_on(&mut self, f: &NewFollowOn) -> StoreResult<Option<i64>> {
        let id = on_tx!(self, |conn| {
            sqlx::query_scalar(
                "INSERT INTO alerts (rating_id, revision, rule, channel, mentions, sentiment, kind, event_key,
                    parent_id, change, state, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $11)
                 ON CONFLICT (rating_id, channel, kind, event_key) DO NOTHING
                 RETURNING id",
            )
            .bind(f.rating_id)
            .bind(f.revision)
            .bind(&f.rule)
            .bind(&f.channel)
            .bind(&f.mentions)
            .bind(&f.sentiment)
            .bind(f.kind)
            .bind(&f.event_key)
            .bind(f.parent_id)
            .bind(&f.change)
            .bind(f.created_at_ms)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(id)
    }

    /// Records an acknowledgement or follow-up on a rating, unless one is
    /// recorded already (the first click wins). True when this one counted.
    pub async fn record_rating_action(
        &mut self,
        rating_id: i64,
        action: RatingAction,
        user_id: &str,
        user_name: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let sql = match action {
            RatingAction::Acknowledge => {
                "UPDATE ratings SET acked_by = $2, acked_by_name = $3, acked_at = $4
                 WHERE id = $1 AND acked_at IS NULL"
            }
            RatingAction::FollowUp => {
                "UPDATE ratings SET followed_up_by = $2, followed_up_by_name = $3, followed_up_at = $4
                 WHERE id = $1 AND followed_up_at IS NULL"
            }
        };
        self.follow_up_touch(&[rating_id]).await?;
        let done = on_tx!(self, |conn| {
            sqlx::query(sql)
                .bind(rating_id)
                .bind(user_id)
                .bind(user_name)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// An alert by id, inside the transaction.
    pub async fn alert_by_id(&mut self, id: i64) -> StoreResult<Option<AlertRecord>> {
        let row = on_tx!(self, |conn| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(row)
    }
}

impl Store {
    /// An alert by id.
    pub async fn alert(&self, id: i64) -> StoreResult<Option<AlertRecord>> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Who acknowledged and followed up a rating.
    pub async fn rating_actions(&self, rating_id: i64) -> StoreResult<RatingActions> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, RatingActions>(
                "SELECT acked_by, acked_by_name, acked_at, followed_up_by, followed_up_by_name, followed_up_at
                 FROM ratings WHERE id = $1",
            )
            .bind(rating_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.unwrap_or_default())
    }

    /// Enqueues one escalation for every sent post whose `escalate_at` has
    /// passed and whose rating nobody acknowledged or followed up and that
    /// has not recovered; then clears `escalate_at` on every due post, so
    /// each is decided once. Returns how many escalations were enqueued.
    pub async fn enqueue_due_escalations(&self, now_ms: i64) -> StoreResult<u64> {
        // A read on the `alerts_escalate` index first: most flushes have
        // nothing to escalate and must not take the write lock for it. The
        // order is the index's: without it, PostgreSQL on a table it has
        // no statistics for expects most rows to match and reads the whole
        // outbox, hoping to stop at the first.
        let due: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM alerts
                 WHERE escalate_at IS NOT NULL AND escalate_at <= $1 AND state <> 'pending'
                 ORDER BY escalate_at LIMIT 1",
            )
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        if due.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let enqueued = on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO alerts (rating_id, revision, rule, channel, mentions, sentiment, kind, event_key,
                    parent_id, state, next_attempt_at, created_at)
                 SELECT a.rating_id, a.revision, a.rule, a.channel, COALESCE(a.escalate_to, '[]'), a.sentiment, 'escalation',
                    'post:' || CAST(a.id AS TEXT), a.id, 'pending', $1, $1
                 FROM alerts a JOIN ratings r ON r.id = a.rating_id
                 WHERE a.kind = 'post' AND a.state = 'sent' AND a.escalate_at IS NOT NULL
                   AND a.escalate_at <= $1 AND r.acked_at IS NULL AND r.followed_up_at IS NULL
                   AND r.sentiment <> 'positive'
                 ON CONFLICT (rating_id, channel, kind, event_key) DO NOTHING",
            )
            .bind(now_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE alerts SET escalate_at = NULL
                 WHERE escalate_at IS NOT NULL AND escalate_at <= $1 AND state <> 'pending'",
            )
            .bind(now_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(enqueued)
    }

    /// Channels in a storm: more than `threshold` posts raised for them
    /// since `since_ms` (waiting, sent or already digested: a storm that
    /// started stays one), with at least two still waiting unclaimed to
    /// fold. Counting what was raised, not only what still waits, is what
    /// starts storm mode before a paced channel has posted its backlog one
    /// by one, and keeps a storm's stragglers out of the channel. Served by
    /// the `alerts_recent_posts` index. Posts still settling
    /// (`alerts.settle`: never attempted, not yet due) count once due.
    pub async fn storm_channels(
        &self,
        since_ms: i64,
        now_ms: i64,
        threshold: i64,
    ) -> StoreResult<Vec<String>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT channel FROM alerts
                 WHERE kind = 'post' AND created_at >= $1 AND state IN ('pending', 'sent', 'digested')
                   AND NOT (state = 'pending' AND attempts = 0 AND next_attempt_at > $2)
                 GROUP BY channel
                 HAVING COUNT(*) > $3
                    AND SUM(CASE WHEN state = 'pending'
                        AND (claimed_until IS NULL OR claimed_until < $2) THEN 1 ELSE 0 END) >= 2
                 ORDER BY channel",
            )
            .bind(since_ms)
            .bind(now_ms)
            .bind(threshold)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Folds the waiting posts of `channel` created since `since_ms` into one
    /// digest: the channel's digest still waiting to be sent if there is one
    /// (a storm in progress grows its digest instead of queueing another),
    /// else a new digest row (pointing at the worst rating). Marks the posts
    /// `digested` under it, and enqueues one thread item per post. Returns
    /// the digest's id, or `None` if nothing was waiting any more.
    pub async fn collapse_storm(
        &self,
        channel: &str,
        since_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.begin().await?;
        // The ratings of the posts that will be digested change in the
        // follow-up rollup: touched (locked) before their alerts are, the
        // order every other write takes them in.
        let pending_ratings: Vec<i64> = on_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT DISTINCT rating_id FROM alerts
                 WHERE kind = 'post' AND state = 'pending' AND channel = $1 AND created_at >= $2",
            )
            .bind(channel)
            .bind(since_ms)
            .fetch_all(&mut *conn)
            .await?
        });
        tx.follow_up_touch(&pending_ratings).await?;
        let lock = tx.dialect().row_lock("FOR UPDATE OF a SKIP LOCKED");
        let posts: Vec<AlertRecord> = on_tx!(tx, |conn| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM alerts a JOIN ratings r ON r.id = a.rating_id
                 WHERE a.kind = 'post' AND a.state = 'pending' AND a.channel = $1 AND a.created_at >= $2
                   AND (a.claimed_until IS NULL OR a.claimed_until < $3)
                   AND (a.attempts > 0 OR a.next_attempt_at <= $3)
                 ORDER BY r.normalised, a.id {lock}",
                ALERT_COLUMNS
                    .split(',')
                    .map(|c| format!("a.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
            .bind(channel)
            .bind(since_ms)
            .bind(now_ms)
            .fetch_all(&mut *conn)
            .await?
        });
        let Some(worst) = posts.first() else {
            return Ok(None);
        };
        let digest_lock = tx.dialect().row_lock("FOR UPDATE SKIP LOCKED");
        let waiting: Option<i64> = on_tx!(tx, |conn| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM alerts
                 WHERE kind = 'digest' AND state = 'pending' AND channel = $1 AND created_at >= $2
                   AND (claimed_until IS NULL OR claimed_until < $3)
                 ORDER BY id LIMIT 1 {digest_lock}"
            )))
            .bind(channel)
            .bind(since_ms)
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?
        });
        let digest = NewFollowOn {
            rating_id: worst.rating_id,
            revision: worst.revision,
            channel: channel.to_string(),
            kind: "digest",
            event_key: format!("digest:{}", worst.id),
            parent_id: None,
            change: None,
            mentions: worst.mentions.clone(),
            sentiment: worst.sentiment.clone(),
            rule: worst.rule.clone(),
            created_at_ms: now_ms,
        };
        let digest_id = match waiting {
            Some(id) => id,
            None => match tx.enqueue_follow_on(&digest).await? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        // A post enqueued since the read above.
        let rating_ids: Vec<i64> = posts.iter().map(|p| p.rating_id).collect();
        tx.follow_up_touch(&rating_ids).await?;
        for post in &posts {
            on_tx!(tx, |conn| {
                sqlx::query(
                    "UPDATE alerts SET state = 'digested', parent_id = $2, escalate_at = NULL
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(post.id)
                .bind(digest_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
            });
            let item = NewFollowOn {
                rating_id: post.rating_id,
                revision: post.revision,
                channel: channel.to_string(),
                kind: "digest_item",
                event_key: format!("digest:{digest_id}"),
                parent_id: Some(digest_id),
                change: None,
                mentions: "[]".to_string(),
                sentiment: post.sentiment.clone(),
                rule: post.rule.clone(),
                created_at_ms: now_ms,
            };
            tx.enqueue_follow_on(&item).await?;
        }
        tx.commit().await?;
        Ok(Some(digest_id))
    }

    /// The posts folded into a digest, worst rating first.
    pub async fn digest_members(&self, digest_id: i64) -> StoreResult<Vec<AlertRecord>> {
        let columns = ALERT_COLUMNS
            .split(',')
            .map(|c| format!("a.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM alerts a JOIN ratings r ON r.id = a.rating_id
                 WHERE a.kind = 'post' AND a.state = 'digested' AND a.parent_id = $1
                 ORDER BY r.normalised, a.id"
            )))
            .bind(digest_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
