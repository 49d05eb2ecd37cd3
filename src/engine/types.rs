//! The access engine's own input (bindings) and output (evaluations, entitlements, problems) types.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::officernd::model::ObjectId;

/// An OfficeRnD id in the engine's output, shared with the index (cloning one bumps a count instead of
/// copying the string: a full evaluation names hundreds of thousands of ids).
pub type SharedId = Arc<str>;

/// Identifies a binding (the integrator maps a Kubernetes object's namespace and name onto it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BindingKey {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for BindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A vendor group on a vendor connection. Opaque to the engine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub connection: String,
    pub group: String,
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.connection, self.group)
    }
}

/// An OfficeRnD object named by id or by exact name (names are matched case-sensitively, as shown in the UI).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectRef {
    Id(String),
    Name(String),
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Id(id) => write!(f, "id {id}"),
            ObjectRef::Name(name) => write!(f, "'{name}'"),
        }
    }
}

/// What a binding maps onto its groups: the six tabs of the integration settings (seeds Salto KS 002,
/// Brivo 003, Kisi 001).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Members holding an active, approved membership on the plan.
    Plan(ObjectRef),
    /// Members whose membership is assigned to a resource in the location.
    Location(ObjectRef),
    /// Members whose membership is assigned to a resource on the floor.
    Floor(ObjectRef),
    /// Members whose membership is assigned to the resource (private office, dedicated desk).
    AssignableResource(ObjectRef),
    /// Bookers, teammates and (optionally) guests of bookings of the resource, around the booking.
    BookableResource(ObjectRef),
    /// Members (or whole companies) holding valid day passes with uses left; with a location, only pass
    /// sets of that location (the binding's own location, which narrows the connection's scope: a pass set
    /// must lie in both).
    DayPasses(Option<ObjectRef>),
}

/// The kind of OfficeRnD object a reference names, for problem messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Plan,
    Location,
    Floor,
    Resource,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Plan => "plan",
            ObjectKind::Location => "location",
            ObjectKind::Floor => "floor",
            ObjectKind::Resource => "resource",
        })
    }
}

/// One mapping from an OfficeRnD source to one or more vendor groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key: BindingKey,
    pub source: Source,
    pub groups: Vec<GroupKey>,
    /// Bookings only: access opens this long before the booking starts (negative values count as zero).
    pub grant_before: Duration,
    /// Bookings only: access stays this long after the booking ends (negative values count as zero).
    pub revoke_after: Duration,
    /// Bookings only: also grant the booking's guests (`visitors[]`). Seeds 002/003: "Inviting a guest to a
    /// booking will grant them door access".
    pub include_guests: bool,
    /// The connection is activated for these locations only (Salto KS, seed 002 step 2); `None` = all. A
    /// source's own location (a location source, a floor's or resource's location, day passes' location)
    /// narrows it and never widens it: outside the scope it is a problem and grants nobody.
    pub location_scope: Option<Vec<ObjectRef>>,
    /// Salto KS (seed 002): "Members will only be added to Salto KS once their membership becomes active".
    /// When set, a member is granted by this binding only while holding an active, approved membership
    /// (personal, or their company's). Guests are exempt: they are granted per booking by design.
    pub require_active_membership: bool,
}

/// A person who can be granted access. Guests are keyed apart from members so a visitor id can never be
/// mistaken for a member id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PersonId {
    Member(SharedId),
    Guest(SharedId),
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersonId::Member(id) => write!(f, "member {id}"),
            PersonId::Guest(id) => write!(f, "guest {id}"),
        }
    }
}

/// How a booking involves the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BookingRole {
    Booker,
    Teammate,
    Guest,
}

/// The OfficeRnD object(s) that entitle a person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    /// A membership on the plan; `company` is set when it is a company membership granting the whole team.
    Membership {
        membership: SharedId,
        plan: SharedId,
        company: Option<SharedId>,
    },
    /// A membership assigned to a resource.
    Assignment {
        assignment: SharedId,
        membership: SharedId,
        resource: SharedId,
        company: Option<SharedId>,
    },
    /// One occurrence of a booking (for a single booking, its only occurrence).
    Booking {
        booking: SharedId,
        resource: SharedId,
        occurrence_start: DateTime<Utc>,
        role: BookingRole,
    },
    /// A day-pass set with `remaining` uses left; `company` is set for a company pass set.
    DayPass {
        pass: SharedId,
        remaining: u32,
        company: Option<SharedId>,
    },
}

/// Why a person is in a group: which binding and which object, and until when (if known).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reason {
    /// Shared with every other reason of the same binding (cheap to clone).
    pub binding: Arc<BindingKey>,
    pub source: Arc<Source>,
    pub grant: Grant,
    /// When this reason stops granting access, if known (e.g. never known for an open-ended membership).
    pub ends_at: Option<DateTime<Utc>>,
}

/// A person's access to one group with every reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub person: PersonId,
    pub email: String,
    pub name: String,
    /// Sorted, without duplicates.
    pub reasons: Vec<Reason>,
    /// The latest `ends_at` among the reasons, `None` if any reason is open-ended. Access may last longer if
    /// a new reason starts before then (e.g. the next booking); `next_change_at` is the instant to re-check.
    pub ends_at: Option<DateTime<Utc>>,
}

/// A specific, actionable problem found while evaluating.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum ProblemKind {
    #[error("{kind} '{name}' matches {} {kind}s: ids {}", ids.len(), ids.join(", "))]
    AmbiguousName {
        kind: ObjectKind,
        name: String,
        ids: Vec<ObjectId>,
    },
    #[error("{kind} {reference} not found")]
    NotFound {
        kind: ObjectKind,
        reference: ObjectRef,
    },
    #[error("{what} is outside the connection's locations")]
    OutsideLocationScope { what: String },
    #[error("{person} ({name}) has no email, so cannot be given access")]
    NoEmail { person: PersonId, name: String },
    #[error("location {location} has time zone {timezone:?} which is not an IANA time zone; UTC is used")]
    UnknownTimeZone {
        location: ObjectId,
        timezone: String,
    },
    #[error("booking {booking} has an unusable recurrence {rrule:?}: {error}; only its first occurrence counts")]
    InvalidRecurrence {
        booking: ObjectId,
        rrule: String,
        error: String,
    },
    #[error("booking {booking} has no start or end and is ignored")]
    BookingWithoutTimes { booking: ObjectId },
}

/// A problem, attributed to the binding (and person) it concerns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub binding: Option<BindingKey>,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.binding {
            Some(binding) => write!(f, "binding {binding}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// Who is in each bound group at `at`, and the earliest later instant at which that can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub at: DateTime<Utc>,
    /// The earliest instant after `at` at which a reason starts or ends, or a time-bound problem (a person
    /// without email on a running grant) appears or disappears; `groups` and `problems` are constant on
    /// `[at, next_change_at)`. `None`: nothing changes with time alone (only OfficeRnD changes can).
    pub next_change_at: Option<DateTime<Utc>>,
    /// Every bound group, empty groups included (an empty group must be emptied at the vendor).
    pub groups: BTreeMap<GroupKey, BTreeMap<PersonId, Entitlement>>,
    /// Sorted, without duplicates.
    pub problems: Vec<Problem>,
}
