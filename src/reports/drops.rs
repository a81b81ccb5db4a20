//! Drop alerts: CSAT (or NPS) over a rolling window of whole local days
//! (default 7) against the days just before it (default 28), overall and
//! per team or source as configured. Evaluated once a day.
//!
//! A group enters the alert state when all of these hold:
//! - the window has at least `min_sample` responses and the baseline
//!   `baseline_min_sample`;
//! - the drop is at least `min_drop` points (5 for CSAT, 10 for NPS);
//! - a one-sided test says the window is lower with z ≤ −2.326 (α = 0.01):
//!   the pooled two-proportion z-test for CSAT, the unpooled difference of
//!   NPS means for NPS;
//! - and, when several groups are evaluated at once, the Benjamini–Hochberg
//!   adjusted p-value is ≤ 0.05, so 40 teams do not raise two false alarms
//!   a day.
//!
//! It leaves the alert state (a recovery message) when the window is no
//! longer lower even at α = 0.10 (z > −1.282) at `recover_after`
//! consecutive daily evaluations (default 2): a day that is neither good
//! nor a new drop starts the count again, so a metric hovering around the
//! threshold does not post drop, recovery, drop…. Both changes are conditional
//! updates of the group's state row, made in the transaction that writes the
//! message: whichever replica makes the change posts, once per episode.

use jiff::civil::Date;
use serde_json::json;

use super::period::{Period, add_days};
use super::schedule::{Every, Schedule};
use super::stats::{self, Comparison};
use super::{Figures, ReportError, sum_days, tally, tally_days};
use crate::domain::{Sentiment, SurveyKind};
use crate::rules::{RatingFacts, Routing, Rules};
use crate::settings::{DropAlertSettings, Settings, parse_local_time};
use crate::sinks::slack::text::escape;
use crate::store::{GroupColumn, NewReportMessage, Store};

/// z at or below which a drop fires (one-sided α = 0.01).
pub const Z_FIRE: f64 = -2.326_348;
/// z above which an alerted group recovers (one-sided α = 0.10).
pub const Z_RECOVER: f64 = -1.281_552;
/// The false-discovery rate across groups evaluated together.
pub const FDR: f64 = 0.05;

pub fn schedule(d: &DropAlertSettings) -> Schedule {
    let (hour, minute) = parse_local_time(&d.at).unwrap_or((9, 0));
    Schedule {
        every: Every::Daily,
        hour,
        minute,
    }
}

fn days(d: std::time::Duration) -> i64 {
    (d.as_secs() / 86_400) as i64
}

/// One group's evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `overall`, `team:Billing`, `source:zendesk`.
    pub group: String,
    pub window: Figures,
    pub baseline: Figures,
    pub comparison: Option<Comparison>,
    /// Passed every gate and the test.
    pub fires: bool,
    pub recovers: bool,
}

fn metric_of(
    window: &Figures,
    baseline: &Figures,
    nps: bool,
) -> (u64, u64, Option<f64>, Option<f64>) {
    if nps {
        (
            window.nps.responses,
            baseline.nps.responses,
            window.nps.score,
            baseline.nps.score,
        )
    } else {
        (
            window.csat.responses,
            baseline.csat.responses,
            window.csat.percent,
            baseline.csat.percent,
        )
    }
}

/// Evaluates a drop alert for the window ending before local `today`.
pub async fn evaluate(
    store: &Store,
    settings: &Settings,
    d: &DropAlertSettings,
    today: Date,
) -> Result<Vec<Evaluation>, ReportError> {
    let tz = settings.reports.time_zone();
    let nps = d.metric == "nps";
    let window = Period {
        label: String::new(),
        start: add_days(today, -days(d.window)),
        end: today,
    };
    let baseline = Period {
        label: String::new(),
        start: add_days(window.start, -days(d.baseline)),
        end: window.start,
    };
    let ranges = [
        window.range_ms(&tz).map_err(ReportError::Invalid)?,
        baseline.range_ms(&tz).map_err(ReportError::Invalid)?,
    ];
    let filter = d.filter().to_filter();
    let min_sample = d.min_sample.unwrap_or(settings.reports.min_sample);
    let min_drop = d.min_drop.unwrap_or(if nps { 10.0 } else { 5.0 });

    let mut out = Vec::new();
    for per in &d.per {
        let mut pairs: Vec<(String, Figures, Figures)> = Vec::new();
        if per == "overall" {
            let days = tally_days(store, &tz, baseline.start, window.end, &filter).await?;
            pairs.push((
                "overall".into(),
                sum_days(&days, &window).figures(),
                sum_days(&days, &baseline).figures(),
            ));
        } else {
            let column = if per == "team" {
                GroupColumn::Team
            } else {
                GroupColumn::Source
            };
            let now = tally(store, &ranges[..1], column, &filter).await?;
            let before = tally(store, &ranges[1..], column, &filter).await?;
            for (g, t) in &now {
                if g.is_empty() {
                    continue;
                }
                let b = before.get(g).map(|t| t.figures()).unwrap_or_default();
                pairs.push((format!("{per}:{g}"), t.figures(), b));
            }
        }
        let comparisons: Vec<Option<Comparison>> = pairs
            .iter()
            .map(|(_, w, b)| {
                if nps {
                    stats::compare_nps(w.nps_counts(), b.nps_counts())
                } else {
                    stats::compare_proportions(
                        w.csat.positive,
                        w.csat.responses,
                        b.csat.positive,
                        b.csat.responses,
                    )
                }
            })
            .collect();
        let p: Vec<f64> = comparisons
            .iter()
            .map(|c| c.map(|c| c.p_lower).unwrap_or(1.0))
            .collect();
        let adjusted = stats::benjamini_hochberg(&p);
        for (i, (group, w, b)) in pairs.into_iter().enumerate() {
            let (n_w, n_b, v_w, v_b) = metric_of(&w, &b, nps);
            let c = comparisons[i];
            let big_enough = n_w >= min_sample && n_b >= d.baseline_min_sample;
            let dropped = matches!((v_w, v_b), (Some(a), Some(b)) if b - a >= min_drop);
            let fires =
                big_enough && dropped && c.is_some_and(|c| c.z <= Z_FIRE) && adjusted[i] <= FDR;
            let recovers = n_w >= min_sample && c.is_none_or(|c| c.z > Z_RECOVER);
            out.push(Evaluation {
                group,
                window: w,
                baseline: b,
                comparison: c,
                fires,
                recovers,
            });
        }
    }
    Ok(out)
}

/// Where a drop alert for `group` goes: its channel, else the rules as for
/// a negative rating of the group's source or team, else the default.
pub fn channel_for(settings: &Settings, d: &DropAlertSettings, group: &str) -> Option<String> {
    if let Some(c) = &d.channel {
        return Some(c.clone());
    }
    let (source, team) = match group.split_once(':') {
        Some(("source", s)) => (s, None),
        Some(("team", t)) => (d.source.first().map(String::as_str).unwrap_or(""), Some(t)),
        _ => (d.source.first().map(String::as_str).unwrap_or(""), None),
    };
    let facts = RatingFacts {
        source,
        sentiment: Sentiment::Negative,
        survey: if d.metric == "nps" {
            SurveyKind::Nps
        } else {
            SurveyKind::Csat
        },
        score: 0,
        tags: &[],
        team,
        brand: None,
        agent: None,
        has_comment: false,
        // A drop is about a group, never one customer.
        company: None,
        previous_negative_ms_ago: None,
    };
    match Rules::from_settings(settings).route(&facts) {
        Routing::Alert(routes) => routes.first().map(|r| r.channel.clone()),
        _ => settings.slack.default_channel.clone(),
    }
}

fn describe(d: &DropAlertSettings, e: &Evaluation) -> String {
    let nps = d.metric == "nps";
    let (n_w, n_b, v_w, v_b) = metric_of(&e.window, &e.baseline, nps);
    let fmt = |v: Option<f64>| {
        v.map(|v| {
            if nps {
                format!("{v:+.0}")
            } else {
                format!("{v:.1}%")
            }
        })
        .unwrap_or_else(|| "–".into())
    };
    let stats = e
        .comparison
        .map(|c| {
            format!(
                "; {:+.1} points, z = {:.2}, p = {:.4}",
                c.difference, c.z, c.p_lower
            )
        })
        .unwrap_or_default();
    format!(
        "{} over the last {} days: {} (n={}) against {} (n={}) in the {} days before{}",
        if nps { "NPS" } else { "CSAT" },
        days(d.window),
        fmt(v_w),
        n_w,
        fmt(v_b),
        n_b,
        days(d.baseline),
        stats
    )
}

fn group_label(group: &str) -> String {
    match group.split_once(':') {
        Some((kind, value)) => format!("{kind} {}", escape(value)),
        None => group.to_string(),
    }
}

/// Applies evaluations: a group entering the alert state gets a drop
/// message, one leaving it a recovery message. Returns messages written.
pub async fn apply(
    store: &Store,
    settings: &Settings,
    d: &DropAlertSettings,
    evaluations: &[Evaluation],
    now_ms: i64,
) -> Result<u64, ReportError> {
    let mut written = 0;
    for e in evaluations {
        if !e.fires && !e.recovers {
            // Neither a drop nor good: a run of good days starts again.
            let mut tx = store.begin().await?;
            tx.reset_drop_recovery(&d.name, &e.group).await?;
            tx.commit().await?;
            continue;
        }
        let Some(channel) = channel_for(settings, d, &e.group) else {
            tracing::warn!(drop_alert = %d.name, group = %e.group, "no channel for a drop alert (set channel or slack.default_channel)");
            continue;
        };
        let z = e.comparison.map(|c| c.z).unwrap_or(0.0);
        let mut tx = store.begin().await?;
        let (kind, title) = if e.fires {
            if !tx.enter_drop_state(&d.name, &e.group, z, now_ms).await? {
                // Still dropped: the same episode, and not a good day.
                tx.reset_drop_recovery(&d.name, &e.group).await?;
                tx.commit().await?;
                continue;
            }
            (
                "drop",
                format!(
                    ":chart_with_downwards_trend: {} dropped: {} ({})",
                    metric_name(d),
                    group_label(&e.group),
                    escape(&d.name)
                ),
            )
        } else {
            if !tx
                .leave_drop_state(&d.name, &e.group, z, now_ms, d.recover_after.max(1))
                .await?
            {
                // Not in the alert state, or a good day short of
                // `recover_after` in a row (counted).
                tx.commit().await?;
                continue;
            }
            (
                "recovery",
                format!(
                    ":white_check_mark: {} recovered: {} ({})",
                    metric_name(d),
                    group_label(&e.group),
                    escape(&d.name)
                ),
            )
        };
        let text = format!("{title}\n{}", describe(d, e));
        let body = json!({
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        });
        tx.insert_report_message(&NewReportMessage {
            kind,
            name: d.name.clone(),
            period: format!("{}|{now_ms}", e.group),
            channel,
            body: body.to_string(),
            created_at_ms: now_ms,
        })
        .await?;
        tx.commit().await?;
        tracing::info!(drop_alert = %d.name, group = %e.group, kind, z, "drop alert state changed");
        written += 1;
    }
    Ok(written)
}

/// A drop-alert episode of one group: from its drop message to its
/// recovery message (`None`: still open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    pub name: String,
    /// `overall`, `team:Billing`, `source:zendesk`.
    pub group: String,
    pub from_ms: i64,
    pub until_ms: Option<i64>,
}

impl Episode {
    /// Whether the episode was open at some time in `[from_ms, until_ms)`.
    pub fn overlaps(&self, from_ms: i64, until_ms: i64) -> bool {
        self.from_ms < until_ms && self.until_ms.is_none_or(|end| end > from_ms)
    }

    /// `overall`, `team Billing`.
    pub fn group_text(&self) -> String {
        self.group.replacen(':', " ", 1)
    }
}

/// Episodes from the drop and recovery messages, oldest first (as
/// [`Store::drop_alert_messages`] gives them).
pub fn episodes(messages: &[(String, String, String, i64)]) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    for (kind, name, group, at) in messages {
        let open = out
            .iter_mut()
            .rev()
            .find(|e| &e.name == name && &e.group == group && e.until_ms.is_none());
        match (kind.as_str(), open) {
            ("drop", None) => out.push(Episode {
                name: name.clone(),
                group: group.clone(),
                from_ms: *at,
                until_ms: None,
            }),
            ("recovery", Some(e)) => e.until_ms = Some(*at),
            _ => {}
        }
    }
    out
}

fn metric_name(d: &DropAlertSettings) -> &'static str {
    if d.metric == "nps" { "NPS" } else { "CSAT" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_pair_each_drop_with_its_recovery() {
        let m = |kind: &str, group: &str, at: i64| {
            (kind.to_string(), "csat".to_string(), group.to_string(), at)
        };
        let e = episodes(&[
            m("drop", "overall", 10),
            m("drop", "team:Billing", 15),
            m("recovery", "overall", 20),
            m("drop", "overall", 30),
        ]);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].from_ms, e[0].until_ms), (10, Some(20)));
        assert_eq!(
            (e[1].group_text().as_str(), e[1].until_ms),
            ("team Billing", None)
        );
        assert_eq!((e[2].from_ms, e[2].until_ms), (30, None));
        assert!(e[0].overlaps(0, 11) && e[0].overlaps(19, 25) && !e[0].overlaps(20, 25));
        assert!(e[2].overlaps(1_000, 2_000));
    }
}
