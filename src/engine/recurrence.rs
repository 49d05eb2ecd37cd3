//! Expansion of recurring bookings (`recurrence.rrule` + `exdates`) over just the window an evaluation needs.
//!
//! The series is anchored at the booking's `start` (DTSTART) in the booking's time zone, so a weekly 09:00
//! meeting stays at 09:00 local time across daylight-saving changes; every occurrence lasts `end - start`.
//! `seriesStart`/`seriesEnd` are not used: the documentation example sets `seriesEnd` to the end of the first
//! occurrence, so the RRULE's own COUNT/UNTIL are the only reliable series bounds.
//!
//! Unbounded series are never expanded from their start: for DAILY and WEEKLY rules without COUNT the anchor
//! is moved forward by whole recurrence periods (in local time, which keeps the set of occurrences), to just
//! before the window. COUNT-bounded and MONTHLY/YEARLY rules must be walked from DTSTART (COUNT is counted
//! from there); the walk stops at the first occurrence after the window and is capped.

use chrono::{DateTime, Days, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::{Frequency, RRule, Unvalidated};

/// How many occurrences may be walked before the window before giving up on a series.
const MAX_OCCURRENCES_WALKED: usize = 50_000;

/// A parsed RRULE, kept in the index so evaluations never re-parse text.
#[derive(Debug, Clone)]
pub(crate) struct SeriesRule {
    rule: RRule<Unvalidated>,
}

/// Parses the RRULE text of a booking (with or without a leading `RRULE:`; other lines are ignored).
pub(crate) fn parse_recurrence(text: &str) -> Result<SeriesRule, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.to_ascii_uppercase().starts_with("DTSTART"))
        .unwrap_or_default();
    let body = line
        .strip_prefix("RRULE:")
        .or_else(|| line.strip_prefix("rrule:"))
        .unwrap_or(line);
    let rule = body
        .parse::<RRule<Unvalidated>>()
        .map_err(|error| error.to_string())?;
    Ok(SeriesRule { rule })
}

/// The part of a series an evaluation at some instant needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpansionWindow {
    /// Occurrences starting before this cannot matter.
    pub(crate) from: DateTime<Utc>,
    /// Every occurrence starting at or before this is visited, then the first one after it, then it stops.
    pub(crate) through: DateTime<Utc>,
}

/// Calls `visit` with each occurrence start (UTC) in `window`, in order, skipping `exdates`, ending with the
/// first occurrence after `window.through` if the series has one.
pub(crate) fn expand(
    series: &SeriesRule,
    first_start: DateTime<Utc>,
    zone: Tz,
    exdates: &[DateTime<Utc>],
    window: ExpansionWindow,
    mut visit: impl FnMut(DateTime<Utc>),
) -> Result<(), String> {
    let anchor = shifted_anchor(series, first_start, zone, window.from);
    if let Some(until) = series.rule.get_until() {
        if until.with_timezone(&Utc) < anchor {
            return Ok(()); // The series ended before the (moved) anchor.
        }
    }
    let dt_start = anchor.with_timezone(&rrule::Tz::Tz(zone));
    let set = series
        .rule
        .clone()
        .build(dt_start)
        .map_err(|error| error.to_string())?
        .limit();
    let mut walked = 0usize;
    for occurrence in &set {
        let start = occurrence.with_timezone(&Utc);
        if start < window.from {
            walked += 1;
            if walked > MAX_OCCURRENCES_WALKED {
                return Err(format!(
                    "more than {MAX_OCCURRENCES_WALKED} occurrences before {}",
                    window.from
                ));
            }
            continue;
        }
        if exdates.contains(&start) {
            continue;
        }
        visit(start);
        if start > window.through {
            break;
        }
    }
    Ok(())
}

/// The series anchor moved forward by whole periods to at most one period before `from`, when that keeps the
/// occurrence set unchanged (see module docs); otherwise the original anchor.
fn shifted_anchor(
    series: &SeriesRule,
    first_start: DateTime<Utc>,
    zone: Tz,
    from: DateTime<Utc>,
) -> DateTime<Utc> {
    let rule = &series.rule;
    let period_days: i64 = match rule.get_freq() {
        Frequency::Daily => 1,
        Frequency::Weekly => 7,
        _ => return first_start,
    } * i64::from(rule.get_interval().max(1));
    if rule.get_count().is_some() || from <= first_start {
        return first_start;
    }
    let local_anchor = first_start.with_timezone(&zone).naive_local();
    let local_from = from.with_timezone(&zone).naive_local();
    let whole_periods = (local_from - local_anchor).num_days() / period_days - 1;
    if whole_periods <= 0 {
        return first_start;
    }
    let shift_days = whole_periods
        .unsigned_abs()
        .saturating_mul(period_days.unsigned_abs());
    let Some(shifted_local) = local_anchor.checked_add_days(Days::new(shift_days)) else {
        return first_start;
    };
    match zone.from_local_datetime(&shifted_local).earliest() {
        Some(shifted) => shifted.with_timezone(&Utc),
        // The anchor's wall time does not exist that day (DST gap): keep the original anchor.
        None => first_start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("valid instant")
    }

    fn collect(
        rule: &str,
        first: &str,
        zone: Tz,
        exdates: &[DateTime<Utc>],
        from: &str,
        through: &str,
    ) -> Vec<DateTime<Utc>> {
        let series = parse_recurrence(rule).expect("valid rule");
        let mut seen = Vec::new();
        let window = ExpansionWindow {
            from: utc(from),
            through: utc(through),
        };
        expand(&series, utc(first), zone, exdates, window, |start| {
            seen.push(start)
        })
        .expect("expands");
        seen
    }

    #[test]
    fn weekly_series_keeps_local_time_across_the_london_spring_change() {
        let seen = collect(
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "2026-03-23T09:00:00Z", // 09:00 GMT
            chrono_tz::Europe::London,
            &[],
            "2026-03-01T00:00:00Z",
            "2026-04-30T00:00:00Z",
        );
        // After 2026-03-29 London is on BST: 09:00 local is 08:00 UTC.
        assert_eq!(
            seen,
            vec![
                utc("2026-03-23T09:00:00Z"),
                utc("2026-03-30T08:00:00Z"),
                utc("2026-04-06T08:00:00Z")
            ]
        );
    }

    #[test]
    fn exdates_are_skipped_and_expansion_stops_after_the_window() {
        let seen = collect(
            "FREQ=DAILY",
            "2026-01-01T10:00:00Z",
            Tz::UTC,
            &[utc("2026-01-03T10:00:00Z")],
            "2026-01-02T00:00:00Z",
            "2026-01-03T12:00:00Z",
        );
        assert_eq!(
            seen,
            vec![utc("2026-01-02T10:00:00Z"), utc("2026-01-04T10:00:00Z")]
        );
    }

    #[test]
    fn old_unbounded_daily_series_is_shifted_not_walked_from_its_start() {
        // Started 40 years ago: the walk cap would be exceeded without the shift.
        let seen = collect(
            "FREQ=DAILY;INTERVAL=3",
            "1986-01-01T10:00:00Z",
            Tz::UTC,
            &[],
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
        );
        let first = seen.first().copied().expect("an occurrence");
        assert!(first >= utc("2026-01-01T00:00:00Z"));
        // Every occurrence is a whole number of 3-day steps from the original start.
        for start in &seen {
            assert_eq!((*start - utc("1986-01-01T10:00:00Z")).num_days() % 3, 0);
        }
    }

    #[test]
    fn until_before_the_window_yields_nothing() {
        let seen = collect(
            "FREQ=WEEKLY;UNTIL=20250101T000000Z",
            "2024-01-01T10:00:00Z",
            Tz::UTC,
            &[],
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
        );
        assert!(seen.is_empty());
    }

    #[test]
    fn garbage_rules_are_rejected_with_a_message() {
        assert!(parse_recurrence("FREQ=SOMETIMES").is_err());
    }
}
