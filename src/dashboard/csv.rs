//! CSV downloads of what a page shows. Cells that a spreadsheet would run
//! as a formula (`=`, `+`, `-`, `@` first, and not a number) are prefixed with `'`: comments
//! are customer text.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::filters::Filters;
use super::pages::fmt_time;
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
pub fn negatives(rows: &[QueueRow], f: &Filters) -> Response {
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
        let opt_time = |t: Option<i64>| t.map(fmt_time).unwrap_or_default();
        line(
            &mut out,
            &[
                &r.id.to_string(),
                &r.state,
                &fmt_time(r.rated_at),
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
