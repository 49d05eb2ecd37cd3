//! The flexgate custom resources (`flexgate.dev/v1alpha1`), their status and condition vocabulary.
//!
//! These types are the product's user interface: GitOps users write them by hand and read their
//! status with `kubectl`. The CRD YAML in `crds/` is generated from them by `flexgate crd`.

pub mod access_group_binding;
pub mod conditions;
pub mod crd;
pub mod duration;
pub mod site_mapping;
pub mod status;
pub mod vendor_connection;

pub use access_group_binding::{
    AccessGroupBinding, AccessGroupBindingSpec, AccessGroupBindingStatus,
};
pub use site_mapping::{SiteMapping, SiteMappingSpec, SiteMappingStatus};
pub use vendor_connection::{
    Vendor, VendorConnection, VendorConnectionSpec, VendorConnectionStatus,
};

/// The API group of every flexgate kind.
pub const GROUP: &str = "flexgate.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "flexgate.dev/v1alpha1";

/// Set this annotation to any new value (conventionally an RFC 3339 timestamp) to request an
/// immediate sync; the controller echoes the value in `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUESTED_AT: &str = "flexgate.dev/reconcile-requested-at";

/// Naming the held plan id in this annotation acknowledges a blocked mass revocation
/// (see `maxRevocationPercent`), letting the next sync apply it.
pub const ACKNOWLEDGE_REVOCATION: &str = "flexgate.dev/acknowledge-mass-revocation";

/// Finalizer that lets a deleted binding revoke the access it alone granted.
pub const FINALIZER: &str = "flexgate.dev/cleanup";
