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
//!
//! Everything here is a pure decision from what was read (the OfficeRnD [`LocationView`], the
//! essensys bookings, the [`Links`] of the entity pass); [`super::apply::BookingPass`] reads,
//! and makes the writes.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::api::status::Problem;
use crate::engine::recurrence::{expand, parse_recurrence, ExpansionWindow};
use crate::officernd::format_timestamp;
use crate::vendors::essensys::model::{
    Booking, BookingFilter, BookingSource, BookingStatus, BookingUpdate, NewBooking,
};

pub use super::apply::BookingPass;
use super::entities::Links;
use super::LocationView;

/// How far ahead occurrences of recurring series are mirrored; later ones follow as time passes.
pub const SERIES_HORIZON_DAYS: i64 = 28;
/// The OfficeRnD booking property naming the essensys tap-to-book booking it came from.
pub const MARKER_PROPERTY: &str = "essensysBookingId";
/// Title of OfficeRnD bookings created from a tap.
pub const TAP_TO_BOOK_TITLE: &str = "elumo tap to book";
/// Bookings ending later than this are treated as "far future" when listing essensys bookings.
const LIST_HORIZON_DAYS: i64 = 3660;

/// The essensys bookings the mirror compares with: every booking overlapping now and the far
/// future.
pub fn current_window(at: DateTime<Utc>) -> BookingFilter {
    BookingFilter {
        overlapping: Some((at, at + Duration::days(LIST_HORIZON_DAYS))),
        ..BookingFilter::default()
    }
}

/// One essensys booking as OfficeRnD says it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub space_id: String,
    pub user_id: Option<String>,
    pub occupier_id: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub label: String,
}

/// Confirmed tap-to-book bookings not yet linked to an OfficeRnD booking.
pub fn unlinked_taps(taps: &[Booking]) -> Vec<&Booking> {
    taps.iter()
        .filter(|b| b.source == BookingSource::TapToBook)
        .filter(|b| b.status == BookingStatus::Confirmed && b.external_ref.is_none())
        .collect()
}

/// OfficeRnD bookings carrying our marker: essensys booking id → OfficeRnD booking id.
pub fn marked_bookings(all: &[Value]) -> HashMap<String, String> {
    all.iter()
        .filter_map(|b| {
            let marker = b
                .pointer(&format!("/properties/{MARKER_PROPERTY}"))?
                .as_str()?;
            let id = b.get("_id")?.as_str()?;
            Some((marker.to_owned(), id.to_owned()))
        })
        .collect()
}

/// What happens to one unlinked tap-to-book booking.
#[derive(Debug, Clone, PartialEq)]
pub enum TapStep {
    /// An earlier pass created it in OfficeRnD (the booking there carries our marker): link it.
    Link {
        tap_id: String,
        officernd_id: String,
    },
    /// Create it in OfficeRnD with this body, then link it to the new booking.
    Create { tap_id: String, body: Value },
    /// It cannot be created in OfficeRnD: skipped and reported.
    Skip(Problem),
}

/// The back-sync of `unlinked` taps (see [`unlinked_taps`]), given the OfficeRnD bookings that
/// carry our marker.
pub fn plan_back_sync(
    unlinked: &[&Booking],
    marked: &HashMap<String, String>,
    view: &LocationView<'_>,
    links: &Links,
) -> Vec<TapStep> {
    let resource_of: HashMap<&str, &str> = links
        .spaces
        .iter()
        .map(|(resource, space)| (space.as_str(), resource.as_str()))
        .collect();
    let member_of: HashMap<&str, &str> = links
        .users
        .iter()
        .map(|(member, user)| (user.as_str(), member.as_str()))
        .collect();
    let occupier_key_of: HashMap<&str, &str> = links
        .occupiers
        .iter()
        .map(|(key, occupier)| (occupier.as_str(), key.as_str()))
        .collect();
    let mut steps = Vec::with_capacity(unlinked.len());
    for tap in unlinked {
        if let Some(id) = marked.get(&tap.id) {
            steps.push(TapStep::Link {
                tap_id: tap.id.clone(),
                officernd_id: id.clone(),
            });
            continue;
        }
        let Some(resource) = resource_of.get(tap.space_id.as_str()) else {
            steps.push(TapStep::Skip(Problem {
                subject: format!("tap-to-book booking {}", tap.id),
                message: format!("space {} is not linked to an OfficeRnD resource, so the booking cannot be created in OfficeRnD", tap.space_id),
            }));
            continue;
        };
        let member = tap
            .user_id
            .as_deref()
            .and_then(|u| member_of.get(u))
            .and_then(|m| view.member(m));
        let company = member.and_then(|m| m.company.clone()).or_else(|| {
            tap.occupier_id
                .as_deref()
                .and_then(|o| occupier_key_of.get(o))
                .filter(|key| view.company(key).is_some())
                .map(|key| key.to_string())
        });
        let mut body = json!({
            "resource": resource,
            "location": view.location.id,
            "start": format_timestamp(tap.start),
            "end": format_timestamp(tap.end),
            "title": TAP_TO_BOOK_TITLE,
            "properties": { MARKER_PROPERTY: tap.id },
        });
        if let Some(zone) = &view.location.timezone {
            body["timezone"] = json!(zone);
        }
        if let Some(member) = member {
            body["member"] = json!(member.id);
        }
        if let Some(company) = company {
            body["company"] = json!(company);
        }
        steps.push(TapStep::Create {
            tap_id: tap.id.clone(),
            body,
        });
    }
    steps
}

/// The essensys calendar as OfficeRnD says it should be, by `externalRef`.
pub fn wanted(
    view: &LocationView<'_>,
    links: &Links,
    at: DateTime<Utc>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Wanted> {
    let mut wanted = BTreeMap::new();
    let through = at + Duration::days(SERIES_HORIZON_DAYS);
    for booking in &view.bookings {
        if booking.is_cancelled || booking.is_tentative {
            continue;
        }
        let Some(space_id) = booking.resource.as_ref().and_then(|r| links.spaces.get(r)) else {
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
            .and_then(|m| links.users.get(m))
            .cloned();
        let occupier_id = booking
            .member
            .as_ref()
            .and_then(|m| links.member_occupier.get(m))
            .or(booking.company.as_deref().map(|c| c.to_owned()).as_ref())
            .and_then(|key| links.occupiers.get(key))
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
            if end > at {
                wanted.insert(booking.id.clone(), one(start, end));
            }
            continue;
        };
        let length = end - start;
        let zone: Tz = booking
            .timezone
            .as_deref()
            .or(view.location.timezone.as_deref())
            .and_then(|z| z.parse().ok())
            .unwrap_or(Tz::UTC);
        let exdates = booking
            .recurrence
            .as_ref()
            .map(|r| r.exdates.clone())
            .unwrap_or_default();
        let window = ExpansionWindow {
            from: at - length,
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
                    if occurrence + length > at && occurrence <= through {
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

/// What happens to one booking of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorStep {
    /// Its essensys copy is as OfficeRnD says.
    Unchanged,
    /// Its essensys copy drifted: overwrite it.
    Update {
        booking_id: String,
        update: BookingUpdate,
        label: String,
    },
    /// Its essensys copy was cancelled there, and a cancelled booking cannot be restored:
    /// skipped and reported.
    CancelledCopy { label: String },
    /// It has no essensys copy: create one.
    Create { new: NewBooking, label: String },
    /// A copy of ours whose OfficeRnD booking was cancelled, moved or deleted: cancel it.
    Cancel {
        booking_id: String,
        reference: String,
    },
}

/// The mirror's steps, and what planning found wrong (unreadable series).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorPlan {
    pub steps: Vec<MirrorStep>,
    pub problems: Vec<Problem>,
}

/// The essensys calendar made equal to OfficeRnD's (`current`: the essensys bookings of
/// [`current_window`]); bookings the back-sync created or linked in this pass (`fresh`, OfficeRnD
/// ids not yet in the snapshot) are left alone.
pub fn plan_mirror(
    view: &LocationView<'_>,
    links: &Links,
    current: &[Booking],
    fresh: &HashSet<String>,
    at: DateTime<Utc>,
) -> MirrorPlan {
    let mut plan = MirrorPlan::default();
    let wanted = wanted(view, links, at, &mut plan.problems);
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
            plan.steps.push(if update == BookingUpdate::default() {
                MirrorStep::Unchanged
            } else {
                MirrorStep::Update {
                    booking_id: existing.id.clone(),
                    update,
                    label: want.label.clone(),
                }
            });
            continue;
        }
        if !found.is_empty() {
            plan.steps.push(MirrorStep::CancelledCopy {
                label: want.label.clone(),
            });
            continue;
        }
        plan.steps.push(MirrorStep::Create {
            new: NewBooking {
                space_id: want.space_id.clone(),
                user_id: want.user_id.clone(),
                occupier_id: want.occupier_id.clone(),
                start: want.start,
                end: want.end,
                external_ref: Some(reference.clone()),
            },
            label: want.label.clone(),
        });
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
            || booking.end <= at
            || wanted.contains_key(reference)
            || fresh.contains(&base(reference))
        {
            continue;
        }
        plan.steps.push(MirrorStep::Cancel {
            booking_id: booking.id.clone(),
            reference: reference.to_owned(),
        });
    }
    plan
}
