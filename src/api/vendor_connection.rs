//! `VendorConnection`: one account at OfficeRnD, Kisi, Salto KS, Brivo or essensys, with its
//! credentials in a Secret of the same namespace.

// clippy reads the repeated `printcolumn(type_ = ...)` entries of `#[kube]` as duplicated
// attributes; they are distinct columns.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::DURATION_PATTERN;
use super::status::{Counts, Problem};

/// One account at a vendor: which vendor, where its API is, where its credentials are, and the
/// vendor-specific settings from its integration guide.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "flexgate.dev",
    version = "v1alpha1",
    kind = "VendorConnection",
    namespaced,
    status = "VendorConnectionStatus",
    shortname = "vc",
    category = "flexgate",
    doc = "An account at OfficeRnD, Kisi, Salto KS, Brivo or essensys, with credentials from a Secret.",
    printcolumn(name = "Vendor", type_ = "string", json_path = ".spec.vendor"),
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
        name = "Groups",
        type_ = "integer",
        json_path = ".status.account.groups"
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.vendor == 'OfficeRnD' ? has(self.officernd) : !has(self.officernd)").message("spec.officernd (the organization slug) is required when vendor is OfficeRnD and allowed only then"))]
#[x_kube(validation = Rule::new("self.vendor == 'SaltoKS' ? has(self.saltoKs) : !has(self.saltoKs)").message("spec.saltoKs (the Salto KS site) is required when vendor is SaltoKS and allowed only then"))]
#[x_kube(validation = Rule::new("self.vendor == 'Essensys' ? has(self.essensys) : !has(self.essensys)").message("spec.essensys (the Platform URL) is required when vendor is Essensys and allowed only then"))]
#[x_kube(validation = Rule::new("!has(self.kisi) || self.vendor == 'Kisi'").message("spec.kisi is allowed only when vendor is Kisi"))]
#[x_kube(validation = Rule::new("!has(self.brivo) || self.vendor == 'Brivo'").message("spec.brivo is allowed only when vendor is Brivo"))]
#[x_kube(validation = Rule::new("!has(self.authEndpoint) || self.vendor in ['OfficeRnD', 'SaltoKS', 'Brivo']").message("spec.authEndpoint applies to vendors with a separate token service (OfficeRnD, SaltoKS, Brivo)"))]
#[x_kube(validation = Rule::new("!has(self.managedGroupPrefix) || self.vendor in ['Kisi', 'SaltoKS', 'Brivo']").message("spec.managedGroupPrefix applies to door-access vendors (Kisi, SaltoKS, Brivo) only"))]
pub struct VendorConnectionSpec {
    /// Which service this account is at. Cannot be changed: create a new VendorConnection instead.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.vendor is immutable; create a new VendorConnection for another vendor"))]
    pub vendor: Vendor,

    /// Base URL of the vendor's API, overriding the public default (for regional hosts, staging
    /// or the flexgate sandbox). Example: https://api.eu.brivo.com/v1/api.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub endpoint: Option<String>,

    /// Base URL of the vendor's token service when it is not the default (OfficeRnD identity,
    /// Salto KS identity server, Brivo auth host), e.g. https://auth.eu.brivo.com. When only
    /// `endpoint` is set, tokens are requested from the endpoint's own origin (as in the sandbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub auth_endpoint: Option<String>,

    /// The Secret (same namespace) holding this account's credentials, and which keys to read.
    pub credentials_secret_ref: CredentialsSecretRef,

    /// OfficeRnD settings; required when vendor is OfficeRnD.
    ///
    /// OAuth scopes the OfficeRnD app needs (Settings → Developer Tools). Each token asks only for
    /// the scopes of what reads through this connection; a scope the app lacks is named in the
    /// status (reason CredentialsInvalid). Every connection: flex.community.members.read,
    /// flex.space.locations.read. Every AccessGroupBinding adds flex.community.companies.read,
    /// flex.community.memberships.read; source.plan adds flex.billing.plans.read; source.location
    /// and source.assignableResource add flex.space.resources.read, flex.space.assignments.read;
    /// source.floor adds flex.space.floors.read, flex.space.resources.read,
    /// flex.space.assignments.read; source.bookableResource adds flex.space.resources.read,
    /// flex.space.bookings.read, and with includeGuests flex.community.visitors.read;
    /// source.dayPasses adds flex.space.passes.read. Every SiteMapping needs
    /// flex.community.members.read, flex.community.companies.read, flex.space.locations.read,
    /// flex.space.floors.read, flex.space.resources.read; with sync.syncCalendarBookings also
    /// flex.space.bookings.read, and flex.space.bookings.create to sync tap-to-book bookings back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officernd: Option<OfficeRndSettings>,

    /// Kisi settings; optional when vendor is Kisi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kisi: Option<KisiSettings>,

    /// Salto KS settings; required when vendor is SaltoKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salto_ks: Option<SaltoKsSettings>,

    /// Brivo settings; optional when vendor is Brivo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brivo: Option<BrivoSettings>,

    /// essensys Platform settings; required when vendor is Essensys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essensys: Option<EssensysSettings>,

    /// When set, every vendor group bound through this connection must start with this prefix
    /// (the integration guides recommend OFFICERND_). Managed groups are authoritative: people
    /// not entitled by OfficeRnD are removed, so the prefix keeps a hand-managed group from being
    /// emptied by a binding that names it by mistake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub managed_group_prefix: Option<String>,

    /// How often to resync fully, correcting drift made by hand at the vendor, as a duration
    /// (e.g. 15m, 1h; at least 30s). Webhooks and booking boundaries trigger syncs in between.
    #[serde(default = "default_sync_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('30s')").message("at least 30s: webhooks and booking boundaries trigger syncs in between"))]
    pub sync_interval: String,

    /// Upper bound on API requests per second to this account (token bucket). Defaults to the
    /// vendor's documented limit (Kisi: 5) or a conservative 10; OfficeRnD, which publishes no
    /// number, 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub requests_per_second: Option<u32>,

    /// Stop all syncs through this connection (nothing is read or written) until set to false.
    #[serde(default)]
    pub suspend: bool,
}

fn default_sync_interval() -> String {
    "15m".to_owned()
}

/// The shortest resync honoured: below it, a connection would hammer its vendor (and the API
/// server) for no benefit, since webhooks and booking boundaries trigger syncs in between.
pub const MIN_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// The resync when `syncInterval` cannot be read.
pub const DEFAULT_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl VendorConnectionSpec {
    /// `syncInterval` as both hosts use it: at least [`MIN_SYNC_INTERVAL`] (the CRD refuses
    /// shorter values; older objects may still carry one), 15 minutes when unreadable.
    pub fn sync_interval(&self) -> std::time::Duration {
        super::duration::parse(&self.sync_interval)
            .map(|interval| interval.max(MIN_SYNC_INTERVAL))
            .unwrap_or(DEFAULT_SYNC_INTERVAL)
    }
}

/// The services a VendorConnection can point at.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum Vendor {
    /// OfficeRnD Flex, the source of truth for members, memberships, bookings and passes.
    OfficeRnD,
    /// Kisi door access.
    Kisi,
    /// Salto KS door access.
    SaltoKS,
    /// Brivo Access.
    Brivo,
    /// essensys Platform (Wi-Fi and elumo smart access).
    Essensys,
}

impl Vendor {
    /// The vendor's name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::OfficeRnD => "OfficeRnD",
            Vendor::Kisi => "Kisi",
            Vendor::SaltoKS => "SaltoKS",
            Vendor::Brivo => "Brivo",
            Vendor::Essensys => "Essensys",
        }
    }

    /// Whether this vendor controls doors through access groups (AccessGroupBinding targets).
    pub fn is_door_access(self) -> bool {
        matches!(self, Vendor::Kisi | Vendor::SaltoKS | Vendor::Brivo)
    }

    /// The Secret keys (by their role) this vendor's client needs.
    pub fn required_credentials(self) -> &'static [CredentialRole] {
        use CredentialRole::*;
        match self {
            Vendor::OfficeRnD => &[ClientId, ClientSecret],
            Vendor::Kisi => &[ApiKey],
            Vendor::SaltoKS => &[ClientId, ClientSecret, Username, Password],
            Vendor::Brivo => &[ApiKey, ClientId, ClientSecret, Username, Password],
            Vendor::Essensys => &[Username, Password],
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A credential a vendor client needs, independent of the Secret key it is stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialRole {
    /// OAuth2 client id.
    ClientId,
    /// OAuth2 client secret.
    ClientSecret,
    /// API key (Kisi, Brivo).
    ApiKey,
    /// User name (Salto KS service user, Brivo administrator ID, essensys Platform user).
    Username,
    /// Password for `Username`.
    Password,
}

/// The Secret holding a connection's credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of a Secret in the VendorConnection's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Which Secret keys hold which credential; each defaults to its own name. Vendors read:
    /// OfficeRnD clientId+clientSecret; Kisi apiKey; SaltoKS clientId+clientSecret+username+password;
    /// Brivo apiKey+clientId+clientSecret+username (the Administrator ID)+password; Essensys
    /// username+password.
    #[serde(default)]
    pub keys: CredentialKeys,
}

/// Secret key names for each credential role.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialKeys {
    /// Key holding the OAuth2 client id.
    #[serde(default = "key_client_id")]
    #[schemars(length(min = 1, max = 253))]
    pub client_id: String,
    /// Key holding the OAuth2 client secret.
    #[serde(default = "key_client_secret")]
    #[schemars(length(min = 1, max = 253))]
    pub client_secret: String,
    /// Key holding the API key.
    #[serde(default = "key_api_key")]
    #[schemars(length(min = 1, max = 253))]
    pub api_key: String,
    /// Key holding the user name (for Brivo, the Administrator ID, not an email).
    #[serde(default = "key_username")]
    #[schemars(length(min = 1, max = 253))]
    pub username: String,
    /// Key holding the password.
    #[serde(default = "key_password")]
    #[schemars(length(min = 1, max = 253))]
    pub password: String,
}

impl CredentialKeys {
    /// The Secret key that holds `role`.
    pub fn key_for(&self, role: CredentialRole) -> &str {
        match role {
            CredentialRole::ClientId => &self.client_id,
            CredentialRole::ClientSecret => &self.client_secret,
            CredentialRole::ApiKey => &self.api_key,
            CredentialRole::Username => &self.username,
            CredentialRole::Password => &self.password,
        }
    }
}

impl Default for CredentialKeys {
    fn default() -> Self {
        Self {
            client_id: key_client_id(),
            client_secret: key_client_secret(),
            api_key: key_api_key(),
            username: key_username(),
            password: key_password(),
        }
    }
}

fn key_client_id() -> String {
    "clientId".to_owned()
}
fn key_client_secret() -> String {
    "clientSecret".to_owned()
}
fn key_api_key() -> String {
    "apiKey".to_owned()
}
fn key_username() -> String {
    "username".to_owned()
}
fn key_password() -> String {
    "password".to_owned()
}

/// OfficeRnD account settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfficeRndSettings {
    /// The organization slug, as in https://app.officernd.com/admin/<slug>.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    )]
    pub organization: String,

    /// Key in the credentials Secret holding the webhook signing secret. When set, OfficeRnD
    /// webhook deliveries are verified with it and changes land within seconds; without it,
    /// changes are picked up by the periodic resync only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub webhook_secret_key: Option<String>,
}

/// Kisi account settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KisiSettings {
    /// When Kisi emails members about new access: KisiDefault (only the first time access is
    /// granted), Always (on every new group), Never (managed users who get no Kisi emails).
    #[serde(default)]
    pub notification_policy: KisiNotificationPolicy,
}

/// The Kisi configuration tab's notification options.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum KisiNotificationPolicy {
    /// Notify only the first time a member is granted access.
    #[default]
    KisiDefault,
    /// Notify on every new access.
    Always,
    /// Never notify; users are created as managed users.
    Never,
}

/// Salto KS account settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaltoKsSettings {
    /// The Salto KS site (its id) whose access groups and users this connection manages.
    #[schemars(length(min = 1, max = 128))]
    pub site_id: String,

    /// OfficeRnD locations (ids or exact names) this connection is active for; empty means all.
    /// Bindings whose source lies outside these locations grant nothing through it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub locations: Vec<String>,

    /// The Salto KS role (its id, a UUID) given to the site users flexgate creates; Salto KS refuses
    /// a site user without a role. Unset: the site's built-in "Site User" role (code site_user,
    /// which only opens doors), read from the site's role list. Set it when members should get a
    /// custom role; the ids are listed by GET /v1.2/sites/{siteId}/roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub user_role_id: Option<String>,
}

/// Brivo account settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrivoSettings {
    /// Where Brivo mobile passes go: BrivoApp (a Brivo digital invitation email) or BrandedApp
    /// (the OfficeRnD branded app; no Brivo email is sent).
    #[serde(default)]
    pub mobile_pass_target: BrivoMobilePassTarget,
}

/// The Brivo "Onair Passes" tab options.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum BrivoMobilePassTarget {
    /// Mobile passes are assigned in the Brivo Mobile App.
    #[default]
    BrivoApp,
    /// Mobile passes are assigned in the OfficeRnD Branded App.
    BrandedApp,
}

/// essensys Platform account settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EssensysSettings {
    /// Your unique essensys (elumo) Platform URL.
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub platform_url: String,
}

/// What the controller observed about the connection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorConnectionStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling and Stalled, following kstatus.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// When the credentials were last checked successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// The last `flexgate.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// What the account offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountSummary>,

    /// Totals over the bindings and site mappings using this connection.
    #[serde(default)]
    pub counts: Counts,

    /// Specific problems (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub problems: Vec<Problem>,

    /// How many problems were left out of `problems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems_omitted: Option<u32>,

    /// OfficeRnD connections whose bindings read bookings: bookings are read up to this instant
    /// (the booking horizon, about a week ahead, moved forward as time passes); a booking starting
    /// later is read, and decided on, once the horizon reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_horizon: Option<Time>,
}

/// What a vendor account offers, as seen on the last check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountSummary {
    /// Access groups (door vendors) visible to these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<u32>,
    /// Sites (Salto KS, essensys) or locations (OfficeRnD) visible to these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<u32>,
    /// Members (OfficeRnD) or users (vendors) visible to these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<u32>,
}
