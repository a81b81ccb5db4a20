//! The report rollup: rating counts per local day (in `reports.timezone`)
//! at three levels of detail, so a report over a year of ratings reads a
//! few thousand rows instead of a million.
//!
//! - level 1: day, source, survey, scale, score, sentiment, brand;
//! - level 2: level 1 and team;
//! - level 3: level 2 and agent;
//! - levels 11, 12, 13: the same per local calendar month (`day` is the
//!   month's first day), so a year by agent reads twelve months, not 365
//!   days, of rows.
//!
//! Every rating write keeps it: a [`StoreTx`] collects the changes of its
//! ratings (a new rating: +1 on its three rows; a changed one: −1 on its
//! old rows, +1 on its new ones) and writes them with one multi-row upsert
//! per 250 rows just before it commits, in key order (so two PostgreSQL
//! replicas lock rollup rows in the same order). It is rebuilt from the
//! ratings, in one transaction, at start-up when it is missing, was built
//! for another time zone, or was built before a schema migration that
//! could have rewritten ratings ([`Store::ensure_rollup`]), together with
//! the follow-up rollup (`store::follow_up_rollup`), whose changes the same
//! [`RollupDelta`] collects.
//!
//! The reports read it only when it can answer exactly: the grouping and
//! every filter are among its columns, and the ranges start and end on
//! local midnights of the time zone it was built for; otherwise they read
//! the ratings (see `store::reports`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::tz::TimeZone;

use super::Dialect;
use super::batch::values_from;
use super::follow_up_rollup::{FollowUpDelta, FollowUpFact};
use super::reports::{Bind, Binds, DAY_MS, RECOVERED, bind_all, local_day_sql};
use super::{Store, StoreResult, StoreTx, on_pool, on_tx};

/// Rows per upsert statement (at most 13 parameters each).
const ROWS_PER_STATEMENT: usize = 250;

/// The time zone a rollup was built for.
#[derive(Debug, Clone)]
pub(crate) struct RollupZone {
    pub(crate) tz: TimeZone,
}

/// What a store knows of its database's rollup.
#[derive(Debug, Default)]
pub(crate) struct RollupShared {
    /// `Some` once a valid rollup was seen (built or checked); not cached
    /// while there is none, so a rollup built by another process is picked
    /// up by the next transaction.
    zone: Mutex<Option<RollupZone>>,
    /// Reports read the ratings even when the rollup could answer (tests
    /// compare both; an operator can turn it off).
    reads_off: AtomicBool,
}

/// The text of rollup keys, each stored once per transaction: keys hold
/// ids into it, so counting a rating in its six rows compares integers
/// instead of up to eight strings and allocates nothing once its values
/// were seen (the writer does this between a batch's statements). '' is
/// always [`Names::NONE`].
#[derive(Debug)]
pub(crate) struct Names {
    ids: HashMap<String, usize>,
    names: Vec<String>,
}

impl Default for Names {
    fn default() -> Names {
        Names {
            ids: HashMap::from([(String::new(), Names::NONE)]),
            names: vec![String::new()],
        }
    }
}

impl Names {
    /// The id of '' (no team, no agent, an unrecorded value).
    pub(crate) const NONE: usize = 0;

    /// The id of `text`, stored on first sight.
    pub(crate) fn id(&mut self, text: &str) -> usize {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.names.len();
        self.names.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        id
    }

    /// The text of `id`.
    pub(crate) fn text(&self, id: usize) -> String {
        self.names[id].clone()
    }
}

/// The changes of `counts` other than 0, their keys turned into text by
/// `key`, in key order (as the upserts want them).
pub(crate) fn in_key_order<I, K: Ord>(
    counts: BTreeMap<I, i64>,
    key: impl Fn(I) -> K,
) -> Vec<(K, i64)> {
    let mut rows: Vec<(K, i64)> = counts
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(k, n)| (key(k), n))
        .collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// A [`RollupKey`] with its text as [`Names`] ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RollupIds {
    level: i64,
    day: i64,
    source: usize,
    survey: usize,
    scale: usize,
    score: i64,
    sentiment: usize,
    brand: usize,
    team: usize,
    agent: usize,
}

/// One rollup row's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RollupKey {
    level: i64,
    day: i64,
    source: String,
    survey: String,
    scale: String,
    score: i64,
    sentiment: String,
    brand: String,
    team: String,
    agent: String,
}

/// The columns of a rating the rollup counts by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RollupDims<'a> {
    pub(crate) source: &'a str,
    pub(crate) survey: &'a str,
    pub(crate) scale: &'a str,
    pub(crate) score: i64,
    pub(crate) sentiment: &'a str,
    pub(crate) brand: Option<&'a str>,
    pub(crate) team: Option<&'a str>,
    pub(crate) agent: Option<&'a str>,
    pub(crate) rated_at: i64,
}

/// The local day (days since 1970-01-01) of a Unix-millisecond instant in
/// `tz`, computed as the SQL of a rebuild computes it.
pub(crate) fn local_day(tz: &TimeZone, ms: i64) -> i64 {
    let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let offset = i64::from(tz.to_offset(at).seconds()) * 1000;
    (ms + offset) / DAY_MS
}

/// The Unix-millisecond start of local day `day` in `tz`.
pub(crate) fn day_start_ms(tz: &TimeZone, day: i64) -> Option<i64> {
    let date = jiff::civil::Date::constant(1970, 1, 1)
        .checked_add(jiff::Span::new().days(day))
        .ok()?;
    crate::reports::period::start_of_day_ms(date, tz).ok()
}

/// Month rows are at `level + MONTHS`.
pub(crate) const MONTHS: i64 = 10;

fn epoch() -> jiff::civil::Date {
    jiff::civil::Date::constant(1970, 1, 1)
}

fn date_of(day: i64) -> Option<jiff::civil::Date> {
    epoch().checked_add(jiff::Span::new().days(day)).ok()
}

fn day_of(date: jiff::civil::Date) -> i64 {
    crate::reports::period::days_between(epoch(), date)
}

/// The first day of the month of local day `day`.
pub(crate) fn month_start(day: i64) -> i64 {
    date_of(day)
        .map(|d| day_of(d.first_of_month()))
        .unwrap_or(day)
}

/// The first day of the month after the one of `day`.
fn next_month(day: i64) -> i64 {
    date_of(day)
        .and_then(|d| {
            d.first_of_month()
                .checked_add(jiff::Span::new().months(1))
                .ok()
        })
        .map(day_of)
        .unwrap_or(day + 31)
}

/// Local days `[lo, hi)` as the fewest rollup row ranges: `(month rows?,
/// from, to)`; whole months inside are read as month rows.
pub(crate) fn split_months(lo: i64, hi: i64) -> Vec<(bool, i64, i64)> {
    let first = if month_start(lo) == lo {
        lo
    } else {
        next_month(lo)
    };
    let last = month_start(hi);
    if first >= last {
        return vec![(false, lo, hi)];
    }
    let mut out = Vec::new();
    if lo < first {
        out.push((false, lo, first));
    }
    out.push((true, first, last));
    if last < hi {
        out.push((false, last, hi));
    }
    out
}

/// `[lo, hi)` in Unix ms as local days `[lo, hi)`, when both ends are
/// local midnights in `tz`.
pub(crate) fn day_range(tz: &TimeZone, lo: i64, hi: i64) -> Option<(i64, i64)> {
    let (dlo, dhi) = (local_day(tz, lo), local_day(tz, hi));
    (day_start_ms(tz, dlo)? == lo && day_start_ms(tz, dhi)? == hi).then_some((dlo, dhi))
}

/// Changes to the rollup made by one transaction, written at its commit.
#[derive(Debug)]
pub(crate) struct RollupDelta {
    zone: RollupZone,
    names: Names,
    counts: BTreeMap<RollupIds, i64>,
    /// The follow-up rollup's changes (`store::follow_up_rollup`).
    pub(crate) follow_ups: FollowUpDelta,
}

impl RollupDelta {
    pub(crate) fn new(zone: RollupZone) -> RollupDelta {
        RollupDelta {
            zone,
            names: Names::default(),
            counts: BTreeMap::new(),
            follow_ups: FollowUpDelta::default(),
        }
    }

    /// Counts a rating in (`sign` 1) or out of (`sign` −1) its six rows.
    pub(crate) fn add(&mut self, d: &RollupDims<'_>, sign: i64) {
        let names = &mut self.names;
        let (source, survey, scale, sentiment) = (
            names.id(d.source),
            names.id(d.survey),
            names.id(d.scale),
            names.id(d.sentiment),
        );
        // An unrecorded brand, team or agent counts as ''.
        let mut id = |v: Option<&str>| names.id(v.unwrap_or(""));
        let (brand, team, agent) = (id(d.brand), id(d.team), id(d.agent));
        for (level, day, team, agent) in levels(&self.zone.tz, d.rated_at, team, agent) {
            let key = RollupIds {
                level,
                day,
                source,
                survey,
                scale,
                score: d.score,
                sentiment,
                brand,
                team,
                agent,
            };
            *self.counts.entry(key).or_default() += sign;
        }
    }

    /// Counts a rating's follow-up state in (`sign` 1) or out of (−1) the
    /// follow-up rollup.
    pub(crate) fn add_follow_up(&mut self, fact: &FollowUpFact, sign: i64) {
        self.follow_ups.add(&self.zone.tz, fact, sign);
    }
}

/// The six rollup rows `(level, day, team, agent)` a rating counts in: per
/// local day and per local month, without team or agent, with its team,
/// and with both ([`Names`] ids; an unrecorded one as '').
pub(crate) fn levels(
    tz: &TimeZone,
    rated_at: i64,
    team: usize,
    agent: usize,
) -> [(i64, i64, usize, usize); 6] {
    let day = local_day(tz, rated_at);
    let month = month_start(day);
    let none = Names::NONE;
    [
        (1, day, none, none),
        (2, day, team, none),
        (3, day, team, agent),
        (1 + MONTHS, month, none, none),
        (2 + MONTHS, month, team, none),
        (3 + MONTHS, month, team, agent),
    ]
}

/// Adds `counts` (key columns, then the change of `n`) to `table` with one
/// multi-row upsert per [`ROWS_PER_STATEMENT`] rows, in the order given
/// (key order, so two PostgreSQL replicas lock rows in the same order).
/// Rows whose change is 0 are skipped.
pub(crate) async fn upsert_counts(
    tx: &mut StoreTx<'_>,
    table: &str,
    columns: &[&str],
    counts: impl Iterator<Item = (Vec<Bind>, i64)>,
) -> StoreResult<()> {
    let rows: Vec<(Vec<Bind>, i64)> = counts.filter(|(_, n)| *n != 0).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut binds = Binds::default();
        let sql = upsert_sql(tx.dialect(), table, columns, chunk, &mut binds);
        execute(tx, sql, binds).await?;
    }
    Ok(())
}

/// Counts for [`upsert_both`]: a table, its key columns, and the changes.
pub(crate) struct Counts<'a> {
    pub table: &'a str,
    pub columns: &'a [&'a str],
    pub rows: Vec<(Vec<Bind>, i64)>,
}

/// [`upsert_counts`] of `first`, then of `second`. On PostgreSQL both go in
/// one statement when each fits one, `second` as a data-modifying `WITH`:
/// one round trip to the server instead of two. The two touch different
/// tables, so their effects do not depend on which runs first (PostgreSQL's
/// docs leave that unspecified). Within a table rows are still written in
/// key order, and every replica sends the same statement to the same
/// server, so replicas take the locks in the same order as each other.
pub(crate) async fn upsert_both(
    tx: &mut StoreTx<'_>,
    mut first: Counts<'_>,
    mut second: Counts<'_>,
) -> StoreResult<()> {
    first.rows.retain(|(_, n)| *n != 0);
    second.rows.retain(|(_, n)| *n != 0);
    let together = tx.dialect() == Dialect::Postgres
        && !first.rows.is_empty()
        && !second.rows.is_empty()
        && first.rows.len() <= ROWS_PER_STATEMENT
        && second.rows.len() <= ROWS_PER_STATEMENT;
    if !together {
        upsert_counts(tx, first.table, first.columns, first.rows.into_iter()).await?;
        return upsert_counts(tx, second.table, second.columns, second.rows.into_iter()).await;
    }
    let mut binds = Binds::default();
    let then = upsert_sql(
        tx.dialect(),
        second.table,
        second.columns,
        &second.rows,
        &mut binds,
    );
    let main = upsert_sql(
        tx.dialect(),
        first.table,
        first.columns,
        &first.rows,
        &mut binds,
    );
    execute(tx, format!("WITH second AS ({then}) {main}"), binds).await
}

/// One multi-row upsert of `rows` into `table`, its parameters appended to
/// `binds` (and numbered after those already there).
fn upsert_sql(
    dialect: Dialect,
    table: &str,
    columns: &[&str],
    rows: &[(Vec<Bind>, i64)],
    binds: &mut Binds,
) -> String {
    let key = columns.join(", ");
    let values = values_from(
        dialect,
        binds.0.len() + 1,
        rows.len(),
        columns.len() + 1,
        "",
    );
    for (key, n) in rows {
        binds.0.extend(key.iter().cloned());
        binds.0.push(Bind::Int(*n));
    }
    format!(
        "INSERT INTO {table} ({key}, n) VALUES {values}
         ON CONFLICT ({key}) DO UPDATE SET n = {table}.n + excluded.n"
    )
}

async fn execute(tx: &mut StoreTx<'_>, sql: String, binds: Binds) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

impl StoreTx<'_> {
    /// Counts a rating's change in the rollup (nothing when the database
    /// has none).
    pub(crate) fn rollup_change(&mut self, old: Option<&RollupDims<'_>>, new: &RollupDims<'_>) {
        if let Some(delta) = self.rollup.as_mut() {
            if let Some(old) = old {
                delta.add(old, -1);
            }
            delta.add(new, 1);
        }
    }

    /// Writes the collected rollup changes (called by `commit`).
    pub(crate) async fn flush_rollup(&mut self) -> StoreResult<()> {
        let Some(mut delta) = self.rollup.take() else {
            return Ok(());
        };
        let follow_ups = std::mem::take(&mut delta.follow_ups);
        let follow_ups = self.follow_up_counts(&delta.zone.tz, follow_ups).await?;
        let names = &delta.names;
        let counts = in_key_order(delta.counts, |k| RollupKey {
            level: k.level,
            day: k.day,
            source: names.text(k.source),
            survey: names.text(k.survey),
            scale: names.text(k.scale),
            score: k.score,
            sentiment: names.text(k.sentiment),
            brand: names.text(k.brand),
            team: names.text(k.team),
            agent: names.text(k.agent),
        });
        let rows = counts.into_iter().map(|(k, n)| {
            let key = vec![
                Bind::Int(k.level),
                Bind::Int(k.day),
                Bind::Text(k.source),
                Bind::Text(k.survey),
                Bind::Text(k.scale),
                Bind::Int(k.score),
                Bind::Text(k.sentiment),
                Bind::Text(k.brand),
                Bind::Text(k.team),
                Bind::Text(k.agent),
            ];
            (key, n)
        });
        let ratings = Counts {
            table: "rating_rollup",
            columns: RATING_KEY,
            rows: rows.collect(),
        };
        upsert_both(self, ratings, follow_ups).await
    }
}

/// `rating_rollup`'s key columns.
const RATING_KEY: &[&str] = &[
    "level",
    "day",
    "source",
    "survey",
    "scale",
    "score",
    "sentiment",
    "brand",
    "team",
    "agent",
];

/// The statements that fill levels 2, 1 and the month levels of `table`
/// (key columns `key`, starting with level and day, ending with team and
/// agent) from its level 3; `month` is the month of a `day`.
fn coarser_levels(table: &str, key: &[&str], month: &str) -> [String; 3] {
    let dims = key[2..key.len() - 2].join(", ");
    let columns = key.join(", ");
    [
        format!(
            "INSERT INTO {table} ({columns}, n)
             SELECT 2, day, {dims}, team, '', SUM(n) FROM {table} WHERE level = 3
             GROUP BY day, {dims}, team"
        ),
        format!(
            "INSERT INTO {table} ({columns}, n)
             SELECT 1, day, {dims}, '', '', SUM(n) FROM {table} WHERE level = 2
             GROUP BY day, {dims}"
        ),
        format!(
            "INSERT INTO {table} ({columns}, n)
             SELECT level + {MONTHS}, {month}, {dims}, team, agent, SUM(n) FROM {table}
             WHERE level IN (1, 2, 3)
             GROUP BY level, {month}, {dims}, team, agent"
        ),
    ]
}

/// What `rating_rollup_state` says.
#[derive(Debug, sqlx::FromRow)]
struct StateRow {
    timezone: String,
    schema_version: i64,
}

/// The newest migration this build knows: a rollup built before it may
/// count ratings a migration has since rewritten.
fn schema_version(store: &Store) -> i64 {
    store
        .dialect()
        .migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupBuild {
    /// False when the rollup was already right.
    pub rebuilt: bool,
    /// Why it was rebuilt (`missing`, `timezone`, `schema`).
    pub reason: Option<&'static str>,
    pub ratings: i64,
    pub rows: i64,
}

impl Store {
    /// Reports read the ratings instead of the rollup while `off`.
    pub fn set_rollup_reads(&self, on: bool) {
        self.rollup.reads_off.store(!on, Ordering::Relaxed);
    }

    /// The rollup's time zone when there is a valid rollup.
    pub(crate) async fn rollup_zone(&self) -> StoreResult<Option<RollupZone>> {
        if let Some(zone) = self.rollup.zone.lock().expect("rollup lock").clone() {
            return Ok(Some(zone));
        }
        let row: Option<StateRow> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT timezone, schema_version FROM rating_rollup_state WHERE id = 1")
                .fetch_optional(pool)
                .await?
        });
        let zone = row
            .filter(|r| r.schema_version == schema_version(self))
            .and_then(|r| {
                let tz = crate::reports::period::parse_time_zone(&r.timezone).ok()?;
                Some(RollupZone { tz })
            });
        if let Some(zone) = &zone {
            *self.rollup.zone.lock().expect("rollup lock") = Some(zone.clone());
        }
        Ok(zone)
    }

    /// The rollup's time zone when reports may read it.
    pub(crate) async fn rollup_for_reads(&self) -> StoreResult<Option<RollupZone>> {
        if self.rollup.reads_off.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.rollup_zone().await
    }

    /// Makes sure the rollup counts every rating by local day in
    /// `timezone` (an IANA name, `reports.timezone`), rebuilding it and
    /// the follow-up rollup from the ratings in one transaction when it is missing, was built for
    /// another time zone, or before this build's newest migration. Several
    /// replicas starting at once rebuild it once: the rebuild holds the
    /// rollup's table lock (PostgreSQL) or the write lock (SQLite), and
    /// checks again under it. Rating writes wait for it meanwhile.
    pub async fn ensure_rollup(&self, timezone: &str) -> StoreResult<RollupBuild> {
        let tz = crate::reports::period::parse_time_zone(timezone)
            .map_err(|e| super::StoreError::Query(sqlx::Error::Protocol(e)))?;
        let version = schema_version(self);
        let started = std::time::Instant::now();
        let mut tx = self.begin_plain().await?;
        let lock = matches!(self.dialect(), super::Dialect::Postgres);
        let state: Option<StateRow> = on_tx!(tx, |conn| {
            if lock {
                sqlx::query("SET LOCAL statement_timeout = 0")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("LOCK TABLE rating_rollup, follow_up_rollup IN EXCLUSIVE MODE")
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query_as("SELECT timezone, schema_version FROM rating_rollup_state WHERE id = 1")
                .fetch_optional(&mut *conn)
                .await?
        });
        let reason = match &state {
            None => Some("missing"),
            Some(s) if s.schema_version != version => Some("schema"),
            Some(s) if s.timezone != timezone => Some("timezone"),
            Some(_) => None,
        };
        let zone = RollupZone { tz: tz.clone() };
        if reason.is_none() {
            tx.commit().await?;
            *self.rollup.zone.lock().expect("rollup lock") = Some(zone);
            return Ok(RollupBuild {
                rebuilt: false,
                reason: None,
                ratings: 0,
                rows: 0,
            });
        }
        let (min, max): (Option<i64>, Option<i64>) = on_tx!(tx, |conn| {
            sqlx::query_as("SELECT MIN(rated_at), MAX(rated_at) FROM ratings")
                .fetch_one(&mut *conn)
                .await?
        });
        let segments = match (min, max) {
            (Some(min), Some(max)) => crate::reports::day_offsets(&tz, min, max.saturating_add(1)),
            _ => vec![(i64::MAX, 0)],
        };
        let day = local_day_sql(&segments);
        // The month of a day row: a CASE over the months the ratings span
        // (one branch a month; days are integers we computed).
        let month = match (min, max) {
            (Some(min), Some(max)) => {
                let (first, last) = (local_day(&tz, min), local_day(&tz, max));
                let mut case = String::from("CASE");
                let mut m = month_start(first);
                while m <= last {
                    let next = next_month(m);
                    case.push_str(&format!(" WHEN day < {next} THEN {m}"));
                    m = next;
                }
                case.push_str(" ELSE day END");
                case
            }
            _ => "day".to_string(),
        };
        let now = jiff::Timestamp::now().as_millisecond();
        let facts = super::follow_up_rollup::fact_columns_sql();
        let mut statements = vec![
            "DELETE FROM rating_rollup".to_string(),
            "DELETE FROM follow_up_rollup".to_string(),
            format!(
                "INSERT INTO rating_rollup (level, day, source, survey, scale, score, sentiment, brand, team, agent, n)
                 SELECT 3, {day}, r.source, r.survey, r.scale, r.score, r.sentiment,
                        COALESCE(r.brand, ''), COALESCE(r.team, ''), COALESCE(r.agent, ''), COUNT(*)
                 FROM ratings r
                 GROUP BY {day}, r.source, r.survey, r.scale, r.score, r.sentiment,
                          COALESCE(r.brand, ''), COALESCE(r.team, ''), COALESCE(r.agent, '')"
            ),
            // The ratings negative now and those negative before, apart so
            // that each reads its own partial index (as the raw reports do).
            format!(
                "INSERT INTO follow_up_rollup (level, day, source, survey, sentiment, brand, team, agent,
                    alerted, acked, followed_up, outcome, n)
                 SELECT 3, {day}, r.source, r.survey, r.sentiment, COALESCE(r.brand, ''),
                        COALESCE(r.team, ''), COALESCE(r.agent, ''), r.alerted, r.acked,
                        r.followed_up, COALESCE(r.outcome, ''), COUNT(*)
                 FROM (SELECT {facts} FROM ratings r WHERE r.sentiment = 'negative'
                       UNION ALL
                       SELECT {facts} FROM ratings r WHERE {RECOVERED}) AS r
                 GROUP BY {day}, r.source, r.survey, r.sentiment, COALESCE(r.brand, ''),
                          COALESCE(r.team, ''), COALESCE(r.agent, ''), r.alerted, r.acked,
                          r.followed_up, COALESCE(r.outcome, '')"
            ),
        ];
        for (table, key) in [
            ("rating_rollup", RATING_KEY),
            ("follow_up_rollup", super::follow_up_rollup::FOLLOW_UP_KEY),
        ] {
            statements.extend(coarser_levels(table, key, &month));
        }
        for sql in statements {
            on_tx!(tx, |conn| {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
            });
        }
        let (ratings, rows): (i64, i64) = on_tx!(tx, |conn| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM ratings),
                        (SELECT COUNT(*) FROM rating_rollup) + (SELECT COUNT(*) FROM follow_up_rollup)",
            )
            .fetch_one(&mut *conn)
            .await?
        });
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO rating_rollup_state (id, timezone, schema_version, built_at, ratings)
                 VALUES (1, $1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET timezone = excluded.timezone,
                    schema_version = excluded.schema_version, built_at = excluded.built_at,
                    ratings = excluded.ratings",
            )
            .bind(timezone)
            .bind(version)
            .bind(now)
            .bind(ratings)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        *self.rollup.zone.lock().expect("rollup lock") = Some(zone);
        tracing::info!(
            reason = reason.unwrap_or(""),
            timezone,
            ratings,
            rows,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "report rollup rebuilt"
        );
        Ok(RollupBuild {
            rebuilt: true,
            reason,
            ratings,
            rows,
        })
    }

    /// Forgets the rollup: the next start-up rebuilds it.
    pub async fn drop_rollup(&self) -> StoreResult<()> {
        let mut tx = self.begin_plain().await?;
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM rating_rollup_state")
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        *self.rollup.zone.lock().expect("rollup lock") = None;
        Ok(())
    }

    /// Every rollup row with a count other than 0, in key order (tests
    /// compare a kept rollup with a rebuilt one).
    pub async fn rollup_rows(
        &self,
    ) -> StoreResult<Vec<(i64, i64, String, i64, String, String, i64)>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT level, day, source || '/' || survey || '/' || scale, score, sentiment,
                        brand || '/' || team || '/' || agent, n
                 FROM rating_rollup WHERE n <> 0
                 ORDER BY level, day, source, survey, scale, score, sentiment, brand, team, agent",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_come_out_in_the_order_of_their_text_not_of_their_ids() {
        let mut names = Names::default();
        let (b, a) = (names.id("b"), names.id("a"));
        assert_eq!(names.id("b"), b, "a name seen again keeps its id");
        assert_eq!(names.id(""), Names::NONE);
        let counts = BTreeMap::from([(b, 1), (a, 2), (Names::NONE, 0)]);
        let rows = in_key_order(counts, |id| names.text(id));
        // "a" was seen after "b" and has the larger id, but comes first;
        // the change of 0 is left out.
        assert_eq!(rows, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
    }

    #[test]
    fn local_days_and_midnights_agree_across_a_dst_change() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let ms = |at: &str| at.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        // 2026-10-25 is 25 hours long in Berlin.
        let day = local_day(&berlin, ms("2026-10-25T00:30:00+02:00"));
        assert_eq!(
            day_start_ms(&berlin, day),
            Some(ms("2026-10-25T00:00:00+02:00"))
        );
        assert_eq!(
            day_start_ms(&berlin, day + 1),
            Some(ms("2026-10-26T00:00:00+01:00"))
        );
        assert_eq!(local_day(&berlin, ms("2026-10-25T23:59:00+01:00")), day);
        assert_eq!(
            day_range(
                &berlin,
                ms("2026-10-25T00:00:00+02:00"),
                ms("2026-10-26T00:00:00+01:00")
            ),
            Some((day, day + 1))
        );
        // Not on a local midnight: the rollup cannot answer.
        assert_eq!(
            day_range(
                &berlin,
                ms("2026-10-25T00:00:00Z"),
                ms("2026-10-26T00:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn ranges_read_whole_months_as_month_rows() {
        let d = |y, m, dd| day_of(jiff::civil::date(y, m, dd));
        assert_eq!(d(1970, 1, 2), 1);
        assert_eq!(month_start(d(2026, 2, 17)), d(2026, 2, 1));
        assert_eq!(next_month(d(2026, 12, 31)), d(2027, 1, 1));
        assert_eq!(
            split_months(d(2025, 12, 17), d(2026, 3, 5)),
            [
                (false, d(2025, 12, 17), d(2026, 1, 1)),
                (true, d(2026, 1, 1), d(2026, 3, 1)),
                (false, d(2026, 3, 1), d(2026, 3, 5)),
            ]
        );
        assert_eq!(
            split_months(d(2026, 1, 1), d(2026, 2, 1)),
            [(true, d(2026, 1, 1), d(2026, 2, 1))]
        );
        assert_eq!(
            split_months(d(2026, 1, 3), d(2026, 1, 30)),
            [(false, d(2026, 1, 3), d(2026, 1, 30))]
        );
    }
}
