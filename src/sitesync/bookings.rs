//! The booking side of a site sync (elumo sites with `syncCalendarBookings`): every current and
//! future OfficeRnD booking of a mapped resource mirrored in the essensys calendar (created,
//! updated on change, cancelled on cancellation), and bookings made by tap-to-book at an elumo
//! door created back in OfficeRnD once.
//!
//! Identity: a mirrored booking carries `externalRef` = the OfficeRnD booking id, or
//! `<id>:<occurrence start, UTC basic format>` for one occurrence of a recurring series (series
//! are mirrored [`SERIES_HORIZON_DAYS`] ahead). A tap-to-book booking, once created in OfficeRnD,
//! gets `externalRef` = the new OfficeRnD booking id, so it is never created twice and never
//! mirrored back as a second booking; the OfficeRnD booking carries
//! `properties.essensysBookingId` (our marker) so a pass interrupted between the two writes
//! links it instead of creating it again.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::api::status::Problem;
use crate::engine::recurrence::{expand, parse_recurrence, ExpansionWindow};
use crate::officernd::{format_timestamp, OfficeRndClient};
use crate::vendors::essensys::model::{
    Booking, BookingFilter, BookingSource, BookingStatus, BookingUpdate, NewBooking, Site,
};
use crate::vendors::essensys::EssensysApi;

use super::entities::Links;
use super::summary::SyncSummary;
use super::LocationView;

/// How far ahead occurrences of recurring series are mirrored; later ones follow as time passes.
pub const SERIES_HORIZON_DAYS: i64 = 28;
/// The OfficeRnD booking property naming the essensys tap-to-book booking it came from.
pub const MARKER_PROPERTY: &str = "essensysBookingId";
/// Title of OfficeRnD bookings created from a tap.
pub const TAP_TO_BOOK_TITLE: &str = "elumo tap to book";
/// Bookings ending later than this are treated as "far future" when listing essensys bookings.
const LIST_HORIZON_DAYS: i64 = 3660;

/// One essensys booking as OfficeRnD says it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    space_id: String,
    user_id: Option<String>,
    occupier_id: Option<String>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    label: String,
}

/// Everything the booking pass reads and writes besides the two clients.
pub struct BookingPass<'a, A> {
    pub api: &'a A,
    pub officernd: &'a OfficeRndClient,
    pub view: &'a LocationView<'a>,
    pub site: &'a Site,
    pub links: &'a Links,
    pub at: DateTime<Utc>,
    /// Tap-to-book bookings created before this (the approval of the mapping) are ignored.
    pub taps_since: DateTime<Utc>,
}

impl<A: EssensysApi> BookingPass<'_, A> {
    /// Runs the tap-to-book back-sync, then the mirror. A list that cannot be read stops the pass
    /// (nothing is cancelled on a partial picture) and is returned as an error.
    pub async fn run(
        &self,
        summary: &mut SyncSummary,
        problems: &mut Vec<Problem>,
    ) -> Result<(), String> {
        let window = BookingFilter {
            overlapping: Some((self.at, self.at + Duration::days(LIST_HORIZON_DAYS))),
            ..BookingFilter::default()
        };
        let current = self
            .api
            .list_bookings(&self.site.id, &window)
            .await
            .map_err(|e| format!("bookings not synced: {e}"))?;
        let taps = self
            .api
            .list_tap_to_book_bookings(&self.site.id, self.taps_since)
            .await
            .map_err(|e| format!("bookings not synced: {e}"))?;
        let fresh = self.back_sync(&taps, summary, problems).await?;
        self.mirror(&current, &fresh, summary, problems).await;
        Ok(())
    }

    /// Creates unlinked tap-to-book bookings in OfficeRnD; returns the OfficeRnD ids created or
    /// recovered in this pass (not yet in the snapshot the mirror compares with).
    async fn back_sync(
        &self,
        taps: &[Booking],
        summary: &mut SyncSummary,
        problems: &mut Vec<Problem>,
    ) -> Result<HashSet<String>, String> {
        let mut fresh = HashSet::new();
        let unlinked: Vec<&Booking> = taps
            .iter()
            .filter(|b| b.source == BookingSource::TapToBook)
            .filter(|b| b.status == BookingStatus::Confirmed && b.external_ref.is_none())
            .collect();
        if unlinked.is_empty() {
            return Ok(fresh);
        }
        let marked = self.marked_officernd_bookings().await?;
        let resource_of: HashMap<&str, &str> = self
            .links
            .spaces
            .iter()
            .map(|(resource, space)| (space.as_str(), resource.as_str()))
            .collect();
        let member_of: HashMap<&str, &str> = self
            .links
            .users
            .iter()
            .map(|(member, user)| (user.as_str(), member.as_str()))
            .collect();
        let occupier_key_of: HashMap<&str, &str> = self
            .links
            .occupiers
            .iter()
            .map(|(key, occupier)| (occupier.as_str(), key.as_str()))
            .collect();
        for tap in unlinked {
            let officernd_id = match marked.get(&tap.id) {
                Some(id) => id.clone(),
                None => {
                    let Some(resource) = resource_of.get(tap.space_id.as_str()) else {
                        summary.bookings.skipped += 1;
                        problems.push(Problem {
                            subject: format!("tap-to-book booking {}", tap.id),
                            message: format!("space {} is not linked to an OfficeRnD resource, so the booking cannot be created in OfficeRnD", tap.space_id),
                        });
                        continue;
                    };
                    let member = tap
                        .user_id
                        .as_deref()
                        .and_then(|u| member_of.get(u))
                        .and_then(|m| self.view.member(m));
                    let company = member.and_then(|m| m.company.clone()).or_else(|| {
                        tap.occupier_id
                            .as_deref()
                            .and_then(|o| occupier_key_of.get(o))
                            .filter(|key| self.view.company(key).is_some())
                            .map(|key| key.to_string())
                    });
                    let mut body = json!({
                        "resource": resource,
                        "location": self.view.location.id,
                        "start": format_timestamp(tap.start),
                        "end": format_timestamp(tap.end),
                        "title": TAP_TO_BOOK_TITLE,
                        "properties": { MARKER_PROPERTY: tap.id },
                    });
                    if let Some(zone) = &self.view.location.timezone {
                        body["timezone"] = json!(zone);
                    }
                    if let Some(member) = member {
                        body["member"] = json!(member.id);
                    }
                    if let Some(company) = company {
                        body["company"] = json!(company);
                    }
                    let created: Value = match self.officernd.create_booking(&body).await {
                        Ok(created) => created,
                        Err(e) => {
                            summary.bookings.failed += 1;
                            problems.push(Problem {
                                subject: format!("tap-to-book booking {}", tap.id),
                                message: format!(
                                    "not created in OfficeRnD: {e}; retried on the next sync"
                                ),
                            });
                            continue;
                        }
                    };
                    let Some(id) = created.get("_id").and_then(Value::as_str) else {
                        summary.bookings.failed += 1;
                        problems.push(Problem {
                            subject: format!("tap-to-book booking {}", tap.id),
                            message: "OfficeRnD answered the booking create without an _id; check the OfficeRnD calendar before the next sync".to_owned(),
                        });
                        continue;
                    };
                    summary.officernd_bookings_created += 1;
                    id.to_owned()
                }
            };
            fresh.insert(officernd_id.clone());
            let update = BookingUpdate {
                external_ref: Some(officernd_id),
                ..BookingUpdate::default()
            };
            match self
                .api
                .update_booking(&self.site.id, &tap.id, &update)
                .await
            {
                Ok(_) => summary.bookings.linked += 1,
                Err(e) => {
                    summary.bookings.failed += 1;
                    problems.push(Problem {
                        subject: format!("tap-to-book booking {}", tap.id),
                        message: format!("created in OfficeRnD but not linked in essensys: {e}; linked on the next sync (never created twice)"),
                    });
                }
            }
        }
        Ok(fresh)
    }

    /// OfficeRnD bookings carrying our marker: essensys booking id → OfficeRnD booking id.
    async fn marked_officernd_bookings(&self) -> Result<HashMap<String, String>, String> {
        let all: Vec<Value> = self
            .officernd
            .list_bookings(None, None)
            .await
            .map_err(|e| {
                format!("tap-to-book bookings not synced: reading OfficeRnD bookings failed: {e}")
            })?;
        Ok(all
            .iter()
            .filter_map(|b| {
                let marker = b
                    .pointer(&format!("/properties/{MARKER_PROPERTY}"))?
                    .as_str()?;
                let id = b.get("_id")?.as_str()?;
                Some((marker.to_owned(), id.to_owned()))
            })
            .collect())
    }

    /// The essensys calendar as OfficeRnD says it should be, by `externalRef`.
    fn wanted(&self, problems: &mut Vec<Problem>) -> BTreeMap<String, Wanted> {
        let mut wanted = BTreeMap::new();
        let through = self.at + Duration::days(SERIES_HORIZON_DAYS);
        for booking in &self.view.bookings {
            if booking.is_cancelled || booking.is_tentative {
                continue;
            }
            let Some(space_id) = booking
                .resource
                .as_ref()
                .and_then(|r| self.links.spaces.get(r))
            else {
                continue;
            };
            let (Some(start), Some(end)) = (booking.start, booking.end) else {
                continue;
            };
            if end <= start {
                continue;
            }
            let user_id = booking
                .member
                .as_ref()
                .and_then(|m| self.links.users.get(m))
                .cloned();
            let occupier_id = booking
                .member
                .as_ref()
                .and_then(|m| self.links.member_occupier.get(m))
                .or(booking.company.as_deref().map(|c| c.to_owned()).as_ref())
                .and_then(|key| self.links.occupiers.get(key))
                .cloned();
            let label = booking
                .title
                .as_deref()
                .map(str::to_owned)
                .unwrap_or_else(|| booking.id.clone());
            let one = |start: DateTime<Utc>, end: DateTime<Utc>| Wanted {
                space_id: space_id.clone(),
                user_id: user_id.clone(),
                occupier_id: occupier_id.clone(),
                start,
                end,
                label: label.clone(),
            };
            let rule = booking
                .recurrence
                .as_ref()
                .and_then(|r| r.rrule.as_deref())
                .filter(|r| !r.trim().is_empty());
            let Some(rule) = rule else {
                if end > self.at {
                    wanted.insert(booking.id.clone(), one(start, end));
                }
                continue;
            };
            let length = end - start;
            let zone: Tz = booking
                .timezone
                .as_deref()
                .or(self.view.location.timezone.as_deref())
                .and_then(|z| z.parse().ok())
                .unwrap_or(Tz::UTC);
            let exdates = booking
                .recurrence
                .as_ref()
                .map(|r| r.exdates.clone())
                .unwrap_or_default();
            let window = ExpansionWindow {
                from: self.at - length,
                through,
            };
            let expanded = parse_recurrence(rule).and_then(|series| {
                let mut starts = Vec::new();
                expand(&series, start, zone, &exdates, window, |s| starts.push(s))?;
                Ok(starts)
            });
            match expanded {
                Ok(starts) => {
                    for occurrence in starts {
                        if occurrence + length > self.at && occurrence <= through {
                            wanted.insert(
                                format!("{}:{}", booking.id, occurrence.format("%Y%m%dT%H%M%SZ")),
                                one(occurrence, occurrence + length),
                            );
                        }
                    }
                }
                Err(error) => problems.push(Problem {
                    subject: format!("booking {label}"),
                    message: format!(
                        "its recurrence cannot be read ({error}); fix the series in OfficeRnD"
                    ),
                }),
            }
        }
        wanted
    }

    async fn mirror(
        &self,
        current: &[Booking],
        fresh: &HashSet<String>,
        summary: &mut SyncSummary,
        problems: &mut Vec<Problem>,
    ) {
        let wanted = self.wanted(problems);
        let mut by_ref: HashMap<&str, Vec<&Booking>> = HashMap::new();
        for booking in current {
            if let Some(reference) = booking.external_ref.as_deref() {
                by_ref.entry(reference).or_default().push(booking);
            }
        }
        let base = |reference: &str| reference.split(':').next().unwrap_or("").to_owned();
        for (reference, want) in &wanted {
            if fresh.contains(&base(reference)) {
                continue;
            }
            let found = by_ref
                .get(reference.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if let Some(existing) = found.iter().find(|b| b.status == BookingStatus::Confirmed) {
                let update = BookingUpdate {
                    space_id: (existing.space_id != want.space_id).then(|| want.space_id.clone()),
                    user_id: want
                        .user_id
                        .clone()
                        .filter(|u| existing.user_id.as_ref() != Some(u)),
                    occupier_id: want
                        .occupier_id
                        .clone()
                        .filter(|o| existing.occupier_id.as_ref() != Some(o)),
                    start: (existing.start != want.start).then_some(want.start),
                    end: (existing.end != want.end).then_some(want.end),
                    external_ref: None,
                };
                if update == BookingUpdate::default() {
                    summary.bookings.unchanged += 1;
                    continue;
                }
                match self
                    .api
                    .update_booking(&self.site.id, &existing.id, &update)
                    .await
                {
                    Ok(_) => summary.bookings.corrected += 1,
                    Err(e) => {
                        summary.bookings.failed += 1;
                        problems.push(Problem {
                            subject: format!("booking {}", want.label),
                            message: format!(
                                "not updated in essensys: {e}; retried on the next sync"
                            ),
                        });
                    }
                }
                continue;
            }
            if !found.is_empty() {
                summary.bookings.skipped += 1;
                problems.push(Problem {
                    subject: format!("booking {}", want.label),
                    message: "its essensys copy was cancelled and a cancelled booking cannot be restored; book it again in OfficeRnD".to_owned(),
                });
                continue;
            }
            let new = NewBooking {
                space_id: want.space_id.clone(),
                user_id: want.user_id.clone(),
                occupier_id: want.occupier_id.clone(),
                start: want.start,
                end: want.end,
                external_ref: Some(reference.clone()),
            };
            match self.api.create_booking(&self.site.id, &new).await {
                Ok(_) => summary.bookings.created += 1,
                Err(e) => {
                    summary.bookings.failed += 1;
                    problems.push(Problem {
                        subject: format!("booking {}", want.label),
                        message: format!("not mirrored to essensys: {e}; retried on the next sync"),
                    });
                }
            }
        }
        for booking in current {
            let Some(reference) = booking.external_ref.as_deref() else {
                continue;
            };
            let ours = matches!(
                booking.source,
                BookingSource::Officernd | BookingSource::TapToBook
            );
            if !ours
                || booking.status != BookingStatus::Confirmed
                || booking.end <= self.at
                || wanted.contains_key(reference)
                || fresh.contains(&base(reference))
            {
                continue;
            }
            match self.api.cancel_booking(&self.site.id, &booking.id).await {
                Ok(_) => summary.bookings_cancelled += 1,
                Err(e) => {
                    summary.bookings.failed += 1;
                    problems.push(Problem {
                        subject: format!("booking {reference}"),
                        message: format!("cancelled or moved in OfficeRnD but not cancelled in essensys: {e}; retried on the next sync"),
                    });
                }
            }
        }
    }
}
