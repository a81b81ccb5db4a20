//! Calendar periods in the reports' time zone: days (`YYYY-MM-DD`), ISO
//! weeks (`YYYY-Www`, Monday first) and months (`YYYY-MM`), each turned
//! into a half-open range of Unix milliseconds the store can compare
//! `rated_at` with. A week in `Europe/Berlin` starts an hour or two before
//! the same week in UTC; this module is where that difference lives.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A calendar unit to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Day,
    Week,
    Month,
}

/// One period: its label and its local dates `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub start: Date,
    pub end: Date,
}

impl Period {
    /// Its range in Unix milliseconds, `[from, to)`.
    pub fn range_ms(&self, tz: &TimeZone) -> Result<(i64, i64), String> {
        Ok((
            start_of_day_ms(self.start, tz)?,
            start_of_day_ms(self.end, tz)?,
        ))
    }

    /// Length in days.
    pub fn days(&self) -> i64 {
        days_between(self.start, self.end)
    }
}

/// Unix milliseconds when `date` begins in `tz` (a day that begins in a
/// DST gap begins at the first instant that exists).
pub fn start_of_day_ms(date: Date, tz: &TimeZone) -> Result<i64, String> {
    let zoned = date
        .to_zoned_datetime(tz.clone())
        .map_err(|e| format!("{date} in the reports time zone: {e}"))?;
    Ok(zoned.timestamp().as_millisecond())
}

/// The local date of a Unix-millisecond instant.
pub fn local_date(ms: i64, tz: &TimeZone) -> Date {
    let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    tz.to_datetime(ts).date()
}

pub fn days_between(a: Date, b: Date) -> i64 {
    (b.duration_since(a).as_secs() / 86_400).max(0)
}

pub fn add_days(date: Date, days: i64) -> Date {
    date.saturating_add(days.days())
}

/// The label of the unit that contains `date`.
pub fn label(unit: Unit, date: Date) -> String {
    match unit {
        Unit::Day => date.strftime("%Y-%m-%d").to_string(),
        Unit::Week => {
            let week = date.iso_week_date();
            format!("{:04}-W{:02}", week.year(), week.week())
        }
        Unit::Month => format!("{:04}-{:02}", date.year(), date.month()),
    }
}

/// The first day of the unit that contains `date`.
pub fn unit_start(unit: Unit, date: Date) -> Date {
    match unit {
        Unit::Day => date,
        Unit::Week => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            add_days(date, -back)
        }
        Unit::Month => date.first_of_month(),
    }
}

/// The first day of the next unit after the one containing `date`.
pub fn unit_end(unit: Unit, date: Date) -> Date {
    match unit {
        Unit::Day => add_days(date, 1),
        Unit::Week => add_days(unit_start(Unit::Week, date), 7),
        Unit::Month => add_days(date.last_of_month(), 1),
    }
}

/// The periods of `unit` covering `[since, until)`, the first and last
/// clipped to the range (so a report from a Wednesday starts with a short
/// week, still labelled with its ISO week).
pub fn periods(unit: Unit, since: Date, until: Date) -> Vec<Period> {
    let mut out = Vec::new();
    let mut start = since;
    while start < until {
        let end = unit_end(unit, start).min(until);
        out.push(Period {
            label: label(unit, start),
            start,
            end,
        });
        start = end;
    }
    out
}

/// The period a change is measured against: the whole unit before a whole
/// unit, or the same number of days just before a clipped one.
pub fn previous(unit: Unit, period: &Period) -> Period {
    let whole = unit_start(unit, period.start) == period.start
        && unit_end(unit, period.start) == period.end;
    let start = if whole {
        unit_start(unit, add_days(period.start, -1))
    } else {
        add_days(period.start, -period.days())
    };
    Period {
        label: label(unit, start),
        start,
        end: period.start,
    }
}

/// Parses an IANA time-zone name (`UTC`, `Europe/Berlin`).
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("{name:?} is not a known IANA time zone; use a name such as UTC or Europe/Berlin")
    })
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Result<Date, String> {
    text.trim()
        .parse::<Date>()
        .map_err(|_| format!("{text:?} is not a date; use YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn labels_follow_iso_weeks_at_year_ends() {
        assert_eq!(label(Unit::Week, date(2026, 12, 31)), "2026-W53");
        assert_eq!(label(Unit::Week, date(2027, 1, 3)), "2026-W53");
        assert_eq!(label(Unit::Week, date(2027, 1, 4)), "2027-W01");
        assert_eq!(label(Unit::Day, date(2026, 3, 9)), "2026-03-09");
        assert_eq!(label(Unit::Month, date(2026, 3, 9)), "2026-03");
    }

    #[test]
    fn periods_are_clipped_to_the_range() {
        // 2026-10-01 is a Thursday.
        let weeks = periods(Unit::Week, date(2026, 10, 1), date(2026, 10, 15));
        let labels: Vec<_> = weeks.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2026-W40", "2026-W41", "2026-W42"]);
        assert_eq!(weeks[0].start, date(2026, 10, 1));
        assert_eq!(weeks[0].end, date(2026, 10, 5));
        assert_eq!(weeks[2].end, date(2026, 10, 15));
        let months = periods(Unit::Month, date(2026, 1, 15), date(2026, 3, 1));
        assert_eq!(months.len(), 2);
        assert_eq!(months[1].start, date(2026, 2, 1));
    }

    #[test]
    fn the_previous_period_has_the_same_length() {
        let week = Period {
            label: "2026-W41".into(),
            start: date(2026, 10, 5),
            end: date(2026, 10, 12),
        };
        let prev = previous(Unit::Week, &week);
        assert_eq!(
            (prev.start, prev.end),
            (date(2026, 9, 28), date(2026, 10, 5))
        );
        let clipped = Period {
            label: "2026-W40".into(),
            start: date(2026, 10, 1),
            end: date(2026, 10, 5),
        };
        let prev = previous(Unit::Week, &clipped);
        assert_eq!(
            (prev.start, prev.end),
            (date(2026, 9, 27), date(2026, 10, 1))
        );
        let month = Period {
            label: "2026-03".into(),
            start: date(2026, 3, 1),
            end: date(2026, 4, 1),
        };
        assert_eq!(previous(Unit::Month, &month).start, date(2026, 2, 1));
    }

    #[test]
    fn a_berlin_week_starts_before_the_utc_week() {
        let berlin = parse_time_zone("Europe/Berlin").unwrap();
        let week = periods(Unit::Week, date(2026, 11, 23), date(2026, 11, 30));
        let (from, to) = week[0].range_ms(&berlin).unwrap();
        // Monday 2026-11-23 00:00 CET is Sunday 23:00 UTC.
        assert_eq!(from, 1_795_388_400_000);
        assert_eq!(to - from, 7 * 86_400_000);
        assert_eq!(local_date(from, &berlin), date(2026, 11, 23));
        assert_eq!(local_date(from, &TimeZone::UTC), date(2026, 11, 22));
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
