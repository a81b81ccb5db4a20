//! The alert outbox: alerts are enqueued in the same transaction as the
//! rating that causes them, then claimed by a dispatcher with a lease and a
//! fencing token, so two replicas never send the same alert and one that
//! died mid-send is taken over when its lease runs out.

use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// An alert to enqueue.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub rating_id: i64,
    /// The rating's revision that caused it; with the channel, the alert's
    /// idempotency key.
    pub revision: i64,
    pub rule: Option<String>,
    pub channel: String,
    /// JSON array of strings.
    pub mentions: String,
    /// The rating's sentiment that raised it.
    pub sentiment: String,
    pub created_at_ms: i64,
    /// When an unacknowledged alert escalates, and to whom (JSON array of
    /// mentions); `None` when no escalation applies.
    pub escalate_at: Option<i64>,
    pub escalate_to: Option<String>,
}

/// An alert row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertRecord {
    pub id: i64,
    pub rating_id: i64,
    pub revision: i64,
    pub rule: Option<String>,
    pub channel: String,
    pub mentions: String,
    pub sentiment: String,
    /// `post`, `update`, `escalation`, `digest` or `digest_item`.
    pub kind: String,
    /// Unique per rating, channel and kind: `rev:N`, `ack`, `followup`, …
    pub event_key: String,
    /// The post an update or escalation belongs to; the digest of a
    /// digested post or of a digest item.
    pub parent_id: Option<i64>,
    /// What changed, in words (no customer text), for an update's thread reply.
    pub change: Option<String>,
    pub escalate_at: Option<i64>,
    pub escalate_to: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claim_token: Option<String>,
    pub claimed_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
}

/// Outbox depth for metrics and `/readyz` details.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub oldest_pending_created_at: Option<i64>,
    pub dead: i64,
}

pub(super) const ALERT_COLUMNS: &str =
    "id, rating_id, revision, rule, channel, mentions, sentiment, kind, event_key, parent_id, change,
     escalate_at, escalate_to, state, attempts, next_attempt_at,
     claim_token, claimed_until, last_error, created_at, sent_at, slack_channel, slack_ts";

impl StoreTx {
    /// Enqueues an alert; `None` if this rating revision already has one for
    /// this channel (a concurrent duplicate).
    pub async fn enqueue_alert(&mut self, a: &NewAlert) -> StoreResult<Option<i64>> {
        let id = on_tx!(self, |conn| {
            sqlx::query_scalar(
                "INSERT INTO alerts (rating_id, revision, rule, channel, mentions, sentiment, kind, event_key,
                    escalate_at, escalate_to, state, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $7, 'post', $10, $8, $9, 'pending', $6, $6)
                 ON CONFLICT (rating_id, channel, kind, event_key) DO NOTHING
                 RETURNING id",
            )
            .bind(a.rating_id)
            .bind(a.revision)
            .bind(&a.rule)
            .bind(&a.channel)
            .bind(&a.mentions)
            .bind(a.created_at_ms)
            .bind(&a.sentiment)
            .bind(a.escalate_at)
            .bind(&a.escalate_to)
            .bind(format!("rev:{}", a.revision))
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(id)
    }
}

impl Store {
    /// Claims up to `limit` due alerts for `lease_ms`, stamping them with
    /// `token`. Alerts whose earlier claim expired (a replica died) are due
    /// again. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets replicas claim
    /// side by side without waiting on each other.
    pub async fn claim_due_alerts(
        &self,
        now_ms: i64,
        lease_ms: i64,
        token: &str,
        limit: i64,
    ) -> StoreResult<Vec<AlertRecord>> {
        let lock = self.dialect().row_lock("FOR UPDATE SKIP LOCKED");
        let sql = format!(
            "UPDATE alerts SET claim_token = $1, claimed_until = $2
             WHERE id IN (
                SELECT id FROM alerts
                WHERE state = 'pending' AND next_attempt_at <= $3
                  AND (claimed_until IS NULL OR claimed_until < $3)
                ORDER BY next_attempt_at, id
                LIMIT $4 {lock})
             RETURNING {ALERT_COLUMNS}"
        );
        let mut rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(sql))
                .bind(token)
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records a successful send, if `token` still holds the claim. Returns
    /// false when the claim was lost (the lease ran out and another replica
    /// took the alert over).
    pub async fn mark_alert_sent(
        &self,
        id: i64,
        token: &str,
        now_ms: i64,
        slack_channel: Option<&str>,
        slack_ts: Option<&str>,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET state = 'sent', sent_at = $3, slack_channel = $4, slack_ts = $5,
                    attempts = attempts + 1, claim_token = NULL, claimed_until = NULL, last_error = NULL
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(now_ms)
            .bind(slack_channel)
            .bind(slack_ts)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Renews a claim just before its alert is sent, so a long batch never
    /// sends an alert whose lease ran out (and that another replica may
    /// already have claimed). False when the claim was lost.
    pub async fn extend_claim(&self, id: i64, token: &str, until_ms: i64) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET claimed_until = $3
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(until_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Schedules another attempt after a failure, releasing the claim.
    pub async fn reschedule_alert(
        &self,
        id: i64,
        token: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET next_attempt_at = $3, last_error = $4, attempts = attempts + 1,
                    claim_token = NULL, claimed_until = NULL
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(next_attempt_at)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Ends an alert without sending it: `dead` (gave up) or `superseded`
    /// (the rating stopped being negative before it went out).
    pub async fn finish_alert(
        &self,
        id: i64,
        token: &str,
        state: &str,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET state = $3, last_error = COALESCE($4, last_error), attempts = attempts + 1,
                    claim_token = NULL, claimed_until = NULL
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(state)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Releases claims this replica still holds (at shutdown), so another can
    /// send them at once instead of after the lease.
    pub async fn release_claims(&self, token_prefix: &str) -> StoreResult<u64> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET claim_token = NULL, claimed_until = NULL
                 WHERE state = 'pending' AND claim_token LIKE $1",
            )
            .bind(format!("{token_prefix}%"))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done)
    }

    /// When the next pending alert falls due (ignoring claims), or the next
    /// sent alert may escalate, if any.
    pub async fn next_alert_due_at(&self) -> StoreResult<Option<i64>> {
        let at = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MIN(due) FROM (
                    SELECT MIN(next_attempt_at) AS due FROM alerts WHERE state = 'pending'
                    UNION ALL
                    SELECT MIN(escalate_at) AS due FROM alerts
                    WHERE escalate_at IS NOT NULL AND state = 'sent') AS d",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(at)
    }

    pub async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        let (pending, oldest, dead): (i64, Option<i64>, i64) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT
                    COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0),
                    MIN(CASE WHEN state = 'pending' THEN created_at END),
                    COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0)
                 FROM alerts",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(OutboxStats {
            pending,
            oldest_pending_created_at: oldest,
            dead,
        })
    }

    /// How many alerts are in each state (`pending`, `sent`, `dead`,
    /// `superseded`), for the gauges.
    pub async fn alert_counts_by_state(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as("SELECT state, COUNT(*) FROM alerts GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Every alert of a rating, oldest first.
    pub async fn alerts_for_rating(&self, rating_id: i64) -> StoreResult<Vec<AlertRecord>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE rating_id = $1 ORDER BY id"
            )))
            .bind(rating_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every alert, oldest first (tests and reports; small tables only).
    pub async fn all_alerts(&self) -> StoreResult<Vec<AlertRecord>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id"
            )))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
