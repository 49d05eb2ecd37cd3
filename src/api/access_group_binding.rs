//! `AccessGroupBinding`: an OfficeRnD plan, location, floor, assignable resource, bookable
//! resource or the day passes, mapped to one or more vendor access groups.

// clippy reads the repeated `printcolumn(type_ = ...)` entries of `#[kube]` as duplicated
// attributes; they are distinct columns.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::DURATION_PATTERN;
use super::status::{Counts, Problem};

/// Who gets into which vendor groups: the people OfficeRnD entitles through `source` are kept
/// in `groups`, and nobody else.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "flexgate.dev",
    version = "v1alpha1",
    kind = "AccessGroupBinding",
    namespaced,
    status = "AccessGroupBindingStatus",
    shortname = "agb",
    category = "flexgate",
    doc = "Maps an OfficeRnD plan, location, floor, resource or the day passes to vendor access groups.",
    printcolumn(name = "Vendor", type_ = "string", json_path = ".spec.vendorRef.name"),
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        priority = 1
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Matched",
        type_ = "integer",
        json_path = ".status.counts.matched"
    ),
    printcolumn(
        name = "Granted",
        type_ = "integer",
        json_path = ".status.counts.granted"
    ),
    printcolumn(
        name = "Pending",
        type_ = "integer",
        json_path = ".status.counts.pending"
    ),
    printcolumn(
        name = "Errors",
        type_ = "integer",
        json_path = ".status.counts.errors"
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AccessGroupBindingSpec {
    /// The VendorConnection (same namespace, vendor OfficeRnD) to read entitlements from.
    pub officernd_ref: ConnectionRef,

    /// The VendorConnection (same namespace; Kisi, SaltoKS or Brivo) whose groups are managed.
    /// Cannot be changed: delete the binding (revoking its access) and create another.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.vendorRef is immutable; delete this binding and create a new one for another vendor account"))]
    pub vendor_ref: ConnectionRef,

    /// What in OfficeRnD entitles people: exactly one of plan, location, floor,
    /// assignableResource, bookableResource or dayPasses.
    pub source: BindingSource,

    /// Vendor access groups (by id or exact name) that the entitled people are kept in. These
    /// groups become managed: anyone not entitled by some binding is removed from them.
    #[schemars(length(min = 1, max = 16))]
    pub groups: Vec<GroupRef>,

    /// Bookable resources: how long before a booking starts access is granted (at most 24h).
    #[serde(default = "default_grant_before")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')").message("at most 24h: a booking grants access at most a day before it starts"))]
    pub grant_before: String,

    /// Bookable resources: how long after a booking ends access is revoked (at most 24h).
    #[serde(default = "default_revoke_after")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')").message("at most 24h: a booking keeps access at most a day after it ends"))]
    pub revoke_after: String,

    /// Bookable resources: whether guests and visitors invited to a booking get access too.
    #[serde(default = "default_true")]
    pub include_guests: bool,

    /// Mass-revocation guard: a sync of this binding that would take all managed access away
    /// from more than this percentage of the people with access on the vendor connection
    /// removes nobody and waits for acknowledgement (annotation
    /// flexgate.dev/acknowledge-mass-revocation naming the held plan). People who keep another
    /// managed group, or whose booking, membership or pass ended, are not counted.
    #[serde(default = "default_max_revocation_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub max_revocation_percent: u32,

    /// Apply writes to the vendor; Plan only computes and reports the grants and revokes that
    /// Apply would make.
    #[serde(default)]
    pub mode: BindingMode,

    /// What deleting this binding does: Revoke removes the access it alone granted; Orphan leaves
    /// vendor groups as they are.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Pause this binding: nothing is read or written until set to false.
    #[serde(default)]
    pub suspend: bool,
}

fn default_grant_before() -> String {
    "15m".to_owned()
}
fn default_revoke_after() -> String {
    "0s".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_max_revocation_percent() -> u32 {
    20
}

/// A VendorConnection in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct ConnectionRef {
    /// Name of the VendorConnection.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The OfficeRnD object whose people get access. Exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.plan) ? 1 : 0) + (has(self.location) ? 1 : 0) + (has(self.floor) ? 1 : 0) + (has(self.assignableResource) ? 1 : 0) + (has(self.bookableResource) ? 1 : 0) + (has(self.dayPasses) ? 1 : 0) == 1").message("exactly one of plan, location, floor, assignableResource, bookableResource or dayPasses must be set"))]
pub struct BindingSource {
    /// Members holding an approved, active membership on this plan (or, for a company
    /// membership, the whole company), until the day after the membership's end date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ObjectSelector>,

    /// Members whose membership is assigned to a desk or office in this location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ObjectSelector>,

    /// Members whose membership is assigned to a desk or office on this floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<ObjectSelector>,

    /// Members whose membership is assigned to this resource (private office, dedicated desk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignable_resource: Option<ObjectSelector>,

    /// The booker, teammates and (with includeGuests) guests of bookings of this resource
    /// (meeting room), from grantBefore before the booking until revokeAfter after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookable_resource: Option<ObjectSelector>,

    /// Members or companies holding day passes with uses left and a validity containing now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_passes: Option<DayPassesSource>,
}

impl BindingSource {
    /// The source's kind as written in the spec, e.g. `plan`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self { plan: Some(_), .. } => "plan",
            Self {
                location: Some(_), ..
            } => "location",
            Self { floor: Some(_), .. } => "floor",
            Self {
                assignable_resource: Some(_),
                ..
            } => "assignableResource",
            Self {
                bookable_resource: Some(_),
                ..
            } => "bookableResource",
            Self {
                day_passes: Some(_),
                ..
            } => "dayPasses",
            _ => "none",
        }
    }
}

/// An OfficeRnD object named by id or by exact name. Names are matched exactly; a name shared by
/// several objects is reported as ambiguous and grants nothing until an id is used or `location`
/// narrows it down.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.id) != has(self.name)").message("set exactly one of id or name"))]
pub struct ObjectSelector {
    /// The OfficeRnD object id (24 hex characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{24}$"))]
    pub id: Option<String>,

    /// The object's exact name in OfficeRnD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,

    /// For floors and resources named by name: the OfficeRnD location (id or exact name) they
    /// belong to, since several locations often have a "Floor 1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub location: Option<String>,
}

/// Day passes, optionally limited to passes for one location.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct DayPassesSource {
    /// Only day passes for this OfficeRnD location (id or exact name), within the OfficeRnD
    /// connection's locations; empty means every valid day pass a member or company holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub location: Option<String>,
}

/// A vendor access group named by id or by exact name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.id) != has(self.name)").message("set exactly one of id or name"))]
pub struct GroupRef {
    /// The group's id at the vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub id: Option<String>,

    /// The group's exact name at the vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,
}

impl std::fmt::Display for GroupRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.id, &self.name) {
            (Some(id), _) => write!(f, "id {id}"),
            (None, Some(name)) => write!(f, "{name:?}"),
            (None, None) => f.write_str("(unnamed group)"),
        }
    }
}

/// Whether a binding writes to the vendor.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum BindingMode {
    /// Grants and revokes are applied at the vendor.
    #[default]
    Apply,
    /// Grants and revokes are computed and reported in status, never written.
    Plan,
}

/// What deleting a binding does to the access it granted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Revoke the access this binding alone granted.
    #[default]
    Revoke,
    /// Leave vendor groups untouched.
    Orphan,
}

/// What the controller observed and did for this binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessGroupBindingStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling and Stalled, following kstatus.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// When the vendor groups were last brought in line with OfficeRnD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// The last `flexgate.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The next instant at which this binding's access changes (a booking window opening, a
    /// membership ending), when one is known; a sync runs then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_change_time: Option<Time>,

    /// Resolved vendor groups (id and name), as last seen at the vendor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub resolved_groups: Vec<ResolvedGroup>,

    /// People matched, granted, pending, unmatched, failed.
    #[serde(default)]
    pub counts: Counts,

    /// In mode Plan (or while blocked), how many grants and revokes a sync would make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<PlannedChanges>,

    /// Specific problems with members or groups (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub problems: Vec<Problem>,

    /// How many problems were left out of `problems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems_omitted: Option<u32>,
}

/// A bound vendor group as resolved at the vendor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ResolvedGroup {
    /// The vendor's id for the group.
    pub id: String,
    /// The group's name at the vendor.
    pub name: String,
}

/// Grants and revokes computed but not applied.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChanges {
    /// People who would be added to a bound group.
    pub grants: u32,
    /// People who would be removed from a bound group.
    pub revokes: u32,
}
