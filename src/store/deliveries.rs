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

impl StoreTx {
    /// Records a delivery as recorded. Returns its id, or `None` when the
    /// same delivery was already recorded (a retry or a duplicate). A
    /// delivery previously kept as failed is taken over, so a helpdesk retry
    /// after an upgrade that fixed the parser is not lost as a "duplicate".
    pub async fn insert_delivery(&mut self, d: &NewDelivery) -> StoreResult<Option<i64>> {
        let id: Option<i64> = on_tx!(self, |conn| {
            sqlx::query_scalar(
                "INSERT INTO deliveries (source, delivery_key, received_at, via, request_meta, body, status)
                 VALUES ($1, $2, $3, $4, $5, $6, 'recorded')
                 ON CONFLICT (source, delivery_key) DO UPDATE
                    SET status = 'recorded', error = NULL, attempts = deliveries.attempts + 1
                    WHERE deliveries.status = 'failed'
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
        let id: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO deliveries (source, delivery_key, received_at, via, request_meta, body, status, error)
                 VALUES ($1, $2, $3, $4, $5, $6, 'failed', $7)
                 ON CONFLICT (source, delivery_key) DO UPDATE
                    SET attempts = deliveries.attempts + 1,
                        error = CASE WHEN deliveries.status = 'failed' THEN excluded.error ELSE deliveries.error END
                 RETURNING id",
            )
            .bind(&d.source)
            .bind(&d.delivery_key)
            .bind(d.received_at_ms)
            .bind(&d.via)
            .bind(&d.request_meta)
            .bind(&d.body)
            .bind(error)
            .fetch_one(pool)
            .await?
        });
        Ok(id)
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

    /// Deletes raw deliveries received before `before_ms` (retention). Their
    /// ratings and history stay.
    pub async fn delete_deliveries_before(&self, before_ms: i64) -> StoreResult<u64> {
        let done = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM deliveries WHERE received_at < $1")
                .bind(before_ms)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done)
    }
}
