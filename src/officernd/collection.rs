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
    ///
    /// Bookings are windowed by their series bounds only: the API rejects `start`/`end` filters
    /// (see [`super::wire::BOOKING_WINDOW_FIELDS`]).
    pub fn date_filters(self) -> &'static [&'static str] {
        match self {
            Self::Bookings => &["createdAt", "modifiedAt", "seriesStart", "seriesEnd"],
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

/// A set of collections: what one read covers, and so which read scopes its token asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CollectionSet(u16);

impl CollectionSet {
    pub const EMPTY: CollectionSet = CollectionSet(0);

    /// The set holding exactly `collections`.
    pub const fn of(collections: &[Collection]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < collections.len() {
            bits |= 1 << collections[i] as u16;
            i += 1;
        }
        CollectionSet(bits)
    }

    pub const fn with(self, collection: Collection) -> Self {
        CollectionSet(self.0 | 1 << collection as u16)
    }

    pub const fn union(self, other: CollectionSet) -> Self {
        CollectionSet(self.0 | other.0)
    }

    pub const fn contains(self, collection: Collection) -> bool {
        self.0 & (1 << collection as u16) != 0
    }

    /// Whether every collection of `other` is in this set.
    pub const fn covers(self, other: CollectionSet) -> bool {
        other.0 & !self.0 == 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The collections, in [`Collection::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Collection> {
        Collection::ALL
            .into_iter()
            .filter(move |collection| self.contains(*collection))
    }

    /// The read scopes of the collections, in [`Collection::ALL`] order.
    pub fn read_scopes(self) -> Vec<String> {
        self.iter().map(|c| c.scope(Access::Read)).collect()
    }
}

impl FromIterator<Collection> for CollectionSet {
    fn from_iter<I: IntoIterator<Item = Collection>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Display for CollectionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Collection::path).collect();
        f.write_str(&names.join(", "))
    }
}

/// What flexgate does with an OfficeRnD connection, and the collections each use reads. The
/// token of a read asks for exactly the read scopes of the collections it reads (the union over
/// the features in use), never for all of them: an OfficeRnD application lacking one scope gets no
/// token at all, so asking for a scope nothing needs would stop everything.
///
/// This table is the one source of the scope list in the README and in `kubectl explain
/// vendorconnection.spec.officernd` (a test compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// The VendorConnection check: counts locations and members.
    ConnectionCheck,
    /// Every AccessGroupBinding: who is a member, of which company, with which membership
    /// (whole-team grants, the active-membership gate), and each location's time zone.
    DoorBindings,
    /// `source.plan`: plans by id or name.
    PlanBindings,
    /// `source.location` and `source.assignableResource`: desks and offices and who is assigned.
    AssignmentBindings,
    /// `source.floor`: as assignments, plus floors by id or name.
    FloorBindings,
    /// `source.bookableResource`: bookings of the room.
    BookingBindings,
    /// `includeGuests: true` on a bookable-resource binding: the guests of those bookings.
    BookingGuests,
    /// `source.dayPasses`.
    DayPassBindings,
    /// Every SiteMapping: the location's floors, resources, companies and active members.
    SiteMappings,
    /// `sync.syncCalendarBookings: true` on a SiteMapping: the location's bookings.
    SiteMappingBookings,
}

impl Feature {
    pub const ALL: [Feature; 10] = [
        Self::ConnectionCheck,
        Self::DoorBindings,
        Self::PlanBindings,
        Self::AssignmentBindings,
        Self::FloorBindings,
        Self::BookingBindings,
        Self::BookingGuests,
        Self::DayPassBindings,
        Self::SiteMappings,
        Self::SiteMappingBookings,
    ];

    /// The collections this feature reads.
    pub const fn reads(self) -> CollectionSet {
        use Collection::*;
        match self {
            Self::ConnectionCheck => CollectionSet::of(&[Members, Locations]),
            Self::DoorBindings => CollectionSet::of(&[Members, Companies, Memberships, Locations]),
            Self::PlanBindings => CollectionSet::of(&[Plans]),
            Self::AssignmentBindings => CollectionSet::of(&[Resources, Assignments]),
            Self::FloorBindings => CollectionSet::of(&[Floors, Resources, Assignments]),
            Self::BookingBindings => CollectionSet::of(&[Resources, Bookings]),
            Self::BookingGuests => CollectionSet::of(&[Visitors]),
            Self::DayPassBindings => CollectionSet::of(&[Passes]),
            Self::SiteMappings => {
                CollectionSet::of(&[Members, Companies, Locations, Floors, Resources])
            }
            Self::SiteMappingBookings => CollectionSet::of(&[Bookings]),
        }
    }

    /// Who needs it, in the words of the manifests.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ConnectionCheck => "every OfficeRnD connection (its check)",
            Self::DoorBindings => "every AccessGroupBinding",
            Self::PlanBindings => "bindings with source.plan",
            Self::AssignmentBindings => {
                "bindings with source.location or source.assignableResource"
            }
            Self::FloorBindings => "bindings with source.floor",
            Self::BookingBindings => "bindings with source.bookableResource",
            Self::BookingGuests => "bookable-resource bindings with includeGuests: true",
            Self::DayPassBindings => "bindings with source.dayPasses",
            Self::SiteMappings => "every SiteMapping",
            Self::SiteMappingBookings => "SiteMappings with sync.syncCalendarBookings: true",
        }
    }

    /// The uses that need `scope`, for a refusal message ("needed by ...").
    pub fn needing(scope: &str) -> Vec<Feature> {
        Self::ALL
            .into_iter()
            .filter(|feature| feature.reads().read_scopes().iter().any(|s| s == scope))
            .collect()
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

    #[test]
    fn sets_cover_and_list_their_read_scopes_in_table_order() {
        let set = CollectionSet::of(&[Collection::Passes, Collection::Members]);
        assert_eq!(
            set.read_scopes(),
            vec!["flex.community.members.read", "flex.space.passes.read"]
        );
        assert!(set.covers(CollectionSet::of(&[Collection::Members])));
        assert!(!set.covers(CollectionSet::of(&[Collection::Visitors])));
        assert!(CollectionSet::EMPTY.is_empty());
        assert_eq!(set.to_string(), "members, passes");
        assert_eq!(
            Feature::needing("flex.space.passes.read"),
            vec![Feature::DayPassBindings]
        );
    }

    /// The spec's `officernd` description as `kubectl explain vendorconnection.spec.officernd`
    /// shows it.
    fn explained(field: &str) -> String {
        let crd =
            serde_json::to_value(<crate::api::VendorConnection as kube::CustomResourceExt>::crd())
                .expect("the CRD serializes");
        crd.pointer(&format!(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/{field}/description"
        ))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
    }

    #[test]
    fn every_scope_a_feature_reads_is_listed_in_the_readme_and_in_kubectl_explain() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("#### OfficeRnD scopes")
            .nth(1)
            .and_then(|rest| rest.split("\n#").next())
            .expect("README has an OfficeRnD scopes section");
        let explain = explained("officernd");
        let bookings_create = Collection::Bookings.scope(Access::Create);
        for feature in Feature::ALL {
            for scope in feature.reads().read_scopes() {
                assert!(
                    section.contains(&format!("`{scope}`")),
                    "README lacks {scope} ({feature:?})"
                );
                assert!(explain.contains(&scope), "CRD lacks {scope} ({feature:?})");
            }
        }
        assert!(section.contains(&bookings_create));
        assert!(explain.contains(&bookings_create));
    }

    #[test]
    fn the_request_rate_default_is_the_documented_one() {
        let default = super::super::wire::DEFAULT_REQUESTS_PER_SECOND;
        let config = super::super::OfficeRndConfig::new("acme", "id", "secret").expect("valid");
        assert_eq!(config.requests_per_second, f64::from(default));
        let explain = explained("requestsPerSecond");
        assert!(
            explain.contains(&format!("OfficeRnD, which publishes no\nnumber, {default}"))
                || explain.contains(&format!("OfficeRnD, which publishes no number, {default}")),
            "{explain}"
        );
    }
}
