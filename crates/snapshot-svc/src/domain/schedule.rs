//! When a backup schedule fires: daily or weekly at a wall-clock time in a time zone. Slots
//! are instants; the next slot is always strictly after a given instant, so a service that
//! was down over several slots fires once when it comes back, not once per missed slot.

use chrono::{DateTime, Datelike as _, Duration, NaiveTime, TimeZone as _, Utc, Weekday};
use chrono_tz::Tz;

use crate::error::{Result, SnapshotError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Daily,
    Weekly(Weekday),
}

/// A schedule's timing, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub frequency: Frequency,
    pub at: NaiveTime,
    pub zone: Tz,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

pub fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(_, d)| *d == day)
        .map_or("mon", |(n, _)| n)
}

impl Timing {
    /// From the stored or requested words: `daily`/`weekly`, `mon`..`sun`, `HH:MM`, an IANA
    /// zone name (empty: UTC).
    pub fn parse(frequency: &str, weekday: &str, time: &str, zone: &str) -> Result<Self> {
        let frequency = match frequency.trim() {
            "daily" => Frequency::Daily,
            "weekly" => {
                let day = WEEKDAYS
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(weekday.trim()))
                    .map(|(_, d)| *d)
                    .ok_or_else(|| {
                        SnapshotError::invalid(
                            "weekday",
                            "a weekly schedule needs a day, mon ... sun",
                        )
                    })?;
                Frequency::Weekly(day)
            }
            _ => {
                return Err(SnapshotError::invalid(
                    "frequency",
                    "frequency is daily or weekly",
                ));
            }
        };
        let at = NaiveTime::parse_from_str(time.trim(), "%H:%M")
            .map_err(|_| SnapshotError::invalid("time", "time is HH:MM (24-hour clock)"))?;
        let zone = if zone.trim().is_empty() {
            Tz::UTC
        } else {
            zone.trim().parse::<Tz>().map_err(|_| {
                SnapshotError::invalid(
                    "time_zone",
                    "time_zone is an IANA name such as Europe/Berlin",
                )
            })?
        };
        Ok(Self {
            frequency,
            at,
            zone,
        })
    }

    /// The first slot strictly after `after`. A wall-clock time that a daylight-saving change
    /// skips fires at the first instant after the gap; one it repeats fires once, the first
    /// time.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        let local = after.with_timezone(&self.zone).date_naive();
        // Yesterday's slot may still be ahead in UTC terms; eight days cover a week.
        (-1..=8)
            .filter_map(|offset| local.checked_add_signed(Duration::days(offset)))
            .filter(|day| match self.frequency {
                Frequency::Daily => true,
                Frequency::Weekly(wanted) => day.weekday() == wanted,
            })
            .filter_map(|day| self.instant(day.and_time(self.at)))
            .find(|slot| *slot > after)
            .unwrap_or(after + Duration::days(1))
    }

    fn instant(&self, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.zone.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            // In a gap: the clock jumped over it; an hour later exists.
            chrono::LocalResult::None => self
                .zone
                .from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// The next slot of a test schedule that fires every `every_secs` seconds.
pub fn next_every(after: DateTime<Utc>, every_secs: u64) -> DateTime<Utc> {
    let every = i64::try_from(every_secs.max(1)).unwrap_or(i64::MAX);
    let now = after.timestamp();
    let next = (now.div_euclid(every) + 1) * every;
    DateTime::from_timestamp(next, 0).unwrap_or(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_in_utc() {
        let t = Timing::parse("daily", "", "03:30", "").unwrap();
        assert_eq!(
            t.next_after(utc("2026-01-10T01:00:00Z")),
            utc("2026-01-10T03:30:00Z")
        );
        assert_eq!(
            t.next_after(utc("2026-01-10T03:30:00Z")),
            utc("2026-01-11T03:30:00Z")
        );
    }

    #[test]
    fn weekly_in_a_zone() {
        let t = Timing::parse("weekly", "sun", "02:00", "Europe/Berlin").unwrap();
        // Saturday 10 January 2026, noon UTC: next is Sunday 11th 02:00 CET = 01:00 UTC.
        assert_eq!(
            t.next_after(utc("2026-01-10T12:00:00Z")),
            utc("2026-01-11T01:00:00Z")
        );
        assert_eq!(
            t.next_after(utc("2026-01-11T01:00:00Z")),
            utc("2026-01-18T01:00:00Z")
        );
    }

    #[test]
    fn daylight_saving_gaps_and_repeats() {
        // 29 March 2026: Berlin skips 02:00-03:00.
        let t = Timing::parse("daily", "", "02:30", "Europe/Berlin").unwrap();
        assert_eq!(
            t.next_after(utc("2026-03-28T23:00:00Z")),
            utc("2026-03-29T01:30:00Z")
        );
        // 25 October 2026: 02:30 happens twice; the first (CEST, 00:30 UTC) counts, once.
        let first = t.next_after(utc("2026-10-24T23:00:00Z"));
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        assert_eq!(t.next_after(first), utc("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn a_long_outage_fires_once() {
        let t = Timing::parse("daily", "", "00:00", "").unwrap();
        let back = utc("2026-02-20T09:00:00Z");
        assert_eq!(t.next_after(back), utc("2026-02-21T00:00:00Z"));
    }

    #[test]
    fn refusals() {
        assert!(Timing::parse("hourly", "", "01:00", "").is_err());
        assert!(Timing::parse("weekly", "", "01:00", "").is_err());
        assert!(Timing::parse("daily", "", "25:00", "").is_err());
        assert!(Timing::parse("daily", "", "01:00", "Mars/Olympus").is_err());
    }

    #[test]
    fn test_slots() {
        assert_eq!(
            next_every(utc("2026-01-01T00:00:07Z"), 5),
            utc("2026-01-01T00:00:10Z")
        );
        assert_eq!(
            next_every(utc("2026-01-01T00:00:10Z"), 5),
            utc("2026-01-01T00:00:15Z")
        );
    }
}
