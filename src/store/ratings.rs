//! Ratings (one row per source, conversation and rating key) and their
//! history (one row per version a customer gave).

use super::batch::bind_history;
use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// A rating's current state as the pipeline wants it written.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingRecord {
    pub source: String,
    pub conversation_id: String,
    pub rating_key: String,
    pub survey: String,
    pub scale: String,
    pub score: i64,
    pub normalised: f64,
    pub sentiment: String,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    /// JSON array of strings.
    pub tags: String,
    pub url: Option<String>,
    pub rated_at: i64,
    pub updated_at: i64,
}

/// A rating read back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredRating {
    pub id: i64,
    pub source: String,
    pub conversation_id: String,
    pub rating_key: String,
    pub survey: String,
    pub scale: String,
    pub score: i64,
    pub normalised: f64,
    pub sentiment: String,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    pub tags: String,
    pub url: Option<String>,
    pub rated_at: i64,
    pub updated_at: i64,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub revision: i64,
}

/// One version of a rating.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HistoryRecord {
    pub rating_id: i64,
    pub revision: i64,
    pub score: i64,
    pub sentiment: String,
    pub comment: Option<String>,
    pub updated_at: i64,
    pub recorded_at: i64,
    pub via: String,
    pub delivery_id: Option<i64>,
}

/// `rollup_dims` for a type with the rating's columns under their names.
macro_rules! rollup_dims {
    ($($ty:ty),+) => {$(
        impl $ty {
            pub(super) fn rollup_dims(&self) -> super::rollup::RollupDims<'_> {
                super::rollup::RollupDims {
                    source: &self.source,
                    survey: &self.survey,
                    scale: &self.scale,
                    score: self.score,
                    sentiment: &self.sentiment,
                    brand: self.brand.as_deref(),
                    team: self.team.as_deref(),
                    agent: self.agent.as_deref(),
                    rated_at: self.rated_at,
                }
            }
        }
    )+};
}
rollup_dims!(RatingRecord, StoredRating);

pub(super) const RATING_COLUMNS: &str =
    "id, source, conversation_id, rating_key, survey, scale, score, normalised, sentiment,
     comment, agent, team, customer, company, brand, tags, url, rated_at, updated_at,
     first_seen_at, last_seen_at, revision";

impl StoreTx<'_> {
    /// Inserts a rating seen for the first time, at revision 1. Returns its
    /// id, or `None` if it already exists (then [`StoreTx::lock_rating`] it).
    /// The writer task inserts many at once with [`StoreTx::insert_ratings`].
    pub async fn insert_rating(
        &mut self,
        r: &RatingRecord,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        Ok(self.insert_ratings(&[r], now_ms).await?.pop().flatten())
    }

    /// Reads a rating and holds it until commit (`FOR UPDATE` on
    /// PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the write lock).
    pub async fn lock_rating(
        &mut self,
        source: &str,
        conversation_id: &str,
        rating_key: &str,
    ) -> StoreResult<Option<StoredRating>> {
        let lock = self.dialect().row_lock("FOR UPDATE");
        let row = on_tx!(self, |conn| {
            sqlx::query_as::<_, StoredRating>(sqlx::AssertSqlSafe(format!(
                "SELECT {RATING_COLUMNS} FROM ratings
                 WHERE source = $1 AND conversation_id = $2 AND rating_key = $3 {lock}"
            )))
            .bind(source)
            .bind(conversation_id)
            .bind(rating_key)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(row)
    }

    /// Writes a new version of `current` (as [`StoreTx::lock_rating`] read
    /// it), and moves it in the report rollup from its old counts to its
    /// new ones.
    pub async fn update_rating(
        &mut self,
        current: &StoredRating,
        r: &RatingRecord,
        revision: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        let id = current.id;
        // What the statement below leaves: recorded values are kept where
        // the new version has none; `rated_at` never changes.
        let new = super::rollup::RollupDims {
            brand: r.brand.as_deref().or(current.brand.as_deref()),
            team: r.team.as_deref().or(current.team.as_deref()),
            agent: r.agent.as_deref().or(current.agent.as_deref()),
            rated_at: current.rated_at,
            ..r.rollup_dims()
        };
        self.rollup_change(Some(&current.rollup_dims()), &new);
        // A rating that is, becomes or may have been negative moves in the
        // follow-up rollup (one never negative has revision 1 or a history
        // without a negative version; the touch reads which).
        if current.sentiment == "negative" || r.sentiment == "negative" || current.revision > 1 {
            self.follow_up_touch(&[id]).await?;
        }
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE ratings SET survey = $2, scale = $3, score = $4, normalised = $5, sentiment = $6,
                    comment = $7, agent = COALESCE($8, agent), team = COALESCE($9, team),
                    customer = COALESCE($10, customer), company = COALESCE($11, company),
                    brand = COALESCE($12, brand), tags = $13, url = COALESCE($14, url),
                    updated_at = $15, last_seen_at = $16, revision = $17
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&r.survey)
            .bind(&r.scale)
            .bind(r.score)
            .bind(r.normalised)
            .bind(&r.sentiment)
            .bind(&r.comment)
            .bind(&r.agent)
            .bind(&r.team)
            .bind(&r.customer)
            .bind(&r.company)
            .bind(&r.brand)
            .bind(&r.tags)
            .bind(&r.url)
            .bind(r.updated_at)
            .bind(now_ms)
            .bind(revision)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Notes that an unchanged rating was seen again.
    pub async fn touch_rating(&mut self, id: i64, now_ms: i64) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("UPDATE ratings SET last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    pub async fn insert_history(&mut self, h: &HistoryRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            let q = sqlx::query(
                "INSERT INTO rating_history (rating_id, revision, score, sentiment, comment, updated_at,
                    recorded_at, via, delivery_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            );
            bind_history!(q, h)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// A rating by its natural key.
    pub async fn rating(
        &self,
        source: &str,
        conversation_id: &str,
        rating_key: &str,
    ) -> StoreResult<Option<StoredRating>> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, StoredRating>(sqlx::AssertSqlSafe(format!(
                "SELECT {RATING_COLUMNS} FROM ratings
                 WHERE source = $1 AND conversation_id = $2 AND rating_key = $3"
            )))
            .bind(source)
            .bind(conversation_id)
            .bind(rating_key)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// A rating by id.
    pub async fn rating_by_id(&self, id: i64) -> StoreResult<Option<StoredRating>> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, StoredRating>(sqlx::AssertSqlSafe(format!(
                "SELECT {RATING_COLUMNS} FROM ratings WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Every version of a rating, oldest first.
    pub async fn rating_history(&self, rating_id: i64) -> StoreResult<Vec<HistoryRecord>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, HistoryRecord>(
                "SELECT rating_id, revision, score, sentiment, comment, updated_at, recorded_at, via, delivery_id
                 FROM rating_history WHERE rating_id = $1 ORDER BY revision",
            )
            .bind(rating_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn count_ratings(&self) -> StoreResult<i64> {
        let n = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM ratings")
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }
}
