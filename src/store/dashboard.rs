//! The dashboard's own reads: the negatives queue (every rating of a period
//! that is or was negative, with its follow-up state). A rating's page uses
//! the ratings, history and outbox reads; the figures come from the reports.

use super::reports::{Bind, Binds, RatingFilter, filter_sql};
use super::{Store, StoreResult, on_pool};

/// What the negatives queue shows.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// `rated_at` from (inclusive), Unix ms.
    pub since_ms: i64,
    /// `rated_at` until (exclusive), Unix ms.
    pub until_ms: i64,
    /// The same filter the reports apply (so the queue and the figures
    /// agree on which ratings a view holds).
    pub filter: RatingFilter,
    /// `new`, `acknowledged`, `escalated`, `followed_up` or `recovered`.
    pub state: Option<String>,
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

// The queue is two index range reads: ratings negative now (partial index
// `ratings_negative_rated_at`), and changed ratings that were negative once
// and are not now, "recovered" (`ratings_changed_rated_at`; only a rating
// with more than one revision can be). Handled ratings (followed up,
// recovered) sort after the others; within each, oldest first. The Slack
// link is looked up for the rows shown only. `{filter}` is the reports'
// filter on `r.`.
const QUEUE_COLUMNS: &str = "r.id, r.source, r.conversation_id, r.survey, r.scale, r.score,
    r.sentiment, r.comment, r.agent, r.team, r.url, r.rated_at, r.acked_by_name, r.acked_at,
    r.followed_up_by_name, r.followed_up_at";

const QUEUE_ORDER: &str =
    "CASE WHEN {q}.state IN ('followed_up', 'recovered') THEN 1 ELSE 0 END, {q}.rated_at, {q}.id";

const QUEUE_SQL: &str = "
SELECT l.*,
  (SELECT p.slack_channel FROM alerts p WHERE p.rating_id = l.id AND p.kind = 'post'
     AND p.slack_ts IS NOT NULL ORDER BY p.id LIMIT 1) AS slack_channel,
  (SELECT p.slack_ts FROM alerts p WHERE p.rating_id = l.id AND p.kind = 'post'
     AND p.slack_ts IS NOT NULL ORDER BY p.id LIMIT 1) AS slack_ts
FROM (
  SELECT q.*, COUNT(*) OVER () AS total FROM (
    SELECT {columns},
           CASE
             WHEN r.followed_up_at IS NOT NULL THEN 'followed_up'
             WHEN r.acked_at IS NOT NULL THEN 'acknowledged'
             WHEN EXISTS (SELECT 1 FROM alerts e WHERE e.rating_id = r.id
                          AND e.kind = 'escalation' AND e.state = 'sent') THEN 'escalated'
             ELSE 'new'
           END AS state
    FROM ratings r
    WHERE r.sentiment = 'negative' AND r.rated_at >= $1 AND r.rated_at < $2 {filter}
    UNION ALL
    SELECT {columns}, 'recovered' AS state
    FROM ratings r
    WHERE r.revision > 1 AND r.sentiment <> 'negative' AND r.rated_at >= $1 AND r.rated_at < $2 {filter}
      AND EXISTS (SELECT 1 FROM rating_history h WHERE h.rating_id = r.id AND h.sentiment = 'negative')
  ) q
  WHERE {state}
  ORDER BY {order_q}
  LIMIT {limit}
) l
ORDER BY {order_l}";

impl Store {
    /// The negatives queue for `f`, oldest unhandled first.
    pub async fn negatives_queue(&self, f: &QueueFilter) -> StoreResult<Vec<QueueRow>> {
        let started = std::time::Instant::now();
        let mut binds = Binds::default();
        binds.push(Bind::Int(f.since_ms));
        binds.push(Bind::Int(f.until_ms));
        let filter: String = filter_sql(&f.filter, &mut binds)
            .into_iter()
            .map(|c| format!(" AND {c}"))
            .collect();
        let state = match &f.state {
            Some(s) => format!("q.state = {}", binds.push(Bind::Text(s.clone()))),
            None => "TRUE".to_string(),
        };
        let limit = binds.push(Bind::Int(f.limit));
        let sql = QUEUE_SQL
            .replace("{columns}", QUEUE_COLUMNS)
            .replace("{order_q}", &QUEUE_ORDER.replace("{q}", "q"))
            .replace("{order_l}", &QUEUE_ORDER.replace("{q}", "l"))
            .replace("{filter}", &filter)
            .replace("{state}", &state)
            .replace("{limit}", &limit);
        let rows = on_pool!(self, |pool| {
            let mut q = sqlx::query_as::<_, QueueRow>(sqlx::AssertSqlSafe(sql.clone()));
            for b in &binds.0 {
                q = match b {
                    Bind::Text(s) => q.bind(s.clone()),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            q.fetch_all(pool).await?
        });
        crate::telemetry::observe_db("negatives_queue", started);
        Ok(rows)
    }
}
