//! The parameters of a report or a listing, as the CLI's flags and the
//! API's query string both give them: `since`, `until` (`YYYY-MM-DD`,
//! local days), `by`, and filters. A list may repeat its key or separate
//! values with commas. An unknown or malformed parameter is an error that
//! names it (a 400 at the API, exit code 2 at the CLI).

use jiff::tz::TimeZone;

use super::period::{self, add_days, local_date, parse_date};
use super::{GroupBy, RatingFilter, ReportRequest};
use crate::domain::{Sentiment, SurveyKind};

/// Key/value pairs in order.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// From a URL query string.
    pub fn from_query(query: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        self.0.push((key.to_string(), value.into()));
    }

    /// The last value of `key`, if given and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// Every value of `key`, split at commas.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Refuses keys outside `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(format!(
                "unknown parameter {k:?}; known: {}",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{key}: {v:?} is not a whole number"))
            })
            .transpose()
    }

    /// The filters shared by reports and listings.
    pub fn filter(&self) -> Result<RatingFilter, String> {
        let survey = self.list("survey");
        for s in &survey {
            s.parse::<SurveyKind>()
                .map_err(|e| format!("survey: {e}"))?;
        }
        let sentiment = self.list("sentiment");
        for s in &sentiment {
            s.parse::<Sentiment>()
                .map_err(|e| format!("sentiment: {e}"))?;
        }
        let has_comment = match self.get("has_comment") {
            None => None,
            Some("true" | "1" | "yes") => Some(true),
            Some("false" | "0" | "no") => Some(false),
            Some(other) => return Err(format!("has_comment: {other:?} is not true or false")),
        };
        Ok(RatingFilter {
            source: self.list("source"),
            team: self.list("team"),
            agent: self.list("agent"),
            brand: self.list("brand"),
            customer: self.list("customer"),
            tag: self.list("tag"),
            survey,
            sentiment,
            score_min: self.int("score_min")?,
            score_max: self.int("score_max")?,
            has_comment,
            followed_up: None,
        })
    }
}

/// The keys a report accepts.
pub const REPORT_KEYS: &[&str] = &[
    "since", "until", "by", "source", "team", "agent", "brand", "customer", "tag", "survey",
    "format",
];

/// The keys a listing or export accepts.
pub const LISTING_KEYS: &[&str] = &[
    "since",
    "until",
    "source",
    "team",
    "agent",
    "brand",
    "customer",
    "tag",
    "survey",
    "sentiment",
    "score_min",
    "score_max",
    "has_comment",
    "limit",
    "cursor",
    "format",
];

/// A report request: the last 30 local days (today included) by week
/// unless told otherwise.
pub fn report_request(
    params: &Params,
    timezone: &TimeZone,
    min_sample: u64,
    now_ms: i64,
) -> Result<ReportRequest, String> {
    params.only(REPORT_KEYS)?;
    let by = match params.get("by") {
        Some(by) => by.parse::<GroupBy>().map_err(|e| format!("by: {e}"))?,
        None => GroupBy::Week,
    };
    let (since, until) = local_range(params, timezone, now_ms, 30)?;
    Ok(ReportRequest {
        since,
        until,
        timezone: timezone.clone(),
        by,
        filter: params.filter()?,
        min_sample,
    })
}

/// `since` and `until` as local dates; defaults: `until` is tomorrow (so
/// today is included), `since` `default_days` before it.
pub fn local_range(
    params: &Params,
    timezone: &TimeZone,
    now_ms: i64,
    default_days: i64,
) -> Result<(jiff::civil::Date, jiff::civil::Date), String> {
    let until = match params.get("until") {
        Some(d) => parse_date(d).map_err(|e| format!("until: {e}"))?,
        None => add_days(local_date(now_ms, timezone), 1),
    };
    let since = match params.get("since") {
        Some(d) => parse_date(d).map_err(|e| format!("since: {e}"))?,
        None => add_days(until, -default_days),
    };
    if since >= until {
        return Err(format!("since ({since}) must be before until ({until})"));
    }
    Ok((since, until))
}

/// `since`/`until` as Unix ms for listings: all time unless given.
pub fn listing_range(params: &Params, timezone: &TimeZone) -> Result<(i64, i64), String> {
    let since = match params.get("since") {
        Some(d) => {
            period::start_of_day_ms(parse_date(d).map_err(|e| format!("since: {e}"))?, timezone)?
        }
        None => i64::MIN,
    };
    let until = match params.get("until") {
        Some(d) => {
            period::start_of_day_ms(parse_date(d).map_err(|e| format!("until: {e}"))?, timezone)?
        }
        None => i64::MAX,
    };
    if since >= until {
        return Err("since must be before until".into());
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_repeat_or_use_commas_and_unknown_keys_are_named() {
        let p = Params::from_query(Some(
            "team=a,b&team=c&by=team&since=2026-10-01&until=2026-11-01",
        ));
        assert_eq!(p.list("team"), ["a", "b", "c"]);
        let req = report_request(&p, &TimeZone::UTC, 30, 0).unwrap();
        assert_eq!(req.by, GroupBy::Team);
        assert_eq!(req.since.to_string(), "2026-10-01");
        let err =
            report_request(&Params::from_query(Some("tema=a")), &TimeZone::UTC, 30, 0).unwrap_err();
        assert!(err.contains("\"tema\""), "{err}");
        let err = report_request(&Params::from_query(Some("by=year")), &TimeZone::UTC, 30, 0)
            .unwrap_err();
        assert!(err.starts_with("by:"), "{err}");
        let err = Params::from_query(Some("score_min=low"))
            .filter()
            .unwrap_err();
        assert!(err.starts_with("score_min"), "{err}");
    }

    #[test]
    fn the_default_range_is_the_last_30_days_including_today() {
        // 2026-11-30 12:00 UTC.
        let now = 1_796_040_000_000;
        let req = report_request(&Params::default(), &TimeZone::UTC, 30, now).unwrap();
        assert_eq!(req.until.to_string(), "2026-12-01");
        assert_eq!(req.since.to_string(), "2026-11-01");
        assert_eq!(req.by, GroupBy::Week);
    }
}
