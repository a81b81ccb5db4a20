//! Raw deliveries: every webhook body that carried (or should have carried)
//! a rating, kept for `reprocess` and audits until retention deletes it.

use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// A delivery to keep.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub source: String,
    /// The helpdesk's delivery id, or `sha256:<hex>` of the body.
    pub delivery_key: String,
    pub received_at_ms: i64,
    pub via: String,
    /// The request line and non-secret headers as JSON (see `http::webhooks`).
    pub request_meta: String,
    pub body: Vec<u8>,
}

/// A delivery read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredDelivery {
    pub id: i64,
    pub source: String,
    pub delivery_key: String,
    pub received_at: i64,
    pub via: String,
    pub request_meta: String,
    pub body: Vec<u8>,
    pub status: String,
    pub error: Option<String>,
    pub attempts: i64,
}

impl StoreTx<'_> {
    /// Records a delivery as recorded. Returns its id, or `None` when the
    /// same delivery was already recorded (a retry or a duplicate). A
    /// delivery previously kept as failed or pending is taken over, so a
    /// helpdesk retry after an upgrade that fixed the parser, or a fetch
    /// that now succeeds, is not lost as a "duplicate".
    pub async fn insert_delivery(&mut self, d: &NewDelivery) -> StoreResult<Option<i64>> {
        let id: Option<i64> = on_tx!(self, |conn| {
            sqlx::query_scalar(
                "INSERT INTO deliveries (source, delivery_key, received_at, via, request_meta, body, status)
                 VALUES ($1, $2, $3, $4, $5, $6, 'recorded')
                 ON CONFLICT (source, delivery_key) DO UPDATE
                    SET status = 'recorded', error = NULL, next_attempt_at = NULL, attempts = deliveries.attempts + 1
                    WHERE deliveries.status <> 'recorded'
                 RETURNING id",
            )
            .bind(&d.source)
            .bind(&d.delivery_key)
            .bind(d.received_at_ms)
            .bind(&d.via)
            .bind(&d.request_meta)
            .bind(&d.body)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(id)
    }

    /// Marks a stored delivery as recorded (after a successful reprocess).
    pub async fn mark_delivery_recorded(&mut self, id: i64) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("UPDATE deliveries SET status = 'recorded', error = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// Keeps a signed delivery that could not be parsed, for `reprocess`.
    /// The same delivery failing again only counts another attempt.
    pub async fn save_failed_delivery(&self, d: &NewDelivery, error: &str) -> StoreResult<i64> {
        self.save_unrecorded_delivery(d, "failed", error, None)
            .await
    }

    /// Keeps a delivery whose ratings could not be fetched yet; the
    /// background fetcher tries again at `next_attempt_at`.
    pub async fn save_pending_delivery(
        &self,
        d: &NewDelivery,
        error: &str,
        next_attempt_at: i64,
    ) -> StoreResult<i64> {
        self.save_unrecorded_delivery(d, "pending", error, Some(next_attempt_at))
            .await
    }

    async fn save_unrecorded_delivery(
        &self,
        d: &NewDelivery,
        status: &str,
        error: &str,
        next_attempt_at: Option<i64>,
    ) -> StoreResult<i64> {
        // Written without a transaction, so checked here as `begin` does: a
        // webhook's body must not go to a file deleted under us.
        self.check_file()?;
        let id: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO deliveries (source, delivery_key, received_at, via, request_meta, body, status, error, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (source, delivery_key) DO UPDATE
                    SET attempts = deliveries.attempts + 1,
                        status = CASE WHEN deliveries.status = 'recorded' THEN deliveries.status ELSE excluded.status END,
                        error = CASE WHEN deliveries.status = 'recorded' THEN deliveries.error ELSE excluded.error END,
                        next_attempt_at = CASE WHEN deliveries.status = 'recorded' THEN NULL ELSE excluded.next_attempt_at END
                 RETURNING id",
            )
            .bind(&d.source)
            .bind(&d.delivery_key)
            .bind(d.received_at_ms)
            .bind(&d.via)
            .bind(&d.request_meta)
            .bind(&d.body)
            .bind(status)
            .bind(error)
            .bind(next_attempt_at)
            .fetch_one(pool)
            .await?
        });
        Ok(id)
    }

    /// Pending deliveries due for another fetch, oldest first.
    pub async fn due_pending_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredDelivery>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, StoredDelivery>(
                "SELECT id, source, delivery_key, received_at, via, request_meta, body, status, error, attempts
                 FROM deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at, id LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Moves a pending delivery's next try, or ends it as failed (`next` None).
    pub async fn reschedule_pending_delivery(
        &self,
        id: i64,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET attempts = attempts + 1, error = $3, next_attempt_at = $2,
                    status = CASE WHEN $2 IS NULL THEN 'failed' ELSE 'pending' END
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(next_attempt_at)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// When the next pending delivery is due, if any.
    pub async fn next_pending_delivery_at(&self) -> StoreResult<Option<i64>> {
        let at = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(at)
    }

    /// Failed deliveries, oldest first, optionally of one source.
    pub async fn failed_deliveries(
        &self,
        source: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<StoredDelivery>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, StoredDelivery>(
                "SELECT id, source, delivery_key, received_at, via, request_meta, body, status, error, attempts
                 FROM deliveries
                 WHERE status = 'failed' AND ($1 IS NULL OR source = $1)
                 ORDER BY id LIMIT $2",
            )
            .bind(source)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Records a new error on a failed delivery (reprocess failed again).
    pub async fn update_failed_delivery(&self, id: i64, error: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE deliveries SET error = $2, attempts = attempts + 1 WHERE id = $1")
                .bind(id)
                .bind(error)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// A delivery by id.
    pub async fn delivery(&self, id: i64) -> StoreResult<Option<StoredDelivery>> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, StoredDelivery>(
                "SELECT id, source, delivery_key, received_at, via, request_meta, body, status, error, attempts
                 FROM deliveries WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Number of deliveries per status, for tests and reports.
    pub async fn count_deliveries(&self, status: &str) -> StoreResult<i64> {
        let n = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = $1")
                .bind(status)
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }

    /// Deletes raw deliveries received before `before_ms` (retention),
    /// oldest first, `chunk` per statement until none is left; returns how
    /// many. Their ratings and history stay (the history's `delivery_id`
    /// becomes NULL). Each statement commits on its own, so a webhook
    /// waiting for SQLite's write lock waits for one chunk, never for a
    /// backlog of weeks (the first run after an upgrade, or after the
    /// daemon was stopped for a while).
    pub async fn delete_deliveries_before(&self, before_ms: i64, chunk: u32) -> StoreResult<u64> {
        // A chunk of 0 would delete nothing, forever.
        let chunk = chunk.max(1);
        let mut total = 0;
        loop {
            let done = on_pool!(self, |pool| {
                sqlx::query(
                    "DELETE FROM deliveries WHERE id IN (
                        SELECT id FROM deliveries WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
                )
                .bind(before_ms)
                .bind(i64::from(chunk))
                .execute(pool)
                .await?
                .rows_affected()
            });
            total += done;
            if done < u64::from(chunk) {
                return Ok(total);
            }
            // Lets the writer's next batch in between chunks.
            tokio::task::yield_now().await;
        }
    }
}
