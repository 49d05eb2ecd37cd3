//! Door-access vendors (Kisi, Salto KS, Brivo) behind one trait, [`DoorVendor`]: the sync speaks
//! only this trait. Each vendor module holds its client (the wire protocol, nothing else) and its
//! simulator side by side. Clients never decide who gets access; they list, create and add/remove.

pub mod brivo;
pub mod essensys;
pub mod kisi;
pub mod salto_ks;

use std::future::Future;

use crate::http::HttpError;

/// A vendor access group as listed by the vendor.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VendorGroup {
    /// The vendor's id for the group (Kisi group id, Salto KS access-group id, Brivo group id).
    pub id: String,
    /// The group's name (Salto KS: `customer_reference`).
    pub name: String,
}

/// A person account at the vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorUser {
    /// The id used for group membership calls (Kisi user id; Salto KS the platform `user.id`,
    /// not the site-user id; Brivo user id).
    pub id: String,
    /// The user's email as the vendor holds it, if any.
    pub email: Option<String>,
    /// An external id the vendor stores for us (Brivo `externalId` = the OfficeRnD member id).
    pub external_id: Option<String>,
    /// Display name as the vendor holds it.
    pub name: String,
}

/// The person a sync wants at the vendor, from OfficeRnD. Profile fields are sent on creation
/// only: the guides say email and phone changes are not pushed after the initial sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The OfficeRnD member id (or visitor id for booking guests); makes creation idempotent.
    pub officernd_id: String,
    /// First name.
    pub first_name: String,
    /// Last name (may be empty).
    pub last_name: String,
    /// Email, the identity used to match existing vendor users.
    pub email: String,
    /// Phone number, when OfficeRnD has one. The company name is deliberately not sent.
    pub phone: Option<String>,
}

/// What the door sync tells the vendor about one grant. The sync decides it (see
/// `sync::notify`); clients only put it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrantContext {
    /// Ask the vendor to tell the person about this access (Kisi's `notify`). Vendors that never
    /// email about a grant (Salto KS, Brivo) ignore it.
    pub notify: bool,
}

/// When a vendor connection wants people told about access they are granted (Kisi's
/// notification policy, OfficeRnD's "Kisi configuration" tab). The door sync turns it into one
/// [`GrantContext::notify`] per grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrantNotices {
    /// Nobody is told (and vendors that never email about grants).
    #[default]
    Never,
    /// A person is told once, about their first access: one grant of the sync that created their
    /// vendor user, and only when the vendor shows them no access yet.
    FirstAccess,
    /// A person is told about every new grant.
    Every,
}

/// What a vendor account offers, for `VendorConnection` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountInfo {
    /// Access groups visible to the credentials.
    pub groups: u32,
    /// Users visible to the credentials.
    pub users: u32,
}

/// Why a vendor call failed.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    /// Transport, status or protocol failure (retryable or not, see [`HttpError`]).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The credentials were refused (token endpoint or API).
    #[error("credentials rejected: {0}")]
    CredentialsInvalid(String),
    /// The vendor refused this one change for a reason specific to the person or group, e.g.
    /// Brivo's 16-groups-per-user cap; other people are unaffected.
    #[error("{0}")]
    Refused(String),
}

impl VendorError {
    /// True when the same call may succeed later without any change on our side.
    pub fn is_retryable_later(&self) -> bool {
        matches!(self, VendorError::Http(error) if error.is_retryable_later())
    }
}

/// The operations a door-access sync needs. Every method is one logical vendor operation;
/// implementations page, retry and rate-limit internally and never return partial lists.
pub trait DoorVendor: Send + Sync {
    /// Checks the credentials and reports what the account offers.
    fn check(&self) -> impl Future<Output = Result<AccountInfo, VendorError>> + Send;

    /// Every access group of the account (Salto KS: of the configured site).
    fn list_groups(&self) -> impl Future<Output = Result<Vec<VendorGroup>, VendorError>> + Send;

    /// Every user of the account (Salto KS: of the site). Used to match people by email or
    /// external id in one pass instead of one lookup per person.
    fn list_users(&self) -> impl Future<Output = Result<Vec<VendorUser>, VendorError>> + Send;

    /// The user ids currently in a group.
    fn list_group_members(
        &self,
        group: &VendorGroup,
    ) -> impl Future<Output = Result<Vec<String>, VendorError>> + Send;

    /// Creates a user (Salto KS: adds them to the site, which emails an invitation; Brivo: also
    /// issues the mobile pass per the connection's setting). Callers look the person up in
    /// [`DoorVendor::list_users`] first, so a user is never created twice.
    fn create_user(
        &self,
        user: &NewUser,
    ) -> impl Future<Output = Result<VendorUser, VendorError>> + Send;

    /// Adds a user to a group. Adding someone already in the group is not an error.
    fn add_to_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
        context: GrantContext,
    ) -> impl Future<Output = Result<(), VendorError>> + Send;

    /// Removes a user from a group. Removing someone not in the group is not an error.
    /// Users themselves are never deleted: the guides say accounts stay.
    fn remove_from_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
    ) -> impl Future<Output = Result<(), VendorError>> + Send;

    /// Why the user (as listed, looked up or created by this client) can open no door whatever
    /// groups they are in, or `None`: Salto KS answers a user created while every seat of the
    /// subscription is taken with `subscription_state: "suspended"` and no error. Answered from
    /// what the client last read; the sync never reports such a person granted. Vendors without
    /// such a state keep the default.
    fn access_blocked(&self, user_id: &str) -> Option<String> {
        let _ = user_id;
        None
    }

    /// When this connection wants people told about their grants. Vendors that never email about
    /// a grant keep the default.
    fn grant_notices(&self) -> GrantNotices {
        GrantNotices::Never
    }

    /// Whether the vendor shows the user holding any access at all (any group or role), read
    /// fresh from the vendor, never from a cache. Asked only under [`GrantNotices::FirstAccess`],
    /// before the one grant that would tell the person; vendors that never notify keep the
    /// default.
    fn holds_access(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, VendorError>> + Send {
        let _ = user_id;
        async { Ok(false) }
    }
}
