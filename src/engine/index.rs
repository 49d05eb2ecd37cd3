//! The in-memory index over an OfficeRnD snapshot: objects by id and by every relation the access rules
//! follow (plan → memberships, company → members, resource → assignments and booking timeline, ...), kept up
//! to date by `upsert_*` / `remove_*`, which also report what each change touches so that only the affected
//! bindings are re-evaluated.

use std::collections::BTreeSet;
use std::hash::Hasher;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::engine::calendar::Window;
use crate::engine::eligibility::{member_bar, Bar};
use crate::engine::hash::{FastMap, FastSet, FxHasher};
use crate::engine::recurrence::{parse_recurrence, SeriesRule};
use crate::engine::types::{Binding, ObjectKind, ObjectRef, Problem, ProblemKind, Source};
use crate::identity::canonical_email;
use crate::officernd::model::{
    Assignment, Booking, Company, Floor, Location, Member, Membership, ObjectId, Pass, Plan,
    Resource, Snapshot, Visitor,
};

/// A stable position of an object in its table (reused after removal).
pub(crate) type Slot = u32;

/// Objects that carry an OfficeRnD `_id`.
pub(crate) trait Identified {
    fn object_id(&self) -> &str;
}

macro_rules! identified {
    ($($ty:ty),*) => {
        $(impl Identified for $ty {
            fn object_id(&self) -> &str {
                &self.id
            }
        })*
    };
}
identified!(
    Member, Company, Membership, Plan, Location, Floor, Resource, Assignment, Booking, Pass,
    Visitor
);

/// One collection: objects in slots, found by id.
///
/// The id map is keyed by the id's 64-bit hash and every hit is checked against the stored object's own id,
/// so the table does not hold a second copy of each id string (300,000 bookings made those copies tens of
/// megabytes). An id whose hash is already taken by another stored id (possible, if astronomically rare) is
/// kept in `collided`, keyed by the id itself; a look-up tries `slots` first, then `collided`.
#[derive(Debug, Clone)]
pub(crate) struct Table<T> {
    items: Vec<Option<T>>,
    /// Per slot, bumped whenever the slot is emptied, so a [`Link`] to an object that left cannot pass for
    /// the object that later reuses its slot.
    generations: Vec<u32>,
    slots: FastMap<u64, Slot>,
    collided: FastMap<ObjectId, Slot>,
    free: Vec<Slot>,
    /// Per slot, the object's id as handed out in evaluations, for tables whose ids appear in most grants
    /// (`None` for bookings: 300,000 shared copies would cost more than the few booking grants save).
    shared: Option<Vec<Option<Arc<str>>>>,
}

/// A remembered slot of one object (e.g. a membership's member), resolved when the referring object was
/// indexed. Following it costs one read instead of a hash look-up and an id comparison (two more scattered
/// reads); it is trusted only while the slot's generation is unchanged, and a stale or missing link falls
/// back to the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    slot: Slot,
    generation: u32,
}

fn id_hash(id: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(id.as_bytes());
    hasher.finish()
}

impl<T: Identified> Table<T> {
    fn with_capacity(capacity: usize) -> Self {
        Table {
            items: Vec::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
            slots: FastMap::with_capacity_and_hasher(capacity, Default::default()),
            collided: FastMap::default(),
            free: Vec::new(),
            shared: None,
        }
    }

    /// A table that also keeps each id shared for evaluations (see [`Table::shared_id`]).
    fn sharing_ids(capacity: usize) -> Self {
        let mut table = Self::with_capacity(capacity);
        table.shared = Some(Vec::with_capacity(capacity));
        table
    }

    /// A table holding `items` in their order (slot `n` is `items[n]`), in the list's own memory
    /// (an `Option<T>` is as large as a `T`, so the list is not copied): the same table as
    /// upserting each into an empty one, while a complete read's largest lists are never held
    /// twice. `None` (and `items` back) when two items share an id or an id hash; upserting them
    /// one by one then decides which is kept.
    fn adopt(items: Vec<T>, share: bool) -> Result<Self, Vec<T>> {
        let mut slots = FastMap::with_capacity_and_hasher(items.len(), Default::default());
        for (slot, item) in items.iter().enumerate() {
            if slots
                .insert(id_hash(item.object_id()), slot as Slot)
                .is_some()
            {
                return Err(items);
            }
        }
        let shared = share.then(|| {
            items
                .iter()
                .map(|item| Some(Arc::from(item.object_id())))
                .collect()
        });
        Ok(Table {
            generations: vec![0; items.len()],
            // Collected in place: same size and alignment.
            items: items.into_iter().map(Some).collect(),
            slots,
            collided: FastMap::default(),
            free: Vec::new(),
            shared,
        })
    }

    /// The id of the object stored at `slot`, shared (`None` when the table does not share ids).
    pub(crate) fn shared_id(&self, slot: Slot) -> Option<&Arc<str>> {
        self.shared.as_ref()?.get(slot as usize)?.as_ref()
    }

    /// The shared id of the object with id `id`, if it is stored here.
    pub(crate) fn share_existing(&self, id: &str) -> Option<&Arc<str>> {
        self.shared_id(self.slot_of(id)?)
    }

    /// The shared id of the object with id `id`, or a new one if it is not stored here.
    pub(crate) fn share(&self, id: &str) -> Arc<str> {
        self.slot_of(id)
            .and_then(|slot| self.shared_id(slot))
            .map_or_else(|| Arc::from(id), Arc::clone)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&T> {
        self.slot_of(id).and_then(|slot| self.at(slot))
    }

    pub(crate) fn slot_of(&self, id: &str) -> Option<Slot> {
        let hashed = self.slots.get(&id_hash(id)).copied();
        match hashed {
            Some(slot) if self.holds(slot, id) => Some(slot),
            _ => self.collided.get(id).copied(),
        }
    }

    /// The object with this id and its slot.
    pub(crate) fn find(&self, id: &str) -> Option<(Slot, &T)> {
        let slot = self.slot_of(id)?;
        Some((slot, self.at(slot)?))
    }

    /// A link to the object with this id, if it is stored.
    fn link(&self, id: Option<&str>) -> Option<Link> {
        let slot = self.slot_of(id?)?;
        Some(Link {
            slot,
            generation: *self.generations.get(slot as usize)?,
        })
    }

    /// The object `link` was made for (which has id `id`), by the link while it is current, else by id.
    pub(crate) fn follow(&self, link: Option<Link>, id: Option<&str>) -> Option<(Slot, &T)> {
        if let Some(link) = link {
            if self.generations.get(link.slot as usize) == Some(&link.generation) {
                // Same generation: the slot still holds the object the link was made for.
                if let Some(item) = self.at(link.slot) {
                    return Some((link.slot, item));
                }
            }
        }
        self.find(id?)
    }

    fn holds(&self, slot: Slot, id: &str) -> bool {
        self.at(slot).is_some_and(|item| item.object_id() == id)
    }

    pub(crate) fn at(&self, slot: Slot) -> Option<&T> {
        self.items.get(slot as usize).and_then(Option::as_ref)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Slot, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(slot, item)| item.as_ref().map(|item| (slot as Slot, item)))
    }

    /// How many slots there are (occupied or free): every slot is below this.
    pub(crate) fn slot_count(&self) -> usize {
        self.items.len()
    }

    /// The slot the next new object will get.
    fn next_slot(&self) -> Slot {
        self.free
            .last()
            .copied()
            .unwrap_or(self.items.len() as Slot)
    }

    /// The slot [`Table::upsert`] will store an object with id `id` in: its current one, else the
    /// next free one.
    fn slot_for(&self, id: &str) -> Slot {
        self.slot_of(id).unwrap_or_else(|| self.next_slot())
    }

    /// Stores `item`, returning its slot and the object it replaced.
    fn upsert(&mut self, item: T) -> (Slot, Option<T>) {
        if let Some(slot) = self.slot_of(item.object_id()) {
            // Same id: the shared id stays valid.
            let previous = self.items[slot as usize].replace(item);
            return (slot, previous);
        }
        if let Some(shared) = &mut self.shared {
            let slot = self
                .free
                .last()
                .copied()
                .unwrap_or(self.items.len() as Slot);
            set_at(shared, slot, Some(Arc::from(item.object_id())));
        }
        let hash = id_hash(item.object_id());
        let hash_is_taken = self.slots.contains_key(&hash);
        let id = hash_is_taken.then(|| item.object_id().to_owned());
        let slot = match self.free.pop() {
            Some(slot) => {
                self.items[slot as usize] = Some(item);
                slot
            }
            None => {
                self.items.push(Some(item));
                self.generations.push(0);
                (self.items.len() - 1) as Slot
            }
        };
        match id {
            Some(id) => {
                self.collided.insert(id, slot);
            }
            None => {
                self.slots.insert(hash, slot);
            }
        }
        (slot, None)
    }

    fn remove(&mut self, id: &str) -> Option<(Slot, T)> {
        let hash = id_hash(id);
        let slot = match self.slots.get(&hash).copied() {
            Some(slot) if self.holds(slot, id) => self.slots.remove(&hash),
            _ => self.collided.remove(id),
        }?;
        let item = self.items.get_mut(slot as usize)?.take()?;
        if let Some(generation) = self.generations.get_mut(slot as usize) {
            *generation = generation.wrapping_add(1);
        }
        if let Some(shared) = self
            .shared
            .as_mut()
            .and_then(|ids| ids.get_mut(slot as usize))
        {
            *shared = None;
        }
        self.free.push(slot);
        Some((slot, item))
    }
}

/// Slots grouped under a key (a plan id, a company id, an email, ...).
///
/// Most keys hold one slot (a member's email, a member's personal membership), so one slot is kept
/// inline and only a key with several gets a list: 50,000 single-slot lists were 50,000 heap
/// allocations of 32 bytes each per map. Keys are boxed (16 bytes instead of a `String`'s 24).
#[derive(Debug, Clone, Default)]
pub(crate) struct MultiMap {
    map: FastMap<Box<str>, Slots>,
}

/// The slots under one key of a [`MultiMap`]: never empty.
#[derive(Debug, Clone)]
enum Slots {
    One(Slot),
    Many(Vec<Slot>),
}

impl Slots {
    fn as_slice(&self) -> &[Slot] {
        match self {
            Slots::One(slot) => std::slice::from_ref(slot),
            Slots::Many(slots) => slots,
        }
    }
}

impl MultiMap {
    fn add(&mut self, key: &str, slot: Slot) {
        match self.map.get_mut(key) {
            Some(Slots::Many(slots)) => slots.push(slot),
            Some(slots) => {
                let first = slots.as_slice().first().copied();
                *slots = Slots::Many(first.into_iter().chain([slot]).collect());
            }
            None => {
                self.map.insert(key.into(), Slots::One(slot));
            }
        }
    }

    fn remove(&mut self, key: &str, slot: Slot) {
        let Some(slots) = self.map.get_mut(key) else {
            return;
        };
        match slots {
            Slots::One(only) => {
                if *only == slot {
                    self.map.remove(key);
                }
            }
            Slots::Many(many) => {
                many.retain(|existing| *existing != slot);
                match many.as_slice() {
                    [] => {
                        self.map.remove(key);
                    }
                    [only] => *slots = Slots::One(*only),
                    _ => {}
                }
            }
        }
    }

    pub(crate) fn get(&self, key: &str) -> &[Slot] {
        self.map.get(key).map_or(&[], Slots::as_slice)
    }
}

fn add_opt(map: &mut MultiMap, key: Option<&str>, slot: Slot) {
    if let Some(key) = key {
        map.add(key, slot);
    }
}

fn remove_opt(map: &mut MultiMap, key: Option<&str>, slot: Slot) {
    if let Some(key) = key {
        map.remove(key, slot);
    }
}

/// Stores `value` for `slot` in a per-slot side table, growing it as needed.
fn set_at<V: Clone + Default>(values: &mut Vec<V>, slot: Slot, value: V) {
    let slot = slot as usize;
    if values.len() <= slot {
        values.resize(slot + 1, V::default());
    }
    values[slot] = value;
}

/// Per-slot memo of a time-independent window (membership periods, pass validity): computing one needs
/// time-zone conversions, and every binding over the same objects would otherwise repeat them.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowCache {
    cells: Vec<OnceLock<Window>>,
}

impl WindowCache {
    pub(crate) fn get_or_compute(&self, slot: Slot, compute: impl FnOnce() -> Window) -> Window {
        match self.cells.get(slot as usize) {
            Some(cell) => *cell.get_or_init(compute),
            None => compute(),
        }
    }

    fn reset(&mut self, slot: Slot) {
        let slot = slot as usize;
        if self.cells.len() <= slot {
            self.cells.resize_with(slot + 1, OnceLock::new);
        }
        self.cells[slot] = OnceLock::new();
    }

    fn clear(&mut self) {
        self.cells
            .iter_mut()
            .for_each(|cell| *cell = OnceLock::new());
    }
}

/// A single (non-recurring) booking placed on its resource's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Scheduled {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) slot: Slot,
}

/// The bookings of one resource that can grant access (not cancelled, not tentative).
#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    /// Sorted by start.
    pub(crate) singles: Vec<Scheduled>,
    /// An upper bound of `end - start` over `singles` (never shrinks; only used to bound searches).
    pub(crate) longest: Duration,
    /// Recurring bookings, expanded on demand.
    pub(crate) series: Vec<Slot>,
}

/// The people a membership grants: its member, or, for a company membership, the company's members.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Holder {
    Member(ObjectId),
    Company(ObjectId),
}

impl Holder {
    /// Who holds `membership`; `None` when it names neither a member nor a company.
    fn of(membership: &Membership) -> Option<Holder> {
        match (&membership.member, &membership.company) {
            (Some(member), _) => Some(Holder::Member(member.clone())),
            (None, Some(company)) => Some(Holder::Company(company.clone())),
            (None, None) => None,
        }
    }
}

/// What an OfficeRnD change touches, to find the bindings to re-evaluate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Touch {
    /// Memberships on this plan changed.
    Plan(ObjectId),
    /// Assignments to this resource changed (also concerns its floor and location).
    AssignedResource(ObjectId),
    /// Memberships on this plan changed, but only for `holder`: a plan grant depends on the membership and
    /// its holder alone, so nobody else's grants on the plan can differ.
    PlanHolder { plan: ObjectId, holder: Holder },
    /// Memberships assigned to this resource changed, but only for `holder` (as for
    /// [`Touch::PlanHolder`]); also concerns the resource's floor and location.
    AssignedResourceHolder { resource: ObjectId, holder: Holder },
    /// Bookings of this resource changed; `gated_only`: only the active-membership gate of people booking it
    /// changed, which matters only to bindings with `require_active_membership`.
    BookedResource {
        resource: ObjectId,
        gated_only: bool,
    },
    /// Day-pass sets changed (or, `gated_only`, the membership gate of pass holders).
    DayPasses { gated_only: bool },
    /// Something every binding may depend on (names, time zones, the space hierarchy).
    Everything,
}

/// The set of touches of one or more changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched(pub BTreeSet<Touch>);

impl Touched {
    fn add(&mut self, touch: Touch) {
        self.0.insert(touch);
    }

    pub fn merge(&mut self, other: Touched) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whose grants in a binding a change can alter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    Everyone,
    /// Only these members (by id); everyone else keeps their grants.
    Members(FastSet<ObjectId>),
}

/// A binding's source with its references resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolvedSource {
    Plan(ObjectId),
    Location(ObjectId),
    Floor(ObjectId),
    AssignableResource(ObjectId),
    BookableResource(ObjectId),
    /// Day passes, of one location when set.
    DayPasses(Option<ObjectId>),
}

/// The index. Build it once with [`Index::build`], then keep it current with the `upsert_*`/`remove_*`
/// methods (webhooks, polling).
#[derive(Debug, Clone)]
pub struct Index {
    pub(crate) members: Table<Member>,
    pub(crate) companies: Table<Company>,
    pub(crate) memberships: Table<Membership>,
    pub(crate) plans: Table<Plan>,
    pub(crate) locations: Table<Location>,
    pub(crate) floors: Table<Floor>,
    pub(crate) resources: Table<Resource>,
    pub(crate) assignments: Table<Assignment>,
    pub(crate) bookings: Table<Booking>,
    pub(crate) passes: Table<Pass>,
    pub(crate) visitors: Table<Visitor>,

    zones: FastMap<ObjectId, Tz>,
    bad_zones: FastMap<ObjectId, String>,

    plans_by_name: MultiMap,
    locations_by_name: MultiMap,
    floors_by_name: MultiMap,
    resources_by_name: MultiMap,
    pub(crate) resources_by_location: MultiMap,
    pub(crate) resources_by_floor: MultiMap,

    pub(crate) members_by_company: MultiMap,
    pub(crate) members_by_email: MultiMap,
    pub(crate) visitors_by_email: MultiMap,

    pub(crate) memberships_by_plan: MultiMap,
    pub(crate) memberships_by_member: MultiMap,
    /// Company memberships (no `member`) by company.
    pub(crate) memberships_by_company: MultiMap,

    pub(crate) assignments_by_resource: MultiMap,
    pub(crate) assignments_by_membership: MultiMap,

    pub(crate) timelines: FastMap<ObjectId, Timeline>,
    pub(crate) series_rules: FastMap<Slot, SeriesRule>,
    /// Booker and teammates.
    pub(crate) bookings_by_member: MultiMap,
    pub(crate) bookings_by_visitor: MultiMap,
    booking_problems: FastMap<Slot, ProblemKind>,
    /// While building, bookings are appended to timelines and sorted once at the end.
    building: bool,

    pub(crate) passes_by_member: MultiMap,
    /// Company pass sets by company.
    pub(crate) passes_by_company: MultiMap,
    pub(crate) passes_by_membership: MultiMap,

    pub(crate) membership_windows: WindowCache,
    pub(crate) pass_windows: WindowCache,
    /// The window an assignment grants in (its own days and its membership's).
    pub(crate) assignment_windows: WindowCache,

    /// Bookings are held only for series that may grant before this instant (a windowed read);
    /// `None` when every booking is held. Answers after it are not exact, so next-change instants
    /// stop there.
    booking_horizon: Option<DateTime<Utc>>,
    /// Per member slot: why the member can never be granted, if so (saves reading the email per offer).
    member_bars: Vec<Option<Bar>>,
    /// Per membership slot: its member.
    pub(crate) membership_members: Vec<Option<Link>>,
    /// Per assignment slot: its membership.
    pub(crate) assignment_memberships: Vec<Option<Link>>,
    /// Per pass slot: its member (personal pass sets).
    pub(crate) pass_members: Vec<Option<Link>>,
}

impl Index {
    /// Indexes a snapshot (taking ownership, so objects are not copied).
    pub fn build(snapshot: Snapshot) -> Index {
        let mut index = Index {
            // Members, memberships and bookings are adopted below (allocated only when they
            // cannot be).
            members: Table::sharing_ids(0),
            companies: Table::sharing_ids(snapshot.companies.len()),
            memberships: Table::sharing_ids(0),
            plans: Table::sharing_ids(snapshot.plans.len()),
            locations: Table::with_capacity(snapshot.locations.len()),
            floors: Table::with_capacity(snapshot.floors.len()),
            resources: Table::sharing_ids(snapshot.resources.len()),
            assignments: Table::sharing_ids(snapshot.assignments.len()),
            bookings: Table::with_capacity(0),
            passes: Table::sharing_ids(snapshot.passes.len()),
            visitors: Table::sharing_ids(snapshot.visitors.len()),
            zones: FastMap::default(),
            bad_zones: FastMap::default(),
            plans_by_name: MultiMap::default(),
            locations_by_name: MultiMap::default(),
            floors_by_name: MultiMap::default(),
            resources_by_name: MultiMap::default(),
            resources_by_location: MultiMap::default(),
            resources_by_floor: MultiMap::default(),
            members_by_company: MultiMap::default(),
            members_by_email: MultiMap::default(),
            visitors_by_email: MultiMap::default(),
            memberships_by_plan: MultiMap::default(),
            memberships_by_member: MultiMap::default(),
            memberships_by_company: MultiMap::default(),
            assignments_by_resource: MultiMap::default(),
            assignments_by_membership: MultiMap::default(),
            timelines: FastMap::default(),
            series_rules: FastMap::default(),
            bookings_by_member: MultiMap::default(),
            bookings_by_visitor: MultiMap::default(),
            booking_problems: FastMap::default(),
            building: true,
            passes_by_member: MultiMap::default(),
            passes_by_company: MultiMap::default(),
            passes_by_membership: MultiMap::default(),
            membership_windows: WindowCache::default(),
            pass_windows: WindowCache::default(),
            assignment_windows: WindowCache::default(),
            booking_horizon: None,
            member_bars: Vec::new(),
            membership_members: Vec::new(),
            assignment_memberships: Vec::new(),
            pass_members: Vec::new(),
        };
        let Snapshot {
            members,
            companies,
            memberships,
            plans,
            locations,
            floors,
            resources,
            assignments,
            bookings,
            passes,
            visitors,
        } = snapshot;
        drain(locations, |location| index.upsert_location(location));
        drain(plans, |plan| index.upsert_plan(plan));
        drain(floors, |floor| index.upsert_floor(floor));
        drain(resources, |resource| index.upsert_resource(resource));
        drain(companies, |company| index.upsert_company(company));
        // The largest collections are adopted in place (see `Table::adopt`) and linked slot by
        // slot as `upsert_*` links a new object.
        match Table::adopt(members, true) {
            Ok(table) => {
                for (slot, member) in table.iter() {
                    index.link_member(slot, member);
                }
                index.members = table;
            }
            Err(members) => drain(members, |member| index.upsert_member(member)),
        }
        drain(visitors, |visitor| index.upsert_visitor(visitor));
        match Table::adopt(memberships, true) {
            Ok(table) => {
                for (slot, membership) in table.iter() {
                    index.link_membership(slot, membership);
                }
                index.memberships = table;
            }
            Err(memberships) => drain(memberships, |membership| {
                index.upsert_membership(membership)
            }),
        }
        drain(assignments, |assignment| {
            index.upsert_assignment(assignment)
        });
        match Table::adopt(bookings, false) {
            Ok(table) => {
                for (slot, booking) in table.iter() {
                    index.link_booking(slot, booking);
                }
                index.bookings = table;
            }
            Err(bookings) => drain(bookings, |booking| index.upsert_booking(booking)),
        }
        drain(passes, |pass| index.upsert_pass(pass));
        index.sort_timelines();
        index.building = false;
        index
    }

    fn sort_timelines(&mut self) {
        for timeline in self.timelines.values_mut() {
            timeline.singles.sort_unstable();
        }
    }

    // ----- read access -------------------------------------------------------------------------------

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    pub fn membership(&self, id: &str) -> Option<&Membership> {
        self.memberships.get(id)
    }

    pub fn booking(&self, id: &str) -> Option<&Booking> {
        self.bookings.get(id)
    }

    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.get(id)
    }

    pub fn pass(&self, id: &str) -> Option<&Pass> {
        self.passes.get(id)
    }

    pub fn assignment(&self, id: &str) -> Option<&Assignment> {
        self.assignments.get(id)
    }

    pub fn visitor(&self, id: &str) -> Option<&Visitor> {
        self.visitors.get(id)
    }

    pub fn company(&self, id: &str) -> Option<&Company> {
        self.companies.get(id)
    }

    /// Every location.
    pub fn locations(&self) -> impl Iterator<Item = &Location> {
        self.locations.iter().map(|(_, location)| location)
    }

    /// Every floor.
    pub fn floors(&self) -> impl Iterator<Item = &Floor> {
        self.floors.iter().map(|(_, floor)| floor)
    }

    /// Every resource.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.iter().map(|(_, resource)| resource)
    }

    /// Every membership.
    pub fn memberships(&self) -> impl Iterator<Item = &Membership> {
        self.memberships.iter().map(|(_, membership)| membership)
    }

    /// Every assignment.
    pub fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.assignments.iter().map(|(_, assignment)| assignment)
    }

    /// Every plan.
    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.iter().map(|(_, plan)| plan)
    }

    /// Every visitor.
    pub fn visitors(&self) -> impl Iterator<Item = &Visitor> {
        self.visitors.iter().map(|(_, visitor)| visitor)
    }

    /// Up to when the held bookings are complete (see the field); `None`: all are held.
    pub fn booking_horizon(&self) -> Option<DateTime<Utc>> {
        self.booking_horizon
    }

    /// Records that bookings are held only for series that may grant before `horizon`.
    pub fn set_booking_horizon(&mut self, horizon: Option<DateTime<Utc>>) {
        self.booking_horizon = horizon;
    }

    /// How many members the index holds (former ones included).
    pub fn member_count(&self) -> usize {
        self.members.iter().count()
    }

    /// The ids of the assignments of one membership.
    pub fn assignments_of_membership(&self, membership: &str) -> Vec<String> {
        self.assignments_by_membership
            .get(membership)
            .iter()
            .filter_map(|slot| self.assignments.at(*slot))
            .map(|assignment| assignment.id.clone())
            .collect()
    }

    /// [`member_bar`] of the member stored at `slot`, kept current by [`Index::upsert_member`].
    pub(crate) fn member_bar_at(&self, slot: Slot) -> Option<Bar> {
        self.member_bars.get(slot as usize).copied().flatten()
    }

    /// The time zone of a location; UTC when the location or its zone is unknown (reported by
    /// [`Index::problems`]).
    pub fn zone_of(&self, location: Option<&str>) -> Tz {
        location
            .and_then(|id| self.zones.get(id))
            .copied()
            .unwrap_or(Tz::UTC)
    }

    /// The location a membership belongs to: its own, else its member's, else its company's.
    pub(crate) fn membership_location<'a>(&'a self, membership: &'a Membership) -> Option<&'a str> {
        membership
            .location
            .as_deref()
            .or_else(|| {
                let member = self.members.get(membership.member.as_deref()?)?;
                member.location.as_deref()
            })
            .or_else(|| {
                let company = self.companies.get(membership.company.as_deref()?)?;
                company.location.as_deref()
            })
    }

    pub(crate) fn member_location<'a>(&'a self, member: &'a Member) -> Option<&'a str> {
        member.location.as_deref().or_else(|| {
            let company = self.companies.get(member.company.as_deref()?)?;
            company.location.as_deref()
        })
    }

    /// Problems in the data itself, not tied to a binding (unknown time zones, unusable bookings).
    pub fn problems(&self) -> Vec<Problem> {
        let zones =
            self.bad_zones
                .iter()
                .map(|(location, timezone)| ProblemKind::UnknownTimeZone {
                    location: location.clone(),
                    timezone: timezone.clone(),
                });
        let mut problems: Vec<Problem> = zones
            .chain(self.booking_problems.values().cloned())
            .map(|kind| Problem {
                binding: None,
                kind,
            })
            .collect();
        problems.sort();
        problems
    }

    /// Resolves a reference to exactly one object id, or the problem that prevents it.
    pub(crate) fn resolve(
        &self,
        kind: ObjectKind,
        reference: &ObjectRef,
    ) -> Result<ObjectId, ProblemKind> {
        let not_found = || ProblemKind::NotFound {
            kind,
            reference: reference.clone(),
        };
        let name = match reference {
            ObjectRef::Id(id) => {
                let exists = match kind {
                    ObjectKind::Plan => self.plans.get(id).is_some(),
                    ObjectKind::Location => self.locations.get(id).is_some(),
                    ObjectKind::Floor => self.floors.get(id).is_some(),
                    ObjectKind::Resource => self.resources.get(id).is_some(),
                };
                return if exists {
                    Ok(id.clone())
                } else {
                    Err(not_found())
                };
            }
            ObjectRef::Name(name) => name,
        };
        let mut ids: Vec<ObjectId> = match kind {
            ObjectKind::Plan => ids_of(&self.plans, self.plans_by_name.get(name)),
            ObjectKind::Location => ids_of(&self.locations, self.locations_by_name.get(name)),
            ObjectKind::Floor => ids_of(&self.floors, self.floors_by_name.get(name)),
            ObjectKind::Resource => ids_of(&self.resources, self.resources_by_name.get(name)),
        };
        ids.sort();
        match ids.len() {
            0 => Err(not_found()),
            1 => Ok(ids.swap_remove(0)),
            _ => Err(ProblemKind::AmbiguousName {
                kind,
                name: name.clone(),
                ids,
            }),
        }
    }

    pub(crate) fn resolve_source(&self, source: &Source) -> Result<ResolvedSource, ProblemKind> {
        Ok(match source {
            Source::Plan(plan) => ResolvedSource::Plan(self.resolve(ObjectKind::Plan, plan)?),
            Source::Location(location) => {
                ResolvedSource::Location(self.resolve(ObjectKind::Location, location)?)
            }
            Source::Floor(floor) => ResolvedSource::Floor(self.resolve(ObjectKind::Floor, floor)?),
            Source::AssignableResource(resource) => {
                ResolvedSource::AssignableResource(self.resolve(ObjectKind::Resource, resource)?)
            }
            Source::BookableResource(resource) => {
                ResolvedSource::BookableResource(self.resolve(ObjectKind::Resource, resource)?)
            }
            Source::DayPasses(None) => ResolvedSource::DayPasses(None),
            Source::DayPasses(Some(location)) => {
                ResolvedSource::DayPasses(Some(self.resolve(ObjectKind::Location, location)?))
            }
        })
    }

    /// The bindings (positions in `bindings`) whose answer a change with these touches may alter.
    pub fn affected_bindings(&self, bindings: &[Binding], touched: &Touched) -> Vec<usize> {
        self.reach_of(bindings, touched)
            .into_iter()
            .map(|(position, _)| position)
            .collect()
    }

    /// The bindings a change with these touches may alter, each with the people whose grants may differ.
    pub(crate) fn reach_of(&self, bindings: &[Binding], touched: &Touched) -> Vec<(usize, Reach)> {
        if touched.0.contains(&Touch::Everything) {
            return (0..bindings.len())
                .map(|position| (position, Reach::Everyone))
                .collect();
        }
        bindings
            .iter()
            .enumerate()
            .filter_map(|(position, binding)| {
                self.reach_in(binding, touched)
                    .map(|reach| (position, reach))
            })
            .collect()
    }

    /// How far the touches reach into one binding; `None` if not at all.
    fn reach_in(&self, binding: &Binding, touched: &Touched) -> Option<Reach> {
        let Ok(source) = self.resolve_source(&binding.source) else {
            // Unresolved sources only change through plan/location/floor/resource changes (`Everything`).
            return None;
        };
        let mut holders: Vec<&Holder> = Vec::new();
        let mut everyone = false;
        for touch in &touched.0 {
            let (concerns, holder) = match (touch, &source) {
                (Touch::Plan(plan), ResolvedSource::Plan(bound)) => (plan == bound, None),
                (Touch::PlanHolder { plan, holder }, ResolvedSource::Plan(bound)) => {
                    (plan == bound, Some(holder))
                }
                (Touch::AssignedResource(resource), _) => {
                    (self.assigned_resource_is_bound(resource, &source), None)
                }
                (Touch::AssignedResourceHolder { resource, holder }, _) => (
                    self.assigned_resource_is_bound(resource, &source),
                    Some(holder),
                ),
                (
                    Touch::BookedResource {
                        resource,
                        gated_only,
                    },
                    ResolvedSource::BookableResource(bound),
                ) => (
                    resource == bound && (!gated_only || binding.require_active_membership),
                    None,
                ),
                (Touch::DayPasses { gated_only }, ResolvedSource::DayPasses(_)) => {
                    (!gated_only || binding.require_active_membership, None)
                }
                (Touch::Everything, _) => (true, None),
                _ => (false, None),
            };
            match (concerns, holder) {
                (false, _) => {}
                (true, Some(holder)) => holders.push(holder),
                (true, None) => everyone = true,
            }
        }
        if everyone {
            return Some(Reach::Everyone);
        }
        if holders.is_empty() {
            return None;
        }
        let mut members = FastSet::default();
        for holder in holders {
            match holder {
                Holder::Member(member) => {
                    members.insert(member.clone());
                }
                Holder::Company(company) => members.extend(
                    self.members_by_company
                        .get(company)
                        .iter()
                        .filter_map(|slot| self.members.at(*slot))
                        .map(|member| member.id.clone()),
                ),
            }
        }
        Some(Reach::Members(members))
    }

    /// Whether assignments to `resource` feed a binding on `source` (the resource, its floor or location).
    fn assigned_resource_is_bound(&self, resource: &str, source: &ResolvedSource) -> bool {
        match source {
            ResolvedSource::AssignableResource(bound) => resource == bound,
            ResolvedSource::Location(bound) => self
                .resources
                .get(resource)
                .is_some_and(|r| r.location.as_deref() == Some(bound.as_str())),
            ResolvedSource::Floor(bound) => self
                .resources
                .get(resource)
                .is_some_and(|r| r.floor.as_deref() == Some(bound.as_str())),
            _ => false,
        }
    }

    // ----- space & catalogue (rare changes: they touch everything) ----------------------------------

    /// Forgets every memoised window (after a change to time zones or to the locations objects fall back on).
    fn forget_windows(&mut self) {
        self.membership_windows.clear();
        self.pass_windows.clear();
        self.assignment_windows.clear();
    }

    /// Forgets the memoised windows of the assignments of a membership (they include its period).
    fn forget_assignment_windows_of(&mut self, membership: &str) {
        for slot in self.assignments_by_membership.get(membership) {
            self.assignment_windows.reset(*slot);
        }
    }

    pub fn upsert_location(&mut self, location: Location) -> Touched {
        self.forget_windows();
        let id = location.id.clone();
        self.unlink_location(&id);
        match location.timezone.as_deref().map(str::parse::<Tz>) {
            Some(Ok(zone)) => {
                self.zones.insert(id.clone(), zone);
            }
            Some(Err(_)) => {
                let timezone = location.timezone.clone().unwrap_or_default();
                self.bad_zones.insert(id.clone(), timezone);
            }
            None => {}
        }
        let (slot, _) = self.locations.upsert(location);
        add_opt(
            &mut self.locations_by_name,
            self.locations.at(slot).and_then(|l| l.name.as_deref()),
            slot,
        );
        everything()
    }

    pub fn remove_location(&mut self, id: &str) -> Touched {
        self.forget_windows();
        self.unlink_location(id);
        self.locations.remove(id);
        everything()
    }

    fn unlink_location(&mut self, id: &str) {
        self.zones.remove(id);
        self.bad_zones.remove(id);
        if let Some(slot) = self.locations.slot_of(id) {
            let name = self.locations.at(slot).and_then(|l| l.name.clone());
            remove_opt(&mut self.locations_by_name, name.as_deref(), slot);
        }
    }

    pub fn upsert_plan(&mut self, plan: Plan) -> Touched {
        self.remove_plan(&plan.id);
        let (slot, _) = self.plans.upsert(plan);
        add_opt(
            &mut self.plans_by_name,
            self.plans.at(slot).and_then(|p| p.name.as_deref()),
            slot,
        );
        everything()
    }

    pub fn remove_plan(&mut self, id: &str) -> Touched {
        if let Some((slot, plan)) = self.plans.remove(id) {
            remove_opt(&mut self.plans_by_name, plan.name.as_deref(), slot);
        }
        everything()
    }

    pub fn upsert_floor(&mut self, floor: Floor) -> Touched {
        self.remove_floor(&floor.id);
        let (slot, _) = self.floors.upsert(floor);
        add_opt(
            &mut self.floors_by_name,
            self.floors.at(slot).and_then(|f| f.name.as_deref()),
            slot,
        );
        everything()
    }

    pub fn remove_floor(&mut self, id: &str) -> Touched {
        if let Some((slot, floor)) = self.floors.remove(id) {
            remove_opt(&mut self.floors_by_name, floor.name.as_deref(), slot);
        }
        everything()
    }

    pub fn upsert_resource(&mut self, resource: Resource) -> Touched {
        self.remove_resource(&resource.id);
        // Assignments take their zone from their resource's location.
        self.assignment_windows.clear();
        let (slot, _) = self.resources.upsert(resource);
        if let Some(resource) = self.resources.at(slot) {
            add_opt(&mut self.resources_by_name, resource.name.as_deref(), slot);
            add_opt(
                &mut self.resources_by_location,
                resource.location.as_deref(),
                slot,
            );
            add_opt(
                &mut self.resources_by_floor,
                resource.floor.as_deref(),
                slot,
            );
        }
        everything()
    }

    pub fn remove_resource(&mut self, id: &str) -> Touched {
        self.assignment_windows.clear();
        if let Some((slot, resource)) = self.resources.remove(id) {
            remove_opt(&mut self.resources_by_name, resource.name.as_deref(), slot);
            remove_opt(
                &mut self.resources_by_location,
                resource.location.as_deref(),
                slot,
            );
            remove_opt(
                &mut self.resources_by_floor,
                resource.floor.as_deref(),
                slot,
            );
        }
        everything()
    }

    /// Companies only contribute their `location` (location-scope fallback) to the rules.
    pub fn upsert_company(&mut self, company: Company) -> Touched {
        self.forget_windows();
        // Even a company new to the index can change answers: members and memberships may
        // already name it, and its location decides their time zone. Companies change rarely,
        // so re-evaluating everything is the simple, safe answer.
        self.companies.upsert(company);
        everything()
    }

    pub fn remove_company(&mut self, id: &str) -> Touched {
        self.forget_windows();
        match self.companies.remove(id) {
            Some(_) => everything(),
            None => Touched::default(),
        }
    }

    // ----- people ------------------------------------------------------------------------------------

    pub fn upsert_member(&mut self, member: Member) -> Touched {
        let mut touched = Touched::default();
        if let Some(previous) = self.members.get(&member.id) {
            if same_access_fields(previous, &member) {
                let bar = member_bar(&member);
                let (slot, _) = self.members.upsert(member);
                set_at(&mut self.member_bars, slot, bar);
                return touched;
            }
            touched = self.touches_of_member(previous);
            if previous.location != member.location || previous.company != member.company {
                self.forget_windows();
            }
        }
        self.unlink_member(&member.id);
        self.link_member(self.members.slot_for(&member.id), &member);
        let (slot, _) = self.members.upsert(member);
        if let Some(member) = self.members.at(slot) {
            let current = self.touches_of_member(member);
            touched.merge(current);
        }
        touched
    }

    /// Records a member about to be stored at `slot` (a new one, or the replacement of the one
    /// there, already unlinked) in the per-member tables and relations.
    fn link_member(&mut self, slot: Slot, member: &Member) {
        set_at(&mut self.member_bars, slot, member_bar(member));
        add_opt(
            &mut self.members_by_company,
            member.company.as_deref(),
            slot,
        );
        if let Some(email) = member.email.as_deref().and_then(canonical_email) {
            self.members_by_email.add(&email, slot);
        }
    }

    pub fn remove_member(&mut self, id: &str) -> Touched {
        self.forget_windows();
        let touched = match self.members.get(id) {
            Some(member) => self.touches_of_member(member),
            None => return Touched::default(),
        };
        self.unlink_member(id);
        self.members.remove(id);
        touched
    }

    fn unlink_member(&mut self, id: &str) {
        let Some(slot) = self.members.slot_of(id) else {
            return;
        };
        let Some(member) = self.members.at(slot) else {
            return;
        };
        let company = member.company.clone();
        let email = member.email.as_deref().and_then(canonical_email);
        remove_opt(&mut self.members_by_company, company.as_deref(), slot);
        remove_opt(&mut self.members_by_email, email.as_deref(), slot);
    }

    /// Every source a member appears in: their memberships and their company's, their bookings and passes.
    fn touches_of_member(&self, member: &Member) -> Touched {
        let mut touched = Touched::default();
        let personal = self.memberships_by_member.get(&member.id).iter();
        let company = member
            .company
            .as_deref()
            .map_or(&[][..], |company| self.memberships_by_company.get(company))
            .iter();
        // Only this member's grants through those memberships can change.
        let holder = Holder::Member(member.id.clone());
        for slot in personal.chain(company) {
            if let Some(membership) = self.memberships.at(*slot) {
                self.add_membership_touches(membership, Some(&holder), &mut touched);
            }
        }
        self.add_booking_touches(&member.id, false, &mut touched);
        if self.has_passes(member) {
            touched.add(Touch::DayPasses { gated_only: false });
        }
        touched
    }

    fn has_passes(&self, member: &Member) -> bool {
        !self.passes_by_member.get(&member.id).is_empty()
            || member
                .company
                .as_deref()
                .is_some_and(|company| !self.passes_by_company.get(company).is_empty())
    }

    fn add_booking_touches(&self, member: &str, gated_only: bool, touched: &mut Touched) {
        for slot in self.bookings_by_member.get(member) {
            if let Some(resource) = self.bookings.at(*slot).and_then(|b| b.resource.clone()) {
                touched.add(Touch::BookedResource {
                    resource,
                    gated_only,
                });
            }
        }
    }

    pub fn upsert_visitor(&mut self, visitor: Visitor) -> Touched {
        self.unlink_visitor(&visitor.id);
        let (slot, _) = self.visitors.upsert(visitor);
        let mut touched = Touched::default();
        if let Some(visitor) = self.visitors.at(slot) {
            if let Some(email) = visitor.email.as_deref().and_then(canonical_email) {
                self.visitors_by_email.add(&email, slot);
            }
            touched = self.touches_of_visitor(&visitor.id);
        }
        touched
    }

    pub fn remove_visitor(&mut self, id: &str) -> Touched {
        let touched = self.touches_of_visitor(id);
        self.unlink_visitor(id);
        self.visitors.remove(id);
        touched
    }

    fn unlink_visitor(&mut self, id: &str) {
        let Some(slot) = self.visitors.slot_of(id) else {
            return;
        };
        let email = self
            .visitors
            .at(slot)
            .and_then(|v| v.email.as_deref())
            .and_then(canonical_email);
        remove_opt(&mut self.visitors_by_email, email.as_deref(), slot);
    }

    fn touches_of_visitor(&self, id: &str) -> Touched {
        let mut touched = Touched::default();
        for slot in self.bookings_by_visitor.get(id) {
            if let Some(resource) = self.bookings.at(*slot).and_then(|b| b.resource.clone()) {
                touched.add(Touch::BookedResource {
                    resource,
                    gated_only: false,
                });
            }
        }
        touched
    }

    // ----- memberships & assignments -----------------------------------------------------------------

    pub fn upsert_membership(&mut self, membership: Membership) -> Touched {
        let mut touched = self.remove_membership_links(&membership.id);
        self.forget_assignment_windows_of(&membership.id);
        self.link_membership(self.memberships.slot_for(&membership.id), &membership);
        let (slot, _) = self.memberships.upsert(membership);
        // Pass sets take their zone from their membership.
        self.pass_windows.clear();
        let Some(membership) = self.memberships.at(slot) else {
            return touched;
        };
        let mut current = Touched::default();
        self.add_membership_touches(membership, Holder::of(membership).as_ref(), &mut current);
        self.add_membership_gate_touches(membership, &mut current);
        touched.merge(current);
        touched
    }

    /// Records a membership about to be stored at `slot` (a new one, or the replacement of the
    /// one there, already unlinked) in the per-membership tables and relations.
    fn link_membership(&mut self, slot: Slot, membership: &Membership) {
        let member = self.members.link(membership.member.as_deref());
        set_at(&mut self.membership_members, slot, member);
        self.membership_windows.reset(slot);
        add_opt(
            &mut self.memberships_by_plan,
            membership.plan.as_deref(),
            slot,
        );
        match (membership.member.as_deref(), membership.company.as_deref()) {
            (Some(member), _) => self.memberships_by_member.add(member, slot),
            (None, Some(company)) => self.memberships_by_company.add(company, slot),
            (None, None) => {}
        }
    }

    pub fn remove_membership(&mut self, id: &str) -> Touched {
        let touched = self.remove_membership_links(id);
        self.forget_assignment_windows_of(id);
        self.memberships.remove(id);
        touched
    }

    /// Unlinks the stored version of a membership, returning what it touched.
    fn remove_membership_links(&mut self, id: &str) -> Touched {
        let mut touched = Touched::default();
        let Some(slot) = self.memberships.slot_of(id) else {
            return touched;
        };
        let Some(membership) = self.memberships.at(slot).cloned() else {
            return touched;
        };
        self.add_membership_touches(&membership, Holder::of(&membership).as_ref(), &mut touched);
        self.add_membership_gate_touches(&membership, &mut touched);
        remove_opt(
            &mut self.memberships_by_plan,
            membership.plan.as_deref(),
            slot,
        );
        match (membership.member.as_deref(), membership.company.as_deref()) {
            (Some(member), _) => self.memberships_by_member.remove(member, slot),
            (None, Some(company)) => self.memberships_by_company.remove(company, slot),
            (None, None) => {}
        }
        touched
    }

    /// The plan and the assigned resources of a membership, limited to `holder`'s grants when given.
    fn add_membership_touches(
        &self,
        membership: &Membership,
        holder: Option<&Holder>,
        touched: &mut Touched,
    ) {
        if let Some(plan) = membership.plan.clone() {
            touched.add(match holder {
                Some(holder) => Touch::PlanHolder {
                    plan,
                    holder: holder.clone(),
                },
                None => Touch::Plan(plan),
            });
        }
        for slot in self.assignments_by_membership.get(&membership.id) {
            if let Some(resource) = self.assignments.at(*slot).and_then(|a| a.resource.clone()) {
                touched.add(match holder {
                    Some(holder) => Touch::AssignedResourceHolder {
                        resource,
                        holder: holder.clone(),
                    },
                    None => Touch::AssignedResource(resource),
                });
            }
        }
        if !self.passes_by_membership.get(&membership.id).is_empty() {
            // Pass sets take their location (for location scopes) from their membership.
            touched.add(Touch::DayPasses { gated_only: false });
        }
    }

    /// The active-membership gate of everyone the membership covers (their bookings and passes).
    fn add_membership_gate_touches(&self, membership: &Membership, touched: &mut Touched) {
        let covered: Vec<&Member> =
            match (membership.member.as_deref(), membership.company.as_deref()) {
                (Some(member), _) => self.members.get(member).into_iter().collect(),
                (None, Some(company)) => self
                    .members_by_company
                    .get(company)
                    .iter()
                    .filter_map(|slot| self.members.at(*slot))
                    .collect(),
                (None, None) => Vec::new(),
            };
        for member in covered {
            self.add_booking_touches(&member.id, true, touched);
            if self.has_passes(member) {
                touched.add(Touch::DayPasses { gated_only: true });
            }
        }
    }

    pub fn upsert_assignment(&mut self, assignment: Assignment) -> Touched {
        let mut touched = self.remove_assignment(&assignment.id);
        let membership = self.memberships.link(assignment.membership.as_deref());
        let (slot, _) = self.assignments.upsert(assignment);
        set_at(&mut self.assignment_memberships, slot, membership);
        self.assignment_windows.reset(slot);
        if let Some(assignment) = self.assignments.at(slot) {
            add_opt(
                &mut self.assignments_by_resource,
                assignment.resource.as_deref(),
                slot,
            );
            add_opt(
                &mut self.assignments_by_membership,
                assignment.membership.as_deref(),
                slot,
            );
            if let Some(resource) = assignment.resource.clone() {
                touched.add(Touch::AssignedResource(resource));
            }
        }
        touched
    }

    pub fn remove_assignment(&mut self, id: &str) -> Touched {
        let mut touched = Touched::default();
        if let Some((slot, assignment)) = self.assignments.remove(id) {
            remove_opt(
                &mut self.assignments_by_resource,
                assignment.resource.as_deref(),
                slot,
            );
            remove_opt(
                &mut self.assignments_by_membership,
                assignment.membership.as_deref(),
                slot,
            );
            if let Some(resource) = assignment.resource {
                touched.add(Touch::AssignedResource(resource));
            }
        }
        touched
    }

    // ----- bookings ----------------------------------------------------------------------------------

    pub fn upsert_booking(&mut self, booking: Booking) -> Touched {
        let mut touched = self.remove_booking(&booking.id);
        if let Some(resource) = booking.resource.clone() {
            touched.add(Touch::BookedResource {
                resource,
                gated_only: false,
            });
        }
        let slot = self.bookings.next_slot();
        self.link_booking(slot, &booking);
        self.bookings.upsert(booking);
        touched
    }

    pub fn remove_booking(&mut self, id: &str) -> Touched {
        let mut touched = Touched::default();
        if let Some((slot, booking)) = self.bookings.remove(id) {
            self.unlink_booking(slot, &booking);
            if let Some(resource) = booking.resource {
                touched.add(Touch::BookedResource {
                    resource,
                    gated_only: false,
                });
            }
        }
        touched
    }

    fn link_booking(&mut self, slot: Slot, booking: &Booking) {
        add_opt(
            &mut self.bookings_by_member,
            booking.member.as_deref(),
            slot,
        );
        for teammate in &booking.members {
            self.bookings_by_member.add(teammate, slot);
        }
        for visitor in &booking.visitors {
            self.bookings_by_visitor.add(visitor, slot);
        }
        let (Some(start), Some(end)) = (booking.start, booking.end) else {
            self.booking_problems.insert(
                slot,
                ProblemKind::BookingWithoutTimes {
                    booking: booking.id.clone(),
                },
            );
            return;
        };
        let Some(resource) = booking.resource.as_deref() else {
            return;
        };
        if booking.is_cancelled || booking.is_tentative {
            return;
        }
        let rule = booking
            .recurrence
            .as_ref()
            .and_then(|recurrence| recurrence.rrule.as_deref())
            .filter(|rrule| !rrule.trim().is_empty());
        let timeline = self.timelines.entry(resource.to_owned()).or_default();
        if let Some(rrule) = rule {
            match parse_recurrence(rrule) {
                Ok(parsed) => {
                    self.series_rules.insert(slot, parsed);
                    timeline.series.push(slot);
                    return;
                }
                Err(error) => {
                    self.booking_problems.insert(
                        slot,
                        ProblemKind::InvalidRecurrence {
                            booking: booking.id.clone(),
                            rrule: rrule.to_owned(),
                            error,
                        },
                    );
                }
            }
        }
        let scheduled = Scheduled { start, end, slot };
        if self.building {
            timeline.singles.push(scheduled);
        } else {
            let position = timeline
                .singles
                .partition_point(|existing| *existing < scheduled);
            timeline.singles.insert(position, scheduled);
        }
        timeline.longest = timeline.longest.max(end - start);
    }

    fn unlink_booking(&mut self, slot: Slot, booking: &Booking) {
        remove_opt(
            &mut self.bookings_by_member,
            booking.member.as_deref(),
            slot,
        );
        for teammate in &booking.members {
            self.bookings_by_member.remove(teammate, slot);
        }
        for visitor in &booking.visitors {
            self.bookings_by_visitor.remove(visitor, slot);
        }
        self.booking_problems.remove(&slot);
        self.series_rules.remove(&slot);
        if let Some(timeline) = booking
            .resource
            .as_deref()
            .and_then(|r| self.timelines.get_mut(r))
        {
            timeline.series.retain(|existing| *existing != slot);
            if let (Some(start), Some(end)) = (booking.start, booking.end) {
                let scheduled = Scheduled { start, end, slot };
                if let Ok(position) = timeline.singles.binary_search(&scheduled) {
                    timeline.singles.remove(position);
                }
            }
        }
    }

    // ----- day passes --------------------------------------------------------------------------------

    pub fn upsert_pass(&mut self, pass: Pass) -> Touched {
        self.remove_pass(&pass.id);
        let member = match pass_holder(&pass) {
            PassHolder::Member(member) => self.members.link(Some(member)),
            PassHolder::Company(_) | PassHolder::Nobody => None,
        };
        let (slot, _) = self.passes.upsert(pass);
        set_at(&mut self.pass_members, slot, member);
        self.pass_windows.reset(slot);
        if let Some(pass) = self.passes.at(slot) {
            match pass_holder(pass) {
                PassHolder::Member(member) => self.passes_by_member.add(member, slot),
                PassHolder::Company(company) => self.passes_by_company.add(company, slot),
                PassHolder::Nobody => {}
            }
            add_opt(
                &mut self.passes_by_membership,
                pass.membership.as_deref(),
                slot,
            );
        }
        day_passes()
    }

    pub fn remove_pass(&mut self, id: &str) -> Touched {
        if let Some((slot, pass)) = self.passes.remove(id) {
            match pass_holder(&pass) {
                PassHolder::Member(member) => self.passes_by_member.remove(member, slot),
                PassHolder::Company(company) => self.passes_by_company.remove(company, slot),
                PassHolder::Nobody => {}
            }
            remove_opt(
                &mut self.passes_by_membership,
                pass.membership.as_deref(),
                slot,
            );
        }
        day_passes()
    }
}

/// Moves every item of `items` into `store`, releasing the list's memory as it empties, so that building the
/// index never holds two full copies of the largest collections (bookings) at once.
fn drain<T>(mut items: Vec<T>, mut store: impl FnMut(T) -> Touched) {
    items.reverse();
    while let Some(item) = items.pop() {
        store(item);
        if items.capacity() > 1024 && items.len() < items.capacity() / 2 {
            items.shrink_to_fit();
        }
    }
}

/// Who a day-pass set belongs to.
pub(crate) enum PassHolder<'a> {
    Member(&'a str),
    Company(&'a str),
    Nobody,
}

/// A pass set is personal when `isPersonal` says so or, without the flag, when it names a member.
pub(crate) fn pass_holder(pass: &Pass) -> PassHolder<'_> {
    let personal = pass.is_personal.unwrap_or(pass.member.is_some());
    match (personal, pass.member.as_deref(), pass.company.as_deref()) {
        (true, Some(member), _) => PassHolder::Member(member),
        (false, _, Some(company)) => PassHolder::Company(company),
        (false, Some(member), None) => PassHolder::Member(member),
        _ => PassHolder::Nobody,
    }
}

fn same_access_fields(a: &Member, b: &Member) -> bool {
    a.name == b.name
        && a.email == b.email
        && a.status == b.status
        && a.company == b.company
        && a.location == b.location
}

fn ids_of<T: Identified>(table: &Table<T>, slots: &[Slot]) -> Vec<ObjectId> {
    slots
        .iter()
        .filter_map(|slot| table.at(*slot))
        .map(|item| item.object_id().to_owned())
        .collect()
}

fn everything() -> Touched {
    Touched([Touch::Everything].into_iter().collect())
}

fn day_passes() -> Touched {
    Touched(
        [Touch::DayPasses { gated_only: false }]
            .into_iter()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(id: &str) -> Visitor {
        Visitor {
            id: id.to_owned(),
            name: None,
            email: None,
            phone: None,
            company: None,
            member: None,
            location: None,
        }
    }

    #[test]
    fn a_link_never_follows_a_reused_slot_to_another_object() {
        let mut table = Table::sharing_ids(4);
        let (slot, _) = table.upsert(visitor("a"));
        let link = table.link(Some("a"));
        assert_eq!(table.follow(link, Some("a")).map(|(s, _)| s), Some(slot));
        assert_eq!(table.shared_id(slot).map(|id| &**id), Some("a"));

        // "a" leaves and "b" takes its slot: the link is stale, and "a" is not found at all.
        table.remove("a");
        let (reused, _) = table.upsert(visitor("b"));
        assert_eq!(reused, slot);
        assert!(table.follow(link, Some("a")).is_none());
        assert_eq!(table.shared_id(slot).map(|id| &**id), Some("b"));

        // "a" comes back elsewhere: the stale link falls back to the id.
        let (elsewhere, _) = table.upsert(visitor("a"));
        assert_ne!(elsewhere, slot);
        let followed = table.follow(link, Some("a"));
        assert_eq!(
            followed.map(|(s, v)| (s, v.id.as_str())),
            Some((elsewhere, "a"))
        );

        // Replacing an object with the same id keeps its slot, link and shared id.
        let link = table.link(Some("a"));
        let shared = table.shared_id(elsewhere).cloned();
        table.upsert(visitor("a"));
        assert_eq!(
            table.follow(link, Some("a")).map(|(s, _)| s),
            Some(elsewhere)
        );
        assert_eq!(table.shared_id(elsewhere).cloned(), shared);
    }

    #[test]
    fn ids_whose_hash_is_taken_are_still_found_and_removed() {
        let mut table = Table::with_capacity(4);
        let (first, _) = table.upsert(visitor("a"));
        // Make "b" collide with "a": its hash now points at "a"'s slot.
        table.slots.insert(id_hash("b"), first);
        let (second, replaced) = table.upsert(visitor("b"));
        assert!(replaced.is_none());
        assert_ne!(first, second);
        assert_eq!(table.collided.get("b"), Some(&second));
        assert_eq!(table.get("a").map(|v| v.id.as_str()), Some("a"));
        assert_eq!(table.get("b").map(|v| v.id.as_str()), Some("b"));
        assert!(table.get("c").is_none());

        let (again, replaced) = table.upsert(visitor("b"));
        assert_eq!(
            (again, replaced.map(|v| v.id)),
            (second, Some("b".to_owned()))
        );

        assert_eq!(table.remove("a").map(|(slot, _)| slot), Some(first));
        assert!(table.get("a").is_none());
        assert_eq!(table.slot_of("b"), Some(second));
        assert_eq!(table.remove("b").map(|(slot, _)| slot), Some(second));
        assert!(table.get("b").is_none());
        assert!(table.collided.is_empty());
    }
}
