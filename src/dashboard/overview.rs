//! The overview: the period's CSAT, NPS, CES and follow-up with the change
//! against the period before, a weekly trend, and per-team and per-agent
//! tables. Every figure comes from [`crate::reports`] (one definition for
//! every output); this module only lays them out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Viewer;
use super::chart::{self, TrendPoint};
use super::filters::{FilterQuery, Filters};
use super::pages::{Layout, bad_request, render, unavailable_report};
use crate::http::AppState;
use crate::reports::{
    self, Change, Figures, GroupBy, Report, ReportRequest, ReportRow, Trend, drops, period,
};

/// The trend shows at least this many weeks up to the period's end.
pub const TREND_DAYS: i64 = 12 * 7;

/// A headline figure.
pub struct Headline {
    pub label: &'static str,
    pub value: String,
    pub detail: String,
    pub change: String,
    /// `delta-up`, `delta-down` or empty (no significant change).
    pub change_class: &'static str,
    pub spark: String,
}

/// A row of the team or agent table.
pub struct GroupLine {
    pub group: String,
    pub responses: u64,
    pub csat: String,
    pub ci: String,
    pub nps: String,
    pub ces: String,
    pub negatives: u64,
    pub followed_up: String,
    pub low: bool,
    pub queue_href: String,
}

/// A row of the trend's table.
pub struct TrendLine {
    pub label: String,
    pub responses: u64,
    pub csat: String,
    pub ci: String,
    pub change: String,
    /// The drop alerts open during the week (`csat: overall`), or empty.
    pub alert: String,
}

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    layout: Layout,
    period: String,
    timezone: String,
    min_sample: u64,
    low_total: bool,
    headlines: Vec<Headline>,
    trend_svg: String,
    trend: Vec<TrendLine>,
    follow: Vec<(&'static str, String, String)>,
    teams: Vec<GroupLine>,
    agents: Vec<GroupLine>,
    csv_href: String,
}

/// Everything the overview shows, computed by the reports.
pub struct OverviewData {
    pub now: Figures,
    pub change: Change,
    pub weeks: Report,
    pub teams: Report,
    pub agents: Report,
    /// `[from, to)` in Unix ms of each row of `weeks`.
    pub week_ranges: Vec<(i64, i64)>,
}

/// Computes the overview's figures for `f`: four reports, run at once.
pub async fn compute(state: &AppState, f: &Filters) -> Result<OverviewData, reports::ReportError> {
    let tz = state.settings.reports.time_zone();
    let min_sample = state.settings.reports.min_sample;
    let filter = f.rating_filter();
    let request = |since, by| ReportRequest {
        since,
        until: f.until,
        timezone: tz.clone(),
        by,
        filter: filter.clone(),
        min_sample,
    };
    let previous_since = period::add_days(f.since, -f.days());
    let trend_since = f.since.min(period::add_days(f.until, -TREND_DAYS));
    let (weeks_req, teams_req, agents_req) = (
        request(trend_since, GroupBy::Week),
        request(f.since, GroupBy::Team),
        request(f.since, GroupBy::Agent),
    );
    // One pass over the days serves the trend by week and the headline
    // figures of the period and of the one before it (sums of days).
    let first = previous_since.min(reports::first_day(&weeks_req)?);
    let store = &state.store;
    let (days, teams, agents) = tokio::try_join!(
        reports::tally_days(store, &tz, first, f.until, &filter),
        reports::compute_report(store, &teams_req),
        reports::compute_report(store, &agents_req),
    )?;
    let weeks = reports::report_from_days(&weeks_req, &days)?;
    let figures = |start, end| {
        let p = period::Period {
            label: String::new(),
            start,
            end,
        };
        reports::sum_days(&days, &p).figures()
    };
    let (now, before) = (figures(f.since, f.until), figures(previous_since, f.since));
    let week_ranges = period::periods(period::Unit::Week, trend_since, f.until)
        .iter()
        .map(|p| p.range_ms(&tz).unwrap_or((0, 0)))
        .collect();
    Ok(OverviewData {
        change: Change::between(&now, &before),
        now,
        weeks,
        teams,
        agents,
        week_ranges,
    })
}

pub async fn overview(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<FilterQuery>,
) -> Response {
    let tz = state.settings.reports.time_zone();
    let f = match Filters::parse(&q, state.clock.now_ms(), &tz) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let data = match compute(&state, &f).await {
        Ok(d) => d,
        Err(reports::ReportError::Invalid(e)) => return bad_request(e),
        Err(reports::ReportError::Store(e)) => return unavailable_report(e),
    };
    if q.format.as_deref() == Some("csv") {
        return super::csv::overview(&data, &f);
    }
    let episodes = match state.store.drop_alert_messages().await {
        Ok(m) => relevant_episodes(drops::episodes(&m), &f),
        Err(e) => return unavailable_report(e),
    };
    // Per week of the trend: the drop alerts open during it.
    let alerts: Vec<String> = data
        .week_ranges
        .iter()
        .map(|&(from, to)| {
            episodes
                .iter()
                .filter(|e| e.overlaps(from, to))
                .map(|e| format!("{}: {}", e.name, e.group_text()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let min_sample = state.settings.reports.min_sample;
    let page = OverviewPage {
        layout: Layout::new("Overview", "overview", &viewer, Some(&f)),
        period: f.period_text(),
        timezone: data.weeks.timezone.clone(),
        min_sample,
        low_total: data.now.responses() < min_sample,
        headlines: headlines(&data, f.days()),
        trend_svg: chart::trend_chart(
            "trend",
            "CSAT % by week, with its 95% interval, over responses",
            &trend_points(&data.weeks.rows, &alerts),
        ),
        trend: data
            .weeks
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| TrendLine {
                alert: alerts.get(i).cloned().unwrap_or_default(),
                label: r.group.clone(),
                responses: r.figures.csat.responses,
                csat: pct(r.figures.csat.percent),
                ci: interval(r.figures.csat.ci95, "%"),
                change: r
                    .change
                    .as_ref()
                    .map(|c| change_text(c.csat_points, c.csat_trend, " pts"))
                    .unwrap_or_default(),
            })
            .collect(),
        follow: follow_lines(&data.now),
        teams: group_lines(&data.teams.rows, &f, "team"),
        agents: group_lines(&data.agents.rows, &f, "agent"),
        csv_href: format!("/dashboard?{}&format=csv", f.query(true)),
    };
    render(StatusCode::OK, &page)
}

fn trend_points(rows: &[ReportRow], alerts: &[String]) -> Vec<TrendPoint> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| TrendPoint {
            label: r.group.clone(),
            percent: r.figures.csat.percent,
            ci95: r.figures.csat.ci95.map(|[lo, hi]| (lo, hi)),
            responses: r.figures.csat.responses as i64,
            alert: alerts.get(i).is_some_and(|a| !a.is_empty()),
        })
        .collect()
}

/// The episodes that concern the view: overall ones, and those of the
/// team or source it is filtered to.
fn relevant_episodes(all: Vec<drops::Episode>, f: &Filters) -> Vec<drops::Episode> {
    let is = |kind: &str, value: &Option<String>, group: &str| {
        value.as_deref().is_some_and(|v| {
            group
                .strip_prefix(kind)
                .is_some_and(|g| g.eq_ignore_ascii_case(v.trim()))
        })
    };
    all.into_iter()
        .filter(|e| {
            e.group == "overall"
                || is("team:", &f.team, &e.group)
                || is("source:", &f.source, &e.group)
        })
        .collect()
}

fn headlines(d: &OverviewData, days: i64) -> Vec<Headline> {
    let against = format!("vs the {days} days before");
    let spark = |label: &str, pick: &dyn Fn(&Figures) -> Option<f64>| {
        let values: Vec<Option<f64>> = d.weeks.rows.iter().map(|r| pick(&r.figures)).collect();
        chart::sparkline(&format!("{label} by week"), &values)
    };
    let n = &d.now;
    let c = &d.change;
    let class = |t: Option<Trend>| match t {
        Some(Trend::Up) => "delta-up",
        Some(Trend::Down) => "delta-down",
        None => "",
    };
    vec![
        Headline {
            label: "CSAT",
            value: pct(n.csat.percent),
            detail: format!(
                "{} · 95% interval {}",
                responses(n.csat.responses),
                interval(n.csat.ci95, "%")
            ),
            change: format!(
                "{} {against}",
                change_text(c.csat_points, c.csat_trend, " pts")
            ),
            change_class: class(c.csat_trend),
            spark: spark("CSAT %", &|f| f.csat.percent),
        },
        Headline {
            label: "NPS",
            value: signed(n.nps.score),
            detail: format!(
                "{} · 95% interval {}",
                responses(n.nps.responses),
                interval(n.nps.ci95, "")
            ),
            change: format!(
                "{} {against}",
                change_text(c.nps_points, c.nps_trend, " pts")
            ),
            change_class: class(c.nps_trend),
            spark: spark("NPS", &|f| f.nps.score),
        },
        Headline {
            label: "CES",
            value: n
                .ces
                .average
                .map(|a| format!("{a:.2} / 7"))
                .unwrap_or_else(|| "—".into()),
            detail: match n.ces.ci95 {
                Some([lo, hi]) => format!(
                    "{} · 95% interval {lo:.2}–{hi:.2} · {} found it easy",
                    responses(n.ces.responses),
                    pct(n.ces.easy_percent)
                ),
                None => format!(
                    "{} · {} found it easy",
                    responses(n.ces.responses),
                    pct(n.ces.easy_percent)
                ),
            },
            change: match c.ces_average {
                Some(d) => format!("{d:+.2} {against} (no test)"),
                None => format!("no change to show {against}"),
            },
            change_class: "",
            spark: spark("CES average", &|f| f.ces.average),
        },
        Headline {
            label: "Followed up",
            value: pct(n.follow_up.followed_up_percent),
            detail: format!("of {} negative rating(s)", n.follow_up.negatives),
            change: format!(
                "median {} to acknowledge",
                minutes(n.follow_up.median_minutes_to_ack)
            ),
            change_class: "",
            spark: spark("Followed up %", &|f| f.follow_up.followed_up_percent),
        },
    ]
}

fn follow_lines(n: &Figures) -> Vec<(&'static str, String, String)> {
    let f = &n.follow_up;
    vec![
        ("Negative ratings", f.negatives.to_string(), String::new()),
        ("Alerted", f.alerted.to_string(), String::new()),
        (
            "Acknowledged",
            f.acknowledged.to_string(),
            "state=acknowledged".into(),
        ),
        (
            "Followed up",
            f.followed_up.to_string(),
            "state=followed_up".into(),
        ),
        (
            "Recovered",
            f.recovered.to_string(),
            "state=recovered".into(),
        ),
        (
            "Median time to acknowledge",
            minutes(f.median_minutes_to_ack),
            String::new(),
        ),
        (
            "Median time to follow up",
            minutes(f.median_minutes_to_follow_up),
            String::new(),
        ),
    ]
}

fn group_lines(rows: &[ReportRow], f: &Filters, key: &str) -> Vec<GroupLine> {
    rows.iter()
        .map(|r| {
            let mut with = f.clone();
            match key {
                "team" => with.team = Some(r.group.clone()),
                _ => with.agent = Some(r.group.clone()),
            }
            GroupLine {
                group: r.group.clone(),
                responses: r.figures.responses(),
                csat: pct(r.figures.csat.percent),
                ci: interval(r.figures.csat.ci95, "%"),
                nps: signed(r.figures.nps.score),
                ces: r
                    .figures
                    .ces
                    .average
                    .map(|a| format!("{a:.2}"))
                    .unwrap_or_else(|| "—".into()),
                negatives: r.figures.follow_up.negatives,
                followed_up: pct(r.figures.follow_up.followed_up_percent),
                low: r.low_sample,
                queue_href: format!("/dashboard/negatives?{}", with.query(true)),
            }
        })
        .collect()
}

pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "—".into())
}

fn signed(v: Option<f64>) -> String {
    v.map(|v| format!("{v:+.0}")).unwrap_or_else(|| "—".into())
}

fn interval(ci: Option<[f64; 2]>, unit: &str) -> String {
    ci.map(|[lo, hi]| format!("{lo:.1}–{hi:.1}{unit}"))
        .unwrap_or_else(|| "—".into())
}

fn responses(n: u64) -> String {
    if n == 1 {
        "1 response".into()
    } else {
        format!("{n} responses")
    }
}

/// `+2.1 pts, significant` / `−0.4 pts, not significant`.
fn change_text(points: Option<f64>, trend: Option<Trend>, unit: &str) -> String {
    match points {
        Some(p) => format!(
            "{p:+.1}{unit}, {}",
            if trend.is_some() {
                "significant"
            } else {
                "not significant"
            }
        ),
        None => "no change to show".into(),
    }
}

/// `35 min`, `5 h 10 min`, `2 d 3 h`, `—`.
fn minutes(m: Option<f64>) -> String {
    match m {
        Some(m) => super::pages::fmt_age((m * 60_000.0) as i64),
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_people_write_them() {
        assert_eq!(pct(Some(83.333)), "83.3%");
        assert_eq!(pct(None), "—");
        assert_eq!(signed(Some(35.0)), "+35");
        assert_eq!(signed(Some(-12.4)), "-12");
        assert_eq!(interval(Some([76.04, 88.81]), "%"), "76.0–88.8%");
        assert_eq!(
            change_text(Some(2.14), Some(Trend::Up), " pts"),
            "+2.1 pts, significant"
        );
        assert_eq!(
            change_text(Some(-0.4), None, " pts"),
            "-0.4 pts, not significant"
        );
        assert_eq!(minutes(Some(310.0)), "5 h 10 min");
        assert_eq!(responses(1), "1 response");
    }
}
