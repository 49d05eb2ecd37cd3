//! Unit tests of the entity pass's apply step over an in-memory [`SiteWrites`]: how each write's
//! outcome is tallied, linked and reported, and how a failure in one step shapes the next.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use crate::api::site_mapping::Matching;
use crate::officernd::model as ornd;
use crate::officernd::OfficeRndError;
use crate::vendors::essensys::model::{
    Booking, BookingFilter, BookingUpdate, Contract, Floor, FloorUpdate, InvitationStatus,
    NewBooking, NewContract, NewFloor, NewOccupier, NewSpace, NewUser, Occupier, OccupierUpdate,
    Site, SiteService, Space, SpaceUpdate, User, UserUpdate, WifiInvitation,
};
use crate::vendors::essensys::EssensysError;

use super::apply::{EntityPass, SiteWrites};
use super::entities::SiteState;
use super::LocationView;

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// Creates everything it is asked to, except objects named (or emailed) in `refuse`; records the
/// spaces and users it made.
#[derive(Default)]
struct Fake {
    refuse: HashSet<&'static str>,
    next: Mutex<u32>,
    spaces: Mutex<Vec<NewSpace>>,
    invited: Mutex<Vec<String>>,
}

impl Fake {
    fn id(&self, prefix: &str) -> String {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        format!("{prefix}{next}")
    }

    fn check(&self, name: &str, operation: &str) -> Result<(), EssensysError> {
        if self.refuse.contains(name) {
            return Err(EssensysError::Conflict {
                operation: operation.into(),
                code: "refused".into(),
                message: format!("{name} refused"),
            });
        }
        Ok(())
    }
}

impl SiteWrites for Fake {
    async fn create_floor(&self, floor: &NewFloor) -> Result<Floor, EssensysError> {
        self.check(&floor.name, "create floor")?;
        Ok(Floor {
            id: self.id("e"),
            site_id: "site".into(),
            name: floor.name.clone(),
            external_ref: floor.external_ref.clone(),
        })
    }
    async fn update_floor(&self, _: &str, _: &FloorUpdate) -> Result<Floor, EssensysError> {
        unreachable!("no floor is linked in these fixtures")
    }
    async fn create_space(&self, space: &NewSpace) -> Result<Space, EssensysError> {
        self.check(&space.name, "create space")?;
        self.spaces.lock().unwrap().push(space.clone());
        Ok(Space {
            id: self.id("s"),
            site_id: "site".into(),
            floor_id: space.floor_id.clone(),
            name: space.name.clone(),
            bookable: space.bookable,
            capacity: None,
            external_ref: space.external_ref.clone(),
        })
    }
    async fn update_space(&self, _: &str, _: &SpaceUpdate) -> Result<Space, EssensysError> {
        unreachable!("no space is linked in these fixtures")
    }
    async fn create_occupier(&self, occupier: &NewOccupier) -> Result<Occupier, EssensysError> {
        self.check(&occupier.name, "create occupier")?;
        Ok(Occupier {
            id: self.id("o"),
            site_id: "site".into(),
            name: occupier.name.clone(),
            kind: occupier.kind,
            email: occupier.email.clone(),
            external_ref: occupier.external_ref.clone(),
        })
    }
    async fn update_occupier(
        &self,
        _: &str,
        _: &OccupierUpdate,
    ) -> Result<Occupier, EssensysError> {
        unreachable!("no occupier is linked in these fixtures")
    }
    async fn create_contract(&self, contract: &NewContract) -> Result<Contract, EssensysError> {
        Ok(Contract {
            id: self.id("k"),
            site_id: "site".into(),
            occupier_id: contract.occupier_id.clone(),
            kind: contract.kind,
            start_date: contract.start_date,
            end_date: None,
            external_ref: contract.external_ref.clone(),
        })
    }
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, EssensysError> {
        Ok((email == "taken@example.com").then(|| User {
            id: "elsewhere".into(),
            occupier_id: "other".into(),
            email: email.into(),
            first_name: "Someone".into(),
            last_name: String::new(),
            mobile: None,
            external_ref: None,
            wifi_invitation_sent_at: None,
        }))
    }
    async fn create_user(&self, user: &NewUser) -> Result<User, EssensysError> {
        self.check(&user.email, "create user")?;
        Ok(User {
            id: self.id("u"),
            occupier_id: user.occupier_id.clone(),
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            mobile: user.mobile.clone(),
            external_ref: user.external_ref.clone(),
            wifi_invitation_sent_at: None,
        })
    }
    async fn update_user(&self, _: &str, _: &UserUpdate) -> Result<User, EssensysError> {
        unreachable!("no user exists in these fixtures")
    }
    async fn send_wifi_invitation(&self, user_id: &str) -> Result<WifiInvitation, EssensysError> {
        self.invited.lock().unwrap().push(user_id.to_owned());
        Ok(WifiInvitation {
            user_id: user_id.into(),
            status: InvitationStatus::Sent,
            sent_at: at(),
        })
    }
    async fn list_bookings(&self, _: &BookingFilter) -> Result<Vec<Booking>, EssensysError> {
        Ok(Vec::new())
    }
    async fn list_tap_to_book_bookings(
        &self,
        _: DateTime<Utc>,
    ) -> Result<Vec<Booking>, EssensysError> {
        Ok(Vec::new())
    }
    async fn create_booking(&self, _: &NewBooking) -> Result<Booking, EssensysError> {
        unreachable!("the entity pass books nothing")
    }
    async fn update_booking(&self, _: &str, _: &BookingUpdate) -> Result<Booking, EssensysError> {
        unreachable!("the entity pass books nothing")
    }
    async fn cancel_booking(&self, _: &str) -> Result<Booking, EssensysError> {
        unreachable!("the entity pass books nothing")
    }
    async fn officernd_bookings(&self) -> Result<Vec<Value>, OfficeRndError> {
        Ok(Vec::new())
    }
    async fn create_officernd_booking(&self, _: &Value) -> Result<Value, OfficeRndError> {
        unreachable!("the entity pass books nothing")
    }
}

#[tokio::test]
async fn a_failed_write_is_tallied_and_reported_and_the_steps_after_it_go_on_without_it() {
    let location: ornd::Location = from(json!({"_id": "loc", "name": "HQ"}));
    let floors: Vec<ornd::Floor> = vec![
        from(json!({"_id": "f1", "name": "Level 1", "location": "loc"})),
        from(json!({"_id": "f2", "name": "Level 2", "location": "loc"})),
    ];
    let resources: Vec<ornd::Resource> = vec![
        from(json!({"_id": "r1", "name": "Elephant", "type": "meeting_room", "floor": "f1"})),
        from(json!({"_id": "r2", "name": "Tiger", "type": "meeting_room", "floor": "f2"})),
    ];
    let companies: Vec<ornd::Company> = vec![
        from(json!({"_id": "c1", "name": "Acme", "location": "loc"})),
        from(json!({"_id": "c2", "name": "Refused Ltd", "location": "loc"})),
    ];
    let member = |id: &str, email: &str, company: &str| -> ornd::Member {
        from(
            json!({"_id": id, "name": "Ann Lee", "email": email, "company": company,
                    "status": "active", "phone": "+447700900123"}),
        )
    };
    let members = [
        member("m1", "ann@example.com", "c1"),
        member("m2", "bo@example.com", "c2"),
        member("m3", "taken@example.com", "c1"),
        member("m4", "fail@example.com", "c1"),
    ];
    let view = LocationView {
        location: &location,
        floors: floors.iter().collect(),
        resources: resources.iter().collect(),
        companies: companies.iter().collect(),
        members: members.iter().collect(),
        bookings: Vec::new(),
    };
    let state = SiteState {
        site: Site {
            id: "site".into(),
            name: "Site".into(),
            services: vec![SiteService::Wifi],
            time_zone: None,
        },
        floors: Vec::new(),
        spaces: Vec::new(),
        occupiers: Vec::new(),
        contracts: Vec::new(),
        users: Vec::new(),
    };
    let matching: Matching = from(json!({}));
    let fake = Fake {
        refuse: HashSet::from(["Level 1", "Refused Ltd", "fail@example.com"]),
        ..Fake::default()
    };

    let mut pass = EntityPass::new(&fake, &view, &state, &matching, at());
    pass.run(true).await;

    let summary = &pass.summary;
    assert_eq!((summary.floors.created, summary.floors.failed), (1, 1));
    assert_eq!(summary.spaces.created, 2);
    let spaces = fake.spaces.lock().unwrap().clone();
    assert_eq!(
        spaces
            .iter()
            .map(|s| (s.name.as_str(), s.floor_id.is_some()))
            .collect::<Vec<_>>(),
        vec![("Elephant", false), ("Tiger", true)],
        "a space whose floor failed is created without one"
    );
    assert_eq!(
        (summary.occupiers.created, summary.occupiers.failed),
        (1, 1)
    );
    assert_eq!(summary.contracts.created, 1);
    assert_eq!(
        (
            summary.users.created,
            summary.users.skipped,
            summary.users.failed
        ),
        (1, 2, 1),
        "m2's company failed, m3's email is held elsewhere, m4's create failed"
    );
    assert_eq!(summary.wifi_invitations_sent, 1);
    assert_eq!(fake.invited.lock().unwrap().len(), 1);
    assert_eq!(pass.links.users.keys().collect::<Vec<_>>(), vec!["m1"]);
    let subjects: HashSet<&str> = pass.problems.iter().map(|p| p.subject.as_str()).collect();
    assert_eq!(
        subjects,
        HashSet::from([
            "floor Level 1",
            "company Refused Ltd",
            "member bo@example.com",
            "member taken@example.com",
            "member fail@example.com",
        ])
    );
    assert!(pass
        .problems
        .iter()
        .filter(|p| p.subject == "floor Level 1")
        .all(|p| p.message.ends_with("retried on the next sync")));
}
