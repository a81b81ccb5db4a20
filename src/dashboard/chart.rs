//! Charts as inline SVG, drawn on the server by pure functions: a trend of
//! CSAT % with its 95% band over response bars, and sparklines. Colours come
//! from the page's CSS classes (so dark mode follows), every text is
//! escaped here, and each chart carries a `<title>` and `<desc>` that say in
//! words what it shows; the page adds a table with the same numbers.

use std::fmt::Write as _;

/// One period of a trend chart.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// `2026-W47`, `2026-11-23`…
    pub label: String,
    /// CSAT % (0–100), `None` without responses.
    pub percent: Option<f64>,
    /// The 95% interval of `percent`.
    pub ci95: Option<(f64, f64)>,
    pub responses: i64,
    /// A drop alert was open in this period.
    pub alert: bool,
}

const W: f64 = 640.0;
const H: f64 = 240.0;
const LEFT: f64 = 36.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The trend chart: bars for responses (right axis), a line for CSAT %
/// with its 95% band (left axis, 0–100), a marker over periods with a drop
/// alert. `id` must be unique on the page (it names the title and desc).
pub fn trend_chart(id: &str, title: &str, points: &[TrendPoint]) -> String {
    let id = escape(id);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart trend" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        escape(title),
        escape(&describe(points)),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let y = |percent: f64| TOP + plot_h * (1.0 - percent.clamp(0.0, 100.0) / 100.0);
    // Grid and left axis.
    for p in [0.0, 50.0, 100.0] {
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{p}%</text>"#,
            W - RIGHT,
            y(p),
            y(p),
            LEFT - 4.0,
            y(p) + 4.0
        );
    }
    if points.is_empty() {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">No responses in this period</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return svg;
    }
    let step = plot_w / points.len() as f64;
    let x = |i: usize| LEFT + step * (i as f64 + 0.5);
    let max_responses = points.iter().map(|p| p.responses).max().unwrap_or(0).max(1);
    let _ = write!(
        svg,
        r#"<text class="axis" x="{:.1}" y="{:.1}">{}</text>"#,
        W - RIGHT + 4.0,
        TOP + 4.0,
        max_responses
    );
    // Bars.
    for (i, p) in points.iter().enumerate() {
        let h = plot_h * p.responses as f64 / max_responses as f64;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
            x(i) - step * 0.35,
            TOP + plot_h - h,
            step * 0.7,
            h
        );
    }
    // The band and the line, one piece per run of periods with responses.
    for run in runs(points) {
        let band: Vec<(f64, f64, f64)> = run
            .iter()
            .filter_map(|&i| points[i].ci95.map(|(lo, hi)| (x(i), y(lo), y(hi))))
            .collect();
        if band.len() > 1 {
            let mut d = String::new();
            for (bx, _, hi) in &band {
                let _ = write!(d, "{bx:.1},{hi:.1} ");
            }
            for (bx, lo, _) in band.iter().rev() {
                let _ = write!(d, "{bx:.1},{lo:.1} ");
            }
            let _ = write!(svg, r#"<polygon class="band" points="{}"/>"#, d.trim_end());
        }
        let line: Vec<String> = run
            .iter()
            .filter_map(|&i| {
                points[i]
                    .percent
                    .map(|p| format!("{:.1},{:.1}", x(i), y(p)))
            })
            .collect();
        if line.len() > 1 {
            let _ = write!(
                svg,
                r#"<polyline class="line" points="{}"/>"#,
                line.join(" ")
            );
        }
        for &i in &run {
            if let Some(p) = points[i].percent {
                let _ = write!(
                    svg,
                    r#"<circle class="dot" cx="{:.1}" cy="{:.1}" r="3"/>"#,
                    x(i),
                    y(p)
                );
            }
        }
    }
    // Alert markers and labels (every k-th label, so they never overlap).
    let every = points.len().div_ceil(8);
    for (i, p) in points.iter().enumerate() {
        if p.alert {
            let (cx, cy) = (x(i), TOP);
            let _ = write!(
                svg,
                r#"<path class="alert" d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z"><title>Drop alert in {}</title></path>"#,
                cx - 5.0,
                cy,
                cx + 5.0,
                cy,
                cx,
                cy + 8.0,
                escape(&p.label)
            );
        }
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x(i),
                H - 8.0,
                escape(&p.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The chart in words, for its `<desc>`.
pub fn describe(points: &[TrendPoint]) -> String {
    let with: Vec<&TrendPoint> = points.iter().filter(|p| p.percent.is_some()).collect();
    let (Some(first), Some(last)) = (with.first(), with.last()) else {
        return "No responses in this period.".to_string();
    };
    let responses: i64 = points.iter().map(|p| p.responses).sum();
    let alerts = points.iter().filter(|p| p.alert).count();
    let mut text = format!(
        "CSAT went from {:.1}% in {} to {:.1}% in {}, over {} periods and {} responses.",
        first.percent.unwrap_or_default(),
        first.label,
        last.percent.unwrap_or_default(),
        last.label,
        points.len(),
        responses
    );
    if alerts > 0 {
        let _ = write!(text, " {alerts} period(s) had a drop alert.");
    }
    text
}

/// A small line of `values` (gaps for `None`), scaled to its own range.
pub fn sparkline(label: &str, values: &[Option<f64>]) -> String {
    let (w, h) = (100.0, 24.0);
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let mut svg = format!(
        r#"<svg class="spark" viewBox="0 0 {w} {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(label)
    );
    if known.len() > 1 {
        let lo = known.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi - lo < 1e-9 { 1.0 } else { hi - lo };
        let step = w / (values.len().max(2) - 1) as f64;
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let px = step * i as f64;
                    let py = 2.0 + (h - 4.0) * (1.0 - (v - lo) / span);
                    let _ = write!(d, "{}{px:.1},{py:.1} ", if pen_down { "L" } else { "M" });
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(svg, r#"<path class="sparkline" d="{}"/>"#, d.trim_end());
    }
    svg.push_str("</svg>");
    svg
}

/// Runs of consecutive indices whose points have a percent.
fn runs(points: &[TrendPoint]) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    let mut run = Vec::new();
    for (i, p) in points.iter().enumerate() {
        if p.percent.is_some() {
            run.push(i);
        } else if !run.is_empty() {
            all.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        all.push(run);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, percent: Option<f64>, responses: i64) -> TrendPoint {
        TrendPoint {
            label: label.into(),
            percent,
            ci95: percent.map(|p| (p - 5.0, p + 5.0)),
            responses,
            alert: false,
        }
    }

    #[test]
    fn the_trend_has_a_bar_per_period_and_a_dot_per_period_with_responses() {
        let svg = trend_chart(
            "t",
            "CSAT by week",
            &[
                point("2026-W45", Some(80.0), 40),
                point("2026-W46", None, 0),
                point("2026-W47", Some(90.0), 20),
                point("2026-W48", Some(70.0), 10),
            ],
        );
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 4);
        assert_eq!(svg.matches("<circle class=\"dot\"").count(), 3);
        // The gap splits the line: one polyline for W47–W48 only.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<polygon class=\"band\"").count(), 1);
        assert!(svg.contains(r#"aria-labelledby="t-t t-d""#));
        assert!(svg.contains("CSAT went from 80.0% in 2026-W45 to 70.0% in 2026-W48"));
    }

    #[test]
    fn the_line_is_placed_on_a_0_to_100_axis() {
        let svg = trend_chart(
            "t",
            "x",
            &[point("a", Some(100.0), 1), point("b", Some(0.0), 1)],
        );
        // 100% sits on the top edge of the plot, 0% on the bottom.
        assert!(svg.contains(&format!("cy=\"{:.1}\"", TOP)), "{svg}");
        assert!(svg.contains(&format!("cy=\"{:.1}\"", H - BOTTOM)), "{svg}");
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let mut p = point("<script>alert(1)</script>", Some(50.0), 3);
        p.alert = true;
        let svg = trend_chart("t", "A & B <b>", &[p]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("A &amp; B &lt;b&gt;"));
        assert!(svg.contains("Drop alert in"));
        assert!(!sparkline("\"><x", &[Some(1.0), Some(2.0)]).contains("\"><x"));
    }

    #[test]
    fn an_empty_trend_says_so() {
        let svg = trend_chart("t", "x", &[]);
        assert!(svg.contains("No responses in this period"));
        assert_eq!(describe(&[]), "No responses in this period.");
    }

    #[test]
    fn a_sparkline_lifts_the_pen_over_gaps() {
        let svg = sparkline("s", &[Some(1.0), Some(2.0), None, Some(3.0), Some(1.0)]);
        assert_eq!(svg.matches('M').count(), 2, "{svg}");
        assert!(!sparkline("s", &[Some(1.0)]).contains("<path"));
    }
}
