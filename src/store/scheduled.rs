//! Messages posted on a schedule or a change of state (digests, drop
//! alerts, recoveries), each idempotent by `(kind, name, period)`; the state
//! of each drop alert's groups; and which daily evaluations ran. All
//! exactly-once decisions are unique keys or conditional updates, so any
//! number of replicas may run the scheduler.

use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// A message to post, as written.
#[derive(Debug, Clone)]
pub struct NewReportMessage {
    pub kind: &'static str,
    pub name: String,
    pub period: String,
    pub channel: String,
    /// JSON.
    pub body: String,
    pub created_at_ms: i64,
}

/// A message read back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReportMessage {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub period: String,
    pub channel: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const MESSAGE_COLUMNS: &str =
    "id, kind, name, period, channel, body, state, attempts, created_at, sent_at";

impl StoreTx<'_> {
    /// Inserts a message unless its key exists; true when this call did.
    pub async fn insert_report_message(&mut self, m: &NewReportMessage) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO report_messages (kind, name, period, channel, body, state, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)
                 ON CONFLICT (kind, name, period) DO NOTHING",
            )
            .bind(m.kind)
            .bind(&m.name)
            .bind(&m.period)
            .bind(&m.channel)
            .bind(&m.body)
            .bind(m.created_at_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Moves a group into the alert state unless it is there already (a new
    /// group starts there). True when this call made the change: only that
    /// caller announces the drop.
    pub async fn enter_drop_state(
        &mut self,
        name: &str,
        grp: &str,
        z: f64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO drop_alert_states (name, grp, state, since, last_z, updated_at)
                 VALUES ($1, $2, 'alert', $3, $4, $3)
                 ON CONFLICT (name, grp) DO UPDATE
                    SET state = 'alert', since = excluded.since, last_z = excluded.last_z,
                        updated_at = excluded.updated_at, recover_streak = 0
                    WHERE drop_alert_states.state <> 'alert'",
            )
            .bind(name)
            .bind(grp)
            .bind(now_ms)
            .bind(z)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Counts a good evaluation of a group in the alert state, and moves it
    /// out of the alert state at the `needed`-th in a row; true when this
    /// call made that change (only that caller announces the recovery).
    pub async fn leave_drop_state(
        &mut self,
        name: &str,
        grp: &str,
        z: f64,
        now_ms: i64,
        needed: u32,
    ) -> StoreResult<bool> {
        let n: Option<(String,)> = on_tx!(self, |conn| {
            sqlx::query_as(
                "UPDATE drop_alert_states
                    SET recover_streak = recover_streak + 1, last_z = $4, updated_at = $3,
                        state = CASE WHEN recover_streak + 1 >= $5 THEN 'ok' ELSE state END,
                        since = CASE WHEN recover_streak + 1 >= $5 THEN $3 ELSE since END
                 WHERE name = $1 AND grp = $2 AND state = 'alert'
                 RETURNING state",
            )
            .bind(name)
            .bind(grp)
            .bind(now_ms)
            .bind(z)
            .bind(i64::from(needed))
            .fetch_optional(&mut *conn)
            .await?
        });
        let state: Option<String> = n.map(|row| row.0);
        Ok(state.as_deref() == Some("ok"))
    }

    /// A group in the alert state had an evaluation that is neither a new
    /// drop nor good: its run of good evaluations starts again.
    pub async fn reset_drop_recovery(&mut self, name: &str, grp: &str) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE drop_alert_states SET recover_streak = 0
                 WHERE name = $1 AND grp = $2 AND state = 'alert' AND recover_streak <> 0",
            )
            .bind(name)
            .bind(grp)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// Every drop and recovery message written, oldest first, as `(kind,
    /// drop alert name, group, created_at)`: the drop-alert episodes the
    /// dashboard marks on its trend.
    pub async fn drop_alert_messages(&self) -> StoreResult<Vec<(String, String, String, i64)>> {
        let rows: Vec<(String, String, String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT kind, name, period, created_at FROM report_messages
                 WHERE kind IN ('drop', 'recovery') ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        // The period of a drop or recovery is `group|created_at`.
        Ok(rows
            .into_iter()
            .map(|(kind, name, period, at)| {
                let group = period
                    .rsplit_once('|')
                    .map(|(g, _)| g.to_string())
                    .unwrap_or(period);
                (kind, name, group, at)
            })
            .collect())
    }

    /// Whether a message with this key exists (sent or not).
    pub async fn report_message_exists(
        &self,
        kind: &str,
        name: &str,
        period: &str,
    ) -> StoreResult<bool> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM report_messages WHERE kind = $1 AND name = $2 AND period = $3",
            )
            .bind(kind)
            .bind(name)
            .bind(period)
            .fetch_one(pool)
            .await?
        });
        Ok(n > 0)
    }

    /// Claims the evaluation `name` for `period`; true for the one caller
    /// (of any replica) that gets it.
    pub async fn claim_report_run(
        &self,
        name: &str,
        period: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let n = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO report_runs (name, period, ran_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name, period) DO NOTHING",
            )
            .bind(name)
            .bind(period)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The groups of a drop alert currently in the alert state.
    pub async fn drop_states(&self, name: &str) -> StoreResult<Vec<(String, String, i64)>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, (String, String, i64)>(
                "SELECT grp, state, since FROM drop_alert_states WHERE name = $1 ORDER BY grp",
            )
            .bind(name)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Claims up to `limit` messages due at `now_ms` for `lease_ms`.
    pub async fn claim_report_messages(
        &self,
        now_ms: i64,
        lease_ms: i64,
        token: &str,
        limit: i64,
    ) -> StoreResult<Vec<ReportMessage>> {
        let lock = match self.backend_name() {
            "postgres" => "FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!(
            "UPDATE report_messages SET claim_token = $1, claimed_until = $2
             WHERE id IN (
                SELECT id FROM report_messages
                WHERE state = 'pending' AND next_attempt_at <= $3
                  AND (claimed_until IS NULL OR claimed_until < $3)
                ORDER BY next_attempt_at, id
                LIMIT $4 {lock})
             RETURNING {MESSAGE_COLUMNS}"
        );
        let mut rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, ReportMessage>(sqlx::AssertSqlSafe(sql))
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

    /// Records the outcome of a send, if `token` still holds the claim:
    /// `sent`, `dead`, or `pending` again at `next_attempt_at`.
    pub async fn finish_report_message(
        &self,
        id: i64,
        token: &str,
        state: &str,
        now_ms: i64,
        next_attempt_at: i64,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let n = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE report_messages SET state = $3, attempts = attempts + 1,
                    sent_at = CASE WHEN $3 = 'sent' THEN $4 ELSE sent_at END,
                    next_attempt_at = $5, last_error = $6, claim_token = NULL, claimed_until = NULL
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(state)
            .bind(now_ms)
            .bind(next_attempt_at)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Every report message, oldest first (for tests and operators).
    pub async fn report_messages(&self) -> StoreResult<Vec<ReportMessage>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, ReportMessage>(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM report_messages ORDER BY id"
            )))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
