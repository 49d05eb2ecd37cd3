//! Evaluation of bindings at an instant: who each binding grants and why, the next instant that can change,
//! the union over bindings per group, and the incremental [`Engine`] that re-evaluates only what a change or
//! the passing of time affects.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{self, AtomicUsize};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};

use crate::engine::calendar::{earlier, earliest, later, Window, MAX_BOOKING_MARGIN};
use crate::engine::hash::{FastMap, FastSet};
use crate::engine::index::{
    pass_holder, Identified, Index, PassHolder, Reach, ResolvedSource, Slot, Table, Touched,
};
use crate::engine::recurrence::{expand, ExpansionWindow};
use crate::engine::rules::{
    assignment_window_at, booking_window, booking_zone, company_members, membership_gate,
    membership_is_approved, membership_window_at, pass_location, pass_remaining,
    pass_status_is_final, pass_window_at, usable_email, visitor_bar, Bar, Gate,
};
use crate::engine::types::{
    Binding, BindingKey, BookingRole, Entitlement, Evaluation, Grant, GroupKey, ObjectKind,
    PersonId, Problem, ProblemKind, Reason, SharedId, Source,
};
use crate::officernd::model::{Booking, Member, Membership, ObjectId, Visitor};

/// What one binding grants at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingEvaluation {
    pub binding: BindingKey,
    pub at: DateTime<Utc>,
    /// The people granted, each with this binding's reasons.
    pub grants: BTreeMap<PersonId, Entitlement>,
    /// The earliest instant after `at` at which one of this binding's reasons or problems starts or ends.
    pub next_change_at: Option<DateTime<Utc>>,
    /// Sorted, without duplicates.
    pub problems: Vec<Problem>,
}

/// Evaluates every binding at `at` and forms the union per group.
pub fn evaluate(index: &Index, bindings: &[Binding], at: DateTime<Utc>) -> Evaluation {
    let gates = shared_gates(index, bindings);
    let partials = in_parallel(
        bindings,
        || empty_evaluation(at),
        |partial, _, binding| {
            let result = evaluate_binding_for(index, binding, at, None, gates.as_deref());
            fold_binding(partial, binding, result)
        },
    );
    let mut evaluation = empty_evaluation(at);
    let mut problems: BTreeSet<Problem> = index.problems().into_iter().collect();
    for partial in partials {
        earliest(&mut evaluation.next_change_at, partial.next_change_at);
        problems.extend(partial.problems);
        for (group, grants) in partial.groups {
            let into = evaluation.groups.entry(group).or_default();
            *into = union_grants(std::mem::take(into), grants);
        }
    }
    evaluation.problems = problems.into_iter().collect();
    evaluation
}

/// Active-membership gates at one instant, one cell per member slot, shared by every binding evaluated at
/// that instant: a gate depends only on the member and the instant, and gated bindings over the same people
/// (day passes, bookings) would otherwise each compute it again. `None` when no binding is gated.
fn shared_gates(index: &Index, bindings: &[Binding]) -> Option<Vec<OnceLock<Gate>>> {
    bindings
        .iter()
        .any(|binding| binding.require_active_membership)
        .then(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(index.members.slot_count())
                .collect()
        })
}

fn empty_evaluation(at: DateTime<Utc>) -> Evaluation {
    Evaluation {
        at,
        next_change_at: None,
        groups: BTreeMap::new(),
        problems: Vec::new(),
    }
}

/// Runs `work` on every item (with its position) on every available core, each thread folding into its own
/// accumulator from `start`; returns the accumulators. Threads claim one item at a time: bindings differ a
/// hundredfold in cost, so fixed chunks would leave a core idle. (The engine stays free of I/O and clocks;
/// threads only split the CPU work.)
fn in_parallel<T: Sync, A: Send>(
    items: &[T],
    start: impl Fn() -> A + Sync,
    work: impl Fn(&mut A, usize, &T) + Sync,
) -> Vec<A> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8)
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let run = || {
        let mut accumulator = start();
        loop {
            let position = next.fetch_add(1, atomic::Ordering::Relaxed);
            let Some(item) = items.get(position) else {
                return accumulator;
            };
            work(&mut accumulator, position, item);
        }
    };
    if threads == 1 {
        return vec![run()];
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(run)).collect();
        let mut accumulators = vec![run()];
        for helper in helpers {
            match helper.join() {
                Ok(accumulator) => accumulators.push(accumulator),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        accumulators
    })
}

/// Folds one binding's result into a partial evaluation at once, so only one copy of the grants is held.
fn fold_binding(evaluation: &mut Evaluation, binding: &Binding, result: BindingEvaluation) {
    earliest(&mut evaluation.next_change_at, result.next_change_at);
    evaluation.problems.extend(result.problems);
    let mut grants = Some(result.grants);
    for (position, group) in binding.groups.iter().enumerate() {
        let last = position + 1 == binding.groups.len();
        let Some(owned) = grants.take() else {
            break;
        };
        let ours = if last {
            owned
        } else {
            let copy = owned.clone();
            grants = Some(owned);
            copy
        };
        let into = evaluation.groups.entry(group.clone()).or_default();
        *into = union_grants(std::mem::take(into), ours);
    }
}

/// The union of two groups' grants in one pass over both (each is sorted): a person in both gets the
/// reasons of both.
fn union_grants(
    first: BTreeMap<PersonId, Entitlement>,
    second: BTreeMap<PersonId, Entitlement>,
) -> BTreeMap<PersonId, Entitlement> {
    if first.is_empty() {
        return second;
    }
    if second.is_empty() {
        return first;
    }
    let mut united = Vec::with_capacity(first.len() + second.len());
    let mut first = first.into_iter().peekable();
    let mut second = second.into_iter().peekable();
    loop {
        let order = match (first.peek(), second.peek()) {
            (Some((a, _)), Some((b, _))) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        let next = match order {
            Ordering::Less => first.next(),
            Ordering::Greater => second.next(),
            Ordering::Equal => first.next().map(|(person, mut entitlement)| {
                if let Some((_, other)) = second.next() {
                    entitlement.reasons.extend(other.reasons);
                    normalize_reasons(&mut entitlement);
                }
                (person, entitlement)
            }),
        };
        united.extend(next);
    }
    // Sorted input: the map is bulk-built without searching.
    united.into_iter().collect()
}

/// Evaluates one binding at `at`.
pub fn evaluate_binding(index: &Index, binding: &Binding, at: DateTime<Utc>) -> BindingEvaluation {
    evaluate_binding_for(index, binding, at, None, None)
}

/// Evaluates one binding at `at`, granting only the members in `only` when given. Everything else (the
/// next change, the problems) is evaluated in full, because it does not depend on who is granted.
fn evaluate_binding_for(
    index: &Index,
    binding: &Binding,
    at: DateTime<Utc>,
    only: Option<&FastSet<ObjectId>>,
    gates: Option<&[OnceLock<Gate>]>,
) -> BindingEvaluation {
    // Members are matched by slot: cheaper per offer than hashing and comparing ids.
    let only: Option<FastSet<Slot>> = only.map(|members| {
        members
            .iter()
            .filter_map(|member| index.members.slot_of(member))
            .collect()
    });
    let mut collector = Collector::new(index, binding, at, only.as_ref(), gates);
    match index.resolve_source(&binding.source) {
        Ok(source) => {
            collector.check_source_in_scope(&source);
            collector.collect(&source);
        }
        Err(problem) => collector.problem(problem),
    }
    collector.finish()
}

/// Unites binding results per group: several bindings on one group form a union and each person's
/// entitlement lists the reasons from all of them. `results[i]` must be the evaluation of `bindings[i]`.
pub fn assemble(
    index: &Index,
    bindings: &[Binding],
    results: &[BindingEvaluation],
    at: DateTime<Utc>,
) -> Evaluation {
    let mut groups: BTreeMap<GroupKey, BTreeMap<PersonId, Entitlement>> = BTreeMap::new();
    let mut problems: BTreeSet<Problem> = index.problems().into_iter().collect();
    let mut next_change_at = None;
    for (binding, result) in bindings.iter().zip(results) {
        earliest(&mut next_change_at, result.next_change_at);
        problems.extend(result.problems.iter().cloned());
        for group in &binding.groups {
            merge_grants(groups.entry(group.clone()).or_default(), &result.grants);
        }
    }
    Evaluation {
        at,
        next_change_at,
        groups,
        problems: problems.into_iter().collect(),
    }
}

fn merge_grants(
    into: &mut BTreeMap<PersonId, Entitlement>,
    grants: &BTreeMap<PersonId, Entitlement>,
) {
    for (person, entitlement) in grants {
        match into.get_mut(person) {
            Some(existing) => {
                existing.reasons.extend(entitlement.reasons.iter().cloned());
                normalize_reasons(existing);
            }
            None => {
                into.insert(person.clone(), entitlement.clone());
            }
        }
    }
}

/// Sorts and deduplicates reasons and recomputes `ends_at` (the latest end; open-ended wins).
fn normalize_reasons(entitlement: &mut Entitlement) {
    entitlement.reasons.sort();
    entitlement.reasons.dedup();
    // Entitlements are held for every binding and group: drop the spare room merges leave behind.
    entitlement.reasons.shrink_to_fit();
    entitlement.ends_at = if entitlement
        .reasons
        .iter()
        .any(|reason| reason.ends_at.is_none())
    {
        None
    } else {
        entitlement
            .reasons
            .iter()
            .filter_map(|reason| reason.ends_at)
            .max()
    };
}

/// An id named by a grant: the index's shared copy when it holds the object, else the bare id (copied only
/// if the grant is given).
#[derive(Clone, Copy)]
enum IdRef<'a> {
    Shared(&'a SharedId),
    Plain(&'a str),
}

impl<'a> IdRef<'a> {
    /// The id of the object stored at `slot` of `table`.
    fn at<T: Identified>(table: &'a Table<T>, slot: Slot, id: &'a str) -> Self {
        table
            .shared_id(slot)
            .map_or(IdRef::Plain(id), IdRef::Shared)
    }

    /// The id `id`, shared if `table` holds that object.
    fn find<T: Identified>(table: &'a Table<T>, id: &'a str) -> Self {
        table
            .slot_of(id)
            .and_then(|slot| table.shared_id(slot))
            .map_or(IdRef::Plain(id), IdRef::Shared)
    }

    fn to_shared(self) -> SharedId {
        match self {
            IdRef::Shared(id) => Arc::clone(id),
            IdRef::Plain(id) => Arc::from(id),
        }
    }
}

/// A borrowed description of a grant, turned into an owned [`Grant`] only for people actually granted.
#[derive(Clone, Copy)]
enum GrantRef<'a> {
    Membership {
        membership: IdRef<'a>,
        plan: IdRef<'a>,
        company: Option<IdRef<'a>>,
    },
    Assignment {
        assignment: IdRef<'a>,
        membership: IdRef<'a>,
        resource: IdRef<'a>,
        company: Option<IdRef<'a>>,
    },
    Booking {
        booking: &'a Booking,
        resource: IdRef<'a>,
        occurrence_start: DateTime<Utc>,
        role: BookingRole,
    },
    DayPass {
        pass: IdRef<'a>,
        remaining: u32,
        company: Option<IdRef<'a>>,
    },
}

impl GrantRef<'_> {
    fn to_owned(self) -> Grant {
        match self {
            GrantRef::Membership {
                membership,
                plan,
                company,
            } => Grant::Membership {
                membership: membership.to_shared(),
                plan: plan.to_shared(),
                company: company.map(IdRef::to_shared),
            },
            GrantRef::Assignment {
                assignment,
                membership,
                resource,
                company,
            } => Grant::Assignment {
                assignment: assignment.to_shared(),
                membership: membership.to_shared(),
                resource: resource.to_shared(),
                company: company.map(IdRef::to_shared),
            },
            GrantRef::Booking {
                booking,
                resource,
                occurrence_start,
                role,
            } => Grant::Booking {
                // Bookings are too many to keep shared ids for; few are granted at once.
                booking: Arc::from(booking.id.as_str()),
                resource: resource.to_shared(),
                occurrence_start,
                role,
            },
            GrantRef::DayPass {
                pass,
                remaining,
                company,
            } => Grant::DayPass {
                pass: pass.to_shared(),
                remaining,
                company: company.map(IdRef::to_shared),
            },
        }
    }
}

/// A person who can be offered a grant, borrowed from the index.
#[derive(Clone, Copy)]
enum PersonRef<'a> {
    Member(Slot, &'a Member),
    Guest(Slot, &'a Visitor),
}

impl<'a> PersonRef<'a> {
    /// Orders people as [`PersonId`] does: members before guests, then by id.
    fn sort_key(self) -> (bool, &'a str) {
        match self {
            PersonRef::Member(_, member) => (false, &member.id),
            PersonRef::Guest(_, guest) => (true, &guest.id),
        }
    }

    fn id(self, index: &Index) -> PersonId {
        match self {
            PersonRef::Member(slot, member) => {
                PersonId::Member(IdRef::at(&index.members, slot, &member.id).to_shared())
            }
            PersonRef::Guest(slot, guest) => {
                PersonId::Guest(IdRef::at(&index.visitors, slot, &guest.id).to_shared())
            }
        }
    }

    fn email(self) -> &'a str {
        let email = match self {
            PersonRef::Member(_, member) => member.email.as_deref(),
            PersonRef::Guest(_, guest) => guest.email.as_deref(),
        };
        usable_email(email).unwrap_or_default()
    }

    fn name(self) -> &'a str {
        match self {
            PersonRef::Member(_, member) => member.name.as_deref(),
            PersonRef::Guest(_, guest) => guest.name.as_deref(),
        }
        .unwrap_or_default()
    }
}

/// A grant running at the instant, recorded cheaply; [`Collector::finish`] turns the offers into
/// entitlements once, person by person.
struct Offer<'a> {
    person: PersonRef<'a>,
    grant: GrantRef<'a>,
    ends_at: Option<DateTime<Utc>>,
}

/// Gathers one binding's grants, next change and problems.
struct Collector<'a> {
    index: &'a Index,
    binding: &'a Binding,
    at: DateTime<Utc>,
    grant_before: Duration,
    revoke_after: Duration,
    /// Location ids the binding is limited to; `None` = everywhere.
    scope: Option<FastSet<ObjectId>>,
    /// Grant only these members (re-evaluating the people a change concerns); `None` = everyone.
    only: Option<&'a FastSet<Slot>>,
    offers: Vec<Offer<'a>>,
    next_change_at: Option<DateTime<Utc>>,
    problems: BTreeSet<ProblemKind>,
    /// Per member slot, when no shared cells are given.
    gates: FastMap<Slot, Gate>,
    /// Per member slot, shared with the other bindings evaluated at the same instant.
    shared_gates: Option<&'a [OnceLock<Gate>]>,
    /// The bound bookable resource's id, once resolved.
    booked_resource: Option<&'a SharedId>,
    /// Shared by every reason this binding gives.
    key: Arc<BindingKey>,
    source: Arc<Source>,
}

impl<'a> Collector<'a> {
    fn new(
        index: &'a Index,
        binding: &'a Binding,
        at: DateTime<Utc>,
        only: Option<&'a FastSet<Slot>>,
        shared_gates: Option<&'a [OnceLock<Gate>]>,
    ) -> Self {
        let mut collector = Collector {
            index,
            binding,
            at,
            grant_before: binding
                .grant_before
                .clamp(Duration::zero(), MAX_BOOKING_MARGIN),
            revoke_after: binding
                .revoke_after
                .clamp(Duration::zero(), MAX_BOOKING_MARGIN),
            scope: None,
            only,
            offers: Vec::new(),
            next_change_at: None,
            problems: BTreeSet::new(),
            gates: FastMap::default(),
            shared_gates,
            booked_resource: None,
            key: Arc::new(binding.key.clone()),
            source: Arc::new(binding.source.clone()),
        };
        collector.resolve_scope();
        collector
    }

    /// Resolves the location scope; references that do not resolve are reported and grant nothing.
    fn resolve_scope(&mut self) {
        let Some(references) = &self.binding.location_scope else {
            return;
        };
        let mut scope = FastSet::default();
        for reference in references {
            match self.index.resolve(ObjectKind::Location, reference) {
                Ok(location) => {
                    scope.insert(location);
                }
                Err(problem) => self.problem(problem),
            }
        }
        self.scope = Some(scope);
    }

    /// A fact whose location is unknown is out of any scope: it cannot be shown to lie inside.
    fn in_scope(&self, location: Option<&str>) -> bool {
        match &self.scope {
            None => true,
            Some(scope) => location.is_some_and(|location| scope.contains(location)),
        }
    }

    /// Reports a bound location, floor or resource that lies outside the connection's locations.
    fn check_source_in_scope(&mut self, source: &ResolvedSource) {
        let (what, location) = match source {
            ResolvedSource::Location(id) => (format!("location {id}"), Some(id.as_str())),
            ResolvedSource::Floor(id) => (
                format!("floor {id}"),
                self.index
                    .floors
                    .get(id)
                    .and_then(|f| f.location.as_deref()),
            ),
            ResolvedSource::AssignableResource(id) | ResolvedSource::BookableResource(id) => (
                format!("resource {id}"),
                self.index
                    .resources
                    .get(id)
                    .and_then(|r| r.location.as_deref()),
            ),
            // The binding's own location for day passes: with the connection's scope, the pass sets must
            // lie in both, so a location outside the scope leaves nobody to grant, which is said here.
            ResolvedSource::DayPasses(Some(id)) => {
                (format!("day-pass location {id}"), Some(id.as_str()))
            }
            ResolvedSource::Plan(_) | ResolvedSource::DayPasses(None) => return,
        };
        if !self.in_scope(location) {
            self.problem(ProblemKind::OutsideLocationScope { what });
        }
    }

    fn problem(&mut self, problem: ProblemKind) {
        self.problems.insert(problem);
    }

    fn collect(&mut self, source: &ResolvedSource) {
        match source {
            ResolvedSource::Plan(plan) => self.collect_plan(plan),
            ResolvedSource::Location(location) => {
                for slot in self.index.resources_by_location.get(location) {
                    if let Some(resource) = self.index.resources.at(*slot) {
                        self.collect_assignments(&resource.id);
                    }
                }
            }
            ResolvedSource::Floor(floor) => {
                for slot in self.index.resources_by_floor.get(floor) {
                    if let Some(resource) = self.index.resources.at(*slot) {
                        self.collect_assignments(&resource.id);
                    }
                }
            }
            ResolvedSource::AssignableResource(resource) => self.collect_assignments(resource),
            ResolvedSource::BookableResource(resource) => self.collect_bookings(resource),
            ResolvedSource::DayPasses(location) => self.collect_day_passes(location.as_deref()),
        }
    }

    // ----- plans & assignments -----------------------------------------------------------------------

    /// Plan rule (seeds 002, 003, 001): holders of an approved membership on the plan whose period contains
    /// the instant; a company membership grants the whole team ([`company_members`]).
    fn collect_plan(&mut self, plan: &str) {
        let index = self.index;
        let plan_id = index.plans.share_existing(plan);
        for slot in index.memberships_by_plan.get(plan) {
            let Some(membership) = index.memberships.at(*slot) else {
                continue;
            };
            if !membership_is_approved(membership) {
                continue;
            }
            let window = membership_window_at(index, *slot, membership);
            // The location only matters to a scope (and takes up to two look-ups).
            let location = match self.scope {
                Some(_) => index.membership_location(membership),
                None => None,
            };
            let membership_id = IdRef::at(&index.memberships, *slot, &membership.id);
            self.offer_membership_holders(*slot, membership, window, location, |company| {
                GrantRef::Membership {
                    membership: membership_id,
                    // Memberships are listed under their own plan: it is the bound one.
                    plan: plan_id.map_or(
                        IdRef::Plain(membership.plan.as_deref().unwrap_or_default()),
                        IdRef::Shared,
                    ),
                    company,
                }
            });
        }
    }

    /// Location / Floor / AssignableResource rule (seeds 002, 003): members whose approved, running
    /// membership is assigned (assignment dates respected) to the resource.
    fn collect_assignments(&mut self, resource: &str) {
        let index = self.index;
        let Some((resource_slot, resource)) = index.resources.find(resource) else {
            return;
        };
        let resource_id = IdRef::at(&index.resources, resource_slot, &resource.id);
        let location = resource.location.as_deref();
        for slot in index.assignments_by_resource.get(&resource.id) {
            let Some(assignment) = index.assignments.at(*slot) else {
                continue;
            };
            let link = index
                .assignment_memberships
                .get(*slot as usize)
                .copied()
                .flatten();
            let Some((membership_slot, membership)) = index
                .memberships
                .follow(link, assignment.membership.as_deref())
            else {
                continue;
            };
            if !membership_is_approved(membership) {
                continue;
            }
            let window =
                assignment_window_at(index, (*slot, assignment), (membership_slot, membership));
            self.offer_membership_holders(
                membership_slot,
                membership,
                window,
                location,
                |company| GrantRef::Assignment {
                    assignment: IdRef::at(&index.assignments, *slot, &assignment.id),
                    membership: IdRef::at(&index.memberships, membership_slot, &membership.id),
                    resource: resource_id,
                    company,
                },
            );
        }
    }

    /// Offers a membership-based grant to its member, or to the whole company for a company membership.
    fn offer_membership_holders(
        &mut self,
        slot: Slot,
        membership: &'a Membership,
        window: Window,
        location: Option<&'a str>,
        grant: impl Fn(Option<IdRef<'a>>) -> GrantRef<'a>,
    ) {
        if window.is_empty() || !self.in_scope(location) {
            return;
        }
        let index = self.index;
        match (membership.member.as_deref(), membership.company.as_deref()) {
            (Some(member), _) => {
                let link = index
                    .membership_members
                    .get(slot as usize)
                    .copied()
                    .flatten();
                if let Some(member) = index.members.follow(link, Some(member)) {
                    self.offer_member(member, grant(None), window);
                }
            }
            (None, Some(company)) => {
                let company_id = IdRef::find(&index.companies, company);
                for member in company_members(index, company) {
                    self.offer_member(member, grant(Some(company_id)), window);
                }
            }
            (None, None) => {}
        }
    }

    // ----- bookings ----------------------------------------------------------------------------------

    /// BookableResource rule (seeds 002, 003): the booker, the teammates and, if enabled, the guests of each
    /// booking, from `grant_before` before its start to `revoke_after` after its end. Cancelled and tentative
    /// bookings are not on the timeline at all.
    fn collect_bookings(&mut self, resource: &str) {
        let index = self.index;
        let location = index
            .resources
            .get(resource)
            .and_then(|r| r.location.as_deref());
        if !self.in_scope(location) {
            return;
        }
        let Some(timeline) = index.timelines.get(resource) else {
            return;
        };
        // Timelines are keyed by the bookings' resource: every booking here names this one.
        self.booked_resource = index.resources.share_existing(resource);
        let opens_by = later(self.at, self.grant_before);
        // A single booking can be active only if it starts after this (its end + revoke_after > at).
        let earliest_active_start = earlier(earlier(self.at, self.revoke_after), timeline.longest);
        let first = timeline
            .singles
            .partition_point(|b| b.start <= earliest_active_start);
        let upcoming = timeline.singles.partition_point(|b| b.start <= opens_by);
        for scheduled in &timeline.singles[first..upcoming] {
            if let Some(booking) = index.bookings.at(scheduled.slot) {
                self.offer_booking(booking, scheduled.start, scheduled.end);
            }
        }
        // The first later booking whose bounds matter to anyone on it is where the answer next changes.
        for scheduled in &timeline.singles[upcoming..] {
            let Some(booking) = index.bookings.at(scheduled.slot) else {
                continue;
            };
            if self.offer_booking(booking, scheduled.start, scheduled.end) {
                break;
            }
        }
        for slot in &timeline.series {
            if let Some(booking) = index.bookings.at(*slot) {
                self.collect_series(*slot, booking);
            }
        }
    }

    /// Expands a recurring booking over `[at - revoke_after - duration, at + grant_before]` plus the next
    /// occurrence, never more.
    fn collect_series(&mut self, slot: u32, booking: &'a Booking) {
        let (Some(first_start), Some(first_end)) = (booking.start, booking.end) else {
            return;
        };
        let Some(series) = self.index.series_rules.get(&slot) else {
            return;
        };
        let duration = first_end - first_start;
        let window = ExpansionWindow {
            from: earlier(earlier(self.at, self.revoke_after), duration),
            through: later(self.at, self.grant_before),
        };
        let zone = booking_zone(self.index, booking);
        let exdates = booking
            .recurrence
            .as_ref()
            .map_or(&[][..], |recurrence| recurrence.exdates.as_slice());
        let mut occurrences = Vec::new();
        let expanded = expand(series, first_start, zone, exdates, window, |start| {
            occurrences.push(start)
        });
        if let Err(error) = expanded {
            self.problem(ProblemKind::InvalidRecurrence {
                booking: booking.id.clone(),
                rrule: booking
                    .recurrence
                    .as_ref()
                    .and_then(|r| r.rrule.clone())
                    .unwrap_or_default(),
                error,
            });
        }
        for start in occurrences {
            self.offer_booking(booking, start, later(start, duration));
        }
    }

    /// Offers one booking occurrence to everyone on it; true if its bounds can change the answer for anyone.
    fn offer_booking(
        &mut self,
        booking: &'a Booking,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> bool {
        let window = booking_window(start, end, self.grant_before, self.revoke_after);
        let index = self.index;
        let mut offered = false;
        let resource = self.booked_resource.map_or(
            IdRef::Plain(booking.resource.as_deref().unwrap_or_default()),
            IdRef::Shared,
        );
        let grant = |role| GrantRef::Booking {
            booking,
            resource,
            occurrence_start: start,
            role,
        };
        if let Some(booker) = booking
            .member
            .as_deref()
            .and_then(|id| index.members.find(id))
        {
            offered |= self.offer_member(booker, grant(BookingRole::Booker), window);
        }
        for teammate in booking
            .members
            .iter()
            .filter_map(|id| index.members.find(id))
        {
            offered |= self.offer_member(teammate, grant(BookingRole::Teammate), window);
        }
        if self.binding.include_guests {
            for guest in booking
                .visitors
                .iter()
                .filter_map(|id| index.visitors.find(id))
            {
                offered |= self.offer_guest(guest, grant(BookingRole::Guest), window);
            }
        }
        offered
    }

    // ----- day passes --------------------------------------------------------------------------------

    /// DayPasses rule (seeds 002, 003, 001): members, or the whole team ([`company_members`]) for a company
    /// pass set, holding a pass set valid at the instant with uses left; "revoked once all the day passes are
    /// used up or when their validity ends". With `location`, only pass sets of that location, which must
    /// also lie in the connection's scope (the two intersect).
    fn collect_day_passes(&mut self, location: Option<&str>) {
        let index = self.index;
        if location.is_some() && !self.in_scope(location) {
            // Reported by `check_source_in_scope`: no pass set can lie in both.
            return;
        }
        let located = self.scope.is_some() || location.is_some();
        for (slot, pass) in index.passes.iter() {
            let remaining = pass_remaining(pass);
            if remaining == 0 || pass_status_is_final(pass) {
                continue;
            }
            let window = pass_window_at(index, slot, pass);
            if window.is_empty() {
                continue;
            }
            if located {
                // The location only matters to a scope (and takes up to two look-ups).
                let pass_location = pass_location(index, pass);
                let here = location.is_none_or(|location| pass_location == Some(location));
                if !here || !self.in_scope(pass_location) {
                    continue;
                }
            }
            let pass_id = IdRef::at(&index.passes, slot, &pass.id);
            let grant = |company| GrantRef::DayPass {
                pass: pass_id,
                remaining,
                company,
            };
            match pass_holder(pass) {
                PassHolder::Member(member) => {
                    let link = index.pass_members.get(slot as usize).copied().flatten();
                    if let Some(member) = index.members.follow(link, Some(member)) {
                        self.offer_member(member, grant(None), window);
                    }
                }
                PassHolder::Company(company) => {
                    let company_id = IdRef::find(&index.companies, company);
                    for member in company_members(index, company) {
                        self.offer_member(member, grant(Some(company_id)), window);
                    }
                }
                PassHolder::Nobody => {}
            }
        }
    }

    // ----- people ------------------------------------------------------------------------------------

    /// Offers a grant valid during `window` to a member; true if the window's bounds can change the answer
    /// (the member is eligible, or is reported for having no email while the window is open).
    fn offer_member(
        &mut self,
        (slot, member): (Slot, &'a Member),
        grant: GrantRef<'a>,
        window: Window,
    ) -> bool {
        match self.index.member_bar_at(slot) {
            Some(Bar::NoEmail) => {
                self.report_no_email(
                    || PersonRef::Member(slot, member).id(self.index),
                    member.name.as_deref(),
                    window,
                );
                return true;
            }
            Some(Bar::Former | Bar::NotApproved) => return false,
            None => {}
        }
        let mut window = window;
        // Membership and assignment grants are themselves running memberships: the gate only concerns
        // bookings and day passes.
        let gated = matches!(grant, GrantRef::Booking { .. } | GrantRef::DayPass { .. });
        if self.binding.require_active_membership && gated {
            let gate = self.gate(slot, member);
            earliest(&mut self.next_change_at, gate.next_bound);
            if !gate.open {
                earliest(&mut self.next_change_at, window.next_bound_after(self.at));
                return true;
            }
            window = window.intersect(&Window {
                start: None,
                end: gate.open_until,
            });
        }
        self.offer(PersonRef::Member(slot, member), grant, window);
        true
    }

    /// Like [`Collector::offer_member`], for a booking's guest.
    fn offer_guest(
        &mut self,
        (slot, guest): (Slot, &'a Visitor),
        grant: GrantRef<'a>,
        window: Window,
    ) -> bool {
        if visitor_bar(guest).is_some() {
            self.report_no_email(
                || PersonRef::Guest(slot, guest).id(self.index),
                guest.name.as_deref(),
                window,
            );
            return true;
        }
        self.offer(PersonRef::Guest(slot, guest), grant, window);
        true
    }

    /// A person without a usable email is never granted, but is reported while an offer's window is open.
    /// The problem appears and disappears at the window's bounds, so those are changes like a grant's: without
    /// them the incremental engine would keep a stale problem (or miss a new one) as time passes.
    fn report_no_email(
        &mut self,
        person: impl FnOnce() -> PersonId,
        name: Option<&str>,
        window: Window,
    ) {
        earliest(&mut self.next_change_at, window.next_bound_after(self.at));
        if window.contains(self.at) {
            self.problem(ProblemKind::NoEmail {
                person: person(),
                name: name.unwrap_or_default().to_owned(),
            });
        }
    }

    fn gate(&mut self, slot: Slot, member: &'a Member) -> Gate {
        if let Some(cell) = self.shared_gates.and_then(|cells| cells.get(slot as usize)) {
            return *cell.get_or_init(|| membership_gate(self.index, member, self.at));
        }
        if let Some(gate) = self.gates.get(&slot) {
            return *gate;
        }
        let gate = membership_gate(self.index, member, self.at);
        self.gates.insert(slot, gate);
        gate
    }

    fn offer(&mut self, person: PersonRef<'a>, grant: GrantRef<'a>, window: Window) {
        earliest(&mut self.next_change_at, window.next_bound_after(self.at));
        if window.contains(self.at) && self.grants_to(person) {
            self.offers.push(Offer {
                person,
                grant,
                ends_at: window.end,
            });
        }
    }

    fn grants_to(&self, person: PersonRef<'a>) -> bool {
        match (self.only, person) {
            (None, _) => true,
            (Some(only), PersonRef::Member(slot, _)) => only.contains(&slot),
            (Some(_), PersonRef::Guest(..)) => false,
        }
    }

    fn finish(mut self) -> BindingEvaluation {
        self.offers
            .sort_unstable_by(|a, b| a.person.sort_key().cmp(&b.person.sort_key()));
        let mut grants = Vec::new();
        for offers in self
            .offers
            .chunk_by(|a, b| a.person.sort_key() == b.person.sort_key())
        {
            let person = offers[0].person;
            let mut entitlement = Entitlement {
                person: person.id(self.index),
                email: person.email().to_owned(),
                name: person.name().to_owned(),
                reasons: offers
                    .iter()
                    .map(|offer| Reason {
                        binding: Arc::clone(&self.key),
                        source: Arc::clone(&self.source),
                        grant: offer.grant.to_owned(),
                        ends_at: offer.ends_at,
                    })
                    .collect(),
                ends_at: None,
            };
            normalize_reasons(&mut entitlement);
            grants.push((entitlement.person.clone(), entitlement));
        }
        let key = &self.binding.key;
        BindingEvaluation {
            binding: key.clone(),
            at: self.at,
            // Sorted input: the map is bulk-built without searching.
            grants: grants.into_iter().collect(),
            // Past the picture's booking horizon a booking may start that the picture does not
            // hold: the answer is exact only until then, so it is re-checked there at the latest.
            next_change_at: match (self.next_change_at, self.index.booking_horizon()) {
                (Some(next), Some(horizon)) if horizon > self.at => Some(next.min(horizon)),
                (None, Some(horizon)) if horizon > self.at => Some(horizon),
                (next, _) => next,
            },
            problems: self
                .problems
                .into_iter()
                .map(|kind| Problem {
                    binding: Some(key.clone()),
                    kind,
                })
                .collect(),
        }
    }
}

/// Keeps an index, bindings and their last evaluation, and re-evaluates only what changes touch.
#[derive(Debug, Clone)]
pub struct Engine {
    index: Index,
    bindings: Vec<Binding>,
    at: DateTime<Utc>,
    results: Vec<BindingEvaluation>,
    bindings_by_group: BTreeMap<GroupKey, Vec<usize>>,
}

/// What a re-evaluation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recomputed {
    /// The bindings that were re-evaluated.
    pub bindings: Vec<BindingKey>,
    /// The groups whose members or reasons changed (to sync to the vendor).
    pub changed_groups: BTreeSet<GroupKey>,
}

impl Engine {
    /// Evaluates every binding at `at`.
    pub fn new(index: Index, bindings: Vec<Binding>, at: DateTime<Utc>) -> Engine {
        let gates = shared_gates(&index, &bindings);
        let mut evaluated: Vec<(usize, BindingEvaluation)> =
            in_parallel(&bindings, Vec::new, |results, position, binding| {
                let result = evaluate_binding_for(&index, binding, at, None, gates.as_deref());
                results.push((position, result));
            })
            .into_iter()
            .flatten()
            .collect();
        evaluated.sort_unstable_by_key(|(position, _)| *position);
        let results = evaluated.into_iter().map(|(_, result)| result).collect();
        let mut bindings_by_group: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
        for (position, binding) in bindings.iter().enumerate() {
            for group in &binding.groups {
                bindings_by_group
                    .entry(group.clone())
                    .or_default()
                    .push(position);
            }
        }
        Engine {
            index,
            bindings,
            at,
            results,
            bindings_by_group,
        }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The earliest instant at which any binding's answer can change.
    pub fn next_change_at(&self) -> Option<DateTime<Utc>> {
        self.results
            .iter()
            .filter_map(|result| result.next_change_at)
            .min()
    }

    /// The full evaluation (every group).
    pub fn evaluation(&self) -> Evaluation {
        assemble(&self.index, &self.bindings, &self.results, self.at)
    }

    /// One group: the union of its bindings' grants.
    pub fn group(&self, group: &GroupKey) -> BTreeMap<PersonId, Entitlement> {
        let mut members = BTreeMap::new();
        for position in self.bindings_by_group.get(group).into_iter().flatten() {
            if let Some(result) = self.results.get(*position) {
                merge_grants(&mut members, &result.grants);
            }
        }
        members
    }

    /// Applies a change to the index (`engine.update(|index| index.upsert_booking(booking))`) and
    /// re-evaluates the bindings it touches.
    pub fn update(&mut self, change: impl FnOnce(&mut Index) -> Touched) -> Recomputed {
        let touched = change(&mut self.index);
        let affected = self.index.reach_of(&self.bindings, &touched);
        self.reevaluate(affected)
    }

    /// Moves the evaluation instant to `at`, re-evaluating only bindings whose answer can have changed (their
    /// `next_change_at` is at or before `at`), or all when moving backwards.
    pub fn advance_to(&mut self, at: DateTime<Utc>) -> Recomputed {
        let moving_back = at < self.at;
        self.at = at;
        let due: Vec<(usize, Reach)> = self
            .results
            .iter()
            .enumerate()
            .filter(|(_, result)| {
                moving_back || result.next_change_at.is_some_and(|next| next <= at)
            })
            .map(|(position, _)| (position, Reach::Everyone))
            .collect();
        let mut recomputed = self.reevaluate(due);
        for result in &mut self.results {
            result.at = at;
        }
        recomputed.bindings.sort();
        recomputed
    }

    fn reevaluate(&mut self, affected: Vec<(usize, Reach)>) -> Recomputed {
        let mut recomputed = Recomputed::default();
        for (position, reach) in affected {
            let (Some(binding), Some(previous)) =
                (self.bindings.get(position), self.results.get_mut(position))
            else {
                continue;
            };
            let changed = match reach {
                Reach::Everyone => {
                    let fresh = evaluate_binding(&self.index, binding, self.at);
                    let changed = fresh.grants != previous.grants;
                    *previous = fresh;
                    changed
                }
                Reach::Members(members) => {
                    let fresh =
                        evaluate_binding_for(&self.index, binding, self.at, Some(&members), None);
                    replace_members(previous, fresh, &members)
                }
            };
            if changed {
                recomputed
                    .changed_groups
                    .extend(binding.groups.iter().cloned());
            }
            recomputed.bindings.push(binding.key.clone());
        }
        recomputed
    }
}

/// Takes a binding's next change, problems and the grants of `members` from `fresh` (an evaluation limited
/// to those members) and keeps everyone else's grants; true if any of those members' grants changed.
fn replace_members(
    previous: &mut BindingEvaluation,
    mut fresh: BindingEvaluation,
    members: &FastSet<ObjectId>,
) -> bool {
    let mut changed = false;
    for member in members {
        let person = PersonId::Member(Arc::from(member.as_str()));
        let old = previous.grants.remove(&person);
        let new = fresh.grants.remove(&person);
        changed |= old != new;
        if let Some(entitlement) = new {
            previous.grants.insert(person, entitlement);
        }
    }
    previous.at = fresh.at;
    previous.next_change_at = fresh.next_change_at;
    previous.problems = fresh.problems;
    changed
}
