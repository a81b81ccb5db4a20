//! The filters of a dashboard view, read from and written back to the URL
//! so a view can be shared: `?since=2026-11-01&until=2026-12-01&team=Billing`.
//! Days are local days in `reports.timezone`, as in every report.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::reports::RatingFilter;
use crate::reports::period;

/// The query string as sent; empty fields count as absent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterQuery {
    pub since: Option<String>,
    pub until: Option<String>,
    pub source: Option<String>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub survey: Option<String>,
    pub state: Option<String>,
    pub score: Option<String>,
    /// `csv` for a download of what the page shows.
    pub format: Option<String>,
}

/// Validated filters. The period is `since` (inclusive) to `until`
/// (exclusive), whole local days.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    pub since: Date,
    pub until: Date,
    /// The period in Unix ms, `[since_ms, until_ms)`.
    pub since_ms: i64,
    pub until_ms: i64,
    pub source: Option<String>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub survey: Option<String>,
    pub state: Option<String>,
    pub score: Option<i64>,
}

/// The queue's states, in the order the filter offers them.
pub const STATES: [(&str, &str); 5] = [
    ("new", "New"),
    ("escalated", "Escalated"),
    ("acknowledged", "Acknowledged"),
    ("followed_up", "Followed up"),
    ("recovered", "Recovered"),
];

/// How long the default period is.
pub const DEFAULT_DAYS: i64 = 30;

fn present(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Filters {
    /// Validates `q`; the default period is the last 30 days including
    /// today in `tz`. The error names the parameter and what it should look like.
    pub fn parse(q: &FilterQuery, now_ms: i64, tz: &TimeZone) -> Result<Filters, String> {
        let today = period::local_date(now_ms, tz);
        let date = |name: &str, v: &Option<String>| -> Result<Option<Date>, String> {
            present(v)
                .map(|s| {
                    period::parse_date(&s)
                        .map_err(|_| format!("{name} must be a date like 2026-11-01, not {s:?}"))
                })
                .transpose()
        };
        let until = date("until", &q.until)?.unwrap_or(period::add_days(today, 1));
        let since = date("since", &q.since)?.unwrap_or(period::add_days(until, -DEFAULT_DAYS));
        if since >= until {
            return Err("since must be before until (until is not included)".into());
        }
        if period::days_between(since, until) > 3660 {
            return Err("the period may be at most ten years".into());
        }
        let since_ms = period::start_of_day_ms(since, tz)?;
        let until_ms = period::start_of_day_ms(until, tz)?;
        let state = present(&q.state);
        if let Some(s) = &state
            && !STATES.iter().any(|(k, _)| k == s)
        {
            return Err(format!(
                "state must be one of new, escalated, acknowledged, followed_up, recovered, not {s:?}"
            ));
        }
        let score = present(&q.score)
            .map(|s| {
                s.parse::<i64>()
                    .map_err(|_| format!("score must be a whole number, not {s:?}"))
            })
            .transpose()?;
        Ok(Filters {
            since,
            until,
            since_ms,
            until_ms,
            source: present(&q.source),
            team: present(&q.team),
            agent: present(&q.agent),
            survey: present(&q.survey),
            state,
            score,
        })
    }

    pub fn since_text(&self) -> String {
        self.since.to_string()
    }

    pub fn until_text(&self) -> String {
        self.until.to_string()
    }

    /// The days included, for people ("1 Nov 2026 – 30 Nov 2026").
    pub fn period_text(&self) -> String {
        let last = period::add_days(self.until, -1);
        format!(
            "{} – {}",
            self.since.strftime("%-d %b %Y"),
            last.strftime("%-d %b %Y")
        )
    }

    /// Length in days.
    pub fn days(&self) -> i64 {
        period::days_between(self.since, self.until)
    }

    /// The ratings these filters select, for the reports (without `state`,
    /// which only the queue knows). Matching is the reports' own:
    /// case-insensitive.
    pub fn rating_filter(&self) -> RatingFilter {
        let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
        RatingFilter {
            source: one(&self.source),
            team: one(&self.team),
            agent: one(&self.agent),
            survey: one(&self.survey),
            score_min: self.score,
            score_max: self.score,
            ..RatingFilter::default()
        }
    }

    /// The query string of these filters (without `state`/`score` when
    /// `common_only`), for links between pages.
    pub fn query(&self, common_only: bool) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("since", &self.since_text());
        q.append_pair("until", &self.until_text());
        for (k, v) in [
            ("source", &self.source),
            ("team", &self.team),
            ("agent", &self.agent),
            ("survey", &self.survey),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        if !common_only {
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            if let Some(s) = self.score {
                q.append_pair("score", &s.to_string());
            }
        }
        q.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_30: i64 = 1_795_996_800_000; // 2026-11-30T00:00:00Z

    #[test]
    fn the_default_period_is_the_last_30_days_including_today() {
        let f =
            Filters::parse(&FilterQuery::default(), NOV_30 + 3_600_000, &TimeZone::UTC).unwrap();
        assert_eq!(f.since_text(), "2026-11-01");
        assert_eq!(f.until_text(), "2026-12-01");
        assert_eq!(f.since_ms, NOV_30 - 29 * 86_400_000);
        assert_eq!(f.until_ms - f.since_ms, 30 * 86_400_000);
        assert_eq!(f.period_text(), "1 Nov 2026 – 30 Nov 2026");
        // Days are local: in Berlin (UTC+1 in November) a day starts an hour earlier.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let b = Filters::parse(&FilterQuery::default(), NOV_30 + 3_600_000, &berlin).unwrap();
        assert_eq!(b.since_ms, f.since_ms - 3_600_000);
    }

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let q = FilterQuery {
            since: Some("2026-10-01".into()),
            until: Some("2026-11-01".into()),
            team: Some("Billing & Co".into()),
            agent: Some(" ".into()),
            state: Some("new".into()),
            score: Some("1".into()),
            ..Default::default()
        };
        let f = Filters::parse(&q, NOV_30, &TimeZone::UTC).unwrap();
        assert_eq!(f.agent, None);
        assert_eq!(
            f.query(false),
            "since=2026-10-01&until=2026-11-01&team=Billing+%26+Co&state=new&score=1"
        );
        assert_eq!(
            f.query(true),
            "since=2026-10-01&until=2026-11-01&team=Billing+%26+Co"
        );
    }

    #[test]
    fn bad_filters_are_named() {
        let bad = |q: FilterQuery| Filters::parse(&q, NOV_30, &TimeZone::UTC).unwrap_err();
        assert!(
            bad(FilterQuery {
                since: Some("yesterday".into()),
                ..Default::default()
            })
            .starts_with("since")
        );
        assert!(
            bad(FilterQuery {
                state: Some("open".into()),
                ..Default::default()
            })
            .starts_with("state")
        );
        assert!(
            bad(FilterQuery {
                score: Some("x".into()),
                ..Default::default()
            })
            .starts_with("score")
        );
        assert!(
            bad(FilterQuery {
                since: Some("2026-11-02".into()),
                until: Some("2026-11-01".into()),
                ..Default::default()
            })
            .starts_with("since must be before")
        );
    }
}
