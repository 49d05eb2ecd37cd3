//! The OfficeRnD Flex v2 collections flexgate touches: URL segment, OAuth scope names and which
//! list filters each accepts. Shared by the client, the simulator and webhook routing so the three agree.

use std::fmt;
use std::str::FromStr;

/// A v2 collection under `/api/v2/organizations/{orgSlug}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    Members,
    Companies,
    Memberships,
    Plans,
    Locations,
    Floors,
    Resources,
    Assignments,
    Bookings,
    Passes,
    Visitors,
}

/// The kind of access an OAuth scope grants on a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Create,
    Update,
    Delete,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

impl Collection {
    pub const ALL: [Collection; 11] = [
        Self::Members,
        Self::Companies,
        Self::Memberships,
        Self::Plans,
        Self::Locations,
        Self::Floors,
        Self::Resources,
        Self::Assignments,
        Self::Bookings,
        Self::Passes,
        Self::Visitors,
    ];

    /// The URL segment, which is also the seed-file key.
    pub fn path(self) -> &'static str {
        match self {
            Self::Members => "members",
            Self::Companies => "companies",
            Self::Memberships => "memberships",
            Self::Plans => "plans",
            Self::Locations => "locations",
            Self::Floors => "floors",
            Self::Resources => "resources",
            Self::Assignments => "assignments",
            Self::Bookings => "bookings",
            Self::Passes => "passes",
            Self::Visitors => "visitors",
        }
    }

    /// The scope prefix `flex.<module>.<resource>`; scope strings from a third-party registry that says
    /// it verified them against the live token endpoint (vendor-apis.md §1.4).
    fn scope_prefix(self) -> &'static str {
        match self {
            Self::Members => "flex.community.members",
            Self::Companies => "flex.community.companies",
            Self::Memberships => "flex.community.memberships",
            Self::Visitors => "flex.community.visitors",
            Self::Plans => "flex.billing.plans",
            Self::Locations => "flex.space.locations",
            Self::Floors => "flex.space.floors",
            Self::Resources => "flex.space.resources",
            Self::Assignments => "flex.space.assignments",
            Self::Bookings => "flex.space.bookings",
            Self::Passes => "flex.space.passes",
        }
    }

    /// The OAuth scope needed for `access` on this collection, e.g. `flex.community.members.read`.
    pub fn scope(self, access: Access) -> String {
        format!("{}.{}", self.scope_prefix(), access.as_str())
    }

    /// The singular noun OfficeRnD uses in webhook event types (`booking.updated`); `None` for
    /// collections without documented webhook events (their changes must be polled).
    pub fn event_subject(self) -> Option<&'static str> {
        match self {
            Self::Members => Some("member"),
            Self::Companies => Some("company"),
            Self::Memberships => Some("membership"),
            Self::Bookings => Some("booking"),
            Self::Passes => Some("pass"),
            _ => None,
        }
    }

    /// Whether the list endpoint accepts `modifiedAt[$gt]` for incremental refresh.
    ///
    /// Members: documented. Memberships: observed on staging to REJECT date filters ("property
    /// modifiedAt should not exist"), so they are always listed whole. Companies, resources, bookings,
    /// passes, visitors: inferred from the uniform v2 query language (unverified). Locations, floors,
    /// plans: documented filters do not include dates; they are small and always listed whole.
    /// Assignments: filters other than `resource`/`membership` are unknown.
    pub fn supports_modified_filter(self) -> bool {
        matches!(
            self,
            Self::Members
                | Self::Companies
                | Self::Resources
                | Self::Bookings
                | Self::Passes
                | Self::Visitors
        )
    }

    /// Exact-match filter fields of the list endpoint (each also usable as `field[$in]=a,b`).
    /// Documented for members, memberships, locations, floors; the rest are the likely shape.
    pub fn exact_filters(self) -> &'static [&'static str] {
        match self {
            Self::Members => &["_id", "name", "email", "location", "company", "status"],
            Self::Companies => &["_id", "name", "location", "status"],
            Self::Memberships => &["_id", "member", "company", "location", "plan"],
            Self::Plans => &["_id", "name"],
            Self::Locations => &["_id", "name", "isOpen", "isPublic"],
            Self::Floors => &["_id", "name", "location"],
            Self::Resources => &["_id", "name", "type", "location", "floor"],
            Self::Assignments => &["resource", "membership"],
            Self::Bookings => &["_id", "resource", "member", "company", "location"],
            Self::Passes => &["_id", "member", "company", "membership", "status"],
            Self::Visitors => &["_id", "email", "location"],
        }
    }

    /// Date fields accepting `[$gt|$gte|$lt|$lte]` on the list endpoint.
    pub fn date_filters(self) -> &'static [&'static str] {
        match self {
            Self::Bookings => &["createdAt", "modifiedAt", "start", "end"],
            c if c.supports_modified_filter() => &["createdAt", "modifiedAt"],
            _ => &[],
        }
    }

    /// The list endpoint refuses to list without one of these filters (none: listing is unrestricted).
    pub fn required_filters(self) -> &'static [&'static str] {
        match self {
            Self::Assignments => &["resource", "membership"],
            _ => &[],
        }
    }

    /// Whether the API allows POST/PUT/DELETE on it (locations and plans are not creatable; floors and
    /// resources are treated as read-only here).
    pub fn is_writable(self) -> bool {
        !matches!(
            self,
            Self::Plans | Self::Locations | Self::Floors | Self::Resources
        )
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// The name is not one of the collections in [`Collection::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OfficeRnD collection {0:?} (expected one of members, companies, memberships, plans, locations, floors, resources, assignments, bookings, passes, visitors)")]
pub struct UnknownCollection(pub String);

impl FromStr for Collection {
    type Err = UnknownCollection;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|collection| collection.path() == name)
            .ok_or_else(|| UnknownCollection(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_scopes_follow_the_flex_pattern() {
        for collection in Collection::ALL {
            assert_eq!(collection.path().parse::<Collection>(), Ok(collection));
        }
        assert_eq!(
            Collection::Members.scope(Access::Read),
            "flex.community.members.read"
        );
        assert_eq!(
            Collection::Bookings.scope(Access::Create),
            "flex.space.bookings.create"
        );
        assert_eq!(
            Collection::Plans.scope(Access::Read),
            "flex.billing.plans.read"
        );
        assert!("teams".parse::<Collection>().is_err());
    }
}
