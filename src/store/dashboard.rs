//! The dashboard's own reads: the negatives queue (every rating of a period
//! that is or was negative, with its follow-up state). A rating's page uses
//! the ratings, history and outbox reads; the figures come from the reports.

use super::{Store, StoreResult, on_pool};

/// What the negatives queue shows.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// `rated_at` from (inclusive), Unix ms.
    pub since_ms: i64,
    /// `rated_at` until (exclusive), Unix ms.
    pub until_ms: i64,
    pub source: Option<String>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub survey: Option<String>,
    /// `new`, `acknowledged`, `escalated`, `followed_up` or `recovered`.
    pub state: Option<String>,
    /// The current score on its scale.
    pub score: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// One rating of the queue.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueueRow {
    pub id: i64,
    pub source: String,
    pub conversation_id: String,
    pub survey: String,
    pub scale: String,
    pub score: i64,
    pub sentiment: String,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub url: Option<String>,
    pub rated_at: i64,
    pub acked_by_name: Option<String>,
    pub acked_at: Option<i64>,
    pub followed_up_by_name: Option<String>,
    pub followed_up_at: Option<i64>,
    /// `new`, `acknowledged`, `escalated`, `followed_up` or `recovered`.
    pub state: String,
    /// The channel and ts of the rating's first Slack post, once sent.
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
    /// How many rows match the filter (the same on every row).
    pub total: i64,
}

// A rating that was negative and is not now is "recovered"; only ratings
// with more than one revision can be, so the history is read for those
// alone. Handled ratings (followed up, recovered) sort after the others;
// within each, oldest first.
const QUEUE_SQL: &str = "
SELECT q.*, COUNT(*) OVER () AS total FROM (
  SELECT r.id, r.source, r.conversation_id, r.survey, r.scale, r.score, r.sentiment, r.comment,
         r.agent, r.team, r.url, r.rated_at, r.acked_by_name, r.acked_at,
         r.followed_up_by_name, r.followed_up_at,
         CASE
           WHEN r.sentiment <> 'negative' THEN 'recovered'
           WHEN r.followed_up_at IS NOT NULL THEN 'followed_up'
           WHEN r.acked_at IS NOT NULL THEN 'acknowledged'
           WHEN EXISTS (SELECT 1 FROM alerts e WHERE e.rating_id = r.id
                        AND e.kind = 'escalation' AND e.state = 'sent') THEN 'escalated'
           ELSE 'new'
         END AS state,
         (SELECT p.slack_channel FROM alerts p WHERE p.rating_id = r.id AND p.kind = 'post'
            AND p.slack_ts IS NOT NULL ORDER BY p.id LIMIT 1) AS slack_channel,
         (SELECT p.slack_ts FROM alerts p WHERE p.rating_id = r.id AND p.kind = 'post'
            AND p.slack_ts IS NOT NULL ORDER BY p.id LIMIT 1) AS slack_ts
  FROM ratings r
  WHERE r.rated_at >= $1 AND r.rated_at < $2
    AND ($3 IS NULL OR r.source = $3)
    AND ($4 IS NULL OR r.team = $4)
    AND ($5 IS NULL OR r.agent = $5)
    AND ($6 IS NULL OR r.survey = $6)
    AND ($7 IS NULL OR r.score = $7)
    AND (r.sentiment = 'negative'
         OR (r.revision > 1 AND EXISTS (SELECT 1 FROM rating_history h
               WHERE h.rating_id = r.id AND h.sentiment = 'negative')))
) q
WHERE ($8 IS NULL OR q.state = $8)
ORDER BY CASE WHEN q.state IN ('followed_up', 'recovered') THEN 1 ELSE 0 END, q.rated_at, q.id
LIMIT $9";

impl Store {
    /// The negatives queue for `f`, oldest unhandled first.
    pub async fn negatives_queue(&self, f: &QueueFilter) -> StoreResult<Vec<QueueRow>> {
        let started = std::time::Instant::now();
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, QueueRow>(QUEUE_SQL)
                .bind(f.since_ms)
                .bind(f.until_ms)
                .bind(&f.source)
                .bind(&f.team)
                .bind(&f.agent)
                .bind(&f.survey)
                .bind(f.score)
                .bind(&f.state)
                .bind(f.limit)
                .fetch_all(pool)
                .await?
        });
        crate::telemetry::observe_db("negatives_queue", started);
        Ok(rows)
    }
}
