//! The read side for reports: counts of ratings per group, score and
//! sentiment (the figures are computed from these by `crate::reports`),
//! follow-up counts over ratings that were ever negative, and the follow-up
//! times the medians need. One SQL text per statement for both dialects,
//! except grouping by tag, which unnests the JSON tag array.
//!
//! Every statement reads the `ratings` row, which holds a rating's latest
//! version, so a changed rating counts once, with its latest score; or,
//! when it can answer exactly (the conditions of `rollup_from`), the
//! rollup kept from those rows: `rating_rollup` for the score counts,
//! `follow_up_rollup` for the follow-up counts. The follow-up times stay
//! per rating (the medians must be exact) and read the covering partial
//! index `ratings_negative_handled`.

use super::{Store, StoreResult, on_pool};

/// Which ratings a report, a listing or an export covers. Text matchers are
/// case-insensitive; an empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RatingFilter {
    pub source: Vec<String>,
    pub team: Vec<String>,
    pub agent: Vec<String>,
    pub brand: Vec<String>,
    pub customer: Vec<String>,
    /// Each tag matches a rating carrying it (any of them).
    pub tag: Vec<String>,
    /// `csat`, `nps`, `ces`.
    pub survey: Vec<String>,
    /// `negative`, `neutral`, `positive`.
    pub sentiment: Vec<String>,
    pub score_min: Option<i64>,
    pub score_max: Option<i64>,
    pub has_comment: Option<bool>,
    /// Whether someone pressed "Followed up".
    pub followed_up: Option<bool>,
}

/// What the rows of a report are grouped by in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupColumn {
    /// The index of the time range a rating falls into.
    Range,
    Agent,
    Team,
    Source,
    Survey,
    Brand,
    Customer,
    /// One row per tag: a rating with two tags counts in both.
    Tag,
}

/// How a report query groups its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    Column(GroupColumn),
    /// The local day of `rated_at`, as days since 1970-01-01 in local
    /// time, given the UTC offsets in force: `(until_ms, offset_ms)`
    /// segments in order, the last one open-ended. One pass over the range,
    /// however many days, weeks or months the report has.
    LocalDay(Vec<(i64, i64)>),
}

impl From<GroupColumn> for Grouping {
    fn from(c: GroupColumn) -> Self {
        Grouping::Column(c)
    }
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The local day of `r.rated_at` (days since 1970-01-01), given the UTC
/// offsets in force as `(until_ms, offset_ms)` segments (the last one
/// open-ended). Offsets are integers we computed; the CASE has one branch
/// per offset change in the range (two a year with DST).
pub(crate) fn local_day_sql(segments: &[(i64, i64)]) -> String {
    let mut offset = String::from("CASE");
    for (until, off) in &segments[..segments.len().saturating_sub(1)] {
        offset.push_str(&format!(" WHEN r.rated_at < {until} THEN {off}"));
    }
    let last = segments.last().map(|s| s.1).unwrap_or(0);
    if segments.len() > 1 {
        offset.push_str(&format!(" ELSE {last} END"));
    } else {
        offset = last.to_string();
    }
    format!("((r.rated_at + {offset}) / {DAY_MS})")
}

/// Ratings of one group with one scale, score and sentiment.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScoreCount {
    pub grp: String,
    pub scale: String,
    pub score: i64,
    pub sentiment: String,
    pub n: i64,
}

/// Ratings of one group that were ever negative, by follow-up state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FollowUpCount {
    pub grp: String,
    pub alerted: i64,
    pub acked: i64,
    pub followed_up: i64,
    /// Its latest version is no longer negative.
    pub recovered: i64,
    pub outcome: Option<String>,
    pub n: i64,
}

/// Follow-up times of one rating that was ever negative, in milliseconds
/// after it was first recorded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FollowUpTime {
    pub grp: String,
    pub ack_ms: Option<i64>,
    pub follow_up_ms: Option<i64>,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Placeholders and their values, in order.
#[derive(Debug, Default)]
pub(crate) struct Binds(pub(crate) Vec<Bind>);

impl Binds {
    pub(crate) fn push(&mut self, b: Bind) -> String {
        self.0.push(b);
        format!("${}", self.0.len())
    }

    fn list(&mut self, values: &[String]) -> String {
        values
            .iter()
            .map(|v| self.push(Bind::Text(v.trim().to_lowercase())))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Binds every value onto a query, whatever the backend.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in &$binds.0 {
            q = match b {
                $crate::store::reports::Bind::Text(s) => q.bind(s.clone()),
                $crate::store::reports::Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// SQL conditions (joined by AND, each on `r.`) for a filter.
pub(crate) fn filter_sql(f: &RatingFilter, binds: &mut Binds) -> Vec<String> {
    let mut clauses = Vec::new();
    for (column, values) in [
        ("source", &f.source),
        ("team", &f.team),
        ("agent", &f.agent),
        ("brand", &f.brand),
        ("customer", &f.customer),
        ("survey", &f.survey),
        ("sentiment", &f.sentiment),
    ] {
        if !values.is_empty() {
            clauses.push(format!("LOWER(r.{column}) IN ({})", binds.list(values)));
        }
    }
    if !f.tag.is_empty() {
        // Tags are a JSON array of strings; a quoted match finds an element.
        let any: Vec<String> = f
            .tag
            .iter()
            .map(|t| {
                let quoted = serde_json::to_string(&t.trim().to_lowercase()).unwrap_or_default();
                let pattern = format!("%{}%", quoted.replace('%', "_"));
                format!("LOWER(r.tags) LIKE {}", binds.push(Bind::Text(pattern)))
            })
            .collect();
        clauses.push(format!("({})", any.join(" OR ")));
    }
    if let Some(min) = f.score_min {
        clauses.push(format!("r.score >= {}", binds.push(Bind::Int(min))));
    }
    if let Some(max) = f.score_max {
        clauses.push(format!("r.score <= {}", binds.push(Bind::Int(max))));
    }
    match f.followed_up {
        Some(true) => clauses.push("r.followed_up_at IS NOT NULL".into()),
        Some(false) => clauses.push("r.followed_up_at IS NULL".into()),
        None => {}
    }
    match f.has_comment {
        Some(true) => clauses.push("(r.comment IS NOT NULL AND r.comment <> '')".into()),
        Some(false) => clauses.push("(r.comment IS NULL OR r.comment = '')".into()),
        None => {}
    }
    clauses
}

/// A rating that was negative in some version but is not now (only a
/// changed rating, revision > 1, can be one). With the ratings negative now
/// (`r.sentiment = 'negative'`), these are the ratings that were ever
/// negative; the two sets are read apart so that each reads its own
/// partial index (`ratings_negative_rated_at`, `ratings_changed_rated_at`)
/// instead of every rating of the range.
pub(crate) const RECOVERED: &str = "r.revision > 1 AND r.sentiment <> 'negative' AND EXISTS (
    SELECT 1 FROM rating_history h WHERE h.rating_id = r.id AND h.sentiment = 'negative')";

/// An alert was posted for it (alone or inside a storm digest).
pub(crate) const ALERTED: &str = "EXISTS (SELECT 1 FROM alerts a WHERE a.rating_id = r.id
    AND a.kind = 'post' AND a.state IN ('sent', 'digested'))";

/// `condition` (one of the above, ending in its subquery's closing
/// parenthesis) with `fence` put at the end of that subquery
/// ([`super::Dialect::per_row`]).
pub(crate) fn fenced(condition: &str, fence: &str) -> String {
    let open = condition.strip_suffix(')').unwrap_or(condition);
    format!("{open}{fence})")
}

/// The rollups a report can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RollupTable {
    /// `rating_rollup`: rating counts by score.
    Ratings,
    /// `follow_up_rollup`: ever-negative ratings by follow-up state.
    FollowUps,
}

impl RollupTable {
    fn name(self) -> &'static str {
        match self {
            RollupTable::Ratings => "rating_rollup",
            RollupTable::FollowUps => "follow_up_rollup",
        }
    }
}

impl Store {
    /// `(WITH, FROM … WHERE …, label)` over `ranges` (`[from, to)` in Unix
    /// ms, each its own group when grouping by range): the statement starts
    /// with the WITH clause, reads FROM the second part, and labels its
    /// groups with the third.
    fn report_from(
        &self,
        ranges: &[(i64, i64)],
        group: &Grouping,
        filter: &RatingFilter,
        binds: &mut Binds,
    ) -> (String, String, String) {
        // The ranges are integers we computed, written into the SQL as a
        // VALUES list the planner joins with the rated_at index.
        let values: Vec<String> = ranges
            .iter()
            .enumerate()
            .map(|(i, (from, to))| format!("({i}, {from}, {to})"))
            .collect();
        let with = format!("WITH p(i, lo, hi) AS (VALUES {})", values.join(", "));
        let mut from = "p JOIN ratings r ON r.rated_at >= p.lo AND r.rated_at < p.hi".to_string();
        let column = match group {
            Grouping::Column(c) => *c,
            Grouping::LocalDay(segments) => {
                let grp = format!("CAST({} AS TEXT)", local_day_sql(segments));
                let clauses = filter_sql(filter, binds);
                let condition = if clauses.is_empty() {
                    "TRUE".to_string()
                } else {
                    clauses.join(" AND ")
                };
                return (with, format!("{from} WHERE {condition}"), grp);
            }
        };
        let grp = match column {
            GroupColumn::Range => "CAST(p.i AS TEXT)".to_string(),
            GroupColumn::Agent => "COALESCE(r.agent, '')".into(),
            GroupColumn::Team => "COALESCE(r.team, '')".into(),
            GroupColumn::Source => "r.source".into(),
            GroupColumn::Survey => "r.survey".into(),
            GroupColumn::Brand => "COALESCE(r.brand, '')".into(),
            GroupColumn::Customer => "COALESCE(r.customer, '')".into(),
            GroupColumn::Tag => {
                from.push_str(&self.dialect().json_array_join("r.tags", "t"));
                "CAST(t.value AS TEXT)".into()
            }
        };
        let clauses = filter_sql(filter, binds);
        let condition = if clauses.is_empty() {
            "TRUE".to_string()
        } else {
            clauses.join(" AND ")
        };
        (with, format!("{from} WHERE {condition}"), grp)
    }

    /// `(WITH, FROM … WHERE …, label)` over the report rollup, when it can
    /// answer exactly: the grouping and every filter are among its columns,
    /// and every range starts and ends on a local midnight of the time zone
    /// it was built for (for [`Grouping::LocalDay`], with the same UTC
    /// offsets). `None`: read the ratings.
    async fn rollup_from(
        &self,
        table: RollupTable,
        ranges: &[(i64, i64)],
        group: &Grouping,
        filter: &RatingFilter,
        binds: &mut Binds,
    ) -> StoreResult<Option<(String, String, String)>> {
        // The follow-up rollup does not keep scores.
        let scores = table == RollupTable::Ratings
            || (filter.score_min.is_none() && filter.score_max.is_none());
        let supported = scores
            && filter.customer.is_empty()
            && filter.tag.is_empty()
            && filter.has_comment.is_none()
            && filter.followed_up.is_none()
            // The rollup keeps an unrecorded value as '', which only an
            // empty filter value would tell apart from a recorded ''.
            && [
                &filter.source,
                &filter.team,
                &filter.agent,
                &filter.brand,
                &filter.survey,
                &filter.sentiment,
            ]
            .iter()
            .all(|values| values.iter().all(|v| !v.trim().is_empty()));
        let column = match group {
            Grouping::Column(GroupColumn::Customer | GroupColumn::Tag) => return Ok(None),
            Grouping::Column(c) => Some(*c),
            Grouping::LocalDay(_) => None,
        };
        if !supported {
            return Ok(None);
        }
        let Some(zone) = self.rollup_for_reads().await? else {
            return Ok(None);
        };
        let mut days = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match super::rollup::day_range(&zone.tz, *lo, *hi) {
                Some(d) => days.push(d),
                None => return Ok(None),
            }
        }
        if let Grouping::LocalDay(segments) = group {
            let (lo, hi) = (ranges[0].0, ranges[ranges.len() - 1].1);
            if ranges.len() != 1 || *segments != crate::reports::day_offsets(&zone.tz, lo, hi) {
                return Ok(None);
            }
        }
        let level = if column == Some(GroupColumn::Agent) || !filter.agent.is_empty() {
            3
        } else if column == Some(GroupColumn::Team) || !filter.team.is_empty() {
            2
        } else {
            1
        };
        let grp = match column {
            None => "CAST(r.day AS TEXT)",
            Some(GroupColumn::Range) => "CAST(p.i AS TEXT)",
            Some(GroupColumn::Agent) => "r.agent",
            Some(GroupColumn::Team) => "r.team",
            Some(GroupColumn::Source) => "r.source",
            Some(GroupColumn::Survey) => "r.survey",
            Some(GroupColumn::Brand) => "r.brand",
            Some(GroupColumn::Customer | GroupColumn::Tag) => return Ok(None),
        };
        // Per range: day rows, except that a grouping by a column (not by
        // day) reads whole months inside the range as month rows.
        let mut values = Vec::new();
        for (i, &(lo, hi)) in days.iter().enumerate() {
            let parts = match column {
                None => vec![(false, lo, hi)],
                Some(_) => super::rollup::split_months(lo, hi),
            };
            for (months, lo, hi) in parts {
                let lv = if months {
                    level + super::rollup::MONTHS
                } else {
                    level
                };
                values.push(format!("({i}, {lv}, {lo}, {hi})"));
            }
        }
        let with = format!("WITH p(i, lv, lo, hi) AS (VALUES {})", values.join(", "));
        let clauses = filter_sql(filter, binds);
        let condition = if clauses.is_empty() {
            "TRUE".to_string()
        } else {
            clauses.join(" AND ")
        };
        Ok(Some((
            with,
            format!(
                "p JOIN {} r ON r.level = p.lv AND r.day >= p.lo AND r.day < p.hi WHERE {condition}",
                table.name()
            ),
            grp.to_string(),
        )))
    }

    /// Whether a report over these ranges, grouping and filter reads the
    /// rollup (false: it reads the ratings).
    pub async fn report_reads_rollup(
        &self,
        ranges: &[(i64, i64)],
        group: impl Into<Grouping>,
        filter: &RatingFilter,
    ) -> StoreResult<bool> {
        let mut binds = Binds::default();
        Ok(self
            .rollup_from(
                RollupTable::Ratings,
                ranges,
                &group.into(),
                filter,
                &mut binds,
            )
            .await?
            .is_some())
    }

    /// Counts per group, scale, score and sentiment: from the rollup when
    /// it can answer, else from the ratings.
    pub async fn report_score_counts(
        &self,
        ranges: &[(i64, i64)],
        group: impl Into<Grouping>,
        filter: &RatingFilter,
    ) -> StoreResult<Vec<ScoreCount>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let group = group.into();
        let mut binds = Binds::default();
        let (sql, label) = match self
            .rollup_from(RollupTable::Ratings, ranges, &group, filter, &mut binds)
            .await?
        {
            Some((with, from, grp)) => (
                format!(
                    "{with} SELECT {grp} AS grp, r.scale AS scale, r.score AS score, r.sentiment AS sentiment,
                            CAST(SUM(r.n) AS BIGINT) AS n
                     FROM {from}
                     GROUP BY 1, 2, 3, 4
                     HAVING SUM(r.n) <> 0"
                ),
                "report_scores_rollup",
            ),
            None => {
                binds = Binds::default();
                let (with, from, grp) = self.report_from(ranges, &group, filter, &mut binds);
                (
                    format!(
                        "{with} SELECT {grp} AS grp, r.scale AS scale, r.score AS score, r.sentiment AS sentiment,
                                COUNT(*) AS n
                         FROM {from}
                         GROUP BY 1, 2, 3, 4"
                    ),
                    "report_scores",
                )
            }
        };
        let started = std::time::Instant::now();
        let rows = on_pool!(self, |pool| {
            bind_all!(
                sqlx::query_as::<_, ScoreCount>(sqlx::AssertSqlSafe(sql)),
                binds
            )
            .fetch_all(pool)
            .await?
        });
        crate::telemetry::observe_db(label, started);
        Ok(rows)
    }

    /// How many ratings that were ever negative match `filter` and
    /// `condition` (SQL on `follow_up_rollup` as `r.`) in `range`, when the
    /// follow-up rollup can answer exactly (`None`: count the ratings).
    pub(crate) async fn follow_up_total(
        &self,
        range: (i64, i64),
        filter: &RatingFilter,
        condition: &str,
    ) -> StoreResult<Option<i64>> {
        let mut binds = Binds::default();
        let group = Grouping::Column(GroupColumn::Range);
        let Some((with, from, _)) = self
            .rollup_from(RollupTable::FollowUps, &[range], &group, filter, &mut binds)
            .await?
        else {
            return Ok(None);
        };
        let sql = format!(
            "{with} SELECT CAST(COALESCE(SUM(r.n), 0) AS BIGINT) FROM {from} AND {condition}"
        );
        let total = on_pool!(self, |pool| {
            bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), binds)
                .fetch_one(pool)
                .await?
        });
        Ok(Some(total))
    }

    /// Follow-up counts over ratings that were ever negative.
    pub async fn report_follow_up_counts(
        &self,
        ranges: &[(i64, i64)],
        group: impl Into<Grouping>,
        filter: &RatingFilter,
    ) -> StoreResult<Vec<FollowUpCount>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let group = group.into();
        let mut binds = Binds::default();
        let from = self
            .rollup_from(RollupTable::FollowUps, ranges, &group, filter, &mut binds)
            .await?;
        let (sql, label) = match from {
            Some((with, from, grp)) => (
                format!(
                    "{with} SELECT {grp} AS grp, r.alerted AS alerted, r.acked AS acked,
                            r.followed_up AS followed_up,
                            CAST(CASE WHEN r.sentiment <> 'negative' THEN 1 ELSE 0 END AS BIGINT) AS recovered,
                            NULLIF(r.outcome, '') AS outcome, CAST(SUM(r.n) AS BIGINT) AS n
                     FROM {from}
                     GROUP BY 1, 2, 3, 4, 5, 6
                     HAVING SUM(r.n) <> 0"
                ),
                "report_follow_ups_rollup",
            ),
            None => {
                binds = Binds::default();
                let (with, from, grp) = self.report_from(ranges, &group, filter, &mut binds);
                let state = super::follow_up_rollup::follow_up_state_sql();
                let sql = format!(
                    "{with} SELECT grp, alerted, acked, followed_up, recovered, outcome, COUNT(*) AS n FROM (
                        SELECT {grp} AS grp, {state},
                               CAST(CASE WHEN r.sentiment <> 'negative' THEN 1 ELSE 0 END AS BIGINT) AS recovered
                        FROM {from} AND r.sentiment = 'negative'
                        UNION ALL
                        SELECT {grp} AS grp, {state}, CAST(1 AS BIGINT) AS recovered
                        FROM {from} AND {RECOVERED}
                     ) AS f
                     GROUP BY 1, 2, 3, 4, 5, 6"
                );
                (sql, "report_follow_ups")
            }
        };
        let started = std::time::Instant::now();
        let rows = on_pool!(self, |pool| {
            bind_all!(
                sqlx::query_as::<_, FollowUpCount>(sqlx::AssertSqlSafe(sql)),
                binds
            )
            .fetch_all(pool)
            .await?
        });
        crate::telemetry::observe_db(label, started);
        Ok(rows)
    }

    /// Time to acknowledge and to follow up, per ever-negative rating that
    /// has either.
    pub async fn report_follow_up_times(
        &self,
        ranges: &[(i64, i64)],
        group: impl Into<Grouping>,
        filter: &RatingFilter,
    ) -> StoreResult<Vec<FollowUpTime>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let mut binds = Binds::default();
        let (with, from, grp) = self.report_from(ranges, &group.into(), filter, &mut binds);
        let sql = format!(
            "{with} SELECT {grp} AS grp, r.acked_at - r.first_seen_at AS ack_ms,
                    r.followed_up_at - r.first_seen_at AS follow_up_ms
             FROM {from} AND (r.acked_at IS NOT NULL OR r.followed_up_at IS NOT NULL)
                 AND r.sentiment = 'negative'
             UNION ALL
             SELECT {grp} AS grp, r.acked_at - r.first_seen_at AS ack_ms,
                    r.followed_up_at - r.first_seen_at AS follow_up_ms
             FROM {from} AND (r.acked_at IS NOT NULL OR r.followed_up_at IS NOT NULL)
                 AND {RECOVERED}"
        );
        let rows = on_pool!(self, |pool| {
            bind_all!(
                sqlx::query_as::<_, FollowUpTime>(sqlx::AssertSqlSafe(sql)),
                binds
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
