//! A report as text: an aligned table for a terminal (with Unicode
//! sparklines) and CSV with one line per group plus the total. JSON is the
//! report's own serde shape.

use std::fmt::Write as _;

use super::export::csv_text;
use super::{Report, ReportRow, Trend};

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline of some values; a missing value is a space. Scaled between
/// the smallest and largest value shown; all equal gives a flat line.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let (lo, hi) = present
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if hi - lo < 1e-9 => BARS[3],
            Some(v) => BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize],
        })
        .collect()
}

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}

fn signed(v: Option<f64>, trend: Option<Trend>) -> String {
    match v {
        None => "–".into(),
        Some(v) => {
            let mark = match trend {
                Some(Trend::Up) => "▲",
                Some(Trend::Down) => "▼",
                None => " ",
            };
            format!("{mark}{v:+.1}")
        }
    }
}

fn ci(v: Option<[f64; 2]>) -> String {
    v.map(|[lo, hi]| format!("{lo:.0}–{hi:.0}"))
        .unwrap_or_else(|| "–".into())
}

/// The table a person reads in a terminal.
pub fn table(report: &Report) -> String {
    let timed = report.by.unit().is_some();
    let mut header = vec![
        report.by.as_str().to_string(),
        "CSAT %".into(),
        "95% CI".into(),
        "n".into(),
        "NPS".into(),
        "n".into(),
        "CES".into(),
        "neg".into(),
        "followed".into(),
    ];
    if timed {
        header.push("Δ CSAT".into());
        header.push("Δ NPS".into());
    }
    header.push("trend".into());
    let mut lines: Vec<Vec<String>> = vec![header];
    let csat: Vec<Option<f64>> = report.rows.iter().map(|r| r.figures.csat.percent).collect();
    let cells = |r: &ReportRow, trend: String| {
        let f = &r.figures;
        let mut cells = vec![
            format!("{}{}", r.group, if r.low_sample { " *" } else { "" }),
            num(f.csat.percent),
            ci(f.csat.ci95),
            f.csat.responses.to_string(),
            num(f.nps.score),
            f.nps.responses.to_string(),
            f.ces
                .average
                .map(|a| format!("{a:.2}"))
                .unwrap_or_else(|| "–".into()),
            f.follow_up.negatives.to_string(),
            f.follow_up
                .followed_up_percent
                .map(|p| format!("{p:.0}%"))
                .unwrap_or_else(|| "–".into()),
        ];
        if timed {
            let c = r.change.clone().unwrap_or_default();
            cells.push(signed(c.csat_points, c.csat_trend));
            cells.push(signed(c.nps_points, c.nps_trend));
        }
        cells.push(trend);
        cells
    };
    for (i, row) in report.rows.iter().enumerate() {
        let trend = if timed {
            // The CSAT % of the last eight periods up to this one.
            sparkline(&csat[i.saturating_sub(7)..=i])
        } else {
            let filled = row
                .figures
                .csat
                .percent
                .map(|p| (p / 10.0).round() as usize);
            filled
                .map(|n| format!("{}{}", "█".repeat(n), "·".repeat(10 - n.min(10))))
                .unwrap_or_default()
        };
        lines.push(cells(row, trend));
    }
    let total = ReportRow {
        group: "total".into(),
        figures: report.total.figures.clone(),
        low_sample: report.total.low_sample,
        change: None,
    };
    let spark = if timed {
        sparkline(&csat)
    } else {
        String::new()
    };
    let mut total_cells = cells(&total, spark);
    if timed {
        total_cells[9] = String::new();
        total_cells[10] = String::new();
    }
    lines.push(total_cells);

    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "{} to {} (until, exclusive) in {}, by {}\n\n",
        report.since, report.until, report.timezone, report.by
    );
    for (i, line) in lines.iter().enumerate() {
        if i == lines.len() - 1 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (columns - 1);
            let _ = writeln!(out, "{}", "─".repeat(rule));
        }
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 || c == columns - 1 {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
            text.push_str("  ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
        if i == 0 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (columns - 1);
            let _ = writeln!(out, "{}", "─".repeat(rule));
        }
    }
    let _ = writeln!(
        out,
        "\n* fewer than {} responses (low sample). ▲/▼: a significant change (p < 0.05) against the previous period.",
        report.min_sample
    );
    out
}

/// The CSV header of [`csv`].
pub const CSV_COLUMNS: &[&str] = &[
    "group",
    "csat_responses",
    "csat_positive",
    "csat_neutral",
    "csat_negative",
    "csat_percent",
    "csat_ci95_low",
    "csat_ci95_high",
    "nps_responses",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "nps_score",
    "nps_ci95_low",
    "nps_ci95_high",
    "ces_responses",
    "ces_average",
    "ces_ci95_low",
    "ces_ci95_high",
    "ces_easy_percent",
    "negatives",
    "alerted",
    "acknowledged",
    "followed_up",
    "recovered",
    "followed_up_percent",
    "median_minutes_to_ack",
    "median_minutes_to_follow_up",
    "low_sample",
    "csat_change_points",
    "csat_trend",
    "nps_change_points",
    "nps_trend",
];

/// One line per group, then `total`; empty cells for null measures.
pub fn csv(report: &Report) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    let o = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let total = ReportRow {
        group: "total".into(),
        figures: report.total.figures.clone(),
        low_sample: report.total.low_sample,
        change: None,
    };
    for row in report.rows.iter().chain(std::iter::once(&total)) {
        let f = &row.figures;
        let c = row.change.clone().unwrap_or_default();
        let trend = |t: Option<Trend>| match t {
            Some(Trend::Up) => "up".to_string(),
            Some(Trend::Down) => "down".to_string(),
            None => String::new(),
        };
        csv_text(&mut out, Some(&row.group));
        let cells = [
            f.csat.responses.to_string(),
            f.csat.positive.to_string(),
            f.csat.neutral.to_string(),
            f.csat.negative.to_string(),
            o(f.csat.percent),
            o(f.csat.ci95.map(|c| c[0])),
            o(f.csat.ci95.map(|c| c[1])),
            f.nps.responses.to_string(),
            f.nps.promoters.to_string(),
            f.nps.passives.to_string(),
            f.nps.detractors.to_string(),
            o(f.nps.score),
            o(f.nps.ci95.map(|c| c[0])),
            o(f.nps.ci95.map(|c| c[1])),
            f.ces.responses.to_string(),
            o(f.ces.average),
            o(f.ces.ci95.map(|c| c[0])),
            o(f.ces.ci95.map(|c| c[1])),
            o(f.ces.easy_percent),
            f.follow_up.negatives.to_string(),
            f.follow_up.alerted.to_string(),
            f.follow_up.acknowledged.to_string(),
            f.follow_up.followed_up.to_string(),
            f.follow_up.recovered.to_string(),
            o(f.follow_up.followed_up_percent),
            o(f.follow_up.median_minutes_to_ack),
            o(f.follow_up.median_minutes_to_follow_up),
            row.low_sample.to_string(),
            o(c.csat_points),
            trend(c.csat_trend),
            o(c.nps_points),
            trend(c.nps_trend),
        ];
        for cell in cells {
            out.push(',');
            out.push_str(&cell);
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_between_the_extremes() {
        assert_eq!(sparkline(&[Some(0.0), Some(50.0), Some(100.0)]), "▁▅█");
        assert_eq!(sparkline(&[Some(80.0), None, Some(80.0)]), "▄ ▄");
        assert_eq!(sparkline(&[]), "");
    }
}
