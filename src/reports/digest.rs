//! Scheduled digests: a period's CSAT / NPS / CES with the change against
//! the period before (a trend arrow only when significant), a sparkline of
//! the last weeks, the worst and best teams or agents (low samples marked),
//! the negatives nobody followed up yet with their links, and the
//! follow-up rate. Rendered as a Slack message; names and links only,
//! never customer comments.

use jiff::civil::Date;
use serde_json::{Value, json};

use super::period::{self, Period, Unit, add_days};
use super::render::sparkline;
use super::schedule::{Every, Schedule};
use super::{Change, Figures, RatingFilter, ReportError, Trend, sum_days, tally, tally_days};
use crate::settings::{DigestSettings, Settings, parse_local_time, parse_weekday};
use crate::sinks::slack::text::{escape, fit};
use crate::store::{GroupColumn, RatingQuery, Store};

/// A digest's schedule (settings are validated at start-up).
pub fn schedule(d: &DigestSettings) -> Schedule {
    let (hour, minute) = parse_local_time(&d.at).unwrap_or((9, 0));
    let every = if d.schedule == "daily" {
        Every::Daily
    } else {
        Every::Weekly(parse_weekday(&d.weekday).unwrap_or(jiff::civil::Weekday::Monday))
    };
    Schedule {
        every,
        hour,
        minute,
    }
}

/// The days a digest due on `due` covers: the day or the 7 days before.
pub fn covered(d: &DigestSettings, due: Date) -> Period {
    let days = if d.schedule == "daily" { 1 } else { 7 };
    let start = add_days(due, -days);
    let label = if days == 1 {
        period::label(Unit::Day, start)
    } else if period::unit_start(Unit::Week, start) == start {
        period::label(Unit::Week, start)
    } else {
        format!("{start} – {}", add_days(due, -1))
    };
    Period {
        label,
        start,
        end: due,
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "–".into())
}

fn change(points: Option<f64>, trend: Option<Trend>, unit: &str) -> String {
    match (points, trend) {
        (Some(p), Some(Trend::Up)) => format!(" ▲ {p:+.1} {unit} (significant)"),
        (Some(p), Some(Trend::Down)) => format!(" ▼ {p:+.1} {unit} (significant)"),
        (Some(p), None) => format!(" ({p:+.1} {unit}, within noise)"),
        (None, _) => String::new(),
    }
}

/// Renders the digest due on `due` for `d`.
pub async fn build(
    store: &Store,
    settings: &Settings,
    d: &DigestSettings,
    due: Date,
) -> Result<Value, ReportError> {
    let tz = settings.reports.time_zone();
    let min_sample = settings.reports.min_sample;
    let filter: RatingFilter = d.filter().to_filter();
    let now = covered(d, due);
    let before = Period {
        label: String::new(),
        start: add_days(now.start, -now.days()),
        end: now.start,
    };
    let range = |p: &Period| p.range_ms(&tz).map_err(ReportError::Invalid);
    let weeks: Vec<Period> = (0..i64::from(d.weeks))
        .rev()
        .map(|k| Period {
            label: String::new(),
            start: add_days(due, -7 * (k + 1)),
            end: add_days(due, -7 * k),
        })
        .collect();
    // One pass over every day any figure needs.
    let first = before.start.min(weeks[0].start);
    let days = tally_days(store, &tz, first, due, &filter).await?;
    let (cur, prev): (Figures, Figures) = (
        sum_days(&days, &now).figures(),
        sum_days(&days, &before).figures(),
    );
    let delta = Change::between(&cur, &prev);
    let spark: Vec<Option<f64>> = weeks
        .iter()
        .map(|w| sum_days(&days, w).figures().csat.percent)
        .collect();

    let column = if d.rank_by == "agent" {
        GroupColumn::Agent
    } else {
        GroupColumn::Team
    };
    let groups = tally(store, &[range(&now)?], column, &filter).await?;
    let mut ranked: Vec<(String, Figures)> = groups
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, t)| (g.clone(), t.figures()))
        .filter(|(_, f)| f.csat.percent.is_some())
        .collect();
    ranked.sort_by(|a, b| {
        a.1.csat
            .percent
            .partial_cmp(&b.1.csat.percent)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    let line = |(g, f): &(String, Figures)| {
        format!(
            "{} {} (n={}){}",
            escape(g),
            pct(f.csat.percent),
            f.csat.responses,
            if f.responses() < min_sample {
                ", low sample"
            } else {
                ""
            }
        )
    };
    let worst: Vec<String> = ranked.iter().take(3).map(line).collect();
    let best: Vec<String> = ranked
        .iter()
        .rev()
        .take(3.min(ranked.len().saturating_sub(3)))
        .map(line)
        .collect();

    let (since_ms, until_ms) = range(&now)?;
    let open = store
        .list_ratings(
            &RatingQuery {
                since_ms,
                until_ms,
                filter: RatingFilter {
                    sentiment: vec!["negative".into()],
                    followed_up: Some(false),
                    ..filter.clone()
                },
            },
            None,
            11,
        )
        .await?;

    let title = format!(
        "{} CSAT digest: {}",
        if d.schedule == "daily" {
            "Daily"
        } else {
            "Weekly"
        },
        now.label
    );
    let mut lines = vec![
        format!(
            "*CSAT* {} (n={}){}",
            pct(cur.csat.percent),
            cur.csat.responses,
            change(delta.csat_points, delta.csat_trend, "pts")
        ),
        format!(
            "*NPS* {} (n={}){}",
            cur.nps
                .score
                .map(|s| format!("{s:+.0}"))
                .unwrap_or_else(|| "–".into()),
            cur.nps.responses,
            change(delta.nps_points, delta.nps_trend, "pts")
        ),
        format!(
            "*CES* {} (n={})",
            cur.ces
                .average
                .map(|a| format!("{a:.2}"))
                .unwrap_or_else(|| "–".into()),
            cur.ces.responses
        ),
        format!("*CSAT, last {} weeks* `{}`", d.weeks, sparkline(&spark)),
    ];
    if cur.responses() < min_sample {
        lines.push(format!(
            "_Fewer than {min_sample} responses: read these figures with care._"
        ));
    }
    if !worst.is_empty() {
        lines.push(format!("*Lowest {}s:* {}", d.rank_by, worst.join(" · ")));
    }
    if !best.is_empty() {
        lines.push(format!("*Highest {}s:* {}", d.rank_by, best.join(" · ")));
    }
    lines.push(format!(
        "*Followed up:* {} of {} negative ratings ({})",
        cur.follow_up.followed_up,
        cur.follow_up.negatives,
        pct(cur.follow_up.followed_up_percent)
    ));
    if open.is_empty() {
        lines.push("*Not followed up yet:* none".into());
    } else {
        lines.push("*Not followed up yet:*".into());
        for r in open.iter().take(10) {
            let label = format!("{} {}", r.source, r.conversation_id);
            let who = r
                .agent
                .as_deref()
                .map(|a| format!(" ({})", escape(a)))
                .unwrap_or_default();
            lines.push(match &r.url {
                Some(url) => format!("• <{}|{}>{who}", escape(url), escape(&label)),
                None => format!("• {}{who}", escape(&label)),
            });
        }
        if open.len() > 10 {
            lines.push("• … and more: see `csatwatch report` or the API".into());
        }
    }
    let text = lines.join("\n");
    Ok(json!({
        "text": format!("{title}: CSAT {}", pct(cur.csat.percent)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": fit(&text, 2900)}}
        ]
    }))
}
