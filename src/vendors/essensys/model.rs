//! essensys Platform data types as they travel on the wire (OUR DESIGN, see the module docs of
//! `vendors::essensys`), shared by the client and the simulator, plus the tap-to-book slot rule.
//!
//! JSON is camelCase. Read types tolerate unknown fields (the real API will have more); write types
//! (`New*`, `*Update`) reject unknown fields so the simulator can be strict about payloads. Absent
//! optional fields are omitted, never sent as `null`. Timestamps are ISO-8601 UTC.

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A service a site offers. Detected per site; decides what the sync does there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteService {
    /// essensys-managed Wi-Fi (Wi-Fi Secure): users get Wi-Fi invitations.
    Wifi,
    /// elumo smart access: bookings open doors, tap-to-book.
    Elumo,
    /// A service this client does not know; kept so a new service does not break listing.
    #[serde(other)]
    Other,
}

/// An essensys site (a building / location).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    pub id: String,
    pub name: String,
    /// Services offered at the site; may be empty.
    #[serde(default)]
    pub services: Vec<SiteService>,
    /// IANA time zone of the site, when the Platform reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl Site {
    pub fn offers(&self, service: SiteService) -> bool {
        self.services.contains(&service)
    }
}

/// A floor of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Floor {
    pub id: String,
    pub site_id: String,
    pub name: String,
    /// Our OfficeRnD floor id, when the floor was created or mapped by the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewFloor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// Fields to overwrite; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FloorUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// A space (meeting room, office, desk area) on a floor of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Space {
    pub id: String,
    pub site_id: String,
    /// The floor; `None` for spaces not placed on a floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_id: Option<String>,
    pub name: String,
    /// Whether the space can be booked (and tap-to-booked).
    pub bookable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Our OfficeRnD resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSpace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_id: Option<String>,
    pub name: String,
    pub bookable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpaceUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// Whether an occupier is a company or a single person (a member without a company).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OccupierKind {
    Company,
    Individual,
}

/// A tenant: a company or an individual. Its home site is the site it was created at; it is also
/// "of" every site where it holds a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Occupier {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub kind: OccupierKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Our OfficeRnD company id (or member id for an individual occupier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOccupier {
    pub name: String,
    pub kind: OccupierKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OccupierUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// The contract types we use. The integration only creates standard contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractKind {
    Standard,
    /// Any other kind the Platform reports (listing must not fail on it).
    #[serde(other)]
    Other,
}

/// A contract linking an occupier to a site. At most one standard contract per occupier per site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub id: String,
    pub site_id: String,
    pub occupier_id: String,
    pub kind: ContractKind,
    pub start_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewContract {
    pub occupier_id: String,
    pub kind: ContractKind,
    pub start_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// An occupier user. The email is unique across the whole Platform (all sites).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub occupier_id: String,
    pub email: String,
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// E.164 mobile number; needed for elumo wallet passes (SMS one-time password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Our OfficeRnD member id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    /// When the Wi-Fi invitation was sent, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_invitation_sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    pub occupier_id: String,
    pub email: String,
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// The result of asking for a user's Wi-Fi invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    /// Sent by this request.
    Sent,
    /// Sent earlier; nothing was sent now.
    AlreadySent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WifiInvitation {
    pub user_id: String,
    pub status: InvitationStatus,
    /// When the (first) invitation was sent.
    pub sent_at: DateTime<Utc>,
}

/// Who created a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingSource {
    /// Created through the API by the OfficeRnD integration (every booking the client creates).
    Officernd,
    /// Created by a tap on an elumo door device; to be created back in OfficeRnD.
    TapToBook,
    /// Created another way (essensys calendar UI, another integration).
    #[serde(other)]
    Other,
}

impl BookingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Officernd => "officernd",
            Self::TapToBook => "tap_to_book",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

/// A booking of a space; while it is confirmed and running, elumo doors of the space open for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub id: String,
    pub site_id: String,
    pub space_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupier_id: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: BookingSource,
    pub status: BookingStatus,
    /// Our OfficeRnD booking id (set on tap-to-book bookings once they were created back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A booking to create. The Platform stamps `source: officernd` on bookings created through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewBooking {
    pub space_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupier_id: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookingUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// Filters for listing bookings of a site; every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingFilter {
    pub source: Option<BookingSource>,
    /// Bookings created at or after this instant (`createdSince`, inclusive: the caller dedupes by id).
    pub created_since: Option<DateTime<Utc>>,
    /// Bookings overlapping `[from, to)`.
    pub overlapping: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub external_ref: Option<String>,
}

/// Length of a tap-to-book slot (help text: "15-minute slots").
pub const TAP_TO_BOOK_SLOT_MINUTES: i64 = 15;
/// Shortest booking a tap may produce (help text: "minimum 7 minutes").
pub const TAP_TO_BOOK_MIN_MINUTES: i64 = 7;

/// The booking a tap at `tap` creates: `[start, end)`.
///
/// The help text says "15-minute slots, minimum 7 minutes; tap 15:06 → 15:00–15:15". Our reading:
/// the booking starts at the beginning of the quarter-hour containing the tap (so the door opens at
/// once) and ends at the end of that slot; when less than 7 minutes of the slot remain after the tap,
/// the next slot is added, so a tap never buys less than 7 minutes (tap 15:08 → 15:00–15:15, 7 min
/// left; tap 15:09 → 15:00–15:30). An interpretation, isolated here.
pub fn tap_to_book_slot(tap: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let slot = Duration::minutes(TAP_TO_BOOK_SLOT_MINUTES);
    // Quarter hours divide every UTC offset in use, so truncating in UTC matches local quarters.
    let start = tap
        .duration_trunc(slot)
        .unwrap_or_else(|_| tap - Duration::seconds(tap.timestamp().rem_euclid(900)));
    let mut end = start + slot;
    if end - tap < Duration::minutes(TAP_TO_BOOK_MIN_MINUTES) {
        end += slot;
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, h, m, s).unwrap()
    }

    #[test]
    fn slot_rule_follows_the_help_text_example_and_minimum() {
        assert_eq!(
            tap_to_book_slot(at(15, 6, 0)),
            (at(15, 0, 0), at(15, 15, 0))
        );
        assert_eq!(
            tap_to_book_slot(at(15, 0, 0)),
            (at(15, 0, 0), at(15, 15, 0))
        );
        assert_eq!(
            tap_to_book_slot(at(15, 8, 0)),
            (at(15, 0, 0), at(15, 15, 0))
        );
        assert_eq!(
            tap_to_book_slot(at(15, 8, 1)),
            (at(15, 0, 0), at(15, 30, 0))
        );
        assert_eq!(
            tap_to_book_slot(at(15, 14, 59)),
            (at(15, 0, 0), at(15, 30, 0))
        );
        assert_eq!(
            tap_to_book_slot(at(23, 54, 0)),
            (at(23, 45, 0), at(0, 15, 0) + Duration::days(1))
        );
    }

    #[test]
    fn unknown_enum_values_do_not_break_reads() {
        let site: Site = serde_json::from_str(
            r#"{"id":"s","name":"S","services":["wifi","parking"],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(site.services, vec![SiteService::Wifi, SiteService::Other]);
        assert!(serde_json::from_str::<NewFloor>(r#"{"name":"F","color":"red"}"#).is_err());
    }
}
