//! The settlement cut-off: when one business day ends and the next begins.
//!
//! `PAYFAC_SETTLEMENT_CUTOFF` holds a local time and an IANA time zone, `"00:00 UTC"` or
//! `"18:30 Asia/Shanghai"`. Business day `D` **ends at the cut-off on `D`**, as a bank's day
//! does: a payment at 18:45 Shanghai time on 5 March with an 18:30 cut-off belongs to business
//! date 6 March. `00:00` is read as the end of `D` (midnight starting `D + 1`), so a midnight
//! cut-off gives calendar days. Windows are `[start, end)` in UTC and tile time: each day's
//! end is the next day's start.
//!
//! Daylight saving: a cut-off that falls in a skipped hour happens when the clocks jump (the
//! first instant after the gap); one that happens twice happens the first time. Such days are
//! 23 or 25 hours long.

use crate::LedgerError;
use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A settlement cut-off: a local wall-clock time (whole minutes) in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    time: NaiveTime,
    zone: Tz,
}

/// A business day's span in UTC: `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// First instant of the day.
    pub start: DateTime<Utc>,
    /// First instant of the next day.
    pub end: DateTime<Utc>,
}

impl Window {
    /// True when `instant` is in `[start, end)`.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }
}

impl Cutoff {
    /// Midnight UTC: business days are UTC calendar days.
    pub fn midnight_utc() -> Self {
        Self {
            time: NaiveTime::MIN,
            zone: Tz::UTC,
        }
    }

    /// Reads `"HH:MM Zone"`: a 24-hour time with two-digit hour (`00`–`23`) and minute, one
    /// space, and an IANA zone name as spelled in the tz database (`UTC`, `Asia/Shanghai`).
    pub fn parse(value: &str) -> Result<Self, LedgerError> {
        let invalid = |reason| LedgerError::InvalidCutoff {
            value: value.to_owned(),
            reason,
        };
        let (time, zone) = value
            .split_once(' ')
            .ok_or_else(|| invalid("expected `HH:MM Zone`, e.g. `18:30 Asia/Shanghai`"))?;
        let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        let (hour, minute) = time
            .split_once(':')
            .filter(|(h, m)| digits(h) && digits(m))
            .ok_or_else(|| invalid("the time must be `HH:MM` (24-hour, two digits each)"))?;
        let time = hour
            .parse()
            .ok()
            .zip(minute.parse().ok())
            .and_then(|(h, m)| NaiveTime::from_hms_opt(h, m, 0))
            .ok_or_else(|| invalid("the time must be between 00:00 and 23:59"))?;
        let zone = Tz::from_str(zone)
            .map_err(|_| invalid("unknown time zone: use an IANA name such as `UTC`"))?;
        Ok(Self { time, zone })
    }

    /// The local wall-clock time of the cut-off.
    pub fn time(&self) -> NaiveTime {
        self.time
    }

    /// The time zone's IANA name.
    pub fn zone_name(&self) -> &'static str {
        self.zone.name()
    }

    /// The `[start, end)` UTC window of business date `date`.
    pub fn window(&self, date: NaiveDate) -> Result<Window, LedgerError> {
        let previous = date.pred_opt().ok_or(LedgerError::DateOutOfRange)?;
        Ok(Window {
            start: self.resolve(self.local_end(previous)?)?,
            end: self.resolve(self.local_end(date)?)?,
        })
    }

    /// The business date `instant` belongs to: the one whose window contains it.
    pub fn business_date(&self, instant: DateTime<Utc>) -> Result<NaiveDate, LedgerError> {
        // Shifting local time by (24 h − cut-off) mod 24 h makes the cut-off land on midnight,
        // so the shifted date is the business date except around a DST change at the cut-off;
        // the window check settles those.
        let shift = if self.time == NaiveTime::MIN {
            Duration::zero()
        } else {
            Duration::days(1) - (self.time - NaiveTime::MIN)
        };
        let mut date = instant
            .with_timezone(&self.zone)
            .naive_local()
            .checked_add_signed(shift)
            .ok_or(LedgerError::DateOutOfRange)?
            .date();
        // Windows tile time, so at most one step is ever needed; the bound only guards it.
        for _ in 0..3 {
            let window = self.window(date)?;
            if instant < window.start {
                date = date.pred_opt().ok_or(LedgerError::DateOutOfRange)?;
            } else if instant >= window.end {
                date = date.succ_opt().ok_or(LedgerError::DateOutOfRange)?;
            } else {
                return Ok(date);
            }
        }
        Err(LedgerError::DateOutOfRange)
    }

    /// Local wall-clock end of business day `date`.
    fn local_end(&self, date: NaiveDate) -> Result<NaiveDateTime, LedgerError> {
        if self.time == NaiveTime::MIN {
            let next = date.succ_opt().ok_or(LedgerError::DateOutOfRange)?;
            Ok(next.and_time(NaiveTime::MIN))
        } else {
            Ok(date.and_time(self.time))
        }
    }

    /// The UTC instant of a local wall-clock time: the earlier one when it happens twice, the
    /// end of the gap when it is skipped.
    fn resolve(&self, local: NaiveDateTime) -> Result<DateTime<Utc>, LedgerError> {
        // Gaps in the tz database are whole minutes and far shorter than a day.
        for minutes in 0..=24 * 60 {
            let candidate = local + Duration::minutes(minutes);
            match self.zone.from_local_datetime(&candidate) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    return Ok(t.with_timezone(&Utc));
                }
                LocalResult::None => {}
            }
        }
        Err(LedgerError::DateOutOfRange)
    }
}

impl Default for Cutoff {
    fn default() -> Self {
        Self::midnight_utc()
    }
}

impl fmt::Display for Cutoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.time.format("%H:%M"), self.zone.name())
    }
}

impl FromStr for Cutoff {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Cutoff {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cutoff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cutoff(text: &str) -> Cutoff {
        Cutoff::parse(text).expect("valid cut-off")
    }
    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn values_parse_and_print_back() {
        for text in ["00:00 UTC", "18:30 Asia/Shanghai", "23:59 America/New_York"] {
            assert_eq!(cutoff(text).to_string(), text);
        }
        for bad in [
            "",
            "00:00",
            "0:00 UTC",
            "24:00 UTC",
            "12:60 UTC",
            "12:5 UTC",
            "12:00  UTC",
            "12:00 utc",
            "12:00 Mars/Olympus",
            "noon UTC",
            "+1:00 UTC",
        ] {
            assert!(
                matches!(Cutoff::parse(bad), Err(LedgerError::InvalidCutoff { .. })),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn midnight_utc_gives_calendar_days() {
        let c = cutoff("00:00 UTC");
        assert_eq!(
            c.window(date(2025, 3, 5)).unwrap(),
            Window {
                start: utc(2025, 3, 5, 0, 0),
                end: utc(2025, 3, 6, 0, 0)
            }
        );
        assert_eq!(
            c.business_date(utc(2025, 3, 5, 23, 59)).unwrap(),
            date(2025, 3, 5)
        );
        assert_eq!(
            c.business_date(utc(2025, 3, 6, 0, 0)).unwrap(),
            date(2025, 3, 6)
        );
    }

    #[test]
    fn a_day_ends_at_its_cutoff_in_the_zone() {
        // Shanghai is UTC+8 all year: 18:30 local is 10:30 UTC.
        let c = cutoff("18:30 Asia/Shanghai");
        assert_eq!(
            c.window(date(2025, 3, 5)).unwrap(),
            Window {
                start: utc(2025, 3, 4, 10, 30),
                end: utc(2025, 3, 5, 10, 30)
            }
        );
        // 18:29 local on 5 March: still the 5th; 18:45 local: the 6th.
        assert_eq!(
            c.business_date(utc(2025, 3, 5, 10, 29)).unwrap(),
            date(2025, 3, 5)
        );
        assert_eq!(
            c.business_date(utc(2025, 3, 5, 10, 45)).unwrap(),
            date(2025, 3, 6)
        );
        // 01:00 local on the 6th (17:00 UTC on the 5th) is business date the 6th.
        assert_eq!(
            c.business_date(utc(2025, 3, 5, 17, 0)).unwrap(),
            date(2025, 3, 6)
        );
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours() {
        // New York springs forward on 9 March 2025 (02:00 → 03:00) and falls back on
        // 2 November (02:00 → 01:00).
        let c = cutoff("00:00 America/New_York");
        let length = |d| {
            let w = c.window(d).unwrap();
            w.end - w.start
        };
        assert_eq!(length(date(2025, 3, 9)), Duration::hours(23));
        assert_eq!(length(date(2025, 11, 2)), Duration::hours(25));
        assert_eq!(length(date(2025, 6, 1)), Duration::hours(24));

        // A cut-off in the skipped hour happens when the clocks jump: 03:00 EDT = 07:00 UTC.
        let skipped = cutoff("02:30 America/New_York");
        assert_eq!(
            skipped.window(date(2025, 3, 9)).unwrap().end,
            utc(2025, 3, 9, 7, 0)
        );
        // A cut-off in the repeated hour happens the first time: 01:30 EDT = 05:30 UTC.
        let repeated = cutoff("01:30 America/New_York");
        assert_eq!(
            repeated.window(date(2025, 11, 2)).unwrap().end,
            utc(2025, 11, 2, 5, 30)
        );
        // The second 01:15 (EST, 06:15 UTC) is after that end: the next business date.
        assert_eq!(
            repeated.business_date(utc(2025, 11, 2, 6, 15)).unwrap(),
            date(2025, 11, 3)
        );
    }

    proptest! {
        #[test]
        fn every_instant_is_in_the_window_of_its_business_date(
            secs in 946_684_800i64..2_208_988_800, // 2000 to 2040
            minute_of_day in 0u32..24 * 60,
            zone in prop::sample::select(vec![
                "UTC", "Asia/Shanghai", "America/New_York", "Europe/London",
                "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham", "America/Santiago",
            ]),
        ) {
            let text = format!("{:02}:{:02} {zone}", minute_of_day / 60, minute_of_day % 60);
            let c = cutoff(&text);
            let instant = DateTime::from_timestamp(secs, 0).unwrap();
            let d = c.business_date(instant).unwrap();
            let window = c.window(d).unwrap();
            prop_assert!(window.contains(instant), "{text}: {instant} not in {window:?} of {d}");
            prop_assert_eq!(c.window(d.succ_opt().unwrap()).unwrap().start, window.end);
            prop_assert!(window.end - window.start >= Duration::hours(22));
            prop_assert!(window.end - window.start <= Duration::hours(26));
        }
    }
}
