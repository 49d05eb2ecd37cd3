//! Keeps an OfficeRnD picture current at scale: a complete read (bookings windowed by their series
//! bounds) at start-up and on a slow schedule, and between them incremental reads that ask each
//! collection only for what changed since the previous read (`modifiedAt[$gt]`, with
//! [`wire::INCREMENTAL_OVERLAP`]), applied to the picture in place like a webhook's change.
//!
//! Both are all-or-nothing: a read that fails (after the client's per-page retries) changes
//! nothing, and the next one asks again from the same point, so the engine never sees part of a
//! read.
//!
//! What an incremental read cannot see, and how each is caught (the reason for the periodic
//! complete read, [`super::refresh::ReadPolicy::complete_every`]):
//!
//! - deletions: a deleted object is not listed by `modifiedAt[$gt]`. Known: `member.removed`,
//!   `company.removed`, `membership.removed` and `booking.removed` webhooks exist (vendor-apis.md
//!   §1.6) and are applied in place; without a webhook, the next complete read drops the object
//!   (the picture is replaced whole), so a deletion grants access at most until then;
//! - memberships: their list REJECTS `modifiedAt` filters (observed on staging, obs-01: 400
//!   "property modifiedAt should not exist"; a third-party backup tool's registry claims otherwise
//!   but also says it falls back to full pulls when a filter is refused). Each resync asks
//!   `GET /memberships/count` (one request); a changed total (one created or deleted without a
//!   webhook) reads memberships whole; a change of an existing membership arrives by its
//!   `membership.updated` webhook, else with the complete read;
//! - assignments: known: no webhook events (vendor-apis.md §1.6; `occupancyslot.*` are booking
//!   occurrences), no `modifiedAt` in the documented object (`{_id, resource, membership,
//!   startDate, endDate}`, doc-09), no list without a `resource` or `membership` filter, and the
//!   reference says they are "the result of a membership for a specific resource". So they get
//!   the memberships' rule, the other collection that cannot be asked what changed: each resync
//!   asks `GET /assignments/count` (one request; inferred to exist, [`wire::COUNTED`]) and reads
//!   every assignment of the assignable resources (`resource[$in]` batches of
//!   [`wire::IDS_PER_FILTER`]) only when that total moved since they were last read whole. What
//!   else reaches them, and how late:
//!   - a membership change: a `membership.*` webhook re-reads that membership's assignments at
//!     once (`operator::orgs`); memberships read whole because their count moved re-read the
//!     assignments of every membership that is new or differs (`membership[$in]` batches), so a
//!     desk given to a new membership arrives with the same resync even when the assignments
//!     total did not move;
//!   - an assignment created or deleted: moves the total, arrives with the next resync;
//!   - an existing assignment changed with the total unchanged and no membership change (a desk
//!     moved to another membership, an end date moved), or one created and one deleted between
//!     two resyncs: no cheap question shows it. Assignments are read whole at least every
//!     [`ReadPolicy::assignments_every`] (1 hour by default; the daily complete read too), so such
//!     a change reaches the doors at most `assignments_every` plus one `syncInterval` late;
//!   - a refused count (404 or 400): remembered per organization in [`ReadMark::whole`], and
//!     assignments are read whole at every resync, as before the count was asked;
//! - visitors: a third-party backup tool says visitors "expose no timestamp at all"; ours is
//!   inferred to filter like the other community collections, and a refused filter (400) makes the
//!   client read the collection whole instead, remembered per organization.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;

use super::client::{BookingWindow, ListQuery, OfficeRndClient, OfficeRndError};
use super::collection::{Collection, CollectionSet};
use super::model::{
    Assignment, Booking, Company, Floor, Location, Member, Membership, Pass, Plan, Resource,
    Snapshot, Visitor,
};
use super::{snapshot, wire};
use crate::engine::{Index, Touched};
use crate::http::HttpError;

/// When complete reads happen and which bookings a picture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPolicy {
    /// A complete read at least this often: what incremental reads cannot see (deletions without
    /// a webhook, changed memberships and assignments without one) lasts at most this long.
    pub complete_every: Duration,
    /// Bookings are held from this long ago (a booking that ended earlier grants nothing now)...
    pub past: Duration,
    /// ...to this far ahead (the booking horizon).
    pub ahead: Duration,
    /// The horizon is moved forward (to `ahead`) when less than this is left, so it always stays
    /// at least this far ahead while reads succeed.
    pub min_ahead: Duration,
    /// How far before the previous read's start an incremental read asks from.
    pub overlap: Duration,
    /// Assignments are read whole at least this often: how stale an assignment changed without
    /// moving the assignments total or any membership can get (see the module doc).
    pub assignments_every: Duration,
}

impl Default for ReadPolicy {
    fn default() -> Self {
        Self {
            complete_every: Duration::hours(24),
            past: Duration::days(1),
            ahead: Duration::days(8),
            min_ahead: Duration::days(7),
            overlap: wire::INCREMENTAL_OVERLAP,
            assignments_every: Duration::hours(1),
        }
    }
}

impl ReadPolicy {
    /// The booking window a complete read at `now` reads.
    pub fn window(&self, now: DateTime<Utc>) -> BookingWindow {
        BookingWindow {
            from: now - self.past,
            to: now + self.ahead,
        }
    }
}

/// Where the previous read left off: what the next incremental read asks from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    /// The collections the picture holds.
    pub reads: CollectionSet,
    /// When the last complete read started.
    pub complete_at: DateTime<Utc>,
    /// When the last successful read (complete or incremental) started.
    pub since: DateTime<Utc>,
    /// The bookings held: every series overlapping this window (`None`: bookings not read).
    pub window: Option<BookingWindow>,
    /// Collections read whole at every resync because the API refused the cheap question: the
    /// `modifiedAt` filter, or for assignments the count.
    pub whole: CollectionSet,
    /// When the assignments were last read whole (a complete read, or an incremental read that
    /// found their total moved or [`ReadPolicy::assignments_every`] passed).
    pub assignments_at: DateTime<Utc>,
    /// OfficeRnD's assignments total asked just before that read (`None`: not known, so the next
    /// resync reads them whole).
    pub assignments_total: Option<u64>,
}

impl ReadMark {
    /// Up to when the held bookings are complete.
    pub fn horizon(&self) -> Option<DateTime<Utc>> {
        self.window.map(|window| window.to)
    }

    /// Whether the periodic complete read is due at `now`.
    pub fn complete_due(&self, now: DateTime<Utc>, policy: &ReadPolicy) -> bool {
        now - self.complete_at >= policy.complete_every
    }
}

/// The collections a read of `reads` covers (assignments are found through the resources).
pub fn covering(reads: CollectionSet) -> CollectionSet {
    if reads.contains(Collection::Assignments) {
        reads.with(Collection::Resources)
    } else {
        reads
    }
}

/// A complete read at `now`: every collection of `reads` whole, bookings in the policy's window.
pub async fn read_complete(
    client: &OfficeRndClient,
    reads: CollectionSet,
    now: DateTime<Utc>,
    policy: &ReadPolicy,
) -> Result<(Snapshot, ReadMark), OfficeRndError> {
    let reads = covering(reads);
    let window = reads
        .contains(Collection::Bookings)
        .then(|| policy.window(now));
    let mut whole = CollectionSet::EMPTY;
    // Asked before the list, so an assignment made while the list pages moves the next count.
    let assignments_total = if reads.contains(Collection::Assignments) {
        assignments_count(&client.reading(reads), &mut whole).await?
    } else {
        None
    };
    let snapshot = snapshot::fetch_windowed(client, reads, window).await?;
    Ok((
        snapshot,
        ReadMark {
            reads,
            complete_at: now,
            since: now,
            window,
            whole,
            assignments_at: now,
            assignments_total,
        },
    ))
}

/// Indexes a complete read, recording its booking horizon (the engine's next-change instants stop
/// there).
pub fn index(snapshot: Snapshot, mark: &ReadMark) -> Index {
    let mut index = Index::build(snapshot);
    index.set_booking_horizon(mark.horizon());
    index
}

/// What an incremental read needs to know of the picture it refreshes: the picture itself,
/// borrowed for the read (its assignable resources, its memberships to compare with a whole
/// read of them).
#[derive(Clone, Copy)]
pub struct Held<'a> {
    index: &'a Index,
}

impl<'a> Held<'a> {
    pub fn of(index: &'a Index) -> Self {
        Held { index }
    }

    /// The assignable resources (their assignments are what a whole read of assignments lists).
    fn assignable(&self) -> Vec<String> {
        self.index
            .resources()
            .filter(|resource| snapshot::is_assignable(resource))
            .map(|resource| resource.id.clone())
            .collect()
    }

    /// How many memberships the picture holds (compared with OfficeRnD's count).
    fn memberships(&self) -> u64 {
        self.index.memberships().count() as u64
    }

    /// Whether `membership` is new to the picture or differs from the one it holds.
    fn differs(&self, membership: &Membership) -> bool {
        self.index.membership(&membership.id) != Some(membership)
    }
}

/// The assignments of some memberships, read because those memberships are new or changed:
/// replaces what the picture holds for exactly these memberships.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MembershipAssignments {
    pub memberships: Vec<String>,
    pub assignments: Vec<Assignment>,
}

/// What an incremental read found: objects changed since the previous read (upserted), and the
/// collections read whole this time (replaced: what is missing was deleted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub members: Vec<Member>,
    pub companies: Vec<Company>,
    pub resources: Vec<Resource>,
    pub bookings: Vec<Booking>,
    pub passes: Vec<Pass>,
    pub visitors: Vec<Visitor>,
    pub locations: Option<Vec<Location>>,
    pub floors: Option<Vec<Floor>>,
    pub plans: Option<Vec<Plan>>,
    /// Every membership, when OfficeRnD's count differed from the picture's.
    pub memberships: Option<Vec<Membership>>,
    /// Every assignment of the assignable resources (their total moved, or
    /// [`ReadPolicy::assignments_every`] passed, or the count is refused).
    pub assignments: Option<Vec<Assignment>>,
    /// Otherwise, the assignments of the memberships the whole memberships read found new or
    /// changed.
    pub membership_assignments: Option<MembershipAssignments>,
    /// The booking horizon after this read.
    pub horizon: Option<DateTime<Utc>>,
}

impl Changes {
    /// Keeps the changed objects for which `keep(collection, id)` holds (the collections read
    /// whole are kept whole: what they lack was deleted).
    pub fn retain(&mut self, mut keep: impl FnMut(Collection, &str) -> bool) {
        self.members.retain(|o| keep(Collection::Members, &o.id));
        self.companies
            .retain(|o| keep(Collection::Companies, &o.id));
        self.resources
            .retain(|o| keep(Collection::Resources, &o.id));
        self.bookings.retain(|o| keep(Collection::Bookings, &o.id));
        self.passes.retain(|o| keep(Collection::Passes, &o.id));
        self.visitors.retain(|o| keep(Collection::Visitors, &o.id));
    }

    /// How many objects the read returned (for logs and the benchmark).
    pub fn objects(&self) -> usize {
        self.members.len()
            + self.companies.len()
            + self.resources.len()
            + self.bookings.len()
            + self.passes.len()
            + self.visitors.len()
            + self.locations.as_ref().map_or(0, Vec::len)
            + self.floors.as_ref().map_or(0, Vec::len)
            + self.plans.as_ref().map_or(0, Vec::len)
            + self.memberships.as_ref().map_or(0, Vec::len)
            + self.assignments.as_ref().map_or(0, Vec::len)
            + self
                .membership_assignments
                .as_ref()
                .map_or(0, |read| read.assignments.len())
    }
}

/// An incremental read at `now` of what changed since `mark`: the collections with a
/// `modifiedAt` filter from `mark.since − overlap`; locations, floors and plans whole (small, no
/// date filters); memberships whole only when their count moved; assignments whole only when
/// their count moved or `assignments_every` passed, else the assignments of the memberships found
/// new or changed; and, when the booking horizon has come closer than `min_ahead`, the series
/// starting between the old horizon and the new one. Returns the changes and the mark the next
/// read starts from.
pub async fn read_changes(
    client: &OfficeRndClient,
    mark: &ReadMark,
    held: Held<'_>,
    now: DateTime<Utc>,
    policy: &ReadPolicy,
) -> Result<(Changes, ReadMark), OfficeRndError> {
    let reads = mark.reads;
    let client = &client.reading(reads);
    let after = mark.since - policy.overlap;
    let mut whole = mark.whole;
    let mut changes = Changes::default();
    if reads.contains(Collection::Members) {
        changes.members = changed(client, Collection::Members, after, &mut whole).await?;
    }
    if reads.contains(Collection::Companies) {
        changes.companies = changed(client, Collection::Companies, after, &mut whole).await?;
    }
    if reads.contains(Collection::Resources) {
        changes.resources = changed(client, Collection::Resources, after, &mut whole).await?;
    }
    if reads.contains(Collection::Passes) {
        changes.passes = changed(client, Collection::Passes, after, &mut whole).await?;
    }
    if reads.contains(Collection::Visitors) {
        changes.visitors = changed(client, Collection::Visitors, after, &mut whole).await?;
    }
    if reads.contains(Collection::Locations) {
        changes.locations = Some(Box::pin(client.list_locations()).await?);
    }
    if reads.contains(Collection::Floors) {
        changes.floors = Some(Box::pin(client.list_floors()).await?);
    }
    if reads.contains(Collection::Plans) {
        changes.plans = Some(Box::pin(client.list_plans()).await?);
    }
    let mut window = mark.window;
    if reads.contains(Collection::Bookings) {
        changes.bookings = changed(client, Collection::Bookings, after, &mut whole).await?;
        if let Some(held_window) = mark.window {
            if held_window.to - now < policy.min_ahead {
                let wanted = policy.window(now);
                let gained: Vec<Booking> =
                    Box::pin(client.list_bookings_starting(held_window.to, wanted.to)).await?;
                changes.bookings.extend(gained);
                window = Some(BookingWindow {
                    from: held_window.from,
                    to: wanted.to,
                });
            }
        }
        changes.horizon = window.map(|window| window.to);
    }
    if reads.contains(Collection::Memberships) {
        let total = Box::pin(client.count(Collection::Memberships)).await?;
        let memberships = held.memberships();
        if total != memberships {
            tracing::info!(
                officernd_total = total,
                held = memberships,
                "OfficeRnD's membership count moved; reading memberships whole"
            );
            changes.memberships = Some(Box::pin(client.list_memberships()).await?);
        }
    }
    let mut assignments_at = mark.assignments_at;
    let mut assignments_total = mark.assignments_total;
    if reads.contains(Collection::Assignments) {
        let due = now - mark.assignments_at >= policy.assignments_every;
        let total = if whole.contains(Collection::Assignments) {
            None
        } else {
            assignments_count(client, &mut whole).await?
        };
        let moved = total.is_none() || total != mark.assignments_total;
        if due || moved {
            tracing::debug!(
                due,
                officernd_total = total,
                held_total = mark.assignments_total,
                "reading OfficeRnD's assignments whole"
            );
            changes.assignments =
                Some(Box::pin(assignments_whole(client, held, &changes.resources)).await?);
            assignments_at = now;
            assignments_total = total;
        } else if let Some(memberships) = &changes.memberships {
            let changed: Vec<String> = memberships
                .iter()
                .filter(|membership| held.differs(membership))
                .map(|membership| membership.id.clone())
                .collect();
            if !changed.is_empty() {
                let assignments =
                    Box::pin(client.list_assignments_for_memberships(&changed)).await?;
                changes.membership_assignments = Some(MembershipAssignments {
                    memberships: changed,
                    assignments,
                });
            }
        }
    }
    Ok((
        changes,
        ReadMark {
            reads,
            complete_at: mark.complete_at,
            since: now,
            window,
            whole,
            assignments_at,
            assignments_total,
        },
    ))
}

/// OfficeRnD's assignments total; `None` when the API refuses the count (remembered in `whole`,
/// so assignments are read whole from then on and the count is not asked again).
async fn assignments_count(
    client: &OfficeRndClient,
    whole: &mut CollectionSet,
) -> Result<Option<u64>, OfficeRndError> {
    let total = Box::pin(client.count_if_served(Collection::Assignments)).await?;
    if total.is_none() {
        tracing::warn!(
            "OfficeRnD refused GET /assignments/count; reading assignments whole at every resync"
        );
        *whole = whole.with(Collection::Assignments);
    }
    Ok(total)
}

/// Every assignment of the assignable resources: those held, less those `changed` says are no
/// longer assignable, plus those it says became assignable.
async fn assignments_whole(
    client: &OfficeRndClient,
    held: Held<'_>,
    changed: &[Resource],
) -> Result<Vec<Assignment>, OfficeRndError> {
    let mut assignable: Vec<String> = held.assignable();
    let mut seen: HashSet<String> = assignable.iter().cloned().collect();
    let not_assignable: HashSet<&str> = changed
        .iter()
        .filter(|resource| !snapshot::is_assignable(resource))
        .map(|resource| resource.id.as_str())
        .collect();
    assignable.retain(|id| !not_assignable.contains(id.as_str()));
    for resource in changed {
        if snapshot::is_assignable(resource) && seen.insert(resource.id.clone()) {
            assignable.push(resource.id.clone());
        }
    }
    client.list_assignments_for_resources(&assignable).await
}

/// The objects of `collection` modified after `after`; the whole collection when the API refuses
/// the filter there (remembered in `whole`, so it is not asked again).
async fn changed<T: DeserializeOwned>(
    client: &OfficeRndClient,
    collection: Collection,
    after: DateTime<Utc>,
    whole: &mut CollectionSet,
) -> Result<Vec<T>, OfficeRndError> {
    if collection.supports_modified_filter() && !whole.contains(collection) {
        let query = ListQuery::new().modified_after(after);
        match Box::pin(client.list(collection, &query)).await {
            Ok(items) => return Ok(items),
            Err(OfficeRndError::Http(HttpError::BadRequest { ref message, .. }))
                if message.contains("should not exist") =>
            {
                tracing::warn!(
                    %collection,
                    "OfficeRnD refused the modifiedAt filter here; reading it whole at every resync"
                );
                *whole = whole.with(collection);
            }
            Err(error) => return Err(error),
        }
    }
    Box::pin(client.list(collection, &ListQuery::new())).await
}

/// Objects with an OfficeRnD id.
trait HasId {
    fn id(&self) -> &str;
}

macro_rules! has_id {
    ($($t:ty),*) => {$(
        impl HasId for $t {
            fn id(&self) -> &str {
                &self.id
            }
        }
    )*};
}

has_id!(Location, Floor, Plan, Membership, Assignment);

/// Which held objects are gone from `fresh` (their ids) and which of `fresh` are new or differ.
fn replacing<'f, 'h, T: HasId + PartialEq + 'h>(
    held: impl Iterator<Item = &'h T>,
    fresh: &'f [T],
) -> (Vec<String>, Vec<&'f T>) {
    let held: HashMap<&str, &T> = held.map(|object| (object.id(), object)).collect();
    let keep: HashSet<&str> = fresh.iter().map(HasId::id).collect();
    let gone = held
        .keys()
        .filter(|id| !keep.contains(*id))
        .map(|id| (*id).to_owned())
        .collect();
    let differ = fresh
        .iter()
        .filter(|object| held.get(object.id()) != Some(object))
        .collect();
    (gone, differ)
}

/// Applies `changes` to `index`; returns what they touched (nothing for an object that arrives
/// unchanged, so an overlap re-read reconciles nothing).
pub fn apply(index: &mut Index, changes: &Changes) -> Touched {
    let mut touched = Touched::default();
    macro_rules! upsert_changed {
        ($items:expr, $get:ident, $upsert:ident) => {
            for item in $items {
                if index.$get(&item.id) != Some(item) {
                    touched.merge(index.$upsert(item.clone()));
                }
            }
        };
    }
    macro_rules! replace_all {
        ($items:expr, $iter:ident, $upsert:ident, $remove:ident) => {
            if let Some(fresh) = $items {
                let (gone, differ) = replacing(index.$iter(), fresh);
                let differ: Vec<_> = differ.into_iter().cloned().collect();
                for id in gone {
                    touched.merge(index.$remove(&id));
                }
                for item in differ {
                    touched.merge(index.$upsert(item));
                }
            }
        };
    }
    replace_all!(
        &changes.locations,
        locations,
        upsert_location,
        remove_location
    );
    replace_all!(&changes.floors, floors, upsert_floor, remove_floor);
    replace_all!(&changes.plans, plans, upsert_plan, remove_plan);
    upsert_changed!(&changes.resources, resource, upsert_resource);
    upsert_changed!(&changes.companies, company, upsert_company);
    upsert_changed!(&changes.members, member, upsert_member);
    replace_all!(
        &changes.memberships,
        memberships,
        upsert_membership,
        remove_membership
    );
    replace_all!(
        &changes.assignments,
        assignments,
        upsert_assignment,
        remove_assignment
    );
    if let Some(read) = &changes.membership_assignments {
        let fresh: HashSet<&str> = read.assignments.iter().map(|a| a.id.as_str()).collect();
        for membership in &read.memberships {
            for id in index.assignments_of_membership(membership) {
                if !fresh.contains(id.as_str()) {
                    touched.merge(index.remove_assignment(&id));
                }
            }
        }
        for assignment in &read.assignments {
            if index.assignment(&assignment.id) != Some(assignment) {
                touched.merge(index.upsert_assignment(assignment.clone()));
            }
        }
    }
    upsert_changed!(&changes.passes, pass, upsert_pass);
    upsert_changed!(&changes.visitors, visitor, upsert_visitor);
    upsert_changed!(&changes.bookings, booking, upsert_booking);
    if let Some(horizon) = changes.horizon {
        if index.booking_horizon().is_none_or(|held| horizon > held) {
            index.set_booking_horizon(Some(horizon));
        }
    }
    touched
}
