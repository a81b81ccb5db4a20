//! Poll cursors and leases. A cursor is saved after every page, so a
//! restart resumes where the poller stopped. A lease row lets one replica
//! at a time poll a source; another takes over when it expires.

use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

impl StoreTx<'_> {
    /// Saves a cursor in this transaction (with the page it follows).
    pub async fn save_poll_cursor(
        &mut self,
        name: &str,
        cursor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO poll_cursors (name, cursor, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(cursor)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// The saved cursor of `name` (`poll:<source>` or a backfill's name).
    pub async fn poll_cursor(&self, name: &str) -> StoreResult<Option<String>> {
        let cursor = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT cursor FROM poll_cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        Ok(cursor)
    }

    pub async fn save_poll_cursor(&self, name: &str, cursor: &str, now_ms: i64) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO poll_cursors (name, cursor, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(cursor)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// When the cursor of `name` last moved (for poller-lag metrics).
    pub async fn poll_cursor_updated_at(&self, name: &str) -> StoreResult<Option<i64>> {
        let at = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT updated_at FROM poll_cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        Ok(at)
    }

    /// Every poller's cursor and when it last moved: (source, updated_at).
    pub async fn poll_cursor_times(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, updated_at FROM poll_cursors WHERE name LIKE 'poll:%' ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(name, at)| (name.trim_start_matches("poll:").to_string(), at))
            .collect())
    }

    /// Takes or renews the lease `name` for `holder` until `until_ms`.
    /// True when `holder` now holds it: it was free, expired, or already
    /// ours. One statement, so two replicas cannot both win.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let won: Option<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at < $4
                 RETURNING holder",
            )
            .bind(name)
            .bind(holder)
            .bind(until_ms)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        Ok(won.as_deref() == Some(holder))
    }

    /// Gives a lease up (a clean shutdown), so another replica takes over at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Who holds `name` now, if anyone (tests and `check-config`).
    pub async fn lease_holder(&self, name: &str, now_ms: i64) -> StoreResult<Option<String>> {
        let holder = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2")
                .bind(name)
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
        });
        Ok(holder)
    }
}
