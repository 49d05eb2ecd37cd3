//! essensys Platform (Wi-Fi Secure + elumo smart access): the [`EssensysApi`] operations a
//! SiteMapping sync needs and an HTTP client for them (the simulator is [`crate::sandbox::essensys`]).
//!
//! # PROVISIONAL CONTRACT — OUR DESIGN, NOT A VENDOR FACT
//!
//! essensys publishes **no API reference** for the Platform (vendor-apis.md §5.1). Everything on the
//! wire below — paths, verbs, JSON field names, envelopes, status codes, error codes, paging — is
//! **our design**, derived only from the documented domain model (help-centre behaviour: sites with
//! Wi-Fi/elumo services, floors, spaces, occupiers with standard contracts, users with a
//! platform-unique email and a mobile number, Wi-Fi invitations, bookings incl. tap-to-book with
//! 15-minute slots). The documented facts are only: a per-tenant "Platform URL" and "Platform user
//! credentials". When essensys provides the real contract, replace `client.rs` (paths and
//! envelopes), adjust `model.rs` (field names), and keep [`EssensysApi`] — the sync only speaks the
//! trait. The simulator implements the same design so the two stay in step.
//!
//! ## Designed contract
//!
//! * Base: the tenant's Platform URL (`{base}`); JSON (camelCase) in and out; timestamps ISO-8601 UTC.
//! * Login: `POST {base}/api/auth/login {username, password}` → `200 {accessToken, tokenType:"Bearer",
//!   expiresIn}` (seconds). Wrong credentials → `401`. Every other call sends `Authorization: Bearer`.
//!   An expired or revoked token → `401`; the client logs in again once and repeats the call.
//! * Lists: `GET …?limit=1..=100&cursor=<opaque>` → `200 {items: [...], nextCursor: string|null}`;
//!   `nextCursor` null or absent on the last page. Unknown/tampered cursor or limit out of range → 422.
//!   The client always pages to completion (never a partial list).
//! * Errors: `{"error": {"code": "<snake_case>", "message": "<human text>"}}` with 401 `unauthorized`,
//!   404 `not_found`, 409 `email_taken` / `external_ref_taken` / `contract_exists` /
//!   `space_unavailable`, 422 `validation_failed` / `invalid_cursor` / `service_not_offered`,
//!   429 `rate_limited` + `Retry-After` (seconds), 5xx.
//! * Writes: `POST` creates (201 + the object); `PATCH` overwrites only the fields present (200 +
//!   the object). `externalRef` (our OfficeRnD id) is unique per collection — per site for floors,
//!   spaces, contracts and bookings, platform-wide for occupiers and users — so a repeated create is
//!   refused with 409 `external_ref_taken` instead of duplicating. Every list accepts `?externalRef=`.
//!
//! | Operation | Request | Reply |
//! |---|---|---|
//! | sites | `GET /api/v1/sites` | page of [`model::Site`] (`services: ["wifi","elumo"]`) |
//! | floors | `GET`/`POST /api/v1/sites/{site}/floors`, `PATCH …/floors/{id}` | [`model::Floor`] |
//! | spaces | `GET`/`POST /api/v1/sites/{site}/spaces`, `PATCH …/spaces/{id}` | [`model::Space`] |
//! | occupiers | `GET`/`POST /api/v1/sites/{site}/occupiers`, `PATCH …/occupiers/{id}` | [`model::Occupier`] (listed: home site here or a contract here) |
//! | contracts | `GET`/`POST /api/v1/sites/{site}/contracts`, `PATCH …/contracts/{id}` | [`model::Contract`] (one `standard` per occupier per site) |
//! | users | `GET`/`POST /api/v1/sites/{site}/users`, `PATCH …/users/{id}` | [`model::User`] (listed: users of the site's occupiers) |
//! | user by email | `GET /api/v1/users?email=` (platform-wide) | page of [`model::User`] |
//! | Wi-Fi invitation | `POST /api/v1/sites/{site}/users/{id}/wifi-invitation` (no body) | `201` sent / `200` already sent: [`model::WifiInvitation`] |
//! | bookings | `GET /api/v1/sites/{site}/bookings?source=&createdSince=&from=&to=&externalRef=` | page of [`model::Booking`] |
//! | | `POST /api/v1/sites/{site}/bookings`, `PATCH …/bookings/{id}` | [`model::Booking`] (`source` stamped `officernd`) |
//! | cancel booking | `POST /api/v1/sites/{site}/bookings/{id}/cancel` (idempotent) | [`model::Booking`] with `status: cancelled` |
//!
//! Tap-to-book bookings are created by door devices (simulated by the simulator handle), never
//! through the API; the slot rule is [`model::tap_to_book_slot`].

pub mod client;
pub mod model;

use std::future::Future;

use chrono::{DateTime, Utc};

pub use client::{EssensysClient, EssensysConfig, EssensysError};
use model::{
    Booking, BookingFilter, BookingUpdate, Contract, ContractUpdate, Floor, FloorUpdate,
    NewBooking, NewContract, NewFloor, NewOccupier, NewSpace, NewUser, Occupier, OccupierUpdate,
    Site, Space, SpaceUpdate, User, UserUpdate, WifiInvitation,
};

pub use crate::clock::{system_clock, Clock};

/// The essensys Platform operations a SiteMapping sync uses. Lists are complete (all pages) or an
/// error; writes are one call each. See the module docs: the wire behind it is provisional.
pub trait EssensysApi: Send + Sync {
    /// Every site visible to the Platform user, with the services each offers.
    fn list_sites(&self) -> impl Future<Output = Result<Vec<Site>, EssensysError>> + Send;

    fn list_floors(
        &self,
        site_id: &str,
    ) -> impl Future<Output = Result<Vec<Floor>, EssensysError>> + Send;
    fn create_floor(
        &self,
        site_id: &str,
        floor: &NewFloor,
    ) -> impl Future<Output = Result<Floor, EssensysError>> + Send;
    fn update_floor(
        &self,
        site_id: &str,
        floor_id: &str,
        update: &FloorUpdate,
    ) -> impl Future<Output = Result<Floor, EssensysError>> + Send;

    fn list_spaces(
        &self,
        site_id: &str,
    ) -> impl Future<Output = Result<Vec<Space>, EssensysError>> + Send;
    fn create_space(
        &self,
        site_id: &str,
        space: &NewSpace,
    ) -> impl Future<Output = Result<Space, EssensysError>> + Send;
    fn update_space(
        &self,
        site_id: &str,
        space_id: &str,
        update: &SpaceUpdate,
    ) -> impl Future<Output = Result<Space, EssensysError>> + Send;

    /// Occupiers whose home site is `site_id` or that hold a contract there.
    fn list_occupiers(
        &self,
        site_id: &str,
    ) -> impl Future<Output = Result<Vec<Occupier>, EssensysError>> + Send;
    fn create_occupier(
        &self,
        site_id: &str,
        occupier: &NewOccupier,
    ) -> impl Future<Output = Result<Occupier, EssensysError>> + Send;
    fn update_occupier(
        &self,
        site_id: &str,
        occupier_id: &str,
        update: &OccupierUpdate,
    ) -> impl Future<Output = Result<Occupier, EssensysError>> + Send;

    fn list_contracts(
        &self,
        site_id: &str,
    ) -> impl Future<Output = Result<Vec<Contract>, EssensysError>> + Send;
    /// A second standard contract for the same occupier and site is [`EssensysError::Conflict`].
    fn create_contract(
        &self,
        site_id: &str,
        contract: &NewContract,
    ) -> impl Future<Output = Result<Contract, EssensysError>> + Send;
    fn update_contract(
        &self,
        site_id: &str,
        contract_id: &str,
        update: &ContractUpdate,
    ) -> impl Future<Output = Result<Contract, EssensysError>> + Send;

    /// Users of the occupiers of `site_id`.
    fn list_users(
        &self,
        site_id: &str,
    ) -> impl Future<Output = Result<Vec<User>, EssensysError>> + Send;
    /// The user holding `email` anywhere on the Platform (emails are unique platform-wide).
    fn find_user_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<User>, EssensysError>> + Send;
    /// An email already used anywhere on the Platform is [`EssensysError::EmailTaken`].
    fn create_user(
        &self,
        site_id: &str,
        user: &NewUser,
    ) -> impl Future<Output = Result<User, EssensysError>> + Send;
    fn update_user(
        &self,
        site_id: &str,
        user_id: &str,
        update: &UserUpdate,
    ) -> impl Future<Output = Result<User, EssensysError>> + Send;

    /// Sends the user's Wi-Fi invitation; asking again reports `AlreadySent` and sends nothing.
    fn send_wifi_invitation(
        &self,
        site_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<WifiInvitation, EssensysError>> + Send;

    fn list_bookings(
        &self,
        site_id: &str,
        filter: &BookingFilter,
    ) -> impl Future<Output = Result<Vec<Booking>, EssensysError>> + Send;
    /// Bookings made by tap-to-book at `site_id` created at or after `since` (to create back in
    /// OfficeRnD; the caller dedupes by id / `externalRef`).
    fn list_tap_to_book_bookings(
        &self,
        site_id: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Booking>, EssensysError>> + Send;
    fn create_booking(
        &self,
        site_id: &str,
        booking: &NewBooking,
    ) -> impl Future<Output = Result<Booking, EssensysError>> + Send;
    fn update_booking(
        &self,
        site_id: &str,
        booking_id: &str,
        update: &BookingUpdate,
    ) -> impl Future<Output = Result<Booking, EssensysError>> + Send;
    /// Cancelling a cancelled booking succeeds and changes nothing.
    fn cancel_booking(
        &self,
        site_id: &str,
        booking_id: &str,
    ) -> impl Future<Output = Result<Booking, EssensysError>> + Send;
}
