//! The access rules for single OfficeRnD objects: when a membership, assignment, booking occurrence or
//! day-pass set grants access, and which people can be granted at all. Shared by evaluation and explanation
//! so both always agree.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::engine::calendar::{earlier, earliest, later, Window};
// Who can never be granted is decided in `eligibility`, which the index also uses (so the index
// does not depend on these rules); evaluation and explanation read it through here.
pub(crate) use crate::engine::eligibility::{member_bar, usable_email, visitor_bar, Bar};
use crate::engine::index::{pass_holder, Index, PassHolder, Slot};
use crate::officernd::model::{
    Assignment, Booking, Member, Membership, MembershipStatus, Pass, PassStatus,
};

/// "If the membership does not have a member assigned, access will be granted to the whole team" (seeds
/// 002, 003), and "every member or team that has day passes" (seeds 001, 002, 003): the team is every
/// member of the company, whatever their status. Who is barred is decided per person, exactly as for a
/// personal grant ([`member_bar`]: former and not-approved members, people without an email); a `drop-in`,
/// `pending` or `lead` member of the team is covered like an `active` one (drop-in members are the typical
/// users of a company's day passes). Unapproved memberships never get this far
/// ([`membership_is_approved`]).
pub(crate) fn company_members<'a>(
    index: &'a Index,
    company: &str,
) -> impl Iterator<Item = (Slot, &'a Member)> + 'a {
    index
        .members_by_company
        .get(company)
        .iter()
        .filter_map(|slot| Some((*slot, index.members.at(*slot)?)))
}

/// Only approved memberships grant (`status: approved`); a missing status is not approval.
pub(crate) fn membership_is_approved(membership: &Membership) -> bool {
    membership.status == Some(MembershipStatus::Approved)
}

/// The membership period: from the start of its start day to the end of its end day, in its location's time
/// zone (seed Kisi 001: removed "only when the plan becomes terminated (after its end date)").
pub(crate) fn membership_window(index: &Index, membership: &Membership) -> Window {
    match index.memberships.slot_of(&membership.id) {
        Some(slot) => membership_window_at(index, slot, membership),
        None => compute_membership_window(index, membership),
    }
}

/// [`membership_window`] of the membership stored at `slot` (callers iterating slots skip the id look-up).
pub(crate) fn membership_window_at(index: &Index, slot: Slot, membership: &Membership) -> Window {
    index
        .membership_windows
        .get_or_compute(slot, || compute_membership_window(index, membership))
}

fn compute_membership_window(index: &Index, membership: &Membership) -> Window {
    let zone = index.zone_of(index.membership_location(membership));
    Window::of_days(membership.start_date, membership.end_date, zone)
}

/// An assignment grants while both it (its own day range, in the resource's zone) and its membership run.
pub(crate) fn assignment_window(
    index: &Index,
    assignment: &Assignment,
    membership: &Membership,
) -> Window {
    let own = assignment_own_window(index, assignment, membership);
    own.intersect(&membership_window(index, membership))
}

/// [`assignment_window`] of the assignment stored at `slot`, whose membership is stored at
/// `membership_slot`.
pub(crate) fn assignment_window_at(
    index: &Index,
    (slot, assignment): (Slot, &Assignment),
    (membership_slot, membership): (Slot, &Membership),
) -> Window {
    index.assignment_windows.get_or_compute(slot, || {
        let own = assignment_own_window(index, assignment, membership);
        own.intersect(&membership_window_at(index, membership_slot, membership))
    })
}

fn assignment_own_window(
    index: &Index,
    assignment: &Assignment,
    membership: &Membership,
) -> Window {
    let resource_location = assignment
        .resource
        .as_deref()
        .and_then(|id| index.resources.get(id))
        .and_then(|resource| resource.location.as_deref());
    let zone = index.zone_of(resource_location.or_else(|| index.membership_location(membership)));
    Window::of_days(assignment.start_date, assignment.end_date, zone)
}

/// Uses left on a day-pass set (`count - usedCount`, never negative).
pub(crate) fn pass_remaining(pass: &Pass) -> u32 {
    pass.count
        .unwrap_or(0)
        .saturating_sub(pass.used_count.unwrap_or(0))
}

/// Whether the pass set's recorded status already rules it out. `used` and `expired` are final; `pending`
/// and `valid` are left to the dates, because a status read earlier goes stale as time passes.
pub(crate) fn pass_status_is_final(pass: &Pass) -> bool {
    matches!(pass.status, Some(PassStatus::Used | PassStatus::Expired))
}

/// The location a pass set belongs to (for location scopes): its membership's, else its holder's.
pub(crate) fn pass_location<'a>(index: &'a Index, pass: &'a Pass) -> Option<&'a str> {
    if let Some(membership) = pass
        .membership
        .as_deref()
        .and_then(|id| index.memberships.get(id))
    {
        if let Some(location) = index.membership_location(membership) {
            return Some(location);
        }
    }
    match pass_holder(pass) {
        PassHolder::Member(member) => index
            .members
            .get(member)
            .and_then(|m| index.member_location(m)),
        PassHolder::Company(company) => index
            .companies
            .get(company)
            .and_then(|c| c.location.as_deref()),
        PassHolder::Nobody => None,
    }
}

/// Validity of a pass set: `validFrom`..`validTo` when either is given, else `startDate`..`endDate`; whole
/// days in the pass set's location zone. (The documentation example has both pairs, not overlapping, so they
/// are not intersected: `valid*` is the more specific pair.)
pub(crate) fn pass_window(index: &Index, pass: &Pass) -> Window {
    match index.passes.slot_of(&pass.id) {
        Some(slot) => pass_window_at(index, slot, pass),
        None => compute_pass_window(index, pass),
    }
}

/// [`pass_window`] of the pass set stored at `slot`.
pub(crate) fn pass_window_at(index: &Index, slot: Slot, pass: &Pass) -> Window {
    index
        .pass_windows
        .get_or_compute(slot, || compute_pass_window(index, pass))
}

fn compute_pass_window(index: &Index, pass: &Pass) -> Window {
    let zone = index.zone_of(pass_location(index, pass));
    if pass.valid_from.is_some() || pass.valid_to.is_some() {
        Window::of_days(pass.valid_from, pass.valid_to, zone)
    } else {
        Window::of_days(pass.start_date, pass.end_date, zone)
    }
}

/// The booking's own zone, else its location's, else its resource's location's, else UTC. Used to expand
/// recurrences in local time.
pub(crate) fn booking_zone(index: &Index, booking: &Booking) -> Tz {
    if let Some(zone) = booking
        .timezone
        .as_deref()
        .and_then(|name| name.parse::<Tz>().ok())
    {
        return zone;
    }
    let resource_location = || {
        let resource = index.resources.get(booking.resource.as_deref()?)?;
        resource.location.as_deref()
    };
    index.zone_of(booking.location.as_deref().or_else(resource_location))
}

/// Booking access: from `grant_before` before the start until `revoke_after` after the end (seeds 002, 003:
/// "When the time of the booking approaches, John is granted access ... When the booking ends, John's access
/// is revoked").
pub(crate) fn booking_window(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    grant_before: Duration,
    revoke_after: Duration,
) -> Window {
    Window {
        start: Some(earlier(start, grant_before)),
        end: Some(later(end, revoke_after)),
    }
}

/// The active-membership gate of a member (Salto KS, seed 002): whether they hold an approved membership
/// (personal, or a company membership of their company) at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gate {
    pub(crate) open: bool,
    /// While open: when the longest currently running membership ends (`None`: open-ended).
    pub(crate) open_until: Option<DateTime<Utc>>,
    /// The earliest instant after `at` at which any of the member's memberships starts or ends.
    pub(crate) next_bound: Option<DateTime<Utc>>,
}

pub(crate) fn membership_gate(index: &Index, member: &Member, at: DateTime<Utc>) -> Gate {
    let mut gate = Gate {
        open: false,
        open_until: None,
        next_bound: None,
    };
    // While open: whether some running membership is open-ended, else the latest end among them.
    let mut open_ended = false;
    for (slot, membership) in covering_slots(index, member) {
        if !membership_is_approved(membership) {
            continue;
        }
        let window = membership_window_at(index, slot, membership);
        earliest(&mut gate.next_bound, window.next_bound_after(at));
        if window.contains(at) {
            gate.open = true;
            match window.end {
                None => open_ended = true,
                Some(end) => {
                    gate.open_until = Some(gate.open_until.map_or(end, |latest| latest.max(end)))
                }
            }
        }
    }
    if open_ended {
        gate.open_until = None;
    }
    gate
}

/// A member's personal memberships and their company's company memberships.
pub(crate) fn memberships_covering<'a>(
    index: &'a Index,
    member: &'a Member,
) -> impl Iterator<Item = &'a Membership> + 'a {
    covering_slots(index, member).map(|(_, membership)| membership)
}

/// [`memberships_covering`] with each membership's slot.
fn covering_slots<'a>(
    index: &'a Index,
    member: &'a Member,
) -> impl Iterator<Item = (Slot, &'a Membership)> + 'a {
    let personal = index.memberships_by_member.get(&member.id).iter();
    let company = member
        .company
        .as_deref()
        .map_or(&[][..], |company| index.memberships_by_company.get(company))
        .iter();
    personal
        .chain(company)
        .filter_map(|slot| Some((*slot, index.memberships.at(*slot)?)))
}
