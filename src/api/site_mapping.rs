//! `SiteMapping`: an OfficeRnD location mapped to an essensys Platform site, with floors,
//! resources and companies matched by name and members by email, then synced.

// clippy reads the repeated `printcolumn(type_ = ...)` entries of `#[kube]` as duplicated
// attributes; they are distinct columns.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access_group_binding::{ConnectionRef, ObjectSelector};
use super::status::{Counts, Problem};

/// Maps one OfficeRnD location to one essensys site. The proposed mapping is reported in status;
/// `approved: true` saves it, after which it is frozen (the seed: "mappings can only be saved
/// once per site").
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "flexgate.dev",
    version = "v1alpha1",
    kind = "SiteMapping",
    namespaced,
    status = "SiteMappingStatus",
    shortname = "sm",
    category = "flexgate",
    doc = "Maps an OfficeRnD location to an essensys Platform site and keeps the site in sync.",
    printcolumn(name = "Site", type_ = "string", json_path = ".spec.site"),
    printcolumn(name = "Approved", type_ = "boolean", json_path = ".spec.approved"),
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
        name = "Unmatched",
        type_ = "integer",
        json_path = ".status.counts.unmatched"
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
#[x_kube(validation = Rule::new("!oldSelf.approved || (self.approved && self.matching == oldSelf.matching && self.provisionEmptySite == oldSelf.provisionEmptySite)").message("this SiteMapping is approved and its mapping is frozen: approved, matching and provisionEmptySite cannot change (the sync toggles and suspend can); delete and recreate it to map the site again"))]
pub struct SiteMappingSpec {
    /// The VendorConnection (vendor OfficeRnD) to read the location from. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.officerndRef is immutable"))]
    pub officernd_ref: ConnectionRef,

    /// The VendorConnection (vendor Essensys) holding the site. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.essensysRef is immutable"))]
    pub essensys_ref: ConnectionRef,

    /// The OfficeRnD location (by id or exact name). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.location is immutable; map another location with another SiteMapping"))]
    pub location: ObjectSelector,

    /// The essensys site (its id or exact name). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.site is immutable; map another site with another SiteMapping"))]
    #[schemars(length(min = 1, max = 256))]
    pub site: String,

    /// Explicit opt-in to the one-time, irreversible step for an EMPTY essensys site (no floors,
    /// spaces or occupiers): create all floors, resources and companies of the location in
    /// essensys. Runs once, is recorded in status, and never runs again.
    #[serde(default)]
    pub provision_empty_site: bool,

    /// How floors, resources and companies are matched by name.
    #[serde(default)]
    pub matching: Matching,

    /// Saves the proposed mapping. Once true, approved, matching and provisionEmptySite are
    /// frozen; review status.proposal before setting it.
    #[serde(default)]
    pub approved: bool,

    /// Which services are synced after approval.
    #[serde(default)]
    pub sync: SyncToggles,

    /// Pause syncing this site until set to false.
    #[serde(default)]
    pub suspend: bool,
}

/// Name matching settings and manual overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Matching {
    /// Minimum normalised Levenshtein similarity (0 to 1) for an automatic match.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub threshold: f64,

    /// OfficeRnD floor name to essensys floor name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub floors: Vec<Override>,

    /// OfficeRnD resource name to essensys space name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2000))]
    pub resources: Vec<Override>,

    /// OfficeRnD company name to essensys occupier name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5000))]
    pub companies: Vec<Override>,
}

impl Default for Matching {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            floors: Vec::new(),
            resources: Vec::new(),
            companies: Vec::new(),
        }
    }
}

fn default_threshold() -> f64 {
    0.8
}

/// A manual mapping decision that always wins over automatic matching.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.essensys) != self.doNotMap").message("set either essensys (the target name) or doNotMap: true, not both"))]
pub struct Override {
    /// The OfficeRnD name (or id).
    #[schemars(length(min = 1, max = 256))]
    pub officernd: String,

    /// The essensys name (or id) it maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub essensys: Option<String>,

    /// Leave this OfficeRnD object unmapped ("Do not map").
    #[serde(default)]
    pub do_not_map: bool,
}

/// Services synced for mapped sites. A site's detected services (Wi-Fi, elumo or both) decide
/// what is actually synced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncToggles {
    /// Members synced to a site with essensys-managed Wi-Fi get their Wi-Fi invitation (once).
    #[serde(default)]
    pub auto_send_wifi_invitations: bool,

    /// Future bookings of mapped resources are mirrored to the essensys calendar (elumo).
    #[serde(default)]
    pub sync_calendar_bookings: bool,
}

/// What the controller proposes, saved and synced for this site.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteMappingStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling and Stalled, following kstatus.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// When the site was last synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// The last `flexgate.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The proposed (before approval) or saved (after) mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<MappingProposal>,

    /// The approved mapping as saved; a spec that no longer matches it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_mapping: Option<SavedMapping>,

    /// When the one-time empty-site provisioning ran; it never runs twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_time: Option<Time>,

    /// Services detected on the essensys site (Wifi, Elumo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub services: Vec<String>,

    /// Members matched by email, entities synced, unmatched and failed.
    #[serde(default)]
    pub counts: Counts,

    /// Specific problems (at most 50): members without email or mobile number, duplicate emails,
    /// entities that failed to sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub problems: Vec<Problem>,

    /// How many problems were left out of `problems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems_omitted: Option<u32>,
}

/// The record of an approved mapping.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SavedMapping {
    /// Hash of the matching settings and provisionEmptySite as approved.
    #[schemars(length(max = 128))]
    pub fingerprint: String,
    /// When the mapping was approved and saved.
    pub time: Time,
}

/// The name matching of floors, resources and companies, and the email matching of members.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingProposal {
    /// OfficeRnD floors to essensys floors.
    pub floors: EntityMatches,
    /// OfficeRnD resources to essensys spaces.
    pub resources: EntityMatches,
    /// OfficeRnD companies to essensys occupiers.
    pub companies: EntityMatches,
    /// Members matched to essensys users by exact email.
    pub members_matched: u32,
}

/// Matches for one kind of entity; lists are capped at 50 entries each, totals are exact.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityMatches {
    /// Total pairs matched (automatic and overrides).
    pub matched_count: u32,
    /// Matched pairs (first 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub matched: Vec<MatchedPair>,
    /// OfficeRnD names with no match at or above the threshold (first 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub unmatched: Vec<String>,
    /// OfficeRnD names with several close candidates; add an override (first 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub ambiguous: Vec<AmbiguousName>,
}

/// One OfficeRnD name mapped to one essensys name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct MatchedPair {
    /// The OfficeRnD name.
    pub officernd: String,
    /// The essensys name.
    pub essensys: String,
    /// Similarity from 0 to 1 (1 for overrides).
    pub score: f64,
}

/// An OfficeRnD name with several essensys candidates too close to call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct AmbiguousName {
    /// The OfficeRnD name.
    pub officernd: String,
    /// Candidate essensys names, best first.
    #[schemars(length(max = 5))]
    pub candidates: Vec<String>,
}
