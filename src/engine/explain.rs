//! Explanations for one person (found by email): every bound group they are in and why, every bound group
//! they are not in and why not, in words an operator can act on.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::engine::calendar::{calendar_date, earlier, later, Phase, Window, MAX_BOOKING_MARGIN};
use crate::engine::evaluate::evaluate_binding;
use crate::engine::index::{pass_holder, Index, PassHolder, ResolvedSource};
use crate::engine::recurrence::{expand, ExpansionWindow};
use crate::engine::rules::{
    assignment_window, booking_window, booking_zone, member_bar, membership_gate,
    membership_is_approved, membership_window, memberships_covering, pass_location, pass_remaining,
    pass_status_is_final, pass_window, visitor_bar, Bar,
};
use crate::engine::types::{Binding, BindingKey, GroupKey, ObjectKind, PersonId, Reason};
use crate::identity::canonical_email;
use crate::officernd::model::{Booking, Member, Membership, PassStatus, Visitor};

/// How far around the instant bookings are described when a person is not granted by a booking binding.
const BOOKING_HORIZON: Duration = Duration::days(7);

/// Everything about one person's access at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub email: String,
    pub at: DateTime<Utc>,
    /// Members and guests with this email (by [`canonical_email`]: whatever the case, spaces around it or
    /// the composition of accented letters).
    pub people: Vec<PersonId>,
    /// Every bound group.
    pub groups: BTreeMap<GroupKey, GroupExplanation>,
}

/// One group: in or not, and each binding's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupExplanation {
    pub granted: bool,
    pub bindings: Vec<BindingVerdict>,
}

/// One binding's verdict for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingVerdict {
    pub binding: BindingKey,
    /// The reasons this binding grants the person (empty when it does not).
    pub reasons: Vec<Reason>,
    /// Why (not): e.g. "membership on Hot Desk ended 2026-03-01", "booking starts in 40 minutes".
    pub messages: Vec<String>,
}

/// Explains, for the person(s) with `email`, every bound group they are and are not in at `at`.
pub fn explain(index: &Index, bindings: &[Binding], at: DateTime<Utc>, email: &str) -> Explanation {
    // A blank query names nobody (blank emails are never indexed).
    let email = canonical_email(email).unwrap_or_default();
    let members: Vec<&Member> = index
        .members_by_email
        .get(&email)
        .iter()
        .filter_map(|slot| index.members.at(*slot))
        .collect();
    let guests: Vec<&Visitor> = index
        .visitors_by_email
        .get(&email)
        .iter()
        .filter_map(|slot| index.visitors.at(*slot))
        .collect();
    let people: Vec<PersonId> = members
        .iter()
        .map(|m| PersonId::Member(index.members.share(&m.id)))
        .chain(
            guests
                .iter()
                .map(|v| PersonId::Guest(index.visitors.share(&v.id))),
        )
        .collect();
    let mut groups: BTreeMap<GroupKey, GroupExplanation> = BTreeMap::new();
    for binding in bindings {
        let verdict = binding_verdict(index, binding, at, &people, &members, &guests);
        for group in &binding.groups {
            let entry = groups.entry(group.clone()).or_insert(GroupExplanation {
                granted: false,
                bindings: Vec::new(),
            });
            entry.granted |= !verdict.reasons.is_empty();
            entry.bindings.push(verdict.clone());
        }
    }
    Explanation {
        email,
        at,
        people,
        groups,
    }
}

fn binding_verdict(
    index: &Index,
    binding: &Binding,
    at: DateTime<Utc>,
    people: &[PersonId],
    members: &[&Member],
    guests: &[&Visitor],
) -> BindingVerdict {
    let evaluation = evaluate_binding(index, binding, at);
    let mut reasons: Vec<Reason> = people
        .iter()
        .filter_map(|person| evaluation.grants.get(person))
        .flat_map(|entitlement| entitlement.reasons.iter().cloned())
        .collect();
    reasons.sort();
    let mut messages: Vec<String> = Vec::new();
    if people.is_empty() {
        messages.push("no member or guest has this email".to_owned());
    }
    let source = match index.resolve_source(&binding.source) {
        Ok(source) => Some(source),
        Err(problem) => {
            messages.push(problem.to_string());
            None
        }
    };
    if let Some(source) = source {
        let explainer = Explainer { index, binding, at };
        for member in members {
            explainer.member(member, &source, &mut messages);
        }
        for guest in guests {
            explainer.guest(guest, &source, &mut messages);
        }
    }
    BindingVerdict {
        binding: binding.key.clone(),
        reasons,
        messages,
    }
}

/// Describes one person's relevant facts for one binding.
struct Explainer<'a> {
    index: &'a Index,
    binding: &'a Binding,
    at: DateTime<Utc>,
}

impl Explainer<'_> {
    fn member(&self, member: &Member, source: &ResolvedSource, out: &mut Vec<String>) {
        match member_bar(member) {
            Some(Bar::Former) => out.push("former member".to_owned()),
            Some(Bar::NotApproved) => out.push("member not approved".to_owned()),
            Some(Bar::NoEmail) => out.push("no email".to_owned()),
            None => {}
        }
        let before = out.len();
        match source {
            ResolvedSource::Plan(plan) => self.plan(member, plan, out),
            ResolvedSource::Location(_)
            | ResolvedSource::Floor(_)
            | ResolvedSource::AssignableResource(_) => self.assignments(member, source, out),
            ResolvedSource::BookableResource(resource) => {
                self.member_bookings(member, resource, out)
            }
            ResolvedSource::DayPasses(location) => {
                self.day_passes(member, location.as_deref(), out)
            }
        }
        if out.len() == before {
            out.push(format!(
                "nothing in OfficeRnD links {} to {}",
                person_name(member),
                self.source_name(source)
            ));
        }
    }

    fn guest(&self, guest: &Visitor, source: &ResolvedSource, out: &mut Vec<String>) {
        if visitor_bar(guest).is_some() {
            out.push("guest has no email".to_owned());
        }
        let ResolvedSource::BookableResource(resource) = source else {
            out.push("guests are granted only through bookable-resource bindings".to_owned());
            return;
        };
        if !self.binding.include_guests {
            out.push("this binding does not grant guests".to_owned());
            return;
        }
        let bookings = self.index.bookings_by_visitor.get(&guest.id);
        self.bookings(bookings, resource, false, out);
    }

    fn plan(&self, member: &Member, plan: &str, out: &mut Vec<String>) {
        let plan_name = self.name(ObjectKind::Plan, plan);
        let on_plan: Vec<&Membership> = memberships_covering(self.index, member)
            .filter(|m| m.plan.as_deref() == Some(plan))
            .collect();
        if on_plan.is_empty() {
            out.push(format!("no membership on plan {plan_name}"));
        }
        for membership in on_plan {
            let what = format!("membership on {plan_name}{}", self.team(membership));
            self.membership_state(
                membership,
                &what,
                membership_window(self.index, membership),
                out,
            );
        }
    }

    fn assignments(&self, member: &Member, source: &ResolvedSource, out: &mut Vec<String>) {
        let mut any = false;
        for membership in memberships_covering(self.index, member) {
            for slot in self.index.assignments_by_membership.get(&membership.id) {
                let Some(assignment) = self.index.assignments.at(*slot) else {
                    continue;
                };
                let Some(resource) = assignment
                    .resource
                    .as_deref()
                    .and_then(|r| self.index.resources.get(r))
                else {
                    continue;
                };
                let matches = match source {
                    ResolvedSource::Location(l) => resource.location.as_deref() == Some(l.as_str()),
                    ResolvedSource::Floor(f) => resource.floor.as_deref() == Some(f.as_str()),
                    ResolvedSource::AssignableResource(r) => &resource.id == r,
                    _ => false,
                };
                if !matches {
                    continue;
                }
                any = true;
                let what = format!(
                    "assignment of membership {}{} to {}",
                    membership.name.as_deref().unwrap_or(&membership.id),
                    self.team(membership),
                    resource.name.as_deref().unwrap_or(&resource.id)
                );
                let window = assignment_window(self.index, assignment, membership);
                self.membership_state(membership, &what, window, out);
                if !self.in_scope(resource.location.as_deref()) {
                    out.push(format!("{what} is outside the connection's locations"));
                }
            }
        }
        if !any {
            out.push(format!(
                "no membership assigned to {}",
                self.source_name(source)
            ));
        }
    }

    /// " (whole team of Acme)" for a company membership (no member: it covers every member of the company
    /// who is not barred, whatever their status), else nothing.
    fn team(&self, membership: &Membership) -> String {
        match (&membership.member, &membership.company) {
            (None, Some(company)) => format!(" (whole team of {})", self.company_name(company)),
            _ => String::new(),
        }
    }

    fn company_name(&self, id: &str) -> String {
        self.index
            .companies
            .get(id)
            .and_then(|c| c.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    /// Approval, scope and period of a membership-based fact. (Team coverage needs no message: a company
    /// membership covers every member of the company; bars are said once per person.)
    fn membership_state(
        &self,
        membership: &Membership,
        what: &str,
        window: Window,
        out: &mut Vec<String>,
    ) {
        if !membership_is_approved(membership) {
            out.push(format!("{what}: membership not approved"));
            return;
        }
        if !self.in_scope(self.index.membership_location(membership)) {
            out.push(format!("{what} is outside the connection's locations"));
        }
        let zone = self
            .index
            .zone_of(self.index.membership_location(membership));
        match window.phase(self.at) {
            Phase::Active => out.push(format!(
                "{what} is active{}",
                until_text(membership.end_date.map(|d| calendar_date(d, zone)))
            )),
            Phase::Upcoming(start) => {
                out.push(format!("{what} starts {}", calendar_date(start, zone)))
            }
            Phase::Over(_) => {
                let last_day = membership.end_date.map(|d| calendar_date(d, zone));
                match last_day {
                    Some(day) => out.push(format!("{what} ended {day}")),
                    None => out.push(format!("{what} has ended")),
                }
            }
        }
    }

    fn member_bookings(&self, member: &Member, resource: &str, out: &mut Vec<String>) {
        let bookings = self.index.bookings_by_member.get(&member.id);
        self.bookings(bookings, resource, true, out);
        if self.binding.require_active_membership {
            let gate = membership_gate(self.index, member, self.at);
            if !gate.open {
                out.push("no active membership, which this connection requires".to_owned());
            }
        }
    }

    fn bookings(&self, slots: &[u32], resource: &str, is_member: bool, out: &mut Vec<String>) {
        let grant_before = self
            .binding
            .grant_before
            .clamp(Duration::zero(), MAX_BOOKING_MARGIN);
        let revoke_after = self
            .binding
            .revoke_after
            .clamp(Duration::zero(), MAX_BOOKING_MARGIN);
        let mut described = 0;
        for slot in slots {
            let Some(booking) = self.index.bookings.at(*slot) else {
                continue;
            };
            if booking.resource.as_deref() != Some(resource) {
                continue;
            }
            let title = booking_title(booking);
            for start in self.nearby_occurrences(booking) {
                let Some(duration) = booking
                    .end
                    .zip(booking.start)
                    .map(|(end, first)| end - first)
                else {
                    continue;
                };
                described += 1;
                if booking.is_cancelled {
                    out.push(format!("booking {title} is cancelled"));
                    break;
                }
                if booking.is_tentative {
                    out.push(format!("booking {title} is tentative"));
                    break;
                }
                let window =
                    booking_window(start, later(start, duration), grant_before, revoke_after);
                match window.phase(self.at) {
                    Phase::Active => out.push(format!(
                        "booking {title} is on; access until {}",
                        window.end.unwrap_or(later(start, duration))
                    )),
                    Phase::Upcoming(opens) => out.push(format!(
                        "booking {title} starts in {}; access opens {} before",
                        humanize(start - self.at),
                        humanize(start - opens)
                    )),
                    Phase::Over(closed) => out.push(format!(
                        "booking {title} ended {} ago",
                        humanize(self.at - closed + revoke_after)
                    )),
                }
            }
        }
        if described == 0 {
            let whom = if is_member { "booking" } else { "invitation" };
            out.push(format!(
                "no {whom} of {} within {} days",
                self.name(ObjectKind::Resource, resource),
                BOOKING_HORIZON.num_days()
            ));
        }
    }

    /// Occurrence starts of a booking within the horizon around the instant.
    fn nearby_occurrences(&self, booking: &Booking) -> Vec<DateTime<Utc>> {
        let Some(first) = booking.start else {
            return Vec::new();
        };
        let near = |start: DateTime<Utc>| (start - self.at).abs() <= BOOKING_HORIZON;
        let rule = booking
            .recurrence
            .as_ref()
            .and_then(|r| r.rrule.as_deref())
            .filter(|r| !r.trim().is_empty());
        let Some(rule) = rule.and_then(|r| crate::engine::recurrence::parse_recurrence(r).ok())
        else {
            return if near(first) { vec![first] } else { Vec::new() };
        };
        let exdates = booking
            .recurrence
            .as_ref()
            .map_or(&[][..], |r| r.exdates.as_slice());
        let window = ExpansionWindow {
            from: self.at - BOOKING_HORIZON,
            through: self.at + BOOKING_HORIZON,
        };
        let mut starts = Vec::new();
        let zone = booking_zone(self.index, booking);
        // An unusable rule is already reported as a problem; describe what could be expanded.
        let _ = expand(&rule, first, zone, exdates, window, |start| {
            starts.push(start)
        });
        starts.retain(|start| near(*start));
        starts
    }

    /// Every pass set covering the member (their own, their company's), with `location` the binding's own.
    fn day_passes(&self, member: &Member, location: Option<&str>, out: &mut Vec<String>) {
        if let Some(location) = location {
            if !self.in_scope(Some(location)) {
                out.push(format!(
                    "this binding's day-pass location {} is outside the connection's locations, so it grants nobody",
                    self.name(ObjectKind::Location, location)
                ));
            }
        }
        let personal = self.index.passes_by_member.get(&member.id).iter();
        let company = member
            .company
            .as_deref()
            .map_or(&[][..], |company| self.index.passes_by_company.get(company))
            .iter();
        let mut any = false;
        for pass in personal
            .chain(company)
            .filter_map(|slot| self.index.passes.at(*slot))
        {
            any = true;
            let pass_location = pass_location(self.index, pass);
            let zone = self.index.zone_of(pass_location);
            // A company pass set covers every member of the company (bars are said once per person).
            let team = match pass_holder(pass) {
                PassHolder::Company(company) => {
                    format!(
                        " (company pass set of {}, for the whole team)",
                        self.company_name(company)
                    )
                }
                PassHolder::Member(_) | PassHolder::Nobody => String::new(),
            };
            if pass_remaining(pass) == 0 || pass.status == Some(PassStatus::Used) {
                out.push(format!("day passes used up{team}"));
                continue;
            }
            if pass_status_is_final(pass) {
                out.push(format!("day pass set expired{team}"));
                continue;
            }
            if !self.in_scope(pass_location) {
                out.push(format!(
                    "day passes are outside the connection's locations{team}"
                ));
            }
            if let Some(location) = location.filter(|l| pass_location != Some(*l)) {
                out.push(format!(
                    "day passes are for {}, not this binding's location {}{team}",
                    pass_location.map_or_else(
                        || "no known location".to_owned(),
                        |l| self.name(ObjectKind::Location, l)
                    ),
                    self.name(ObjectKind::Location, location)
                ));
            }
            match pass_window(self.index, pass).phase(self.at) {
                Phase::Active => {
                    out.push(format!("{} day passes left{team}", pass_remaining(pass)))
                }
                Phase::Upcoming(start) => out.push(format!(
                    "day passes valid from {}{team}",
                    calendar_date(start, zone)
                )),
                Phase::Over(end) => out.push(format!(
                    "day pass validity ended {}{team}",
                    calendar_date(earlier(end, Duration::seconds(1)), zone)
                )),
            }
        }
        if !any {
            out.push("no day passes".to_owned());
        }
        if self.binding.require_active_membership
            && !membership_gate(self.index, member, self.at).open
        {
            out.push("no active membership, which this connection requires".to_owned());
        }
    }

    fn in_scope(&self, location: Option<&str>) -> bool {
        let Some(scope) = &self.binding.location_scope else {
            return true;
        };
        let Some(location) = location else {
            return false;
        };
        scope
            .iter()
            .filter_map(|reference| self.index.resolve(ObjectKind::Location, reference).ok())
            .any(|id| id == location)
    }

    fn name(&self, kind: ObjectKind, id: &str) -> String {
        let name = match kind {
            ObjectKind::Plan => self.index.plans.get(id).and_then(|p| p.name.clone()),
            ObjectKind::Location => self.index.locations.get(id).and_then(|l| l.name.clone()),
            ObjectKind::Floor => self.index.floors.get(id).and_then(|f| f.name.clone()),
            ObjectKind::Resource => self.index.resources.get(id).and_then(|r| r.name.clone()),
        };
        name.unwrap_or_else(|| id.to_owned())
    }

    fn source_name(&self, source: &ResolvedSource) -> String {
        match source {
            ResolvedSource::Plan(id) => format!("plan {}", self.name(ObjectKind::Plan, id)),
            ResolvedSource::Location(id) => {
                format!("a resource in {}", self.name(ObjectKind::Location, id))
            }
            ResolvedSource::Floor(id) => {
                format!("a resource on floor {}", self.name(ObjectKind::Floor, id))
            }
            ResolvedSource::AssignableResource(id) | ResolvedSource::BookableResource(id) => {
                self.name(ObjectKind::Resource, id)
            }
            ResolvedSource::DayPasses(None) => "day passes".to_owned(),
            ResolvedSource::DayPasses(Some(id)) => {
                format!("day passes in {}", self.name(ObjectKind::Location, id))
            }
        }
    }
}

fn person_name(member: &Member) -> String {
    member.name.clone().unwrap_or_else(|| member.id.clone())
}

fn booking_title(booking: &Booking) -> String {
    match &booking.title {
        Some(title) => format!("'{title}'"),
        None => booking.id.clone(),
    }
}

fn until_text(last_day: Option<chrono::NaiveDate>) -> String {
    last_day.map_or_else(String::new, |day| format!(" through {day}"))
}

/// "40 minutes", "2 hours", "3 days" (rounded down to the largest whole unit).
fn humanize(duration: Duration) -> String {
    let minutes = duration.num_minutes().max(0);
    let (count, unit) = if minutes < 120 {
        (minutes, "minute")
    } else if minutes < 48 * 60 {
        (minutes / 60, "hour")
    } else {
        (minutes / (24 * 60), "day")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}
