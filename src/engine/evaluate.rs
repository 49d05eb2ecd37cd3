//! Evaluation of bindings at an instant: who each binding grants and why, the next instant that can change,
//! the union over bindings per group, and the incremental [`Engine`] that re-evaluates only what a change or
//! the passing of time affects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::engine::calendar::{earliest, Window};
use crate::engine::hash::{FastMap, FastSet};
use crate::engine::index::{pass_holder, Index, PassHolder, ResolvedSource, Touched};
use crate::engine::recurrence::{expand, ExpansionWindow};
use crate::engine::rules::{
    assignment_window, booking_window, booking_zone, company_members, member_bar, membership_gate,
    membership_is_approved, membership_window, pass_location, pass_remaining, pass_status_is_final,
    pass_window, usable_email, visitor_bar, Bar, Gate,
};
use crate::engine::types::{
    Binding, BindingKey, BookingRole, Entitlement, Evaluation, Grant, GroupKey, ObjectKind,
    PersonId, Problem, ProblemKind, Reason, Source,
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
    let partials = in_parallel(bindings, |chunk| fold_bindings(index, chunk, at));
    let mut evaluation = Evaluation {
        at,
        next_change_at: None,
        groups: BTreeMap::new(),
        problems: Vec::new(),
    };
    let mut problems: BTreeSet<Problem> = index.problems().into_iter().collect();
    for partial in partials {
        earliest(&mut evaluation.next_change_at, partial.next_change_at);
        problems.extend(partial.problems);
        for (group, grants) in partial.groups {
            merge_owned_grants(evaluation.groups.entry(group).or_default(), grants);
        }
    }
    evaluation.problems = problems.into_iter().collect();
    evaluation
}

/// Runs `work` on consecutive chunks of `items`, one chunk per available core (the engine stays free of
/// I/O and clocks; threads only split the CPU work), returning the chunk results in order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8);
    let chunk_size = items.len().div_ceil(cores).max(1);
    if cores == 1 || items.len() < 2 {
        return vec![work(items)];
    }
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = items
            .chunks(chunk_size)
            .map(|chunk| scope.spawn(move || work(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Evaluates bindings one by one and folds each result in at once, so only one copy of the grants is held.
fn fold_bindings(index: &Index, bindings: &[Binding], at: DateTime<Utc>) -> Evaluation {
    let mut evaluation = Evaluation {
        at,
        next_change_at: None,
        groups: BTreeMap::new(),
        problems: Vec::new(),
    };
    for binding in bindings {
        let result = evaluate_binding(index, binding, at);
        earliest(&mut evaluation.next_change_at, result.next_change_at);
        evaluation.problems.extend(result.problems);
        let mut grants = Some(result.grants);
        for (position, group) in binding.groups.iter().enumerate() {
            let into = evaluation.groups.entry(group.clone()).or_default();
            let last = position + 1 == binding.groups.len();
            match (last, grants.take()) {
                (true, Some(owned)) => merge_owned_grants(into, owned),
                (false, Some(owned)) => {
                    merge_grants(into, &owned);
                    grants = Some(owned);
                }
                (_, None) => {}
            }
        }
    }
    evaluation
}

fn merge_owned_grants(
    into: &mut BTreeMap<PersonId, Entitlement>,
    grants: BTreeMap<PersonId, Entitlement>,
) {
    if into.is_empty() {
        *into = grants;
        return;
    }
    for (person, entitlement) in grants {
        match into.get_mut(&person) {
            Some(existing) => {
                existing.reasons.extend(entitlement.reasons);
                normalize_reasons(existing);
            }
            None => {
                into.insert(person, entitlement);
            }
        }
    }
}

/// Evaluates one binding at `at`.
pub fn evaluate_binding(index: &Index, binding: &Binding, at: DateTime<Utc>) -> BindingEvaluation {
    let mut collector = Collector::new(index, binding, at);
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

/// A borrowed description of a grant, turned into an owned [`Grant`] only for people actually granted.
#[derive(Clone, Copy)]
enum GrantRef<'a> {
    Membership {
        membership: &'a Membership,
        company: Option<&'a str>,
    },
    Assignment {
        assignment: &'a str,
        membership: &'a Membership,
        resource: &'a str,
        company: Option<&'a str>,
    },
    Booking {
        booking: &'a Booking,
        occurrence_start: DateTime<Utc>,
        role: BookingRole,
    },
    DayPass {
        pass: &'a str,
        remaining: u32,
        company: Option<&'a str>,
    },
}

impl GrantRef<'_> {
    fn to_owned(self) -> Grant {
        match self {
            GrantRef::Membership {
                membership,
                company,
            } => Grant::Membership {
                membership: membership.id.clone(),
                plan: membership.plan.clone().unwrap_or_default(),
                company: company.map(str::to_owned),
            },
            GrantRef::Assignment {
                assignment,
                membership,
                resource,
                company,
            } => Grant::Assignment {
                assignment: assignment.to_owned(),
                membership: membership.id.clone(),
                resource: resource.to_owned(),
                company: company.map(str::to_owned),
            },
            GrantRef::Booking {
                booking,
                occurrence_start,
                role,
            } => Grant::Booking {
                booking: booking.id.clone(),
                resource: booking.resource.clone().unwrap_or_default(),
                occurrence_start,
                role,
            },
            GrantRef::DayPass {
                pass,
                remaining,
                company,
            } => Grant::DayPass {
                pass: pass.to_owned(),
                remaining,
                company: company.map(str::to_owned),
            },
        }
    }
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
    grants: BTreeMap<PersonId, Entitlement>,
    next_change_at: Option<DateTime<Utc>>,
    problems: BTreeSet<ProblemKind>,
    gates: FastMap<&'a str, Gate>,
    /// Shared by every reason this binding gives.
    key: Arc<BindingKey>,
    source: Arc<Source>,
}

impl<'a> Collector<'a> {
    fn new(index: &'a Index, binding: &'a Binding, at: DateTime<Utc>) -> Self {
        let mut collector = Collector {
            index,
            binding,
            at,
            grant_before: binding.grant_before.max(Duration::zero()),
            revoke_after: binding.revoke_after.max(Duration::zero()),
            scope: None,
            grants: BTreeMap::new(),
            next_change_at: None,
            problems: BTreeSet::new(),
            gates: FastMap::default(),
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
            ResolvedSource::Plan(_) | ResolvedSource::DayPasses => return,
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
            ResolvedSource::DayPasses => self.collect_day_passes(),
        }
    }

    // ----- plans & assignments -----------------------------------------------------------------------

    /// Plan rule (seeds 002, 003, 001): holders of an approved membership on the plan whose period contains
    /// the instant; a company membership grants the company's active members.
    fn collect_plan(&mut self, plan: &str) {
        let index = self.index;
        for slot in index.memberships_by_plan.get(plan) {
            let Some(membership) = index.memberships.at(*slot) else {
                continue;
            };
            if !membership_is_approved(membership) {
                continue;
            }
            let window = membership_window(index, membership);
            let location = index.membership_location(membership);
            self.offer_membership_holders(membership, window, location, |company| {
                GrantRef::Membership {
                    membership,
                    company,
                }
            });
        }
    }

    /// Location / Floor / AssignableResource rule (seeds 002, 003): members whose approved, running
    /// membership is assigned (assignment dates respected) to the resource.
    fn collect_assignments(&mut self, resource: &str) {
        let index = self.index;
        let Some(resource) = index.resources.get(resource) else {
            return;
        };
        let location = resource.location.as_deref();
        for slot in index.assignments_by_resource.get(&resource.id) {
            let Some(assignment) = index.assignments.at(*slot) else {
                continue;
            };
            let Some(membership) = assignment
                .membership
                .as_deref()
                .and_then(|id| index.memberships.get(id))
            else {
                continue;
            };
            if !membership_is_approved(membership) {
                continue;
            }
            let window = assignment_window(index, assignment, membership);
            self.offer_membership_holders(membership, window, location, |company| {
                GrantRef::Assignment {
                    assignment: &assignment.id,
                    membership,
                    resource: &resource.id,
                    company,
                }
            });
        }
    }

    /// Offers a membership-based grant to its member, or to the whole company for a company membership.
    fn offer_membership_holders(
        &mut self,
        membership: &'a Membership,
        window: Window,
        location: Option<&'a str>,
        grant: impl Fn(Option<&'a str>) -> GrantRef<'a>,
    ) {
        if window.is_empty() || !self.in_scope(location) {
            return;
        }
        let index = self.index;
        match (membership.member.as_deref(), membership.company.as_deref()) {
            (Some(member), _) => {
                if let Some(member) = index.members.get(member) {
                    self.offer_member(member, grant(None), window);
                }
            }
            (None, Some(company)) => {
                for member in company_members(index, company) {
                    self.offer_member(member, grant(Some(company)), window);
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
        let opens_by = self.at + self.grant_before;
        // A single booking can be active only if it starts after this (its end + revoke_after > at).
        let earliest_active_start = self.at - self.revoke_after - timeline.longest;
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
            from: self.at - self.revoke_after - duration,
            through: self.at + self.grant_before,
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
            self.offer_booking(booking, start, start + duration);
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
        let grant = |role| GrantRef::Booking {
            booking,
            occurrence_start: start,
            role,
        };
        if let Some(booker) = booking
            .member
            .as_deref()
            .and_then(|id| index.members.get(id))
        {
            offered |= self.offer_member(booker, grant(BookingRole::Booker), window);
        }
        for teammate in booking
            .members
            .iter()
            .filter_map(|id| index.members.get(id))
        {
            offered |= self.offer_member(teammate, grant(BookingRole::Teammate), window);
        }
        if self.binding.include_guests {
            for guest in booking
                .visitors
                .iter()
                .filter_map(|id| index.visitors.get(id))
            {
                offered |= self.offer_guest(guest, grant(BookingRole::Guest), window);
            }
        }
        offered
    }

    // ----- day passes --------------------------------------------------------------------------------

    /// DayPasses rule (seeds 002, 003, 001): members, or every active member of the company for a company
    /// pass set, holding a pass set valid at the instant with uses left; "revoked once all the day passes are
    /// used up or when their validity ends".
    fn collect_day_passes(&mut self) {
        let index = self.index;
        for (_, pass) in index.passes.iter() {
            let remaining = pass_remaining(pass);
            if remaining == 0 || pass_status_is_final(pass) {
                continue;
            }
            let window = pass_window(index, pass);
            if window.is_empty() || !self.in_scope(pass_location(index, pass)) {
                continue;
            }
            let grant = |company| GrantRef::DayPass {
                pass: &pass.id,
                remaining,
                company,
            };
            match pass_holder(pass) {
                PassHolder::Member(member) => {
                    if let Some(member) = index.members.get(member) {
                        self.offer_member(member, grant(None), window);
                    }
                }
                PassHolder::Company(company) => {
                    for member in company_members(index, company) {
                        self.offer_member(member, grant(Some(company)), window);
                    }
                }
                PassHolder::Nobody => {}
            }
        }
    }

    // ----- people ------------------------------------------------------------------------------------

    /// Offers a grant valid during `window` to a member; true if the window's bounds can change the answer
    /// (the member is eligible, or is reported for having no email while the window is open).
    fn offer_member(&mut self, member: &'a Member, grant: GrantRef<'a>, window: Window) -> bool {
        match member_bar(member) {
            Some(Bar::NoEmail) => {
                self.report_no_email(
                    || PersonId::Member(member.id.clone()),
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
            let gate = self.gate(member);
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
        let email = usable_email(member.email.as_deref()).unwrap_or_default();
        self.offer(
            PersonId::Member(member.id.clone()),
            email,
            member.name.as_deref(),
            grant,
            window,
        );
        true
    }

    /// Like [`Collector::offer_member`], for a booking's guest.
    fn offer_guest(&mut self, guest: &'a Visitor, grant: GrantRef<'a>, window: Window) -> bool {
        if visitor_bar(guest).is_some() {
            self.report_no_email(
                || PersonId::Guest(guest.id.clone()),
                guest.name.as_deref(),
                window,
            );
            return true;
        }
        let email = usable_email(guest.email.as_deref()).unwrap_or_default();
        self.offer(
            PersonId::Guest(guest.id.clone()),
            email,
            guest.name.as_deref(),
            grant,
            window,
        );
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

    fn gate(&mut self, member: &'a Member) -> Gate {
        if let Some(gate) = self.gates.get(member.id.as_str()) {
            return *gate;
        }
        let gate = membership_gate(self.index, member, self.at);
        self.gates.insert(&member.id, gate);
        gate
    }

    fn offer(
        &mut self,
        person: PersonId,
        email: &str,
        name: Option<&str>,
        grant: GrantRef<'a>,
        window: Window,
    ) {
        earliest(&mut self.next_change_at, window.next_bound_after(self.at));
        if !window.contains(self.at) {
            return;
        }
        let reason = Reason {
            binding: Arc::clone(&self.key),
            source: Arc::clone(&self.source),
            grant: grant.to_owned(),
            ends_at: window.end,
        };
        self.grants
            .entry(person)
            .or_insert_with_key(|person| Entitlement {
                person: person.clone(),
                email: email.to_owned(),
                name: name.unwrap_or_default().to_owned(),
                // Most people have a single reason; an empty Vec's first push would reserve room for four.
                reasons: Vec::with_capacity(1),
                ends_at: None,
            })
            .reasons
            .push(reason);
    }

    fn finish(mut self) -> BindingEvaluation {
        for entitlement in self.grants.values_mut() {
            normalize_reasons(entitlement);
        }
        let key = &self.binding.key;
        BindingEvaluation {
            binding: key.clone(),
            at: self.at,
            grants: self.grants,
            next_change_at: self.next_change_at,
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
        let results = in_parallel(&bindings, |chunk| {
            chunk
                .iter()
                .map(|binding| evaluate_binding(&index, binding, at))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
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
        let affected = self.index.affected_bindings(&self.bindings, &touched);
        self.reevaluate(&affected)
    }

    /// Moves the evaluation instant to `at`, re-evaluating only bindings whose answer can have changed (their
    /// `next_change_at` is at or before `at`), or all when moving backwards.
    pub fn advance_to(&mut self, at: DateTime<Utc>) -> Recomputed {
        let moving_back = at < self.at;
        self.at = at;
        let due: Vec<usize> = self
            .results
            .iter()
            .enumerate()
            .filter(|(_, result)| {
                moving_back || result.next_change_at.is_some_and(|next| next <= at)
            })
            .map(|(position, _)| position)
            .collect();
        let mut recomputed = self.reevaluate(&due);
        for result in &mut self.results {
            result.at = at;
        }
        recomputed.bindings.sort();
        recomputed
    }

    fn reevaluate(&mut self, positions: &[usize]) -> Recomputed {
        let mut recomputed = Recomputed::default();
        for position in positions {
            let (Some(binding), Some(previous)) =
                (self.bindings.get(*position), self.results.get(*position))
            else {
                continue;
            };
            let fresh = evaluate_binding(&self.index, binding, self.at);
            if fresh.grants != previous.grants {
                recomputed
                    .changed_groups
                    .extend(binding.groups.iter().cloned());
            }
            recomputed.bindings.push(binding.key.clone());
            self.results[*position] = fresh;
        }
        recomputed
    }
}
