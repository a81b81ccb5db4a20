//! The follow-up rollup: ratings that were ever negative, counted per local
//! day (and month) by source, survey, current sentiment, brand, team,
//! agent, and follow-up state (alerted, acknowledged, followed up,
//! outcome), at the levels of the report rollup (`store::rollup`). It is
//! what `report_follow_up_counts` reads instead of every ever-negative
//! rating of the period with a look-up in `alerts` each.
//!
//! A rating's follow-up state changes with writes to three tables (its
//! row, its history, its alerts), so rather than each write computing what
//! it changed, a write *touches* the ratings it may change before it
//! writes: the transaction reads their state then (locking their rows on
//! PostgreSQL, so two transactions touching one rating take turns), and
//! again just before it commits, and moves each from its old rollup rows
//! to its new ones. A rating inserted in the transaction is counted
//! directly (its state is known: negative, nothing done yet). Every write
//! that changes a column of the state touches: `update_rating`,
//! `record_rating_action`, `record_outcome`, `mark_alert_sent(s)`,
//! `collapse_storm`. A new write that changes a rating's sentiment, brand,
//! team, agent, `acked_at`, `followed_up_at` or `follow_up_outcome`, or an
//! alert post's state to `sent` or `digested`, must touch first;
//! `tests/it/rollup.rs` compares the rollup with the raw figures after each
//! kind of write.
//!
//! It is rebuilt with the report rollup by `Store::ensure_rollup`. It holds
//! no times: the medians read each rating's (see `store::reports`).

use std::collections::BTreeMap;

use jiff::tz::TimeZone;

use super::reports::{ALERTED, Bind, Binds, RECOVERED, bind_all, fenced};
use super::rollup::{Counts, Names, in_key_order, levels};
use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// The follow-up state of ratings `r`: the columns of [`FollowUpFact`]
/// after its dimensions (the raw reports read the same expressions).
pub(crate) fn follow_up_state_sql() -> String {
    state_sql(ALERTED)
}

/// [`follow_up_state_sql`] with `alerted` as the test of [`ALERTED`].
fn state_sql(alerted: &str) -> String {
    format!(
        "CAST(CASE WHEN {alerted} THEN 1 ELSE 0 END AS BIGINT) AS alerted,
         CAST(CASE WHEN r.acked_at IS NOT NULL THEN 1 ELSE 0 END AS BIGINT) AS acked,
         CAST(CASE WHEN r.followed_up_at IS NOT NULL THEN 1 ELSE 0 END AS BIGINT) AS followed_up,
         r.follow_up_outcome AS outcome"
    )
}

/// Every column of [`FollowUpFact`] over ratings `r`.
pub(crate) fn fact_columns_sql() -> String {
    fact_columns_with(ALERTED)
}

/// [`fact_columns_sql`] with `alerted` as the test of [`ALERTED`].
fn fact_columns_with(alerted: &str) -> String {
    format!(
        "r.id AS id, r.source AS source, r.survey AS survey, r.sentiment AS sentiment,
         r.brand AS brand, r.team AS team, r.agent AS agent, r.rated_at AS rated_at,
         {}",
        state_sql(alerted)
    )
}

/// The follow-up facts of the ratings of the id list `$1` that were ever
/// negative. Planned alike with or without the tables' statistics: the
/// ratings are found by primary key first, then each one's alerts and
/// history are probed by its id (see [`super::Dialect::per_row`]).
fn facts_by_id_sql(dialect: super::Dialect) -> String {
    let per_row = dialect.per_row();
    format!(
        "SELECT {} FROM (SELECT * FROM ratings WHERE {}{per_row}) r
         WHERE r.sentiment = 'negative' OR ({})",
        fact_columns_with(&fenced(ALERTED, per_row)),
        dialect.in_ids("id", 1),
        fenced(RECOVERED, per_row),
    )
}

/// A rating's follow-up state as the rollup counts it. Only a rating that
/// was ever negative has one.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct FollowUpFact {
    pub(crate) id: i64,
    pub(crate) source: String,
    pub(crate) survey: String,
    pub(crate) sentiment: String,
    pub(crate) brand: Option<String>,
    pub(crate) team: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) rated_at: i64,
    pub(crate) alerted: i64,
    pub(crate) acked: i64,
    pub(crate) followed_up: i64,
    pub(crate) outcome: Option<String>,
}

/// One follow-up rollup row's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct FollowUpKey {
    level: i64,
    day: i64,
    source: String,
    survey: String,
    sentiment: String,
    brand: String,
    team: String,
    agent: String,
    alerted: i64,
    acked: i64,
    followed_up: i64,
    outcome: String,
}

/// A [`FollowUpKey`] with its text as [`Names`] ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FollowUpIds {
    level: i64,
    day: i64,
    source: usize,
    survey: usize,
    sentiment: usize,
    brand: usize,
    team: usize,
    agent: usize,
    alerted: i64,
    acked: i64,
    followed_up: i64,
    outcome: usize,
}

/// `follow_up_rollup`'s key columns (team and agent last, as
/// `rollup::coarser_levels` wants them).
pub(crate) const FOLLOW_UP_KEY: &[&str] = &[
    "level",
    "day",
    "source",
    "survey",
    "sentiment",
    "brand",
    "alerted",
    "acked",
    "followed_up",
    "outcome",
    "team",
    "agent",
];

/// Changes to the follow-up rollup made by one transaction.
#[derive(Debug, Default)]
pub(crate) struct FollowUpDelta {
    names: Names,
    counts: BTreeMap<FollowUpIds, i64>,
    /// The ratings touched, with their state when first touched (`None`:
    /// not ever negative then).
    before: BTreeMap<i64, Option<FollowUpFact>>,
}

impl FollowUpDelta {
    /// Counts `fact` in (`sign` 1) or out of (−1) its six rows.
    pub(crate) fn add(&mut self, tz: &TimeZone, fact: &FollowUpFact, sign: i64) {
        let names = &mut self.names;
        let (source, survey, sentiment) = (
            names.id(&fact.source),
            names.id(&fact.survey),
            names.id(&fact.sentiment),
        );
        // An unrecorded brand, team, agent or outcome counts as ''.
        let mut id = |v: &Option<String>| names.id(v.as_deref().unwrap_or(""));
        let (team, agent, brand, outcome) = (
            id(&fact.team),
            id(&fact.agent),
            id(&fact.brand),
            id(&fact.outcome),
        );
        for (level, day, team, agent) in levels(tz, fact.rated_at, team, agent) {
            let key = FollowUpIds {
                level,
                day,
                source,
                survey,
                sentiment,
                brand,
                team,
                agent,
                alerted: fact.alerted,
                acked: fact.acked,
                followed_up: fact.followed_up,
                outcome,
            };
            *self.counts.entry(key).or_default() += sign;
        }
    }
}

impl StoreTx<'_> {
    /// The follow-up state of those of `ids` that were ever negative, as
    /// this transaction sees them now.
    async fn follow_up_facts(&mut self, ids: &[i64]) -> StoreResult<Vec<FollowUpFact>> {
        let sql = facts_by_id_sql(self.dialect());
        let list = self.dialect().id_list(ids);
        Ok(on_tx!(self, |conn| {
            sqlx::query_as::<_, FollowUpFact>(sqlx::AssertSqlSafe(sql))
                .bind(list)
                .fetch_all(&mut *conn)
                .await?
        }))
    }

    /// Counts a rating this transaction inserted, negative, in the
    /// follow-up rollup (nothing was done about it yet).
    pub(crate) fn follow_up_inserted(&mut self, id: i64, r: &super::RatingRecord) {
        if let Some(delta) = self.rollup.as_mut() {
            let fact = FollowUpFact {
                id,
                source: r.source.clone(),
                survey: r.survey.clone(),
                sentiment: r.sentiment.clone(),
                brand: r.brand.clone(),
                team: r.team.clone(),
                agent: r.agent.clone(),
                rated_at: r.rated_at,
                alerted: 0,
                acked: 0,
                followed_up: 0,
                outcome: None,
            };
            delta.add_follow_up(&fact, 1);
        }
    }

    /// Must be called before a write that may change the follow-up state
    /// of ratings `ids`: notes their state now (holding their rows until
    /// commit on PostgreSQL), so the commit can move them from it to their
    /// state then.
    pub(crate) async fn follow_up_touch(&mut self, ids: &[i64]) -> StoreResult<()> {
        if self.rollup.is_none() || ids.is_empty() {
            return Ok(());
        }
        let mut binds = Binds::default();
        binds.push(Bind::Text(self.dialect().id_list(ids)));
        let condition = self.dialect().in_ids("r.id", 1);
        self.touch_where(&condition, binds, Some(ids)).await
    }

    /// As [`StoreTx::follow_up_touch`], for the ratings of alert posts `ids`
    /// (before their state changes).
    pub(crate) async fn follow_up_touch_alerts(&mut self, ids: &[i64]) -> StoreResult<()> {
        if self.rollup.is_none() || ids.is_empty() {
            return Ok(());
        }
        let mut binds = Binds::default();
        let list: Vec<String> = ids.iter().map(|id| binds.push(Bind::Int(*id))).collect();
        let condition = format!(
            "r.id IN (SELECT a.rating_id FROM alerts a WHERE a.id IN ({}) AND a.kind = 'post')",
            list.join(", ")
        );
        self.touch_where(&condition, binds, None).await
    }

    /// Touches the ratings `r` matching `condition` (`known`: their ids,
    /// when the caller has them): finds them, locking them on PostgreSQL in
    /// id order, in one statement (none on SQLite for known ids: its write
    /// lock already serialises transactions), then reads the state of
    /// those not touched yet in another, so the state read includes what a
    /// transaction we waited for wrote.
    async fn touch_where(
        &mut self,
        condition: &str,
        binds: Binds,
        known: Option<&[i64]>,
    ) -> StoreResult<()> {
        let lock = self.dialect().row_lock("FOR UPDATE");
        let mut found: Vec<i64> = match known {
            Some(ids) if lock.is_empty() => ids.to_vec(),
            _ => {
                let sql =
                    format!("SELECT r.id FROM ratings r WHERE {condition} ORDER BY r.id {lock}");
                on_tx!(self, |conn| {
                    bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), binds)
                        .fetch_all(&mut *conn)
                        .await?
                })
            }
        };
        found.sort_unstable();
        found.dedup();
        let Some(delta) = self.rollup.as_ref() else {
            return Ok(());
        };
        let new: Vec<i64> = found
            .into_iter()
            .filter(|id| !delta.follow_ups.before.contains_key(id))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let facts = self.follow_up_facts(&new).await?;
        let mut by_id: BTreeMap<i64, FollowUpFact> = facts.into_iter().map(|f| (f.id, f)).collect();
        if let Some(delta) = self.rollup.as_mut() {
            for id in new {
                delta.follow_ups.before.insert(id, by_id.remove(&id));
            }
        }
        Ok(())
    }

    /// Moves every touched rating from its state when touched to its state
    /// now, and writes the collected changes (called by `commit`).
    pub(crate) async fn follow_up_counts(
        &mut self,
        tz: &TimeZone,
        mut delta: FollowUpDelta,
    ) -> StoreResult<Counts<'static>> {
        let before = std::mem::take(&mut delta.before);
        if !before.is_empty() {
            let ids: Vec<i64> = before.keys().copied().collect();
            let after = self.follow_up_facts(&ids).await?;
            for fact in before.values().flatten() {
                delta.add(tz, fact, -1);
            }
            for fact in &after {
                delta.add(tz, fact, 1);
            }
        }
        let names = &delta.names;
        let counts = in_key_order(delta.counts, |k| FollowUpKey {
            level: k.level,
            day: k.day,
            source: names.text(k.source),
            survey: names.text(k.survey),
            sentiment: names.text(k.sentiment),
            brand: names.text(k.brand),
            team: names.text(k.team),
            agent: names.text(k.agent),
            alerted: k.alerted,
            acked: k.acked,
            followed_up: k.followed_up,
            outcome: names.text(k.outcome),
        });
        let rows = counts.into_iter().map(|(k, n)| {
            let key = vec![
                Bind::Int(k.level),
                Bind::Int(k.day),
                Bind::Text(k.source),
                Bind::Text(k.survey),
                Bind::Text(k.sentiment),
                Bind::Text(k.brand),
                Bind::Int(k.alerted),
                Bind::Int(k.acked),
                Bind::Int(k.followed_up),
                Bind::Text(k.outcome),
                Bind::Text(k.team),
                Bind::Text(k.agent),
            ];
            (key, n)
        });
        Ok(Counts {
            table: "follow_up_rollup",
            columns: FOLLOW_UP_KEY,
            rows: rows.collect(),
        })
    }
}

impl Store {
    /// How the database reads the follow-up facts of ratings `ids` (what
    /// recording a batch of sends reads twice): on PostgreSQL the plan as
    /// run (`EXPLAIN ANALYZE`, with the rows each step passed on), on
    /// SQLite `EXPLAIN QUERY PLAN`.
    #[doc(hidden)]
    pub async fn explain_follow_up_facts(&self, ids: &[i64]) -> StoreResult<String> {
        let sql = facts_by_id_sql(self.dialect());
        let list = self.dialect().id_list(ids);
        let lines: Vec<String> = match &self.backend {
            super::Backend::Sqlite(pool) => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain))
                    .bind(list)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|r| r.3)
                    .collect()
            }
            super::Backend::Postgres(pool) => {
                let explain = format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}");
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(explain))
                    .bind(list)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(lines.join("\n"))
    }

    /// Every follow-up rollup row with a count other than 0, in key order,
    /// as `(level, day, source/survey/sentiment/brand/team/agent,
    /// alerted/acked/followed_up/outcome, n)` (tests compare a kept rollup
    /// with a rebuilt one).
    pub async fn follow_up_rollup_rows(&self) -> StoreResult<Vec<(i64, i64, String, String, i64)>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT level, day,
                        source || '/' || survey || '/' || sentiment || '/' || brand || '/' || team || '/' || agent,
                        CAST(alerted AS TEXT) || '/' || CAST(acked AS TEXT) || '/'
                            || CAST(followed_up AS TEXT) || '/' || outcome,
                        n
                 FROM follow_up_rollup WHERE n <> 0
                 ORDER BY level, day, source, survey, sentiment, brand, team, agent, alerted, acked,
                          followed_up, outcome",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
