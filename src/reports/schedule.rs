//! When digests and drop-alert evaluations are due: "daily at HH:MM" or
//! "weekly on a weekday at HH:MM" in `reports.timezone`. A time that does
//! not exist on a DST change day (in the spring gap) moves later; one that
//! happens twice (autumn) is the first. Recomputed on every tick, so DST
//! changes and clock jumps correct themselves.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::period::{add_days, local_date};

/// How often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Daily,
    Weekly(Weekday),
}

/// A local time of day, daily or on one weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub every: Every,
    pub hour: i8,
    pub minute: i8,
}

impl Schedule {
    /// Unix ms of the run on local `date`.
    pub fn at_ms(&self, date: Date, tz: &TimeZone) -> i64 {
        tz.to_zoned_datetime(date.at(self.hour, self.minute, 0, 0))
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(i64::MAX)
    }

    fn runs_on(&self, date: Date) -> bool {
        match self.every {
            Every::Daily => true,
            Every::Weekly(day) => date.weekday() == day,
        }
    }

    /// The latest run at or before `now_ms`: its local date and instant.
    pub fn last_due(&self, now_ms: i64, tz: &TimeZone) -> (Date, i64) {
        let today = local_date(now_ms, tz);
        (0..9)
            .map(|back| add_days(today, -back))
            .filter(|d| self.runs_on(*d))
            .map(|d| (d, self.at_ms(d, tz)))
            .find(|(_, at)| *at <= now_ms)
            .unwrap_or((today, i64::MIN))
    }

    /// The first run after `now_ms`.
    pub fn next_due(&self, now_ms: i64, tz: &TimeZone) -> (Date, i64) {
        let today = local_date(now_ms, tz);
        (0..9)
            .map(|ahead| add_days(today, ahead))
            .filter(|d| self.runs_on(*d))
            .map(|d| (d, self.at_ms(d, tz)))
            .find(|(_, at)| *at > now_ms)
            .unwrap_or((today, i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ms(at: &str) -> i64 {
        at.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn daily_and_weekly_runs_in_berlin() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let daily = Schedule {
            every: Every::Daily,
            hour: 9,
            minute: 0,
        };
        // 2026-11-30 07:59 UTC is 08:59 in Berlin: today's run is still ahead.
        let now = ms("2026-11-30T07:59:00Z");
        assert_eq!(
            daily.last_due(now, &berlin),
            (date(2026, 11, 29), ms("2026-11-29T08:00:00Z"))
        );
        assert_eq!(
            daily.next_due(now, &berlin),
            (date(2026, 11, 30), ms("2026-11-30T08:00:00Z"))
        );
        let monday = Schedule {
            every: Every::Weekly(Weekday::Monday),
            hour: 9,
            minute: 0,
        };
        assert_eq!(monday.last_due(now, &berlin).0, date(2026, 11, 23));
        assert_eq!(
            monday.last_due(ms("2026-11-30T08:00:00Z"), &berlin).0,
            date(2026, 11, 30)
        );
        assert_eq!(monday.next_due(now, &berlin).0, date(2026, 11, 30));
    }

    #[test]
    fn dst_gaps_move_later_and_folds_take_the_first() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let s = Schedule {
            every: Every::Daily,
            hour: 2,
            minute: 30,
        };
        // 02:30 does not exist on 2026-03-29: 03:30 CEST = 01:30 UTC.
        assert_eq!(
            s.at_ms(date(2026, 3, 29), &berlin),
            ms("2026-03-29T01:30:00Z")
        );
        // 02:30 happens twice on 2026-10-25: the first, +02:00 = 00:30 UTC.
        assert_eq!(
            s.at_ms(date(2026, 10, 25), &berlin),
            ms("2026-10-25T00:30:00Z")
        );
    }
}
