//! Multi-row writes for group commit: the writer task records many
//! deliveries, ratings, history rows and alerts with one statement per
//! table, instead of one statement (and, on SQLite, one hand-off to the
//! database thread) per row.
//!
//! Each function takes rows with distinct keys (the caller handles repeats
//! in order, one by one) and returns one answer per input row, in input
//! order. Rows are written sorted by their unique key, so two replicas
//! writing overlapping batches on PostgreSQL take row locks in the same
//! order and cannot deadlock each other.

use std::collections::HashMap;

use super::Dialect;
use super::{HistoryRecord, NewAlert, NewDelivery, RatingRecord, StoreResult, StoreTx, on_tx};

/// Rows per statement: far below either dialect's bound-parameter limit
/// (SQLite 32,766; PostgreSQL 65,535) at 19 columns.
pub(super) const ROWS_PER_STATEMENT: usize = 250;

/// `($1, $2, …), ($n+1, …)` for `rows` rows of `columns` parameters, with
/// `fixed` appended verbatim inside each row (constants). On SQLite the
/// parameters are anonymous `?`, bound in order: SQLite looks a numbered
/// parameter's name up in a list, so binding n numbered parameters costs
/// n² steps (measured as the largest single cost of a 64-connection burst).
pub(super) fn values(dialect: Dialect, rows: usize, columns: usize, fixed: &str) -> String {
    values_from(dialect, 1, rows, columns, fixed)
}

/// [`values`] with PostgreSQL's parameters numbered from `first` (a
/// statement that binds other parameters before these).
pub(super) fn values_from(
    dialect: Dialect,
    first: usize,
    rows: usize,
    columns: usize,
    fixed: &str,
) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => sql.push('?'),
                Dialect::Postgres => {
                    sql.push('$');
                    sql.push_str(&(first + row * columns + column).to_string());
                }
            }
        }
        sql.push_str(fixed);
        sql.push(')');
    }
    sql
}

/// `rating_history`'s columns as the inserts here write them, and their
/// number.
const HISTORY_COLUMNS: &str =
    "rating_id, revision, score, sentiment, comment, updated_at, recorded_at, via, delivery_id";
const HISTORY_WIDTH: usize = 9;

/// Binds a [`HistoryRecord`]'s [`HISTORY_COLUMNS`] to a query, in order.
macro_rules! bind_history {
    ($q:expr, $h:expr) => {{
        let h: &HistoryRecord = $h;
        $q.bind(h.rating_id)
            .bind(h.revision)
            .bind(h.score)
            .bind(&h.sentiment)
            .bind(&h.comment)
            .bind(h.updated_at)
            .bind(h.recorded_at)
            .bind(&h.via)
            .bind(h.delivery_id)
    }};
}
pub(super) use bind_history;

/// Input positions sorted by `key`.
fn sorted_by<K: Ord>(n: usize, key: impl Fn(usize) -> K) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| key(i));
    order
}

impl StoreTx<'_> {
    /// Records deliveries (distinct by source and key) as recorded, as
    /// [`StoreTx::insert_delivery`] does one by one: for each, its id, or
    /// `None` when it was already recorded.
    pub async fn insert_deliveries(
        &mut self,
        deliveries: &[&NewDelivery],
    ) -> StoreResult<Vec<Option<i64>>> {
        let order = sorted_by(deliveries.len(), |i| {
            (&deliveries[i].source, &deliveries[i].delivery_key)
        });
        let mut ids: HashMap<(String, String), i64> = HashMap::new();
        for chunk in order.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO deliveries (source, delivery_key, received_at, via, request_meta, body, status)
                 VALUES {}
                 ON CONFLICT (source, delivery_key) DO UPDATE
                    SET status = 'recorded', error = NULL, next_attempt_at = NULL, attempts = deliveries.attempts + 1
                    WHERE deliveries.status <> 'recorded'
                 RETURNING id, source, delivery_key",
                values(self.dialect(), chunk.len(), 6, ", 'recorded'")
            );
            let rows: Vec<(i64, String, String)> = on_tx!(self, |conn| {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for &i in chunk {
                    let d = deliveries[i];
                    q = q
                        .bind(&d.source)
                        .bind(&d.delivery_key)
                        .bind(d.received_at_ms)
                        .bind(&d.via)
                        .bind(&d.request_meta)
                        .bind(&d.body);
                }
                q.fetch_all(&mut *conn).await?
            });
            ids.extend(rows.into_iter().map(|(id, s, k)| ((s, k), id)));
        }
        Ok(deliveries
            .iter()
            .map(|d| {
                ids.get(&(d.source.clone(), d.delivery_key.clone()))
                    .copied()
            })
            .collect())
    }

    /// Inserts ratings seen for the first time (distinct by natural key),
    /// at revision 1: for
    /// each, its new id, or `None` when it already exists.
    pub async fn insert_ratings(
        &mut self,
        ratings: &[&RatingRecord],
        now_ms: i64,
    ) -> StoreResult<Vec<Option<i64>>> {
        let order = sorted_by(ratings.len(), |i| {
            let r = ratings[i];
            (&r.source, &r.conversation_id, &r.rating_key)
        });
        let mut ids: HashMap<(String, String, String), i64> = HashMap::new();
        for chunk in order.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO ratings (source, conversation_id, rating_key, survey, scale, score, normalised,
                    sentiment, comment, agent, team, customer, company, brand, tags, url, rated_at, updated_at,
                    first_seen_at, last_seen_at, revision)
                 VALUES {}
                 ON CONFLICT (source, conversation_id, rating_key) DO NOTHING
                 RETURNING id, source, conversation_id, rating_key",
                values(self.dialect(), chunk.len(), 20, ", 1")
            );
            let rows: Vec<(i64, String, String, String)> = on_tx!(self, |conn| {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for &i in chunk {
                    let r = ratings[i];
                    q = q
                        .bind(&r.source)
                        .bind(&r.conversation_id)
                        .bind(&r.rating_key)
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
                        .bind(r.rated_at)
                        .bind(r.updated_at)
                        .bind(now_ms)
                        .bind(now_ms);
                }
                q.fetch_all(&mut *conn).await?
            });
            ids.extend(rows.into_iter().map(|(id, s, c, k)| ((s, c, k), id)));
        }
        // Each rating inserted now counts in the report rollup.
        for r in ratings {
            let key = (
                r.source.clone(),
                r.conversation_id.clone(),
                r.rating_key.clone(),
            );
            if let Some(&id) = ids.get(&key) {
                self.rollup_change(None, &r.rollup_dims());
                if r.sentiment == "negative" {
                    self.follow_up_inserted(id, r);
                }
            }
        }
        Ok(ratings
            .iter()
            .map(|r| {
                ids.get(&(
                    r.source.clone(),
                    r.conversation_id.clone(),
                    r.rating_key.clone(),
                ))
                .copied()
            })
            .collect())
    }

    /// Appends history rows (each a new revision of its rating).
    pub async fn insert_histories(&mut self, rows: &[HistoryRecord]) -> StoreResult<()> {
        let order = sorted_by(rows.len(), |i| (rows[i].rating_id, rows[i].revision));
        for chunk in order.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO rating_history ({HISTORY_COLUMNS}) VALUES {}",
                values(self.dialect(), chunk.len(), HISTORY_WIDTH, "")
            );
            on_tx!(self, |conn| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for &i in chunk {
                    q = bind_history!(q, &rows[i]);
                }
                q.execute(&mut *conn).await?.rows_affected()
            });
        }
        Ok(())
    }

    /// Enqueues alerts as [`StoreTx::enqueue_alert`] does one by one, each
    /// first due `settle_ms` after it was created (`alerts.settle`, as
    /// [`StoreTx::delay_alert`] would set it; 0: due at once), and already
    /// claimed with `claim` when given (the dispatcher's fast lane). Returns
    /// each input row's new id, or `None` where that rating revision
    /// already has one for the channel.
    ///
    /// Also appends `histories` as [`StoreTx::insert_histories`] does: on
    /// PostgreSQL in the same statement as the alerts (a data-modifying
    /// `WITH`, one round trip to the server instead of two), elsewhere
    /// before them.
    pub async fn enqueue_alerts(
        &mut self,
        alerts: &[NewAlert],
        settle_ms: i64,
        claim: Option<(&str, i64)>,
        histories: &[HistoryRecord],
    ) -> StoreResult<Vec<Option<i64>>> {
        let together = self.dialect() == Dialect::Postgres
            && !alerts.is_empty()
            && histories.len() <= ROWS_PER_STATEMENT;
        if !together && !histories.is_empty() {
            self.insert_histories(histories).await?;
        }
        let history_order = sorted_by(histories.len(), |i| {
            (histories[i].rating_id, histories[i].revision)
        });
        // The history rows ride with the first statement only.
        let mut with_history: &[usize] = if together { &history_order } else { &[] };
        let key = |a: &NewAlert| {
            (
                a.rating_id,
                a.channel.clone(),
                format!("rev:{}", a.revision),
            )
        };
        let order = sorted_by(alerts.len(), |i| key(&alerts[i]));
        let (token, claimed_until) = claim.unzip();
        let mut inserted: HashMap<(i64, String, String), i64> = HashMap::new();
        for chunk in order.chunks(ROWS_PER_STATEMENT) {
            let history = if with_history.is_empty() {
                String::new()
            } else {
                format!(
                    "WITH history AS (INSERT INTO rating_history ({HISTORY_COLUMNS}) VALUES {}) ",
                    values(self.dialect(), with_history.len(), HISTORY_WIDTH, "")
                )
            };
            let sql = format!(
                "{history}INSERT INTO alerts (rating_id, revision, rule, channel, mentions, sentiment, event_key,
                    escalate_at, escalate_to, next_attempt_at, created_at, trace_parent, claim_token,
                    claimed_until, kind, state)
                 VALUES {}
                 ON CONFLICT (rating_id, channel, kind, event_key) DO NOTHING
                 RETURNING id, rating_id, channel, event_key",
                values_from(
                    self.dialect(),
                    with_history.len() * HISTORY_WIDTH + 1,
                    chunk.len(),
                    14,
                    ", 'post', 'pending'"
                )
            );
            let rows: Vec<(i64, i64, String, String)> = on_tx!(self, |conn| {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for &i in with_history {
                    q = bind_history!(q, &histories[i]);
                }
                for &i in chunk {
                    let a = &alerts[i];
                    q = q
                        .bind(a.rating_id)
                        .bind(a.revision)
                        .bind(&a.rule)
                        .bind(&a.channel)
                        .bind(&a.mentions)
                        .bind(&a.sentiment)
                        .bind(format!("rev:{}", a.revision))
                        .bind(a.escalate_at)
                        .bind(&a.escalate_to)
                        .bind(a.created_at_ms + settle_ms.max(0))
                        .bind(a.created_at_ms)
                        .bind(&a.trace_parent)
                        .bind(token)
                        .bind(claimed_until);
                }
                q.fetch_all(&mut *conn).await?
            });
            with_history = &[];
            inserted.extend(
                rows.into_iter()
                    .map(|(id, rating, channel, event)| ((rating, channel, event), id)),
            );
        }
        Ok(alerts.iter().map(|a| inserted.remove(&key(a))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{Dialect, values, values_from};

    #[test]
    fn values_numbers_every_parameter_once_in_row_order() {
        assert_eq!(values(Dialect::Postgres, 2, 2, ""), "($1, $2), ($3, $4)");
        assert_eq!(
            values(Dialect::Postgres, 1, 3, ", 'x'"),
            "($1, $2, $3, 'x')"
        );
        assert_eq!(
            values(Dialect::Sqlite, 2, 2, ", 'x'"),
            "(?, ?, 'x'), (?, ?, 'x')"
        );
        // After 4 parameters of another statement's rows.
        assert_eq!(
            values_from(Dialect::Postgres, 5, 2, 2, ""),
            "($5, $6), ($7, $8)"
        );
        assert_eq!(values_from(Dialect::Sqlite, 5, 1, 2, ""), "(?, ?)");
    }
}
