//! The dashboard's own reads: the negatives queue (every rating of a period
//! that is or was negative, with its follow-up state, a page at a time). A rating's page uses
//! the ratings, history and outbox reads; the figures come from the reports.

use super::reports::{Bind, Binds, RECOVERED, RatingFilter, bind_all, filter_sql};
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

// The queue reads the period's ratings that are or were negative, in two
// parts, each through a partial index in `rated_at` order, so a page stops
// reading at its last row however long the period:
// - unhandled: negative now and not followed up (`ratings_unhandled_rated_at`),
//   state `new`, `acknowledged` or `escalated`;
// - handled, after them: negative and followed up (`ratings_negative_rated_at`),
//   and changed ratings that were negative once and are not now, "recovered"
//   (`ratings_changed_rated_at`; only a rating with more than one revision
//   can be), read only when the unhandled ones do not fill the page.
// The total comes from the follow-up rollup when it can answer, else from
// counting. The Slack link is looked up for the rows shown only. `{filter}`
// is the reports' filter on `r.`.
const QUEUE_COLUMNS: &str = "r.id, r.source, r.conversation_id, r.survey, r.scale, r.score,
    r.sentiment, r.comment, r.agent, r.team, r.url, r.rated_at, r.acked_by_name, r.acked_at,
    r.followed_up_by_name, r.followed_up_at";

/// An escalation was sent for rating `r`.
const ESCALATED: &str = "EXISTS (SELECT 1 FROM alerts e WHERE e.rating_id = r.id
    AND e.kind = 'escalation' AND e.state = 'sent')";

const UNHANDLED_STATE: &str = "CASE
    WHEN r.acked_at IS NOT NULL THEN 'acknowledged'
    WHEN {escalated} THEN 'escalated'
    ELSE 'new'
  END";

const UNHANDLED: &str = "r.sentiment = 'negative' AND r.followed_up_at IS NULL";

const FOLLOWED_UP: &str = "r.sentiment = 'negative' AND r.followed_up_at IS NOT NULL";

const PAGE_SQL: &str = "
SELECT l.*, CAST(0 AS BIGINT) AS total,
  (SELECT p.slack_channel FROM alerts p WHERE p.rating_id = l.id AND p.kind = 'post'
     AND p.slack_ts IS NOT NULL ORDER BY p.id LIMIT 1) AS slack_channel,
  (SELECT p.slack_ts FROM alerts p WHERE p.rating_id = l.id AND p.kind = 'post'
     AND p.slack_ts IS NOT NULL ORDER BY p.id LIMIT 1) AS slack_ts
FROM ({rows} ORDER BY rated_at, id LIMIT {limit}) l
ORDER BY l.rated_at, l.id";

/// Which parts of the queue a state filter reads: the unhandled part with
/// a condition on `r.` (`None`: not read), and the two handled ones.
struct Parts {
    unhandled: Option<String>,
    followed_up: bool,
    recovered: bool,
}

impl Parts {
    fn of(state: Option<&str>) -> Parts {
        let unhandled = |c: &str| Some(c.replace("{escalated}", ESCALATED));
        let (unhandled, followed_up, recovered) = match state {
            None => (unhandled("TRUE"), true, true),
            Some("new") => (
                unhandled("r.acked_at IS NULL AND NOT {escalated}"),
                false,
                false,
            ),
            Some("acknowledged") => (unhandled("r.acked_at IS NOT NULL"), false, false),
            Some("escalated") => (
                unhandled("r.acked_at IS NULL AND {escalated}"),
                false,
                false,
            ),
            Some("followed_up") => (None, true, false),
            Some("recovered") => (None, false, true),
            Some(_) => (None, false, false),
        };
        Parts {
            unhandled,
            followed_up,
            recovered,
        }
    }

    /// The unhandled rows' SELECT, if read.
    fn unhandled_sql(&self, range: &str, filter: &str) -> Option<String> {
        let state = UNHANDLED_STATE.replace("{escalated}", ESCALATED);
        self.unhandled.as_ref().map(|condition| {
            format!(
                "SELECT {QUEUE_COLUMNS}, {state} AS state FROM ratings r
                 WHERE {UNHANDLED} AND {range}{filter} AND {condition}"
            )
        })
    }

    /// The handled rows' SELECT (a UNION ALL of its parts), if read.
    fn handled_sql(&self, range: &str, filter: &str) -> Option<String> {
        let mut parts = Vec::new();
        if self.followed_up {
            parts.push(format!(
                "SELECT {QUEUE_COLUMNS}, 'followed_up' AS state FROM ratings r
                 WHERE {FOLLOWED_UP} AND {range}{filter}"
            ));
        }
        if self.recovered {
            parts.push(format!(
                "SELECT {QUEUE_COLUMNS}, 'recovered' AS state FROM ratings r
                 WHERE {RECOVERED} AND {range}{filter}"
            ));
        }
        (!parts.is_empty()).then(|| parts.join(" UNION ALL "))
    }

    /// The rows of `state` as a condition on `follow_up_rollup` (`r.`),
    /// when it can count them (it does not know escalations).
    fn rollup_condition(state: Option<&str>) -> Option<&'static str> {
        match state {
            None => Some("TRUE"),
            Some("acknowledged") => {
                Some("r.sentiment = 'negative' AND r.followed_up = 0 AND r.acked = 1")
            }
            Some("followed_up") => Some("r.sentiment = 'negative' AND r.followed_up = 1"),
            Some("recovered") => Some("r.sentiment <> 'negative'"),
            _ => None,
        }
    }
}

impl Store {
    /// The negatives queue for `f`, oldest unhandled first, each row with
    /// the number of ratings matching `f` as `total`.
    pub async fn negatives_queue(&self, f: &QueueFilter) -> StoreResult<Vec<QueueRow>> {
        let started = std::time::Instant::now();
        let mut binds = Binds::default();
        let range = format!(
            "r.rated_at >= {} AND r.rated_at < {}",
            binds.push(Bind::Int(f.since_ms)),
            binds.push(Bind::Int(f.until_ms))
        );
        let filter: String = filter_sql(&f.filter, &mut binds)
            .into_iter()
            .map(|c| format!(" AND {c}"))
            .collect();
        let parts = Parts::of(f.state.as_deref());
        let limit = f.limit.max(0);
        let mut rows = Vec::new();
        // Whether every part read so far was read to its end (false: a
        // part filled the page, and more rows may follow).
        let mut complete = true;
        for part in [
            parts.unhandled_sql(&range, &filter),
            parts.handled_sql(&range, &filter),
        ]
        .into_iter()
        .flatten()
        {
            let wanted = limit - rows.len() as i64;
            if wanted <= 0 {
                complete = false;
                break;
            }
            let mut page_binds = Binds(binds.0.clone());
            let limit_sql = page_binds.push(Bind::Int(wanted));
            let sql = PAGE_SQL
                .replace("{rows}", &part)
                .replace("{limit}", &limit_sql);
            let part_rows = on_pool!(self, |pool| {
                bind_all!(
                    sqlx::query_as::<_, QueueRow>(sqlx::AssertSqlSafe(sql)),
                    page_binds
                )
                .fetch_all(pool)
                .await?
            });
            complete = (part_rows.len() as i64) < wanted;
            rows.extend(part_rows);
        }
        if !rows.is_empty() {
            let total = if complete {
                rows.len() as i64
            } else {
                self.queue_total(f, &parts, &range, &filter, binds).await?
            };
            for row in &mut rows {
                row.total = total;
            }
        }
        crate::telemetry::observe_db("negatives_queue", started);
        Ok(rows)
    }

    /// How many ratings match `f` when a page showed only some: from the
    /// follow-up rollup when it can answer, else counted.
    async fn queue_total(
        &self,
        f: &QueueFilter,
        parts: &Parts,
        range: &str,
        filter: &str,
        binds: Binds,
    ) -> StoreResult<i64> {
        if let Some(condition) = Parts::rollup_condition(f.state.as_deref())
            && let Some(total) = self
                .follow_up_total((f.since_ms, f.until_ms), &f.filter, condition)
                .await?
        {
            return Ok(total);
        }
        let selects: Vec<String> = [
            parts.unhandled_sql(range, filter),
            parts.handled_sql(range, filter),
        ]
        .into_iter()
        .flatten()
        .collect();
        let sql = format!(
            "SELECT COUNT(*) FROM ({}) AS c",
            selects.join(" UNION ALL ")
        );
        let total = on_pool!(self, |pool| {
            bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), binds)
                .fetch_one(pool)
                .await?
        });
        Ok(total)
    }
}
