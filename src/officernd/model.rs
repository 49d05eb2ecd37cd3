//! OfficeRnD Flex API v2 objects (members, memberships, bookings, day passes, ...) as serde types, plus the
//! `Snapshot` that bundles them (also the sandbox seed-file format).
//!
//! Field names are the API's own (`_id`, camelCase). Tolerance rules, from the recorded findings
//! (`recorded/README.md`, "OfficeRnD Flex v2"):
//! * absent and `null` are the same (`Option`, or an empty `Vec` / `false` for lists and flags);
//! * false booleans may be omitted (every flag defaults to `false`);
//! * a company membership (`isPersonal: false`) has no `member` key; a month-to-month membership has no
//!   `endDate` key (open-ended); a fixed one may carry `endDate: null`;
//! * unknown fields are ignored, and unknown enum values map to an `Other` variant instead of failing;
//! * day-pass `count` is a number in responses but a string in requests, so both are accepted.
//!
//! Only the fields the access engine, the explanations or an operator reading a seed file need are modelled;
//! the rest of each object is skipped on purpose to keep 300,000 bookings in memory cheaply.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// An OfficeRnD object id (a 24-hex Mongo ObjectId on the wire; any string is accepted).
pub type ObjectId = String;

/// Reads `null` as the type's default (an empty list, `false`), so `null`, absent and empty mean the same.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads a count sent either as a JSON number or as a numeric string (`PUT /passes` documents `count` as a
/// string, responses carry a number). Negative or fractional values are rejected.
fn lenient_count<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(u32),
        Text(String),
    }
    match Option::<NumberOrText>::deserialize(deserializer)? {
        None => Ok(None),
        Some(NumberOrText::Number(n)) => Ok(Some(n)),
        Some(NumberOrText::Text(text)) => {
            text.trim().parse::<u32>().map(Some).map_err(|_| {
                serde::de::Error::custom(format!("count {text:?} is not a whole number"))
            })
        }
    }
}

/// Member `status` (`active | former | pending | contact | not_approved | drop-in | lead`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    Former,
    Pending,
    Contact,
    NotApproved,
    #[serde(rename = "drop-in")]
    DropIn,
    Lead,
    /// A value this version does not know; treated like `pending` (neither active nor barred).
    #[serde(other)]
    Other,
}

/// Company `status` (`active | former | pending | inactive | not_approved | drop-in | lead`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyStatus {
    Active,
    Former,
    Pending,
    Inactive,
    NotApproved,
    #[serde(rename = "drop-in")]
    DropIn,
    Lead,
    #[serde(other)]
    Other,
}

/// Membership `status` (`approved | not_approved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    Approved,
    NotApproved,
    #[serde(other)]
    Other,
}

/// Day-pass set `status` (`used | valid | expired | pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassStatus {
    Used,
    Valid,
    Expired,
    Pending,
    #[serde(other)]
    Other,
}

/// A person in the community (`GET /members`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// Home location id.
    #[serde(default)]
    pub location: Option<ObjectId>,
    /// Company (team) id; absent for members without a company.
    #[serde(default)]
    pub company: Option<ObjectId>,
    #[serde(default)]
    pub status: Option<MemberStatus>,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_billing_person: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_contact_person: bool,
}

/// A company (a "team" in v1, `GET /companies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub location: Option<ObjectId>,
    #[serde(default)]
    pub status: Option<CompanyStatus>,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
}

/// A membership of a member (personal) or of a whole company (`member` absent) on a plan.
///
/// Not kept (nothing reads them, and 60,000 memberships are held in memory): `type`
/// (`month_to_month | fixed`: an absent `endDate` says open-ended) and `calculatedStatus`
/// (`not_started | active | expired | not_approved`, computed by OfficeRnD when the object was
/// read; the engine recomputes it from the dates and never trusts this snapshot of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_personal: Option<bool>,
    #[serde(default)]
    pub status: Option<MembershipStatus>,
    #[serde(default)]
    pub location: Option<ObjectId>,
    #[serde(default)]
    pub plan: Option<ObjectId>,
    #[serde(default)]
    pub company: Option<ObjectId>,
    /// Absent on company memberships: the membership then covers every active member of `company`.
    #[serde(default)]
    pub member: Option<ObjectId>,
    /// A calendar date (day-granular) sent as an instant.
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    /// A calendar date, inclusive; absent or `null` = open-ended.
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
}

/// A billing plan (`GET /plans`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(rename = "type", default)]
    pub plan_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub locations: Vec<ObjectId>,
}

/// A location (an "office" in v1). `timezone` is an IANA name such as `Europe/London`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_open: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_public: bool,
}

/// A floor of a location. `floor` is the floor number, sent as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Floor {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub floor: Option<String>,
    #[serde(default)]
    pub location: Option<ObjectId>,
}

/// A desk, office or room. System `type`s: `meeting_room`, `hotdesk` (bookable), `team_room`, `desk`,
/// `desk_tr` (assignable), `desk_na`; organisations may define their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type", default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub location: Option<ObjectId>,
    #[serde(default)]
    pub floor: Option<ObjectId>,
}

/// The link between a membership and an assignable resource (`GET /assignments`), day-granular dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub resource: Option<ObjectId>,
    #[serde(default)]
    pub membership: Option<ObjectId>,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
}

/// Recurrence of a booking series: an RFC 5545 `RRULE` anchored at the booking's `start`, minus `exdates`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recurrence {
    #[serde(default)]
    pub rrule: Option<String>,
    /// Start instants of cancelled occurrences.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exdates: Vec<DateTime<Utc>>,
}

/// A booking of a resource (v2 shape: `start`/`end` ISO strings, `resource`, `isCancelled`).
/// Fields the engine only reads are boxed slices (`Box<str>`, `Box<[_]>`: 16 bytes instead of 24 each), as
/// 300,000 bookings are held in memory.
/// `seriesStart`/`seriesEnd` are not kept: the documentation example contradicts them (see the engine's
/// recurrence module), and the RRULE bounds the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub timezone: Option<Box<str>>,
    /// Start of the (first) occurrence.
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    /// End of the (first) occurrence; every occurrence of a series lasts `end - start`.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    /// Boxed: most bookings are single, and 300,000 of them are held in memory.
    #[serde(default)]
    pub recurrence: Option<Box<Recurrence>>,
    #[serde(default)]
    pub location: Option<Box<str>>,
    #[serde(default)]
    pub company: Option<Box<str>>,
    /// The booker.
    #[serde(default)]
    pub member: Option<ObjectId>,
    #[serde(default)]
    pub resource: Option<ObjectId>,
    /// Teammates invited to the booking (member ids).
    #[serde(default, deserialize_with = "null_as_default")]
    pub members: Box<[ObjectId]>,
    /// Guests invited to the booking (visitor ids).
    #[serde(default, deserialize_with = "null_as_default")]
    pub visitors: Box<[ObjectId]>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_cancelled: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_tentative: bool,
    #[serde(default)]
    pub title: Option<Box<str>>,
}

/// A day-pass set (`GET /passes`): `count` passes, `usedCount` of them used, for one member
/// (`isPersonal`) or a whole company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pass {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default, deserialize_with = "lenient_count")]
    pub count: Option<u32>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub used_count: Option<u32>,
    /// `month | once`.
    #[serde(default)]
    pub interval_length: Option<String>,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub renew_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
    #[serde(default)]
    pub company: Option<ObjectId>,
    #[serde(default)]
    pub member: Option<ObjectId>,
    #[serde(default)]
    pub is_personal: Option<bool>,
    /// The membership that issued the set, if any.
    #[serde(default)]
    pub membership: Option<ObjectId>,
    #[serde(default)]
    pub status: Option<PassStatus>,
    #[serde(default)]
    pub resource_type: Option<String>,
}

/// A guest/visitor (`GET /visitors`). The reference pages consulted do not list the visitor fields; this is
/// the most likely shape (a person with name and email, optionally hosted by a member or company).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visitor {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company: Option<ObjectId>,
    #[serde(default)]
    pub member: Option<ObjectId>,
    #[serde(default)]
    pub location: Option<ObjectId>,
}

/// Everything the access engine reads, one list per collection. This is also the sandbox seed-file format:
/// every key may be omitted (empty list).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default, deserialize_with = "null_as_default")]
    pub members: Vec<Member>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub companies: Vec<Company>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub memberships: Vec<Membership>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub plans: Vec<Plan>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub locations: Vec<Location>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub floors: Vec<Floor>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resources: Vec<Resource>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignments: Vec<Assignment>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub bookings: Vec<Booking>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub passes: Vec<Pass>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub visitors: Vec<Visitor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_membership_without_member_or_end_date_parses_as_open_ended() {
        let json = r#"{"_id":"m1","isPersonal":false,"status":"approved","company":"c1","plan":"p1",
            "startDate":"2026-01-01T00:00:00.000Z","properties":{},"unknownField":[1,2]}"#;
        let membership: Membership = serde_json::from_str(json).expect("valid membership");
        assert_eq!(membership.member, None);
        assert_eq!(membership.end_date, None);
        assert_eq!(membership.company.as_deref(), Some("c1"));
        assert_eq!(membership.status, Some(MembershipStatus::Approved));
    }

    #[test]
    fn null_end_date_and_dates_without_millis_are_accepted() {
        let json = r#"{"_id":"m1","status":"not_approved","endDate":null,"startDate":"2024-01-01T00:00:00Z"}"#;
        let membership: Membership = serde_json::from_str(json).expect("valid membership");
        assert_eq!(membership.end_date, None);
        assert!(membership.start_date.is_some());
        assert_eq!(membership.status, Some(MembershipStatus::NotApproved));
    }

    #[test]
    fn omitted_and_null_flags_read_as_false() {
        let json = r#"{"_id":"b1","start":"2026-03-01T10:00:00.000Z","end":"2026-03-01T11:00:00.000Z",
            "isCancelled":null,"members":null}"#;
        let booking: Booking = serde_json::from_str(json).expect("valid booking");
        assert!(!booking.is_cancelled);
        assert!(!booking.is_tentative);
        assert!(booking.members.is_empty());
        assert!(booking.visitors.is_empty());
    }

    #[test]
    fn unknown_status_values_do_not_fail_the_object() {
        let member: Member =
            serde_json::from_str(r#"{"_id":"x","status":"archived"}"#).expect("valid member");
        assert_eq!(member.status, Some(MemberStatus::Other));
        let member: Member =
            serde_json::from_str(r#"{"_id":"x","status":"drop-in"}"#).expect("valid member");
        assert_eq!(member.status, Some(MemberStatus::DropIn));
    }

    #[test]
    fn pass_count_accepts_number_or_numeric_string_and_rejects_garbage() {
        let pass: Pass =
            serde_json::from_str(r#"{"_id":"p","count":"15","usedCount":5}"#).expect("valid");
        assert_eq!((pass.count, pass.used_count), (Some(15), Some(5)));
        assert!(serde_json::from_str::<Pass>(r#"{"_id":"p","count":"lots"}"#).is_err());
    }

    #[test]
    fn empty_seed_file_is_an_empty_snapshot() {
        let snapshot: Snapshot = serde_json::from_str("{}").expect("valid snapshot");
        assert_eq!(snapshot, Snapshot::default());
        let snapshot: Snapshot =
            serde_json::from_str(r#"{"members":null,"plans":[{"_id":"p"}]}"#).expect("valid");
        assert_eq!(snapshot.plans.len(), 1);
    }
}
