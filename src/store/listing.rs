//! Ratings one by one, for the read API: a page at a time (newest first,
//! keyset cursor) or every matching rating streamed in `rated_at` order
//! for exports, without holding them in memory.

use futures::StreamExt as _;

use super::reports::{Bind, Binds, RatingFilter, bind_all, filter_sql};
use super::{Store, StoreResult, on_pool};

/// One rating as the API and exports show it: its latest version and its
/// follow-up state. `comment` and `customer` are personal data.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct RatingRow {
    pub id: i64,
    pub source: String,
    pub conversation_id: String,
    pub rating_key: String,
    pub survey: String,
    pub scale: String,
    pub score: i64,
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
    pub revision: i64,
    pub acked_at: Option<i64>,
    pub acked_by_name: Option<String>,
    pub followed_up_at: Option<i64>,
    pub followed_up_by_name: Option<String>,
    pub follow_up_outcome: Option<String>,
}

const ROW_COLUMNS: &str = "r.id, r.source, r.conversation_id, r.rating_key, r.survey, r.scale,
    r.score, r.sentiment, r.comment, r.agent, r.team, r.customer, r.company, r.brand, r.tags,
    r.url, r.rated_at, r.updated_at, r.revision, r.acked_at, r.acked_by_name, r.followed_up_at,
    r.followed_up_by_name, r.follow_up_outcome";

/// Which ratings: `[since_ms, until_ms)` by `rated_at`, and a filter.
#[derive(Debug, Clone, Default)]
pub struct RatingQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    pub filter: RatingFilter,
}

impl RatingQuery {
    fn where_sql(&self, binds: &mut Binds) -> String {
        let mut clauses = vec![
            format!("r.rated_at >= {}", binds.push(Bind::Int(self.since_ms))),
            format!("r.rated_at < {}", binds.push(Bind::Int(self.until_ms))),
        ];
        clauses.extend(filter_sql(&self.filter, binds));
        clauses.join(" AND ")
    }
}

impl Store {
    /// Up to `limit` ratings, newest first, after the cursor
    /// `(rated_at, id)` of the last one of the previous page.
    pub async fn list_ratings(
        &self,
        q: &RatingQuery,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> StoreResult<Vec<RatingRow>> {
        let mut binds = Binds::default();
        let mut condition = q.where_sql(&mut binds);
        if let Some((rated_at, id)) = after {
            let a = binds.push(Bind::Int(rated_at));
            let b = binds.push(Bind::Int(id));
            condition.push_str(&format!(
                " AND (r.rated_at < {a} OR (r.rated_at = {a} AND r.id < {b}))"
            ));
        }
        let l = binds.push(Bind::Int(limit));
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM ratings r WHERE {condition}
             ORDER BY r.rated_at DESC, r.id DESC LIMIT {l}"
        );
        let rows = on_pool!(self, |pool| {
            bind_all!(
                sqlx::query_as::<_, RatingRow>(sqlx::AssertSqlSafe(sql)),
                binds
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every matching rating, oldest first, sent to `out` one at a time as
    /// the database returns them (the channel's bound is the backpressure);
    /// stops early when the receiver is gone (the client went away).
    /// Returns how many were sent.
    pub async fn export_ratings(
        &self,
        q: &RatingQuery,
        out: tokio::sync::mpsc::Sender<RatingRow>,
    ) -> StoreResult<u64> {
        let mut binds = Binds::default();
        let condition = q.where_sql(&mut binds);
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM ratings r WHERE {condition} ORDER BY r.rated_at, r.id"
        );
        let mut count = 0;
        on_pool!(self, |pool| {
            let query = bind_all!(
                sqlx::query_as::<_, RatingRow>(sqlx::AssertSqlSafe(sql)),
                binds
            );
            let mut rows = query.fetch(pool);
            while let Some(row) = rows.next().await {
                if out.send(row?).await.is_err() {
                    break;
                }
                count += 1;
            }
        });
        Ok(count)
    }
}
