//! Closing the loop: what people did about a rating from its alert (notes,
//! reopens, assignments, direct messages: `rating_activity`), the recorded
//! outcome of a follow-up, the customer's earlier ratings, and the settle
//! delay of a freshly enqueued alert.

use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// One thing done about a rating from Slack.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Activity {
    pub id: i64,
    pub rating_id: i64,
    /// `note`, `reopen`, `assign`, `outcome` or `dm`.
    pub kind: String,
    pub actor_id: String,
    pub actor_name: Option<String>,
    /// `done` or `failed`.
    pub status: String,
    /// What it did, or why it failed; never customer text.
    pub detail: Option<String>,
    pub created_at: i64,
}

/// An activity to record.
#[derive(Debug, Clone)]
pub struct NewActivity<'a> {
    pub rating_id: i64,
    pub kind: &'a str,
    pub actor_id: &'a str,
    pub actor_name: Option<&'a str>,
    pub status: &'a str,
    pub detail: Option<&'a str>,
    pub at_ms: i64,
}

/// The recorded outcome of a follow-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct FollowUpOutcome {
    /// `reached_customer`, `resolved`, `compensated`, `no_reply`, `not_actionable`.
    pub follow_up_outcome: Option<String>,
    /// The follower's optional note (their words, not the customer's).
    pub follow_up_note: Option<String>,
}

/// One earlier rating of the same customer, for the alert's story line.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EarlierRating {
    pub id: i64,
    pub scale: String,
    pub score: i64,
    pub sentiment: String,
    pub rated_at: i64,
}

/// One alert's question to [`Store::earlier_ratings_of_many`].
#[derive(Debug, Clone, Copy)]
pub struct StoryQuery<'a> {
    pub key: i64,
    pub source: &'a str,
    pub customer: &'a str,
    pub since_ms: i64,
    pub except_id: i64,
}

/// Alerts asked about per statement (4 parameters each).
const STORIES_PER_STATEMENT: usize = 100;

/// The customer-story statement for `wanted` (at most
/// [`STORIES_PER_STATEMENT`]) and its parameters: on PostgreSQL one
/// statement of the same text for any batch (`Dialect::stories_sql`, the
/// list as one JSON parameter); on SQLite a UNION ALL of one subquery per
/// alert.
fn stories_statement(
    dialect: super::Dialect,
    wanted: &[StoryQuery<'_>],
    limit: i64,
) -> (String, super::reports::Binds) {
    use super::reports::{Bind, Binds};
    let mut binds = Binds::default();
    if let Some(sql) = dialect.stories_sql(limit) {
        let list: Vec<serde_json::Value> = wanted
            .iter()
            .map(|q| {
                serde_json::json!({"k": q.key, "source": q.source, "customer": q.customer,
                    "since": q.since_ms, "except_id": q.except_id})
            })
            .collect();
        binds.push(Bind::Text(serde_json::Value::Array(list).to_string()));
        return (sql, binds);
    }
    let parts: Vec<String> = wanted
        .iter()
        .map(|q| {
            let source = binds.push(Bind::Text(q.source.to_string()));
            let customer = binds.push(Bind::Text(q.customer.to_string()));
            let since = binds.push(Bind::Int(q.since_ms));
            let except = binds.push(Bind::Int(q.except_id));
            // `key` and `limit` are integers of ours.
            format!(
                "SELECT * FROM (SELECT CAST({key} AS BIGINT) AS k, id, scale, score, sentiment, rated_at
                 FROM ratings WHERE source = {source} AND customer = {customer}
                   AND rated_at >= {since} AND id <> {except}
                 ORDER BY rated_at DESC, id DESC LIMIT {limit}) AS s",
                key = q.key
            )
        })
        .collect();
    (parts.join(" UNION ALL "), binds)
}

#[derive(sqlx::FromRow)]
struct KeyedEarlier {
    k: i64,
    #[sqlx(flatten)]
    rating: EarlierRating,
}

impl StoreTx<'_> {
    /// Records an activity inside the transaction.
    pub async fn add_activity(&mut self, a: &NewActivity<'_>) -> StoreResult<i64> {
        let id = on_tx!(self, |conn| {
            sqlx::query_scalar(
                "INSERT INTO rating_activity (rating_id, kind, actor_id, actor_name, status, detail, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(a.rating_id)
            .bind(a.kind)
            .bind(a.actor_id)
            .bind(a.actor_name)
            .bind(a.status)
            .bind(a.detail)
            .bind(a.at_ms)
            .fetch_one(&mut *conn)
            .await?
        });
        Ok(id)
    }

    /// When `customer` at `source` last gave a negative rating given since
    /// `since_ms`, other than `except_id` (the rating being decided; 0 for
    /// none).
    pub async fn previous_negative_at(
        &mut self,
        source: &str,
        customer: &str,
        since_ms: i64,
        except_id: i64,
    ) -> StoreResult<Option<i64>> {
        let at = on_tx!(self, |conn| {
            sqlx::query_scalar(
                "SELECT MAX(rated_at) FROM ratings
                 WHERE source = $1 AND customer = $2 AND rated_at >= $3 AND id <> $4
                   AND sentiment = 'negative'",
            )
            .bind(source)
            .bind(customer)
            .bind(since_ms)
            .bind(except_id)
            .fetch_one(&mut *conn)
            .await?
        });
        Ok(at)
    }

    /// Holds a just-enqueued post back until `due_ms` (`alerts.settle`).
    pub async fn delay_alert(&mut self, alert_id: i64, due_ms: i64) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE alerts SET next_attempt_at = $2 WHERE id = $1 AND state = 'pending' AND attempts = 0",
            )
            .bind(alert_id)
            .bind(due_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Records the outcome of a follow-up on a rating (the latest answer
    /// wins) and the follow-up itself unless one is recorded already. True
    /// when this was the first follow-up.
    pub async fn record_outcome(
        &mut self,
        rating_id: i64,
        outcome: &str,
        note: Option<&str>,
        user_id: &str,
        user_name: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.follow_up_touch(&[rating_id]).await?;
        let first = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE ratings SET followed_up_by = $2, followed_up_by_name = $3, followed_up_at = $4
                 WHERE id = $1 AND followed_up_at IS NULL",
            )
            .bind(rating_id)
            .bind(user_id)
            .bind(user_name)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE ratings SET follow_up_outcome = $2, follow_up_note = $3 WHERE id = $1",
            )
            .bind(rating_id)
            .bind(outcome)
            .bind(note)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(first == 1)
    }
}

impl Store {
    /// Records an activity on its own.
    pub async fn add_activity(&self, a: &NewActivity<'_>) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        let id = tx.add_activity(a).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A rating's activity, oldest first.
    pub async fn activity(&self, rating_id: i64) -> StoreResult<Vec<Activity>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, Activity>(
                "SELECT id, rating_id, kind, actor_id, actor_name, status, detail, created_at
                 FROM rating_activity WHERE rating_id = $1 ORDER BY id",
            )
            .bind(rating_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The recorded outcome of a rating's follow-up.
    pub async fn follow_up_outcome(&self, rating_id: i64) -> StoreResult<FollowUpOutcome> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, FollowUpOutcome>(
                "SELECT follow_up_outcome, follow_up_note FROM ratings WHERE id = $1",
            )
            .bind(rating_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.unwrap_or_default())
    }

    /// [`Store::earlier_ratings`] for many alerts in one statement (one
    /// round trip for a batch of sends instead of one per send; see
    /// `Dialect::stories_sql`): for each
    /// `(key, source, customer, since_ms, except_id)`, the rows keyed by
    /// `key`, newest first, at most `limit` each.
    pub async fn earlier_ratings_of_many(
        &self,
        wanted: &[StoryQuery<'_>],
        limit: i64,
    ) -> StoreResult<Vec<(i64, EarlierRating)>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in wanted.chunks(STORIES_PER_STATEMENT) {
            let (sql, binds) = stories_statement(self.dialect(), chunk, limit);
            let rows = on_pool!(self, |pool| {
                super::reports::bind_all!(
                    sqlx::query_as::<_, KeyedEarlier>(sqlx::AssertSqlSafe(sql)),
                    binds
                )
                .fetch_all(pool)
                .await?
            });
            out.extend(rows.into_iter().map(|r| (r.k, r.rating)));
        }
        Ok(out)
    }

    /// The plan of the customer-story statement for one alert (tests: it
    /// must walk `ratings_customer` in order, with no sort).
    #[doc(hidden)]
    pub async fn explain_stories(&self) -> StoreResult<String> {
        let wanted = [StoryQuery {
            key: 1,
            source: "zendesk",
            customer: "c@example.com",
            since_ms: 0,
            except_id: 0,
        }];
        let (sql, binds) = stories_statement(self.dialect(), &wanted, 5);
        self.explain(&sql, binds).await
    }

    /// The customer's other ratings at `source` given since `since_ms`,
    /// newest first, at most `limit`.
    pub async fn earlier_ratings(
        &self,
        source: &str,
        customer: &str,
        since_ms: i64,
        except_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EarlierRating>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, EarlierRating>(
                "SELECT id, scale, score, sentiment, rated_at FROM ratings
                 WHERE source = $1 AND customer = $2 AND rated_at >= $3 AND id <> $4
                 ORDER BY rated_at DESC, id DESC LIMIT $5",
            )
            .bind(source)
            .bind(customer)
            .bind(since_ms)
            .bind(except_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
