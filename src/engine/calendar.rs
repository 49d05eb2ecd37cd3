//! Day-granular OfficeRnD dates in a location's time zone, and half-open time windows.
//!
//! OfficeRnD sends calendar dates (membership, assignment and day-pass dates) as instants. Two encodings
//! occur: midnight UTC (`2025-01-01T00:00:00.000Z`, every documentation example) and a local midnight
//! written in UTC (the assignment example `2024-08-21T16:00:00.000Z` is midnight in a UTC+8 zone). An instant
//! at exactly 00:00:00 UTC is therefore read as that UTC date; any other instant as its date in the
//! location's zone. Both readings agree for zones at UTC+0, and a local midnight of any other zone is never
//! 00:00 UTC, so the rule is unambiguous.
//!
//! A date range `[start, end]` is inclusive of whole days in the location's zone (seed Kisi 001: access is
//! removed "only when the plan becomes terminated (after its end date)"): it opens at the start of the start
//! day and closes at the start of the day after the end day, both in local time, so daylight-saving changes
//! (23- or 25-hour days) are honoured.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// The longest `grantBefore` or `revokeAfter` the engine applies; longer margins are clamped here
/// (and refused as a problem on the binding before they get here, and by the CRD).
pub const MAX_BOOKING_MARGIN: TimeDelta = TimeDelta::hours(24);

/// `at + delta`, held at the ends of the representable range instead of overflowing: instants
/// come from OfficeRnD and margins from manifests, and neither may bring the engine down.
pub fn later(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(delta)
        .unwrap_or(if delta < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// `at - delta`, held at the ends of the representable range instead of overflowing.
pub fn earlier(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_sub_signed(delta)
        .unwrap_or(if delta < TimeDelta::zero() {
            DateTime::<Utc>::MAX_UTC
        } else {
            DateTime::<Utc>::MIN_UTC
        })
}

/// The calendar date an OfficeRnD day-granular instant stands for (see the module docs).
pub fn calendar_date(instant: DateTime<Utc>, zone: Tz) -> NaiveDate {
    let is_utc_midnight = instant.num_seconds_from_midnight() == 0 && instant.nanosecond() == 0;
    if is_utc_midnight {
        instant.date_naive()
    } else {
        instant.with_timezone(&zone).date_naive()
    }
}

/// The first instant of `date` in `zone`. Where midnight does not exist (a daylight-saving gap at 00:00),
/// the day starts at the first local time that does.
pub fn start_of_day(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    // Gaps are at most a few hours; probe forward a quarter-hour at a time.
    for quarter in 0..(24 * 4) {
        let local = midnight + chrono::Duration::minutes(15 * quarter);
        if let Some(instant) = zone.from_local_datetime(&local).earliest() {
            return instant.with_timezone(&Utc);
        }
    }
    // Unreachable for real zones; fall back to the UTC reading rather than failing.
    Utc.from_utc_datetime(&midnight)
}

/// The first instant of the day after `date` in `zone`: the exclusive end of an inclusive end date.
pub fn end_of_day(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    match date.checked_add_days(Days::new(1)) {
        Some(next) => start_of_day(next, zone),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// A half-open interval `[start, end)`; `None` bounds are open (since forever / until further notice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Where an instant lies relative to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Upcoming(DateTime<Utc>),
    Active,
    Over(DateTime<Utc>),
}

impl Window {
    pub const ALWAYS: Window = Window {
        start: None,
        end: None,
    };

    /// The window of an inclusive day range (either bound may be open).
    pub fn of_days(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>, zone: Tz) -> Window {
        Window {
            start: start.map(|instant| start_of_day(calendar_date(instant, zone), zone)),
            end: end.map(|instant| end_of_day(calendar_date(instant, zone), zone)),
        }
    }

    pub fn phase(&self, at: DateTime<Utc>) -> Phase {
        match (self.start, self.end) {
            (Some(start), _) if at < start => Phase::Upcoming(start),
            (_, Some(end)) if at >= end => Phase::Over(end),
            _ => Phase::Active,
        }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.phase(at) == Phase::Active
    }

    /// The earliest bound strictly after `at` (where the window's answer for later instants changes).
    pub fn next_bound_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        [self.start, self.end]
            .into_iter()
            .flatten()
            .filter(|bound| *bound > at)
            .min()
    }

    pub fn intersect(&self, other: &Window) -> Window {
        Window {
            start: later_start(self.start, other.start),
            end: earlier_end(self.end, other.end),
        }
    }

    /// True when no instant lies in the window.
    pub fn is_empty(&self) -> bool {
        matches!((self.start, self.end), (Some(start), Some(end)) if start >= end)
    }
}

fn later_start(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn earlier_end(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Keeps the earliest of several candidate instants.
pub fn earliest(current: &mut Option<DateTime<Utc>>, candidate: Option<DateTime<Utc>>) {
    if let Some(candidate) = candidate {
        *current = Some(current.map_or(candidate, |existing| existing.min(candidate)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("valid instant")
    }

    #[test]
    fn utc_midnight_is_read_as_the_utc_date_even_west_of_greenwich() {
        let date = calendar_date(utc("2026-03-01T00:00:00Z"), chrono_tz::America::New_York);
        assert_eq!(date, NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"));
    }

    #[test]
    fn local_midnight_written_in_utc_is_read_as_the_local_date() {
        // Midnight 2024-08-22 in Singapore (UTC+8).
        let date = calendar_date(utc("2024-08-21T16:00:00Z"), chrono_tz::Asia::Singapore);
        assert_eq!(date, NaiveDate::from_ymd_opt(2024, 8, 22).expect("date"));
    }

    #[test]
    fn london_day_after_the_spring_change_starts_at_23_utc() {
        let zone = chrono_tz::Europe::London;
        // 2026-03-29 is the day clocks go forward; it lasts 23 hours.
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).expect("date");
        assert_eq!(start_of_day(day, zone), utc("2026-03-29T00:00:00Z"));
        assert_eq!(end_of_day(day, zone), utc("2026-03-29T23:00:00Z"));
    }

    #[test]
    fn midnight_gap_starts_the_day_at_the_first_existing_local_time() {
        // Santiago moved clocks from 00:00 to 01:00 on 2024-09-08.
        let zone = chrono_tz::America::Santiago;
        let day = NaiveDate::from_ymd_opt(2024, 9, 8).expect("date");
        assert_eq!(start_of_day(day, zone), utc("2024-09-08T04:00:00Z"));
    }

    #[test]
    fn window_is_half_open() {
        let window = Window {
            start: Some(utc("2026-01-01T00:00:00Z")),
            end: Some(utc("2026-01-02T00:00:00Z")),
        };
        assert!(!window.contains(utc("2025-12-31T23:59:59Z")));
        assert!(window.contains(utc("2026-01-01T00:00:00Z")));
        assert!(window.contains(utc("2026-01-01T23:59:59Z")));
        assert!(!window.contains(utc("2026-01-02T00:00:00Z")));
        assert_eq!(
            window.next_bound_after(utc("2026-01-01T00:00:00Z")),
            window.end
        );
    }
}
