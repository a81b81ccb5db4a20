//! CSV downloads of what a page shows. Cells that a spreadsheet would run
//! as a formula (`=`, `+`, `-`, `@` first, and not a number) are prefixed with `'`: comments
//! are customer text.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::filters::Filters;
use super::overview::OverviewData;
use super::pages::fmt_time;
use crate::reports::Figures;
use crate::store::QueueRow;

/// One CSV field, quoted when needed and defused against formulas.
pub fn field(text: &str) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if text.parse::<f64>().is_err() => {
            format!("'{text}")
        }
        _ => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn line(out: &mut String, cells: &[&str]) {
    let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// The negatives queue as CSV.
pub fn negatives(rows: &[QueueRow], f: &Filters, tz: &jiff::tz::TimeZone) -> Response {
    let mut out = String::new();
    line(
        &mut out,
        &[
            "rating_id",
            "state",
            "rated_at",
            "source",
            "survey",
            "scale",
            "score",
            "agent",
            "team",
            "comment",
            "ticket_url",
            "acknowledged_by",
            "acknowledged_at",
            "followed_up_by",
            "followed_up_at",
        ],
    );
    for r in rows {
        let opt_time = |t: Option<i64>| t.map(|t| fmt_time(t, tz)).unwrap_or_default();
        line(
            &mut out,
            &[
                &r.id.to_string(),
                &r.state,
                &fmt_time(r.rated_at, tz),
                &r.source,
                &r.survey,
                &r.scale,
                &r.score.to_string(),
                r.agent.as_deref().unwrap_or(""),
                r.team.as_deref().unwrap_or(""),
                r.comment.as_deref().unwrap_or(""),
                r.url.as_deref().unwrap_or(""),
                r.acked_by_name.as_deref().unwrap_or(""),
                &opt_time(r.acked_at),
                r.followed_up_by_name.as_deref().unwrap_or(""),
                &opt_time(r.followed_up_at),
            ],
        );
    }
    let name = format!(
        "attachment; filename=\"csatwatch-negatives-{}-{}.csv\"",
        f.since_text(),
        f.until_text()
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        out,
    )
        .into_response()
}

/// The overview's figures as CSV: the period's total, then a row per week
/// of the trend, per team and per agent.
pub fn overview(d: &OverviewData, f: &Filters) -> Response {
    let mut out = String::new();
    line(
        &mut out,
        &[
            "section",
            "group",
            "csat_responses",
            "csat_percent",
            "csat_ci95_low",
            "csat_ci95_high",
            "nps_responses",
            "nps_score",
            "ces_responses",
            "ces_average",
            "negatives",
            "followed_up",
            "followed_up_percent",
            "low_sample",
        ],
    );
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut row = |section: &str, group: &str, x: &Figures, low: bool| {
        let ci = x.csat.ci95;
        line(
            &mut out,
            &[
                section,
                group,
                &x.csat.responses.to_string(),
                &opt(x.csat.percent),
                &opt(ci.map(|c| c[0])),
                &opt(ci.map(|c| c[1])),
                &x.nps.responses.to_string(),
                &opt(x.nps.score),
                &x.ces.responses.to_string(),
                &opt(x.ces.average),
                &x.follow_up.negatives.to_string(),
                &x.follow_up.followed_up.to_string(),
                &opt(x.follow_up.followed_up_percent),
                if low { "true" } else { "false" },
            ],
        );
    };
    row("total", &f.period_text(), &d.now, d.teams.total.low_sample);
    for (section, report) in [("week", &d.weeks), ("team", &d.teams), ("agent", &d.agents)] {
        for r in &report.rows {
            row(section, &r.group, &r.figures, r.low_sample);
        }
    }
    let name = format!(
        "attachment; filename=\"csatwatch-overview-{}-{}.csv\"",
        f.since_text(),
        f.until_text()
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\"\nbye"), "\"say \"\"hi\"\"\nbye\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-101"), "-101");
        assert_eq!(field("-1+2"), "'-1+2");
    }
}
