//! Reports: one definition of every figure, shared by `csatwatch report`,
//! the read API, the digests, the drop alerts and the dashboard.
//!
//! A rating counts once, with its latest version, in the period its
//! `rated_at` falls into; periods are local calendar days, ISO weeks or
//! months in `reports.timezone`; `since` is inclusive, `until` exclusive.
//! The statistics live in [`stats`], the figure types in [`figures`], the
//! calendar in [`period`], and the SQL in `store::reports`.

pub mod digest;
pub mod drops;
pub mod export;
pub mod figures;
pub mod params;
pub mod period;
pub mod render;
pub mod schedule;
pub mod scheduler;
pub mod stats;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

pub use figures::{Ces, Csat, Figures, FollowUp, Nps, Tally};
pub use period::{Period, Unit};

pub use crate::store::RatingFilter;
use crate::store::{GroupColumn, Grouping, Store, StoreResult};

/// What a report's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Day,
    Week,
    Month,
    Agent,
    Team,
    Source,
    Survey,
    Tag,
    Brand,
    Customer,
}

impl GroupBy {
    pub const ALL: [GroupBy; 10] = [
        GroupBy::Day,
        GroupBy::Week,
        GroupBy::Month,
        GroupBy::Agent,
        GroupBy::Team,
        GroupBy::Source,
        GroupBy::Survey,
        GroupBy::Tag,
        GroupBy::Brand,
        GroupBy::Customer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
            GroupBy::Agent => "agent",
            GroupBy::Team => "team",
            GroupBy::Source => "source",
            GroupBy::Survey => "survey",
            GroupBy::Tag => "tag",
            GroupBy::Brand => "brand",
            GroupBy::Customer => "customer",
        }
    }

    /// The calendar unit, for the time groupings.
    pub fn unit(self) -> Option<Unit> {
        match self {
            GroupBy::Day => Some(Unit::Day),
            GroupBy::Week => Some(Unit::Week),
            GroupBy::Month => Some(Unit::Month),
            _ => None,
        }
    }

    fn column(self) -> GroupColumn {
        match self {
            GroupBy::Day | GroupBy::Week | GroupBy::Month => GroupColumn::Range,
            GroupBy::Agent => GroupColumn::Agent,
            GroupBy::Team => GroupColumn::Team,
            GroupBy::Source => GroupColumn::Source,
            GroupBy::Survey => GroupColumn::Survey,
            GroupBy::Tag => GroupColumn::Tag,
            GroupBy::Brand => GroupColumn::Brand,
            GroupBy::Customer => GroupColumn::Customer,
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        GroupBy::ALL
            .into_iter()
            .find(|g| g.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown grouping {s:?}; use day, week, month, agent, team, source, survey, tag, brand or customer"
                )
            })
    }
}

/// The label of a group whose value was not recorded (no agent, no team).
pub const NONE_LABEL: &str = "(none)";

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// First local day, inclusive.
    pub since: Date,
    /// Last local day, exclusive.
    pub until: Date,
    pub timezone: TimeZone,
    pub by: GroupBy,
    pub filter: RatingFilter,
    /// Groups with fewer responses are flagged `low_sample`.
    pub min_sample: u64,
}

impl ReportRequest {
    /// The last `days` local days up to and including today (at `now_ms`).
    pub fn last_days(now_ms: i64, timezone: TimeZone, days: i64, by: GroupBy) -> ReportRequest {
        let until = period::add_days(period::local_date(now_ms, &timezone), 1);
        ReportRequest {
            since: period::add_days(until, -days),
            until,
            timezone,
            by,
            filter: RatingFilter::default(),
            min_sample: 30,
        }
    }

    /// The time zone's IANA name (`UTC` when it has none).
    pub fn timezone_name(&self) -> String {
        self.timezone.iana_name().unwrap_or("UTC").to_string()
    }
}

/// A change between a period and the one before it of the same length.
/// A trend is only called when the difference is significant (two-sided
/// p < 0.05): a pooled two-proportion z-test for CSAT, an unpooled
/// difference test for NPS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Percentage points, this period − the previous one.
    pub csat_points: Option<f64>,
    pub csat_p_value: Option<f64>,
    pub csat_trend: Option<Trend>,
    /// NPS points.
    pub nps_points: Option<f64>,
    pub nps_p_value: Option<f64>,
    pub nps_trend: Option<Trend>,
    /// Difference of the CES averages (no test).
    pub ces_average: Option<f64>,
}

/// A significant direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Up,
    Down,
}

/// The significance level of trend verdicts.
pub const TREND_ALPHA: f64 = 0.05;

impl Change {
    pub fn between(now: &Figures, before: &Figures) -> Change {
        let csat = stats::compare_proportions(
            now.csat.positive,
            now.csat.responses,
            before.csat.positive,
            before.csat.responses,
        );
        let nps = stats::compare_nps(now.nps_counts(), before.nps_counts());
        let trend = |c: &stats::Comparison| {
            (c.p_two_sided < TREND_ALPHA).then_some(if c.z > 0.0 { Trend::Up } else { Trend::Down })
        };
        let diff = |a: Option<f64>, b: Option<f64>| Some(stats::round1(a? - b?));
        Change {
            csat_points: diff(now.csat.percent, before.csat.percent),
            csat_p_value: csat.map(|c| round4(c.p_two_sided)),
            csat_trend: csat.as_ref().and_then(trend),
            nps_points: diff(now.nps.score, before.nps.score),
            nps_p_value: nps.map(|c| round4(c.p_two_sided)),
            nps_trend: nps.as_ref().and_then(trend),
            ces_average: now
                .ces
                .average
                .zip(before.ces.average)
                .map(|(a, b)| (100.0 * (a - b)).round() / 100.0),
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The figures of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// `YYYY-MM-DD`, `YYYY-Www`, `YYYY-MM`, or the value as recorded.
    pub group: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub low_sample: bool,
    /// Against the previous period of the same length (time groupings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// The whole range's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportTotal {
    #[serde(flatten)]
    pub figures: Figures,
    pub low_sample: bool,
}

/// A report, as every output shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub since: String,
    pub until: String,
    pub timezone: String,
    pub by: GroupBy,
    pub min_sample: u64,
    pub total: ReportTotal,
    pub rows: Vec<ReportRow>,
}

/// Tallies per group over `ranges` (`[from, to)` in Unix ms). With
/// [`GroupColumn::Range`] the keys are the range indexes (`"0"`, `"1"`, …).
pub async fn tally(
    store: &Store,
    ranges: &[(i64, i64)],
    group: impl Into<Grouping>,
    filter: &RatingFilter,
) -> StoreResult<BTreeMap<String, Tally>> {
    let group = group.into();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for row in store
        .report_score_counts(ranges, group.clone(), filter)
        .await?
    {
        tallies.entry(row.grp.clone()).or_default().add_scores(&row);
    }
    for row in store
        .report_follow_up_counts(ranges, group.clone(), filter)
        .await?
    {
        tallies
            .entry(row.grp.clone())
            .or_default()
            .add_follow_ups(&row);
    }
    for row in store.report_follow_up_times(ranges, group, filter).await? {
        tallies
            .entry(row.grp.clone())
            .or_default()
            .add_times(row.ack_ms, row.follow_up_ms);
    }
    Ok(tallies)
}

/// The UTC offsets of `tz` in force over `[from_ms, to_ms)`, as the
/// `(until_ms, offset_ms)` segments of [`Grouping::LocalDay`].
pub fn day_offsets(tz: &TimeZone, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
    let start = jiff::Timestamp::from_millisecond(from_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut offset = i64::from(tz.to_offset(start).seconds()) * 1000;
    let mut segments = Vec::new();
    for t in tz.following(start) {
        let at = t.timestamp().as_millisecond();
        if at >= to_ms {
            break;
        }
        segments.push((at, offset));
        offset = i64::from(t.offset().seconds()) * 1000;
    }
    segments.push((i64::MAX, offset));
    segments
}

fn epoch() -> Date {
    Date::constant(1970, 1, 1)
}

/// Tallies per local day over `[since, until)`, in one pass.
pub async fn tally_days(
    store: &Store,
    tz: &TimeZone,
    since: Date,
    until: Date,
    filter: &RatingFilter,
) -> Result<BTreeMap<Date, Tally>, ReportError> {
    let from = period::start_of_day_ms(since, tz).map_err(ReportError::Invalid)?;
    let to = period::start_of_day_ms(until, tz).map_err(ReportError::Invalid)?;
    let by_day = tally(
        store,
        &[(from, to)],
        Grouping::LocalDay(day_offsets(tz, from, to)),
        filter,
    )
    .await?;
    Ok(by_day
        .into_iter()
        .filter_map(|(day, t)| Some((period::add_days(epoch(), day.parse().ok()?), t)))
        .collect())
}

/// The sum of the days of `p`.
pub fn sum_days(days: &BTreeMap<Date, Tally>, p: &Period) -> Tally {
    let mut sum = Tally::default();
    for (_, t) in days.range(p.start..p.end) {
        sum.merge(t);
    }
    sum
}

/// Why a report could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request makes no sense (a 400 at the API).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The longest range a time grouping may have, in periods (keeps the SQL
/// and the output bounded).
pub const MAX_PERIODS: usize = 1_000;

/// Computes a report.
pub async fn compute_report(store: &Store, req: &ReportRequest) -> Result<Report, ReportError> {
    if req.by.unit().is_some() {
        let first = first_day(req)?;
        let days = tally_days(store, &req.timezone, first, req.until, &req.filter).await?;
        return report_from_days(req, &days);
    }
    check_range(req)?;
    let tz = &req.timezone;
    let whole = Period {
        label: String::new(),
        start: req.since,
        end: req.until,
    };
    let ranges = [whole.range_ms(tz).map_err(ReportError::Invalid)?];
    let tallies = tally(store, &ranges, req.by.column(), &req.filter).await?;
    let mut total = Tally::default();
    let mut rows = Vec::new();
    for (group, t) in &tallies {
        total.merge(t);
        let figures = t.figures();
        rows.push(ReportRow {
            group: if group.is_empty() {
                NONE_LABEL.to_string()
            } else {
                group.clone()
            },
            low_sample: figures.responses() < req.min_sample,
            change: None,
            figures,
        });
    }
    // Unrecorded values last.
    rows.sort_by(|a, b| (a.group == NONE_LABEL, &a.group).cmp(&(b.group == NONE_LABEL, &b.group)));
    if req.by == GroupBy::Tag {
        // A rating with two tags is in two rows: count the total once.
        let all = tally(store, &ranges, GroupColumn::Range, &req.filter).await?;
        total = all.into_values().next().unwrap_or_default();
    }
    Ok(assemble(req, &total, rows))
}

fn check_range(req: &ReportRequest) -> Result<(), ReportError> {
    if req.since >= req.until {
        return Err(ReportError::Invalid(format!(
            "since ({}) must be before until ({})",
            req.since, req.until
        )));
    }
    Ok(())
}

/// The periods of a report by a time unit (at most [`MAX_PERIODS`]).
fn report_periods(req: &ReportRequest) -> Result<(Unit, Vec<Period>), ReportError> {
    check_range(req)?;
    let Some(unit) = req.by.unit() else {
        return Err(ReportError::Invalid(format!(
            "{} is not a time unit",
            req.by
        )));
    };
    let periods = period::periods(unit, req.since, req.until);
    if periods.len() > MAX_PERIODS {
        return Err(ReportError::Invalid(format!(
            "{} {}s is too many rows (at most {MAX_PERIODS}); use a shorter range or a longer unit",
            periods.len(),
            req.by
        )));
    }
    Ok((unit, periods))
}

/// The first day a report by a time unit reads: that of the period before
/// its first (for the first row's change).
pub fn first_day(req: &ReportRequest) -> Result<Date, ReportError> {
    let (unit, periods) = report_periods(req)?;
    Ok(period::previous(unit, &periods[0]).start)
}

/// A report by a time unit from its days' tallies (from [`first_day`] to
/// `req.until`, or more): periods are sums of days.
pub fn report_from_days(
    req: &ReportRequest,
    days: &BTreeMap<Date, Tally>,
) -> Result<Report, ReportError> {
    let (unit, periods) = report_periods(req)?;
    let mut before = sum_days(days, &period::previous(unit, &periods[0])).figures();
    let mut total = Tally::default();
    let mut rows = Vec::new();
    for p in &periods {
        let t = sum_days(days, p);
        total.merge(&t);
        let figures = t.figures();
        rows.push(ReportRow {
            group: p.label.clone(),
            low_sample: figures.responses() < req.min_sample,
            change: Some(Change::between(&figures, &before)),
            figures: figures.clone(),
        });
        before = figures;
    }
    Ok(assemble(req, &total, rows))
}

fn assemble(req: &ReportRequest, total: &Tally, rows: Vec<ReportRow>) -> Report {
    let figures = total.figures();
    Report {
        since: req.since.to_string(),
        until: req.until.to_string(),
        timezone: req.timezone_name(),
        by: req.by,
        min_sample: req.min_sample,
        total: ReportTotal {
            low_sample: figures.responses() < req.min_sample,
            figures,
        },
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_offsets_follow_a_dst_change() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let ms = |at: &str| at.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let segments = day_offsets(
            &berlin,
            ms("2026-10-20T00:00:00Z"),
            ms("2026-11-05T00:00:00Z"),
        );
        assert_eq!(
            segments,
            [
                (ms("2026-10-25T01:00:00Z"), 7_200_000),
                (i64::MAX, 3_600_000)
            ]
        );
        assert_eq!(day_offsets(&TimeZone::UTC, 0, 1_000), [(i64::MAX, 0)]);
    }
}
