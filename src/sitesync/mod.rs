//! The SiteMapping sync between one OfficeRnD location and one essensys site: what of the
//! location takes part ([`LocationView`]), the proposed mapping ([`proposal`]), the entity sync
//! (floors, spaces, occupiers, contracts, users, Wi-Fi invitations: [`entities`]), the booking
//! mirror and tap-to-book back-sync ([`bookings`]), and the tally of what was written ([`summary`]).
//! `entities` and `bookings` only decide, from what was read, which writes to make; [`apply`]
//! makes them through [`apply::SiteWrites`] (implemented over the essensys and OfficeRnD clients)
//! and tallies each outcome.
//!
//! The rules, from the essensys integration help text (the seed):
//! * OfficeRnD is the source of truth. Whatever flexgate linked or created in essensys carries
//!   `externalRef` = the OfficeRnD id and is overwritten from OfficeRnD when it drifts (names,
//!   floors, emails, mobile numbers, booking times). Nothing is ever deleted in essensys.
//! * Floors, resources and companies are matched by name once (the approved proposal); what is
//!   left unmatched is created, what is `doNotMap` is skipped, what is ambiguous is skipped and
//!   reported until the mapping is recreated with an override.
//! * Members are users by exact email; a member without a company gets an individual occupier.

pub mod apply;
#[cfg(test)]
mod apply_tests;
pub mod bookings;
pub mod entities;
pub mod lifecycle;
#[cfg(test)]
mod plan_tests;
pub mod proposal;
pub mod summary;

use crate::api::access_group_binding::ObjectSelector;
use crate::officernd::model::{
    Booking, Company, CompanyStatus, Floor, Location, Member, MemberStatus, Resource, Snapshot,
};

pub use summary::{SyncSummary, Tally};

/// Resource types that are booked (meeting rooms, hot desks): their essensys spaces are bookable,
/// so elumo doors open for bookings and tap-to-book works there.
pub const BOOKABLE_RESOURCE_TYPES: [&str; 2] = ["meeting_room", "hotdesk"];

/// The part of an OfficeRnD snapshot one SiteMapping works on.
#[derive(Debug, Clone)]
pub struct LocationView<'a> {
    pub location: &'a Location,
    pub floors: Vec<&'a Floor>,
    pub resources: Vec<&'a Resource>,
    /// Companies at the location that are not former, inactive or refused.
    pub companies: Vec<&'a Company>,
    /// Active members whose home location is this one, or whose company is at this location.
    pub members: Vec<&'a Member>,
    /// Bookings of the location's resources (all of them; the booking sync filters).
    pub bookings: Vec<&'a Booking>,
}

impl<'a> LocationView<'a> {
    /// The location `selector` names (id, else exact name) and its floors, resources, companies,
    /// active members and bookings.
    pub fn select(
        snapshot: &'a Snapshot,
        selector: &ObjectSelector,
    ) -> Result<Self, LocationError> {
        let location = find_location(snapshot, selector)?;
        let here = |value: &Option<String>| value.as_deref() == Some(location.id.as_str());
        let floors: Vec<&Floor> = snapshot
            .floors
            .iter()
            .filter(|f| here(&f.location))
            .collect();
        let resources: Vec<&Resource> = snapshot
            .resources
            .iter()
            .filter(|r| here(&r.location))
            .collect();
        let companies: Vec<&Company> = snapshot
            .companies
            .iter()
            .filter(|c| here(&c.location))
            .filter(|c| {
                !matches!(
                    c.status,
                    Some(
                        CompanyStatus::Former
                            | CompanyStatus::Inactive
                            | CompanyStatus::NotApproved
                            | CompanyStatus::Lead
                    )
                )
            })
            .collect();
        let company_here = |id: &Option<String>| {
            id.as_deref()
                .is_some_and(|id| companies.iter().any(|c| c.id == id))
        };
        let members: Vec<&Member> = snapshot
            .members
            .iter()
            .filter(|m| m.status == Some(MemberStatus::Active))
            .filter(|m| here(&m.location) || company_here(&m.company))
            .collect();
        let resource_ids: std::collections::HashSet<&str> =
            resources.iter().map(|r| r.id.as_str()).collect();
        let bookings: Vec<&Booking> = snapshot
            .bookings
            .iter()
            .filter(|b| {
                b.resource
                    .as_deref()
                    .is_some_and(|r| resource_ids.contains(r))
            })
            .collect();
        Ok(Self {
            location,
            floors,
            resources,
            companies,
            members,
            bookings,
        })
    }

    /// The location's display name.
    pub fn name(&self) -> &str {
        self.location.name.as_deref().unwrap_or(&self.location.id)
    }

    pub fn company(&self, id: &str) -> Option<&'a Company> {
        self.companies.iter().copied().find(|c| c.id == id)
    }

    pub fn member(&self, id: &str) -> Option<&'a Member> {
        self.members.iter().copied().find(|m| m.id == id)
    }

    pub fn resource(&self, id: &str) -> Option<&'a Resource> {
        self.resources.iter().copied().find(|r| r.id == id)
    }
}

/// Why `spec.location` names no single OfficeRnD location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// No location has the id.
    #[error("OfficeRnD has no location with id {0}")]
    NoSuchId(String),
    /// The selector has neither an id nor a name.
    #[error("spec.location names no location: set its id or name")]
    Unnamed,
    /// No location has the name.
    #[error("OfficeRnD has no location named {0:?}")]
    NoSuchName(String),
    /// Several locations have the name.
    #[error("{} OfficeRnD locations are named {name:?}; name the location by id ({})", .ids.len(), .ids.join(", "))]
    Ambiguous {
        /// The name.
        name: String,
        /// The ids of the locations with it.
        ids: Vec<String>,
    },
}

fn find_location<'a>(
    snapshot: &'a Snapshot,
    selector: &ObjectSelector,
) -> Result<&'a Location, LocationError> {
    if let Some(id) = &selector.id {
        return snapshot
            .locations
            .iter()
            .find(|l| &l.id == id)
            .ok_or_else(|| LocationError::NoSuchId(id.clone()));
    }
    let Some(name) = &selector.name else {
        return Err(LocationError::Unnamed);
    };
    let found: Vec<&Location> = snapshot
        .locations
        .iter()
        .filter(|l| l.name.as_deref() == Some(name.as_str()))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(LocationError::NoSuchName(name.clone())),
        many => Err(LocationError::Ambiguous {
            name: name.clone(),
            ids: many.iter().map(|l| l.id.clone()).collect(),
        }),
    }
}

/// The name a floor is matched and created by: its name, else `Floor <number>`, else its id.
pub fn floor_name(floor: &Floor) -> String {
    floor
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| floor.floor.as_ref().map(|n| format!("Floor {n}")))
        .unwrap_or_else(|| floor.id.clone())
}

pub fn resource_name(resource: &Resource) -> String {
    non_blank(resource.name.as_deref()).unwrap_or_else(|| resource.id.clone())
}

pub fn company_name(company: &Company) -> String {
    non_blank(company.name.as_deref()).unwrap_or_else(|| company.id.clone())
}

/// A member's display name: the name, else the email, else the id.
pub fn member_name(member: &Member) -> String {
    non_blank(member.name.as_deref())
        .or_else(|| non_blank(member.email.as_deref()))
        .unwrap_or_else(|| member.id.clone())
}

/// First and last name as essensys wants them: the last word is the last name; a one-word name
/// is a first name only.
pub fn split_name(member: &Member) -> (String, String) {
    let name = member_name(member);
    match name.trim().rsplit_once(' ') {
        Some((first, last)) if !first.trim().is_empty() => {
            (first.trim().to_owned(), last.trim().to_owned())
        }
        _ => (name.trim().to_owned(), String::new()),
    }
}

pub fn is_bookable(resource: &Resource) -> bool {
    resource
        .resource_type
        .as_deref()
        .is_some_and(|t| BOOKABLE_RESOURCE_TYPES.contains(&t))
}

fn non_blank(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Why a phone number cannot be sent to essensys as a mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    #[error("has no mobile number in OfficeRnD")]
    Missing,
    #[error("has phone {0:?}, which is not an international mobile number (+ and 8 to 15 digits, e.g. +447700900123)")]
    NotInternational(String),
}

/// The member's phone as E.164 (`+` and 8 to 15 digits): spaces, dashes, dots and brackets are
/// dropped and a leading `00` becomes `+`. essensys needs it for the elumo wallet pass (SMS).
pub fn mobile_number(phone: Option<&str>) -> Result<String, MobileError> {
    let Some(raw) = phone.map(str::trim).filter(|p| !p.is_empty()) else {
        return Err(MobileError::Missing);
    };
    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    let international = match compact.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => compact,
    };
    let digits = international.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(international)
    } else {
        Err(MobileError::NotInternational(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_named_once_or_the_error_says_what_to_do() {
        let location = |id: &str, name: &str| -> Location {
            serde_json::from_value(serde_json::json!({"_id": id, "name": name})).unwrap()
        };
        let snapshot = Snapshot {
            locations: vec![
                location("10ca71000000000000000001", "London"),
                location("10ca71000000000000000002", "London"),
                location("10ca71000000000000000003", "Paris"),
            ],
            ..Snapshot::default()
        };
        let selector = |name: Option<&str>| ObjectSelector {
            id: None,
            name: name.map(str::to_owned),
            location: None,
        };
        let by_name = |name: &str| selector(Some(name));
        let paris = LocationView::select(&snapshot, &by_name("Paris")).unwrap();
        assert_eq!(paris.location.id, "10ca71000000000000000003");
        let london = LocationView::select(&snapshot, &by_name("London")).err();
        assert_eq!(
            london,
            Some(LocationError::Ambiguous {
                name: "London".into(),
                ids: vec![
                    "10ca71000000000000000001".into(),
                    "10ca71000000000000000002".into()
                ],
            })
        );
        assert!(london.unwrap().to_string().contains(
            "name the location by id (10ca71000000000000000001, 10ca71000000000000000002)"
        ));
        assert_eq!(
            LocationView::select(&snapshot, &by_name("Berlin")).err(),
            Some(LocationError::NoSuchName("Berlin".into()))
        );
        assert_eq!(
            LocationView::select(&snapshot, &selector(None)).err(),
            Some(LocationError::Unnamed)
        );
    }

    #[test]
    fn phones_become_e164_or_say_why_not() {
        assert_eq!(
            mobile_number(Some("+44 20 7946 0001")).as_deref(),
            Ok("+442079460001")
        );
        assert_eq!(
            mobile_number(Some("0044 (20) 7946-0001")).as_deref(),
            Ok("+442079460001")
        );
        assert_eq!(mobile_number(None), Err(MobileError::Missing));
        assert_eq!(mobile_number(Some("  ")), Err(MobileError::Missing));
        assert!(matches!(
            mobile_number(Some("020 7946 0001")),
            Err(MobileError::NotInternational(_))
        ));
    }
}
